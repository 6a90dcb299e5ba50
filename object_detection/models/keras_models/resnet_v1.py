"""ResNet-v1 50 / 101 / 152 backbones as the TF OD API builds them (`models/keras_models/resnet_v1.py`).

The TF OD API builds the Keras application ResNet (`tf_keras` `applications.resnet.ResNet50/101/152`)
through a layer-override object that turns it into the slim-style ResNet-v1 its detection checkpoints use.
This module builds the same functional network directly, with the same layer names and the same graph
(hence the same `model.layers` order and the same checkpoint keys `layer_with_weights-N/...`):

  - every convolution is bias-free (`use_bias=False`); a convolution with stride > 1 and kernel > 1 gets
    an explicit fixed zero padding of (k - 1) // 2 before / k // 2 after ('valid' conv; only `conv1_conv`,
    7x7 stride 2, in a ResNet-v1), every other convolution uses 'same' padding (the strided 1x1 convs of
    the first block of conv3..conv5 included);
  - batch norm layers are `FreezableBatchNorm(training=batchnorm_training)` with momentum
    `default_batchnorm_momentum`, epsilon `default_batchnorm_epsilon` (1e-5, not Keras' 1.001e-5) and
    `scale=batchnorm_scale`;
  - activations are plain relu layers named as in Keras (`conv1_relu`, `convS_blockB_{1,2}_relu`,
    `convS_blockB_out`);
  - the stem max pool is 3x3 stride 2 with 'same' padding and no explicit zero padding (Keras' `conv1_pad`
    and `pool1_pad` do not exist);
  - kernels get `l2(weight_decay)` regularizers and a fan-in truncated-normal variance-scaling initializer.
    With `conv_hyperparams` (a `hyperparams_builder.KerasLayerHyperparams`) the convolutions take the
    config's initializer / regularizer, and the batch norm and activation layers are the config's
    (`build_batch_norm(training=batchnorm_training)`, `build_activation_layer`) instead;
  - the number of filters of every convolution is `max(int(filters * depth_multiplier), min_depth)`.

Layer names (for `get_layer`): `conv1_conv`, `conv1_bn`, `conv1_relu`, `pool1_pool`, then per stage S in
2..5 and block B: `convS_blockB_{0,1,2,3}_conv` / `_bn` (0 = projection shortcut, block 1 only),
`convS_blockB_{1,2}_relu`, `convS_blockB_add`, `convS_blockB_out`. Blocks per stage: 3-4-6-3 (50),
3-4-23-3 (101), 3-8-36-3 (152). Stage strides: conv2 1, conv3..conv5 2 (on the first block's 1x1 convs),
so `conv4_blockN_out` has stride 16 and `conv5_block3_out` stride 32.

Differences from the TF OD API, none of which changes variables, keys or numbers: the fixed padding is a
`ZeroPadding2D` layer (a `Lambda` around `tf.pad` there; same position in `model.layers`), and the Keras
application defaults `include_top=True, weights='imagenet'` become `include_top=False, weights=None` (the
TF OD API always passes those; ImageNet weights are loaded by the feature extractors' `load_weights`).
The TF OD API's ResNet-18/34 (`resnet_v1_18/34`, CenterNet only) are not implemented.

Input: float32 [B, H, W, 3] (already preprocessed by the feature extractor); output of the model (without
top): float32 [B, ceil(H / 32), ceil(W / 32), 2048 * depth_multiplier] (`conv5_block3_out`).
"""

import tensorflow as tf
import tf_keras

from object_detection.core import freezable_batch_norm

# Bottleneck blocks per stage conv2..conv5, as in the Keras applications.
_BLOCKS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
_STAGE_FILTERS = (64, 128, 256, 512)


class _ResnetV1Layers(object):
  """Creates the convolution / batch norm / activation layers of one backbone with one configuration."""

  def __init__(self, batchnorm_training, batchnorm_scale, default_batchnorm_momentum,
               default_batchnorm_epsilon, weight_decay, conv_hyperparams, min_depth, depth_multiplier):
    self._batchnorm_training = batchnorm_training
    self._batchnorm_scale = batchnorm_scale
    self._momentum = default_batchnorm_momentum
    self._epsilon = default_batchnorm_epsilon
    self._weight_decay = weight_decay
    self._conv_hyperparams = conv_hyperparams
    self._min_depth = min_depth
    self._depth_multiplier = depth_multiplier

  def conv(self, inputs, filters, kernel_size, name, strides=1):
    """Bias-free Conv2D; strided convs with kernel > 1 get a fixed zero padding and 'valid' padding."""
    filters = max(int(filters * self._depth_multiplier), self._min_depth)
    if self._conv_hyperparams:
      kwargs = self._conv_hyperparams.params(strides=strides, name=name)
    else:
      kwargs = {
          'strides': strides,
          'name': name,
          'kernel_regularizer': tf_keras.regularizers.l2(self._weight_decay),
          # tf.compat.v1.variance_scaling_initializer() defaults: scale 1, fan_in, truncated normal.
          'kernel_initializer': tf_keras.initializers.VarianceScaling(
              scale=1.0, mode='fan_in', distribution='truncated_normal'),
      }
    kwargs['use_bias'] = False
    if strides > 1 and kernel_size > 1:
      # Padding independent of the input size (slim's conv2d_same): 'same' padding of a strided conv
      # would pad less on even-sized inputs and shift the sampling grid.
      inputs = _fixed_padding_layer(kernel_size)(inputs)
      kwargs['padding'] = 'valid'
    else:
      kwargs['padding'] = 'same'
    return tf_keras.layers.Conv2D(filters, kernel_size, **kwargs)(inputs)

  def batch_norm(self, inputs, name):
    if self._conv_hyperparams:
      layer = self._conv_hyperparams.build_batch_norm(training=self._batchnorm_training, name=name)
    else:
      layer = freezable_batch_norm.FreezableBatchNorm(
          training=self._batchnorm_training, axis=3, momentum=self._momentum, epsilon=self._epsilon,
          scale=self._batchnorm_scale, name=name)
    return layer(inputs)

  def relu(self, inputs, name):
    if self._conv_hyperparams:
      return self._conv_hyperparams.build_activation_layer(name=name)(inputs)
    return tf_keras.layers.Lambda(tf.nn.relu, name=name)(inputs)


def _fixed_padding_layer(kernel_size, rate=1):
  """Zero padding making a 'valid' conv of `kernel_size` (dilation `rate`) pad like slim's `conv2d_same`."""
  effective = kernel_size + (kernel_size - 1) * (rate - 1)
  before = (effective - 1) // 2
  after = effective - 1 - before
  return tf_keras.layers.ZeroPadding2D(padding=((before, after), (before, after)))


def _bottleneck_block(layers, x, filters, strides, projection, name):
  """Keras `block1`: 1x1 (stride) -> 3x3 -> 1x1 (4 * filters), plus identity or projection shortcut."""
  if projection:
    shortcut = layers.conv(x, 4 * filters, 1, name + '_0_conv', strides=strides)
    shortcut = layers.batch_norm(shortcut, name + '_0_bn')
  else:
    shortcut = x
  y = layers.conv(x, filters, 1, name + '_1_conv', strides=strides)
  y = layers.batch_norm(y, name + '_1_bn')
  y = layers.relu(y, name + '_1_relu')
  y = layers.conv(y, filters, 3, name + '_2_conv')
  y = layers.batch_norm(y, name + '_2_bn')
  y = layers.relu(y, name + '_2_relu')
  y = layers.conv(y, 4 * filters, 1, name + '_3_conv')
  y = layers.batch_norm(y, name + '_3_bn')
  # The shortcut comes first: the input order of the Add decides the functional model's layer order.
  y = tf_keras.layers.Add(name=name + '_add')([shortcut, y])
  return layers.relu(y, name + '_out')


def _resnet_v1(depth, layers, include_top=False, weights=None, input_tensor=None, input_shape=None,
               pooling=None, classes=1000, classifier_activation='softmax'):
  """Builds the functional ResNet-v1 of `depth`; the keyword arguments are the Keras application's."""
  if weights is not None:
    raise ValueError(
        'resnet_v1_%d: weights=%r is not supported (only None): the backbone has no conv biases, so '
        'Keras ImageNet files do not load as-is; use the feature extractor\'s load_weights(path).'
        % (depth, weights))
  if input_shape is None:
    input_shape = (224, 224, 3) if include_top else (None, None, 3)
  if input_tensor is None:
    image = tf_keras.layers.Input(shape=input_shape)
    inputs = image
  elif tf_keras.backend.is_keras_tensor(input_tensor):
    image = input_tensor
    inputs = tf_keras.utils.get_source_inputs(input_tensor)
  else:
    image = tf_keras.layers.Input(tensor=input_tensor, shape=input_shape)
    inputs = image

  x = layers.conv(image, 64, 7, 'conv1_conv', strides=2)
  x = layers.batch_norm(x, 'conv1_bn')
  x = layers.relu(x, 'conv1_relu')
  x = tf_keras.layers.MaxPooling2D(3, strides=2, padding='same', name='pool1_pool')(x)
  for stage, (filters, blocks) in enumerate(zip(_STAGE_FILTERS, _BLOCKS[depth])):
    stage_name = 'conv%d' % (stage + 2)
    stage_stride = 1 if stage == 0 else 2
    for block in range(blocks):
      x = _bottleneck_block(layers, x, filters, strides=stage_stride if block == 0 else 1,
                            projection=block == 0, name='%s_block%d' % (stage_name, block + 1))

  if include_top:
    x = tf_keras.layers.GlobalAveragePooling2D(name='avg_pool')(x)
    x = tf_keras.layers.Dense(classes, activation=classifier_activation, name='predictions')(x)
  elif pooling == 'avg':
    x = tf_keras.layers.GlobalAveragePooling2D(name='avg_pool')(x)
  elif pooling == 'max':
    x = tf_keras.layers.GlobalMaxPooling2D(name='max_pool')(x)
  return tf_keras.Model(inputs, x, name='resnet%d' % depth)


def _build(depth, batchnorm_training, batchnorm_scale, default_batchnorm_momentum,
           default_batchnorm_epsilon, weight_decay, conv_hyperparams, min_depth, depth_multiplier, kwargs):
  layers = _ResnetV1Layers(batchnorm_training, batchnorm_scale, default_batchnorm_momentum,
                           default_batchnorm_epsilon, weight_decay, conv_hyperparams, min_depth,
                           depth_multiplier)
  return _resnet_v1(depth, layers, **kwargs)


# pylint: disable=invalid-name
def resnet_v1_50(batchnorm_training, batchnorm_scale=True, default_batchnorm_momentum=0.997,
                 default_batchnorm_epsilon=1e-5, weight_decay=1e-4, conv_hyperparams=None, min_depth=8,
                 depth_multiplier=1, **kwargs):
  """ResNet-v1-50 for object detection (TF OD API `resnet_v1.resnet_v1_50`); see the module docstring.

  Args:
    batchnorm_training: bool or None, the `training` of every FreezableBatchNorm (False freezes them).
    batchnorm_scale: bool, whether batch norm has a `gamma`.
    default_batchnorm_momentum: float, batch norm momentum (without `conv_hyperparams`).
    default_batchnorm_epsilon: float, batch norm epsilon (without `conv_hyperparams`).
    weight_decay: float, L2 weight of the kernel regularizers (without `conv_hyperparams`).
    conv_hyperparams: optional `hyperparams_builder.KerasLayerHyperparams` replacing the convolution
      arguments, batch norm and activation layers.
    min_depth: int, minimum number of filters of a convolution.
    depth_multiplier: float, multiplier of the number of filters.
    **kwargs: the Keras application's arguments: include_top (default False here; the TF OD API always
      passes False), weights (only None), input_tensor, input_shape, pooling, classes,
      classifier_activation.

  Returns:
    tf_keras.Model named 'resnet50'.

  Raises:
    ValueError: `weights` is not None.
  """
  return _build(50, batchnorm_training, batchnorm_scale, default_batchnorm_momentum,
                default_batchnorm_epsilon, weight_decay, conv_hyperparams, min_depth, depth_multiplier,
                kwargs)


def resnet_v1_101(batchnorm_training, batchnorm_scale=True, default_batchnorm_momentum=0.997,
                  default_batchnorm_epsilon=1e-5, weight_decay=1e-4, conv_hyperparams=None, min_depth=8,
                  depth_multiplier=1, **kwargs):
  """ResNet-v1-101 (TF OD API `resnet_v1.resnet_v1_101`); arguments as `resnet_v1_50`. Model 'resnet101'."""
  return _build(101, batchnorm_training, batchnorm_scale, default_batchnorm_momentum,
                default_batchnorm_epsilon, weight_decay, conv_hyperparams, min_depth, depth_multiplier,
                kwargs)


def resnet_v1_152(batchnorm_training, batchnorm_scale=True, default_batchnorm_momentum=0.997,
                  default_batchnorm_epsilon=1e-5, weight_decay=1e-4, conv_hyperparams=None, min_depth=8,
                  depth_multiplier=1, **kwargs):
  """ResNet-v1-152 (TF OD API `resnet_v1.resnet_v1_152`); arguments as `resnet_v1_50`. Model 'resnet152'."""
  return _build(152, batchnorm_training, batchnorm_scale, default_batchnorm_momentum,
                default_batchnorm_epsilon, weight_decay, conv_hyperparams, min_depth, depth_multiplier,
                kwargs)
# pylint: enable=invalid-name
