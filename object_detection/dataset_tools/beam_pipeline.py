"""Writes one split's records with an Apache Beam pipeline (DirectRunner, Flink, Spark, Dataflow).

The same tasks and encoder as the local path (`record_writer.write_split`), so the same records:
the pipeline is

  Create(enumerated tasks) -> Reshuffle -> Map(encoder.encode) -> records by shard
      -> GroupByKey(shard = task index % num_shards) -> write each shard in task order
                                                   -> counts -> CombineGlobally -> stats file

Shard i holds the records of tasks i, i + num_shards, ... in task order, as in the local path:
the shard files are byte for byte the local run's (`tests/test_beam_pipeline.py`). The counts
(images and instances written, every skip by reason, the skipped images by name) come back
through a small JSON file written beside the shards and removed once read, so the summary is the
local path's.

Needs `pip install -e ".[beam]"` (apache-beam). The pipeline options are Beam's own command-line
flags, e.g. ['--runner=DirectRunner', '--direct_num_workers=2']; with the DirectRunner and more
than one worker, `--direct_running_mode=multi_processing` is added unless a mode is given (the
encoders are CPU-bound Python: threads would share one core).

The tasks (image names and their annotations) travel with the pipeline (`beam.Create`), which
suits COCO-sized datasets (118k images). Workers read the images and mask files with Python's
`open`: on a cluster, the input folders must be on a file system every worker mounts at the same
path; the output folder is written through `tf.io.gfile` (local, or gs:// / hdfs:// where
TensorFlow reads them).
"""
import collections
import json
import os
import time

import tensorflow as tf

from object_detection.dataset_tools import coco_annotations
from object_detection.dataset_tools import converter_flags
from object_detection.dataset_tools import record_writer

_STATS_NAME = '.beam_stats-%s.json'


def _import_beam():
  try:
    import apache_beam as beam  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise coco_annotations.ConversionError(converter_flags.BEAM_MISSING) from None
  return beam


def pipeline_options(pipeline_args):
  """Beam PipelineOptions of `pipeline_args`, with multi_processing for a multi-worker DirectRunner.

  Raises:
    coco_annotations.ConversionError: Beam is not installed, or rejects the options.
  """
  _import_beam()
  # pylint: disable=g-import-not-at-top
  from apache_beam.options import pipeline_options as beam_options
  # pylint: enable=g-import-not-at-top
  args = list(pipeline_args)
  options = beam_options.PipelineOptions(args)
  direct = options.view_as(beam_options.DirectOptions)
  standard = options.view_as(beam_options.StandardOptions)
  if (standard.runner in (None, 'DirectRunner', 'direct') and
      (direct.direct_num_workers or 1) > 1 and
      not any(a.startswith('--direct_running_mode') for a in args)):
    args.append('--direct_running_mode=multi_processing')
    options = beam_options.PipelineOptions(args)
  return options


def _encode(indexed_task, encoder):
  index, task = indexed_task
  return index, encoder.encode(task)


def _shard_key(indexed, num_shards):
  index, encoded = indexed
  return index % num_shards, (index, encoded.serialized)


def _is_written(indexed, drop_empty):
  encoded = indexed[1]
  return encoded.serialized is not None and not (drop_empty and not encoded.labels)


def _write_shard(shard_records, output_path, num_shards):
  """Writes one shard: its records in task order, as the local writer does."""
  shard, indexed_records = shard_records
  path = record_writer.sharded_output_paths(output_path, num_shards)[shard]
  # A temporary name and a rename: a retried bundle rewrites the shard whole.
  temp_path = '%s.tmp-%d' % (path, os.getpid())
  with tf.io.TFRecordWriter(temp_path) as writer:
    for _, serialized in sorted(indexed_records, key=lambda item: item[0]):
      writer.write(serialized)
  tf.io.gfile.rename(temp_path, path, overwrite=True)


def _stats_of(indexed, drop_empty):
  """One image's counts, as the local writer counts them."""
  encoded = indexed[1]
  stats = {'images_written': 0, 'instances_written': 0, 'images_without_instances': 0,
           'images_dropped_empty': 0, 'skipped': dict(encoded.skipped),
           'skipped_images': [], 'category_counts': {}, 'exif_outcomes': {}}
  if encoded.serialized is None:
    stats['skipped_images'] = [list(encoded.skipped_image)]
  elif drop_empty and not encoded.labels:
    stats['images_dropped_empty'] = 1
  else:
    stats['images_written'] = 1
    stats['instances_written'] = len(encoded.labels)
    stats['images_without_instances'] = 0 if encoded.labels else 1
    stats['category_counts'] = dict(collections.Counter(encoded.labels))
    if encoded.exif is not None:
      stats['exif_outcomes'] = {encoded.exif: 1}
  return stats


def _merge_counts(into, other):
  for key, value in other.items():
    into[key] = into.get(key, 0) + value


def merge_stats(all_stats):
  """Sums per-image stats dicts (`_stats_of`) into one."""
  total = {'images_written': 0, 'instances_written': 0, 'images_without_instances': 0,
           'images_dropped_empty': 0, 'skipped': {}, 'skipped_images': [],
           'category_counts': {}, 'exif_outcomes': {}}
  for stats in all_stats:
    for key in ('images_written', 'instances_written', 'images_without_instances',
                'images_dropped_empty'):
      total[key] += stats[key]
    for key in ('skipped', 'category_counts', 'exif_outcomes'):
      _merge_counts(total[key], stats[key])
    total['skipped_images'].extend(stats['skipped_images'])
  return total


def _write_stats(stats, path):
  # JSON turns the int class ids into strings; read_stats turns them back.
  with tf.io.gfile.GFile(path, 'w') as fid:
    fid.write(json.dumps(stats))


def _read_stats(path):
  with tf.io.gfile.GFile(path) as fid:
    stats = json.loads(fid.read())
  stats['category_counts'] = {int(k): v for k, v in stats['category_counts'].items()}
  stats['skipped_images'] = [tuple(s) for s in sorted(stats['skipped_images'])]
  return stats


def write_split(tasks, encoder, output_path, num_shards=1, drop_empty=False, pipeline_args=()):
  """Encodes every task and writes the shards of one split with a Beam pipeline.

  Args:
    tasks: list of picklable per-image tasks.
    encoder: picklable object with `encode(task) -> record_writer.EncodedImage` (no process
      globals: it runs in Beam workers).
    output_path: base path of the shards (`<output_path>-00000-of-0000N`, the TF OD API's names).
    num_shards: number of output files.
    drop_empty: drop (and count) images encoded without any instance.
    pipeline_args: Beam pipeline options as command-line strings.

  Returns:
    record_writer.WriteResult (skipped_images sorted by file name).

  Raises:
    coco_annotations.ConversionError: Beam is not installed or the options are invalid.
  """
  beam = _import_beam()
  options = pipeline_options(pipeline_args)
  start = time.time()
  output_dir = os.path.dirname(output_path)
  if output_dir:
    tf.io.gfile.makedirs(output_dir)
  stats_path = os.path.join(output_dir, _STATS_NAME % os.path.basename(output_path))
  with beam.Pipeline(options=options) as pipeline:
    encoded = (pipeline
               | 'Tasks' >> beam.Create(list(enumerate(tasks)))
               # Spreads the images over the workers (Create emits them from one bundle).
               | 'Spread' >> beam.Reshuffle()
               | 'Encode' >> beam.Map(_encode, encoder))
    _ = (encoded
         | 'Written' >> beam.Filter(_is_written, drop_empty)
         | 'ToShard' >> beam.Map(_shard_key, num_shards)
         | 'GroupShards' >> beam.GroupByKey()
         | 'WriteShards' >> beam.Map(_write_shard, output_path, num_shards))
    _ = (encoded
         | 'Count' >> beam.Map(_stats_of, drop_empty)
         | 'Sum' >> beam.CombineGlobally(merge_stats)
         | 'Stats' >> beam.Map(_write_stats, stats_path))
  stats = _read_stats(stats_path)
  tf.io.gfile.remove(stats_path)
  paths = record_writer.sharded_output_paths(output_path, num_shards)
  for path in paths:
    if not tf.io.gfile.exists(path):  # Beam writes no file for a shard without records.
      with tf.io.TFRecordWriter(path):
        pass
  return record_writer.WriteResult(
      output_files=paths, images_written=stats['images_written'],
      instances_written=stats['instances_written'],
      images_without_instances=stats['images_without_instances'],
      images_dropped_empty=stats['images_dropped_empty'],
      skipped=collections.Counter(stats['skipped']), skipped_images=stats['skipped_images'],
      category_counts=stats['category_counts'],
      exif_outcomes=collections.Counter(stats['exif_outcomes']),
      seconds=time.time() - start)
