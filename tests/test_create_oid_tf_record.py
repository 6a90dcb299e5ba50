"""Tests of dataset_tools/create_oid_tf_record.py on an Open Images-format copy of coco128_seg.

The copy (tests/oid_fixture.py) stores each instance's mask at twice the image's resolution; the
decoded masks of the written records are compared pixel for pixel with pycocotools'
rasterisation of the source COCO annotations.
"""
import os
import shutil
import subprocess
import sys

from google.protobuf import text_format
import numpy as np
from PIL import Image
from pycocotools import coco as coco_api
import pytest
import tensorflow as tf

from object_detection.core import standard_fields as fields
from object_detection.data_decoders import tf_example_decoder
from object_detection.dataset_tools import coco_annotations
from object_detection.dataset_tools import conversion
from object_detection.dataset_tools import oid_annotations
from object_detection.dataset_tools import oid_tf_record
from object_detection.protos import string_int_label_map_pb2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oid_fixture  # pylint: disable=g-import-not-at-top,wrong-import-position

F = fields.InputDataFields
SCRIPT = os.path.join(oid_fixture.REPO_ROOT, 'dataset_tools', 'create_oid_tf_record.py')
# An extra image (COCO id 25, giraffes) whose only row has a missing mask: skipped whole.
NO_USABLE_COCO_ID = 25


def decode_all(pattern, mask_type='PNG_MASKS'):
  decoder = tf_example_decoder.TfExampleDecoder(load_instance_masks=True,
                                                instance_mask_type=mask_type)
  dataset = tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern))).map(decoder.decode)
  return [{k: v.numpy() for k, v in out.items()} for out in dataset]


def read_records(pattern):
  return [r.numpy() for r in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern)))]


def convert(data, out, csv_path=None, **kwargs):
  kwargs.setdefault('show_progress', False)
  splits = [('train', csv_path or data['csv'], data['image_dir'], data['mask_dir'])]
  return oid_tf_record.convert(splits, data['descriptions'], out, **kwargs)


# The broken CSV's boxes are the COCO boxes (= the masks' tight boxes) widened by this much on
# each side, so a record that carried the mask's box instead of the CSV's would differ; beyond
# [0, 1] by less than oid_tf_record.BOX_TOLERANCE, such boxes are clipped.
WIDEN = 0.0008


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  """The Open Images copy of 4 coco128_seg images, plus a CSV with 4 broken rows added."""
  folder = str(tmp_path_factory.mktemp('oid'))
  built = oid_fixture.build(folder)
  rows = oid_fixture.read_rows(built['csv'])
  widened = {}
  for row in rows:
    box = [float(v) for v in row[4:8]]
    box = [box[0] - WIDEN, box[1] + WIDEN, box[2] - WIDEN, box[3] + WIDEN]
    row[4:8] = [repr(v) for v in box]
    widened[row[0]] = tuple(min(max(v, 0.0), 1.0) for v in box)
  first = built['instances'][0]
  # 1. A real mask with a box in the opposite corner of the image: box_disagrees_with_mask.
  xmin, xmax, ymin, ymax = first.box
  moved = [1.0 - xmax, 1.0 - xmin, 1.0 - ymax, 1.0 - ymin]
  disagree = [first.mask_path, first.image_id, first.label_name, 'moved'] + [
      repr(v) for v in moved] + ['0.9', '']
  # 2. A row whose mask file does not exist: mask_file_missing.
  missing_mask = ['%s_missing.png' % first.image_id, first.image_id, first.label_name,
                  'nomask'] + rows[0][4:]
  # 3. An image whose only row has no mask file: the image is skipped (no_usable_instance).
  no_usable_id = oid_fixture.image_id_of(NO_USABLE_COCO_ID)
  shutil.copyfile(os.path.join(oid_fixture.COCO128_IMAGES, '%012d.jpg' % NO_USABLE_COCO_ID),
                  os.path.join(built['image_dir'], no_usable_id + '.jpg'))
  no_usable = ['%s_missing.png' % no_usable_id, no_usable_id, '/m/coco25', 'x', '0.1', '0.5',
               '0.1', '0.5', '', '']
  # 4. An image that is not in the image folder: image_missing (its row: an instance lost).
  absent = ['ffffffffffffffff_m.png', 'ffffffffffffffff', '/m/coco1', 'y', '0.1', '0.5', '0.1',
            '0.5', '', '']
  broken_csv = os.path.join(folder, 'broken.csv')
  oid_fixture.write_csv(broken_csv, rows + [disagree, missing_mask, no_usable, absent])
  built['broken_csv'] = broken_csv
  built['broken_boxes'] = widened
  built['no_usable_id'] = no_usable_id
  # Some widened boxes leave [0, 1] (objects touching the border): the clipping is tested.
  assert any(min(b) == 0.0 or max(b) == 1.0 for b in widened.values())
  return built


@pytest.fixture(scope='module')
def png_run(data, tmp_path_factory):
  """The broken CSV, all classes, PNG masks, 1 worker, 1 shard."""
  out = str(tmp_path_factory.mktemp('png') / 'records')
  result = convert(data, out, csv_path=data['broken_csv'], include_masks=True)
  return out, result


def expected_ids(data, broken=True):
  """Class ids without --classes: 1..N by display name (the broken CSV adds giraffe)."""
  names = sorted({i.name for i in data['instances']} | ({'giraffe'} if broken else set()))
  return {name: index + 1 for index, name in enumerate(names)}


def assert_records_equal_source(decoded, data, class_ids, boxes=None):
  """Every record: its CSV boxes, classes, areas, and masks equal to COCO's annToMask.

  `boxes`: {MaskPath: box} of the CSV converted when it is not the fixture's.
  """
  coco = coco_api.COCO(oid_fixture.TRAIN_JSON)
  by_image = {}
  for inst in data['instances']:
    if inst.name in class_ids:
      by_image.setdefault(inst.image_id, []).append(inst)
  assert sorted(d[F.source_id].decode() for d in decoded) == sorted(by_image)
  for d in decoded:
    image_id = d[F.source_id].decode()
    file_name, height, width = data['images'][image_id]
    instances = by_image[image_id]
    assert d[F.filename].decode() == file_name == image_id + '.jpg'
    assert d[F.image].shape == (height, width, 3)
    np.testing.assert_allclose(
        d[F.groundtruth_boxes],
        [[b[2], b[0], b[3], b[1]] for b in (
            (boxes or {}).get(i.mask_path, i.box) for i in instances)], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(d[F.groundtruth_classes],
                                  [class_ids[i.name] for i in instances])
    np.testing.assert_array_equal(d[F.groundtruth_is_crowd], [False] * len(instances))
    source_masks = [coco.annToMask(coco.anns[i.coco_ann_id]) for i in instances]
    np.testing.assert_allclose(d[F.groundtruth_area], [m.sum() for m in source_masks])
    got = d[F.groundtruth_instance_masks]
    assert got.dtype == np.uint8 and got.shape == (len(instances), height, width)
    for mask, source in zip(got, source_masks):
      np.testing.assert_array_equal(mask, source)


def test_png_masks_boxes_and_classes_equal_the_source(png_run, data):
  out, _ = png_run
  decoded = decode_all(os.path.join(out, 'oid_train.record-*'))
  assert len(decoded) == 4
  assert sum(len(d[F.groundtruth_classes]) for d in decoded) == 19
  assert_records_equal_source(decoded, data, expected_ids(data), boxes=data['broken_boxes'])
  # Mask files of every layout were found: flat, train-masks-<c>/ and FiftyOne's <C>/.
  assert {oid_fixture.MASK_LAYOUT[c] for c in oid_fixture.COCO_IMAGE_IDS} == {'', 'zip',
                                                                              'fiftyone'}


def test_broken_rows_are_skipped_and_counted(png_run, data):
  _, result = png_run
  (summary,) = result['splits']
  assert summary.images_total == 6 and summary.images_written == 4
  assert summary.instances_total == 23 and summary.instances_written == 19
  skipped = {k: v for k, v in summary.skipped.items() if v}
  assert skipped == {'box_disagrees_with_mask': 1, 'mask_file_missing': 2,
                     'no_usable_instance': 1, 'image_missing': 1,
                     'instance_of_skipped_image': 1}
  assert sorted(r for _, r, _ in summary.skipped_images) == ['image_missing',
                                                             'no_usable_instance']
  text = conversion.format_summary(result)
  assert 'box_disagrees_with_mask          1' in text
  assert '%s.jpg: no_usable_instance (all 1 instance(s) skipped: mask_file_missing 1)' % (
      data['no_usable_id']) in text
  assert 'ffffffffffffffff.jpg: image_missing' in text


def test_min_box_mask_iou_zero_keeps_the_disagreeing_row(data, tmp_path):
  result = convert(data, str(tmp_path / 'out'), csv_path=data['broken_csv'],
                   min_box_mask_iou=0.0)
  (summary,) = result['splits']
  assert summary.instances_written == 20
  assert summary.skipped['box_disagrees_with_mask'] == 0


def test_label_map_lists_the_classes_by_display_name(png_run, data):
  out, result = png_run
  label_map = string_int_label_map_pb2.StringIntLabelMap()
  with open(os.path.join(out, 'label_map.pbtxt')) as fid:
    text_format.Parse(fid.read(), label_map)
  ids = expected_ids(data)
  assert [(i.id, i.name) for i in label_map.item] == sorted(
      (v, k) for k, v in ids.items())
  assert all(i.display_name == i.name for i in label_map.item)
  assert result['categories'] == {v: k for k, v in ids.items()}
  assert sorted(os.listdir(out)) == ['conversion_summary.txt', 'label_map.pbtxt',
                                     'oid_train.record-00000-of-00001']


def test_two_workers_and_two_shards_write_the_same_records(png_run, data, tmp_path):
  out, _ = png_run
  out2 = str(tmp_path / 'out')
  convert(data, out2, csv_path=data['broken_csv'], include_masks=True, num_workers=2,
          num_shards=2)
  assert sorted(os.listdir(out2))[2:] == ['oid_train.record-00000-of-00002',
                                          'oid_train.record-00001-of-00002']
  shard_sizes = [len(read_records(os.path.join(out2, 'oid_train.record-%05d-of-00002' % i)))
                 for i in range(2)]
  assert shard_sizes == [2, 2]
  assert sorted(read_records(os.path.join(out2, 'oid_train.record-*'))) == sorted(
      read_records(os.path.join(out, 'oid_train.record-*')))


def test_numerical_masks_equal_the_source(data, tmp_path):
  out = str(tmp_path / 'out')
  convert(data, out, include_masks=True, mask_type='numerical')
  decoded = decode_all(os.path.join(out, 'oid_train.record-*'), mask_type='NUMERICAL_MASKS')
  assert_records_equal_source(decoded, data, expected_ids(data, broken=False))


def test_classes_by_name_and_by_id_are_renumbered(data, tmp_path):
  out = str(tmp_path / 'out')
  # 'BROCCOLI': a display name in another case; '/m/coco1': person's id.
  result = convert(data, out, classes=['BROCCOLI', '/m/coco1'], include_masks=True)
  assert [(c.name, c.source_id, c.id) for c in result['classes']] == [
      ('broccoli', '/m/coco56', 1), ('person', '/m/coco1', 2)]
  decoded = decode_all(os.path.join(out, 'oid_train.record-*'))
  assert_records_equal_source(decoded, data, {'broccoli': 1, 'person': 2})
  (summary,) = result['splits']
  n_chosen = sum(i.name in ('broccoli', 'person') for i in data['instances'])
  assert summary.instances_written == n_chosen
  assert summary.instances_other_classes == 19 - n_chosen
  assert summary.images_without_chosen_class == 2  # images 30 (plant, vase), 64 (car, ...)
  with open(os.path.join(out, 'label_map.pbtxt')) as fid:
    assert [line.strip() for line in fid if 'name:' in line and 'display' not in line] == [
        'name: "broccoli"', 'name: "person"']
  assert ('classes (--classes): broccoli (Open Images id /m/coco56) -> 1, person (Open Images '
          'id /m/coco1) -> 2') in conversion.format_summary(result)


def test_raw_features_class_text_and_clipped_boxes(png_run, data):
  # Read without the decoder (which clips boxes itself): the converter clipped them.
  out, _ = png_run
  for record in read_records(os.path.join(out, 'oid_train.record-*')):
    feature = tf.train.Example.FromString(record).features.feature
    image_id = feature['image/source_id'].bytes_list.value[0].decode()
    instances = [i for i in data['instances'] if i.image_id == image_id]
    assert [t.decode() for t in feature['image/object/class/text'].bytes_list.value] == [
        i.name for i in instances]
    assert list(feature['image/object/is_crowd'].int64_list.value) == [0] * len(instances)
    for index, key in enumerate(('xmin', 'xmax', 'ymin', 'ymax')):
      np.testing.assert_allclose(
          feature['image/object/bbox/' + key].float_list.value,
          [data['broken_boxes'][i.mask_path][index] for i in instances], atol=1e-7, rtol=0)


def test_masks_are_resized_with_nearest_neighbour(tmp_path):
  # A 4x4 mask whose pixels (odd row, odd column) are set, read for a 2x2 image: nearest-
  # neighbour (PIL samples source pixel 2i + 1) keeps the 4 set pixels; any averaging filter
  # would give a quarter-filled, i.e. empty, mask.
  path = str(tmp_path / 'mask.png')
  mask = np.zeros([4, 4], np.uint8)
  mask[1::2, 1::2] = 255
  Image.fromarray(mask).save(path)
  np.testing.assert_array_equal(oid_tf_record.read_mask(path, 2, 2), np.ones([2, 2]))
  # 6 x 4 (HxW) to 3 x 2: rows and columns are not swapped.
  mask = np.zeros([6, 4], np.uint8)
  mask[5, 1] = 1
  Image.fromarray(mask).save(path)
  np.testing.assert_array_equal(oid_tf_record.read_mask(path, 3, 2), [[0, 0], [0, 0], [1, 0]])


def test_unknown_class_is_a_classes_error_with_a_suggestion(data):
  with pytest.raises(coco_annotations.ClassesError,
                     match=r"--classes: 'brocoli' is not a display name or /m/ id of .*"
                     r"class-descriptions.csv \(did you mean 'broccoli'\?\); valid names \(80\)"):
    oid_annotations.prepare([('train', data['csv'], data['image_dir'], data['mask_dir'])],
                            data['descriptions'], classes=['brocoli'])


def test_input_errors_name_the_file(data, tmp_path):
  bad = str(tmp_path / 'bad.csv')
  oid_fixture.write_csv(bad, [], header=['MaskPath', 'ImageID', 'LabelName', 'BoxXMin'])
  with pytest.raises(coco_annotations.ConversionError,
                     match=r'bad.csv: the header has no BoxXMax, BoxYMin, BoxYMax columns'):
    oid_annotations.prepare([('train', bad, data['image_dir'], data['mask_dir'])],
                            data['descriptions'])
  no_label = str(tmp_path / 'desc.csv')
  with open(no_label, 'w') as fid:
    fid.write('/m/coco1,person\n')
  with pytest.raises(coco_annotations.ConversionError,
                     match=r'train-annotations-object-segmentation.csv has LabelName /m/coco\d+ '
                     r'\(and 9 more\), which .*desc.csv does not list'):
    oid_annotations.prepare([('train', data['csv'], data['image_dir'], data['mask_dir'])],
                            no_label)
  with pytest.raises(coco_annotations.ConversionError,
                     match=r'No mask of the first 19 row\(s\) of .* is in .*images'):
    oid_annotations.prepare([('train', data['csv'], data['image_dir'], data['image_dir'])],
                            data['descriptions'])


def test_cli_writes_the_records_and_a_bad_flag_exits_2(data, tmp_path):
  out = str(tmp_path / 'records')
  args = [sys.executable, SCRIPT, '--noprogress', '--train_annotations_file=' + data['csv'],
          '--train_image_dir=' + data['image_dir'], '--train_mask_dir=' + data['mask_dir'],
          '--class_descriptions_file=' + data['descriptions'], '--output_dir=' + out]
  bad = subprocess.run(args + ['--min_box_mask_iou=2'], capture_output=True, text=True,
                       check=False)
  assert bad.returncode == 2, bad.stderr
  assert bad.stderr.strip().splitlines() == [
      'Error: flag --min_box_mask_iou=2: 2.0 is not a number in the range [0.0, 1.0]']
  ok = subprocess.run(args + ['--include_masks', '--classes=giraffe,Orange'],
                      capture_output=True, text=True, check=False)
  assert ok.returncode == 0, ok.stderr[-2000:]
  assert ('classes (--classes): giraffe (Open Images id /m/coco25) -> 1, orange (Open Images id '
          '/m/coco55) -> 2') in ok.stdout
  assert 'instances written: 4 of 19' in ok.stdout
  assert 'images without an instance of the chosen classes: 3 (dropped' in ok.stdout
  assert sorted(os.listdir(out)) == ['conversion_summary.txt', 'label_map.pbtxt',
                                     'oid_train.record-00000-of-00001']


def test_keep_empty_images_writes_the_other_images_as_negatives(data, tmp_path):
  result = convert(data, str(tmp_path / 'out'), classes=['broccoli'], keep_empty_images=True)
  (summary,) = result['splits']
  assert (summary.images_written, summary.images_without_instances) == (4, 3)
  assert summary.images_without_chosen_class == 3
  assert result['images_kept_as_negatives'] == 3 and result['images_dropped_without_class'] == 0
  assert summary.instances_written == 1
  with pytest.raises(coco_annotations.ClassesError, match='--keep_empty_images only applies'):
    convert(data, str(tmp_path / 'out2'), keep_empty_images=True)


def test_csv_columns_in_any_order_extra_columns_and_descriptions_without_header(tmp_path):
  path = str(tmp_path / 'seg.csv')
  with open(path, 'w', encoding='utf-8-sig', newline='') as fid:  # with a byte-order mark
    fid.write('ImageID,Extra,BoxYMax,BoxYMin,BoxXMax,BoxXMin,LabelName,MaskPath\n'
              'abc,1,0.9,0.1,0.8,0.2,/m/b,abc_m.png\n'
              'abd,2,0.5,0.4,nan,0.2,/m/a,abd_m.png\n')
  read = oid_annotations.read_segmentation_csv(path, {'/m/b': 1})
  assert read['num_rows'] == 2 and read['rows_other_classes'] == 1
  assert read['image_ids'] == ['abc', 'abd']
  ((instance, label),) = read['rows_by_image']['abc']
  assert label == '/m/b'
  assert instance == oid_annotations.OidInstance('abc_m.png', 1, 0.2, 0.8, 0.1, 0.9)
  descriptions_path = str(tmp_path / 'descriptions.csv')
  with open(descriptions_path, 'w') as fid:
    fid.write('/m/a,Apple\n/m/b,Banana\n/m/c,apple\n')
  descriptions = oid_annotations.read_class_descriptions(descriptions_path)
  assert descriptions == {'/m/a': 'Apple', '/m/b': 'Banana', '/m/c': 'apple'}
  # 'apple' is exact for /m/c; 'banana' picks Banana ignoring case; /m/a by id.
  chosen = oid_annotations.resolve_classes(['banana', 'apple', '/m/a'],
                                           descriptions, descriptions_path)
  assert [(c.name, c.source_id, c.id) for c in chosen] == [
      ('Banana', '/m/b', 1), ('apple', '/m/c', 2), ('Apple', '/m/a', 3)]
  with pytest.raises(coco_annotations.ClassesError,
                     match=r"'APPLE' names 2 classes of .*descriptions.csv \(/m/a=Apple, "
                     r"/m/c=apple\): give the /m/ id"):
    oid_annotations.resolve_classes(['APPLE'], descriptions, descriptions_path)
