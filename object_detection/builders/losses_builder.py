"""Builds Faster R-CNN losses from `losses.proto` messages (matches the TF OD API's
`builders/losses_builder.py` functions that `_build_faster_rcnn_model` calls).

* `build_faster_rcnn_classification_loss(loss_config)`: the box classifier loss of
  `FasterRcnn.second_stage_classification_loss`.
* `build_hard_example_miner(config, classification_weight, localization_weight)`: the miner of
  `FasterRcnn.hard_example_miner`.
"""

from object_detection.core import losses
from object_detection.protos import losses_pb2
from object_detection.utils.config_validation import ConfigError

_FIELD = 'second_stage_classification_loss'


def build_hard_example_miner(config, classification_weight, localization_weight):
  """Builds a `losses.HardExampleMiner` from a `HardExampleMiner` proto.

  Args:
    config: losses_pb2.HardExampleMiner.
    classification_weight: float, the classification loss weight ('both' ranking).
    localization_weight: float, the localization loss weight ('both' ranking).

  Returns:
    losses.HardExampleMiner; num_hard_examples <= 0 means None (keep all after NMS) and
    max_negatives_per_positive <= 0 means None (no ratio cap), as in the TF OD API.
  """
  loss_types = {
      losses_pb2.HardExampleMiner.BOTH: 'both',
      losses_pb2.HardExampleMiner.CLASSIFICATION: 'cls',
      losses_pb2.HardExampleMiner.LOCALIZATION: 'loc',
  }
  max_negatives_per_positive = None
  if config.max_negatives_per_positive > 0:
    max_negatives_per_positive = config.max_negatives_per_positive
  num_hard_examples = None
  if config.num_hard_examples > 0:
    num_hard_examples = config.num_hard_examples
  return losses.HardExampleMiner(
      num_hard_examples=num_hard_examples,
      iou_threshold=config.iou_threshold,
      loss_type=loss_types.get(config.loss_type),
      cls_loss_weight=classification_weight,
      loc_loss_weight=localization_weight,
      max_negatives_per_positive=max_negatives_per_positive,
      min_negatives_per_image=config.min_negatives_per_image)


def build_faster_rcnn_classification_loss(loss_config):
  """Builds the second-stage (box classifier) classification loss.

  Args:
    loss_config: losses_pb2.ClassificationLoss.

  Returns:
    weighted_sigmoid -> WeightedSigmoidClassificationLoss();
    weighted_softmax -> WeightedSoftmaxClassificationLoss(logit_scale);
    weighted_logits_softmax -> WeightedSoftmaxClassificationAgainstLogitsLoss(logit_scale);
    weighted_sigmoid_focal -> SigmoidFocalClassificationLoss(gamma, alpha or None if unset);
    nothing set -> WeightedSoftmaxClassificationLoss(logit_scale=1.0) (the TF OD API default).

  Raises:
    ConfigError: loss_config is not a ClassificationLoss, or names a loss Faster R-CNN does not
      support here (bootstrapped_sigmoid, penalty_reduced_logistic_focal_loss,
      weighted_dice_classification_loss; the TF OD API silently replaces these with softmax).
  """
  if not isinstance(loss_config, losses_pb2.ClassificationLoss):
    raise ValueError('%s must be a losses_pb2.ClassificationLoss (got %s).'
                     % (_FIELD, type(loss_config).__name__))
  loss_type = loss_config.WhichOneof('classification_loss')
  if loss_type == 'weighted_sigmoid':
    return losses.WeightedSigmoidClassificationLoss()
  if loss_type == 'weighted_softmax' or loss_type is None:
    return losses.WeightedSoftmaxClassificationLoss(
        logit_scale=loss_config.weighted_softmax.logit_scale)
  if loss_type == 'weighted_logits_softmax':
    return losses.WeightedSoftmaxClassificationAgainstLogitsLoss(
        logit_scale=loss_config.weighted_logits_softmax.logit_scale)
  if loss_type == 'weighted_sigmoid_focal':
    config = loss_config.weighted_sigmoid_focal
    alpha = config.alpha if config.HasField('alpha') else None
    return losses.SigmoidFocalClassificationLoss(gamma=config.gamma, alpha=alpha)
  raise ConfigError(
      '%s { %s } is not supported for Faster R-CNN; use weighted_softmax, weighted_sigmoid, '
      'weighted_logits_softmax or weighted_sigmoid_focal.' % (_FIELD, loss_type))
