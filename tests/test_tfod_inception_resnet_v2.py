"""Golden tests: Inception-ResNet-v2 Faster R-CNN feature extractor vs the TF OD API.

Fixtures: tests/testdata/tfod_golden/inception_resnet_v2/, written in the TF OD API's process by
tools/tfod_golden/inception_resnet_v2.py (its docstring says what each file holds and how to rerun it).
Building Inception-ResNet-v2 takes seconds, so the module builds two extractors only: stride 16 for
training (is_training=True, batch_norm_trainable=True, weight_decay=1e-4), checked against the
reference's inference outputs when called with training=False (its batch norm then uses the moving
statistics, as the reference's frozen extractor does) and against its training outputs with
training=True; and stride 8 with frozen batch norm (is_training=False), which must ignore training=True.
"""

import importlib.util
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection.models import faster_rcnn_inception_resnet_v2_keras_feature_extractor as frcnn_irv2
from object_detection.models.keras_models import inception_resnet_v2
from object_detection.utils import checkpoint_utils

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GOLDEN = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'inception_resnet_v2')
_spec = importlib.util.spec_from_file_location(
    'deterministic_weights', os.path.join(_REPO, 'tools', 'tfod_golden', 'deterministic_weights.py'))
deterministic_weights = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deterministic_weights)

# Measured differences are 0 (same TF build, same ops); the tolerance leaves room for float sums that
# oneDNN / Eigen may split differently across ~200 stacked convolutions on another CPU.
RTOL = 1e-5
ATOL = 1e-5


def _golden(name):
  return np.load(os.path.join(_GOLDEN, name))


def _crops(golden):
  crops = np.random.default_rng(int(golden['box_crops_seed'])).uniform(
      0.0, 2.0, (2, 9, 9, 1088)).astype(np.float32)
  # The same bits as the reference's crops, or the comparison below means nothing.
  np.testing.assert_allclose(crops.astype(np.float64).sum(), float(golden['box_crops_sum']), rtol=1e-12)
  return crops


class _Built(object):

  def __init__(self, is_training, stride, batch_norm_trainable=False, weight_decay=0.0):
    self.extractor = frcnn_irv2.FasterRCNNInceptionResnetV2KerasFeatureExtractor(
        is_training, stride, batch_norm_trainable=batch_norm_trainable, weight_decay=weight_decay)
    self.proposal = self.extractor.get_proposal_feature_extractor_model(
        name='FirstStageFeatureExtractor')
    self.box = self.extractor.get_box_classifier_feature_extractor_model(
        name='SecondStageFeatureExtractor')
    self.proposal(tf.zeros([1, 32, 32, 3]))
    self.box(tf.zeros([1, 1, 1, 1088]))

  def roots(self):
    return {'_feature_extractor_for_proposal_features': self.proposal,
            '_feature_extractor_for_box_classifier_features': self.box}


_VALUES = {}


def _assign_deterministic(built):
  """Sets every variable to value_for(its checkpoint key); values are cached across extractors."""
  for key, var in checkpoint_utils.variable_keys(built.roots()).items():
    if key not in _VALUES:
      _VALUES[key] = deterministic_weights.value_for(key, var.shape)
    var.assign(_VALUES[key])


@pytest.fixture(scope='module')
def stride16():
  return _Built(True, 16, batch_norm_trainable=True, weight_decay=1e-4)


@pytest.fixture(scope='module')
def stride8():
  return _Built(False, 8)


_AUTO_NAME = re.compile(r'^(input|conv2d|freezable_batch_norm|activation|max_pooling2d|'
                        r'average_pooling2d|custom_scale_layer)(_\d+)?$')
_CONFIG_ENTRIES = ('filters', 'kernel_size', 'strides', 'padding', 'dilation_rate', 'use_bias',
                   'activation', 'pool_size', 'axis', 'momentum', 'epsilon', 'center', 'scale')


def _describe_layer(layer):
  """The generator's `describe_layer`: class, explicit name, layout-relevant config."""
  config = layer.get_config()
  parts = [type(layer).__name__, '-' if _AUTO_NAME.match(layer.name) else layer.name]
  parts += ['%s=%s' % (entry, config[entry]) for entry in _CONFIG_ENTRIES if entry in config]
  if type(layer).__name__ == 'FreezableBatchNorm':
    parts.append('training=%s' % (layer._training,))  # pylint: disable=protected-access
  for entry in ('kernel_regularizer', 'bias_regularizer'):
    regularizer = getattr(layer, entry, None)
    if regularizer is not None:
      parts.append('%s=%s' % (entry, regularizer.get_config()))
  return ' '.join(parts)


@pytest.mark.parametrize('stride', [16, 8])
def test_backbone_layers_match_tfod(stride, stride16, stride8):
  """Layer for layer: order, class, names, strides / dilations / paddings, batch norm, regularizers."""
  built = stride16 if stride == 16 else stride8
  golden = _golden_listing('layers_stride16_training.txt' if stride == 16 else 'layers_stride8.txt')
  ours = [_describe_layer(layer) for layer in built.extractor.classification_backbone.layers]
  assert len(ours) == len(golden) == 780
  for i, (mine, theirs) in enumerate(zip(ours, golden)):
    assert mine == theirs, 'layer %d' % i


def _listing(root_objects, tmp_path):
  prefix = tf.train.Checkpoint(**root_objects).save(str(tmp_path / 'ckpt'))
  return ['%s\t%s' % (k, ','.join(str(d) for d in s)) for k, s in tf.train.list_variables(prefix)]


def _golden_listing(name):
  with open(os.path.join(_GOLDEN, name)) as f:
    return f.read().splitlines()


def _compare(name, actual, expected):
  actual = np.asarray(actual)
  assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
  print('%s: max abs diff %.3g (max |golden| %.3g)'
        % (name, np.max(np.abs(actual - expected)), np.abs(expected).max()))
  np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=name)


def test_stride16_checkpoint_keys_match_tfod(stride16, tmp_path):
  assert _listing(stride16.roots(), tmp_path / 'models') == _golden_listing('keys_stride16.txt')
  assert (_listing({'feature_extractor': stride16.extractor.classification_backbone}, tmp_path / 'bb')
          == _golden_listing('backbone_keys_stride16.txt'))


def test_stride8_checkpoint_keys_match_tfod(stride8, tmp_path):
  assert _listing(stride8.roots(), tmp_path / 'models') == _golden_listing('keys_stride8.txt')
  assert (_listing({'feature_extractor': stride8.extractor.classification_backbone}, tmp_path / 'bb')
          == _golden_listing('backbone_keys_stride8.txt'))


def test_stride16_inference_outputs_match_tfod(stride16):
  golden = _golden('stride16_inference.npz')
  _assign_deterministic(stride16)
  images = tf.constant(golden['images'], tf.float32)
  features = stride16.proposal(stride16.extractor.preprocess(images), training=False)
  _compare('stride16 proposal', features, golden['proposal_features'])
  box = stride16.box(tf.constant(_crops(golden)), training=False)
  _compare('stride16 box classifier', box, golden['box_classifier_features'])


def test_stride16_training_outputs_match_tfod(stride16):
  golden = _golden('stride16_training.npz')
  inference_golden = _golden('stride16_inference.npz')
  built = stride16
  _assign_deterministic(built)
  images = tf.constant(inference_golden['images'], tf.float32)
  features = built.proposal(built.extractor.preprocess(images), training=True)
  _compare('stride16 training proposal', features, golden['proposal_features'])
  box = built.box(tf.constant(_crops(inference_golden)), training=True)
  _compare('stride16 training box classifier', box, golden['box_classifier_features'])
  # Momentum 0.9997 update of the first batch norm's moving mean during the training call.
  mean_key = str(golden['first_moving_mean_key'])
  mean = checkpoint_utils.variable_keys(built.roots())[mean_key + '/']
  np.testing.assert_allclose(mean.numpy(), golden['first_moving_mean_after'], rtol=1e-5, atol=1e-6)
  # Kernel and bias L2 regularizers, weight_decay / 2 each.
  np.testing.assert_allclose(float(tf.add_n(built.proposal.losses)),
                             float(golden['proposal_regularization_loss']), rtol=1e-5)
  np.testing.assert_allclose(float(tf.add_n(built.box.losses)),
                             float(golden['box_classifier_regularization_loss']), rtol=1e-5)


def test_stride8_outputs_match_tfod(stride8):
  golden = _golden('stride8_inference.npz')
  inference_golden = _golden('stride16_inference.npz')
  _assign_deterministic(stride8)
  images = tf.constant(inference_golden['images'][:1], tf.float32)
  features = stride8.proposal(stride8.extractor.preprocess(images))
  _compare('stride8 proposal', features, golden['proposal_features'])
  # Frozen batch norm (batch_norm_trainable=False) ignores training=True.
  features_training = stride8.proposal(stride8.extractor.preprocess(images), training=True)
  np.testing.assert_array_equal(features_training.numpy(), features.numpy())
  crops = _crops(inference_golden)
  box = stride8.box(tf.constant(crops[:, :1, :1, :]))
  _compare('stride8 box classifier (1x1 crops)', box, golden['box_classifier_features'])
  # The TF OD API's atrous mixed_7a mixes stride-1 and stride-2 branches: larger crops fail there.
  assert 'mixed_7a' in str(golden['box_9x9_error'])
  with pytest.raises(tf.errors.InvalidArgumentError, match='mixed_7a'):
    stride8.box(tf.constant(crops))


def test_preprocess_maps_to_minus_one_one(stride16):
  x = tf.constant([[[[0.0, 127.5, 255.0]]]])
  np.testing.assert_allclose(stride16.extractor.preprocess(x).numpy(), [[[[-1.0, 0.0, 1.0]]]],
                             atol=1e-6)


def test_bad_stride_names_config_field():
  with pytest.raises(ValueError, match='feature_extractor.first_stage_features_stride'):
    frcnn_irv2.FasterRCNNInceptionResnetV2KerasFeatureExtractor(False, 32)
  with pytest.raises(ValueError, match='output_stride'):
    inception_resnet_v2.inception_resnet_v2(False, output_stride=4)


def _weighted_layers(model):
  return [layer for layer in model.layers if layer.weights]


def test_load_keras_imagenet_h5_file(stride8, tmp_path):
  """The Keras application's weight file (the ImageNet `..._notop.h5` format) loads in full."""
  keras_app = tf_keras.applications.InceptionResNetV2(weights=None, include_top=False)
  rng = np.random.default_rng(0)
  for layer in _weighted_layers(keras_app):
    if isinstance(layer, tf_keras.layers.BatchNormalization):  # zeros / ones by default
      layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                         for w in layer.get_weights()])
  path = str(tmp_path / 'inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5')
  keras_app.save_weights(path)

  report = stride8.extractor.load_weights(path)
  backbone = stride8.extractor.classification_backbone
  ours, theirs = _weighted_layers(backbone), _weighted_layers(keras_app)
  assert len(report.matched) == len(ours) == len(theirs) == 448
  assert not report.skipped and not report.unused
  for mine, keras_layer in zip(ours, theirs):
    assert [w.name.split('/')[-1] for w in mine.weights] == [
        w.name.split('/')[-1] for w in keras_layer.weights]
    for a, b in zip(mine.get_weights(), keras_layer.get_weights()):
      np.testing.assert_array_equal(a, b)
  # Explicitly named layers land on the layers of the same name, whatever the order logic.
  for name in ('block35_1_conv', 'block17_20_conv', 'block8_10_conv', 'conv_7b', 'conv_7b_bn'):
    for a, b in zip(backbone.get_layer(name).get_weights(), keras_app.get_layer(name).get_weights()):
      np.testing.assert_array_equal(a, b)
  # And on the checkpoint keys the detection models use.
  keys = checkpoint_utils.variable_keys(stride8.roots())
  np.testing.assert_array_equal(
      keys['_feature_extractor_for_proposal_features/layer_with_weights-0/kernel/'].numpy(),
      theirs[0].get_weights()[0])
  # The box classifier's first conv is mixed_7a's first 1x1 conv, the first conv after block17_20_ac.
  app_layers = keras_app.layers
  split = [l.name for l in app_layers].index('block17_20_ac')
  first_box_conv = [l for l in app_layers[split:] if isinstance(l, tf_keras.layers.Conv2D)][0]
  np.testing.assert_array_equal(
      keys['_feature_extractor_for_box_classifier_features/layer_with_weights-0/kernel/'].numpy(),
      first_box_conv.get_weights()[0])


def test_load_weights_wrong_file_names_it(stride8, tmp_path):
  other = tf_keras.Sequential([tf_keras.layers.Conv2D(32, 3, input_shape=(8, 8, 3)),
                               tf_keras.layers.Dense(4)])
  wrong = str(tmp_path / 'other_network.h5')
  other.save_weights(wrong)
  before = stride8.extractor.classification_backbone.get_weights()[0].copy()
  with pytest.raises(ValueError, match='other_network.h5'):
    stride8.extractor.load_weights(wrong)
  np.testing.assert_array_equal(stride8.extractor.classification_backbone.get_weights()[0], before)
  garbage = tmp_path / 'not_weights.h5'
  garbage.write_text('not hdf5')
  with pytest.raises(ValueError, match='not_weights.h5'):
    stride8.extractor.load_weights(str(garbage))
