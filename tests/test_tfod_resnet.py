"""Parity of the single-level ResNet-v1 Faster R-CNN feature extractors with the TF OD API.

Golden fixtures: `tests/testdata/tfod_golden/resnet/`, written by the TF OD API itself
(`tools/tfod_golden/resnet.py`, see its docstring). Each model is built once per module (ResNet-152 is
slow to build); every variable is set from `deterministic_weights.value_for(checkpoint key)` as on the
reference side, so equal outputs need equal checkpoint keys AND equal layers.
"""

import importlib.util
import os

import h5py
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from google.protobuf import text_format
from object_detection.builders import hyperparams_builder
from object_detection.models import faster_rcnn_resnet_keras_feature_extractor as fe
from object_detection.models.keras_models import resnet_v1
from object_detection.protos import hyperparams_pb2
from object_detection.utils import checkpoint_utils

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GOLDEN = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'resnet')
_spec = importlib.util.spec_from_file_location(
    'deterministic_weights', os.path.join(_REPO, 'tools', 'tfod_golden', 'deterministic_weights.py'))
deterministic_weights = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deterministic_weights)

PROPOSAL_ROOT = '_feature_extractor_for_proposal_features'
BOX_ROOT = '_feature_extractor_for_box_classifier_features'
SLICE_CHANNELS = 128  # tools/tfod_golden/resnet.py stores 101 / 152 outputs on these channels only
_CLASSES = {50: fe.FasterRCNNResnet50KerasFeatureExtractor,
            101: fe.FasterRCNNResnet101KerasFeatureExtractor,
            152: fe.FasterRCNNResnet152KerasFeatureExtractor}


def _read_listing(path):
  with open(path) as f:
    return [tuple(line.rstrip('\n').split('\t')) for line in f if line.strip()]


def _listing(root_objects, directory):
  prefix = tf.train.Checkpoint(**root_objects).save(os.path.join(directory, 'ckpt'))
  return [(key, ','.join(str(d) for d in shape)) for key, shape in tf.train.list_variables(prefix)]


def _build(depth, is_training=False, batch_norm_trainable=False):
  extractor = _CLASSES[depth](is_training=is_training, first_stage_features_stride=16,
                              batch_norm_trainable=batch_norm_trainable, weight_decay=0.0)
  proposal = extractor.get_proposal_feature_extractor_model('FirstStageFeatureExtractor')
  box = extractor.get_box_classifier_feature_extractor_model('SecondStageFeatureExtractor')
  return extractor, proposal, box


def _assign(proposal, box):
  # Same root order as tf.train.Checkpoint, which sorts its children by name.
  deterministic_weights.assign_all({BOX_ROOT: box, PROPOSAL_ROOT: proposal},
                                   checkpoint_utils.variable_keys)


@pytest.fixture(scope='module')
def inputs():
  data = np.load(os.path.join(_GOLDEN, 'inputs.npz'))
  return data['images'].astype(np.float32), data['crops'].astype(np.float32)


@pytest.fixture(scope='module')
def built(tmp_path_factory):
  """depth -> (extractor, proposal model, box model, checkpoint listing, classification listing)."""
  out = {}
  for depth in _CLASSES:
    extractor, proposal, box = _build(depth)
    proposal(tf.zeros([1, 64, 64, 3]))
    box(tf.zeros([1, 7, 7, 1024]))
    directory = str(tmp_path_factory.mktemp('resnet%d' % depth))
    listing = _listing({PROPOSAL_ROOT: proposal, BOX_ROOT: box}, os.path.join(directory, 'a'))
    classification = _listing({'feature_extractor': extractor.classification_backbone},
                              os.path.join(directory, 'b'))
    _assign(proposal, box)
    out[depth] = (extractor, proposal, box, listing, classification)
  return out


@pytest.mark.parametrize('depth', [50, 101, 152])
def test_checkpoint_keys_and_shapes_match_tfod(built, depth):
  golden = _read_listing(os.path.join(_GOLDEN, 'keys_resnet%d.txt' % depth))
  assert built[depth][3] == golden


@pytest.mark.parametrize('depth', [50, 101, 152])
def test_classification_checkpoint_keys_match_tfod(built, depth):
  golden = _read_listing(os.path.join(_GOLDEN, 'classification_keys_resnet%d.txt' % depth))
  assert built[depth][4] == golden


def _max_abs(a, b):
  return float(np.max(np.abs(a - b)))


@pytest.mark.parametrize('depth', [50, 101, 152])
def test_inference_outputs_match_tfod(built, inputs, depth):
  extractor, proposal, box, _, _ = built[depth]
  images, crops = inputs
  features = proposal(extractor.preprocess(tf.constant(images)), training=False).numpy()
  box_features = box(tf.constant(crops), training=False).numpy()
  assert features.shape == (2, 4, 6, 1024)  # 64x96 at stride 16
  assert box_features.shape == (2, 4, 4, 2048)  # 7x7 crops, conv5 keeps its stride 2
  golden = np.load(os.path.join(_GOLDEN, 'outputs_resnet%d_inference.npz' % depth))
  if depth != 50:
    features = features[..., :SLICE_CHANNELS]
    box_features = box_features[..., :SLICE_CHANNELS]
  # Same ops on the same inputs in both processes; the tolerance only allows for float reordering across
  # ~50-150 conv layers (outputs reach ~30 in magnitude).
  np.testing.assert_allclose(features, golden['proposal'], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(box_features, golden['box'], rtol=1e-5, atol=1e-5)


def test_training_outputs_with_batch_statistics_match_tfod(inputs):
  extractor, proposal, box = _build(50, is_training=True, batch_norm_trainable=True)
  _assign(proposal, box)
  images, crops = inputs
  features = proposal(extractor.preprocess(tf.constant(images)), training=True).numpy()
  box_features = box(tf.constant(crops), training=True).numpy()
  golden = np.load(os.path.join(_GOLDEN, 'outputs_resnet50_training.npz'))
  np.testing.assert_allclose(features, golden['proposal'], rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(box_features, golden['box'], rtol=1e-5, atol=1e-5)
  # Batch statistics differ from the frozen moving statistics, so this is another network state.
  inference = np.load(os.path.join(_GOLDEN, 'outputs_resnet50_inference.npz'))
  assert _max_abs(features, inference['proposal']) > 0.1


def test_frozen_batch_norm_ignores_training_argument(built, inputs):
  extractor, proposal, _, _, _ = built[50]
  images = extractor.preprocess(tf.constant(inputs[0]))
  np.testing.assert_array_equal(proposal(images, training=True).numpy(),
                                proposal(images, training=False).numpy())


def test_preprocess_subtracts_channel_means():
  extractor = fe.FasterRCNNResnet50KerasFeatureExtractor(is_training=False)
  images = tf.fill([1, 2, 2, 3], 200.0)
  np.testing.assert_allclose(extractor.preprocess(images).numpy()[0, 0, 0],
                             [200.0 - 123.68, 200.0 - 116.779, 200.0 - 103.939], rtol=1e-6)
  gray = tf.fill([1, 2, 2, 1], 7.0)
  np.testing.assert_array_equal(extractor.preprocess(gray).numpy(), gray.numpy())


@pytest.mark.parametrize('stride', [8, 32])
def test_stride_other_than_16_is_refused(stride):
  with pytest.raises(ValueError, match=r'feature_extractor\.first_stage_features_stride.*only 16'):
    fe.FasterRCNNResnet101KerasFeatureExtractor(is_training=False, first_stage_features_stride=stride)


def _golden_variants():
  # The variants' definitions live in the generator (numpy / tensorflow only at import time).
  spec = importlib.util.spec_from_file_location(
      'tfod_golden_resnet', os.path.join(_REPO, 'tools', 'tfod_golden', 'resnet.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.VARIANTS, module.CHANNEL_MEANS


@pytest.mark.parametrize('name', ['a', 'b'])
def test_resnet_v1_arguments_and_conv_hyperparams_match_tfod(inputs, tmp_path, name):
  """resnet_v1_50 itself: conv_hyperparams (initializer, L2 / 2, batch norm, relu6), min_depth,
  depth_multiplier, batchnorm_scale=False, batch norm momentum / epsilon, weight_decay."""
  variants, channel_means = _golden_variants()
  variant = variants[name]
  kwargs = dict(variant['kwargs'])
  if variant['hyperparams']:
    config = text_format.Parse(variant['hyperparams'], hyperparams_pb2.Hyperparams())
    kwargs['conv_hyperparams'] = hyperparams_builder.KerasLayerHyperparams(config)
  model = resnet_v1.resnet_v1_50(weights=None, include_top=False, classes=None, **kwargs)
  listing = _listing({'backbone': model}, str(tmp_path / 'c'))
  assert listing == _read_listing(os.path.join(_GOLDEN, 'keys_variant_%s.txt' % name))
  deterministic_weights.assign_all({'backbone': model}, checkpoint_utils.variable_keys)
  images = inputs[0] - np.array(channel_means, np.float32)
  output = model(tf.constant(images), training=variant['training']).numpy()
  golden = np.load(os.path.join(_GOLDEN, 'variant_%s.npz' % name))
  np.testing.assert_allclose(output, golden['output'], rtol=1e-5, atol=1e-5)
  losses = [float(loss.numpy()) for loss in model.losses]
  assert len(losses) == golden['losses'][0]
  np.testing.assert_allclose(np.sum(losses), golden['losses'][1], rtol=1e-5)
  np.testing.assert_allclose(model.get_layer('conv1_bn').moving_mean.numpy(),
                             golden['conv1_bn_moving_mean'], rtol=1e-5, atol=1e-6)


def test_resnet_v1_refuses_keras_imagenet_weights():
  with pytest.raises(ValueError, match='weights'):
    resnet_v1.resnet_v1_50(batchnorm_training=False, weights='imagenet', include_top=False)


@pytest.fixture(scope='module')
def keras_resnet50_file(tmp_path_factory):
  """A Keras-format ResNet50 no-top `.h5` with random (nonzero) conv biases and batch norm statistics."""
  model = tf_keras.applications.ResNet50(weights=None, include_top=False)
  rng = np.random.default_rng(3)
  for layer in model.layers:
    values = layer.get_weights()
    if isinstance(layer, tf_keras.layers.BatchNormalization):
      values = [rng.uniform(0.5, 1.5, v.shape) if i in (0, 3) else rng.normal(0, 0.1, v.shape)
                for i, v in enumerate(values)]
    elif values:
      values = [rng.normal(0, 0.05, v.shape) for v in values]
    layer.set_weights([v.astype(np.float32) for v in values])
  path = str(tmp_path_factory.mktemp('keras') / 'resnet50_notop.h5')
  model.save_weights(path)
  return model, path


def test_load_weights_folds_keras_conv_biases_into_batch_norm(keras_resnet50_file):
  keras_model, path = keras_resnet50_file
  extractor = fe.FasterRCNNResnet50KerasFeatureExtractor(is_training=False)
  report = extractor.load_weights(path)
  backbone = extractor.classification_backbone
  assert not report.skipped and not report.unused
  assert len(report.folded) == 53  # every conv of ResNet-50 has a bias in the Keras file
  with h5py.File(path, 'r') as f:
    checked = 0
    for layer in backbone.layers:
      if isinstance(layer, tf_keras.layers.Conv2D):
        group = f[layer.name][layer.name]
        np.testing.assert_array_equal(layer.kernel.numpy(), group['kernel:0'][()])
        bias = group['bias:0'][()]
        assert np.abs(bias).max() > 0
        bn = backbone.get_layer(layer.name[:-len('_conv')] + '_bn')
        bn_group = f[bn.name][bn.name]
        np.testing.assert_allclose(bn.moving_mean.numpy(), bn_group['moving_mean:0'][()] - bias,
                                   rtol=0, atol=1e-7)
        for name in ('gamma', 'beta', 'moving_variance'):
          np.testing.assert_array_equal(getattr(bn, name).numpy(), bn_group[name + ':0'][()])
        checked += 1
  assert checked == 53
  # Folding is exact in inference mode: Keras' conv1 (+ bias) -> bn equals ours (no bias) -> folded bn
  # (same 3-pixel padding); only the batch norm epsilons differ (1.001e-5 vs 1e-5).
  image = tf.constant(np.random.default_rng(1).uniform(-100, 100, [1, 32, 32, 3]), tf.float32)
  keras_bn = tf_keras.Model(keras_model.inputs, keras_model.get_layer('conv1_bn').output)(image)
  ours_bn = tf_keras.Model(backbone.inputs, backbone.get_layer('conv1_bn').output)(image)
  np.testing.assert_allclose(ours_bn.numpy(), keras_bn.numpy(), rtol=1e-4, atol=1e-4)


def test_load_weights_refuses_another_network(tmp_path):
  path = str(tmp_path / 'mobilenet_v2_notop.h5')
  tf_keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                    input_shape=(96, 96, 3)).save_weights(path)
  extractor = fe.FasterRCNNResnet50KerasFeatureExtractor(is_training=False)
  before = extractor.classification_backbone  # built lazily by load_weights
  assert before is None
  with pytest.raises(ValueError, match='mobilenet_v2_notop.h5'):
    extractor.load_weights(path)


def test_load_weights_refuses_a_deeper_resnet(keras_resnet50_file, tmp_path):
  # A ResNet-101 file holds every ResNet-50 layer name with the same shapes, plus more conv4 blocks; it
  # must not load into ResNet-50 by name. Simulated by one extra conv4 block layer in a copy.
  _, path = keras_resnet50_file
  deeper = str(tmp_path / 'resnet101_like.h5')
  with h5py.File(path, 'r') as src, h5py.File(deeper, 'w') as dst:
    for key in src:
      src.copy(key, dst)
    for key, value in src.attrs.items():
      dst.attrs[key] = value
    group = dst.create_group('conv4_block7_1_conv').create_group('conv4_block7_1_conv')
    group['kernel:0'] = np.zeros([1, 1, 1024, 256], np.float32)
    group['bias:0'] = np.zeros([256], np.float32)
    dst['conv4_block7_1_conv'].attrs['weight_names'] = [b'conv4_block7_1_conv/kernel:0',
                                                        b'conv4_block7_1_conv/bias:0']
    names = [n if isinstance(n, bytes) else str(n).encode() for n in src.attrs['layer_names']]
    dst.attrs['layer_names'] = np.array(names + [b'conv4_block7_1_conv'], dtype='S')
  extractor = fe.FasterRCNNResnet50KerasFeatureExtractor(is_training=False)
  with pytest.raises(ValueError, match=r'resnet101_like\.h5.*conv4_block7_1_conv'):
    extractor.load_weights(deeper)
  # Nothing was loaded: the (random) initial kernels are not the file's.
  kernel = extractor.classification_backbone.get_layer('conv1_conv').kernel.numpy()
  with h5py.File(path, 'r') as f:
    assert not np.array_equal(kernel, f['conv1_conv']['conv1_conv']['kernel:0'][()])
