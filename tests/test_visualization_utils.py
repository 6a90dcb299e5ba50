"""Tests for object_detection.utils.visualization_utils."""
import numpy as np
import pytest
import tensorflow as tf

from object_detection.utils import visualization_utils as vu

CATEGORY_INDEX = {1: {'id': 1, 'name': 'person'}, 2: {'id': 2, 'name': 'bicycle'}}


def _gray(h=100, w=120):
  return np.full((h, w, 3), 128, np.uint8)


def test_draw_mask_changes_only_mask_pixels():
  image = _gray()
  mask = np.zeros((100, 120), np.uint8)
  mask[20:40, 30:60] = 1
  vu.draw_mask_on_image_array(image, mask, color='Blue', alpha=0.5)
  inside = image[25, 40]
  assert inside[2] > 128 + 40 and inside[0] < 128 - 40  # blended toward blue
  assert np.all(image[80:, 80:] == 128)  # far outside untouched
  assert np.all(image[mask == 0] == 128)


def test_draw_mask_rejects_bad_inputs():
  with pytest.raises(ValueError, match='np.uint8'):
    vu.draw_mask_on_image_array(_gray(), np.zeros((100, 120), np.float32))
  with pytest.raises(ValueError, match='spatial dimensions'):
    vu.draw_mask_on_image_array(_gray(), np.zeros((10, 12), np.uint8))
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    vu.draw_mask_on_image_array(_gray(), np.full((100, 120), 3, np.uint8))


@pytest.mark.parametrize('normalized', [True, False])
def test_box_drawn_at_right_place(normalized):
  image = _gray(100, 200)
  box = [0.2, 0.25, 0.6, 0.75] if normalized else [20, 50, 60, 150]
  vu.draw_bounding_box_on_image_array(image, *box, color='Red', thickness=2,
                                      use_normalized_coordinates=normalized)
  changed = np.any(image != 128, axis=2)
  # Box edges at rows 20 and 60, cols 50 and 150.
  assert changed[20, 100] and changed[60, 100] and changed[40, 50] and changed[40, 150]
  assert not changed[40, 100]  # interior untouched (no label)
  assert not changed[90, 10] and not changed[5, 180]


def test_visualize_respects_min_score_and_draws_masks_and_labels():
  image = _gray(100, 200)
  boxes = np.array([[10, 10, 50, 60], [60, 120, 95, 190]], np.float32)
  classes = np.array([1, 2])
  scores = np.array([0.9, 0.3])
  masks = np.zeros((2, 100, 200), np.uint8)
  masks[0, 20:40, 20:50] = 1
  masks[1, 70:90, 130:180] = 1
  out = vu.visualize_boxes_and_labels_on_image_array(
      image, boxes, classes, scores, CATEGORY_INDEX, instance_masks=masks,
      use_normalized_coordinates=False, min_score_thresh=0.5, line_thickness=2)
  assert out is image
  changed = np.any(image != 128, axis=2)
  assert changed[30, 35]  # inside mask 0
  assert changed[10, 35] and changed[30, 10]  # box 0 edges
  assert not np.any(changed[60:, 115:])  # detection 1 below threshold: nothing drawn
  # Lowering the threshold draws the second one.
  image2 = _gray(100, 200)
  vu.visualize_boxes_and_labels_on_image_array(
      image2, boxes, classes, scores, CATEGORY_INDEX, instance_masks=masks,
      min_score_thresh=0.2, line_thickness=2)
  assert np.any(image2[70:90, 130:180] != 128)


def test_label_text_drawn_above_box():
  image = _gray(100, 200)
  vu.visualize_boxes_and_labels_on_image_array(
      image, np.array([[50, 20, 90, 180]], np.float32), np.array([1]), np.array([0.87]),
      CATEGORY_INDEX, line_thickness=1)
  # Label background rectangle sits just above the box top edge (row 50).
  assert np.any(image[35:49, 25:60] != 128)
  image_no_label = _gray(100, 200)
  vu.visualize_boxes_and_labels_on_image_array(
      image_no_label, np.array([[50, 20, 90, 180]], np.float32), np.array([1]),
      np.array([0.87]), CATEGORY_INDEX, line_thickness=1, skip_labels=True, skip_scores=True)
  assert not np.any(image_no_label[35:49, 25:60] != 128)


def test_max_boxes_to_draw():
  image = _gray(100, 200)
  boxes = np.array([[10, 10, 30, 30], [60, 150, 90, 190]], np.float32)
  vu.visualize_boxes_and_labels_on_image_array(
      image, boxes, np.array([1, 1]), np.array([0.9, 0.9]), CATEGORY_INDEX,
      max_boxes_to_draw=1, skip_labels=True, skip_scores=True, line_thickness=2)
  assert np.any(image[10, 10:30] != 128)
  assert np.all(image[55:, 140:] == 128)


def test_side_by_side_image():
  h, w = 40, 160
  image = np.full((1, h + 8, w + 4, 3), 128, np.uint8)  # padded original
  det_masks = np.zeros((1, 2, h + 8, w + 4), np.uint8)
  det_masks[0, 0, 24:32, 12:30] = 1
  gt_masks = np.zeros((1, 3, h + 8, w + 4), np.uint8)
  gt_masks[0, 0, 25:35, 100:140] = 1
  eval_dict = {
      'original_image': image,
      'original_image_spatial_shape': np.array([[h, w]], np.int32),
      'detection_boxes': np.array([[[0.5, 0.05, 0.9, 0.3], [0, 0, 0, 0]]], np.float32),
      'detection_classes': np.array([[1, 1]], np.float32),
      'detection_scores': np.array([[0.9, 0.0]], np.float32),
      'detection_masks': det_masks,
      'groundtruth_boxes': np.array([[[0.6, 0.6, 0.9, 0.95], [0, 0, 0, 0], [0, 0, 0, 0]]],
                                    np.float32),
      'groundtruth_classes': np.array([[2, 0, 0]], np.float32),
      'groundtruth_instance_masks': gt_masks,
      'num_groundtruth_boxes': np.array([1], np.int32),
  }
  images = vu.draw_side_by_side_evaluation_image(eval_dict, CATEGORY_INDEX, min_score_thresh=0.5)
  assert len(images) == 1
  out = images[0].numpy()
  assert out.shape == (1, h + 8, 2 * (w + 4), 3) and out.dtype == np.uint8
  left, right = out[0, :, :w + 4], out[0, :, w + 4:]
  assert np.any(left[26:30, 14:28] != 128)  # detection mask on the left
  assert np.all(left[27:33, 102:138] == 128)  # ground-truth mask not on the left
  assert np.any(right[27:33, 102:138] != 128)  # ground-truth mask on the right
  assert np.all(right[26:30, 14:28] == 128)
  assert np.all(out[0, h:, :] == 0)  # padding is black


def test_draw_bounding_boxes_on_image_tensors_in_graph():
  @tf.function
  def fn(images, boxes, classes, scores):
    return vu.draw_bounding_boxes_on_image_tensors(images, boxes, classes, scores,
                                                   CATEGORY_INDEX, min_score_thresh=0.5)
  out = fn(tf.fill([2, 30, 40, 3], tf.constant(128, tf.uint8)),
           tf.constant([[[0.1, 0.1, 0.9, 0.9]], [[0.1, 0.1, 0.9, 0.9]]]),
           tf.constant([[1.], [2.]]), tf.constant([[0.9], [0.1]])).numpy()
  assert out.shape == (2, 30, 40, 3)
  assert np.any(out[0] != 128) and np.all(out[1] == 128)
