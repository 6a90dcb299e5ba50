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
