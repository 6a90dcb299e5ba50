"""Seeded runs (`model_main.py --seed`; not in the TF OD API, which has no seed).

With a seed, Python, NumPy and TF random generators are seeded (weight initialisation, `shuffle`,
augmentation, RPN / ROI sampling), TF op determinism is enabled
(`tf.config.experimental.enable_op_determinism`; it also makes tf.data keep element order where
the input pipeline asks for `deterministic=False`). Two runs of the same command then start from
the same weights and see the same batches in the same order, and short runs repeat bit for bit
(the tests rely on it). Long CPU runs do not: on this machine two seeded runs of the sample had identical
weights for 94 steps, then differed by ~1e-8, first in the mask head's convolution kernels, and
the difference grows. The source is not found yet (it stays with oneDNN off and with
TF_NUM_INTRAOP_THREADS=1).
Determinism costs a little speed. Results also differ across machines and TF versions.
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
