"""The converters as an Apache Beam pipeline write the same shard files as the local path.

Real data: coco128_seg val photos (one of them replaced by a corrupt file, so the skip counts
are exercised too), converted with masks into 2 shards by the local writer and by Beam's
DirectRunner; the shard files must be byte for byte the same, and so must the summaries' counts.
The two-worker DirectRunner run (`--direct_num_workers=2`) goes through the command line as a user
types it.
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import COCO128_IMAGES, COCO128_VAL_JSON, REPO_ROOT  # pylint: disable=g-bad-import-order
from object_detection.dataset_tools import beam_pipeline
from object_detection.dataset_tools import coco_annotations
from object_detection.dataset_tools import coco_tf_record

SCRIPT = os.path.join(REPO_ROOT, 'dataset_tools', 'create_coco_tf_record.py')
NUM_IMAGES = 6


def _digests(folder):
  return {os.path.basename(p): hashlib.sha256(open(p, 'rb').read()).hexdigest()
          for p in sorted(glob.glob(os.path.join(folder, 'coco_val.record-*')))}


def _counts(result):
  split = result['splits'][0]
  return (split.images_written, split.instances_written, split.skipped,
          sorted(split.skipped_images), split.category_counts)


@pytest.fixture(scope='module')
def small_val(tmp_path_factory):
  """6 val photos (the 6th a truncated JPEG) and their annotations; the local conversion."""
  root = tmp_path_factory.mktemp('beam')
  with open(COCO128_VAL_JSON) as fid:
    data = json.load(fid)
  data['images'] = data['images'][:NUM_IMAGES]
  ids = {image['id'] for image in data['images']}
  data['annotations'] = [a for a in data['annotations'] if a['image_id'] in ids]
  image_dir = root / 'images'
  image_dir.mkdir()
  for image in data['images'][:-1]:
    shutil.copy(os.path.join(COCO128_IMAGES, image['file_name']), image_dir)
  broken = data['images'][-1]['file_name']
  with open(os.path.join(COCO128_IMAGES, broken), 'rb') as fid:
    (image_dir / broken).write_bytes(fid.read()[:2000])
  annotations = root / 'val.json'
  annotations.write_text(json.dumps(data))
  splits = [('val', str(image_dir), str(annotations))]
  local = coco_tf_record.convert(splits, str(root / 'local'), include_masks=True, num_shards=2,
                                 show_progress=False)
  return root, splits, local


def test_direct_runner_writes_the_local_shards_byte_for_byte(small_val):
  root, splits, local = small_val
  beam = coco_tf_record.convert(splits, str(root / 'beam'), include_masks=True, num_shards=2,
                                show_progress=False, runner_options=['--runner=DirectRunner'])
  local_digests = _digests(str(root / 'local'))
  assert sorted(local_digests) == ['coco_val.record-00000-of-00002',
                                   'coco_val.record-00001-of-00002']
  assert _digests(str(root / 'beam')) == local_digests
  assert _counts(beam) == _counts(local)
  images_written, instances_written, skipped, skipped_images, _ = _counts(beam)
  assert images_written == NUM_IMAGES - 1
  assert skipped[coco_tf_record.SKIP_UNREADABLE_IMAGE] == 1
  broken = os.path.basename(json.load(open(splits[0][2]))['images'][-1]['file_name'])
  assert [s[:2] for s in skipped_images] == [(broken, coco_tf_record.SKIP_UNREADABLE_IMAGE)]
  assert instances_written > 10
  # Only the converter's files are left: no Beam temporary or stats file.
  assert sorted(os.listdir(root / 'beam')) == sorted(os.listdir(root / 'local'))
  with open(os.path.join(root / 'beam', 'conversion_summary.txt')) as fid:
    assert 'Apache Beam pipeline: --runner=DirectRunner' in fid.read()


def test_class_subset_through_beam_equals_local(small_val, tmp_path):
  _, splits, _ = small_val
  kwargs = dict(include_masks=True, num_shards=3, show_progress=False, classes=['person', 'car'],
                mask_type='numerical')
  local = coco_tf_record.convert(splits, str(tmp_path / 'local'), **kwargs)
  beam = coco_tf_record.convert(splits, str(tmp_path / 'beam'),
                                runner_options=['--runner=DirectRunner'], **kwargs)
  assert _digests(str(tmp_path / 'beam')) == _digests(str(tmp_path / 'local'))
  assert _counts(beam) == _counts(local)
  assert (beam['images_dropped_without_class'] == local['images_dropped_without_class'] > 0)


@pytest.mark.slow
def test_cli_two_worker_direct_runner(small_val, tmp_path):
  """`--runner=DirectRunner --direct_num_workers=2` from the command line: the same shards."""
  root, splits, _ = small_val
  _, image_dir, annotations = splits[0]
  out = str(tmp_path / 'records')
  result = subprocess.run(
      [sys.executable, SCRIPT, '--val_image_dir=%s' % image_dir,
       '--val_annotations_file=%s' % annotations, '--output_dir=%s' % out, '--include_masks',
       '--num_shards=2', '--noprogress', '--runner=DirectRunner', '--direct_num_workers=2',
       # Threads: two worker processes would each import TensorFlow (about 15 s of CI); the
       # multi_processing mode (the default for 2 workers) wrote the same bytes when checked by
       # hand and runs in benchmarks/data_tools.py.
       '--direct_running_mode=multi_threading'],
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert _digests(out) == _digests(str(root / 'local'))
  assert 'Apache Beam pipeline: --runner=DirectRunner --direct_num_workers=2' in result.stdout
  assert 'images written:    %d of %d' % (NUM_IMAGES - 1, NUM_IMAGES) in result.stdout


def test_beam_options_without_runner_and_missing_beam(small_val, tmp_path, monkeypatch):
  _, image_dir, annotations = small_val[1][0]
  result = subprocess.run(
      [sys.executable, SCRIPT, '--val_image_dir=%s' % image_dir,
       '--val_annotations_file=%s' % annotations, '--output_dir=%s' % (tmp_path / 'x'),
       '--direct_num_workers=2'], capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      'Error: Unknown flag(s) --direct_num_workers=2: see --help (Apache Beam pipeline options '
      'such as --direct_num_workers need --runner, e.g. --runner=DirectRunner).']
  assert not os.path.exists(tmp_path / 'x')

  real_import = __import__

  def no_beam(name, *args, **kwargs):
    if name == 'apache_beam' or name.startswith('apache_beam.'):
      raise ImportError('No module named apache_beam')
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr('builtins.__import__', no_beam)
  with pytest.raises(coco_annotations.ConversionError, match=r'--runner needs Apache Beam: run '
                     r'`pip install -e "\.\[beam\]"`'):
    beam_pipeline.pipeline_options(['--runner=DirectRunner'])


def _all_digests(folder, prefix):
  return {os.path.basename(p): hashlib.sha256(open(p, 'rb').read()).hexdigest()
          for p in sorted(glob.glob(os.path.join(folder, '%s_*.record-*' % prefix)))}


def _convert_both(tmp_path, convert, prefix):
  """Converts with the local writer and with Beam; returns both results after comparing files."""
  local = convert(str(tmp_path / 'local'), None)
  beam = convert(str(tmp_path / 'beam'), ['--runner=DirectRunner'])
  local_digests = _all_digests(str(tmp_path / 'local'), prefix)
  assert len(local_digests) == 2
  assert _all_digests(str(tmp_path / 'beam'), prefix) == local_digests
  assert _counts(beam) == _counts(local)
  return local, beam


def test_open_images_converter_through_beam_equals_local(tmp_path):
  import oid_fixture  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import oid_tf_record  # pylint: disable=g-import-not-at-top
  data = oid_fixture.build(str(tmp_path / 'oid'))
  splits = [('train', data['csv'], data['image_dir'], data['mask_dir'])]
  local, _ = _convert_both(tmp_path, lambda out, runner: oid_tf_record.convert(
      splits, data['descriptions'], out, include_masks=True, num_shards=2, show_progress=False,
      runner_options=runner), 'oid')
  assert local['splits'][0].instances_written == len(data['instances'])


@pytest.mark.parametrize('input_format', ['instance_id_png', 'instance_mask_folder'])
def test_instance_png_converters_through_beam_equal_local(tmp_path, input_format):
  import instance_png_fixture  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import instance_png_tf_record  # pylint: disable=g-import-not-at-top
  kwargs = {}
  if input_format == 'instance_id_png':
    image_dir, mask_dir, label_map = instance_png_fixture.build_instance_id_copy(
        str(tmp_path / 'src'))
    kwargs = dict(label_map_path=label_map, image_suffix='_leftImg8bit',
                  mask_suffix='_gtFine_instanceIds.png')
  else:
    image_dir, mask_dir = instance_png_fixture.build_mask_folder_copy(str(tmp_path / 'src'))
  local, _ = _convert_both(tmp_path, lambda out, runner: instance_png_tf_record.convert(
      input_format, [('train', image_dir, mask_dir)], out, include_masks=True, num_shards=2,
      show_progress=False, runner_options=runner, **kwargs), 'instances')
  assert local['splits'][0].images_written == len(instance_png_fixture.IMAGE_IDS)
  assert local['splits'][0].instances_written > 20
