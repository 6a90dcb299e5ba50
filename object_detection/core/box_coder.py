"""Box coder interface (TF OD API `core/box_coder.py`).

A box coder encodes boxes relative to anchors (one box per anchor, already matched) and decodes
such codes back to [ymin, xmin, ymax, xmax] boxes. Subclasses implement `code_size`, `_encode` and
`_decode`.
"""

import abc

import tensorflow as tf

from object_detection.utils import shape_utils

# Box coder type names, as the TF OD API defines them.
FASTER_RCNN = 'faster_rcnn'
KEYPOINT = 'keypoint'
MEAN_STDDEV = 'mean_stddev'
SQUARE = 'square'


class BoxCoder(object, metaclass=abc.ABCMeta):
  """Abstract box coder."""

  @property
  @abc.abstractmethod
  def code_size(self):
    """int, the length of each code (the last dimension of `encode`'s output)."""

  def encode(self, boxes, anchors):
    """Encodes N boxes relative to N anchors.

    Args:
      boxes: BoxList of N boxes.
      anchors: BoxList of N anchors (same coordinates as the boxes).

    Returns:
      float32 [N, code_size] codes.
    """
    with tf.name_scope('Encode'):
      return self._encode(boxes, anchors)

  def decode(self, rel_codes, anchors):
    """Decodes N codes relative to N anchors.

    Args:
      rel_codes: float32 [N, code_size].
      anchors: BoxList of N anchors.

    Returns:
      BoxList of N [ymin, xmin, ymax, xmax] boxes in the anchors' coordinates.
    """
    with tf.name_scope('Decode'):
      return self._decode(rel_codes, anchors)

  @abc.abstractmethod
  def _encode(self, boxes, anchors):
    pass

  @abc.abstractmethod
  def _decode(self, rel_codes, anchors):
    pass


def batch_decode(encoded_boxes, box_coder, anchors):
  """Decodes a batch of codes that share one set of anchors.

  Args:
    encoded_boxes: float32 [batch, num_anchors, code_size].
    box_coder: a BoxCoder.
    anchors: BoxList of num_anchors anchors.

  Returns:
    float32 [batch, num_anchors, 4] ymin, xmin, ymax, xmax boxes.

  Raises:
    ValueError: if `encoded_boxes` is not rank 3 or its static anchor count differs from the
      anchors'.
  """
  encoded_boxes.get_shape().assert_has_rank(3)
  num_codes = shape_utils.get_dim_as_int(encoded_boxes.get_shape()[1])
  if num_codes != anchors.num_boxes_static():
    raise ValueError('The number of anchors inferred from encoded_boxes and anchors are '
                     'inconsistent: shape[1] of encoded_boxes %s should be equal to the number of '
                     'anchors: %s.' % (num_codes, anchors.num_boxes_static()))
  return tf.stack([box_coder.decode(codes, anchors).get() for codes in tf.unstack(encoded_boxes)])
