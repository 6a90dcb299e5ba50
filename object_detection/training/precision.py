"""Mixed precision: which Keras compute policy a training run uses, applied for the model build only.

`train_config.use_bfloat16: true` (TF OD API field) selects 'mixed_bfloat16'; the extension field
`train_config.mixed_precision` selects '' (float32), 'mixed_bfloat16' or 'mixed_float16'. Unlike the
TF OD API, which honours use_bfloat16 only with --use_tpu, the policy applies on any device (CPUs
with AVX512_BF16 / AMX run bfloat16 convolutions natively; GPUs want 'mixed_float16').

Under a mixed policy Keras layers keep float32 variables and compute in bfloat16/float16; the model
casts its predictions (box encodings, class scores, mask logits) to float32 before the losses, box
decoding, anchors, target assignment and NMS, which therefore stay float32, as do the losses.

The Keras policy is read when a layer is constructed, so it only has to be set while the training
model is built (`policy_scope`); the previous global policy is restored right after, and models
built later in the same process (in-training evaluation, export) are float32: a bfloat16-trained
checkpoint holds float32 variables and evaluates / exports like any other.

'mixed_float16' needs loss scaling (float16 gradients underflow): `loss_scale_optimizer` wraps the
optimizer in Keras' dynamic LossScaleOptimizer for the train step only; the checkpoint keeps
tracking the wrapped optimizer, so its keys are those of a float32 run plus the two loss-scale
variables `optimizer/loss_scale/{current_loss_scale,good_steps}` (the wrapper delegates its tracking
to the wrapped optimizer). Checkpoints therefore restore between float32, bfloat16 and float16 runs
in every direction: a run without loss scaling ignores those two, a float16 run resuming a
checkpoint without them starts at the initial scale 2**15.
"""
import contextlib

import tf_keras

from object_detection.utils import config_validation

FLOAT32 = 'float32'
MIXED_BFLOAT16 = 'mixed_bfloat16'
MIXED_FLOAT16 = 'mixed_float16'
# Values of train_config.mixed_precision ('' = as use_bfloat16 says).
FIELD_VALUES = ('', MIXED_BFLOAT16, MIXED_FLOAT16)


def policy_name(train_config, field='train_config'):
  """The Keras policy name a train_config asks for: 'float32', 'mixed_bfloat16' or 'mixed_float16'.

  Raises:
    config_validation.ConfigError: mixed_precision is not one of FIELD_VALUES, or it contradicts
      use_bfloat16: true.
  """
  value = train_config.mixed_precision
  if value not in FIELD_VALUES:
    raise config_validation.ConfigError(
        "Invalid pipeline config: `%s.mixed_precision` is '%s'; use one of '', "
        "'mixed_bfloat16', 'mixed_float16'." % (field, value))
  if train_config.use_bfloat16:
    if value not in ('', MIXED_BFLOAT16):
      raise config_validation.ConfigError(
          "Invalid pipeline config: `%s.use_bfloat16` is true but `%s.mixed_precision` is '%s'; "
          "remove one of them (use_bfloat16: true means mixed_precision: 'mixed_bfloat16')."
          % (field, field, value))
    return MIXED_BFLOAT16
  return value or FLOAT32


def uses_loss_scaling(name):
  """True for the policies whose gradients need loss scaling (float16)."""
  return name == MIXED_FLOAT16


@contextlib.contextmanager
def policy_scope(name):
  """Sets the global Keras (tf_keras) policy to `name` inside the block, restoring the previous one
  on exit (also on error). 'float32' leaves the policy object untouched, so float32 runs see
  exactly the policy they had before."""
  if name == FLOAT32:
    yield
    return
  previous = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


def loss_scale_optimizer(optimizer):
  """`optimizer` (a tf_keras legacy optimizer, EMA wrapper included) in Keras' dynamic
  LossScaleOptimizer: initial scale 2**15, halved after a step with non-finite gradients (whose
  update is skipped), doubled after 2000 finite steps. Use `get_scaled_loss` /
  `get_unscaled_gradients` around the gradient computation."""
  return tf_keras.mixed_precision.LossScaleOptimizer(optimizer, dynamic=True)
