"""Colours of semantic segmentation classes: one fixed RGB colour per class id.

Used by every picture of a label map (TensorBoard image | prediction | ground truth, `predict`
overlays and their legend), so a class has the same colour everywhere. Class 0 (background) is
black; ids 1.. follow the PASCAL VOC colour map (the bit-interleaving scheme of the VOC
development kit's `labelcolormap`, which mmsegmentation and DeepLab also draw with); the ignore
label (255 by default) is white. A label map's `segmentation_colors` (Common Semantic
Segmentation `dataset_meta.json`) may replace them via `palette(..., colors=...)`.
"""
import numpy as np

IGNORE_COLOR = (255, 255, 255)


def voc_color(class_id):
  """RGB tuple (0..255 ints) of `class_id` >= 0 in the PASCAL VOC colour map (0 -> black)."""
  r = g = b = 0
  c = int(class_id)
  for shift in range(7, -1, -1):
    r |= ((c >> 0) & 1) << shift
    g |= ((c >> 1) & 1) << shift
    b |= ((c >> 2) & 1) << shift
    c >>= 3
  return (r, g, b)


def palette(num_classes, ignore_label=255, colors=None):
  """uint8 [256, 3] lookup table: row k is the colour of label value k.

  Args:
    num_classes: number of classes WITHOUT background (ids 1..num_classes are coloured; values
      above them, except `ignore_label`, get their VOC colour too, so nothing is invisible).
    ignore_label: label value drawn in IGNORE_COLOR (None: none).
    colors: optional {class id: (r, g, b)} overriding the VOC colours.
  """
  del num_classes  # every row gets a colour; the argument documents the caller's range
  table = np.array([voc_color(k) for k in range(256)], np.uint8)
  for class_id, rgb in (colors or {}).items():
    table[int(class_id)] = np.asarray(rgb, np.uint8)
  if ignore_label is not None and 0 <= int(ignore_label) < 256:
    table[int(ignore_label)] = IGNORE_COLOR
  return table


def colorize(labels, table):
  """uint8 [H, W, 3] RGB picture of `labels` (int array [H, W] of values 0..255) via `table`
  ([256, 3] from `palette`)."""
  labels = np.asarray(labels)
  return table[np.clip(labels, 0, 255).astype(np.int64)]
