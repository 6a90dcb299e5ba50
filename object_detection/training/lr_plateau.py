"""ReduceLROnPlateau for the seed training recipe (optimizer.proto extension, see
docs/config_extensions.md).

Keras' ReduceLROnPlateau semantics without cooldown: after each evaluation, if `metric` did not
improve by more than `min_delta` for `patience` consecutive evaluations, the learning rate becomes
max(lr * factor, min_learning_rate) and the counter restarts.
The learning rate lives in a float32 tf.Variable read by the optimizer every step
(`learning_schedules.linear_warmup_then_variable`); the scheduler's state is a small dict saved
by model_lib_v2 in `model_dir/training_state.json` so it survives a resumed run.
"""
from object_detection.training import metric_monitor


class ReduceLROnPlateau(object):
  """Host-side plateau scheduler driving `lr_variable`."""

  def __init__(self, config, lr_variable):
    """Args: config: ReduceLROnPlateauLearningRate proto; lr_variable: float32 tf.Variable."""
    self.metric = config.metric
    self.patience = int(config.patience)
    self.factor = float(config.factor)
    self.min_learning_rate = float(config.min_learning_rate)
    self.lr_variable = lr_variable
    self.learning_rate = float(config.initial_learning_rate)
    self.monitor = metric_monitor.MetricMonitor(config.metric_higher_is_better, config.min_delta)
    self.num_reductions = 0

  def update(self, metrics, step=None):
    """Consumes one evaluation's metrics dict; returns the (possibly lowered) learning rate.

    Raises:
      KeyError: the configured metric is not in `metrics`.
    """
    value = metric_monitor.get_metric(metrics, self.metric)
    self.monitor.update(value, step)
    if self.monitor.num_bad_evals >= self.patience:
      new_lr = max(self.learning_rate * self.factor, self.min_learning_rate)
      if new_lr < self.learning_rate:
        print('ReduceLROnPlateau: %s did not improve for %d evaluations (best %.5f at step %s); '
              'learning rate %.6g -> %.6g' % (self.metric, self.patience, self.monitor.best,
                                              self.monitor.best_step, self.learning_rate, new_lr))
        self.num_reductions += 1
      self.learning_rate = new_lr
      self.monitor.num_bad_evals = 0
    self._assign()
    return self.learning_rate

  def _assign(self):
    if self.lr_variable is not None:
      self.lr_variable.assign(self.learning_rate)

  def state_dict(self):
    state = self.monitor.state_dict()
    state.update({'learning_rate': self.learning_rate, 'num_reductions': self.num_reductions})
    return state

  def load_state_dict(self, state):
    self.monitor.load_state_dict(state)
    self.learning_rate = float(state.get('learning_rate', self.learning_rate))
    self.num_reductions = int(state.get('num_reductions', 0))
    self._assign()
