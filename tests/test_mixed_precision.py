"""Mixed precision (train_config.use_bfloat16 / mixed_precision): bfloat16 training tracks float32 on
real coco128_seg images, float16 applies loss scaling, the Keras policy never leaks, checkpoints
move between float32 and mixed runs, and a contradictory config is refused.

The model is the tiny Mask R-CNN of tests/mask_rcnn_test_utils.py (real builder, meta-architecture,
losses) on two real sample photos resized to 64x64 with their real boxes and polygon masks.
"""
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from google.protobuf import text_format
from pycocotools import mask as mask_util

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mask_rcnn_test_utils as mu  # pylint: disable=g-import-not-at-top,wrong-import-position
from conftest import COCO128_IMAGES, COCO128_TRAIN_JSON  # pylint: disable=wrong-import-position

from object_detection import model_lib_v2  # pylint: disable=wrong-import-position
from object_detection.builders import model_builder  # pylint: disable=wrong-import-position
from object_detection.core import standard_fields as fields  # pylint: disable=wrong-import-position
from object_detection.protos import pipeline_pb2  # pylint: disable=wrong-import-position
from object_detection.training import precision  # pylint: disable=wrong-import-position
from object_detection.training import progress  # pylint: disable=wrong-import-position
from object_detection.training import train_step  # pylint: disable=wrong-import-position
from object_detection.utils import config_validation  # pylint: disable=wrong-import-position

_IF = fields.InputDataFields
SIZE = 64
MAX_BOXES = 8
NUM_CLASSES = 3
# Deterministic sampling, so that both precisions train on the same anchors and proposals: the RPN
# minibatch (1024) exceeds the 576 anchors of a 64x64 image, and the second stage takes all 32
# proposals whatever their label (balance fraction 1).
_MODEL_EXTRA = 'first_stage_minibatch_size: 1024 second_stage_balance_fraction: 1.0'
LOSS_KEYS = ('Loss/RPNLoss/localization_loss', 'Loss/RPNLoss/objectness_loss',
             'Loss/BoxClassifierLoss/localization_loss',
             'Loss/BoxClassifierLoss/classification_loss', 'Loss/BoxClassifierLoss/mask_loss',
             'Loss/regularization_loss', 'Loss/total_loss')


def _model_config():
  return mu.tiny_model_config(max_proposals=32, second_stage_batch_size=32, extra=_MODEL_EXTRA)


def _real_examples(num_images=2):
  """The first `num_images` annotated coco128_seg train photos, resized to SIZE x SIZE (float32
  0..255), with up to MAX_BOXES boxes (normalized, ymin first), classes (category_id % 3, one-hot)
  and polygon masks rasterized at SIZE x SIZE."""
  with open(COCO128_TRAIN_JSON) as f:
    coco = json.load(f)
  images = {image['id']: image for image in coco['images']}
  annotations = {}
  for ann in coco['annotations']:
    if not ann.get('iscrowd'):
      annotations.setdefault(ann['image_id'], []).append(ann)
  out = []
  for image_id in sorted(annotations)[:num_images]:
    info = images[image_id]
    height, width = info['height'], info['width']
    data = tf.io.read_file(os.path.join(COCO128_IMAGES, info['file_name']))
    image = tf.image.resize(tf.cast(tf.io.decode_jpeg(data, channels=3), tf.float32), [SIZE, SIZE])
    boxes = np.zeros([MAX_BOXES, 4], np.float32)
    classes = np.zeros([MAX_BOXES, NUM_CLASSES], np.float32)
    masks = np.zeros([MAX_BOXES, SIZE, SIZE], np.float32)
    anns = annotations[image_id][:MAX_BOXES]
    for i, ann in enumerate(anns):
      x, y, w, h = ann['bbox']
      boxes[i] = [y / height, x / width, (y + h) / height, (x + w) / width]
      classes[i, ann['category_id'] % NUM_CLASSES] = 1.0
      mask = mask_util.decode(mask_util.merge(
          mask_util.frPyObjects(ann['segmentation'], height, width)))
      masks[i] = tf.image.resize(mask[:, :, None].astype(np.float32), [SIZE, SIZE],
                                 'nearest')[:, :, 0].numpy()
    out.append((image.numpy(), len(anns), boxes, classes, masks))
  return out


@pytest.fixture(scope='module')
def real_batch():
  examples = _real_examples()
  images = np.stack([e[0] for e in examples])
  labels = {_IF.num_groundtruth_boxes: np.array([e[1] for e in examples], np.int32),
            _IF.groundtruth_boxes: np.stack([e[2] for e in examples]),
            _IF.groundtruth_classes: np.stack([e[3] for e in examples]),
            _IF.groundtruth_weights: np.stack(
                [(np.arange(MAX_BOXES) < e[1]).astype(np.float32) for e in examples]),
            _IF.groundtruth_instance_masks: np.stack([e[4] for e in examples])}
  assert labels[_IF.num_groundtruth_boxes].min() >= 1
  return images, labels


def _features(model, images):
  preprocessed, shapes = model.preprocess(tf.constant(images))
  return {_IF.image: preprocessed, _IF.true_image_shape: shapes}


@pytest.fixture(autouse=True)
def _eager_steps_and_float32_policy():
  """Steps run eagerly (tracing the tiny Mask R-CNN's train step costs ~15 s per model on this CPU;
  the ops, casts and dtypes are the same); every test starts and must end with float32."""
  tf.config.run_functions_eagerly(True)
  try:
    assert tf_keras.mixed_precision.global_policy().name == 'float32'
    yield
    assert tf_keras.mixed_precision.global_policy().name == 'float32'
  finally:
    tf.config.run_functions_eagerly(False)


def _features(model, images):
  preprocessed, shapes = model.preprocess(tf.constant(images))
  return {_IF.image: preprocessed, _IF.true_image_shape: shapes}


def _tensors(labels):
  return {k: tf.constant(v) for k, v in labels.items()}


def _train(model, images, labels, num_steps, optimizer=None):
  """num_steps steps of make_train_step on the same batch; returns the list of loss dicts."""
  optimizer = optimizer or tf_keras.optimizers.legacy.SGD(0.01, momentum=0.9)
  global_step = tf.Variable(0, dtype=tf.int64, trainable=False)
  step = train_step.make_train_step(tf.distribute.get_strategy(), model, optimizer,
                                    model.trainable_variables, global_step)
  features, labels = _features(model, images), _tensors(labels)
  return [{k: float(v) for k, v in step(features, labels).items()} for _ in range(num_steps)]


def _built_model(images, labels, policy):
  """The tiny Mask R-CNN built under `policy`, its variables created by one loss computation."""
  with precision.policy_scope(policy):
    model = model_builder.build(_model_config(), is_training=True)
    train_step.compute_losses(model, _features(model, images), _tensors(labels))
  return model


def _copy_weights(source, target, tmp_path, name):
  """source -> checkpoint -> target (the path a resumed or exported run takes); every object of
  target must be matched by name."""
  path = tf.train.Checkpoint(model=source).save(str(tmp_path / name))
  tf.train.Checkpoint(model=target).restore(path).assert_existing_objects_matched()
  # (Python-side variable names get a _1 suffix for a second model in the process; the checkpoint
  # keys are object paths, matched above.)
  for a, b in zip(source.variables, target.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


# Relative tolerance of each loss term, bfloat16 vs float32 from the same weights (seed 0), over 3
# SGD steps on two real photos. Single outputs differ by ~1% (median relative difference of the box
# encodings ~8e-3: bfloat16 keeps 8 mantissa bits, 2^-9 = 0.2% per rounding, accumulated over the
# layers); the loss terms are means over many anchors / proposals / mask pixels, so most of that
# averages out. Measured over initial weights of seeds 0-7 (worst of 3 steps): RPN terms <= 1e-4;
# mask <= 7e-4; classification 3e-3..9e-3; box-classifier localization <= 8e-4 except seed 2
# (0.16: its loss averages over one or two positive proposals, and a proposal decoded from
# bfloat16-rounded encodings crosses the 0.5 IoU threshold, a real effect of bfloat16 on a discrete
# choice, not an error); total <= 2e-3 (seed 2: 1.5e-2). Seed 0 (deterministic via
# tf_keras.utils.set_random_seed): RPN 8e-5, classification 3.2e-3, total 6.5e-4. The bounds leave
# ~3-10x margin and still fail on a real error (a bfloat16 target or a lost cast moves these losses
# by 10% or more).
BF16_LOSS_RTOL = {'Loss/RPNLoss/localization_loss': 1e-3, 'Loss/RPNLoss/objectness_loss': 1e-3,
                  'Loss/BoxClassifierLoss/localization_loss': 2e-2,
                  'Loss/BoxClassifierLoss/classification_loss': 2e-2,
                  'Loss/BoxClassifierLoss/mask_loss': 2e-2, 'Loss/regularization_loss': 1e-5,
                  'Loss/total_loss': 5e-3}


def test_bfloat16_losses_track_float32(real_batch, tmp_path):
  images, labels = real_batch
  tf_keras.utils.set_random_seed(0)
  f32 = _built_model(images, labels, precision.FLOAT32)
  bf16 = _built_model(images, labels, precision.MIXED_BFLOAT16)
  _copy_weights(f32, bf16, tmp_path, 'f32')  # float32 checkpoint -> bfloat16 model

  # It really computes in bfloat16, on float32 variables, and hands float32 to the losses.
  backbone = bf16._feature_extractor.get_proposal_feature_extractor_model()  # pylint: disable=protected-access
  conv = [layer for layer in backbone.layers if isinstance(layer, tf_keras.layers.Conv2D)][0]
  assert (conv.compute_dtype, conv.variable_dtype) == ('bfloat16', 'float32')
  assert backbone(_features(bf16, images)[_IF.image]).dtype == tf.bfloat16
  bf16._is_training = f32._is_training = False  # pylint: disable=protected-access
  try:
    out_bf16 = bf16.predict(*bf16.preprocess(tf.constant(images)))
    out_f32 = f32.predict(*f32.preprocess(tf.constant(images)))
  finally:
    bf16._is_training = f32._is_training = True  # pylint: disable=protected-access
  assert out_bf16['box_classifier_features'].dtype == tf.bfloat16
  for key in ('rpn_box_encodings', 'rpn_objectness_predictions_with_background',
              'refined_box_encodings', 'class_predictions_with_background',
              fields.DetectionResultFields.detection_masks):
    assert out_bf16[key].dtype == tf.float32, key
  a, b = out_f32['rpn_box_encodings'].numpy(), out_bf16['rpn_box_encodings'].numpy()
  median_rel = float(np.median(np.abs(a - b) / (np.abs(a) + 1e-6)))
  assert 1e-3 < median_rel < 5e-2, median_rel  # bfloat16 rounding, not float32, not garbage

  f32_losses = _train(f32, images, labels, 3)
  bf16_losses = _train(bf16, images, labels, 3)
  assert all(v.dtype == tf.float32 for v in bf16.variables)
  worst = {}
  for a, b in zip(f32_losses, bf16_losses):
    for key in LOSS_KEYS:
      worst[key] = max(worst.get(key, 0.0), abs(a[key] - b[key]) / max(abs(a[key]), 1e-6))
  print('bf16 vs f32 worst relative loss difference, 3 steps:', worst)
  for key in LOSS_KEYS:
    assert worst[key] < BF16_LOSS_RTOL[key], (key, worst)
  # The steps moved the total loss by several times the bfloat16 difference (the comparison is not
  # of three equal numbers).
  moved = abs(f32_losses[2]['Loss/total_loss'] - f32_losses[0]['Loss/total_loss'])
  largest_difference = max(abs(a['Loss/total_loss'] - b['Loss/total_loss'])
                           for a, b in zip(f32_losses, bf16_losses))
  assert moved > 5 * largest_difference, (f32_losses, bf16_losses)

  _copy_weights(bf16, _built_model(images, labels, precision.FLOAT32), tmp_path, 'bf16')


def test_float16_step_scales_the_loss_and_unscales_the_gradients(real_batch):
  images, labels = real_batch
  tf_keras.utils.set_random_seed(0)
  f32 = _built_model(images, labels, precision.FLOAT32)
  f16 = _built_model(images, labels, precision.MIXED_FLOAT16)
  for a, b in zip(f32.variables, f16.variables):
    b.assign(a)
  conv = [layer for layer in f16._feature_extractor.get_proposal_feature_extractor_model().layers  # pylint: disable=protected-access
          if isinstance(layer, tf_keras.layers.Conv2D)][0]
  assert conv.compute_dtype == 'float16'
  optimizer = precision.loss_scale_optimizer(tf_keras.optimizers.legacy.SGD(0.01))
  (f16_out,) = _train(f16, images, labels, 1, optimizer)
  (f32_out,) = _train(f32, images, labels, 1)
  # The step used the initial dynamic scale 2**15 ...
  assert f16_out['loss_scale'] == 2.0 ** 15
  assert 'loss_scale' not in f32_out
  # ... and the gradients it applied were unscaled: their norm is float32's up to float16 rounding,
  # not 2**15 times it; and the update was applied (finite gradients), like float32's.
  print('gradient norm f16 %g f32 %g' % (f16_out['gradient_norm'], f32_out['gradient_norm']))
  np.testing.assert_allclose(f16_out['gradient_norm'], f32_out['gradient_norm'], rtol=2e-2)
  np.testing.assert_allclose(f16_out['Loss/total_loss'], f32_out['Loss/total_loss'], rtol=1e-2)
  assert int(optimizer.dynamic_counter.numpy()) == 1  # one finite step counted, none skipped
  for a, b in zip(f32.trainable_variables, f16.trainable_variables):
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)

  # A scale that overflows float16 (max 65504): the update is skipped, the scale halves, and the
  # step reports gradient_norm 0, which the training loop's finiteness check accepts.
  overflowing = tf_keras.mixed_precision.LossScaleOptimizer(
      tf_keras.optimizers.legacy.SGD(0.01), initial_scale=2.0 ** 60)
  before = [v.numpy() for v in f16.trainable_variables]
  (skipped,) = _train(f16, images, labels, 1, overflowing)
  assert skipped['loss_scale'] == 2.0 ** 60 and float(overflowing.loss_scale) == 2.0 ** 59
  assert skipped['gradient_norm'] == 0.0
  progress.check_finite(skipped, 1)  # no NonFiniteLossError
  for a, b in zip(before, f16.trainable_variables):
    np.testing.assert_array_equal(a, b.numpy())


def _pipeline(num_steps, train_extra=''):
  pipeline = text_format.Parse("""
      train_config {
        batch_size: 2 num_steps: %d log_every_n_steps: 1 %s
        optimizer { momentum_optimizer { learning_rate { constant_learning_rate {
          learning_rate: 0.01 } } momentum_optimizer_value: 0.9 } use_moving_average: false }
      }
      train_input_reader { } eval_config { } eval_input_reader { }""" % (num_steps, train_extra),
                               pipeline_pb2.TrainEvalPipelineConfig())
  pipeline.model.CopyFrom(_model_config())
  return {'model': pipeline.model, 'train_config': pipeline.train_config,
          'train_input_config': pipeline.train_input_reader, 'eval_config': pipeline.eval_config,
          'eval_input_configs': list(pipeline.eval_input_reader),
          'eval_input_config': pipeline.eval_input_reader[0]}


def test_train_loop_restores_the_policy_and_checkpoints_move_between_precisions(
    real_batch, tmp_path, monkeypatch):
  """use_bfloat16 (step 1) -> mixed_float16 (step 2) -> float32 (step 3) in one model_dir: each run
  resumes the previous one's checkpoint; the keys are the same but for the float16 run's two
  loss-scale variables; the global policy is float32 again after each run. (float32 -> bfloat16
  and back at the model level: test_bfloat16_losses_track_float32.)"""
  images, labels = real_batch

  def train_input_fn(train_config, train_input_config, model_config, model=None, params=None,
                     input_context=None):
    return tf.data.Dataset.from_tensors((_features(model, images), _tensors(labels))).repeat()

  step_args = []
  make_train_step = train_step.make_train_step

  def spy(strategy, detection_model, optimizer, *args, **kwargs):
    step_args.append((detection_model, optimizer))
    return make_train_step(strategy, detection_model, optimizer, *args, **kwargs)

  monkeypatch.setattr(train_step, 'make_train_step', spy)
  policy_before = tf_keras.mixed_precision.global_policy()
  model_dir = str(tmp_path / 'model')
  keys = []
  for step, extra, compute_dtype in ((1, 'use_bfloat16: true', 'bfloat16'),
                                     (2, "mixed_precision: 'mixed_float16'", 'float16'),
                                     (3, '', 'float32')):
    result = model_lib_v2.train_loop(
        None, model_dir, configs=_pipeline(step, extra),
        model_fn=lambda config, is_training=True: model_builder.build(config, is_training),
        train_input_fn=train_input_fn, record_summaries=False, num_train_images_to_summarize=0)
    assert result['step'] == step  # resumed from the previous run's checkpoint, one step more
    assert os.path.basename(result['checkpoint']) == 'ckpt-%d' % step
    assert tf_keras.mixed_precision.global_policy() is policy_before
    model, optimizer = step_args[-1]
    conv = [layer for layer in model._feature_extractor.get_proposal_feature_extractor_model().layers  # pylint: disable=protected-access
            if isinstance(layer, tf_keras.layers.Conv2D)][0]
    assert (conv.compute_dtype, conv.variable_dtype) == (compute_dtype, 'float32')
    # Loss scaling for float16 only; float32 and bfloat16 steps get the checkpointed optimizer.
    scaled = isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    assert scaled == (compute_dtype == 'float16')
    if scaled:
      assert isinstance(optimizer.inner_optimizer, tf_keras.optimizers.legacy.SGD)
    keys.append(sorted(name for name, _ in tf.train.list_variables(result['checkpoint'])))
  assert any('OPTIMIZER_SLOT' in key for key in keys[0])  # momentum slots saved
  assert keys[0] == keys[2]
  # The float16 run also saves Keras' dynamic loss scale (a resumed float16 run keeps its scale;
  # float32 and bfloat16 runs ignore it, a float16 run from another checkpoint starts at 2**15).
  assert sorted(set(keys[1]) - set(keys[0])) == [
      'optimizer/loss_scale/current_loss_scale/.ATTRIBUTES/VARIABLE_VALUE',
      'optimizer/loss_scale/good_steps/.ATTRIBUTES/VARIABLE_VALUE']
  assert set(keys[0]) <= set(keys[1])


def test_float32_config_leaves_the_policy_object_alone():
  configs = _pipeline(1)
  assert precision.policy_name(configs['train_config']) == 'float32'
  before = tf_keras.mixed_precision.global_policy()
  with precision.policy_scope(precision.FLOAT32):
    model = model_builder.build(_model_config(), is_training=True)
    assert tf_keras.mixed_precision.global_policy() is before
  # The casts added for mixed precision return their float32 input itself: float32 runs compute
  # exactly what they did (the golden-value tests of tests/test_tfod_model_golden.py hold).
  tensor = tf.constant([1.5])
  assert tf.cast(tensor, tf.float32) is tensor
  del model


@pytest.mark.parametrize('extra,message', [
    ("use_bfloat16: true mixed_precision: 'mixed_float16'",
     "Invalid pipeline config: `train_config.use_bfloat16` is true but "
     "`train_config.mixed_precision` is 'mixed_float16'; remove one of them (use_bfloat16: true "
     "means mixed_precision: 'mixed_bfloat16')."),
    ("mixed_precision: 'float16'",
     "Invalid pipeline config: `train_config.mixed_precision` is 'float16'; use one of '', "
     "'mixed_bfloat16', 'mixed_float16'."),
])
def test_bad_precision_fields_are_one_line_config_errors(extra, message):
  configs = _pipeline(1, extra)
  with pytest.raises(config_validation.ConfigError) as info:
    config_validation.validate_train_config(configs['train_config'])
  assert str(info.value) == message
  assert config_validation.error_line(info.value, 'p.config') == 'Config error in p.config: ' + message


@pytest.mark.parametrize('extra,policy', [
    ('', 'float32'), ('use_bfloat16: true', 'mixed_bfloat16'),
    ("use_bfloat16: true mixed_precision: 'mixed_bfloat16'", 'mixed_bfloat16'),
    ("mixed_precision: 'mixed_bfloat16'", 'mixed_bfloat16'),
    ("mixed_precision: 'mixed_float16'", 'mixed_float16')])
def test_policy_name(extra, policy):
  assert precision.policy_name(_pipeline(1, extra)['train_config']) == policy
  config_validation.validate_train_config(_pipeline(1, extra)['train_config'])
