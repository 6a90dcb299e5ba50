"""Converts instance-ID PNG datasets and per-instance PNG mask folders into TFRecords.

The logic behind `dataset_tools/create_instance_png_tf_record.py`. The input formats, pairing
rules, pixel encoding, box convention and every skip reason are described in
`instance_png_annotations` (TF-free: the command line checks the inputs with it first). The
records carry the TF OD API's keys (`tf_example_builder`): image/filename and image/source_id are
the image's path relative to its image folder ('/'-separated), image/object/class/label the class
id of the written label map, image/object/area the mask's pixel count, image/object/is_crowd 1
only for the crowd regions of `class_only_regions='crowd'`. With `classes`, the instances of the
other classes (known only once the masks are read) are counted by the encoders under
`conversion.SKIP_OTHER_CLASS`, which the summary reports as "instances of other classes".

Writing, worker processes, shards, the label map and the summary are the ones every converter
shares (`conversion.convert_jobs`): the output folder is replaced whole at the end, the shards are
`<output_dir>/instances_<split>.record-NNNNN-of-NNNNN`, and with `runner_options` an Apache Beam
pipeline writes the same records (the encoders are plain picklable objects).
"""
import collections

import numpy as np

from object_detection.dataset_tools import coco_images
from object_detection.dataset_tools import conversion
from object_detection.dataset_tools import instance_png_annotations as ipa
from object_detection.dataset_tools import record_writer
from object_detection.dataset_tools import tf_example_builder

ConversionError = ipa.ConversionError
RECORD_PREFIX = 'instances'
CLASS_SOURCE = {ipa.INSTANCE_ID_PNG: 'pixel class', ipa.INSTANCE_MASK_FOLDER: 'folder class'}

ID_PNG_IMAGE_SKIP_REASONS = (
    ipa.SKIP_NO_MASK, coco_images.SKIP_UNREADABLE_IMAGE, coco_images.SKIP_UNSUPPORTED_FORMAT,
    ipa.SKIP_UNREADABLE_MASK, ipa.SKIP_MASK_NOT_SINGLE_CHANNEL, ipa.SKIP_MASK_SIZE)
ID_PNG_INSTANCE_SKIP_REASONS = (ipa.SKIP_CLASS_ONLY_REGION, ipa.SKIP_CLASS_NOT_IN_LABEL_MAP,
                                ipa.SKIP_BELOW_MIN_PIXELS)
FOLDER_IMAGE_SKIP_REASONS = (ipa.SKIP_NO_MASK, coco_images.SKIP_UNREADABLE_IMAGE,
                             coco_images.SKIP_UNSUPPORTED_FORMAT)
FOLDER_INSTANCE_SKIP_REASONS = (
    ipa.SKIP_OUTSIDE_CLASS_FOLDER, ipa.SKIP_UNREADABLE_MASK, ipa.SKIP_MASK_SIZE,
    ipa.SKIP_EMPTY_MASK, ipa.SKIP_BELOW_MIN_PIXELS, ipa.SKIP_OF_SKIPPED_IMAGE)


class _EncoderBase(object):
  """What both encoders share: reading the image and building the record from instances.

  Attributes (all picklable):
    class_map: dict source class (PNG class id, or folder name) -> (record id, name).
    subset: True when --classes chose the classes (an unknown class is then another class,
      not a class missing from the label map).
    include_masks, mask_type: see `tf_example_builder.build_example`.
    min_instance_pixels: int >= 1.
    keep_empty_images: write an image without a mask as a negative (no objects).
  """

  def __init__(self, class_map, subset=False, include_masks=False, mask_type='png',
               min_instance_pixels=1, keep_empty_images=False):
    self.class_map = dict(class_map)
    self.subset = bool(subset)
    self.include_masks = bool(include_masks)
    self.mask_type = mask_type
    self.min_instance_pixels = int(min_instance_pixels)
    self.keep_empty_images = bool(keep_empty_images)

  def _unknown_class_reason(self):
    # A class left out by --classes is reported as "instances of other classes", not a skip.
    return conversion.SKIP_OTHER_CLASS if self.subset else ipa.SKIP_CLASS_NOT_IN_LABEL_MAP

  def _no_mask(self, task, what):
    """The image has no mask: a skip, or (keep_empty_images) a record without objects."""
    if not self.keep_empty_images:
      return record_writer.skipped_image(task.filename, ipa.SKIP_NO_MASK, 'no %s' % what)
    try:
      read = coco_images.read_image(task.image_path)
    except coco_images.ImageSkipped as e:
      return record_writer.skipped_image(task.filename, e.reason, e.detail)
    return self._example(task, read, [], collections.Counter())

  def _example(self, task, read, instances, skipped):
    """EncodedImage of the image `read` with the `instances` (list of ipa.Instance) kept."""
    height, width = read.height, read.width
    xmin, xmax, ymin, ymax = [], [], [], []
    labels, names, crowd, areas, masks = [], [], [], [], []
    for instance in instances:
      target = self.class_map.get(instance.source_class)
      if target is None:
        skipped[self._unknown_class_reason()] += 1
        continue
      if instance.pixels < self.min_instance_pixels:
        skipped[ipa.SKIP_BELOW_MIN_PIXELS] += 1
        continue
      top, left, bottom, right = ipa.tight_box(instance.mask)
      ymin.append(top / height)
      xmin.append(left / width)
      ymax.append(bottom / height)
      xmax.append(right / width)
      labels.append(target[0])
      names.append(target[1])
      crowd.append(instance.is_crowd)
      areas.append(float(instance.pixels))
      masks.append(instance.mask)
    example = tf_example_builder.build_example(
        read.encoded, read.format, task.filename, task.source_id, height, width, xmin, xmax,
        ymin, ymax, labels, names, crowd, areas,
        masks=masks if self.include_masks else None, mask_type=self.mask_type)
    return record_writer.EncodedImage(tf_example_builder.serialize(example), labels, skipped, None,
                                      read.exif)


class InstanceIdPngEncoder(_EncoderBase):
  """Encodes an `ipa.IdPngTask`: the image and the instances of its instance-ID PNG.

  Extra attributes: id_divisor, ignore_values (tuple of int), class_only_regions (see
  `ipa.instances_from_id_map`). The image is skipped (reason named) when it or its PNG cannot be
  read, the PNG has more than one channel, or its size differs from the (EXIF-upright) image's.
  """

  def __init__(self, class_map, id_divisor=ipa.CITYSCAPES_ID_DIVISOR, ignore_values=(),
               class_only_regions=ipa.CLASS_ONLY_SKIP, **kwargs):
    super().__init__(class_map, **kwargs)
    self.id_divisor = int(id_divisor)
    self.ignore_values = tuple(int(v) for v in ignore_values)
    self.class_only_regions = class_only_regions

  def encode(self, task):
    if task.mask_path is None:
      return self._no_mask(task, 'instance-ID PNG for this image')
    try:
      read = coco_images.read_image(task.image_path)
    except coco_images.ImageSkipped as e:
      return record_writer.skipped_image(task.filename, e.reason, e.detail)
    try:
      id_map = ipa.read_id_png(task.mask_path)
    except ipa.MaskSkipped as e:
      return record_writer.skipped_image(task.filename, e.reason, e.detail)
    if id_map.shape != (read.height, read.width):
      return record_writer.skipped_image(
          task.filename, ipa.SKIP_MASK_SIZE, '%s is %dx%d (HxW), the image %dx%d' % (
              task.mask_path, id_map.shape[0], id_map.shape[1], read.height, read.width))
    instances, skipped = ipa.instances_from_id_map(
        id_map, self.id_divisor, self.ignore_values, self.class_only_regions)
    return self._example(task, read, instances, skipped)


class MaskFolderEncoder(_EncoderBase):
  """Encodes an `ipa.MaskFolderTask`: the image and one instance per mask file.

  Extra attribute: flat (True: one class, masks directly in the image's folder; class_map is
  then {None: (1, name)}). Per-instance problems (unreadable mask, another size than the image,
  no pixel) skip that instance only; an unreadable image skips the image and its masks.
  """

  def __init__(self, class_map, flat=False, **kwargs):
    super().__init__(class_map, **kwargs)
    self.flat = bool(flat)

  def encode(self, task):
    if task.mask_folder is None:
      return self._no_mask(task, 'mask folder for this image')
    try:
      read = coco_images.read_image(task.image_path)
    except coco_images.ImageSkipped as e:
      return record_writer.skipped_image(task.filename, e.reason, e.detail,
                                         len(task.mask_files), ipa.SKIP_OF_SKIPPED_IMAGE)
    skipped = collections.Counter()
    kept = []
    for class_name, path in task.mask_files:
      if class_name is None and not self.flat:
        skipped[ipa.SKIP_OUTSIDE_CLASS_FOLDER] += 1
        continue
      if class_name not in self.class_map:
        skipped[self._unknown_class_reason()] += 1  # Not read: its class is not written.
        continue
      try:
        mask = ipa.read_binary_mask(path)
      except ipa.MaskSkipped:
        skipped[ipa.SKIP_UNREADABLE_MASK] += 1
        continue
      if mask.shape != (read.height, read.width):
        skipped[ipa.SKIP_MASK_SIZE] += 1
        continue
      pixels = int(np.count_nonzero(mask))
      if not pixels:
        skipped[ipa.SKIP_EMPTY_MASK] += 1
        continue
      kept.append((self.class_map[class_name][0], path,
                   ipa.Instance(class_name, mask, pixels, 0)))
    # Sorted by record class id, then file path (mask_files are sorted by name already).
    kept.sort(key=lambda item: (item[0], item[1]))
    return self._example(task, read, [item[2] for item in kept], skipped)


# ------------------------------------------------------------------------------------------------
# One conversion.


def convert(input_format, splits, output_dir, label_map_path='', classes=None, class_name='',
            id_divisor=ipa.CITYSCAPES_ID_DIVISOR, ignore_values=(),
            class_only_regions=ipa.CLASS_ONLY_SKIP, image_pattern='', image_suffix='',
            mask_suffix='.png', mask_subfolder='', min_instance_pixels=1,
            include_masks=False, mask_type='png', num_shards=1, num_workers=1,
            show_progress=True, overwrite=False, keep_empty_images=False, runner_options=None,
            scanned=None):
  """Converts the splits into `output_dir` (replaced whole at the end).

  Args:
    input_format: ipa.INSTANCE_ID_PNG or ipa.INSTANCE_MASK_FOLDER.
    splits: list of (split name, image_dir, mask_dir), split in ('train', 'val', 'test').
    output_dir: output folder (see `conversion.convert_jobs`).
    label_map_path: instance_id_png: '' or a TF OD API label map of the PNGs' class ids.
    classes: None, or a list of class names / ids: only those, renumbered 1..K in this order.
    class_name: the one class of a single-class dataset (id_divisor 0, or flat mask folders).
    id_divisor, ignore_values, class_only_regions: instance_id_png encoding
      (`ipa.instances_from_id_map`).
    image_pattern, image_suffix, mask_suffix, mask_subfolder: pairing (`ipa.scan_split`).
    min_instance_pixels: instances with fewer pixels are skipped (counted).
    include_masks, mask_type, num_shards, num_workers, show_progress, overwrite,
      runner_options: see `conversion.convert_jobs`.
    keep_empty_images: write images without a mask (and, with `classes`, images without an
      instance of those classes) as negatives instead of skipping / dropping them.
    scanned: the `prepare(...)` (= `ipa.prepare_inputs`) result when the command line
      already checked the inputs.

  Returns:
    the `conversion.convert_jobs` result dict.

  Raises:
    ConversionError / coco_annotations.ClassesError: a bad option, folder, label map or class
      (one line naming the flag); output_folder.OutputWriteError: writing failed.
  """
  if scanned is None:
    scanned = prepare(input_format, splits, label_map_path, classes, class_name, id_divisor,
                      ignore_values, class_only_regions, image_pattern, image_suffix,
                      mask_suffix, mask_subfolder, min_instance_pixels)
  split_scans, categories, class_map, chosen = scanned
  common = dict(subset=chosen is not None, include_masks=include_masks, mask_type=mask_type,
                min_instance_pixels=min_instance_pixels, keep_empty_images=keep_empty_images)
  if input_format == ipa.INSTANCE_ID_PNG:
    encoder = InstanceIdPngEncoder(class_map, id_divisor=id_divisor,
                                   ignore_values=ignore_values,
                                   class_only_regions=class_only_regions, **common)
    reasons = (ID_PNG_IMAGE_SKIP_REASONS, ID_PNG_INSTANCE_SKIP_REASONS)
  else:
    encoder = MaskFolderEncoder(class_map, flat=bool(class_name), **common)
    reasons = (FOLDER_IMAGE_SKIP_REASONS, FOLDER_INSTANCE_SKIP_REASONS)
  jobs = []
  for (split, image_dir, mask_dir), scan in zip(splits, split_scans):
    jobs.append(conversion.SplitJob(
        split=split, source=mask_dir, image_dir=image_dir, tasks=scan.tasks, encoder=encoder,
        images_total=scan.images_total,
        instances_total=scan.masks_total if input_format == ipa.INSTANCE_MASK_FOLDER else None,
        drop_empty=chosen is not None and not keep_empty_images,
        image_skip_reasons=reasons[0], instance_skip_reasons=reasons[1],
        by_class=chosen is not None))
  inputs = [path for _, image_dir, mask_dir in splits for path in (image_dir, mask_dir)]
  if label_map_path:
    inputs.append(label_map_path)
  return conversion.convert_jobs(
      jobs, output_dir, categories, RECORD_PREFIX, include_masks=include_masks,
      mask_type=mask_type, num_shards=num_shards, num_workers=num_workers,
      show_progress=show_progress, overwrite=overwrite, inputs=inputs, classes=chosen,
      keep_empty_images=keep_empty_images, class_source=CLASS_SOURCE[input_format],
      runner_options=runner_options)


# TF-free: the command line calls it before importing TensorFlow (this module imports it).
prepare = ipa.prepare_inputs
