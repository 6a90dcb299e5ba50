"""Builds post-processing callables from a `PostProcessing` proto (matches the TF OD API's
`builders/post_processing_builder.py`).

`build(post_processing_config)` -> (non_max_suppressor_fn, score_converter_fn):
* non_max_suppressor_fn: functools.partial of
  `post_processing.batch_multiclass_non_max_suppression` with the thresholds and options of
  `batch_non_max_suppression`; callers pass boxes, scores and clip_window / masks / ... .
* score_converter_fn(logits): logits * (1 / logit_scale), then identity / sigmoid / softmax
  (`score_converter`), named '<op>_with_logit_scale' as in the TF OD API.
"""

import functools

import tensorflow as tf

from object_detection.core import post_processing
from object_detection.protos import post_processing_pb2
from object_detection.utils.config_validation import ConfigError


def build(post_processing_config):
  """Builds (non_max_suppressor_fn, score_converter_fn).

  Args:
    post_processing_config: post_processing_pb2.PostProcessing.

  Returns:
    non_max_suppressor_fn: callable(boxes, scores, clip_window=..., ...) returning
      (nmsed_boxes, nmsed_scores, nmsed_classes, nmsed_masks, nmsed_additional_fields,
      num_detections); see post_processing.batch_multiclass_non_max_suppression.
    score_converter_fn: callable(logits) -> float32 scores, same shape.

  Raises:
    ConfigError: not a PostProcessing proto; iou_threshold outside [0, 1];
      max_detections_per_class > max_total_detections; negative soft_nms_sigma;
      use_combined_nms with use_class_agnostic_nms; logit_scale == 0; calibration_config set
      (score calibration is not implemented in this project).
  """
  if not isinstance(post_processing_config, post_processing_pb2.PostProcessing):
    raise ValueError('post_processing_config must be a post_processing_pb2.PostProcessing '
                     '(got %s).' % type(post_processing_config).__name__)
  non_max_suppressor_fn = _build_non_max_suppressor(
      post_processing_config.batch_non_max_suppression)
  score_converter_fn = _build_score_converter(post_processing_config.score_converter,
                                              post_processing_config.logit_scale)
  if post_processing_config.HasField('calibration_config'):
    raise ConfigError('PostProcessing.calibration_config (e.g. second_stage_post_processing.'
                      'calibration_config) is not supported; remove it.')
  return non_max_suppressor_fn, score_converter_fn


def _build_non_max_suppressor(nms_config):
  """functools.partial of batch_multiclass_non_max_suppression from a BatchNonMaxSuppression."""
  field = 'batch_non_max_suppression'
  if nms_config.iou_threshold < 0 or nms_config.iou_threshold > 1.0:
    raise ConfigError('%s.iou_threshold must be in [0, 1] (got %g).'
                      % (field, nms_config.iou_threshold))
  if nms_config.max_detections_per_class > nms_config.max_total_detections:
    raise ConfigError('%s.max_detections_per_class (%d) must be <= max_total_detections (%d).'
                      % (field, nms_config.max_detections_per_class,
                        nms_config.max_total_detections))
  if nms_config.soft_nms_sigma < 0.0:
    raise ConfigError('%s.soft_nms_sigma must be >= 0 (got %g).'
                      % (field, nms_config.soft_nms_sigma))
  if nms_config.use_combined_nms and nms_config.use_class_agnostic_nms:
    raise ConfigError('%s: use_combined_nms does not support use_class_agnostic_nms; set one '
                      'of them false.' % field)
  return functools.partial(
      post_processing.batch_multiclass_non_max_suppression,
      score_thresh=nms_config.score_threshold,
      iou_thresh=nms_config.iou_threshold,
      max_size_per_class=nms_config.max_detections_per_class,
      max_total_size=nms_config.max_total_detections,
      use_static_shapes=nms_config.use_static_shapes,
      use_class_agnostic_nms=nms_config.use_class_agnostic_nms,
      max_classes_per_detection=nms_config.max_classes_per_detection,
      soft_nms_sigma=nms_config.soft_nms_sigma,
      use_partitioned_nms=nms_config.use_partitioned_nms,
      use_combined_nms=nms_config.use_combined_nms,
      change_coordinate_frame=nms_config.change_coordinate_frame,
      use_hard_nms=nms_config.use_hard_nms,
      use_cpu_nms=nms_config.use_cpu_nms)


def _score_converter_fn_with_logit_scale(convert, convert_name, logit_scale):
  if logit_scale == 0:
    raise ConfigError('PostProcessing.logit_scale must be nonzero (got 0); unset it for 1.0.')

  def score_converter_fn(logits):
    scaled_logits = tf.multiply(logits, 1.0 / logit_scale, name='scale_logits')
    return convert(scaled_logits, name='convert_scores')

  score_converter_fn.__name__ = '%s_with_logit_scale' % convert_name
  return score_converter_fn


def _build_score_converter(score_converter_config, logit_scale):
  """Score converter for PostProcessing.score_converter (IDENTITY, SIGMOID or SOFTMAX)."""
  if score_converter_config == post_processing_pb2.PostProcessing.IDENTITY:
    return _score_converter_fn_with_logit_scale(tf.identity, 'identity', logit_scale)
  if score_converter_config == post_processing_pb2.PostProcessing.SIGMOID:
    return _score_converter_fn_with_logit_scale(tf.sigmoid, 'sigmoid', logit_scale)
  if score_converter_config == post_processing_pb2.PostProcessing.SOFTMAX:
    return _score_converter_fn_with_logit_scale(tf.nn.softmax, 'softmax', logit_scale)
  raise ConfigError('PostProcessing.score_converter %r is unknown; use IDENTITY, SIGMOID or '
                    'SOFTMAX.' % (score_converter_config,))
