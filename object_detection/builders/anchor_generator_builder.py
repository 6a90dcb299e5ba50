"""Builds an anchor generator from an `AnchorGenerator` proto (TF OD API
`builders/anchor_generator_builder.py`), for Faster R-CNN's `first_stage_anchor_generator`.

  grid_anchor_generator        -> GridAnchorGenerator(scales, aspect_ratios,
                                    base_anchor_size=[height, width],
                                    anchor_stride=[height_stride, width_stride],
                                    anchor_offset=[height_offset, width_offset])
  multiscale_anchor_generator  -> MultiscaleGridAnchorGenerator(min_level, max_level, anchor_scale,
                                    aspect_ratios, scales_per_octave, normalize_coordinates)
Proto defaults apply as in the TF OD API (e.g. 256x256 base size, stride 16, offset 0); empty
`scales` / `aspect_ratios` lists are passed through unchanged (giving no anchors), as there.
"""

from object_detection.anchor_generators import grid_anchor_generator
from object_detection.anchor_generators import multiscale_grid_anchor_generator
from object_detection.protos import anchor_generator_pb2
from object_detection.utils.config_validation import ConfigError


def build(anchor_generator_config):
  """AnchorGenerator proto -> core.anchor_generator.AnchorGenerator.

  Raises:
    ConfigError: if the argument is not an AnchorGenerator proto, or its oneof is empty or a kind
      Faster R-CNN does not support here (ssd_anchor_generator, flexible_grid_anchor_generator).
  """
  if not isinstance(anchor_generator_config, anchor_generator_pb2.AnchorGenerator):
    raise ValueError('anchor_generator_config not of type anchor_generator_pb2.AnchorGenerator')
  kind = anchor_generator_config.WhichOneof('anchor_generator_oneof')
  if kind == 'grid_anchor_generator':
    cfg = anchor_generator_config.grid_anchor_generator
    return grid_anchor_generator.GridAnchorGenerator(
        scales=[float(scale) for scale in cfg.scales],
        aspect_ratios=[float(ratio) for ratio in cfg.aspect_ratios],
        base_anchor_size=[cfg.height, cfg.width],
        anchor_stride=[cfg.height_stride, cfg.width_stride],
        anchor_offset=[cfg.height_offset, cfg.width_offset])
  if kind == 'multiscale_anchor_generator':
    cfg = anchor_generator_config.multiscale_anchor_generator
    return multiscale_grid_anchor_generator.MultiscaleGridAnchorGenerator(
        cfg.min_level, cfg.max_level, cfg.anchor_scale,
        [float(ratio) for ratio in cfg.aspect_ratios],
        cfg.scales_per_octave, cfg.normalize_coordinates)
  if kind is None:
    raise ConfigError('first_stage_anchor_generator is empty: set grid_anchor_generator or '
                      'multiscale_anchor_generator.')
  raise ConfigError('first_stage_anchor_generator.%s is not supported for Faster R-CNN; use '
                    'grid_anchor_generator or multiscale_anchor_generator.' % kind)
