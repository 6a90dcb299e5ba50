"""Grid anchors of Faster R-CNN (TF OD API `anchor_generators/grid_anchor_generator.py`).

One feature map. For every cell (i, j), centered at
  (i * anchor_stride[0] + anchor_offset[0], j * anchor_stride[1] + anchor_offset[1])  (pixels),
and every (aspect_ratio, scale) pair, a box of
  height = scale / sqrt(aspect_ratio) * base_anchor_size[0]
  width  = scale * sqrt(aspect_ratio) * base_anchor_size[1].
Anchor order (fixes the RPN predictor's channel layout): row i, then column j, then aspect ratio,
then scale, i.e. index ((i * W + j) * len(aspect_ratios) + r) * len(scales) + s. Boxes are absolute
[ymin, xmin, ymax, xmax] = center -/+ size / 2 and may extend past the image.
"""

import tensorflow as tf

from object_detection.core import anchor_generator
from object_detection.core import box_list
from object_detection.utils import ops


class GridAnchorGenerator(anchor_generator.AnchorGenerator):
  """Generates a grid of anchors at given scales and aspect ratios."""

  def __init__(self, scales=(0.5, 1.0, 2.0), aspect_ratios=(0.5, 1.0, 2.0), base_anchor_size=None,
               anchor_stride=None, anchor_offset=None):
    """Args:
      scales: list of float scales.
      aspect_ratios: list of float aspect ratios (width / height).
      base_anchor_size: [height, width] of a scale-1, ratio-1 anchor in pixels; default [256, 256].
      anchor_stride: [y, x] distance in pixels between neighbouring centers; default [16, 16].
      anchor_offset: [y, x] center of the top-left cell in pixels; default [0, 0].
    """
    self._scales = scales
    self._aspect_ratios = aspect_ratios
    self._base_anchor_size = [256, 256] if base_anchor_size is None else base_anchor_size
    self._anchor_stride = [16, 16] if anchor_stride is None else anchor_stride
    self._anchor_offset = [0, 0] if anchor_offset is None else anchor_offset

  def name_scope(self):
    return 'GridAnchorGenerator'

  def num_anchors_per_location(self):
    return [len(self._scales) * len(self._aspect_ratios)]

  def _generate(self, feature_map_shape_list):
    """Anchors for one feature map.

    Args:
      feature_map_shape_list: [(height, width)], a list holding one tuple of ints or scalar int
        tensors.

    Returns:
      [BoxList] of height * width * num_anchors_per_location()[0] anchors with a float32
      'feature_map_index' field of zeros.

    Raises:
      ValueError: if the list does not hold exactly one (height, width) tuple.
    """
    if not (isinstance(feature_map_shape_list, list) and len(feature_map_shape_list) == 1):
      raise ValueError('feature_map_shape_list must be a list of length 1.')
    if not all(isinstance(item, tuple) and len(item) == 2 for item in feature_map_shape_list):
      raise ValueError('feature_map_shape_list must be a list of pairs.')

    def as_float(value):
      return tf.cast(tf.convert_to_tensor(value), tf.float32)

    grid_height, grid_width = feature_map_shape_list[0]
    scales_grid, aspect_ratios_grid = ops.meshgrid(self._scales, self._aspect_ratios)
    anchors = tile_anchors(grid_height, grid_width,
                           tf.reshape(scales_grid, [-1]), tf.reshape(aspect_ratios_grid, [-1]),
                           as_float(self._base_anchor_size), as_float(self._anchor_stride),
                           as_float(self._anchor_offset))
    num_anchors = anchors.num_boxes_static()
    if num_anchors is None:
      num_anchors = anchors.num_boxes()
    anchors.add_field('feature_map_index', tf.zeros([num_anchors]))
    return [anchors]


def tile_anchors(grid_height, grid_width, scales, aspect_ratios, base_anchor_size, anchor_stride,
                 anchor_offset):
  """Places the basis boxes (scales[k], aspect_ratios[k]) at every grid center.

  Args:
    grid_height: int or scalar int tensor, number of rows.
    grid_width: int or scalar int tensor, number of columns.
    scales: float32 [A] scale of each basis box.
    aspect_ratios: float32 [A] aspect ratio of each basis box.
    base_anchor_size: float32 [2] (height, width).
    anchor_stride: float32 [2] (y, x) center spacing.
    anchor_offset: float32 [2] (y, x) center of cell (0, 0).

  Returns:
    BoxList of grid_height * grid_width * A absolute boxes, ordered row, column, basis box.
  """
  ratio_sqrts = tf.sqrt(aspect_ratios)
  heights = scales / ratio_sqrts * base_anchor_size[0]
  widths = scales * ratio_sqrts * base_anchor_size[1]

  y_centers = tf.cast(tf.range(grid_height), tf.float32) * anchor_stride[0] + anchor_offset[0]
  x_centers = tf.cast(tf.range(grid_width), tf.float32) * anchor_stride[1] + anchor_offset[1]
  x_centers, y_centers = ops.meshgrid(x_centers, y_centers)  # [H, W] each

  widths_grid, x_centers_grid = ops.meshgrid(widths, x_centers)  # [H, W, A] each
  heights_grid, y_centers_grid = ops.meshgrid(heights, y_centers)
  centers = tf.reshape(tf.stack([y_centers_grid, x_centers_grid], axis=3), [-1, 2])
  sizes = tf.reshape(tf.stack([heights_grid, widths_grid], axis=3), [-1, 2])
  return box_list.BoxList(_center_size_bbox_to_corners_bbox(centers, sizes))


def _center_size_bbox_to_corners_bbox(centers, sizes):
  """[N, 2] centers and [N, 2] sizes -> [N, 4] ymin, xmin, ymax, xmax."""
  return tf.concat([centers - .5 * sizes, centers + .5 * sizes], 1)
