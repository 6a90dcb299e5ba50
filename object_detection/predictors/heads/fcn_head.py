"""FCN head of semantic segmentation models (project extension; Long et al., "Fully
Convolutional Networks for Semantic Segmentation", CVPR 2015, in the form of mmsegmentation's
`FCNHead`, which OpenVINO Training Extensions' semantic segmentation recipes use).

  feature maps (list, finest first) --fusion--> [B, h, w, C_in]
    -> num_convs x (kernel_size conv, `depth` channels, batch norm?, activation)
    -> spatial dropout (whole channels, as torch Dropout2d) -> 1x1 conv -> logits [B, h, w, K]

Fusion 'resize_concat' (mmsegmentation `input_transform='resize_concat'`): every level is resized
bilinearly (half-pixel centres, align_corners=False) to the finest level's size and the levels are
concatenated on channels; 'finest' uses the first map alone. The logits stay at the finest level's
stride; the meta-architecture upsamples them to the input.
"""
import tensorflow as tf
import tf_keras

RESIZE_CONCAT = 'resize_concat'
FINEST = 'finest'


class FcnHead(tf_keras.layers.Layer):
  """Per-pixel class logits from one or more feature maps.

  Args:
    num_output_classes: K, classes including background.
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams` of the convolutions (kernel
      initializer / regularizer, batch norm, activation).
    num_convs: number of kernel_size x kernel_size convolutions (0: the classifier reads the fused
      features directly).
    depth: channels of each convolution.
    kernel_size: odd int.
    dropout_rate: channel dropout rate before the classifier, in [0, 1).
    fusion: RESIZE_CONCAT or FINEST.
    is_training: bool; batch norm statistics update only when training and the batch norm's
      `train` field says so (FreezableBatchNorm).
    freeze_batchnorm: keep batch norm in inference mode even in training.

  Call: list of float32 [B, h_l, w_l, C_l] maps (finest first), or one map -> float32 [B, h_0, w_0, K].
  """

  def __init__(self, num_output_classes, conv_hyperparams, num_convs=1, depth=256, kernel_size=3,
               dropout_rate=0.1, fusion=RESIZE_CONCAT, is_training=False, freeze_batchnorm=False,
               **kwargs):
    super().__init__(**kwargs)
    if fusion not in (RESIZE_CONCAT, FINEST):
      raise ValueError('fusion must be %r or %r, got %r.' % (RESIZE_CONCAT, FINEST, fusion))
    self._fusion = fusion
    self._num_output_classes = num_output_classes
    self._convs = []
    for i in range(num_convs):
      self._convs.append(tf_keras.layers.Conv2D(
          depth, kernel_size, padding='same', name='conv_%d' % i, **conv_hyperparams.params()))
      self._convs.append(conv_hyperparams.build_batch_norm(
          training=(is_training and not freeze_batchnorm), name='conv_%d_batch_norm' % i))
      self._convs.append(conv_hyperparams.build_activation_layer(name='conv_%d_activation' % i))
    # noise_shape [B, 1, 1, C]: whole channels are dropped, as torch.nn.Dropout2d.
    self._dropout = tf_keras.layers.SpatialDropout2D(dropout_rate) if dropout_rate > 0 else None
    self._classifier = tf_keras.layers.Conv2D(
        num_output_classes, 1, name='classifier',
        **conv_hyperparams.params(use_bias=True))

  def _fuse(self, feature_maps):
    if not isinstance(feature_maps, (list, tuple)):
      return feature_maps
    if self._fusion == FINEST or len(feature_maps) == 1:
      return feature_maps[0]
    size = tf.shape(feature_maps[0])[1:3]
    resized = [feature_maps[0]] + [
        tf.cast(tf.image.resize(tf.cast(f, tf.float32), size, method='bilinear'), f.dtype)
        for f in feature_maps[1:]]
    return tf.concat(resized, axis=-1)

  def call(self, feature_maps, training=None):
    net = self._fuse(feature_maps)
    for layer in self._convs:
      net = layer(net, training=training) if isinstance(
          layer, tf_keras.layers.BatchNormalization) else layer(net)
    if self._dropout is not None:
      net = self._dropout(net, training=training)
    return self._classifier(net)
