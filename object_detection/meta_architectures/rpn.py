"""Region proposal network pieces (Ren et al. 2015): head, anchor targets, proposals.

Why own code rather than `official.vision` RPNHead / MultilevelROIGenerator: the TF OD API RPN uses the
`first_stage_box_predictor_{kernel_size,depth,conv_hyperparams}` fields, the faster_rcnn box coder with
scales (10, 10, 5, 5) for anchors (the Model Garden ROI generator decodes without scales) and ONE NMS over
the anchors of all levels (`first_stage_nms_*`, `first_stage_max_proposals`), not per-level NMS.
Objectness is one sigmoid logit per anchor (equivalent to the TF OD API 2-class softmax).
"""

import tensorflow as tf
import tf_keras

from object_detection.meta_architectures import box_utils

# Cap on anchors entering NMS (by objectness) to bound CPU cost on large images; not a TF OD API field.
PRE_NMS_TOP_K = 6000


class RPNHead(tf_keras.layers.Layer):
  """kxk conv (depth, conv hyperparams) then 1x1 convs to A*4 box encodings and A objectness logits.

  Shared across levels. call(features {level: [B, h, w, C]}) -> (boxes {level: [B, h*w*A, 4]},
  objectness logits {level: [B, h*w*A]}), float32.
  """

  def __init__(self, num_anchors, kernel_size, depth, conv_hyperparams, **kwargs):
    super().__init__(**kwargs)
    self._num_anchors = num_anchors
    norm = conv_hyperparams.build_normalization(name='RPNConv_norm')
    layers = [tf_keras.layers.Conv2D(depth, kernel_size, padding='same', name='RPNConv',
                                     use_bias=norm is None, **conv_hyperparams.params())]
    if norm is not None:
      layers.append(norm)
    layers.append(conv_hyperparams.build_activation_layer(name='RPNConv_act'))
    self.conv = tf_keras.Sequential(layers, name='RPNConvTower')
    self.box_conv = tf_keras.layers.Conv2D(
        num_anchors * 4, 1, kernel_initializer=tf_keras.initializers.RandomNormal(stddev=0.01),
        name='BoxEncoding')
    self.objectness_conv = tf_keras.layers.Conv2D(
        num_anchors, 1, kernel_initializer=tf_keras.initializers.RandomNormal(stddev=0.01),
        name='Objectness')

  def call(self, features, training=None):
    boxes, scores = {}, {}
    for level, f in features.items():
      x = self.conv(f, training=training)
      b = tf.shape(f)[0]
      boxes[level] = tf.reshape(self.box_conv(x), [b, -1, 4])
      scores[level] = tf.reshape(self.objectness_conv(x), [b, -1])
    return boxes, scores


def assign_targets(anchors, gt_boxes, gt_valid, gt_weights, minibatch_size, positive_fraction,
                   matched_threshold=0.7, unmatched_threshold=0.3):
  """RPN targets (TF OD API ArgMaxMatcher 0.7 / 0.3 with force_match_for_each_row, balanced sampler).

  Args:
    anchors: float32 [A, 4] absolute.  gt_boxes: float32 [B, M, 4] absolute.  gt_valid: bool [B, M].
    gt_weights: float32 [B, M].
  Returns:
    dict: box_targets [B, A, 4] (encoded), positive / sampled float32 [B, A] indicators,
    reg_weights [B, A] (gt weight of the matched box, on sampled positives).
  """
  b = tf.shape(gt_boxes)[0]
  anchors_b = tf.tile(anchors[tf.newaxis], [b, 1, 1])
  overlaps = box_utils.iou(anchors_b, gt_boxes)  # [B, A, M]
  overlaps = tf.where(gt_valid[:, tf.newaxis, :], overlaps, -1.0)
  max_iou = tf.reduce_max(overlaps, axis=2)
  matched = tf.argmax(overlaps, axis=2, output_type=tf.int32)
  # Each valid gt box also matches its best anchor(s) (force_match_for_each_row).
  best_per_gt = tf.reduce_max(overlaps, axis=1, keepdims=True)  # [B, 1, M]
  forced = (overlaps >= best_per_gt) & (best_per_gt > 0.0) & gt_valid[:, tf.newaxis, :]
  forced_any = tf.reduce_any(forced, axis=2)
  forced_idx = tf.argmax(tf.cast(forced, tf.int32), axis=2, output_type=tf.int32)
  matched = tf.where(forced_any & (max_iou < matched_threshold), forced_idx, matched)
  positive = (max_iou >= matched_threshold) | forced_any
  negative = (max_iou < unmatched_threshold) & ~positive
  sampled_pos, sampled_neg = box_utils.balanced_sample(positive, negative, minibatch_size, positive_fraction)
  matched_boxes = tf.gather(gt_boxes, matched, batch_dims=1)
  matched_weights = tf.gather(gt_weights, matched, batch_dims=1)
  targets = box_utils.encode(matched_boxes, anchors_b)
  sampled = tf.cast(sampled_pos | sampled_neg, tf.float32)
  return {'box_targets': tf.stop_gradient(targets),
          'positive': tf.cast(sampled_pos, tf.float32),
          'sampled': sampled,
          'reg_weights': tf.cast(sampled_pos, tf.float32) * matched_weights}


def propose(box_encodings, objectness_logits, anchors, image_shapes, max_proposals, iou_threshold,
            score_threshold):
  """Decodes, clips and NMS-es anchors into proposals (TF OD API first stage postprocessing).

  Args:
    box_encodings: float32 [B, A, 4]; objectness_logits: float32 [B, A]; anchors float32 [A, 4] absolute.
    image_shapes: int32 [B, 3] true (unpadded) shapes; boxes are clipped to them.
  Returns:
    proposals float32 [B, max_proposals, 4] absolute (rows past num_proposals are zeros),
    scores float32 [B, max_proposals], num_proposals int32 [B]. Gradients are stopped.
  """
  boxes = box_utils.clip(box_utils.decode(box_encodings, anchors[tf.newaxis]), image_shapes)
  scores = tf.sigmoid(objectness_logits)
  # Boxes that clipping to the true image reduced to nothing (anchors in the padding of a padded
  # batch) are dropped, as the TF OD API's clip_to_window(filter_nonoverlapping=True) does;
  # otherwise, having zero area, they survive NMS and crowd out the real proposals.
  has_area = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
  scores = tf.where(has_area, scores, -1.0)
  k = tf.minimum(tf.shape(scores)[1], PRE_NMS_TOP_K)
  scores, idx = tf.math.top_k(scores, k=k)
  boxes = tf.gather(boxes, idx, batch_dims=1)
  hw = tf.cast(image_shapes[:, :2], tf.float32)
  scale = tf.concat([hw, hw], axis=-1)[:, tf.newaxis, :]
  nmsed, nms_scores, _, valid = tf.image.combined_non_max_suppression(
      (boxes / scale)[:, :, tf.newaxis, :], scores[:, :, tf.newaxis],
      max_output_size_per_class=max_proposals, max_total_size=max_proposals,
      iou_threshold=iou_threshold, score_threshold=score_threshold, pad_per_class=False, clip_boxes=False)
  proposals = nmsed * scale
  return tf.stop_gradient(proposals), tf.stop_gradient(nms_scores), valid
