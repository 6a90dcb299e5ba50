"""Converts COCO-format instance annotations into sharded TFRecords of `tf.train.Example`.

The logic behind `dataset_tools/create_coco_tf_record.py`. The records carry the TF OD API's
feature keys and dtypes (its `create_coco_tf_record.py`), so the TF OD API reads them and this
repo's `TfExampleDecoder` reads the TF OD API's:

  image/height, image/width            int64
  image/filename                       bytes, the COCO `file_name`
  image/source_id                      bytes, the COCO image id as a decimal string
  image/key/sha256                     bytes, hex sha256 of the encoded image
  image/encoded, image/format          bytes, the image file's bytes unchanged ('jpeg' or 'png'),
                                       or its upright pixels re-encoded when EXIF says to turn
                                       it (see `coco_images`)
  image/object/bbox/{xmin,xmax,ymin,ymax}  float, normalized to [0, 1] by width / height
  image/object/class/text              bytes, category name
  image/object/class/label             int64, COCO category id
  image/object/is_crowd                int64, 0 / 1
  image/object/area                    float, COCO `area` (pixels)
  image/object/mask (--include_masks)  png: one whole-image single-channel PNG per instance,
                                       values 0/1; numerical: float list, N*H*W row-major.

Masks are rasterised exactly as pycocotools' `COCO.annToMask` does (polygons: `frPyObjects` +
`merge`; uncompressed RLE: `frPyObjects`; compressed RLE: as is; then `decode`), so they equal the
masks COCOeval scores against.

Skipped and counted, never silently dropped (see `SplitSummary`): images that cannot be read or
decoded, that are neither JPEG nor PNG, or whose size (stored or EXIF-upright) differs from the
JSON (named in the summary); annotations with a non-finite box (NaN / Inf), an empty box
(w <= 0 or h <= 0), a box outside the image (beyond BOX_TOLERANCE_PX), with --include_masks an
empty or unusable segmentation (odd-length or < 3-point polygons included) or a mask of 0 pixels;
annotations whose image_id is not in `images`. Images turned upright from their EXIF orientation
are counted too.

Class subsets (`convert(..., classes=[...])`, `--classes=person,car`): only the instances of the
chosen categories are written, renumbered 1..K in the order given (class/label = the new id,
class/text = the category name), and the label map lists just those K classes. The other
categories' instances are dropped and counted; images left without a written instance are dropped
and counted, or written as negatives (no objects) with `keep_empty_images`. A split without
annotations (testdev) keeps all its images.

`convert` writes into a temporary folder beside the output folder and swaps it in whole at the
end (`output_folder`): a killed or failed run leaves the previous output as it was. The writing,
worker processes, shards, label map and summary are the ones every converter shares
(`conversion`, `record_writer`, `tf_example_builder`); with `runner_options` the same records are
written by an Apache Beam pipeline (`beam_pipeline`).

Errors (`ConversionError`, a `ConfigError`; the message names the file): a missing annotations
file or image folder, bad JSON, missing keys (`images`, `categories`, an image's id / file_name /
height / width, an annotation's image_id / category_id / bbox), an annotation whose category_id is
not in `categories`, a category id that is 0, negative or listed twice, duplicate image ids, an
output folder that may not be replaced. `output_folder.OutputWriteError` (a RuntimeError) when
writing the new output fails.
"""
import collections
import math
import os

from object_detection.dataset_tools import coco_annotations
from object_detection.dataset_tools import coco_images
from object_detection.dataset_tools import conversion
from object_detection.dataset_tools import output_folder
from object_detection.dataset_tools import record_writer
from object_detection.dataset_tools import tf_example_builder

# Re-exported: callers of the converter library find the whole API in this module.
ConversionError = coco_annotations.ConversionError
load_coco_annotations = coco_annotations.load_coco_annotations
ann_to_rle = coco_annotations.ann_to_rle
ann_to_mask = coco_annotations.ann_to_mask
merge_categories = coco_annotations.merge_categories
resolve_classes = coco_annotations.resolve_classes
ClassChoice = coco_annotations.ClassChoice
SplitSummary = conversion.SplitSummary
format_summary = conversion.format_summary
label_map_text = conversion.label_map_text
write_label_map = conversion.write_label_map
sharded_output_paths = record_writer.sharded_output_paths

MASK_TYPES = tf_example_builder.MASK_TYPES
RECORD_PREFIX = 'coco'

# The TF OD API's output names: <output_dir>/coco_<split>.record-00000-of-00001; the label map and
# the printed summary beside them.
SPLIT_RECORD_NAMES = output_folder.SPLIT_RECORD_NAMES
LABEL_MAP_NAME = output_folder.LABEL_MAP_NAME
SUMMARY_NAME = output_folder.SUMMARY_NAME

# A box may exceed the image by this many pixels (float rounding in exported annotations); it is
# then clipped to the image. The TF OD API skips any box past the border.
BOX_TOLERANCE_PX = 0.01

# Skip reasons, in the order the summary prints them.
SKIP_UNREADABLE_IMAGE = coco_images.SKIP_UNREADABLE_IMAGE
SKIP_UNSUPPORTED_FORMAT = coco_images.SKIP_UNSUPPORTED_FORMAT
SKIP_SIZE_MISMATCH = coco_images.SKIP_SIZE_MISMATCH
SKIP_NON_FINITE_BOX = 'non_finite_box'
SKIP_EMPTY_BOX = 'empty_box'
SKIP_OUTSIDE_BOX = 'box_outside_image'
SKIP_NO_SEGMENTATION = coco_annotations.SKIP_NO_SEGMENTATION
SKIP_BAD_SEGMENTATION = coco_annotations.SKIP_BAD_SEGMENTATION
SKIP_EMPTY_MASK = coco_annotations.SKIP_EMPTY_MASK
SKIP_UNKNOWN_IMAGE = 'image_id_not_in_images'
SKIP_OF_SKIPPED_IMAGE = 'instance_of_skipped_image'
IMAGE_SKIP_REASONS = (SKIP_UNREADABLE_IMAGE, SKIP_UNSUPPORTED_FORMAT, SKIP_SIZE_MISMATCH)
INSTANCE_SKIP_REASONS = (SKIP_NON_FINITE_BOX, SKIP_EMPTY_BOX, SKIP_OUTSIDE_BOX,
                         SKIP_NO_SEGMENTATION, SKIP_BAD_SEGMENTATION, SKIP_EMPTY_MASK,
                         SKIP_UNKNOWN_IMAGE, SKIP_OF_SKIPPED_IMAGE)


# ------------------------------------------------------------------------------------------------
# One image -> one tf.train.Example.


def create_tf_example(image, annotations_list, image_dir, category_index, include_masks=False,
                      mask_type='png'):
  """Converts one COCO image and its annotations into a `tf.train.Example`.

  Same name and record layout as the TF OD API's `create_tf_example` (its category_index maps
  id -> {'name': ...}; here id -> name). See `_create_tf_example` for the arguments.

  Returns:
    (example, skipped, skipped_image): `example` is a tf.train.Example, or None when the image
    is skipped; `skipped` a Counter {skip reason: count} (instances skipped, and the image's own
    reason when it is skipped); `skipped_image` None, or (file_name, reason, detail).
  """
  return _create_tf_example(image, annotations_list, image_dir, category_index, include_masks,
                            mask_type)[:3]


def _finite_or_none(value):
  try:
    value = float(value)
  except (TypeError, ValueError):
    return None
  return value if math.isfinite(value) else None


def _create_tf_example(image, annotations_list, image_dir, category_index, include_masks=False,
                       mask_type='png'):
  """`create_tf_example`, also saying what was done about the image's EXIF orientation.

  Args:
    image: COCO image dict (`id`, `file_name`, `height`, `width`).
    annotations_list: the image's COCO annotation dicts.
    image_dir: folder of the image files.
    category_index: dict category id -> name.
    include_masks: write image/object/mask.
    mask_type: 'png' (one PNG per instance) or 'numerical' (float list N*H*W).

  Returns:
    (example, skipped, skipped_image, exif): the first three as `create_tf_example`'s; `exif` is
    None, coco_images.EXIF_ROTATED or coco_images.EXIF_KEPT_AS_STORED.
  """
  height, width = int(image['height']), int(image['width'])
  filename = str(image['file_name'])
  skipped = collections.Counter()
  try:
    read = coco_images.read_image(os.path.join(image_dir, filename), height, width)
  except coco_images.ImageSkipped as e:
    skipped[e.reason] += 1
    skipped[SKIP_OF_SKIPPED_IMAGE] += len(annotations_list)
    return None, skipped, (filename, e.reason, e.detail), None

  xmin, xmax, ymin, ymax = [], [], [], []
  is_crowd, category_ids, category_names, areas, masks = [], [], [], [], []
  for ann in annotations_list:
    x, y, w, h = [float(v) for v in ann['bbox']]
    if not all(math.isfinite(v) for v in (x, y, w, h)):
      skipped[SKIP_NON_FINITE_BOX] += 1
      continue
    if w <= 0 or h <= 0:
      skipped[SKIP_EMPTY_BOX] += 1
      continue
    tol = BOX_TOLERANCE_PX
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
      skipped[SKIP_OUTSIDE_BOX] += 1
      continue
    mask = None
    if include_masks:
      # An empty mask (tiny polygon, empty RLE) would be a target of all background for a real
      # box: skipped too.
      mask, reason = coco_annotations.annotation_mask(ann, height, width)
      if mask is None:
        skipped[reason] += 1
        continue
    x0, y0 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x1, y1 = min(x + w, float(width)), min(y + h, float(height))
    xmin.append(x0 / width)
    xmax.append(x1 / width)
    ymin.append(y0 / height)
    ymax.append(y1 / height)
    is_crowd.append(int(ann.get('iscrowd', 0)))
    category_id = int(ann['category_id'])
    category_ids.append(category_id)
    category_names.append(category_index[category_id])
    area = _finite_or_none(ann.get('area'))
    if area is not None:
      areas.append(area)
    elif mask is not None:
      areas.append(float(mask.sum()))
    else:
      areas.append(w * h)
    if mask is not None:
      masks.append(mask)

  example = tf_example_builder.build_example(
      read.encoded, read.format, filename, image['id'], height, width, xmin, xmax, ymin, ymax,
      category_ids, category_names, is_crowd, areas,
      masks=masks if include_masks else None, mask_type=mask_type)
  return example, skipped, None, read.exif


class CocoEncoder(object):
  """Encodes one (COCO image dict, its annotations) task; picklable (worker processes, Beam)."""

  def __init__(self, image_dir, category_index, include_masks=False, mask_type='png'):
    self.image_dir = image_dir
    self.category_index = dict(category_index)
    self.include_masks = include_masks
    self.mask_type = mask_type

  def encode(self, task):
    """(image, annotations) -> record_writer.EncodedImage."""
    image, annotations = task
    example, skipped, skipped_image, exif = _create_tf_example(
        image, annotations, self.image_dir, self.category_index, self.include_masks,
        self.mask_type)
    if example is None:
      return record_writer.EncodedImage(None, [], skipped, skipped_image, None)
    labels = list(example.features.feature['image/object/class/label'].int64_list.value)
    return record_writer.EncodedImage(tf_example_builder.serialize(example), labels, skipped,
                                      None, exif)


def _subset_tasks(coco, class_map, keep_all_images):
  """(image, annotations) tasks of a class subset, the annotations renumbered to the new ids.

  Returns:
    (tasks, instances of other classes, images dropped before encoding because no annotation of
    the chosen classes is left; 0 with keep_all_images).
  """
  tasks, other_classes, dropped_images = [], 0, 0
  for image in coco['images']:
    annotations = coco['annotations_by_image'].get(image['id'], [])
    # Shallow copies: the loaded annotations stay as in the file (the caller may reuse them).
    kept = [dict(ann, category_id=class_map[ann['category_id']]) for ann in annotations
            if ann['category_id'] in class_map]
    other_classes += len(annotations) - len(kept)
    if kept or keep_all_images:
      tasks.append((image, kept))
    else:
      dropped_images += 1
  return tasks, other_classes, dropped_images


def split_job(split, annotations_file, image_dir, coco, include_masks=False, mask_type='png',
              classes=None, keep_empty_images=False):
  """The `conversion.SplitJob` of one COCO split.

  Args:
    split: 'train', 'val' or 'testdev'.
    annotations_file, image_dir: the split's inputs.
    coco: the `load_coco_annotations(annotations_file)` result.
    include_masks, mask_type, classes, keep_empty_images: see
      `create_tf_record_from_coco_annotations`.
  """
  categories = coco['categories']
  other_classes = images_without_class = 0
  # Images are sorted out by class only where there are annotations (not in testdev).
  by_class = bool(classes is not None and coco['num_annotations'] and split != 'testdev')
  if classes is None:
    tasks = [(image, coco['annotations_by_image'].get(image['id'], []))
             for image in coco['images']]
  else:
    class_map = {c.source_id: c.id for c in classes}
    categories = {c.id: c.name for c in classes}
    tasks, other_classes, images_without_class = _subset_tasks(
        coco, class_map, keep_all_images=keep_empty_images or not by_class)
  return conversion.SplitJob(
      split=split, source=annotations_file, image_dir=image_dir, tasks=tasks,
      encoder=CocoEncoder(image_dir, categories, include_masks, mask_type),
      images_total=len(coco['images']), instances_total=coco['num_annotations'],
      # Images whose chosen-class instances were all skipped (bad box / mask) are dropped too:
      # an image that shows a chosen class must not become a negative.
      drop_empty=by_class and not keep_empty_images,
      instances_other_classes=other_classes,
      images_without_chosen_class=images_without_class,
      image_skip_reasons=IMAGE_SKIP_REASONS, instance_skip_reasons=INSTANCE_SKIP_REASONS,
      by_class=by_class,
      source_skipped={SKIP_UNKNOWN_IMAGE: coco['unknown_image_annotations']})


def create_tf_record_from_coco_annotations(annotations_file, image_dir, output_path,
                                           include_masks=False, num_shards=1, mask_type='png',
                                           num_workers=1, split='train', show_progress=True,
                                           coco=None, classes=None, keep_empty_images=False,
                                           runner_options=None):
  """Writes one split's TFRecord shards, in place (`convert` makes a whole output atomic).

  Args:
    annotations_file: COCO instances JSON.
    image_dir: folder with the images named by `file_name`.
    output_path: base path of the shards (e.g. `<dir>/coco_train.record`).
    include_masks: write instance masks.
    num_shards: number of output files; image i (in written order) goes to shard i % num_shards.
    mask_type: 'png' or 'numerical'.
    num_workers: processes that read and encode images (1 = in this process).
    split: name used in the progress bar and summary.
    show_progress: show a tqdm bar (images/s) on stderr.
    coco: the `load_coco_annotations(annotations_file)` result when already loaded.
    classes: None (every category, with its JSON id), or the list of `ClassChoice` to keep
      (`resolve_classes`): only their instances are written, with the new ids; an image left
      without a written instance is dropped (counted in images_without_chosen_class) unless
      `keep_empty_images`. A file without annotations (testdev) keeps all its images.
    keep_empty_images: with `classes`, write the images without an instance of those classes
      as negatives (no objects) instead of dropping them.
    runner_options: None (local worker processes) or Beam pipeline options (see
      `conversion.write_job`).

  Returns:
    SplitSummary.

  Raises:
    ConversionError: missing or malformed input (names the file); invalid argument values.
  """
  conversion.check_options(mask_type, num_shards, num_workers)
  if not os.path.isdir(image_dir):
    raise ConversionError('Image folder %s (for %s) does not exist.' % (image_dir,
                                                                         annotations_file))
  if coco is None:
    coco = load_coco_annotations(annotations_file)
  job = split_job(split, annotations_file, image_dir, coco, include_masks, mask_type, classes,
                  keep_empty_images)
  summary = conversion.write_job(job, output_path, num_shards=num_shards,
                                 num_workers=num_workers, show_progress=show_progress,
                                 desc='coco_%s' % split, runner_options=runner_options)
  return summary._replace(categories=job.encoder.category_index)


# ------------------------------------------------------------------------------------------------
# The whole conversion.


def convert(splits, output_dir, include_masks=False, num_shards=1, mask_type='png',
            num_workers=1, show_progress=True, loaded=None, overwrite=False, classes=None,
            keep_empty_images=False, runner_options=None):
  """Converts several splits into `output_dir`, replacing it whole at the end.

  Writes the shards of every split, `label_map.pbtxt` and `conversion_summary.txt` (the text of
  `format_summary`) into a temporary folder beside `output_dir`, then swaps it in as
  `output_dir` in one step (`output_folder.Replacement`): until then `output_dir` keeps its
  previous content, and afterwards no file of an earlier conversion is left in it.

  The label map lists every category of the annotation files (not only those with instances),
  with the JSON's ids, so the ids are the same for every split and match the records'
  image/object/class/label. With `classes` it lists just those K classes, renumbered 1..K in the
  order given (names kept), and the records carry the new ids.

  Args:
    splits: list of (split name in SPLIT_RECORD_NAMES, image_dir, annotations_file).
    output_dir: output folder; new, empty, or holding only files a converter writes unless
      `overwrite`.
    include_masks, num_shards, mask_type, num_workers, show_progress: see
      `create_tf_record_from_coco_annotations`.
    loaded: the `coco_annotations.load_splits(splits)` result when already loaded.
    overwrite: replace `output_dir` even when it holds other files (they are deleted).
    classes: None (every category), or a sequence of category names (str) and/or category ids
      (int, or str of digits) of the annotation files: only those classes are converted (see
      `create_tf_record_from_coco_annotations`), renumbered 1..K in this order.
    keep_empty_images: with `classes`, write the images without an instance of those classes
      as negatives (no objects) instead of dropping them.
    runner_options: None (local worker processes, `num_workers`), or Apache Beam pipeline
      options as command-line strings (e.g. ['--runner=DirectRunner',
      '--direct_num_workers=2']): the same records, written by a Beam pipeline.

  Returns:
    dict with `splits` (list of SplitSummary, output_files under `output_dir`),
    `label_map_path`, `summary_path`, `categories` (id -> name, as in the label map: the new ids
    with `classes`), `include_masks`, `mask_type`, and, summed over the splits:
    `instances_written` (int); with `classes` (else None / 0): `classes` (list of
    `ClassChoice(name, source_id, id)`, in the order given), `keep_empty_images` (bool),
    `instances_other_classes` (int, instances of the other categories, dropped),
    `images_dropped_without_class` (int, images without a written instance of the chosen
    classes that were dropped), `images_kept_as_negatives` (int, such images written with no
    objects, keep_empty_images).

  Raises:
    ConversionError: missing or malformed input, no split given, bad option values, or an output
      folder that may not be replaced (see `output_folder.check_output_dir`);
      coco_annotations.ClassesError (a ConversionError) when `classes` names a class that is not
      in the annotation files, names one twice or is empty, or `keep_empty_images` is given
      without `classes`.
    output_folder.OutputWriteError: writing or swapping in the new output failed; `output_dir`
      is unchanged.
  """
  if not splits:
    raise ConversionError(
        'No split to convert: give --train_image_dir with --train_annotations_file, '
        '--val_image_dir with --val_annotations_file, or --test_image_dir with '
        '--testdev_annotations_file.')
  for split, _, _ in splits:
    if split not in SPLIT_RECORD_NAMES:
      raise ConversionError('Unknown split %r (expected one of %s).'
                            % (split, sorted(SPLIT_RECORD_NAMES)))
  conversion.check_options(mask_type, num_shards, num_workers)
  inputs = [path for _, image_dir, annotations_file in splits
            for path in (image_dir, annotations_file)]
  output_folder.check_output_dir(output_dir, overwrite, inputs)
  if loaded is None:
    # Every input is checked before anything is written, so a bad val file does not fail after
    # the (long) train conversion.
    loaded = coco_annotations.load_splits(splits)
  coco_by_file, categories = loaded
  chosen = None
  if classes is not None:
    chosen = resolve_classes(classes, categories)
    categories = {c.id: c.name for c in chosen}
  elif keep_empty_images:
    raise coco_annotations.ClassesError(
        '--keep_empty_images only applies with --classes (without it every image is written, '
        'with or without instances): remove it or give --classes.')
  jobs = []
  for split, image_dir, annotations_file in splits:
    if not os.path.isdir(image_dir):
      raise ConversionError('Image folder %s (for %s) does not exist.' % (image_dir,
                                                                           annotations_file))
    jobs.append(split_job(split, annotations_file, image_dir, coco_by_file[annotations_file],
                          include_masks, mask_type, chosen, keep_empty_images))
  return conversion.convert_jobs(
      jobs, output_dir, categories, RECORD_PREFIX, include_masks=include_masks,
      mask_type=mask_type, num_shards=num_shards, num_workers=num_workers,
      show_progress=show_progress, overwrite=overwrite, inputs=inputs, classes=chosen,
      keep_empty_images=keep_empty_images, class_source='COCO id',
      runner_options=runner_options)
