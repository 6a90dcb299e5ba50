"""The machine's measured dense float32 matmul rate: the floor every timing is compared with."""
import time

import numpy as np
import tensorflow as tf


def matmul_rates(n=2048, repeats=10, warmup=2):
  """GFLOP/s of each of `repeats` [n, n] x [n, n] float32 matmuls in TF (2 n^3 FLOPs each)."""
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
  return rates


def matmul_gflops_per_sec(n=2048, repeats=10, warmup=2):
  """Median GFLOP/s of an [n, n] x [n, n] float32 matmul in TF on this machine (2 n^3 FLOPs each)."""
  return float(np.median(matmul_rates(n, repeats, warmup)))


if __name__ == "__main__":
  import argparse  # pylint: disable=g-import-not-at-top
  import common  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--n", type=int, default=2048)
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--output_json", default="")
  args = parser.parse_args()
  all_rates = matmul_rates(args.n, args.repeats)
  rate, best = float(np.median(all_rates)), float(np.max(all_rates))
  print("dense float32 matmul: %.1f GFLOP/s median, %.1f best of %d" % (rate, best, args.repeats))
  common.write_result(args.output_json, "matmul_floor", result={
      "gflops_per_second": rate, "best_gflops_per_second": best, "rates": all_rates,
      "n": args.n, "repeats": args.repeats})
