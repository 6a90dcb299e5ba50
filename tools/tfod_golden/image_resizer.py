"""Writes the TF OD API's image resizer and augmentation outputs on real coco128 photos.

Reference side of `tests/test_tfod_image_resizer.py`. Inputs are three coco128_seg val photos
(000000000036 portrait 640x481, 000000000071 landscape 426x640, 000000000078 square 612x612),
decoded on both sides with `tf.io.decode_jpeg(channels=3)` (the MD5 of the decoded bytes is
stored so the test can prove it decoded the same pixels), and up to two instance masks per photo
rasterized from their COCO polygons with pycocotools (stored bit-packed).

Writes `tests/testdata/tfod_golden/image_resizer/`:
  resizer_<case>.npz, one per `ImageResizer` text config in RESIZER_CASES (the TF2 zoo's and
    samples/configs' resizers, plus every resizer option on small targets), with the config text
    (`config`) and, for each photo i:
    `p{i}/true_shape`, `p{i}/shape`, the float32 image summarized by `p{i}/row_sums`,
    `p{i}/col_sums` (float64 sums over everything but the row / column) and `p{i}/sample_val`
    (the values at the flat positions `sample_positions` gives), and the resized masks in full
    (`p{i}/masks_bits` = np.packbits of the 0/1 masks, `p{i}/masks_shape`).
  photos.npz: file names, decoded MD5s and shapes, original masks (bit-packed).
  augment.npz: a 1/8-scale copy of photo 000000000071 (strided decode, uint8), its largest six
    instances' masks, boxes, classes and synthetic keypoints, and the outputs of the TF OD API's
    `core/preprocessor.py` ops with their random draws forced through its PreprocessorCache
    (values stored as `<op>/draw_*`): flips, rotation, pixel value scale, image scale, rgb to
    gray, brightness / contrast / hue / saturation, distort colour (both orderings), crops
    (windows from tf.image.sample_distorted_bounding_box, with and without clip_boxes), pads
    (given colour and mean colour), JPEG quality, normalize_image.
  builder_kwargs.json: for each PreprocessingStep text, the function name and the keyword
    arguments (defaults filled in) the TF OD API's preprocessor_builder produces.

Rerun (outside /work/main, in the reference environment):

  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/image_resizer.py
"""

import hashlib
import inspect
import json
import os

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from pycocotools import mask as mask_util

from object_detection.builders import image_resizer_builder
from object_detection.builders import preprocessor_builder
from object_detection.core import preprocessor
from object_detection.core import preprocessor_cache
from object_detection.protos import image_resizer_pb2
from object_detection.protos import preprocessor_pb2

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_OUT_DIR = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'image_resizer')
_COCO128 = os.path.join(_REPO, 'samples', 'data', 'coco128_seg')
PHOTO_IDS = (36, 71, 78)
MAX_MASKS = 2
NUM_SAMPLES = 3000

RESIZER_CASES = {
    # Zoo / samples/configs resizers.
    'kar_256_256_pad': 'keep_aspect_ratio_resizer { min_dimension: 256 max_dimension: 256 '
                       'pad_to_max_dimension: true }',
    'kar_480_480_pad': 'keep_aspect_ratio_resizer { min_dimension: 480 max_dimension: 480 '
                       'pad_to_max_dimension: true }',
    'kar_640_640_pad': 'keep_aspect_ratio_resizer { min_dimension: 640 max_dimension: 640 '
                       'pad_to_max_dimension: true }',
    'kar_800_1333_pad': 'keep_aspect_ratio_resizer { min_dimension: 800 max_dimension: 1333 '
                        'pad_to_max_dimension: true }',
    'kar_800_1333': 'keep_aspect_ratio_resizer { min_dimension: 800 max_dimension: 1333 }',
    'kar_1024_1024_pad': 'keep_aspect_ratio_resizer { min_dimension: 1024 max_dimension: 1024 '
                         'pad_to_max_dimension: true }',
    'fixed_1024': 'fixed_shape_resizer { height: 1024 width: 1024 }',
    'fixed_512': 'fixed_shape_resizer { height: 512 width: 512 }',
    # Every other option, on small targets.
    'kar_100_140_pad_channel': 'keep_aspect_ratio_resizer { min_dimension: 100 '
                               'max_dimension: 140 pad_to_max_dimension: true '
                               'per_channel_pad_value: [123.68, 116.78, 103.94] }',
    'kar_100_140_gray_pad': 'keep_aspect_ratio_resizer { min_dimension: 100 max_dimension: 140 '
                            'pad_to_max_dimension: true convert_to_grayscale: true '
                            'per_channel_pad_value: [10.0, 200.0, 50.0] }',
    'kar_90_150_nearest': 'keep_aspect_ratio_resizer { min_dimension: 90 max_dimension: 150 '
                          'resize_method: NEAREST_NEIGHBOR }',
    'kar_90_150_bicubic': 'keep_aspect_ratio_resizer { min_dimension: 90 max_dimension: 150 '
                          'resize_method: BICUBIC }',
    'kar_90_150_area': 'keep_aspect_ratio_resizer { min_dimension: 90 max_dimension: 150 '
                       'resize_method: AREA }',
    'kar_127_127': 'keep_aspect_ratio_resizer { min_dimension: 127 max_dimension: 127 }',
    'fixed_75_130_nearest': 'fixed_shape_resizer { height: 75 width: 130 '
                            'resize_method: NEAREST_NEIGHBOR }',
    'fixed_75_130_bicubic': 'fixed_shape_resizer { height: 75 width: 130 '
                            'resize_method: BICUBIC }',
    'fixed_75_130_area': 'fixed_shape_resizer { height: 75 width: 130 resize_method: AREA }',
    'fixed_64_64_gray': 'fixed_shape_resizer { height: 64 width: 64 convert_to_grayscale: true }',
    'identity': 'identity_resizer { }',
    'cond_greater_150': 'conditional_shape_resizer { condition: GREATER size_threshold: 150 }',
    'cond_greater_150_gray_bicubic': 'conditional_shape_resizer { condition: GREATER '
                                     'size_threshold: 150 resize_method: BICUBIC '
                                     'convert_to_grayscale: true }',
    'cond_smaller_650': 'conditional_shape_resizer { condition: SMALLER size_threshold: 650 }',
    'cond_smaller_300': 'conditional_shape_resizer { condition: SMALLER size_threshold: 300 }',
    'pad_multiple_32': 'pad_to_multiple_resizer { multiple: 32 }',
    'pad_multiple_64_gray': 'pad_to_multiple_resizer { multiple: 64 convert_to_grayscale: true }',
}

BUILDER_STEPS = (
    'normalize_image { original_minval: 0.0 original_maxval: 255.0 target_minval: -1.0 '
    'target_maxval: 1.0 }',
    'random_horizontal_flip { }',
    'random_horizontal_flip { probability: 0.3 keypoint_flip_permutation: [1, 0, 2] }',
    'random_vertical_flip { }',
    'random_rotation90 { probability: 0.2 }',
    'random_pixel_value_scale { }',
    'random_pixel_value_scale { minval: 0.7 maxval: 1.2 }',
    'random_image_scale { }',
    'random_image_scale { min_scale_ratio: 0.8 max_scale_ratio: 1.5 }',
    'random_rgb_to_gray { }',
    'random_rgb_to_gray { probability: 0.3 }',
    'random_adjust_brightness { }',
    'random_adjust_brightness { max_delta: 0.1 }',
    'random_adjust_contrast { }',
    'random_adjust_contrast { min_delta: 0.7 max_delta: 1.1 }',
    'random_adjust_hue { }',
    'random_adjust_hue { max_delta: 0.05 }',
    'random_adjust_saturation { }',
    'random_adjust_saturation { min_delta: 0.6 max_delta: 1.4 }',
    'random_distort_color { }',
    'random_distort_color { color_ordering: 1 }',
    'random_jpeg_quality { }',
    'random_jpeg_quality { random_coef: 0.5 min_jpeg_quality: 40 max_jpeg_quality: 90 }',
    'random_crop_image { }',
    'random_crop_image { min_object_covered: 0.5 min_aspect_ratio: 0.6 max_aspect_ratio: 1.6 '
    'min_area: 0.2 max_area: 0.9 overlap_thresh: 0.4 clip_boxes: false random_coef: 0.1 }',
    'random_pad_image { }',
    'random_pad_image { min_image_height: 300 min_image_width: 400 max_image_height: 900 '
    'max_image_width: 800 pad_color: [1.0, 2.0, 3.0] }',
)


def _packbits(masks):
  return np.packbits(np.asarray(masks, np.uint8).astype(bool).ravel())


def _load_photos():
  with open(os.path.join(_COCO128, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  images = {im['id']: im for im in coco['images']}
  photos = []
  for image_id in PHOTO_IDS:
    info = images[image_id]
    path = os.path.join(_COCO128, 'images', info['file_name'])
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3).numpy()
    h, w = image.shape[:2]
    anns = [a for a in coco['annotations'] if a['image_id'] == image_id and not a['iscrowd']
            and isinstance(a['segmentation'], list)]
    anns = sorted(anns, key=lambda a: -a['area'])[:MAX_MASKS]
    masks = np.stack([mask_util.decode(mask_util.merge(mask_util.frPyObjects(
        a['segmentation'], h, w))) for a in anns]).astype(np.uint8)
    boxes = np.array([[a['bbox'][1] / h, a['bbox'][0] / w, (a['bbox'][1] + a['bbox'][3]) / h,
                       (a['bbox'][0] + a['bbox'][2]) / w] for a in anns], np.float32)
    photos.append({'file_name': info['file_name'], 'image': image, 'masks': masks,
                   'boxes': boxes, 'classes': np.array([a['category_id'] for a in anns]),
                   'md5': hashlib.md5(image.tobytes()).hexdigest()})
  return photos, coco


def sample_positions(size):
  """NUM_SAMPLES flat positions spread over an array of `size` values (same in the test)."""
  return np.unique((np.arange(NUM_SAMPLES, dtype=np.int64) * 2654435761 + 12345) % size)


def _summarize(prefix, image):
  image = np.asarray(image, np.float32)
  flat = image.ravel()
  idx = sample_positions(flat.size)
  return {
      prefix + 'shape': np.array(image.shape, np.int32),
      prefix + 'row_sums': image.astype(np.float64).sum(axis=(1, 2)),
      prefix + 'col_sums': image.astype(np.float64).sum(axis=(0, 2)),
      prefix + 'sample_val': flat[idx],
  }


def _write_resizer_cases(photos):
  for name, text in RESIZER_CASES.items():
    fn = image_resizer_builder.build(text_format.Parse(text, image_resizer_pb2.ImageResizer()))
    out = {'config': np.array(text)}
    for i, photo in enumerate(photos):
      image = tf.cast(tf.constant(photo['image']), tf.float32)
      masks = tf.cast(tf.constant(photo['masks']), tf.float32)
      resized, resized_masks, true_shape = fn(image, masks)
      prefix = 'p%d/' % i
      out.update(_summarize(prefix, resized.numpy()))
      out[prefix + 'true_shape'] = np.asarray(true_shape.numpy(), np.int32)
      m = resized_masks.numpy()
      assert set(np.unique(m)) <= {0., 1.}, name
      out[prefix + 'masks_shape'] = np.array(m.shape, np.int32)
      out[prefix + 'masks_bits'] = _packbits(m)
      # Without masks the resizer returns [image, shape] and the same image.
      no_masks = fn(image)
      assert len(no_masks) == 2 and np.array_equal(no_masks[0].numpy(), resized.numpy()), name
    np.savez_compressed(os.path.join(_OUT_DIR, 'resizer_%s.npz' % name), **out)
    print(name, [tuple(out['p%d/shape' % i]) for i in range(len(photos))])


def _write_photos(photos):
  out = {}
  for i, photo in enumerate(photos):
    out['p%d/file_name' % i] = np.array(photo['file_name'])
    out['p%d/md5' % i] = np.array(photo['md5'])
    out['p%d/image_shape' % i] = np.array(photo['image'].shape, np.int32)
    out['p%d/masks_shape' % i] = np.array(photo['masks'].shape, np.int32)
    out['p%d/masks_bits' % i] = _packbits(photo['masks'])
  np.savez_compressed(os.path.join(_OUT_DIR, 'photos.npz'), **out)


# ------------------------------------------------------------------------------ augmentations
def _augment_inputs(coco):
  """1/8-scale photo 71 (uint8), masks of its 6 largest instances, boxes, keypoints."""
  info = [im for im in coco['images'] if im['id'] == 71][0]
  path = os.path.join(_COCO128, 'images', info['file_name'])
  full = tf.io.decode_jpeg(tf.io.read_file(path), channels=3).numpy()
  h, w = full.shape[:2]
  image = full[::8, ::8]
  anns = [a for a in coco['annotations'] if a['image_id'] == 71 and not a['iscrowd']
          and isinstance(a['segmentation'], list)]
  anns = sorted(anns, key=lambda a: -a['area'])[:6]
  masks = np.stack([mask_util.decode(mask_util.merge(mask_util.frPyObjects(
      a['segmentation'], h, w)))[::8, ::8] for a in anns]).astype(np.uint8)
  boxes = np.array([[a['bbox'][1] / h, a['bbox'][0] / w, (a['bbox'][1] + a['bbox'][3]) / h,
                     (a['bbox'][0] + a['bbox'][2]) / w] for a in anns], np.float32)
  # Keypoints: top-left corner, centre, bottom-right corner of each box; one absent (NaN).
  centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
  keypoints = np.stack([boxes[:, :2], centre, boxes[:, 2:]], axis=1).astype(np.float32)
  keypoints[1, 2] = np.nan
  visibilities = np.ones(keypoints.shape[:2], bool)
  visibilities[1, 2] = False
  visibilities[3, 0] = False
  return {
      'image': image, 'masks': masks, 'boxes': boxes,
      'classes': np.array([a['category_id'] for a in anns], np.int32),
      'weights': np.arange(1, len(anns) + 1, dtype=np.float32),
      'keypoints': keypoints, 'visibilities': visibilities,
      'permutation': np.array([2, 1, 0], np.int32),
  }


def _pixel_scale_coef(shape):
  """Deterministic per-value factors in [0.9, 1.1) (same formula in the test)."""
  n = int(np.prod(shape))
  return (0.9 + 0.2 * ((np.arange(n, dtype=np.int64) * 7919) % 1000) / 1000.).astype(
      np.float32).reshape(shape)


def _cache(*entries):
  cache = preprocessor_cache.PreprocessorCache()
  for function_id, key, value in entries:
    cache.update(function_id, key, value)
  return cache


def _crop_windows(image, boxes):
  """Three windows from tf.image.sample_distorted_bounding_box that drop some boxes."""
  windows = []
  seed = 0
  while len(windows) < 3:
    seed += 1
    begin, size, box = tf.image.sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.expand_dims(tf.clip_by_value(boxes, 0., 1.), 1),
        min_object_covered=0.0, aspect_ratio_range=(0.75, 1.33), area_range=(0.2, 0.6),
        max_attempts=100, use_image_if_no_bounding_boxes=True, seed=seed)
    win = box.numpy().reshape(4)
    b = boxes.numpy()
    inside = ((b[:, 0] >= win[0]) & (b[:, 1] >= win[1]) & (b[:, 2] <= win[2]) &
              (b[:, 3] <= win[3]))
    outside = ((b[:, 0] >= win[2]) | (b[:, 1] >= win[3]) | (b[:, 2] <= win[0]) |
               (b[:, 3] <= win[1]))
    if outside.any() and (~inside & ~outside).any():
      windows.append((begin, size, box))
  return windows


def _write_augment(coco):
  inp = _augment_inputs(coco)
  out = {'input/' + k: v for k, v in inp.items()}
  image = tf.cast(tf.constant(inp['image']), tf.float32)
  boxes = tf.constant(inp['boxes'])
  masks = tf.cast(tf.constant(inp['masks']), tf.float32)
  keypoints = tf.constant(inp['keypoints'])
  visibilities = tf.constant(inp['visibilities'])
  classes = tf.constant(inp['classes'])
  weights = tf.constant(inp['weights'])
  perm = tuple(int(v) for v in inp['permutation'])
  cache_ids = preprocessor_cache.PreprocessorCache

  def put(prefix, names, values):
    for name, value in zip(names, values):
      out[prefix + '/' + name] = np.asarray(value.numpy() if hasattr(value, 'numpy') else value)

  put('hflip', ('image', 'boxes', 'masks', 'keypoints', 'visibilities'),
      preprocessor.random_horizontal_flip(
          image, boxes=boxes, masks=masks, keypoints=keypoints,
          keypoint_visibilities=visibilities, keypoint_flip_permutation=perm, probability=1.0))
  put('vflip', ('image', 'boxes', 'masks', 'keypoints'),
      preprocessor.random_vertical_flip(image, boxes=boxes, masks=masks, keypoints=keypoints,
                                        keypoint_flip_permutation=perm, probability=1.0))
  put('rot90', ('image', 'boxes', 'masks', 'keypoints'),
      preprocessor.random_rotation90(image, boxes=boxes, masks=masks, keypoints=keypoints,
                                     keypoint_rot_permutation=perm, probability=1.0))
  coef = tf.constant(_pixel_scale_coef(inp['image'].shape))
  put('pixel_value_scale', ('image',), [preprocessor.random_pixel_value_scale(
      image, preprocess_vars_cache=_cache((cache_ids.PIXEL_VALUE_SCALE, '', coef)))])
  for name, size_coef in (('image_scale_down', 0.73), ('image_scale_up', 1.37)):
    # The TF OD API's random_image_scale takes masks as [H, W, N] (its docstring); fed so.
    scaled_image, scaled_masks = preprocessor.random_image_scale(
        image, masks=tf.transpose(masks, [1, 2, 0]),
        preprocess_vars_cache=_cache((cache_ids.IMAGE_SCALE, '', tf.constant(size_coef))))
    put(name, ('image', 'masks', 'draw_size_coef'),
        (scaled_image, tf.transpose(scaled_masks, [2, 0, 1]), np.float32(size_coef)))
  put('rgb_to_gray', ('image',), [preprocessor.random_rgb_to_gray(image, probability=1.0)])
  pixel_cases = (
      ('brightness_up', preprocessor.random_adjust_brightness, cache_ids.ADJUST_BRIGHTNESS, 0.13),
      ('brightness_down', preprocessor.random_adjust_brightness, cache_ids.ADJUST_BRIGHTNESS,
       -0.17),
      ('contrast_up', preprocessor.random_adjust_contrast, cache_ids.ADJUST_CONTRAST, 1.21),
      ('contrast_down', preprocessor.random_adjust_contrast, cache_ids.ADJUST_CONTRAST, 0.63),
      ('hue_up', preprocessor.random_adjust_hue, cache_ids.ADJUST_HUE, 0.017),
      ('hue_down', preprocessor.random_adjust_hue, cache_ids.ADJUST_HUE, -0.15),
      ('saturation_up', preprocessor.random_adjust_saturation, cache_ids.ADJUST_SATURATION,
       1.19),
      ('saturation_down', preprocessor.random_adjust_saturation, cache_ids.ADJUST_SATURATION,
       0.41),
  )
  for name, fn, function_id, value in pixel_cases:
    result = fn(image, preprocess_vars_cache=_cache((function_id, '', tf.constant(value))))
    put(name, ('image', 'draw_value'), (result, np.float32(value)))
  draws = {'brightness': 0.09, 'saturation': 1.32, 'hue': -0.11, 'contrast': 0.71}
  for ordering in (0, 1):
    cache = _cache((cache_ids.ADJUST_BRIGHTNESS, '', tf.constant(draws['brightness'])),
                   (cache_ids.ADJUST_SATURATION, '', tf.constant(draws['saturation'])),
                   (cache_ids.ADJUST_HUE, '', tf.constant(draws['hue'])),
                   (cache_ids.ADJUST_CONTRAST, '', tf.constant(draws['contrast'])))
    result = preprocessor.random_distort_color(image, color_ordering=ordering,
                                               preprocess_vars_cache=cache)
    put('distort_color_%d' % ordering, ['image'] + ['draw_' + k for k in draws],
        [result] + [np.float32(v) for v in draws.values()])
  for i, (begin, size, box) in enumerate(_crop_windows(image, boxes)):
    for clip_boxes, overlap in ((True, 0.3), (False, 0.3), (True, 0.0)):
      name = 'crop_%d_%s_%s' % (i, 'clip' if clip_boxes else 'noclip', overlap)
      cache = _cache((cache_ids.STRICT_CROP_IMAGE, 1.0, (begin, size, box)))
      result = preprocessor.random_crop_image(
          image, boxes, classes, weights, masks=masks, keypoints=keypoints,
          keypoint_visibilities=visibilities, overlap_thresh=overlap, clip_boxes=clip_boxes,
          preprocess_vars_cache=cache)
      names = ('image', 'boxes', 'classes', 'weights', 'masks', 'keypoints')
      if clip_boxes:
        names += ('visibilities',)
      put(name, names, result)
      put(name, ('draw_begin', 'draw_size', 'draw_window', 'overlap_thresh', 'clip_boxes'),
          (begin, size, tf.reshape(box, [4]), np.float32(overlap), np.array(clip_boxes)))
  for name, params, color in (('pad_color', (80, 150, 13, 31), [10., 20., 30.]),
                              ('pad_mean', (60, 100, 0, 20), None)):
    cache = _cache((cache_ids.PAD_IMAGE, '', tuple(tf.constant(v) for v in params)))
    result = preprocessor.random_pad_image(
        image, boxes, masks=masks, keypoints=keypoints,
        pad_color=None if color is None else tf.constant(color), preprocess_vars_cache=cache)
    put(name, ('image', 'boxes', 'masks', 'keypoints', 'draw_params'),
        tuple(result) + (np.array(params, np.int32),))
    if color is not None:
      out[name + '/pad_color'] = np.array(color, np.float32)
  for quality in (37, 85):
    cache = _cache((cache_ids.JPEG_QUALITY, '', tf.constant(0.5)),
                   (cache_ids.JPEG_QUALITY, 'quality', tf.constant(quality)))
    put('jpeg_%d' % quality, ('image', 'draw_quality'),
        (preprocessor.random_jpeg_quality(image, preprocess_vars_cache=cache),
         np.int32(quality)))
  put('normalize', ('image',), [preprocessor.normalize_image(image, 0., 255., -1., 1.)])
  np.savez_compressed(os.path.join(_OUT_DIR, 'augment.npz'), **out)


def _jsonable(value):
  if isinstance(value, tf.Tensor):
    value = value.numpy()
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, (tuple, list)):
    return [_jsonable(v) for v in value]
  if isinstance(value, (np.floating, float)):
    return float(value)
  if isinstance(value, (np.integer,)):
    return int(value)
  if hasattr(value, 'value'):  # tf.image.ResizeMethod enum
    return value.value
  return value


def _write_builder_kwargs():
  result = {}
  skip = {'seed', 'preprocess_vars_cache'}
  for text in BUILDER_STEPS:
    step = text_format.Parse(text, preprocessor_pb2.PreprocessingStep())
    fn, kwargs = preprocessor_builder.build(step)
    effective = {}
    for name, param in inspect.signature(fn).parameters.items():
      if name in skip:
        continue
      if name in kwargs:
        effective[name] = _jsonable(kwargs[name])
      elif param.default is not inspect.Parameter.empty and param.default is not None:
        effective[name] = _jsonable(param.default)
    result[text] = {'function': fn.__name__, 'kwargs': effective}
  with open(os.path.join(_OUT_DIR, 'builder_kwargs.json'), 'w') as f:
    json.dump(result, f, indent=1, sort_keys=True)


def main():
  os.makedirs(_OUT_DIR, exist_ok=True)
  photos, coco = _load_photos()
  _write_photos(photos)
  _write_resizer_cases(photos)
  _write_augment(coco)
  _write_builder_kwargs()


if __name__ == '__main__':
  main()
