"""Augmentation ops on real coco128_seg photos + rasterised instance masks.

Every geometric step is checked for: each kept box still bounds its mask (1 pixel tolerance),
and classes / crowd flags / areas / weights stay aligned with the boxes (a per-box tag stored in
groundtruth_weights identifies each instance after the transform).
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from pycocotools import mask as mask_util

from object_detection.core import preprocessor
from object_detection.core import standard_fields as fields

F = fields.InputDataFields
from conftest import COCO128_DIR as DATA  # pylint: disable=g-bad-import-order
# Images with several instances of different sizes (COCO ids from instances_val.json).
NUM_IMAGES = 2


def _load_examples():
  with open(os.path.join(DATA, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  by_image = {}
  for ann in coco['annotations']:
    by_image.setdefault(ann['image_id'], []).append(ann)
  images = sorted((im for im in coco['images'] if len(by_image.get(im['id'], [])) >= 4),
                  key=lambda im: im['id'])[:NUM_IMAGES]
  examples = []
  for im in images:
    h, w = im['height'], im['width']
    # Half resolution keeps the tests fast; masks are rasterised at that size.
    image = np.asarray(Image.open(os.path.join(DATA, 'images', im['file_name'])).convert('RGB')
                       .resize((w // 2, h // 2), Image.BILINEAR))
    hh, ww = image.shape[:2]
    anns = by_image[im['id']]
    masks, boxes = [], []
    for ann in anns:
      polys = [list(np.asarray(p) / 2.) for p in ann['segmentation']]
      rle = mask_util.merge(mask_util.frPyObjects(polys, hh, ww))
      m = mask_util.decode(rle).astype(np.uint8)
      masks.append(m)
      ys, xs = np.nonzero(m)
      boxes.append([ys.min() / hh, xs.min() / ww, (ys.max() + 1) / hh, (xs.max() + 1) / ww])
    n = len(anns)
    examples.append({
        F.image: tf.constant(image, tf.float32),
        F.groundtruth_boxes: tf.constant(boxes, tf.float32),
        F.groundtruth_classes: tf.constant([a['category_id'] for a in anns], tf.int64),
        F.groundtruth_instance_masks: tf.constant(np.stack(masks)),
        # Alternating crowd flags and a unique weight per box: alignment tags.
        F.groundtruth_is_crowd: tf.constant([i % 2 == 1 for i in range(n)]),
        F.groundtruth_area: tf.constant([float(m.sum()) for m in masks], tf.float32),
        F.groundtruth_weights: tf.constant([1. + i for i in range(n)], tf.float32),
    })
  return examples


@pytest.fixture(scope='module')
def examples():
  return _load_examples()


def _check_consistent(before, after, area_may_shrink=False, area_scale=1.0):
  """Boxes bound masks (1 px), per-box fields aligned with the tag in groundtruth_weights."""
  masks = after[F.groundtruth_instance_masks].numpy()
  boxes = after[F.groundtruth_boxes].numpy()
  image = after[F.image].numpy()
  assert masks.dtype == np.uint8
  assert set(np.unique(masks)) <= {0, 1}
  n = boxes.shape[0]
  for key in (F.groundtruth_classes, F.groundtruth_is_crowd, F.groundtruth_area,
              F.groundtruth_weights, F.groundtruth_instance_masks):
    assert after[key].shape[0] == n, key
  assert masks.shape[1:] == image.shape[:2]
  h, w = masks.shape[1:]
  tags = after[F.groundtruth_weights].numpy().astype(int) - 1
  assert len(set(tags)) == n
  for row, tag in enumerate(tags):
    assert after[F.groundtruth_classes].numpy()[row] == before[F.groundtruth_classes].numpy()[tag]
    assert (after[F.groundtruth_is_crowd].numpy()[row] ==
            before[F.groundtruth_is_crowd].numpy()[tag])
    area = after[F.groundtruth_area].numpy()[row]
    orig_area = before[F.groundtruth_area].numpy()[tag] * area_scale
    if area_may_shrink:
      assert 0 < area <= orig_area * (1 + 1e-4)
    else:
      np.testing.assert_allclose(area, orig_area, rtol=1e-4)
    ys, xs = np.nonzero(masks[row])
    if ys.size == 0:
      continue  # Box overlaps the crop but the polygon does not (a corner of the box).
    ymin, xmin, ymax, xmax = boxes[row] * [h, w, h, w]
    assert ys.min() >= ymin - 1 and ys.max() + 1 <= ymax + 1, (row, ys.min(), ys.max(), boxes[row])
    assert xs.min() >= xmin - 1 and xs.max() + 1 <= xmax + 1, (row, xs.min(), xs.max(), boxes[row])


def test_random_horizontal_flip(examples):
  for ex in examples:
    out = preprocessor.random_horizontal_flip(ex, probability=1.0)
    np.testing.assert_array_equal(out[F.groundtruth_instance_masks].numpy(),
                                  ex[F.groundtruth_instance_masks].numpy()[:, :, ::-1])
    np.testing.assert_array_equal(out[F.image].numpy(), ex[F.image].numpy()[:, ::-1])
    _check_consistent(ex, out)
    # probability 0 leaves the example untouched.
    same = preprocessor.random_horizontal_flip(ex, probability=0.0)
    np.testing.assert_array_equal(same[F.groundtruth_boxes], ex[F.groundtruth_boxes])


def test_random_vertical_flip(examples):
  for ex in examples:
    out = preprocessor.random_vertical_flip(ex, probability=1.0)
    np.testing.assert_array_equal(out[F.groundtruth_instance_masks].numpy(),
                                  ex[F.groundtruth_instance_masks].numpy()[:, ::-1, :])
    _check_consistent(ex, out)


def test_random_rotation90(examples):
  for ex in examples:
    out = preprocessor.random_rotation90(ex, probability=1.0)
    np.testing.assert_array_equal(out[F.groundtruth_instance_masks].numpy(),
                                  np.rot90(ex[F.groundtruth_instance_masks].numpy(), axes=(1, 2)))
    assert out[F.image].shape[:2] == ex[F.image].shape[:2][::-1]
    _check_consistent(ex, out)


def test_random_image_scale(examples):
  ex = examples[0]
  tf.random.set_seed(3)
  out = preprocessor.random_image_scale(ex, min_scale_ratio=0.5, max_scale_ratio=0.8)
  h, w = ex[F.image].shape[:2]
  nh, nw = out[F.image].shape[:2]
  assert nh < h and nw < w
  _check_consistent(ex, out, area_scale=(nh * nw) / (h * w))


def test_random_crop_image_removes_boxes_with_their_fields(examples):
  tf.random.set_seed(0)
  removed = 0
  for seed in range(6):
    for ex in examples:
      out = preprocessor.random_crop_image(
          ex, min_object_covered=0.0, aspect_ratio_range=(0.75, 1.33), area_range=(0.1, 0.3),
          overlap_thresh=0.3, seed=seed + 1)
      assert out[F.image].shape[0] < ex[F.image].shape[0]
      removed += ex[F.groundtruth_boxes].shape[0] - out[F.groundtruth_boxes].shape[0]
      _check_consistent(ex, out, area_may_shrink=True)
      boxes = out[F.groundtruth_boxes].numpy()
      assert np.all(boxes >= -1e-6) and np.all(boxes <= 1 + 1e-6)
  assert removed > 0


def test_random_crop_image_random_coef_one_keeps_example(examples):
  ex = examples[0]
  out = preprocessor.random_crop_image(ex, random_coef=1.0)
  np.testing.assert_array_equal(out[F.groundtruth_instance_masks],
                                ex[F.groundtruth_instance_masks])


def test_random_pad_image(examples):
  ex = examples[0]
  tf.random.set_seed(1)
  out = preprocessor.random_pad_image(ex, pad_color=[10., 20., 30.])
  h, w = ex[F.image].shape[:2]
  nh, nw = out[F.image].shape[:2]
  assert nh >= h and nw >= w and (nh > h or nw > w)
  assert out[F.groundtruth_instance_masks].numpy().sum() == ex[
      F.groundtruth_instance_masks].numpy().sum()
  _check_consistent(ex, out)


@pytest.mark.parametrize('op,kwargs', [
    (preprocessor.random_adjust_brightness, {'max_delta': 0.2}),
    (preprocessor.random_adjust_contrast, {'min_delta': 0.5, 'max_delta': 0.7}),
    (preprocessor.random_adjust_hue, {'max_delta': 0.1}),
    (preprocessor.random_adjust_saturation, {'min_delta': 0.3, 'max_delta': 0.5}),
    (preprocessor.random_distort_color, {'color_ordering': 1}),
    (preprocessor.random_jpeg_quality, {'min_jpeg_quality': 5, 'max_jpeg_quality': 10}),
    (preprocessor.random_pixel_value_scale, {}),
])
def test_pixel_ops_change_pixels_only(examples, op, kwargs):
  ex = examples[0]
  tf.random.set_seed(2)
  out = op(ex, **kwargs)
  image = out[F.image].numpy()
  assert image.shape == ex[F.image].shape
  assert image.min() >= 0 and image.max() <= 255
  assert np.abs(image - ex[F.image].numpy()).mean() > 0.5
  np.testing.assert_array_equal(out[F.groundtruth_instance_masks],
                                ex[F.groundtruth_instance_masks])
  _check_consistent(ex, out)


def test_normalize_image(examples):
  out = preprocessor.normalize_image(examples[0], 0., 255., -1., 1.)
  image = out[F.image].numpy()
  assert image.min() >= -1 and image.max() <= 1 and image.min() < -0.5


def test_preprocess_chain_in_tf_data(examples):
  """The ops run inside a tf.data map (graph mode), chained through `preprocess`."""
  ex = examples[1]
  options = [(preprocessor.random_horizontal_flip, {'probability': 1.0}),
             (preprocessor.random_rotation90, {'probability': 0.5}),
             (preprocessor.random_crop_image, {'min_object_covered': 0.0,
                                               'area_range': (0.2, 0.5), 'random_coef': 0.2}),
             (preprocessor.random_pad_image, {}),
             (preprocessor.random_jpeg_quality, {'random_coef': 0.5}),
             (preprocessor.random_rgb_to_gray, {'probability': 0.5}),
             (preprocessor.random_distort_color, {}),
             (preprocessor.random_adjust_brightness, {})]
  ds = tf.data.Dataset.from_tensors(ex).repeat(3).map(
      lambda d: preprocessor.preprocess(d, options))
  for out in ds:
    _check_consistent(ex, out, area_may_shrink=True)


def test_preprocess_rank4_image(examples):
  """TF OD API callers pass the image as [1, H, W, 3]."""
  ex = dict(examples[0])
  ex[F.image] = ex[F.image][tf.newaxis]
  out = preprocessor.preprocess(ex, [(preprocessor.random_rotation90, {'probability': 1.0})])
  assert out[F.image].shape[1:3] == examples[0][F.image].shape[:2][::-1]


def _step(text):
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from object_detection.protos import preprocessor_pb2  # pylint: disable=g-import-not-at-top
  return text_format.Parse(text, preprocessor_pb2.PreprocessingStep())


def test_builder_maps_config_fields():
  from object_detection.builders import preprocessor_builder  # pylint: disable=g-import-not-at-top
  fn, kwargs = preprocessor_builder.build(_step(
      'random_crop_image { min_object_covered: 0.5 min_aspect_ratio: 0.6 max_aspect_ratio: 1.6 '
      'min_area: 0.2 max_area: 0.9 overlap_thresh: 0.4 random_coef: 0.1 }'))
  assert fn is preprocessor.random_crop_image
  assert kwargs['aspect_ratio_range'] == pytest.approx((0.6, 1.6))
  assert kwargs['area_range'] == pytest.approx((0.2, 0.9))
  assert kwargs['overlap_thresh'] == pytest.approx(0.4)
  assert kwargs['min_object_covered'] == pytest.approx(0.5)
  fn, kwargs = preprocessor_builder.build(_step('random_horizontal_flip { }'))
  assert fn is preprocessor.random_horizontal_flip and kwargs['probability'] == 0.5
  fn, kwargs = preprocessor_builder.build(_step(
      'random_pad_image { max_image_height: 900 max_image_width: 800 }'))
  assert kwargs['max_image_size'] == (900, 800) and kwargs['min_image_size'] is None
  for text in ('random_vertical_flip {}', 'random_rotation90 {}', 'random_image_scale {}',
               'random_adjust_brightness {}', 'random_adjust_contrast {}', 'random_adjust_hue {}',
               'random_adjust_saturation {}', 'random_distort_color {}',
               'random_jpeg_quality {}', 'normalize_image {}'):
    fn, _ = preprocessor_builder.build(_step(text))
    assert fn.__name__ == text.split()[0]


def test_builder_unsupported_step_names_it():
  from object_detection.builders import preprocessor_builder  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match='random_black_patches'):
    preprocessor_builder.build(_step('random_black_patches {}'))
