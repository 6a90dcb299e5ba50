"""Keras layer arguments from a `Hyperparams` proto (TF OD API `hyperparams_builder.KerasLayerHyperparams`).

`KerasLayerHyperparams(hyperparams_config)` has the TF OD API class's interface and semantics (TF2 / Keras
path), so the layers built from one config are the same in both code bases:

  - `params(include_activation=False, **overrides)`: kwargs for `tf_keras.layers.Conv2D` / `Dense`:
    `kernel_initializer`, `kernel_regularizer`, `activation` (None unless `include_activation`),
    `use_bias`; then `overrides`.
  - `use_bias()`: True unless batch norm with `center` follows (bias and beta would be redundant), or
    `force_use_bias` is set.
  - `build_batch_norm(training=None, **overrides)`: a `FreezableBatchNorm(training=training,
    momentum=decay, center, scale, epsilon)` when the config has `batch_norm` (or `sync_batch_norm`, run as
    plain batch norm: one replica on this machine's CPU), else an identity `Lambda`. As in the TF OD API,
    `BatchNorm.train` is not read here: the caller decides the mode through `training`.
  - `build_activation_layer(name='activation')`: a `Lambda` applying relu / relu6 / swish / identity.
  - `use_batch_norm()`, `use_sync_batch_norm()`, `force_use_bias()`, `batch_norm_params(**overrides)`,
    `get_regularizer_weight()`.

Regularizers: an L2 weight `w` becomes `tf_keras.regularizers.l2(0.5 * w)` (the penalty of slim's
`l2_regularizer(w)`, which the TF OD API keeps for Keras); L1 weights are used as given.
Initializers: truncated normal (mean, stddev), random normal (mean, stddev), variance scaling (factor,
mode, uniform or truncated normal), `keras_initializer_by_name` (a Keras initializer name string); no
initializer gives the Keras default (glorot uniform).

`group_norm` has no Keras layer in the TF OD API's TF2 builder (its Keras path builds no normalization for
it); the same holds here, with a logged warning so the config's intent is not dropped silently.

Raises:
  ConfigError: `hyperparams_config` is not a `Hyperparams` message, or an unknown activation / regularizer /
    initializer / Keras initializer name (the message names the field).
"""

from absl import logging
import tensorflow as tf
import tf_keras

from object_detection.core import freezable_batch_norm
from object_detection.protos import hyperparams_pb2
from object_detection.utils.config_validation import ConfigError

_ACTIVATIONS = {
    hyperparams_pb2.Hyperparams.NONE: None,
    hyperparams_pb2.Hyperparams.RELU: tf.nn.relu,
    hyperparams_pb2.Hyperparams.RELU_6: tf.nn.relu6,
    hyperparams_pb2.Hyperparams.SWISH: tf.nn.swish,
}


class KerasLayerHyperparams(object):
  """Arguments and normalization / activation layers for Keras layers built from one `Hyperparams`."""

  def __init__(self, hyperparams_config):
    if not isinstance(hyperparams_config, hyperparams_pb2.Hyperparams):
      raise ValueError('hyperparams_config must be a Hyperparams proto message, got %s.'
                       % type(hyperparams_config).__name__)
    self._config = hyperparams_config
    normalizer = hyperparams_config.WhichOneof('normalizer_oneof')
    self._use_sync_batch_norm = normalizer == 'sync_batch_norm'
    self._batch_norm_params = None
    if normalizer in ('batch_norm', 'sync_batch_norm'):
      bn = getattr(hyperparams_config, normalizer)
      self._batch_norm_params = {'momentum': bn.decay, 'center': bn.center, 'scale': bn.scale,
                                 'epsilon': bn.epsilon}
    elif normalizer == 'group_norm':
      logging.warning('Hyperparams.group_norm builds no normalization layer in Keras models (as in the '
                      'TF OD API TF2 builder); use batch_norm to normalize.')
    self._force_use_bias = hyperparams_config.force_use_bias
    self._activation_fn = _activation_fn(hyperparams_config.activation)
    self._kernel_regularizer = _keras_regularizer(hyperparams_config.regularizer)
    # Validates the initializer now, so a bad config fails at build time and not at the first layer.
    _keras_initializer(hyperparams_config.initializer)

  def use_batch_norm(self):
    return self._batch_norm_params is not None

  def use_sync_batch_norm(self):
    return self._use_sync_batch_norm

  def force_use_bias(self):
    return self._force_use_bias

  def use_bias(self):
    return self._force_use_bias or not (self.use_batch_norm() and self._batch_norm_params['center'])

  def batch_norm_params(self, **overrides):
    """Returns a new dict: momentum, center, scale, epsilon (empty without batch norm), then overrides."""
    params = dict(self._batch_norm_params or {})
    params.update(overrides)
    return params

  def build_batch_norm(self, training=None, **overrides):
    """Returns a FreezableBatchNorm (fixed to `training` when it is False) or an identity Lambda.

    Args:
      training: None / True (follow the call's `training` argument) or False (frozen).
      **overrides: batch norm constructor arguments replacing the config's (e.g. `name`).
    """
    if self.use_batch_norm():
      return freezable_batch_norm.FreezableBatchNorm(training=training,
                                                     **self.batch_norm_params(**overrides))
    return tf_keras.layers.Lambda(tf.identity, name=overrides.get('name'))

  def build_activation_layer(self, name='activation'):
    """Returns a `tf_keras.layers.Lambda` applying the configured activation (identity for NONE)."""
    return tf_keras.layers.Lambda(self._activation_fn or tf.identity, name=name)

  def get_regularizer_weight(self):
    """The regularizer's weight as stored in the Keras regularizer (L2: half the config's), or None."""
    for attr in ('l1', 'l2'):
      value = getattr(self._kernel_regularizer, attr, None)
      if value is not None:
        return float(value)
    return None

  def params(self, include_activation=False, **overrides):
    """Returns kwargs for a Keras Conv2D / Dense layer (a fresh initializer object per call)."""
    params = {
        'kernel_regularizer': self._kernel_regularizer,
        'kernel_initializer': _keras_initializer(self._config.initializer),
        'activation': self._activation_fn if include_activation else None,
        'use_bias': self.use_bias(),
    }
    params.update(**overrides)
    return params


def _activation_fn(activation):
  if activation not in _ACTIVATIONS:
    raise ConfigError('Hyperparams.activation %r is not supported (NONE, RELU, RELU_6, SWISH).' % activation)
  return _ACTIVATIONS[activation]


def _keras_regularizer(regularizer):
  kind = regularizer.WhichOneof('regularizer_oneof')
  if kind is None:
    return None
  if kind == 'l1_regularizer':
    return tf_keras.regularizers.l1(float(regularizer.l1_regularizer.weight))
  if kind == 'l2_regularizer':
    # slim's l2_regularizer(w) is w * sum(x^2) / 2; Keras' l2(c) is c * sum(x^2).
    return tf_keras.regularizers.l2(float(regularizer.l2_regularizer.weight * 0.5))
  raise ConfigError('Hyperparams.regularizer %r is not supported (l1_regularizer, l2_regularizer).' % kind)


def _keras_initializer(initializer):
  kind = initializer.WhichOneof('initializer_oneof')
  if kind is None:
    return None  # Keras' default for the layer (glorot uniform kernels).
  if kind == 'truncated_normal_initializer':
    init = initializer.truncated_normal_initializer
    return tf_keras.initializers.TruncatedNormal(mean=init.mean, stddev=init.stddev)
  if kind == 'random_normal_initializer':
    init = initializer.random_normal_initializer
    return tf_keras.initializers.RandomNormal(mean=init.mean, stddev=init.stddev)
  if kind == 'variance_scaling_initializer':
    init = initializer.variance_scaling_initializer
    mode = hyperparams_pb2.VarianceScalingInitializer.Mode.Name(init.mode).lower()
    return tf_keras.initializers.VarianceScaling(
        scale=init.factor, mode=mode, distribution='uniform' if init.uniform else 'truncated_normal')
  if kind == 'keras_initializer_by_name':
    name = initializer.keras_initializer_by_name
    try:
      return tf_keras.initializers.get(name)
    except ValueError as e:
      raise ConfigError('Hyperparams.initializer.keras_initializer_by_name: %r is not a Keras initializer '
                        'name (e.g. "glorot_uniform", "he_normal").' % name) from e
  raise ConfigError('Hyperparams.initializer %r is not supported.' % kind)
