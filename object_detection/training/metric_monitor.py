"""Tracks the best value of one evaluation metric (shared by plateau, early stopping, best ckpt)."""
import math


def get_metric(metrics, name):
  """Returns float(metrics[name]).

  Raises:
    KeyError: `name` is not among the evaluation metrics (lists the available ones).
  """
  if name not in metrics:
    raise KeyError('Evaluation metric %r (used by the training recipe config) is not among the '
                   'evaluation results; available: %s' % (name, ', '.join(sorted(metrics))))
  return float(metrics[name])


class MetricMonitor(object):
  """`update(value)` returns True when `value` improves on the best by more than `min_delta`.

  Improvement means value > best + min_delta (higher_is_better) or value < best - min_delta.
  NaN never improves. `num_bad_evals` counts consecutive evaluations without improvement.
  """

  def __init__(self, higher_is_better=True, min_delta=0.0):
    self.higher_is_better = higher_is_better
    self.min_delta = abs(min_delta)
    self.best = None
    self.best_step = None
    self.num_bad_evals = 0

  def is_improvement(self, value):
    if value is None or math.isnan(value):
      return False
    if self.best is None:
      return True
    if self.higher_is_better:
      return value > self.best + self.min_delta
    return value < self.best - self.min_delta

  def update(self, value, step=None):
    if self.is_improvement(value):
      self.best, self.best_step, self.num_bad_evals = float(value), step, 0
      return True
    self.num_bad_evals += 1
    return False

  def state_dict(self):
    return {'best': self.best, 'best_step': self.best_step, 'num_bad_evals': self.num_bad_evals}

  def load_state_dict(self, state):
    self.best = state.get('best')
    self.best_step = state.get('best_step')
    self.num_bad_evals = int(state.get('num_bad_evals', 0))
