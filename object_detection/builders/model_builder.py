"""Builds a DetectionModel from a `DetectionModel` proto (TF OD API model.proto / faster_rcnn.proto).

`build(model_config, is_training, add_summaries=True)` -> FasterRCNNMetaArch (Faster R-CNN for
number_of_stages 1/2, Mask R-CNN for 3). Only the `faster_rcnn` meta-architecture is supported; `ssd` and
`center_net` raise ValueError. Every config field the model honours is listed in docs/model.md.

Variables are created on the first call: `model(tf.zeros([1, H, W, 3]))` (preprocess -> predict ->
postprocess) builds them, which checkpoint restore needs.

Raises:
  ValueError: unsupported meta-architecture, unknown `feature_extractor.type`, unsupported
    `second_stage_classification_loss`, `hard_example_miner` set, `number_of_stages` not in {1, 2, 3},
    stage 3 without `mask_rcnn_box_predictor`.
"""

from absl import logging

from object_detection.builders import anchor_generator_builder
from object_detection.builders import hyperparams_builder
from object_detection.builders import post_processing_builder
from object_detection.meta_architectures import faster_rcnn_meta_arch
from object_detection.models import feature_extractor_registry
from object_detection.predictors import mask_rcnn_box_predictor


def build(model_config, is_training, add_summaries=True):
  """model_config: `DetectionModel` proto; is_training: bool. Returns a DetectionModel."""
  kind = model_config.WhichOneof('model')
  if kind != 'faster_rcnn':
    raise ValueError(
        'model.%s is not supported by this pipeline: only `faster_rcnn` (Faster R-CNN, and Mask R-CNN with '
        'number_of_stages: 3 and a mask_rcnn_box_predictor) can be built. Convert the config to a '
        'faster_rcnn model.' % kind)
  return _build_faster_rcnn(model_config.faster_rcnn, is_training, add_summaries)


def _has(msg, field):
  try:
    return msg.HasField(field)
  except ValueError:
    return False


def _build_image_resizer(config):
  from object_detection.builders import image_resizer_builder  # pylint: disable=g-import-not-at-top
  resizer = image_resizer_builder.build(config.image_resizer)

  def resize_fn(image):
    return resizer(image)
  return resize_fn


def _build_feature_extractor(config, is_training):
  fe = config.feature_extractor
  factory = feature_extractor_registry.get(fe.type)
  kwargs = {
      'first_stage_atrous_rate': config.first_stage_atrous_rate,
      'pad_to_multiple': fe.pad_to_multiple,
  }
  if _has(fe, 'fpn'):
    kwargs.update(fpn_min_level=fe.fpn.min_level, fpn_max_level=fe.fpn.max_level,
                  fpn_depth=fe.fpn.additional_layer_depth)
  conv_hyperparams = fe.conv_hyperparams if _has(fe, 'conv_hyperparams') else None
  stride = fe.first_stage_features_stride
  if config.first_stage_atrous_rate > 1 and stride == 16:
    logging.warning('first_stage_atrous_rate %d with first_stage_features_stride 16: using stride 16.',
                    config.first_stage_atrous_rate)
  return factory(fe, is_training, stride, fe.batch_norm_trainable, conv_hyperparams, **kwargs)


_CLASSIFICATION_LOSSES = {'weighted_softmax': 'weighted_softmax', 'weighted_logits_softmax': 'weighted_softmax',
                          'weighted_sigmoid': 'weighted_sigmoid', None: 'weighted_softmax'}


def _build_faster_rcnn(config, is_training, add_summaries):
  if config.number_of_stages not in (1, 2, 3):
    raise ValueError('faster_rcnn.number_of_stages must be 1 (RPN), 2 (Faster R-CNN) or 3 (Mask R-CNN), '
                     'got %d.' % config.number_of_stages)
  if _has(config, 'hard_example_miner'):
    raise ValueError('faster_rcnn.hard_example_miner is not supported; remove it (the balanced '
                     'second_stage_batch_size sampler is used).')
  loss_kind = None
  if _has(config, 'second_stage_classification_loss'):
    loss_kind = config.second_stage_classification_loss.WhichOneof('classification_loss')
  if loss_kind not in _CLASSIFICATION_LOSSES:
    raise ValueError('faster_rcnn.second_stage_classification_loss %r is not supported; use '
                     'weighted_softmax or weighted_sigmoid.' % loss_kind)
  predictor_kind = config.second_stage_box_predictor.WhichOneof('box_predictor_oneof')
  if config.number_of_stages >= 2 and predictor_kind not in ('mask_rcnn_box_predictor', None):
    raise ValueError('faster_rcnn.second_stage_box_predictor.%s is not supported; use '
                     'mask_rcnn_box_predictor.' % predictor_kind)
  box_predictor_config = config.second_stage_box_predictor.mask_rcnn_box_predictor
  if config.number_of_stages == 3 and predictor_kind != 'mask_rcnn_box_predictor':
    raise ValueError('faster_rcnn.number_of_stages: 3 needs second_stage_box_predictor { '
                     'mask_rcnn_box_predictor { predict_instance_masks: true ... } }.')
  extractor = _build_feature_extractor(config, is_training)
  anchor_generator = anchor_generator_builder.build(config.first_stage_anchor_generator)
  rpn_hyperparams = hyperparams_builder.KerasLayerHyperparams(
      config.first_stage_box_predictor_conv_hyperparams
      if _has(config, 'first_stage_box_predictor_conv_hyperparams') else None)
  predictor = mask_rcnn_box_predictor.MaskRCNNBoxPredictor(
      box_predictor_config, config.num_classes, predict_instance_masks=config.number_of_stages >= 3,
      name='SecondStageBoxPredictor')
  nms_config, score_converter_fn = post_processing_builder.build(config.second_stage_post_processing)
  return faster_rcnn_meta_arch.FasterRCNNMetaArch(
      is_training=is_training,
      num_classes=config.num_classes,
      image_resizer_fn=_build_image_resizer(config),
      feature_extractor=extractor,
      number_of_stages=config.number_of_stages,
      anchor_generator=anchor_generator,
      rpn_conv_hyperparams=rpn_hyperparams,
      rpn_kernel_size=config.first_stage_box_predictor_kernel_size,
      rpn_depth=config.first_stage_box_predictor_depth,
      rpn_minibatch_size=config.first_stage_minibatch_size,
      rpn_positive_balance_fraction=config.first_stage_positive_balance_fraction,
      rpn_nms_score_threshold=config.first_stage_nms_score_threshold,
      rpn_nms_iou_threshold=config.first_stage_nms_iou_threshold,
      rpn_max_proposals=config.first_stage_max_proposals,
      rpn_localization_loss_weight=config.first_stage_localization_loss_weight,
      rpn_objectness_loss_weight=config.first_stage_objectness_loss_weight,
      initial_crop_size=config.initial_crop_size,
      maxpool_kernel_size=config.maxpool_kernel_size,
      maxpool_stride=config.maxpool_stride,
      box_predictor=predictor,
      second_stage_batch_size=config.second_stage_batch_size,
      second_stage_balance_fraction=config.second_stage_balance_fraction,
      nms_config=nms_config,
      score_converter_fn=score_converter_fn,
      localization_loss_weight=config.second_stage_localization_loss_weight,
      classification_loss_weight=config.second_stage_classification_loss_weight,
      mask_loss_weight=config.second_stage_mask_prediction_loss_weight,
      classification_loss_type=_CLASSIFICATION_LOSSES[loss_kind],
      pad_to_multiple=config.feature_extractor.pad_to_multiple,
      resize_masks=config.resize_masks,
      add_summaries=add_summaries,
      name='FasterRCNNMetaArch')
