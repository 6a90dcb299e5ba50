"""The COCO converter never destroys an old output nor writes data that would train wrong.

On real coco128_seg photos: SIGKILL during a conversion leaves the old output complete (every record
read back with tf.data), a re-run replaces it whole (no stale shard of another --num_shards),
foreign output folders are refused, EXIF-rotated photos are written upright (masks compared with
pycocotools' rasterisation on the decoded upright image), and zero-pixel masks, non-finite or
degenerate boxes and bad category ids are dropped and counted, or refused with one line.
"""
import glob
import hashlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image
from pycocotools import coco as coco_api
import pytest
import tensorflow as tf

from object_detection.core import standard_fields as fields
from object_detection.data_decoders import tf_example_decoder
from object_detection.dataset_tools import coco_annotations
from object_detection.dataset_tools import coco_tf_record
from object_detection.dataset_tools import conversion
from object_detection.dataset_tools import output_folder

F = fields.InputDataFields
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, 'dataset_tools', 'create_coco_tf_record.py')
COCO128 = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
COCO128_IMAGES = os.path.join(COCO128, 'images')
TRAIN_JSON = os.path.join(COCO128, 'annotations', 'instances_train.json')
VAL_JSON = os.path.join(COCO128, 'annotations', 'instances_val.json')


def cli(*args):
  return [sys.executable, SCRIPT, '--noprogress'] + list(args)


def run_cli(*args):
  return subprocess.run(cli(*args), capture_output=True, text=True, cwd=REPO_ROOT, check=False)


def count_records(pattern):
  """Reads every record of the matching files with tf.data (raises on a damaged file)."""
  files = sorted(tf.io.gfile.glob(pattern))
  return sum(1 for _ in tf.data.TFRecordDataset(files)), files


def folder_digest(folder):
  out = {}
  for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), 'rb') as fid:
      out[name] = hashlib.sha256(fid.read()).hexdigest()
  return out


def leftovers(output_dir):
  parent, name = os.path.split(output_dir)
  return sorted(n for n in os.listdir(parent) if n.startswith('.%s.' % name))


def decode_all(pattern, label_map_path=None):
  decoder = tf_example_decoder.TfExampleDecoder(
      load_instance_masks=True, instance_mask_type='PNG_MASKS',
      label_map_proto_file=label_map_path)
  dataset = tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern))).map(decoder.decode)
  return {int(d[F.source_id].numpy()): {k: v.numpy() for k, v in d.items()} for d in dataset}


def one_line_error(result, status=2):
  assert result.returncode == status, (result.returncode, result.stderr[-2000:])
  lines = [l for l in result.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
  return lines[0]


def subset_json(tmp_path, image_ids, name='instances.json', source=VAL_JSON, **overrides):
  """A COCO JSON of the sample's images `image_ids` (with their annotations) in tmp_path."""
  with open(source) as fid:
    data = json.load(fid)
  data['images'] = [i for i in data['images'] if i['id'] in image_ids]
  data['annotations'] = [a for a in data['annotations'] if a['image_id'] in image_ids]
  data.update(overrides)
  path = tmp_path / name
  path.write_text(json.dumps(data))
  return str(path), data


# ------------------------------------------------------------------------------------------------
# Atomic output: SIGKILL at several moments, re-runs, foreign folders.


def _kill_when(args, ready, timeout=120.0):
  """Starts the converter, SIGKILLs it once `ready()` is true; returns its return code."""
  proc = subprocess.Popen(cli(*args), cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  deadline = time.time() + timeout
  try:
    while not ready():
      assert proc.poll() is None, 'the conversion finished before the kill moment'
      assert time.time() < deadline, 'kill moment never reached'
      time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
  finally:
    proc.wait()
  return proc.returncode


def test_sigkill_during_conversion_keeps_the_old_output_and_a_rerun_replaces_it(tmp_path):
  out = str(tmp_path / 'records')
  # The previous output (in this process: one TensorFlow start-up less).
  coco_tf_record.convert([('val', COCO128_IMAGES, VAL_JSON)], out, include_masks=True,
                         num_shards=2, show_progress=False)
  old = folder_digest(out)
  assert sorted(old) == ['coco_val.record-00000-of-00002', 'coco_val.record-00001-of-00002',
                         'conversion_summary.txt', 'label_map.pbtxt']
  assert count_records(os.path.join(out, 'coco_val.record-*'))[0] == 25

  both = ['--train_image_dir=' + COCO128_IMAGES, '--train_annotations_file=' + TRAIN_JSON,
          '--val_image_dir=' + COCO128_IMAGES, '--val_annotations_file=' + VAL_JSON,
          '--output_dir=' + out, '--include_masks', '--num_shards=3']
  temp_files = lambda name: glob.glob(os.path.join(str(tmp_path), '.records.tmp-*', name))
  moments = [
      ('first train shard created', lambda: temp_files('coco_train.record-00000-of-00003')),
      ('train written, val being written', lambda: temp_files('coco_val.record-00000-of-00003')),
  ]
  for moment, ready in moments:
    assert _kill_when(both, ready) == -signal.SIGKILL, moment
    # The old output is complete and alone: same bytes, every record readable, and the input
    # glob of the docs matches the old shards only (the temporary folder is hidden beside it).
    assert folder_digest(out) == old, moment
    count, files = count_records(os.path.join(out, 'coco_*.record-*'))
    assert count == 25 and [os.path.basename(f) for f in files] == [
        'coco_val.record-00000-of-00002', 'coco_val.record-00001-of-00002'], moment
    assert len(leftovers(out)) == 1 and leftovers(out)[0].startswith('.records.tmp-'), moment

  # The same command again: the new output replaces the old one whole, leftovers are removed.
  rerun = run_cli(*both)
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  assert 'removed (left by a killed run)' in rerun.stderr
  assert sorted(os.listdir(out)) == (
      ['coco_train.record-0000%d-of-00003' % i for i in range(3)] +
      ['coco_val.record-0000%d-of-00003' % i for i in range(3)] +
      ['conversion_summary.txt', 'label_map.pbtxt'])
  assert count_records(os.path.join(out, 'coco_train.record-*'))[0] == 103
  assert count_records(os.path.join(out, 'coco_val.record-*'))[0] == 25
  assert count_records(os.path.join(out, 'coco_val.record-?????-of-?????'))[0] == 25
  assert leftovers(out) == []
  with open(os.path.join(out, 'conversion_summary.txt')) as fid:
    summary = fid.read()
  assert 'images written:    103 of 103' in summary and summary.strip() in rerun.stdout
  assert os.path.join(out, 'coco_train.record-00000-of-00003') in summary


def _make_old_output(folder, shards=2):
  os.makedirs(folder)
  for i in range(shards):
    with tf.io.TFRecordWriter(os.path.join(folder, 'coco_val.record-%05d-of-%05d' % (
        i, shards))) as writer:
      writer.write(b'old record %d' % i)
  with open(os.path.join(folder, 'label_map.pbtxt'), 'w') as fid:
    fid.write('item { name: "old" id: 1 }\n')


def _dead_pid():
  proc = subprocess.Popen(['true'])
  proc.wait()
  return proc.pid


def test_next_run_puts_back_an_output_set_aside_by_a_run_killed_while_swapping(tmp_path):
  # Where renameat2(RENAME_EXCHANGE) is unavailable, the old folder is renamed aside before the
  # new one is renamed in; a kill between the two leaves no output folder at all.
  out = str(tmp_path / 'records')
  pid = _dead_pid()
  aside = str(tmp_path / ('.records.old-%d-abcd' % pid))
  new = str(tmp_path / ('.records.tmp-%d-ef01' % pid))
  _make_old_output(aside)
  os.makedirs(new)
  (tmp_path / ('.records.tmp-%d-ef01' % pid) / 'coco_val.record-00000-of-00003').write_bytes(b'')
  old = folder_digest(aside)
  done = output_folder.clean_leftovers(out)
  assert folder_digest(out) == old
  assert [os.path.basename(p) for p, _ in done] == [os.path.basename(aside),
                                                    os.path.basename(new)]
  assert leftovers(out) == []


def test_fallback_swap_without_rename_exchange_replaces_every_old_shard(tmp_path, monkeypatch):
  monkeypatch.setattr(output_folder, '_exchange', lambda a, b: False)
  out = str(tmp_path / 'records')
  _make_old_output(out, shards=3)
  annotations, _ = subset_json(tmp_path, {36, 94})
  result = coco_tf_record.convert([('val', COCO128_IMAGES, annotations)], out,
                                  include_masks=True, show_progress=False)
  assert sorted(os.listdir(out)) == ['coco_val.record-00000-of-00001', 'conversion_summary.txt',
                                     'label_map.pbtxt']
  assert count_records(os.path.join(out, 'coco_val.record-*'))[0] == 2
  assert result['splits'][0].output_files == [os.path.join(out, 'coco_val.record-00000-of-00001')]
  assert leftovers(out) == []


def test_failed_write_leaves_the_old_output_and_no_temporary_folder(tmp_path, monkeypatch):
  out = str(tmp_path / 'records')
  _make_old_output(out)
  old = folder_digest(out)
  annotations, _ = subset_json(tmp_path, {36})

  def disk_full(categories, path):
    raise OSError(28, 'No space left on device', path)

  monkeypatch.setattr(conversion, 'write_label_map', disk_full)
  with pytest.raises(output_folder.OutputWriteError,
                     match=r'--output_dir=.*records failed \(\[Errno 28\] No space left on '
                     r'device: .*label_map.pbtxt.*\); the previous output is unchanged'):
    coco_tf_record.convert([('val', COCO128_IMAGES, annotations)], out, show_progress=False)
  assert folder_digest(out) == old
  assert leftovers(out) == []


def test_foreign_output_folder_is_refused_unless_overwrite(tmp_path):
  out = tmp_path / 'records'
  out.mkdir()
  (out / 'notes.txt').write_text('mine')
  (out / 'coco_val.record-00000-of-00001').write_bytes(b'')
  annotations, _ = subset_json(tmp_path, {36})
  line = one_line_error(run_cli('--val_image_dir=' + COCO128_IMAGES,
                                '--val_annotations_file=' + annotations,
                                '--output_dir=' + str(out)))
  assert line == ("Error: --output_dir=%s holds 1 file(s) this converter did not write "
                  "('notes.txt'): give a new or empty folder, or pass --overwrite to replace the "
                  "whole folder (deleting them)." % out)
  assert sorted(os.listdir(out)) == ['coco_val.record-00000-of-00001', 'notes.txt']
  assert leftovers(str(out)) == []
  coco_tf_record.convert([('val', COCO128_IMAGES, annotations)], str(out), show_progress=False,
                         overwrite=True)
  assert sorted(os.listdir(out)) == ['coco_val.record-00000-of-00001', 'conversion_summary.txt',
                                     'label_map.pbtxt']
  assert count_records(str(out / 'coco_val.record-*'))[0] == 1


@pytest.mark.parametrize('where', ['holds_annotations', 'holds_images', 'cwd', 'root'])
def test_output_folders_that_would_delete_inputs_are_refused_even_with_overwrite(tmp_path,
                                                                                where):
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  images, annotations = COCO128_IMAGES, subset_json(data_dir, {36})[0]
  if where == 'holds_images':
    images = str(data_dir / 'images')
    os.mkdir(images)
    shutil.copy(os.path.join(COCO128_IMAGES, '000000000036.jpg'), images)
    annotations = subset_json(tmp_path, {36})[0]
  output = {'holds_annotations': str(data_dir), 'holds_images': str(data_dir),
            'cwd': REPO_ROOT, 'root': '/'}[where]
  before = sorted(os.listdir(str(data_dir)))
  line = one_line_error(run_cli('--val_image_dir=' + images,
                                '--val_annotations_file=' + annotations,
                                '--output_dir=' + output, '--overwrite'))
  if where in ('cwd', 'root'):
    assert line == (
        'Error: --output_dir=%s is the file system root, a folder directly under it, the home '
        'folder or (a parent of) the current folder: the converter replaces the whole output '
        'folder, so give it a folder of its own (e.g. %s).'
        % (output, os.path.join(output, 'coco_records')))
  else:
    input_path = annotations if where == 'holds_annotations' else images
    assert line == ('Error: --output_dir=%s contains the input %s: the converter replaces the '
                    'whole output folder, which would delete it; write the records to another '
                    'folder.' % (output, input_path))
  assert sorted(os.listdir(str(data_dir))) == before
  assert leftovers(str(data_dir)) == []


def test_missing_output_dir_is_a_usage_error():
  line = one_line_error(run_cli('--val_image_dir=' + COCO128_IMAGES,
                                '--val_annotations_file=' + VAL_JSON))
  assert line.startswith('Usage error: --output_dir is not given')


# ------------------------------------------------------------------------------------------------
# EXIF orientation.


def _save_with_orientation(pixels, path, orientation):
  exif = Image.Exif()
  exif[0x0112] = orientation
  pixels.save(path, format='JPEG', quality=95, exif=exif.tobytes())


def test_exif_rotated_photos_are_written_upright(tmp_path):
  images = tmp_path / 'images'
  images.mkdir()
  upright = {}
  for image_id in (36, 94, 133, 144):
    upright[image_id] = Image.open(os.path.join(COCO128_IMAGES, '%012d.jpg' % image_id))
    upright[image_id].load()
  # 36: stored turned 90 degrees counter-clockwise, tag 6 says turn it clockwise to display.
  _save_with_orientation(upright[36].transpose(Image.Transpose.ROTATE_90),
                         str(images / ('%012d.jpg' % 36)), 6)
  # 94: stored upside down, tag 3.
  _save_with_orientation(upright[94].transpose(Image.Transpose.ROTATE_180),
                         str(images / ('%012d.jpg' % 94)), 3)
  # 133: tag 6 on pixels the JSON describes as stored (the annotator saw the stored pixels).
  _save_with_orientation(upright[133], str(images / ('%012d.jpg' % 133)), 6)
  # 144: tag 6, and the JSON size is neither the stored nor the upright size.
  _save_with_orientation(upright[144].transpose(Image.Transpose.ROTATE_90),
                         str(images / ('%012d.jpg' % 144)), 6)
  annotations, data = subset_json(tmp_path, {36, 94, 133, 144})
  data['images'] = [dict(i, height=i['height'] + 1) if i['id'] == 144 else i
                    for i in data['images']]
  with open(annotations, 'w') as fid:
    json.dump(data, fid)

  # What the fix is for: TensorFlow decodes the stored pixels, sideways.
  with open(str(images / ('%012d.jpg' % 36)), 'rb') as fid:
    assert tf.io.decode_jpeg(fid.read()).shape == (481, 640, 3)

  out = str(tmp_path / 'records')
  result = coco_tf_record.convert([('val', str(images), annotations)], out, include_masks=True,
                                  show_progress=False)
  summary = result['splits'][0]
  assert (summary.images_rotated, summary.images_kept_as_stored) == (2, 1)
  assert summary.images_written == 3
  assert summary.skipped_images == [(
      '%012d.jpg' % 144, 'image_size_differs_from_json',
      'file is 480x640 (HxW) upright (EXIF orientation 6; 640x480 as stored), JSON says 481x640')]
  assert summary.skipped['instance_of_skipped_image'] == 3
  text = coco_tf_record.format_summary(result)
  assert 'EXIF orientation: 2 image(s) written upright, 1 kept as stored' in text

  coco = coco_api.COCO(annotations)
  decoded = decode_all(os.path.join(out, 'coco_val.record-*'))
  assert sorted(decoded) == [36, 94, 133]
  for image_id, d in decoded.items():
    info = coco.imgs[image_id]
    assert d[F.image].shape == (info['height'], info['width'], 3)
    # The decoded pixels are the upright photo (up to one JPEG re-encoding at quality 95).
    difference = np.abs(d[F.image].astype(np.float32) -
                        np.asarray(upright[image_id].convert('RGB'), np.float32)).mean()
    assert difference < 4.0, (image_id, difference)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    masks = d[F.groundtruth_instance_masks]
    assert len(anns) > 0 and masks.shape == (len(anns), info['height'], info['width'])
    for mask, ann in zip(masks, anns):
      np.testing.assert_array_equal(mask, coco.annToMask(ann))
  # Rewritten images carry their new bytes' hash and no EXIF tag; the kept one is unchanged.
  for raw in tf.data.TFRecordDataset(os.path.join(out, 'coco_val.record-00000-of-00001')):
    feature = tf.train.Example.FromString(raw.numpy()).features.feature
    encoded = feature['image/encoded'].bytes_list.value[0]
    image_id = int(feature['image/source_id'].bytes_list.value[0])
    assert feature['image/key/sha256'].bytes_list.value[0].decode() == hashlib.sha256(
        encoded).hexdigest()
    assert feature['image/format'].bytes_list.value[0] == b'jpeg'
    orientation = Image.open(io.BytesIO(encoded)).getexif().get(0x0112)
    if image_id == 133:
      assert (orientation, encoded) == (6, (images / ('%012d.jpg' % 133)).read_bytes())
    else:
      assert orientation is None


# ------------------------------------------------------------------------------------------------
# Instances that would train wrong: dropped and counted.


def test_zero_pixel_masks_and_bad_boxes_are_dropped_and_counted(tmp_path):
  annotations, data = subset_json(tmp_path, {71})
  real = [a['id'] for a in data['annotations']]
  info = data['images'][0]
  height, width = info['height'], info['width']
  template = dict(image_id=71, category_id=1, iscrowd=0, area=10.0)
  bad = [
      # Rasterise to 0 pixels.
      dict(template, segmentation=[[100.1, 100.1, 100.3, 100.1, 100.2, 100.3]],
           bbox=[100.1, 100.1, 0.2, 0.2]),
      dict(template, segmentation={'counts': [height * width], 'size': [height, width]},
           bbox=[10.0, 10.0, 5.0, 5.0]),
      # Polygons pycocotools would misread: odd length (last number dropped), 4 numbers (a box).
      dict(template, segmentation=[[10, 10, 60, 10, 60, 60, 10]], bbox=[10.0, 10.0, 50.0, 50.0]),
      dict(template, segmentation=[[10, 10, 60, 60]], bbox=[10.0, 10.0, 50.0, 50.0]),
      # Non-finite boxes.
      dict(template, segmentation=[[10, 10, 60, 10, 60, 60]], bbox=[float('nan'), 10, 50, 50]),
      dict(template, segmentation=[[10, 10, 60, 10, 60, 60]], bbox=[10, 10, float('inf'), 50]),
      # Degenerate boxes.
      dict(template, segmentation=[[10, 10, 60, 10, 60, 60]], bbox=[10, 10, 0, 50]),
      dict(template, segmentation=[[10, 10, 60, 10, 60, 60]], bbox=[10, 10, 50, -3]),
  ]
  for index, ann in enumerate(bad):
    ann['id'] = 100000 + index
  data['annotations'] += bad
  with open(annotations, 'w') as fid:
    json.dump(data, fid)  # NaN and Infinity: Python's json writes and reads them.
  coco = coco_api.COCO(annotations)
  # pycocotools rasterises the first two to nothing and the odd polygon to a shape nobody drew.
  assert coco.annToMask(coco.anns[100000]).sum() == 0
  assert coco.annToMask(coco.anns[100001]).sum() == 0

  out = str(tmp_path / 'records')
  result = coco_tf_record.convert([('val', COCO128_IMAGES, annotations)], out,
                                  include_masks=True, show_progress=False)
  summary = result['splits'][0]
  assert summary.instances_written == len(real) == 16
  assert {k: v for k, v in summary.skipped.items() if v} == {
      'mask_without_pixels': 2, 'unusable_segmentation': 2, 'non_finite_box': 2,
      'empty_box': 2}
  text = coco_tf_record.format_summary(result)
  for reason, count in (('mask_without_pixels', 2), ('unusable_segmentation', 2),
                        ('non_finite_box', 2), ('empty_box', 2)):
    assert '    %-32s %d\n' % (reason, count) in text
  d = decode_all(os.path.join(out, 'coco_val.record-*'))[71]
  assert np.isfinite(d[F.groundtruth_boxes]).all()
  masks = d[F.groundtruth_instance_masks]
  assert masks.shape[0] == 16 and masks.reshape([16, -1]).sum(axis=1).min() > 0
  for mask, ann_id in zip(masks, real):
    np.testing.assert_array_equal(mask, coco.annToMask(coco.anns[ann_id]))


def test_polygon_problem_names_what_is_wrong():
  assert coco_annotations.polygon_problem([[1, 1, 5, 1, 5, 5]]) is None
  assert coco_annotations.polygon_problem({'counts': 'abc', 'size': [2, 2]}) is None
  assert coco_annotations.polygon_problem([[1, 1, 5, 1, 5]]) == (
      'polygon part 0 has an odd number of coordinates (5)')
  assert coco_annotations.polygon_problem([[1, 1, 5, 1, 5, 5], [1, 1, 5, 5]]) == (
      'polygon part 1 has fewer than 3 points')
  assert coco_annotations.polygon_problem([[1, 1, 5, math.nan, 5, 5]]) == (
      'polygon part 0 has a coordinate that is not a finite number')


# ------------------------------------------------------------------------------------------------
# Category ids: refused with one line, exit status 2, nothing written.


@pytest.mark.parametrize('categories,message', [
    ([dict(id=1, name='person'), dict(id=1, name='bicycle')],
     'category id 1 appears twice in "categories" (categories[0] \'person\' and categories[1] '
     '\'bicycle\'): one class would take the other\'s name; remove or renumber one of them.'),
    ([dict(id=0, name='person')],
     'categories[0] (name=\'person\') has id 0, which the TF OD API reserves for the background: '
     'renumber the categories from 1 (and the annotations\' category_id).'),
    ([dict(id=-2, name='person')],
     'categories[0] (name=\'person\') has id -2: category ids must be positive (0 is the '
     'background).'),
    ([dict(id='1', name='person')],
     'categories[0] (name=\'person\') has id=\'1\': category ids must be integers.'),
], ids=['duplicate', 'zero', 'negative', 'string'])
def test_bad_category_ids_are_refused_with_one_line(tmp_path, categories, message):
  annotations, _ = subset_json(tmp_path, {78}, categories=categories)
  with open(annotations) as fid:
    data = json.load(fid)
  data['annotations'] = [dict(a, category_id=categories[0]['id']) for a in data['annotations']]
  with open(annotations, 'w') as fid:
    json.dump(data, fid)
  out = tmp_path / 'records'
  line = one_line_error(run_cli('--val_image_dir=' + COCO128_IMAGES,
                                '--val_annotations_file=' + annotations,
                                '--output_dir=' + str(out)))
  assert line == 'Error: %s: %s' % (annotations, message)
  assert not out.exists() and leftovers(str(out)) == []
