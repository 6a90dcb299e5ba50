"""Reads semantic segmentation sources: Common Semantic Segmentation folders and COCO instances.

No TensorFlow here: the command line (`dataset_tools/create_semantic_tf_record.py`) finds the
splits, pairs images with masks and resolves the classes with this module before it imports
TensorFlow; the encoders (`semantic_tf_record`) paint and read the label maps with it in worker
processes (and Beam workers).

Output label maps (both formats): uint8 [H, W], one class id per pixel: 0 = background, 1..K the
converted classes, IGNORE_LABEL (255) = ignored (no loss, no metric). At most 254 classes.

Common Semantic Segmentation (`INPUT_COMMON_SEMANTIC_SEGMENTATION`): the layout of the OpenVINO
accuracy checker, read by Datumaro (`common_semantic_segmentation`) and OpenVINO Training
Extensions. Three layouts of `dataset_dir` are accepted (`scan_css`):

  <dataset_dir>/dataset_meta.json, images/<split>/..., masks/<split>/...   (split folders)
  <dataset_dir>/<split>/dataset_meta.json, <split>/images/..., <split>/masks/...
                                                 (Datumaro's / OTX's subset folders)
  <dataset_dir>/dataset_meta.json, images/..., masks/...    (one split, named `split_name`)

  <split> is train, val or test. Images are the .jpg / .jpeg / .png files under the image folder
  (recursively); an image's mask is the .png with the same path relative to the mask folder and
  the same name without extension, else the one .png of that name anywhere in the mask folder
  (Datumaro pairs by name). Images without a mask are skipped and counted; masks without an
  image are counted.

  dataset_meta.json (`read_meta`):
    "label_map": {"<pixel value>": "<class name>", ...}  (or "labels": [names], index = value)
    "background_label": "<pixel value>"                  (optional)
    "segmentation_colors": [[R, G, B], ...]              (optional: colour masks)
  The background is the `background_label` value, else the label named "background" (any
  case), else value 0 when the label map does not list 0. It becomes class 0; the other labels
  become 1..K in increasing pixel value (`css_classes`). The i-th colour of
  `segmentation_colors` is the colour of the i-th label in the file's order (Datumaro's reading;
  with labels 0..N-1 in order, colour i is class i, as the accuracy checker reads it), as
  (R, G, B), which is how Datumaro unpaints colour masks.

  Masks (`read_css_mask`): single-channel PNGs (8 or 16-bit grey, palette indices, 1-bit) hold
  the pixel values of the label map; RGB(A) PNGs are colour masks (alpha ignored), mapped
  through `segmentation_colors`, or, without colours, read as grey when R = G = B everywhere.
  Pixel values (colours) the meta file does not list become IGNORE_LABEL; the images that have
  some are counted (UNLISTED_VALUES). A mask must have the image's size; photos with an EXIF
  orientation are written upright, so their mask must have the upright size
  (`coco_images.read_image`), else the image is skipped and counted.

COCO instances (`INPUT_COCO`): each annotation's mask is pycocotools' rasterisation
  (`coco_annotations.ann_to_mask`, as COCO.annToMask). Overlaps (`paint_coco_label_map`): the
  SMALLER instance is on top: masks are painted from the largest pixel count to the smallest,
  each over the earlier ones (equal counts: in JSON order, the later on top). A small object
  that overlaps a large one is almost always in front of it (a cup on a dining table, a handbag
  on a person), and the smaller mask is the one the annotator drew around the visible object;
  "the later annotation wins" would depend on the annotation tool's order and let a dining table
  annotated last swallow every plate on it. Class ids: 0 background, 1..K the categories in the
  JSON order of "categories" (or in --classes order). Crowd annotations (iscrowd=1, an RLE over
  a group of objects) are painted like the others (same overlap rule) with their class
  (`CROWD_CLASS`, default: the pixels do show that class; Panoptic-DeepLab keeps the semantic
  label of crowd regions too) or IGNORE_LABEL (`CROWD_IGNORE`: a group's outline is coarse).

Class subsets (both formats): with `classes` only the chosen classes keep an id (1..K in the
order given); the other classes' pixels become background (OTHER_BACKGROUND, default) or
IGNORE_LABEL (OTHER_IGNORE). They still take part in the overlap rule, so a cup on a table is a
cup's pixels (background with --classes=dining table), not table.

Errors are `coco_annotations.ConversionError` (a ConfigError) with one line naming the flag,
folder or file and what to do.
"""
import collections
import io
import json
import numbers
import os

import numpy as np
from PIL import Image

from object_detection.dataset_tools import coco_annotations

ConversionError = coco_annotations.ConversionError
ClassesError = coco_annotations.ClassesError

INPUT_COMMON_SEMANTIC_SEGMENTATION = 'common_semantic_segmentation'
INPUT_COCO = 'coco'
INPUT_FORMATS = (INPUT_COMMON_SEMANTIC_SEGMENTATION, INPUT_COCO)

BACKGROUND_ID = 0
IGNORE_LABEL = 255
MAX_CLASSES = 254  # ids 1..254; 255 is IGNORE_LABEL
BACKGROUND_NAME = 'background'

CROWD_CLASS = 'class'
CROWD_IGNORE = 'ignore'
CROWD_CHOICES = (CROWD_CLASS, CROWD_IGNORE)
OTHER_BACKGROUND = 'background'
OTHER_IGNORE = 'ignore'
OTHER_CHOICES = (OTHER_BACKGROUND, OTHER_IGNORE)

META_FILE = 'dataset_meta.json'
IMAGES_DIR = 'images'
MASKS_DIR = 'masks'
CSS_SPLITS = ('train', 'val', 'test')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')

# Skip reasons of whole images (with coco_images' unreadable / unsupported / size mismatch).
SKIP_NO_MASK = 'image_without_mask'
SKIP_UNREADABLE_MASK = 'unreadable_mask'
SKIP_MASK_COLOURS = 'colour_mask_without_colours'
SKIP_MASK_SIZE = 'mask_size_differs_from_image'
# Counted per image, not skips of the image: pixels set to IGNORE_LABEL because the meta file
# does not list their value / colour.
UNLISTED_VALUES = 'image_with_unlisted_mask_values'
# Masks of the mask folder that no image uses.
MASK_WITHOUT_IMAGE = 'mask_without_image'
# COCO annotations not painted.
SKIP_NO_SEGMENTATION = coco_annotations.SKIP_NO_SEGMENTATION
SKIP_BAD_SEGMENTATION = coco_annotations.SKIP_BAD_SEGMENTATION
SKIP_EMPTY_MASK = coco_annotations.SKIP_EMPTY_MASK
SKIP_COVERED = 'annotation_fully_covered'  # every pixel under smaller annotations
SKIP_UNKNOWN_IMAGE = 'image_id_not_in_images'
SKIP_OF_SKIPPED_IMAGE = 'instance_of_skipped_image'

CssMeta = collections.namedtuple('CssMeta', [
    'path',        # str, the dataset_meta.json
    'labels',      # dict pixel value -> name, in the file's order
    'background',  # int, the background's pixel value
    'colours',     # None, or dict (R, G, B) -> pixel value
])

CssTask = collections.namedtuple('CssTask', [
    'image_path',  # str
    'filename',    # str, image/filename: path relative to the split's image folder ('/')
    'source_id',   # str, image/source_id: the same path without extension
    'mask_path',   # str, or None when the image has no mask
])

CssSplit = collections.namedtuple('CssSplit', [
    'split',       # 'train' | 'val' | 'test'
    'image_dir',   # str
    'mask_dir',    # str
    'meta',        # CssMeta
    'tasks',       # list of CssTask, sorted by image path
    'masks_without_image',  # int
])

ClassPlan = collections.namedtuple('ClassPlan', [
    'categories',  # dict output id -> name, 0 = background: the label map written
    'value_of',    # dict source class (pixel value / COCO category id) -> output id (0..K, 255)
    'background',  # the background's source value (CSS), or None (COCO)
    'chosen',      # None, or list of coco_annotations.ClassChoice (--classes)
])


class MaskSkipped(Exception):
  """A mask cannot be used; `reason` is a skip reason above, `detail` says why."""

  def __init__(self, reason, detail):
    super().__init__('%s (%s)' % (reason, detail))
    self.reason = reason
    self.detail = detail


# ------------------------------------------------------------------------------------------------
# dataset_meta.json


def _int_value(value):
  """An int from an int or a str of digits; None otherwise."""
  if isinstance(value, bool):
    return None
  if isinstance(value, numbers.Integral):
    return int(value)
  if isinstance(value, str) and value.strip().lstrip('-').isdigit():
    return int(value.strip())
  return None


def read_meta(path):
  """Reads a Common Semantic Segmentation dataset_meta.json (see the module docstring).

  Returns:
    CssMeta.

  Raises:
    ConversionError: missing file, not JSON, no label_map / labels, a value that is not an
      integer 0..65535, a name listed twice, a bad colour list or background_label.
  """
  def fail(message):
    raise ConversionError('%s: %s' % (path, message))
  if not os.path.isfile(path):
    raise ConversionError('%s does not exist: a Common Semantic Segmentation dataset lists its '
                          'classes there ({"label_map": {"0": "background", "1": "road"}}).'
                          % path)
  try:
    with open(path, 'rb') as fid:
      data = json.load(fid)
  except (ValueError, OSError) as e:
    fail('not valid JSON (%s).' % str(e).splitlines()[0])
  if not isinstance(data, dict):
    fail('the top level must be a JSON object with "label_map".')
  labels = collections.OrderedDict()
  if 'label_map' in data:
    if not isinstance(data['label_map'], dict) or not data['label_map']:
      fail('"label_map" must be a non-empty object {"<pixel value>": "<class name>"}.')
    items = list(data['label_map'].items())
  elif 'labels' in data:
    if not isinstance(data['labels'], list) or not data['labels']:
      fail('"labels" must be a non-empty list of class names.')
    items = list(enumerate(data['labels']))
  else:
    fail('no "label_map" (or "labels"): list the classes as {"label_map": {"0": "background", '
         '"1": "road"}}.')
  names = {}
  for key, name in items:
    value = _int_value(key)
    if value is None or not 0 <= value <= 65535:
      fail('label %r: pixel values must be integers 0..65535.' % (key,))
    if not isinstance(name, str) or not name.strip():
      fail('label %d has name %r: names must be non-empty strings.' % (value, name))
    if value in labels:
      fail('pixel value %d is listed twice.' % value)
    if name in names:
      fail('class name %r is listed twice (values %d and %d): give each class one value.'
           % (name, names[name], value))
    labels[value] = name
    names[name] = value
  background = None
  if data.get('background_label') is not None:
    background = _int_value(data['background_label'])
    if background is None or background not in labels:
      fail('"background_label" is %r, which is not a pixel value of the label map (%s).'
           % (data['background_label'], ', '.join(str(v) for v in labels)))
  else:
    named = [v for v, n in labels.items() if n.strip().lower() == BACKGROUND_NAME]
    if len(named) > 1:
      fail('several labels are named background (%s): set "background_label".' % named)
    if named:
      background = named[0]
    elif BACKGROUND_ID not in labels:
      background = BACKGROUND_ID
    else:
      fail('no background: value 0 is %r and no label is named "background"; set '
           '"background_label" to the background\'s pixel value.' % labels[BACKGROUND_ID])
  colours = None
  if data.get('segmentation_colors') is not None:
    raw = data['segmentation_colors']
    if not isinstance(raw, list) or len(raw) != len(labels):
      fail('"segmentation_colors" must list one [R, G, B] per label (%d labels, got %s).'
           % (len(labels), len(raw) if isinstance(raw, list) else type(raw).__name__))
    colours = {}
    for index, (value, colour) in enumerate(zip(labels, raw)):
      if (not isinstance(colour, (list, tuple)) or len(colour) != 3 or
          not all(_int_value(c) is not None and 0 <= int(c) <= 255 for c in colour)):
        fail('segmentation_colors[%d] is %r: a colour is [R, G, B], each 0..255.'
             % (index, colour))
      colour = tuple(int(c) for c in colour)
      if colour in colours:
        fail('colour %s is given to two labels (%r and %r).'
             % (list(colour), labels[colours[colour]], labels[value]))
      colours[colour] = value
  return CssMeta(path, dict(labels), background, colours)


def css_classes(meta, classes=None, other_classes=OTHER_BACKGROUND):
  """The output classes of a Common Semantic Segmentation conversion.

  Args:
    meta: CssMeta.
    classes: None (every class), or `--classes` items: names or pixel values of the meta's
      non-background labels, given ids 1..K in this order.
    other_classes: OTHER_BACKGROUND or OTHER_IGNORE, what the classes not chosen become.

  Returns:
    ClassPlan; without `classes` the labels other than the background get ids 1..K in
    increasing pixel value (a meta whose values are already 0..K keeps them).

  Raises:
    ClassesError: an unknown class, the background, or a class given twice in `classes`;
    ConversionError: more than MAX_CLASSES classes.
  """
  foreground = {v: n for v, n in sorted(meta.labels.items()) if v != meta.background}
  background_name = meta.labels.get(meta.background, BACKGROUND_NAME)
  chosen = None
  if classes is None:
    value_of = {v: i + 1 for i, v in enumerate(foreground)}
  else:
    for item in classes:
      if str(item).strip().lower() == background_name.lower() or (
          _int_value(item) == meta.background and str(item) not in foreground.values()):
        raise ClassesError('--classes: %r is the background (class 0 always); list the other '
                           'classes only.' % (item,))
    chosen = coco_annotations.resolve_classes(classes, foreground)
    value_of = {c.source_id: c.id for c in chosen}
    other = BACKGROUND_ID if other_classes == OTHER_BACKGROUND else IGNORE_LABEL
    for value in foreground:
      value_of.setdefault(value, other)
  value_of[meta.background] = BACKGROUND_ID
  categories = {BACKGROUND_ID: BACKGROUND_NAME}
  if chosen is None:
    categories.update({value_of[v]: n for v, n in foreground.items()})
  else:
    categories.update({c.id: c.name for c in chosen})
  if len(categories) - 1 > MAX_CLASSES:
    raise ConversionError('%s lists %d classes besides the background; the label masks hold at '
                          'most %d (uint8, 255 = ignore): convert a subset with --classes.'
                          % (meta.path, len(categories) - 1, MAX_CLASSES))
  return ClassPlan(categories, value_of, meta.background, chosen)


def coco_classes(categories, classes=None, other_classes=OTHER_BACKGROUND):
  """The output classes of a COCO conversion.

  Args:
    categories: dict COCO category id -> name, in the JSON order of "categories".
    classes, other_classes: as in `css_classes` (names or COCO category ids).

  Returns:
    ClassPlan: ids 1..K in the JSON order of the categories (or of `classes`).
  """
  chosen = None
  if classes is None:
    value_of = {c: i + 1 for i, c in enumerate(categories)}
    named = {value_of[c]: n for c, n in categories.items()}
  else:
    chosen = coco_annotations.resolve_classes(classes, categories)
    other = BACKGROUND_ID if other_classes == OTHER_BACKGROUND else IGNORE_LABEL
    value_of = {c: other for c in categories}
    value_of.update({c.source_id: c.id for c in chosen})
    named = {c.id: c.name for c in chosen}
  if len(named) > MAX_CLASSES:
    raise ConversionError('The annotation files list %d categories; the label masks hold at most '
                          '%d (uint8, 255 = ignore): convert a subset with --classes.'
                          % (len(named), MAX_CLASSES))
  result = {BACKGROUND_ID: BACKGROUND_NAME}
  result.update(named)
  return ClassPlan(result, value_of, None, chosen)


# ------------------------------------------------------------------------------------------------
# Finding the splits and pairing images with masks.


def _files(folder, extensions):
  """Relative '/'-separated paths of the files under `folder` with these extensions, sorted."""
  found = []
  for root, dirs, names in os.walk(folder):
    dirs.sort()
    for name in names:
      if os.path.splitext(name)[1].lower() in extensions and not name.startswith('.'):
        found.append(os.path.relpath(os.path.join(root, name), folder).replace(os.sep, '/'))
  return sorted(found)


def pair_split(split, image_dir, mask_dir, meta):
  """Pairs every image of `image_dir` with its mask of `mask_dir` (see the module docstring).

  Returns:
    CssSplit.

  Raises:
    ConversionError: a folder is missing, holds no image, or a mask name is ambiguous.
  """
  for what, folder in (('image', image_dir), ('mask', mask_dir)):
    if not os.path.isdir(folder):
      raise ConversionError('The %s split has no %s folder %s (Common Semantic Segmentation: '
                            'images/ and masks/ beside %s).' % (split, what, folder, META_FILE))
  images = _files(image_dir, IMAGE_EXTENSIONS)
  if not images:
    raise ConversionError('Image folder %s (the %s split) has no .jpg / .jpeg / .png file.'
                          % (image_dir, split))
  masks = _files(mask_dir, ('.png',))
  by_key = {os.path.splitext(m)[0]: m for m in masks}
  by_name = collections.defaultdict(list)
  for mask in masks:
    by_name[os.path.splitext(os.path.basename(mask))[0]].append(mask)
  tasks, used = [], set()
  for image in images:
    key = os.path.splitext(image)[0]
    mask = by_key.get(key)
    if mask is None:
      named = by_name.get(os.path.basename(key), [])
      if len(named) > 1:
        raise ConversionError('Image %s/%s has no mask at masks/%s.png and %d masks of that name '
                              'elsewhere in %s (%s): keep each mask at the image\'s relative '
                              'path.' % (image_dir, image, key, len(named), mask_dir,
                                         ', '.join(named[:3])))
      mask = named[0] if named else None
    if mask is not None:
      used.add(mask)
    tasks.append(CssTask(os.path.join(image_dir, image), image, key,
                         None if mask is None else os.path.join(mask_dir, mask)))
  return CssSplit(split, image_dir, mask_dir, meta, tasks, len(set(masks) - used))


def scan_css(dataset_dir, split_name='train'):
  """Finds the splits of a Common Semantic Segmentation dataset (three layouts, module doc).

  Args:
    dataset_dir: the dataset's root folder.
    split_name: the split of a dataset without split folders.

  Returns:
    list of CssSplit, in train, val, test order.

  Raises:
    ConversionError: no dataset_meta.json where a layout needs one, folders that are not split
      names beside split folders, missing folders, splits whose meta files list different
      classes.
  """
  if not os.path.isdir(dataset_dir):
    raise ConversionError('--dataset_dir=%s does not exist.' % dataset_dir)
  root_meta = os.path.join(dataset_dir, META_FILE)
  images_root = os.path.join(dataset_dir, IMAGES_DIR)
  if os.path.isfile(root_meta):
    meta = read_meta(root_meta)
    split_dirs = [s for s in CSS_SPLITS if os.path.isdir(os.path.join(images_root, s))]
    if not split_dirs:
      return [pair_split(split_name, images_root, os.path.join(dataset_dir, MASKS_DIR), meta)]
    others = sorted(n for n in (os.listdir(images_root) if os.path.isdir(images_root) else [])
                    if n not in CSS_SPLITS and not n.startswith('.'))
    if others:
      raise ConversionError('%s holds split folders (%s) and also %s: with split folders every '
                            'image must be in images/train, images/val or images/test.'
                            % (images_root, ', '.join(split_dirs), ', '.join(others[:5])))
    return [pair_split(s, os.path.join(images_root, s),
                       os.path.join(dataset_dir, MASKS_DIR, s), meta) for s in split_dirs]
  split_dirs = [s for s in CSS_SPLITS if os.path.isfile(os.path.join(dataset_dir, s, META_FILE))]
  if not split_dirs:
    raise ConversionError(
        '--dataset_dir=%s has no %s: a Common Semantic Segmentation dataset is <dir>/%s with '
        '<dir>/images and <dir>/masks (optionally images/<split>, masks/<split>), or '
        '<dir>/<split>/%s with <dir>/<split>/images and masks (split = train, val, test).'
        % (dataset_dir, META_FILE, META_FILE, META_FILE))
  splits = []
  for split in split_dirs:
    folder = os.path.join(dataset_dir, split)
    meta = read_meta(os.path.join(folder, META_FILE))
    if splits and (meta.labels, meta.background, meta.colours) != (
        splits[0].meta.labels, splits[0].meta.background, splits[0].meta.colours):
      raise ConversionError('%s and %s list different classes (or background / colours): the '
                            'splits must share one label map.' % (splits[0].meta.path, meta.path))
    splits.append(pair_split(split, os.path.join(folder, IMAGES_DIR),
                             os.path.join(folder, MASKS_DIR), meta))
  return splits


# ------------------------------------------------------------------------------------------------
# Label maps of Common Semantic Segmentation masks.

_SINGLE_CHANNEL_MODES = ('1', 'L', 'P', 'I', 'I;16', 'I;16L', 'I;16B', 'I;16N')


def read_css_mask(path, colours=None):
  """Reads one mask PNG as its source pixel values.

  Args:
    path: the mask file.
    colours: None, or dict (R, G, B) -> pixel value (the meta's segmentation_colors).

  Returns:
    (values, unlisted_colours): int64 [H, W] the source pixel values (for colour masks the
    value of each colour; -1 for a colour `colours` does not list), and the number of distinct
    colours not listed (0 for single-channel masks).

  Raises:
    MaskSkipped: the file cannot be read (SKIP_UNREADABLE_MASK) or is a colour mask without
      `colours` whose channels differ (SKIP_MASK_COLOURS).
  """
  try:
    with open(path, 'rb') as fid:
      data = fid.read()
    with Image.open(io.BytesIO(data)) as pil:
      pil.load()
      mode = pil.mode
      if mode in _SINGLE_CHANNEL_MODES:
        return np.asarray(pil).astype(np.int64), 0
      if mode == 'LA':
        return np.asarray(pil)[:, :, 0].astype(np.int64), 0
      if mode not in ('RGB', 'RGBA'):
        raise MaskSkipped(SKIP_UNREADABLE_MASK, '%s: PNG mode %s' % (path, mode))
      rgb = np.asarray(pil)[:, :, :3].astype(np.int64)
  except MaskSkipped:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise MaskSkipped(SKIP_UNREADABLE_MASK, '%s: %s' % (path, e)) from None
  if colours is None:
    if (np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and
        np.array_equal(rgb[:, :, 0], rgb[:, :, 2])):
      return rgb[:, :, 0], 0
    raise MaskSkipped(SKIP_MASK_COLOURS, '%s is a colour mask and %s has no '
                      '"segmentation_colors"' % (path, META_FILE))
  packed = (rgb[:, :, 0] << 16) | (rgb[:, :, 1] << 8) | rgb[:, :, 2]
  unique, inverse = np.unique(packed, return_inverse=True)
  table = np.array([colours.get(((c >> 16) & 255, (c >> 8) & 255, c & 255), -1)
                    for c in unique.tolist()], dtype=np.int64)
  return table[inverse.reshape(packed.shape)], int(np.count_nonzero(table < 0))


def map_values(values, value_of):
  """Maps source pixel values to output class ids.

  Args:
    values: int [H, W] source values (-1: an unlisted colour).
    value_of: dict source value -> output id (ClassPlan.value_of).

  Returns:
    (label_map, present, unlisted): uint8 [H, W] output ids (IGNORE_LABEL for values
    `value_of` does not list); the set of source values with at least one pixel; the number of
    distinct unlisted values.
  """
  unique, inverse = np.unique(values, return_inverse=True)
  table = np.array([value_of.get(v, IGNORE_LABEL) for v in unique.tolist()], dtype=np.uint8)
  unlisted = sum(1 for v in unique.tolist() if v not in value_of)
  return table[inverse.reshape(values.shape)], set(unique.tolist()), unlisted


# ------------------------------------------------------------------------------------------------
# Label maps painted from COCO annotations.


def paint_coco_label_map(annotations, height, width, value_of, crowd=CROWD_CLASS):
  """Paints one image's COCO annotations into a label map (the overlap rule of the module doc).

  Args:
    annotations: the image's COCO annotation dicts (JSON order).
    height, width: image size (the JSON's).
    value_of: dict COCO category id -> output id (ClassPlan.value_of).
    crowd: CROWD_CLASS or CROWD_IGNORE (iscrowd=1 annotations).

  Returns:
    (label_map, painted, skipped): uint8 [H, W] (0 where no annotation); the list of
    (category id, is_crowd) of the annotations with at least one visible pixel; a Counter of
    the annotations not painted, by reason (SKIP_NO_SEGMENTATION, SKIP_BAD_SEGMENTATION,
    SKIP_EMPTY_MASK, SKIP_COVERED).
  """
  skipped = collections.Counter()
  drawn = []  # (pixels, JSON index, bool mask, category id, is_crowd)
  for index, ann in enumerate(annotations):
    mask, reason = coco_annotations.annotation_mask(ann, height, width)
    if mask is None:
      skipped[reason] += 1
      continue
    mask = mask.astype(bool)
    pixels = int(np.count_nonzero(mask))
    drawn.append((pixels, index, mask, ann['category_id'], int(bool(ann.get('iscrowd', 0)))))
  # Largest first, each painted over the earlier ones: the smallest is on top; equal pixel
  # counts in JSON order (the later on top).
  drawn.sort(key=lambda d: (-d[0], d[1]))
  winner = np.full((height, width), -1, dtype=np.int32)
  for order, item in enumerate(drawn):
    winner[item[2]] = order
  visible = set(np.unique(winner).tolist()) - {-1}
  table = np.zeros([len(drawn) + 1], dtype=np.uint8)  # last entry: no annotation (-1)
  painted = []
  for order, (_, _, _, category_id, is_crowd) in enumerate(drawn):
    if order not in visible:
      skipped[SKIP_COVERED] += 1
      continue
    table[order] = IGNORE_LABEL if (is_crowd and crowd == CROWD_IGNORE) else value_of[
        category_id]
    painted.append((category_id, is_crowd))
  return table[winner], painted, skipped


def check_choice(value, choices, flag):
  """Raises ConversionError (one line) when `value` is not one of `choices`."""
  if value not in choices:
    raise ConversionError('%s must be one of %s, got %r.' % (flag, ', '.join(choices), value))



# ------------------------------------------------------------------------------------------------
# Everything checked before TensorFlow is imported.

Prepared = collections.namedtuple('Prepared', [
    'input_format',  # INPUT_COMMON_SEMANTIC_SEGMENTATION | INPUT_COCO
    'splits',        # CSS: list of CssSplit; COCO: list of (split, image_dir, annotations_file)
    'loaded',        # COCO: dict annotations_file -> load_coco_annotations result; CSS: None
    'plan',          # ClassPlan
])


def prepare_inputs(input_format, dataset_dir='', split_name='train', coco_splits=(),
                   classes=None, other_classes=OTHER_BACKGROUND, crowd=CROWD_CLASS):
  """Finds, pairs and checks every input and resolves the classes (TF-free, before writing).

  Args:
    input_format: one of INPUT_FORMATS.
    dataset_dir, split_name: Common Semantic Segmentation root and the split name of a dataset
      without split folders (`scan_css`).
    coco_splits: COCO: list of (split, image_dir, annotations_file).
    classes: None or the `--classes` items; other_classes, crowd: see the module docstring.

  Returns:
    Prepared.

  Raises:
    ConversionError / ClassesError: one line naming the flag, folder or file.
  """
  check_choice(input_format, INPUT_FORMATS, '--input_format')
  check_choice(other_classes, OTHER_CHOICES, '--other_classes')
  check_choice(crowd, CROWD_CHOICES, '--crowd')
  if input_format == INPUT_COMMON_SEMANTIC_SEGMENTATION:
    splits = scan_css(dataset_dir, split_name)
    return Prepared(input_format, splits, None,
                    css_classes(splits[0].meta, classes, other_classes))
  if not coco_splits:
    raise ConversionError('No COCO split to convert: give --train_image_dir with '
                          '--train_annotations_file (and/or --val_..., --test_...).')
  loaded, categories = coco_annotations.load_splits(list(coco_splits))
  return Prepared(input_format, list(coco_splits), loaded,
                  coco_classes(categories, classes, other_classes))
