"""Class subsets end to end on the real coco128_seg sample (issue 13).

Conversion: `--classes=person,car` keeps exactly the instances pycocotools' COCO API lists for
those category ids, renumbered 1..K, with the masks of `COCO.annToMask`; the label map holds just
those classes; the dropped counts are pycocotools'. Training input: records of the full
conversion read through a label map that lists a subset of their classes drop the other objects
from every per-box field, count them and log the first one once.
"""
import io
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image
from pycocotools.coco import COCO

from object_detection import inputs
from object_detection.data_decoders import bad_examples
from object_detection.data_decoders import record_validation
from object_detection.dataset_tools import coco_annotations
from object_detection.dataset_tools import coco_tf_record
from object_detection.protos import eval_pb2
from object_detection.protos import input_reader_pb2
from object_detection.protos import model_pb2
from object_detection.protos import train_pb2
from object_detection.utils import label_map_util

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable=g-import-not-at-top,wrong-import-position
from conftest import COCO128_IMAGES, COCO128_TRAIN_JSON, COCO128_VAL_JSON, REPO_ROOT
# pylint: enable=g-import-not-at-top,wrong-import-position

SCRIPT = os.path.join(REPO_ROOT, 'dataset_tools', 'create_coco_tf_record.py')
# person (254 instances) and car (46), the two most frequent classes of the sample; car is given
# by its COCO id to exercise a mixed list.
CLASSES = ['person', 3]
SOURCE_IDS = [1, 3]
SPLITS = [('train', COCO128_IMAGES, COCO128_TRAIN_JSON), ('val', COCO128_IMAGES, COCO128_VAL_JSON)]
JSONS = {'train': COCO128_TRAIN_JSON, 'val': COCO128_VAL_JSON}
RESIZER = ('keep_aspect_ratio_resizer { min_dimension: 48 max_dimension: 64 '
           'pad_to_max_dimension: true }')


def _read(path):
  return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def _objects(example):
  f = example.features.feature
  return {
      'source_id': int(f['image/source_id'].bytes_list.value[0]),
      'labels': list(f['image/object/class/label'].int64_list.value),
      'texts': [t.decode() for t in f['image/object/class/text'].bytes_list.value],
      'xmin': list(f['image/object/bbox/xmin'].float_list.value),
      'ymin': list(f['image/object/bbox/ymin'].float_list.value),
      'masks': list(f['image/object/mask'].bytes_list.value),
      'width': f['image/width'].int64_list.value[0],
      'height': f['image/height'].int64_list.value[0],
  }


@pytest.fixture(scope='module')
def cocos():
  return {split: COCO(path) for split, path in JSONS.items()}


@pytest.fixture(scope='module')
def subset(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('subset') / 'records')
  return coco_tf_record.convert(SPLITS, out, include_masks=True, classes=CLASSES,
                                show_progress=False)


def test_subset_keeps_exactly_the_pycocotools_instances(subset, cocos):
  assert [(c.name, c.source_id, c.id) for c in subset['classes']] == [
      ('person', 1, 1), ('car', 3, 2)]
  new_id = {1: 1, 3: 2}
  total_other = total_dropped_images = 0
  for summary in subset['splits']:
    coco = cocos[summary.split]
    kept_ann_ids = coco.getAnnIds(catIds=SOURCE_IDS)
    # getImgIds(catIds=[...]) is the intersection; an image is kept with either class.
    images_with_class = set(coco.getImgIds(catIds=[1])) | set(coco.getImgIds(catIds=[3]))
    records = [_objects(e) for e in _read(summary.output_files[0])]
    assert sorted(r['source_id'] for r in records) == sorted(images_with_class)
    checked_masks = 0
    for record in records:
      anns = coco.loadAnns(coco.getAnnIds(imgIds=record['source_id'], catIds=SOURCE_IDS))
      assert record['labels'] == [new_id[a['category_id']] for a in anns]
      assert record['texts'] == [coco.loadCats(a['category_id'])[0]['name'] for a in anns]
      np.testing.assert_allclose(record['xmin'],
                                 [a['bbox'][0] / record['width'] for a in anns], atol=1e-6)
      np.testing.assert_allclose(record['ymin'],
                                 [a['bbox'][1] / record['height'] for a in anns], atol=1e-6)
      assert len(record['masks']) == len(anns)
      if checked_masks < 6 and anns:  # a few images, every mask of them
        for png, ann in zip(record['masks'], anns):
          mask = np.asarray(Image.open(io.BytesIO(png)))
          np.testing.assert_array_equal(mask, coco.annToMask(ann))
        checked_masks += 1
    assert checked_masks == 6
    assert summary.instances_written == len(kept_ann_ids)
    assert summary.instances_other_classes == len(coco.getAnnIds()) - len(kept_ann_ids)
    assert summary.images_without_chosen_class == len(coco.getImgIds()) - len(images_with_class)
    assert summary.images_written == len(images_with_class)
    assert summary.images_without_instances == 0
    assert summary.category_counts == {
        new_id[c]: len(coco.getAnnIds(catIds=[c])) for c in SOURCE_IDS}
    total_other += summary.instances_other_classes
    total_dropped_images += summary.images_without_chosen_class
  # The sample's README: 254 persons + 46 cars of 929 instances; 128 images.
  assert subset['instances_written'] == 300
  assert subset['instances_other_classes'] == total_other == 929 - 300
  assert subset['images_dropped_without_class'] == total_dropped_images
  assert subset['images_kept_as_negatives'] == 0
  assert subset['categories'] == {1: 'person', 2: 'car'}
  label_map = label_map_util.load_labelmap(subset['label_map_path'])
  assert [(i.name, i.id, i.display_name) for i in label_map.item] == [
      ('person', 1, 'person'), ('car', 2, 'car')]
  with open(subset['summary_path']) as f:
    text = f.read()
  assert text.strip() == coco_tf_record.format_summary(subset)
  assert 'classes (--classes): person (COCO id 1) -> 1, car (COCO id 3) -> 2' in text
  val = subset['splits'][1]
  assert ('  instances of other classes: %d (dropped)' % val.instances_other_classes) in text
  assert ('  images without an instance of the chosen classes: %d (dropped; --keep_empty_images '
          'writes them as negatives)' % val.images_without_chosen_class) in text
  assert 'renumbered 1..2 as above (the records carry these ids): the model config needs ' \
         'num_classes: 2.' in text


def test_keep_empty_images_writes_the_rest_as_negatives(tmp_path, cocos):
  out = str(tmp_path / 'records')
  result = coco_tf_record.convert(SPLITS[:1], out, include_masks=False,
                                  classes=['car', 'person'], keep_empty_images=True,
                                  show_progress=False)
  coco = cocos['train']
  summary, = result['splits']
  records = {r['source_id']: r for r in (_objects(e) for e in _read(summary.output_files[0]))}
  assert sorted(records) == sorted(coco.getImgIds())  # all 103 images
  with_class = set(coco.getImgIds(catIds=[1])) | set(coco.getImgIds(catIds=[3]))
  negatives = [i for i, r in records.items() if not r['labels']]
  assert sorted(negatives) == sorted(set(coco.getImgIds()) - with_class)
  # 250 and 508 have no annotation at all; the others only other classes.
  assert {250, 508} < set(negatives)
  # Order given on the command line: car -> 1, person -> 2.
  for image_id, record in records.items():
    anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id, catIds=SOURCE_IDS))
    assert record['labels'] == [{3: 1, 1: 2}[a['category_id']] for a in anns]
  assert summary.images_without_instances == len(negatives)
  assert result['images_kept_as_negatives'] == len(negatives)
  assert result['images_dropped_without_class'] == 0
  text = coco_tf_record.format_summary(result)
  assert ('images without an instance of the chosen classes: %d (written as negatives, no '
          'objects: --keep_empty_images)' % len(negatives)) in text
  assert 'car (COCO id 3) -> 1, person (COCO id 1) -> 2' in text


def _cli(args, tmp_path):
  return subprocess.run(
      [sys.executable, SCRIPT, '--noprogress', '--train_image_dir=' + COCO128_IMAGES,
       '--train_annotations_file=' + COCO128_TRAIN_JSON,
       '--output_dir=' + str(tmp_path / 'out')] + args,
      capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize('value,expected', [
    ('persn,car', "Usage error: --classes: 'persn' is not a category name or id of the "
                  "annotation file(s) (did you mean 'person'?); valid names (80): person, "
                  'bicycle, car, motorcycle, airplane, bus, train, truck, boat, traffic light, '
                  'fire hydrant, stop sign and 68 more.'),
    ('person,95', 'Usage error: --classes: 95 is not a category id of the annotation file(s) '
                  '(ids 1..90, 80 categories; e.g. 1=person, 2=bicycle, 3=car, 4=motorcycle, '
                  '5=airplane, 6=bus).'),
    ('person,1', "Usage error: --classes lists 'person' (category id 1) twice (as 'person' and "
                 "'1'): give each class once."),
    (',', 'Usage error: --classes names no class: give one or more category names or ids, '
          'e.g. --classes=person,car.'),
])
def test_bad_classes_value_exits_2_with_one_line(tmp_path, value, expected):
  result = _cli(['--classes=' + value], tmp_path)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [expected]
  assert result.stdout == ''
  assert not os.path.exists(str(tmp_path / 'out'))


def test_keep_empty_images_without_classes_is_a_usage_error(tmp_path):
  result = _cli(['--keep_empty_images'], tmp_path)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      'Usage error: --keep_empty_images only applies with --classes (without it every image is '
      'written, with or without instances): remove it or give --classes.']


def test_resolve_classes_names_ids_and_case():
  categories = {1: 'person', 3: 'car', 18: 'dog', 44: 'Bottle'}
  chosen = coco_annotations.resolve_classes(['dog', '1', 44, 'CAR'], categories)
  assert [(c.name, c.source_id, c.id) for c in chosen] == [
      ('dog', 18, 1), ('person', 1, 2), ('Bottle', 44, 3), ('car', 3, 4)]
  assert coco_annotations.parse_classes_flag(' person, car ,') == ['person', 'car']
  with pytest.raises(coco_annotations.ClassesError, match='must be a list'):
    coco_annotations.resolve_classes('person', categories)
  with pytest.raises(coco_annotations.ClassesError, match=r"'cat' is not a category name"):
    coco_annotations.resolve_classes(['cat'], categories)


# ------------------------------------------------- a subset label map over the full conversion
@pytest.fixture(scope='module')
def full_val(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('full') / 'records')
  result = coco_tf_record.convert(SPLITS[1:], out, include_masks=True, show_progress=False)
  return result['splits'][0].output_files[0]


def _strip_texts(path, out_path, num_records):
  """The first records without image/object/class/text: classes only as COCO ids."""
  with tf.io.TFRecordWriter(out_path) as writer:
    for example in _read(path)[:num_records]:
      del example.features.feature['image/object/class/text']
      writer.write(example.SerializeToString())
  return out_path


def _person_only_eval(path, label_map, num_classes=1):
  model_config = text_format.Parse('faster_rcnn { num_classes: %d image_resizer { %s } }'
                                   % (num_classes, RESIZER), model_pb2.DetectionModel())
  reader = text_format.Merge(
      'tf_record_input_reader { input_path: "%s" } shuffle: false num_epochs: 1 '
      'load_instance_masks: true mask_type: PNG_MASKS max_number_of_boxes: 30 '
      'label_map_path: "%s"' % (path, label_map), input_reader_pb2.InputReader())
  eval_config = text_format.Parse('batch_size: 1 retain_original_images: false',
                                  eval_pb2.EvalConfig())
  before = len(bad_examples._ALL)  # pylint: disable=protected-access
  dataset = inputs.eval_input(eval_config, reader, model_config)
  counter, = bad_examples._ALL[before:]  # pylint: disable=protected-access
  return dataset, counter


def _check_person_only(dataset, coco):
  """Every batch holds exactly the image's persons, in every per-box field."""
  seen = 0
  for features, labels in dataset:
    image_id = int(features['source_id'][0].numpy())
    anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id, catIds=[1]))
    k = int(labels['num_groundtruth_boxes'][0])
    assert k == len(anns)
    assert labels['groundtruth_classes'].shape[-1] == 1
    np.testing.assert_array_equal(labels['groundtruth_classes'][0, :k, 0], np.ones([k]))
    np.testing.assert_array_equal(labels['groundtruth_weights'][0, :k], np.ones([k]))
    np.testing.assert_allclose(labels['groundtruth_area'][0, :k], [a['area'] for a in anns],
                               rtol=1e-5)
    assert not labels['groundtruth_is_crowd'][0, :k].numpy().any()
    original = labels['original_groundtruth_instance_masks'][0].numpy()
    for row, ann in enumerate(anns):
      mask = coco.annToMask(ann)
      np.testing.assert_array_equal(original[row, :mask.shape[0], :mask.shape[1]], mask)
    assert not original[k:].any()
    seen += 1
  return seen


def test_person_only_label_map_drops_the_other_instances_and_counts_them(
    full_val, cocos, tmp_path, caplog):
  coco = cocos['val']
  label_map = tmp_path / 'person.pbtxt'
  label_map.write_text('item { name: "person" id: 1 }\n')
  others = {}
  for ann in coco.loadAnns(coco.getAnnIds()):
    if ann['category_id'] != 1:
      name = coco.loadCats(ann['category_id'])[0]['name']
      others[name] = others.get(name, 0) + 1
  assert sum(others.values()) == 112 - len(coco.getAnnIds(catIds=[1]))

  caplog.set_level(logging.WARNING)
  dataset, counter = _person_only_eval(full_val, str(label_map))
  assert _check_person_only(dataset, coco) == 25
  assert counter.unrecognized_classes == others
  logged = [r.getMessage() for r in caplog.records if 'not in the label map' in r.getMessage()]
  assert len(logged) == 1
  assert 'further ones are counted, not logged' in logged[0]
  lines = [l for l in bad_examples.summary_lines() if counter.label_map_path in l]
  assert len(lines) == 1
  assert lines[0].startswith('%s: skipped %d object(s) of %d class(es) not in the label map %s ('
                             % (full_val, sum(others.values()), len(others), label_map))



def test_label_only_records_drop_the_ids_outside_the_label_map(full_val, cocos, tmp_path, caplog):
  """Records that store only class/label (COCO ids, no texts) read with a person-only label map.

  Ids outside the label map are dropped and counted as the unknown texts are (the TF OD API
  would train on them as unnamed classes, or as all-zero one-hot rows above num_classes).
  """
  coco = cocos['val']
  label_map = tmp_path / 'person.pbtxt'
  label_map.write_text('item { name: "person" id: 1 }\n')
  caplog.set_level(logging.WARNING)
  label_only = _strip_texts(full_val, str(tmp_path / 'label_only.record'), 8)
  dataset, counter = _person_only_eval(label_only, str(label_map))
  assert _check_person_only(dataset, coco) == 8
  image_ids = [int(e.features.feature['image/source_id'].bytes_list.value[0])
               for e in _read(label_only)]
  by_id = {}
  for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_ids)):
    if ann['category_id'] != 1:
      key = '<image/object/class/label %d>' % ann['category_id']
      by_id[key] = by_id.get(key, 0) + 1
  assert counter.unrecognized_classes == by_id
  logged = [r.getMessage() for r in caplog.records if 'not in the label map' in r.getMessage()]
  assert len(logged) == 1 and '<image/object/class/label ' in logged[0]


def test_training_input_with_a_subset_label_map(full_val, tmp_path):
  """train_input: one-hot over the K classes of the label map, no error for the other ids."""
  label_map = tmp_path / 'person_car.pbtxt'
  label_map.write_text('item { name: "person" id: 1 }\nitem { name: "car" id: 2 }\n')
  model_config = text_format.Parse('faster_rcnn { num_classes: 2 image_resizer { %s } }'
                                   % RESIZER, model_pb2.DetectionModel())
  reader = text_format.Merge(
      'tf_record_input_reader { input_path: "%s" } shuffle: false num_epochs: 1 '
      'load_instance_masks: true mask_type: PNG_MASKS label_map_path: "%s"'
      % (full_val, label_map), input_reader_pb2.InputReader())
  train_config = text_format.Parse('batch_size: 5 max_number_of_boxes: 30',
                                   train_pb2.TrainConfig())
  with open(COCO128_VAL_JSON) as f:
    anns = json.load(f)['annotations']
  expected = sum(1 for a in anns if a['category_id'] in (1, 3))
  total = 0
  for _, labels in inputs.train_input(train_config, reader, model_config):
    assert labels['groundtruth_classes'].shape[-1] == 2
    total += int(tf.reduce_sum(labels['num_groundtruth_boxes']))
  assert total == expected == 35


def test_no_wrong_label_map_warning_for_a_subset_label_map(full_val, tmp_path, caplog):
  """The file check warns about a label map none of the records' texts is in, not about a subset.

  The records start with the images without a person, so looking at the first record alone
  would take a person-only label map for the wrong one.
  """
  person = tmp_path / 'person.pbtxt'
  person.write_text('item { name: "person" id: 1 }\n')
  wrong = tmp_path / 'wrong.pbtxt'
  wrong.write_text('item { name: "pedestrian" id: 1 }\n')
  examples = _read(full_val)
  has_person = ['person' in _objects(e)['texts'] for e in examples]
  assert 0 < sum(has_person) < len(examples)
  path = str(tmp_path / 'no_person_first.record')
  with tf.io.TFRecordWriter(path) as writer:
    for _, example in sorted(zip(has_person, examples), key=lambda pair: pair[0]):
      writer.write(example.SerializeToString())
  caplog.set_level(logging.WARNING)
  for label_map in (person, wrong):
    record_validation.validate_records(path, load_instance_masks=True,
                                       instance_mask_type='PNG_MASKS',
                                       label_map_proto_file=str(label_map),
                                       max_records_per_file=1)
  warned = [r.getMessage() for r in caplog.records if 'No class text' in r.getMessage()]
  assert len(warned) == 1 and str(wrong) in warned[0] and str(person) not in warned[0]


@pytest.mark.parametrize('keep_empty_images', [False, True])
def test_image_whose_chosen_instances_are_all_skipped(tmp_path, cocos, keep_empty_images):
  """An image whose only chosen-class instance is skipped (no segmentation) is not a negative.

  It is dropped and counted, or written without objects with keep_empty_images; the instance is
  counted under its skip reason either way.
  """
  coco = cocos['val']
  with open(COCO128_VAL_JSON) as f:
    data = json.load(f)
  car_images = sorted(coco.getImgIds(catIds=[3]))
  person_only = sorted(set(coco.getImgIds(catIds=[1])) - set(car_images))
  image_a, image_b = car_images[0], person_only[0]
  data['images'] = [im for im in data['images'] if im['id'] in (image_a, image_b)]
  data['annotations'] = [a for a in data['annotations'] if a['image_id'] in (image_a, image_b)]
  for ann in data['annotations']:
    if ann['image_id'] == image_a and ann['category_id'] == 3:
      ann['segmentation'] = []
  path = str(tmp_path / 'two_images.json')
  with open(path, 'w') as f:
    json.dump(data, f)
  result = coco_tf_record.convert([('val', COCO128_IMAGES, path)], str(tmp_path / 'out'),
                                  include_masks=True, classes=['car'],
                                  keep_empty_images=keep_empty_images, show_progress=False)
  summary, = result['splits']
  cars_of_a = len(coco.getAnnIds(imgIds=image_a, catIds=[3]))
  assert summary.skipped['empty_or_missing_segmentation'] == cars_of_a
  assert summary.instances_written == 0
  assert summary.instances_other_classes == len(data['annotations']) - cars_of_a
  assert summary.images_without_chosen_class == 2
  written = sorted(_objects(e)['source_id'] for e in _read(summary.output_files[0]))
  if keep_empty_images:
    assert written == sorted([image_a, image_b])
    assert result['images_kept_as_negatives'] == 2
  else:
    assert written == []
    assert result['images_dropped_without_class'] == 2
