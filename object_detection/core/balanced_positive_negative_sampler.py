"""Balanced positive / negative minibatch sampler (TF OD API
`core/balanced_positive_negative_sampler.py`).

Samples at most int(positive_fraction * batch_size) positives and fills the rest of the batch with
negatives (fewer if there are not enough), choosing uniformly at random within each group.

Two algorithms, as in the TF OD API:
  dynamic (is_static=False): shuffle the positive and negative candidates separately
    (`MinibatchSampler.subsample_indicator`). batch_size=None keeps every positive and draws
    negatives in the ratio (1 - positive_fraction) / positive_fraction.
  static (is_static=True, for TPUs): a single random permutation of all N entries; if fewer than
    batch_size entries are candidates, the first non-candidates (in index order) are added as
    negatives, so exactly batch_size entries are always sampled. Candidates are ranked by their
    permuted position signed by their label; the positives taken are those with the highest
    permuted positions, and the rest of the batch is the tail of the ranking (negatives with the
    highest permuted positions; with too few negatives the tail reaches into non-candidates,
    which map to permuted position 0, or into positives, exactly as in the TF OD API).
"""

import tensorflow as tf

from object_detection.core import minibatch_sampler


def _permutation(length):
  """Random permutation of range(length); module-level so tests can make it deterministic."""
  return tf.random.shuffle(tf.range(length))


class BalancedPositiveNegativeSampler(minibatch_sampler.MinibatchSampler):
  """Subsamples minibatches with a target fraction of positives."""

  def __init__(self, positive_fraction=0.5, is_static=False):
    """Args:
      positive_fraction: float in [0, 1], the largest fraction of positives in a batch.
      is_static: use the static-shape algorithm (see the module docstring).

    Raises:
      ValueError: if positive_fraction is outside [0, 1].
    """
    if positive_fraction < 0 or positive_fraction > 1:
      raise ValueError('positive_fraction should be in range [0,1]. Received: %s.'
                       % positive_fraction)
    self._positive_fraction = positive_fraction
    self._is_static = is_static

  def _get_num_pos_neg_samples(self, sorted_indices_tensor, sample_size):
    """Numbers of positives and negatives to take, from signed sorted indices.

    Args:
      sorted_indices_tensor: int32 [N], +index for positive candidates, -index for negative ones,
        0 for non-candidates, sorted descending.
      sample_size: int batch size.

    Returns:
      (num_positive_samples, num_negative_samples) int32 scalars summing to sample_size.
    """
    num_positives = tf.reduce_sum(tf.cast(tf.greater(sorted_indices_tensor, 0), tf.int32))
    max_positives = tf.constant(int(sample_size * self._positive_fraction), tf.int32)
    num_positive_samples = tf.minimum(max_positives, num_positives)
    return num_positive_samples, tf.constant(sample_size, tf.int32) - num_positive_samples

  def _get_values_from_start_and_end(self, input_tensor, num_start_samples, num_end_samples,
                                     total_num_samples):
    """The first num_start_samples and last num_end_samples entries of int32 [N] input_tensor.

    Computed with a one-hot matmul so the output has the static length total_num_samples
    (= num_start_samples + num_end_samples).
    """
    length = tf.shape(input_tensor)[0]
    positions = tf.range(length)
    selected = tf.logical_or(tf.less(positions, num_start_samples),
                             tf.greater_equal(positions, length - num_end_samples))
    selected = tf.cast(selected, tf.float32)
    rank = tf.multiply(tf.cumsum(selected), selected)
    selector = tf.one_hot(tf.cast(rank, tf.int32) - 1, total_num_samples, dtype=tf.float32)
    return tf.cast(tf.tensordot(tf.cast(input_tensor, tf.float32), selector, axes=[0, 0]),
                   tf.int32)

  def _static_subsample(self, indicator, batch_size, labels):
    """Static-shape sampling: bool [N] with exactly batch_size True entries (if N >= batch_size).

    Raises:
      ValueError: if indicator / labels have no static shape or batch_size is not an int.
    """
    if not indicator.shape.is_fully_defined():
      raise ValueError('indicator must be static in shape when is_static is True')
    if not labels.shape.is_fully_defined():
      raise ValueError('labels must be static in shape when is_static is True')
    if not isinstance(batch_size, int):
      raise ValueError('batch_size has to be an integer when is_static is True.')
    length = tf.shape(indicator)[0]

    # Top the candidates up to batch_size with the first non-candidates.
    num_candidates = tf.reduce_sum(tf.cast(indicator, tf.float32))
    extra = tf.less_equal(tf.cumsum(tf.cast(tf.logical_not(indicator), tf.float32)),
                          batch_size - num_candidates)
    indicator = tf.logical_or(indicator, extra)

    permutation = _permutation(length)
    return self._static_subsample_permuted(indicator, batch_size, labels, permutation)

  def _static_subsample_permuted(self, indicator, batch_size, labels, permutation):
    """The deterministic part of `_static_subsample`, given the int32 [N] permutation."""
    length = tf.shape(indicator)[0]
    indicator = tf.gather(indicator, permutation, axis=0)
    labels = tf.gather(labels, permutation, axis=0)

    # 1-based permuted position of each candidate (0 for others), signed by its label, sorted
    # descending: positives first (highest position first), non-candidates, then negatives
    # (lowest -position first, i.e. the highest positions end the tensor).
    position = tf.where(indicator, tf.range(1, length + 1), tf.zeros(length, tf.int32))
    sign = tf.where(labels, tf.ones(length, tf.int32), -1 * tf.ones(length, tf.int32))
    signed = tf.nn.top_k(position * sign, length, sorted=True).values

    num_pos, num_neg = self._get_num_pos_neg_samples(signed, batch_size)
    sampled = self._get_values_from_start_and_end(signed, num_pos, num_neg, batch_size)
    # Back to 0-based positions; non-candidate slots (value 0 -> -1) are mapped to position 0.
    sampled = tf.abs(sampled) - tf.ones(batch_size, tf.int32)
    sampled = tf.multiply(tf.cast(tf.greater_equal(sampled, tf.constant(0)), tf.int32), sampled)
    sampled_indicator = tf.cast(tf.reduce_sum(tf.one_hot(sampled, depth=length), axis=0), tf.bool)
    # Undo the permutation.
    return tf.scatter_nd(tf.expand_dims(permutation, -1), sampled_indicator, shape=(length,))

  def subsample(self, indicator, batch_size, labels, scope=None):
    """Samples a balanced minibatch.

    Args:
      indicator: bool [N], the entries that may be sampled.
      batch_size: int desired batch size; None (dynamic only) keeps all positives and draws
        negatives in the positive_fraction ratio.
      labels: bool [N], True for positives.
      scope: name scope (default 'BalancedPositiveNegativeSampler').

    Returns:
      bool [N], the sampled entries.

    Raises:
      ValueError: if indicator / labels are not rank-1 bool tensors (or, static, see
        `_static_subsample`).
    """
    if len(indicator.get_shape().as_list()) != 1:
      raise ValueError('indicator must be 1 dimensional, got a tensor of shape %s'
                       % indicator.get_shape())
    if len(labels.get_shape().as_list()) != 1:
      raise ValueError('labels must be 1 dimensional, got a tensor of shape %s'
                       % labels.get_shape())
    if labels.dtype != tf.bool:
      raise ValueError('labels should be of type bool. Received: %s' % labels.dtype)
    if indicator.dtype != tf.bool:
      raise ValueError('indicator should be of type bool. Received: %s' % indicator.dtype)
    with tf.name_scope(scope or 'BalancedPositiveNegativeSampler'):
      if self._is_static:
        return self._static_subsample(indicator, batch_size, labels)

      positive_idx = tf.logical_and(labels, indicator)
      negative_idx = tf.logical_and(tf.logical_not(labels), indicator)
      if batch_size is None:
        max_num_pos = tf.reduce_sum(tf.cast(positive_idx, tf.int32))
      else:
        max_num_pos = int(self._positive_fraction * batch_size)
      sampled_pos = self.subsample_indicator(positive_idx, max_num_pos)
      num_sampled_pos = tf.reduce_sum(tf.cast(sampled_pos, tf.int32))
      if batch_size is None:
        ratio = (1 - self._positive_fraction) / self._positive_fraction
        max_num_neg = tf.cast(ratio * tf.cast(num_sampled_pos, tf.float32), tf.int32)
      else:
        max_num_neg = batch_size - num_sampled_pos
      sampled_neg = self.subsample_indicator(negative_idx, max_num_neg)
      return tf.logical_or(sampled_pos, sampled_neg)
