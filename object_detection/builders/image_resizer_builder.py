"""Builds the image resizing function from an `ImageResizer` config (TF OD API semantics).

`build(image_resizer_config)` returns `fn(image, masks=None)` (TF OD API
`builders/image_resizer_builder.py`):
  image: [H, W, C] numeric tensor (cast to float32).
  masks: optional [N, H, W] uint8 or float32 0/1 whole-image instance masks.
  Returns a list `[resized_image, resized_masks, resized_image_shape]` (the masks entry is only
  present when masks are given):
    resized_image: float32 [h, w, C] (padded to [max_dimension, max_dimension, C] when
      `pad_to_max_dimension` is set; C = 1 with `convert_to_grayscale`).
    resized_masks: same dtype as `masks`, [N, h, w] (padded like the image, with zeros).
    resized_image_shape: int32 [3], the TRUE (unpadded) shape of the resized image.

Pixel parity with the TF OD API. Its `core/preprocessor.py` resizes with the TF1 kernels
(`tf.compat.v1.image.resize_images`: `half_pixel_centers=False`, `align_corners` as given), not
with TF2's `tf.image.resize` (half-pixel centres), which samples different source pixels for
BILINEAR / BICUBIC images and for NEAREST_NEIGHBOR masks. `preprocessor.resize_images_v1` calls
those kernels, so every resizer gives the TF OD API's numbers bit for bit:
  keep_aspect_ratio_resizer -> `resize_to_range` (align_corners=False);
  fixed_shape_resizer -> `resize_image` (align_corners=False);
  conditional_shape_resizer -> `resize_to_max_dimension` / `resize_to_min_dimension`
    (align_corners=True, sizes truncated, not rounded);
  pad_to_multiple_resizer -> `resize_pad_to_multiple`; identity_resizer -> unchanged.
Masks are always resized with NEAREST_NEIGHBOR (same kernel flags as the image), whatever
`resize_method` says, which keeps them exactly 0/1 and lets them stay uint8.
`convert_to_grayscale` is applied after the resizer, padding included (TF OD API
`grayscale_image_resizer`), with the TF OD API's weights (0.2989, 0.5870, 0.1140).

Padding is bottom/right only, so boxes normalized to the true image keep their values relative to
the true image; relative to the padded image they scale by true_size / padded_size (the TF OD
API's `inputs.transform_input_data` re-normalizes them that way).

Deliberate differences from the TF OD API (values are equal wherever it works):
  * The image is cast to float32 first, so every resizer returns float32 (the TF OD API keeps
    the input dtype for identity / NEAREST_NEIGHBOR / pad-to-multiple).
  * keep_aspect_ratio_resizer with pad_to_max_dimension pads a 1-channel image with 0 when
    `per_channel_pad_value` has another length. The TF OD API raises there, which makes its own
    `FasterRCNNMetaArch._format_groundtruth_data` (mask resizing with a [H, W, 1] dummy image)
    fail for such configs; the dummy's pixels are discarded anyway.
"""

import tensorflow as tf

from object_detection.core import preprocessor
from object_detection.protos import image_resizer_pb2
from object_detection.utils.config_validation import ConfigError

# ImageResizer.ResizeType enum -> tf.image.ResizeMethod (TF2 spelling; the kernels are TF1's).
_RESIZE_METHODS = {
    image_resizer_pb2.BILINEAR: tf.image.ResizeMethod.BILINEAR,
    image_resizer_pb2.NEAREST_NEIGHBOR: tf.image.ResizeMethod.NEAREST_NEIGHBOR,
    image_resizer_pb2.BICUBIC: tf.image.ResizeMethod.BICUBIC,
    image_resizer_pb2.AREA: tf.image.ResizeMethod.AREA,
}


def _tf_resize_method(resize_method):
  """Maps the proto enum value (int) to a tf.image.ResizeMethod."""
  if resize_method not in _RESIZE_METHODS:
    raise ConfigError('image_resizer resize_method %r is unknown; use BILINEAR, NEAREST_NEIGHBOR, '
                      'BICUBIC or AREA.' % (resize_method,))
  return _RESIZE_METHODS[resize_method]


def _resize_masks(masks, size, align_corners=False):
  """NEAREST_NEIGHBOR resize of [N, H, W] masks to `size` ([2]); keeps dtype and 0/1 values."""
  return preprocessor.resize_images_v1(masks[..., tf.newaxis], size,
                                       tf.image.ResizeMethod.NEAREST_NEIGHBOR,
                                       align_corners=align_corners)[..., 0]


def compute_keep_aspect_ratio_size(height, width, min_dimension, max_dimension):
  """New (height, width) as the TF OD API's `resize_to_range`.

  The target box is (min_dimension, max_dimension) for landscape images (height < width), else
  (max_dimension, min_dimension); the image is scaled by the largest factor that fits it in the
  box and the sides are rounded half to even, all in float32 (`tf.compat.v1.image.resize_images`
  with `preserve_aspect_ratio=True`). So the smaller side becomes min_dimension unless the larger
  side would then exceed max_dimension, in which case the larger side becomes max_dimension.

  Args:
    height, width: int32 scalar tensors, original size in pixels.
    min_dimension, max_dimension: ints.

  Returns:
    int32 [2] tensor (new_height, new_width).
  """
  h = tf.cast(height, tf.float32)
  w = tf.cast(width, tf.float32)
  landscape = tf.less(height, width)
  min_dim = tf.constant(min_dimension, tf.float32)
  max_dim = tf.constant(max_dimension, tf.float32)
  target_h = tf.where(landscape, min_dim, max_dim)
  target_w = tf.where(landscape, max_dim, min_dim)
  scale = tf.minimum(target_h / h, target_w / w)
  return tf.cast(tf.round(tf.stack([scale * h, scale * w])), tf.int32)


def _pad_image(image, target_height, target_width, pad_value):
  """Pads float32 [h, w, C] bottom/right to [target_height, target_width, C].

  The padding holds `pad_value[c]` in channel c (exact values, no arithmetic on the pixels).
  A 1-channel image with len(pad_value) != 1 is padded with 0 (see the module docstring).

  Raises:
    ConfigError: the channel count is not len(pad_value) (and not 1).
  """
  shape = tf.shape(image)
  paddings = [[0, target_height - shape[0]], [0, target_width - shape[1]]]
  channels = image.shape[-1]
  pad_value = [float(v) for v in pad_value]
  if not any(pad_value) or (channels == 1 and len(pad_value) != 1):
    return tf.pad(image, paddings + [[0, 0]])
  if channels != len(pad_value):
    raise ConfigError('keep_aspect_ratio_resizer.per_channel_pad_value has %d values but the image '
                      'has %s channels; give one value per channel.' % (len(pad_value), channels))
  return tf.stack([tf.pad(image[:, :, c], paddings, constant_values=pad_value[c])
                   for c in range(channels)], axis=2)


def keep_aspect_ratio_resize(image, masks=None, min_dimension=600, max_dimension=1024,
                             method=tf.image.ResizeMethod.BILINEAR, pad_to_max_dimension=False,
                             per_channel_pad_value=(0., 0., 0.), convert_to_grayscale=False):
  """TF OD API `resize_to_range` (align_corners=False); see the module docstring.

  Raises:
    ConfigError: image not rank 3; min_dimension > max_dimension; per_channel_pad_value length
      does not match the channels (with pad_to_max_dimension).
  """
  if min_dimension > max_dimension:
    raise ConfigError('keep_aspect_ratio_resizer: min_dimension (%d) must be <= max_dimension (%d).'
                      % (min_dimension, max_dimension))
  image = tf.cast(image, tf.float32)
  if image.shape.rank != 3:
    raise ValueError('image_resizer: image must be [height, width, channels], got shape %s.'
                     % image.shape)
  shape = tf.shape(image)
  new_size = compute_keep_aspect_ratio_size(shape[0], shape[1], min_dimension, max_dimension)
  new_image = preprocessor.resize_images_v1(image, new_size, method)
  channels = image.shape[-1]
  if pad_to_max_dimension:
    new_image = _pad_image(new_image, max_dimension, max_dimension, per_channel_pad_value)
    new_image.set_shape([max_dimension, max_dimension, channels])
  true_shape = tf.concat([new_size, tf.shape(image)[2:]], axis=0)
  result = [new_image]
  if masks is not None:
    new_masks = _resize_masks(masks, new_size)
    if pad_to_max_dimension:
      new_masks = tf.pad(new_masks, [[0, 0], [0, max_dimension - new_size[0]],
                                     [0, max_dimension - new_size[1]]])
      new_masks.set_shape([None, max_dimension, max_dimension])
    result.append(new_masks)
  result.append(true_shape)
  return _maybe_grayscale(result, convert_to_grayscale)


def fixed_shape_resize(image, masks=None, height=300, width=300,
                       method=tf.image.ResizeMethod.BILINEAR, convert_to_grayscale=False):
  """TF OD API `resize_image` to a fixed [height, width] (aspect ratio not kept,
  align_corners=False)."""
  image = tf.cast(image, tf.float32)
  new_image = preprocessor.resize_images_v1(image, [height, width], method)
  new_image.set_shape([height, width, image.shape[-1]])
  result = [new_image]
  if masks is not None:
    new_masks = _resize_masks(masks, [height, width])
    new_masks.set_shape([None, height, width])
    result.append(new_masks)
  result.append(tf.stack([height, width, tf.shape(image)[2]]))
  return _maybe_grayscale(result, convert_to_grayscale)


def identity_resize(image, masks=None):
  """Returns the image (as float32) and masks unchanged, with the image's shape."""
  image = tf.cast(image, tf.float32)
  result = [image]
  if masks is not None:
    result.append(masks)
  result.append(tf.shape(image, out_type=tf.int32))
  return result


def _conditional_size(height, width, condition, size_threshold):
  """TF OD API `resize_to_max_dimension` / `resize_to_min_dimension` sizes (truncated)."""
  if condition == image_resizer_pb2.ConditionalShapeResizer.GREATER:
    image_dim = tf.maximum(height, width)
    target_dim = tf.minimum(image_dim, size_threshold)
  else:
    image_dim = tf.minimum(height, width)
    target_dim = tf.maximum(image_dim, size_threshold)
  ratio = tf.cast(target_dim, tf.float32) / tf.cast(image_dim, tf.float32)
  return tf.stack([tf.cast(tf.cast(height, tf.float32) * ratio, tf.int32),
                   tf.cast(tf.cast(width, tf.float32) * ratio, tf.int32)])


def conditional_shape_resize(image, masks=None, condition=1, size_threshold=300,
                             method=tf.image.ResizeMethod.BILINEAR, convert_to_grayscale=False):
  """TF OD API `resize_to_max_dimension` (condition GREATER = 1: the larger side is scaled down
  to `size_threshold` when it exceeds it) / `resize_to_min_dimension` (SMALLER = 2: the smaller
  side is scaled up to `size_threshold` when below it). Aspect ratio kept; no padding; new sides
  truncated (not rounded); image and masks resized with align_corners=True.

  Raises:
    ConfigError: condition is neither GREATER nor SMALLER.
  """
  if condition not in (image_resizer_pb2.ConditionalShapeResizer.GREATER,
                       image_resizer_pb2.ConditionalShapeResizer.SMALLER):
    raise ConfigError('conditional_shape_resizer.condition must be GREATER or SMALLER, got %r.'
                      % (condition,))
  image = tf.cast(image, tf.float32)
  shape = tf.shape(image)
  new_size = _conditional_size(shape[0], shape[1], condition, size_threshold)
  result = [preprocessor.resize_images_v1(image, new_size, method, align_corners=True)]
  if masks is not None:
    result.append(_resize_masks(masks, new_size, align_corners=True))
  result.append(tf.concat([new_size, shape[2:]], axis=0))
  return _maybe_grayscale(result, convert_to_grayscale)


def pad_to_multiple_resize(image, masks=None, multiple=1, convert_to_grayscale=False):
  """TF OD API `resize_pad_to_multiple`: no resize; pads bottom/right with zeros to the next
  multiple of `multiple`. The returned shape is the unpadded image's."""
  image = tf.cast(image, tf.float32)
  shape = tf.shape(image, out_type=tf.int32)
  pad_h = (multiple - shape[0] % multiple) % multiple
  pad_w = (multiple - shape[1] % multiple) % multiple
  result = [tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]]) if multiple > 1 else image]
  if masks is not None:
    result.append(tf.pad(masks, [[0, 0], [0, pad_h], [0, pad_w]]) if multiple > 1 else masks)
  result.append(shape)
  return _maybe_grayscale(result, convert_to_grayscale)


def _maybe_grayscale(result, convert_to_grayscale):
  """TF OD API `grayscale_image_resizer`: gray image (after padding), true shape channels -> 1."""
  if not convert_to_grayscale:
    return result
  result = list(result)
  result[0] = preprocessor.rgb_to_gray(result[0])
  result[-1] = tf.concat([result[-1][:-1], [1]], axis=0)
  return result


def build(image_resizer_config):
  """Builds `fn(image, masks=None)` from an `ImageResizer` proto (image_resizer.proto).

  Args:
    image_resizer_config: `image_resizer_pb2.ImageResizer`.

  Returns:
    A function `fn(image, masks=None) -> [resized_image, (resized_masks,) true_shape]`, see the
    module docstring.

  Raises:
    ConfigError: not an ImageResizer; the oneof is unset; min_dimension > max_dimension; an unknown
      resize_method; a conditional_shape_resizer condition other than GREATER / SMALLER;
      pad_to_multiple_resizer.multiple < 1.
  """
  if not isinstance(image_resizer_config, image_resizer_pb2.ImageResizer):
    raise ValueError('image_resizer_config must be an image_resizer_pb2.ImageResizer, got %s.'
                     % type(image_resizer_config).__name__)
  oneof = image_resizer_config.WhichOneof('image_resizer_oneof')
  if oneof == 'keep_aspect_ratio_resizer':
    cfg = image_resizer_config.keep_aspect_ratio_resizer
    if cfg.min_dimension > cfg.max_dimension:
      raise ConfigError('image_resizer.keep_aspect_ratio_resizer: min_dimension (%d) must be <= '
                        'max_dimension (%d).' % (cfg.min_dimension, cfg.max_dimension))
    method = _tf_resize_method(cfg.resize_method)
    pad_value = tuple(cfg.per_channel_pad_value) or (0., 0., 0.)
    min_dimension, max_dimension = cfg.min_dimension, cfg.max_dimension
    pad, grayscale = cfg.pad_to_max_dimension, cfg.convert_to_grayscale

    def keep_aspect_fn(image, masks=None):
      return keep_aspect_ratio_resize(
          image, masks, min_dimension=min_dimension, max_dimension=max_dimension,
          method=method, pad_to_max_dimension=pad, per_channel_pad_value=pad_value,
          convert_to_grayscale=grayscale)
    return keep_aspect_fn
  if oneof == 'fixed_shape_resizer':
    cfg = image_resizer_config.fixed_shape_resizer
    method = _tf_resize_method(cfg.resize_method)
    height, width, grayscale = cfg.height, cfg.width, cfg.convert_to_grayscale

    def fixed_fn(image, masks=None):
      return fixed_shape_resize(image, masks, height=height, width=width, method=method,
                                convert_to_grayscale=grayscale)
    return fixed_fn
  if oneof == 'identity_resizer':
    return identity_resize
  if oneof == 'conditional_shape_resizer':
    cfg = image_resizer_config.conditional_shape_resizer
    method = _tf_resize_method(cfg.resize_method)
    condition, threshold, grayscale = cfg.condition, cfg.size_threshold, cfg.convert_to_grayscale
    if condition not in (image_resizer_pb2.ConditionalShapeResizer.GREATER,
                         image_resizer_pb2.ConditionalShapeResizer.SMALLER):
      raise ConfigError('image_resizer.conditional_shape_resizer.condition must be GREATER or '
                        'SMALLER, got %r.' % (condition,))

    def conditional_fn(image, masks=None):
      return conditional_shape_resize(image, masks, condition=condition,
                                      size_threshold=threshold, method=method,
                                      convert_to_grayscale=grayscale)
    return conditional_fn
  if oneof == 'pad_to_multiple_resizer':
    cfg = image_resizer_config.pad_to_multiple_resizer
    if cfg.multiple < 1:
      raise ConfigError('image_resizer.pad_to_multiple_resizer.multiple is %d; it must be >= 1.'
                        % cfg.multiple)
    multiple, grayscale = cfg.multiple, cfg.convert_to_grayscale

    def pad_fn(image, masks=None):
      return pad_to_multiple_resize(image, masks, multiple=multiple,
                                    convert_to_grayscale=grayscale)
    return pad_fn
  raise ConfigError('image_resizer has no resizer set; set keep_aspect_ratio_resizer, '
                    'fixed_shape_resizer, identity_resizer, conditional_shape_resizer or '
                    'pad_to_multiple_resizer.')
