"""Argmax matcher (TF OD API `matchers/argmax_matcher.py`), the Faster R-CNN matcher.

Each column (anchor) takes the row (groundtruth) of highest similarity (`tf.argmax`, so the lowest
row index wins a tie), then its best similarity s decides:
  s >= matched_threshold                        -> matched (the argmax row)
  unmatched_threshold <= s < matched_threshold  -> ignored (-2), or unmatched (-1) when
                                                   negatives_lower_than_unmatched is False
  s < unmatched_threshold                       -> unmatched (-1), or ignored (-2) when
                                                   negatives_lower_than_unmatched is False
With force_match_for_each_row, every valid row then claims its best column (`tf.argmax` along the
row: lowest column index on ties), overriding the thresholds; when several rows claim the same
column the lowest row index wins. Invalid rows (valid_rows False) claim nothing, but the argmax
step above still considers them. With no rows, every column is -1.
"""

import tensorflow as tf

from object_detection.core import matcher
from object_detection.utils import shape_utils


class ArgMaxMatcher(matcher.Matcher):
  """Matcher based on the highest similarity per column."""

  def __init__(self, matched_threshold, unmatched_threshold=None,
               negatives_lower_than_unmatched=True, force_match_for_each_row=False,
               use_matmul_gather=False):
    """Args:
      matched_threshold: float, or None for no thresholding (every column takes its argmax row).
      unmatched_threshold: float <= matched_threshold; defaults to matched_threshold.
      negatives_lower_than_unmatched: True: below unmatched -> -1, between -> -2.
        False: below unmatched -> -2, between -> -1.
      force_match_for_each_row: make every valid row match at least its best column.
      use_matmul_gather: Match objects gather with a one-hot matmul.

    Raises:
      ValueError: if unmatched_threshold is set without matched_threshold, is larger than it, or
        equals it while negatives_lower_than_unmatched is False.
    """
    super(ArgMaxMatcher, self).__init__(use_matmul_gather=use_matmul_gather)
    if matched_threshold is None and unmatched_threshold is not None:
      raise ValueError('Need to also define matched_threshold when unmatched_threshold is '
                       'defined')
    self._matched_threshold = matched_threshold
    if unmatched_threshold is None:
      self._unmatched_threshold = matched_threshold
    else:
      if unmatched_threshold > matched_threshold:
        raise ValueError('unmatched_threshold needs to be smaller or equal to matched_threshold')
      self._unmatched_threshold = unmatched_threshold
    if not negatives_lower_than_unmatched and self._unmatched_threshold == self._matched_threshold:
      raise ValueError('When negatives are in between matched and unmatched thresholds, these '
                       'cannot be of equal value. matched: {}, unmatched: {}'.format(
                           self._matched_threshold, self._unmatched_threshold))
    self._force_match_for_each_row = force_match_for_each_row
    self._negatives_lower_than_unmatched = negatives_lower_than_unmatched

  def _match(self, similarity_matrix, valid_rows):
    """float32 [N, M] similarities, bool [N] valid rows -> int32 [M] match results."""

    def no_rows():
      num_columns = shape_utils.combined_static_and_dynamic_shape(similarity_matrix)[1]
      return -1 * tf.ones([num_columns], dtype=tf.int32)

    def with_rows():
      matches = tf.argmax(similarity_matrix, 0, output_type=tf.int32)
      if self._matched_threshold is not None:
        best = tf.reduce_max(similarity_matrix, 0)
        below = tf.greater(self._unmatched_threshold, best)
        between = tf.logical_and(tf.greater_equal(best, self._unmatched_threshold),
                                 tf.greater(self._matched_threshold, best))
        below_value, between_value = (-1, -2) if self._negatives_lower_than_unmatched else (-2, -1)
        matches = self._set_values_using_indicator(matches, below, below_value)
        matches = self._set_values_using_indicator(matches, between, between_value)
      if not self._force_match_for_each_row:
        return matches
      num_columns = shape_utils.combined_static_and_dynamic_shape(similarity_matrix)[1]
      best_column = tf.argmax(similarity_matrix, 1, output_type=tf.int32)
      # [N, M] one-hot of each valid row's best column; argmax over rows picks the lowest row
      # index among rows that claim the same column.
      claims = (tf.one_hot(best_column, depth=num_columns) *
                tf.cast(tf.expand_dims(valid_rows, axis=-1), tf.float32))
      claiming_row = tf.argmax(claims, 0, output_type=tf.int32)
      claimed = tf.cast(tf.reduce_max(claims, 0), tf.bool)
      return tf.where(claimed, claiming_row, matches)

    if similarity_matrix.shape.is_fully_defined():
      if shape_utils.get_dim_as_int(similarity_matrix.shape[0]) == 0:
        return no_rows()
      return with_rows()
    return tf.cond(tf.greater(tf.shape(similarity_matrix)[0], 0), with_rows, no_rows)

  def _set_values_using_indicator(self, x, indicator, val):
    """Returns x with the entries where `indicator` is True replaced by the scalar `val`."""
    indicator = tf.cast(indicator, x.dtype)
    return tf.add(tf.multiply(x, 1 - indicator), val * indicator)
