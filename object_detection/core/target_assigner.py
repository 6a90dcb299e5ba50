"""Anchor target assignment (TF OD API `core/target_assigner.py`), the Faster R-CNN part.

For one image, `TargetAssigner.assign`:
  1. computes the [num_gt, num_anchors] similarity of groundtruth boxes and anchors;
  2. matches anchors (columns) to groundtruth (rows), rows with weight 0 being invalid for forced
     matches;
  3. encodes each matched anchor's groundtruth box with the box coder (zeros elsewhere);
  4. gives each anchor the class target of its groundtruth (unmatched_class_label elsewhere) and
     weights: regression weight = groundtruth weight if matched else 0; classification weight =
     groundtruth weight if matched, negative_class_weight if unmatched, 0 if ignored.
`batch_assign_targets` runs it per image and stacks. Anchors and groundtruth boxes must be in the
same coordinates (Faster R-CNN uses absolute pixels).

The TF OD API's CenterNet / DETR / keypoint assigners and `batch_assign_confidences` are not
implemented (Faster R-CNN / Mask R-CNN do not use them).
"""

import tensorflow as tf

from object_detection.box_coders import faster_rcnn_box_coder
from object_detection.core import box_coder
from object_detection.core import box_list
from object_detection.core import matcher as mat
from object_detection.core import region_similarity_calculator as sim_calc
from object_detection.core import standard_fields as fields
from object_detection.matchers import argmax_matcher
from object_detection.utils import shape_utils


def _control_inputs(*ops_or_none):
  # Eager-mode assertions return None (they have already run); graph-mode ones return ops.
  return [op for op in ops_or_none if op is not None]


class TargetAssigner(object):
  """Computes classification and regression targets for the anchors of one image."""

  def __init__(self, similarity_calc, matcher, box_coder_instance, negative_class_weight=1.0):
    """Args:
      similarity_calc: a RegionSimilarityCalculator.
      matcher: a core.matcher.Matcher.
      box_coder_instance: a core.box_coder.BoxCoder.
      negative_class_weight: classification weight of unmatched anchors, in [0, 1].

    Raises:
      ValueError: if an argument is not of the expected type.
    """
    if not isinstance(similarity_calc, sim_calc.RegionSimilarityCalculator):
      raise ValueError('similarity_calc must be a RegionSimilarityCalculator')
    if not isinstance(matcher, mat.Matcher):
      raise ValueError('matcher must be a Matcher')
    if not isinstance(box_coder_instance, box_coder.BoxCoder):
      raise ValueError('box_coder must be a BoxCoder')
    self._similarity_calc = similarity_calc
    self._matcher = matcher
    self._box_coder = box_coder_instance
    self._negative_class_weight = negative_class_weight

  @property
  def box_coder(self):
    return self._box_coder

  def get_box_coder(self):
    return self._box_coder

  def assign(self, anchors, groundtruth_boxes, groundtruth_labels=None,
             unmatched_class_label=None, groundtruth_weights=None):
    """Assigns targets to N anchors from M groundtruth boxes.

    As in the TF OD API, this adds a 'scores' field (1 - groundtruth_labels[:, 0]) to
    `groundtruth_boxes`.

    Args:
      anchors: BoxList of N anchors.
      groundtruth_boxes: BoxList of M groundtruth boxes.
      groundtruth_labels: float32 [M, d_1, ..., d_k] class targets (e.g. one-hot classes with
        background [M, num_classes + 1], or instance masks [M, height, width]); None means
        [M, 1] ones.
      unmatched_class_label: float32 [d_1, ..., d_k] target of unmatched / ignored anchors;
        None means [0].
      groundtruth_weights: float32 [M] per-box weights; None means ones.

    Returns:
      cls_targets: float32 [N, d_1, ..., d_k].
      cls_weights: float32 [N, d_1, ..., d_k] (the per-anchor weight tiled over d_1..d_k).
      reg_targets: float32 [N, code_size].
      reg_weights: float32 [N].
      match_results: int32 [N], >= 0 matched groundtruth index, -1 unmatched, -2 ignored.

    Raises:
      ValueError: if anchors / groundtruth_boxes are not BoxLists, or static label shapes do not
        agree with unmatched_class_label / the number of boxes.
    """
    if not isinstance(anchors, box_list.BoxList):
      raise ValueError('anchors must be an BoxList')
    if not isinstance(groundtruth_boxes, box_list.BoxList):
      raise ValueError('groundtruth_boxes must be an BoxList')

    if unmatched_class_label is None:
      unmatched_class_label = tf.constant([0], tf.float32)
    if groundtruth_labels is None:
      groundtruth_labels = tf.expand_dims(
          tf.ones(tf.expand_dims(groundtruth_boxes.num_boxes(), 0)), -1)

    label_shape = shape_utils.combined_static_and_dynamic_shape(groundtruth_labels)
    unmatched_shape_check = shape_utils.assert_shape_equal(
        label_shape[1:], shape_utils.combined_static_and_dynamic_shape(unmatched_class_label))
    count_check = shape_utils.assert_shape_equal(
        label_shape[:1],
        shape_utils.combined_static_and_dynamic_shape(groundtruth_boxes.get())[:1])

    if groundtruth_weights is None:
      num_gt = groundtruth_boxes.num_boxes_static()
      if not num_gt:
        num_gt = groundtruth_boxes.num_boxes()
      groundtruth_weights = tf.ones([num_gt], dtype=tf.float32)

    groundtruth_boxes.add_field(fields.BoxListFields.scores, 1 - groundtruth_labels[:, 0])

    with tf.control_dependencies(_control_inputs(unmatched_shape_check, count_check)):
      similarity = self._similarity_calc.compare(groundtruth_boxes, anchors)
      match = self._matcher.match(similarity, valid_rows=tf.greater(groundtruth_weights, 0))
      reg_targets = self._create_regression_targets(anchors, groundtruth_boxes, match)
      cls_targets = self._create_classification_targets(groundtruth_labels,
                                                        unmatched_class_label, match)
      reg_weights = self._create_regression_weights(match, groundtruth_weights)
      cls_weights = self._create_classification_weights(match, groundtruth_weights)
      # Per-anchor weights -> one weight per class-target element.
      multiples = tf.concat([tf.ones_like(tf.shape(cls_weights)), tf.shape(cls_targets)[1:]],
                            axis=0)
      for _ in range(len(cls_targets.get_shape()[1:])):
        cls_weights = tf.expand_dims(cls_weights, -1)
      cls_weights = tf.tile(cls_weights, multiples)

    num_anchors = anchors.num_boxes_static()
    if num_anchors is not None:
      reg_targets = self._reset_target_shape(reg_targets, num_anchors)
      cls_targets = self._reset_target_shape(cls_targets, num_anchors)
      reg_weights = self._reset_target_shape(reg_weights, num_anchors)
      cls_weights = self._reset_target_shape(cls_weights, num_anchors)
    return cls_targets, cls_weights, reg_targets, reg_weights, match.match_results

  def _reset_target_shape(self, target, num_anchors):
    static = target.get_shape().as_list()
    static[0] = num_anchors
    target.set_shape(static)
    return target

  def _create_regression_targets(self, anchors, groundtruth_boxes, match):
    """float32 [N, code_size]: encoded matched groundtruth, zeros for other anchors."""
    matched_boxes = match.gather_based_on_match(
        groundtruth_boxes.get(), unmatched_value=tf.zeros(4), ignored_value=tf.zeros(4))
    matched_reg_targets = self._box_coder.encode(box_list.BoxList(matched_boxes), anchors)
    num_anchors = shape_utils.combined_static_and_dynamic_shape(match.match_results)[0]
    zeros = tf.tile(self._default_regression_target(), [num_anchors, 1])
    # Row selection (TF1 `tf.where` semantics): the [N] condition picks whole [code_size] rows.
    return tf.where(tf.expand_dims(match.matched_column_indicator(), -1), matched_reg_targets,
                    zeros)

  def _default_regression_target(self):
    return tf.constant([self._box_coder.code_size * [0]], tf.float32)

  def _create_classification_targets(self, groundtruth_labels, unmatched_class_label, match):
    return match.gather_based_on_match(groundtruth_labels, unmatched_value=unmatched_class_label,
                                       ignored_value=unmatched_class_label)

  def _create_regression_weights(self, match, groundtruth_weights):
    return match.gather_based_on_match(groundtruth_weights, ignored_value=0.,
                                       unmatched_value=0.)

  def _create_classification_weights(self, match, groundtruth_weights):
    return match.gather_based_on_match(groundtruth_weights, ignored_value=0.,
                                       unmatched_value=self._negative_class_weight)


def create_target_assigner(reference, stage=None, negative_class_weight=1.0,
                           use_matmul_gather=False):
  """Builds the standard target assigners (TF OD API thresholds).

  'FasterRCNN', 'proposal': IoU, ArgMaxMatcher(0.7, 0.3, force_match_for_each_row=True),
    FasterRcnnBoxCoder([10, 10, 5, 5]).
  'FasterRCNN', 'detection': IoU, ArgMaxMatcher(0.5) (IoU < 0.5 -> negative),
    FasterRcnnBoxCoder([10, 10, 5, 5]).
  'FastRCNN' (any stage): IoU, ArgMaxMatcher(0.5, 0.1, negatives_lower_than_unmatched=False),
    FasterRcnnBoxCoder() without scaling.

  Args:
    reference: 'FasterRCNN' or 'FastRCNN'.
    stage: 'proposal' or 'detection' (FasterRCNN).
    negative_class_weight: classification weight of unmatched anchors.
    use_matmul_gather: one-hot matmul gathers (TPU-friendly).

  Returns:
    a TargetAssigner.

  Raises:
    ValueError: for any other reference / stage (the TF OD API's 'Multibox' is TF1-only).
  """
  if reference == 'FasterRCNN' and stage == 'proposal':
    matcher = argmax_matcher.ArgMaxMatcher(matched_threshold=0.7, unmatched_threshold=0.3,
                                           force_match_for_each_row=True,
                                           use_matmul_gather=use_matmul_gather)
    coder = faster_rcnn_box_coder.FasterRcnnBoxCoder(scale_factors=[10.0, 10.0, 5.0, 5.0])
  elif reference == 'FasterRCNN' and stage == 'detection':
    matcher = argmax_matcher.ArgMaxMatcher(matched_threshold=0.5,
                                           negatives_lower_than_unmatched=True,
                                           use_matmul_gather=use_matmul_gather)
    coder = faster_rcnn_box_coder.FasterRcnnBoxCoder(scale_factors=[10.0, 10.0, 5.0, 5.0])
  elif reference == 'FastRCNN':
    matcher = argmax_matcher.ArgMaxMatcher(matched_threshold=0.5, unmatched_threshold=0.1,
                                           force_match_for_each_row=False,
                                           negatives_lower_than_unmatched=False,
                                           use_matmul_gather=use_matmul_gather)
    coder = faster_rcnn_box_coder.FasterRcnnBoxCoder()
  else:
    raise ValueError('No valid combination of reference and stage: reference=%r, stage=%r '
                     '(use FasterRCNN with proposal or detection, or FastRCNN).'
                     % (reference, stage))
  return TargetAssigner(sim_calc.IouSimilarity(), matcher, coder,
                        negative_class_weight=negative_class_weight)


def batch_assign(target_assigner, anchors_batch, gt_box_batch, gt_class_targets_batch,
                 unmatched_class_label=None, gt_weights_batch=None):
  """Runs `target_assigner.assign` for each image and stacks the results.

  Args:
    target_assigner: a TargetAssigner.
    anchors_batch: a BoxList shared by all images, or a list of batch_size BoxLists.
    gt_box_batch: list of batch_size groundtruth BoxLists.
    gt_class_targets_batch: list of batch_size class-target tensors [num_gt_i, d_1, ..., d_k]
      (entries may be None: binary targets).
    unmatched_class_label: float32 [d_1, ..., d_k] or None (see `TargetAssigner.assign`).
    gt_weights_batch: list of batch_size float32 [num_gt_i] weights, or None.

  Returns:
    batch_cls_targets: float32 [batch, num_anchors, d_1, ..., d_k].
    batch_cls_weights: float32 [batch, num_anchors, d_1, ..., d_k].
    batch_reg_targets: float32 [batch, num_anchors, code_size].
    batch_reg_weights: float32 [batch, num_anchors].
    batch_match: int32 [batch, num_anchors] match results.

  Raises:
    ValueError: if the anchors are not BoxLists or the list lengths differ.
  """
  if not isinstance(anchors_batch, list):
    anchors_batch = len(gt_box_batch) * [anchors_batch]
  if not all(isinstance(anchors, box_list.BoxList) for anchors in anchors_batch):
    raise ValueError('anchors_batch must be a BoxList or list of BoxLists.')
  if not len(anchors_batch) == len(gt_box_batch) == len(gt_class_targets_batch):
    raise ValueError('batch size incompatible with lengths of anchors_batch, gt_box_batch and '
                     'gt_class_targets_batch.')
  if gt_weights_batch is None:
    gt_weights_batch = [None] * len(gt_class_targets_batch)
  results = [[], [], [], [], []]
  for anchors, gt_boxes, gt_class_targets, gt_weights in zip(
      anchors_batch, gt_box_batch, gt_class_targets_batch, gt_weights_batch):
    outputs = target_assigner.assign(anchors, gt_boxes, gt_class_targets,
                                     unmatched_class_label, gt_weights)
    for collected, output in zip(results, outputs):
      collected.append(output)
  return tuple(tf.stack(collected) for collected in results)


# The TF OD API's alias, which faster_rcnn_meta_arch.py calls.
batch_assign_targets = batch_assign


def batch_get_targets(batch_match, groundtruth_tensor_list, groundtruth_weights_list,
                      unmatched_value, unmatched_weight):
  """Gathers per-anchor targets and weights from batched match results.

  Args:
    batch_match: int32 [batch, num_anchors] match results.
    groundtruth_tensor_list: list of batch tensors [num_gt_i, d_1, ..., d_k].
    groundtruth_weights_list: list of batch float32 [num_gt_i] weights.
    unmatched_value: tensor [d_1, ..., d_k] for unmatched and ignored anchors.
    unmatched_weight: scalar weight of unmatched anchors (ignored anchors get 0).

  Returns:
    targets [batch, num_anchors, d_1, ..., d_k] and weights float32 [batch, num_anchors].
  """
  targets_list = []
  weights_list = []
  for match_results, gt_tensor, gt_weights in zip(
      tf.unstack(batch_match), groundtruth_tensor_list, groundtruth_weights_list):
    match = mat.Match(match_results)
    targets_list.append(match.gather_based_on_match(
        gt_tensor, unmatched_value=unmatched_value, ignored_value=unmatched_value))
    weights_list.append(match.gather_based_on_match(
        gt_weights, unmatched_value=unmatched_weight,
        ignored_value=tf.zeros_like(unmatched_weight)))
  return tf.stack(targets_list), tf.stack(weights_list)
