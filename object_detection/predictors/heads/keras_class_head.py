"""Class-logit heads (TF OD API `predictors/heads/keras_class_head.py`).

  - `ConvolutionalClassHead`: the RPN's per-anchor objectness head (one conv over a feature map).
  - `MaskRCNNClassHead`: the second stage's per-proposal class head (average pool + dense).

Outputs are logits (no softmax / sigmoid), float32; with a background slot, column 0 is background.
The layers live in the list attribute `_class_predictor_layers` (checkpoint keys
`.../_class_predictor_layers/<index>/kernel`, same indices as the TF OD API).
"""

import tensorflow as tf
import tf_keras

from object_detection.predictors.heads import head


def _batch_size(features):
  static = features.shape[0]
  return static if static is not None else tf.shape(features)[0]


class ConvolutionalClassHead(head.KerasHead):
  """Per-anchor class logits of a feature map (TF OD API `keras_class_head.ConvolutionalClassHead`).

  Layers: [Dropout(1 - dropout_keep_prob) if use_dropout], then
  `Conv2D(num_predictions_per_location * num_class_slots, kernel_size, padding='SAME',
  name='ClassPredictor')` with the conv hyperparams' initializer / regularizer, a bias initialized
  to `class_prediction_bias_init`.

  Args:
    is_training: bool, kept for the TF OD API interface (this head has no batch norm).
    num_class_slots: int, logits per anchor (the RPN: 2, background + object).
    use_dropout: bool.
    dropout_keep_prob: float in (0, 1].
    kernel_size: int (the RPN uses 1).
    num_predictions_per_location: int, anchors per feature map position.
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams`.
    freeze_batchnorm: bool, kept for the TF OD API interface.
    class_prediction_bias_init: float, initial bias of the conv.
    use_depthwise: must be False (SSD-only variant).
    name: str or None.

  Call: features float32 [batch, height, width, channels] ->
    logits float32 [batch, height * width * num_predictions_per_location, num_class_slots]
    (same anchor order as `ConvolutionalBoxHead`).

  Raises:
    ValueError: use_depthwise is True.
  """

  def __init__(self, is_training, num_class_slots, use_dropout, dropout_keep_prob, kernel_size,
               num_predictions_per_location, conv_hyperparams, freeze_batchnorm,
               class_prediction_bias_init=0.0, use_depthwise=False, name=None):
    if use_depthwise:
      raise ValueError('ConvolutionalClassHead: use_depthwise=True is not supported (only the '
                       'Faster R-CNN RPN head, which uses a regular conv, is implemented).')
    super().__init__(name=name)
    self._is_training = is_training
    self._use_dropout = use_dropout
    self._dropout_keep_prob = dropout_keep_prob
    self._kernel_size = kernel_size
    self._class_prediction_bias_init = class_prediction_bias_init
    self._use_depthwise = use_depthwise
    self._num_class_slots = num_class_slots

    layers = []
    if use_dropout:
      layers.append(tf_keras.layers.Dropout(rate=1.0 - dropout_keep_prob))
    layers.append(tf_keras.layers.Conv2D(
        num_predictions_per_location * num_class_slots, [kernel_size, kernel_size],
        padding='SAME', name='ClassPredictor',
        bias_initializer=tf_keras.initializers.Constant(class_prediction_bias_init),
        **conv_hyperparams.params(use_bias=True)))
    self._class_predictor_layers = layers

  def _predict(self, features):
    net = features
    for layer in self._class_predictor_layers:
      net = layer(net)
    return tf.reshape(net, [_batch_size(features), -1, self._num_class_slots])


class MaskRCNNClassHead(head.KerasHead):
  """Per-proposal class logits (TF OD API `keras_class_head.MaskRCNNClassHead`).

  Layers, in `_class_predictor_layers` order: Flatten, [Dropout(1 - dropout_keep_prob) if
  use_dropout], Dense(num_class_slots, name='ClassPredictor_dense'), then
  `fc_hyperparams.build_batch_norm(...)` named 'ClassPredictor_batchnorm' (identity unless
  fc_hyperparams has batch_norm). Features are averaged over height and width first. As in the
  TF OD API the Dense layer uses Keras' default initializers and no regularizer (fc_hyperparams
  only decides the batch norm).

  Args:
    is_training: bool; batch norm follows the call's mode only if is_training and not
      freeze_batchnorm.
    num_class_slots: int, num_classes + 1 with the background slot (column 0).
    fc_hyperparams: `hyperparams_builder.KerasLayerHyperparams`.
    freeze_batchnorm: bool.
    use_dropout: bool.
    dropout_keep_prob: float in (0, 1].
    name: str or None.

  Call: features float32 [N, height, width, channels] (any height / width) ->
    logits float32 [N, 1, num_class_slots].
  """

  def __init__(self, is_training, num_class_slots, fc_hyperparams, freeze_batchnorm, use_dropout,
               dropout_keep_prob, name=None):
    super().__init__(name=name)
    self._is_training = is_training
    self._freeze_batchnorm = freeze_batchnorm
    self._num_class_slots = num_class_slots
    self._fc_hyperparams = fc_hyperparams
    self._use_dropout = use_dropout
    self._dropout_keep_prob = dropout_keep_prob

    layers = [tf_keras.layers.Flatten()]
    if use_dropout:
      layers.append(tf_keras.layers.Dropout(rate=1.0 - dropout_keep_prob))
    layers.append(tf_keras.layers.Dense(num_class_slots, name='ClassPredictor_dense'))
    layers.append(fc_hyperparams.build_batch_norm(
        training=(is_training and not freeze_batchnorm), name='ClassPredictor_batchnorm'))
    self._class_predictor_layers = layers

  def _predict(self, features):
    net = tf.reduce_mean(features, [1, 2], keepdims=True, name='AvgPool')
    for layer in self._class_predictor_layers:
      net = layer(net)
    return tf.reshape(net, [-1, 1, self._num_class_slots])
