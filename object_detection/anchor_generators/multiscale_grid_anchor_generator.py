"""Multi-level (FPN) grid anchors
(TF OD API `anchor_generators/multiscale_grid_anchor_generator.py`).

Level l in [min_level, max_level] gets a GridAnchorGenerator with stride 2**l, base size
anchor_scale * 2**l, scales 2**(k / scales_per_octave) for k < scales_per_octave and the given
aspect ratios (order within a cell: aspect ratio, then scale). The center offset is stride / 2
when the image size is divisible by 2**l, unknown (tensor), or not given (1); otherwise 0.
Anchors are absolute pixels unless normalize_coordinates is True, in which case `generate` needs
im_height / im_width (Faster R-CNN does not pass them, so its configs use
normalize_coordinates: false).
"""

import tensorflow as tf

from object_detection.anchor_generators import grid_anchor_generator
from object_detection.core import anchor_generator
from object_detection.core import box_list_ops


class MultiscaleGridAnchorGenerator(anchor_generator.AnchorGenerator):
  """Grid anchors for several feature pyramid levels."""

  def __init__(self, min_level, max_level, anchor_scale, aspect_ratios, scales_per_octave,
               normalize_coordinates=True):
    """Args:
      min_level: int, lowest pyramid level.
      max_level: int, highest pyramid level (inclusive).
      anchor_scale: float, base anchor size over the level's stride.
      aspect_ratios: list of float aspect ratios.
      scales_per_octave: int, number of intermediate scales per octave.
      normalize_coordinates: return anchors normalized by the image size given to `generate`.
    """
    self._anchor_grid_info = []
    self._aspect_ratios = aspect_ratios
    self._scales_per_octave = scales_per_octave
    self._normalize_coordinates = normalize_coordinates
    scales = [2**(float(k) / scales_per_octave) for k in range(scales_per_octave)]
    aspects = list(aspect_ratios)
    for level in range(min_level, max_level + 1):
      stride = [2**level, 2**level]
      base_size = [2**level * anchor_scale, 2**level * anchor_scale]
      self._anchor_grid_info.append(
          {'level': level, 'info': [scales, aspects, base_size, stride]})

  def name_scope(self):
    return 'MultiscaleGridAnchorGenerator'

  def num_anchors_per_location(self):
    return len(self._anchor_grid_info) * [len(self._aspect_ratios) * self._scales_per_octave]

  def _generate(self, feature_map_shape_list, im_height=1, im_width=1):
    """Anchors for each level's feature map.

    Args:
      feature_map_shape_list: list of (height, width) pairs, one per level from min_level.
      im_height: image height (int or tensor); 1 means unknown.
      im_width: image width (int or tensor); 1 means unknown.

    Returns:
      list of BoxLists, one per level.

    Raises:
      ValueError: if normalized coordinates were requested and im_height or im_width is 1.
    """
    anchor_grid_list = []
    for feature_shape, grid_info in zip(feature_map_shape_list, self._anchor_grid_info):
      level = grid_info['level']
      stride = 2**level
      scales, aspect_ratios, base_size, anchor_stride = grid_info['info']
      offset = [0, 0]
      if isinstance(im_height, int) and isinstance(im_width, int):
        if im_height % 2.0**level == 0 or im_height == 1:
          offset[0] = stride / 2.0
        if im_width % 2.0**level == 0 or im_width == 1:
          offset[1] = stride / 2.0
      if tf.is_tensor(im_height) and tf.is_tensor(im_width):
        offset = [stride / 2.0, stride / 2.0]
      generator = grid_anchor_generator.GridAnchorGenerator(
          scales, aspect_ratios, base_anchor_size=base_size, anchor_stride=anchor_stride,
          anchor_offset=offset)
      (anchors,) = generator.generate(
          feature_map_shape_list=[(feature_shape[0], feature_shape[1])])
      if self._normalize_coordinates:
        if im_height == 1 or im_width == 1:
          raise ValueError(
              'Normalized coordinates were requested upon construction of the '
              'MultiscaleGridAnchorGenerator (normalize_coordinates), but generate() was not given '
              'im_height / im_width; set normalize_coordinates: false for Faster R-CNN.')
        anchors = box_list_ops.to_normalized_coordinates(anchors, im_height, im_width,
                                                         check_range=False)
      anchor_grid_list.append(anchors)
    return anchor_grid_list
