"""Pictures and pixel counts of semantic segmentation predictions (used by `predict`).

Conventions: a class map is an integer array [H, W] of class ids, 0 = background, k = label map id
k (`semantic_classes` of an export, `semantic_exporter.py`); colours come from
`semantic_palette` (the same colours as TensorBoard's image | prediction | ground truth).

  class_pixel_counts(classes)         int64 [max id + 1] pixels per class id (np.bincount).
  class_names(category_index, ids)    {id: name}: 'background' for 0, the label map name, or
                                      'id k' for an id the label map does not list.
  blend(image, classes, table)        the image with every non-background pixel blended with its
                                      class colour: (1 - alpha) * pixel + alpha * colour, rounded
                                      (background pixels are left as they are, so the photo stays
                                      readable).
  add_legend(picture, entries)        the picture with a legend panel on its right: one row per
                                      class present (colour swatch, name, pixel share).
  overlay_with_legend(...)            blend + legend: what predict writes as `<stem>.png`.
  class_id_png(classes)               PIL image of the class ids: mode 'L' (uint8) when every id
                                      is <= 255, else 'I;16' (16-bit PNG).
"""
import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont

from object_detection.utils import semantic_palette

BACKGROUND_ID = 0
BACKGROUND_NAME = 'background'
DEFAULT_ALPHA = 0.5
_PANEL_COLOR = (255, 255, 255)
_TEXT_COLOR = (0, 0, 0)


def class_pixel_counts(classes, minlength=0):
  """int64 [max(max id + 1, minlength)] number of pixels of each class id in `classes`.

  Raises:
    ValueError: a negative class id.
  """
  classes = np.asarray(classes)
  if classes.size and classes.min() < 0:
    raise ValueError('class ids must be >= 0, got %d.' % classes.min())
  return np.bincount(classes.ravel().astype(np.int64), minlength=minlength)


def class_names(category_index, class_ids):
  """{class id: display name} for `class_ids` (see the module docstring)."""
  names = {}
  for class_id in class_ids:
    class_id = int(class_id)
    if class_id == BACKGROUND_ID:
      names[class_id] = BACKGROUND_NAME
    elif class_id in (category_index or {}):
      names[class_id] = str(category_index[class_id]['name'])
    else:
      names[class_id] = 'id %d' % class_id
  return names


def blend(image, classes, table, alpha=DEFAULT_ALPHA):
  """uint8 [H, W, 3]: `image` with each non-background pixel blended with its class colour.

  Args:
    image: uint8 [H, W, 3] RGB.
    classes: integer [H, W] class ids, the image's size.
    table: uint8 [256, 3] colours (`semantic_palette.palette`); an id above 255 gets row
      `id % 256`.
    alpha: colour weight in 0..1.

  Raises:
    ValueError: `classes` is not the image's size.
  """
  image = np.asarray(image)
  classes = np.asarray(classes)
  if classes.shape != image.shape[:2]:
    raise ValueError('class map %s does not match the image %s.' % (classes.shape, image.shape))
  colours = np.asarray(table)[classes.astype(np.int64) % 256].astype(np.float64)
  mixed = (1.0 - alpha) * image.astype(np.float64) + alpha * colours
  out = image.copy()
  tinted = classes != BACKGROUND_ID
  out[tinted] = np.clip(np.round(mixed[tinted]), 0, 255).astype(np.uint8)
  return out


def _font(image_height):
  """Pillow's built-in font (nothing read from disk), about 1/40 of the image height, >= 11 px."""
  size = max(11, int(image_height) // 40)
  try:
    return PIL.ImageFont.load_default(size=size)
  except TypeError:  # Pillow < 10.1: the fixed bitmap font.
    return PIL.ImageFont.load_default()


def add_legend(picture, entries):
  """The picture with a white legend panel appended on its right.

  Args:
    picture: uint8 [H, W, 3].
    entries: list of (class id, name, pixel share in 0..1, (r, g, b) or None); one row each, in
      the given order: a colour swatch (an empty box when the colour is None), then
      'name  12.3%'.

  Returns:
    uint8 [max(H, rows' height), W + panel width, 3]; the picture in the top-left corner, white
    elsewhere (the picture itself is not covered).
  """
  picture = np.asarray(picture)
  height, width = picture.shape[:2]
  font = _font(height)
  probe = PIL.ImageDraw.Draw(PIL.Image.new('RGB', (1, 1)))
  texts = ['%s  %.1f%%' % (name, 100.0 * share) for _, name, share, _ in entries]
  boxes = [probe.textbbox((0, 0), text, font=font) for text in texts] or [(0, 0, 0, 0)]
  line_height = max([b[3] - b[1] for b in boxes] + [int(font.size) if hasattr(font, 'size') else 11])
  swatch = line_height
  pad = max(4, line_height // 3)
  row = line_height + pad
  panel_width = pad + swatch + pad + max(b[2] - b[0] for b in boxes) + pad
  total_height = max(height, pad + row * len(entries))
  canvas = PIL.Image.new('RGB', (width + panel_width, total_height), _PANEL_COLOR)
  canvas.paste(PIL.Image.fromarray(picture.astype(np.uint8)), (0, 0))
  draw = PIL.ImageDraw.Draw(canvas)
  for index, ((_, _, _, colour), text) in enumerate(zip(entries, texts)):
    top = pad + index * row
    left = width + pad
    box = [left, top, left + swatch - 1, top + swatch - 1]
    if colour is None:
      draw.rectangle(box, outline=_TEXT_COLOR)
    else:
      draw.rectangle(box, fill=tuple(int(c) for c in colour), outline=_TEXT_COLOR)
    bbox = boxes[index]
    draw.text((left + swatch + pad - bbox[0], top - bbox[1]), text, fill=_TEXT_COLOR, font=font)
  return np.asarray(canvas)


def legend_entries(counts, category_index, table):
  """Legend rows of the classes present: non-background classes by decreasing pixel count, then
  the background (no swatch: it is not tinted). Returns [(id, name, share, colour or None)]."""
  counts = np.asarray(counts)
  total = max(int(counts.sum()), 1)
  present = [int(k) for k in np.nonzero(counts)[0]]
  names = class_names(category_index, present)
  others = sorted((k for k in present if k != BACKGROUND_ID), key=lambda k: (-counts[k], k))
  entries = [(k, names[k], counts[k] / total, tuple(int(c) for c in table[k % 256]))
             for k in others]
  if BACKGROUND_ID in present:
    entries.append((BACKGROUND_ID, names[BACKGROUND_ID], counts[BACKGROUND_ID] / total, None))
  return entries


def overlay_with_legend(image, classes, category_index=None, table=None, alpha=DEFAULT_ALPHA):
  """uint8 [H', W + panel, 3]: `blend(image, classes)` with the legend of the classes present.

  Args:
    image: uint8 [H, W, 3] RGB.
    classes: integer [H, W] class ids.
    category_index: {id: {'name': ...}} of the label map (None: classes are shown as 'id k').
    table: uint8 [256, 3] colours (default `semantic_palette.palette`).
    alpha: colour weight.
  """
  if table is None:
    table = semantic_palette.palette(0)
  counts = class_pixel_counts(classes)
  picture = blend(image, classes, table, alpha)
  return add_legend(picture, legend_entries(counts, category_index, table))


def class_id_png(classes):
  """PIL image of the class ids at their own size: mode 'L' (8-bit) when every id <= 255, else
  'I;16' (16-bit), so a PNG holds the ids exactly."""
  classes = np.asarray(classes)
  if classes.size == 0 or classes.max() <= 255:
    return PIL.Image.fromarray(classes.astype(np.uint8))  # 2-D uint8: mode 'L'
  return PIL.Image.fromarray(classes.astype(np.uint16))  # 2-D uint16: mode 'I;16'
