"""Pairwise box similarity (TF OD API `core/region_similarity_calculator.py`).

`compare(boxlist1, boxlist2)` returns a float32 [N, M] matrix; higher means more similar. Target
assigners call it with the groundtruth boxes as boxlist1 (rows) and the anchors as boxlist2.
The TF OD API's DETRSimilarity (GIoU + L1 + class scores, DETR only) is not implemented.
"""

import abc

import tensorflow as tf

from object_detection.core import box_list_ops
from object_detection.core import standard_fields as fields


class RegionSimilarityCalculator(object, metaclass=abc.ABCMeta):
  """Abstract pairwise similarity between two BoxLists."""

  def compare(self, boxlist1, boxlist2, scope=None):
    """Returns float32 [N, M] similarities between N boxes of boxlist1 and M of boxlist2."""
    with tf.name_scope(scope or 'Compare'):
      return self._compare(boxlist1, boxlist2)

  @abc.abstractmethod
  def _compare(self, boxlist1, boxlist2):
    pass


class IouSimilarity(RegionSimilarityCalculator):
  """Intersection over union (`box_list_ops.iou`)."""

  def _compare(self, boxlist1, boxlist2):
    return box_list_ops.iou(boxlist1, boxlist2)


class NegSqDistSimilarity(RegionSimilarityCalculator):
  """Negated squared distance between boxes seen as 4-vectors."""

  def _compare(self, boxlist1, boxlist2):
    return -1 * box_list_ops.sq_dist(boxlist1, boxlist2)


class IoaSimilarity(RegionSimilarityCalculator):
  """Intersection over the area of the boxlist2 box."""

  def _compare(self, boxlist1, boxlist2):
    return box_list_ops.ioa(boxlist1, boxlist2)


class ThresholdedIouSimilarity(RegionSimilarityCalculator):
  """boxlist1's 'scores' field where IoU > iou_threshold, else 0."""

  def __init__(self, iou_threshold=0):
    """Args:
      iou_threshold: float; pairs with IoU above it get the boxlist1 box's score.
    """
    super(ThresholdedIouSimilarity, self).__init__()
    self._iou_threshold = iou_threshold

  def _compare(self, boxlist1, boxlist2):
    ious = box_list_ops.iou(boxlist1, boxlist2)
    scores = tf.expand_dims(boxlist1.get_field(fields.BoxListFields.scores), axis=1)
    row_scores = tf.tile(scores, [1, tf.shape(ious)[-1]])
    return tf.where(ious > self._iou_threshold, row_scores, tf.zeros_like(ious))
