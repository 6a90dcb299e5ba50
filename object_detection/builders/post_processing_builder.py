"""Builds second-stage post-processing from a `PostProcessing` proto (TF OD API post_processing.proto).

`build(post_processing_config)` -> (nms_config dict, score_converter_fn):
  nms_config keys: score_threshold, iou_threshold, max_detections_per_class, max_total_detections (from
  `batch_non_max_suppression`); score_converter_fn: float32 logits [..., K+1] -> scores, applying
  `logit_scale` (logits / logit_scale) then IDENTITY / SIGMOID / SOFTMAX (`score_converter`).
Raises ValueError for unsupported options (use_class_agnostic_nms, soft NMS), naming the field.
"""

import tensorflow as tf

_IDENTITY, _SIGMOID, _SOFTMAX = 0, 1, 2  # PostProcessing.ScoreConverter enum values.


def build(post_processing_config):
  nms = post_processing_config.batch_non_max_suppression
  if getattr(nms, 'use_class_agnostic_nms', False):
    raise ValueError('second_stage_post_processing.batch_non_max_suppression.use_class_agnostic_nms is not '
                     'supported; remove it.')
  if getattr(nms, 'soft_nms_sigma', 0.0):
    raise ValueError('second_stage_post_processing.batch_non_max_suppression.soft_nms_sigma is not '
                     'supported; remove it.')
  nms_config = {
      'score_threshold': float(nms.score_threshold),
      'iou_threshold': float(nms.iou_threshold),
      'max_detections_per_class': int(nms.max_detections_per_class),
      'max_total_detections': int(nms.max_total_detections),
  }
  converter = int(post_processing_config.score_converter)
  logit_scale = float(post_processing_config.logit_scale) or 1.0

  def score_converter_fn(logits):
    logits = logits / logit_scale
    if converter == _SOFTMAX:
      return tf.nn.softmax(logits)
    if converter == _SIGMOID:
      return tf.sigmoid(logits)
    if converter == _IDENTITY:
      return logits
    raise ValueError('second_stage_post_processing.score_converter %d is not supported.' % converter)

  return nms_config, score_converter_fn
