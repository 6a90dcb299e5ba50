"""Tensor ops shared by evaluation, export and visualization.

Port of the mask helpers of the TF OD API's `object_detection/utils/ops.py`.

Coordinates: boxes are [ymin, xmin, ymax, xmax], normalized to [0, 1] relative to the image the
masks are pasted into.
"""

import tensorflow as tf


def _transform_boxes_relative_to_boxes(boxes, reference_boxes):
  """Expresses `boxes` in the normalized frame of `reference_boxes`.

  Args:
    boxes: float32 [N, 4] normalized ymin, xmin, ymax, xmax.
    reference_boxes: float32 [N, 4] normalized ymin, xmin, ymax, xmax.

  Returns:
    float32 [N, 4]: boxes[i] in the coordinate frame where reference_boxes[i] is [0, 0, 1, 1].
  """
  boxes = tf.reshape(boxes, [-1, 2, 2])
  min_corner = tf.expand_dims(reference_boxes[:, 0:2], 1)
  max_corner = tf.expand_dims(reference_boxes[:, 2:4], 1)
  # Guard degenerate (zero-size) boxes against division by zero (same floor as the TF OD API).
  denom = tf.maximum(max_corner - min_corner, 1e-4)
  transformed = (boxes - min_corner) / denom
  return tf.reshape(transformed, [-1, 4])


def reframe_box_masks_to_image_masks(box_masks, boxes, image_height, image_width,
                                     resize_method='bilinear'):
  """Pastes box-relative masks into image-sized masks.

  As the TF OD API does: the unit box [0, 0, 1, 1] of the whole image is expressed in the
  frame of each detection box, and `tf.image.crop_and_resize` samples the box mask at that
  inverse box. Pixels outside the detection box sample zero (extrapolation value 0).
  Graph-compatible (works inside `tf.function` and exported SavedModels).

  Args:
    box_masks: float32 [N, mask_height, mask_width] box-relative masks (probabilities or 0/1).
      uint8 masks are accepted: they are sampled with 'nearest' and returned as uint8.
    boxes: float32 [N, 4] normalized ymin, xmin, ymax, xmax of each mask's box in the image.
    image_height: int or scalar int32 tensor, height of the output image masks.
    image_width: int or scalar int32 tensor, width of the output image masks.
    resize_method: 'bilinear' or 'nearest', the crop_and_resize sampling method.

  Returns:
    float32 [N, image_height, image_width] image-sized masks (values in the box mask's range);
    uint8 when `box_masks` is uint8.

  Raises:
    ValueError: if `resize_method` is neither 'bilinear' nor 'nearest'.
  """
  if resize_method not in ('bilinear', 'nearest'):
    raise ValueError(
        'resize_method must be "bilinear" or "nearest", got %r.' % (resize_method,))
  box_masks = tf.convert_to_tensor(box_masks)
  out_dtype = tf.float32
  if box_masks.dtype == tf.uint8:
    # As the TF OD API: binary masks are sampled with nearest neighbour and stay uint8.
    resize_method = 'nearest'
    out_dtype = tf.uint8
  box_masks_float = tf.cast(box_masks, tf.float32)
  boxes = tf.cast(tf.convert_to_tensor(boxes), tf.float32)
  image_height = tf.cast(image_height, tf.int32)
  image_width = tf.cast(image_width, tf.int32)

  def reframe_non_empty():
    num_boxes = tf.shape(box_masks_float)[0]
    unit_boxes = tf.tile(tf.constant([[0.0, 0.0, 1.0, 1.0]], tf.float32), [num_boxes, 1])
    reverse_boxes = _transform_boxes_relative_to_boxes(unit_boxes, boxes)
    masks = tf.image.crop_and_resize(
        image=tf.expand_dims(box_masks_float, axis=3),
        boxes=reverse_boxes,
        box_indices=tf.range(num_boxes),
        crop_size=tf.stack([image_height, image_width]),
        method=resize_method,
        extrapolation_value=0.0)
    return tf.cast(tf.squeeze(masks, axis=3), out_dtype)

  def reframe_empty():
    return tf.zeros(tf.stack([0, image_height, image_width]), dtype=out_dtype)

  return tf.cond(tf.greater(tf.shape(box_masks)[0], 0), reframe_non_empty, reframe_empty)


def reframe_and_threshold_masks(box_masks, boxes, image_height, image_width, threshold=0.5):
  """Reframes box masks to the image and binarizes them.

  Args:
    box_masks: float32 [N, mask_height, mask_width] box-relative probabilities.
    boxes: float32 [N, 4] normalized ymin, xmin, ymax, xmax.
    image_height: int or scalar int32 tensor.
    image_width: int or scalar int32 tensor.
    threshold: float, pixels with probability > threshold become 1.

  Returns:
    uint8 [N, image_height, image_width] 0/1 masks.
  """
  masks = reframe_box_masks_to_image_masks(box_masks, boxes, image_height, image_width)
  return tf.cast(tf.greater(masks, threshold), tf.uint8)


def normalized_to_image_coordinates(normalized_boxes, image_shape):
  """Converts normalized boxes to absolute pixel coordinates.

  Args:
    normalized_boxes: float32 [..., 4] normalized ymin, xmin, ymax, xmax.
    image_shape: int/float [2] or [>=2] (height, width, ...).

  Returns:
    float32 [..., 4] absolute ymin, xmin, ymax, xmax in pixels.
  """
  image_shape = tf.cast(tf.convert_to_tensor(image_shape)[:2], tf.float32)
  scale = tf.stack([image_shape[0], image_shape[1], image_shape[0], image_shape[1]])
  return tf.cast(normalized_boxes, tf.float32) * scale
