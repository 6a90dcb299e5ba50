"""Config checks of `model { semantic_segmentation }` pipelines (called by config_validation).

Every check raises `config_validation.ConfigError` with one line naming the field and what to
do, before anything is built.
"""
import math

METRICS_SET = 'semantic_segmentation_metrics'
LOSS_KEYS = ('Loss/SemanticSegmentationLoss/cross_entropy_loss',
             'Loss/SemanticSegmentationLoss/dice_loss', 'Loss/regularization_loss',
             'Loss/total_loss')


def _errors():
  from object_detection.utils import config_validation  # pylint: disable=g-import-not-at-top
  return config_validation


def _fail(field, message):
  raise _errors().ConfigError('Invalid pipeline config: `%s` %s' % (field, message))


def validate_model_config(config, field):
  """Checks a SemanticSegmentation message (`field` = 'model.semantic_segmentation')."""
  errors = _errors()
  if config.num_classes < 1:
    _fail(field + '.num_classes', 'is %d; it must be >= 1 (classes without background: the '
          'largest label map id).' % config.num_classes)
  if config.num_classes + 1 > 255 and 0 <= config.ignore_label <= config.num_classes:
    _fail(field + '.num_classes', 'is %d: label maps are uint8 PNGs (ids 0..254 with 255 = '
          'ignore); use at most 254 classes.' % config.num_classes)
  if 0 <= config.ignore_label <= config.num_classes:
    _fail(field + '.ignore_label', 'is %d, a class id (0..%d); use a value above num_classes '
          '(255, what create_semantic_tf_record.py writes).' % (config.ignore_label,
                                                                config.num_classes))
  if config.image_resizer.WhichOneof('image_resizer_oneof') is None:
    _fail(field + '.image_resizer', 'is missing; set e.g. `image_resizer { fixed_shape_resizer '
          '{ height: 512 width: 512 } }`.')
  if not config.feature_extractor.type:
    _fail(field + '.feature_extractor.type', "is empty; set the backbone, e.g. "
          "type: 'faster_rcnn_efficientnet_lite0_fpn_keras'.")
  errors._check_feature_extractor_type(  # pylint: disable=protected-access
      field + '.feature_extractor.type', config.feature_extractor.type)
  _check_extractor_arguments(config.feature_extractor, field + '.feature_extractor')
  head = config.fcn_head
  hf = field + '.fcn_head'
  if head.num_convs < 0:
    _fail(hf + '.num_convs', 'is %d; it must be >= 0.' % head.num_convs)
  if head.num_convs > 0 and head.depth < 1:
    _fail(hf + '.depth', 'is %d; it must be >= 1.' % head.depth)
  if head.kernel_size < 1 or head.kernel_size % 2 == 0:
    _fail(hf + '.kernel_size', 'is %d; use an odd size >= 1 (the output must stay aligned with '
          'the input).' % head.kernel_size)
  if not 0.0 <= head.dropout_rate < 1.0:
    _fail(hf + '.dropout_rate', 'is %g; it must be in [0, 1).' % head.dropout_rate)
  loss = config.loss
  lf = field + '.loss'
  weights = list(loss.class_weights)
  if weights and len(weights) != config.num_classes + 1:
    _fail(lf + '.class_weights', 'has %d values; give num_classes + 1 = %d (background first).'
          % (len(weights), config.num_classes + 1))
  if any(not math.isfinite(w) or w < 0 for w in weights) or (weights and not sum(weights) > 0):
    _fail(lf + '.class_weights', 'is %s; weights must be >= 0 with a positive sum.' % weights)
  for name in ('cross_entropy_weight', 'dice_weight'):
    value = getattr(loss, name)
    if not math.isfinite(value) or value < 0:
      _fail('%s.%s' % (lf, name), 'is %g; it must be >= 0.' % value)
  if loss.cross_entropy_weight == 0 and loss.dice_weight == 0:
    _fail(lf, 'has cross_entropy_weight and dice_weight both 0: nothing would be trained.')


def _check_extractor_arguments(extractor_config, field):
  """Constructs the extractor object (cheap: no Keras model is built), so its argument checks
  (conv_hyperparams required by FPN extractors, FPN levels, stride) fail here in one line."""
  from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
  try:
    model_builder._build_faster_rcnn_keras_feature_extractor(  # pylint: disable=protected-access
        extractor_config, is_training=False)
  except _errors().ConfigError:
    raise
  except ValueError as e:
    _fail(field, 'cannot build the %r extractor: %s' % (
        extractor_config.type, ' '.join(str(e).split())))


def check_augmentations(train_config, field='train_config'):
  """Only the augmentations that move label maps with the pixels (semantic_inputs)."""
  from object_detection import semantic_inputs  # pylint: disable=g-import-not-at-top
  for i, step in enumerate(train_config.data_augmentation_options):
    name = step.WhichOneof('preprocessing_step')
    if name not in semantic_inputs.SUPPORTED_AUGMENTATIONS:
      _fail('%s.data_augmentation_options[%d].%s' % (field, i, name),
            'is not supported for semantic segmentation (its label maps would not follow the '
            'pixels); use %s.' % ', '.join(semantic_inputs.SUPPORTED_AUGMENTATIONS))


def check_metrics_sets(names, field='eval_config'):
  """Semantic models report `semantic_segmentation_metrics` (the default) only."""
  for i, name in enumerate(names):
    if name != METRICS_SET:
      _fail('%s.metrics_set[%d]' % (field, i), "is '%s', which needs an instance model; a "
            "semantic_segmentation model reports metrics_set: '%s'." % (name, METRICS_SET))


def metric_keys(configs):
  """(sorted metric keys, per-class key prefixes) of a semantic evaluation."""
  from object_detection.metrics import semantic_segmentation_metrics as metrics  # pylint: disable=g-import-not-at-top
  keys = [metrics.METRIC_PREFIX + name for name in metrics.SUMMARY_METRIC_NAMES]
  loss = configs['model'].semantic_segmentation.loss
  keys += [k for k in LOSS_KEYS if 'dice' not in k or loss.dice_weight > 0]
  return sorted(keys), tuple(metrics.PER_CLASS_METRIC_PREFIXES)
