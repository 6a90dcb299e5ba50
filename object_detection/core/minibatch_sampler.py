"""Minibatch sampler interface (TF OD API `core/minibatch_sampler.py`).

`subsample(indicator, batch_size, **params)` takes a bool [N] indicator of the entries that may be
sampled and returns a bool [N] indicator of the sampled ones.
"""

import abc

import tensorflow as tf

from object_detection.utils import ops


def _shuffle(tensor):
  """`tf.random.shuffle` along dimension 0; module-level so tests can make it deterministic."""
  return tf.random.shuffle(tensor)


class MinibatchSampler(object, metaclass=abc.ABCMeta):
  """Abstract minibatch sampler."""

  def __init__(self):
    pass

  @abc.abstractmethod
  def subsample(self, indicator, batch_size, **params):
    """Returns bool [N]: a subset of `indicator` with at most `batch_size` True entries."""

  @staticmethod
  def subsample_indicator(indicator, num_samples):
    """Keeps `num_samples` randomly chosen True entries of `indicator` (all if fewer).

    Args:
      indicator: bool [N].
      num_samples: int or int32 scalar tensor.

    Returns:
      bool [N] with min(num_samples, sum(indicator)) True entries, a subset of `indicator`.
    """
    # int32 positions throughout: tf.where gives int64, and a traced mix of int64 positions with
    # the int32 sizes below failed to trace now and then ("Cannot convert a list containing a
    # tensor of dtype int32 to int64") in tests/test_mask_rcnn_overfit.py.
    candidates = tf.reshape(_shuffle(tf.cast(tf.where(indicator), tf.int32)), [-1])
    num_samples = tf.minimum(tf.size(candidates), num_samples)
    chosen = tf.slice(candidates, [0], tf.reshape(num_samples, [1]))
    dense = ops.indices_to_dense_vector(chosen, tf.shape(indicator)[0])
    return tf.equal(dense, 1)
