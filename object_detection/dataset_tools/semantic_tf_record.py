"""Converts semantic segmentation data (Common Semantic Segmentation, COCO) into TFRecords.

The logic behind `dataset_tools/create_semantic_tf_record.py`. Input formats, pairing, the class
ids, the overlap rule of COCO instances and every skip reason are described in
`semantic_annotations` (TF-free: the command line checks the inputs with it first).

Each record carries the image part of the TF OD API keys (`tf_example_builder.build_example`
with no objects: image/height, image/width, image/filename, image/source_id, image/key/sha256,
image/encoded, image/format, and empty image/object/* lists) plus the label mask under the keys
of TF models' DeepLab `build_data.py`:

  image/segmentation/class/encoded   bytes: single-channel 8-bit PNG of the image's size, one
                                     class id per pixel (0 = background, 1..K the label map's
                                     classes, 255 = ignore)
  image/segmentation/class/format    bytes: 'png'

`object_detection.data_decoders.semantic_decoder` reads them back.

Writing, worker processes, shards, the label map and the skip counts are the shared converter
core's (`conversion.convert_jobs`): the output folder is replaced whole at the end, the shards
are `<output_dir>/semantic_<split>.record-NNNNN-of-NNNNN`, `label_map.pbtxt` lists
`background` (id 0) and the K classes, and with `runner_options` an Apache Beam pipeline writes
the same records. The core counts "instances"; here one counted item is a *class region*: the
pixels of one class in one image (`EncodedImage.labels` = the class ids present). The summary
(`format_semantic_summary`) says so; it replaces the core's text in conversion_summary.txt.
"""
import collections
import os

import numpy as np

from object_detection.dataset_tools import coco_images
from object_detection.dataset_tools import conversion
from object_detection.dataset_tools import record_writer
from object_detection.dataset_tools import semantic_annotations as sa
from object_detection.dataset_tools import tf_example_builder

ConversionError = sa.ConversionError
RECORD_PREFIX = 'semantic'
SEGMENTATION_KEY = 'image/segmentation/class/encoded'
SEGMENTATION_FORMAT_KEY = 'image/segmentation/class/format'
IGNORE_LABEL = sa.IGNORE_LABEL

CSS_IMAGE_SKIP_REASONS = (sa.SKIP_NO_MASK, coco_images.SKIP_UNREADABLE_IMAGE,
                          coco_images.SKIP_UNSUPPORTED_FORMAT, sa.SKIP_UNREADABLE_MASK,
                          sa.SKIP_MASK_COLOURS, sa.SKIP_MASK_SIZE)
CSS_OTHER_REASONS = (sa.UNLISTED_VALUES, sa.MASK_WITHOUT_IMAGE)
COCO_IMAGE_SKIP_REASONS = (coco_images.SKIP_UNREADABLE_IMAGE, coco_images.SKIP_UNSUPPORTED_FORMAT,
                           coco_images.SKIP_SIZE_MISMATCH)
COCO_ANNOTATION_SKIP_REASONS = (sa.SKIP_NO_SEGMENTATION, sa.SKIP_BAD_SEGMENTATION,
                                sa.SKIP_EMPTY_MASK, sa.SKIP_COVERED, sa.SKIP_UNKNOWN_IMAGE,
                                sa.SKIP_OF_SKIPPED_IMAGE)


def build_semantic_example(read, filename, source_id, label_map):
  """The `tf.train.Example` of one image and its label map.

  Args:
    read: coco_images.ImageRead of the image (bytes stored as they are).
    filename, source_id: str, image/filename and image/source_id.
    label_map: uint8 [read.height, read.width] class ids (0 background, 255 ignore).

  Returns:
    tf.train.Example: `tf_example_builder.build_example`'s keys without objects, plus
    SEGMENTATION_KEY (PNG, mode L) and SEGMENTATION_FORMAT_KEY ('png').

  Raises:
    ValueError: label_map is not uint8 of the image's size.
  """
  label_map = np.asarray(label_map)
  if label_map.dtype != np.uint8 or label_map.shape != (read.height, read.width):
    raise ValueError('label_map must be uint8 [%d, %d], got %s %s.'
                     % (read.height, read.width, label_map.dtype, label_map.shape))
  example = tf_example_builder.build_example(
      read.encoded, read.format, filename, source_id, read.height, read.width,
      [], [], [], [], [], [], [], [])
  feature = example.features.feature
  feature[SEGMENTATION_KEY].bytes_list.value.append(
      tf_example_builder.encode_png_mask(label_map))
  feature[SEGMENTATION_FORMAT_KEY].bytes_list.value.append(b'png')
  return example


def _encoded(read, filename, source_id, label_map, skipped):
  present = set(np.unique(label_map).tolist()) - {sa.BACKGROUND_ID, IGNORE_LABEL}
  example = build_semantic_example(read, filename, source_id, label_map)
  return record_writer.EncodedImage(tf_example_builder.serialize(example), sorted(present),
                                    skipped, None, read.exif)


class CssEncoder(object):
  """Encodes a `sa.CssTask`: the image and its mask's values mapped to the output ids.

  Attributes (picklable): value_of (dict source value -> output id), background (source value),
  colours (None or dict (R, G, B) -> source value), chosen (None, or the set of chosen source
  values: the regions of the other listed classes are counted as
  conversion.SKIP_OTHER_CLASS).
  """

  def __init__(self, value_of, background, colours=None, chosen=None):
    self.value_of = dict(value_of)
    self.background = background
    self.colours = None if colours is None else dict(colours)
    self.chosen = None if chosen is None else frozenset(chosen)

  def encode(self, task):
    if task.mask_path is None:
      return record_writer.skipped_image(task.filename, sa.SKIP_NO_MASK, 'no mask .png of that '
                                         'name in the mask folder')
    try:
      read = coco_images.read_image(task.image_path)
    except coco_images.ImageSkipped as e:
      return record_writer.skipped_image(task.filename, e.reason, e.detail)
    try:
      values, _ = sa.read_css_mask(task.mask_path, self.colours)
    except sa.MaskSkipped as e:
      return record_writer.skipped_image(task.filename, e.reason, e.detail)
    if values.shape != (read.height, read.width):
      upright = ' upright (EXIF orientation applied)' if read.exif else ''
      return record_writer.skipped_image(
          task.filename, sa.SKIP_MASK_SIZE, '%s is %dx%d (HxW), the image%s %dx%d' % (
              task.mask_path, values.shape[0], values.shape[1], upright, read.height,
              read.width))
    label_map, present, unlisted = sa.map_values(values, self.value_of)
    skipped = collections.Counter()
    if unlisted:
      skipped[sa.UNLISTED_VALUES] += 1
    if self.chosen is not None:
      skipped[conversion.SKIP_OTHER_CLASS] += sum(
          1 for v in present
          if v in self.value_of and v != self.background and v not in self.chosen)
    return _encoded(read, task.filename, task.source_id, label_map, skipped)


class CocoSemanticEncoder(object):
  """Encodes one (COCO image dict, its annotations) task into a record with its label map.

  Attributes (picklable): image_dir, value_of (dict COCO category id -> output id), crowd
  (sa.CROWD_CLASS / sa.CROWD_IGNORE), chosen (None, or the set of chosen COCO ids: the visible
  regions of other categories are counted as conversion.SKIP_OTHER_CLASS).
  """

  def __init__(self, image_dir, value_of, crowd=sa.CROWD_CLASS, chosen=None):
    self.image_dir = image_dir
    self.value_of = dict(value_of)
    self.crowd = crowd
    self.chosen = None if chosen is None else frozenset(chosen)

  def encode(self, task):
    image, annotations = task
    height, width = int(image['height']), int(image['width'])
    filename = str(image['file_name'])
    try:
      read = coco_images.read_image(os.path.join(self.image_dir, filename), height, width)
    except coco_images.ImageSkipped as e:
      return record_writer.skipped_image(filename, e.reason, e.detail, len(annotations),
                                         sa.SKIP_OF_SKIPPED_IMAGE)
    label_map, painted, skipped = sa.paint_coco_label_map(annotations, height, width,
                                                          self.value_of, self.crowd)
    if self.chosen is not None:
      skipped[conversion.SKIP_OTHER_CLASS] += len(
          {c for c, _ in painted if c not in self.chosen})
    return _encoded(read, filename, image['id'], label_map, skipped)


# ------------------------------------------------------------------------------------------------
# One conversion.


def _css_jobs(prepared, keep_empty_images):
  plan = prepared.plan
  chosen = None if plan.chosen is None else {c.source_id for c in plan.chosen}
  jobs = []
  for split in prepared.splits:
    encoder = CssEncoder(plan.value_of, plan.background, split.meta.colours, chosen)
    jobs.append(conversion.SplitJob(
        split=split.split, source=split.meta.path, image_dir=split.image_dir, tasks=split.tasks,
        encoder=encoder, images_total=len(split.tasks), instances_total=None,
        drop_empty=chosen is not None and not keep_empty_images,
        image_skip_reasons=CSS_IMAGE_SKIP_REASONS, instance_skip_reasons=CSS_OTHER_REASONS,
        by_class=chosen is not None,
        source_skipped={sa.MASK_WITHOUT_IMAGE: split.masks_without_image}))
  inputs = [p for s in prepared.splits for p in (s.image_dir, s.mask_dir, s.meta.path)]
  return jobs, inputs


def _coco_jobs(prepared, crowd, keep_empty_images):
  plan = prepared.plan
  chosen = None if plan.chosen is None else {c.source_id for c in plan.chosen}
  jobs, inputs = [], []
  for split, image_dir, annotations_file in prepared.splits:
    if not os.path.isdir(image_dir):
      raise ConversionError('Image folder %s (for %s) does not exist.'
                            % (image_dir, annotations_file))
    coco = prepared.loaded[annotations_file]
    by_class = chosen is not None and bool(coco['num_annotations'])
    tasks, without_class = [], 0
    for image in coco['images']:
      annotations = coco['annotations_by_image'].get(image['id'], [])
      if (by_class and not keep_empty_images and
          not any(a['category_id'] in chosen for a in annotations)):
        without_class += 1  # No pixel of a chosen class: dropped before reading.
        continue
      tasks.append((image, annotations))
    jobs.append(conversion.SplitJob(
        split=split, source=annotations_file, image_dir=image_dir, tasks=tasks,
        encoder=CocoSemanticEncoder(image_dir, plan.value_of, crowd, chosen),
        images_total=len(coco['images']), instances_total=coco['num_annotations'],
        drop_empty=by_class and not keep_empty_images,
        images_without_chosen_class=without_class,
        image_skip_reasons=COCO_IMAGE_SKIP_REASONS,
        instance_skip_reasons=COCO_ANNOTATION_SKIP_REASONS, by_class=by_class,
        source_skipped={sa.SKIP_UNKNOWN_IMAGE: coco['unknown_image_annotations']}))
    inputs.extend([image_dir, annotations_file])
  return jobs, inputs


def convert(input_format, output_dir, dataset_dir='', split_name='train', coco_splits=(),
            classes=None, other_classes=sa.OTHER_BACKGROUND, crowd=sa.CROWD_CLASS,
            num_shards=1, num_workers=1, show_progress=True, overwrite=False,
            keep_empty_images=False, runner_options=None, prepared=None):
  """Converts a semantic segmentation dataset into `output_dir` (replaced whole at the end).

  Args:
    input_format: sa.INPUT_COMMON_SEMANTIC_SEGMENTATION or sa.INPUT_COCO.
    output_dir: output folder (see `conversion.convert_jobs`).
    dataset_dir, split_name: Common Semantic Segmentation root, and the split name of a dataset
      without split folders.
    coco_splits: COCO: list of (split, image_dir, annotations_file), split in train, val,
      test, testdev.
    classes: None (every class), or names / source ids (pixel values, COCO ids) of the classes
      to keep, ids 1..K in this order.
    other_classes: with `classes`: sa.OTHER_BACKGROUND or sa.OTHER_IGNORE.
    crowd: COCO crowd annotations: sa.CROWD_CLASS or sa.CROWD_IGNORE.
    num_shards, num_workers, show_progress, overwrite, runner_options: see
      `conversion.convert_jobs`.
    keep_empty_images: with `classes`: write the images without a pixel of those classes
      (all background / ignore) instead of dropping them.
    prepared: the `sa.prepare_inputs(...)` result when the command line already checked the
      inputs.

  Returns:
    the `conversion.convert_jobs` result dict (one "instance" = one class region), plus
    `semantic` (dict: input_format, crowd, other_classes, ignore_label) and `summary_text`
    (`format_semantic_summary`, also written to conversion_summary.txt).

  Raises:
    ConversionError / coco_annotations.ClassesError: a bad option, folder, file or class (one
      line); output_folder.OutputWriteError: writing failed (the previous output is kept).
  """
  if prepared is None:
    prepared = sa.prepare_inputs(input_format, dataset_dir, split_name, coco_splits, classes,
                                 other_classes, crowd)
  if keep_empty_images and prepared.plan.chosen is None:
    raise sa.ClassesError('--keep_empty_images only applies with --classes (without it every '
                          'image is written): remove it or give --classes.')
  if prepared.input_format == sa.INPUT_COMMON_SEMANTIC_SEGMENTATION:
    jobs, inputs = _css_jobs(prepared, keep_empty_images)
    class_source = 'pixel value'
  else:
    jobs, inputs = _coco_jobs(prepared, crowd, keep_empty_images)
    class_source = 'COCO id'
  result = conversion.convert_jobs(
      jobs, output_dir, prepared.plan.categories, RECORD_PREFIX, include_masks=True,
      mask_type='png', num_shards=num_shards, num_workers=num_workers,
      show_progress=show_progress, overwrite=overwrite, inputs=inputs,
      classes=prepared.plan.chosen, keep_empty_images=keep_empty_images,
      class_source=class_source, runner_options=runner_options,
      result_extra={'semantic': {'input_format': prepared.input_format, 'crowd': crowd,
                                 'other_classes': other_classes,
                                 'ignore_label': IGNORE_LABEL}},
      summary_formatter=format_semantic_summary)
  text = format_semantic_summary(result, max_images_listed=None)
  result['summary_text'] = text
  return result


# ------------------------------------------------------------------------------------------------
# Summary.


def _reason_lines(reasons, counts):
  return conversion.reason_lines(reasons, counts, width=34)


def format_semantic_summary(result, max_images_listed=conversion.MAX_IMAGES_LISTED):
  """The summary printed at the end of a conversion (and written to conversion_summary.txt).

  Args:
    result: the dict `convert` returns.
    max_images_listed: skipped images named per split (then `... and N more`); None: all.
  """
  semantic = result['semantic']
  coco = semantic['input_format'] == sa.INPUT_COCO
  chosen = result.get('classes')
  other = ('background (0)' if semantic['other_classes'] == sa.OTHER_BACKGROUND
           else 'ignore (%d)' % IGNORE_LABEL)
  lines = []
  if chosen:
    lines.append('classes (--classes): %s; other classes -> %s (--other_classes)' % (
        ', '.join('%s (%s %s) -> %d' % (c.name, result['class_source'], c.source_id, c.id)
                  for c in chosen), other))
  if result.get('runner'):
    lines.append('Apache Beam pipeline: %s' % ' '.join(result['runner']))
  num_classes = len(result['categories']) - 1
  for s in result['splits']:
    lines.append('[%s] %s' % (s.split, s.annotations_file))
    lines.append('  images written:    %d of %d (%d with background / ignore pixels only)' % (
        s.images_written, s.images_total, s.images_without_instances))
    lines.append('  class regions written: %d (a region = the pixels of one class in one image; '
                 '%d of %d classes present)' % (s.instances_written, len(s.category_counts),
                                                num_classes))
    if chosen:
      lines.append('  regions of other classes: %d (-> %s)' % (s.instances_other_classes, other))
      lines.append('  images without a pixel of the chosen classes: %d (%s)' % (
          s.images_without_chosen_class,
          'written: --keep_empty_images' if result.get('keep_empty_images') else
          'dropped; --keep_empty_images writes them'))
    image_skips = {r: n for r, n in s.skipped.items() if r in s.image_skip_reasons}
    other_counts = {r: n for r, n in s.skipped.items() if r not in s.image_skip_reasons}
    lines.append('  skipped images:')
    lines.extend(_reason_lines(s.image_skip_reasons, image_skips))
    lines.extend(conversion.skipped_images_lines(s, max_images_listed,
                                                 result.get('summary_path')))
    if coco:
      lines.append('  annotations not painted (of %d):' % (s.instances_total or 0))
    else:
      lines.append('  masks (pixels of values the meta file does not list are written as %d = '
                   'ignore):' % IGNORE_LABEL)
    lines.extend(_reason_lines(s.instance_skip_reasons, other_counts))
    lines.append('  EXIF orientation: %d image(s) written upright, %d kept as stored' % (
        s.images_rotated, s.images_kept_as_stored))
    lines.extend(conversion.output_lines(s))
  rule = ('overlapping instances: the smaller on top; crowd regions: %s' % (
      'their class' if semantic['crowd'] == sa.CROWD_CLASS else 'ignore (%d)' % IGNORE_LABEL)
          if coco else 'mask values mapped through the meta file\'s label map')
  lines.append('label masks: %s (PNG, uint8 class ids, 0 = background, %d = ignore); %s.' % (
      SEGMENTATION_KEY, IGNORE_LABEL, rule))
  lines.append('label map: %s lists background (id 0) and %d classes (ids 1..%d): %d class ids '
               'with the background.' % (result['label_map_path'], num_classes, num_classes,
                                         num_classes + 1))
  return '\n'.join(lines)
