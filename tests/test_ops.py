"""Tests for object_detection.utils.ops (mask reframing)."""
import numpy as np
import tensorflow as tf

from object_detection.utils import ops


def test_reframe_full_box_is_identity_like():
  # A box covering the whole image maps the box mask onto the whole image.
  box_masks = np.zeros((1, 4, 4), np.float32)
  box_masks[0, :2, :] = 1.0  # top half
  out = ops.reframe_box_masks_to_image_masks(box_masks, np.array([[0., 0., 1., 1.]], np.float32),
                                             8, 8).numpy()
  assert out.shape == (1, 8, 8)
  assert out.dtype == np.float32
  assert np.all(out[0, :3, :] > 0.99)
  assert np.all(out[0, 5:, :] < 0.01)


def test_reframe_places_mask_inside_box_only():
  box_masks = np.ones((2, 7, 7), np.float32)
  boxes = np.array([[0.25, 0.25, 0.75, 0.5], [0.0, 0.5, 0.5, 1.0]], np.float32)
  out = ops.reframe_box_masks_to_image_masks(box_masks, boxes, 16, 20).numpy()
  assert out.shape == (2, 16, 20)
  binary = out > 0.5
  # First box: rows 4..11, cols 5..9 (absolute 4..12, 5..10).
  expected0 = np.zeros((16, 20), bool)
  expected0[4:12, 5:10] = True
  np.testing.assert_array_equal(binary[0], expected0)
  expected1 = np.zeros((16, 20), bool)
  expected1[0:8, 10:20] = True
  np.testing.assert_array_equal(binary[1], expected1)


def test_reframe_uint8_nearest_keeps_dtype():
  box_masks = np.ones((1, 5, 5), np.uint8)
  out = ops.reframe_box_masks_to_image_masks(
      box_masks, np.array([[0.5, 0.5, 1.0, 1.0]], np.float32), 10, 10).numpy()
  assert out.dtype == np.uint8
  assert out[0, 5:, 5:].min() == 1 and out[0, :5].max() == 0 and out[0, :, :5].max() == 0


def test_reframe_empty_and_in_graph():
  empty = ops.reframe_box_masks_to_image_masks(np.zeros((0, 3, 3), np.float32),
                                               np.zeros((0, 4), np.float32), 6, 9)
  assert empty.shape == (0, 6, 9)

  @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float32),
                                tf.TensorSpec([None, 4], tf.float32),
                                tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
  def fn(masks, boxes, h, w):
    return ops.reframe_box_masks_to_image_masks(masks, boxes, h, w)

  out = fn(np.ones((1, 3, 3), np.float32), np.array([[0., 0., .5, .5]], np.float32),
           tf.constant(8), tf.constant(8)).numpy()
  assert out.shape == (1, 8, 8)
  assert out[0, :4, :4].min() > 0.99 and out[0, 4:, :].max() < 0.01
  assert fn(np.zeros((0, 3, 3), np.float32), np.zeros((0, 4), np.float32),
            tf.constant(8), tf.constant(8)).shape == (0, 8, 8)


def test_reframe_and_threshold_and_bad_method():
  out = ops.reframe_and_threshold_masks(np.full((1, 4, 4), 0.6, np.float32),
                                        np.array([[0., 0., 1., 1.]], np.float32), 4, 4).numpy()
  assert out.dtype == np.uint8 and out.min() == 1
  try:
    ops.reframe_box_masks_to_image_masks(np.ones((1, 2, 2), np.float32),
                                         np.array([[0., 0., 1., 1.]], np.float32), 4, 4,
                                         resize_method='bicubic')
  except ValueError as e:
    assert 'resize_method' in str(e)
  else:
    raise AssertionError('expected ValueError')


def test_normalized_to_image_coordinates():
  out = ops.normalized_to_image_coordinates(np.array([[0.1, 0.2, 0.5, 1.0]], np.float32),
                                            [100, 200]).numpy()
  np.testing.assert_allclose(out, [[10., 40., 50., 200.]], rtol=1e-6)
