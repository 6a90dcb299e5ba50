"""Box-encoding heads (TF OD API `predictors/heads/keras_box_head.py`).

  - `ConvolutionalBoxHead`: the RPN's per-anchor box head (one conv over a feature map).
  - `MaskRCNNBoxHead`: the second stage's per-proposal box head (average pool + dense).

Box encodings are the box coder's codes (for `faster_rcnn_box_coder`: ty, tx, th, tw relative to the
anchor / proposal, divided by the coder's scale factors), float32.

The layers live in the list attribute `_box_encoder_layers`, as in the TF OD API, so checkpoint keys
are `.../_box_encoder_layers/<index>/kernel` with the same indices.
"""

import tensorflow as tf
import tf_keras

from object_detection.predictors.heads import head


def _batch_size(features):
  static = features.shape[0]
  return static if static is not None else tf.shape(features)[0]


class ConvolutionalBoxHead(head.KerasHead):
  """Per-anchor box encodings from a feature map (TF OD API `keras_box_head.ConvolutionalBoxHead`).

  One `Conv2D(num_predictions_per_location * box_code_size, kernel_size, padding='SAME',
  name='BoxEncodingPredictor')` with the conv hyperparams' initializer / regularizer and a bias.

  Args:
    is_training: bool, kept for the TF OD API interface (this head has no batch norm).
    box_code_size: int, size of one box encoding (4 for faster_rcnn_box_coder).
    kernel_size: int, the conv kernel size (the RPN uses 1).
    num_predictions_per_location: int, anchors per feature map position.
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams` for the conv.
    freeze_batchnorm: bool, kept for the TF OD API interface.
    use_depthwise: must be False: the depthwise variant is an SSD option the Faster R-CNN RPN never
      builds.
    box_encodings_clip_range: None, or an object with `min` / `max` floats: encodings are clipped
      to [min, max] before the reshape.
    name: str or None, Keras layer name.

  Call: features float32 [batch, height, width, channels] ->
    box encodings float32 [batch, height * width * num_predictions_per_location, 1, box_code_size],
    anchors ordered row-major over (y, x, anchor index), the order of the TF OD API grid anchors.

  Raises:
    ValueError: use_depthwise is True.
  """

  def __init__(self, is_training, box_code_size, kernel_size, num_predictions_per_location,
               conv_hyperparams, freeze_batchnorm, use_depthwise=False,
               box_encodings_clip_range=None, name=None):
    if use_depthwise:
      raise ValueError('ConvolutionalBoxHead: use_depthwise=True is not supported (only the Faster '
                       'R-CNN RPN head, which uses a regular conv, is implemented).')
    super().__init__(name=name)
    self._is_training = is_training
    self._box_code_size = box_code_size
    self._kernel_size = kernel_size
    self._num_predictions_per_location = num_predictions_per_location
    self._use_depthwise = use_depthwise
    self._box_encodings_clip_range = box_encodings_clip_range
    self._box_encoder_layers = [
        tf_keras.layers.Conv2D(
            num_predictions_per_location * box_code_size, [kernel_size, kernel_size],
            padding='SAME', name='BoxEncodingPredictor',
            **conv_hyperparams.params(use_bias=True)),
    ]

  def _predict(self, features):
    net = features
    for layer in self._box_encoder_layers:
      net = layer(net)
    if self._box_encodings_clip_range is not None:
      net = tf.clip_by_value(net, self._box_encodings_clip_range.min,
                             self._box_encodings_clip_range.max)
    return tf.reshape(net, [_batch_size(features), -1, 1, self._box_code_size])


class MaskRCNNBoxHead(head.KerasHead):
  """Per-proposal box encodings (TF OD API `keras_box_head.MaskRCNNBoxHead`).

  Layers, in `_box_encoder_layers` order: Flatten, [Dropout(1 - dropout_keep_prob) if use_dropout],
  Dense(number_of_boxes * box_code_size, name='BoxEncodingPredictor_dense'), then
  `fc_hyperparams.build_batch_norm(...)` named 'BoxEncodingPredictor_batchnorm' (an identity Lambda
  unless fc_hyperparams has batch_norm). The features are averaged over height and width first.

  As in the TF OD API, the Dense layer does NOT take fc_hyperparams' initializer or regularizer:
  it uses Keras' defaults (glorot-uniform kernel, zero bias, no weight decay); fc_hyperparams only
  decides the batch norm after it.

  Args:
    is_training: bool; batch norm follows the call's mode only if is_training and not
      freeze_batchnorm.
    num_classes: int, classes without background.
    fc_hyperparams: `hyperparams_builder.KerasLayerHyperparams`.
    freeze_batchnorm: bool.
    use_dropout: bool, dropout before the Dense layer (active only in training mode).
    dropout_keep_prob: float in (0, 1], keep probability.
    box_code_size: int.
    share_box_across_classes: bool, one box per proposal (number_of_boxes = 1) instead of one per
      class (number_of_boxes = num_classes).
    name: str or None.

  Call: features float32 [N, height, width, channels] (N = batch * proposals, any height / width) ->
    box encodings float32 [N, 1, number_of_boxes, box_code_size].
  """

  def __init__(self, is_training, num_classes, fc_hyperparams, freeze_batchnorm, use_dropout,
               dropout_keep_prob, box_code_size, share_box_across_classes=False, name=None):
    super().__init__(name=name)
    self._is_training = is_training
    self._num_classes = num_classes
    self._fc_hyperparams = fc_hyperparams
    self._freeze_batchnorm = freeze_batchnorm
    self._use_dropout = use_dropout
    self._dropout_keep_prob = dropout_keep_prob
    self._box_code_size = box_code_size
    self._share_box_across_classes = share_box_across_classes
    self._number_of_boxes = 1 if share_box_across_classes else num_classes

    layers = [tf_keras.layers.Flatten()]
    if use_dropout:
      layers.append(tf_keras.layers.Dropout(rate=1.0 - dropout_keep_prob))
    layers.append(tf_keras.layers.Dense(self._number_of_boxes * box_code_size,
                                        name='BoxEncodingPredictor_dense'))
    layers.append(fc_hyperparams.build_batch_norm(
        training=(is_training and not freeze_batchnorm), name='BoxEncodingPredictor_batchnorm'))
    # Assigned once filled, so the tracked list holds the layers at the same indices as the
    # TF OD API's (the indices are part of the checkpoint keys).
    self._box_encoder_layers = layers

  def _predict(self, features):
    net = tf.reduce_mean(features, [1, 2], keepdims=True, name='AvgPool')
    for layer in self._box_encoder_layers:
      net = layer(net)
    return tf.reshape(net, [-1, 1, self._number_of_boxes, self._box_code_size])
