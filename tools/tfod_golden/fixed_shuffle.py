"""A fixed, seed-free stand-in for `tf.random_shuffle`, used to make the samplers deterministic.

The TF OD API's minibatch samplers shuffle with `tf.random_shuffle`. To compare the rest of their
algorithm exactly, the golden generator (tools/tfod_golden/targets.py) replaces that shuffle in the
reference process with `fixed_order`, and tests/test_tfod_targets.py replaces this project's
shuffle hooks with the same function. numpy only, so both processes can load it by file path.
"""

import numpy as np


def fixed_order(n):
  """A permutation of range(n) that depends only on n (a scrambled order, not identity)."""
  keys = (np.arange(n, dtype=np.int64) * 7919 + 17) % 10007
  return np.argsort(keys, kind='stable').astype(np.int32)
