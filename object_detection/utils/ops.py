"""Tensor helper ops (TF OD API `object_detection/utils/ops.py`).

The functions Faster R-CNN / Mask R-CNN and this project's box / matcher / sampler modules call,
with the TF OD API's names, arguments and return structures, written for TF2.

Coordinates: boxes are [ymin, xmin, ymax, xmax]; whether they are normalized to [0, 1] or absolute
pixels is stated per function.
"""

import tensorflow as tf

from object_detection.utils import shape_utils


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


# Pixels whose mask probability is above this are in the instance: evaluation, export
# (`detection_masks_reframed`) and `predict` all binarize with it (the TF OD API's 0.5).
MASK_THRESHOLD = 0.5


def reframe_and_threshold_masks(box_masks, boxes, image_height, image_width,
                                threshold=MASK_THRESHOLD):
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



def normalized_to_image_coordinates(normalized_boxes, image_shape, parallel_iterations=32):
  """Scales a batch of normalized boxes to absolute pixels (TF OD API signature).

  Args:
    normalized_boxes: float [batch, num_boxes, 4] normalized ymin, xmin, ymax, xmax.
    image_shape: int [4] (batch, height, width, channels) as the TF OD API takes it, e.g.
      `tf.shape(preprocessed_inputs)`. Also accepted (this project's older callers): a length-2
      (height, width) shape, with `normalized_boxes` of any shape [..., 4].
    parallel_iterations: parallelism of the per-image map (dynamic batch size only).

  Returns:
    absolute ymin, xmin, ymax, xmax boxes, same shape and dtype as `normalized_boxes`.
  """
  normalized_boxes = tf.convert_to_tensor(normalized_boxes)
  image_shape = tf.convert_to_tensor(image_shape)
  if image_shape.shape.as_list() == [2]:
    height, width = image_shape[0], image_shape[1]
  else:
    height, width = image_shape[1], image_shape[2]
  y_scale = tf.cast(height, normalized_boxes.dtype)
  x_scale = tf.cast(width, normalized_boxes.dtype)
  scale = tf.stack([y_scale, x_scale, y_scale, x_scale])
  if normalized_boxes.shape.ndims != 3:
    return normalized_boxes * scale

  def to_absolute(boxes):
    return boxes * scale

  return shape_utils.static_or_dynamic_map_fn(
      to_absolute, elems=normalized_boxes, dtype=normalized_boxes.dtype,
      parallel_iterations=parallel_iterations, back_prop=True)


def expanded_shape(orig_shape, start_dim, num_dims):
  """Inserts `num_dims` ones at position `start_dim` of the int32 shape vector `orig_shape`."""
  start = tf.reshape(start_dim, [1])
  ones = tf.ones(tf.reshape(num_dims, [1]), dtype=tf.int32)
  return tf.concat([tf.slice(orig_shape, [0], start), ones, tf.slice(orig_shape, start, [-1])], 0)


def meshgrid(x, y):
  """Tiles `x` and `y` into two grids of shape y.shape + x.shape (numpy.meshgrid for vectors).

  Returns:
    (xgrid, ygrid) with xgrid[i..., j...] = x[j...] and ygrid[i..., j...] = y[i...]. The
    GridAnchorGenerator's anchor order follows from this layout.
  """
  x = tf.convert_to_tensor(x)
  y = tf.convert_to_tensor(y)
  x_exp_shape = expanded_shape(tf.shape(x), 0, tf.rank(y))
  y_exp_shape = expanded_shape(tf.shape(y), tf.rank(y), tf.rank(x))
  xgrid = tf.tile(tf.reshape(x, x_exp_shape), y_exp_shape)
  ygrid = tf.tile(tf.reshape(y, y_exp_shape), x_exp_shape)
  grid_shape = y.get_shape().concatenate(x.get_shape())
  xgrid.set_shape(grid_shape)
  ygrid.set_shape(grid_shape)
  return xgrid, ygrid


def indices_to_dense_vector(indices, size, indices_value=1., default_value=0, dtype=tf.float32):
  """Dense [size] vector of `default_value` with `indices_value` at `indices`.

  Args:
    indices: int 1-D tensor of positions (any order; duplicates allowed).
    size: int or scalar int tensor, the output length.
    indices_value: value written at `indices`.
    default_value: value everywhere else.
    dtype: output dtype.

  Returns:
    `dtype` tensor of shape [size].
  """
  size = tf.cast(size, tf.int32)
  background = tf.ones([size], dtype=dtype) * default_value
  values = tf.ones_like(indices, dtype=dtype) * indices_value
  # dynamic_stitch: later lists overwrite earlier ones, so the indexed values win.
  return tf.dynamic_stitch([tf.range(size), tf.cast(indices, tf.int32)], [background, values])


def reduce_sum_trailing_dimensions(tensor, ndims):
  """Sums `tensor` over every dimension after the first `ndims`."""
  return tf.reduce_sum(tensor, axis=tuple(range(ndims, tensor.shape.ndims)))


def matmul_gather_on_zeroth_axis(params, indices, scope=None):
  """`tf.gather(params, indices)` along axis 0 computed as one_hot(indices) @ params.

  Args:
    params: float32 tensor of rank >= 1.
    indices: int32 / int64 tensor with values in [0, params.shape[0]).
    scope: name scope (default 'MatMulGather').

  Returns:
    float32 tensor of shape indices.shape + params.shape[1:].
  """
  with tf.name_scope(scope or 'MatMulGather'):
    params_shape = shape_utils.combined_static_and_dynamic_shape(params)
    indices_shape = shape_utils.combined_static_and_dynamic_shape(indices)
    params_2d = tf.reshape(params, [params_shape[0], -1])
    selector = tf.one_hot(indices, params_shape[0])
    gathered = tf.matmul(selector, params_2d)
    return tf.reshape(gathered, tf.stack(indices_shape + params_shape[1:]))


def fpn_feature_levels(num_levels, unit_scale_index, image_ratio, boxes):
  """FPN level of each box from its area (Lin et al. 2017, eq. 1; TF OD API formula).

  level = clip(floor(log2(sqrt(h * w) * image_ratio)) + unit_scale_index, 0, num_levels - 1)

  Args:
    num_levels: int > 0, number of feature levels.
    unit_scale_index: int in [0, num_levels), level of a box whose sqrt(area) * image_ratio is 1.
    image_ratio: float (or scalar tensor), input image side over the pretraining image side.
    boxes: float [batch, num_boxes, 4] normalized ymin, xmin, ymax, xmax.

  Returns:
    int32 [batch, num_boxes] level indices in [0, num_levels).

  Raises:
    AssertionError: if num_levels <= 0 or unit_scale_index is out of range.
  """
  assert num_levels > 0, '`num_levels` must be > 0. Found {}'.format(num_levels)
  assert 0 <= unit_scale_index < num_levels, (
      '`unit_scale_index` must be in [0, {}). Found {}.'.format(num_levels, unit_scale_index))
  box_sizes = boxes[:, :, 2:4] - boxes[:, :, 0:2]
  sqrt_areas = tf.sqrt(tf.reduce_prod(box_sizes, axis=2))
  log_2 = tf.cast(tf.math.log(2.0), boxes.dtype)
  levels = tf.cast(
      tf.math.floordiv(tf.math.log(sqrt_areas * image_ratio), log_2) + unit_scale_index,
      tf.int32)
  return tf.maximum(0, tf.minimum(num_levels - 1, levels))


def nearest_neighbor_upsampling(input_tensor, scale=None, height_scale=None, width_scale=None):
  """Nearest-neighbour upsampling of [batch, h, w, c] by integer factors (reshape-based).

  Args:
    input_tensor: float [batch, height, width, channels].
    scale: int factor for both dimensions (overridden by height_scale / width_scale).
    height_scale: int factor for the height.
    width_scale: int factor for the width.

  Returns:
    [batch, height * h_scale, width * w_scale, channels].

  Raises:
    ValueError: if neither `scale` nor both `height_scale` and `width_scale` are given.
  """
  if not scale and (height_scale is None or width_scale is None):
    raise ValueError('Provide either `scale` or `height_scale` and `width_scale`.')
  with tf.name_scope('nearest_neighbor_upsampling'):
    h_scale = scale if height_scale is None else height_scale
    w_scale = scale if width_scale is None else width_scale
    batch, height, width, channels = shape_utils.combined_static_and_dynamic_shape(input_tensor)
    out = tf.stack([input_tensor] * w_scale, axis=3)
    out = tf.stack([out] * h_scale, axis=2)
    return tf.reshape(out, [batch, height * h_scale, width * w_scale, channels])


def gather_with_padding_values(input_tensor, indices, padding_value):
  """`tf.gather(input_tensor, indices)` where index -1 yields `padding_value`.

  Args:
    input_tensor: tensor [M, d_1, ..., d_k].
    indices: int 1-D tensor of values in [-1, M).
    padding_value: tensor [d_1, ..., d_k] used for the -1 entries.

  Returns:
    tensor [len(indices), d_1, ..., d_k].
  """
  padded = tf.concat([tf.expand_dims(padding_value, axis=0), input_tensor], axis=0)
  return tf.gather(padded, indices + 1)
