"""train_input / eval_input on real coco128_seg records (PNG and numerical masks)."""
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection import inputs
from object_detection.builders import dataset_builder
from object_detection.builders import image_resizer_builder
from object_detection.data_decoders import bad_examples
from object_detection.data_decoders import tf_example_decoder
from object_detection.protos import eval_pb2
from object_detection.protos import input_reader_pb2
from object_detection.protos import model_pb2
from object_detection.protos import train_pb2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import COCO128_VAL_JSON  # pylint: disable=g-import-not-at-top,wrong-import-position
from test_dataset_builder import make_records  # pylint: disable=g-import-not-at-top,wrong-import-position

NUM_IMAGES = 3
NUM_CLASSES = 90
MAX_BOXES = 12
RESIZER = 'keep_aspect_ratio_resizer { min_dimension: 48 max_dimension: 64 pad_to_max_dimension: true }'


@pytest.fixture(scope='module')
def records(tmp_path_factory):
  root = tmp_path_factory.mktemp('inputs')
  return {
      'png': make_records(str(root / 'png'), NUM_IMAGES, num_shards=1),
      'numerical': make_records(str(root / 'num'), NUM_IMAGES, mask_type='numerical',
                                num_shards=1),
      'nomask': make_records(str(root / 'nomask'), 1, include_masks=False, num_shards=1),
  }


def _model_config(resizer=RESIZER):
  return text_format.Parse('faster_rcnn { num_classes: %d image_resizer { %s } }'
                           % (NUM_CLASSES, resizer), model_pb2.DetectionModel())


def _reader(paths, mask_type='PNG_MASKS', extra=''):
  return text_format.Merge(
      'tf_record_input_reader { input_path: "%s" } shuffle: false num_epochs: 1 '
      'load_instance_masks: true mask_type: %s %s' % (paths[0], mask_type, extra),
      input_reader_pb2.InputReader())


def _train_config(extra=''):
  return text_format.Parse('batch_size: 2 max_number_of_boxes: %d %s' % (MAX_BOXES, extra),
                           train_pb2.TrainConfig())


def _decoded(paths, mask_type):
  return list(dataset_builder.build(_reader(paths, mask_type)))


def _check_labels(features, labels, decoded, batch, h, w):
  assert features['image'].dtype == tf.float32 and features['image'].shape == (batch, h, w, 3)
  assert features['true_image_shape'].dtype == tf.int32
  assert features['true_image_shape'].shape == (batch, 3)
  assert features['original_image_spatial_shape'].shape == (batch, 2)
  assert features['source_id'].dtype == tf.string and features['key'].shape == (batch,)
  n = labels['num_groundtruth_boxes'].numpy()
  assert labels['num_groundtruth_boxes'].dtype == tf.int32
  assert labels['groundtruth_boxes'].shape == (batch, MAX_BOXES, 4)
  assert labels['groundtruth_classes'].shape == (batch, MAX_BOXES, NUM_CLASSES)
  assert labels['groundtruth_classes'].dtype == tf.float32
  assert labels['groundtruth_weights'].shape == (batch, MAX_BOXES)
  assert labels['groundtruth_is_crowd'].dtype == tf.bool
  assert labels['groundtruth_area'].dtype == tf.float32
  masks = labels['groundtruth_instance_masks']
  assert masks.dtype == tf.uint8 and masks.shape == (batch, MAX_BOXES, h, w)
  masks = masks.numpy()
  assert set(np.unique(masks)) <= {0, 1}
  for b in range(batch):
    d = decoded[features['source_id'][b].numpy()]
    k = min(d['groundtruth_boxes'].shape[0], MAX_BOXES)
    assert n[b] == k
    # One-hot: label id -> column id - 1; padded rows all zero with weight 0.
    np.testing.assert_array_equal(
        np.argmax(labels['groundtruth_classes'][b, :k], axis=1) + 1,
        d['groundtruth_classes'].numpy()[:k])
    assert labels['groundtruth_classes'][b, k:].numpy().sum() == 0
    assert np.all(labels['groundtruth_weights'][b, k:].numpy() == 0)
    assert np.all(labels['groundtruth_weights'][b, :k].numpy() == 1)
    np.testing.assert_allclose(labels['groundtruth_boxes'][b, :k], d['groundtruth_boxes'][:k])
    assert masks[b, k:].sum() == 0
    th, tw = features['true_image_shape'][b, :2].numpy()
    assert masks[b, :, th:, :].sum() == 0 and masks[b, :, :, tw:].sum() == 0
    # Every instance covering >= 1 % of the photo survives the down-scaling (nearest neighbour
    # may drop tiny ones, as in the TF OD API).
    big = d['groundtruth_instance_masks'].numpy()[:k].reshape(k, -1).mean(1) >= 0.01
    assert big.any() and np.all(masks[b, :k][big].reshape(big.sum(), -1).max(1) == 1)


@pytest.mark.parametrize('mask_type', ['PNG_MASKS', 'NUMERICAL_MASKS'])
def test_train_input_shapes_dtypes_padding(records, mask_type):
  paths = records['png' if mask_type == 'PNG_MASKS' else 'numerical']
  decoded = {d['source_id'].numpy(): d for d in _decoded(paths, mask_type)}
  ds = inputs.train_input(_train_config(), _reader(paths, mask_type), _model_config())
  batches = list(ds)
  assert len(batches) == NUM_IMAGES // 2  # drop_remainder for training.
  features, labels = batches[0]
  _check_labels(features, labels, decoded, 2, 64, 64)
  # No model: the resizer only, pixels stay 0..255.
  assert features['image'].numpy().max() > 2


def test_train_input_with_augmentation(records):
  config = _train_config('data_augmentation_options { random_horizontal_flip { probability: 1.0 } }'
                         ' data_augmentation_options { random_adjust_brightness {} }')
  features, labels = next(iter(inputs.train_input(config, _reader(records['png']),
                                                  _model_config())))
  boxes = labels['groundtruth_boxes'].numpy()
  n = labels['num_groundtruth_boxes'].numpy()
  masks = labels['groundtruth_instance_masks'].numpy()
  for b in range(2):
    th, tw = features['true_image_shape'][b, :2].numpy()
    for i in range(n[b]):
      ys, xs = np.nonzero(masks[b, i])
      if not xs.size:
        continue  # A tiny instance can vanish at 64 px.
      ymin, xmin, ymax, xmax = boxes[b, i] * [th, tw, th, tw]
      assert xs.min() >= xmin - 1.5 and xs.max() + 1 <= xmax + 1.5


def test_unsupported_augmentation_names_step(records):
  config = _train_config('data_augmentation_options { ssd_random_crop {} }')
  with pytest.raises(ValueError, match='ssd_random_crop'):
    inputs.train_input(config, _reader(records['png']), _model_config())


class _PadToMultipleModel(object):
  """Minimal `preprocess` as the real meta-architecture: resize, pad to a multiple of 32, scale."""

  def __init__(self, resizer):
    self._resizer = resizer

  def preprocess(self, images):
    def one(image):
      out = self._resizer(image)
      return out[0], out[-1]
    resized, shapes = tf.map_fn(one, images, fn_output_signature=(tf.float32, tf.int32))
    h, w = tf.shape(resized)[1], tf.shape(resized)[2]
    resized = tf.pad(resized, [[0, 0], [0, (32 - h % 32) % 32], [0, (32 - w % 32) % 32], [0, 0]])
    return resized / 127.5 - 1., shapes


def test_train_input_with_model_preprocess(records):
  resizer = 'keep_aspect_ratio_resizer { min_dimension: 40 max_dimension: 50 }'
  model_config = _model_config(resizer)
  model = _PadToMultipleModel(image_resizer_builder.build(model_config.faster_rcnn.image_resizer))
  features, labels = next(iter(inputs.train_input(
      _train_config(), _reader(records['png']), model_config, model=model)))
  image = features['image'].numpy()
  assert image.shape[1] % 32 == 0 and image.shape[2] % 32 == 0
  assert image.min() >= -1 and image.max() <= 1
  assert labels['groundtruth_instance_masks'].shape[2:] == image.shape[1:3]
  assert features['true_image_shape'].numpy()[:, :2].max() == 50


def test_eval_input_original_image_and_masks(records):
  paths = records['png']
  decoded = {d['source_id'].numpy(): d for d in _decoded(paths, 'PNG_MASKS')}
  eval_config = text_format.Parse('batch_size: 2', eval_pb2.EvalConfig())
  reader = _reader(paths, extra='max_number_of_boxes: %d' % MAX_BOXES)
  batches = list(inputs.eval_input(eval_config, reader, _model_config()))
  assert [f['image'].shape[0] for f, _ in batches] == [2, 1]  # every image, last batch smaller.
  for features, labels in batches:
    batch = features['image'].shape[0]
    _check_labels(features, labels, decoded, batch, 64, 64)
    orig = features['original_image']
    omasks = labels['original_groundtruth_instance_masks']
    assert orig.dtype == tf.uint8 and omasks.dtype == tf.uint8
    for b in range(batch):
      d = decoded[features['source_id'][b].numpy()]
      h0, w0 = features['original_image_spatial_shape'][b].numpy()
      assert (h0, w0) == tuple(d['image'].shape[:2])
      np.testing.assert_array_equal(orig[b, :h0, :w0].numpy(), d['image'].numpy())
      k = labels['num_groundtruth_boxes'][b].numpy()
      np.testing.assert_array_equal(omasks[b, :k, :h0, :w0].numpy(),
                                    d['groundtruth_instance_masks'].numpy()[:k])


def test_missing_masks_error_names_file(records):
  with pytest.raises(ValueError) as e:
    inputs.train_input(_train_config(), _reader(records['nomask']), _model_config())
  assert records['nomask'][0] in str(e.value)
  assert '--include_masks' in str(e.value)


def test_label_id_beyond_num_classes_names_record(records):
  model_config = text_format.Parse('faster_rcnn { num_classes: 2 image_resizer { %s } }'
                                   % RESIZER, model_pb2.DetectionModel())
  with pytest.raises(tf.errors.InvalidArgumentError, match='source_id'):
    next(iter(inputs.train_input(_train_config(), _reader(records['png']), model_config)))


def test_eval_without_retain_original_images_keeps_original_masks(records):
  eval_config = text_format.Parse('batch_size: 2 retain_original_images: false',
                                  eval_pb2.EvalConfig())
  features, labels = next(iter(inputs.eval_input(eval_config, _reader(records['png']),
                                                 _model_config())))
  assert 'original_image' not in features
  assert labels['original_groundtruth_instance_masks'].dtype == tf.uint8


def test_dropped_objects_take_their_weights_and_masks_with_them(records):
  """A NaN box and a class id -1 drop the object from every per-box field, weights included."""
  decoded = max(_decoded(records['png'], 'PNG_MASKS'),
                key=lambda d: int(d['groundtruth_boxes'].shape[0]))
  n = int(decoded['groundtruth_boxes'].shape[0])
  assert n >= 4
  tensor_dict = dict(decoded)
  boxes = decoded['groundtruth_boxes'].numpy()
  boxes[1, 2] = np.nan
  classes = decoded['groundtruth_classes'].numpy()
  classes[2] = inputs.UNRECOGNIZED_LABEL
  weights = np.arange(1, n + 1, dtype=np.float32)
  tensor_dict.update(groundtruth_boxes=tf.constant(boxes), groundtruth_classes=tf.constant(classes),
                     groundtruth_weights=tf.constant(weights))
  resizer = inputs.get_image_resizer_fn(_model_config())
  out = inputs.transform_input_data(tensor_dict, None, resizer, NUM_CLASSES,
                                    retain_original_image=True)
  keep = [i for i in range(n) if i not in (1, 2)]
  assert int(out['num_groundtruth_boxes']) == n - 2
  np.testing.assert_array_equal(out['groundtruth_weights'], weights[keep])
  np.testing.assert_array_equal(out['groundtruth_boxes'], boxes[keep])
  np.testing.assert_array_equal(np.argmax(out['groundtruth_classes'], 1) + 1, classes[keep])
  for key in ('groundtruth_is_crowd', 'groundtruth_area', 'groundtruth_difficult'):
    np.testing.assert_array_equal(out[key], decoded[key].numpy()[keep])
  assert out['groundtruth_instance_masks'].shape[0] == n - 2
  np.testing.assert_array_equal(out['original_groundtruth_instance_masks'],
                                decoded['groundtruth_instance_masks'].numpy()[keep])


def test_class_id_zero_is_an_error_not_an_empty_one_hot(records):
  decoded = _decoded(records['png'], 'PNG_MASKS')[0]
  classes = decoded['groundtruth_classes'].numpy()
  classes[0] = 0
  tensor_dict = dict(decoded, groundtruth_classes=tf.constant(classes))
  resizer = inputs.get_image_resizer_fn(_model_config())
  with pytest.raises(tf.errors.InvalidArgumentError, match='outside \\[1, num_classes=90\\]'):
    inputs.transform_input_data(tensor_dict, None, resizer, NUM_CLASSES)


# ------------------------------------------------ objects dropped by the label map / NaN boxes
# As the TF OD API: a class text not in the label map decodes to -1 and a NaN box stays NaN; the
# pipeline drops those objects. Here they are also counted (bad_examples), reported once per
# summary, never per record.
_SUBSET_LABEL_MAP = 'item { name: "person" id: 1 }\nitem { name: "car" id: 2 }\n'
_SUBSET_IDS = {'person': 1, 'car': 2}


def _coco_objects(source_ids):
  """{source_id: [(category name, normalized box)]} from the COCO JSON the records came from."""
  with open(COCO128_VAL_JSON) as f:
    coco = json.load(f)
  names = {c['id']: c['name'] for c in coco['categories']}
  images = {str(im['id']): im for im in coco['images'] if str(im['id']) in source_ids}
  objects = {sid: [] for sid in images}
  for ann in coco['annotations']:
    image = images.get(str(ann['image_id']))
    if image is not None:
      x, y, w, h = ann['bbox']
      box = [y / image['height'], x / image['width'], (y + h) / image['height'],
             (x + w) / image['width']]
      objects[str(ann['image_id'])].append((names[ann['category_id']], box))
  return objects


def _new_counters(build):
  """Runs build(); returns (its result, the bad_examples counters it registered)."""
  before = len(bad_examples._ALL)  # pylint: disable=protected-access
  result = build()
  return result, bad_examples._ALL[before:]  # pylint: disable=protected-access


def _subset_eval(paths, tmp_path, extra=''):
  label_map = tmp_path / 'person_car.pbtxt'
  label_map.write_text(_SUBSET_LABEL_MAP)
  model_config = text_format.Parse('faster_rcnn { num_classes: 2 image_resizer { %s } }'
                                   % RESIZER, model_pb2.DetectionModel())
  reader = _reader(paths, extra='label_map_path: "%s" max_number_of_boxes: 20 %s'
                   % (label_map, extra))
  eval_config = text_format.Parse('batch_size: 1', eval_pb2.EvalConfig())
  dataset, counters = _new_counters(
      lambda: inputs.eval_input(eval_config, reader, model_config))
  counter, = [c for c in counters if c.label_map_path == str(label_map)]
  return dataset, counter


def test_label_map_with_two_classes_trains_on_those_and_counts_the_rest(records, tmp_path,
                                                                         caplog):
  dataset, counter = _subset_eval(records['png'], tmp_path)
  batches = list(dataset)
  source_ids = {f['source_id'][0].numpy().decode() for f, _ in batches}
  assert len(source_ids) == NUM_IMAGES
  objects = _coco_objects(source_ids)
  for features, labels in batches:
    kept = [(name, box) for name, box in objects[features['source_id'][0].numpy().decode()]
            if name in _SUBSET_IDS]
    k = int(labels['num_groundtruth_boxes'][0])
    assert k == len(kept)
    np.testing.assert_array_equal(np.argmax(labels['groundtruth_classes'][0, :k], 1) + 1,
                                  [_SUBSET_IDS[name] for name, _ in kept])
    np.testing.assert_allclose(labels['groundtruth_boxes'][0, :k],
                               np.reshape([b for _, b in kept], [-1, 4]), atol=1e-6)
    assert labels['original_groundtruth_instance_masks'].shape[1] == 20
  other = {}
  for image_objects in objects.values():
    for name, _ in image_objects:
      if name not in _SUBSET_IDS:
        other[name] = other.get(name, 0) + 1
  # These three images hold persons and cars and 5 objects of 4 other classes.
  assert sum(other.values()) == 5 and len(other) == 4
  assert counter.unrecognized_classes == other
  assert counter.num_unrecognized_objects == 5 and counter.num_nan_box_objects == 0
  # One log line for the whole pass (the first drop), not one per record.
  logged = [r.getMessage() for r in caplog.records if 'not in the label map' in r.getMessage()]
  assert len(logged) == 1 and 'skipping objects whose class is not in the label map' in logged[0]
  lines = [line for line in bad_examples.summary_lines() if counter.label_map_path in line]
  assert lines == [
      '%s: skipped 5 object(s) of 4 class(es) not in the label map %s (truck 2, clock 1, train 1,'
      ' umbrella 1). They are ignored, as in the TF OD API; add the classes to the label map to '
      'train on them.' % (records['png'][0], counter.label_map_path)]
  # A second pass (the next evaluation) is reported with what it added.
  list(dataset)
  assert counter.num_unrecognized_objects == 10
  lines = [line for line in bad_examples.summary_lines() if counter.label_map_path in line]
  assert len(lines) == 1 and 'skipped 10 object(s) of 4 class(es)' in lines[0]
  assert '; 5 of them since the previous report' in lines[0]
  assert not [line for line in bad_examples.summary_lines() if counter.label_map_path in line
              and 'since the previous report' not in line and 'skipped 10' not in line]


def test_nan_box_object_is_dropped_and_counted(records, tmp_path):
  """A real record with one NaN coordinate: that object alone is dropped, and counted."""
  raw = next(iter(tf.data.TFRecordDataset(records['png'][0]))).numpy()
  example = tf.train.Example.FromString(raw)
  feature = example.features.feature
  source_id = feature['image/source_id'].bytes_list.value[0].decode()
  texts = [t.decode() for t in feature['image/object/class/text'].bytes_list.value]
  # Image 36: an umbrella (NaN box below, class not in the person / car map) and a person.
  assert texts == ['umbrella', 'person']
  feature['image/object/bbox/xmin'].float_list.value[0] = float('nan')
  path = str(tmp_path / 'nan.record')
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(example.SerializeToString())
  boxes = np.array([feature['image/object/bbox/' + k].float_list.value
                    for k in ('ymin', 'xmin', 'ymax', 'xmax')]).T
  # No label map (class/label ids, all known): only the NaN object drops.
  eval_config = text_format.Parse('batch_size: 1', eval_pb2.EvalConfig())
  reader = _reader([path], extra='max_number_of_boxes: 20')
  dataset, counters = _new_counters(
      lambda: inputs.eval_input(eval_config, reader, _model_config()))
  (_, labels), = list(dataset)
  counter, = counters
  assert int(labels['num_groundtruth_boxes'][0]) == 1
  np.testing.assert_allclose(labels['groundtruth_boxes'][0, :1], boxes[1:], atol=1e-6)
  np.testing.assert_array_equal(np.argmax(labels['groundtruth_classes'][0, :1], 1) + 1, [1])
  assert counter.num_nan_box_objects == 1 and counter.num_unrecognized_objects == 0
  lines = [line for line in bad_examples.summary_lines() if line.startswith(path + ':')]
  assert lines == ['%s: skipped 1 object(s) whose box has a NaN coordinate (first in record '
                   'image/source_id=%s), as in the TF OD API.' % (path, source_id)]
  # With the person / car label map the umbrella is both NaN and unknown: it counts as NaN only
  # (the TF OD API drops NaN boxes first); the person is kept.
  dataset, counter = _subset_eval([path], tmp_path)
  (_, labels), = list(dataset)
  assert int(labels['num_groundtruth_boxes'][0]) == 1
  assert counter.num_nan_box_objects == 1 and counter.num_unrecognized_objects == 0


def test_count_dropped_objects_calls_the_host_only_for_drops():
  counter = bad_examples.SkippedRecords('unit')
  calls = []
  counter.record_dropped_objects = lambda *args: calls.append(args)
  nan = float('nan')
  tensor_dict = {
      'groundtruth_boxes': tf.constant([[0, 0, 1, 1], [nan, 0, 1, 1], [0, 0, 1, 1]], tf.float32),
      'groundtruth_classes': tf.constant([1, -1, -1], tf.int64),
      'source_id': tf.constant('9'),
      tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY: tf.constant(['', 'bus', 'cow']),
  }
  fn = tf.function(lambda d: bad_examples.count_dropped_objects(d, counter))
  out = fn(tensor_dict)
  assert tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY not in out
  assert calls == [(1, [b'cow'], b'9')]  # the NaN object is counted as NaN, not as 'bus'
  fn(dict(tensor_dict, groundtruth_classes=tf.constant([1, 2, 3], tf.int64),
          groundtruth_boxes=tf.zeros([3, 4])))
  assert len(calls) == 1  # nothing dropped: no host call
