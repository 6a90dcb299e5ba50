"""Test helpers for the Mask R-CNN model tests: a tiny registered feature extractor, a tiny meta-arch
factory (no proto needed), a small Mask R-CNN config text and mask pasting / IoU utilities."""

import types

import numpy as np
import tensorflow as tf
import tf_keras

from object_detection.builders import anchor_generator_builder
from object_detection.builders import hyperparams_builder
from object_detection.meta_architectures import faster_rcnn_meta_arch
from object_detection.models import feature_extractor_registry
from object_detection.predictors import mask_rcnn_box_predictor


class TinyExtractor(object):
  """3 stride-2 convs (level '3', stride 8) + a 2-conv box classifier. Test-only."""

  is_fpn = False
  levels = ['3']

  def __init__(self, feature_extractor_config=None, is_training=True, first_stage_features_stride=8,
               batch_norm_trainable=False, conv_hyperparams=None, depth=32, **unused):
    inp = tf_keras.Input([None, None, 3])
    x = inp
    for i, d in enumerate([depth // 2, depth, depth]):
      x = tf_keras.layers.Conv2D(d, 3, 2, padding='same', activation='relu', name='c%d' % i)(x)
      x = tf_keras.layers.Conv2D(d, 3, 1, padding='same', activation='relu', name='c%d_b' % i)(x)
    self.backbone = tf_keras.Model(inp, {'3': x}, name='tiny_backbone')
    self.backbone.output_specs = {'3': x.shape}
    self.box_classifier_layers = tf_keras.Sequential([
        tf_keras.layers.Conv2D(depth * 2, 3, padding='same', activation='relu'),
        tf_keras.layers.Conv2D(depth * 2, 3, padding='same', activation='relu')], name='tiny_box_classifier')

  def preprocess(self, images):
    return images / 127.5 - 1.0

  def classification_checkpoint_objects(self):
    return {'backbone': self.backbone}


feature_extractor_registry.register('test_tiny_extractor', TinyExtractor)


_HYPERPARAMS = """
  op: %s
  regularizer { l2_regularizer { weight: %g } }
  initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } }
"""

_MODEL_TEMPLATE = """
faster_rcnn {
  num_classes: %(num_classes)d
  number_of_stages: %(stages)d
  image_resizer { fixed_shape_resizer { height: %(size)d width: %(size)d } }
  feature_extractor { type: '%(type)s' first_stage_features_stride: 16 %(extractor_extra)s }
  first_stage_anchor_generator { %(anchors)s }
  first_stage_box_predictor_conv_hyperparams { %(conv)s }
  first_stage_nms_score_threshold: 0.0
  first_stage_nms_iou_threshold: 0.7
  first_stage_max_proposals: %(max_proposals)d
  first_stage_localization_loss_weight: 2.0
  first_stage_objectness_loss_weight: 1.0
  initial_crop_size: 14
  maxpool_kernel_size: 2
  maxpool_stride: 2
  second_stage_batch_size: %(second_stage_batch_size)d
  second_stage_box_predictor {
    mask_rcnn_box_predictor {
      fc_hyperparams { %(fc)s }
      conv_hyperparams { %(conv)s }
      predict_instance_masks: %(masks)s
      mask_height: 14
      mask_width: 14
      mask_prediction_conv_depth: 0
      mask_prediction_num_conv_layers: 2
    }
  }
  second_stage_post_processing {
    batch_non_max_suppression { score_threshold: 0.0 iou_threshold: 0.6 max_detections_per_class: 10
                                max_total_detections: 10 }
    score_converter: SOFTMAX
  }
  second_stage_localization_loss_weight: 2.0
  second_stage_classification_loss_weight: 1.0
  second_stage_mask_prediction_loss_weight: 4.0
  %(extra)s
}
"""


def mask_rcnn_config_text(extractor, anchors, num_classes=3, number_of_stages=3, size=64,
                          max_proposals=16, second_stage_batch_size=8, l2_weight=1e-4,
                          extractor_extra='', extra=''):
  """A small TF OD API `DetectionModel` text: Mask R-CNN (stages 3) or Faster R-CNN (stages 2).

  `anchors` is the body of `first_stage_anchor_generator`; `extractor_extra` goes inside
  `feature_extractor` (e.g. an `fpn { ... }`), `extra` inside `faster_rcnn`.
  """
  return _MODEL_TEMPLATE % dict(
      num_classes=num_classes, stages=number_of_stages, size=size, type=extractor,
      extractor_extra=extractor_extra, anchors=anchors, max_proposals=max_proposals,
      second_stage_batch_size=second_stage_batch_size, conv=_HYPERPARAMS % ('CONV', l2_weight),
      fc=_HYPERPARAMS % ('FC', l2_weight), masks='true' if number_of_stages == 3 else 'false',
      extra=extra)


class _Cfg(types.SimpleNamespace):

  def HasField(self, unused_field):  # pylint: disable=invalid-name
    return False


class _GridAnchors(object):
  grid_anchor_generator = types.SimpleNamespace(
      scales=[0.5, 1.0, 2.0], aspect_ratios=[0.5, 1.0, 2.0], height=48, width=48, height_stride=8,
      width_stride=8, height_offset=0, width_offset=0)

  def WhichOneof(self, unused):  # pylint: disable=invalid-name
    return 'grid_anchor_generator'


def tiny_model(number_of_stages=3, is_training=True, num_classes=3, masks_are_class_agnostic=False,
               max_proposals=32, second_stage_batch_size=16, depth=32, mask_size=14):
  """A FasterRCNNMetaArch with the tiny extractor, no image resizer (inputs used as given)."""
  predictor_config = _Cfg(
      use_dropout=False, dropout_keep_probability=1.0, share_box_across_classes=False,
      predict_instance_masks=number_of_stages == 3, masks_are_class_agnostic=masks_are_class_agnostic,
      mask_height=mask_size, mask_width=mask_size, mask_prediction_conv_depth=0,
      mask_prediction_num_conv_layers=2, convolve_then_upsample_masks=False)
  return faster_rcnn_meta_arch.FasterRCNNMetaArch(
      is_training=is_training, num_classes=num_classes, image_resizer_fn=None,
      feature_extractor=TinyExtractor(depth=depth), number_of_stages=number_of_stages,
      anchor_generator=anchor_generator_builder.build(_GridAnchors()),
      rpn_conv_hyperparams=hyperparams_builder.KerasLayerHyperparams(None), rpn_kernel_size=3,
      rpn_depth=depth, rpn_minibatch_size=64, rpn_positive_balance_fraction=0.5,
      rpn_nms_score_threshold=0.0, rpn_nms_iou_threshold=0.7, rpn_max_proposals=max_proposals,
      rpn_localization_loss_weight=1.0, rpn_objectness_loss_weight=1.0, initial_crop_size=14,
      maxpool_kernel_size=2, maxpool_stride=2,
      box_predictor=mask_rcnn_box_predictor.MaskRCNNBoxPredictor(predictor_config, num_classes,
                                                                 number_of_stages == 3),
      second_stage_batch_size=second_stage_batch_size, second_stage_balance_fraction=0.25,
      nms_config=dict(score_threshold=0.05, iou_threshold=0.5, max_detections_per_class=10,
                      max_total_detections=10),
      score_converter_fn=tf.nn.softmax, localization_loss_weight=2.0, classification_loss_weight=1.0,
      mask_loss_weight=1.0)


def paste_mask(box, mask, height, width, threshold=0.5):
  """Pastes a box-relative probability mask [h, w] into a binary [height, width] image mask.

  box: normalized [ymin, xmin, ymax, xmax].
  """
  y0, x0, y1, x1 = [int(round(v)) for v in (box[0] * height, box[1] * width, box[2] * height,
                                             box[3] * width)]
  y0, x0 = max(y0, 0), max(x0, 0)
  y1, x1 = min(max(y1, y0 + 1), height), min(max(x1, x0 + 1), width)
  out = np.zeros([height, width], bool)
  if y1 <= y0 or x1 <= x0:
    return out
  resized = tf.image.resize(mask[:, :, None], [y1 - y0, x1 - x0]).numpy()[:, :, 0]
  out[y0:y1, x0:x1] = resized >= threshold
  return out


def mask_iou(a, b):
  union = np.logical_or(a, b).sum()
  return float(np.logical_and(a, b).sum()) / union if union else 0.0
