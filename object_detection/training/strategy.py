"""Chooses the tf.distribute strategy as model_main_tf2.py does (docs/distributed.md).

- `--use_tpu`: TPUStrategy on the TPU named by `--tpu_name` (TPUClusterResolver,
  connect_to_cluster, initialize_tpu_system); a TPU that cannot be reached is a `StrategyError`.
- `--num_workers` > 1: MultiWorkerMirroredStrategy over the cluster of the TF_CONFIG environment
  variable (checked first by `check_cluster`, which needs no TensorFlow).
- otherwise: MirroredStrategy over all local GPUs, or the CPU when there is none.

TensorFlow is imported inside the functions: `check_cluster` runs before it is loaded.
"""
import json
import os

from object_detection.utils import config_validation

# The TF_CONFIG task types that train (TF's `evaluator` task is not run by this project: evaluation
# is a separate `model_main.py --checkpoint_dir` job, as in the TF OD API).
_TRAINING_TASK_TYPES = ('chief', 'worker')
_TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}\'')


class StrategyError(config_validation.ConfigError):
  """The strategy asked for by --use_tpu / --num_workers cannot be built here (names the flag)."""


def check_cluster(num_workers, environ=None):
  """Checks that TF_CONFIG describes the cluster `--num_workers` > 1 asks for (nothing for 1).

  MultiWorkerMirroredStrategy reads the cluster from TF_CONFIG; without it, it would silently train
  on this machine alone.

  Args:
    num_workers: the --num_workers flag.
    environ: the environment (default os.environ).

  Raises:
    config_validation.UsageError: TF_CONFIG missing, not JSON, without this task, with a task type
      that does not train, or with another number of training tasks than num_workers.
  """
  if num_workers is None or num_workers <= 1:
    return
  usage = config_validation.UsageError
  text = (os.environ if environ is None else environ).get('TF_CONFIG', '')
  if not text.strip():
    raise usage('--num_workers=%d needs the TF_CONFIG environment variable describing the cluster '
                'on every worker, e.g. %s (docs/distributed.md).' % (num_workers,
                                                                      _TF_CONFIG_EXAMPLE))
  try:
    tf_config = json.loads(text)
  except ValueError as e:
    raise usage('--num_workers=%d: TF_CONFIG is not valid JSON (%s): %r; e.g. %s.' % (
        num_workers, e, text[:200], _TF_CONFIG_EXAMPLE)) from None
  cluster = tf_config.get('cluster') if isinstance(tf_config, dict) else None
  task = tf_config.get('task') if isinstance(tf_config, dict) else None
  if not isinstance(cluster, dict) or not isinstance(task, dict):
    raise usage('--num_workers=%d: TF_CONFIG needs a "cluster" and a "task" object; e.g. %s.' % (
        num_workers, _TF_CONFIG_EXAMPLE))
  if task.get('type') not in _TRAINING_TASK_TYPES:
    raise usage('--num_workers=%d: TF_CONFIG task type %r does not train; use "chief" or "worker" '
                '(evaluate with a separate model_main.py --checkpoint_dir job, without TF_CONFIG).'
                % (num_workers, task.get('type')))
  found = sum(len(cluster.get(kind) or []) for kind in _TRAINING_TASK_TYPES)
  if found != num_workers:
    raise usage('--num_workers=%d but TF_CONFIG lists %d training tasks (chief + worker: %s); make '
                'them equal.' % (num_workers, found, ', '.join(
                    '%s=%s' % (k, cluster.get(k) or []) for k in _TRAINING_TASK_TYPES)))


def get_strategy(use_tpu=False, tpu_name=None, num_workers=1):
  """TPUStrategy with `use_tpu`, MultiWorkerMirroredStrategy with num_workers > 1 (cluster from
  TF_CONFIG), else MirroredStrategy over all local devices (GPUs, or the CPU(s)).

  Raises:
    StrategyError: use_tpu and no TPU can be reached under `tpu_name`.
    config_validation.UsageError: num_workers > 1 and TF_CONFIG does not describe that cluster.
    RuntimeError: num_workers > 1 but TensorFlow already ran an op in this process.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if use_tpu:
    return _tpu_strategy(tpu_name)
  if num_workers and num_workers > 1:
    check_cluster(num_workers)
    try:
      return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
      if 'program startup' not in str(e):
        raise
      raise RuntimeError(
          'MultiWorkerMirroredStrategy must be created before any other TensorFlow op runs in '
          'this process (%s): call get_strategy first and pass it to train_loop(strategy=...), '
          'as model_main.py does.' % e) from None
  gpus = tf.config.list_logical_devices('GPU')
  devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices('CPU')]
  return tf.distribute.MirroredStrategy(devices=devices)


def _tpu_strategy(tpu_name):
  """TPUStrategy of the TF OD API's model_main_tf2.py: resolve, connect, initialize the TPU system.

  Raises:
    StrategyError: any of the three steps fails (no name outside Cloud TPU, an unknown name, no TPU
      device in the cluster); one line naming --use_tpu / --tpu_name and the reason.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_name)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, OSError, RuntimeError, tf.errors.OpError) as e:
    # The resolver's own errors (ValueError without a name, urllib's URLError for a name the
    # Cloud TPU API does not know, NotFoundError without TPU devices) carry multi-line text.
    reason = ' '.join(str(e).split())
    if len(reason) > 200:
      reason = reason[:200] + '...'
    raise StrategyError(
        '--use_tpu: no TPU reachable with --tpu_name=%s (%s: %s). Pass --tpu_name=<Cloud TPU name, '
        'grpc://<address>, or local on a TPU VM> from a machine that can reach it, or remove '
        '--use_tpu.' % (tpu_name or '(unset)', type(e).__name__, reason)) from None
  return tf.distribute.TPUStrategy(resolver)
