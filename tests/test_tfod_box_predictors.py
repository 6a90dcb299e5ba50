"""Golden tests: our Faster R-CNN / Mask R-CNN box predictors against the TF OD API's.

The fixtures in tests/testdata/tfod_golden/box_predictors/ were written by the TF OD API itself
(tools/tfod_golden/box_predictors.py, see its docstring for the cases). Each case is rebuilt here
from the same arguments / `BoxPredictor` config text stored in the fixture, every variable is set
from its checkpoint key with deterministic_weights.value_for, and we check:
  - the checkpoint keys and shapes equal the TF OD API's (tf.train.list_variables of a checkpoint
    rooted at `model` with the meta-architecture's attribute name), and
  - the outputs on the same inputs equal the TF OD API's.

Tolerance: rtol 1e-5 / atol 1e-6 (both sides run the same TF ops in the same order; the margin
only covers float reassociation in the long conv / dense reductions).
"""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection.builders import box_predictor_builder
from object_detection.builders import hyperparams_builder
from object_detection.core import box_predictor
from object_detection.predictors.heads import keras_mask_head
from object_detection.protos import box_predictor_pb2
from object_detection.protos import hyperparams_pb2
from object_detection.utils import checkpoint_utils

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_DIR = os.path.join(REPO_ROOT, 'tests', 'testdata', 'tfod_golden', 'box_predictors')
RTOL, ATOL = 1e-5, 1e-6


def _load_by_path(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


deterministic_weights = _load_by_path(
    'deterministic_weights',
    os.path.join(REPO_ROOT, 'tools', 'tfod_golden', 'deterministic_weights.py'))

RPN_CASES = ['rpn_c4', 'rpn_fpn']
MASK_RCNN_CASES = ['mrcnn_zoo_c4', 'mrcnn_zoo_irv2', 'mrcnn_zoo_fpn', 'mrcnn_fpn_mask_crops',
                   'mrcnn_upsample_agnostic', 'mrcnn_upsample_floor', 'mrcnn_train_bn',
                   'mrcnn_train_frozen_bn']


def _fixture(case):
  with np.load(os.path.join(GOLDEN_DIR, case + '.npz')) as data:
    return {key: data[key] for key in data.files}


def _reference_keys(case):
  with open(os.path.join(GOLDEN_DIR, case + '_keys.txt')) as f:
    return [line.split() for line in f.read().splitlines() if line]


def _our_keys(holder, tmp_path):
  path = tf.train.Checkpoint(model=holder).save(str(tmp_path / 'ckpt'))
  return sorted([key, ','.join(str(d) for d in shape)]
                for key, shape in tf.train.list_variables(path) if key.startswith('model/'))


def _holder(attribute, predictor):
  holder = tf.Module()
  setattr(holder, attribute, predictor)
  return holder


def _assign(holder):
  return deterministic_weights.assign_all({'model': holder}, checkpoint_utils.variable_keys)


def _close(actual, expected, what):
  actual = np.asarray(actual)
  assert actual.shape == expected.shape, '%s: shape %s != reference %s' % (
      what, actual.shape, expected.shape)
  np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def _build_rpn(fixture):
  conv_config = text_format.Parse(str(fixture['conv_hyperparams']), hyperparams_pb2.Hyperparams())
  return box_predictor_builder.build_convolutional_keras_box_predictor(
      is_training=False,
      num_classes=1,
      conv_hyperparams=hyperparams_builder.KerasLayerHyperparams(conv_config),
      freeze_batchnorm=False,
      inplace_batchnorm_update=False,
      num_predictions_per_location_list=[int(n) for n in
                                         fixture['num_predictions_per_location_list']],
      use_dropout=False,
      dropout_keep_prob=1.0,
      box_code_size=4,
      kernel_size=1,
      num_layers_before_predictor=0,
      min_depth=0,
      max_depth=0,
      name='FirstStageBoxPredictor')


@pytest.mark.parametrize('case', RPN_CASES)
def test_rpn_predictor_matches_tfod(case, tmp_path):
  fixture = _fixture(case)
  num_levels = int(fixture['num_levels'])
  features = [tf.constant(fixture['features_%d' % i].astype(np.float32))
              for i in range(num_levels)]
  predictor = _build_rpn(fixture)
  predictor(features)
  holder = _holder('_first_stage_box_predictor', predictor)
  _assign(holder)
  assert _our_keys(holder, tmp_path) == _reference_keys(case)

  outputs = predictor(features)
  assert len(outputs[box_predictor.BOX_ENCODINGS]) == num_levels
  for i in range(num_levels):
    _close(outputs[box_predictor.BOX_ENCODINGS][i], fixture['box_encodings_%d' % i],
           '%s box_encodings level %d' % (case, i))
    _close(outputs[box_predictor.CLASS_PREDICTIONS_WITH_BACKGROUND][i],
           fixture['class_predictions_with_background_%d' % i],
           '%s objectness level %d' % (case, i))


def _build_second_stage(fixture):
  config = text_format.Parse(str(fixture['config']), box_predictor_pb2.BoxPredictor())
  return box_predictor_builder.build_keras(
      hyperparams_fn=hyperparams_builder.KerasLayerHyperparams,
      freeze_batchnorm=bool(fixture['freeze_batchnorm']),
      inplace_batchnorm_update=False,
      num_predictions_per_location_list=[1],
      box_predictor_config=config,
      is_training=bool(fixture['is_training']),
      num_classes=int(fixture['num_classes']))


def _stored_masks(masks, fixture):
  masks = np.asarray(masks)
  if 'mask_class_index' in fixture:
    return masks[:, :, fixture['mask_class_index']]
  return masks


@pytest.mark.parametrize('case', MASK_RCNN_CASES)
def test_mask_rcnn_predictor_matches_tfod(case, tmp_path):
  fixture = _fixture(case)
  stage2 = tf.constant(fixture['stage2_features'].astype(np.float32))
  if bool(fixture['stage3_same_as_stage2']):
    stage3 = [stage2]
  else:
    stage3 = [tf.constant(fixture['stage3_features_%d' % i].astype(np.float32))
              for i in range(int(fixture['num_stage3']))]
  training_call = int(fixture['training_call'])
  call_kwargs = {} if training_call < 0 else {'training': bool(training_call)}

  predictor = _build_second_stage(fixture)

  def run(**kwargs):
    out2 = predictor([stage2], prediction_stage=2, **kwargs)
    out3 = [predictor([x], prediction_stage=3, **kwargs) for x in stage3]
    return out2, out3

  run(training=False)
  holder = _holder('_mask_rcnn_box_predictor', predictor)
  keys = _assign(holder)
  assert _our_keys(holder, tmp_path) == _reference_keys(case)

  out2, out3 = run(**call_kwargs)
  _close(out2[box_predictor.BOX_ENCODINGS], fixture['box_encodings'], case + ' box_encodings')
  _close(out2[box_predictor.CLASS_PREDICTIONS_WITH_BACKGROUND],
         fixture['class_predictions_with_background'], case + ' class logits')
  for i, out in enumerate(out3):
    assert sorted(out) == [box_predictor.MASK_PREDICTIONS]
    masks = out[box_predictor.MASK_PREDICTIONS]
    assert list(masks.shape) == list(fixture['mask_predictions_shape_%d' % i])
    _close(_stored_masks(masks, fixture), fixture['mask_predictions_%d' % i],
           '%s masks call %d' % (case, i))

  if training_call == 1:
    variables = checkpoint_utils.variable_keys({'model': holder})
    stat_keys = [k for k in keys if k.endswith('moving_mean') or k.endswith('moving_variance')]
    assert stat_keys
    for key in stat_keys:
      _close(variables[key + '/'], fixture['after_training_call:' + key], key)
    infer2, infer3 = run(training=False)
    _close(infer2[box_predictor.BOX_ENCODINGS], fixture['inference_box_encodings'],
           case + ' inference box_encodings')
    _close(infer2[box_predictor.CLASS_PREDICTIONS_WITH_BACKGROUND],
           fixture['inference_class_predictions_with_background'], case + ' inference logits')
    for i, out in enumerate(infer3):
      _close(_stored_masks(out[box_predictor.MASK_PREDICTIONS], fixture),
             fixture['inference_mask_predictions_%d' % i], '%s inference masks %d' % (case, i))

  if 'regularization_losses' in fixture:
    losses = sorted(float(loss.numpy()) for loss in predictor.losses)
    np.testing.assert_allclose(losses, fixture['regularization_losses'], rtol=1e-5)


def test_frozen_batch_norm_ignores_training_call():
  # The TF OD API fixture shows it too; this states it: with freeze_batchnorm the statistics stay
  # at their assigned values and training-mode outputs equal inference outputs.
  fixture = _fixture('mrcnn_train_frozen_bn')
  for key in fixture:
    if key.startswith('after_training_call:'):
      name = key[len('after_training_call:'):]
      np.testing.assert_array_equal(
          fixture[key], deterministic_weights.value_for(name, fixture[key].shape))
  np.testing.assert_array_equal(fixture['box_encodings'], fixture['inference_box_encodings'])


def _mask_rcnn_config(text):
  return text_format.Parse(text, box_predictor_pb2.BoxPredictor())


@pytest.mark.parametrize('kind', ['convolutional_box_predictor', 'rfcn_box_predictor',
                                  'weight_shared_convolutional_box_predictor'])
def test_build_keras_rejects_other_second_stage_predictors(kind):
  config = _mask_rcnn_config('%s { conv_hyperparams { op: CONV } }' % kind)
  with pytest.raises(ValueError, match=r'second_stage_box_predictor\.%s .*only '
                     r'mask_rcnn_box_predictor' % kind):
    box_predictor_builder.build_keras(hyperparams_builder.KerasLayerHyperparams, False, False, [1],
                                      config, False, 3)


def test_build_keras_config_errors():
  build = lambda text: box_predictor_builder.build_keras(
      hyperparams_builder.KerasLayerHyperparams, False, False, [1], _mask_rcnn_config(text),
      False, 3)
  with pytest.raises(ValueError, match='box_predictor_config must be a'):
    box_predictor_builder.build_keras(hyperparams_builder.KerasLayerHyperparams, False, False, [1],
                                      hyperparams_pb2.Hyperparams(), False, 3)
  with pytest.raises(ValueError, match=r'second_stage_box_predictor\.None'):
    build('')
  with pytest.raises(ValueError, match='conv_hyperparams must be set'):
    build('mask_rcnn_box_predictor { predict_instance_masks: true }')
  with pytest.raises(ValueError, match='dropout_keep_probability'):
    build('mask_rcnn_box_predictor { use_dropout: true dropout_keep_probability: 0.0 }')


def test_prediction_stage_and_feature_list_errors():
  predictor = box_predictor_builder.build_keras(
      hyperparams_builder.KerasLayerHyperparams, False, False, [1],
      _mask_rcnn_config('mask_rcnn_box_predictor { fc_hyperparams { op: FC } }'), False, 3)
  features = tf.zeros([2, 3, 3, 8])
  with pytest.raises(ValueError, match='prediction_stage must be 2 or 3'):
    predictor([features], prediction_stage=4)
  with pytest.raises(ValueError, match='exactly one'):
    predictor([features, features], prediction_stage=2)
  # No mask head configured: stage 3 predicts nothing (as in the TF OD API).
  assert predictor([features], prediction_stage=3) == {}


def test_mask_depth_formula_values():
  # 2 ** round((2 * log2(C) + 3 * log2(K)) / 5), TF OD API `_get_mask_predictor_conv_depth`.
  assert keras_mask_head.get_mask_predictor_conv_depth(2048, 90) == 256
  assert keras_mask_head.get_mask_predictor_conv_depth(256, 90) == 128
  assert keras_mask_head.get_mask_predictor_conv_depth(64, 3) == 8
