"""Learning-rate schedules with the TF OD API's exact formulas.

Source: tensorflow/models research/object_detection/utils/learning_schedules.py (TF2 branch).
Every function takes `global_step` (int scalar tensor or tf.Variable) and returns a CALLABLE with no
arguments that yields the float32 scalar learning rate for the current value of `global_step`
(the TF OD API's eager convention, which lets a Keras optimizer re-read it every step).
"""
import numpy as np
import tensorflow as tf


def exponential_decay_with_burnin(global_step, learning_rate_base, learning_rate_decay_steps,
                                  learning_rate_decay_factor, burnin_learning_rate=0.0,
                                  burnin_steps=0, min_learning_rate=0.0, staircase=True):
  """lr = max(min_lr, burnin_lr if step < burnin_steps else
  base * factor ** ((step - burnin_steps) / decay_steps)), the exponent floored when `staircase`.

  A `burnin_learning_rate` of 0 means "use learning_rate_base during burn-in" (TF OD API).
  """
  if burnin_learning_rate == 0:
    burnin_learning_rate = learning_rate_base

  def eager_decay_rate():
    step = tf.cast(global_step, tf.float32)
    exponent = (step - burnin_steps) / float(learning_rate_decay_steps)
    if staircase:
      exponent = tf.floor(exponent)
    post_burnin = learning_rate_base * tf.pow(float(learning_rate_decay_factor), exponent)
    lr = tf.where(tf.less(tf.cast(global_step, tf.int32), burnin_steps),
                  tf.constant(burnin_learning_rate, tf.float32), post_burnin)
    return tf.maximum(lr, min_learning_rate, name='learning_rate')

  return eager_decay_rate


def cosine_decay_with_warmup(global_step, learning_rate_base, total_steps,
                             warmup_learning_rate=0.0, warmup_steps=0, hold_base_rate_steps=0):
  """Cosine decay with linear warmup (Loshchilov & Hutter, SGDR, 2016).

  lr = 0.5 * base * (1 + cos(pi * (step - warmup - hold) / (total - warmup - hold))); `base` during
  the hold phase; warmup_lr + (base - warmup_lr) * step / warmup_steps during warmup; 0 after
  `total_steps`.

  Raises:
    ValueError: total_steps < warmup_steps, or learning_rate_base < warmup_learning_rate.
  """
  if total_steps < warmup_steps:
    raise ValueError('total_steps must be larger or equal to warmup_steps.')
  if warmup_steps > 0 and learning_rate_base < warmup_learning_rate:
    raise ValueError('learning_rate_base must be larger or equal to warmup_learning_rate.')

  def eager_decay_rate():
    step = tf.cast(global_step, tf.float32)
    denom = float(max(total_steps - warmup_steps - hold_base_rate_steps, 1))
    learning_rate = 0.5 * learning_rate_base * (
        1 + tf.cos(np.pi * (step - warmup_steps - hold_base_rate_steps) / denom))
    if hold_base_rate_steps > 0:
      learning_rate = tf.where(step > warmup_steps + hold_base_rate_steps, learning_rate,
                               learning_rate_base)
    if warmup_steps > 0:
      slope = (learning_rate_base - warmup_learning_rate) / warmup_steps
      warmup_rate = slope * step + warmup_learning_rate
      learning_rate = tf.where(step < warmup_steps, warmup_rate, learning_rate)
    return tf.where(step > total_steps, 0.0, learning_rate, name='learning_rate')

  return eager_decay_rate


def manual_stepping(global_step, boundaries, rates, warmup=False):
  """Piecewise-constant rates: rates[i] for boundaries[i-1] <= step < boundaries[i].

  With `warmup`, the rate ramps linearly from rates[0] to rates[1] over the first boundaries[0]
  steps (one boundary per step, as the TF OD API does).

  Raises:
    ValueError: boundaries not positive increasing ints, rates not floats, or
      len(rates) != len(boundaries) + 1, or boundaries[0] == 0.
  """
  if any(b < 0 for b in boundaries) or any(not isinstance(b, int) for b in boundaries):
    raise ValueError('boundaries must be a list of positive integers')
  if any(bnext <= b for bnext, b in zip(boundaries[1:], boundaries[:-1])):
    raise ValueError('Entries in boundaries must be strictly increasing.')
  if any(not isinstance(r, float) for r in rates):
    raise ValueError('Learning rates must be floats')
  if len(rates) != len(boundaries) + 1:
    raise ValueError('Number of provided learning rates must exceed number of boundary points '
                     'by exactly 1.')
  if boundaries and boundaries[0] == 0:
    raise ValueError('First step cannot be zero.')
  if warmup and boundaries:
    slope = (rates[1] - rates[0]) * 1.0 / boundaries[0]
    warmup_steps = list(range(boundaries[0]))
    warmup_rates = [rates[0] + slope * step for step in warmup_steps]
    boundaries = warmup_steps + boundaries
    rates = warmup_rates + rates[1:]
  else:
    boundaries = [0] + boundaries
  num_boundaries = len(boundaries)
  rates_t = tf.constant(rates, tf.float32)
  boundaries_t = tf.constant(boundaries, tf.int64)

  def eager_decay_rate():
    step = tf.cast(global_step, tf.int64)
    rate_index = tf.reduce_max(tf.where(tf.greater_equal(step, boundaries_t),
                                        tf.range(num_boundaries),
                                        tf.zeros([num_boundaries], tf.int32)))
    return tf.gather(rates_t, rate_index, name='learning_rate')

  return eager_decay_rate


def linear_warmup_then_variable(global_step, warmup_steps, warmup_learning_rate, lr_variable):
  """Warmup for ReduceLROnPlateau: linear from warmup_lr to the plateau lr, then `lr_variable`.

  lr = warmup_lr + (lr_variable - warmup_lr) * step / warmup_steps for step < warmup_steps, else
  the current value of `lr_variable` (a float32 tf.Variable the plateau scheduler lowers).
  """

  def eager_rate():
    step = tf.cast(global_step, tf.float32)
    target = tf.cast(lr_variable, tf.float32)
    if warmup_steps > 0:
      warm = warmup_learning_rate + (target - warmup_learning_rate) * step / float(warmup_steps)
      return tf.where(step < warmup_steps, warm, target, name='learning_rate')
    return tf.identity(target, name='learning_rate')

  return eager_rate
