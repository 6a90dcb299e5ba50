"""Second-stage box / class / mask heads (TF OD API `MaskRCNNKerasBoxPredictor` semantics).

Why not `official.vision.modeling.heads.instance_heads`: the Model Garden heads predict boxes for
num_classes + 1 classes (background included), always use transposed-conv mask upsampling and have no
`share_box_across_classes`, `convolve_then_upsample_masks` or derived mask depth; the TF OD API config
fields below need the TF OD API layout, so the heads are small tf_keras layers here.

Inputs: ROI features float32 [N, h, w, C] (N = batch * rois). Outputs:
  box encodings float32 [N, num_classes or 1, 4] (faster_rcnn_box_coder targets, scales 10,10,5,5),
  class logits float32 [N, num_classes + 1] (column 0 = background),
  mask logits float32 [N, num_classes or 1, mask_height, mask_width].
"""

import math

import tensorflow as tf
import tf_keras

from object_detection.builders import hyperparams_builder


def get_mask_predictor_conv_depth(num_feature_channels, num_classes, class_weight=3.0, feature_weight=2.0):
  """TF OD API `_get_mask_predictor_conv_depth` (mask_prediction_conv_depth: 0).

  depth = 2 ** round((feature_weight * log2(C) + class_weight * log2(K)) / (feature_weight +
  class_weight)), a weighted geometric mean of the feature depth C and the number of classes K.
  """
  num_feature_channels_log = math.log(float(num_feature_channels), 2.0)
  num_classes_log = math.log(float(num_classes), 2.0)
  weighted = num_feature_channels_log * feature_weight + num_classes_log * class_weight
  return int(math.pow(2.0, round(weighted / (feature_weight + class_weight))))


class MaskRCNNBoxPredictor(tf_keras.layers.Layer):
  """Box, class and (optionally) mask heads configured by a `MaskRCNNBoxPredictor` proto."""

  def __init__(self, config, num_classes, predict_instance_masks=False, **kwargs):
    super().__init__(**kwargs)
    self._num_classes = num_classes
    self._config = config
    fc = hyperparams_builder.KerasLayerHyperparams(
        config.fc_hyperparams if config.HasField('fc_hyperparams') else None)
    self._dropout = (tf_keras.layers.Dropout(1.0 - config.dropout_keep_probability)
                     if config.use_dropout else None)
    num_box_classes = 1 if config.share_box_across_classes else num_classes
    self._num_box_classes = num_box_classes
    self.box_encoder = tf_keras.layers.Dense(num_box_classes * 4, name='BoxEncodingPredictor',
                                             **fc.params())
    self.class_predictor = tf_keras.layers.Dense(num_classes + 1, name='ClassPredictor', **fc.params())
    self._predict_masks = predict_instance_masks or config.predict_instance_masks
    self._mask_layers = []
    if self._predict_masks:
      self._conv = hyperparams_builder.KerasLayerHyperparams(
          config.conv_hyperparams if config.HasField('conv_hyperparams') else None)
      self._num_masks = 1 if config.masks_are_class_agnostic else num_classes
      self._mask_height = config.mask_height
      self._mask_width = config.mask_width

  @property
  def predicts_masks(self):
    return self._predict_masks

  def _build_mask_layers(self, num_feature_channels, crop_height):
    """Creates the mask tower once the feature depth is known (TF OD API MaskRCNNMaskHead)."""
    cfg = self._config
    depth = cfg.mask_prediction_conv_depth or get_mask_predictor_conv_depth(
        num_feature_channels, self._num_classes)
    layers = []

    def conv_block(name):
      layers.append(tf_keras.layers.Conv2D(depth, 3, padding='same', name=name,
                                           use_bias=not self._conv.use_batch_norm(), **self._conv.params()))
      norm = self._conv.build_normalization(name=name + '_norm')
      if norm is not None:
        layers.append(norm)
      layers.append(self._conv.build_activation_layer(name=name + '_act'))

    if cfg.convolve_then_upsample_masks:
      # Convs at crop resolution, nearest upsampling to the mask size, then one 3x3 conv (TF OD API).
      for i in range(max(cfg.mask_prediction_num_conv_layers - 1, 0)):
        conv_block('MaskPredictor_conv%d' % i)
      scale = max(self._mask_height // max(crop_height, 1), 1)
      layers.append(tf_keras.layers.UpSampling2D(scale, interpolation='nearest'))
      layers.append(tf_keras.layers.Resizing(self._mask_height, self._mask_width, interpolation='bilinear'))
      conv_block('MaskPredictor_upsampled_conv')
    else:
      # Bilinear resize to the mask size first, then the conv tower (TF OD API default).
      layers.append(tf_keras.layers.Resizing(self._mask_height, self._mask_width, interpolation='bilinear'))
      for i in range(max(cfg.mask_prediction_num_conv_layers - 1, 0)):
        conv_block('MaskPredictor_conv%d' % i)
    layers.append(tf_keras.layers.Conv2D(self._num_masks, 3, padding='same', name='MaskPredictor_final',
                                         **self._conv.params()))
    self._mask_layers = layers
    self.mask_tower = tf_keras.Sequential(layers, name='MaskPredictor')

  def predict_boxes_and_classes(self, features, training=None):
    """features [N, h, w, C] -> (box encodings [N, num_box_classes, 4], class logits [N, K+1])."""
    flat = tf.reduce_mean(features, axis=[1, 2])  # spatial average as in the TF OD API box head
    if self._dropout is not None:
      flat = self._dropout(flat, training=training)
    boxes = tf.reshape(self.box_encoder(flat), [-1, self._num_box_classes, 4])
    return boxes, self.class_predictor(flat)

  def predict_masks(self, features, training=None):
    """features [N, h, w, C] -> mask logits [N, num_masks, mask_height, mask_width]."""
    if not self._mask_layers:
      self._build_mask_layers(int(features.shape[-1]), int(features.shape[1] or 1))
    logits = self.mask_tower(features, training=training)
    return tf.transpose(logits, [0, 3, 1, 2])
