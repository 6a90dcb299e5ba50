"""Faster R-CNN / Mask R-CNN proposal sampling and losses (TF OD API `FasterRCNNMetaArch` semantics).

Functions of `meta_architectures/faster_rcnn_meta_arch.py` in the TF OD API (`_sample_box_classifier_batch`,
`_loss_rpn`, `_loss_box_classifier`), taken out of the meta-architecture so each piece has one job. The
math is the TF OD API's, with its normalizations:

  RPN (per image, over the `first_stage_minibatch_size` sampled anchors; anchors with IoU >= 0.7 or the
  best anchor of a box positive, < 0.3 negative, force-matched as the TF OD API's 'proposal' assigner):
    localization: smooth L1 (Huber, delta 1) summed over the 4 codes of positive anchors, objectness:
    softmax cross-entropy on 2 logits; each summed over the image's sampled anchors, divided by their
    number (at least 1), averaged over images, times its config weight.
  Box classifier (per image, over its P sampled proposals; IoU >= 0.5 positive, else negative):
    localization (smooth L1 of the matched class's encoding, positives) and classification (softmax or
    sigmoid cross-entropy over K + 1 classes) each divided by (num proposals of the image * batch size),
    summed over valid proposals, times its weight.
  Mask (positive proposals only): per-pixel sigmoid cross-entropy between the matched class's mask
    logits and the matched ground-truth mask cropped (crop_and_resize, bilinear) to the proposal box at
    the mask resolution, summed, divided by max(sum of positive weights * mask_h * mask_w, 1), times its
    weight. Ground truth masks are whole-image [N, H, W] at the padded image resolution.

Two ways of computing the same numbers faster than the TF OD API (no option; the parity tests hold):
mask targets are cropped from each proposal's matched mask (crop_and_resize with the match as box index)
instead of first gathering a [B, P, H, W] tensor of assigned masks, and in training the mask head may run on
the positive proposals only (see the meta-architecture), whose predictions then come with their rows.
"""

import collections

import tensorflow as tf

from object_detection.core import box_list
from object_detection.core import box_list_ops
from object_detection.core import target_assigner as target_assigner_lib
from object_detection.utils import ops
from object_detection.utils import shape_utils

# Extra prediction-dict keys of this project (absent from the TF OD API's dict; nothing reads them
# outside this module and the meta-architecture).
SAMPLED_PROPOSAL_CLASSES = 'sampled_proposal_classes'  # int32 [B, P]: 1-based class, 0 = negative
MASK_HEAD_INPUT_FEATURES = 'mask_head_input_features'  # ROI crops read by the mask head (extension)
POSITIVE_MASK_PREDICTIONS = 'positive_mask_predictions'  # [R, K or 1, h, w] logits of positive rows
POSITIVE_MASK_ROWS = 'positive_mask_rows'  # int32 [R]: rows (b * P + p) of POSITIVE_MASK_PREDICTIONS
# [B, D, 4] detection boxes normalized to the padded image, where the inference mask pass cropped
# them (extension crop_detections_in_true_image_frame); the evaluation mask loss crops targets there.
DETECTION_MASK_CROP_BOXES = 'detection_mask_crop_boxes'


def _unmatched_class_label(num_classes):
  return tf.constant([1] + num_classes * [0], dtype=tf.float32)


def sample_box_classifier_batch(proposal_boxes, proposal_scores, num_proposals, groundtruth_boxlists,
                                groundtruth_classes_with_background_list, groundtruth_weights_list,
                                target_assigner, sampler, second_stage_batch_size, num_classes,
                                use_static_shapes=False):
  """Samples the box classifier's training proposals (TF OD API `_sample_box_classifier_batch`).

  Args:
    proposal_boxes: float32 [B, N, 4] absolute (padded image) proposals after NMS (B static).
    proposal_scores: float32 [B, N].
    num_proposals: int32 [B], valid proposals per image.
    groundtruth_boxlists: list of B BoxLists, absolute coordinates.
    groundtruth_classes_with_background_list: list of B float32 [M_i, K + 1].
    groundtruth_weights_list: list of B float32 [M_i].
    target_assigner: the second stage ('detection') TargetAssigner.
    sampler: BalancedPositiveNegativeSampler.
    second_stage_batch_size: int, proposals kept per image (padded with zeros).
    num_classes: int K.
    use_static_shapes: bool, the TF OD API's static boolean mask.

  Returns:
    (boxes float32 [B, P, 4], scores float32 [B, P], num_sampled int32 [B],
     sampled_classes int32 [B, P]: 1-based class of each sampled proposal, 0 for negatives / padding).
  """
  boxes_out, scores_out, num_out, classes_out = [], [], [], []
  per_image = zip(tf.unstack(proposal_boxes), tf.unstack(proposal_scores), tf.unstack(num_proposals),
                  groundtruth_boxlists, groundtruth_classes_with_background_list,
                  groundtruth_weights_list)
  for boxes, scores, num_valid, gt_boxlist, gt_classes, gt_weights in per_image:
    boxlist = box_list.BoxList(boxes)
    boxlist.add_field('scores', scores)
    cls_targets, cls_weights, _, _, _ = target_assigner.assign(
        boxlist, gt_boxlist, gt_classes, unmatched_class_label=_unmatched_class_label(num_classes),
        groundtruth_weights=gt_weights)
    cls_weights = tf.reduce_mean(cls_weights, axis=-1)
    classes = tf.argmax(cls_targets, axis=1, output_type=tf.int32)
    # float32: the static path gathers every field with a one-hot matmul (exact for class ids).
    boxlist.add_field('classes', tf.cast(classes, tf.float32))
    valid = tf.logical_and(tf.range(boxlist.num_boxes()) < num_valid, cls_weights > 0)
    selected = sampler.subsample(valid, second_stage_batch_size, classes > 0)
    sampled = box_list_ops.boolean_mask(
        boxlist, selected, use_static_shapes=use_static_shapes,
        indicator_sum=second_stage_batch_size if use_static_shapes else None)
    padded = box_list_ops.pad_or_clip_box_list(sampled, num_boxes=second_stage_batch_size)
    num_out.append(tf.minimum(sampled.num_boxes(), second_stage_batch_size))
    boxes_out.append(padded.get())
    scores_out.append(padded.get_field('scores'))
    # Padding rows are zero, i.e. background: the loss gives them no weight either way.
    classes_out.append(tf.cast(padded.get_field('classes'), tf.int32))
  return tf.stack(boxes_out), tf.stack(scores_out), tf.stack(num_out), tf.stack(classes_out)


def rpn_losses(rpn_box_encodings, rpn_objectness_predictions_with_background, anchors,
               groundtruth_boxlists, groundtruth_weights_list, target_assigner, sampler,
               minibatch_size, localization_loss, objectness_loss, localization_loss_weight,
               objectness_loss_weight, losses_mask=None, parallel_iterations=16):
  """RPN losses (TF OD API `_loss_rpn`).

  Args:
    rpn_box_encodings: float32 [B, A, 4]. rpn_objectness_predictions_with_background: float32 [B, A, 2].
    anchors: float32 [A, 4] absolute. groundtruth_boxlists / groundtruth_weights_list: per image.
    target_assigner: the 'proposal' TargetAssigner. sampler: BalancedPositiveNegativeSampler.
    minibatch_size: first_stage_minibatch_size. localization_loss / objectness_loss: loss objects.
    localization_loss_weight / objectness_loss_weight: floats. losses_mask: bool [B] or None.

  Returns:
    {'Loss/RPNLoss/localization_loss': scalar, 'Loss/RPNLoss/objectness_loss': scalar}.
  """
  cls_targets, cls_weights, reg_targets, reg_weights, _ = target_assigner_lib.batch_assign_targets(
      target_assigner=target_assigner, anchors_batch=box_list.BoxList(anchors),
      gt_box_batch=groundtruth_boxlists, gt_class_targets_batch=len(groundtruth_boxlists) * [None],
      gt_weights_batch=groundtruth_weights_list)
  cls_weights = tf.reduce_mean(cls_weights, axis=2)
  cls_targets = tf.squeeze(cls_targets, axis=2)

  def subsample(inputs):
    targets, weights = inputs
    return sampler.subsample(tf.cast(weights, tf.bool), minibatch_size, tf.cast(targets, tf.bool))

  sampled = tf.cast(shape_utils.static_or_dynamic_map_fn(
      subsample, [cls_targets, cls_weights], dtype=tf.bool, parallel_iterations=parallel_iterations,
      back_prop=True), tf.float32)
  normalizer = tf.maximum(tf.reduce_sum(sampled, axis=1), 1.0)
  one_hot_targets = tf.one_hot(tf.cast(cls_targets, tf.int32), depth=2)
  sampled_reg_indices = sampled * reg_weights
  localization_losses = localization_loss(rpn_box_encodings, reg_targets, weights=sampled_reg_indices,
                                          losses_mask=losses_mask)
  objectness_losses = objectness_loss(rpn_objectness_predictions_with_background, one_hot_targets,
                                      weights=tf.expand_dims(sampled, axis=-1), losses_mask=losses_mask)
  loc = tf.reduce_mean(tf.reduce_sum(localization_losses, axis=1) / normalizer)
  obj = tf.reduce_mean(tf.reduce_sum(objectness_losses, axis=1) / normalizer)
  return {'Loss/RPNLoss/localization_loss': localization_loss_weight * loc,
          'Loss/RPNLoss/objectness_loss': objectness_loss_weight * obj}


BoxClassifierLossConfig = collections.namedtuple('BoxClassifierLossConfig', [
    'is_training', 'num_classes', 'max_num_proposals', 'box_coder', 'target_assigner',
    'localization_loss', 'classification_loss', 'mask_loss', 'localization_loss_weight',
    'classification_loss_weight', 'mask_loss_weight', 'hard_example_miner', 'crop_and_resize_fn',
    'use_static_shapes'])
BoxClassifierLossConfig.__doc__ = """The meta-architecture's second stage loss settings (see
FasterRCNNMetaArch's constructor for each)."""


def _padded_indicator(num_valid, max_num):
  """bool [B, max_num]: index < num_valid[b]."""
  return tf.range(max_num)[tf.newaxis, :] < tf.cast(num_valid, tf.int32)[:, tf.newaxis]


def box_classifier_losses(prediction_dict, groundtruth_boxlists, groundtruth_classes_with_background_list,
                          groundtruth_masks_list, groundtruth_weights_list, groundtruth_labeled_classes,
                          losses_mask, config):
  """Box classifier and mask losses (TF OD API `_loss_box_classifier`).

  Args:
    prediction_dict: the meta-architecture's prediction dict (refined_box_encodings
      [B*P, K or 1, 4], class_predictions_with_background [B*P, K + 1], proposal_boxes [B, P, 4]
      absolute, num_proposals [B], image_shape [4]; optionally mask_predictions [B*P, K or 1, h, w] or
      the positive-only pair, and at inference detection_boxes / num_detections).
    groundtruth_boxlists, groundtruth_classes_with_background_list, groundtruth_masks_list,
      groundtruth_weights_list: per image, from `_format_groundtruth_data`.
    groundtruth_labeled_classes: list of B float32 [K] multi-hot, or None.
    losses_mask: bool [B] or None.
    config: BoxClassifierLossConfig.

  Returns:
    dict with `Loss/BoxClassifierLoss/localization_loss`, `.../classification_loss` and, when mask
    predictions exist, `.../mask_loss` (float32 scalars, weighted).

  Raises:
    ValueError: mask predictions but no ground truth masks.
  """
  refined_box_encodings = prediction_dict['refined_box_encodings']
  proposal_boxes = prediction_dict['proposal_boxes']
  num_proposals = prediction_dict['num_proposals']
  image_shape = prediction_dict['image_shape']
  max_num = config.max_num_proposals
  code_size = config.box_coder.code_size
  num_classes = config.num_classes

  paddings_indicator = _padded_indicator(num_proposals, proposal_boxes.shape[1])
  proposal_boxlists = [box_list.BoxList(boxes) for boxes in tf.unstack(proposal_boxes)]
  batch_size = len(proposal_boxlists)
  num_proposals_or_one = tf.cast(tf.expand_dims(tf.maximum(num_proposals, 1), 1), tf.float32)
  normalizer = tf.tile(num_proposals_or_one, [1, max_num]) * batch_size

  cls_targets, cls_weights, reg_targets, reg_weights, matches = (
      target_assigner_lib.batch_assign_targets(
          target_assigner=config.target_assigner, anchors_batch=proposal_boxlists,
          gt_box_batch=groundtruth_boxlists,
          gt_class_targets_batch=groundtruth_classes_with_background_list,
          unmatched_class_label=_unmatched_class_label(num_classes),
          gt_weights_batch=groundtruth_weights_list))
  if groundtruth_labeled_classes is not None:
    labeled = tf.pad(groundtruth_labeled_classes, [[0, 0], [1, 0]], mode='CONSTANT', constant_values=1)
    cls_weights *= tf.expand_dims(labeled, 1)

  class_predictions = tf.reshape(prediction_dict['class_predictions_with_background'],
                                 [batch_size, max_num, -1])
  flat_class_index = tf.argmax(tf.reshape(cls_targets, [batch_size * max_num, -1]), axis=1,
                               output_type=tf.int32)
  if refined_box_encodings.shape[1] == 1:
    encodings = tf.reshape(refined_box_encodings, [batch_size, max_num, code_size])
  else:
    # The encoding of each proposal's target class; background rows read a zero encoding, as the TF OD
    # API's zero-padded background column gives them (their regression weight is 0).
    with_background = tf.pad(refined_box_encodings, [[0, 0], [1, 0], [0, 0]])
    encodings = tf.reshape(tf.gather(with_background, flat_class_index, batch_dims=1),
                           [batch_size, max_num, code_size])

  loc_losses = config.localization_loss(encodings, reg_targets, weights=reg_weights,
                                        losses_mask=losses_mask) / normalizer
  cls_losses = ops.reduce_sum_trailing_dimensions(
      config.classification_loss(class_predictions, cls_targets, weights=cls_weights,
                                 losses_mask=losses_mask), ndims=2) / normalizer
  valid = tf.cast(paddings_indicator, tf.float32)
  loc_loss = tf.reduce_sum(loc_losses * valid)
  cls_loss = tf.reduce_sum(cls_losses * valid)
  if config.hard_example_miner:
    loc_loss, cls_loss = _hard_mining_first_image(config.hard_example_miner, proposal_boxlists,
                                                  loc_losses, cls_losses, num_proposals)
  loss_dict = {
      'Loss/BoxClassifierLoss/localization_loss': config.localization_loss_weight * loc_loss,
      'Loss/BoxClassifierLoss/classification_loss': config.classification_loss_weight * cls_loss,
  }

  mask_loss = None
  if POSITIVE_MASK_PREDICTIONS in prediction_dict:
    _require_masks(groundtruth_masks_list)
    mask_loss = _positive_rows_mask_loss(
        prediction_dict[POSITIVE_MASK_PREDICTIONS], prediction_dict[POSITIVE_MASK_ROWS],
        proposal_boxes, image_shape, flat_class_index, reg_weights, matches, groundtruth_masks_list,
        losses_mask, config)
  elif prediction_dict.get('mask_predictions') is not None:
    _require_masks(groundtruth_masks_list)
    rows_boxes, rows_valid, rows_class, rows_weights, rows_matches = (
        proposal_boxes, paddings_indicator, flat_class_index, reg_weights, matches)
    if not config.is_training:
      rows_boxes, rows_valid, rows_class, rows_weights, rows_matches = _detections_as_mask_rows(
          prediction_dict, image_shape, groundtruth_boxlists, groundtruth_classes_with_background_list,
          groundtruth_weights_list, config)
    mask_loss = _all_rows_mask_loss(prediction_dict['mask_predictions'], rows_boxes, rows_valid,
                                    rows_class, rows_weights, rows_matches, image_shape,
                                    groundtruth_masks_list, losses_mask, config)
  if mask_loss is not None:
    loss_dict['Loss/BoxClassifierLoss/mask_loss'] = config.mask_loss_weight * mask_loss
  return loss_dict


def _require_masks(groundtruth_masks_list):
  if not groundtruth_masks_list:
    raise ValueError('Groundtruth instance masks not provided: a Mask R-CNN (number_of_stages: 3 with '
                     'predict_instance_masks) needs load_instance_masks: true in the input reader.')


def _hard_mining_first_image(miner, proposal_boxlists, loc_losses, cls_losses, num_proposals):
  # The TF OD API returns from inside its per-image loop: only the first image is mined. Kept as is so a
  # config with hard_example_miner trains as it did there (docs/model.md lists this difference).
  boxlist = proposal_boxlists[0]
  num = num_proposals[0]
  boxlist = box_list.BoxList(tf.slice(boxlist.get(), [0, 0], [num, -1]))
  loc = tf.slice(loc_losses[0], [0], [num])
  cls = tf.slice(cls_losses[0], [0], [num])
  return miner(location_losses=tf.expand_dims(loc, 0), cls_losses=tf.expand_dims(cls, 0),
               decoded_boxlist_list=[boxlist])


def _detections_as_mask_rows(prediction_dict, image_shape, groundtruth_boxlists,
                             groundtruth_classes_with_background_list, groundtruth_weights_list, config):
  """At inference the masks belong to the detections (TF OD API `_get_mask_proposal_boxes_and_classes`)."""
  detection_boxes = prediction_dict.get(DETECTION_MASK_CROP_BOXES, prediction_dict['detection_boxes'])
  num_detections = prediction_dict['num_detections']
  batch, max_detections = detection_boxes.shape.as_list()[:2]
  boxes = tf.reshape(box_list_ops.to_absolute_coordinates(
      box_list.BoxList(tf.reshape(detection_boxes, [-1, 4])), image_shape[1], image_shape[2]).get(),
                     [batch, max_detections, 4])
  boxlists = [box_list.BoxList(b) for b in tf.unstack(boxes)]
  valid = _padded_indicator(tf.cast(num_detections, tf.int32), max_detections)
  cls_targets, _, _, reg_weights, matches = target_assigner_lib.batch_assign_targets(
      target_assigner=config.target_assigner, anchors_batch=boxlists, gt_box_batch=groundtruth_boxlists,
      gt_class_targets_batch=groundtruth_classes_with_background_list,
      unmatched_class_label=_unmatched_class_label(config.num_classes),
      gt_weights_batch=groundtruth_weights_list)
  flat_class_index = tf.argmax(tf.reshape(cls_targets, [-1, config.num_classes + 1]), axis=1,
                               output_type=tf.int32)
  return boxes, valid, flat_class_index, reg_weights, matches


def _matched_mask_crops(boxes_absolute, match_indices, image_index, image_shape, groundtruth_masks_list,
                        mask_size, crop_and_resize_fn=None):
  """Crops of each row's matched ground-truth mask at its box -> float32 [R, mask_h * mask_w].

  Same values as the TF OD API's crop of its assigned-mask tensor (rows without a match read the
  all-zero "unmatched" mask), without building that [B, P, H, W] tensor.

  Args:
    boxes_absolute: float32 [R, 4], boxes in the padded image. match_indices: int32 [R], the matched
      ground truth of each row (< 0: none). image_index: int32 [R], each row's image.
    image_shape: int32 [4]. groundtruth_masks_list: list of float32 [M_i, H, W]. mask_size: (h, w).
    crop_and_resize_fn: None for tf.image.crop_and_resize with the match as box index; else the
      model's multilevel crop function (the static-shape path: the TF OD API crops each row's
      gathered mask with its `_crop_and_resize_fn`, which XLA compiles when it is the matmul one).
  """
  heights = tf.cast(image_shape[1], tf.float32)
  widths = tf.cast(image_shape[2], tf.float32)
  normalized = boxes_absolute / tf.stack([heights, widths, heights, widths])
  # One zero mask in front of all images' masks stands for "unmatched".
  # (From the shape, not a slice: the first image may have no ground truth at all.)
  mask_shape = tf.shape(groundtruth_masks_list[0])[1:]
  offsets = [1]
  stacked = [tf.zeros(tf.concat([[1], mask_shape], axis=0), groundtruth_masks_list[0].dtype)]
  for masks in groundtruth_masks_list:
    stacked.append(masks)
    offsets.append(offsets[-1] + tf.shape(masks)[0])
  all_masks = tf.concat(stacked, axis=0)[..., tf.newaxis]
  first_row = tf.gather(tf.stack(offsets[:-1]), image_index)
  source = tf.where(match_indices >= 0, first_row + match_indices, 0)
  if crop_and_resize_fn is None:
    crops = tf.image.crop_and_resize(all_masks, normalized, source, list(mask_size))
  else:
    crops = crop_and_resize_fn([tf.gather(all_masks, source)], normalized[:, tf.newaxis], None,
                               list(mask_size))
  return tf.stop_gradient(tf.reshape(crops, [-1, mask_size[0] * mask_size[1]]))


def _weighted_mask_loss(logits, targets, weights, mask_size, mask_loss):
  """Sum of weighted per-pixel sigmoid CE over rows / max(sum(weights) * h * w, 1)."""
  losses_per_pixel = mask_loss(logits[tf.newaxis], targets[tf.newaxis],
                               weights=weights[tf.newaxis, :, tf.newaxis])
  normalizer = tf.maximum(tf.reduce_sum(weights) * mask_size[0] * mask_size[1], 1.0)
  return tf.reduce_sum(losses_per_pixel) / normalizer


def _select_class_masks(mask_logits, class_index):
  """[R, K or 1, h, w] logits, 1-based target class [R] -> [R, h * w] logits of that class.

  Background rows (class 0) read zeros, as the TF OD API's zero background channel gives them.
  """
  num_mask_classes, height, width = mask_logits.shape.as_list()[1:]
  if num_mask_classes == 1:
    selected = mask_logits[:, 0]
  else:
    with_background = tf.pad(mask_logits, [[0, 0], [1, 0], [0, 0], [0, 0]])
    selected = tf.gather(with_background, class_index, batch_dims=1)
  return tf.reshape(selected, [-1, height * width])


def _loss_weights(row_weights, row_image, losses_mask):
  if losses_mask is None:
    return row_weights
  return row_weights * tf.cast(tf.gather(losses_mask, row_image), row_weights.dtype)


def _all_rows_mask_loss(mask_predictions, boxes, valid, class_index, weights, matches, image_shape,
                        groundtruth_masks_list, losses_mask, config):
  mask_size = mask_predictions.shape.as_list()[2:4]
  batch, rows_per_image = boxes.shape.as_list()[:2]
  row_image = tf.repeat(tf.range(batch), rows_per_image)
  match_indices = tf.reshape(matches, [-1])
  targets = _matched_mask_crops(tf.reshape(boxes, [-1, 4]), match_indices, row_image, image_shape,
                                groundtruth_masks_list, mask_size,
                                config.crop_and_resize_fn if config.use_static_shapes else None)
  row_weights = tf.reshape(weights * tf.cast(valid, tf.float32), [-1])
  row_weights = _loss_weights(row_weights, row_image, losses_mask)
  logits = _select_class_masks(mask_predictions, class_index)
  return _weighted_mask_loss(logits, targets, row_weights, mask_size, config.mask_loss)


def _positive_rows_mask_loss(positive_mask_logits, rows, proposal_boxes, image_shape, flat_class_index,
                             reg_weights, matches, groundtruth_masks_list, losses_mask, config):
  mask_size = positive_mask_logits.shape.as_list()[2:4]
  rows_per_image = proposal_boxes.shape[1]
  row_image = rows // rows_per_image
  boxes = tf.gather(tf.reshape(proposal_boxes, [-1, 4]), rows)
  match_indices = tf.gather(tf.reshape(matches, [-1]), rows)
  targets = _matched_mask_crops(boxes, match_indices, row_image, image_shape, groundtruth_masks_list,
                                mask_size)
  # Sampled rows are always valid (padding rows are never positive).
  row_weights = _loss_weights(tf.gather(tf.reshape(reg_weights, [-1]), rows), row_image, losses_mask)
  logits = _select_class_masks(positive_mask_logits, tf.gather(flat_class_index, rows))
  return _weighted_mask_loss(logits, targets, row_weights, mask_size, config.mask_loss)
