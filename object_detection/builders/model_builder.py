"""Builds a DetectionModel from a `DetectionModel` proto (TF OD API `builders/model_builder.py`, TF2 path).

`build(model_config, is_training, add_summaries=True)` -> `FasterRCNNMetaArch` for `model { faster_rcnn }`
(Faster R-CNN for number_of_stages 1/2, Mask R-CNN for 3). Every component is built from its own config
message by its own builder, as the TF OD API's `_build_faster_rcnn_model` does, so a config builds the TF
OD API's network with the same checkpoint keys:

  feature_extractor             -> feature_extractor_registry (the TF OD API's Keras extractors + project
                                   extractors), with conv_hyperparams / fpn fields as the TF OD API passes
  first_stage_anchor_generator  -> anchor_generator_builder
  (RPN / detection targets)     -> target_assigner.create_target_assigner('FasterRCNN', 'proposal' |
                                   'detection', use_matmul_gather_in_matcher)
  samplers                      -> BalancedPositiveNegativeSampler(first_stage_positive_balance_fraction |
                                   second_stage_balance_fraction, is_static=use_static_balanced_label_sampler
                                   and use_static_shapes)
  first_stage_nms_*             -> post_processing.batch_multiclass_non_max_suppression
  second_stage_box_predictor    -> box_predictor_builder.build_keras
  second_stage_post_processing  -> post_processing_builder
  second_stage_classification_loss, hard_example_miner -> losses_builder
  use_matmul_crop_and_resize    -> spatial_transform_ops.multilevel_(matmul|native)_crop_and_resize

Variables are created by the first call, e.g. `model(tf.zeros([1, H, W, 3]))`.

Raises:
  ConfigError: a meta-architecture other than faster_rcnn (ssd, center_net), `context_config` (Context
    R-CNN), an unknown feature extractor, an IoU threshold outside [0, 1], second_stage_batch_size >
    first_stage_max_proposals when training, or an unsupported component (each message names the field).
"""

import functools
import inspect

from object_detection.builders import anchor_generator_builder
from object_detection.builders import box_predictor_builder
from object_detection.builders import hyperparams_builder
from object_detection.builders import image_resizer_builder
from object_detection.builders import losses_builder
from object_detection.builders import post_processing_builder
from object_detection.core import balanced_positive_negative_sampler as sampler
from object_detection.core import post_processing
from object_detection.core import target_assigner
from object_detection.meta_architectures import faster_rcnn_meta_arch
from object_detection.meta_architectures import semantic_segmentation_meta_arch
from object_detection.predictors.heads import fcn_head
from object_detection.models import feature_extractor_registry
from object_detection.utils import spatial_transform_ops as spatial_ops
from object_detection.utils.config_validation import ConfigError


def build(model_config, is_training, add_summaries=True):
  """model_config: `DetectionModel` proto; is_training: bool. Returns a DetectionModel."""
  kind = model_config.WhichOneof('model')
  if kind == 'semantic_segmentation':
    return _build_semantic_segmentation_model(model_config.semantic_segmentation, is_training)
  if kind != 'faster_rcnn':
    raise ConfigError(
        'model.%s is not supported by this pipeline: only `faster_rcnn` (Faster R-CNN, and Mask R-CNN with '
        'number_of_stages: 3 and a mask_rcnn_box_predictor) and the project\'s semantic_segmentation '
        'can be built. Convert the config to a faster_rcnn model.' % kind)
  return _build_faster_rcnn_model(model_config.faster_rcnn, is_training, add_summaries)


def _build_faster_rcnn_keras_feature_extractor(feature_extractor_config, is_training,
                                               inplace_batchnorm_update=False):
  """The extractor object for `feature_extractor` (TF OD API argument passing)."""
  if inplace_batchnorm_update:
    raise ConfigError('faster_rcnn.inplace_batchnorm_update is not supported (as in the TF OD API TF2 '
                      'models); remove it.')
  extractor_class = feature_extractor_registry.get(feature_extractor_config.type)
  kwargs = {}
  if feature_extractor_config.HasField('conv_hyperparams'):
    kwargs['conv_hyperparams'] = hyperparams_builder.KerasLayerHyperparams(
        feature_extractor_config.conv_hyperparams)
    kwargs['override_base_feature_extractor_hyperparams'] = (
        feature_extractor_config.override_base_feature_extractor_hyperparams)
  if feature_extractor_config.HasField('fpn'):
    kwargs['fpn_min_level'] = feature_extractor_config.fpn.min_level
    kwargs['fpn_max_level'] = feature_extractor_config.fpn.max_level
    kwargs['additional_layer_depth'] = feature_extractor_config.fpn.additional_layer_depth
  accepted = _keyword_arguments(extractor_class)
  unused = sorted(k for k in kwargs if accepted is not None and k not in accepted)
  if unused:
    # The TF OD API fails here with a TypeError deep in the builder.
    fields = sorted({'feature_extractor.fpn' if k.startswith(('fpn_', 'additional_layer'))
                     else 'feature_extractor.conv_hyperparams' for k in unused})
    raise ConfigError('%s is not used by feature_extractor.type %r (as in the TF OD API, only FPN '
                      'extractors take it); remove it.' % (' and '.join(fields),
                                                           feature_extractor_config.type))
  return extractor_class(is_training, feature_extractor_config.first_stage_features_stride,
                         feature_extractor_config.batch_norm_trainable, **kwargs)


def _keyword_arguments(extractor_class):
  """Names the constructor accepts, or None when it takes **kwargs."""
  parameters = inspect.signature(extractor_class).parameters.values()
  if any(p.kind == p.VAR_KEYWORD for p in parameters):
    return None
  return {p.name for p in parameters}


def _mask_head_has_batch_norm(box_predictor_config):
  if box_predictor_config.WhichOneof('box_predictor_oneof') != 'mask_rcnn_box_predictor':
    return False
  conv = box_predictor_config.mask_rcnn_box_predictor.conv_hyperparams
  return conv.WhichOneof('normalizer_oneof') in ('batch_norm', 'sync_batch_norm')


def _build_faster_rcnn_model(frcnn_config, is_training, add_summaries):
  """FasterRCNNMetaArch from a `FasterRcnn` message (TF OD API `_build_faster_rcnn_model`)."""
  if frcnn_config.HasField('context_config'):
    raise ConfigError('faster_rcnn.context_config (Context R-CNN) is not supported; remove it.')
  num_classes = frcnn_config.num_classes
  image_resizer_fn = image_resizer_builder.build(frcnn_config.image_resizer)
  feature_extractor = _build_faster_rcnn_keras_feature_extractor(
      frcnn_config.feature_extractor, is_training,
      inplace_batchnorm_update=frcnn_config.inplace_batchnorm_update)

  first_stage_anchor_generator = anchor_generator_builder.build(frcnn_config.first_stage_anchor_generator)
  first_stage_target_assigner = target_assigner.create_target_assigner(
      'FasterRCNN', 'proposal', use_matmul_gather=frcnn_config.use_matmul_gather_in_matcher)
  first_stage_box_predictor_hyperparams = hyperparams_builder.KerasLayerHyperparams(
      frcnn_config.first_stage_box_predictor_conv_hyperparams)
  use_static_shapes = frcnn_config.use_static_shapes and (
      frcnn_config.use_static_shapes_for_eval or is_training)
  is_static_sampler = frcnn_config.use_static_balanced_label_sampler and use_static_shapes
  first_stage_sampler = sampler.BalancedPositiveNegativeSampler(
      positive_fraction=frcnn_config.first_stage_positive_balance_fraction, is_static=is_static_sampler)
  first_stage_max_proposals = frcnn_config.first_stage_max_proposals
  if not 0.0 <= frcnn_config.first_stage_nms_iou_threshold <= 1.0:
    raise ConfigError('faster_rcnn.first_stage_nms_iou_threshold must be in [0, 1]; got %g.'
                      % frcnn_config.first_stage_nms_iou_threshold)
  if is_training and frcnn_config.second_stage_batch_size > first_stage_max_proposals:
    raise ConfigError('faster_rcnn.second_stage_batch_size (%d) must not exceed first_stage_max_proposals '
                      '(%d).' % (frcnn_config.second_stage_batch_size, first_stage_max_proposals))
  first_stage_nms_fn = functools.partial(
      post_processing.batch_multiclass_non_max_suppression,
      score_thresh=frcnn_config.first_stage_nms_score_threshold,
      iou_thresh=frcnn_config.first_stage_nms_iou_threshold,
      max_size_per_class=first_stage_max_proposals,
      max_total_size=first_stage_max_proposals,
      use_static_shapes=use_static_shapes,
      use_partitioned_nms=frcnn_config.use_partitioned_nms_in_first_stage,
      use_combined_nms=frcnn_config.use_combined_nms_in_first_stage)

  second_stage_target_assigner = target_assigner.create_target_assigner(
      'FasterRCNN', 'detection', use_matmul_gather=frcnn_config.use_matmul_gather_in_matcher)
  second_stage_box_predictor = box_predictor_builder.build_keras(
      hyperparams_builder.KerasLayerHyperparams,
      freeze_batchnorm=False,
      inplace_batchnorm_update=False,
      num_predictions_per_location_list=[1],
      box_predictor_config=frcnn_config.second_stage_box_predictor,
      is_training=is_training,
      num_classes=num_classes)
  second_stage_sampler = sampler.BalancedPositiveNegativeSampler(
      positive_fraction=frcnn_config.second_stage_balance_fraction, is_static=is_static_sampler)
  second_stage_nms_fn, second_stage_score_conversion_fn = post_processing_builder.build(
      frcnn_config.second_stage_post_processing)
  second_stage_classification_loss = losses_builder.build_faster_rcnn_classification_loss(
      frcnn_config.second_stage_classification_loss)
  hard_example_miner = None
  if frcnn_config.HasField('hard_example_miner'):
    hard_example_miner = losses_builder.build_hard_example_miner(
        frcnn_config.hard_example_miner, frcnn_config.second_stage_classification_loss_weight,
        frcnn_config.second_stage_localization_loss_weight)
  crop_and_resize_fn = (spatial_ops.multilevel_matmul_crop_and_resize
                        if frcnn_config.use_matmul_crop_and_resize
                        else spatial_ops.multilevel_native_crop_and_resize)

  return faster_rcnn_meta_arch.FasterRCNNMetaArch(
      is_training=is_training,
      num_classes=num_classes,
      image_resizer_fn=image_resizer_fn,
      feature_extractor=feature_extractor,
      number_of_stages=frcnn_config.number_of_stages,
      first_stage_anchor_generator=first_stage_anchor_generator,
      first_stage_target_assigner=first_stage_target_assigner,
      first_stage_atrous_rate=frcnn_config.first_stage_atrous_rate,
      first_stage_box_predictor_arg_scope_fn=first_stage_box_predictor_hyperparams,
      first_stage_box_predictor_kernel_size=frcnn_config.first_stage_box_predictor_kernel_size,
      first_stage_box_predictor_depth=frcnn_config.first_stage_box_predictor_depth,
      first_stage_minibatch_size=frcnn_config.first_stage_minibatch_size,
      first_stage_sampler=first_stage_sampler,
      first_stage_non_max_suppression_fn=first_stage_nms_fn,
      first_stage_max_proposals=first_stage_max_proposals,
      first_stage_localization_loss_weight=frcnn_config.first_stage_localization_loss_weight,
      first_stage_objectness_loss_weight=frcnn_config.first_stage_objectness_loss_weight,
      crop_and_resize_fn=crop_and_resize_fn,
      initial_crop_size=frcnn_config.initial_crop_size,
      maxpool_kernel_size=frcnn_config.maxpool_kernel_size,
      maxpool_stride=frcnn_config.maxpool_stride,
      second_stage_target_assigner=second_stage_target_assigner,
      second_stage_mask_rcnn_box_predictor=second_stage_box_predictor,
      second_stage_batch_size=frcnn_config.second_stage_batch_size,
      second_stage_sampler=second_stage_sampler,
      second_stage_non_max_suppression_fn=second_stage_nms_fn,
      second_stage_score_conversion_fn=second_stage_score_conversion_fn,
      second_stage_localization_loss_weight=frcnn_config.second_stage_localization_loss_weight,
      second_stage_classification_loss_weight=frcnn_config.second_stage_classification_loss_weight,
      second_stage_classification_loss=second_stage_classification_loss,
      second_stage_mask_prediction_loss_weight=frcnn_config.second_stage_mask_prediction_loss_weight,
      hard_example_miner=hard_example_miner,
      add_summaries=add_summaries,
      clip_anchors_to_image=frcnn_config.clip_anchors_to_image,
      use_static_shapes=use_static_shapes,
      resize_masks=frcnn_config.resize_masks,
      return_raw_detections_during_predict=frcnn_config.return_raw_detections_during_predict,
      output_final_box_features=frcnn_config.output_final_box_features,
      output_final_box_rpn_features=frcnn_config.output_final_box_rpn_features,
      mask_head_features=getattr(frcnn_config, 'mask_head_features', 0),
      crop_detections_in_true_image_frame=getattr(
          frcnn_config, 'crop_detections_in_true_image_frame', False),
      mask_head_is_per_roi=not _mask_head_has_batch_norm(frcnn_config.second_stage_box_predictor))


def _build_semantic_segmentation_model(config, is_training):
  """SemanticSegmentationModel from a `SemanticSegmentation` message (project extension).

  The extractor is built exactly as for faster_rcnn (same registry, arguments and checks); the head
  reads its FPN levels (`fpn` set) or its single feature map.
  """
  extractor_config = config.feature_extractor
  feature_extractor = _build_faster_rcnn_keras_feature_extractor(extractor_config, is_training)
  head_config = config.fcn_head
  fusion = {head_config.RESIZE_CONCAT: fcn_head.RESIZE_CONCAT,
            head_config.FINEST_LEVEL: fcn_head.FINEST}[head_config.feature_fusion]
  head = fcn_head.FcnHead(
      num_output_classes=config.num_classes + 1,
      conv_hyperparams=hyperparams_builder.KerasLayerHyperparams(head_config.conv_hyperparams),
      num_convs=head_config.num_convs, depth=head_config.depth,
      kernel_size=head_config.kernel_size, dropout_rate=head_config.dropout_rate, fusion=fusion,
      is_training=is_training, name='FcnHead')
  # FPN extractors: the finest level they return (their own default without an `fpn` block).
  fpn_min_level = getattr(feature_extractor, '_fpn_min_level', None)
  if fpn_min_level is not None:
    feature_stride = 2 ** int(fpn_min_level)
  else:
    feature_stride = extractor_config.first_stage_features_stride
  loss_config = config.loss
  return semantic_segmentation_meta_arch.SemanticSegmentationModel(
      is_training=is_training, num_classes=config.num_classes,
      image_resizer_fn=image_resizer_builder.build(config.image_resizer),
      feature_extractor=feature_extractor, fcn_head=head, feature_stride=feature_stride,
      upsampling='nearest' if head_config.upsampling == head_config.NEAREST else 'bilinear',
      ignore_label=config.ignore_label,
      cross_entropy_weight=loss_config.cross_entropy_weight,
      class_weights=list(loss_config.class_weights) or None,
      dice_weight=loss_config.dice_weight)
