"""Training input pipeline throughput and peak memory (PNG vs numerical masks).

Converts coco128_seg (train split, or its first --num_images images) to temporary TFRecords with
dataset_tools/create_coco_tf_record.py, once with PNG masks and once with numerical masks, then
runs `inputs.train_input` at 1024 x 1024 (keep_aspect_ratio_resizer min=max=1024,
pad_to_max_dimension) with batch 8, max_number_of_boxes 100 and random_horizontal_flip, and
prints images/s and the peak RSS (resource.getrusage ru_maxrss) of each run. Each run is a
separate child process so the peak RSS of one does not hide the other.

Usage:
  python benchmarks/input_pipeline.py [--num_batches=10] [--num_images=103]
      [--image_size=1024] [--batch_size=8] [--mask_types png numerical]
      [--output_json=results.json]
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import common  # pylint: disable=g-bad-import-order
from common import COCO128_DIR  # pylint: disable=g-bad-import-order
from common import REPO_ROOT  # pylint: disable=g-bad-import-order


def convert(output_dir, mask_type, num_images):
  """Writes train records of the first `num_images` images with the converter script."""
  with open(os.path.join(COCO128_DIR, 'annotations', 'instances_train.json')) as f:
    coco = json.load(f)
  coco['images'] = sorted(coco['images'], key=lambda im: im['id'])[:num_images]
  ids = {im['id'] for im in coco['images']}
  coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in ids]
  os.makedirs(output_dir, exist_ok=True)
  ann_file = os.path.join(output_dir, 'instances_train.json')
  with open(ann_file, 'w') as f:
    json.dump(coco, f)
  subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'dataset_tools',
                                               'create_coco_tf_record.py'),
                  '--output_dir=' + output_dir, '--include_masks', '--mask_type=' + mask_type,
                  '--train_image_dir=' + os.path.join(COCO128_DIR, 'images'),
                  '--train_annotations_file=' + ann_file, '--noprogress'],
                 check=True, stdout=subprocess.DEVNULL, cwd=REPO_ROOT)
  return os.path.join(output_dir, 'coco_train.record*')


def run_child(pattern, mask_type, num_batches, warmup, batch_size, size):
  """Measures one configuration in this process; returns a result dict."""
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from object_detection import inputs  # pylint: disable=g-import-not-at-top
  from object_detection.protos import input_reader_pb2  # pylint: disable=g-import-not-at-top
  from object_detection.protos import model_pb2  # pylint: disable=g-import-not-at-top
  from object_detection.protos import train_pb2  # pylint: disable=g-import-not-at-top

  model_config = text_format.Parse(
      'faster_rcnn { num_classes: 90 image_resizer { keep_aspect_ratio_resizer { '
      'min_dimension: %d max_dimension: %d pad_to_max_dimension: true } } }' % (size, size),
      model_pb2.DetectionModel())
  train_config = text_format.Parse(
      'batch_size: %d max_number_of_boxes: 100 '
      'data_augmentation_options { random_horizontal_flip {} }' % batch_size,
      train_pb2.TrainConfig())
  reader = text_format.Parse(
      'tf_record_input_reader { input_path: "%s" } load_instance_masks: true mask_type: %s '
      'num_epochs: 0 shuffle: true shuffle_buffer_size: 32' % (pattern, mask_type),
      input_reader_pb2.InputReader())
  dataset = inputs.train_input(train_config, reader, model_config)
  iterator = iter(dataset)
  for _ in range(warmup):
    next(iterator)
  start = time.perf_counter()
  for _ in range(num_batches):
    features, labels = next(iterator)
  seconds = time.perf_counter() - start
  del features, labels
  peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux.
  return {'mask_type': mask_type, 'image_size': size, 'batch_size': batch_size,
          'num_batches': num_batches, 'seconds': seconds,
          'images_per_second': num_batches * batch_size / seconds,
          'peak_rss_mb': peak_kb / 1024.}


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--num_batches', type=int, default=10)
  parser.add_argument('--warmup_batches', type=int, default=2)
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--image_size', type=int, default=1024)
  parser.add_argument('--num_images', type=int, default=103,
                      help='first N train images of coco128_seg to convert')
  parser.add_argument('--mask_types', nargs='+', choices=('png', 'numerical'),
                      default=['png', 'numerical'])
  parser.add_argument('--output_json', default='')
  parser.add_argument('--child', nargs=2, metavar=('PATTERN', 'MASK_TYPE'),
                      help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    result = run_child(args.child[0], args.child[1], args.num_batches, args.warmup_batches,
                       args.batch_size, args.image_size)
    print('RESULT ' + json.dumps(result))
    return

  tmp = tempfile.mkdtemp(prefix='bench_input_pipeline_')
  results = []
  try:
    for mask_flag, mask_type in (('png', 'PNG_MASKS'), ('numerical', 'NUMERICAL_MASKS')):
      if mask_flag not in args.mask_types:
        continue
      start = time.perf_counter()
      pattern = convert(os.path.join(tmp, mask_flag), mask_flag, args.num_images)
      convert_seconds = time.perf_counter() - start
      out = subprocess.run(
          [sys.executable, os.path.abspath(__file__), '--child', pattern, mask_type,
           '--num_batches=%d' % args.num_batches, '--warmup_batches=%d' % args.warmup_batches,
           '--batch_size=%d' % args.batch_size, '--image_size=%d' % args.image_size],
          check=True, capture_output=True, text=True, cwd=REPO_ROOT)
      line = [l for l in out.stdout.splitlines() if l.startswith('RESULT ')][-1]
      result = json.loads(line[len('RESULT '):])
      result['convert_seconds'] = convert_seconds
      result['record_megabytes'] = sum(
          os.path.getsize(os.path.join(tmp, mask_flag, f))
          for f in os.listdir(os.path.join(tmp, mask_flag)) if '.record' in f) / 1e6
      results.append(result)
      print('%-16s %dx%d batch %d: %7.2f images/s, peak RSS %7.0f MB, records %6.1f MB'
            % (mask_type, args.image_size, args.image_size, args.batch_size,
               result['images_per_second'], result['peak_rss_mb'], result['record_megabytes']))
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  common.write_result(args.output_json, 'input_pipeline', results=results)


if __name__ == '__main__':
  main()
