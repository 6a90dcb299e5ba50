"""Losses used by Faster R-CNN / Mask R-CNN (matches the TF OD API's `core/losses.py`).

Classes (TF OD API names, constructor arguments and call signatures):
* `Loss`: base class; `loss(prediction_tensor, target_tensor, ignore_nan_targets=False,
  losses_mask=None, scope=None, weights=..., ...)`.
* `WeightedSmoothL1LocalizationLoss(delta=1.0)`: RPN and box-classifier localization loss.
* `WeightedSoftmaxClassificationLoss(logit_scale=1.0)`: RPN objectness, default box classifier.
* `WeightedSoftmaxClassificationAgainstLogitsLoss(logit_scale=1.0)`: softmax against target logits.
* `WeightedSigmoidClassificationLoss()`: mask loss, optional box classifier loss.
* `SigmoidFocalClassificationLoss(gamma=2.0, alpha=0.25)`: optional box classifier loss.
* `HardExampleMiner`: OHEM over second-stage proposals.

Losses return per-anchor (or per-entry) values; callers reduce and normalize them.
"""

import abc

import tensorflow as tf


class Loss(abc.ABC):
  """Base class: applies NaN-target and per-image masking, then `_compute_loss`."""

  def __call__(self,
               prediction_tensor,
               target_tensor,
               ignore_nan_targets=False,
               losses_mask=None,
               scope=None,
               **params):
    """Computes the loss.

    Args:
      prediction_tensor: float32 [batch, anchors, ...] predictions.
      target_tensor: float32 [batch, anchors, ...] targets.
      ignore_nan_targets: replace NaN targets by the prediction (zero loss there).
      losses_mask: optional bool [batch]; images where it is False contribute nothing: their
        predictions, targets and `weights` are multiplied by 0.
      scope: name scope (default 'Loss').
      **params: loss-specific keyword arguments, e.g. `weights`, `class_indices`.

    Returns:
      The loss tensor of the subclass (see its `_compute_loss`).
    """
    with tf.name_scope(scope or 'Loss'):
      if ignore_nan_targets:
        target_tensor = tf.where(tf.math.is_nan(target_tensor), prediction_tensor,
                                 target_tensor)
      if losses_mask is not None:
        multiplier = self._get_loss_multiplier_for_tensor(prediction_tensor, losses_mask)
        prediction_tensor *= multiplier
        target_tensor *= multiplier
        if 'weights' in params:
          params['weights'] = tf.convert_to_tensor(params['weights'])
          params['weights'] *= self._get_loss_multiplier_for_tensor(params['weights'],
                                                                    losses_mask)
      return self._compute_loss(prediction_tensor, target_tensor, **params)

  def _get_loss_multiplier_for_tensor(self, tensor, losses_mask):
    """float32 [batch, 1, ..., 1] 0/1 multiplier broadcastable against `tensor`."""
    shape = tf.stack([-1] + [1] * (len(tensor.shape) - 1))
    return tf.cast(tf.reshape(losses_mask, shape), tf.float32)

  @abc.abstractmethod
  def _compute_loss(self, prediction_tensor, target_tensor, **params):
    """Returns the unreduced loss."""


def _class_indices_weights(weights, class_indices, num_classes):
  """weights masked to the classes in `class_indices` (others get weight 0)."""
  selected = tf.scatter_nd(tf.cast(class_indices, tf.int32)[:, tf.newaxis],
                           tf.ones_like(class_indices, dtype=tf.float32),
                           tf.reshape(num_classes, [1]))
  selected = tf.cast(selected > 0, tf.float32)
  return weights * tf.reshape(selected, [1, 1, -1])


class WeightedSmoothL1LocalizationLoss(Loss):
  """Huber loss summed over the code: 0.5 x^2 if |x| <= delta else delta (|x| - 0.5 delta)."""

  def __init__(self, delta=1.0):
    super().__init__()
    self._delta = delta

  def _compute_loss(self, prediction_tensor, target_tensor, weights):
    """Args: prediction / target float32 [batch, anchors, code_size]; weights [batch, anchors].

    Returns:
      float32 [batch, anchors]: sum over the code of weights * huber(prediction - target).
    """
    abs_error = tf.abs(prediction_tensor - target_tensor)
    quadratic = tf.minimum(abs_error, self._delta)
    linear = abs_error - quadratic
    huber = 0.5 * (quadratic * quadratic) + self._delta * linear
    return tf.reduce_sum(huber * weights[:, :, tf.newaxis], axis=2)


class WeightedSigmoidClassificationLoss(Loss):
  """Per-entry sigmoid cross entropy times weights."""

  def _compute_loss(self, prediction_tensor, target_tensor, weights, class_indices=None):
    """Args:
      prediction_tensor: float32 [batch, anchors, num_classes] logits.
      target_tensor: float32 [batch, anchors, num_classes] targets in [0, 1].
      weights: float32 [batch, anchors, num_classes] or [batch, anchors, 1].
      class_indices: optional int 1-D; only these classes get nonzero loss.

    Returns:
      float32 [batch, anchors, num_classes].
    """
    if class_indices is not None:
      weights = _class_indices_weights(weights, class_indices, tf.shape(prediction_tensor)[2])
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=target_tensor,
                                                            logits=prediction_tensor)
    return cross_entropy * weights


class SigmoidFocalClassificationLoss(Loss):
  """Sigmoid focal loss (Lin et al. 2017): (1 - p_t)^gamma * alpha_t * cross entropy."""

  def __init__(self, gamma=2.0, alpha=0.25):
    """gamma: focusing exponent (0 or None: no modulation); alpha: positive-class weight or None."""
    super().__init__()
    self._alpha = alpha
    self._gamma = gamma

  def _compute_loss(self, prediction_tensor, target_tensor, weights, class_indices=None):
    """Same arguments and [batch, anchors, num_classes] output as the sigmoid loss."""
    if class_indices is not None:
      weights = _class_indices_weights(weights, class_indices, tf.shape(prediction_tensor)[2])
    cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(labels=target_tensor,
                                                            logits=prediction_tensor)
    probabilities = tf.sigmoid(prediction_tensor)
    p_t = target_tensor * probabilities + (1 - target_tensor) * (1 - probabilities)
    modulation = tf.pow(1.0 - p_t, self._gamma) if self._gamma else 1.0
    alpha_weight = 1.0
    if self._alpha is not None:
      alpha_weight = target_tensor * self._alpha + (1 - target_tensor) * (1 - self._alpha)
    return modulation * alpha_weight * cross_entropy * weights


class WeightedSoftmaxClassificationLoss(Loss):
  """Softmax cross entropy over classes of logits / logit_scale, times the mean class weight."""

  def __init__(self, logit_scale=1.0):
    super().__init__()
    self._logit_scale = logit_scale

  def _compute_loss(self, prediction_tensor, target_tensor, weights):
    """Args:
      prediction_tensor: float32 [batch, anchors, num_classes] logits (num_classes static).
      target_tensor: float32 [batch, anchors, num_classes] one-hot / distribution targets.
      weights: float32 [batch, anchors, num_classes] or [batch, anchors, 1] (averaged over
        the last axis).

    Returns:
      float32 [batch, anchors].
    """
    weights = tf.reduce_mean(weights, axis=2)
    num_classes = prediction_tensor.shape[-1]
    logits = tf.divide(prediction_tensor, self._logit_scale, name='scale_logit')
    cross_entropy = tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.reshape(target_tensor, [-1, num_classes]),
        logits=tf.reshape(logits, [-1, num_classes]))
    return tf.reshape(cross_entropy, tf.shape(weights)) * weights


class WeightedSoftmaxClassificationAgainstLogitsLoss(Loss):
  """Softmax cross entropy against softmax(target_logits / logit_scale) (distillation)."""

  def __init__(self, logit_scale=1.0):
    super().__init__()
    self._logit_scale = logit_scale

  def _scale_and_softmax_logits(self, logits):
    return tf.nn.softmax(tf.divide(logits, self._logit_scale, name='scale_logits'),
                         name='convert_scores')

  def _compute_loss(self, prediction_tensor, target_tensor, weights):
    """As `WeightedSoftmaxClassificationLoss`, with target_tensor given as logits."""
    weights = tf.reduce_mean(weights, axis=2)
    num_classes = prediction_tensor.shape[-1]
    targets = self._scale_and_softmax_logits(target_tensor)
    logits = tf.divide(prediction_tensor, self._logit_scale, name='scale_logits')
    cross_entropy = tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.reshape(targets, [-1, num_classes]),
        logits=tf.reshape(logits, [-1, num_classes]))
    return tf.reshape(cross_entropy, tf.shape(weights)) * weights


def _boxes_of(boxlist):
  return boxlist if isinstance(boxlist, (tf.Tensor, tf.Variable)) else boxlist.get()


def _num_boxes_of(boxlist):
  if isinstance(boxlist, (tf.Tensor, tf.Variable)):
    return tf.shape(boxlist)[0]
  return boxlist.num_boxes()


class HardExampleMiner(object):
  """Online hard example mining (TF OD API `losses.HardExampleMiner`).

  Per image, ranks examples by loss ('cls', 'loc' or the weighted sum for 'both'), keeps the
  hardest ones with greedy NMS over their decoded boxes (up to `num_hard_examples`, dropping
  boxes with IoU > iou_threshold to an already kept one), optionally caps the negatives at
  max_negatives_per_positive * positives (at least min_negatives_per_image), and sums the
  kept examples' localization and classification losses.
  """

  def __init__(self,
               num_hard_examples=64,
               iou_threshold=0.7,
               loss_type='both',
               cls_loss_weight=0.05,
               loc_loss_weight=0.06,
               max_negatives_per_positive=None,
               min_negatives_per_image=0):
    """Args:
      num_hard_examples: examples kept per image before the ratio cap; None keeps all boxes
        surviving NMS.
      iou_threshold: NMS IoU threshold (1.0 disables suppression).
      loss_type: 'cls', 'loc' or 'both' (cls_loss_weight * cls + loc_loss_weight * loc).
      cls_loss_weight, loc_loss_weight: weights for 'both'.
      max_negatives_per_positive: None (no cap) or the cap ratio (converted to float).
      min_negatives_per_image: lower bound on the negative cap.
    """
    self._num_hard_examples = num_hard_examples
    self._iou_threshold = iou_threshold
    self._loss_type = loss_type
    self._cls_loss_weight = cls_loss_weight
    self._loc_loss_weight = loc_loss_weight
    self._max_negatives_per_positive = (
        None if max_negatives_per_positive is None else float(max_negatives_per_positive))
    self._min_negatives_per_image = min_negatives_per_image
    self._num_positives_list = None
    self._num_negatives_list = None

  def __call__(self, location_losses, cls_losses, decoded_boxlist_list, match_list=None):
    """Mines hard examples.

    Args:
      location_losses: float32 [num_images, num_anchors] per-anchor localization losses.
      cls_losses: float32 [num_images, num_anchors] per-anchor classification losses.
      decoded_boxlist_list: list (one per image) of BoxLists (anything with get() and
        num_boxes()) or float32 [num_anchors, 4] tensors of decoded boxes.
      match_list: optional list of matcher.Match objects (anything with
        matched_column_indicator() / unmatched_column_indicator()), one per image; needed for
        the negative:positive cap.

    Returns:
      (mined_location_loss, mined_cls_loss): float32 scalars, sums over the kept examples.

    Raises:
      ValueError: inputs of different batch lengths, or match_list not a list of that length.
    """
    location_losses = tf.unstack(location_losses)
    cls_losses = tf.unstack(cls_losses)
    num_images = len(decoded_boxlist_list)
    if not match_list:
      match_list = num_images * [None]
    if not len(location_losses) == len(decoded_boxlist_list) == len(cls_losses):
      raise ValueError('location_losses, cls_losses and decoded_boxlist_list must have the same '
                       'number of images (got %d, %d, %d).' % (
                           len(location_losses), len(cls_losses), len(decoded_boxlist_list)))
    if not isinstance(match_list, list):
      raise ValueError('match_list must be a list (one Match per image) or None.')
    if len(match_list) != len(decoded_boxlist_list):
      raise ValueError('match_list must be None or have one entry per image (%d, got %d).'
                       % (len(decoded_boxlist_list), len(match_list)))
    mined_location_losses = []
    mined_cls_losses = []
    num_positives_list = []
    num_negatives_list = []
    match = None
    for ind, boxlist in enumerate(decoded_boxlist_list):
      match = match_list[ind]
      if self._loss_type == 'loc':
        ranking_losses = location_losses[ind]
      elif self._loss_type == 'both':
        ranking_losses = (cls_losses[ind] * self._cls_loss_weight +
                          location_losses[ind] * self._loc_loss_weight)
      else:
        ranking_losses = cls_losses[ind]
      num_hard_examples = self._num_hard_examples
      if num_hard_examples is None:
        num_hard_examples = _num_boxes_of(boxlist)
      selected = tf.image.non_max_suppression(_boxes_of(boxlist), ranking_losses,
                                              num_hard_examples, self._iou_threshold)
      if self._max_negatives_per_positive is not None and match:
        selected, num_positives, num_negatives = (
            self._subsample_selection_to_desired_neg_pos_ratio(
                selected, match, self._max_negatives_per_positive,
                self._min_negatives_per_image))
        num_positives_list.append(num_positives)
        num_negatives_list.append(num_negatives)
      mined_location_losses.append(tf.reduce_sum(tf.gather(location_losses[ind], selected)))
      mined_cls_losses.append(tf.reduce_sum(tf.gather(cls_losses[ind], selected)))
    location_loss = tf.reduce_sum(tf.stack(mined_location_losses))
    cls_loss = tf.reduce_sum(tf.stack(mined_cls_losses))
    # As the TF OD API: the counts are kept when the last image had a Match.
    if match and self._max_negatives_per_positive:
      self._num_positives_list = num_positives_list
      self._num_negatives_list = num_negatives_list
    return location_loss, cls_loss

  def summarize(self):
    """Writes HardExampleMiner/NumPositives and /NumNegatives (batch means) as TF summaries.

    Only after a call with match_list and a negative cap. Uses the default summary writer and
    step (tf.summary.experimental.get_step()); a no-op without a default writer.
    """
    if self._num_positives_list and self._num_negatives_list:
      avg_positives = tf.reduce_mean(tf.cast(self._num_positives_list, tf.float32))
      avg_negatives = tf.reduce_mean(tf.cast(self._num_negatives_list, tf.float32))
      tf.summary.scalar('HardExampleMiner/NumPositives', avg_positives)
      tf.summary.scalar('HardExampleMiner/NumNegatives', avg_negatives)

  def _subsample_selection_to_desired_neg_pos_ratio(self, indices, match,
                                                    max_negatives_per_positive,
                                                    min_negatives_per_image=0):
    """Keeps all positives and the first K negatives of `indices`, in their order.

    K = max(min_negatives_per_image, int(max_negatives_per_positive * num_positives)).

    Args:
      indices: int32 [M] selected anchor indices.
      match: Match object (matched columns are positives, unmatched ones negatives; ignored
        columns are dropped).
      max_negatives_per_positive: float ratio.
      min_negatives_per_image: int lower bound on K.

    Returns:
      (int32 [M'] kept indices, int32 number of positives, int32 number of negatives).
    """
    positives = tf.gather(match.matched_column_indicator(), indices)
    negatives = tf.gather(match.unmatched_column_indicator(), indices)
    num_positives = tf.reduce_sum(tf.cast(positives, tf.int32))
    max_negatives = tf.maximum(
        min_negatives_per_image,
        tf.cast(max_negatives_per_positive * tf.cast(num_positives, tf.float32), tf.int32))
    within_cap = tf.less_equal(tf.cumsum(tf.cast(negatives, tf.int32)), max_negatives)
    keep = tf.where(tf.logical_or(positives, within_cap))
    num_negatives = tf.size(keep) - num_positives
    return tf.reshape(tf.gather(indices, keep), [-1]), num_positives, num_negatives
