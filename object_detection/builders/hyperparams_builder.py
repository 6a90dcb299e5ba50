"""Builds tf_keras layer arguments from a `Hyperparams` proto (TF OD API hyperparams.proto).

`KerasLayerHyperparams(hyperparams_config)` mirrors the TF OD API class of the same name:
  - `params(**overrides)` -> kwargs for tf_keras Conv2D / Dense: kernel_initializer, kernel_regularizer,
    bias_regularizer (None: the TF OD API does not regularize biases), plus overrides.
  - `build_activation_layer()` -> tf_keras layer (NONE -> identity, RELU, RELU_6, SWISH).
  - `use_batch_norm()`, `build_batch_norm()` (decay, center, scale, epsilon, train), `use_group_norm()`,
    `build_group_norm()` (32 groups), `build_normalization()` (whichever is configured, else None).
Supported: normalizer {batch_norm, sync_batch_norm (as batch_norm), group_norm};
regularizer {l1_regularizer, l2_regularizer}; like the TF OD API Keras builder, an L2 weight w
becomes tf_keras.regularizers.l2(0.5 * w) so the penalty equals slim's w * sum(x^2) / 2. Initializer
{truncated_normal_initializer, random_normal_initializer, variance_scaling_initializer,
keras_initializer_by_name}. A `None`
config gives Keras defaults (glorot_uniform, no regularizer, ReLU, no normalization).

Raises:
  ValueError: unknown initializer / regularizer / activation, naming the field.
"""

import tf_keras


def _oneof(msg, name):
  try:
    return msg.WhichOneof(name)
  except (ValueError, AttributeError):
    return None


class KerasLayerHyperparams(object):
  """Keras layer arguments from a Hyperparams proto (or None for defaults)."""

  def __init__(self, hyperparams_config=None):
    self._config = hyperparams_config
    self._kwargs = {}
    if hyperparams_config is None:
      return
    self._kwargs['kernel_initializer'] = _build_initializer(hyperparams_config)
    self._kwargs['kernel_regularizer'] = _build_regularizer(hyperparams_config)

  def params(self, **overrides):
    out = dict(self._kwargs)
    if self._config is not None:
      # A fresh initializer per layer: Keras warns when one unseeded instance is reused.
      out['kernel_initializer'] = _build_initializer(self._config)
    out.update(overrides)
    return out

  def use_batch_norm(self):
    # sync_batch_norm is plain batch norm on one replica / CPU (the case this pipeline targets).
    return self._config is not None and (_has(self._config, 'batch_norm') or
                                         _has(self._config, 'sync_batch_norm'))

  def use_group_norm(self):
    return self._config is not None and _has(self._config, 'group_norm')

  def batch_norm_trainable(self):
    return self.use_batch_norm() and self._config.batch_norm.train

  def build_batch_norm(self, name=None):
    bn = (self._config.batch_norm if _has(self._config, 'batch_norm') else self._config.sync_batch_norm)
    return tf_keras.layers.BatchNormalization(
        momentum=bn.decay, center=bn.center, scale=bn.scale, epsilon=bn.epsilon,
        trainable=bn.train, name=name)

  def build_group_norm(self, name=None):
    return tf_keras.layers.GroupNormalization(groups=32, name=name)

  def build_normalization(self, name=None):
    """Returns the normalization layer the config asks for, or None."""
    if self.use_batch_norm():
      return self.build_batch_norm(name=name)
    if self.use_group_norm():
      return self.build_group_norm(name=name)
    return None

  def build_activation_layer(self, name=None):
    if self._config is None:
      return tf_keras.layers.Activation('relu', name=name)
    act = self._config.activation
    names = {0: 'linear', 1: 'relu', 2: tf_keras.activations.relu, 3: 'swish'}
    # Hyperparams.Activation enum: NONE=0, RELU=1, RELU_6=2, SWISH=3.
    if act not in names:
      raise ValueError('Hyperparams.activation %r is not supported (NONE, RELU, RELU_6, SWISH).' % act)
    if act == 2:
      return tf_keras.layers.ReLU(max_value=6.0, name=name)
    return tf_keras.layers.Activation(names[act], name=name)


def _has(msg, field):
  try:
    return msg.HasField(field)
  except ValueError:
    return False


def _build_regularizer(config):
  if not _has(config, 'regularizer'):
    return None
  reg = config.regularizer
  kind = _oneof(reg, 'regularizer_oneof')
  if kind is None:
    return None
  if kind == 'l2_regularizer':
    # TF OD API Keras: tf.keras.regularizers.l2(0.5 * weight) to match slim's l2_regularizer.
    return tf_keras.regularizers.l2(0.5 * float(reg.l2_regularizer.weight))
  if kind == 'l1_regularizer':
    return tf_keras.regularizers.l1(float(reg.l1_regularizer.weight))
  raise ValueError('Hyperparams.regularizer %r is not supported (l1_regularizer, l2_regularizer).' % kind)


def _build_initializer(config):
  if not _has(config, 'initializer'):
    return 'glorot_uniform'
  init = config.initializer
  kind = _oneof(init, 'initializer_oneof')
  if kind is None:
    return 'glorot_uniform'
  if kind == 'truncated_normal_initializer':
    i = init.truncated_normal_initializer
    return tf_keras.initializers.TruncatedNormal(mean=i.mean, stddev=i.stddev)
  if kind == 'random_normal_initializer':
    i = init.random_normal_initializer
    return tf_keras.initializers.RandomNormal(mean=i.mean, stddev=i.stddev)
  if kind == 'variance_scaling_initializer':
    i = init.variance_scaling_initializer
    # VarianceScalingInitializer.Mode enum: FAN_IN=0, FAN_OUT=1, FAN_AVG=2.
    mode = {0: 'fan_in', 1: 'fan_out', 2: 'fan_avg'}[int(i.mode)]
    return tf_keras.initializers.VarianceScaling(
        scale=i.factor, mode=mode, distribution='uniform' if i.uniform else 'truncated_normal')
  if kind == 'keras_initializer_by_name':
    try:
      return tf_keras.initializers.get(init.keras_initializer_by_name.initializer or 'glorot_uniform')
    except ValueError as e:
      raise ValueError('Hyperparams.initializer.keras_initializer_by_name: unknown initializer %r.'
                       % init.keras_initializer_by_name.initializer) from e
  raise ValueError('Hyperparams.initializer %r is not supported (truncated_normal_initializer, '
                   'random_normal_initializer, variance_scaling_initializer).' % kind)
