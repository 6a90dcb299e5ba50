"""Early stopping and best-checkpoint keeping (train.proto extensions: docs/config_extensions.md)."""
import json
import os

import tensorflow as tf

from object_detection.training import metric_monitor


class EarlyStopping(object):
  """`update(metrics)` returns True when training should stop.

  Stops after `patience` consecutive evaluations in which `metric` did not improve by more than
  `min_delta` (Keras EarlyStopping semantics).
  """

  def __init__(self, config):
    """Args: config: train_pb2.EarlyStopping."""
    self.metric = config.metric
    self.patience = int(config.patience)
    self.monitor = metric_monitor.MetricMonitor(config.metric_higher_is_better, config.min_delta)

  def update(self, metrics, step=None):
    """Raises KeyError when the metric is missing from `metrics`."""
    self.monitor.update(metric_monitor.get_metric(metrics, self.metric), step)
    return self.monitor.num_bad_evals >= self.patience

  def message(self):
    return ('Early stopping: %s did not improve for %d evaluations (best %.5f at step %s).' % (
        self.metric, self.patience, self.monitor.best, self.monitor.best_step))

  def state_dict(self):
    return self.monitor.state_dict()

  def load_state_dict(self, state):
    self.monitor.load_state_dict(state)


class BestCheckpointKeeper(object):
  """Copies the checkpoint with the best `metric` into `model_dir/best/`.

  `best/` then holds `ckpt-<step>.index`, `ckpt-<step>.data-*`, a `checkpoint` state file (so
  `tf.train.latest_checkpoint(model_dir + '/best')` and `--checkpoint_dir` work) and
  `best_metric.json` ({"metric", "value", "step", "checkpoint"}).
  """

  def __init__(self, model_dir, metric, higher_is_better=True):
    self.best_dir = os.path.join(model_dir, 'best')
    self.metric = metric
    self.monitor = metric_monitor.MetricMonitor(higher_is_better, 0.0)

  def update(self, metrics, checkpoint_path, step):
    """Copies `checkpoint_path` into best/ when `metric` improved; returns True if it did.

    Raises:
      KeyError: the metric is missing from `metrics`.
    """
    value = metric_monitor.get_metric(metrics, self.metric)
    if not self.monitor.update(value, step):
      return False
    tf.io.gfile.makedirs(self.best_dir)
    for old in tf.io.gfile.glob(os.path.join(self.best_dir, 'ckpt-*')):
      tf.io.gfile.remove(old)
    for src in tf.io.gfile.glob(checkpoint_path + '.*'):
      tf.io.gfile.copy(src, os.path.join(self.best_dir, os.path.basename(src)), overwrite=True)
    new_prefix = os.path.join(self.best_dir, os.path.basename(checkpoint_path))
    tf.compat.v1.train.update_checkpoint_state(self.best_dir, new_prefix,
                                               all_model_checkpoint_paths=[new_prefix])
    with tf.io.gfile.GFile(os.path.join(self.best_dir, 'best_metric.json'), 'w') as f:
      json.dump({'metric': self.metric, 'value': value, 'step': int(step),
                 'checkpoint': os.path.basename(checkpoint_path)}, f, indent=2)
    print('Best checkpoint: %s = %.5f at step %d -> %s' % (self.metric, value, step, new_prefix))
    return True

  def state_dict(self):
    return self.monitor.state_dict()

  def load_state_dict(self, state):
    self.monitor.load_state_dict(state)
