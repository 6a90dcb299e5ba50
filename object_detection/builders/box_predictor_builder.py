"""Builds the Keras box predictors of Faster R-CNN / Mask R-CNN (TF OD API
`builders/box_predictor_builder.py`, Keras paths only).

  - `build_convolutional_keras_box_predictor(...)`: the RPN's `ConvolutionalBoxPredictor`; the
    meta-architecture calls it directly with num_classes=1, kernel_size=1, no extra layers.
  - `build_mask_rcnn_keras_box_predictor(...)`: the second stage's `MaskRCNNKerasBoxPredictor`.
  - `build_keras(hyperparams_fn, ..., box_predictor_config, ...)`: reads a `BoxPredictor` proto
    (`faster_rcnn.second_stage_box_predictor`); only `mask_rcnn_box_predictor` is implemented.

Head names and argument defaults are the TF OD API's, so the checkpoint keys match.
"""

import collections

from absl import logging

from object_detection.predictors import convolutional_keras_box_predictor
from object_detection.predictors import mask_rcnn_keras_box_predictor
from object_detection.predictors.heads import keras_box_head
from object_detection.predictors.heads import keras_class_head
from object_detection.predictors.heads import keras_mask_head
from object_detection.protos import box_predictor_pb2
from object_detection.utils.config_validation import ConfigError

# Min / max for clipping box encodings (TF OD API `box_predictor_builder.BoxEncodingsClipRange`).
BoxEncodingsClipRange = collections.namedtuple('BoxEncodingsClipRange', ['min', 'max'])


def build_convolutional_keras_box_predictor(is_training, num_classes, conv_hyperparams,
                                            freeze_batchnorm, inplace_batchnorm_update,
                                            num_predictions_per_location_list, min_depth,
                                            max_depth, num_layers_before_predictor, use_dropout,
                                            dropout_keep_prob, kernel_size, box_code_size,
                                            add_background_class=True,
                                            class_prediction_bias_init=0.0, use_depthwise=False,
                                            box_encodings_clip_range=None, name='BoxPredictor'):
  """Returns a `ConvolutionalBoxPredictor` with one box head and one class head per feature map.

  Heads are named 'ConvolutionalBoxHead_<i>' / 'ConvolutionalClassHead_<i>' (i = index in
  `num_predictions_per_location_list`); the class heads have num_classes + 1 slots when
  `add_background_class`, else num_classes.

  Args:
    is_training: bool.
    num_classes: int, classes without background (the RPN: 1, objectness).
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams`.
    freeze_batchnorm, inplace_batchnorm_update: bools.
    num_predictions_per_location_list: list of ints, anchors per position of each feature map
      (the anchor generator's `num_anchors_per_location()`: [12] for the C4 grid anchors,
      [3] * 5 for FPN).
    min_depth, max_depth, num_layers_before_predictor: extra 1x1 convs before the heads.
    use_dropout, dropout_keep_prob: dropout before the class conv.
    kernel_size: int, heads' kernel size.
    box_code_size: int.
    add_background_class: bool.
    class_prediction_bias_init: float.
    use_depthwise: must be False (see `ConvolutionalBoxHead`).
    box_encodings_clip_range: None or `BoxEncodingsClipRange`.
    name: str, the predictor's Keras name.

  Raises:
    ConfigError: use_depthwise is True, min_depth > max_depth.
  """
  box_prediction_heads = []
  class_prediction_heads = []
  for stack_index, num_predictions_per_location in enumerate(num_predictions_per_location_list):
    box_prediction_heads.append(keras_box_head.ConvolutionalBoxHead(
        is_training=is_training,
        box_code_size=box_code_size,
        kernel_size=kernel_size,
        conv_hyperparams=conv_hyperparams,
        freeze_batchnorm=freeze_batchnorm,
        num_predictions_per_location=num_predictions_per_location,
        use_depthwise=use_depthwise,
        box_encodings_clip_range=box_encodings_clip_range,
        name='ConvolutionalBoxHead_%d' % stack_index))
    class_prediction_heads.append(keras_class_head.ConvolutionalClassHead(
        is_training=is_training,
        num_class_slots=num_classes + 1 if add_background_class else num_classes,
        use_dropout=use_dropout,
        dropout_keep_prob=dropout_keep_prob,
        kernel_size=kernel_size,
        conv_hyperparams=conv_hyperparams,
        freeze_batchnorm=freeze_batchnorm,
        num_predictions_per_location=num_predictions_per_location,
        class_prediction_bias_init=class_prediction_bias_init,
        use_depthwise=use_depthwise,
        name='ConvolutionalClassHead_%d' % stack_index))
  return convolutional_keras_box_predictor.ConvolutionalBoxPredictor(
      is_training=is_training,
      num_classes=num_classes,
      box_prediction_heads=box_prediction_heads,
      class_prediction_heads=class_prediction_heads,
      other_heads={},
      conv_hyperparams=conv_hyperparams,
      num_layers_before_predictor=num_layers_before_predictor,
      min_depth=min_depth,
      max_depth=max_depth,
      freeze_batchnorm=freeze_batchnorm,
      inplace_batchnorm_update=inplace_batchnorm_update,
      name=name)


def build_mask_rcnn_keras_box_predictor(is_training, num_classes, fc_hyperparams, freeze_batchnorm,
                                        use_dropout, dropout_keep_prob, box_code_size,
                                        add_background_class=True, share_box_across_classes=False,
                                        predict_instance_masks=False, conv_hyperparams=None,
                                        mask_height=14, mask_width=14,
                                        mask_prediction_num_conv_layers=2,
                                        mask_prediction_conv_depth=256,
                                        masks_are_class_agnostic=False,
                                        convolve_then_upsample_masks=False):
  """Returns a `MaskRCNNKerasBoxPredictor` (box head, class head, optional mask head).

  Args:
    is_training: bool.
    num_classes: int, classes without background.
    fc_hyperparams: `hyperparams_builder.KerasLayerHyperparams` for the box / class heads (only
      their batch norm reads it, as in the TF OD API).
    freeze_batchnorm: bool.
    use_dropout, dropout_keep_prob: dropout before the box and class Dense layers.
    box_code_size: int.
    add_background_class: bool, class head with num_classes + 1 slots.
    share_box_across_classes: bool.
    predict_instance_masks: bool, add the mask head under `MASK_PREDICTIONS`.
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams` for the mask head (required with
      masks).
    mask_height, mask_width, mask_prediction_num_conv_layers, mask_prediction_conv_depth,
    masks_are_class_agnostic, convolve_then_upsample_masks: see `keras_mask_head.MaskRCNNMaskHead`.

  Raises:
    ConfigError: predict_instance_masks without conv_hyperparams.
  """
  box_prediction_head = keras_box_head.MaskRCNNBoxHead(
      is_training=is_training,
      num_classes=num_classes,
      fc_hyperparams=fc_hyperparams,
      freeze_batchnorm=freeze_batchnorm,
      use_dropout=use_dropout,
      dropout_keep_prob=dropout_keep_prob,
      box_code_size=box_code_size,
      share_box_across_classes=share_box_across_classes)
  class_prediction_head = keras_class_head.MaskRCNNClassHead(
      is_training=is_training,
      num_class_slots=num_classes + 1 if add_background_class else num_classes,
      fc_hyperparams=fc_hyperparams,
      freeze_batchnorm=freeze_batchnorm,
      use_dropout=use_dropout,
      dropout_keep_prob=dropout_keep_prob)
  third_stage_heads = {}
  if predict_instance_masks:
    if conv_hyperparams is None:
      raise ConfigError('mask_rcnn_box_predictor.conv_hyperparams must be set when '
                        'predict_instance_masks is true (it configures the mask head convs).')
    third_stage_heads[mask_rcnn_keras_box_predictor.MASK_PREDICTIONS] = (
        keras_mask_head.MaskRCNNMaskHead(
            is_training=is_training,
            num_classes=num_classes,
            conv_hyperparams=conv_hyperparams,
            freeze_batchnorm=freeze_batchnorm,
            mask_height=mask_height,
            mask_width=mask_width,
            mask_prediction_num_conv_layers=mask_prediction_num_conv_layers,
            mask_prediction_conv_depth=mask_prediction_conv_depth,
            masks_are_class_agnostic=masks_are_class_agnostic,
            convolve_then_upsample=convolve_then_upsample_masks))
  return mask_rcnn_keras_box_predictor.MaskRCNNKerasBoxPredictor(
      is_training=is_training,
      num_classes=num_classes,
      freeze_batchnorm=freeze_batchnorm,
      box_prediction_head=box_prediction_head,
      class_prediction_head=class_prediction_head,
      third_stage_heads=third_stage_heads)


def _check_mask_rcnn_config(config):
  if config.use_dropout and not 0.0 < config.dropout_keep_probability <= 1.0:
    raise ConfigError('second_stage_box_predictor.mask_rcnn_box_predictor.dropout_keep_probability '
                      'must be in (0, 1] when use_dropout is true, got %g.'
                      % config.dropout_keep_probability)
  if config.predict_instance_masks:
    if not config.HasField('conv_hyperparams'):
      raise ConfigError('second_stage_box_predictor.mask_rcnn_box_predictor.conv_hyperparams must '
                        'be set when predict_instance_masks is true.')
    if config.mask_height <= 0 or config.mask_width <= 0:
      raise ConfigError('second_stage_box_predictor.mask_rcnn_box_predictor.mask_height / '
                        'mask_width must be positive, got %d x %d.'
                        % (config.mask_height, config.mask_width))
    if config.mask_prediction_conv_depth < 0:
      raise ConfigError('second_stage_box_predictor.mask_rcnn_box_predictor.'
                        'mask_prediction_conv_depth must be >= 0 (0 derives it), got %d.'
                        % config.mask_prediction_conv_depth)
  if config.predict_keypoints:
    logging.warning('second_stage_box_predictor.mask_rcnn_box_predictor.predict_keypoints is '
                    'ignored: the TF OD API Keras Mask R-CNN predictor has no keypoint head.')


def build_keras(hyperparams_fn, freeze_batchnorm, inplace_batchnorm_update,
                num_predictions_per_location_list, box_predictor_config, is_training, num_classes,
                add_background_class=True):
  """Builds the second-stage Keras box predictor from a `BoxPredictor` proto.

  Args:
    hyperparams_fn: callable(hyperparams_pb2.Hyperparams) -> KerasLayerHyperparams (normally
      `hyperparams_builder.KerasLayerHyperparams`).
    freeze_batchnorm: bool.
    inplace_batchnorm_update: bool (unused by the Mask R-CNN predictor, as in the TF OD API).
    num_predictions_per_location_list: list of ints ([1] for the second stage; unused by the
      Mask R-CNN predictor).
    box_predictor_config: `box_predictor_pb2.BoxPredictor`.
    is_training: bool.
    num_classes: int, classes without background.
    add_background_class: bool.

  Returns:
    `MaskRCNNKerasBoxPredictor`.

  Raises:
    ConfigError: the config is not a BoxPredictor, sets another predictor than
      mask_rcnn_box_predictor (or none), or has invalid mask_rcnn_box_predictor fields.
  """
  del inplace_batchnorm_update, num_predictions_per_location_list
  if not isinstance(box_predictor_config, box_predictor_pb2.BoxPredictor):
    raise ValueError('box_predictor_config must be a box_predictor_pb2.BoxPredictor message, got '
                     '%s.' % type(box_predictor_config).__name__)
  kind = box_predictor_config.WhichOneof('box_predictor_oneof')
  if kind != 'mask_rcnn_box_predictor':
    raise ConfigError('second_stage_box_predictor.%s is not supported: only '
                      'mask_rcnn_box_predictor is supported for faster_rcnn models.' % kind)
  config = box_predictor_config.mask_rcnn_box_predictor
  _check_mask_rcnn_config(config)
  conv_hyperparams = None
  if config.HasField('conv_hyperparams'):
    conv_hyperparams = hyperparams_fn(config.conv_hyperparams)
  return build_mask_rcnn_keras_box_predictor(
      is_training=is_training,
      num_classes=num_classes,
      add_background_class=add_background_class,
      fc_hyperparams=hyperparams_fn(config.fc_hyperparams),
      freeze_batchnorm=freeze_batchnorm,
      use_dropout=config.use_dropout,
      dropout_keep_prob=config.dropout_keep_probability,
      box_code_size=config.box_code_size,
      share_box_across_classes=config.share_box_across_classes,
      predict_instance_masks=config.predict_instance_masks,
      conv_hyperparams=conv_hyperparams,
      mask_height=config.mask_height,
      mask_width=config.mask_width,
      mask_prediction_num_conv_layers=config.mask_prediction_num_conv_layers,
      mask_prediction_conv_depth=config.mask_prediction_conv_depth,
      masks_are_class_agnostic=config.masks_are_class_agnostic,
      convolve_then_upsample_masks=config.convolve_then_upsample_masks)
