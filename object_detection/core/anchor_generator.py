"""Anchor generator interface (TF OD API `core/anchor_generator.py`).

`generate(feature_map_shape_list)` returns one BoxList of anchors per feature map, for feature maps
given as (height, width) pairs (ints or scalar int tensors). `num_anchors_per_location()` is static:
one int per expected feature map; the RPN box predictor's channel count is built from it.
"""

import abc

import tensorflow as tf


class AnchorGenerator(object, metaclass=abc.ABCMeta):
  """Abstract anchor generator."""

  @abc.abstractmethod
  def name_scope(self):
    """Returns the name scope (str) of the generation ops."""

  @property
  def check_num_anchors(self):
    """Whether `generate` checks the number of feature maps against num_anchors_per_location."""
    return True

  @abc.abstractmethod
  def num_anchors_per_location(self):
    """Returns a list of ints: anchors per spatial location, one per expected feature map."""

  def generate(self, feature_map_shape_list, **params):
    """Generates anchors for each feature map.

    Args:
      feature_map_shape_list: list of (height, width) pairs (tuples of ints or scalar int tensors,
        or int tensors of length 2), one per feature map.
      **params: generator-specific arguments (e.g. im_height / im_width for the multiscale one).

    Returns:
      list of BoxLists, one per feature map.

    Raises:
      ValueError: if the number of feature maps differs from len(num_anchors_per_location()).
    """
    if self.check_num_anchors and (
        len(feature_map_shape_list) != len(self.num_anchors_per_location())):
      raise ValueError('Number of feature maps is expected to equal the length of '
                       '`num_anchors_per_location`.')
    with tf.name_scope(self.name_scope()):
      anchors_list = self._generate(feature_map_shape_list, **params)
      if self.check_num_anchors:
        for anchors in anchors_list:
          anchors.set(tf.identity(anchors.get()))
      return anchors_list

  @abc.abstractmethod
  def _generate(self, feature_map_shape_list, **params):
    """Returns a list of BoxLists, one per feature map."""

  def anchor_index_to_feature_map_index(self, boxlist_list):
    """int32 [num_anchors]: the index of the feature map each anchor of `boxlist_list` came from."""
    return tf.concat([i * tf.ones([boxes.num_boxes()], dtype=tf.int32)
                      for i, boxes in enumerate(boxlist_list)], axis=0)
