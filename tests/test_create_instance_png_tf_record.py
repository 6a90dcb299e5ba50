"""Tests of dataset_tools/create_instance_png_tf_record.py on PNG copies of coco128_seg images.

`tests/instance_png_fixture.py` paints the real coco128_seg masks (pycocotools' rasterisation,
`coco_annotations.ann_to_mask`) of 4 images into (a) Cityscapes-style 16-bit instance-ID PNGs,
(b) per-instance mask folders and (c) 8-bit single-class label PNGs. The masks read back from
the records must equal those masks: exactly for (b); for (a) and (c) what the instances painted
later left of each one (`mask_i AND NOT union of later masks`), since a PNG holds one value per
pixel.
"""
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from object_detection.core import standard_fields as fields
from object_detection.data_decoders import tf_example_decoder
from object_detection.dataset_tools import coco_annotations
from object_detection.dataset_tools import instance_png_annotations as ipa
from object_detection.dataset_tools import instance_png_tf_record
from tests import instance_png_fixture as fx

F = fields.InputDataFields
SCRIPT = os.path.join(fx.REPO_ROOT, 'dataset_tools', 'create_instance_png_tf_record.py')
CITYSCAPES_NAMING = dict(image_suffix='_leftImg8bit', mask_suffix='_gtFine_instanceIds.png')
COCO_IDS = dict(zip(('bowl', 'broccoli', 'orange', 'horse', 'person', 'potted plant',
                     'bicycle', 'dog', 'skateboard'), (51, 56, 55, 19, 1, 64, 2, 18, 41)))


@pytest.fixture(scope='module')
def source():
  images, anns, categories = fx.load_source()
  # Two "bowl" annotations of image 9 become one Cityscapes-style group region (value 51).
  crowd_ids = (anns[9][0]['id'], anns[9][1]['id'])
  assert [categories[anns[9][i]['category_id']] for i in (0, 1)] == ['bowl', 'bowl']
  return images, anns, categories, crowd_ids


@pytest.fixture(scope='module')
def copies(tmp_path_factory, source):
  root = str(tmp_path_factory.mktemp('instance_png'))
  return {'a': fx.build_instance_id_copy(os.path.join(root, 'a'), source[3]),
          'b': fx.build_mask_folder_copy(os.path.join(root, 'b')),
          'c': fx.build_single_class_copy(os.path.join(root, 'c')),
          'root': root}


def convert_id_png(copies, out, **kwargs):
  image_dir, mask_dir, label_map = copies['a']
  options = dict(CITYSCAPES_NAMING, label_map_path=label_map, include_masks=True,
                 show_progress=False)
  options.update(kwargs)
  return instance_png_tf_record.convert('instance_id_png', [('train', image_dir, mask_dir)],
                                        str(out), **options)


@pytest.fixture(scope='module')
def id_png_default(copies, tmp_path_factory):
  out = tmp_path_factory.mktemp('id_png_default')
  return out, convert_id_png(copies, out)


def read_records(out, split='train'):
  """Every record of <out>/instances_<split>.record-*, parsed into numpy / python values."""
  paths = sorted(tf.io.gfile.glob(os.path.join(str(out), 'instances_%s.record-*' % split)))
  records = []
  for raw in tf.data.TFRecordDataset(paths):
    feature = tf.train.Example.FromString(raw.numpy()).features.feature
    value = lambda key, kind: list(getattr(feature[key], kind).value)
    height, width = value('image/height', 'int64_list')[0], value('image/width', 'int64_list')[0]
    masks = [np.asarray(Image.open(io.BytesIO(png))) for png in value('image/object/mask',
                                                                      'bytes_list')]
    records.append({
        'raw': raw.numpy(), 'height': height, 'width': width,
        'filename': value('image/filename', 'bytes_list')[0].decode(),
        'source_id': value('image/source_id', 'bytes_list')[0].decode(),
        'encoded': value('image/encoded', 'bytes_list')[0],
        'key': value('image/key/sha256', 'bytes_list')[0].decode(),
        'labels': value('image/object/class/label', 'int64_list'),
        'texts': [t.decode() for t in value('image/object/class/text', 'bytes_list')],
        'is_crowd': value('image/object/is_crowd', 'int64_list'),
        'areas': value('image/object/area', 'float_list'),
        'boxes': np.array([value('image/object/bbox/%s' % k, 'float_list')
                           for k in ('ymin', 'xmin', 'ymax', 'xmax')]).T.reshape([-1, 4]),
        'masks': np.stack(masks) if masks else np.zeros([0, height, width], np.uint8),
    })
  return records


def expected_box(mask):
  """Normalized [ymin, xmin, ymax, xmax] covering the mask's whole pixels."""
  rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
  height, width = mask.shape
  return [rows[0] / height, cols[0] / width, (rows[-1] + 1) / height, (cols[-1] + 1) / width]


def assert_instances(record, expected):
  """expected: list of (class id, class name, is_crowd, uint8 mask), in record order."""
  assert record['labels'] == [e[0] for e in expected]
  assert record['texts'] == [e[1] for e in expected]
  assert record['is_crowd'] == [e[2] for e in expected]
  assert record['masks'].shape == (len(expected), record['height'], record['width'])
  for mask, (_, _, _, want) in zip(record['masks'], expected):
    np.testing.assert_array_equal(mask, want)
  np.testing.assert_array_equal(record['areas'], [e[3].sum() for e in expected])
  np.testing.assert_allclose(record['boxes'], np.array(
      [expected_box(e[3]) for e in expected]).reshape([-1, 4]), rtol=0, atol=1e-7)


def left_by_later(masks):
  """uint8 [N, H, W]: mask_i AND NOT (union of masks i+1..N-1), the overlap rule of a PNG."""
  own, later = np.zeros_like(masks), np.zeros_like(masks[0])
  for i in reversed(range(len(masks))):
    own[i] = masks[i] & (1 - later)
    later |= masks[i]
  return own


def id_png_expected_by_value(image, anns, categories, crowd_ids, crowd=False, keep=None):
  """Expected (class id, name, is_crowd, mask) of an instance-ID PNG record, in the converter's
  order: by pixel value (a crowd region's value is its class id, an instance's class * 1000 +
  annotation index + 1).

  keep: None (the PNG's class ids kept) or {class id: new id}: only those classes, renumbered.
  """
  own = left_by_later(fx.source_masks(image, anns))
  items = []
  crowd_indices = [i for i, a in enumerate(anns) if a['id'] in crowd_ids]
  if crowd and crowd_indices:
    category = anns[crowd_indices[0]]['category_id']
    region = np.any(own[crowd_indices], axis=0).astype(np.uint8)
    if region.any():
      items.append((category, category, 1, region))
  for index, ann in enumerate(anns):
    if ann['id'] not in crowd_ids and own[index].any():
      items.append((ann['category_id'] * 1000 + index + 1, ann['category_id'], 0, own[index]))
  items.sort(key=lambda item: item[0])
  return [((keep or {}).get(c, c), categories[c], crowd_flag, mask)
          for _, c, crowd_flag, mask in items if keep is None or c in keep]


# ------------------------------------------------------------------------------------------------
# (b) Per-instance mask folders: masks equal pycocotools' exactly.


def test_mask_folder_masks_equal_pycocotools(copies, source, tmp_path):
  images, anns, categories, _ = source
  image_dir, mask_dir = copies['b']
  result = instance_png_tf_record.convert('instance_mask_folder', [('train', image_dir, mask_dir)],
                                          str(tmp_path), include_masks=True, show_progress=False)
  names = sorted({categories[a['category_id']] for i in anns for a in anns[i]})
  class_id = {name: i + 1 for i, name in enumerate(names)}
  assert result['categories'] == {i: n for n, i in class_id.items()}
  summary = result['splits'][0]
  assert (summary.images_written, summary.instances_written, summary.instances_total) == (
      4, 33, 33)
  assert sum(summary.skipped.values()) == 0
  records = read_records(tmp_path)
  assert [r['filename'] for r in records] == [im['file_name'] for im in images]
  for record, image in zip(records, images):
    assert record['source_id'] == image['file_name']
    with open(os.path.join(fx.COCO128_IMAGES, image['file_name']), 'rb') as fid:
      assert record['encoded'] == fid.read()  # The JPEG bytes, unchanged.
    assert record['key'] == hashlib.sha256(record['encoded']).hexdigest()
    assert (record['height'], record['width']) == (image['height'], image['width'])
    image_anns = anns[image['id']]
    masks = fx.source_masks(image, image_anns)
    # Record order: class id, then mask file name ('10.png' < '2.png').
    order = sorted(range(len(image_anns)), key=lambda i: (
        class_id[categories[image_anns[i]['category_id']]], '%d.png' % i))
    assert_instances(record, [(class_id[categories[image_anns[i]['category_id']]],
                               categories[image_anns[i]['category_id']], 0, masks[i])
                              for i in order])
    # The source's own box and area (pycocotools' mask area, tight mask box) agree.
    np.testing.assert_array_equal(record['areas'], [image_anns[i]['area'] for i in order])
  with open(os.path.join(str(tmp_path), 'label_map.pbtxt')) as fid:
    assert re.findall(r'name: "([^"]+)"\n  id: (\d+)', fid.read()) == [
        (n, str(class_id[n])) for n in names]

  # The project's decoder (graph mode, as training reads them) gives the same masks and boxes.
  decoder = tf_example_decoder.TfExampleDecoder(load_instance_masks=True,
                                                instance_mask_type='PNG_MASKS')
  dataset = tf.data.TFRecordDataset(str(tmp_path / 'instances_train.record-00000-of-00001'))
  for decoded, record in zip(dataset.map(decoder.decode), records):
    np.testing.assert_array_equal(decoded[F.groundtruth_instance_masks].numpy(), record['masks'])
    np.testing.assert_allclose(decoded[F.groundtruth_boxes].numpy(), record['boxes'])
    np.testing.assert_array_equal(decoded[F.groundtruth_classes].numpy(), record['labels'])


def test_mask_folder_classes_and_per_instance_skips(copies, source, tmp_path):
  images, anns, categories, _ = source
  image_dir, mask_dir = copies['b']
  root = str(tmp_path / 'b')
  shutil.copytree(os.path.dirname(mask_dir), root)
  masks_77 = os.path.join(root, 'masks', '000000000077')
  # An all-zero mask, a mask of another size, a PNG outside any class folder, a broken file.
  person = os.path.join(masks_77, 'person')
  first_person = sorted(os.listdir(person))[0]
  Image.fromarray(np.zeros((375, 500), np.uint8)).save(os.path.join(person, first_person))
  Image.fromarray(np.ones((10, 10), np.uint8)).save(os.path.join(person, 'small.png'))
  Image.fromarray(np.ones((375, 500), np.uint8)).save(os.path.join(masks_77, 'loose.png'))
  with open(os.path.join(person, 'broken.png'), 'wb') as fid:
    fid.write(b'not a png')
  result = instance_png_tf_record.convert(
      'instance_mask_folder', [('train', os.path.join(root, 'images'),
                                os.path.join(root, 'masks'))],
      str(tmp_path / 'out'), classes=['skateboard', 'person'], include_masks=True,
      show_progress=False)
  assert [(c.name, c.id) for c in result['classes']] == [('skateboard', 1), ('person', 2)]
  summary = result['splits'][0]
  skipped = summary.skipped
  assert (skipped[ipa.SKIP_EMPTY_MASK], skipped[ipa.SKIP_MASK_SIZE],
          skipped[ipa.SKIP_OUTSIDE_CLASS_FOLDER], skipped[ipa.SKIP_UNREADABLE_MASK]) == (
              1, 1, 1, 1)
  n_other = sum(categories[a['category_id']] not in ('skateboard', 'person')
                for i in anns for a in anns[i])
  assert summary.instances_other_classes == n_other
  assert 'instance_of_other_class' not in skipped
  # Image 9 (bowls, broccoli, oranges) has neither class: dropped.
  assert summary.images_written == 3 and summary.images_without_chosen_class == 1
  records = read_records(tmp_path / 'out')
  assert [r['filename'] for r in records] == [im['file_name'] for im in images[1:]]
  record_77 = records[-1]
  image_77, anns_77 = images[3], anns[77]
  masks = fx.source_masks(image_77, anns_77)
  zeroed = int(os.path.splitext(first_person)[0])
  people = sorted((i for i, a in enumerate(anns_77)
                   if a['category_id'] == COCO_IDS['person'] and i != zeroed),
                  key=lambda i: '%d.png' % i)
  boards = [i for i, a in enumerate(anns_77) if a['category_id'] == COCO_IDS['skateboard']]
  assert_instances(record_77, [(1, 'skateboard', 0, masks[i]) for i in boards] +
                   [(2, 'person', 0, masks[i]) for i in people])


def test_mask_folder_single_class_layout_and_missing_folder(copies, source, tmp_path):
  """The Data Science Bowl layout: <id>/images/<id>.png beside <id>/masks/*.png."""
  images, anns, _, _ = source
  root = str(tmp_path / 'dsb')
  for image in images[:2]:
    image_id = fx.stem(image)
    os.makedirs(os.path.join(root, image_id, 'images'))
    Image.open(os.path.join(fx.COCO128_IMAGES, image['file_name'])).save(
        os.path.join(root, image_id, 'images', image_id + '.png'))
    os.makedirs(os.path.join(root, image_id, 'masks'))
    if image is images[0]:
      for index, mask in enumerate(fx.source_masks(image, anns[image['id']])):
        Image.fromarray(mask * 255).save(os.path.join(root, image_id, 'masks', 'm%02d.png'
                                                      % index))
  # Image 2 has no masks/ folder: skipped and counted, or a negative with keep_empty_images.
  options = dict(image_pattern='*/images/*.png', mask_subfolder='masks', class_name='nucleus',
                 include_masks=True, show_progress=False)
  splits = [('train', root, root)]
  result = instance_png_tf_record.convert('instance_mask_folder', splits,
                                          str(tmp_path / 'out'), **options)
  summary = result['splits'][0]
  assert result['categories'] == {1: 'nucleus'}
  assert (summary.images_total, summary.images_written) == (2, 2)
  assert summary.images_without_instances == 1  # The empty masks/ folder is a real negative.
  del options['mask_subfolder']
  os.rmdir(os.path.join(root, fx.stem(images[1]), 'masks'))
  os.rename(os.path.join(root, fx.stem(images[0]), 'masks'),
            os.path.join(tmp_path, 'masks_of_first'))
  flat = str(tmp_path / 'flat')
  os.makedirs(flat)
  os.rename(os.path.join(tmp_path, 'masks_of_first'), os.path.join(flat, fx.stem(images[0])))
  result = instance_png_tf_record.convert('instance_mask_folder', [('train', root, flat)],
                                          str(tmp_path / 'out2'), **options)
  summary = result['splits'][0]
  assert summary.skipped[ipa.SKIP_NO_MASK] == 1 and summary.images_written == 1
  assert summary.skipped_images[0][:2] == (
      '%s/images/%s.png' % (fx.stem(images[1]), fx.stem(images[1])), ipa.SKIP_NO_MASK)
  record, = read_records(tmp_path / 'out2')
  masks = fx.source_masks(images[0], anns[images[0]['id']])
  assert_instances(record, [(1, 'nucleus', 0, m) for m in masks])  # PNG images: lossless.
  result = instance_png_tf_record.convert('instance_mask_folder', [('train', root, flat)],
                                          str(tmp_path / 'out3'), keep_empty_images=True,
                                          **options)
  assert result['splits'][0].images_written == 2
  assert read_records(tmp_path / 'out3')[1]['labels'] == []


# ------------------------------------------------------------------------------------------------
# (a) Instance-ID PNGs (Cityscapes encoding): later instances over earlier ones.


def test_instance_id_png_masks_equal_pycocotools_after_overlap(id_png_default, source):
  out, result = id_png_default
  images, anns, categories, crowd_ids = source
  summary = result['splits'][0]
  assert result['categories'] == categories  # The label map's 80 COCO ids and names, kept.
  records = read_records(out)
  assert [r['filename'] for r in records] == [
      'coco/%s_leftImg8bit.jpg' % fx.stem(im) for im in images]
  overlapped = 0
  for record, image in zip(records, images):
    expected = id_png_expected_by_value(image, anns[image['id']], categories, crowd_ids)
    assert_instances(record, expected)
    originals = fx.source_masks(image, anns[image['id']])
    overlapped += sum(not any(np.array_equal(e[3], m) for m in originals) for e in expected)
  assert overlapped >= 4  # The overlap rule is exercised, not only disjoint masks.
  written = sum(len(r['labels']) for r in records)
  assert summary.instances_written == written == 31  # 33 annotations, 2 crowd
  # The two crowd bowls are one class-only region (value 51): skipped and counted.
  assert summary.skipped[ipa.SKIP_CLASS_ONLY_REGION] == 1
  assert summary.skipped_images == []
  # The instances are only known from the PNGs: 31 written + the skipped region were found.
  with open(os.path.join(str(out), 'conversion_summary.txt')) as fid:
    text = fid.read()
  assert 'instances written: 31 of 32 found in the masks of the images read' in text
  assert re.search(r'class_only_region\s+1\n', text)


def test_instance_id_png_crowd_regions(copies, source, tmp_path):
  images, anns, categories, crowd_ids = source
  result = convert_id_png(copies, tmp_path, class_only_regions='crowd', mask_type='numerical')
  assert result['splits'][0].skipped[ipa.SKIP_CLASS_ONLY_REGION] == 0
  paths = tf.io.gfile.glob(str(tmp_path / 'instances_train.record-*'))
  assert tf_example_decoder.detect_mask_type(paths[0]) == 'NUMERICAL_MASKS'
  decoder = tf_example_decoder.TfExampleDecoder(load_instance_masks=True,
                                                instance_mask_type='NUMERICAL_MASKS')
  decoded = [d for d in tf.data.TFRecordDataset(paths).map(decoder.decode)]
  first = decoded[0]
  expected = id_png_expected_by_value(images[0], anns[9], categories, crowd_ids, crowd=True)
  assert expected[0][1:3] == ('bowl', 1)
  np.testing.assert_array_equal(first[F.groundtruth_is_crowd].numpy(),
                                [bool(e[2]) for e in expected])
  np.testing.assert_array_equal(first[F.groundtruth_classes].numpy(), [e[0] for e in expected])
  np.testing.assert_array_equal(first[F.groundtruth_instance_masks].numpy(),
                                np.stack([e[3] for e in expected]))


def test_instance_id_png_classes_renumbered(copies, source, tmp_path):
  images, anns, categories, crowd_ids = source
  result = convert_id_png(copies, tmp_path / 'out', classes=['dog', '1'],
                          class_only_regions='crowd')
  assert [(c.name, c.source_id, c.id) for c in result['classes']] == [
      ('dog', 18, 1), ('person', 1, 2)]
  assert result['categories'] == {1: 'dog', 2: 'person'}
  summary = result['splits'][0]
  keep = {18: 1, 1: 2}
  records = read_records(tmp_path / 'out')
  # Image 9 (bowls, broccoli, oranges) has no dog or person: dropped.
  assert [r['source_id'] for r in records] == [
      'coco/%s_leftImg8bit.jpg' % fx.stem(im) for im in images[1:]]
  assert summary.images_without_chosen_class == 1
  for record, image in zip(records, images[1:]):
    assert_instances(record, id_png_expected_by_value(image, anns[image['id']], categories,
                                                      crowd_ids, keep=keep))
  # Image 9's instances are dropped with it; + 1: the crowd bowl region.
  assert summary.instances_other_classes == 31 + 1 - sum(len(r['labels']) for r in records)
  result = convert_id_png(copies, tmp_path / 'negatives', classes=['dog', 'person'],
                          keep_empty_images=True)
  records = read_records(tmp_path / 'negatives')
  assert len(records) == 4 and records[0]['labels'] == []


def test_instance_id_png_single_class_id_divisor_0(copies, source, tmp_path):
  images, anns, _, _ = source
  image_dir, mask_dir = copies['c']
  result = instance_png_tf_record.convert(
      'instance_id_png', [('train', image_dir, mask_dir)], str(tmp_path), id_divisor=0,
      class_name='thing', min_instance_pixels=200, include_masks=True, show_progress=False)
  assert result['categories'] == {1: 'thing'}
  kept = skipped = 0
  for record, image in zip(read_records(tmp_path), images):
    masks = left_by_later(fx.source_masks(image, anns[image['id']]))
    big = [m for m in masks if m.sum() >= 200]
    skipped += sum(0 < m.sum() < 200 for m in masks)
    kept += len(big)
    assert_instances(record, [(1, 'thing', 0, m) for m in big])
  assert skipped > 0  # Image 49 has an 82-pixel potted plant: below --min_instance_pixels.
  assert result['splits'][0].skipped[ipa.SKIP_BELOW_MIN_PIXELS] == skipped
  assert result['instances_written'] == kept


def test_instance_id_png_two_workers_write_the_same_records(copies, id_png_default, tmp_path):
  out, _ = id_png_default
  convert_id_png(copies, tmp_path, num_workers=2)
  assert [r['raw'] for r in read_records(tmp_path)] == [r['raw'] for r in read_records(out)]


def test_instance_id_png_image_skips_are_named(copies, tmp_path):
  image_dir, mask_dir, label_map = copies['a']
  images = tmp_path / 'images'
  shutil.copytree(image_dir, str(images))
  masks = tmp_path / 'masks'
  shutil.copytree(mask_dir, str(masks))
  pngs = sorted(os.listdir(str(masks / 'coco')))
  os.remove(str(masks / 'coco' / pngs[0]))                  # no mask
  Image.fromarray(np.zeros((4, 4), np.uint16)).save(str(masks / 'coco' / pngs[1]))  # wrong size
  Image.new('RGB', (381, 500)).save(str(masks / 'coco' / pngs[2]))  # colour, not IDs
  result = instance_png_tf_record.convert(
      'instance_id_png', [('val', str(images), str(masks))], str(tmp_path / 'out'),
      label_map_path=label_map, show_progress=False, **CITYSCAPES_NAMING)
  summary = result['splits'][0]
  assert summary.images_written == 1
  assert {(name.split('/')[1][:12], reason) for name, reason, _ in summary.skipped_images} == {
      ('000000000009', ipa.SKIP_NO_MASK), ('000000000049', ipa.SKIP_MASK_SIZE),
      ('000000000074', ipa.SKIP_MASK_NOT_SINGLE_CHANNEL)}
  detail = dict((r, d) for _, r, d in summary.skipped_images)[ipa.SKIP_MASK_SIZE]
  assert detail.endswith('is 4x4 (HxW), the image 500x381')
  assert os.path.basename(result['splits'][0].output_files[0]) == (
      'instances_val.record-00000-of-00001')


@pytest.mark.parametrize('kwargs,message', [
    (dict(label_map_path=''), 'needs the classes: give --label_map_path'),
    (dict(classes=['dgo']), "'dgo' is not a category name or id of the annotation file(s) "
                            "(did you mean 'dog'?)"),
    (dict(mask_suffix='.png'), 'none of the 4 images of --train_image_dir has a mask (the '
                               'first, coco/000000000009_leftImg8bit.jpg, needs the file'),
    (dict(id_divisor=0), '--id_divisor=0 (pixel value = instance id of one class) needs '
                         '--class_name'),
    (dict(copy='c', label_map_path='', classes=['1']),
     'is an 8-bit PNG (values 0..255): every object would be a class-only region. If its values '
     'are instance ids of one class, give --id_divisor=0 --class_name=<class>'),
])
def test_instance_id_png_input_errors(copies, tmp_path, kwargs, message):
  image_dir, mask_dir, label_map = copies['a']
  options = dict(CITYSCAPES_NAMING, label_map_path=label_map)
  kwargs = dict(kwargs)
  if kwargs.pop('copy', 'a') == 'c':
    (image_dir, mask_dir), options = copies['c'], {}
  options.update(kwargs)
  with pytest.raises(coco_annotations.ConversionError) as error:
    ipa.prepare_inputs('instance_id_png', [('train', image_dir, mask_dir)], **options)
  assert message in str(error.value)
  assert not os.path.exists(str(tmp_path / 'out'))


# ------------------------------------------------------------------------------------------------
# The command line.


def test_cli_converts_and_reports_usage_errors(copies, tmp_path):
  image_dir, mask_dir = copies['b']
  out = str(tmp_path / 'out')
  run = lambda *args: subprocess.run(
      [sys.executable, SCRIPT, '--noprogress'] + list(args), capture_output=True, text=True,
      cwd=fx.REPO_ROOT, check=False)
  result = run('--input_format=instance_mask_folder', '--train_image_dir=' + image_dir,
               '--train_mask_dir=' + mask_dir, '--output_dir=' + out, '--include_masks',
               '--classes=person,dog')
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'classes (--classes): person (folder class 7) -> 1, dog (folder class 4) -> 2' in (
      result.stdout)
  assert 'images written:    3 of 4 (0 with no instances, kept)' in result.stdout
  assert sorted(os.listdir(out)) == ['conversion_summary.txt', 'instances_train.record-00000-of-'
                                     '00001', 'label_map.pbtxt']
  with open(os.path.join(out, 'conversion_summary.txt')) as fid:
    assert fid.read().strip() == result.stdout.strip()
  result = run('--input_format=instance_mask_folder', '--train_image_dir=' + image_dir,
               '--train_mask_dir=' + mask_dir, '--output_dir=' + out, '--id_divisor=0')
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      'Usage error: --id_divisor does not apply to --input_format=instance_mask_folder (only to '
      'instance_id_png): remove it.']
