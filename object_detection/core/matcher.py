"""Match results and the matcher interface (TF OD API `core/matcher.py`).

A matcher assigns each column (anchor) of an [N rows, M columns] similarity matrix to at most one
row (groundtruth box). `Match.match_results` is int32 [M]:
  >= 0: the column is matched to that row;
  -1:   unmatched (a negative example);
  -2:   ignored (neither positive nor negative).
"""

import abc

import tensorflow as tf

from object_detection.utils import ops


class Match(object):
  """Holds int32 [M] match results and answers queries about them."""

  def __init__(self, match_results, use_matmul_gather=False):
    """Args:
      match_results: int32 [M] tensor (see module docstring).
      use_matmul_gather: gather with `ops.matmul_gather_on_zeroth_axis` (one-hot matmul) instead
        of `tf.gather`.

    Raises:
      ValueError: if match_results is not rank 1 or not int32.
    """
    if match_results.shape.ndims != 1:
      raise ValueError('match_results should have rank 1')
    if match_results.dtype != tf.int32:
      raise ValueError('match_results should be an int32 or int64 scalar tensor')
    self._match_results = match_results
    self._gather_op = ops.matmul_gather_on_zeroth_axis if use_matmul_gather else tf.gather

  @property
  def match_results(self):
    """int32 [M] match results."""
    return self._match_results

  def _reshape_and_cast(self, t):
    return tf.cast(tf.reshape(t, [-1]), tf.int32)

  def matched_column_indices(self):
    """int32 [K] indices (ascending) of the matched columns."""
    return self._reshape_and_cast(tf.where(tf.greater(self._match_results, -1)))

  def matched_column_indicator(self):
    """bool [M], True for matched columns."""
    return tf.greater_equal(self._match_results, 0)

  def num_matched_columns(self):
    """int32 scalar, number of matched columns."""
    return tf.size(self.matched_column_indices())

  def unmatched_column_indices(self):
    """int32 [K] indices (ascending) of the unmatched (-1) columns."""
    return self._reshape_and_cast(tf.where(tf.equal(self._match_results, -1)))

  def unmatched_column_indicator(self):
    """bool [M], True for unmatched (-1) columns."""
    return tf.equal(self._match_results, -1)

  def num_unmatched_columns(self):
    """int32 scalar, number of unmatched columns."""
    return tf.size(self.unmatched_column_indices())

  def ignored_column_indices(self):
    """int32 [K] indices (ascending) of the ignored (-2) columns."""
    return self._reshape_and_cast(tf.where(self.ignored_column_indicator()))

  def ignored_column_indicator(self):
    """bool [M], True for ignored (-2) columns."""
    return tf.equal(self._match_results, -2)

  def num_ignored_columns(self):
    """int32 scalar, number of ignored columns."""
    return tf.size(self.ignored_column_indices())

  def unmatched_or_ignored_column_indices(self):
    """int32 [K] indices (ascending) of the columns with a negative match result."""
    return self._reshape_and_cast(tf.where(tf.greater(0, self._match_results)))

  def matched_row_indices(self):
    """int32 [K] row of each matched column, aligned with `matched_column_indices()`."""
    return self._reshape_and_cast(
        self._gather_op(tf.cast(self._match_results, tf.float32), self.matched_column_indices()))

  def num_matched_rows(self):
    """int32 scalar, number of distinct rows matched to some column."""
    unique_rows, _ = tf.unique(self.matched_row_indices())
    return tf.size(unique_rows)

  def gather_based_on_match(self, input_tensor, unmatched_value, ignored_value):
    """Per column: input_tensor[row] if matched, else unmatched_value / ignored_value.

    Args:
      input_tensor: tensor [N, d_1, ..., d_k] (one entry per row).
      unmatched_value: tensor [d_1, ..., d_k] for -1 columns.
      ignored_value: tensor [d_1, ..., d_k] for -2 columns.

    Returns:
      tensor [M, d_1, ..., d_k].
    """
    # Row 0 holds the ignored value and row 1 the unmatched value, so match result r maps to
    # row r + 2 (and -2 -> 0, -1 -> 1).
    table = tf.concat([tf.stack([ignored_value, unmatched_value]), input_tensor], axis=0)
    return self._gather_op(table, tf.maximum(self._match_results + 2, 0))


class Matcher(object, metaclass=abc.ABCMeta):
  """Abstract matcher: `match(similarity_matrix, valid_rows)` -> Match."""

  def __init__(self, use_matmul_gather=False):
    """Args:
      use_matmul_gather: make the returned Match objects gather with a one-hot matmul.
    """
    self._use_matmul_gather = use_matmul_gather

  def match(self, similarity_matrix, valid_rows=None, scope=None):
    """Matches columns to rows.

    Args:
      similarity_matrix: float32 [N, M], higher = more similar.
      valid_rows: bool [N], rows allowed to take part (default: all).
      scope: name scope (default 'Match').

    Returns:
      a Match with int32 [M] results.
    """
    with tf.name_scope(scope or 'Match'):
      if valid_rows is None:
        valid_rows = tf.ones(tf.shape(similarity_matrix)[0], dtype=tf.bool)
      return Match(self._match(similarity_matrix, valid_rows), self._use_matmul_gather)

  @abc.abstractmethod
  def _match(self, similarity_matrix, valid_rows):
    """Returns int32 [M] match results for a [N, M] similarity matrix."""
