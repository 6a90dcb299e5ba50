"""Loads `train_config.fine_tune_checkpoint` and reports exactly what was restored.

TF OD API semantics (`model_lib_v2.load_fine_tune_checkpoint`): the model's variables are built
first, then `detection_model.restore_from_objects(fine_tune_checkpoint_type)` gives the objects whose
names match the checkpoint's top-level objects:
  'classification': {'feature_extractor': the extractor's classification backbone};
  'detection': {'model': <the two feature extractor models>}: only the backbone (proposal and box
    classifier feature extractors) is restored; the RPN and the box / class / mask heads start fresh,
    so a checkpoint with another num_classes, or a Faster R-CNN checkpoint for a Mask R-CNN config, fits;
  'full': {'model': the whole model} (class-dependent variables of another num_classes and a mask head
    the checkpoint lacks keep their initial values and are reported).
TF OD API TF2 checkpoints (model zoo `checkpoint/ckpt-0`, `model_main_tf2.py` model_dirs) have the
same keys as this project's, in both directions. `fine_tune_checkpoint` may also name a model zoo
folder or a model_dir (its latest checkpoint is used).
Unlike the TF OD API, variables are assigned by key (checkpoint_utils.restore_by_keys): shape
mismatches are skipped and reported rather than crashing (the TF OD API stops with "Received
incompatible tensor with shape" for 'full' with another num_classes, and fails
`assert_existing_objects_matched` for 'full' from a Faster R-CNN checkpoint into a Mask R-CNN
config), and a checkpoint matching NOTHING is an error (a silent random start would waste a
training run). The report names, per model part (`model/<attribute>`), how many variables were
restored and which parts kept their initial value because the type does not restore them.
Keras ImageNet `.h5` / `.weights.h5` files load as 'classification' checkpoints through the
extractor's own loader (`feature_extractor.load_weights`).
"""
import tensorflow as tf

from object_detection.utils import checkpoint_utils
from object_detection.utils import config_validation


class FineTuneError(config_validation.ConfigError):
  """The fine-tune checkpoint could not be used."""


def _extractor_name(model_config):
  meta = model_config.WhichOneof('model')
  return getattr(model_config, meta).feature_extractor.type if meta else '?'


def _format_load_report(result):
  """One line (plus a few names) for a keras_weights.LoadReport; other loaders' results as counts."""
  if not hasattr(result, 'matched'):
    return 'loaded %d tensors.' % len(result) if isinstance(result, (list, tuple)) else str(result)
  total = len(result.matched) + len(result.skipped)
  text = 'matched %d of %d layers with weights (%s)' % (len(result.matched), total, result.mode)
  if result.skipped:
    text += '; %d kept their initial value: %s%s' % (
        len(result.skipped), ', '.join(result.skipped[:10]), ' ...' if len(result.skipped) > 10 else '')
  if result.unused:
    text += '; %d file layers unused: %s%s' % (
        len(result.unused), ', '.join(result.unused[:10]), ' ...' if len(result.unused) > 10 else '')
  return text + '.'


def _load_h5(detection_model, path, checkpoint_type, extractor):
  if checkpoint_type != 'classification':
    raise FineTuneError('fine_tune_checkpoint %s is a Keras .h5 file: only '
                        'fine_tune_checkpoint_type "classification" can use it (got %r).'
                        % (path, checkpoint_type))
  try:
    # The extractor knows its network's file format (e.g. ResNet conv biases folded into batch norm,
    # EfficientNet's input normalization left alone).
    result = detection_model.feature_extractor.load_weights(path)
  except (ValueError, NotImplementedError) as e:  # the message names the file
    raise FineTuneError(str(e)) from e
  print('Fine-tune: loaded Keras weights %s into the %s backbone: %s' % (
      path, extractor, _format_load_report(result)))
  return result


def _group(model_key):
  """`model/_first_stage_box_predictor/...` -> `model/_first_stage_box_predictor`."""
  return '/'.join(model_key.split('/')[:2])


def _count_groups(keys):
  counts = {}
  for key in keys:
    counts[_group(key)] = counts.get(_group(key), 0) + 1
  return ', '.join('%s (%d)' % item for item in counts.items())


def _summary_lines(detection_model, objects, report, checkpoint_type):
  """Per model part (`model/<attribute>`): how many variables were restored and which parts kept
  their initial value because `fine_tune_checkpoint_type` does not restore them.

  Variables are matched by identity, so a classification backbone's variables are named by their
  key in the detection model.
  """
  try:
    model_keys = checkpoint_utils.variable_keys({'model': detection_model})
  except Exception:  # pylint: disable=broad-except
    return []
  key_of = {id(v): k for k, v in model_keys.items()}
  object_vars = checkpoint_utils.variable_keys(objects)
  restored_ids = {id(object_vars[k]) for k in report.restored}
  covered_ids = {id(v) for v in object_vars.values()}
  restored = [key_of[i] for i in key_of if i in restored_ids]
  outside = [k for k, v in model_keys.items() if id(v) not in covered_ids]
  lines = []
  if restored:
    lines.append('restored: %s' % _count_groups(restored))
  elif report.restored:
    lines.append('restored: %d variables outside the model' % len(report.restored))
  if outside:
    lines.append('kept their initial value (fine_tune_checkpoint_type %s does not restore them): %s'
                 % (checkpoint_type, _count_groups(outside)))
  return lines


def load_fine_tune_checkpoint(detection_model, checkpoint_path, checkpoint_type, model_config):
  """Restores the fine-tune checkpoint into the (already built) model and prints a report.

  Args:
    detection_model: `core.model.DetectionModel` whose variables exist.
    checkpoint_path: checkpoint prefix, a directory holding checkpoints (model_dir, model zoo
      folder), or a `.h5` file (classification only).
    checkpoint_type: 'classification' | 'detection' | 'full' (TF OD API
      fine_tune_checkpoint_type; empty means 'detection', the TF OD API default).
    model_config: model_pb2.DetectionModel (for the extractor name in messages).

  Returns:
    checkpoint_utils.RestoreReport; for .h5 files the extractor loader's result
    (keras_weights.LoadReport for the Keras-application extractors).

  Raises:
    FineTuneError: unknown type, missing checkpoint, a model whose variables are not built yet, or
      nothing matched (names the checkpoint and the feature extractor); for .h5 files also an
      unreadable or non-fitting file (names the file).
  """
  checkpoint_type = checkpoint_type or 'detection'
  extractor = _extractor_name(model_config)
  if checkpoint_type not in ('classification', 'detection', 'full'):
    raise FineTuneError('train_config.fine_tune_checkpoint_type must be classification, '
                        'detection or full; got %r.' % checkpoint_type)
  if checkpoint_path.endswith('.h5'):
    if not tf.io.gfile.exists(checkpoint_path):
      raise FineTuneError('fine_tune_checkpoint %s does not exist.' % checkpoint_path)
    return _load_h5(detection_model, checkpoint_path, checkpoint_type, extractor)
  try:
    path = checkpoint_utils.resolve_checkpoint_path(checkpoint_path)
  except FileNotFoundError as e:
    raise FineTuneError('train_config.fine_tune_checkpoint: %s' % e)
  if not checkpoint_utils.variable_keys({'model': detection_model}):
    # Faster R-CNN creates its feature extractor models at the first call.
    raise FineTuneError(
        'fine_tune_checkpoint %s: the model has no variables yet. Build it first (one preprocess + '
        'predict call, as train_loop and the TF OD API\'s _ensure_model_is_built do), then load the '
        'checkpoint.' % path)
  objects = detection_model.restore_from_objects(checkpoint_type)
  report = checkpoint_utils.restore_by_keys(objects, path, use_moving_average=False)
  total = len(report.restored) + len(report.missing) + len(report.shape_mismatch)
  if not report.restored:
    some_keys = [k for k in tf.train.load_checkpoint(path).get_variable_to_shape_map()][:5]
    raise FineTuneError(
        'fine_tune_checkpoint %s (type %r) matches none of the %d variables of the %r feature '
        'extractor / model objects %s. The checkpoint holds e.g. %s. Use a checkpoint written for '
        'this extractor (tf.train.Checkpoint with the same object names), or change '
        'fine_tune_checkpoint_type.' % (path, checkpoint_type, total, extractor,
                                        sorted(objects), some_keys))
  print('Fine-tune checkpoint %s (type %s, extractor %s): restored %d of %d variables.' % (
      path, checkpoint_type, extractor, len(report.restored), total))
  for line in _summary_lines(detection_model, objects, report, checkpoint_type):
    print('  ' + line)
  for key in report.missing[:50]:
    print('  skipped %s: not in the checkpoint (keeps its initial value)' % key)
  for key, ckpt_shape, var_shape in report.shape_mismatch[:50]:
    print('  skipped %s: shape %s in checkpoint vs %s in model' % (key, ckpt_shape, var_shape))
  if len(report.missing) + len(report.shape_mismatch) > 100:
    print('  ... (%d skipped in total)' % (len(report.missing) + len(report.shape_mismatch)))
  # `save_counter` (tf.train.Checkpoint.save) and a training checkpoint's `step` (this project's and
  # the TF OD API's model_dirs) are bookkeeping, not weights.
  unused = [k for k in report.unused_checkpoint_keys if not k.startswith(('save_counter/', 'step/'))]
  if unused:
    print('  %d checkpoint variables were not used (not part of the %s objects), e.g. %s' % (
        len(unused), checkpoint_type, ', '.join(unused[:3])))
  return report
