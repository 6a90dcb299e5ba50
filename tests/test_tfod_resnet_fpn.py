"""Parity of the ResNet-v1 FPN Faster R-CNN feature extractors and the FPN generator with the TF OD API.

Golden fixtures: `tests/testdata/tfod_golden/resnet_fpn/`, written by the TF OD API itself
(`tools/tfod_golden/resnet_fpn.py`, see its docstring for the variants and files). Every variable is set
from `deterministic_weights.value_for(checkpoint key)` as on the reference side, so equal outputs need
equal checkpoint keys AND equal layers.
"""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from google.protobuf import text_format

from object_detection.builders import hyperparams_builder
from object_detection.models import faster_rcnn_resnet_v1_fpn_keras_feature_extractor as fe
from object_detection.models import feature_map_generators
from object_detection.protos import hyperparams_pb2
from object_detection.utils import checkpoint_utils

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GOLDEN = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'resnet_fpn')


def _load_by_path(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


deterministic_weights = _load_by_path(
    'deterministic_weights', os.path.join(_REPO, 'tools', 'tfod_golden', 'deterministic_weights.py'))
# The generator's constants (variants, hyperparams, sizes); it imports only tensorflow / numpy at import.
golden_spec = _load_by_path('resnet_fpn_golden', os.path.join(_REPO, 'tools', 'tfod_golden', 'resnet_fpn.py'))

PROPOSAL_ROOT = golden_spec.PROPOSAL_ROOT
BOX_ROOT = golden_spec.BOX_ROOT
_CLASSES = {50: fe.FasterRCNNResnet50FpnKerasFeatureExtractor,
            101: fe.FasterRCNNResnet101FpnKerasFeatureExtractor,
            152: fe.FasterRCNNResnet152FpnKerasFeatureExtractor}


def _hyperparams(text):
  return hyperparams_builder.KerasLayerHyperparams(text_format.Parse(text, hyperparams_pb2.Hyperparams()))


def _read_listing(path):
  with open(path) as f:
    return [tuple(line.rstrip('\n').split('\t')) for line in f if line.strip()]


def _listing(root_objects, directory):
  prefix = tf.train.Checkpoint(**root_objects).save(os.path.join(directory, 'ckpt'))
  return [(key, ','.join(str(d) for d in shape)) for key, shape in tf.train.list_variables(prefix)]


def _build(variant, is_training=False, batch_norm_trainable=False):
  depth, hyperparams_text, kwargs, _ = golden_spec.VARIANTS[variant]
  extractor = _CLASSES[depth](is_training, 16, batch_norm_trainable,
                              conv_hyperparams=_hyperparams(hyperparams_text), **kwargs)
  proposal = extractor.get_proposal_feature_extractor_model('FirstStageFeatureExtractor')
  box = extractor.get_box_classifier_feature_extractor_model('SecondStageFeatureExtractor')
  proposal(tf.zeros([1, 64, 64, 3]))
  box(tf.zeros([1, 7, 7, 256]))
  # Same root order as tf.train.Checkpoint, which sorts its children by name.
  deterministic_weights.assign_all({BOX_ROOT: box, PROPOSAL_ROOT: proposal},
                                   checkpoint_utils.variable_keys)
  return extractor, proposal, box


def _run(variant, extractor, proposal, box, inputs, training):
  images, crops = inputs
  size = golden_spec.VARIANTS[variant][3]
  images = images[:, :size[0], :size[1], :]
  features = proposal(extractor.preprocess(tf.constant(images)), training=training)
  min_level = golden_spec.VARIANTS[variant][2]['fpn_min_level']
  out = {'level_%d' % (min_level + i): f.numpy() for i, f in enumerate(features)}
  out['box'] = box(tf.constant(crops), training=training).numpy()
  out['losses'] = np.sort(np.array([float(loss) for loss in proposal.losses], np.float32))
  return out


def _compare(ours, golden):
  """Asserts every golden array matches ours (channel slice for levels); returns {name: max |diff|}."""
  assert sorted(ours) == sorted(golden.files)
  diffs = {}
  for name in golden.files:
    expected = golden[name]
    actual = ours[name][..., :expected.shape[-1]] if name.startswith('level_') else ours[name]
    assert actual.shape == expected.shape, name
    # Same TF ops on the same inputs in both processes; the tolerance only allows for float reordering
    # through ~55 conv layers (outputs up to ~15 in magnitude).
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=2e-5, err_msg=name)
    diffs[name] = float(np.max(np.abs(actual - expected)))
  return diffs


@pytest.fixture(scope='module')
def inputs():
  data = np.load(os.path.join(_GOLDEN, 'inputs.npz'))
  return data['images'].astype(np.float32), data['crops'].astype(np.float32)


@pytest.fixture(scope='module')
def variant_a():
  return _build('a')


@pytest.fixture(scope='module')
def variant_b():
  return _build('b')


@pytest.mark.parametrize('variant', ['a', 'b', 'a_resnet101', 'a_resnet152'])
def test_checkpoint_keys_and_shapes_match_tfod(variant, variant_a, variant_b, tmp_path):
  _, proposal, box = {'a': variant_a, 'b': variant_b}.get(variant) or _build(variant)
  listing = _listing({PROPOSAL_ROOT: proposal, BOX_ROOT: box}, str(tmp_path))
  assert listing == _read_listing(os.path.join(_GOLDEN, 'keys_%s.txt' % variant))


def test_classification_checkpoint_keys_match_tfod(variant_a, tmp_path):
  extractor = variant_a[0]
  listing = _listing({'feature_extractor': extractor.classification_backbone}, str(tmp_path))
  assert listing == _read_listing(os.path.join(_GOLDEN, 'classification_keys_a.txt'))


def test_variant_a_inference_outputs_match_tfod(variant_a, inputs):
  ours = _run('a', *variant_a, inputs, training=False)
  assert [ours['level_%d' % l].shape for l in range(2, 7)] == [
      (2, 32, 32, 256), (2, 16, 16, 256), (2, 8, 8, 256), (2, 4, 4, 256), (2, 2, 2, 256)]
  assert ours['box'].shape == (4, 1, 1, 1024)
  print(_compare(ours, np.load(os.path.join(_GOLDEN, 'outputs_a_inference.npz'))))


def test_variant_a_training_outputs_match_tfod(inputs):
  ours = _run('a', *_build('a', is_training=True, batch_norm_trainable=True), inputs, training=True)
  print(_compare(ours, np.load(os.path.join(_GOLDEN, 'outputs_a_training.npz'))))
  # Batch statistics are another network state than the moving statistics.
  inference = np.load(os.path.join(_GOLDEN, 'outputs_a_inference.npz'))
  assert np.max(np.abs(ours['level_2'][..., :32] - inference['level_2'])) > 0.1


def test_frozen_batch_norm_in_training_equals_tfod_inference(inputs):
  assert float(np.load(os.path.join(_GOLDEN, 'frozen_check.npz'))['max_abs_diff']) == 0.0
  ours = _run('a', *_build('a', is_training=True, batch_norm_trainable=False), inputs, training=True)
  _compare(ours, np.load(os.path.join(_GOLDEN, 'outputs_a_inference.npz')))


def test_variant_b_padded_input_outputs_match_tfod(variant_b, inputs):
  ours = _run('b', *variant_b, inputs, training=False)
  # 120 x 100 is padded to 128 x 128 before the backbone.
  assert [ours['level_%d' % l].shape for l in range(3, 8)] == [
      (2, 16, 16, 128), (2, 8, 8, 128), (2, 4, 4, 128), (2, 2, 2, 128), (2, 1, 1, 128)]
  print(_compare(ours, np.load(os.path.join(_GOLDEN, 'outputs_b_inference.npz'))))


def test_fpn_generator_options_match_tfod(tmp_path):
  golden = np.load(os.path.join(_GOLDEN, 'fpn_options.npz'))
  generator = feature_map_generators.KerasFpnTopDownFeatureMaps(
      num_levels=3, depth=golden_spec.FPN_OPTION_DEPTH, is_training=False,
      conv_hyperparams=_hyperparams(golden_spec.ZOO_HYPERPARAMS), freeze_batchnorm=False,
      use_depthwise=True, use_explicit_padding=True, use_bounded_activations=True,
      use_native_resize_op=True, name='FeatureMaps')
  named = [('block%d' % (i + 1), tf.constant(golden['feature_%d' % i])) for i in range(3)]
  generator(named)
  listing = _listing({'generator': generator}, str(tmp_path))
  assert listing == _read_listing(os.path.join(_GOLDEN, 'fpn_options_keys.txt'))
  deterministic_weights.assign_all({'generator': generator}, checkpoint_utils.variable_keys)
  outputs = generator(named, training=False)
  assert list(outputs) == ['top_down_block1', 'top_down_block2', 'top_down_block3']
  for i, output in enumerate(outputs.values()):
    np.testing.assert_allclose(output.numpy(), golden['output_%d' % i], rtol=1e-5, atol=1e-6)


def test_nearest_neighbor_upsampling_and_padding_helpers():
  image = tf.reshape(tf.range(6, dtype=tf.float32), [1, 2, 3, 1])
  up = feature_map_generators.nearest_neighbor_upsampling(image, scale=2).numpy()[0, :, :, 0]
  np.testing.assert_array_equal(up, [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2],
                                     [3, 3, 4, 4, 5, 5], [3, 3, 4, 4, 5, 5]])
  assert feature_map_generators.fixed_padding(image, 3).shape == (1, 4, 5, 1)
  padded = fe.pad_to_multiple(image, 4)
  assert padded.shape == (1, 4, 4, 1)
  np.testing.assert_array_equal(padded.numpy()[0, :2, :3, 0], image.numpy()[0, :, :, 0])
  assert float(tf.reduce_sum(tf.abs(padded))) == float(tf.reduce_sum(image))

  @tf.function(input_signature=[tf.TensorSpec([1, None, None, 1])])
  def dynamic(x):
    return fe.pad_to_multiple(x, 32)
  assert dynamic(tf.zeros([1, 33, 5, 1])).shape == (1, 64, 32, 1)


def test_preprocess_subtracts_channel_means(variant_a):
  extractor = variant_a[0]
  out = extractor.preprocess(tf.fill([1, 2, 2, 3], 200.0)).numpy()
  np.testing.assert_allclose(out[0, 0, 0], [200 - 123.68, 200 - 116.779, 200 - 103.939], rtol=1e-6)
  gray = tf.fill([1, 2, 2, 1], 7.0)
  np.testing.assert_array_equal(extractor.preprocess(gray).numpy(), gray.numpy())


def test_missing_conv_hyperparams_names_the_config_field():
  with pytest.raises(ValueError, match=r'feature_extractor\.conv_hyperparams is required for '
                     r'faster_rcnn_resnet50_fpn_keras'):
    fe.FasterRCNNResnet50FpnKerasFeatureExtractor(is_training=False)


@pytest.mark.parametrize('kwargs, field', [
    (dict(first_stage_features_stride=32), r'feature_extractor\.first_stage_features_stride'),
    (dict(fpn_min_level=1), r'feature_extractor\.fpn'),
    (dict(fpn_min_level=4, fpn_max_level=3), r'feature_extractor\.fpn'),
])
def test_bad_arguments_name_the_config_field(kwargs, field):
  with pytest.raises(ValueError, match=field):
    fe.FasterRCNNResnet101FpnKerasFeatureExtractor(
        is_training=False, conv_hyperparams=_hyperparams(golden_spec.ZOO_HYPERPARAMS), **kwargs)


def test_load_weights_reads_keras_resnet50_h5(variant_a, tmp_path):
  extractor = variant_a[0]
  keras_model = tf_keras.applications.ResNet50(weights=None, include_top=False)
  path = str(tmp_path / 'resnet50_notop.h5')
  keras_model.save_weights(path)
  report = extractor.load_weights(path)
  assert not report.skipped and len(report.folded) == 53
  backbone = extractor.classification_backbone
  np.testing.assert_array_equal(backbone.get_layer('conv5_block3_3_conv').kernel.numpy(),
                                keras_model.get_layer('conv5_block3_3_conv').kernel.numpy())
  unbuilt = fe.FasterRCNNResnet50FpnKerasFeatureExtractor(
      is_training=False, conv_hyperparams=_hyperparams(golden_spec.ZOO_HYPERPARAMS))
  with pytest.raises(ValueError, match='build the model first'):
    unbuilt.load_weights(path)
