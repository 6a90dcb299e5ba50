"""Inception-ResNet-v2 for detection (TF OD API `models/keras_models/inception_resnet_v2.py`).

The network is `tf_keras.applications.InceptionResNetV2` itself (Szegedy et al. 2016, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning"), built through the application's
`layers=` hook with a layer factory that changes what detection needs, exactly as the TF OD API does:

  * every BatchNormalization becomes `FreezableBatchNorm(training=batchnorm_training)` with the given
    momentum / epsilon and `scale=batchnorm_scale` (no `gamma` by default, as in the Keras application);
  * every Conv2D gets an L2 kernel and bias regularizer of `weight_decay / 2` (slim's l2 weight -> Keras');
  * `align_feature_maps=True`: every 'valid' convolution and max pool becomes 'same', so a stride-16 map
    is ceil(H / 16) x ceil(W / 16);
  * `output_stride=8` (atrous): the 384-filter convolutions get stride 1, max pools created with
    padding='valid' get stride 1, and the Inception-ResNet-B (`block17`) convolutions get dilation 2.

Because the application names few layers, the TF OD API recognizes layers by the arguments the
application passes (filter count, explicit name, padding before alignment); this module uses the same
rules, so the same layers change. Layer order, layer names and weight shapes are the application's, so
checkpoints and the Keras ImageNet weight file fit unchanged.

Known TF OD API limitation kept as is: with `output_stride=8` the 384-filter convolution of `mixed_7a`
also gets stride 1 while its 288 / 320-filter branches keep stride 2, so `mixed_7a` (the first layer of
the Faster R-CNN box classifier) can only concatenate 1x1 inputs; larger crops raise
`tf.errors.InvalidArgumentError` at `mixed_7a`, in the TF OD API and here alike.
"""

import tf_keras

from object_detection.core import freezable_batch_norm

# Filter counts / names the Keras application passes for the layers that change at output stride 8.
_ATROUS_STRIDE_ONE_FILTERS = 384
_ATROUS_DILATED_FILTERS = (128, 160)
_ATROUS_DILATED_SAME_PADDED_FILTERS = 192
_ATROUS_DILATED_NAME_PART = 'block17'


class _DetectionLayers(object):
  """Layer factory handed to `tf_keras.applications.InceptionResNetV2(layers=...)`.

  Conv2D, MaxPooling2D (alias MaxPool2D) and BatchNormalization are replaced (see the module
  docstring); every other attribute is looked up on `tf_keras.layers`.
  """

  def __init__(self, batchnorm_training, output_stride, align_feature_maps, batchnorm_scale,
               default_batchnorm_momentum, default_batchnorm_epsilon, weight_decay):
    self._atrous = output_stride == 8
    self._align_feature_maps = align_feature_maps
    self._batchnorm_training = batchnorm_training
    self._batchnorm_scale = batchnorm_scale
    self._momentum = default_batchnorm_momentum
    self._epsilon = default_batchnorm_epsilon
    # One regularizer object for all convolutions, as in the TF OD API.
    self._regularizer = tf_keras.regularizers.l2(0.5 * weight_decay)

  def _dilated(self, filters, name, requested_padding):
    if name and _ATROUS_DILATED_NAME_PART in name:
      return True
    if filters in _ATROUS_DILATED_FILTERS:
      return True
    # The stem's 192-filter 3x3 conv is the only 'valid' one with 192 filters; it stays undilated.
    return (filters == _ATROUS_DILATED_SAME_PADDED_FILTERS
            and requested_padding.lower() != 'valid')

  def Conv2D(self, filters, kernel_size, **kwargs):  # pylint: disable=invalid-name
    requested_padding = kwargs.get('padding', '')
    kwargs['kernel_regularizer'] = self._regularizer
    kwargs['bias_regularizer'] = self._regularizer
    if self._atrous:
      if filters == _ATROUS_STRIDE_ONE_FILTERS:
        kwargs['strides'] = 1
      if self._dilated(filters, kwargs.get('name'), requested_padding):
        kwargs['dilation_rate'] = 2
    if self._align_feature_maps:
      kwargs['padding'] = 'same'
    return tf_keras.layers.Conv2D(filters, kernel_size, **kwargs)

  def MaxPooling2D(self, pool_size, strides, **kwargs):  # pylint: disable=invalid-name
    # Only the reduction blocks' pools pass padding='valid'; the stem's two pools keep stride 2.
    if self._atrous and kwargs.get('padding', '').lower() == 'valid':
      strides = 1
    if self._align_feature_maps:
      kwargs['padding'] = 'same'
    return tf_keras.layers.MaxPool2D(pool_size, strides=strides, **kwargs)

  MaxPool2D = MaxPooling2D  # pylint: disable=invalid-name

  def BatchNormalization(self, **kwargs):  # pylint: disable=invalid-name
    kwargs['scale'] = self._batchnorm_scale
    return freezable_batch_norm.FreezableBatchNorm(
        training=self._batchnorm_training, epsilon=self._epsilon, momentum=self._momentum, **kwargs)

  def __getattr__(self, item):
    return getattr(tf_keras.layers, item)


def inception_resnet_v2(batchnorm_training, output_stride=16, align_feature_maps=False,
                        batchnorm_scale=False, weight_decay=0.00004,
                        default_batchnorm_momentum=0.9997, default_batchnorm_epsilon=0.001,
                        **kwargs):
  """Builds the Keras InceptionResNetV2 with the TF OD API's detection changes.

  Matches `object_detection.models.keras_models.inception_resnet_v2.inception_resnet_v2` of the TF OD
  API (same arguments and defaults, same layers, names and variables).

  Args:
    batchnorm_training: bool or None, `training` of every `FreezableBatchNorm` (False freezes them).
    output_stride: 16, or 8 for the atrous variant (see the module docstring).
    align_feature_maps: bool, turn every 'valid' padding into 'same'.
    batchnorm_scale: bool, give batch norm layers a `gamma` variable.
    weight_decay: float, slim-style L2 weight; kernels and biases get `l2(weight_decay / 2)`.
    default_batchnorm_momentum: float, batch norm moving-average momentum.
    default_batchnorm_epsilon: float, batch norm variance epsilon.
    **kwargs: passed to `tf_keras.applications.InceptionResNetV2` (e.g. `weights=None`,
      `include_top=False`, `input_shape`).

  Returns:
    tf_keras.Model named 'inception_resnet_v2'; with `include_top=False` it maps float32
    [B, H, W, 3] images in [-1, 1] to float32 [B, h, w, 1536] (`conv_7b_ac`).

  Raises:
    ValueError: `output_stride` is not 8 or 16.
  """
  if output_stride not in (8, 16):
    raise ValueError('output_stride must be 8 or 16, got %r.' % (output_stride,))
  factory = _DetectionLayers(
      batchnorm_training, output_stride, align_feature_maps=align_feature_maps,
      batchnorm_scale=batchnorm_scale, default_batchnorm_momentum=default_batchnorm_momentum,
      default_batchnorm_epsilon=default_batchnorm_epsilon, weight_decay=weight_decay)
  return tf_keras.applications.InceptionResNetV2(layers=factory, **kwargs)
