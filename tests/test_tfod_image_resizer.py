"""Image resizers and augmentation ops against the TF OD API's own outputs.

Golden values: tests/testdata/tfod_golden/image_resizer/, written by
tools/tfod_golden/image_resizer.py in the reference environment (see its docstring).

Resizers: every resizer config of the TF2 zoo and samples/configs (keep_aspect_ratio 256 / 480 /
640 / 1024 with pad_to_max_dimension, 800/1333 with and without padding, fixed 512 / 1024) and
every resizer option (per-channel padding, grayscale, NEAREST_NEIGHBOR / BICUBIC / AREA,
identity, conditional GREATER / SMALLER, pad-to-multiple) on three real photos (portrait,
landscape, square) and their polygon masks. Shapes, true shapes and masks must be identical; the
float32 image within 1e-4 (sampled values and per-row / per-column sums, which a single wrong
pixel would move).

Augmentations: the deterministic core of each supported data_augmentation_options step, given
the random draws the TF OD API was forced to use (through its PreprocessorCache), must give the
TF OD API's image (1e-4; identical for the ops that only move pixels: flips, rotation, crop, pad
with a given colour), boxes and keypoints (1e-6), masks, classes and weights (identical); the
builder must pass the TF OD API builder's arguments.
"""
import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection.builders import image_resizer_builder
from object_detection.builders import preprocessor_builder
from object_detection.core import preprocessor
from object_detection.core import standard_fields as fields
from object_detection.protos import image_resizer_pb2
from object_detection.protos import preprocessor_pb2

from conftest import COCO128_IMAGES  # pylint: disable=g-bad-import-order

F = fields.InputDataFields
GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'testdata', 'tfod_golden',
                      'image_resizer')
# Bilinear / bicubic / area pixel values (0..255): the TF OD API and this project run the same
# TF1 kernels, so they agree bit for bit; 1e-4 leaves room for a different CPU's float
# reordering inside a kernel.
PIXEL_ATOL = 1e-4
BOX_ATOL = 1e-6
NUM_SAMPLES = 3000
RESIZER_CASES = sorted(f[len('resizer_'):-len('.npz')] for f in os.listdir(GOLDEN)
                       if f.startswith('resizer_'))


def sample_positions(size):
  """Same flat positions as the generator's `sample_positions`."""
  return np.unique((np.arange(NUM_SAMPLES, dtype=np.int64) * 2654435761 + 12345) % size)


def _unpack(bits, shape):
  return np.unpackbits(bits)[:int(np.prod(shape))].reshape(shape).astype(np.uint8)


@pytest.fixture(scope='module')
def photos():
  """[(image float32 [H, W, 3], masks uint8 [N, H, W])] decoded exactly as the reference did."""
  data = np.load(os.path.join(GOLDEN, 'photos.npz'))
  result = []
  i = 0
  while 'p%d/file_name' % i in data:
    path = os.path.join(COCO128_IMAGES, str(data['p%d/file_name' % i]))
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3).numpy()
    assert hashlib.md5(image.tobytes()).hexdigest() == str(data['p%d/md5' % i]), (
        'tf.io.decode_jpeg decoded %s differently from the reference run' % path)
    masks = _unpack(data['p%d/masks_bits' % i], data['p%d/masks_shape' % i])
    result.append((tf.constant(image, tf.float32), tf.constant(masks)))
    i += 1
  assert len(result) == 3
  return result


def _build(text):
  return image_resizer_builder.build(text_format.Parse(text, image_resizer_pb2.ImageResizer()))


def _compare_image(ours, golden, prefix):
  """Returns the max abs difference over the stored samples; asserts shape, sums, samples."""
  ours = np.asarray(ours, np.float32)
  np.testing.assert_array_equal(ours.shape, golden[prefix + 'shape'])
  per_row = ours.shape[1] * ours.shape[2]
  per_col = ours.shape[0] * ours.shape[2]
  np.testing.assert_allclose(ours.astype(np.float64).sum(axis=(1, 2)), golden[prefix + 'row_sums'],
                             rtol=0, atol=PIXEL_ATOL * per_row)
  np.testing.assert_allclose(ours.astype(np.float64).sum(axis=(0, 2)), golden[prefix + 'col_sums'],
                             rtol=0, atol=PIXEL_ATOL * per_col)
  values = ours.ravel()[sample_positions(ours.size)]
  np.testing.assert_allclose(values, golden[prefix + 'sample_val'], rtol=0, atol=PIXEL_ATOL)
  return float(np.abs(values - golden[prefix + 'sample_val']).max())


@pytest.mark.parametrize('case', RESIZER_CASES)
def test_resizer_matches_tfod(photos, case):
  golden = np.load(os.path.join(GOLDEN, 'resizer_%s.npz' % case))
  fn = _build(str(golden['config']))
  for i, (image, masks) in enumerate(photos):
    prefix = 'p%d/' % i
    resized, resized_masks, true_shape = fn(image, masks)
    assert resized.dtype == tf.float32 and resized_masks.dtype == tf.uint8
    assert true_shape.dtype == tf.int32
    np.testing.assert_array_equal(true_shape.numpy(), golden[prefix + 'true_shape'])
    _compare_image(resized.numpy(), golden, prefix)
    expected_masks = _unpack(golden[prefix + 'masks_bits'], golden[prefix + 'masks_shape'])
    np.testing.assert_array_equal(resized_masks.numpy(), expected_masks)
    # Without masks: [image, shape] and the same image.
    no_masks = fn(image)
    assert len(no_masks) == 2
    np.testing.assert_array_equal(no_masks[0].numpy(), resized.numpy())
    # The meta-architecture resizes ground-truth masks with a [H, W, 1] zeros dummy image.
    h, w = image.shape[:2]
    _, dummy_masks, _ = fn(image=tf.zeros([h, w, 1]), masks=masks)
    np.testing.assert_array_equal(dummy_masks.numpy(), expected_masks)


def test_every_zoo_and_sample_resizer_has_a_golden():
  for case in ('kar_256_256_pad', 'kar_480_480_pad', 'kar_640_640_pad', 'kar_800_1333_pad',
               'kar_800_1333', 'kar_1024_1024_pad', 'fixed_512', 'fixed_1024'):
    assert case in RESIZER_CASES
  assert len(RESIZER_CASES) == 25


def test_resizer_float_masks_and_tf_function(photos):
  """float32 masks stay float32 0/1; graph mode (unknown input size) gives the same numbers."""
  case = 'kar_800_1333_pad'
  golden = np.load(os.path.join(GOLDEN, 'resizer_%s.npz' % case))
  fn = _build(str(golden['config']))
  graph_fn = tf.function(fn, input_signature=[tf.TensorSpec([None, None, 3], tf.float32),
                                              tf.TensorSpec([None, None, None], tf.float32)])
  image, masks = photos[1]
  resized, resized_masks, true_shape = graph_fn(image, tf.cast(masks, tf.float32))
  assert resized.shape == (1333, 1333, 3) and resized_masks.dtype == tf.float32
  _compare_image(resized.numpy(), golden, 'p1/')
  np.testing.assert_array_equal(true_shape.numpy(), golden['p1/true_shape'])
  np.testing.assert_array_equal(resized_masks.numpy(),
                                _unpack(golden['p1/masks_bits'], golden['p1/masks_shape']))


def test_resizer_config_errors():
  with pytest.raises(ValueError, match='min_dimension'):
    _build('keep_aspect_ratio_resizer { min_dimension: 200 max_dimension: 100 }')
  with pytest.raises(ValueError, match='no resizer set'):
    image_resizer_builder.build(image_resizer_pb2.ImageResizer())
  with pytest.raises(ValueError, match='multiple'):
    _build('pad_to_multiple_resizer { multiple: 0 }')
  with pytest.raises(ValueError, match='condition'):
    _build('conditional_shape_resizer { condition: INVALID }')
  with pytest.raises(ValueError, match='ImageResizer'):
    image_resizer_builder.build('keep_aspect_ratio_resizer {}')
  fn = _build('keep_aspect_ratio_resizer { min_dimension: 10 max_dimension: 20 '
              'pad_to_max_dimension: true per_channel_pad_value: [1, 2] }')
  with pytest.raises(ValueError, match='per_channel_pad_value'):
    fn(tf.zeros([8, 8, 3]))


# ------------------------------------------------------------------------------ augmentations
@pytest.fixture(scope='module')
def augment():
  return dict(np.load(os.path.join(GOLDEN, 'augment.npz')))


def _example(g):
  return {
      F.image: tf.constant(g['input/image'], tf.float32),
      F.groundtruth_boxes: tf.constant(g['input/boxes']),
      F.groundtruth_instance_masks: tf.constant(g['input/masks']),
      F.groundtruth_keypoints: tf.constant(g['input/keypoints']),
      F.groundtruth_keypoint_visibilities: tf.constant(g['input/visibilities']),
      F.groundtruth_classes: tf.constant(g['input/classes']),
      F.groundtruth_weights: tf.constant(g['input/weights']),
  }


def _check(out, g, name, fields_present=('image',), exact_image=False):
  """Compares `out` with the golden `name/<field>` entries listed in fields_present.

  exact_image: the op only moves pixels (flip, rotation, crop, pad with a given colour), so the
  image must be identical, not just within PIXEL_ATOL.
  """
  keys = {'image': F.image, 'boxes': F.groundtruth_boxes, 'masks': F.groundtruth_instance_masks,
          'keypoints': F.groundtruth_keypoints, 'visibilities': F.groundtruth_keypoint_visibilities,
          'classes': F.groundtruth_classes, 'weights': F.groundtruth_weights}
  for field in fields_present:
    ours = out[keys[field]].numpy()
    expected = g['%s/%s' % (name, field)]
    assert ours.shape == expected.shape, (name, field, ours.shape, expected.shape)
    if field == 'image' and not exact_image:
      np.testing.assert_allclose(ours, expected, rtol=0, atol=PIXEL_ATOL, err_msg=name)
    elif field in ('boxes', 'keypoints'):
      np.testing.assert_allclose(ours, expected, rtol=0, atol=BOX_ATOL, err_msg=name)
    else:
      np.testing.assert_array_equal(ours, expected.astype(ours.dtype), err_msg=name)


GEOMETRY = ('image', 'boxes', 'masks', 'keypoints')


def test_flips_and_rotation(augment):
  g = augment
  perm = tuple(int(v) for v in g['input/permutation'])
  ex = _example(g)
  _check(preprocessor.random_horizontal_flip(ex, probability=1.0, keypoint_flip_permutation=perm),
         g, 'hflip', GEOMETRY + ('visibilities',), exact_image=True)
  _check(preprocessor.random_vertical_flip(ex, probability=1.0, keypoint_flip_permutation=perm),
         g, 'vflip', GEOMETRY, exact_image=True)
  _check(preprocessor.random_rotation90(ex, probability=1.0, keypoint_rot_permutation=perm),
         g, 'rot90', GEOMETRY, exact_image=True)
  # probability 0 leaves the example unchanged.
  same = preprocessor.random_horizontal_flip(ex, probability=0.0, keypoint_flip_permutation=perm)
  np.testing.assert_array_equal(same[F.image].numpy(), g['input/image'])
  with pytest.raises(ValueError, match='keypoint_flip_permutation'):
    preprocessor.flip_left_right(ex)


def test_pixel_value_scale_and_image_scale(augment):
  g = augment
  ex = _example(g)
  shape = g['input/image'].shape
  n = int(np.prod(shape))
  coef = (0.9 + 0.2 * ((np.arange(n, dtype=np.int64) * 7919) % 1000) / 1000.).astype(
      np.float32).reshape(shape)
  _check(preprocessor.scale_pixel_values(ex, coef), g, 'pixel_value_scale')
  for name in ('image_scale_down', 'image_scale_up'):
    out = preprocessor.scale_image(ex, g[name + '/draw_size_coef'])
    _check(out, g, name, ('image', 'masks'))
    np.testing.assert_array_equal(out[F.groundtruth_boxes], g['input/boxes'])


@pytest.mark.parametrize('name,fn', [
    ('brightness_up', preprocessor.adjust_brightness),
    ('brightness_down', preprocessor.adjust_brightness),
    ('contrast_up', preprocessor.adjust_contrast),
    ('contrast_down', preprocessor.adjust_contrast),
    ('hue_up', preprocessor.adjust_hue),
    ('hue_down', preprocessor.adjust_hue),
    ('saturation_up', preprocessor.adjust_saturation),
    ('saturation_down', preprocessor.adjust_saturation),
])
def test_color_ops(augment, name, fn):
  g = augment
  out = fn(_example(g), tf.constant(g[name + '/draw_value']))
  _check(out, g, name)
  np.testing.assert_array_equal(out[F.groundtruth_instance_masks], g['input/masks'])


def test_distort_color_gray_jpeg_normalize(augment):
  g = augment
  ex = _example(g)
  for ordering in (0, 1):
    name = 'distort_color_%d' % ordering
    draw = {k: g['%s/draw_%s' % (name, k)] for k in
            ('brightness', 'saturation', 'hue', 'contrast')}
    bright = lambda d, v=draw: preprocessor.adjust_brightness(d, v['brightness'])
    sat = lambda d, v=draw: preprocessor.adjust_saturation(d, v['saturation'])
    hue = lambda d, v=draw: preprocessor.adjust_hue(d, v['hue'])
    con = lambda d, v=draw: preprocessor.adjust_contrast(d, v['contrast'])
    out = ex
    for op in ((bright, sat, hue, con) if ordering == 0 else (bright, con, sat, hue)):
      out = op(out)
    _check(out, g, name)
  _check(preprocessor.random_rgb_to_gray(ex, probability=1.0), g, 'rgb_to_gray')
  for quality in (37, 85):
    _check(preprocessor.jpeg_encode_decode(ex, tf.constant(quality)), g, 'jpeg_%d' % quality)
  _check(preprocessor.normalize_image(ex, 0., 255., -1., 1.), g, 'normalize')


def _crop_names(g):
  return sorted({k.split('/')[0] for k in g if k.startswith('crop_')})


def test_crop_to_window(augment):
  g = augment
  ex = _example(g)
  names = _crop_names(g)
  assert len(names) == 9
  dropped = 0
  for name in names:
    clip = bool(g[name + '/clip_boxes'])
    out = preprocessor.crop_to_window(ex, g[name + '/draw_begin'], g[name + '/draw_size'],
                                      g[name + '/draw_window'], float(g[name + '/overlap_thresh']),
                                      clip)
    present = GEOMETRY + ('classes', 'weights') + (('visibilities',) if clip else ())
    _check(out, g, name, present, exact_image=True)
    dropped += g['input/boxes'].shape[0] - out[F.groundtruth_boxes].shape[0]
  assert dropped > 0


def test_pad_to_window(augment):
  g = augment
  ex = _example(g)
  for name in ('pad_color', 'pad_mean'):
    color = g.get(name + '/pad_color')
    out = preprocessor.pad_to_window(ex, *[int(v) for v in g[name + '/draw_params']],
                                     pad_color=color)
    # The mean colour is a float reduction (summation order may vary); a given colour is exact.
    _check(out, g, name, GEOMETRY, exact_image=color is not None)


def test_builder_pad_sizes_both_or_neither():
  with pytest.raises(ValueError, match='min_image_height and min_image_width'):
    preprocessor_builder.build(text_format.Parse(
        'random_pad_image { min_image_height: 300 }', preprocessor_pb2.PreprocessingStep()))


def test_builder_kwargs_match_tfod():
  """Our builder passes the TF OD API's arguments (defaults filled in) to the same-named op."""
  with open(os.path.join(GOLDEN, 'builder_kwargs.json')) as f:
    expected = json.load(f)
  import inspect  # pylint: disable=g-import-not-at-top
  for text, ref in expected.items():
    fn, kwargs = preprocessor_builder.build(
        text_format.Parse(text, preprocessor_pb2.PreprocessingStep()))
    assert fn.__name__ == ref['function'], text
    params = inspect.signature(fn).parameters
    for name, value in ref['kwargs'].items():
      if name == 'center_pad':  # Not in preprocessor.proto; always False from the builder.
        assert value is False
        continue
      assert name in params, (text, name)
      ours = kwargs[name] if name in kwargs else params[name].default
      if value is None:
        assert ours is None, (text, name, ours)
      elif isinstance(value, list):
        np.testing.assert_allclose(np.asarray(ours, np.float64), value, rtol=1e-6, err_msg=text)
      else:
        assert ours == pytest.approx(value, rel=1e-6), (text, name, ours)
