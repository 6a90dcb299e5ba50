"""Data augmentation and preprocessing ops on a single example's tensor dict (TF OD API names).

Every op here is `op(tensor_dict, **config_kwargs) -> tensor_dict` and is applied by
`preprocess(tensor_dict, preprocess_options)`, where `preprocess_options` is the list of
`(op, kwargs)` pairs made by `preprocessor_builder.build` from `data_augmentation_options`.

Tensor dict conventions (keys from `standard_fields.InputDataFields`):
  image: float32 [H, W, C] (or [1, H, W, C], as the TF OD API passes it), pixel values 0..255.
  groundtruth_boxes: float32 [N, 4] normalized [ymin, xmin, ymax, xmax].
  groundtruth_instance_masks: [N, H, W] uint8 (or float32) whole-image 0/1 masks; ops keep the
    dtype (uint8 stays uint8: no float copy of the masks, see docs/input_pipeline.md).
  Per-box fields (PER_BOX_FIELDS: classes, weights, is_crowd, area, difficult, group_of,
    confidences, multiclass_scores, masks, mask weights, label weights): [N, ...]; ops that drop
    boxes (random_crop_image) drop the same rows of every per-box field present, so they stay
    aligned with groundtruth_boxes.
  groundtruth_area: float32 [N], object area in pixels of the CURRENT image: random_image_scale
    multiplies it by the pixel-area scale, random_crop_image by the kept fraction of the box
    area (the TF OD API leaves area untouched; it is only used by COCO eval, which does not
    augment). Other fields pass through untouched.

Pixel ops follow the TF OD API: the image is scaled to [0, 1], the tf.image op is applied, the
result is clipped to [0, 1] and scaled back to 0..255.

Random decisions use tf.random (seeded by the optional `seed` argument) so the ops work inside
tf.data map functions.
"""

import tensorflow as tf

from object_detection.core import standard_fields as fields

_F = fields.InputDataFields

PER_BOX_FIELDS = (
    _F.groundtruth_boxes, _F.groundtruth_classes, _F.groundtruth_weights,
    _F.groundtruth_is_crowd, _F.groundtruth_area, _F.groundtruth_difficult,
    _F.groundtruth_group_of, _F.groundtruth_confidences, _F.multiclass_scores,
    _F.groundtruth_instance_masks, _F.groundtruth_instance_mask_weights,
    _F.groundtruth_label_weights, _F.groundtruth_instance_classes,
)


# ----------------------------------------------------------------------------------- helpers
def _random_draw(seed=None):
  return tf.random.uniform([], 0., 1., seed=seed)


def _apply_with_probability(fn, tensor_dict, probability, seed=None):
  """Returns fn(tensor_dict) with `probability`, else tensor_dict (same keys).

  The branches may differ in shapes (rotation swaps H and W, a crop drops boxes): tf.cond then
  gives outputs with unknown dimensions, which tf.data handles.
  """
  keys = sorted(tensor_dict)

  def apply():
    out = fn(dict(tensor_dict))
    return [out[k] for k in keys]

  def keep():
    return [tensor_dict[k] for k in keys]
  values = tf.cond(_random_draw(seed) < probability, apply, keep)
  return dict(zip(keys, values))


def _gather_per_box(tensor_dict, indices):
  """Keeps rows `indices` of every per-box field present."""
  out = dict(tensor_dict)
  for key in PER_BOX_FIELDS:
    if key in out and out[key] is not None:
      out[key] = tf.gather(out[key], indices)
  return out


def _masks(tensor_dict):
  return tensor_dict.get(_F.groundtruth_instance_masks)


def _pixel_op(tensor_dict, op):
  """Applies `op` to image/255, clips to [0, 1], scales back to 0..255."""
  out = dict(tensor_dict)
  image = tf.cast(out[_F.image], tf.float32) / 255.
  out[_F.image] = tf.clip_by_value(op(image), 0., 1.) * 255.
  return out


# ----------------------------------------------------------------------------- geometric ops
def random_horizontal_flip(tensor_dict, probability=0.5, seed=None, keypoint_flip_permutation=None):
  """Flips image, boxes and masks left-right with `probability` (x -> 1 - x)."""
  del keypoint_flip_permutation  # No keypoints in instance segmentation.

  def flip(d):
    d[_F.image] = tf.reverse(d[_F.image], axis=[-2])
    if _F.groundtruth_boxes in d:
      ymin, xmin, ymax, xmax = tf.unstack(d[_F.groundtruth_boxes], axis=1)
      d[_F.groundtruth_boxes] = tf.stack([ymin, 1. - xmax, ymax, 1. - xmin], axis=1)
    if _masks(d) is not None:
      d[_F.groundtruth_instance_masks] = tf.reverse(_masks(d), axis=[2])
    return d
  return _apply_with_probability(flip, tensor_dict, probability, seed)


def random_vertical_flip(tensor_dict, probability=0.5, seed=None, keypoint_flip_permutation=None):
  """Flips image, boxes and masks up-down with `probability` (y -> 1 - y)."""
  del keypoint_flip_permutation

  def flip(d):
    d[_F.image] = tf.reverse(d[_F.image], axis=[-3])
    if _F.groundtruth_boxes in d:
      ymin, xmin, ymax, xmax = tf.unstack(d[_F.groundtruth_boxes], axis=1)
      d[_F.groundtruth_boxes] = tf.stack([1. - ymax, xmin, 1. - ymin, xmax], axis=1)
    if _masks(d) is not None:
      d[_F.groundtruth_instance_masks] = tf.reverse(_masks(d), axis=[1])
    return d
  return _apply_with_probability(flip, tensor_dict, probability, seed)


def random_rotation90(tensor_dict, probability=0.5, seed=None, keypoint_rot_permutation=None):
  """Rotates image, boxes and masks 90 degrees counter-clockwise with `probability`.

  tf.image.rot90 (k=1): pixel (y, x) of an H x W image goes to (W - 1 - x, y); normalized boxes
  [ymin, xmin, ymax, xmax] -> [1 - xmax, ymin, 1 - xmin, ymax] (TF OD API `_rot90_boxes`).
  """
  del keypoint_rot_permutation

  def rotate(d):
    d[_F.image] = tf.image.rot90(d[_F.image], k=1)
    if _F.groundtruth_boxes in d:
      ymin, xmin, ymax, xmax = tf.unstack(d[_F.groundtruth_boxes], axis=1)
      d[_F.groundtruth_boxes] = tf.stack([1. - xmax, ymin, 1. - xmin, ymax], axis=1)
    if _masks(d) is not None:
      d[_F.groundtruth_instance_masks] = tf.image.rot90(_masks(d)[..., tf.newaxis], k=1)[..., 0]
    return d
  return _apply_with_probability(rotate, tensor_dict, probability, seed)


def _image_hw(image):
  shape = tf.shape(image)
  return shape[-3], shape[-2]


def random_image_scale(tensor_dict, min_scale_ratio=0.5, max_scale_ratio=2.0, seed=None):
  """Scales the image (bilinear) and masks (nearest) by one ratio in [min, max).

  Normalized boxes are unchanged; groundtruth_area is multiplied by the pixel-area scale.
  """
  out = dict(tensor_dict)
  image = out[_F.image]
  height, width = _image_hw(image)
  ratio = tf.random.uniform([], min_scale_ratio, max_scale_ratio, seed=seed)
  new_h = tf.maximum(tf.cast(tf.round(tf.cast(height, tf.float32) * ratio), tf.int32), 1)
  new_w = tf.maximum(tf.cast(tf.round(tf.cast(width, tf.float32) * ratio), tf.int32), 1)
  out[_F.image] = tf.image.resize(tf.cast(image, tf.float32), [new_h, new_w])
  masks = _masks(out)
  if masks is not None:
    out[_F.groundtruth_instance_masks] = tf.cast(tf.image.resize(
        masks[..., tf.newaxis], [new_h, new_w],
        method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)[..., 0], masks.dtype)
  if _F.groundtruth_area in out:
    scale = (tf.cast(new_h * new_w, tf.float32) /
             tf.cast(tf.maximum(height * width, 1), tf.float32))
    out[_F.groundtruth_area] = out[_F.groundtruth_area] * scale
  return out


def _box_area(boxes):
  return tf.maximum(boxes[:, 2] - boxes[:, 0], 0.) * tf.maximum(boxes[:, 3] - boxes[:, 1], 0.)


def _crop_to_window(tensor_dict, offset_y, offset_x, crop_h, crop_w, overlap_thresh, clip_boxes):
  """Crops image + masks to a pixel window; moves/prunes boxes and the per-box fields with them.

  A box is kept when the fraction of its area inside the window (IoA) is >= overlap_thresh and
  > 0 (TF OD API `prune_completely_outside_window` + `prune_non_overlapping_boxes`).
  """
  out = dict(tensor_dict)
  image = out[_F.image]
  height, width = _image_hw(image)
  if image.shape.rank == 4:
    out[_F.image] = image[:, offset_y:offset_y + crop_h, offset_x:offset_x + crop_w, :]
  else:
    out[_F.image] = image[offset_y:offset_y + crop_h, offset_x:offset_x + crop_w, :]
  masks = _masks(out)
  if masks is not None:
    out[_F.groundtruth_instance_masks] = masks[:, offset_y:offset_y + crop_h,
                                               offset_x:offset_x + crop_w]
  if _F.groundtruth_boxes not in out:
    return out
  h_f, w_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
  win = tf.stack([tf.cast(offset_y, tf.float32) / h_f, tf.cast(offset_x, tf.float32) / w_f,
                  tf.cast(offset_y + crop_h, tf.float32) / h_f,
                  tf.cast(offset_x + crop_w, tf.float32) / w_f])
  boxes = out[_F.groundtruth_boxes]
  clipped = tf.stack([tf.maximum(boxes[:, 0], win[0]), tf.maximum(boxes[:, 1], win[1]),
                      tf.minimum(boxes[:, 2], win[2]), tf.minimum(boxes[:, 3], win[3])], axis=1)
  area = _box_area(boxes)
  inter = _box_area(clipped)
  ioa = tf.where(area > 0, inter / tf.maximum(area, 1e-12), tf.zeros_like(area))
  keep = tf.logical_and(ioa >= overlap_thresh, inter > 0)
  indices = tf.reshape(tf.where(keep), [-1])
  win_h, win_w = win[2] - win[0], win[3] - win[1]
  source = clipped if clip_boxes else boxes
  moved = tf.stack([(source[:, 0] - win[0]) / win_h, (source[:, 1] - win[1]) / win_w,
                    (source[:, 2] - win[0]) / win_h, (source[:, 3] - win[1]) / win_w], axis=1)
  out[_F.groundtruth_boxes] = moved
  if _F.groundtruth_area in out:
    kept_fraction = tf.where(area > 0, inter / tf.maximum(area, 1e-12), tf.ones_like(area))
    out[_F.groundtruth_area] = out[_F.groundtruth_area] * kept_fraction
  return _gather_per_box(out, indices)


def random_crop_image(tensor_dict, min_object_covered=1.0, aspect_ratio_range=(0.75, 1.33),
                      area_range=(0.1, 1.0), overlap_thresh=0.3, clip_boxes=True,
                      random_coef=0.0, seed=None):
  """Random crop as the TF OD API (tf.image.sample_distorted_bounding_box over the gt boxes).

  With probability `random_coef` the example is returned unchanged. Boxes with less than
  `overlap_thresh` of their area inside the crop are removed together with their masks, classes,
  weights, crowd flags and areas; kept boxes are clipped to the crop (if `clip_boxes`) and
  re-normalized to it; masks are cropped to the same pixel window.
  """
  image = tensor_dict[_F.image]
  shape = tf.shape(image)[-3:]
  boxes = tensor_dict.get(_F.groundtruth_boxes)
  if boxes is None:
    boxes = tf.zeros([0, 4], tf.float32)
  # An image without boxes: crop relative to the whole image (TF OD API does the same).
  bounding = tf.cond(tf.shape(boxes)[0] > 0,
                     lambda: tf.clip_by_value(boxes, 0., 1.),
                     lambda: tf.constant([[0., 0., 1., 1.]]))
  begin, size, _ = tf.image.sample_distorted_bounding_box(
      shape, bounding_boxes=bounding[tf.newaxis], min_object_covered=min_object_covered,
      aspect_ratio_range=list(aspect_ratio_range), area_range=list(area_range),
      max_attempts=100, use_image_if_no_bounding_boxes=True, seed=seed or 0)

  def crop(d):
    return _crop_to_window(d, begin[0], begin[1], size[0], size[1], overlap_thresh, clip_boxes)

  if random_coef <= 0:
    return crop(dict(tensor_dict))
  return _apply_with_probability(crop, tensor_dict, 1. - random_coef, seed)


def random_pad_image(tensor_dict, min_image_size=None, max_image_size=None, pad_color=None,
                     seed=None):
  """Pads the image to a random size at a random offset (TF OD API `random_pad_image`).

  Target size is uniform in [max(image, min_image_size), max_image_size] (default twice the
  image); the pad colour is `pad_color` (per channel, 0..255) or the image's mean colour. Masks
  are padded with 0; boxes are moved into the padded frame.
  """
  out = dict(tensor_dict)
  image = tf.cast(out[_F.image], tf.float32)
  squeeze = image.shape.rank == 4
  if squeeze:
    image = image[0]
  height, width = _image_hw(image)
  min_h, min_w = height, width
  if min_image_size:
    min_h = tf.maximum(height, min_image_size[0])
    min_w = tf.maximum(width, min_image_size[1])
  if max_image_size:
    max_h = tf.maximum(min_h, max_image_size[0])
    max_w = tf.maximum(min_w, max_image_size[1])
  else:
    max_h, max_w = 2 * height, 2 * width
    max_h, max_w = tf.maximum(max_h, min_h), tf.maximum(max_w, min_w)
  target_h = tf.random.uniform([], min_h, max_h + 1, dtype=tf.int32, seed=seed)
  target_w = tf.random.uniform([], min_w, max_w + 1, dtype=tf.int32, seed=seed)
  offset_y = tf.random.uniform([], 0, target_h - height + 1, dtype=tf.int32, seed=seed)
  offset_x = tf.random.uniform([], 0, target_w - width + 1, dtype=tf.int32, seed=seed)
  if pad_color is None or len(pad_color) == 0:  # pylint: disable=g-explicit-length-test
    color = tf.reduce_mean(image, axis=[0, 1])
  else:
    color = tf.constant(list(pad_color), tf.float32)
  padded = tf.image.pad_to_bounding_box(image - color, offset_y, offset_x, target_h, target_w)
  padded = padded + color
  out[_F.image] = padded[tf.newaxis] if squeeze else padded
  masks = _masks(out)
  if masks is not None:
    out[_F.groundtruth_instance_masks] = tf.pad(
        masks, [[0, 0], [offset_y, target_h - height - offset_y],
                [offset_x, target_w - width - offset_x]])
  if _F.groundtruth_boxes in out:
    h_f, w_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    th, tw = tf.cast(target_h, tf.float32), tf.cast(target_w, tf.float32)
    oy, ox = tf.cast(offset_y, tf.float32), tf.cast(offset_x, tf.float32)
    b = out[_F.groundtruth_boxes]
    out[_F.groundtruth_boxes] = tf.stack(
        [(b[:, 0] * h_f + oy) / th, (b[:, 1] * w_f + ox) / tw,
         (b[:, 2] * h_f + oy) / th, (b[:, 3] * w_f + ox) / tw], axis=1)
  return out


# -------------------------------------------------------------------------------- pixel ops
def random_adjust_brightness(tensor_dict, max_delta=0.2, seed=None):
  """Adds a delta in [-max_delta, max_delta] to image/255 (tf.image.adjust_brightness)."""
  delta = tf.random.uniform([], -max_delta, max_delta, seed=seed)
  return _pixel_op(tensor_dict, lambda im: tf.image.adjust_brightness(im, delta))


def random_adjust_contrast(tensor_dict, min_delta=0.8, max_delta=1.25, seed=None):
  """Multiplies contrast by a factor in [min_delta, max_delta] (tf.image.adjust_contrast)."""
  factor = tf.random.uniform([], min_delta, max_delta, seed=seed)
  return _pixel_op(tensor_dict, lambda im: tf.image.adjust_contrast(im, factor))


def random_adjust_hue(tensor_dict, max_delta=0.02, seed=None):
  """Shifts hue by a delta in [-max_delta, max_delta] (tf.image.adjust_hue)."""
  delta = tf.random.uniform([], -max_delta, max_delta, seed=seed)
  return _pixel_op(tensor_dict, lambda im: tf.image.adjust_hue(im, delta))


def random_adjust_saturation(tensor_dict, min_delta=0.8, max_delta=1.25, seed=None):
  """Multiplies saturation by a factor in [min_delta, max_delta] (tf.image.adjust_saturation)."""
  factor = tf.random.uniform([], min_delta, max_delta, seed=seed)
  return _pixel_op(tensor_dict, lambda im: tf.image.adjust_saturation(im, factor))


def random_distort_color(tensor_dict, color_ordering=0, seed=None):
  """TF OD API / Inception colour distortion: brightness 32/255, saturation [0.5, 1.5],
  hue 0.2, contrast [0.5, 1.5], in the order given by `color_ordering` (0 or 1)."""
  if color_ordering not in (0, 1):
    raise ValueError('random_distort_color: color_ordering must be 0 or 1, got %r.'
                     % (color_ordering,))

  def distort(im):
    bright = lambda x: tf.image.random_brightness(x, 32. / 255., seed=seed)
    sat = lambda x: tf.image.random_saturation(x, 0.5, 1.5, seed=seed)
    hue = lambda x: tf.image.random_hue(x, 0.2, seed=seed)
    con = lambda x: tf.image.random_contrast(x, 0.5, 1.5, seed=seed)
    order = (bright, sat, hue, con) if color_ordering == 0 else (bright, con, sat, hue)
    for op in order:
      im = tf.clip_by_value(op(im), 0., 1.)
    return im
  return _pixel_op(tensor_dict, distort)


def random_jpeg_quality(tensor_dict, random_coef=0.0, min_jpeg_quality=0, max_jpeg_quality=100,
                        seed=None):
  """JPEG-compresses the image at a random quality in [min, max] with probability 1-random_coef."""
  def compress(d):
    out = dict(d)
    image = tf.cast(out[_F.image], tf.float32)
    squeeze = image.shape.rank == 4
    im = image[0] if squeeze else image
    quality = tf.random.uniform([], min_jpeg_quality, max_jpeg_quality + 1, dtype=tf.int32,
                                seed=seed)
    # tf.image.adjust_jpeg_quality takes the quality as a tensor (tf.io.encode_jpeg needs a
    # Python int) and works on [0, 1] images.
    decoded = tf.image.adjust_jpeg_quality(tf.clip_by_value(im, 0., 255.) / 255., quality) * 255.
    decoded = tf.reshape(decoded, tf.shape(im))
    out[_F.image] = decoded[tf.newaxis] if squeeze else decoded
    return out
  return _apply_with_probability(compress, tensor_dict, 1. - random_coef, seed)


def normalize_image(tensor_dict, original_minval=0., original_maxval=255., target_minval=0.,
                    target_maxval=1.):
  """Linearly maps pixel values from [original_min, original_max] to [target_min, target_max]."""
  out = dict(tensor_dict)
  image = tf.cast(out[_F.image], tf.float32)
  scale = (target_maxval - target_minval) / (original_maxval - original_minval)
  out[_F.image] = (image - original_minval) * scale + target_minval
  return out


def random_rgb_to_gray(tensor_dict, probability=0.1, seed=None):
  """Converts the image to grayscale (kept as 3 channels) with `probability`."""
  def gray(d):
    image = tf.cast(d[_F.image], tf.float32)
    d[_F.image] = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
    return d
  return _apply_with_probability(gray, tensor_dict, probability, seed)


def random_pixel_value_scale(tensor_dict, minval=0.9, maxval=1.1, seed=None):
  """Multiplies every pixel by its own random factor in [minval, maxval], clipped to 0..255."""
  out = dict(tensor_dict)
  image = tf.cast(out[_F.image], tf.float32)
  factor = tf.random.uniform(tf.shape(image), minval, maxval, seed=seed)
  out[_F.image] = tf.clip_by_value(image * factor, 0., 255.)
  return out


# ------------------------------------------------------------------------------------ driver
def get_default_func_arg_map(include_instance_masks=True, **unused_kwargs):
  """TF OD API compatibility: maps each op to the fields it reads (None = all fields)."""
  del include_instance_masks
  return {}


def preprocess(tensor_dict, preprocess_options, func_arg_map=None, preprocess_vars_cache=None):
  """Applies `preprocess_options` [(op, kwargs), ...] in order to one example.

  Args:
    tensor_dict: dict of tensors (see the module docstring); image float32 [H, W, C] or
      [1, H, W, C] with values 0..255.
    preprocess_options: list of (function, kwargs dict) pairs, e.g. from
      `preprocessor_builder.build`.
    func_arg_map: optional {function: tuple of field names}. When a function is listed, only those
      fields are passed to it (others pass through unchanged); per-box fields should be listed
      together so they stay aligned. Default: every op gets every field.
    preprocess_vars_cache: not supported (TF OD API's cache for repeated random draws); must be
      None.

  Returns:
    A new tensor dict with the same keys.

  Raises:
    ValueError: image missing from tensor_dict, or preprocess_vars_cache given.
  """
  if preprocess_vars_cache is not None:
    raise ValueError('preprocess_vars_cache is not supported.')
  if _F.image not in tensor_dict:
    raise ValueError('preprocess: tensor_dict has no %r.' % _F.image)
  func_arg_map = func_arg_map or {}
  out = dict(tensor_dict)
  for option in preprocess_options:
    fn, kwargs = option
    names = func_arg_map.get(fn)
    if names:
      sub = {k: out[k] for k in names if k in out and out[k] is not None}
      out.update(fn(sub, **(kwargs or {})))
    else:
      out = fn(out, **(kwargs or {}))
  return out
