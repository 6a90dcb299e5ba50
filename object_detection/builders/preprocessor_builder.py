"""Builds `(function, kwargs)` from a `PreprocessingStep` config (TF OD API preprocessor.proto).

`build(preprocessor_step_config) -> (function, kwargs)`; a list of them (one per
`train_config.data_augmentation_options` entry) is what `preprocessor.preprocess` applies.

The kwargs are the TF OD API's `builders/preprocessor_builder.py` ones for the same config (its
function defaults for unset fields equal the proto defaults used here), checked against it in
tests/test_tfod_image_resizer.py.

Raises ConfigError naming the step for a step declared in preprocessor.proto but not implemented
here (see SUPPORTED_STEPS), so a config is never silently trained without an augmentation.
"""

from object_detection.core import preprocessor
from object_detection.utils.config_validation import ConfigError

# Steps with no arguments beyond the ones listed: config field -> kwarg of the op.
_SIMPLE_STEPS = {
    'normalize_image': (preprocessor.normalize_image, (
        'original_minval', 'original_maxval', 'target_minval', 'target_maxval')),
    'random_image_scale': (preprocessor.random_image_scale, (
        'min_scale_ratio', 'max_scale_ratio')),
    'random_adjust_brightness': (preprocessor.random_adjust_brightness, ('max_delta',)),
    'random_adjust_contrast': (preprocessor.random_adjust_contrast, ('min_delta', 'max_delta')),
    'random_adjust_hue': (preprocessor.random_adjust_hue, ('max_delta',)),
    'random_adjust_saturation': (preprocessor.random_adjust_saturation,
                                 ('min_delta', 'max_delta')),
    'random_distort_color': (preprocessor.random_distort_color, ('color_ordering',)),
    'random_jpeg_quality': (preprocessor.random_jpeg_quality, (
        'random_coef', 'min_jpeg_quality', 'max_jpeg_quality')),
    'random_rgb_to_gray': (preprocessor.random_rgb_to_gray, ('probability',)),
    'random_pixel_value_scale': (preprocessor.random_pixel_value_scale, ('minval', 'maxval')),
}

SUPPORTED_STEPS = tuple(sorted(list(_SIMPLE_STEPS) + [
    'random_horizontal_flip', 'random_vertical_flip', 'random_rotation90', 'random_crop_image',
    'random_pad_image']))


def _fields(config, names):
  return {name: getattr(config, name) for name in names}


def build(preprocessor_step_config):
  """Returns (op, kwargs) for one `PreprocessingStep`.

  Args:
    preprocessor_step_config: `preprocessor_pb2.PreprocessingStep`.

  Returns:
    (function, kwargs dict) for `preprocessor.preprocess`.

  Raises:
    ConfigError: no step set, or the step is not supported (the message names it and lists the
      supported ones); random_pad_image with only one of min_image_height / min_image_width
      (or max_*) set, or a pad_color without 3 values.
  """
  step = preprocessor_step_config.WhichOneof('preprocessing_step')
  if step is None:
    raise ConfigError('data_augmentation_options entry has no preprocessing step set.')
  config = getattr(preprocessor_step_config, step)
  if step in _SIMPLE_STEPS:
    fn, names = _SIMPLE_STEPS[step]
    return fn, _fields(config, names)
  if step == 'random_horizontal_flip':
    return preprocessor.random_horizontal_flip, {
        'probability': config.probability,
        'keypoint_flip_permutation': tuple(config.keypoint_flip_permutation) or None}
  if step == 'random_vertical_flip':
    return preprocessor.random_vertical_flip, {
        'probability': config.probability,
        'keypoint_flip_permutation': tuple(config.keypoint_flip_permutation) or None}
  if step == 'random_rotation90':
    return preprocessor.random_rotation90, {
        'probability': config.probability,
        'keypoint_rot_permutation': tuple(config.keypoint_rot_permutation) or None}
  if step == 'random_crop_image':
    return preprocessor.random_crop_image, {
        'min_object_covered': config.min_object_covered,
        'aspect_ratio_range': (config.min_aspect_ratio, config.max_aspect_ratio),
        'area_range': (config.min_area, config.max_area),
        'overlap_thresh': config.overlap_thresh,
        'clip_boxes': config.clip_boxes,
        'random_coef': config.random_coef}
  if step == 'random_pad_image':
    sizes = {}
    for prefix in ('min', 'max'):
      h_set = config.HasField('%s_image_height' % prefix)
      if h_set != config.HasField('%s_image_width' % prefix):
        raise ConfigError('random_pad_image: set both %s_image_height and %s_image_width, or '
                          'neither.' % (prefix, prefix))
      sizes[prefix] = ((getattr(config, '%s_image_height' % prefix),
                        getattr(config, '%s_image_width' % prefix)) if h_set else None)
    pad_color = list(config.pad_color) or None
    if pad_color is not None and len(pad_color) != 3:
      raise ConfigError('random_pad_image.pad_color must have 3 values (R, G, B), got %d.'
                        % len(pad_color))
    return preprocessor.random_pad_image, {
        'min_image_size': sizes['min'], 'max_image_size': sizes['max'], 'pad_color': pad_color}
  raise ConfigError(
      'data_augmentation_options step %r is not supported by this pipeline. Remove it from '
      'train_config or use one of: %s.' % (step, ', '.join(SUPPORTED_STEPS)))
