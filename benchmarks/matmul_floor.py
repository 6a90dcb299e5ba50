"""The machine's measured dense float32 matmul rate: the floor every timing is compared with."""
import time

import numpy as np
import tensorflow as tf


def matmul_gflops_per_sec(n=2048, repeats=10, warmup=2):
  """Median GFLOP/s of an [n, n] x [n, n] float32 matmul in TF on this machine (2 n^3 FLOPs each)."""
  a = tf.random.uniform([n, n], dtype=tf.float32)
  b = tf.random.uniform([n, n], dtype=tf.float32)

  @tf.function
  def mm(x, y):
    return tf.reduce_sum(tf.matmul(x, y))

  rates = []
  for i in range(warmup + repeats):
    start = time.perf_counter()
    mm(a, b).numpy()
    elapsed = time.perf_counter() - start
    if i >= warmup:
      rates.append(2.0 * n ** 3 / elapsed / 1e9)
  return float(np.median(rates))


if __name__ == "__main__":
  print("dense float32 matmul: %.1f GFLOP/s" % matmul_gflops_per_sec())
