"""Validates a pipeline config before anything is built (the ONE place for config checks).

Every entry point calls `validate_pipeline_configs(configs)` right after
`config_util.get_configs_from_pipeline_file`. Errors are `ConfigError` (a ValueError) whose
message names the config field (dotted path from the pipeline root), the bad value, why it
is wrong and what to do.

Placeholder paths of the TF OD API sample configs ("PATH_TO_BE_CONFIGURED/...") are NOT
errors here: only EMPTY paths are. Whether files exist is checked where they are read.
"""
import logging

from object_detection.protos import input_reader_pb2

SUPPORTED_META_ARCHITECTURES = ('faster_rcnn',)

# Parts of a pipeline an entry point may ask to validate.
ALL_PARTS = ('model', 'train', 'eval')


class ConfigError(ValueError):
  """An invalid pipeline config value; the message names the field and why."""


def _fail(field, message):
  raise ConfigError('Invalid pipeline config: `%s` %s' % (field, message))


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
        "project; supported: faster_rcnn (number_of_stages 1-3; 3 = Mask R-CNN)."
        % (field, meta_architecture, meta_architecture))
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
  return meta_architecture


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


def validate_train_config(train_config, field='train_config'):
  """Checks batch size, steps and the optimizer choice of a TrainConfig."""
  _check_positive(field + '.batch_size', train_config.batch_size)
  optimizer_type = train_config.optimizer.WhichOneof('optimizer')
  if optimizer_type is None:
    _fail(field + '.optimizer', 'selects no optimizer; set e.g. `optimizer { momentum_optimizer '
          '{ learning_rate { cosine_decay_learning_rate { ... } } } }`.')
  optimizer = getattr(train_config.optimizer, optimizer_type)
  if optimizer.learning_rate.WhichOneof('learning_rate') is None:
    _fail('%s.optimizer.%s.learning_rate' % (field, optimizer_type),
          'selects no schedule; set e.g. `constant_learning_rate { learning_rate: 0.01 }`.')
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
  if train_config.HasField('early_stopping'):
    if train_config.early_stopping.patience < 1:
      _fail(field + '.early_stopping.patience', 'is %d; it must be >= 1.'
            % train_config.early_stopping.patience)


def validate_eval_config(eval_config, field='eval_config'):
  """Checks the batch size and refuses eval options that change the images but are not built."""
  _check_positive(field + '.batch_size', eval_config.batch_size)
  if eval_config.force_no_resize:
    _fail(field + '.force_no_resize', 'is true, but evaluating at the original image size '
          '(identity resizer) is not supported: the model resizes as its image_resizer says; '
          'remove it.')


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
  needs_masks = configs['model'].faster_rcnn.number_of_stages == 3
  if 'train' in parts:
    validate_train_config(configs['train_config'])
    validate_input_config(configs['train_input_config'], 'train_input_reader',
                          needs_masks=needs_masks, is_training=True)
  if 'eval' in parts:
    validate_eval_config(configs['eval_config'])
    eval_inputs = list(configs.get('eval_input_configs') or [])
    if not eval_inputs:
      _fail('eval_input_reader', 'is missing; add an `eval_input_reader { ... }` block.')
    for i, eval_input in enumerate(eval_inputs):
      # Mask metrics need ground-truth masks in eval too.
      metrics = set(configs['eval_config'].metrics_set)
      validate_input_config(eval_input, 'eval_input_reader[%d]' % i,
                            needs_masks=needs_masks and ('coco_mask_metrics' in metrics))
