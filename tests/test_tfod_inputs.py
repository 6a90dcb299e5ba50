"""Input pipeline data semantics against the TF OD API's inputs.py (golden fixtures).

Fixtures: tools/tfod_golden/inputs.py ran the TF OD API's `train_input`, `eval_input` and
`transform_input_data` on three real coco128_seg photos (tests/testdata/tfod_golden/inputs/
sample.tfrecords, which also feeds our side). They carry a class id -1 (dropped), non-uniform
image/object/weight, an is_crowd object, more objects than max_number_of_boxes (clipped) and,
for `transform_input_data`, a NaN box and image-level class ids.

Conversions made before comparing (documented contract differences, inputs.py docstring):
  * boxes: ours are normalized to the true (unpadded) image, the TF OD API's to the padded
    image, so ours * true_size / padded_size must equal theirs;
  * groundtruth_weights are compared on the kept rows: the TF OD API does not filter them with
    the boxes, so past the kept rows it leaves the dropped objects' weights where ours pads 0.
"""
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection import inputs
from object_detection.builders import image_resizer_builder
from object_detection.core import standard_fields as fields
from object_detection.data_decoders import tf_example_decoder
from object_detection.protos import eval_pb2
from object_detection.protos import image_resizer_pb2
from object_detection.protos import input_reader_pb2
from object_detection.protos import model_pb2
from object_detection.protos import train_pb2

_F = fields.InputDataFields
_DIR = os.path.join(os.path.dirname(__file__), 'testdata', 'tfod_golden', 'inputs')
_RECORD = os.path.join(_DIR, 'sample.tfrecords')
# Must match tools/tfod_golden/inputs.py.
NUM_CLASSES = 90
MAX_BOXES = 8
BATCH_SIZE = 2
RESIZER = ('keep_aspect_ratio_resizer { min_dimension: 64 max_dimension: 96 '
           'pad_to_max_dimension: true }')
LABELED_CLASSES = [1, -1, 18, 1]


class _ResizerModel(object):
  """Stand-in model whose `preprocess` is the image resizer (as in the fixture script)."""

  def __init__(self, resizer_fn):
    self._resizer_fn = resizer_fn

  def preprocess(self, images):
    resized, true_shape = self._resizer_fn(images[0])
    return resized[tf.newaxis], true_shape[tf.newaxis]


def _resizer_fn():
  return image_resizer_builder.build(text_format.Parse(RESIZER, image_resizer_pb2.ImageResizer()))


def _configs():
  model_config = text_format.Parse(
      'faster_rcnn { num_classes: %d image_resizer { %s } }' % (NUM_CLASSES, RESIZER),
      model_pb2.DetectionModel())
  reader = text_format.Parse(
      'tf_record_input_reader { input_path: "%s" } shuffle: false num_epochs: 1 num_readers: 1 '
      'load_instance_masks: true mask_type: PNG_MASKS max_number_of_boxes: %d'
      % (_RECORD, MAX_BOXES), input_reader_pb2.InputReader())
  train_config = text_format.Parse('batch_size: %d max_number_of_boxes: %d'
                                   % (BATCH_SIZE, MAX_BOXES), train_pb2.TrainConfig())
  eval_config = text_format.Parse('batch_size: %d' % BATCH_SIZE, eval_pb2.EvalConfig())
  return model_config, reader, train_config, eval_config


def _golden(name, prefix):
  data = np.load(os.path.join(_DIR, name))
  out = {k.split('/', 1)[1]: data[k] for k in data.files if k.startswith(prefix + '/')}
  shape = tuple(out.pop('masks_shape'))
  out['masks'] = np.unpackbits(out['masks'])[:int(np.prod(shape))].reshape(shape)
  return out


def _to_padded_frame(boxes, true_shape, padded_hw):
  """Our true-image-normalized boxes [..., 4] -> normalized to the padded image."""
  scale = np.concatenate([true_shape[..., :2] / np.asarray(padded_hw, np.float32)] * 2, -1)
  return boxes * scale[..., np.newaxis, :] if boxes.ndim == 3 else boxes * scale


def _compare(ours, ref):
  """Asserts our (features+labels) dict equals the TF OD API's, after the documented conversions."""
  np.testing.assert_array_equal(ours[_F.true_image_shape], ref['true_image_shape'])
  np.testing.assert_array_equal(ours[_F.original_image_spatial_shape],
                                ref['original_image_spatial_shape'])
  np.testing.assert_array_equal(ours[_F.num_groundtruth_boxes], ref['num_groundtruth_boxes'])
  # Same resizer kernels on the same decoded pixels.
  np.testing.assert_allclose(ours[_F.image], ref['image'], rtol=0, atol=1e-4)
  padded_hw = ref['image'].shape[-3:-1]
  np.testing.assert_allclose(
      _to_padded_frame(ours[_F.groundtruth_boxes], ours[_F.true_image_shape], padded_hw),
      ref['groundtruth_boxes'], rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(ours[_F.groundtruth_classes], ref['groundtruth_classes'])
  np.testing.assert_array_equal(ours[_F.groundtruth_is_crowd], ref['groundtruth_is_crowd'])
  np.testing.assert_allclose(ours[_F.groundtruth_area], ref['groundtruth_area'], rtol=1e-6)
  np.testing.assert_array_equal(ours[_F.groundtruth_instance_masks], ref['masks'])
  nums = np.atleast_1d(ours[_F.num_groundtruth_boxes])
  weights = ours[_F.groundtruth_weights].reshape(len(nums), -1)
  ref_weights = ref['groundtruth_weights'].reshape(len(nums), -1)
  for b, n in enumerate(nums):
    np.testing.assert_array_equal(weights[b, :n], ref_weights[b, :n])
    assert np.all(weights[b, n:] == 0)


def _numpy(*dicts):
  out = {}
  for d in dicts:
    out.update({k: v.numpy() for k, v in d.items()})
  return out


def test_train_input_matches_tfod():
  model_config, reader, train_config, _ = _configs()
  model = _ResizerModel(_resizer_fn())
  batches = list(inputs.train_input(train_config, reader, model_config, model=model))
  ref = _golden('pipeline.npz', 'train')
  assert len(batches) == int(ref['num_batches']) == 1  # drop_remainder: true drops record 3.
  ours = _numpy(*batches[0])
  _compare(ours, ref)
  # What the fixtures hold: photo 71 has 16 objects, one of class -1 -> 15 -> clipped to 8;
  # photo 144 has 3, its last of class -1 -> 2, with image/object/weight 0.25 and 0.5.
  np.testing.assert_array_equal(ours[_F.num_groundtruth_boxes], [8, 2])
  np.testing.assert_array_equal(ours[_F.groundtruth_weights][1, :3], [0.25, 0.5, 0.])
  assert ours[_F.groundtruth_is_crowd][0, 1]
  # The TF OD API leaves the dropped object's weight behind the kept rows (not filtered).
  np.testing.assert_array_equal(ref['groundtruth_weights'][1, :3], [0.25, 0.5, 1.5])


def test_eval_input_matches_tfod_and_keeps_the_partial_batch(capfd):
  model_config, reader, _, eval_config = _configs()
  model = _ResizerModel(_resizer_fn())
  batches = list(inputs.eval_input(eval_config, reader, model_config, model=model))
  ref = _golden('pipeline.npz', 'eval')
  # The TF OD API drops the third image (drop_remainder: true); we evaluate it and log it.
  assert int(ref['num_batches']) == 1
  assert [int(f[_F.image].shape[0]) for f, _ in batches] == [2, 1]
  assert 'keeping a last partial batch of 1 example(s)' in capfd.readouterr().err
  _compare(_numpy(*batches[0]), ref)
  features, labels = batches[1]
  assert features[_F.source_id].numpy().tolist() == [b'36']
  assert int(labels[_F.num_groundtruth_boxes][0]) == 2


def test_transform_input_data_drops_nan_boxes_and_k_hots_image_classes():
  resizer_fn = _resizer_fn()
  decoder = tf_example_decoder.TfExampleDecoder(load_instance_masks=True,
                                                instance_mask_type='PNG_MASKS')
  tensor_dict = decoder.decode(next(iter(tf.data.TFRecordDataset(_RECORD))))
  boxes = tensor_dict[_F.groundtruth_boxes].numpy()
  boxes[0, 0] = np.nan
  tensor_dict[_F.groundtruth_boxes] = tf.constant(boxes)
  tensor_dict[_F.groundtruth_image_classes] = tf.constant(LABELED_CLASSES, tf.int64)
  out = inputs.transform_input_data(tensor_dict, _ResizerModel(resizer_fn).preprocess,
                                    resizer_fn, NUM_CLASSES)
  # 16 objects - 1 NaN box - 1 class -1 = 14 kept before clipping.
  assert int(out[_F.num_groundtruth_boxes]) == 14
  out = _numpy(inputs.pad_to_max_boxes(out, MAX_BOXES))
  ref = _golden('transform.npz', 'transform')
  _compare(out, ref)
  np.testing.assert_array_equal(out[_F.groundtruth_image_classes],
                                ref['groundtruth_image_classes'])
  assert np.flatnonzero(out[_F.groundtruth_image_classes]).tolist() == [0, 17]


def test_k_hot_empty_means_every_class_labeled():
  k_hot = inputs.convert_labeled_classes_to_k_hot(tf.constant([], tf.int64), 4,
                                                  map_empty_to_ones=True)
  np.testing.assert_array_equal(k_hot, [1, 1, 1, 1])
  k_hot = inputs.convert_labeled_classes_to_k_hot(tf.constant([2, 2, 4], tf.int64), 4)
  np.testing.assert_array_equal(k_hot, [0, 1, 0, 1])
  with pytest.raises(tf.errors.InvalidArgumentError, match='num_classes=4'):
    inputs.convert_labeled_classes_to_k_hot(tf.constant([5], tf.int64), 4)


def test_labeled_and_image_classes_together_is_an_error():
  tensor_dict = {_F.groundtruth_labeled_classes: tf.constant([1], tf.int64),
                 _F.groundtruth_image_classes: tf.constant([1], tf.int64)}
  with pytest.raises(KeyError, match='only one'):
    inputs.transform_input_data(tensor_dict, None, None, 3)
