"""Data augmentation and preprocessing ops on a single example's tensor dict (TF OD API names).

Every random op here is `op(tensor_dict, **config_kwargs) -> tensor_dict` and is applied by
`preprocess(tensor_dict, preprocess_options)`, where `preprocess_options` is the list of
`(op, kwargs)` pairs made by `preprocessor_builder.build` from `data_augmentation_options`.
Each random op draws its random values and hands them to a deterministic op of the same
module (`flip_left_right`, `adjust_brightness`, `crop_to_window`, `pad_to_window`, ...), which
computes what the TF OD API's `core/preprocessor.py` computes for those values (checked against
it in tests/test_tfod_image_resizer.py with the values forced through its PreprocessorCache).

Tensor dict conventions (keys from `standard_fields.InputDataFields`):
  image: float32 [H, W, C], pixel values 0..255 (`preprocess` also takes [1, H, W, C], as the
    TF OD API passes it, and returns the same rank). Pixel ops change the first 3 channels only.
  groundtruth_boxes: float32 [N, 4] normalized [ymin, xmin, ymax, xmax].
  groundtruth_instance_masks: [N, H, W] uint8 (or float32) whole-image 0/1 masks; ops keep the
    dtype (uint8 stays uint8: no float copy of the masks, see docs/input_pipeline.md).
  groundtruth_keypoints: optional float32 [N, K, 2] normalized (y, x); NaN = absent.
  groundtruth_keypoint_visibilities: optional bool [N, K].
  Per-box fields (PER_BOX_FIELDS: boxes, classes, weights, is_crowd, area, difficult, group_of,
    confidences, multiclass_scores, masks, mask weights, label weights, keypoints and their
    visibilities): [N, ...]; ops that drop boxes (random_crop_image) drop the same rows of every
    per-box field present, so they stay aligned with groundtruth_boxes.
  groundtruth_area: float32 [N], object area in pixels of the CURRENT image: random_image_scale
    multiplies it by the pixel-area scale, random_crop_image by the kept fraction of the box
    area. The TF OD API leaves area untouched (and does not even drop the rows of removed
    boxes); area is only read by COCO evaluation, which does not augment.
  Other fields pass through untouched.

Random decisions use tf.random (seeded by the optional `seed` argument) so the ops work inside
tf.data map functions. The TF OD API's PreprocessorCache (repeating the same random draws over
several calls) is not supported.

Deliberate differences from the TF OD API:
  * random_image_scale resizes [N, H, W] masks per instance. The TF OD API passes them to
    `tf.image.resize_images` as one [H=N, W=H, C=W] image, which returns [N', H', W] garbage
    (its docstring expects [H, W, N]); the kernel and flags here are the ones it uses.
  * random_jpeg_quality with min_jpeg_quality == max_jpeg_quality uses that quality (the TF OD
    API's tf.random.uniform raises for an empty range).
"""

import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # pylint: disable=g-direct-tensorflow-import

from object_detection.core import standard_fields as fields

_F = fields.InputDataFields

PER_BOX_FIELDS = (
    _F.groundtruth_boxes, _F.groundtruth_classes, _F.groundtruth_weights,
    _F.groundtruth_is_crowd, _F.groundtruth_area, _F.groundtruth_difficult,
    _F.groundtruth_group_of, _F.groundtruth_confidences, _F.multiclass_scores,
    _F.groundtruth_instance_masks, _F.groundtruth_instance_mask_weights,
    _F.groundtruth_label_weights, _F.groundtruth_instance_classes,
    _F.groundtruth_keypoints, _F.groundtruth_keypoint_visibilities,
)

# TF OD API `preprocessor._rgb_to_grayscale` weights.
_GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


# ----------------------------------------------------------------------------------- helpers
def _op_seed():
  """Op seed of tf.image.sample_distorted_bounding_box when none is given: 0 (random), but that
  op refuses 0 under op determinism (training/determinism.py), where a fixed non-zero seed combined
  with the global seed keeps runs repeatable."""
  return 1 if tf_config.is_op_determinism_enabled() else 0


def _random_draw(seed=None):
  return tf.random.uniform([], 0., 1., seed=seed)


def _cond_dict(predicate, fn, tensor_dict):
  """fn(tensor_dict) where `predicate` (bool scalar) holds, else tensor_dict (same keys).

  The branches may differ in shapes (rotation swaps H and W, a crop drops boxes): tf.cond then
  gives outputs with unknown dimensions, which tf.data handles.
  """
  keys = sorted(tensor_dict)

  def apply():
    out = fn(dict(tensor_dict))
    return [out[k] for k in keys]

  def keep():
    return [tensor_dict[k] for k in keys]
  return dict(zip(keys, tf.cond(predicate, apply, keep)))


def _gather_per_box(tensor_dict, indices):
  """Keeps rows `indices` of every per-box field present."""
  out = dict(tensor_dict)
  for key in PER_BOX_FIELDS:
    if key in out and out[key] is not None:
      out[key] = tf.gather(out[key], indices)
  return out


def _masks(tensor_dict):
  return tensor_dict.get(_F.groundtruth_instance_masks)


def _keypoints(tensor_dict):
  return tensor_dict.get(_F.groundtruth_keypoints)


def _image(tensor_dict):
  image = tensor_dict[_F.image]
  if image.shape.rank != 3:
    raise ValueError('preprocessor ops take image [height, width, channels]; got shape %s (use '
                     'preprocess() for a [1, H, W, C] image).' % image.shape)
  return tf.cast(image, tf.float32)


def _on_rgb_channels(image, op):
  """op on image[..., :3], extra channels passed through (TF OD API
  `_augment_only_rgb_channels`)."""
  if image.shape[-1] == 3:
    return op(image)
  return tf.concat([op(image[:, :, :3]), image[:, :, 3:]], axis=-1)


def _pixel_op(tensor_dict, op):
  """TF OD API pixel-op pattern: op(image / 255) * 255, clipped to [0, 255], RGB channels only."""
  def scaled(image):
    return tf.clip_by_value(op(image / 255) * 255, 0., 255.)
  out = dict(tensor_dict)
  out[_F.image] = _on_rgb_channels(_image(tensor_dict), scaled)
  return out


def _change_box_frame(boxes, window):
  """TF OD API `box_list_ops.change_coordinate_frame`: (box - window min) * (1 / window size)."""
  win_h = window[2] - window[0]
  win_w = window[3] - window[1]
  shifted = boxes - tf.stack([window[0], window[1], window[0], window[1]])
  ymin, xmin, ymax, xmax = tf.split(shifted, 4, axis=1)
  y_scale, x_scale = 1.0 / win_h, 1.0 / win_w
  return tf.concat([y_scale * ymin, x_scale * xmin, y_scale * ymax, x_scale * xmax], axis=1)


def _change_keypoint_frame(keypoints, window):
  """TF OD API `keypoint_ops.change_coordinate_frame` on [N, K, 2] (y, x) keypoints."""
  win_h = window[2] - window[0]
  win_w = window[3] - window[1]
  shifted = keypoints - tf.stack([window[0], window[1]])
  return shifted * tf.stack([1.0 / win_h, 1.0 / win_w])[tf.newaxis, tf.newaxis]


def _permute_keypoints(keypoints, permutation):
  if permutation:
    return tf.gather(keypoints, list(permutation), axis=1)
  return keypoints


_V1_METHODS = {0: tf.image.ResizeMethod.BILINEAR, 1: tf.image.ResizeMethod.NEAREST_NEIGHBOR,
               2: tf.image.ResizeMethod.BICUBIC, 3: tf.image.ResizeMethod.AREA}


def resize_images_v1(images, size, method=tf.image.ResizeMethod.BILINEAR, align_corners=False):
  """Resizes with the TF1 kernels, as `tf.compat.v1.image.resize_images` (no aspect handling).

  The TF OD API resizes everything this way (half_pixel_centers=False); TF2's
  `tf.image.resize` uses half-pixel centres and samples different source pixels.

  Args:
    images: [H, W, C] or [B, H, W, C] tensor, any dtype the kernels take (uint8, float32, ...).
    size: [2] int32 tensor or ints (new_height, new_width).
    method: tf.image.ResizeMethod (or its TF1 int value 0..3).
    align_corners: align the centres of the corner pixels (TF1 flag).

  Returns:
    Same rank as `images`: float32 for BILINEAR / BICUBIC / AREA, the input dtype for
    NEAREST_NEIGHBOR.

  Raises:
    ValueError: unknown method.
  """
  if isinstance(method, int) and not isinstance(method, bool):
    method = _V1_METHODS.get(method, method)
  if method not in _V1_METHODS.values():
    raise ValueError('resize method %r is unknown; use BILINEAR, NEAREST_NEIGHBOR, BICUBIC or '
                     'AREA (tf.image.ResizeMethod).' % (method,))
  images = tf.convert_to_tensor(images)
  is_batch = images.shape.rank == 4
  if not is_batch:
    images = images[tf.newaxis]
  size = tf.cast(tf.convert_to_tensor(size), tf.int32)
  if method == tf.image.ResizeMethod.BILINEAR:
    out = tf.raw_ops.ResizeBilinear(images=images, size=size, align_corners=align_corners,
                                    half_pixel_centers=False)
  elif method == tf.image.ResizeMethod.NEAREST_NEIGHBOR:
    out = tf.raw_ops.ResizeNearestNeighbor(images=images, size=size,
                                           align_corners=align_corners,
                                           half_pixel_centers=False)
  elif method == tf.image.ResizeMethod.BICUBIC:
    out = tf.raw_ops.ResizeBicubic(images=images, size=size, align_corners=align_corners,
                                   half_pixel_centers=False)
  else:
    out = tf.raw_ops.ResizeArea(images=images, size=size, align_corners=align_corners)
  static_size = tf.get_static_value(size)
  if static_size is not None:
    out.set_shape([None, int(static_size[0]), int(static_size[1]), None])
  return out if is_batch else out[0]


def rgb_to_gray(image):
  """[..., 3] float32 -> [..., 1] luma with the TF OD API's weights (`preprocessor.rgb_to_gray`:
  0.2989 R + 0.5870 G + 0.1140 B)."""
  image = tf.convert_to_tensor(image)
  return tf.reduce_sum(image * tf.constant(_GRAY_WEIGHTS, image.dtype), axis=-1, keepdims=True)


# ----------------------------------------------------------------- deterministic geometric ops
def flip_left_right(tensor_dict, keypoint_flip_permutation=None):
  """Mirrors image, masks, boxes and keypoints left-right (TF OD API random_horizontal_flip
  with the flip taken): x -> 1 - x; keypoints are also reordered by keypoint_flip_permutation
  (new keypoint k = old keypoint permutation[k]), and so are their visibilities.

  Raises:
    ValueError: keypoints present without keypoint_flip_permutation.
  """
  out = dict(tensor_dict)
  out[_F.image] = tf.reverse(_image(out), axis=[1])
  if _F.groundtruth_boxes in out:
    ymin, xmin, ymax, xmax = tf.split(out[_F.groundtruth_boxes], 4, axis=1)
    out[_F.groundtruth_boxes] = tf.concat([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=1)
  if _masks(out) is not None:
    out[_F.groundtruth_instance_masks] = _masks(out)[:, :, ::-1]
  if _keypoints(out) is not None:
    if not keypoint_flip_permutation:
      raise ValueError('random_horizontal_flip: the example has groundtruth_keypoints; set '
                       'keypoint_flip_permutation in the config.')
    keypoints = _permute_keypoints(_keypoints(out), keypoint_flip_permutation)
    y, x = tf.split(keypoints, 2, axis=2)
    out[_F.groundtruth_keypoints] = tf.concat([y, 1.0 - x], axis=2)
    if _F.groundtruth_keypoint_visibilities in out:
      out[_F.groundtruth_keypoint_visibilities] = _permute_keypoints(
          out[_F.groundtruth_keypoint_visibilities], keypoint_flip_permutation)
  return out


def flip_up_down(tensor_dict, keypoint_flip_permutation=None):
  """Mirrors image, masks, boxes and keypoints up-down (TF OD API random_vertical_flip with the
  flip taken): y -> 1 - y; keypoints reordered by keypoint_flip_permutation (visibilities are
  left as they are, as in the TF OD API).

  Raises:
    ValueError: keypoints present without keypoint_flip_permutation.
  """
  out = dict(tensor_dict)
  out[_F.image] = tf.reverse(_image(out), axis=[0])
  if _F.groundtruth_boxes in out:
    ymin, xmin, ymax, xmax = tf.split(out[_F.groundtruth_boxes], 4, axis=1)
    out[_F.groundtruth_boxes] = tf.concat([1.0 - ymax, xmin, 1.0 - ymin, xmax], axis=1)
  if _masks(out) is not None:
    out[_F.groundtruth_instance_masks] = _masks(out)[:, ::-1, :]
  if _keypoints(out) is not None:
    if not keypoint_flip_permutation:
      raise ValueError('random_vertical_flip: the example has groundtruth_keypoints; set '
                       'keypoint_flip_permutation in the config.')
    keypoints = _permute_keypoints(_keypoints(out), keypoint_flip_permutation)
    y, x = tf.split(keypoints, 2, axis=2)
    out[_F.groundtruth_keypoints] = tf.concat([1.0 - y, x], axis=2)
  return out


def rotate90(tensor_dict, keypoint_rot_permutation=None):
  """Rotates image, masks, boxes and keypoints 90 degrees counter-clockwise (TF OD API
  random_rotation90 with the rotation taken).

  Pixel (y, x) of an H x W image goes to (W - 1 - x, y); normalized boxes [ymin, xmin, ymax,
  xmax] -> [1 - xmax, ymin, 1 - xmin, ymax]; keypoints (y, x) -> (1 - x, y) after the optional
  reordering by keypoint_rot_permutation.
  """
  out = dict(tensor_dict)
  out[_F.image] = tf.image.rot90(_image(out), k=1)
  if _F.groundtruth_boxes in out:
    ymin, xmin, ymax, xmax = tf.split(out[_F.groundtruth_boxes], 4, axis=1)
    out[_F.groundtruth_boxes] = tf.concat([1.0 - xmax, ymin, 1.0 - xmin, ymax], axis=1)
  if _masks(out) is not None:
    out[_F.groundtruth_instance_masks] = tf.transpose(_masks(out), [0, 2, 1])[:, ::-1, :]
  if _keypoints(out) is not None:
    keypoints = _permute_keypoints(_keypoints(out), keypoint_rot_permutation)
    y, x = tf.split(keypoints, 2, axis=2)
    out[_F.groundtruth_keypoints] = tf.concat([1.0 - x, y], axis=2)
  return out


def scale_image(tensor_dict, size_coef):
  """Rescales image and masks by `size_coef` (TF OD API random_image_scale for that draw).

  New size = int(H * size_coef), int(W * size_coef) (float32 product, truncated); the image is
  resized bilinearly and the masks with NEAREST_NEIGHBOR, both with TF1 kernels and
  align_corners=True. Normalized boxes are unchanged; groundtruth_area is multiplied by the
  pixel-area ratio.
  """
  out = dict(tensor_dict)
  image = _image(out)
  shape = tf.shape(image)
  size_coef = tf.cast(size_coef, tf.float32)
  new_h = tf.cast(tf.cast(shape[0], tf.float32) * size_coef, tf.int32)
  new_w = tf.cast(tf.cast(shape[1], tf.float32) * size_coef, tf.int32)
  new_size = tf.stack([new_h, new_w])
  out[_F.image] = resize_images_v1(image, new_size, tf.image.ResizeMethod.BILINEAR, True)
  masks = _masks(out)
  if masks is not None:
    out[_F.groundtruth_instance_masks] = resize_images_v1(
        masks[..., tf.newaxis], new_size, tf.image.ResizeMethod.NEAREST_NEIGHBOR, True)[..., 0]
  if _F.groundtruth_area in out:
    scale = (tf.cast(new_h * new_w, tf.float32) /
             tf.cast(tf.maximum(shape[0] * shape[1], 1), tf.float32))
    out[_F.groundtruth_area] = out[_F.groundtruth_area] * scale
  return out


def crop_to_window(tensor_dict, begin, size, window, overlap_thresh=0.3, clip_boxes=True):
  """Crops the example to one window (TF OD API `_strict_random_crop_image` for that window).

  Args:
    tensor_dict: see the module docstring.
    begin, size: int32 [3] pixel offset and size of the crop (the first two outputs of
      tf.image.sample_distorted_bounding_box; the channel entries are ignored).
    window: float32 [4] the same crop as a normalized [ymin, xmin, ymax, xmax] box (its third
      output, squeezed).
    overlap_thresh: a box is kept if at least this fraction of its area lies in the window (and
      it is not completely outside it).
    clip_boxes: clip kept boxes to the window ([0, 1] after re-normalizing) and turn keypoints
      outside it into NaN (their visibilities into False).

  Returns:
    The cropped tensor dict: image / masks sliced to the window, boxes and keypoints
    re-normalized to it, every per-box field restricted to the kept boxes.
  """
  out = dict(tensor_dict)
  image = _image(out)
  y0, x0 = begin[0], begin[1]
  y1, x1 = y0 + size[0], x0 + size[1]
  out[_F.image] = image[y0:y1, x0:x1, :]
  masks = _masks(out)
  if masks is not None:
    out[_F.groundtruth_instance_masks] = masks[:, y0:y1, x0:x1]
  if _F.groundtruth_boxes not in out:
    return out
  window = tf.cast(window, tf.float32)
  boxes = out[_F.groundtruth_boxes]
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
  outside = tf.reduce_any(tf.stack([ymin >= window[2], xmin >= window[3],
                                    ymax <= window[0], xmax <= window[1]], axis=1), axis=1)
  inter_h = tf.maximum(0.0, tf.minimum(ymax, window[2]) - tf.maximum(ymin, window[0]))
  inter_w = tf.maximum(0.0, tf.minimum(xmax, window[3]) - tf.maximum(xmin, window[1]))
  area = (ymax - ymin) * (xmax - xmin)
  ioa = tf.math.truediv(inter_h * inter_w, area)
  keep = tf.logical_and(tf.logical_not(outside), ioa >= overlap_thresh)
  indices = tf.reshape(tf.where(keep), [-1])
  new_boxes = _change_box_frame(boxes, window)
  if clip_boxes:
    new_boxes = tf.clip_by_value(new_boxes, 0.0, 1.0)
  out[_F.groundtruth_boxes] = new_boxes
  if _F.groundtruth_area in out:
    kept_fraction = tf.where(area > 0, inter_h * inter_w / tf.maximum(area, 1e-12),
                             tf.ones_like(area))
    out[_F.groundtruth_area] = out[_F.groundtruth_area] * kept_fraction
  keypoints = _keypoints(out)
  if keypoints is not None:
    keypoints = _change_keypoint_frame(keypoints, window)
    if clip_boxes:
      y, x = tf.split(keypoints, 2, axis=2)
      inside = tf.logical_and(tf.logical_and(y >= 0.0, y <= 1.0),
                              tf.logical_and(x >= 0.0, x <= 1.0))
      keypoints = tf.where(inside, keypoints, float('nan'))
      if _F.groundtruth_keypoint_visibilities in out:
        out[_F.groundtruth_keypoint_visibilities] = tf.logical_and(
            tf.cast(out[_F.groundtruth_keypoint_visibilities], tf.bool),
            tf.logical_not(tf.reduce_any(tf.math.is_nan(keypoints), axis=2)))
    out[_F.groundtruth_keypoints] = keypoints
  return _gather_per_box(out, indices)


def pad_to_window(tensor_dict, target_height, target_width, offset_height, offset_width,
                  pad_color=None):
  """Pads the example into a larger canvas (TF OD API random_pad_image for those draws).

  Args:
    tensor_dict: see the module docstring.
    target_height, target_width: int32 canvas size (>= the image size).
    offset_height, offset_width: int32 position of the image's top-left corner in the canvas.
    pad_color: per-channel float32 [C] fill value (0..255), or None for the image's mean colour.

  Returns:
    The padded tensor dict: image filled with pad_color around the original pixels (which keep
    their exact values), masks padded with 0, boxes and keypoints re-normalized to the canvas.
  """
  out = dict(tensor_dict)
  image = _image(out)
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  if pad_color is None:
    pad_color = tf.reduce_mean(image, axis=[0, 1])
  pad_color = tf.cast(pad_color, tf.float32)
  paddings = [[offset_height, target_height - height - offset_height],
              [offset_width, target_width - width - offset_width]]
  inside = tf.pad(tf.ones_like(image), paddings + [[0, 0]])
  out[_F.image] = tf.pad(image, paddings + [[0, 0]]) + (1.0 - inside) * pad_color
  masks = _masks(out)
  if masks is not None:
    out[_F.groundtruth_instance_masks] = tf.pad(masks, [[0, 0]] + paddings)
  window = (tf.cast(tf.stack([-offset_height, -offset_width, target_height - offset_height,
                              target_width - offset_width]), tf.float32) /
            tf.cast(tf.stack([height, width, height, width]), tf.float32))
  if _F.groundtruth_boxes in out:
    out[_F.groundtruth_boxes] = _change_box_frame(out[_F.groundtruth_boxes], window)
  if _keypoints(out) is not None:
    out[_F.groundtruth_keypoints] = _change_keypoint_frame(_keypoints(out), window)
  return out


# --------------------------------------------------------------------- deterministic pixel ops
def adjust_brightness(tensor_dict, delta):
  """tf.image.adjust_brightness(image / 255, delta) * 255, clipped to [0, 255]."""
  return _pixel_op(tensor_dict, lambda im: tf.image.adjust_brightness(im, delta))


def adjust_contrast(tensor_dict, contrast_factor):
  """tf.image.adjust_contrast(image / 255, contrast_factor) * 255, clipped to [0, 255]."""
  return _pixel_op(tensor_dict, lambda im: tf.image.adjust_contrast(im, contrast_factor))


def adjust_hue(tensor_dict, delta):
  """tf.image.adjust_hue(image / 255, delta) * 255, clipped to [0, 255]."""
  return _pixel_op(tensor_dict, lambda im: tf.image.adjust_hue(im, delta))


def adjust_saturation(tensor_dict, saturation_factor):
  """tf.image.adjust_saturation(image / 255, saturation_factor) * 255, clipped to [0, 255]."""
  return _pixel_op(tensor_dict, lambda im: tf.image.adjust_saturation(im, saturation_factor))


def scale_pixel_values(tensor_dict, color_coef):
  """image * color_coef (float32, broadcastable to the image), clipped to [0, 255]."""
  out = dict(tensor_dict)
  out[_F.image] = tf.clip_by_value(_image(out) * color_coef, 0.0, 255.0)
  return out


def rgb_to_gray_3_channels(tensor_dict):
  """Replaces RGB by its luma (TF OD API weights 0.2989, 0.5870, 0.1140) in all 3 channels."""
  def gray(image):
    return tf.image.grayscale_to_rgb(rgb_to_gray(image))
  out = dict(tensor_dict)
  out[_F.image] = _on_rgb_channels(_image(out), gray)
  return out


def jpeg_encode_decode(tensor_dict, quality):
  """JPEG round trip at `quality` (0..100) of the image cast (truncated) to uint8; float32 out."""
  out = dict(tensor_dict)
  image_uint8 = tf.cast(_image(out), tf.uint8)
  out[_F.image] = tf.cast(tf.image.adjust_jpeg_quality(image_uint8, quality), tf.float32)
  return out


def normalize_image(tensor_dict, original_minval=0., original_maxval=255., target_minval=0.,
                    target_maxval=1.):
  """Linearly maps pixel values from [original_min, original_max] to [target_min, target_max]
  (TF OD API `normalize_image`: (x - original_min) * scale + target_min)."""
  out = dict(tensor_dict)
  scale = (float(target_maxval) - float(target_minval)) / (
      float(original_maxval) - float(original_minval))
  image = tf.subtract(_image(out), float(original_minval))
  out[_F.image] = tf.add(tf.multiply(image, scale), float(target_minval))
  return out


# ------------------------------------------------------------------------------ random ops
def random_horizontal_flip(tensor_dict, probability=0.5, seed=None, keypoint_flip_permutation=None):
  """`flip_left_right` when a uniform draw is < `probability`."""
  return _cond_dict(_random_draw(seed) < probability,
                    lambda d: flip_left_right(d, keypoint_flip_permutation), tensor_dict)


def random_vertical_flip(tensor_dict, probability=0.5, seed=None, keypoint_flip_permutation=None):
  """`flip_up_down` when a uniform draw is < `probability`."""
  return _cond_dict(_random_draw(seed) < probability,
                    lambda d: flip_up_down(d, keypoint_flip_permutation), tensor_dict)


def random_rotation90(tensor_dict, probability=0.5, seed=None, keypoint_rot_permutation=None):
  """`rotate90` when a uniform draw is < `probability`."""
  return _cond_dict(_random_draw(seed) < probability,
                    lambda d: rotate90(d, keypoint_rot_permutation), tensor_dict)


def random_image_scale(tensor_dict, min_scale_ratio=0.5, max_scale_ratio=2.0, seed=None):
  """`scale_image` with size_coef uniform in [min_scale_ratio, max_scale_ratio)."""
  size_coef = tf.random.uniform([], min_scale_ratio, max_scale_ratio, seed=seed)
  return scale_image(tensor_dict, size_coef)


def random_crop_image(tensor_dict, min_object_covered=1.0, aspect_ratio_range=(0.75, 1.33),
                      area_range=(0.1, 1.0), overlap_thresh=0.3, clip_boxes=True,
                      random_coef=0.0, seed=None):
  """Random crop as the TF OD API: a window from tf.image.sample_distorted_bounding_box over
  the ground-truth boxes (clipped to [0, 1]; the whole image when there are none, max 100
  attempts), applied with `crop_to_window`. With random_coef > 0 the crop is only taken when a
  uniform draw exceeds random_coef (so random_coef is the chance of keeping the example)."""
  image = _image(tensor_dict)
  boxes = tensor_dict.get(_F.groundtruth_boxes)
  if boxes is None:
    boxes = tf.zeros([0, 4], tf.float32)
  begin, size, window = tf.image.sample_distorted_bounding_box(
      tf.shape(image), bounding_boxes=tf.clip_by_value(boxes, 0., 1.)[:, tf.newaxis],
      min_object_covered=min_object_covered, aspect_ratio_range=list(aspect_ratio_range),
      area_range=list(area_range), max_attempts=100, use_image_if_no_bounding_boxes=True,
      seed=seed or _op_seed())
  window = tf.reshape(window, [4])

  def crop(d):
    return crop_to_window(d, begin, size, window, overlap_thresh, clip_boxes)

  if random_coef <= 0:
    return crop(dict(tensor_dict))
  return _cond_dict(_random_draw(seed) > random_coef, crop, tensor_dict)


def _uniform_int_or_max(minval, maxval, seed):
  """TF OD API random_pad_image draw: uniform in [minval, maxval) if maxval > minval, else
  maxval."""
  return tf.cond(maxval > minval,
                 lambda: tf.random.uniform([], minval, tf.maximum(maxval, minval + 1),
                                           dtype=tf.int32, seed=seed),
                 lambda: maxval)


def random_pad_image(tensor_dict, min_image_size=None, max_image_size=None, pad_color=None,
                     seed=None):
  """Pads the image to a random size at a random offset (TF OD API `random_pad_image`).

  Target size per side: uniform in [min, max) where min = max(min_image_size, image size) and
  max = max(max_image_size (default twice the image), image size); max itself when min >= max.
  Offset: uniform in [0, target - image) (0 when there is no padding). Applied with
  `pad_to_window`; pad_color (per channel, 0..255) defaults to the image's mean colour.
  """
  image = _image(tensor_dict)
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  image_size = tf.stack([height, width])
  max_size = (tf.constant(list(max_image_size), tf.int32) if max_image_size
              else image_size * 2)
  max_size = tf.maximum(max_size, image_size)
  min_size = tf.constant(list(min_image_size), tf.int32) if min_image_size else image_size
  min_size = tf.maximum(min_size, image_size)
  target_h = _uniform_int_or_max(min_size[0], max_size[0], seed)
  target_w = _uniform_int_or_max(min_size[1], max_size[1], seed)
  offset_h = tf.cond(target_h > height,
                     lambda: tf.random.uniform([], 0, tf.maximum(target_h - height, 1),
                                               dtype=tf.int32, seed=seed),
                     lambda: tf.constant(0, tf.int32))
  offset_w = tf.cond(target_w > width,
                     lambda: tf.random.uniform([], 0, tf.maximum(target_w - width, 1),
                                               dtype=tf.int32, seed=seed),
                     lambda: tf.constant(0, tf.int32))
  color = list(pad_color) if pad_color is not None and list(pad_color) else None
  return pad_to_window(tensor_dict, target_h, target_w, offset_h, offset_w, color)


def random_adjust_brightness(tensor_dict, max_delta=0.2, seed=None):
  """`adjust_brightness` with delta uniform in [-max_delta, max_delta)."""
  delta = tf.random.uniform([], -max_delta, max_delta, seed=seed)
  return adjust_brightness(tensor_dict, delta)


def random_adjust_contrast(tensor_dict, min_delta=0.8, max_delta=1.25, seed=None):
  """`adjust_contrast` with a factor uniform in [min_delta, max_delta)."""
  factor = tf.random.uniform([], min_delta, max_delta, seed=seed)
  return adjust_contrast(tensor_dict, factor)


def random_adjust_hue(tensor_dict, max_delta=0.02, seed=None):
  """`adjust_hue` with delta uniform in [-max_delta, max_delta)."""
  delta = tf.random.uniform([], -max_delta, max_delta, seed=seed)
  return adjust_hue(tensor_dict, delta)


def random_adjust_saturation(tensor_dict, min_delta=0.8, max_delta=1.25, seed=None):
  """`adjust_saturation` with a factor uniform in [min_delta, max_delta)."""
  factor = tf.random.uniform([], min_delta, max_delta, seed=seed)
  return adjust_saturation(tensor_dict, factor)


def random_distort_color(tensor_dict, color_ordering=0, seed=None):
  """TF OD API colour distortion: brightness (max_delta 32/255), saturation [0.5, 1.5), hue
  (max_delta 0.2), contrast [0.5, 1.5), each clipped to [0, 255], in that order for
  color_ordering 0; brightness, contrast, saturation, hue for 1.

  Raises:
    ValueError: color_ordering not 0 or 1.
  """
  bright = lambda d: random_adjust_brightness(d, 32. / 255., seed=seed)
  sat = lambda d: random_adjust_saturation(d, 0.5, 1.5, seed=seed)
  hue = lambda d: random_adjust_hue(d, 0.2, seed=seed)
  con = lambda d: random_adjust_contrast(d, 0.5, 1.5, seed=seed)
  if color_ordering == 0:
    order = (bright, sat, hue, con)
  elif color_ordering == 1:
    order = (bright, con, sat, hue)
  else:
    raise ValueError('random_distort_color: color_ordering must be 0 or 1, got %r.'
                     % (color_ordering,))
  out = tensor_dict
  for op in order:
    out = op(out)
  return out


def random_jpeg_quality(tensor_dict, random_coef=0.0, min_jpeg_quality=0, max_jpeg_quality=100,
                        seed=None):
  """`jpeg_encode_decode` at a quality uniform in [min_jpeg_quality, max_jpeg_quality), taken
  when a uniform draw is >= random_coef (random_coef = chance of keeping the image)."""
  def compress(d):
    if max_jpeg_quality > min_jpeg_quality:
      quality = tf.random.uniform([], min_jpeg_quality, max_jpeg_quality, dtype=tf.int32,
                                  seed=seed)
    else:
      quality = tf.constant(min_jpeg_quality, tf.int32)
    return jpeg_encode_decode(d, quality)
  return _cond_dict(_random_draw(seed) >= random_coef, compress, tensor_dict)


def random_rgb_to_gray(tensor_dict, probability=0.1, seed=None):
  """`rgb_to_gray_3_channels` unless a uniform draw is > `probability`."""
  return _cond_dict(tf.logical_not(_random_draw(seed) > probability), rgb_to_gray_3_channels,
                    tensor_dict)


def random_pixel_value_scale(tensor_dict, minval=0.9, maxval=1.1, seed=None):
  """`scale_pixel_values` with an independent factor per pixel value, uniform in
  [minval, maxval)."""
  image = _image(tensor_dict)
  color_coef = tf.random.uniform(tf.shape(image), minval, maxval, seed=seed)
  return scale_pixel_values(tensor_dict, color_coef)


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
    A new tensor dict with the same keys; the image has the rank it came with.

  Raises:
    ValueError: image missing from tensor_dict or not rank 3 / [1, H, W, C]; preprocess_vars_cache
      given.
  """
  if preprocess_vars_cache is not None:
    raise ValueError('preprocess_vars_cache is not supported.')
  if _F.image not in tensor_dict:
    raise ValueError('preprocess: tensor_dict has no %r.' % _F.image)
  func_arg_map = func_arg_map or {}
  out = dict(tensor_dict)
  rank4 = out[_F.image].shape.rank == 4
  if rank4:
    out[_F.image] = tf.squeeze(out[_F.image], axis=0)
  if out[_F.image].shape.rank != 3:
    raise ValueError('preprocess: image must be [H, W, C] or [1, H, W, C], got shape %s.'
                     % tensor_dict[_F.image].shape)
  for option in preprocess_options:
    fn, kwargs = option
    names = func_arg_map.get(fn)
    if names:
      sub = {k: out[k] for k in names if k in out and out[k] is not None}
      out.update(fn(sub, **(kwargs or {})))
    else:
      out = fn(out, **(kwargs or {}))
  if rank4:
    out[_F.image] = out[_F.image][tf.newaxis]
  return out
