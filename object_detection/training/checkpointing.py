"""Checkpoint manager (contract E layout) and the recipe state file that survives a resume."""
import json
import os

import tensorflow as tf

MAX_TO_KEEP = 7
STATE_FILE = 'training_state.json'
# Slot of official.modeling.optimization.ema_optimizer.ExponentialMovingAverage.
EMA_SLOT_NAME = 'average'


def make_manager(model_dir, detection_model, optimizer, global_step):
  """Returns (tf.train.Checkpoint(model, optimizer, step), CheckpointManager(max_to_keep=7))."""
  ckpt = tf.train.Checkpoint(model=detection_model, optimizer=optimizer, step=global_step)
  manager = tf.train.CheckpointManager(ckpt, model_dir, max_to_keep=MAX_TO_KEEP,
                                       checkpoint_name='ckpt')
  return ckpt, manager


def _slot_names(checkpoint_keys):
  """Slot names of a legacy Keras optimizer in checkpoint keys (`.OPTIMIZER_SLOT/optimizer/<name>/`)."""
  names = set()
  for key in checkpoint_keys:
    if '.OPTIMIZER_SLOT/optimizer/' in key:
      names.add(key.split('.OPTIMIZER_SLOT/optimizer/', 1)[1].split('/', 1)[0])
  return names


def _expected_slot_names(optimizer):
  """Slot names `optimizer` creates for a variable, or None when they cannot be probed."""
  inner = getattr(optimizer, '_optimizer', None)
  if inner is not None:  # the Model Garden moving-average wrapper adds its `average` slot
    names = _expected_slot_names(inner)
    return None if names is None else names | {EMA_SLOT_NAME}
  try:
    probe = type(optimizer).from_config(optimizer.get_config())
    variable = tf.Variable([0.0])
    probe._create_slots([variable])  # pylint: disable=protected-access
    return set(probe.get_slot_names())
  except Exception:  # pylint: disable=broad-except
    return None


def optimizer_notes(checkpoint_path, optimizer=None):
  """Lines saying which optimizer state of a training checkpoint this optimizer cannot use.

  The checkpoint's object `optimizer` is restored by name: the legacy Keras optimizer this project
  builds (as the TF OD API's builder does with `tf.compat.v1.keras.optimizers`) keeps its
  hyper-parameters and iteration count as `optimizer/<name>` and its slots under each variable as
  `.OPTIMIZER_SLOT/optimizer/<slot>`. State saved by the new Keras optimizer
  (`optimizer/_variables/N`, `optimizer/_iterations`), by another optimizer type (other slot names)
  or no state at all cannot be used: those slots start at zero and the iteration count restarts
  (Adam's bias correction starts over), while the training `step` always continues.

  Returns:
    list of str, empty when the checkpoint's optimizer state fits.
  """
  names = tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map()
  optimizer_keys = sorted(k for k in names if k.startswith('optimizer/'))
  new_style = [k for k in optimizer_keys
               if k.startswith(('optimizer/_variables/', 'optimizer/_iterations/'))]
  saved_slots = _slot_names(names)
  notes = []
  if new_style:
    notes.append(
        'Note: %s holds new Keras optimizer state (%d variables such as %s) that the legacy Keras '
        'optimizer used here cannot read: optimizer slots (e.g. momentum) and its iteration count start '
        'fresh; the model weights and the step are restored.' % (
            checkpoint_path, len(new_style), new_style[0].rsplit('/.ATTRIBUTES', 1)[0]))
  elif not optimizer_keys and not saved_slots:
    notes.append('Note: %s holds no optimizer state: optimizer slots (e.g. momentum) start fresh; the '
                 'model weights and the step are restored.' % checkpoint_path)
  elif optimizer is not None and saved_slots:
    expected = _expected_slot_names(optimizer)
    if expected is not None and not saved_slots & expected:
      notes.append('Note: %s holds optimizer slots %s but this optimizer (%s) uses %s: its slots '
                   'start fresh.' % (checkpoint_path, sorted(saved_slots), type(optimizer).__name__,
                                     sorted(expected) or 'none'))
  return notes


def restore_for_resume(ckpt, checkpoint_path, detection_model):
  """Restores a training checkpoint to resume from it, and says what it did not restore.

  Works for this project's model_dir and the TF OD API's (`model_main_tf2.py` writes the same
  `model`, `optimizer` and `step` objects, with the same keys: both build legacy Keras optimizers).
  Every model variable must be in the checkpoint; optimizer state that does not fit (new Keras
  optimizer variables, another optimizer's slots, none at all) is reported (`optimizer_notes`) and
  starts fresh.

  Returns:
    list of the printed note lines.

  Raises:
    ValueError: model variables missing from the checkpoint or with another shape (names them): the
      config does not match the checkpoint.
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
  notes = optimizer_notes(checkpoint_path, getattr(ckpt, 'optimizer', None))
  for line in notes:
    print(line)
  return notes


def _checkpoint_number(prefix):
  try:
    return int(os.path.basename(prefix).rsplit('-', 1)[-1])
  except ValueError:
    return -1


def save(manager, global_step):
  """Saves the training checkpoint of the current step unless the latest one is of that step.

  The file is `ckpt-<step>`, except in a model_dir the TF OD API started: it numbers its checkpoints
  by save count (`ckpt-4` may hold step 3), so a number that would not come after the latest
  checkpoint's continues from it instead (never overwriting or shadowing a TF OD API checkpoint).

  Returns:
    the checkpoint prefix holding the current step.
  """
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  step = int(global_step.numpy())
  latest = manager.latest_checkpoint
  number = step
  if latest:
    if checkpoint_utils.checkpoint_step(latest) == step:
      return latest
    number = max(step, _checkpoint_number(latest) + 1)
  return manager.save(checkpoint_number=number)


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
