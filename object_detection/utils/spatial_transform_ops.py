"""ROI crop ops for Faster R-CNN / Mask R-CNN (matches the TF OD API's
`utils/spatial_transform_ops.py`).

All boxes are [ymin, xmin, ymax, xmax] in normalized coordinates: a normalized y maps to
y * (height - 1) in the feature map, so [0, 1] spans the first to the last pixel center
(the `tf.image.crop_and_resize` convention). Coordinates outside [0, 1] sample the
extrapolation value; ymin > ymax gives a flipped crop.

Entry points used by the meta-architecture as `crop_and_resize_fn(features_to_crop_list, boxes,
box_levels, crop_size)`:
* `multilevel_native_crop_and_resize` (tf.image.crop_and_resize per level), the default;
* `multilevel_matmul_crop_and_resize` (gather + bilinear kernel, `use_matmul_crop_and_resize`).
"""

import tensorflow as tf


def _coordinate_vector_1d(start, end, size, align_endpoints):
  """Sample positions along one axis of each box.

  Args:
    start, end: float [batch, num_boxes] box extent on this axis.
    size: int, number of samples.
    align_endpoints: True puts the first/last sample on start/end (a single sample sits at the
      middle); False puts samples at the centers of `size` equal cells.

  Returns:
    float [batch, num_boxes, size].
  """
  start = start[..., tf.newaxis]
  end = end[..., tf.newaxis]
  length = end - start
  if align_endpoints:
    spacing = tf.linspace(0.0, 1.0, size)
    offset = 0 if size > 1 else length / 2
  else:
    spacing = tf.linspace(0.0, 1.0, size + 1)[:-1]
    offset = length / (2 * size)
  spacing = tf.cast(tf.reshape(spacing, [1, 1, size]), start.dtype)
  return start + offset + spacing * length


def box_grid_coordinate_vectors(boxes, size_y, size_x, align_corners=False):
  """Sample grid of each box (TF OD API `box_grid_coordinate_vectors`).

  Args:
    boxes: float [batch, num_boxes, 4] boxes in any frame.
    size_y, size_x: grid size.
    align_corners: put the corner samples on the box corners (else cell centers).

  Returns:
    (box_grid_y [batch, num_boxes, size_y], box_grid_x [batch, num_boxes, size_x]) in the frame
    of `boxes`.
  """
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
  return (_coordinate_vector_1d(ymin, ymax, size_y, align_corners),
          _coordinate_vector_1d(xmin, xmax, size_x, align_corners))


def feature_grid_coordinate_vectors(box_grid_y, box_grid_x):
  """Integer neighbours of each sample point (TF OD API `feature_grid_coordinate_vectors`).

  The upper neighbour is floor(v + 1) (not floor(v) + 1), which the TF OD API uses and which
  differs for values within float rounding of an integer.

  Returns:
    int32 (y0, x0, y1, x1), each shaped like its input.
  """
  return (tf.cast(tf.floor(box_grid_y), tf.int32), tf.cast(tf.floor(box_grid_x), tf.int32),
          tf.cast(tf.floor(box_grid_y + 1), tf.int32), tf.cast(tf.floor(box_grid_x + 1), tf.int32))


def _valid_indicator(feature_grid_y, feature_grid_x, true_feature_shapes):
  """bool [batch * num_boxes * size_y * size_x]: grid point lies on its (unpadded) level."""
  height = tf.cast(true_feature_shapes[:, :, 0:1], feature_grid_y.dtype)
  width = tf.cast(true_feature_shapes[:, :, 1:2], feature_grid_x.dtype)
  valid_y = tf.logical_and(feature_grid_y >= 0, feature_grid_y < height)
  valid_x = tf.logical_and(feature_grid_x >= 0, feature_grid_x < width)
  return tf.reshape(tf.logical_and(valid_y[:, :, :, tf.newaxis], valid_x[:, :, tf.newaxis, :]),
                    [-1])


def ravel_indices(feature_grid_y, feature_grid_x, num_levels, height, width, box_levels):
  """Flat row indices into features reshaped from [batch, levels, height, width, C] to [-1, C].

  Args:
    feature_grid_y: int32 [batch, num_boxes, size_y].
    feature_grid_x: int32 [batch, num_boxes, size_x].
    num_levels: number of levels.
    height, width: padded level height / width.
    box_levels: int32 [batch, num_boxes] level of each box.

  Returns:
    int32 [batch * num_boxes * size_y * size_x].
  """
  batch_size = tf.shape(feature_grid_y)[0]
  level_stride = height * width
  batch_stride = num_levels * level_stride
  batch_part = tf.reshape(tf.range(batch_size) * batch_stride, [-1, 1, 1, 1])
  level_part = (box_levels * level_stride)[:, :, tf.newaxis, tf.newaxis]
  row_part = (feature_grid_y * width)[:, :, :, tf.newaxis]
  col_part = feature_grid_x[:, :, tf.newaxis, :]
  return tf.reshape(batch_part + level_part + row_part + col_part, [-1])


def pad_to_max_size(features):
  """Zero-pads feature maps to the largest height / width and stacks them on axis 1.

  Args:
    features: list of float [batch, height_i, width_i, channels].

  Returns:
    (stacked [batch, num_levels, max_height, max_width, channels],
     true_feature_shapes int32 [num_levels, 2] of (height_i, width_i)).
  """
  if len(features) == 1:
    return features[0][:, tf.newaxis], tf.shape(features[0])[1:3][tf.newaxis]
  if all(feature.shape.is_fully_defined() for feature in features):
    max_height = max(feature.shape[1] for feature in features)
    max_width = max(feature.shape[2] for feature in features)
  else:
    max_height = tf.reduce_max([tf.shape(feature)[1] for feature in features])
    max_width = tf.reduce_max([tf.shape(feature)[2] for feature in features])
  padded = [tf.image.pad_to_bounding_box(feature, 0, 0, max_height, max_width)
            for feature in features]
  true_shapes = tf.stack([tf.shape(feature)[1:3] for feature in features])
  return tf.stack(padded, axis=1), true_shapes


def _gather_valid_indices(tensor, indices, padding_value=0.0):
  """Rows of a [R, C] tensor; index -1 yields a row of `padding_value`."""
  fill_row = padding_value * tf.ones([1, tf.shape(tensor)[-1]], dtype=tensor.dtype)
  # The *1.0 keeps tf.concat's gradient input a dense tensor (gather's gradient is sparse),
  # which TPUs need.
  padded = tf.concat([fill_row, tensor], axis=0) * 1.0
  return tf.gather(padded, indices + 1)


def multilevel_roi_align(features, boxes, box_levels, output_size,
                         num_samples_per_cell_y=1, num_samples_per_cell_x=1,
                         align_corners=False, extrapolation_value=0.0, scope=None):
  """RoI Align over multiple levels (TF OD API `multilevel_roi_align`).

  Each box is split into output_size cells; each cell is sampled at num_samples_per_cell
  points by bilinear interpolation of the box's level (pixels are points, normalized
  coordinates scale by (size - 1) of the level's true size), and the samples are averaged.

  Args:
    features: list of float [batch, height_i, width_i, channels] (same channels).
    boxes: float [batch, num_boxes, 4] normalized boxes.
    box_levels: int32 [batch, num_boxes] level index of each box.
    output_size: [size_y, size_x].
    num_samples_per_cell_y, num_samples_per_cell_x: samples per cell.
    align_corners: put the outer samples on the box edges (the matmul crop_and_resize mode).
    extrapolation_value: value of samples off the level.
    scope: name scope.

  Returns:
    float [batch, num_boxes, size_y, size_x, channels].
  """
  with tf.name_scope(scope or 'MultiLevelRoIAlign'):
    features, true_feature_shapes = pad_to_max_size(features)
    batch_size = features.shape[0] if features.shape[0] is not None else tf.shape(features)[0]
    num_levels = features.shape[1]
    max_height = tf.shape(features)[2]
    max_width = tf.shape(features)[3]
    num_filters = features.shape[4]
    num_boxes = tf.shape(boxes)[1]

    level_shapes = tf.gather(tf.cast(true_feature_shapes, boxes.dtype), box_levels)
    boxes *= tf.concat([level_shapes - 1] * 2, axis=-1)

    size_y = output_size[0] * num_samples_per_cell_y
    size_x = output_size[1] * num_samples_per_cell_x
    grid_y, grid_x = box_grid_coordinate_vectors(boxes, size_y=size_y, size_x=size_x,
                                                 align_corners=align_corners)
    y0, x0, y1, x1 = feature_grid_coordinate_vectors(grid_y, grid_x)
    # Interleave each sample's two neighbours: [.., size, 2] -> [.., 2 * size].
    neighbour_y = tf.reshape(tf.stack([y0, y1], axis=3), [batch_size, num_boxes, -1])
    neighbour_x = tf.reshape(tf.stack([x0, x1], axis=3), [batch_size, num_boxes, -1])
    flat_indices = ravel_indices(neighbour_y, neighbour_x, num_levels, max_height, max_width,
                                 box_levels)
    on_level = _valid_indicator(neighbour_y, neighbour_x, level_shapes)
    flat_indices = tf.where(on_level, flat_indices, -1 * tf.ones_like(flat_indices))
    values = _gather_valid_indices(tf.reshape(features, [-1, num_filters]), flat_indices,
                                   extrapolation_value)
    values = tf.reshape(values, [batch_size, num_boxes, size_y * 2, size_x * 2, num_filters])

    grid_y = tf.cast(grid_y, values.dtype)
    grid_x = tf.cast(grid_x, values.dtype)
    ly = grid_y - tf.cast(y0, values.dtype)
    lx = grid_x - tf.cast(x0, values.dtype)
    hy = 1.0 - ly
    hx = 1.0 - lx
    kernel_y = tf.reshape(tf.stack([hy, ly], axis=3), [batch_size, num_boxes, size_y * 2, 1])
    kernel_x = tf.reshape(tf.stack([hx, lx], axis=3), [batch_size, num_boxes, 1, size_x * 2])
    # x4 turns the 2x2 part of the average pool below into the bilinear sum.
    kernel = kernel_y * kernel_x * 4
    values *= kernel[..., tf.newaxis]
    values = tf.reshape(values, [batch_size * num_boxes, size_y * 2, size_x * 2, num_filters])
    window = [1, num_samples_per_cell_y * 2, num_samples_per_cell_x * 2, 1]
    values = tf.nn.avg_pool2d(values, window, window, 'VALID')
    return tf.reshape(values,
                      [batch_size, num_boxes, output_size[0], output_size[1], num_filters])


def native_crop_and_resize(image, boxes, crop_size, scope=None):
  """tf.image.crop_and_resize of every box of every image (TF OD API `native_crop_and_resize`).

  Args:
    image: float [batch, height, width, depth].
    boxes: float [batch, num_boxes, 4] normalized boxes.
    crop_size: [crop_height, crop_width].
    scope: name scope.

  Returns:
    float [batch, num_boxes, crop_height, crop_width, depth] (bilinear, extrapolation 0).
  """
  with tf.name_scope(scope or 'CropAndResize'):
    static_shape = boxes.shape.as_list()
    if any(dim is None for dim in static_shape):
      batch, num_boxes = tf.shape(boxes)[0], tf.shape(boxes)[1]
    else:
      batch, num_boxes = static_shape[0], static_shape[1]
    box_indices = tf.reshape(
        tf.ones([batch, num_boxes], tf.int32) * tf.range(batch)[:, tf.newaxis], [-1])
    crops = tf.image.crop_and_resize(image, tf.reshape(boxes, [-1] + static_shape[2:]),
                                     box_indices, crop_size)
    return tf.reshape(crops, tf.concat([tf.shape(boxes)[:2], tf.shape(crops)[1:]], axis=0))


def multilevel_native_crop_and_resize(images, boxes, box_levels, crop_size, scope=None):
  """Crop-and-resize from the level of each box (TF OD API `multilevel_native_crop_and_resize`).

  Every level is cropped with every box and each box keeps the crop of its own level.

  Args:
    images: list of float [batch, height_i, width_i, depth] feature maps.
    boxes: float [batch, num_boxes, 4] normalized boxes.
    box_levels: int32 [batch, num_boxes] level index per box, or None to crop images[0] only.
    crop_size: [crop_height, crop_width].
    scope: name scope for the crops.

  Returns:
    float [batch, num_boxes, crop_height, crop_width, depth].
  """
  if box_levels is None:
    return native_crop_and_resize(images[0], boxes, crop_size, scope)
  with tf.name_scope('MultiLevelNativeCropAndResize'):
    per_level = []
    for level, image in enumerate(images):
      crops = native_crop_and_resize(image, boxes, crop_size, scope)
      on_level = tf.equal(box_levels, level)[:, :, tf.newaxis, tf.newaxis, tf.newaxis]
      on_level = tf.broadcast_to(on_level, tf.shape(crops))
      per_level.append(tf.where(on_level, crops, tf.zeros_like(crops)))
    return tf.math.reduce_sum(per_level, axis=0)


def multilevel_matmul_crop_and_resize(images, boxes, box_levels, crop_size,
                                      extrapolation_value=0.0, scope=None):
  """Gather-based crop-and-resize by box level (TF OD API `multilevel_matmul_crop_and_resize`).

  `multilevel_roi_align` with align_corners=True and one sample per cell, which reproduces
  tf.image.crop_and_resize sampling.

  Args:
    images: list of float [batch, height_i, width_i, depth].
    boxes: float [batch, num_boxes, 4] normalized boxes.
    box_levels: int32 [batch, num_boxes] or None (all boxes on level 0).
    crop_size: [crop_height, crop_width].
    extrapolation_value: value for samples off the feature map.
    scope: name scope.

  Returns:
    float [batch, num_boxes, crop_height, crop_width, depth].
  """
  with tf.name_scope(scope or 'MultiLevelMatMulCropAndResize'):
    if box_levels is None:
      box_levels = tf.zeros(tf.shape(boxes)[:2], dtype=tf.int32)
    return multilevel_roi_align(images, boxes, box_levels, crop_size, align_corners=True,
                                extrapolation_value=extrapolation_value)


def matmul_crop_and_resize(image, boxes, crop_size, extrapolation_value=0.0, scope=None):
  """Single-level gather-based crop-and-resize (TF OD API `matmul_crop_and_resize`).

  Args:
    image: float [batch, height, width, depth].
    boxes: float [batch, num_boxes, 4] normalized boxes (num_boxes > 0).
    crop_size: [crop_height, crop_width] (static).
    extrapolation_value: value for samples off the image.
    scope: name scope.

  Returns:
    float [batch, num_boxes, crop_height, crop_width, depth].
  """
  with tf.name_scope(scope or 'MatMulCropAndResize'):
    box_levels = tf.zeros(tf.shape(boxes)[:2], dtype=tf.int32)
    return multilevel_roi_align([image], boxes, box_levels, crop_size, align_corners=True,
                                extrapolation_value=extrapolation_value)
