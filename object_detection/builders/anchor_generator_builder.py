"""Builds first-stage anchor generators from an `AnchorGenerator` proto (TF OD API semantics).

Why not `official.vision.ops.anchor.Anchor`: its anchors are fixed to stride 2**level with a base size
`anchor_size * 2**level`, which is `multiscale_anchor_generator` but not `grid_anchor_generator`
(explicit base size, strides and offsets); both TF OD API generators are implemented here in ~30 lines.

Anchors are absolute pixel boxes [ymin, xmin, ymax, xmax] of the preprocessed image.
  grid_anchor_generator (TF OD API grid_anchor_generator.py): for each feature cell (i, j) with center
    (height_offset + i * height_stride, width_offset + j * width_stride) and each (scale, aspect_ratio)
    pair: height = scale * base_height / sqrt(aspect_ratio), width = scale * base_width * sqrt(aspect).
  multiscale_anchor_generator (TF OD API multiscale_grid_anchor_generator.py): for level l in
    [min_level, max_level], stride 2**l, centers at stride / 2 + i * stride, base size
    anchor_scale * 2**l, scales 2**(k / scales_per_octave) for k < scales_per_octave.
"""

import math

import tensorflow as tf


class AnchorGenerator(object):
  """`generate(feature_shapes)` -> {level: float32 [h * w * A, 4]} with A = `num_anchors_per_location`."""

  def __init__(self, per_level):
    # per_level: {level str or None: (stride_y, stride_x, offset_y, offset_x, [(h, w), ...])}
    self._per_level = per_level

  @property
  def num_anchors_per_location(self):
    return len(next(iter(self._per_level.values()))[4])

  def levels(self):
    return sorted(k for k in self._per_level if k is not None)

  def generate(self, feature_shapes):
    """feature_shapes: {level: (h, w)} (ints or scalar tensors). Returns {level: [h*w*A, 4]} float32."""
    out = {}
    for level, (h, w) in feature_shapes.items():
      key = level if level in self._per_level else None
      if key not in self._per_level:
        raise ValueError('first_stage_anchor_generator has no anchors for feature level %s (configured: '
                         '%s).' % (level, self.levels()))
      sy, sx, oy, ox, sizes = self._per_level[key]
      sizes = tf.constant(sizes, tf.float32)  # [A, 2]
      cy = tf.cast(tf.range(h), tf.float32) * sy + oy
      cx = tf.cast(tf.range(w), tf.float32) * sx + ox
      cy, cx = tf.meshgrid(cy, cx, indexing='ij')
      centers = tf.stack([cy, cx], axis=-1)[:, :, tf.newaxis, :]  # [h, w, 1, 2]
      half = sizes[tf.newaxis, tf.newaxis] / 2.0  # [1, 1, A, 2]
      boxes = tf.concat([centers - half, centers + half], axis=-1)
      out[level] = tf.reshape(boxes, [-1, 4])
    return out


def _sizes(base_h, base_w, scales, aspect_ratios):
  # Order: scales outer, aspect ratios inner (as tf.meshgrid in the TF OD API).
  return [(s * base_h / math.sqrt(a), s * base_w * math.sqrt(a)) for s in scales for a in aspect_ratios]


def build(anchor_generator_config):
  """AnchorGenerator proto -> AnchorGenerator.

  Raises:
    ValueError: naming `first_stage_anchor_generator` for unsupported oneofs (ssd_anchor_generator,
      flexible_grid_anchor_generator).
  """
  kind = anchor_generator_config.WhichOneof('anchor_generator_oneof')
  if kind == 'grid_anchor_generator':
    g = anchor_generator_config.grid_anchor_generator
    scales = list(g.scales) or [0.5, 1.0, 2.0]
    ratios = list(g.aspect_ratios) or [0.5, 1.0, 2.0]
    sizes = _sizes(float(g.height), float(g.width), scales, ratios)
    return AnchorGenerator({None: (float(g.height_stride), float(g.width_stride),
                                   float(g.height_offset), float(g.width_offset), sizes)})
  if kind == 'multiscale_anchor_generator':
    g = anchor_generator_config.multiscale_anchor_generator
    ratios = list(g.aspect_ratios) or [0.5, 1.0, 2.0]
    per_level = {}
    for level in range(g.min_level, g.max_level + 1):
      stride = float(2 ** level)
      base = g.anchor_scale * stride
      scales = [2.0 ** (k / float(g.scales_per_octave)) for k in range(g.scales_per_octave)]
      per_level[str(level)] = (stride, stride, stride / 2.0, stride / 2.0, _sizes(base, base, scales, ratios))
    return AnchorGenerator(per_level)
  raise ValueError('faster_rcnn.first_stage_anchor_generator: %r is not supported; use '
                   'grid_anchor_generator or multiscale_anchor_generator.' % kind)
