"""Tests of dataset_tools/create_semantic_tf_record.py on the bundled coco128_seg sample.

References are built here from pycocotools' own `COCO.annToMask` (not the converter's
rasterisation) with the documented overlap rule, written as a per-pixel choice: among the
annotations covering a pixel, the one with the fewest pixels wins, equal counts -> the later in
the JSON. The converter paints masks in order instead; both must give the same label maps.

  * COCO JSON directly: the val split (25 images) converted and decoded with
    `semantic_decoder`: every label map equals the reference.
  * A Common Semantic Segmentation copy (dataset_meta.json, images/<split>, masks/<split>) of 3
    images, label PNGs painted from the reference (one of them an RGB colour mask, one photo
    re-saved with EXIF orientation 6 and its mask at the upright size), plus an EXIF photo
    whose mask has the stored size and an image without a mask: the decoded masks equal the
    source PNGs' values, the two bad images are skipped and counted.
  * --classes (COCO): a subset, other classes -> ignore, a crowd annotation -> ignore.
  * The command line: one usage error (exit 2, one line), one conversion (exit 0, summary).
"""
import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
from pycocotools.coco import COCO
import pytest
import tensorflow as tf

from object_detection.data_decoders import semantic_decoder
from object_detection.dataset_tools import semantic_annotations as sa
from object_detection.dataset_tools import semantic_tf_record
from object_detection.dataset_tools import tf_example_builder

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128 = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
IMAGES = os.path.join(COCO128, 'images')
VAL_JSON = os.path.join(COCO128, 'annotations', 'instances_val.json')
SCRIPT = os.path.join(REPO_ROOT, 'dataset_tools', 'create_semantic_tf_record.py')
# CSS copy: train = 71 (16 instances, many overlaps) and 260; val = 36 (portrait, re-saved with
# EXIF orientation 6, mask at the upright size) and 623 (EXIF 6, mask at the stored size:
# skipped) and 514 without a mask (skipped).
CSS_TRAIN, CSS_VAL, CSS_EXIF_BAD, CSS_NO_MASK = (71, 260), 36, 623, 514
UNLISTED = 250


def load_coco(path=VAL_JSON):
  with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
    return COCO(path)


def reference_label_map(coco, image_id, value_of, crowd_ignore=False):
  """uint8 [H, W]: the documented overlap rule from pycocotools masks, per pixel.

  value_of: COCO category id -> output id. Pixels without annotation: 0.
  """
  info = coco.imgs[image_id]
  anns = coco.imgToAnns[image_id]  # JSON order
  label = np.zeros((info['height'], info['width']), np.uint8)
  if not anns:
    return label
  masks = np.stack([coco.annToMask(a).astype(bool) for a in anns])
  areas = masks.reshape(len(anns), -1).sum(1)
  # Fewest pixels first, then the later annotation: smallest key wins.
  keys = areas.astype(np.int64) * (len(anns) + 1) + (len(anns) - np.arange(len(anns)))
  keyed = np.where(masks, keys[:, None, None], np.iinfo(np.int64).max)
  winner = keyed.argmin(0)
  values = np.array([255 if (crowd_ignore and a.get('iscrowd')) else value_of[a['category_id']]
                     for a in anns], np.uint8)
  return np.where(masks.any(0), values[winner], 0).astype(np.uint8)


def later_wins_label_map(coco, image_id, value_of):
  """The other rule (later annotation on top), to show the test tells the rules apart."""
  info = coco.imgs[image_id]
  label = np.zeros((info['height'], info['width']), np.uint8)
  for ann in coco.imgToAnns[image_id]:
    label[coco.annToMask(ann).astype(bool)] = value_of[ann['category_id']]
  return label


def all_classes(coco):
  return {c: i + 1 for i, c in enumerate(coco.getCatIds())}  # JSON order = id order here


def decode_records(out, split):
  paths = sorted(tf.io.gfile.glob(os.path.join(str(out), 'semantic_%s.record-*' % split)))
  decoder = semantic_decoder.SemanticSegmentationDecoder()
  decoded = {}
  for d in tf.data.TFRecordDataset(paths).map(decoder.decode):  # graph mode, as in training
    decoded[d['source_id'].numpy().decode()] = {
        'image': d['image'].numpy(), 'label': d['groundtruth_semantic'].numpy(),
        'filename': d['filename'].numpy().decode(), 'key': d['key'].numpy().decode()}
  return decoded


def file_sha256(path):
  with open(path, 'rb') as fid:
    return hashlib.sha256(fid.read()).hexdigest()


# ------------------------------------------------------------------------------------------------
# COCO JSON directly.


def test_coco_val_label_maps_equal_pycocotools_reference(tmp_path):
  coco = load_coco()
  out = tmp_path / 'coco'
  result = semantic_tf_record.convert(
      'coco', str(out), coco_splits=[('val', IMAGES, VAL_JSON)], show_progress=False)
  value_of = all_classes(coco)
  decoded = decode_records(out, 'val')
  assert sorted(decoded) == sorted(str(i) for i in coco.getImgIds())
  rules_differ = 0
  for image_id in coco.getImgIds():
    record = decoded[str(image_id)]
    info = coco.imgs[image_id]
    assert record['image'].shape == (info['height'], info['width'], 3)
    assert record['key'] == file_sha256(os.path.join(IMAGES, info['file_name']))
    want = reference_label_map(coco, image_id, value_of)
    np.testing.assert_array_equal(record['label'], want, err_msg='image %d' % image_id)
    rules_differ += not np.array_equal(want, later_wins_label_map(coco, image_id, value_of))
  assert rules_differ >= 3  # The overlap rule matters on this data.
  with open(result['label_map_path']) as fid:
    label_map = fid.read()
  assert label_map.startswith('item {\n  name: "background"\n  id: 0\n')
  assert 'name: "toothbrush"\n  id: 80\n' in label_map
  split = result['splits'][0]
  assert (split.images_written, split.images_total) == (25, 25)
  assert split.instances_written == sum(len(set(np.unique(r['label']).tolist()) - {0, 255})
                                        for r in decoded.values())
  with open(result['summary_path']) as fid:
    assert fid.read().strip() == semantic_tf_record.format_semantic_summary(
        result, max_images_listed=None)
  assert 'overlapping instances: the smaller on top; crowd regions: their class' in (
      result['summary_text'])


def test_coco_classes_subset_other_classes_and_crowd_ignored(tmp_path):
  with open(VAL_JSON) as fid:
    data = json.load(fid)
  # The first 10 images (3 without a person or dog); the JSON still lists all 80 categories.
  ids = {image['id'] for image in data['images'][:10]}
  data['images'] = data['images'][:10]
  data['annotations'] = [a for a in data['annotations'] if a['image_id'] in ids]
  person_anns = [a for a in data['annotations'] if a['category_id'] == 1]
  # A person annotation of an image with other persons becomes a crowd region.
  crowd = next(a for a in person_anns
               if sum(b['image_id'] == a['image_id'] for b in person_anns) >= 2)
  crowd['iscrowd'] = 1
  crowd_image = crowd['image_id']
  json_path = str(tmp_path / 'val_crowd.json')
  with open(json_path, 'w') as fid:
    json.dump(data, fid)
  coco = load_coco(json_path)
  out = tmp_path / 'subset'
  result = semantic_tf_record.convert(
      'coco', str(out), coco_splits=[('val', IMAGES, json_path)], classes=['dog', '1'],
      other_classes='ignore', crowd='ignore', show_progress=False)
  assert result['categories'] == {0: 'background', 1: 'dog', 2: 'person'}
  value_of = {c: 255 for c in coco.getCatIds()}
  value_of.update({18: 1, 1: 2})
  decoded = decode_records(out, 'val')
  kept = []
  for image_id in coco.getImgIds():
    want = reference_label_map(coco, image_id, value_of, crowd_ignore=True)
    if set(np.unique(want).tolist()) & {1, 2}:
      kept.append(str(image_id))
      np.testing.assert_array_equal(decoded[str(image_id)]['label'], want)
  assert sorted(decoded) == sorted(kept)
  assert (decoded[str(crowd_image)]['label'] == 255).any()
  split = result['splits'][0]
  assert split.images_without_chosen_class == 10 - len(kept) > 0
  assert 'person (COCO id 1) -> 2' in result['summary_text']


# ------------------------------------------------------------------------------------------------
# Common Semantic Segmentation copy.


def _with_exif_orientation_6(src, dst):
  """Re-saves a photo stored sideways with EXIF orientation 6 (upright = the original)."""
  with Image.open(src) as image:
    stored = image.transpose(Image.Transpose.ROTATE_90)  # turned back by orientation 6
  exif = Image.Exif()
  exif[0x0112] = 6
  stored.save(dst, format='JPEG', quality=90, exif=exif.tobytes())


@pytest.fixture(scope='module')
def css_copy(tmp_path_factory):
  """A CSS dataset with split folders; returns (root, {(split, stem): source mask values})."""
  coco = load_coco()
  root = str(tmp_path_factory.mktemp('css'))
  used = sorted({a['category_id'] for i in CSS_TRAIN + (CSS_VAL, CSS_EXIF_BAD)
                 for a in coco.imgToAnns[i]})
  value_of = {c: i + 1 for i, c in enumerate(used)}  # contiguous: identity in the records
  names = {c['id']: c['name'] for c in coco.dataset['categories']}
  labels = {'0': 'background'}
  labels.update({str(v): names[c] for c, v in value_of.items()})
  rng = np.random.RandomState(0)
  colours = [[0, 0, 0]] + [list(map(int, rng.randint(0, 256, 3))) for _ in used]
  with open(os.path.join(root, sa.META_FILE), 'w') as fid:
    json.dump({'label_map': labels, 'segmentation_colors': colours}, fid)
  sources = {}
  for split, ids in (('train', CSS_TRAIN), ('val', (CSS_VAL, CSS_EXIF_BAD, CSS_NO_MASK))):
    os.makedirs(os.path.join(root, 'images', split))
    os.makedirs(os.path.join(root, 'masks', split))
    for image_id in ids:
      stem = coco.imgs[image_id]['file_name'][:-4]
      image_path = os.path.join(root, 'images', split, stem + '.jpg')
      mask_path = os.path.join(root, 'masks', split, stem + '.png')
      if image_id in (CSS_VAL, CSS_EXIF_BAD):
        _with_exif_orientation_6(os.path.join(IMAGES, stem + '.jpg'), image_path)
      else:
        shutil.copy(os.path.join(IMAGES, stem + '.jpg'), image_path)
      if image_id == CSS_NO_MASK:
        continue
      label = reference_label_map(coco, image_id, value_of)
      if image_id == CSS_EXIF_BAD:
        label = np.ascontiguousarray(np.rot90(label))  # the stored size, not the upright one
      if image_id == CSS_VAL:
        label[:5, :7] = UNLISTED  # a value dataset_meta.json does not list
      if image_id == CSS_TRAIN[1]:  # a colour mask
        Image.fromarray(np.array(colours, np.uint8)[label]).save(mask_path)
      else:
        Image.fromarray(label).save(mask_path)
      sources[(split, stem)] = label
  return root, sources


def test_css_copy_masks_equal_source_pngs_and_bad_images_are_counted(css_copy, tmp_path):
  root, sources = css_copy
  out = tmp_path / 'css'
  result = semantic_tf_record.convert('common_semantic_segmentation', str(out),
                                      dataset_dir=root, show_progress=False)
  train, val = result['splits']
  assert (train.split, train.images_written, val.split, val.images_written) == (
      'train', 2, 'val', 1)
  for split in ('train', 'val'):
    for stem, record in decode_records(out, split).items():
      want = sources[(split, stem)].copy()
      want[want == UNLISTED] = sa.IGNORE_LABEL  # written as ignore
      assert record['label'].dtype == np.uint8
      np.testing.assert_array_equal(record['label'], want)
      assert record['image'].shape[:2] == want.shape
  assert val.images_rotated == 1
  assert (val.skipped[sa.UNLISTED_VALUES], train.skipped[sa.UNLISTED_VALUES]) == (1, 0)
  assert val.skipped[sa.SKIP_MASK_SIZE] == 1 and val.skipped[sa.SKIP_NO_MASK] == 1
  stems = {name.split('.')[0] for name, _, _ in val.skipped_images}
  assert stems == {'%012d' % CSS_EXIF_BAD, '%012d' % CSS_NO_MASK}
  assert 'mask_size_differs_from_image' in result['summary_text']


def test_css_classes_subset_renumbers_and_others_become_background(css_copy, tmp_path):
  root, sources = css_copy
  with open(os.path.join(root, sa.META_FILE)) as fid:
    labels = json.load(fid)['label_map']
  by_name = {n: int(v) for v, n in labels.items()}
  out = tmp_path / 'css_subset'
  result = semantic_tf_record.convert('common_semantic_segmentation', str(out),
                                      dataset_dir=root, classes=['person', 'car'],
                                      keep_empty_images=True, show_progress=False)
  assert result['categories'] == {0: 'background', 1: 'person', 2: 'car'}
  lut = np.zeros(256, np.uint8)
  lut[by_name['person']], lut[by_name['car']] = 1, 2
  decoded = decode_records(out, 'train')
  assert len(decoded) == 2
  for stem, record in decoded.items():
    np.testing.assert_array_equal(record['label'], lut[sources[('train', stem)]])
  assert result['splits'][0].instances_other_classes > 0
  with pytest.raises(sa.ClassesError, match='is the background'):
    sa.css_classes(sa.read_meta(os.path.join(root, sa.META_FILE)), ['background'])


# ------------------------------------------------------------------------------------------------
# Decoder errors and the command line.


def test_decoder_names_a_record_without_label_mask():
  with open(os.path.join(IMAGES, '000000000036.jpg'), 'rb') as fid:
    encoded = fid.read()
  instance_record = tf_example_builder.serialize(tf_example_builder.build_example(
      encoded, 'jpeg', '000000000036.jpg', '36', 640, 481, [], [], [], [], [], [], [], []))
  decoder = semantic_decoder.SemanticSegmentationDecoder()
  want = ('record image/source_id=36 (image/filename=000000000036.jpg) has no '
          'image/segmentation/class/encoded: it is not a semantic segmentation record (convert '
          'the data with dataset_tools/create_semantic_tf_record.py)')
  with pytest.raises(semantic_decoder.SemanticRecordError) as raised:
    decoder.decode(tf.constant(instance_record))
  assert str(raised.value) == want
  with pytest.raises(tf.errors.InvalidArgumentError) as raised:
    for _ in tf.data.Dataset.from_tensors(instance_record).map(decoder.decode):
      pass
  assert semantic_decoder.error_line(raised.value) == want


def test_cli_usage_error_and_conversion(css_copy, tmp_path):
  root, _ = css_copy
  out = str(tmp_path / 'cli')
  run = lambda *args: subprocess.run(
      [sys.executable, SCRIPT, '--noprogress'] + list(args), capture_output=True, text=True,
      cwd=REPO_ROOT, check=False)
  result = run('--input_format=common_semantic_segmentation', '--dataset_dir=' + root,
               '--output_dir=' + out, '--crowd=ignore')
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      'Usage error: --crowd does not apply to --input_format=common_semantic_segmentation '
      '(only to coco): remove it.']
  result = run('--input_format=common_semantic_segmentation', '--dataset_dir=' + root,
               '--output_dir=' + out, '--num_shards=2')
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'images written:    2 of 2 (0 with background / ignore pixels only)' in result.stdout
  assert 'images written:    1 of 3' in result.stdout
  assert sorted(os.listdir(out)) == [
      'conversion_summary.txt', 'label_map.pbtxt', 'semantic_train.record-00000-of-00002',
      'semantic_train.record-00001-of-00002', 'semantic_val.record-00000-of-00002',
      'semantic_val.record-00001-of-00002']
  with open(os.path.join(out, 'conversion_summary.txt')) as fid:
    summary = fid.read()
  assert result.stdout.strip() == summary.strip()
  assert '1 image(s) written upright' in summary  # the EXIF-6 photo of val
