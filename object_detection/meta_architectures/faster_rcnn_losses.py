"""Faster R-CNN / Mask R-CNN losses with the TF OD API normalizations (unweighted; the meta-architecture
multiplies by the config weights).

- Localization: smooth L1 / Huber with delta 1 summed over the 4 box-coder coordinates (TF OD API
  WeightedSmoothL1LocalizationLoss; Girshick 2015, Fast R-CNN eq. 3), on positives only.
- RPN objectness: sigmoid cross-entropy on sampled anchors (equivalent to the TF OD API 2-class softmax).
- Box classifier: softmax cross-entropy over num_classes + 1 (`weighted_softmax`) or per-class sigmoid
  (`weighted_sigmoid`).
- Normalization: per image by the number of sampled anchors / ROIs (max 1), then mean over the batch.
- Mask: per-pixel sigmoid cross-entropy (He et al. 2017) on positive ROIs only, using only the mask
  channel of the matched ground-truth class (or the single channel when class-agnostic); targets are the
  ground-truth whole-image masks cropped to each ROI with `tf.image.crop_and_resize` (ROI normalized by the
  mask resolution, as the TF OD API does); normalized by mask_h * mask_w * num positives per image.
Why not `official.vision.losses.maskrcnn_losses`: those normalize by the total number of boxes /
pixels over the batch and assume Model-Garden target layouts (class-specific boxes incl. background).
"""

import tensorflow as tf

from object_detection.meta_architectures import box_utils


def _huber(pred, target):
  diff = tf.abs(pred - target)
  return tf.reduce_sum(tf.where(diff < 1.0, 0.5 * tf.square(diff), diff - 0.5), axis=-1)


def _per_image_mean(losses, normalizer):
  return tf.reduce_mean(tf.reduce_sum(losses, axis=1) / tf.maximum(normalizer, 1.0))


def rpn_losses(box_encodings, objectness_logits, targets):
  """box_encodings [B, A, 4], objectness_logits [B, A], targets from rpn.assign_targets -> (loc, obj)."""
  normalizer = tf.reduce_sum(targets['sampled'], axis=1)
  loc = _huber(box_encodings, targets['box_targets']) * targets['reg_weights']
  obj = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets['positive'], logits=objectness_logits)
  obj = obj * targets['sampled']
  return _per_image_mean(loc, normalizer), _per_image_mean(obj, normalizer)


def box_classifier_losses(refined_box_encodings, class_logits, rois, gt_boxes, gt_classes, valid,
                          num_classes, classification_loss_type='weighted_softmax'):
  """Second-stage losses.

  Args:
    refined_box_encodings: float32 [B, N, K or 1, 4]; class_logits: float32 [B, N, K + 1].
    rois, gt_boxes: float32 [B, N, 4] absolute; gt_classes: int32 [B, N] label ids (0 = background);
    valid: bool [B, N] sampled ROI indicator.
  Returns:
    (localization_loss, classification_loss) float32 scalars.
  """
  valid_f = tf.cast(valid, tf.float32)
  normalizer = tf.reduce_sum(valid_f, axis=1)
  positive = tf.cast(gt_classes > 0, tf.float32) * valid_f
  if refined_box_encodings.shape[2] == 1:
    pred = refined_box_encodings[:, :, 0, :]
  else:
    pred = tf.gather(refined_box_encodings, tf.maximum(gt_classes - 1, 0), batch_dims=2)
  targets = tf.stop_gradient(box_utils.encode(gt_boxes, rois))
  targets = tf.where(positive[..., tf.newaxis] > 0, targets, 0.0)
  loc = _huber(pred, targets) * positive
  onehot = tf.one_hot(gt_classes, num_classes + 1)
  if classification_loss_type == 'weighted_sigmoid':
    cls = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=onehot, logits=class_logits), -1)
  else:
    cls = tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=class_logits)
  cls = cls * valid_f
  return _per_image_mean(loc, normalizer), _per_image_mean(cls, normalizer)


def mask_targets(rois, gt_indices, gt_masks, mask_height, mask_width):
  """Crops whole-image masks to ROIs.

  Args:
    rois: float32 [B, N, 4] absolute; gt_indices: int32 [B, N] (-1 = none);
    gt_masks: float32 [B, M, H, W] 0/1 at the preprocessed resolution.
  Returns:
    float32 [B, N, mask_height, mask_width] targets in [0, 1].
  """
  b, n = tf.shape(rois)[0], tf.shape(rois)[1]
  m, h, w = tf.shape(gt_masks)[1], tf.shape(gt_masks)[2], tf.shape(gt_masks)[3]
  hw = tf.cast(tf.stack([h, w]), tf.float32)
  norm = rois / tf.concat([hw, hw], axis=0)
  box_ind = tf.maximum(gt_indices, 0) + tf.range(b)[:, tf.newaxis] * m
  crops = tf.image.crop_and_resize(
      tf.reshape(gt_masks, [-1, h, w, 1]), tf.reshape(norm, [-1, 4]), tf.reshape(box_ind, [-1]),
      [mask_height, mask_width])
  return tf.stop_gradient(tf.reshape(crops, [b, n, mask_height, mask_width]))


def mask_loss(mask_logits, rois, gt_classes, gt_indices, gt_masks):
  """mask_logits float32 [B, N, K or 1, mh, mw]; other args as in mask_targets / box_classifier_losses."""
  mh, mw = mask_logits.shape[3], mask_logits.shape[4]
  if mask_logits.shape[2] == 1:
    selected = mask_logits[:, :, 0]
  else:
    selected = tf.gather(mask_logits, tf.maximum(gt_classes - 1, 0), batch_dims=2)
  targets = mask_targets(rois, gt_indices, gt_masks, mh, mw)
  positive = tf.cast((gt_classes > 0) & (gt_indices >= 0), tf.float32)
  per_roi = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=selected),
                           axis=[2, 3])
  return _per_image_mean(per_roi * positive, tf.reduce_sum(positive, axis=1))
