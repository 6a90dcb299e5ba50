"""Checkpoint manager (contract E layout) and the recipe state file that survives a resume."""
import json
import os

import tensorflow as tf

MAX_TO_KEEP = 7
STATE_FILE = 'training_state.json'


def make_manager(model_dir, detection_model, optimizer, global_step):
  """Returns (tf.train.Checkpoint(model, optimizer, step), CheckpointManager(max_to_keep=7))."""
  ckpt = tf.train.Checkpoint(model=detection_model, optimizer=optimizer, step=global_step)
  manager = tf.train.CheckpointManager(ckpt, model_dir, max_to_keep=MAX_TO_KEEP,
                                       checkpoint_name='ckpt')
  return ckpt, manager


def restore_for_resume(ckpt, checkpoint_path, detection_model):
  """Restores a training checkpoint to resume from it, and says what it did not restore.

  Works for this project's model_dir and the TF OD API's (`model_main_tf2.py` writes the same
  `model`, `optimizer` and `step` objects). Every model variable must be in the checkpoint; optimizer
  slots that do not fit (the TF OD API on TF >= 2.11 saves the new Keras optimizer's, this project the
  legacy optimizer's) are reported and start fresh.

  Raises:
    ValueError: model variables missing from the checkpoint (names them): the config does not match
      the checkpoint.
  """
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  status = ckpt.restore(checkpoint_path)
  status.expect_partial()
  report = checkpoint_utils.restore_by_keys({'model': detection_model}, checkpoint_path)
  problems = ['%s (not in checkpoint)' % k for k in report.missing]
  problems += ['%s (checkpoint shape %s, model shape %s)' % m for m in report.shape_mismatch]
  if problems:
    raise ValueError('Cannot resume from %s: %d model variables do not fit: %s. Is the pipeline config '
                     'the one this model_dir was trained with?' % (
                         checkpoint_path, len(problems), '; '.join(problems[:10])))
  reader = tf.train.load_checkpoint(checkpoint_path)
  names = reader.get_variable_to_shape_map()
  has_slots = any('.OPTIMIZER_SLOT' in k for k in names)
  optimizer_vars = [k for k in names if k.startswith('optimizer/')]
  if not has_slots and optimizer_vars:
    print('Note: %s holds optimizer state this optimizer does not use (%d variables, e.g. %s); the '
          'optimizer slots (e.g. momentum) start fresh.' % (checkpoint_path, len(optimizer_vars),
                                                             optimizer_vars[0]))


def save(manager, global_step):
  """Saves ckpt-<step> unless it already exists; returns its path."""
  step = int(global_step.numpy())
  path = os.path.join(manager.directory, 'ckpt-%d' % step)
  if manager.latest_checkpoint == path:
    return path
  return manager.save(checkpoint_number=step)


def load_state(model_dir):
  path = os.path.join(model_dir, STATE_FILE)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def save_state(model_dir, state):
  """Atomically writes `model_dir/training_state.json` (plateau / early stopping / best)."""
  path = os.path.join(model_dir, STATE_FILE)
  tmp = path + '.tmp'
  with tf.io.gfile.GFile(tmp, 'w') as f:
    json.dump(state, f, indent=2, sort_keys=True)
  tf.io.gfile.rename(tmp, path, overwrite=True)
