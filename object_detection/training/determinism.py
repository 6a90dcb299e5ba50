"""Seeded, repeatable runs (`model_main.py --seed`; not in the TF OD API, which has no seed).

With a seed, two runs of the same command on the same machine and TF version give the same
weights, losses and metrics: Python, NumPy and TF random generators are seeded (weight
initialisation, `shuffle`, augmentation, RPN / ROI sampling) and TF op determinism is enabled
(`tf.config.experimental.enable_op_determinism`: tf.data keeps element order, reductions use a
fixed order). Determinism costs a little speed; without a seed a run is not repeatable, as in the
TF OD API. Results may still differ across machines or TF versions (thread counts and kernels
change the floating-point summation order).
"""
import tensorflow as tf
import tf_keras


def make_deterministic(seed):
  """Seeds every random generator with `seed` (int >= 0) and enables TF op determinism.

  Must run before the model and the input pipeline are built.

  Raises:
    ValueError: `seed` is negative.
  """
  if seed < 0:
    raise ValueError('--seed must be >= 0, got %d.' % seed)
  tf_keras.utils.set_random_seed(seed)
  tf.config.experimental.enable_op_determinism()
