"""Checkpoint manager (layout: `checkpoint_utils` module docstring), the recipe state file that
survives a resume, and the start-of-run repairs of a model_dir after a kill or a damaged file (`prepare_model_dir`)."""
import json
import os
import re

from absl import logging
from google.protobuf import text_format
import tensorflow as tf

from object_detection.utils import config_validation

MAX_TO_KEEP = 7
STATE_FILE = 'training_state.json'
CHECKPOINT_NAME = 'ckpt'
# Damaged checkpoints are moved here (not deleted: they may still be of use to someone).
DAMAGED_DIR = 'damaged_checkpoints'
# Key of training_state.json holding the step a finished run stopped at (continuous evaluation
# stops there); removed when a run starts, so a resumed run with more steps is not cut short.
FINISHED_STEP_KEY = 'finished_step'
# TF's save writes its shards into `<prefix>_temp/` (older TF: `<prefix>_temp_<uuid>/`) and merges
# them into `<prefix>.index` / `.data-*` at the end.
_TF_TEMP_FOLDER = re.compile(r'.+_temp(_[0-9a-fA-F]+)?$')
# Slot of official.modeling.optimization.ema_optimizer.ExponentialMovingAverage.
EMA_SLOT_NAME = 'average'


class ResumeError(config_validation.ConfigError):
  """The checkpoint of model_dir does not fit the config (names the variables)."""


def make_manager(model_dir, detection_model, optimizer, global_step):
  """Returns (tf.train.Checkpoint(model, optimizer, step), CheckpointManager(max_to_keep=7))."""
  ckpt = tf.train.Checkpoint(model=detection_model, optimizer=optimizer, step=global_step)
  manager = tf.train.CheckpointManager(ckpt, model_dir, max_to_keep=MAX_TO_KEEP,
                                       checkpoint_name=CHECKPOINT_NAME)
  return ckpt, manager


def worker_checkpoint_dir(model_dir, is_chief, task_id=None):
  """Where this worker's CheckpointManager saves: `model_dir` for the chief, else a new temporary
  folder outside it.

  With MultiWorkerMirroredStrategy every worker must take part in each save (reading a SyncOnRead
  variable such as a batch-norm moving mean is a collective over the workers), but only the
  chief's files are kept: the others write to a local temporary folder that
  `remove_worker_checkpoint_dir` deletes at the end (the TF OD API puts it in
  model_dir/temp_worker_NNN; outside, a model_dir never holds another worker's files, even after a
  kill).

  Returns:
    the folder path (the temporary one is created by the first save).
  """
  if is_chief:
    return model_dir
  # pylint: disable=g-import-not-at-top
  import tempfile
  import uuid
  # pylint: enable=g-import-not-at-top
  return os.path.join(tempfile.gettempdir(), 'od_worker%s_checkpoints_%d_%s' % (
      '' if task_id is None else task_id, os.getpid(), uuid.uuid4().hex[:8]))


def remove_worker_checkpoint_dir(directory, model_dir):
  """Deletes a non-chief worker's temporary checkpoint folder (never model_dir itself)."""
  if directory != model_dir and tf.io.gfile.isdir(directory):
    tf.io.gfile.rmtree(directory)


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
    ResumeError: model variables missing from the checkpoint or with another shape (names them): the
      config does not match the checkpoint. Checked before anything else is restored.
  """
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  # Model variables first, by key: a mismatch is then reported by name instead of as the
  # shape error tf.train.Checkpoint.restore would raise for the first one.
  report = checkpoint_utils.restore_by_keys({'model': detection_model}, checkpoint_path)
  problems = ['%s (not in checkpoint)' % k for k in report.missing]
  problems += ['%s (checkpoint shape %s, model shape %s)' % m for m in report.shape_mismatch]
  if problems:
    raise ResumeError(
        'Cannot resume from %s: %d model variables do not fit the config: %s. Use the config this '
        'model_dir was trained with (its pipeline.config, kept unchanged) or a new --model_dir.' % (
            checkpoint_path, len(problems), '; '.join(problems[:10])))
  status = ckpt.restore(checkpoint_path)
  status.expect_partial()
  notes = optimizer_notes(checkpoint_path, getattr(ckpt, 'optimizer', None))
  for line in notes:
    print(line)
  return notes


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
    number = max(step, checkpoint_utils.checkpoint_number(latest) + 1)
  return manager.save(checkpoint_number=number)


def load_state(model_dir):
  """The recipe state of `model_dir/training_state.json` ({} when there is none).

  Raises:
    config_validation.ConfigError: the file is not valid JSON (names the file and what to do).
  """
  path = os.path.join(model_dir, STATE_FILE)
  if not tf.io.gfile.exists(path):
    return {}
  with tf.io.gfile.GFile(path) as f:
    text = f.read()
  try:
    return json.loads(text)
  except ValueError as e:
    raise config_validation.ConfigError('%s is not valid JSON (%s): it holds the ReduceLROnPlateau / early stopping / '
                     'best checkpoint state; delete it to start that state afresh.' % (path, e)) from None


def save_state(model_dir, state):
  """Atomically writes `model_dir/training_state.json` (plateau / early stopping / best)."""
  path = os.path.join(model_dir, STATE_FILE)
  tmp = path + '.tmp'
  with tf.io.gfile.GFile(tmp, 'w') as f:
    json.dump(state, f, indent=2, sort_keys=True)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def set_finished_step(model_dir, step):
  """Records (step) or clears (None) the step a finished run stopped at, keeping the rest."""
  state = load_state(model_dir)
  if step is None:
    if FINISHED_STEP_KEY not in state:
      return
    del state[FINISHED_STEP_KEY]
  else:
    state[FINISHED_STEP_KEY] = int(step)
  save_state(model_dir, state)


def write_pipeline_config(pipeline_config, model_dir):
  """Writes `model_dir/pipeline.config` atomically (a kill leaves the old file or the new one)."""
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  path = os.path.join(model_dir, 'pipeline.config')
  tmp = path + '.tmp'
  with tf.io.gfile.GFile(tmp, 'w') as f:
    f.write(config_util.config_to_text(pipeline_config))
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return path


def _temp_entries(directory):
  """TF's temporary checkpoint folders (`ckpt-7_temp/`, `ckpt-7_temp_<uuid>/`) and our `.tmp`
  files: what a save killed half-way leaves behind."""
  if not tf.io.gfile.isdir(directory):
    return []
  found = []
  for name in tf.io.gfile.listdir(directory):
    name = name.rstrip('/')
    path = os.path.join(directory, name)
    if _TF_TEMP_FOLDER.match(name) and tf.io.gfile.isdir(path):
      found.append(path)
    elif name.endswith('.tmp') and name[:-len('.tmp')] in (STATE_FILE, 'pipeline.config',
                                                           'checkpoint'):
      found.append(path)
  return found


def clean_temp_folders(model_dir):
  """Deletes the leftovers of saves killed half-way in `model_dir` and `model_dir/best`.

  Must run before this run saves anything (a save in progress would lose its folder).

  Returns:
    list of the deleted paths.
  """
  removed = []
  for directory in (model_dir, os.path.join(model_dir, 'best')):
    for path in _temp_entries(directory):
      if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
      else:
        tf.io.gfile.remove(path)
      removed.append(path)
  return removed


def _candidate_checkpoints(model_dir):
  """(checkpoint prefixes newest first, whether the `checkpoint` state file lists them).

  The state file is authoritative when it can be read (TF writes it atomically after each
  complete save); when it is missing or unreadable, the `ckpt-N.index` files on disk are the
  candidates (and the state file has to be rewritten for the CheckpointManager to see them).
  """
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  state_path = os.path.join(model_dir, 'checkpoint')
  state = None
  if tf.io.gfile.exists(state_path):
    try:
      state = tf.train.get_checkpoint_state(model_dir)
    except Exception:  # pylint: disable=broad-except
      state = None
  if state is not None and state.model_checkpoint_path:
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    if state.model_checkpoint_path not in paths:
      paths.append(state.model_checkpoint_path)
    return list(reversed(paths)), True
  prefixes = [p[:-len('.index')] for p in
              tf.io.gfile.glob(os.path.join(model_dir, CHECKPOINT_NAME + '-*.index'))]
  prefixes.sort(key=checkpoint_utils.checkpoint_number, reverse=True)
  return prefixes, not prefixes


def _write_state(model_dir, latest, paths):
  """Atomically rewrites the `checkpoint` state file to list `paths` (oldest first).

  Each path keeps its save time (the old state's, else its index file's mtime): a
  CheckpointManager only deletes (max_to_keep) the checkpoints whose time it knows.
  """
  times = {}
  try:
    old = tf.train.get_checkpoint_state(model_dir)
  except Exception:  # pylint: disable=broad-except
    old = None
  if old is not None:
    times = dict(zip(old.all_model_checkpoint_paths, old.all_model_checkpoint_timestamps))
  state = tf.compat.v1.train.generate_checkpoint_state_proto(
      model_dir, latest, all_model_checkpoint_paths=paths)
  for path in paths:
    state.all_model_checkpoint_timestamps.append(
        times.get(path) or tf.io.gfile.stat(path + '.index').mtime_nsec / 1e9)
  state.last_preserved_timestamp = old.last_preserved_timestamp if old is not None else 0.0
  target = os.path.join(model_dir, 'checkpoint')
  with tf.io.gfile.GFile(target + '.tmp', 'w') as f:
    f.write(text_format.MessageToString(state))
  tf.io.gfile.rename(target + '.tmp', target, overwrite=True)


def _move_aside(prefix, model_dir):
  """Moves a checkpoint's files into model_dir/damaged_checkpoints/; returns that folder."""
  target = os.path.join(model_dir, DAMAGED_DIR)
  tf.io.gfile.makedirs(target)
  for path in tf.io.gfile.glob(prefix + '.*'):
    tf.io.gfile.rename(path, os.path.join(target, os.path.basename(path)), overwrite=True)
  return target


def recover_checkpoints(model_dir):
  """Makes the latest checkpoint of `model_dir` an intact one, before a CheckpointManager reads it.

  Checks the latest checkpoint (`checkpoint_utils.verify_checkpoint`: every value read); a damaged
  one (truncated, bytes changed, files missing) is moved to `model_dir/damaged_checkpoints/` and
  the previous one is checked, until an intact one is found. The `checkpoint` state file is then
  rewritten to list the remaining checkpoints. One line is printed when anything was damaged.

  Returns:
    (intact latest checkpoint prefix or None, list of (damaged prefix, reason)).
  """
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  candidates, state_usable = _candidate_checkpoints(model_dir)
  damaged, intact = [], None
  for prefix in candidates:
    reason = checkpoint_utils.verify_checkpoint(prefix)
    if reason is None:
      intact = prefix
      break
    damaged.append((prefix, reason))
  if not damaged and state_usable:
    return intact, []
  for prefix, _ in damaged:
    _move_aside(prefix, model_dir)
  state_path = os.path.join(model_dir, 'checkpoint')
  if intact is None:
    if tf.io.gfile.exists(state_path):
      tf.io.gfile.rename(state_path, os.path.join(model_dir, DAMAGED_DIR, 'checkpoint'),
                         overwrite=True)
  else:
    damaged_set = {p for p, _ in damaged}
    _write_state(model_dir, intact, [p for p in reversed(candidates) if p not in damaged_set])
  if damaged:
    print(_recovery_line(model_dir, damaged, intact), flush=True)
  elif not state_usable:
    print('The checkpoint state file %s was missing or unreadable: rewritten from the ckpt-N files '
          'there, to resume from %s.' % (state_path, intact), flush=True)
  return intact, damaged


def _recovery_line(model_dir, damaged, intact):
  names = ', '.join('%s (%s)' % item for item in damaged)
  where = os.path.join(model_dir, DAMAGED_DIR)
  if intact is None:
    return ('Damaged checkpoint %s moved to %s; no intact checkpoint is left, so training starts '
            'from step 0.' % (names, where))
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  return ('Damaged checkpoint %s moved to %s; resuming from the previous intact checkpoint %s '
          '(step %d).' % (names, where, intact, checkpoint_utils.checkpoint_step(intact)))


def prepare_model_dir(model_dir):
  """Start-of-run repairs (chief only): deletes the leftovers of a save killed half-way, falls back
  past damaged latest checkpoints (`recover_checkpoints`) and clears the finished-run marker.

  Returns:
    the intact latest checkpoint prefix, or None.
  """
  tf.io.gfile.makedirs(model_dir)
  for path in clean_temp_folders(model_dir):
    logging.info('Deleted %s, left by a save that did not finish.', path)
  intact, _ = recover_checkpoints(model_dir)
  set_finished_step(model_dir, None)
  return intact
