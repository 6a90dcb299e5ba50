"""The distributed training step (TF OD API `model_lib_v2.eager_train_step` semantics).

Loss = sum of the model's loss terms (already weighted by the config) + the model's
regularization losses when `add_regularization_loss`; the gradient of loss / num_replicas is
applied (replica gradients are summed by the strategy), optionally clipped by global norm
(`gradient_clipping_by_norm`).
"""
import re

import tensorflow as tf
import tf_keras

from object_detection.core import standard_fields as fields
from object_detection.utils import config_validation
from object_detection.utils import shape_utils

_IF = fields.InputDataFields
# semantic_inputs.GROUNDTRUTH_SEMANTIC (not imported: that module pulls in the input pipeline).
_GROUNDTRUTH_SEMANTIC = 'groundtruth_semantic'


def unstack_groundtruth(labels, image_shape=None, true_image_shapes=None, unpad=True):
  """Splits padded batched labels (`inputs.py` module docstring) into the per-image lists of
  `provide_groundtruth`.

  Our labels hold boxes normalized to each TRUE (unpadded) image; the TF OD API's models, and so ours,
  take them normalized to the padded model input (the TF OD API's input pipeline re-normalizes them
  with `change_coordinate_frame`). Given the padded `image_shape` and the `true_image_shapes`, the
  boxes are rescaled the same way: box * [h_true / H, w_true / W, h_true / H, w_true / W].

  Args:
    labels: dict of batched labels (num_groundtruth_boxes, groundtruth_boxes, groundtruth_classes
      one-hot, groundtruth_weights, optional groundtruth_is_crowd, groundtruth_instance_masks,
      groundtruth_labeled_classes).
    image_shape: int32 [4] (or a static list) of the padded model input, or None to keep the boxes.
    true_image_shapes: int32 [B, 3], needed with `image_shape`.
    unpad: True: each image's first num_groundtruth_boxes rows (the TF OD API's
      `unpad_groundtruth_tensors: true`). False: all max_number_of_boxes rows, the padding rows
      with weight 0 (its `unpad_groundtruth_tensors: false`): static shapes, which XLA and TPUs
      need; the losses are the same, since zero-weight rows match nothing.

  Returns:
    dict of `provide_groundtruth` keyword arguments: `groundtruth_boxes_list` ([N_i, 4] float32),
    `groundtruth_classes_list` ([N_i, num_classes] float32 one-hot), `groundtruth_weights_list`
    ([N_i]), `groundtruth_is_crowd_list` ([N_i] bool or None), and when present
    `groundtruth_masks_list` ([N_i, H, W] float32 0/1 at the padded model-input resolution) and
    `groundtruth_labeled_classes` ([num_classes] float32 k-hot per image).
    Semantic segmentation labels (`semantic_inputs.py`: 'groundtruth_semantic' uint8 [B, h, w]
    and no boxes) give {'groundtruth_semantic': the batched label maps}.
  """
  if _GROUNDTRUTH_SEMANTIC in labels and _IF.groundtruth_boxes not in labels:
    return {_GROUNDTRUTH_SEMANTIC: labels[_GROUNDTRUTH_SEMANTIC]}
  num = labels[_IF.num_groundtruth_boxes]
  batch = labels[_IF.groundtruth_boxes].shape[0]
  boxes = labels[_IF.groundtruth_boxes]
  if image_shape is not None and true_image_shapes is not None:
    padded_hw = tf.cast(tf.convert_to_tensor(image_shape)[1:3], tf.float32)
    scale = tf.cast(true_image_shapes[:, :2], tf.float32) / padded_hw[tf.newaxis]
    boxes = boxes * tf.concat([scale, scale], axis=1)[:, tf.newaxis, :]
  out = {'groundtruth_boxes_list': [], 'groundtruth_classes_list': [],
         'groundtruth_weights_list': [], 'groundtruth_is_crowd_list': []}
  has_masks = _IF.groundtruth_instance_masks in labels
  if has_masks:
    out['groundtruth_masks_list'] = []
  for i in range(batch):
    n = num[i] if unpad else labels[_IF.groundtruth_boxes].shape[1]
    out['groundtruth_boxes_list'].append(boxes[i, :n])
    out['groundtruth_classes_list'].append(labels[_IF.groundtruth_classes][i, :n])
    out['groundtruth_weights_list'].append(labels[_IF.groundtruth_weights][i, :n])
    if _IF.groundtruth_is_crowd in labels:
      out['groundtruth_is_crowd_list'].append(labels[_IF.groundtruth_is_crowd][i, :n])
    if has_masks:
      out['groundtruth_masks_list'].append(
          tf.cast(labels[_IF.groundtruth_instance_masks][i, :n], tf.float32))
  if not out['groundtruth_is_crowd_list']:
    out['groundtruth_is_crowd_list'] = None
  if _IF.groundtruth_labeled_classes in labels:
    out['groundtruth_labeled_classes'] = tf.unstack(
        tf.cast(labels[_IF.groundtruth_labeled_classes], tf.float32))
  return out


def predict_and_compute_losses(detection_model, features, labels, add_regularization_loss=True,
                                unpad_groundtruth_tensors=True):
  """Runs provide_groundtruth, predict and loss; returns (prediction_dict, loss dict).

  The loss dict has the model's TF OD API keys plus `Loss/regularization_loss` (when
  `add_regularization_loss` and the model has any) and `Loss/total_loss`, their sum (the TF OD
  API's `_compute_losses_and_predictions_dicts`). Training and evaluation both compute their
  losses here. `unpad_groundtruth_tensors`: see `unstack_groundtruth(unpad=...)`.
  """
  image = features[_IF.image]
  true_image_shape = features[_IF.true_image_shape]
  detection_model.provide_groundtruth(**unstack_groundtruth(
      labels, shape_utils.combined_static_and_dynamic_shape(image), true_image_shape,
      unpad=unpad_groundtruth_tensors))
  prediction_dict = detection_model.predict(image, true_image_shape)
  losses = dict(detection_model.loss(prediction_dict, true_image_shape))
  if add_regularization_loss:
    reg = detection_model.regularization_losses()
    if reg:
      losses['Loss/regularization_loss'] = tf.add_n([tf.cast(r, tf.float32) for r in reg])
  losses['Loss/total_loss'] = tf.add_n([tf.cast(v, tf.float32) for v in losses.values()])
  return prediction_dict, losses


def compute_losses(detection_model, features, labels, add_regularization_loss=True,
                   unpad_groundtruth_tensors=True):
  """The loss dict of `predict_and_compute_losses` (with `Loss/total_loss`)."""
  return predict_and_compute_losses(detection_model, features, labels, add_regularization_loss,
                                    unpad_groundtruth_tensors)[1]


def _var_name(var):
  return var.name[:-2] if var.name.endswith(':0') else var.name


def filter_trainable_variables(variables, update_trainable_variables=(), freeze_variables=()):
  """TF OD API semantics (slim.filter_variables as used by model_lib): keep variables whose name
  (without ':0') matches (re.search) one of `update_trainable_variables` when that list is
  non-empty, then drop those matching any of `freeze_variables`."""
  kept = list(variables)
  include = [p for p in update_trainable_variables if p]
  exclude = [p for p in freeze_variables if p]
  if include:
    kept = [v for v in kept if any(re.search(p, _var_name(v)) for p in include)]
  if exclude:
    kept = [v for v in kept if not any(re.search(p, _var_name(v)) for p in exclude)]
  return kept


def make_build_fn(strategy, detection_model, add_regularization_loss,
                  unpad_groundtruth_tensors=True):
  """Returns fn(features, labels) running one forward pass + loss per replica (creates variables,
  TF OD API `_ensure_model_is_built`)."""

  def _replica(features, labels):
    return compute_losses(detection_model, features, labels, add_regularization_loss,
                          unpad_groundtruth_tensors)['Loss/total_loss']

  @tf.function
  def build(features, labels):
    strategy.run(_replica, args=(features, labels))

  return build


def make_train_step(strategy, detection_model, optimizer, trainable_variables, global_step,
                    add_regularization_loss=True, clip_gradients_value=None, jit_compile=False,
                    unpad_groundtruth_tensors=True):
  """Returns a tf.function `step(features, labels)` (distributed values) -> dict of float32 scalar
  losses (mean over replicas) plus `gradient_norm`; increments `global_step` by one.

  jit_compile: XLA-compile each replica's forward pass, losses, backward pass and gradient
  clipping as one computation (the model must be on its static-shape path: `training/xla.py`
  checks the config). The optimizer update stays outside it: it is the replicas' synchronisation
  point (a cross-replica merge_call), which cannot sit inside a nested compiled function.

  With `optimizer` a tf_keras LossScaleOptimizer (`precision.loss_scale_optimizer`, for
  'mixed_float16') the loss is scaled before the gradients and they are unscaled after; a step whose
  gradients are not finite is skipped by the optimizer (its scale halves) and reports
  gradient_norm 0; the dict then also holds `loss_scale` (the scale the step used).
  """
  num_replicas = strategy.num_replicas_in_sync
  loss_scaling = isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer)

  def _gradients(features, labels):
    with tf.GradientTape() as tape:
      losses = compute_losses(detection_model, features, labels, add_regularization_loss,
                              unpad_groundtruth_tensors)
      scaled = losses['Loss/total_loss'] / tf.constant(num_replicas, tf.float32)
      if loss_scaling:
        scaled = optimizer.get_scaled_loss(scaled)
    gradients = tape.gradient(scaled, trainable_variables)
    gradients = [g if g is not None else tf.zeros_like(v)
                 for g, v in zip(gradients, trainable_variables)]
    if loss_scaling:
      gradients = optimizer.get_unscaled_gradients(gradients)
    gradient_norm = tf.linalg.global_norm(gradients)
    if clip_gradients_value:
      gradients, _ = tf.clip_by_global_norm(gradients, clip_gradients_value,
                                            use_norm=gradient_norm)
    if loss_scaling:
      # An overflow of the scaled float16 gradients is expected now and then: the optimizer skips
      # that update, and the loop must not stop on it as on a non-finite loss.
      gradient_norm = tf.where(tf.math.is_finite(gradient_norm), gradient_norm, 0.0)
      losses['loss_scale'] = tf.identity(optimizer.loss_scale)  # read before the update
    losses['gradient_norm'] = gradient_norm
    return losses, gradients

  if jit_compile:
    _gradients = tf.function(_gradients, jit_compile=True)

  def _replica(features, labels):
    losses, gradients = _gradients(features, labels)
    optimizer.apply_gradients(zip(gradients, trainable_variables))
    global_step.assign_add(1)
    return losses

  @tf.function
  def step(features, labels):
    per_replica = strategy.run(_replica, args=(features, labels))
    return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
            for k, v in per_replica.items()}

  return step
