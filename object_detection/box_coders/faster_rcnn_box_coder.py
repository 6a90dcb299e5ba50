"""Faster R-CNN box coder (TF OD API `box_coders/faster_rcnn_box_coder.py`; Ren et al. 2015, eq. 2).

With anchor center (ya, xa) and size (ha, wa), and box center (y, x) and size (h, w):
  ty = sy * (y - ya) / ha,  tx = sx * (x - xa) / wa,  th = sh * log(h / ha),  tw = sw * log(w / wa)
where (sy, sx, sh, sw) are the optional `scale_factors` (Faster R-CNN configs use 10, 10, 5, 5).
Encoding adds EPSILON to all four sizes first so that degenerate (zero-size) boxes or anchors give
finite codes; decoding does not add it. Codes are ordered [ty, tx, th, tw].
"""

import tensorflow as tf

from object_detection.core import box_coder
from object_detection.core import box_list

EPSILON = 1e-8


class FasterRcnnBoxCoder(box_coder.BoxCoder):
  """Faster R-CNN box coder; code_size 4."""

  def __init__(self, scale_factors=None):
    """Args:
      scale_factors: None (no scaling) or 4 positive floats scaling ty, tx, th, tw.

    Raises:
      AssertionError: if scale_factors does not have 4 entries or one is not positive (as the
        TF OD API checks).
    """
    if scale_factors:
      assert len(scale_factors) == 4, 'scale_factors must have 4 entries, got %r' % (
          scale_factors,)
      for factor in scale_factors:
        assert factor > 0, 'scale_factors must be positive, got %r' % (scale_factors,)
    self._scale_factors = scale_factors

  @property
  def code_size(self):
    return 4

  def _encode(self, boxes, anchors):
    """BoxList boxes, BoxList anchors (N each) -> float32 [N, 4] codes [ty, tx, th, tw]."""
    ycenter_a, xcenter_a, ha, wa = anchors.get_center_coordinates_and_sizes()
    ycenter, xcenter, h, w = boxes.get_center_coordinates_and_sizes()
    ha += EPSILON
    wa += EPSILON
    h += EPSILON
    w += EPSILON
    ty = (ycenter - ycenter_a) / ha
    tx = (xcenter - xcenter_a) / wa
    th = tf.math.log(h / ha)
    tw = tf.math.log(w / wa)
    if self._scale_factors:
      ty *= self._scale_factors[0]
      tx *= self._scale_factors[1]
      th *= self._scale_factors[2]
      tw *= self._scale_factors[3]
    return tf.transpose(tf.stack([ty, tx, th, tw]))

  def _decode(self, rel_codes, anchors):
    """float32 [N, 4] codes, BoxList anchors -> BoxList of N decoded boxes."""
    ycenter_a, xcenter_a, ha, wa = anchors.get_center_coordinates_and_sizes()
    ty, tx, th, tw = tf.unstack(tf.transpose(rel_codes))
    if self._scale_factors:
      ty /= self._scale_factors[0]
      tx /= self._scale_factors[1]
      th /= self._scale_factors[2]
      tw /= self._scale_factors[3]
    w = tf.exp(tw) * wa
    h = tf.exp(th) * ha
    ycenter = ty * ha + ycenter_a
    xcenter = tx * wa + xcenter_a
    return box_list.BoxList(tf.transpose(tf.stack(
        [ycenter - h / 2., xcenter - w / 2., ycenter + h / 2., xcenter + w / 2.])))
