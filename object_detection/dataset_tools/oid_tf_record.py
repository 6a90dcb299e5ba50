"""Converts Open Images instance segmentations (CSV + mask PNGs) into TF OD API TFRecords.

The logic behind `dataset_tools/create_oid_tf_record.py`; `oid_annotations` reads and checks the
inputs (TF-free), this module encodes one image per task (`OidEncoder`, run in worker processes
or Apache Beam workers) and writes the output through `conversion.convert_jobs` (shards
`oid_<split>.record-NNNNN-of-NNNNN`, `label_map.pbtxt`, `conversion_summary.txt`, swapped in
whole at the end).

A record carries the keys of `tf_example_builder` (those of the TF OD API's COCO converter):
  image/source_id       the ImageID;  image/filename: the image file name (<ImageID>.jpg)
  image/encoded         the image file's bytes, or its EXIF-upright pixels (`coco_images`)
  image/object/bbox/*   the CSV box (BoxXMin ..), normalized [0, 1], clipped to [0, 1]
  image/object/class/text, label   the display name and the converted id (label map)
  image/object/is_crowd 0: the segmentation CSV has no crowd flag (IsGroupOf is a column of the
                        box CSV, not of this one)
  image/object/area     the mask's pixels at the image's size
  image/object/mask     (--include_masks) the mask PNG, nonzero = object, resized to the image's
                        [height, width] with nearest-neighbour (never interpolated), values 0/1

Box / mask check: a mask is drawn inside its box, so a correct pair has the box equal to the
mask's tight box up to the annotation tool's rounding (IoU near 1). A row whose CSV box and
mask's tight box have an IoU below `min_box_mask_iou` is skipped as `box_disagrees_with_mask`.
The default, 0.5, is far below a correct pair and the IoU at which the COCO and Open Images
metrics count a box as the same object: a lower IoU means the row's box and mask are not one
object (a mask of another row, swapped X / Y columns, a mask for another image size). 0 turns
the check off.

The masks are read and checked whether or not --include_masks writes them, so the same instances
are written either way.

Skipped and counted, never silently dropped: images (`IMAGE_SKIP_REASONS`) that are not in the
image folder, cannot be decoded, are neither JPEG nor PNG, or whose instances were all skipped
(an image listed in the segmentation CSV shows its objects: written without them it would teach
them as background); instances (`INSTANCE_SKIP_REASONS`) with a non-finite, empty or outside
[0, 1] (beyond BOX_TOLERANCE) box, a missing, unreadable or empty mask, or a box that disagrees
with the mask.
"""
import collections
import math
import os

import numpy as np
from PIL import Image

from object_detection.dataset_tools import coco_images
from object_detection.dataset_tools import conversion
from object_detection.dataset_tools import oid_annotations
from object_detection.dataset_tools import record_writer
from object_detection.dataset_tools import tf_example_builder

RECORD_PREFIX = 'oid'
CLASS_SOURCE = 'Open Images id'
DEFAULT_MIN_BOX_MASK_IOU = 0.5
# A normalized box coordinate may leave [0, 1] by this much (rounding in exported CSVs); it is
# then clipped.
BOX_TOLERANCE = 1e-3

SKIP_IMAGE_MISSING = 'image_missing'
SKIP_NO_USABLE_INSTANCE = 'no_usable_instance'
SKIP_NON_FINITE_BOX = 'non_finite_box'
SKIP_EMPTY_BOX = 'empty_box'
SKIP_OUTSIDE_BOX = 'box_outside_image'
SKIP_MASK_MISSING = 'mask_file_missing'
SKIP_UNREADABLE_MASK = 'unreadable_mask'
SKIP_EMPTY_MASK = 'mask_without_pixels'
SKIP_BOX_MASK_DISAGREE = 'box_disagrees_with_mask'
SKIP_OF_SKIPPED_IMAGE = 'instance_of_skipped_image'
IMAGE_SKIP_REASONS = (SKIP_IMAGE_MISSING, coco_images.SKIP_UNREADABLE_IMAGE,
                      coco_images.SKIP_UNSUPPORTED_FORMAT, SKIP_NO_USABLE_INSTANCE)
INSTANCE_SKIP_REASONS = (SKIP_NON_FINITE_BOX, SKIP_EMPTY_BOX, SKIP_OUTSIDE_BOX, SKIP_MASK_MISSING,
                         SKIP_UNREADABLE_MASK, SKIP_EMPTY_MASK, SKIP_BOX_MASK_DISAGREE,
                         SKIP_OF_SKIPPED_IMAGE)

# PIL modes whose pixel values are read as they are (nonzero = object).
_MASK_MODES = ('1', 'L', 'P', 'I', 'I;16', 'RGB')
try:
  _NEAREST = Image.Resampling.NEAREST
except AttributeError:  # Pillow < 9.1
  _NEAREST = Image.NEAREST


class MaskUnusable(Exception):
  """A mask file cannot be used; `reason` is SKIP_UNREADABLE_MASK or SKIP_EMPTY_MASK."""

  def __init__(self, reason, detail):
    super().__init__('%s (%s)' % (reason, detail))
    self.reason = reason


def read_mask(path, height, width):
  """Reads one Open Images mask PNG as the image's [height, width] uint8 0/1 mask.

  Args:
    path: the mask file (PNG; modes 1, L, P, I, I;16: nonzero = object; RGB: any channel
      nonzero).
    height, width: the image's size in pixels; the mask is resized to it with nearest-neighbour
      when its own size differs (Open Images masks have their own resolution).

  Returns:
    np.ndarray [height, width] uint8, values 0 / 1.

  Raises:
    MaskUnusable: the file cannot be decoded or has another mode (SKIP_UNREADABLE_MASK), or has
      no object pixel (SKIP_EMPTY_MASK).
  """
  try:
    with Image.open(path) as pil_mask:
      pil_mask.load()
      if pil_mask.mode not in _MASK_MODES:
        raise MaskUnusable(SKIP_UNREADABLE_MASK, 'mode %s' % pil_mask.mode)
      if pil_mask.size != (width, height):
        # Nearest-neighbour only selects pixels, so resizing before thresholding gives the
        # same mask as after, on fewer pixels.
        pil_mask = pil_mask.resize((width, height), _NEAREST)
      values = np.asarray(pil_mask)
  except MaskUnusable:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise MaskUnusable(SKIP_UNREADABLE_MASK, str(e)) from None
  binary = (values.any(axis=2) if values.ndim == 3 else values != 0).astype(np.uint8)
  if not binary.any():
    raise MaskUnusable(SKIP_EMPTY_MASK, 'no nonzero pixel')
  return binary


def mask_box(mask):
  """The tight box of a mask's nonzero pixels: (xmin, xmax, ymin, ymax) normalized [0, 1].

  Pixel column c covers [c, c + 1) in pixel units, so a mask filling the image is (0, 1, 0, 1).
  """
  height, width = mask.shape
  cols = np.flatnonzero(mask.any(axis=0))
  rows = np.flatnonzero(mask.any(axis=1))
  return (cols[0] / width, (cols[-1] + 1) / width, rows[0] / height, (rows[-1] + 1) / height)


def box_iou(a, b):
  """IoU of two (xmin, xmax, ymin, ymax) boxes."""
  inter_w = min(a[1], b[1]) - max(a[0], b[0])
  inter_h = min(a[3], b[3]) - max(a[2], b[2])
  if inter_w <= 0 or inter_h <= 0:
    return 0.0
  inter = inter_w * inter_h
  union = (a[1] - a[0]) * (a[3] - a[2]) + (b[1] - b[0]) * (b[3] - b[2]) - inter
  return inter / union if union > 0 else 0.0


def check_box(instance):
  """The clipped (xmin, xmax, ymin, ymax) of an instance's CSV box, or its skip reason (str)."""
  box = (instance.xmin, instance.xmax, instance.ymin, instance.ymax)
  if not all(math.isfinite(v) for v in box):
    return SKIP_NON_FINITE_BOX
  if any(v < -BOX_TOLERANCE or v > 1.0 + BOX_TOLERANCE for v in box):
    return SKIP_OUTSIDE_BOX
  box = tuple(min(max(v, 0.0), 1.0) for v in box)
  if box[1] <= box[0] or box[3] <= box[2]:
    return SKIP_EMPTY_BOX
  return box


class OidEncoder(object):
  """Encodes one `oid_annotations.OidTask` into a record (picklable; no process globals).

  Attributes:
    image_dir, mask_dir: the split's folders.
    mask_subdirs: dict hex digit -> tuple of mask subfolders (`oid_annotations.mask_subdirs`).
    categories: dict class id -> display name (the label map).
    include_masks: write image/object/mask.
    mask_type: 'png' or 'numerical'.
    min_box_mask_iou: float in [0, 1], see the module docstring.
  """

  def __init__(self, image_dir, mask_dir, mask_subdirs, categories, include_masks=False,
               mask_type='png', min_box_mask_iou=DEFAULT_MIN_BOX_MASK_IOU):
    self.image_dir = image_dir
    self.mask_dir = mask_dir
    self.mask_subdirs = dict(mask_subdirs)
    self.categories = dict(categories)
    self.include_masks = bool(include_masks)
    self.mask_type = mask_type
    self.min_box_mask_iou = float(min_box_mask_iou)

  def _instance(self, image_id, instance, height, width):
    """(box, mask) of one instance, or its skip reason (str)."""
    box = check_box(instance)
    if isinstance(box, str):
      return box
    path = oid_annotations.find_mask(self.mask_dir, self.mask_subdirs, image_id,
                                     instance.mask_path)
    if path is None:
      return SKIP_MASK_MISSING
    try:
      mask = read_mask(path, height, width)
    except MaskUnusable as e:
      return e.reason
    if box_iou(box, mask_box(mask)) < self.min_box_mask_iou:
      return SKIP_BOX_MASK_DISAGREE
    return box, mask

  def encode(self, task):
    """Returns the record_writer.EncodedImage of one task."""
    instances = task.instances
    if task.image_file is None:
      return record_writer.skipped_image(
          task.image_id + '.jpg', SKIP_IMAGE_MISSING,
          'no %s.jpg, .jpeg or .png in %s' % (task.image_id, self.image_dir),
          len(instances), SKIP_OF_SKIPPED_IMAGE)
    try:
      read = coco_images.read_image(os.path.join(self.image_dir, task.image_file))
    except coco_images.ImageSkipped as e:
      return record_writer.skipped_image(task.image_file, e.reason, e.detail, len(instances),
                                         SKIP_OF_SKIPPED_IMAGE)
    height, width = read.height, read.width
    skipped = collections.Counter()
    boxes, class_ids, masks = [], [], []
    for instance in instances:
      result = self._instance(task.image_id, instance, height, width)
      if isinstance(result, str):
        skipped[result] += 1
        continue
      boxes.append(result[0])
      masks.append(result[1])
      class_ids.append(instance.class_id)
    if instances and not boxes:
      skipped[SKIP_NO_USABLE_INSTANCE] += 1
      detail = 'all %d instance(s) skipped: %s' % (len(instances), ', '.join(
          '%s %d' % (reason, count) for reason, count in sorted(skipped.items())
          if reason != SKIP_NO_USABLE_INSTANCE))
      return record_writer.EncodedImage(
          None, [], skipped, (task.image_file, SKIP_NO_USABLE_INSTANCE, detail), None)
    example = tf_example_builder.build_example(
        read.encoded, read.format, task.image_file, task.image_id, height, width,
        xmin=[b[0] for b in boxes], xmax=[b[1] for b in boxes],
        ymin=[b[2] for b in boxes], ymax=[b[3] for b in boxes], class_ids=class_ids,
        class_names=[self.categories[c] for c in class_ids], is_crowd=[0] * len(boxes),
        areas=[float(m.sum()) for m in masks],
        masks=masks if self.include_masks else None, mask_type=self.mask_type)
    return record_writer.EncodedImage(tf_example_builder.serialize(example), class_ids, skipped,
                                      None, read.exif)


def check_min_box_mask_iou(value, flag='--min_box_mask_iou'):
  """Raises ConversionError unless 0 <= value <= 1."""
  if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
    raise oid_annotations.ConversionError(
        '%s must be in [0, 1] (0 turns the box / mask check off), got %r.' % (flag, value))


def split_jobs(oid_splits, categories, include_masks=False, mask_type='png',
               min_box_mask_iou=DEFAULT_MIN_BOX_MASK_IOU, by_class=False):
  """conversion.SplitJob of every `oid_annotations.OidSplit`."""
  return [conversion.SplitJob(
      split=s.split, source=s.annotations_file, image_dir=s.image_dir, tasks=s.tasks,
      encoder=OidEncoder(s.image_dir, s.mask_dir, s.mask_subdirs, categories, include_masks,
                         mask_type, min_box_mask_iou),
      images_total=s.images_total, instances_total=s.instances_total,
      # Images whose instances were all skipped are skipped by the encoder (never negatives);
      # the only images encoded without an instance are --keep_empty_images negatives.
      drop_empty=False, instances_other_classes=s.instances_other_classes,
      images_without_chosen_class=s.images_without_chosen_class,
      image_skip_reasons=IMAGE_SKIP_REASONS, instance_skip_reasons=INSTANCE_SKIP_REASONS,
      by_class=by_class) for s in oid_splits]


def convert(splits, class_descriptions_file, output_dir, classes=None, keep_empty_images=False,
            min_box_mask_iou=DEFAULT_MIN_BOX_MASK_IOU, include_masks=False, mask_type='png',
            num_shards=1, num_workers=1, show_progress=True, overwrite=False,
            runner_options=None, prepared=None):
  """Converts Open Images segmentation splits into `output_dir`, replacing it whole at the end.

  Args:
    splits: list of (split, annotations_file, image_dir, mask_dir); split in 'train', 'val',
      'test'.
    class_descriptions_file: the class-descriptions CSV (LabelName,DisplayName).
    output_dir: output folder (see `conversion.convert_jobs`).
    classes: None (every class of the CSVs, ids 1..N by display name), or display names and/or
      `/m/` ids, converted to ids 1..K in this order.
    keep_empty_images: with `classes`, write the images of the CSVs without a chosen class as
      negatives (no objects).
    min_box_mask_iou: see the module docstring.
    include_masks, mask_type, num_shards, num_workers, show_progress, overwrite,
      runner_options: see `conversion.convert_jobs`.
    prepared: the `oid_annotations.prepare(...)` result when already computed (the CLI).

  Returns:
    the `conversion.convert_jobs` result dict.

  Raises:
    ConversionError / ClassesError: bad inputs or options (see `oid_annotations.prepare`);
    output_folder.OutputWriteError: writing the output failed (`output_dir` unchanged).
  """
  check_min_box_mask_iou(min_box_mask_iou)
  conversion.check_options(mask_type, num_shards, num_workers)
  if prepared is None:
    prepared = oid_annotations.prepare(splits, class_descriptions_file, classes,
                                       keep_empty_images)
  oid_splits, chosen = prepared
  categories = {c.id: c.name for c in chosen}
  jobs = split_jobs(oid_splits, categories, include_masks, mask_type, min_box_mask_iou,
                    by_class=classes is not None)
  inputs = [class_descriptions_file] + [p for split in splits for p in split[1:]]
  return conversion.convert_jobs(
      jobs, output_dir, categories, RECORD_PREFIX, include_masks=include_masks,
      mask_type=mask_type, num_shards=num_shards, num_workers=num_workers,
      show_progress=show_progress, overwrite=overwrite, inputs=inputs,
      classes=chosen if classes is not None else None, keep_empty_images=keep_empty_images,
      class_source=CLASS_SOURCE, runner_options=runner_options)
