"""Batch normalization whose train/inference mode can be fixed when the layer is built.

Matches the TF OD API's `object_detection.core.freezable_batch_norm.FreezableBatchNorm` (same class
name, constructor argument and behaviour), so models built here hold the same layers and the same
checkpoint variables (`gamma`, `beta`, `moving_mean`, `moving_variance`).

Detection models are often trained with batch norm frozen (the pretrained statistics are used as at
inference, and nothing is updated) while the rest of the network trains; Keras' own layer decides
its mode only from the `training` argument of each call.
"""

import tf_keras


class FreezableBatchNorm(tf_keras.layers.BatchNormalization):
  """`tf_keras.layers.BatchNormalization` with an optional fixed mode.

  Args:
    training: False freezes the layer: every call normalizes with the moving mean / variance and
      updates nothing, whatever `training` the call passes. True or None: the layer follows the
      call's `training` argument like the Keras layer.
    **kwargs: passed to `tf_keras.layers.BatchNormalization` (axis, momentum, epsilon, center,
      scale, name, ...).

  Input and output: float tensors of any rank, same shape.
  """

  def __init__(self, training=None, **kwargs):
    super().__init__(**kwargs)
    self._training = training

  def call(self, inputs, training=None):
    # Only an explicit False freezes; True / None leave the decision to the caller as Keras does.
    if self._training is False:  # pylint: disable=g-bool-id-comparison
      training = False
    return super().call(inputs, training=training)
