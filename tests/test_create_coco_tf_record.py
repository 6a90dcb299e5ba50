"""Tests of dataset_tools/create_coco_tf_record.py on coco128_seg and on synthetic COCO JSON.

The decoded masks are compared pixel for pixel with pycocotools' `COCO.annToMask`.
"""
import hashlib
import io
import json
import os
import re
import subprocess
import sys

from google.protobuf import text_format
import numpy as np
from PIL import Image
from pycocotools import coco as coco_api
from pycocotools import mask as mask_utils
import pytest
import tensorflow as tf

from object_detection.core import standard_fields as fields
from object_detection.data_decoders import tf_example_decoder
from object_detection.dataset_tools import coco_annotations
from object_detection.dataset_tools import coco_tf_record
from object_detection.protos import string_int_label_map_pb2

F = fields.InputDataFields
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, 'dataset_tools', 'create_coco_tf_record.py')
COCO128 = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
COCO128_IMAGES = os.path.join(COCO128, 'images')
TRAIN_JSON = os.path.join(COCO128, 'annotations', 'instances_train.json')
VAL_JSON = os.path.join(COCO128, 'annotations', 'instances_val.json')

# The TF OD API's TfExampleDecoder feature spec (research/object_detection/data_decoders/
# tf_example_decoder.py) for the keys this converter writes: the TF OD API must parse our records.
TF_OD_API_KEYS_TO_FEATURES = {
    'image/encoded': tf.io.FixedLenFeature((), tf.string, default_value=''),
    'image/format': tf.io.FixedLenFeature((), tf.string, default_value='jpeg'),
    'image/filename': tf.io.FixedLenFeature((), tf.string, default_value=''),
    'image/key/sha256': tf.io.FixedLenFeature((), tf.string, default_value=''),
    'image/source_id': tf.io.FixedLenFeature((), tf.string, default_value=''),
    'image/height': tf.io.FixedLenFeature((), tf.int64, default_value=1),
    'image/width': tf.io.FixedLenFeature((), tf.int64, default_value=1),
    'image/object/bbox/xmin': tf.io.VarLenFeature(tf.float32),
    'image/object/bbox/xmax': tf.io.VarLenFeature(tf.float32),
    'image/object/bbox/ymin': tf.io.VarLenFeature(tf.float32),
    'image/object/bbox/ymax': tf.io.VarLenFeature(tf.float32),
    'image/object/class/label': tf.io.VarLenFeature(tf.int64),
    'image/object/class/text': tf.io.VarLenFeature(tf.string),
    'image/object/area': tf.io.VarLenFeature(tf.float32),
    'image/object/is_crowd': tf.io.VarLenFeature(tf.int64),
    'image/object/difficult': tf.io.VarLenFeature(tf.int64),
    'image/object/group_of': tf.io.VarLenFeature(tf.int64),
    'image/object/weight': tf.io.VarLenFeature(tf.float32),
}


def run_cli(*args):
  return subprocess.run([sys.executable, SCRIPT, '--noprogress'] + list(args),
                        capture_output=True, text=True, cwd=REPO_ROOT, check=False)


def read_records(pattern):
  return [r.numpy() for r in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern)))]


def decode_all(pattern, mask_type, label_map_path=None):
  """Decodes every record through tf.data (graph mode, as training does) into numpy dicts."""
  decoder = tf_example_decoder.TfExampleDecoder(
      load_instance_masks=True, instance_mask_type=mask_type,
      label_map_proto_file=label_map_path)
  dataset = tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern))).map(decoder.decode)
  return [{k: v.numpy() for k, v in out.items()} for out in dataset]


def assert_records_match_coco(decoded, annotations_file, image_dir):
  """Every record equals the COCO JSON: boxes, classes, areas, crowd flags and masks."""
  coco = coco_api.COCO(annotations_file)
  assert sorted(int(d[F.source_id]) for d in decoded) == sorted(coco.getImgIds())
  for d in decoded:
    image_id = int(d[F.source_id])
    info = coco.imgs[image_id]
    height, width = info['height'], info['width']
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
    assert d[F.filename].decode() == info['file_name']
    with open(os.path.join(image_dir, info['file_name']), 'rb') as fid:
      assert d[F.key].decode() == hashlib.sha256(fid.read()).hexdigest()
    assert d[F.image].shape == (height, width, 3)
    np.testing.assert_array_equal(d[F.original_image_spatial_shape], [height, width])
    assert d[F.groundtruth_boxes].shape == (len(anns), 4)
    expected_boxes = np.array(
        [[y / height, x / width, (y + h) / height, (x + w) / width]
         for x, y, w, h in (a['bbox'] for a in anns)], np.float64).reshape([-1, 4])
    np.testing.assert_allclose(d[F.groundtruth_boxes], expected_boxes, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(d[F.groundtruth_classes], [a['category_id'] for a in anns])
    np.testing.assert_allclose(d[F.groundtruth_area], [a['area'] for a in anns], rtol=1e-6)
    np.testing.assert_array_equal(d[F.groundtruth_is_crowd],
                                  [bool(a['iscrowd']) for a in anns])
    masks = d[F.groundtruth_instance_masks]
    assert masks.dtype == np.uint8 and masks.shape == (len(anns), height, width)
    for mask, ann in zip(masks, anns):
      np.testing.assert_array_equal(mask, coco.annToMask(ann))
  return coco


# ------------------------------------------------------------------------------------------------
# coco128_seg (real data).


@pytest.fixture(scope='module')
def coco128_png(tmp_path_factory):
  """Both splits, PNG masks, through the command line with 2 worker processes."""
  out = str(tmp_path_factory.mktemp('coco128_png'))
  result = run_cli('--train_image_dir=' + COCO128_IMAGES, '--val_image_dir=' + COCO128_IMAGES,
                   '--train_annotations_file=' + TRAIN_JSON,
                   '--val_annotations_file=' + VAL_JSON, '--output_dir=' + out,
                   '--include_masks', '--num_workers', '2')
  assert result.returncode == 0, result.stderr[-3000:]
  return out, result.stdout


def test_coco128_cli_output_files_and_summary(coco128_png):
  out, stdout = coco128_png
  assert sorted(os.listdir(out)) == ['coco_train.record-00000-of-00001',
                                     'coco_val.record-00000-of-00001', 'conversion_summary.txt',
                                     'label_map.pbtxt']
  with open(os.path.join(out, 'conversion_summary.txt')) as fid:
    assert fid.read().strip() == stdout.strip()
  train, val = stdout.split('[val]')
  assert 'images written:    103 of 103 (2 with no instances, kept)' in train
  assert 'instances written: 817 of 817' in train
  assert 'images written:    25 of 25 (0 with no instances, kept)' in val
  assert 'instances written: 112 of 112' in val
  # Every skip reason is printed, all zero on this clean dataset.
  for reason in coco_tf_record.IMAGE_SKIP_REASONS + coco_tf_record.INSTANCE_SKIP_REASONS:
    assert re.search(r'%s\s+0\n' % reason, train), reason
    assert re.search(r'%s\s+0\n' % reason, val), reason
  assert 'mask_type: PNG_MASKS' in stdout
  # No photo of the sample has an EXIF orientation: every image is stored as it is.
  assert stdout.count('EXIF orientation: 0 image(s) written upright, 0 kept as stored') == 2
  assert 'lists all 80 categories' in stdout
  assert len(read_records(os.path.join(out, 'coco_train.record-*'))) == 103
  assert len(read_records(os.path.join(out, 'coco_val.record-*'))) == 25


@pytest.mark.parametrize('split_json,split', [(TRAIN_JSON, 'train'), (VAL_JSON, 'val')],
                         ids=['train', 'val'])
def test_coco128_png_masks_equal_ann_to_mask(coco128_png, split_json, split):
  out, _ = coco128_png
  decoded = decode_all(os.path.join(out, 'coco_%s.record-*' % split), 'PNG_MASKS',
                       label_map_path=os.path.join(out, 'label_map.pbtxt'))
  coco = assert_records_match_coco(decoded, split_json, COCO128_IMAGES)
  if split == 'train':
    # Images 250 and 508 have no annotations: kept, with zero objects and [0, H, W] masks.
    by_id = {int(d[F.source_id]): d for d in decoded}
    for image_id in (250, 508):
      info = coco.imgs[image_id]
      assert by_id[image_id][F.groundtruth_boxes].shape == (0, 4)
      assert by_id[image_id][F.groundtruth_instance_masks].shape == (
          0, info['height'], info['width'])


def test_coco128_numerical_masks_equal_ann_to_mask(tmp_path):
  # The val split only: numerical masks take 4 bytes per pixel per instance (the train split
  # alone would be 0.9 GB).
  result = coco_tf_record.convert([('val', COCO128_IMAGES, VAL_JSON)], str(tmp_path),
                                  include_masks=True, mask_type='numerical', show_progress=False)
  summary = result['splits'][0]
  assert (summary.images_written, summary.instances_written) == (25, 112)
  assert sum(summary.skipped.values()) == 0
  pattern = str(tmp_path / 'coco_val.record-*')
  assert tf_example_decoder.detect_mask_type(pattern) == 'NUMERICAL_MASKS'
  assert_records_match_coco(decode_all(pattern, 'NUMERICAL_MASKS'), VAL_JSON, COCO128_IMAGES)


def test_coco128_label_map_lists_every_category(coco128_png):
  out, _ = coco128_png
  label_map = string_int_label_map_pb2.StringIntLabelMap()
  with open(os.path.join(out, 'label_map.pbtxt')) as fid:
    text = fid.read()
  text_format.Parse(text, label_map)
  with open(TRAIN_JSON) as fid:
    categories = {c['id']: c['name'] for c in json.load(fid)['categories']}
  assert [(i.id, i.name) for i in label_map.item] == sorted(categories.items())
  assert all(i.display_name == i.name for i in label_map.item)
  assert len(label_map.item) == 80
  assert (label_map.item[0].id, label_map.item[0].name) == (1, 'person')
  assert (label_map.item[-1].id, label_map.item[-1].name) == (90, 'toothbrush')
  assert 'item {\n  name: "person"\n  id: 1\n  display_name: "person"\n}' in text


def test_coco128_records_parse_with_the_tf_od_api_feature_spec(coco128_png):
  out, _ = coco128_png
  spec = dict(TF_OD_API_KEYS_TO_FEATURES)
  spec['image/object/mask'] = tf.io.VarLenFeature(tf.string)  # PNG_MASKS in the TF OD API.
  raw = read_records(os.path.join(out, 'coco_val.record-*'))[0]
  parsed = tf.io.parse_single_example(raw, spec)
  example = tf.train.Example.FromString(raw)
  texts = parsed['image/object/class/text'].values.numpy()
  labels = parsed['image/object/class/label'].values.numpy()
  assert len(texts) == len(labels) == len(parsed['image/object/mask'].values) > 0
  with open(VAL_JSON) as fid:
    names = {c['id']: c['name'] for c in json.load(fid)['categories']}
  assert [t.decode() for t in texts] == [names[int(l)] for l in labels]
  assert parsed['image/format'].numpy() == b'jpeg'
  feature = example.features.feature
  assert feature['image/object/area'].WhichOneof('kind') == 'float_list'
  assert feature['image/object/is_crowd'].WhichOneof('kind') == 'int64_list'
  # The masks are single-channel PNGs holding 0 and 1.
  png = Image.open(io.BytesIO(feature['image/object/mask'].bytes_list.value[0]))
  assert png.format == 'PNG' and png.mode == 'L'
  assert set(np.unique(np.asarray(png))) == {0, 1}


# The Model Garden's converter (official/vision/data/create_coco_tf_record.py) is the TF OD API's
# converter carried over: the same keys and the same mask encoding (frPyObjects, decode, amax, one
# PNG per instance). It runs in a subprocess because importing it defines absl flags.
_MODEL_GARDEN_WRITER = r"""
import json, sys
import tensorflow as tf
from official.vision.data import create_coco_tf_record as mg
annotations_file, image_dir, output = sys.argv[1:]
with open(annotations_file) as fid:
  data = json.load(fid)
names = {c['id']: c['name'] for c in data['categories']}
by_image = {}
for ann in data['annotations']:
  by_image.setdefault(ann['image_id'], []).append(ann)
with tf.io.TFRecordWriter(output) as writer:
  for image in data['images']:
    example, skipped = mg.create_tf_example(
        image, [image_dir], bbox_annotations=by_image.get(image['id'], []),
        id_to_name_map=names, include_masks=True)
    assert skipped == 0
    writer.write(example.SerializeToString())
"""


def test_decoder_reads_records_of_the_model_garden_converter(tmp_path):
  output = str(tmp_path / 'model_garden_val.record')
  result = subprocess.run([sys.executable, '-c', _MODEL_GARDEN_WRITER, VAL_JSON, COCO128_IMAGES,
                           output], capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert tf_example_decoder.validate_records(
      output, load_instance_masks=True, instance_mask_type='PNG_MASKS')[output][
          'mask_type'] == 'PNG_MASKS'
  assert_records_match_coco(decode_all(output, 'PNG_MASKS'), VAL_JSON, COCO128_IMAGES)


# ------------------------------------------------------------------------------------------------
# Synthetic COCO JSON: RLE, multi-part polygons, crowd, skips.

H, W = 40, 60


def _jpeg_bytes(height, width, seed=0):
  out = io.BytesIO()
  rng = np.random.RandomState(seed)
  Image.fromarray(rng.randint(0, 255, (height, width, 3)).astype(np.uint8)).save(
      out, format='JPEG', quality=90)
  return out.getvalue()


def _uncompressed_rle(mask):
  """COCO uncompressed RLE (column-major run lengths, starting with zeros)."""
  flat = np.asarray(mask, np.uint8).ravel(order='F')
  counts, value, run = [], 0, 0
  for pixel in flat:
    if pixel == value:
      run += 1
    else:
      counts.append(run)
      value, run = pixel, 1
  counts.append(run)
  return {'counts': counts, 'size': [int(mask.shape[0]), int(mask.shape[1])]}


def _box_of(mask):
  return [float(v) for v in mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask)))]


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
  """A tiny COCO dataset exercising every annotation form and every skip reason."""
  root = tmp_path_factory.mktemp('synthetic')
  images = root / 'images'
  images.mkdir()
  (images / 'a.jpg').write_bytes(_jpeg_bytes(H, W))
  out = io.BytesIO()
  Image.fromarray(np.full((30, 50, 3), 128, np.uint8)).save(out, format='PNG')
  (images / 'b.png').write_bytes(out.getvalue())
  (images / 'empty.jpg').write_bytes(_jpeg_bytes(20, 20, seed=1))
  (images / 'truncated.jpg').write_bytes(_jpeg_bytes(H, W, seed=2)[:300])
  (images / 'garbage.jpg').write_bytes(b'not an image at all' * 10)
  (images / 'wrong_size.jpg').write_bytes(_jpeg_bytes(10, 10, seed=3))
  Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(str(images / 'c.bmp'), format='BMP')

  crowd_mask = np.zeros((H, W), np.uint8)
  crowd_mask[5:15, 30:50] = 1
  crowd_mask[20:22, 0:60] = 1
  compressed_mask = np.zeros((H, W), np.uint8)
  compressed_mask[25:39, 2:9] = 1
  compressed = mask_utils.encode(np.asfortranarray(compressed_mask))
  compressed['counts'] = compressed['counts'].decode('ascii')
  two_parts = [[2, 2, 12, 2, 12, 10, 2, 10], [20, 20, 28, 20, 28, 30, 20, 30]]
  two_parts_box = _box_of(coco_annotations.ann_to_mask(two_parts, H, W))
  anns = [
      # Kept on a.jpg (in this order): multi-part polygon, crowd uncompressed RLE,
      # compressed RLE without 'area' (computed), a box clipped by < 0.01 px.
      dict(id=1, image_id=1, category_id=1, segmentation=two_parts, bbox=two_parts_box,
           area=float(coco_annotations.ann_to_mask(two_parts, H, W).sum()), iscrowd=0),
      dict(id=2, image_id=1, category_id=3, segmentation=_uncompressed_rle(crowd_mask),
           bbox=_box_of(crowd_mask), area=float(crowd_mask.sum()), iscrowd=1),
      dict(id=3, image_id=1, category_id=3, segmentation=compressed,
           bbox=_box_of(compressed_mask), iscrowd=0),
      dict(id=4, image_id=1, category_id=1, segmentation=[[40, 30, 60, 30, 60, 40, 40, 40]],
           bbox=[40.0, 30.0, 20.005, 10.0], area=200.0, iscrowd=0),
      # Skipped on a.jpg.
      dict(id=5, image_id=1, category_id=1, segmentation=[[1, 1, 5, 1, 5, 5]],
           bbox=[1.0, 1.0, 0.0, 4.0], area=0.0, iscrowd=0),  # empty box
      dict(id=6, image_id=1, category_id=1, segmentation=[[50, 1, 59, 1, 59, 5]],
           bbox=[50.0, 1.0, 20.0, 4.0], area=30.0, iscrowd=0),  # outside (x + w > W)
      dict(id=7, image_id=1, category_id=1, segmentation=[[1, 1, 5, 1, 5, 5]],
           bbox=[-3.0, 1.0, 8.0, 4.0], area=30.0, iscrowd=0),  # outside (x < 0)
      dict(id=8, image_id=1, category_id=1, segmentation=[], bbox=[1.0, 1.0, 4.0, 4.0],
           area=16.0, iscrowd=0),  # no segmentation
      # b.png: one polygon.
      dict(id=9, image_id=2, category_id=3, segmentation=[[5, 5, 40, 5, 40, 25, 5, 25]],
           bbox=[5.0, 5.0, 35.0, 20.0], area=700.0, iscrowd=0),
      # On skipped images.
      dict(id=10, image_id=4, category_id=1, segmentation=[[1, 1, 5, 1, 5, 5]],
           bbox=[1.0, 1.0, 4.0, 4.0], area=8.0, iscrowd=0),
      dict(id=11, image_id=7, category_id=1, segmentation=[[1, 1, 5, 1, 5, 5]],
           bbox=[1.0, 1.0, 4.0, 4.0], area=8.0, iscrowd=0),
      # Unknown image id.
      dict(id=12, image_id=999, category_id=1, segmentation=[[1, 1, 5, 1, 5, 5]],
           bbox=[1.0, 1.0, 4.0, 4.0], area=8.0, iscrowd=0),
  ]
  data = {
      'images': [
          dict(id=1, file_name='a.jpg', height=H, width=W),
          dict(id=2, file_name='b.png', height=30, width=50),
          dict(id=3, file_name='empty.jpg', height=20, width=20),
          dict(id=4, file_name='truncated.jpg', height=H, width=W),
          dict(id=5, file_name='garbage.jpg', height=H, width=W),
          dict(id=6, file_name='missing.jpg', height=H, width=W),
          dict(id=7, file_name='wrong_size.jpg', height=H, width=W),
          dict(id=8, file_name='c.bmp', height=H, width=W),
      ],
      'annotations': anns,
      'categories': [dict(id=1, name='cat'), dict(id=3, name='dog'), dict(id=5, name='bird')],
  }
  json_path = root / 'instances.json'
  json_path.write_text(json.dumps(data))
  return str(images), str(json_path), data


@pytest.mark.parametrize('mask_type', ['png', 'numerical'])
def test_synthetic_counts_skips_and_masks(synthetic, tmp_path, mask_type):
  image_dir, json_path, data = synthetic
  result = coco_tf_record.convert([('train', image_dir, json_path)], str(tmp_path),
                                  include_masks=True, mask_type=mask_type, show_progress=False)
  summary = result['splits'][0]
  assert summary.images_total == 8 and summary.instances_total == 12
  assert summary.images_written == 3  # a.jpg, b.png, empty.jpg (no annotations, kept)
  assert summary.images_without_instances == 1
  assert summary.instances_written == 5
  assert summary.skipped == {
      'unreadable_image': 3, 'unsupported_image_format': 1,
      'image_size_differs_from_json': 1, 'non_finite_box': 0, 'empty_box': 1,
      'box_outside_image': 2, 'empty_or_missing_segmentation': 1, 'unusable_segmentation': 0,
      'mask_without_pixels': 0, 'image_id_not_in_images': 1, 'instance_of_skipped_image': 2}
  skipped_names = {name: reason for name, reason, _ in summary.skipped_images}
  assert skipped_names == {'truncated.jpg': 'unreadable_image',
                           'garbage.jpg': 'unreadable_image',
                           'missing.jpg': 'unreadable_image',
                           'wrong_size.jpg': 'image_size_differs_from_json',
                           'c.bmp': 'unsupported_image_format'}
  assert summary.category_counts == {1: 2, 3: 3}
  text = coco_tf_record.format_summary(result)
  assert 'truncated.jpg: unreadable_image' in text and 'missing.jpg: unreadable_image' in text
  assert 'wrong_size.jpg: image_size_differs_from_json (file is 10x10 (HxW), JSON says 40x60)' \
      in text
  assert re.search(r'box_outside_image\s+2\n', text)
  assert 'images written:    3 of 8 (1 with no instances, kept)' in text
  assert 'instances written: 5 of 12' in text

  decoded = {int(d[F.source_id]): d for d in decode_all(
      str(tmp_path / 'coco_train.record-*'), mask_type, str(tmp_path / 'label_map.pbtxt'))}
  assert sorted(decoded) == [1, 2, 3]
  coco = coco_api.COCO(json_path)
  kept = {1: [1, 2, 3, 4], 2: [9], 3: []}
  for image_id, ann_ids in kept.items():
    d = decoded[image_id]
    anns = coco.loadAnns(ann_ids)
    masks = d[F.groundtruth_instance_masks]
    assert masks.shape[0] == len(anns)
    for mask, ann in zip(masks, anns):
      np.testing.assert_array_equal(mask, coco.annToMask(ann))
    np.testing.assert_array_equal(d[F.groundtruth_classes], [a['category_id'] for a in anns])
    np.testing.assert_array_equal(d[F.groundtruth_is_crowd], [a['iscrowd'] == 1 for a in anns])
  a = decoded[1]
  # The two polygon parts form one mask of two disjoint rectangles.
  assert a[F.groundtruth_instance_masks][0][6, 7] == 1 and a[F.groundtruth_instance_masks][0][
      25, 24] == 1 and a[F.groundtruth_instance_masks][0][15, 15] == 0
  # The compressed-RLE annotation has no 'area': its mask's pixel count is written.
  assert a[F.groundtruth_area][2] == 14 * 7
  # The box 0.005 px past the right border is clipped to the image.
  np.testing.assert_allclose(a[F.groundtruth_boxes][3], [30 / H, 40 / W, 1.0, 1.0], atol=1e-6)
  assert decoded[3][F.groundtruth_instance_masks].shape == (0, 20, 20)
  formats = {tf.train.Example.FromString(r).features.feature['image/source_id'].bytes_list.value[
      0]: tf.train.Example.FromString(r).features.feature['image/format'].bytes_list.value[0]
             for r in read_records(str(tmp_path / 'coco_train.record-*'))}
  assert formats == {b'1': b'jpeg', b'2': b'png', b'3': b'jpeg'}
  assert [(i, n) for i, n in sorted(result['categories'].items())] == [
      (1, 'cat'), (3, 'dog'), (5, 'bird')]


def test_synthetic_without_masks_and_with_shards(synthetic, tmp_path):
  image_dir, json_path, _ = synthetic
  result = coco_tf_record.convert([('val', image_dir, json_path)], str(tmp_path), num_shards=2,
                                  show_progress=False)
  summary = result['splits'][0]
  # Without masks, the annotation with no segmentation is kept.
  assert summary.instances_written == 6
  assert summary.skipped['empty_or_missing_segmentation'] == 0
  assert [os.path.basename(p) for p in summary.output_files] == [
      'coco_val.record-00000-of-00002', 'coco_val.record-00001-of-00002']
  ids = [[tf.train.Example.FromString(r).features.feature['image/source_id'].bytes_list.value[0]
          for r in read_records(p)] for p in summary.output_files]
  assert ids == [[b'1', b'3'], [b'2']]
  raw = read_records(summary.output_files[0])[0]
  assert 'image/object/mask' not in tf.train.Example.FromString(raw).features.feature
  with pytest.raises(tf_example_decoder.RecordValidationError, match='--include_masks'):
    tf_example_decoder.validate_records_have_masks(str(tmp_path / 'coco_val.record-*'))


def test_annotation_file_without_annotations_key(synthetic, tmp_path):
  # Test-dev files list images only.
  image_dir, _, data = synthetic
  path = tmp_path / 'image_info_test-dev.json'
  path.write_text(json.dumps({'images': data['images'][:3], 'categories': data['categories']}))
  result = coco_tf_record.convert([('testdev', image_dir, str(path))], str(tmp_path / 'out'),
                                  include_masks=True, show_progress=False)
  summary = result['splits'][0]
  assert (summary.images_written, summary.instances_written) == (3, 0)
  assert os.path.basename(summary.output_files[0]) == 'coco_testdev.record-00000-of-00001'


# ------------------------------------------------------------------------------------------------
# Errors: missing or malformed input.


def _write_json(tmp_path, data, name='bad.json'):
  path = tmp_path / name
  path.write_text(data if isinstance(data, str) else json.dumps(data))
  return str(path)


GOOD_IMAGE = dict(id=1, file_name='a.jpg', height=H, width=W)
GOOD_ANN = dict(id=1, image_id=1, category_id=1, bbox=[1, 1, 4, 4], area=16, iscrowd=0,
                segmentation=[[1, 1, 5, 1, 5, 5]])
GOOD_CATS = [dict(id=1, name='cat')]


@pytest.mark.parametrize('data,message', [
    ('{"images": [', r'not valid JSON \(Expecting value at line 1 column 13\)'),
    ([1, 2], 'the top level must be a JSON object'),
    (dict(categories=GOOD_CATS), "The top-level object is missing key\\(s\\) 'images'"),
    (dict(images=[dict(id=1, file_name='a.jpg', width=W)], categories=GOOD_CATS),
     r"images\[0\] \(id=1\) is missing key\(s\) 'height'"),
    (dict(images=[GOOD_IMAGE], categories=GOOD_CATS,
          annotations=[dict(GOOD_ANN, bbox=None)]), r'annotations\[0\] \(id=1\) has bbox=None'),
    (dict(images=[GOOD_IMAGE], categories=GOOD_CATS,
          annotations=[{k: v for k, v in GOOD_ANN.items() if k != 'bbox'}]),
     r"annotations\[0\] \(id=1\) is missing key\(s\) 'bbox'"),
    (dict(images=[GOOD_IMAGE], categories=GOOD_CATS,
          annotations=[dict(GOOD_ANN, category_id=7)]),
     r'category_id=7, which is not in "categories" \(ids \[1\]\)'),
    (dict(images=[GOOD_IMAGE, GOOD_IMAGE], categories=GOOD_CATS),
     'image id 1 appears twice'),
    (dict(images=[dict(GOOD_IMAGE, height=0)], categories=GOOD_CATS),
     'must be positive integers'),
    (dict(images=[GOOD_IMAGE], categories=[dict(id=1)]),
     r"categories\[0\] is missing key\(s\) 'name'"),
])
def test_malformed_annotation_files(synthetic, tmp_path, data, message):
  image_dir = synthetic[0]
  path = _write_json(tmp_path, data)
  with pytest.raises(coco_annotations.ConversionError) as info:
    coco_tf_record.convert([('train', image_dir, path)], str(tmp_path / 'out'),
                           show_progress=False)
  assert str(info.value).startswith(path + ': ')
  assert re.search(message, str(info.value)), str(info.value)
  assert not os.path.exists(tmp_path / 'out')  # Nothing is written on bad input.


def test_conflicting_categories_between_splits(synthetic, tmp_path):
  image_dir, json_path, data = synthetic
  other = _write_json(tmp_path, dict(data, categories=[dict(id=1, name='lion'),
                                                          dict(id=3, name='dog')]), 'val.json')
  with pytest.raises(coco_annotations.ConversionError,
                     match=r"Category id 1 is 'cat' in .*instances.json but 'lion' in .*val.json"):
    coco_tf_record.convert([('train', image_dir, json_path), ('val', image_dir, other)],
                           str(tmp_path / 'out'), show_progress=False)


def test_cli_missing_annotations_file_exits_2(tmp_path):
  missing = str(tmp_path / 'no_such_instances.json')
  result = run_cli('--train_image_dir=' + COCO128_IMAGES, '--train_annotations_file=' + missing,
                   '--output_dir=' + str(tmp_path / 'out'))
  assert result.returncode == 2
  assert result.stderr.strip() == 'Error: Annotations file %s does not exist.' % missing
  assert not os.path.exists(tmp_path / 'out')


def test_cli_malformed_json_and_missing_image_dir(tmp_path):
  bad = _write_json(tmp_path, '{"images": [], "categories": [}')
  result = run_cli('--val_image_dir=' + COCO128_IMAGES, '--val_annotations_file=' + bad,
                   '--output_dir=' + str(tmp_path / 'out'))
  assert result.returncode == 2
  assert result.stderr.startswith('Error: %s: not valid JSON' % bad)
  result = run_cli('--val_image_dir=' + str(tmp_path / 'no_images'),
                   '--val_annotations_file=' + VAL_JSON, '--output_dir=' + str(tmp_path / 'o'))
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert 'no_images (for the val split' in result.stderr and 'does not exist' in result.stderr


def test_cli_usage_errors(tmp_path):
  result = run_cli('--output_dir=' + str(tmp_path))
  assert result.returncode == 2
  assert result.stderr.startswith('Usage error: nothing to convert: give --train_image_dir')
  result = run_cli('--train_annotations_file=' + TRAIN_JSON, '--output_dir=' + str(tmp_path))
  assert result.returncode == 2
  assert result.stderr.strip() == ('Usage error: --train_annotations_file is given but '
                                   '--train_image_dir is not: a split needs both.')
