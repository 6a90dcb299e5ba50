"""Writes the golden fixtures of the Faster R-CNN / Mask R-CNN box predictors from the TF OD API.

Run in the reference process (never imports this project):

  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/box_predictors.py

Writes tests/testdata/tfod_golden/box_predictors/<case>.npz and <case>_keys.txt for each case below:

  RPN (`box_predictor_builder.build_convolutional_keras_box_predictor` with the arguments
  `FasterRCNNMetaArch.__init__` passes: num_classes=1, kernel_size=1, no extra layers, no dropout):
    rpn_c4   one feature map [2, 6, 5, 512], num_predictions_per_location_list [12].
    rpn_fpn  five maps (FPN levels 2..6 of a 64x48 image, 256 channels), [3] * 5: one predictor
             holding one head pair per level.
  Second stage (`box_predictor_builder.build_keras(hyperparams_builder.KerasLayerHyperparams, ...)`
  on a `BoxPredictor` proto with mask_rcnn_box_predictor; called as predictor([features],
  prediction_stage=2 / 3) like FasterRCNNMetaArch):
    mrcnn_zoo_c4 / _irv2 / _fpn   the zoo Mask R-CNN predictor config (mask 33x33, conv depth 0,
             4 conv layers), 90 classes, on ResNet C4 [2, 4, 4, 2048], Inception-ResNet-v2
             [2, 8, 8, 1536] and FPN [2, 1, 1, 1024] box classifier features.
    mrcnn_fpn_mask_crops   the zoo config with stage 2 on [2, 1, 1, 1024] and stage 3 on other
             features: [2, 14, 14, 256], then [3, 7, 7, 256] (the mask head resizes any size).
    mrcnn_upsample_agnostic   convolve_then_upsample_masks, class-agnostic masks, shared boxes,
             dropout (inference: off), conv depth 256, batch norm + L2 in conv_hyperparams, L2 in
             fc_hyperparams; [2, 7, 7, 256]; also the regularization losses.
    mrcnn_upsample_floor   the same with mask 15x15 on [2, 2, 2, 64] (upsampling factor 15 // 2).
    mrcnn_train_bn   batch norm in fc and conv hyperparams, is_training, called with
             training=True (batch statistics), then the moving statistics after those calls and an
             inference call.
    mrcnn_train_frozen_bn   the same config with freeze_batchnorm=True, called with training=True.

Every variable is set with deterministic_weights.value_for(checkpoint key, shape), keys as
object-based checkpoint keys under a `model` root whose attribute is `_first_stage_box_predictor`
or `_mask_rcnn_box_predictor` (the meta-architecture's attribute names), so the keys equal those
of a full model's checkpoint. Inputs are seeded normal values rounded to float16 (stored as
float16: exact in float32, half the size). Mask logits of 90-class heads are stored for the
classes in `mask_class_index` only, to keep the files small.
"""

import importlib.util
import os
import tempfile

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from object_detection.builders import box_predictor_builder
from object_detection.builders import hyperparams_builder
from object_detection.protos import box_predictor_pb2
from object_detection.protos import hyperparams_pb2

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
OUT_DIR = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'box_predictors')


def _load(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


deterministic_weights = _load('deterministic_weights',
                              os.path.join(_HERE, 'deterministic_weights.py'))
checkpoint_utils = _load('checkpoint_utils_by_path',
                         os.path.join(_REPO, 'object_detection', 'utils', 'checkpoint_utils.py'))

RPN_CONV_HYPERPARAMS = """
  op: CONV
  regularizer { l2_regularizer { weight: 0.0 } }
  initializer { truncated_normal_initializer { stddev: 0.01 } }
"""

ZOO_MASK_RCNN = """
mask_rcnn_box_predictor {
  use_dropout: false
  dropout_keep_probability: 1.0
  fc_hyperparams {
    op: FC
    regularizer { l2_regularizer { weight: 0.0 } }
    initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } }
  }
  mask_height: 33
  mask_width: 33
  mask_prediction_conv_depth: 0
  mask_prediction_num_conv_layers: 4
  conv_hyperparams {
    op: CONV
    regularizer { l2_regularizer { weight: 0.0 } }
    initializer { truncated_normal_initializer { stddev: 0.01 } }
  }
  predict_instance_masks: true
}
"""

UPSAMPLE_AGNOSTIC = """
mask_rcnn_box_predictor {
  use_dropout: true
  dropout_keep_probability: 0.7
  fc_hyperparams {
    op: FC
    regularizer { l2_regularizer { weight: 0.0004 } }
    initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } }
  }
  mask_height: %(mask)d
  mask_width: %(mask)d
  mask_prediction_conv_depth: 256
  mask_prediction_num_conv_layers: 3
  masks_are_class_agnostic: true
  share_box_across_classes: true
  convolve_then_upsample_masks: true
  conv_hyperparams {
    op: CONV
    activation: RELU_6
    regularizer { l2_regularizer { weight: 0.0004 } }
    initializer { truncated_normal_initializer { stddev: 0.01 } }
    batch_norm { decay: 0.97 center: true scale: true epsilon: 0.001 }
  }
  predict_instance_masks: true
}
"""

TRAIN_BN = """
mask_rcnn_box_predictor {
  use_dropout: false
  fc_hyperparams {
    op: FC
    initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } }
    batch_norm { decay: 0.9 center: true scale: true epsilon: 0.001 }
  }
  mask_height: 14
  mask_width: 14
  mask_prediction_conv_depth: 0
  mask_prediction_num_conv_layers: 2
  conv_hyperparams {
    op: CONV
    initializer { truncated_normal_initializer { stddev: 0.01 } }
    batch_norm { decay: 0.8 center: true scale: false epsilon: 0.01 }
  }
  predict_instance_masks: true
}
"""

# Classes whose mask logits are stored for 90-class mask heads.
MASK_CLASS_INDEX_90 = np.r_[0:90:6, 89].astype(np.int32)


def _inputs(seed, shape):
  values = np.random.RandomState(seed).normal(0.0, 1.0, shape)
  return values.astype(np.float16)


def _holder(attribute, predictor):
  holder = tf.Module()
  setattr(holder, attribute, predictor)
  return holder


def _assign_weights(holder):
  return deterministic_weights.assign_all({'model': holder}, checkpoint_utils.variable_keys)


def _write_keys(case, holder):
  with tempfile.TemporaryDirectory() as tmp:
    path = tf.train.Checkpoint(model=holder).save(os.path.join(tmp, 'ckpt'))
    listing = tf.train.list_variables(path)
  lines = ['%s %s' % (key, ','.join(str(d) for d in shape)) for key, shape in listing
           if key.startswith('model/')]
  with open(os.path.join(OUT_DIR, case + '_keys.txt'), 'w') as f:
    f.write('\n'.join(sorted(lines)) + '\n')
  return len(lines)


def _save(case, arrays):
  path = os.path.join(OUT_DIR, case + '.npz')
  np.savez_compressed(path, **arrays)
  print('wrote %s (%d bytes)' % (path, os.path.getsize(path)))


def rpn_case(case, level_shapes, num_predictions_per_location_list, seed):
  conv_hyperparams_text = RPN_CONV_HYPERPARAMS
  conv_config = text_format.Parse(conv_hyperparams_text, hyperparams_pb2.Hyperparams())
  predictor = box_predictor_builder.build_convolutional_keras_box_predictor(
      is_training=False,
      num_classes=1,
      conv_hyperparams=hyperparams_builder.KerasLayerHyperparams(conv_config),
      freeze_batchnorm=False,
      inplace_batchnorm_update=False,
      num_predictions_per_location_list=num_predictions_per_location_list,
      use_dropout=False,
      dropout_keep_prob=1.0,
      box_code_size=4,
      kernel_size=1,
      num_layers_before_predictor=0,
      min_depth=0,
      max_depth=0,
      name='FirstStageBoxPredictor')
  inputs = [_inputs(seed + i, shape) for i, shape in enumerate(level_shapes)]
  features = [tf.constant(x.astype(np.float32)) for x in inputs]
  predictor(features)
  holder = _holder('_first_stage_box_predictor', predictor)
  _assign_weights(holder)
  num_keys = _write_keys(case, holder)
  outputs = predictor(features)
  arrays = {
      'conv_hyperparams': np.array(conv_hyperparams_text),
      'num_predictions_per_location_list': np.array(num_predictions_per_location_list, np.int32),
      'num_levels': np.array(len(level_shapes), np.int32),
  }
  for i, x in enumerate(inputs):
    arrays['features_%d' % i] = x
    arrays['box_encodings_%d' % i] = outputs['box_encodings'][i].numpy()
    arrays['class_predictions_with_background_%d' % i] = (
        outputs['class_predictions_with_background'][i].numpy())
  _save(case, arrays)
  print('  %d keys' % num_keys)


def _build_second_stage(config_text, num_classes, is_training, freeze_batchnorm):
  config = text_format.Parse(config_text, box_predictor_pb2.BoxPredictor())
  return box_predictor_builder.build_keras(
      hyperparams_fn=hyperparams_builder.KerasLayerHyperparams,
      freeze_batchnorm=freeze_batchnorm,
      inplace_batchnorm_update=False,
      num_predictions_per_location_list=[1],
      box_predictor_config=config,
      is_training=is_training,
      num_classes=num_classes)


def _masks_for_fixture(masks, mask_class_index):
  return masks if mask_class_index is None else masks[:, :, mask_class_index]


def mask_rcnn_case(case, config_text, num_classes, stage2_shape, stage3_shapes, seed,
                   is_training=False, freeze_batchnorm=False, training_call=None,
                   mask_class_index=None, regularization=False):
  """Builds, weights, runs and stores one second-stage case.

  `stage3_shapes` None runs stage 3 on the stage-2 features (as the meta-architecture does).
  `training_call` None calls without `training` (the meta-architecture's call); True / False pass
  it. With training_call True the batch norm moving statistics after the calls and an inference
  call (training=False) are stored too.
  """
  predictor = _build_second_stage(config_text, num_classes, is_training, freeze_batchnorm)
  stage2 = _inputs(seed, stage2_shape)
  if stage3_shapes is None:  # The TF OD API feeds the box classifier features to both stages.
    stage3 = [stage2]
  else:
    stage3 = [_inputs(seed + 1 + i, shape) for i, shape in enumerate(stage3_shapes)]
  kwargs = {} if training_call is None else {'training': training_call}

  def run(**call_kwargs):
    out2 = predictor([tf.constant(stage2.astype(np.float32))], prediction_stage=2, **call_kwargs)
    out3 = [predictor([tf.constant(x.astype(np.float32))], prediction_stage=3, **call_kwargs)
            for x in stage3]
    return out2, out3

  run(training=False)  # Creates the variables without touching batch norm statistics.
  holder = _holder('_mask_rcnn_box_predictor', predictor)
  keys = _assign_weights(holder)
  num_keys = _write_keys(case, holder)
  out2, out3 = run(**kwargs)
  arrays = {
      'config': np.array(config_text),
      'num_classes': np.array(num_classes, np.int32),
      'is_training': np.array(is_training),
      'freeze_batchnorm': np.array(freeze_batchnorm),
      'training_call': np.array(-1 if training_call is None else int(training_call), np.int32),
      'stage2_features': stage2,
      'num_stage3': np.array(len(stage3), np.int32),
      'stage3_same_as_stage2': np.array(stage3_shapes is None),
      'box_encodings': out2['box_encodings'].numpy(),
      'class_predictions_with_background': out2['class_predictions_with_background'].numpy(),
  }
  if mask_class_index is not None:
    arrays['mask_class_index'] = mask_class_index
  for i, (x, out) in enumerate(zip(stage3, out3)):
    masks = out['mask_predictions'].numpy()
    if stage3_shapes is not None:
      arrays['stage3_features_%d' % i] = x
    arrays['mask_predictions_shape_%d' % i] = np.array(masks.shape, np.int32)
    arrays['mask_predictions_%d' % i] = _masks_for_fixture(masks, mask_class_index)
  if training_call:
    variables = checkpoint_utils.variable_keys({'model': holder})
    for key in keys:
      if key.endswith('moving_mean') or key.endswith('moving_variance'):
        arrays['after_training_call:' + key] = variables[key + '/'].numpy()
    infer2, infer3 = run(training=False)
    arrays['inference_box_encodings'] = infer2['box_encodings'].numpy()
    arrays['inference_class_predictions_with_background'] = (
        infer2['class_predictions_with_background'].numpy())
    for i, out in enumerate(infer3):
      arrays['inference_mask_predictions_%d' % i] = _masks_for_fixture(
          out['mask_predictions'].numpy(), mask_class_index)
  if regularization:
    losses = sorted(float(loss.numpy()) for loss in predictor.losses)
    arrays['regularization_losses'] = np.array(losses, np.float64)
  _save(case, arrays)
  print('  %d keys' % num_keys)


def main():
  os.makedirs(OUT_DIR, exist_ok=True)
  rpn_case('rpn_c4', [[2, 6, 5, 512]], [12], seed=100)
  rpn_case('rpn_fpn', [[2, 16, 12, 256], [2, 8, 6, 256], [2, 4, 3, 256], [2, 2, 2, 256],
                       [2, 1, 1, 256]], [3] * 5, seed=200)
  mask_rcnn_case('mrcnn_zoo_c4', ZOO_MASK_RCNN, 90, [2, 4, 4, 2048], None, seed=300,
                 mask_class_index=MASK_CLASS_INDEX_90)
  mask_rcnn_case('mrcnn_zoo_irv2', ZOO_MASK_RCNN, 90, [2, 8, 8, 1536], None, seed=400,
                 mask_class_index=MASK_CLASS_INDEX_90)
  mask_rcnn_case('mrcnn_zoo_fpn', ZOO_MASK_RCNN, 90, [2, 1, 1, 1024], None, seed=500,
                 mask_class_index=MASK_CLASS_INDEX_90)
  mask_rcnn_case('mrcnn_fpn_mask_crops', ZOO_MASK_RCNN, 90, [2, 1, 1, 1024],
                 [[2, 14, 14, 256], [3, 7, 7, 256]], seed=600,
                 mask_class_index=MASK_CLASS_INDEX_90)
  mask_rcnn_case('mrcnn_upsample_agnostic', UPSAMPLE_AGNOSTIC % {'mask': 14}, 3, [2, 7, 7, 256],
                 None, seed=700, regularization=True)
  mask_rcnn_case('mrcnn_upsample_floor', UPSAMPLE_AGNOSTIC % {'mask': 15}, 3, [2, 2, 2, 64],
                 None, seed=800)
  mask_rcnn_case('mrcnn_train_bn', TRAIN_BN, 3, [4, 5, 5, 64], None, seed=900,
                 is_training=True, training_call=True)
  mask_rcnn_case('mrcnn_train_frozen_bn', TRAIN_BN, 3, [4, 5, 5, 64], None, seed=900,
                 is_training=True, freeze_batchnorm=True, training_call=True)


if __name__ == '__main__':
  main()
