"""Validates a pipeline config before anything is built (the ONE place for config checks).

Every entry point calls `validate_pipeline_configs(configs)` right after
`config_util.get_configs_from_pipeline_file` (training and evaluation through
`model_lib_v2.load_configs`, export through `exporter_lib_v2.load_pipeline_config`). Errors are
`ConfigError` (a ValueError) whose message names the config field (dotted path from the pipeline
root), the bad value, why it is wrong and what to do.

`ConfigError` is the project's one error type for config and usage problems: the other error
types of bad input (`InputConfigError`, `LabelMapError`, `FineTuneError`, `JitCompileError`,
`ConversionError`, `ConfigParseError`, `ExportError`, `UsageError` for command-line flags) are its
subclasses, so an entry point catches them all in one `except ConfigError`, prints
`error_line(e, config_path)` and exits with status 2. docs/errors.md lists every message.

`validate_pipeline_configs` needs the config only: placeholder paths of the TF OD API sample
configs ("PATH_TO_BE_CONFIGURED/...") are not errors there, only EMPTY paths are. The files a
run reads (input globs, label maps) are checked by `check_inputs`, which `load_configs` calls
for the readers the run uses, still before any model or dataset is built.

Fields of the TF OD API that this project does not use are named once in a warning that says
what is done instead (`warn_ignored_fields`); fields whose loss would change the trained model
are refused instead.
"""
import difflib
import logging
import math
import os

from object_detection.protos import input_reader_pb2
from object_detection.utils import semantic_config_validation

SUPPORTED_META_ARCHITECTURES = ('faster_rcnn', 'semantic_segmentation')

# Parts of a pipeline an entry point may ask to validate.
ALL_PARTS = ('model', 'train', 'eval')


class ConfigError(ValueError):
  """An invalid pipeline config value; the message names the field and why."""


class UsageError(ConfigError):
  """A wrong command-line flag or flag combination; the message names the flag."""


def error_line(error, pipeline_config_path=None):
  """The one line an entry point prints for a ConfigError (newlines folded into spaces).

  Args:
    error: the ConfigError (or subclass) caught.
    pipeline_config_path: the config the command read, named unless the error is about flags.
  """
  text = ' '.join(part.strip() for part in str(error).splitlines() if part.strip())
  if isinstance(error, UsageError):
    return 'Usage error: %s' % text
  if pipeline_config_path:
    return 'Config error in %s: %s' % (pipeline_config_path, text)
  return 'Error: %s' % text


def _fail(field, message):
  raise ConfigError('Invalid pipeline config: `%s` %s' % (field, message))


def _fail_from(field, error):
  """Re-raises a builder's ConfigError with the field's dotted path from the pipeline root."""
  raise ConfigError('Invalid pipeline config: `%s`: %s' % (field, error)) from None


def _check_iou(field, value):
  if not 0.0 < value <= 1.0:
    _fail(field, 'is %g; an IoU threshold must be in (0, 1].' % value)


def _check_fraction(field, value, allow_zero=True):
  lo_ok = value >= 0.0 if allow_zero else value > 0.0
  if not (lo_ok and value <= 1.0):
    _fail(field, 'is %g; it must be in %s0, 1].' % (value, '[' if allow_zero else '('))


def _check_positive(field, value):
  if value < 1:
    _fail(field, 'is %d; it must be >= 1.' % value)


def validate_model_config(model_config, field='model'):
  """Checks a DetectionModel config (faster_rcnn, number_of_stages 1-3).

  Returns:
    The meta-architecture name ('faster_rcnn').

  Raises:
    ConfigError: see module docstring.
  """
  meta_architecture = model_config.WhichOneof('model')
  if meta_architecture is None:
    _fail(field, 'selects no meta-architecture; write `model { faster_rcnn { ... } }`.')
  if meta_architecture not in SUPPORTED_META_ARCHITECTURES:
    raise ConfigError(
        "Invalid pipeline config: `%s.%s`: meta-architecture '%s' is not supported by this "
        "project; supported: faster_rcnn (number_of_stages 1-3; 3 = Mask R-CNN) and "
        "semantic_segmentation (docs/semantic_segmentation.md)."
        % (field, meta_architecture, meta_architecture))
  if meta_architecture == 'semantic_segmentation':
    semantic_config_validation.validate_model_config(model_config.semantic_segmentation,
                                                     field + '.semantic_segmentation')
    return meta_architecture
  frcnn = model_config.faster_rcnn
  f = field + '.faster_rcnn'
  if frcnn.HasField('context_config'):
    _fail(f + '.context_config', 'is set, but Context R-CNN (attention over context features) '
          'is not built by this project; remove the context_config block.')
  if frcnn.number_of_stages not in (1, 2, 3):
    _fail(f + '.number_of_stages', 'is %d; it must be 1 (RPN only), 2 (Faster R-CNN) or '
          '3 (Mask R-CNN).' % frcnn.number_of_stages)
  if not frcnn.HasField('num_classes') or frcnn.num_classes < 1:
    _fail(f + '.num_classes', 'is %d; it must be >= 1 (the number of classes without '
          'background, i.e. the largest label map id).' % frcnn.num_classes)
  if not frcnn.HasField('image_resizer') or frcnn.image_resizer.WhichOneof(
      'image_resizer_oneof') is None:
    _fail(f + '.image_resizer', 'is missing; set e.g. `image_resizer { '
          'keep_aspect_ratio_resizer { min_dimension: 800 max_dimension: 1333 } }`.')
  resizer_type = frcnn.image_resizer.WhichOneof('image_resizer_oneof')
  resizer = getattr(frcnn.image_resizer, resizer_type)
  rf = '%s.image_resizer.%s' % (f, resizer_type)
  if resizer_type == 'keep_aspect_ratio_resizer':
    _check_positive(rf + '.min_dimension', resizer.min_dimension)
    if resizer.max_dimension < resizer.min_dimension:
      _fail(rf + '.max_dimension', 'is %d, smaller than min_dimension %d.'
            % (resizer.max_dimension, resizer.min_dimension))
  elif resizer_type == 'fixed_shape_resizer':
    _check_positive(rf + '.height', resizer.height)
    _check_positive(rf + '.width', resizer.width)
  if not frcnn.feature_extractor.type:
    _fail(f + '.feature_extractor.type', "is empty; set the backbone, e.g. "
          "type: 'faster_rcnn_resnet50_keras'.")
  _check_feature_extractor_type(f + '.feature_extractor.type', frcnn.feature_extractor.type)
  anchors = frcnn.first_stage_anchor_generator
  if (anchors.WhichOneof('anchor_generator_oneof') == 'multiscale_anchor_generator' and
      anchors.multiscale_anchor_generator.normalize_coordinates):
    # Faster R-CNN works on absolute anchors; the TF OD API fails at the first predict for this.
    _fail(f + '.first_stage_anchor_generator.multiscale_anchor_generator.normalize_coordinates',
          'is true (the default); Faster R-CNN needs absolute anchors: set '
          '`normalize_coordinates: false`.')
  _check_iou(f + '.first_stage_nms_iou_threshold', frcnn.first_stage_nms_iou_threshold)
  _check_positive(f + '.first_stage_max_proposals', frcnn.first_stage_max_proposals)
  _check_positive(f + '.first_stage_minibatch_size', frcnn.first_stage_minibatch_size)
  _check_fraction(f + '.first_stage_positive_balance_fraction',
                  frcnn.first_stage_positive_balance_fraction, allow_zero=False)
  if frcnn.number_of_stages >= 2:
    _check_positive(f + '.second_stage_batch_size', frcnn.second_stage_batch_size)
    _check_fraction(f + '.second_stage_balance_fraction', frcnn.second_stage_balance_fraction,
                    allow_zero=False)
    if frcnn.HasField('initial_crop_size') and frcnn.initial_crop_size < 1:
      _fail(f + '.initial_crop_size', 'is %d; it must be >= 1.' % frcnn.initial_crop_size)
    nms = frcnn.second_stage_post_processing.batch_non_max_suppression
    nf = f + '.second_stage_post_processing.batch_non_max_suppression'
    _check_iou(nf + '.iou_threshold', nms.iou_threshold)
    _check_positive(nf + '.max_total_detections', nms.max_total_detections)
    _check_positive(nf + '.max_detections_per_class', nms.max_detections_per_class)
  predictor_type = frcnn.second_stage_box_predictor.WhichOneof('box_predictor_oneof')
  if frcnn.number_of_stages >= 2 and predictor_type is None:
    _fail(f + '.second_stage_box_predictor', 'is missing; set `second_stage_box_predictor { '
          'mask_rcnn_box_predictor { ... } }`.')
  if frcnn.number_of_stages == 3:
    pf = f + '.second_stage_box_predictor'
    if predictor_type != 'mask_rcnn_box_predictor':
      _fail(pf, 'is %r but number_of_stages: 3 (Mask R-CNN) needs a mask_rcnn_box_predictor '
            'with predict_instance_masks: true.' % predictor_type)
    predictor = frcnn.second_stage_box_predictor.mask_rcnn_box_predictor
    if not predictor.predict_instance_masks:
      _fail(pf + '.mask_rcnn_box_predictor.predict_instance_masks',
            'is false but number_of_stages: 3 (Mask R-CNN) predicts masks; set '
            '`predict_instance_masks: true` (or use number_of_stages: 2 for boxes only).')
    _check_positive(pf + '.mask_rcnn_box_predictor.mask_height', predictor.mask_height)
    _check_positive(pf + '.mask_rcnn_box_predictor.mask_width', predictor.mask_width)
  elif (predictor_type == 'mask_rcnn_box_predictor' and
        frcnn.second_stage_box_predictor.mask_rcnn_box_predictor.predict_instance_masks):
    # Valid (the TF OD API ignores the mask head below stage 3) but almost always a mistake.
    logging.warning('%s.number_of_stages is %d but the mask_rcnn_box_predictor has '
                    'predict_instance_masks: true; masks are NOT trained or predicted. Set '
                    'number_of_stages: 3 for Mask R-CNN.', f, frcnn.number_of_stages)
  _check_model_components(frcnn, f)
  return meta_architecture


def _check_feature_extractor_type(field, type_name):
  """Refuses a type the registry cannot build (TF1 names resolve, with the registry's note)."""
  # pylint: disable=g-import-not-at-top
  from object_detection.models import feature_extractor_registry as registry
  # pylint: enable=g-import-not-at-top
  try:
    registry.get(type_name)
  except ValueError as e:
    if registry.resolve_type_name(type_name) in registry.supported_names():
      _fail_from(field, e)  # a known type whose module does not import (optional dependency)
    close = difflib.get_close_matches(type_name, registry.supported_names(), n=1, cutoff=0.6)
    _fail(field, "is '%s', which is not a feature extractor this project builds; %suse one of: "
          '%s (TF1 names such as faster_rcnn_resnet50 build their TF2 equivalent).'
          % (type_name, "did you mean '%s'? " % close[0] if close else '',
             ', '.join(registry.supported_names())))


def _check_model_components(frcnn, f):
  """Runs the cheap component builders (no model, no dataset) so unsupported settings of the
  loss, anchor generator, post-processing and image resizer fail here with the field's path
  instead of in the model build. The builders hold the one implementation of each check."""
  # pylint: disable=g-import-not-at-top
  from object_detection.builders import anchor_generator_builder
  from object_detection.builders import image_resizer_builder
  from object_detection.builders import losses_builder
  from object_detection.builders import post_processing_builder
  # pylint: enable=g-import-not-at-top
  checks = [
      (f + '.image_resizer', image_resizer_builder.build, (frcnn.image_resizer,)),
      (f + '.first_stage_anchor_generator', anchor_generator_builder.build,
       (frcnn.first_stage_anchor_generator,))]
  if frcnn.number_of_stages >= 2:
    checks += [
        (f + '.second_stage_post_processing', post_processing_builder.build,
         (frcnn.second_stage_post_processing,)),
        (f + '.second_stage_classification_loss',
         losses_builder.build_faster_rcnn_classification_loss,
         (frcnn.second_stage_classification_loss,))]
    if frcnn.HasField('hard_example_miner'):
      checks.append((f + '.hard_example_miner', losses_builder.build_hard_example_miner,
                     (frcnn.hard_example_miner, 1.0, 1.0)))
  for field, build, args in checks:
    try:
      build(*args)
    except ConfigError as e:
      _fail_from(field, e)


def validate_input_config(input_config, field, needs_masks=False, is_training=False):
  """Checks an InputReader config.

  Args:
    input_config: InputReader proto.
    field: its dotted name (e.g. 'train_input_reader', 'eval_input_reader[0]').
    needs_masks: the model is Mask R-CNN, so instance masks must be loaded.
    is_training: the reader feeds training (drop_remainder must stay true).

  Raises:
    ConfigError: no reader / empty input_path / masks not loaded / bad numbers /
      sample_from_datasets_weights not one weight >= 0 per input_path / training reader with
      drop_remainder: false.
  """
  reader_type = input_config.WhichOneof('input_reader')
  if reader_type != 'tf_record_input_reader':
    _fail(field, 'has %s; set `tf_record_input_reader { input_path: "..." }` (the only '
          'supported input reader).' % (reader_type or 'no input reader'))
  paths = input_config.tf_record_input_reader.input_path
  if not paths or any(not p.strip() for p in paths):
    _fail(field + '.tf_record_input_reader.input_path', 'is empty; set it to the TFRecord '
          'file(s) or glob, e.g. input_path: "data/train.record-?????-of-00010".')
  if needs_masks and not input_config.load_instance_masks:
    _fail(field + '.load_instance_masks', 'is false but the model has number_of_stages: 3 '
          '(Mask R-CNN), which trains on instance masks; add `load_instance_masks: true` '
          '(and `mask_type: PNG_MASKS` for records written by create_coco_tf_record.py).')
  weights = list(input_config.sample_from_datasets_weights)
  if weights:
    wf = field + '.sample_from_datasets_weights'
    if len(weights) != len(paths):
      _fail(wf, 'has %d value(s) but tf_record_input_reader.input_path has %d entries; give one '
            'weight per input_path entry (in the same order).' % (len(weights), len(paths)))
    if any(w < 0 for w in weights) or not sum(weights) > 0:
      _fail(wf, 'is %s; weights must be >= 0 with a positive sum.' % weights)
  if is_training and not input_config.drop_remainder:
    _fail(field + '.drop_remainder', 'is false, but the training step needs full batches of '
          'a static size (the TF OD API\'s training step cannot unstack a batch of unknown '
          'size either); remove it (default true).')
  if input_config.sample_1_of_n_examples < 1:
    _fail(field + '.sample_1_of_n_examples', 'is 0; it must be >= 1.')
  _check_positive(field + '.max_number_of_boxes', input_config.max_number_of_boxes)
  if input_config.load_instance_masks and input_config.mask_type not in (
      input_reader_pb2.DEFAULT, input_reader_pb2.NUMERICAL_MASKS, input_reader_pb2.PNG_MASKS):
    _fail(field + '.mask_type', 'is unknown.')
  if input_config.expand_labels_hierarchy:
    _fail(field + '.expand_labels_hierarchy', 'is true, but expanding class labels through a '
          'label map hierarchy (Open Images) is not supported: training would use other labels '
          'than asked; remove it.')


# Learning-rate fields that must be > 0, and those that may be 0 but not negative, per schedule.
_POSITIVE_RATE_FIELDS = {
    'constant_learning_rate': ('learning_rate',),
    'exponential_decay_learning_rate': ('initial_learning_rate', 'decay_factor'),
    'manual_step_learning_rate': ('initial_learning_rate',),
    'cosine_decay_learning_rate': ('learning_rate_base',),
    'reduce_lr_on_plateau_learning_rate': ('initial_learning_rate', 'factor'),
}
_NON_NEGATIVE_RATE_FIELDS = {
    'exponential_decay_learning_rate': ('burnin_learning_rate', 'min_learning_rate'),
    'cosine_decay_learning_rate': ('warmup_learning_rate',),
    'reduce_lr_on_plateau_learning_rate': ('warmup_learning_rate', 'min_learning_rate'),
}


def _check_learning_rate(field, learning_rate_config):
  """Every rate of the schedule: a rate <= 0 (or NaN) trains backwards or not at all."""
  kind = learning_rate_config.WhichOneof('learning_rate')
  schedule = getattr(learning_rate_config, kind)
  f = '%s.%s' % (field, kind)
  values = [(f + '.' + name, getattr(schedule, name), True)
            for name in _POSITIVE_RATE_FIELDS.get(kind, ())]
  values += [(f + '.' + name, getattr(schedule, name), False)
             for name in _NON_NEGATIVE_RATE_FIELDS.get(kind, ())]
  if kind == 'manual_step_learning_rate':
    values += [('%s.schedule[%d].learning_rate' % (f, i), step.learning_rate, True)
               for i, step in enumerate(schedule.schedule)]
  for name, value, positive in values:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
      _fail(name, 'is %g; it must be %s (a negative learning rate climbs the loss, zero does not '
            'train); set a positive value.' % (value, '> 0' if positive else '>= 0'))
  if kind == 'reduce_lr_on_plateau_learning_rate' and schedule.factor >= 1.0:
    _fail(f + '.factor', 'is %g; it must be in (0, 1) (the rate is multiplied by it).'
          % schedule.factor)


def _check_augmentations(field, train_config):
  """Builds each data_augmentation_options step's (function, kwargs): unsupported steps fail."""
  from object_detection.builders import preprocessor_builder  # pylint: disable=g-import-not-at-top
  for i, step in enumerate(train_config.data_augmentation_options):
    name = step.WhichOneof('preprocessing_step')
    try:
      preprocessor_builder.build(step)
    except ConfigError as e:
      _fail_from('%s.data_augmentation_options[%d]%s' % (field, i, '.' + name if name else ''), e)


def validate_train_config(train_config, field='train_config'):
  """Checks batch size, steps, the optimizer, its learning rates and the augmentations."""
  _check_positive(field + '.batch_size', train_config.batch_size)
  if train_config.num_steps < 0:
    _fail(field + '.num_steps', 'is %d; it must be >= 1 (or 0 with --num_train_steps).'
          % train_config.num_steps)
  optimizer_type = train_config.optimizer.WhichOneof('optimizer')
  if optimizer_type is None:
    _fail(field + '.optimizer', 'selects no optimizer; set e.g. `optimizer { momentum_optimizer '
          '{ learning_rate { cosine_decay_learning_rate { ... } } } }`.')
  optimizer = getattr(train_config.optimizer, optimizer_type)
  if optimizer.learning_rate.WhichOneof('learning_rate') is None:
    _fail('%s.optimizer.%s.learning_rate' % (field, optimizer_type),
          'selects no schedule; set e.g. `constant_learning_rate { learning_rate: 0.01 }`.')
  _check_learning_rate('%s.optimizer.%s.learning_rate' % (field, optimizer_type),
                       optimizer.learning_rate)
  if train_config.optimizer.use_moving_average:
    decay = train_config.optimizer.moving_average_decay
    if not 0.0 < decay < 1.0:
      _fail(field + '.optimizer.moving_average_decay', 'is %g; it must be in (0, 1).' % decay)
  if train_config.gradient_clipping_by_norm < 0:
    _fail(field + '.gradient_clipping_by_norm', 'is negative.')
  if train_config.merge_multiple_label_boxes:
    _fail(field + '.merge_multiple_label_boxes', 'is true, but merging identical boxes into '
          'multi-label k-hot targets is not supported (Mask R-CNN trains on one class per box); '
          'remove it.')
  if train_config.use_multiclass_scores:
    _fail(field + '.use_multiclass_scores', 'is true, but class targets from '
          'image/object/class/multiclass_scores are not supported (the decoder does not load '
          'them); remove it.')
  # use_bfloat16 / mixed_precision: an unknown value or the two contradicting each other.
  from object_detection.training import precision  # pylint: disable=g-import-not-at-top
  precision.policy_name(train_config, field)
  if train_config.HasField('early_stopping'):
    if train_config.early_stopping.patience < 1:
      _fail(field + '.early_stopping.patience', 'is %d; it must be >= 1.'
            % train_config.early_stopping.patience)
  _check_augmentations(field, train_config)


def _metrics_sets(eval_config, field='eval_config', semantic=False):
  """The metrics_set names (the TF OD API default when empty, semantic_segmentation_metrics for
  semantic models); unknown names fail."""
  from object_detection import eval_util  # pylint: disable=g-import-not-at-top
  if semantic:
    names = list(eval_config.metrics_set) or [semantic_config_validation.METRICS_SET]
    semantic_config_validation.check_metrics_sets(names, field)
    return names
  names = list(eval_config.metrics_set) or [eval_util.EVAL_DEFAULT_METRIC]
  for i, name in enumerate(names):
    if name not in eval_util.EVAL_METRICS_CLASS_DICT:
      close = difflib.get_close_matches(name, sorted(eval_util.EVAL_METRICS_CLASS_DICT), n=1)
      _fail('%s.metrics_set[%d]' % (field, i), "is '%s', which is not supported; %suse %s."
            % (name, "did you mean '%s'? " % close[0] if close else '',
               ' or '.join(sorted(eval_util.EVAL_METRICS_CLASS_DICT))))
  return names


def validate_eval_config(eval_config, field='eval_config', semantic=False):
  """Checks the batch size and metrics_set, and refuses eval options that are not built."""
  _check_positive(field + '.batch_size', eval_config.batch_size)
  if eval_config.force_no_resize:
    _fail(field + '.force_no_resize', 'is true, but evaluating at the original image size '
          '(identity resizer) is not supported: the model resizes as its image_resizer says; '
          'remove it.')
  _metrics_sets(eval_config, field, semantic)


# Evaluation losses by the number of stages that computes them (eval_util adds the total and,
# when the model has regularizers, the regularization loss).
_LOSS_KEYS = (
    (1, 'Loss/RPNLoss/localization_loss'), (1, 'Loss/RPNLoss/objectness_loss'),
    (2, 'Loss/BoxClassifierLoss/localization_loss'),
    (2, 'Loss/BoxClassifierLoss/classification_loss'), (3, 'Loss/BoxClassifierLoss/mask_loss'),
    (1, 'Loss/regularization_loss'), (1, 'Loss/total_loss'))
_METRICS_SET_PREFIX = {'coco_detection_metrics': 'DetectionBoxes_',
                       'coco_mask_metrics': 'DetectionMasks_'}


def eval_metric_keys(configs):
  """The metric keys an evaluation of these configs reports.

  Returns:
    (sorted list of keys, tuple of key prefixes of the per-category metrics, empty unless
    eval_config asks for them).

  Raises:
    ConfigError: an unknown eval_config.metrics_set entry.
  """
  from object_detection.metrics import coco_tools  # pylint: disable=g-import-not-at-top
  if _is_semantic(configs['model']):
    return semantic_config_validation.metric_keys(configs)
  eval_config = configs['eval_config']
  stages = configs['model'].faster_rcnn.number_of_stages
  prefixes = [_METRICS_SET_PREFIX[name] for name in _metrics_sets(eval_config)]
  keys = [prefix + name for prefix in prefixes for name in coco_tools.SUMMARY_METRIC_NAMES]
  keys += [key for needs, key in _LOSS_KEYS if stages >= needs]
  per_category = ()
  if eval_config.include_metrics_per_category or eval_config.all_metrics_per_category:
    per_category = tuple(prefix + 'PerformanceByCategory/' for prefix in prefixes)
  return sorted(keys), per_category


def _check_recipe_metrics(configs):
  """Metrics named by early stopping, the best checkpoint and ReduceLROnPlateau must be keys the
  configured evaluation reports: a misspelling would otherwise surface after the first
  evaluation, possibly hours into training."""
  train_config = configs['train_config']
  named = []
  if train_config.best_checkpoint_metric:
    named.append(('train_config.best_checkpoint_metric', train_config.best_checkpoint_metric))
  if train_config.HasField('early_stopping'):
    named.append(('train_config.early_stopping.metric', train_config.early_stopping.metric))
  optimizer_type = train_config.optimizer.WhichOneof('optimizer')
  if optimizer_type:
    learning_rate = getattr(train_config.optimizer, optimizer_type).learning_rate
    if learning_rate.WhichOneof('learning_rate') == 'reduce_lr_on_plateau_learning_rate':
      named.append(('train_config.optimizer.%s.learning_rate.reduce_lr_on_plateau_learning_rate.'
                    'metric' % optimizer_type,
                    learning_rate.reduce_lr_on_plateau_learning_rate.metric))
  if not named:
    return
  keys, per_category = eval_metric_keys(configs)
  for field, name in named:
    if name in keys or (per_category and name.startswith(per_category)):
      continue
    close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    no_masks = not any(k.startswith('DetectionMasks_') for k in keys)
    if _is_semantic(configs['model']) and name.startswith('Detection'):
      # e.g. an early_stopping block without `metric`, whose default is a COCO metric.
      hint = ("a semantic_segmentation model reports 'SemanticSegmentation/mDice', "
              "'SemanticSegmentation/mIoU', ...; set the metric to one of: %s." % ', '.join(keys))
    elif name.startswith('DetectionMasks_') and no_masks:
      hint = ("add metrics_set: 'coco_mask_metrics' to eval_config to report it, or use "
              "'%s'." % name.replace('DetectionMasks_', 'DetectionBoxes_'))
    elif close:
      hint = "did you mean '%s'?" % close[0]
    else:
      hint = 'use one of: %s.' % ', '.join(keys)
    _fail(field, "is '%s', which the evaluation (eval_config.metrics_set %s) does not report; %s"
          % (name, ', '.join(_metrics_sets(configs['eval_config'],
                                           semantic=_is_semantic(configs['model']))), hint))


# TF OD API fields this project does not use: field -> what is done instead. Each is warned once
# per process, and only when the config sets it to something other than its default.
_IGNORED_FIELDS = {
    'train_config': {
        'sync_replicas': 'replicas always train synchronously under the tf.distribute strategy '
                         '(--num_workers), as in the TF2 TF OD API',
        'replicas_to_aggregate': 'every replica contributes to each step (tf.distribute)',
        'startup_delay_steps': 'all workers start together (tf.distribute)',
        'keep_checkpoint_every_n_hours': 'the last 7 checkpoints are kept (and model_dir/best/ '
                                         'with best_checkpoint_metric)',
        'batch_queue_capacity': 'tf.data prefetches instead (input reader num_prefetch_batches)',
        'num_batch_queue_threads': 'tf.data prefetches instead (input reader '
                                   'num_prefetch_batches)',
        'prefetch_queue_capacity': 'tf.data prefetches instead (input reader '
                                   'num_prefetch_batches)',
        'summarize_gradients': 'no gradient summaries are written (losses and the learning rate '
                               'are)',
        'fine_tune_checkpoint_version': 'the fine-tune checkpoint is read as a TF2 object-based '
                                        'checkpoint',
        'run_fine_tune_checkpoint_dummy_computation': 'the model is built by a first forward '
                                                      'pass before the checkpoint is restored',
        'bias_grad_multiplier': 'bias gradients are not scaled (as in the TF2 TF OD API)',
    },
    'eval_config': {
        'num_examples': 'the whole eval dataset is evaluated (TF2 TF OD API); use '
                        'sample_1_of_n_examples to evaluate fewer images',
        'eval_interval_secs': 'continuous evaluation evaluates each new checkpoint as it appears '
                              '(--eval_timeout ends the wait)',
        'max_evals': 'continuous evaluation stops after the final checkpoint or --eval_timeout',
        'save_graph': 'no graph is written (export the model with exporter_main.py)',
        'export_path': 'no graph is exported during evaluation (use exporter_main.py)',
        'visualization_export_dir': 'visualizations go to TensorBoard (model_dir/eval) only',
        'keep_image_id_for_visualization_export': 'visualizations go to TensorBoard only',
        'eval_master': 'evaluation runs in this process',
        'ignore_groundtruth': 'ground truth is always read (COCO metrics need it)',
        'eval_instance_masks': 'masks are evaluated when metrics_set has coco_mask_metrics',
        'visualize_groundtruth_boxes': 'the side-by-side images always show the ground truth',
        'recall_lower_bound': 'the COCO metrics use every recall level',
        'recall_upper_bound': 'the COCO metrics use every recall level',
        'retain_original_image_additional_channels': 'no additional channels are read',
        'use_dummy_loss_in_eval': 'the real losses are computed',
    },
    'input_reader': {
        'queue_capacity': 'tf.data shuffles with shuffle_buffer_size',
        'min_after_dequeue': 'tf.data shuffles with shuffle_buffer_size',
        'prefetch_size': 'tf.data prefetches num_prefetch_batches batches',
        'include_source_id': 'image/source_id is always decoded',
        'load_context_image_ids': 'no context features are read (Context R-CNN is not built)',
        'frame_index': 'only tf.train.Example records are read (no SequenceExample)',
    },
}
_warned_fields = set()


def _set_to_non_default(message, name):
  descriptor = message.DESCRIPTOR.fields_by_name[name]
  if _is_repeated_field(descriptor):
    return bool(getattr(message, name))
  return message.HasField(name) and getattr(message, name) != descriptor.default_value


def _is_repeated_field(descriptor):
  if hasattr(descriptor, 'is_repeated'):
    return descriptor.is_repeated
  return descriptor.label == descriptor.LABEL_REPEATED


def warn_ignored_fields(configs, parts=ALL_PARTS):
  """Logs one warning per ignored TF OD API field the config sets (once per process).

  Args:
    configs: configs dict.
    parts: the parts the command uses ('train': train_config and train_input_reader, 'eval':
      eval_config and the eval input readers).

  Returns:
    list of the dotted field names warned about by this call.
  """
  messages = []
  if 'train' in parts:
    messages += [('train_config', configs.get('train_config'), 'train_config'),
                 ('train_input_reader', configs.get('train_input_config'), 'input_reader')]
  if 'eval' in parts:
    messages.append(('eval_config', configs.get('eval_config'), 'eval_config'))
    messages += [('eval_input_reader[%d]' % i, reader, 'input_reader')
                 for i, reader in enumerate(configs.get('eval_input_configs') or [])]
  warned = []
  for field, message, table in messages:
    if message is None:
      continue
    for name, instead in sorted(_IGNORED_FIELDS[table].items()):
      dotted = '%s.%s' % (field, name)
      if dotted in _warned_fields or not _set_to_non_default(message, name):
        continue
      _warned_fields.add(dotted)
      warned.append(dotted)
      logging.warning('Config field `%s` is ignored by this project: %s.', dotted, instead)
  return warned


def validate_pipeline_configs(configs, parts=ALL_PARTS):
  """Validates a configs dict (from `config_util.get_configs_from_pipeline_file`).

  Args:
    configs: dict with keys `model`, `train_config`, `train_input_config`, `eval_config`,
      `eval_input_configs` (keys starting with '_' are ignored).
    parts: which parts to check, a subset of ('model', 'train', 'eval'). An entry point
      validates what it uses: training all three, eval ('model', 'eval'), export ('model',).

  Raises:
    ConfigError: the first invalid field found; the message names the field and why.
  """
  unknown = set(parts) - set(ALL_PARTS)
  if unknown:
    raise ValueError('validate_pipeline_configs: unknown parts %s; use a subset of %s.'
                     % (sorted(unknown), ALL_PARTS))
  if 'model' not in configs or configs['model'] is None:
    _fail('model', 'is missing.')
  validate_model_config(configs['model'])
  semantic = _is_semantic(configs['model'])
  needs_masks = not semantic and configs['model'].faster_rcnn.number_of_stages == 3
  if 'train' in parts:
    validate_train_config(configs['train_config'])
    if semantic:
      semantic_config_validation.check_augmentations(configs['train_config'])
    validate_input_config(configs['train_input_config'], 'train_input_reader',
                          needs_masks=needs_masks, is_training=True)
  if 'eval' in parts:
    validate_eval_config(configs['eval_config'], semantic=semantic)
    eval_inputs = list(configs.get('eval_input_configs') or [])
    if not eval_inputs:
      _fail('eval_input_reader', 'is missing; add an `eval_input_reader { ... }` block.')
    for i, eval_input in enumerate(eval_inputs):
      # Mask metrics need ground-truth masks in eval too.
      metrics = set(configs['eval_config'].metrics_set)
      validate_input_config(eval_input, 'eval_input_reader[%d]' % i,
                            needs_masks=needs_masks and ('coco_mask_metrics' in metrics))
  if 'train' in parts:
    _check_recipe_metrics(configs)
  warn_ignored_fields(configs, parts)


# What each run mode reads: the input readers whose files must exist before anything is built.
RUN_MODES = {
    'train': ('train',),
    'train_and_eval': ('train', 'eval'),
    'eval': ('eval',),
    'eval_on_train': ('train',),
}


def check_inputs(configs, mode):
  """Checks the files a run will read, before any model or dataset is built.

  For each input reader the run reads: every `tf_record_input_reader.input_path` pattern matches
  at least one file, and `label_map_path` (when set) loads (file present and readable, ids unique
  and >= 1, see label_map_util) with no id above `num_classes`, and the first record with objects
  of each pattern holds what `load_instance_masks` / `mask_type` expect. Training also needs
  `train_config.num_steps` >= 1.

  Args:
    configs: a validated configs dict.
    mode: 'train', 'train_and_eval', 'eval' or 'eval_on_train' (see RUN_MODES).

  Raises:
    ConfigError: naming the reader field, the pattern or label map file, and what to do.
  """
  if mode not in RUN_MODES:
    raise ValueError('check_inputs: mode %r is not one of %s.' % (mode, sorted(RUN_MODES)))
  reads = RUN_MODES[mode]
  if mode.startswith('train') and configs['train_config'].num_steps < 1:
    _fail('train_config.num_steps', 'is %d; training needs num_steps >= 1 (set it in the config '
          'or pass --num_train_steps).' % configs['train_config'].num_steps)
  readers = []
  if 'train' in reads:
    readers.append(('train_input_reader', configs['train_input_config']))
  if 'eval' in reads:
    readers.extend(('eval_input_reader[%d]' % i, reader)
                   for i, reader in enumerate(configs.get('eval_input_configs') or []))
  for field, reader in readers:
    _check_input_paths(field + '.tf_record_input_reader.input_path',
                       reader.tf_record_input_reader.input_path)
    if reader.label_map_path:
      _check_label_map(field + '.label_map_path', reader.label_map_path,
                       _num_classes(configs['model']), _num_classes_field(configs['model']))
    if _is_semantic(configs['model']):
      # The first record of each file must be a semantic one (not an instance record).
      from object_detection import semantic_inputs  # pylint: disable=g-import-not-at-top
      try:
        semantic_inputs.check_records(reader, field)
      except ValueError as e:
        raise ConfigError(str(e)) from None
      continue
    # mask_type / load_instance_masks against what the records hold, on the first record with
    # objects of each input_path (cheap: no image decoding).
    from object_detection.data_decoders import record_validation  # pylint: disable=g-import-not-at-top
    record_validation.check_first_record(reader, field)


def _check_input_paths(field, patterns):
  from object_detection.builders import dataset_builder  # pylint: disable=g-import-not-at-top
  for pattern in patterns:
    try:
      dataset_builder.list_input_files_per_path([pattern])
    except dataset_builder.InputConfigError:
      where = '' if os.path.isabs(pattern) else ' (relative to %s)' % os.getcwd()
      _fail(field, "is '%s', which matches no file%s; fix the path or glob, or create the "
            'records with dataset_tools/create_coco_tf_record.py.' % (pattern, where))


def _is_semantic(model_config):
  return model_config.WhichOneof('model') == 'semantic_segmentation'


def _num_classes(model_config):
  meta = model_config.WhichOneof('model') or 'faster_rcnn'
  return getattr(model_config, meta).num_classes


def _num_classes_field(model_config):
  return 'model.%s.num_classes' % (model_config.WhichOneof('model') or 'faster_rcnn')


def _check_label_map(field, path, num_classes, num_classes_field='model.faster_rcnn.num_classes'):
  """The label map loads (label_map_util's checks: file, syntax, ids) and fits num_classes."""
  from object_detection.utils import label_map_util  # pylint: disable=g-import-not-at-top
  try:
    label_map = label_map_util.load_labelmap(path)
  except label_map_util.LabelMapError as e:
    _fail_from(field, e)
  if not label_map.item:
    _fail(field, "is '%s', which has no `item`; write one `item { id: N name: \"...\" }` per "
          'class.' % path)
  largest = label_map_util.get_max_label_map_index(label_map)
  if largest > num_classes:
    _fail(num_classes_field, "is %d, smaller than the largest id %d of the label map "
          "'%s' (%s); set num_classes: %d (ids need not be contiguous: the model has one class per "
          'id 1..num_classes), or remove the classes above %d from the label map.'
          % (num_classes, largest, path, field, largest, num_classes))
