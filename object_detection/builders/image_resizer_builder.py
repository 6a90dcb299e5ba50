"""Builds the image resizing function from an `ImageResizer` config (TF OD API semantics).

`build(image_resizer_config)` returns `fn(image, masks=None)`:
  image: float32 (or any numeric dtype, cast to float32) [H, W, C].
  masks: optional [N, H, W] uint8 or float32 0/1 whole-image instance masks.
  Returns a list `[resized_image, resized_masks, resized_image_shape]` (the masks entry is only
  present when masks are given):
    resized_image: float32 [h, w, C] (padded to [max_dimension, max_dimension, C] when
      `pad_to_max_dimension` is set).
    resized_masks: same dtype as `masks`, [N, h, w] (padded like the image, with zeros).
    resized_image_shape: int32 [3], the TRUE (unpadded) shape of the resized image.

Boxes stay valid without change: they are normalized to the true (unpadded) image, and resizing
keeps the image content filling [0, 1] of the true image (the padding is bottom/right only).

Masks are resized with NEAREST_NEIGHBOR, whatever `resize_method` says for the image: it keeps
them exactly 0/1 without a threshold, works directly on uint8 (no float32 copy of [N, H, W],
which is the memory cost driver of Mask R-CNN inputs, tensorflow/models#3610), and is what the
TF OD API's `preprocessor.resize_to_range` / `resize_image` do. Bilinear-then-threshold at 0.5
would give slightly smoother down-sampled edges but needs a float32 copy of every mask.

Supported: keep_aspect_ratio_resizer (min_dimension, max_dimension, pad_to_max_dimension,
per_channel_pad_value, resize_method, convert_to_grayscale), fixed_shape_resizer (height, width,
resize_method, convert_to_grayscale), identity_resizer, conditional_shape_resizer (condition,
size_threshold, resize_method, convert_to_grayscale), pad_to_multiple_resizer (multiple).
"""

import tensorflow as tf

# ImageResizer.ResizeType enum values of image_resizer.proto.
_RESIZE_METHODS = {
    0: tf.image.ResizeMethod.BILINEAR,
    1: tf.image.ResizeMethod.NEAREST_NEIGHBOR,
    2: tf.image.ResizeMethod.BICUBIC,
    3: tf.image.ResizeMethod.AREA,
}


def _tf_resize_method(resize_method):
  """Maps the proto enum value (int) to a tf.image.ResizeMethod."""
  if resize_method not in _RESIZE_METHODS:
    raise ValueError('image_resizer resize_method %r is unknown; use BILINEAR, NEAREST_NEIGHBOR, '
                     'BICUBIC or AREA.' % (resize_method,))
  return _RESIZE_METHODS[resize_method]


def _resize_image(image, size, method):
  """Resizes float32 [H, W, C] to `size` ([2] int32) with `method`, keeping float32."""
  resized = tf.image.resize(image, size, method=method)
  return tf.cast(resized, tf.float32)


def _resize_masks(masks, size):
  """Nearest-neighbour resize of [N, H, W] masks to `size`; keeps dtype and 0/1 values."""
  resized = tf.image.resize(masks[..., tf.newaxis], size,
                            method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)
  return tf.cast(resized[..., 0], masks.dtype)


def compute_keep_aspect_ratio_size(height, width, min_dimension, max_dimension):
  """New (height, width) as the TF OD API's `resize_to_range`.

  The smaller side is scaled to `min_dimension`; if that makes the larger side exceed
  `max_dimension` (when > 0), the larger side is scaled to `max_dimension` instead. Sizes are
  rounded to the nearest integer.

  Args:
    height, width: int32 scalar tensors, original size in pixels.
    min_dimension, max_dimension: ints (max_dimension 0 = no limit).

  Returns:
    int32 [2] tensor (new_height, new_width).
  """
  orig = tf.cast(tf.stack([height, width]), tf.float32)
  large_scale = tf.cast(min_dimension, tf.float32) / tf.reduce_min(orig)
  large_size = tf.cast(tf.round(orig * large_scale), tf.int32)
  if max_dimension:
    small_scale = tf.cast(max_dimension, tf.float32) / tf.reduce_max(orig)
    small_size = tf.cast(tf.round(orig * small_scale), tf.int32)
    return tf.cond(tf.reduce_max(large_size) > max_dimension,
                   lambda: small_size, lambda: large_size)
  return large_size


def _maybe_grayscale(image, convert_to_grayscale):
  if convert_to_grayscale:
    return tf.image.rgb_to_grayscale(image)
  return image


def _pad_image(image, target_height, target_width, pad_value):
  """Pads float32 [h, w, C] bottom/right to [target_height, target_width, C] with `pad_value`.

  `pad_value` is a list of per-channel floats (empty = 0): padding `image - pad_value` with zeros
  and adding `pad_value` back fills the padding with the per-channel value.
  """
  if pad_value:
    value = tf.constant(list(pad_value), tf.float32)
    padded = tf.image.pad_to_bounding_box(image - value, 0, 0, target_height, target_width)
    return padded + value
  return tf.image.pad_to_bounding_box(image, 0, 0, target_height, target_width)


def keep_aspect_ratio_resize(image, masks=None, min_dimension=600, max_dimension=1024,
                             method=tf.image.ResizeMethod.BILINEAR, pad_to_max_dimension=False,
                             per_channel_pad_value=(0., 0., 0.), convert_to_grayscale=False):
  """TF OD API `resize_to_range`; see the module docstring for inputs and outputs."""
  if max_dimension and min_dimension > max_dimension:
    raise ValueError('keep_aspect_ratio_resizer: min_dimension (%d) must be <= max_dimension (%d).'
                     % (min_dimension, max_dimension))
  image = tf.cast(image, tf.float32)
  shape = tf.shape(image)
  new_size = compute_keep_aspect_ratio_size(shape[0], shape[1], min_dimension, max_dimension)
  new_image = _maybe_grayscale(_resize_image(image, new_size, method), convert_to_grayscale)
  channels = tf.shape(new_image)[2]
  true_shape = tf.stack([new_size[0], new_size[1], channels])
  if pad_to_max_dimension:
    if not max_dimension:
      raise ValueError('keep_aspect_ratio_resizer: pad_to_max_dimension needs max_dimension > 0.')
    pad_value = list(per_channel_pad_value)
    if convert_to_grayscale and pad_value:
      pad_value = pad_value[:1]
    new_image = _pad_image(new_image, max_dimension, max_dimension, pad_value)
    static_channels = 1 if convert_to_grayscale else image.shape[-1]
    new_image.set_shape([max_dimension, max_dimension, static_channels])
  result = [new_image]
  if masks is not None:
    new_masks = _resize_masks(masks, new_size)
    if pad_to_max_dimension:
      new_masks = tf.pad(new_masks, [[0, 0], [0, max_dimension - new_size[0]],
                                     [0, max_dimension - new_size[1]]])
      new_masks.set_shape([None, max_dimension, max_dimension])
    result.append(new_masks)
  result.append(tf.cast(true_shape, tf.int32))
  return result


def fixed_shape_resize(image, masks=None, height=300, width=300,
                       method=tf.image.ResizeMethod.BILINEAR, convert_to_grayscale=False):
  """TF OD API `resize_image` to a fixed [height, width] (aspect ratio not kept)."""
  image = tf.cast(image, tf.float32)
  new_image = _maybe_grayscale(_resize_image(image, [height, width], method),
                               convert_to_grayscale)
  new_image.set_shape([height, width, 1 if convert_to_grayscale else image.shape[-1]])
  result = [new_image]
  if masks is not None:
    new_masks = _resize_masks(masks, [height, width])
    new_masks.set_shape([None, height, width])
    result.append(new_masks)
  result.append(tf.shape(new_image, out_type=tf.int32))
  return result


def identity_resize(image, masks=None):
  """Returns the image (as float32) and masks unchanged, with the image's shape."""
  image = tf.cast(image, tf.float32)
  result = [image]
  if masks is not None:
    result.append(masks)
  result.append(tf.shape(image, out_type=tf.int32))
  return result


def conditional_shape_resize(image, masks=None, condition=1, size_threshold=300,
                             method=tf.image.ResizeMethod.BILINEAR, convert_to_grayscale=False):
  """TF OD API `resize_to_max_dimension` (condition GREATER = 1: the larger side is scaled down
  to `size_threshold` when it exceeds it) / `resize_to_min_dimension` (SMALLER = 2: the smaller
  side is scaled up to `size_threshold` when below it). Aspect ratio kept; no padding."""
  image = tf.cast(image, tf.float32)
  shape = tf.shape(image)
  orig = tf.cast(shape[:2], tf.float32)
  threshold = tf.cast(size_threshold, tf.float32)
  if condition == 1:
    scale = tf.minimum(1., threshold / tf.reduce_max(orig))
  elif condition == 2:
    scale = tf.maximum(1., threshold / tf.reduce_min(orig))
  else:
    raise ValueError('conditional_shape_resizer.condition must be GREATER or SMALLER.')
  new_size = tf.cast(tf.round(orig * scale), tf.int32)
  new_image = _maybe_grayscale(_resize_image(image, new_size, method), convert_to_grayscale)
  result = [new_image]
  if masks is not None:
    result.append(_resize_masks(masks, new_size))
  result.append(tf.shape(new_image, out_type=tf.int32))
  return result


def pad_to_multiple_resize(image, masks=None, multiple=1):
  """TF OD API `resize_pad_to_multiple`: no resize; pads bottom/right with zeros to a multiple
  of `multiple`. The true shape is the unpadded image's."""
  image = tf.cast(image, tf.float32)
  shape = tf.shape(image, out_type=tf.int32)
  if multiple > 1:
    pad_h = (multiple - shape[0] % multiple) % multiple
    pad_w = (multiple - shape[1] % multiple) % multiple
    padded = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])
  else:
    padded = image
  result = [padded]
  if masks is not None:
    result.append(tf.pad(masks, [[0, 0], [0, pad_h], [0, pad_w]]) if multiple > 1 else masks)
  result.append(shape)
  return result


def build(image_resizer_config):
  """Builds `fn(image, masks=None)` from an `ImageResizer` proto (image_resizer.proto).

  Args:
    image_resizer_config: `image_resizer_pb2.ImageResizer`.

  Returns:
    A function `fn(image, masks=None) -> [resized_image, (resized_masks,) true_shape]`, see the
    module docstring.

  Raises:
    ValueError: the oneof is unset or names a resizer that is not supported; min_dimension >
      max_dimension; an unknown resize_method.
  """
  oneof = image_resizer_config.WhichOneof('image_resizer_oneof')
  if oneof == 'keep_aspect_ratio_resizer':
    cfg = image_resizer_config.keep_aspect_ratio_resizer
    if cfg.max_dimension and cfg.min_dimension > cfg.max_dimension:
      raise ValueError('image_resizer.keep_aspect_ratio_resizer: min_dimension (%d) must be <= '
                       'max_dimension (%d).' % (cfg.min_dimension, cfg.max_dimension))
    method = _tf_resize_method(cfg.resize_method)
    pad_value = list(cfg.per_channel_pad_value) or [0., 0., 0.]
    grayscale = bool(getattr(cfg, 'convert_to_grayscale', False))

    def keep_aspect_fn(image, masks=None):
      return keep_aspect_ratio_resize(
          image, masks, min_dimension=cfg.min_dimension, max_dimension=cfg.max_dimension,
          method=method, pad_to_max_dimension=cfg.pad_to_max_dimension,
          per_channel_pad_value=pad_value, convert_to_grayscale=grayscale)
    return keep_aspect_fn
  if oneof == 'fixed_shape_resizer':
    cfg = image_resizer_config.fixed_shape_resizer
    method = _tf_resize_method(cfg.resize_method)
    grayscale = bool(getattr(cfg, 'convert_to_grayscale', False))

    def fixed_fn(image, masks=None):
      return fixed_shape_resize(image, masks, height=cfg.height, width=cfg.width, method=method,
                                convert_to_grayscale=grayscale)
    return fixed_fn
  if oneof == 'identity_resizer':
    return identity_resize
  if oneof == 'conditional_shape_resizer':
    cfg = image_resizer_config.conditional_shape_resizer
    method = _tf_resize_method(cfg.resize_method)

    def conditional_fn(image, masks=None):
      return conditional_shape_resize(image, masks, condition=cfg.condition,
                                      size_threshold=cfg.size_threshold, method=method,
                                      convert_to_grayscale=cfg.convert_to_grayscale)
    return conditional_fn
  if oneof == 'pad_to_multiple_resizer':
    multiple = image_resizer_config.pad_to_multiple_resizer.multiple

    def pad_fn(image, masks=None):
      return pad_to_multiple_resize(image, masks, multiple=multiple)
    return pad_fn
  if oneof is None:
    raise ValueError('image_resizer has no resizer set; set keep_aspect_ratio_resizer, '
                     'fixed_shape_resizer or identity_resizer.')
  raise ValueError('image_resizer.%s is not supported; use keep_aspect_ratio_resizer, '
                   'fixed_shape_resizer, identity_resizer, conditional_shape_resizer or '
                   'pad_to_multiple_resizer.' % oneof)
