"""Converter throughput: dataset_tools/create_coco_tf_record.py on coco128_seg (train + val).

Runs the converter (--include_masks, PNG masks, one shard per split) with each --num_workers
value, --repeats times, and reports per setting the median of
  convert images/s  images / the converter's own per-split conversion time (its summary's
                    `time: X s` lines: reading + encoding + writing, without process start-up),
  wall images/s     images / the whole command's wall time (Python + TF import included).

Usage:
  python benchmarks/data_tools.py [--workers 1 2] [--repeats 3] [--output_json out.json]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # pylint: disable=g-import-not-at-top,wrong-import-position

NUM_IMAGES = {'train': 103, 'val': 25}


def convert_once(num_workers, output_dir):
  """One converter run; returns (wall seconds, conversion seconds, images)."""
  args = [sys.executable, os.path.join(common.REPO_ROOT, 'dataset_tools', 'create_coco_tf_record.py'),
          '--output_dir=' + output_dir, '--include_masks', '--mask_type=png',
          '--num_workers=%d' % num_workers, '--noprogress']
  for split in ('train', 'val'):
    args += ['--%s_image_dir=%s' % (split, os.path.join(common.COCO128_DIR, 'images')),
             '--%s_annotations_file=%s' % (split, os.path.join(
                 common.COCO128_DIR, 'annotations', 'instances_%s.json' % split))]
  start = time.perf_counter()
  out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=common.REPO_ROOT)
  wall = time.perf_counter() - start
  convert = sum(float(s) for s in re.findall(r'^\s*time: ([0-9.]+) s', out.stdout, re.M))
  return wall, convert, sum(NUM_IMAGES.values())


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workers', type=int, nargs='+', default=[1, 2])
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--output_json', default='')
  args = parser.parse_args()
  results = []
  tmp = tempfile.mkdtemp(prefix='bench_data_tools_')
  try:
    for workers in args.workers:
      walls, converts = [], []
      for i in range(args.repeats):
        out_dir = os.path.join(tmp, 'w%d_%d' % (workers, i))
        wall, convert, images = convert_once(workers, out_dir)
        walls.append(wall)
        converts.append(convert)
        shutil.rmtree(out_dir, ignore_errors=True)
      result = {'num_workers': workers, 'images': images, 'repeats': args.repeats,
                'wall_seconds': float(np.median(walls)),
                'convert_seconds': float(np.median(converts)),
                'wall_images_per_second': images / float(np.median(walls)),
                'convert_images_per_second': (images / float(np.median(converts))
                                              if np.median(converts) > 0 else None)}
      results.append(result)
      print('create_coco_tf_record --num_workers=%d: %s images/s converting, %.1f images/s '
            'wall (%d images, median of %d)' % (
                workers, '%.1f' % result['convert_images_per_second']
                if result['convert_images_per_second'] else '?',
                result['wall_images_per_second'], images, args.repeats))
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  common.write_result(args.output_json, 'data_tools', results=results)


if __name__ == '__main__':
  main()
