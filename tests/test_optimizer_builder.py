"""Optimizer builder and learning-rate schedules (TF OD API formulas)."""
import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from google.protobuf import text_format

from object_detection.builders import optimizer_builder
from object_detection.training import learning_schedules

STEPS = [0, 1, 5, 9, 10, 11, 50, 99, 100, 101, 150, 199, 200, 250]


def _values(fn_factory):
  step = tf.Variable(0, dtype=tf.int64)
  fn = fn_factory(step)
  out = []
  for s in STEPS:
    step.assign(s)
    out.append(float(fn()))
  return np.array(out)


def test_exponential_decay_with_burnin_formula():
  base, decay_steps, factor, burn_lr, burn_steps, min_lr = 0.1, 30, 0.5, 0.01, 10, 0.004
  for staircase in (True, False):
    got = _values(lambda st: learning_schedules.exponential_decay_with_burnin(
        st, base, decay_steps, factor, burn_lr, burn_steps, min_lr, staircase))
    want = []
    for s in STEPS:
      e = (s - burn_steps) / decay_steps
      e = math.floor(e) if staircase else e
      lr = burn_lr if s < burn_steps else base * factor ** e
      want.append(max(lr, min_lr))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_exponential_decay_zero_burnin_lr_means_base():
  got = _values(lambda st: learning_schedules.exponential_decay_with_burnin(
      st, 0.1, 1000, 0.5, burnin_learning_rate=0.0, burnin_steps=10))
  assert got[STEPS.index(5)] == pytest.approx(0.1)


def test_cosine_decay_with_warmup_formula():
  base, total, warm_lr, warm_steps, hold = 0.2, 200, 0.02, 10, 40
  got = _values(lambda st: learning_schedules.cosine_decay_with_warmup(
      st, base, total, warm_lr, warm_steps, hold))
  want = []
  for s in STEPS:
    lr = 0.5 * base * (1 + math.cos(math.pi * (s - warm_steps - hold) /
                                    (total - warm_steps - hold)))
    if s <= warm_steps + hold:
      lr = base
    if s < warm_steps:
      lr = (base - warm_lr) / warm_steps * s + warm_lr
    if s > total:
      lr = 0.0
    want.append(lr)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_cosine_decay_rejects_bad_config():
  with pytest.raises(ValueError, match='total_steps'):
    learning_schedules.cosine_decay_with_warmup(tf.constant(0), 0.1, 5, 0.0, 10)
  with pytest.raises(ValueError, match='warmup_learning_rate'):
    learning_schedules.cosine_decay_with_warmup(tf.constant(0), 0.1, 50, 0.5, 10)


def test_manual_stepping_formula_and_warmup():
  got = _values(lambda st: learning_schedules.manual_stepping(st, [10, 100], [0.1, 0.01, 0.001]))
  want = [0.1 if s < 10 else 0.01 if s < 100 else 0.001 for s in STEPS]
  np.testing.assert_allclose(got, want, rtol=1e-6)
  got = _values(lambda st: learning_schedules.manual_stepping(
      st, [10, 100], [0.0, 0.1, 0.001], warmup=True))
  want = [0.1 * s / 10 if s < 10 else 0.1 if s < 100 else 0.001 for s in STEPS]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
  with pytest.raises(ValueError, match='strictly increasing'):
    learning_schedules.manual_stepping(tf.constant(0), [10, 5], [0.1, 0.2, 0.3])
  with pytest.raises(ValueError, match='exactly 1'):
    learning_schedules.manual_stepping(tf.constant(0), [10], [0.1])


def test_plateau_warmup_then_variable():
  lr_var = tf.Variable(0.1)
  got = _values(lambda st: learning_schedules.linear_warmup_then_variable(st, 10, 0.0, lr_var))
  want = [0.1 * s / 10 if s < 10 else 0.1 for s in STEPS]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)


def _optimizer_config(text):
  from object_detection.protos import optimizer_pb2  # pylint: disable=g-import-not-at-top
  return text_format.Parse(text, optimizer_pb2.Optimizer())


def test_builds_tf_od_api_optimizers_from_proto():
  step = tf.Variable(0, dtype=tf.int64)
  built = optimizer_builder.build_with_schedule(_optimizer_config("""
      momentum_optimizer { learning_rate { manual_step_learning_rate {
        initial_learning_rate: 0.01 schedule { step: 5 learning_rate: 0.001 } } }
        momentum_optimizer_value: 0.8 }
      use_moving_average: false"""), step)
  assert isinstance(built.optimizer, tf_keras.optimizers.legacy.SGD)
  assert float(built.optimizer._get_hyper('momentum')) == pytest.approx(0.8)
  assert float(built.learning_rate_fn()) == pytest.approx(0.01)
  step.assign(5)
  assert float(built.optimizer._decayed_lr(tf.float32)) == pytest.approx(0.001)

  built = optimizer_builder.build_with_schedule(_optimizer_config("""
      rms_prop_optimizer { learning_rate { exponential_decay_learning_rate {
        initial_learning_rate: 0.004 decay_steps: 800720 decay_factor: 0.95 } }
        momentum_optimizer_value: 0.9 decay: 0.8 epsilon: 1.0 }
      use_moving_average: false"""), step)
  assert isinstance(built.optimizer, tf_keras.optimizers.legacy.RMSprop)
  assert float(built.optimizer._get_hyper('rho')) == pytest.approx(0.8)

  built = optimizer_builder.build_with_schedule(_optimizer_config("""
      adam_optimizer { learning_rate { cosine_decay_learning_rate {
        learning_rate_base: 0.1 total_steps: 100 warmup_learning_rate: 0.0 warmup_steps: 10 } }
        epsilon: 1e-7 }
      use_moving_average: true moving_average_decay: 0.99"""), step)
  from official.modeling.optimization import ema_optimizer  # pylint: disable=g-import-not-at-top
  assert isinstance(built.optimizer, ema_optimizer.ExponentialMovingAverage)
  assert built.optimizer._average_decay == pytest.approx(0.99)
  assert built.use_moving_average


def test_reduce_lr_on_plateau_config_gives_variable():
  step = tf.Variable(0, dtype=tf.int64)
  built = optimizer_builder.build_with_schedule(_optimizer_config("""
      momentum_optimizer { learning_rate { reduce_lr_on_plateau_learning_rate {
        initial_learning_rate: 0.02 warmup_steps: 4 warmup_learning_rate: 0.002 } } }
      use_moving_average: false"""), step)
  assert built.plateau_variable is not None
  assert float(built.learning_rate_fn()) == pytest.approx(0.002)
  step.assign(10)
  built.plateau_variable.assign(0.005)
  assert float(built.learning_rate_fn()) == pytest.approx(0.005)


def test_missing_optimizer_is_a_clear_error():
  with pytest.raises(ValueError, match='optimizer'):
    optimizer_builder.build_with_schedule(_optimizer_config(''), tf.Variable(0, dtype=tf.int64))
