"""The mask head's reordered resize + first convolution computes the TF OD API's resize-then-conv."""

import numpy as np
import pytest
import tensorflow as tf

from object_detection.predictors.heads import keras_mask_head


def _reference(features, kernel, bias, height, width):
  resized = tf.raw_ops.ResizeBilinear(images=features, size=[height, width], align_corners=True,
                                      half_pixel_centers=False)
  out = tf.nn.conv2d(resized, kernel, strides=1, padding='SAME')
  return out + bias if bias is not None else out


@pytest.mark.parametrize('shape,out_size,kernel_size', [
    ((3, 4, 4, 32), (33, 33), 3),   # ResNet C4 conv5 features -> 33x33 masks
    ((2, 1, 1, 16), (28, 28), 3),   # FPN box classifier output -> 28x28
    ((2, 8, 8, 8), (33, 33), 3),    # Inception-ResNet-v2 box classifier features
    ((2, 3, 5, 8), (14, 15), 3),    # non-square, odd sizes
    ((2, 4, 4, 8), (17, 17), 5),    # a 5x5 kernel
])
def test_resize_then_conv_equals_resizing_then_convolving(shape, out_size, kernel_size):
  rng = np.random.RandomState(0)
  features = tf.constant(rng.normal(size=shape), tf.float32)
  kernel = tf.Variable(rng.normal(size=(kernel_size, kernel_size, shape[3], 6)).astype(np.float32))
  bias = tf.Variable(rng.normal(size=(6,)).astype(np.float32))
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(features)
    expected = _reference(features, kernel, bias, *out_size)
    ours = keras_mask_head.resize_then_conv(features, kernel, bias, *out_size)
    weights = tf.constant(rng.normal(size=expected.shape), tf.float32)
    loss_expected = tf.reduce_sum(expected * weights)
    loss_ours = tf.reduce_sum(ours * weights)
  scale = float(np.abs(expected).max())
  np.testing.assert_allclose(ours, expected, atol=1e-5 * scale)
  for a, b in zip(tape.gradient(loss_ours, [features, kernel, bias]),
                  tape.gradient(loss_expected, [features, kernel, bias])):
    np.testing.assert_allclose(a, b, atol=1e-4 * float(np.abs(b).max()))


def test_reordering_is_used_only_where_it_is_cheaper():
  cheaper = keras_mask_head._resize_then_conv_is_cheaper  # pylint: disable=protected-access
  assert cheaper(tf.TensorShape([None, 4, 4, 2048]), 33, 33)
  assert cheaper(tf.TensorShape([None, 1, 1, 1024]), 28, 28)
  assert not cheaper(tf.TensorShape([None, 14, 14, 256]), 14, 14)  # ROI crops at the mask size
  assert not cheaper(tf.TensorShape([None, None, None, 256]), 33, 33)
