"""One conversion, whatever the source format: splits -> shards, label map and summary, atomically.

Each converter (COCO JSON, Open Images, instance-ID PNGs, per-instance PNG folders) turns its
inputs into one `SplitJob` per split (per-image tasks and the encoder that turns a task into a
record) and calls `convert_jobs`, which

  - writes every split's shards, `label_map.pbtxt` and `conversion_summary.txt` into a temporary
    folder beside the output folder and swaps it in whole at the end (`output_folder`): a killed
    or failed run leaves the previous output as it was;
  - encodes in local worker processes (`record_writer.write_split`) or, with `runner_options`, as
    an Apache Beam pipeline (`beam_pipeline.write_split`: DirectRunner, Flink, Spark, Dataflow),
    which writes the same records;
  - counts every image and instance written or skipped, by reason, into one summary.
"""
import collections
import os

import tensorflow as tf

from object_detection.dataset_tools import coco_annotations
from object_detection.dataset_tools import coco_images
from object_detection.dataset_tools import output_folder
from object_detection.dataset_tools import record_writer
from object_detection.dataset_tools import tf_example_builder

ConversionError = coco_annotations.ConversionError

# The encoders' count of instances of classes a --classes subset leaves out (formats whose
# classes are in the mask pixels); reported as "instances of other classes", not as a skip.
SKIP_OTHER_CLASS = 'instance_of_other_class'
LABEL_MAP_NAME = output_folder.LABEL_MAP_NAME
SUMMARY_NAME = output_folder.SUMMARY_NAME

SplitJob = collections.namedtuple('SplitJob', [
    'split',            # one of output_folder.SPLITS
    'source',           # str, the annotations file (or mask folder) named in the summary
    'image_dir',        # str
    'tasks',            # list of picklable per-image tasks
    'encoder',          # picklable, encode(task) -> record_writer.EncodedImage
    'images_total',     # int, images of the source
    'instances_total',  # int, instances of the source, or None when only the encoders can
                        # count them (instance-ID PNGs)
    'drop_empty',       # bool: drop images encoded without an instance (a class subset)
    'instances_other_classes',      # int, instances of classes not chosen (not in tasks)
    'images_without_chosen_class',  # int, images dropped before encoding (no chosen class)
    'image_skip_reasons',     # tuple of str, image skip reasons listed in the summary
    'instance_skip_reasons',  # tuple of str, instance skip reasons listed in the summary
    'by_class',  # bool: a class subset sorts this split's images (its images written without
                 # an instance count as images without a chosen class)
    'source_skipped',  # dict {skip reason: count} found while reading the source, before
                       # encoding (e.g. annotations of an image that is not listed)
], defaults=(False, 0, 0, (), (), False, None))

SplitSummary = collections.namedtuple('SplitSummary', [
    'split',             # 'train' | 'val' | 'test' | 'testdev'
    'annotations_file',  # str, the job's source
    'image_dir',         # str
    'output_files',      # list of str, the shards
    'images_total',      # int, images of the source
    'images_written',    # int
    'images_without_instances',  # int, written with zero objects (kept, as the TF OD API does)
    'instances_total',   # int, instances of the source, or None (see SplitJob)
    'instances_written',  # int
    'skipped',           # dict reason -> count (images and instances), every reason listed
    'skipped_images',    # list of (file_name, reason, detail)
    'categories',        # dict id -> name, the classes written
    'category_counts',   # dict id -> instances written
    'seconds',           # float, conversion time
    'images_rotated',    # int, written upright from their EXIF orientation
    'images_kept_as_stored',  # int, EXIF orientation not applied: the listed size is the stored one
    # With a class subset, else 0:
    'instances_other_classes',  # int, instances of the other classes, not written
    'images_without_chosen_class',  # int, images without a written instance of the chosen
                                    # classes: dropped, or written as negatives (no objects)
                                    # with keep_empty_images
    'image_skip_reasons',     # tuple of str, in summary order
    'instance_skip_reasons',  # tuple of str, in summary order
    'images_encoded',  # int, images read and encoded (the tasks; fewer than images_total with a
                       # class subset)
], defaults=(0, 0, (), (), None))


def check_options(mask_type, num_shards, num_workers):
  """Raises ConversionError (one line) for an invalid --mask_type, --num_shards, --num_workers."""
  if mask_type not in tf_example_builder.MASK_TYPES:
    raise ConversionError('--mask_type must be one of %s, got %r.'
                          % (tf_example_builder.MASK_TYPES, mask_type))
  if num_shards < 1:
    raise ConversionError('--num_shards must be >= 1, got %d.' % num_shards)
  if num_workers < 1:
    raise ConversionError('--num_workers must be >= 1, got %d.' % num_workers)


def record_base_name(record_prefix, split):
  """`<record_prefix>_<split>.record`, e.g. coco_train.record (the TF OD API's COCO names)."""
  if record_prefix not in output_folder.RECORD_PREFIXES or split not in output_folder.SPLITS:
    raise ConversionError('Unknown record name %s_%s (prefixes %s, splits %s).' % (
        record_prefix, split, output_folder.RECORD_PREFIXES, output_folder.SPLITS))
  return '%s_%s.record' % (record_prefix, split)


def write_job(job, output_path, num_shards=1, num_workers=1, show_progress=True, desc=None,
              runner_options=None):
  """Writes one split's shards (in place) and returns its SplitSummary (without categories).

  Args:
    job: SplitJob.
    output_path: base path of the shards.
    num_shards, num_workers, show_progress: see `record_writer.write_split`.
    desc: progress bar label (default: the file name of output_path).
    runner_options: None (local worker processes) or the Beam pipeline options (a list of
      command-line style strings, e.g. ['--runner=DirectRunner', '--direct_num_workers=2']).
  """
  desc = desc or os.path.basename(output_path).replace('.record', '')
  if runner_options is None:
    written = record_writer.write_split(
        job.tasks, job.encoder, output_path, num_shards=num_shards, num_workers=num_workers,
        show_progress=show_progress, desc=desc, drop_empty=job.drop_empty)
  else:
    # pylint: disable=g-import-not-at-top
    from object_detection.dataset_tools import beam_pipeline
    # pylint: enable=g-import-not-at-top
    written = beam_pipeline.write_split(
        job.tasks, job.encoder, output_path, num_shards=num_shards, drop_empty=job.drop_empty,
        pipeline_args=runner_options)
  skipped = collections.Counter({reason: 0 for reason in job.image_skip_reasons +
                                 job.instance_skip_reasons})
  written_skips = collections.Counter(written.skipped)
  # Formats whose class is only known in the encoder (in the mask pixels) count the instances of
  # classes not chosen there; they are the summary's "instances of other classes".
  other_classes = job.instances_other_classes + written_skips.pop(SKIP_OTHER_CLASS, 0)
  skipped.update(written_skips)
  skipped.update(job.source_skipped or {})
  without_class = job.images_without_chosen_class + written.images_dropped_empty
  if job.by_class:
    without_class += written.images_without_instances  # kept as negatives
  return SplitSummary(
      split=job.split, annotations_file=job.source, image_dir=job.image_dir,
      output_files=written.output_files, images_total=job.images_total,
      images_written=written.images_written,
      images_without_instances=written.images_without_instances,
      instances_total=job.instances_total, instances_written=written.instances_written,
      skipped=dict(skipped), skipped_images=list(written.skipped_images), categories={},
      category_counts=dict(written.category_counts), seconds=written.seconds,
      images_rotated=written.exif_outcomes.get(coco_images.EXIF_ROTATED, 0),
      images_kept_as_stored=written.exif_outcomes.get(coco_images.EXIF_KEPT_AS_STORED, 0),
      instances_other_classes=other_classes,
      images_without_chosen_class=without_class,
      image_skip_reasons=tuple(job.image_skip_reasons),
      instance_skip_reasons=tuple(job.instance_skip_reasons), images_encoded=len(job.tasks))


def label_map_text(categories):
  """Returns the TF OD API `StringIntLabelMap` text of {id: name}, sorted by id.

  Each item: `item { name: "person" id: 1 display_name: "person" }` (one field per line).
  """
  # Imported here: importing object_detection.protos compiles the schema on first use.
  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format
  from object_detection.protos import string_int_label_map_pb2
  # pylint: enable=g-import-not-at-top
  label_map = string_int_label_map_pb2.StringIntLabelMap()
  for category_id in sorted(categories):
    item = label_map.item.add()
    item.name = categories[category_id]
    item.id = category_id
    item.display_name = categories[category_id]
  return text_format.MessageToString(label_map)


def write_label_map(categories, path):
  """Writes `label_map_text(categories)` to `path`."""
  with tf.io.gfile.GFile(path, 'w') as fid:
    fid.write(label_map_text(categories))


def convert_jobs(jobs, output_dir, categories, record_prefix, include_masks=False,
                 mask_type='png', num_shards=1, num_workers=1, show_progress=True,
                 overwrite=False, inputs=(), classes=None, keep_empty_images=False,
                 class_source='COCO id', runner_options=None, result_extra=None,
                 summary_formatter=None):
  """Writes every job's split into `output_dir`, replacing it whole at the end.

  Args:
    jobs: list of SplitJob (one per split, distinct splits).
    output_dir: output folder; new, empty, or holding only files a converter writes unless
      `overwrite`.
    categories: dict class id -> name written to label_map.pbtxt (the records' ids).
    record_prefix: one of output_folder.RECORD_PREFIXES ('coco', 'oid', 'instances').
    include_masks, mask_type: recorded in the summary (the encoders write the masks).
    num_shards, num_workers, show_progress: see `record_writer.write_split`.
    overwrite: replace `output_dir` even when it holds other files (they are deleted).
    inputs: the input files and folders (an output folder may not contain one).
    classes: None, or the list of coco_annotations.ClassChoice converted (named in the summary).
    keep_empty_images: with `classes`: images without a chosen class were written as negatives.
    class_source: how the summary names a class's source id ('COCO id', 'Open Images id', ...).
    runner_options: None (local worker processes) or Beam pipeline options (see `write_job`).
    result_extra: a dict of the converter's own keys, added to the result (and so given to
      `summary_formatter`).
    summary_formatter: `f(result, max_images_listed=None) -> str`, the text of
      conversion_summary.txt; default `format_summary` (a converter whose records are not
      instance masks, e.g. semantic label maps, words it its own way).

  Returns:
    dict with `splits` (list of SplitSummary, output_files under `output_dir`),
    `label_map_path`, `summary_path`, `categories`, `include_masks`, `mask_type`,
    `instances_written` (int, summed over splits), `classes`, `keep_empty_images`,
    `instances_other_classes`, `images_dropped_without_class`, `images_kept_as_negatives`,
    `class_source`, `runner` (None or the Beam options).

  Raises:
    ConversionError: bad option values or an output folder that may not be replaced.
    output_folder.OutputWriteError: writing or swapping in the new output failed; `output_dir`
      is unchanged.
  """
  check_options(mask_type, num_shards, num_workers)
  output_folder.check_output_dir(output_dir, overwrite, inputs)
  with output_folder.Replacement(output_dir, overwrite, inputs) as out:
    summaries = []
    try:
      for job in jobs:
        summary = write_job(
            job, os.path.join(out.temp_dir, record_base_name(record_prefix, job.split)),
            num_shards=num_shards, num_workers=num_workers, show_progress=show_progress,
            desc='%s_%s' % (record_prefix, job.split), runner_options=runner_options)
        # The summary names the files where they will be, not where they are being written.
        summaries.append(summary._replace(
            categories=dict(categories),
            output_files=[os.path.join(output_dir, os.path.basename(p))
                          for p in summary.output_files]))
      write_label_map(categories, os.path.join(out.temp_dir, LABEL_MAP_NAME))
      without_class = sum(s.images_without_chosen_class for s in summaries)
      result = {'splits': summaries, 'label_map_path': os.path.join(output_dir, LABEL_MAP_NAME),
                'summary_path': os.path.join(output_dir, SUMMARY_NAME),
                'categories': categories, 'include_masks': include_masks,
                'mask_type': mask_type,
                'instances_written': sum(s.instances_written for s in summaries),
                'classes': classes, 'keep_empty_images': bool(keep_empty_images),
                'instances_other_classes': sum(s.instances_other_classes for s in summaries),
                'images_dropped_without_class': 0 if keep_empty_images else without_class,
                'images_kept_as_negatives': without_class if keep_empty_images else 0,
                'class_source': class_source, 'runner': runner_options}
      result.update(result_extra or {})
      with open(os.path.join(out.temp_dir, SUMMARY_NAME), 'w') as fid:
        fid.write((summary_formatter or format_summary)(result, max_images_listed=None) + '\n')
    except (OSError, tf.errors.OpError) as e:
      raise output_folder.OutputWriteError(
          'Writing the new output for --output_dir=%s failed (%s); the previous output is '
          'unchanged: free disk space or fix permissions, then run again.'
          % (output_dir, str(e).splitlines()[0] if str(e) else type(e).__name__)) from None
    out.commit()
  return result


def reason_lines(reasons, skipped, width=32):
  """Summary lines 'reason  count': every reason of `reasons` (0 when absent), then the other
  reasons of `skipped` ({reason: count}) sorted."""
  listed = list(reasons) + sorted(r for r in skipped if r not in reasons)
  return ['    %-*s %d' % (width, reason, skipped.get(reason, 0)) for reason in listed]


def skipped_images_lines(split, max_images_listed, summary_path):
  """The skipped images of one SplitSummary, named (at most `max_images_listed`; None: all), then
  '... and N more (all named in <summary_path>)'."""
  listed = (split.skipped_images if max_images_listed is None
            else split.skipped_images[:max_images_listed])
  lines = ['      %s: %s (%s)' % (filename, reason, detail) for filename, reason, detail in listed]
  if len(listed) < len(split.skipped_images):
    lines.append('      ... and %d more (all named in %s)' % (
        len(split.skipped_images) - len(listed), summary_path))
  return lines


def output_lines(split):
  """The 'output:' and 'time:' lines of one SplitSummary."""
  encoded = split.images_total if split.images_encoded is None else split.images_encoded
  return ['  output: %s' % (split.output_files[0] if len(split.output_files) == 1 else
                            '%s ... (%d shards)' % (split.output_files[0],
                                                    len(split.output_files))),
          '  time: %.1f s (%.1f images/s, %d images read)' % (
              split.seconds, encoded / split.seconds if split.seconds > 0 else 0.0, encoded)]


# Skipped images named per split in the printed summary (conversion_summary.txt names them all):
# a partial Open Images download can miss hundreds of thousands of images.
MAX_IMAGES_LISTED = 20


def format_summary(result, max_images_listed=MAX_IMAGES_LISTED):
  """Returns the human-readable summary printed at the end of a conversion.

  Args:
    result: the dict `convert_jobs` returns.
    max_images_listed: skipped images named per split (then `... and N more`); None: all.
  """
  lines = []
  chosen = result.get('classes')
  class_source = result.get('class_source', 'COCO id')
  if chosen:
    lines.append('classes (--classes): %s' % ', '.join(
        '%s (%s %s) -> %d' % (c.name, class_source, c.source_id, c.id) for c in chosen))
  if result.get('runner'):
    lines.append('Apache Beam pipeline: %s' % ' '.join(result['runner']))
  for s in result['splits']:
    image_reasons = s.image_skip_reasons
    instance_reasons = s.instance_skip_reasons
    lines.append('[%s] %s' % (s.split, s.annotations_file))
    lines.append('  images written:    %d of %d (%d with no instances, kept)' % (
        s.images_written, s.images_total, s.images_without_instances))
    if s.instances_total is None:
      # Instance-ID PNGs: the instances are only known once the encoders decoded the masks.
      found = s.instances_written + s.instances_other_classes + sum(
          n for r, n in s.skipped.items() if r not in image_reasons)
      lines.append('  instances written: %d of %d found in the masks of the images read'
                   % (s.instances_written, found))
    else:
      lines.append('  instances written: %d of %d' % (s.instances_written, s.instances_total))
    if chosen:
      lines.append('  instances of other classes: %d (dropped)' % s.instances_other_classes)
      if result.get('keep_empty_images'):
        lines.append('  images without an instance of the chosen classes: %d (written as '
                     'negatives, no objects: --keep_empty_images)' % s.images_without_chosen_class)
      else:
        lines.append('  images without an instance of the chosen classes: %d (dropped; '
                     '--keep_empty_images writes them as negatives)'
                     % s.images_without_chosen_class)
    lines.append('  classes with instances: %d of %d categories' % (
        len(s.category_counts), len(s.categories)))
    image_skips = {r: n for r, n in s.skipped.items() if r in image_reasons}
    instance_skips = {r: n for r, n in s.skipped.items() if r not in image_reasons}
    lines.append('  skipped images:')
    lines.extend(reason_lines(image_reasons, image_skips))
    lines.extend(skipped_images_lines(s, max_images_listed,
                                      result.get('summary_path', SUMMARY_NAME)))
    lines.append('  skipped instances:')
    lines.extend(reason_lines(instance_reasons, instance_skips))
    lines.append('  EXIF orientation: %d image(s) written upright, %d kept as stored (listed '
                 'size is the stored size)' % (s.images_rotated, s.images_kept_as_stored))
    lines.extend(output_lines(s))
  categories = result['categories']
  lines.append('masks: %s' % ('%s (input reader: load_instance_masks: true, mask_type: %s)' % (
      result['mask_type'], 'PNG_MASKS' if result['mask_type'] == 'png' else 'NUMERICAL_MASKS')
                               if result['include_masks'] else
                               'none (pass --include_masks for Mask R-CNN)'))
  if chosen:
    lines.append('label map: %s lists the %d chosen classes, renumbered 1..%d as above (the '
                 'records carry these ids): the model config needs num_classes: %d.' % (
                     result['label_map_path'], len(chosen), len(chosen), len(chosen)))
  else:
    lines.append('label map: %s lists all %d categories of the source(s), with their ids (stable '
                 'across splits); largest id %d: the model config needs num_classes >= %d.' % (
                     result['label_map_path'], len(categories),
                     max(categories) if categories else 0,
                     max(categories) if categories else 0))
  return '\n'.join(lines)
