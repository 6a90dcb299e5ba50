"""FPN top-down feature maps (TF OD API `models/feature_map_generators.KerasFpnTopDownFeatureMaps`).

`KerasFpnTopDownFeatureMaps` is the Feature Pyramid Network top-down pathway (Lin et al. 2017,
https://arxiv.org/abs/1612.03144) as the TF OD API builds it for its Keras FPN extractors (Faster R-CNN
`faster_rcnn_resnet{50,101,152}_fpn_keras`, and this project's EfficientNet / MobileNet FPN extractors):
same constructor arguments, same layer objects held in the same attributes (`top_layers`,
`residual_blocks`, `top_down_blocks`, `reshape_blocks`, `conv_layers`: lists, one inner list per level),
same layer names, so a TF OD API checkpoint restores into it key for key
(e.g. `.../fpn_features_generator/conv_layers/0/0/kernel`).

Also here: `create_conv_block` (the conv / batch norm / activation triple the generator's smoothing layers
and the TF OD API's coarse FPN levels use) and the two tensor helpers the generator needs from the TF OD
API's `utils/ops.py` (`nearest_neighbor_upsampling`, `fixed_padding`).
"""

import collections

import tensorflow as tf
import tf_keras

# Clip bound of `use_bounded_activations` (TF OD API feature_map_generators.ACTIVATION_BOUND).
ACTIVATION_BOUND = 6.0


def _combined_shape(tensor):
  """Static dims where known, dynamic (int32 scalar tensors) elsewhere, as a Python list."""
  static = tensor.shape.as_list()
  dynamic = tf.shape(tensor)
  return [dim if dim is not None else dynamic[i] for i, dim in enumerate(static)]


def nearest_neighbor_upsampling(input_tensor, scale):
  """Repeats each pixel `scale` x `scale` times with reshapes only (TF OD API `ops.nearest_neighbor_upsampling`).

  Args:
    input_tensor: float tensor [B, H, W, C].
    scale: int >= 1, the factor applied to height and width.

  Returns:
    Tensor [B, H * scale, W * scale, C], same dtype; output[:, y, x] = input[:, y // scale, x // scale].

  Raises:
    ValueError: `scale` is not a positive integer.
  """
  if not isinstance(scale, int) or scale < 1:
    raise ValueError('nearest_neighbor_upsampling: scale must be a positive int, got %r.' % (scale,))
  batch, height, width, channels = _combined_shape(input_tensor)
  # Stacking along new axes then folding them into H and W is a TPU-friendly nearest-neighbour resize.
  stacked = tf.stack([input_tensor] * scale, axis=3)
  stacked = tf.stack([stacked] * scale, axis=2)
  return tf.reshape(stacked, [batch, height * scale, width * scale, channels])


def fixed_padding(inputs, kernel_size, rate=1):
  """Zero-pads H and W so a VALID conv of `kernel_size` gives the size of a SAME conv (TF OD API `ops.fixed_padding`).

  Args:
    inputs: tensor [B, H, W, C].
    kernel_size: int, conv / pool kernel size.
    rate: int, atrous rate.

  Returns:
    Tensor [B, H + k - 1, W + k - 1, C] with k the effective kernel size; the extra row / column goes
    at the bottom / right when k - 1 is odd.
  """
  effective = kernel_size + (kernel_size - 1) * (rate - 1)
  total = effective - 1
  begin = total // 2
  end = total - begin
  return tf.pad(inputs, [[0, 0], [begin, end], [begin, end], [0, 0]])


def create_conv_block(use_depthwise, kernel_size, padding, stride, layer_name, conv_hyperparams,
                      is_training, freeze_batchnorm, depth):
  """Returns [conv, batch norm, activation] Keras layers (TF OD API `feature_map_generators.create_conv_block`).

  Args:
    use_depthwise: bool; True builds a `SeparableConv2D` named `<layer_name>_depthwise_conv` (depth
      multiplier 1, the regularizer / initializer of `conv_hyperparams` applied to both kernels), False a
      `Conv2D` named `<layer_name>_conv`.
    kernel_size: int, square kernel size.
    padding: 'SAME' or 'VALID'.
    stride: int or [stride_h, stride_w].
    layer_name: str, prefix of the layer names; the activation layer is named `layer_name`.
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams`.
    is_training: bool; with `freeze_batchnorm` False the batch norm follows the call's `training`.
    freeze_batchnorm: bool; True fixes the batch norm in inference mode.
    depth: int, output channels.

  Returns:
    list of three tf_keras layers: conv, `<layer_name>_batchnorm` (identity Lambda when the
    hyperparams have no batch norm), activation.
  """
  if use_depthwise:
    kwargs = conv_hyperparams.params()
    # SeparableConv2D names its kernels depthwise_* / pointwise_*; the config's regularizer and
    # initializer govern both.
    kwargs['depthwise_regularizer'] = kwargs['kernel_regularizer']
    kwargs['depthwise_initializer'] = kwargs['kernel_initializer']
    conv = tf_keras.layers.SeparableConv2D(depth, [kernel_size, kernel_size], depth_multiplier=1,
                                           padding=padding, strides=stride,
                                           name=layer_name + '_depthwise_conv', **kwargs)
  else:
    conv = tf_keras.layers.Conv2D(depth, [kernel_size, kernel_size], padding=padding, strides=stride,
                                  name=layer_name + '_conv', **conv_hyperparams.params())
  return [
      conv,
      conv_hyperparams.build_batch_norm(training=(is_training and not freeze_batchnorm),
                                        name=layer_name + '_batchnorm'),
      conv_hyperparams.build_activation_layer(name=layer_name),
  ]


def _clip_by_value(features):
  return tf.clip_by_value(features, -ACTIVATION_BOUND, ACTIVATION_BOUND)


def _upsample_by_two(image):
  return nearest_neighbor_upsampling(image, scale=2)


def _native_upsample_by_two(image):
  shape = _combined_shape(image)
  return tf.compat.v1.image.resize_nearest_neighbor(image, [shape[1] * 2, shape[2] * 2])


def _crop_to_residual(inputs):
  residual, top_down = inputs
  residual_shape = tf.shape(residual)
  return top_down[:, :residual_shape[1], :residual_shape[2], :]


class KerasFpnTopDownFeatureMaps(tf_keras.Model):
  """FPN top-down pathway (TF OD API `feature_map_generators.KerasFpnTopDownFeatureMaps`).

  For image features f_0 (finest) .. f_{n-1} (coarsest), each exactly half the size of the previous:
    p_{n-1} = projection_n(f_{n-1})                      (1x1 conv, bias, no norm / activation)
    p_l     = smoothing_{l+1}(upsample2(p_{l+1}) + projection_{l+1}(f_l))   for l = n-2 .. 0
  where smoothing is 3x3 conv -> batch norm -> activation from `conv_hyperparams`. The coarsest level
  gets no smoothing.

  Args:
    num_levels: int, number of image features n the model will be called with.
    depth: int, channels of every output map.
    is_training: bool.
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams` of all convs, batch norms and
      activations (the 1x1 projections always have a bias).
    freeze_batchnorm: bool, True fixes the smoothing batch norms in inference mode.
    use_depthwise: bool, separable 3x3 smoothing convs.
    use_explicit_padding: bool, VALID convs after `fixed_padding`, and each upsampled map cropped to
      its residual's size (for inputs whose sizes do not halve exactly).
    use_bounded_activations: bool, clip projections and sums to [-6, 6].
    use_native_resize_op: bool, upsample with `tf.compat.v1.image.resize_nearest_neighbor` instead of
      reshapes (same values).
    scope: name scope of the ops, default 'top_down'.
    name: Keras model name.

  Call:
    image_features: list of n (name str, float32 [B, H_i, W_i, C_i]) tuples, finest first.
    Returns an OrderedDict {'top_down_<name>': float32 [B, H_i, W_i, depth]}, finest first.
  """

  def __init__(self, num_levels, depth, is_training, conv_hyperparams, freeze_batchnorm,
               use_depthwise=False, use_explicit_padding=False, use_bounded_activations=False,
               use_native_resize_op=False, scope=None, name=None):
    super().__init__(name=name)
    self.scope = scope if scope else 'top_down'
    # Attribute names and nesting decide the checkpoint keys (`top_layers/0`, `conv_layers/0/0`, ...).
    self.top_layers = []
    self.residual_blocks = []
    self.top_down_blocks = []
    self.reshape_blocks = []
    self.conv_layers = []

    padding = 'VALID' if use_explicit_padding else 'SAME'
    kernel_size = 3

    self.top_layers.append(tf_keras.layers.Conv2D(
        depth, [1, 1], strides=1, padding=padding, name='projection_%d' % num_levels,
        **conv_hyperparams.params(use_bias=True)))
    if use_bounded_activations:
      self.top_layers.append(tf_keras.layers.Lambda(_clip_by_value, name='clip_by_value'))

    # Index i of each block list serves level num_levels - 2 - i (coarse to fine).
    for level in reversed(range(num_levels - 1)):
      residual_net = [tf_keras.layers.Conv2D(
          depth, [1, 1], padding=padding, strides=1, name='projection_%d' % (level + 1),
          **conv_hyperparams.params(use_bias=True))]
      if use_bounded_activations:
        residual_net.append(tf_keras.layers.Lambda(_clip_by_value, name='clip_by_value'))

      upsample = _native_upsample_by_two if use_native_resize_op else _upsample_by_two
      top_down_net = [tf_keras.layers.Lambda(upsample, name='nearest_neighbor_upsampling')]

      reshaped_residual = []
      if use_explicit_padding:
        reshaped_residual.append(tf_keras.layers.Lambda(_crop_to_residual, name='reshape'))

      conv_net = []
      if use_bounded_activations:
        conv_net.append(tf_keras.layers.Lambda(_clip_by_value, name='clip_by_value'))
      if use_explicit_padding:
        conv_net.append(tf_keras.layers.Lambda(lambda x: fixed_padding(x, kernel_size),
                                               name='fixed_padding'))
      conv_net.extend(create_conv_block(use_depthwise, kernel_size, padding, 1,
                                        'smoothing_%d' % (level + 1), conv_hyperparams,
                                        is_training, freeze_batchnorm, depth))

      self.residual_blocks.append(residual_net)
      self.top_down_blocks.append(top_down_net)
      self.reshape_blocks.append(reshaped_residual)
      self.conv_layers.append(conv_net)

  def call(self, image_features):
    """See the class docstring."""
    outputs = []
    keys = []
    with tf.name_scope(self.scope):
      top_down = image_features[-1][1]
      for layer in self.top_layers:
        top_down = layer(top_down)
      outputs.append(top_down)
      keys.append('top_down_%s' % image_features[-1][0])

      num_levels = len(image_features)
      for index, level in enumerate(reversed(range(num_levels - 1))):
        residual = image_features[level][1]
        top_down = outputs[-1]
        for layer in self.residual_blocks[index]:
          residual = layer(residual)
        for layer in self.top_down_blocks[index]:
          top_down = layer(top_down)
        for layer in self.reshape_blocks[index]:
          top_down = layer([residual, top_down])
        top_down += residual
        for layer in self.conv_layers[index]:
          top_down = layer(top_down)
        outputs.append(top_down)
        keys.append('top_down_%s' % image_features[level][0])
    return collections.OrderedDict(reversed(list(zip(keys, outputs))))
