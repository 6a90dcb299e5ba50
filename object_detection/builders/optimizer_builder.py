"""Builds a tf_keras optimizer and learning-rate schedule from `optimizer_pb2.Optimizer`.

Follows the TF OD API's `optimizer_builder.build_optimizers_tf_v2`:
- rms_prop_optimizer -> RMSprop(lr, rho=decay, momentum=momentum_optimizer_value, epsilon)
  (the proto's `decay` is the RMSProp moving-average decay, i.e. Keras' `rho`; the TF OD API passed it
  as Keras' learning-rate `decay` by mistake, which we do not copy);
- momentum_optimizer -> SGD(lr, momentum=momentum_optimizer_value);
- adam_optimizer -> Adam(lr, epsilon);
- `use_moving_average` wraps the optimizer in the Model Garden's
  `official.modeling.optimization.ema_optimizer.ExponentialMovingAverage` with
  `average_decay=moving_average_decay` and dynamic decay min(decay, (1 + n) / (10 + n)) (n = number of
  updates), which is `tf.train.ExponentialMovingAverage(decay, num_updates=n)`. The caller must call
  `optimizer.shadow_copy(model)` once the model's variables exist (model_lib_v2 does).
The optimizers are the `tf_keras.optimizers.legacy` ones (what the TF OD API used in TF2 before
Keras 3, and what the EMA wrapper requires).

Learning rates (`LearningRate` oneof): constant, exponential_decay (burn-in, staircase, min lr),
manual_step (with warmup), cosine_decay (warmup, hold), and the extension
reduce_lr_on_plateau_learning_rate (linear warmup, then a tf.Variable lowered by
`object_detection.training.lr_plateau.ReduceLROnPlateau` after each evaluation).
"""
import collections

import tensorflow as tf
import tf_keras

from object_detection.training import learning_schedules
from object_detection.utils.config_validation import ConfigError

BuiltOptimizer = collections.namedtuple(
    'BuiltOptimizer', ['optimizer', 'learning_rate_fn', 'plateau_variable', 'use_moving_average'])


def _oneof(message, name):
  which = message.WhichOneof(name)
  if which is None:
    raise ConfigError('Optimizer config: `%s` is not set in %s.' % (name, type(message).__name__))
  return which


def create_learning_rate(learning_rate_config, global_step):
  """Returns (callable -> float32 scalar lr, plateau tf.Variable or None).

  Raises:
    ConfigError: unknown or invalid learning-rate config (names the field).
  """
  lr_type = _oneof(learning_rate_config, 'learning_rate')
  if lr_type == 'constant_learning_rate':
    value = learning_rate_config.constant_learning_rate.learning_rate
    return (lambda: tf.constant(value, tf.float32)), None
  if lr_type == 'exponential_decay_learning_rate':
    c = learning_rate_config.exponential_decay_learning_rate
    return learning_schedules.exponential_decay_with_burnin(
        global_step, c.initial_learning_rate, c.decay_steps, c.decay_factor,
        burnin_learning_rate=c.burnin_learning_rate, burnin_steps=c.burnin_steps,
        min_learning_rate=c.min_learning_rate, staircase=c.staircase), None
  if lr_type == 'manual_step_learning_rate':
    c = learning_rate_config.manual_step_learning_rate
    if not c.schedule:
      raise ConfigError('manual_step_learning_rate: empty learning rate schedule.')
    rates = [float(c.initial_learning_rate)] + [float(x.learning_rate) for x in c.schedule]
    boundaries = [int(x.step) for x in c.schedule]
    return learning_schedules.manual_stepping(global_step, boundaries, rates, c.warmup), None
  if lr_type == 'cosine_decay_learning_rate':
    c = learning_rate_config.cosine_decay_learning_rate
    return learning_schedules.cosine_decay_with_warmup(
        global_step, c.learning_rate_base, c.total_steps, c.warmup_learning_rate,
        c.warmup_steps, c.hold_base_rate_steps), None
  if lr_type == 'reduce_lr_on_plateau_learning_rate':
    c = learning_rate_config.reduce_lr_on_plateau_learning_rate
    variable = tf.Variable(c.initial_learning_rate, dtype=tf.float32, trainable=False,
                           name='plateau_learning_rate',
                           aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    return learning_schedules.linear_warmup_then_variable(
        global_step, c.warmup_steps, c.warmup_learning_rate, variable), variable
  raise ConfigError('Learning rate %s not supported.' % lr_type)


def build_with_schedule(optimizer_config, global_step):
  """Builds the optimizer; returns BuiltOptimizer(optimizer, learning_rate_fn, plateau_variable,
  use_moving_average).

  Args:
    optimizer_config: optimizer_pb2.Optimizer.
    global_step: int64 tf.Variable the training loop increments once per step.

  Raises:
    ConfigError: no optimizer type set, or an invalid learning-rate config.
  """
  optimizer_type = _oneof(optimizer_config, 'optimizer')
  config = getattr(optimizer_config, optimizer_type)
  lr_fn, plateau = create_learning_rate(config.learning_rate, global_step)
  if optimizer_type == 'rms_prop_optimizer':
    optimizer = tf_keras.optimizers.legacy.RMSprop(
        lr_fn, rho=config.decay, momentum=config.momentum_optimizer_value, epsilon=config.epsilon)
  elif optimizer_type == 'momentum_optimizer':
    optimizer = tf_keras.optimizers.legacy.SGD(lr_fn, momentum=config.momentum_optimizer_value)
  elif optimizer_type == 'adam_optimizer':
    optimizer = tf_keras.optimizers.legacy.Adam(lr_fn, epsilon=config.epsilon)
  else:
    raise ConfigError('Optimizer %s not supported.' % optimizer_type)
  if optimizer_config.use_moving_average:
    # Imported lazily: official.modeling pulls in a lot.
    from official.modeling.optimization import ema_optimizer  # pylint: disable=g-import-not-at-top
    optimizer = ema_optimizer.ExponentialMovingAverage(
        optimizer, trainable_weights_only=True,
        average_decay=optimizer_config.moving_average_decay, dynamic_decay=True)
  return BuiltOptimizer(optimizer, lr_fn, plateau, bool(optimizer_config.use_moving_average))


def build(optimizer_config, global_step=None):
  """TF OD API signature: returns (optimizer, summary_vars) with summary_vars = [lr callable]."""
  if global_step is None:
    global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
  built = build_with_schedule(optimizer_config, global_step)
  return built.optimizer, [built.learning_rate_fn]
