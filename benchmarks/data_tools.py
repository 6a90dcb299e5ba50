"""Converter throughput: every dataset converter on the same coco128_seg photos, local and Beam.

Converters (`--converters`), each on its own copy of the same real photos and masks:
  coco                  create_coco_tf_record.py, coco128_seg train + val (128 images, polygons)
  oid                   create_oid_tf_record.py, an Open Images-format copy of the 103 train
                        images (CSV + one mask PNG per instance at twice the image resolution)
  instance_id_png       create_instance_png_tf_record.py --input_format=instance_id_png, a 16-bit
                        instance-ID PNG per train image with instances (101; class * 100 +
                        instance)
  instance_mask_folder  ... --input_format=instance_mask_folder, a folder of per-instance PNGs
                        per train image with instances (101)
  coco_x10              create_coco_tf_record.py on the train JSON with each image listed 10
                        times (1030 images): start-up weighs less, as on a real dataset
(the copies are written by tests/oid_fixture.py and tests/instance_png_fixture.py).

Settings (`--settings`): `w1`, `w2` (--num_workers 1 / 2, local processes) and `beam2`
(--runner=DirectRunner --direct_num_workers=2, multi_processing: two Beam worker processes).
All with --include_masks, PNG masks, one shard per split; each run --repeats times, reporting the
median of
  convert images/s  images read / the converter's own per-split time (its summary's `time: X s`
                    lines: reading + encoding + writing; for Beam, pipeline and worker start-up
                    included), without the command's Python / TF import;
  wall images/s     images read / the whole command's wall time.

Usage:
  python benchmarks/data_tools.py [--converters coco oid ...] [--settings w1 w2 beam2]
                                  [--repeats 3] [--output_json out.json]
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

TOOLS = os.path.join(common.REPO_ROOT, 'dataset_tools')
CONVERTERS = ('coco', 'oid', 'instance_id_png', 'instance_mask_folder', 'coco_x10')
# coco_x10: the train JSON with every image listed 10 times (new ids, same files): 1030 images, so
# that worker / pipeline start-up weighs less, as on a real dataset.
REPLICAS = 10
SETTINGS = {'w1': ['--num_workers=1'], 'w2': ['--num_workers=2'],
            'beam2': ['--runner=DirectRunner', '--direct_num_workers=2']}
# A 16-bit PNG holds class * divisor + instance below 65536: COCO ids reach 90, so 100.
ID_DIVISOR = 100


def _train_ids(with_instances=False):
  """The train images' ids; with_instances: only those with an annotation (2 have none)."""
  import json  # pylint: disable=g-import-not-at-top
  with open(os.path.join(common.COCO128_DIR, 'annotations', 'instances_train.json')) as fid:
    data = json.load(fid)
  annotated = {ann['image_id'] for ann in data['annotations']}
  return [image['id'] for image in data['images']
          if not with_instances or image['id'] in annotated]


def build_inputs(converter, folder):
  """Writes the converter's copy of the photos into `folder`; returns its command-line flags."""
  sys.path.insert(0, os.path.join(common.REPO_ROOT, 'tests'))
  # pylint: disable=g-import-not-at-top
  if converter == 'coco':
    flags = []
    for split in ('train', 'val'):
      flags += ['--%s_image_dir=%s' % (split, os.path.join(common.COCO128_DIR, 'images')),
                '--%s_annotations_file=%s' % (split, os.path.join(
                    common.COCO128_DIR, 'annotations', 'instances_%s.json' % split))]
    return os.path.join(TOOLS, 'create_coco_tf_record.py'), flags
  if converter == 'coco_x10':
    import json  # pylint: disable=g-import-not-at-top
    with open(os.path.join(common.COCO128_DIR, 'annotations', 'instances_train.json')) as fid:
      data = json.load(fid)
    images, annotations = [], []
    for replica in range(REPLICAS):
      offset = replica * 10 ** 7
      images += [dict(image, id=image['id'] + offset) for image in data['images']]
      annotations += [dict(ann, id=ann['id'] + offset, image_id=ann['image_id'] + offset)
                      for ann in data['annotations']]
    data.update(images=images, annotations=annotations)
    os.makedirs(folder)
    annotations_file = os.path.join(folder, 'instances_train_x%d.json' % REPLICAS)
    with open(annotations_file, 'w') as fid:
      json.dump(data, fid)
    return os.path.join(TOOLS, 'create_coco_tf_record.py'), [
        '--train_image_dir=%s' % os.path.join(common.COCO128_DIR, 'images'),
        '--train_annotations_file=%s' % annotations_file]
  if converter == 'oid':
    import oid_fixture
    built = oid_fixture.build(folder, coco_ids=_train_ids())
    return os.path.join(TOOLS, 'create_oid_tf_record.py'), [
        '--train_annotations_file=%s' % built['csv'],
        '--train_image_dir=%s' % built['image_dir'], '--train_mask_dir=%s' % built['mask_dir'],
        '--class_descriptions_file=%s' % built['descriptions']]
  import instance_png_fixture
  script = os.path.join(TOOLS, 'create_instance_png_tf_record.py')
  if converter == 'instance_id_png':
    instance_png_fixture.ID_DIVISOR = ID_DIVISOR
    image_dir, mask_dir, label_map = instance_png_fixture.build_instance_id_copy(
        folder, image_ids=_train_ids(with_instances=True))
    return script, ['--input_format=instance_id_png', '--train_image_dir=%s' % image_dir,
                    '--train_mask_dir=%s' % mask_dir, '--image_suffix=_leftImg8bit',
                    '--mask_suffix=_gtFine_instanceIds.png', '--label_map_path=%s' % label_map,
                    '--id_divisor=%d' % ID_DIVISOR]
  image_dir, mask_dir = instance_png_fixture.build_mask_folder_copy(
      folder, image_ids=_train_ids(with_instances=True))
  return script, ['--input_format=instance_mask_folder', '--train_image_dir=%s' % image_dir,
                  '--train_mask_dir=%s' % mask_dir]
  # pylint: enable=g-import-not-at-top


def convert_once(script, flags, setting, output_dir):
  """One converter run; returns (wall seconds, conversion seconds, images read)."""
  args = [sys.executable, script, '--output_dir=' + output_dir, '--include_masks',
          '--mask_type=png', '--noprogress'] + flags + SETTINGS[setting]
  start = time.perf_counter()
  out = subprocess.run(args, capture_output=True, text=True, cwd=common.REPO_ROOT, check=False)
  wall = time.perf_counter() - start
  if out.returncode != 0:
    raise RuntimeError('%s failed (exit %d):\n%s' % (' '.join(args), out.returncode,
                                                      out.stderr[-3000:]))
  times = re.findall(r'^\s*time: ([0-9.]+) s \([0-9.]+ images/s, (\d+) images read\)',
                     out.stdout, re.M)
  return wall, sum(float(t) for t, _ in times), sum(int(n) for _, n in times)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--converters', nargs='+', default=list(CONVERTERS), choices=CONVERTERS)
  parser.add_argument('--settings', nargs='+', default=list(SETTINGS), choices=list(SETTINGS))
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--output_json', default='')
  args = parser.parse_args()
  results = []
  tmp = tempfile.mkdtemp(prefix='bench_data_tools_')
  try:
    for converter in args.converters:
      script, flags = build_inputs(converter, os.path.join(tmp, converter))
      for setting in args.settings:
        walls, converts = [], []
        for i in range(args.repeats):
          out_dir = os.path.join(tmp, 'out_%s_%s_%d' % (converter, setting, i))
          wall, convert, images = convert_once(script, flags, setting, out_dir)
          walls.append(wall)
          converts.append(convert)
          shutil.rmtree(out_dir, ignore_errors=True)
        wall, convert = float(np.median(walls)), float(np.median(converts))
        result = {'converter': converter, 'setting': setting,
                  'num_workers': 2 if setting != 'w1' else 1,
                  'beam': setting.startswith('beam'), 'images': images,
                  'repeats': args.repeats, 'wall_seconds': wall, 'convert_seconds': convert,
                  'wall_images_per_second': images / wall,
                  'convert_images_per_second': images / convert if convert > 0 else None}
        results.append(result)
        print('%-21s %-6s %6.1f images/s converting, %5.1f images/s wall (%d images, median '
              'of %d)' % (converter, setting, result['convert_images_per_second'] or 0,
                          result['wall_images_per_second'], images, args.repeats), flush=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  common.write_result(args.output_json, 'data_tools', results=results)


if __name__ == '__main__':
  main()
