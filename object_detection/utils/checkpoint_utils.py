"""Checkpoint helpers shared by training, evaluation and export.

Checkpoints written by `model_lib_v2.train_loop` have this layout:
`tf.train.Checkpoint(model=detection_model, optimizer=optimizer, step=global_step)` under a
`tf.train.CheckpointManager(model_dir, max_to_keep=7, checkpoint_name='ckpt')`.

Variables are restored BY CHECKPOINT KEY (the object-based key TF writes, e.g.
`model/_box_head/kernel/.ATTRIBUTES/VARIABLE_VALUE`) rather than with `Checkpoint.restore`, so that
we can (a) report exactly which variables matched and which were skipped and why, (b) skip shape
mismatches instead of failing half-way, and (c) read the exponential-moving-average slot
(`<var key prefix>/.OPTIMIZER_SLOT/optimizer/average/...`) in place of the raw weight without
rebuilding the optimizer.
"""
import collections
import os

import tensorflow as tf

_VALUE_SUFFIX = '.ATTRIBUTES/VARIABLE_VALUE'
# Slot name used by official.modeling.optimization.ema_optimizer.ExponentialMovingAverage; the
# optimizer is tracked under the name `optimizer` in the training checkpoint (layout above).
EMA_SLOT_NAME = 'average'


def _escape(name):
  # Same escaping as tensorflow/python/checkpoint (object names may contain '/' and '.').
  return name.replace('.', '..').replace('/', '.S')


def variable_keys(root_objects):
  """Maps checkpoint key prefixes to variables for a dict of trackables.

  Walks the object graph breadth-first, as TF's object-based saver does, so the first (shortest)
  path to each variable is its checkpoint key.

  Args:
    root_objects: dict name -> trackable, as passed to `tf.train.Checkpoint(**root_objects)`.

  Returns:
    OrderedDict mapping key prefix (e.g. `model/_box_head/kernel/`) -> tf.Variable. The full
    checkpoint key of the value is `prefix + '.ATTRIBUTES/VARIABLE_VALUE'`.
  """
  result = collections.OrderedDict()
  seen = set()
  queue = collections.deque()
  # tf.train.Checkpoint orders its root objects by name: a variable reachable from two roots takes
  # the key under the first one in that order.
  for name, obj in sorted(root_objects.items()):
    queue.append((_escape(name), obj))
  while queue:
    path, obj = queue.popleft()
    if id(obj) in seen:
      continue
    seen.add(id(obj))
    if isinstance(obj, tf.Variable):  # includes tf.distribute (Mirrored) variables
      result[path + '/'] = obj
      continue
    try:
      children = tf.train.TrackableView(obj).children(obj)
    except Exception:  # pylint: disable=broad-except
      continue
    for child_name, child in children.items():
      queue.append((path + '/' + _escape(child_name), child))
  return result


def checkpoint_directory(path):
  """The folder holding the checkpoints of `path`: a TF OD API / model zoo export folder (with a
  `checkpoint/` sub-folder next to `saved_model/` and `pipeline.config`) maps to that sub-folder; any
  other path is returned unchanged."""
  sub = os.path.join(path, 'checkpoint')
  if tf.io.gfile.isdir(path) and tf.io.gfile.isdir(sub):
    return sub
  return path


def checkpoint_number(prefix):
  """The N of a `<name>-N` checkpoint prefix (-1 when its file name does not end in a number)."""
  try:
    return int(os.path.basename(prefix).rsplit('-', 1)[-1])
  except ValueError:
    return -1


def latest_checkpoint(directory):
  """The newest checkpoint prefix in `directory`, or None.

  `tf.train.latest_checkpoint` reads the `checkpoint` state file. Without it (a zoo folder copied
  without that file) or when it names files that are not there (a model_dir copied from another
  machine with absolute paths in it), the highest-numbered `<name>-N.index` in the folder is used.
  """
  latest = tf.train.latest_checkpoint(directory)
  if latest is not None:
    return latest
  prefixes = [p[:-len('.index')] for p in tf.io.gfile.glob(os.path.join(directory, '*.index'))]
  return max(prefixes, key=checkpoint_number) if prefixes else None


def resolve_checkpoint_path(checkpoint_path):
  """Returns a checkpoint prefix.

  Accepts a prefix (`model_dir/ckpt-7`), a training model_dir (its latest checkpoint: this
  project's or the TF OD API's `model_main_tf2.py` output), or an exported / TF2 model zoo folder
  (`<folder>/checkpoint/ckpt-0`) or its `checkpoint/` sub-folder.

  Raises:
    FileNotFoundError: no checkpoint at `checkpoint_path` (names the path).
  """
  if tf.io.gfile.isdir(checkpoint_path):
    latest = latest_checkpoint(checkpoint_directory(checkpoint_path))
    if latest is None:
      raise FileNotFoundError(
          'No checkpoint found in directory %s (expected ckpt-N.index files with a `checkpoint` '
          'state file, or a model zoo / exported folder with checkpoint/ckpt-0).' % checkpoint_path)
    return latest
  if not tf.io.gfile.exists(checkpoint_path + '.index'):
    raise FileNotFoundError(
        'Checkpoint %s not found (no %s.index). Pass a checkpoint prefix such as '
        'model_dir/ckpt-7 or a directory holding checkpoints.' % (checkpoint_path, checkpoint_path))
  return checkpoint_path


def verify_checkpoint(checkpoint_path):
  """Reads every value of a checkpoint; returns None when it is intact, else the reason (str).

  Reading everything is the only check that catches a truncated or bit-flipped data file: TF
  checks each value's CRC32C when it is read, and an index file cut short does not open. It costs
  one read of the checkpoint, so it is meant for the one checkpoint a run resumes from.
  """
  try:
    reader = tf.train.load_checkpoint(checkpoint_path)
    for key in reader.get_variable_to_shape_map():
      reader.get_tensor(key)
  except Exception as e:  # pylint: disable=broad-except
    # TF raises DataLossError, OutOfRangeError, NotFoundError, IndexError ("Read less bytes than
    # requested") or ValueError depending on which byte is damaged.
    text = getattr(e, 'message', None) or str(e) or repr(e)
    return '%s: %s' % (type(e).__name__, text.strip().splitlines()[0] if text.strip() else '')
  return None


def holds_model_variables(checkpoint_path):
  """Whether a checkpoint prefix holds any `model/...` variable value.

  The TF OD API's `model_main_tf2.py` saves its first checkpoint (step 0) before the model has
  run, so without `fine_tune_checkpoint` that checkpoint holds only `step`, `save_counter` and
  no model variable.
  """
  names = tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map()
  return any(k.startswith('model/') and '.OPTIMIZER_SLOT' not in k and k.endswith(_VALUE_SUFFIX)
             for k in names)


RestoreReport = collections.namedtuple(
    'RestoreReport',
    ['checkpoint_path', 'restored', 'from_moving_average', 'missing', 'shape_mismatch',
     'unused_checkpoint_keys', 'step'])


def restore_by_keys(root_objects, checkpoint_path, use_moving_average=False):
  """Assigns checkpoint values to the variables reachable from `root_objects`.

  Args:
    root_objects: dict name -> trackable (e.g. `{'model': detection_model}`) whose variables
      already exist.
    checkpoint_path: checkpoint prefix (not a directory).
    use_moving_average: read the EMA slot of each variable when the checkpoint has one.

  Returns:
    RestoreReport: `restored` / `from_moving_average` / `missing` are lists of key prefixes;
    `shape_mismatch` is a list of (key, checkpoint_shape, variable_shape); `step` is the
    checkpoint's `step` value or None.
  """
  reader = tf.train.load_checkpoint(checkpoint_path)
  ckpt_shapes = reader.get_variable_to_shape_map()
  restored, from_ema, missing, mismatch = [], [], [], []
  used = set()
  for prefix, var in variable_keys(root_objects).items():
    key = prefix + _VALUE_SUFFIX
    ema_key = '%s.OPTIMIZER_SLOT/optimizer/%s/%s' % (prefix, EMA_SLOT_NAME, _VALUE_SUFFIX)
    source = None
    if use_moving_average and ema_key in ckpt_shapes:
      source = ema_key
    elif key in ckpt_shapes:
      source = key
    if source is None:
      missing.append(prefix)
      continue
    var_shape = [int(d) for d in var.shape]
    if list(ckpt_shapes[source]) != var_shape:
      mismatch.append((prefix, list(ckpt_shapes[source]), var_shape))
      used.add(source)  # reported as a mismatch, not again as unused
      continue
    var.assign(reader.get_tensor(source))
    used.add(source)
    used.add(key)
    restored.append(prefix)
    if source == ema_key:
      from_ema.append(prefix)
  unused = [k for k in ckpt_shapes if k not in used and '.OPTIMIZER_SLOT' not in k
            and not k.startswith('optimizer/') and k != '_CHECKPOINTABLE_OBJECT_GRAPH']
  step = None
  for step_key in ('step/' + _VALUE_SUFFIX,):
    if step_key in ckpt_shapes:
      step = int(reader.get_tensor(step_key))
  return RestoreReport(checkpoint_path, restored, from_ema, missing, mismatch, unused, step)


def _has_variables(model):
  try:
    return bool(model.variables)
  except ValueError:  # tf_keras raises for an unbuilt nested Sequential/functional model
    return False


def build_model_variables(detection_model, image_shape=(320, 320)):
  """Creates the variables of an inference-mode DetectionModel with one dummy forward pass.

  Args:
    detection_model: `core.model.DetectionModel`.
    image_shape: (height, width) of the dummy float32 0..255 image; `preprocess` resizes it as
      the config says, so the value only matters for identity resizers.
  """
  image = tf.zeros([1, image_shape[0], image_shape[1], 3], tf.float32)
  preprocessed, true_shapes = detection_model.preprocess(image)
  prediction_dict = detection_model.predict(preprocessed, true_shapes)
  detection_model.postprocess(prediction_dict, true_shapes)


def uses_moving_average(train_config):
  """Whether inference (evaluation, export) restores the moving averages of the weights.

  The one place this is decided: the model was trained with an exponential moving average of its
  weights, `train_config.optimizer.use_moving_average` (the optimizer builder's and the TF OD
  API's predicate).
  """
  return bool(train_config.optimizer.use_moving_average)


def restore_for_inference(detection_model, checkpoint_path, use_moving_average,
                          image_shape=(320, 320), allow_missing=False):
  """Builds `detection_model`'s variables and loads trained weights for eval or export.

  Behaviour (fixed; eval_util, model_lib_v2 and the exporter rely on it):
  1. `checkpoint_path` may be a checkpoint prefix (`model_dir/ckpt-12`), a directory (its
     latest checkpoint is used) or a model zoo / exported folder (`checkpoint/ckpt-0`).
  2. The model's variables are created with one dummy forward pass (`preprocess`, `predict`,
     `postprocess` on a zero image of `image_shape`) unless they already exist.
  3. Every model variable is read from the checkpoint written by `train_loop` (key
     `model/...`). With `use_moving_average=True` (see
     `uses_moving_average(train_config)`), the exponential-moving-average value
     stored in the optimizer's `average` slot replaces the raw weight for every variable that has
     one (trainable variables); the others (e.g. batch-norm statistics) use their raw value. With
     `use_moving_average=True` but no average slot at all in the checkpoint, a ValueError is
     raised (the config and the checkpoint disagree).
  4. Model variables absent from the checkpoint, or with a different shape, raise ValueError
     naming them (unless `allow_missing`), so a mismatched config never exports random weights.
  The optimizer itself is never created, so this works in processes without a training setup.

  Args:
    detection_model: `core.model.DetectionModel` (normally built with is_training=False).
    checkpoint_path: checkpoint prefix or directory.
    use_moving_average: bool, swap in EMA weights.
    image_shape: (height, width) for the dummy build pass.
    allow_missing: only warn (print) about missing / mismatched variables.

  Returns:
    RestoreReport namedtuple (see `restore_by_keys`); `.step` is the training step of the
    checkpoint (int) or None.

  Raises:
    FileNotFoundError: no checkpoint at `checkpoint_path`.
    ValueError: missing / mismatched variables, a checkpoint without any model variable (the TF OD
      API's step-0 checkpoint), or EMA requested but absent.
  """
  checkpoint_path = resolve_checkpoint_path(checkpoint_path)
  if not allow_missing and not holds_model_variables(checkpoint_path):
    keys = sorted(tf.train.load_checkpoint(checkpoint_path).get_variable_to_shape_map())
    raise ValueError(
        'Checkpoint %s holds no model variables (keys %s): the TF OD API saves its step-0 checkpoint '
        'before the model is built when there is no fine_tune_checkpoint; use a later checkpoint.'
        % (checkpoint_path, [k for k in keys if k != '_CHECKPOINTABLE_OBJECT_GRAPH'][:5]))
  if not _has_variables(detection_model):
    build_model_variables(detection_model, image_shape)
  report = restore_by_keys({'model': detection_model}, checkpoint_path, use_moving_average)
  if use_moving_average and report.restored and not report.from_moving_average:
    raise ValueError(
        'use_moving_average is on but checkpoint %s holds no moving averages (no '
        '`.OPTIMIZER_SLOT/optimizer/average` entries). Set use_moving_average: false in the '
        'optimizer config, or use a checkpoint trained with it.' % checkpoint_path)
  problems = ['%s (not in checkpoint)' % k for k in report.missing]
  problems += ['%s (checkpoint shape %s, model shape %s)' % m for m in report.shape_mismatch]
  if problems:
    message = ('Checkpoint %s does not fit the model: %d of %d variables not restored: %s' % (
        checkpoint_path, len(problems), len(problems) + len(report.restored),
        '; '.join(problems[:20]) + (' ...' if len(problems) > 20 else '')))
    if not allow_missing:
      raise ValueError(message + '. Check that the pipeline config is the one used for training.')
    print('WARNING: ' + message)
  return report


def checkpoint_step(checkpoint_path):
  """Returns the global step stored in a training checkpoint (int), or parses `ckpt-N`."""
  reader = tf.train.load_checkpoint(checkpoint_path)
  key = 'step/' + _VALUE_SUFFIX
  if reader.has_tensor(key):
    return int(reader.get_tensor(key))
  return int(os.path.basename(checkpoint_path).rsplit('-', 1)[-1])
