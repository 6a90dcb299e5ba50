"""Writes one split's TFRecord shards from per-image tasks, in worker processes, with progress.

Format-agnostic: a converter describes each image as a *task* (a picklable value built in the main
process: paths, ids, annotation rows) and gives an *encoder*, a picklable object whose
`encode(task)` returns an `EncodedImage` (the serialized `tf.train.Example` or None, and what was
skipped). `write_split` runs the encoder over the tasks (in a fork pool with `num_workers > 1`),
writes the record of task i to shard i % num_shards, in task order, and counts everything.

The same encoders run in Apache Beam workers (`beam_pipeline`), which is why they must not rely on
process globals.
"""
import collections
import multiprocessing
import os
import time

import tensorflow as tf
import tqdm

from object_detection.dataset_tools import coco_images

EncodedImage = collections.namedtuple('EncodedImage', [
    'serialized',     # bytes of the tf.train.Example, or None when the image is skipped
    'labels',         # list of int, the class ids written (one per instance)
    'skipped',        # collections.Counter {skip reason: count}: skipped instances, and the
                      # image's own reason when it is skipped
    'skipped_image',  # None, or (file name, reason, detail)
    'exif',           # None, coco_images.EXIF_ROTATED or coco_images.EXIF_KEPT_AS_STORED
])

WriteResult = collections.namedtuple('WriteResult', [
    'output_files',              # list of str, the shards
    'images_written',            # int
    'instances_written',         # int
    'images_without_instances',  # int, written with zero objects
    'images_dropped_empty',      # int, encoded without an instance and dropped (drop_empty)
    'skipped',                   # collections.Counter {reason: count}
    'skipped_images',            # list of (file name, reason, detail)
    'category_counts',           # dict class id -> instances written
    'exif_outcomes',             # collections.Counter {EXIF outcome: images}
    'seconds',                   # float
])


def skipped_image(name, reason, detail, instances=0, instance_reason=None):
  """The `EncodedImage` of an image that is not written.

  Args:
    name: the image's file name (named in the summary).
    reason, detail: the image's skip reason and a human-readable detail.
    instances: how many of its instances are lost with it, counted under `instance_reason`.
    instance_reason: skip reason for those instances.
  """
  skipped = collections.Counter({reason: 1})
  if instances:
    skipped[instance_reason] += instances
  return EncodedImage(None, [], skipped, (name, reason, detail), None)


def sharded_output_paths(base_path, num_shards):
  """TF OD API shard names: `<base_path>-00000-of-00010`, ..."""
  return ['%s-%05d-of-%05d' % (base_path, idx, num_shards) for idx in range(num_shards)]


# The encoder of this worker process, set once by `_init_worker` (not pickled per task).
_WORKER_ENCODER = []


def _init_worker(encoder):
  _WORKER_ENCODER[:] = [encoder]


def _encode_in_worker(task):
  return _WORKER_ENCODER[0].encode(task)


def _pool_context():
  # fork: workers inherit the loaded modules (no re-import of TensorFlow per worker). The
  # encoders only use protobuf, numpy, Pillow and pycocotools, never TF ops.
  methods = multiprocessing.get_all_start_methods()
  return multiprocessing.get_context('fork' if 'fork' in methods else None)


def write_split(tasks, encoder, output_path, num_shards=1, num_workers=1, show_progress=True,
                desc='', drop_empty=False):
  """Encodes every task and writes the shards of one split.

  Args:
    tasks: list of picklable per-image tasks.
    encoder: picklable object with `encode(task) -> EncodedImage`.
    output_path: base path of the shards (e.g. `<dir>/coco_train.record`).
    num_shards: number of output files.
    num_workers: processes that encode images (1 = in this process).
    show_progress: show a tqdm bar (images/s) on stderr.
    desc: the progress bar's label.
    drop_empty: drop (and count) images encoded without any instance.

  Returns:
    WriteResult.
  """
  start = time.time()
  skipped = collections.Counter()
  skipped_images = []
  category_counts = collections.Counter()
  exif_outcomes = collections.Counter()
  images_written = instances_written = images_without_instances = dropped_empty = 0

  output_dir = os.path.dirname(output_path)
  if output_dir:
    tf.io.gfile.makedirs(output_dir)
  paths = sharded_output_paths(output_path, num_shards)
  writers = [tf.io.TFRecordWriter(p) for p in paths]
  pool = None
  try:
    if num_workers > 1:
      pool = _pool_context().Pool(num_workers, initializer=_init_worker, initargs=(encoder,))
      results = pool.imap(_encode_in_worker, tasks, chunksize=4)
    else:
      results = map(encoder.encode, tasks)
    progress = tqdm.tqdm(results, total=len(tasks), unit='img', desc=desc,
                         disable=not show_progress, dynamic_ncols=True)
    for index, encoded in enumerate(progress):
      skipped.update(encoded.skipped)
      if encoded.serialized is None:
        skipped_images.append(encoded.skipped_image)
        continue
      if drop_empty and not encoded.labels:
        dropped_empty += 1
        continue
      exif_outcomes[encoded.exif] += 1
      # By task index, not written count: a Beam pipeline, which encodes in any order, then
      # puts every record in the same shard (`beam_pipeline`).
      writers[index % num_shards].write(encoded.serialized)
      images_written += 1
      instances_written += len(encoded.labels)
      category_counts.update(encoded.labels)
      if not encoded.labels:
        images_without_instances += 1
    progress.close()
    if pool is not None:
      pool.close()
  except BaseException:
    if pool is not None:
      pool.terminate()  # Ctrl-C or an error: do not encode the remaining images first.
    raise
  finally:
    if pool is not None:
      pool.join()
    for writer in writers:
      writer.close()
  exif_outcomes.pop(None, None)
  return WriteResult(
      output_files=paths, images_written=images_written, instances_written=instances_written,
      images_without_instances=images_without_instances, images_dropped_empty=dropped_empty,
      skipped=skipped, skipped_images=skipped_images, category_counts=dict(category_counts),
      exif_outcomes=exif_outcomes, seconds=time.time() - start)


EXIF_OUTCOMES = (coco_images.EXIF_ROTATED, coco_images.EXIF_KEPT_AS_STORED)
