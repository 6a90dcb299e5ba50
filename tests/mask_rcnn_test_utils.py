"""Test helpers for the Mask R-CNN model tests: a tiny registered feature extractor, tiny models built
through the real model builder, a small Mask R-CNN config text and mask pasting / IoU utilities."""

import numpy as np
import tensorflow as tf
import tf_keras
from google.protobuf import text_format

from object_detection.builders import model_builder
from object_detection.meta_architectures import faster_rcnn_feature_extractor
from object_detection.models import feature_extractor_registry
from object_detection.protos import model_pb2


class TinyExtractor(faster_rcnn_feature_extractor.FasterRCNNKerasFeatureExtractor):
  """Test-only extractor: 3 stride-2 conv pairs (stride 8, `depth` channels) + 2 box classifier convs."""

  def __init__(self, is_training, first_stage_features_stride=8, batch_norm_trainable=False,
               depth=32, **unused_kwargs):
    super().__init__(is_training, first_stage_features_stride, batch_norm_trainable)
    self._depth = depth

  def preprocess(self, resized_inputs):
    return resized_inputs / 127.5 - 1.0

  def _backbone(self):
    if self.classification_backbone is None:
      inputs = tf_keras.Input([None, None, 3])
      x = inputs
      for i, d in enumerate([self._depth // 2, self._depth, self._depth]):
        x = tf_keras.layers.Conv2D(d, 3, 2, padding='same', activation='relu', name='c%d' % i)(x)
        x = tf_keras.layers.Conv2D(d, 3, 1, padding='same', activation='relu', name='c%d_b' % i)(x)
      self.classification_backbone = tf_keras.Model(inputs, x, name='tiny_backbone')
    return self.classification_backbone

  def get_proposal_feature_extractor_model(self, name=None):
    return self._backbone()

  def get_box_classifier_feature_extractor_model(self, name=None):
    return tf_keras.Sequential([
        tf_keras.layers.Conv2D(self._depth * 2, 3, padding='same', activation='relu'),
        tf_keras.layers.Conv2D(self._depth * 2, 3, padding='same', activation='relu')], name=name)


def _tiny_extractor(depth):
  def factory(*args, **kwargs):
    return TinyExtractor(*args, depth=depth, **kwargs)
  return factory


for _depth in (32, 48):
  feature_extractor_registry.register('test_tiny_extractor_%d' % _depth, _tiny_extractor(_depth))


_HYPERPARAMS = """
  op: %s
  regularizer { l2_regularizer { weight: %g } }
  initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } }
"""

_MODEL_TEMPLATE = """
faster_rcnn {
  num_classes: %(num_classes)d
  number_of_stages: %(stages)d
  image_resizer { %(resizer)s }
  feature_extractor { type: '%(type)s' first_stage_features_stride: %(stride)d %(extractor_extra)s }
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
      masks_are_class_agnostic: %(agnostic)s
      mask_height: %(mask_size)d
      mask_width: %(mask_size)d
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

TINY_ANCHORS = ('grid_anchor_generator { scales: [0.5, 1.0, 2.0] aspect_ratios: [0.5, 1.0, 2.0] '
                'height: 48 width: 48 height_stride: 8 width_stride: 8 }')


def mask_rcnn_config_text(extractor, anchors, num_classes=3, number_of_stages=3, size=64,
                          max_proposals=16, second_stage_batch_size=8, l2_weight=1e-4,
                          extractor_extra='', extra='', stride=16, resizer=None, mask_size=14,
                          masks_are_class_agnostic=False):
  """A small TF OD API `DetectionModel` text: Mask R-CNN (stages 3) or Faster R-CNN (stages 2).

  `anchors` is the body of `first_stage_anchor_generator`; `extractor_extra` goes inside
  `feature_extractor` (e.g. an `fpn { ... }`), `extra` inside `faster_rcnn`; `resizer` replaces the
  default `fixed_shape_resizer` of `size` x `size`.
  """
  return _MODEL_TEMPLATE % dict(
      num_classes=num_classes, stages=number_of_stages, type=extractor, stride=stride,
      resizer=resizer or 'fixed_shape_resizer { height: %d width: %d }' % (size, size),
      extractor_extra=extractor_extra, anchors=anchors, max_proposals=max_proposals,
      second_stage_batch_size=second_stage_batch_size, conv=_HYPERPARAMS % ('CONV', l2_weight),
      fc=_HYPERPARAMS % ('FC', l2_weight), masks='true' if number_of_stages == 3 else 'false',
      agnostic='true' if masks_are_class_agnostic else 'false', mask_size=mask_size, extra=extra)


def tiny_model_config(number_of_stages=3, num_classes=3, masks_are_class_agnostic=False,
                      max_proposals=32, second_stage_batch_size=16, depth=32, mask_size=14, size=64,
                      resizer=None, extra=''):
  """The `DetectionModel` proto of a tiny Mask R-CNN on the test extractor (stride 8)."""
  text = mask_rcnn_config_text(
      'test_tiny_extractor_%d' % depth, TINY_ANCHORS, num_classes=num_classes,
      number_of_stages=number_of_stages, size=size, max_proposals=max_proposals,
      second_stage_batch_size=second_stage_batch_size, stride=8, resizer=resizer,
      mask_size=mask_size, masks_are_class_agnostic=masks_are_class_agnostic, extra=extra)
  return text_format.Parse(text, model_pb2.DetectionModel())


def tiny_model(number_of_stages=3, is_training=True, **kwargs):
  """A FasterRCNNMetaArch with the tiny extractor, built by model_builder (see tiny_model_config)."""
  return model_builder.build(tiny_model_config(number_of_stages, **kwargs), is_training=is_training)


def build_variables(model, images):
  """Creates a (training or inference) model's variables with one inference-mode pass, as the TF OD
  API's `_ensure_model_is_built` does."""
  was_training = model._is_training  # pylint: disable=protected-access
  model._is_training = False  # pylint: disable=protected-access
  try:
    preprocessed, shapes = model.preprocess(images)
    model.predict(preprocessed, shapes)
  finally:
    model._is_training = was_training  # pylint: disable=protected-access


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


def assert_detections_are_consistent(det, num_classes, max_detections, min_detections=1):
  """Value checks of a model's postprocess output that hold for any weights (golden values are in
  tests/test_tfod_*.py): padding, box order and range, score order, 0-based classes, scores equal to
  the detection_multiclass_scores column of their class. With score_threshold 0 every image has a
  detection (min_detections=1) unless its boxes are degenerate and clipped away."""
  boxes = det['detection_boxes'].numpy()
  scores = det['detection_scores'].numpy()
  classes = det['detection_classes'].numpy()
  num = det['num_detections'].numpy()
  assert num.shape == (boxes.shape[0],) and np.all(num == np.round(num))
  for i, n in enumerate(num.astype(int)):
    assert min_detections <= n <= max_detections, (n, scores[i])
    # Padded rows are all zero; detections have a positive (softmax / sigmoid) score.
    assert np.count_nonzero(scores[i] > 0) == n, scores[i]
    assert not boxes[i, n:].any() and not scores[i, n:].any() and not classes[i, n:].any()
    b = boxes[i, :n]
    assert np.all((b >= 0) & (b <= 1)), b  # clipped to the image window, normalized
    assert np.all(b[:, 0] <= b[:, 2]) and np.all(b[:, 1] <= b[:, 3]), b
    assert np.all(np.diff(scores[i, :n]) <= 1e-6), scores[i]  # sorted, best first
    c = classes[i, :n]
    assert np.all(c == np.round(c)) and np.all((c >= 0) & (c < num_classes)), c  # 0-based
    if 'detection_multiclass_scores' in det:
      # The score of a detection is its class's column (column 0 is the background); the row
      # is the softmax over background + classes.
      multiclass = det['detection_multiclass_scores'].numpy()[i, :n]
      np.testing.assert_allclose(multiclass[np.arange(n), c.astype(int) + 1], scores[i, :n],
                                 rtol=1e-5)
      np.testing.assert_allclose(multiclass.sum(axis=1), 1.0, rtol=1e-5)
