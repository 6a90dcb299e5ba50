"""image_resizer_builder on a real coco128_seg photo and its rasterised masks."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image
from pycocotools import mask as mask_util

from object_detection.builders import image_resizer_builder
from object_detection.protos import image_resizer_pb2

from conftest import COCO128_DIR as DATA  # pylint: disable=g-bad-import-order


@pytest.fixture(scope='module')
def photo():
  """(image float32 [H, W, 3], masks uint8 [N, H, W]) of the first val image (640 x 480-ish)."""
  with open(os.path.join(DATA, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  im = sorted(coco['images'], key=lambda x: x['id'])[0]
  anns = [a for a in coco['annotations'] if a['image_id'] == im['id']]
  image = np.asarray(Image.open(os.path.join(DATA, 'images', im['file_name'])).convert('RGB'))
  h, w = image.shape[:2]
  masks = np.stack([mask_util.decode(mask_util.merge(mask_util.frPyObjects(
      a['segmentation'], h, w))) for a in anns]).astype(np.uint8)
  return tf.constant(image, tf.float32), tf.constant(masks)


def _build(text):
  return image_resizer_builder.build(text_format.Parse(text, image_resizer_pb2.ImageResizer()))


def _expected_size(h, w, min_dim, max_dim):
  scale = min_dim / min(h, w)
  if round(max(h, w) * scale) > max_dim:
    scale = max_dim / max(h, w)
  return round(h * scale), round(w * scale)


def test_keep_aspect_ratio_pad(photo):
  image, masks = photo
  fn = _build('keep_aspect_ratio_resizer { min_dimension: 96 max_dimension: 128 '
              'pad_to_max_dimension: true per_channel_pad_value: [1.0, 2.0, 3.0] }')
  resized, resized_masks, shape = fn(image, masks)
  h, w = image.shape[:2]
  eh, ew = _expected_size(h, w, 96, 128)
  assert resized.shape == (128, 128, 3) and resized.dtype == tf.float32
  assert resized_masks.shape == (masks.shape[0], 128, 128) and resized_masks.dtype == tf.uint8
  np.testing.assert_array_equal(shape.numpy(), [eh, ew, 3])
  assert shape.dtype == tf.int32
  m = resized_masks.numpy()
  assert set(np.unique(m)) == {0, 1}
  # Padding: masks zero and image filled with the per-channel pad value outside the true shape.
  assert m[:, eh:, :].sum() == 0 and m[:, :, ew:].sum() == 0
  if eh < 128:
    np.testing.assert_allclose(resized.numpy()[eh:, :, :], np.broadcast_to([1., 2., 3.],
                                                                           (128 - eh, 128, 3)))
  if ew < 128:
    np.testing.assert_allclose(resized.numpy()[:, ew:, :], np.broadcast_to([1., 2., 3.],
                                                                           (128, 128 - ew, 3)))
  # Nearest-neighbour masks keep each instance's area fraction (within 5 %).
  frac_before = masks.numpy().reshape(masks.shape[0], -1).mean(1)
  frac_after = m[:, :eh, :ew].reshape(m.shape[0], -1).mean(1)
  big = frac_before > 0.01
  np.testing.assert_allclose(frac_after[big], frac_before[big], rtol=0.05)


def test_keep_aspect_ratio_no_pad_limited_by_max(photo):
  image, masks = photo
  fn = _build('keep_aspect_ratio_resizer { min_dimension: 100 max_dimension: 110 }')
  resized, resized_masks, shape = fn(image, masks)
  h, w = image.shape[:2]
  eh, ew = _expected_size(h, w, 100, 110)
  assert max(eh, ew) == 110
  assert resized.shape == (eh, ew, 3)
  assert resized_masks.shape[1:] == (eh, ew)
  np.testing.assert_array_equal(shape.numpy(), [eh, ew, 3])


def test_fixed_shape_resizer_float_masks_and_method(photo):
  image, masks = photo
  fn = _build('fixed_shape_resizer { height: 64 width: 80 resize_method: NEAREST_NEIGHBOR }')
  fmasks = tf.cast(masks, tf.float32)
  resized, resized_masks, shape = fn(image, fmasks)
  assert resized.shape == (64, 80, 3)
  assert resized_masks.dtype == tf.float32 and resized_masks.shape[1:] == (64, 80)
  assert set(np.unique(resized_masks.numpy())) <= {0., 1.}
  np.testing.assert_array_equal(shape.numpy(), [64, 80, 3])
  # NEAREST_NEIGHBOR keeps the photo's original pixel values; BILINEAR blends them.
  original_values = set(np.unique(image.numpy()))
  assert set(np.unique(resized.numpy())) <= original_values
  bilinear = _build('fixed_shape_resizer { height: 64 width: 80 }')(image)[0]
  assert not set(np.unique(bilinear.numpy())) <= original_values


def test_identity_resizer_without_masks(photo):
  image, _ = photo
  out = _build('identity_resizer {}')(image)
  assert len(out) == 2
  np.testing.assert_array_equal(out[0].numpy(), image.numpy())
  np.testing.assert_array_equal(out[1].numpy(), image.shape)


def test_works_in_tf_function(photo):
  image, masks = photo
  fn = _build('keep_aspect_ratio_resizer { min_dimension: 50 max_dimension: 60 '
              'pad_to_max_dimension: true }')
  resized, resized_masks, _ = tf.function(fn)(image, masks)
  assert resized.shape == (60, 60, 3) and resized_masks.shape[1:] == (60, 60)


def test_errors():
  with pytest.raises(ValueError, match='min_dimension'):
    _build('keep_aspect_ratio_resizer { min_dimension: 200 max_dimension: 100 }')
  with pytest.raises(ValueError, match='no resizer set'):
    image_resizer_builder.build(image_resizer_pb2.ImageResizer())


def test_conditional_and_pad_to_multiple(photo):
  image, masks = photo
  h, w = image.shape[:2]
  resized, resized_masks, shape = _build(
      'conditional_shape_resizer { condition: GREATER size_threshold: 100 }')(image, masks)
  assert max(resized.shape[:2]) == 100 and resized_masks.shape[1:] == resized.shape[:2]
  np.testing.assert_array_equal(shape.numpy(), resized.shape)
  same = _build('conditional_shape_resizer { condition: SMALLER size_threshold: 100 }')(image)[0]
  assert same.shape == image.shape  # The smaller side is already >= 100.
  padded, padded_masks, shape = _build('pad_to_multiple_resizer { multiple: 64 }')(image, masks)
  assert padded.shape[0] % 64 == 0 and padded.shape[1] % 64 == 0
  np.testing.assert_array_equal(shape.numpy(), [h, w, 3])
  np.testing.assert_array_equal(padded_masks.numpy()[:, :h, :w], masks.numpy())
  assert padded_masks.numpy()[:, h:, :].sum() == 0
