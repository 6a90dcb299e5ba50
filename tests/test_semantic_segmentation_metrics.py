"""Semantic segmentation metrics on real coco128_seg label maps against independent references.

Ground truth: 3 coco128_seg val images (3 sizes), pycocotools masks (coco_annotations.ann_to_mask)
folded to classes 0 background, 1 person, 2 vehicle, 3 other (later annotations painted over
earlier ones); class 4 'unused' never occurs, class 5 'hallucinated' is only ever predicted.
Predictions perturb the ground truth: a shift, an erased class, a predicted-only square; one image
gets ignore pixels in its ground truth. Every metric is compared EXACTLY with a plain per-class
loop over the same pixels (no confusion matrix), and with sklearn.metrics when installed.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from object_detection.dataset_tools import coco_annotations
from object_detection.metrics import semantic_segmentation_metrics as ssm
from tests.conftest import COCO128_VAL_JSON, REPO_ROOT

IGNORE = 255
IMAGE_IDS = (260, 471, 536)  # 500x333, 640x427, 448x336
VEHICLE_COCO_IDS = {2, 3, 4, 5, 6, 7, 8, 9}  # bicycle .. boat
CATEGORIES = [{'id': 1, 'name': 'person'}, {'id': 2, 'name': 'vehicle'},
              {'id': 3, 'name': 'other'}, {'id': 4, 'name': 'unused'},
              {'id': 5, 'name': 'hallucinated'}]  # no id 0: named 'background'
NAMES = ['background', 'person', 'vehicle', 'other', 'unused', 'hallucinated']
K = len(NAMES)


def _fold(coco_category_id):
  if coco_category_id == 1:
    return 1
  return 2 if coco_category_id in VEHICLE_COCO_IDS else 3


@pytest.fixture(scope='module')
def pairs():
  """[(image_id, ground truth uint8 [H, W], prediction uint8 [H, W])] for the 3 images."""
  with open(COCO128_VAL_JSON) as f:
    data = json.load(f)
  images = {image['id']: image for image in data['images']}
  result = []
  for index, image_id in enumerate(IMAGE_IDS):
    height, width = images[image_id]['height'], images[image_id]['width']
    groundtruth = np.zeros((height, width), np.uint8)
    for annotation in data['annotations']:  # file order: later annotations over earlier
      if annotation['image_id'] == image_id:
        mask = coco_annotations.ann_to_mask(annotation['segmentation'], height, width)
        groundtruth[mask > 0] = _fold(annotation['category_id'])
    prediction = groundtruth.copy()
    if index == 0:  # shifted 7 px right and 3 px down, background enters at the edges
      prediction = np.zeros_like(groundtruth)
      prediction[3:, 7:] = groundtruth[:-3, :-7]
    elif index == 1:  # vehicles erased to background, a square predicted as a never-true class
      prediction[prediction == 2] = 0
      prediction[20:60, 30:90] = 5
    else:  # ground truth ignored on a band (predicted as 'other' there) and on some person pixels
      groundtruth[100:140, :] = IGNORE
      prediction[100:140, :] = 3
      person_rows, person_cols = np.nonzero(groundtruth == 1)
      groundtruth[person_rows[::3], person_cols[::3]] = IGNORE
    result.append((image_id, groundtruth, prediction))
  return result


def _reference(pairs, include_background):
  """Per-class TP / FP / FN counted pixel-set by pixel-set, then the formulas in plain Python."""
  iou, dice = [], []
  for c in range(K):
    tp = fp = fn = 0
    for _, groundtruth, prediction in pairs:
      valid = groundtruth != IGNORE
      tp += int(np.count_nonzero(valid & (groundtruth == c) & (prediction == c)))
      fp += int(np.count_nonzero(valid & (groundtruth != c) & (prediction == c)))
      fn += int(np.count_nonzero(valid & (groundtruth == c) & (prediction != c)))
    union = tp + fp + fn
    iou.append(tp / union if union else float('nan'))
    dice.append(2 * tp / (2 * tp + fp + fn) if union else float('nan'))
  correct = sum(int(np.count_nonzero((g != IGNORE) & (g == p))) for _, g, p in pairs)
  counted = sum(int(np.count_nonzero(g != IGNORE)) for _, g, _ in pairs)
  first = 0 if include_background else 1
  mean = lambda values: math.fsum(v for v in values if v == v) / sum(v == v for v in values)
  return {'iou': iou, 'dice': dice, 'miou': mean(iou[first:]), 'mdice': mean(dice[first:]),
          'pixel_accuracy': correct / counted}


def _evaluate(pairs, **kwargs):
  evaluator = ssm.SemanticSegmentationEvaluator(CATEGORIES, **kwargs)
  for image_id, groundtruth, prediction in pairs:
    evaluator.add_single_ground_truth_image_info(image_id, {'groundtruth_semantic': groundtruth})
    evaluator.add_single_detected_image_info(image_id, {'detection_semantic': prediction})
  return evaluator, evaluator.evaluate()


def _same(a, b):
  return (math.isnan(a) and math.isnan(b)) or a == b


def _same_metrics(a, b):
  return sorted(a) == sorted(b) and all(_same(a[key], b[key]) for key in a)


def test_fixture_covers_the_cases(pairs):
  """The perturbations really create what the other tests rely on."""
  gt_all = np.concatenate([g.ravel() for _, g, _ in pairs])
  pred_all = np.concatenate([p.ravel() for _, _, p in pairs])
  assert set(np.unique(gt_all)) == {0, 1, 2, 3, IGNORE}
  assert set(np.unique(pred_all)) == {0, 1, 2, 3, 5}
  assert 4 not in gt_all and 4 not in pred_all
  # the predictions on ignored pixels disagree with what the ground truth had there
  _, groundtruth, prediction = pairs[2]
  assert np.count_nonzero((groundtruth == IGNORE) & (prediction != 3)) > 100
  assert len({g.shape for _, g, _ in pairs}) == 3


@pytest.mark.parametrize('include_background', [False, True])
def test_metrics_equal_the_per_class_reference_exactly(pairs, include_background):
  evaluator, metrics = _evaluate(pairs, include_background=include_background)
  expected = _reference(pairs, include_background)
  for c, name in enumerate(NAMES):
    assert _same(metrics['SemanticSegmentation/IoU/' + name], expected['iou'][c]), name
    assert _same(metrics['SemanticSegmentation/Dice/' + name], expected['dice'][c]), name
  assert metrics['SemanticSegmentation/mIoU'] == expected['miou']
  assert metrics['SemanticSegmentation/mDice'] == expected['mdice']
  assert metrics['SemanticSegmentation/pixel_accuracy'] == expected['pixel_accuracy']
  assert len(metrics) == 3 + 2 * K
  assert all(type(value) is float for value in metrics.values())
  assert evaluator.num_images == 3


def test_absent_class_is_nan_and_excluded_predicted_only_class_counts(pairs):
  _, metrics = _evaluate(pairs)
  assert math.isnan(metrics['SemanticSegmentation/IoU/unused'])
  assert math.isnan(metrics['SemanticSegmentation/Dice/unused'])
  assert metrics['SemanticSegmentation/IoU/hallucinated'] == 0.0
  foreground = [metrics['SemanticSegmentation/IoU/' + n]
                for n in ('person', 'vehicle', 'other', 'hallucinated')]
  assert metrics['SemanticSegmentation/mIoU'] == math.fsum(foreground) / 4
  with_background = _evaluate(pairs, include_background=True)[1]
  assert with_background['SemanticSegmentation/mIoU'] == math.fsum(
      foreground + [metrics['SemanticSegmentation/IoU/background']]) / 5
  # the perturbations cost something in every foreground class that exists
  assert all(0.0 < metrics['SemanticSegmentation/IoU/' + n] < 1.0
             for n in ('person', 'vehicle', 'other'))


def test_ignored_pixels_are_excluded(pairs):
  """Changing the prediction on ignored pixels changes nothing; the counts exclude them."""
  _, groundtruth, prediction = pairs[2]
  ignored = groundtruth == IGNORE
  evaluator, metrics = _evaluate(pairs)
  for replacement in (0, 1, 5):
    changed = prediction.copy()
    changed[ignored] = replacement
    assert _same_metrics(_evaluate(pairs[:2] + [(pairs[2][0], groundtruth, changed)])[1],
                         metrics)
  assert evaluator.num_ignored_pixels == int(ignored.sum())
  counted = sum(int(np.count_nonzero(g != IGNORE)) for _, g, _ in pairs)
  assert evaluator.get_confusion_matrix().sum() == counted


def test_matches_sklearn(pairs):
  sklearn_metrics = pytest.importorskip('sklearn.metrics')
  gt_all = np.concatenate([g.ravel() for _, g, _ in pairs]).astype(np.int64)
  pred_all = np.concatenate([p.ravel() for _, _, p in pairs]).astype(np.int64)
  keep = gt_all != IGNORE
  gt_all, pred_all = gt_all[keep], pred_all[keep]
  labels = list(range(K))
  matrix = sum(ssm.confusion_matrix(g, p, K, IGNORE) for _, g, p in pairs)
  np.testing.assert_array_equal(
      matrix, sklearn_metrics.confusion_matrix(gt_all, pred_all, labels=labels))
  _, metrics = _evaluate(pairs)
  present = [c for c in labels if NAMES[c] != 'unused']  # sklearn gives 0 for an absent class
  iou = sklearn_metrics.jaccard_score(gt_all, pred_all, labels=present, average=None,
                                      zero_division=0)
  f1 = sklearn_metrics.f1_score(gt_all, pred_all, labels=present, average=None,
                                zero_division=0)
  np.testing.assert_allclose([metrics['SemanticSegmentation/IoU/' + NAMES[c]] for c in present],
                             iou, rtol=1e-12)
  np.testing.assert_allclose([metrics['SemanticSegmentation/Dice/' + NAMES[c]] for c in present],
                             f1, rtol=1e-12)
  assert metrics['SemanticSegmentation/mIoU'] == pytest.approx(float(np.mean(iou[1:])), rel=1e-12)
  assert metrics['SemanticSegmentation/pixel_accuracy'] == sklearn_metrics.accuracy_score(
      gt_all, pred_all)


def test_confusion_matrix_function_and_streaming(pairs):
  """One image's matrix equals counting pixel pairs; the evaluator's sum is order-independent."""
  image_id, groundtruth, prediction = pairs[2]
  matrix = ssm.confusion_matrix(groundtruth, prediction, K, IGNORE, image_id=image_id)
  assert matrix.dtype == np.int64 and matrix.shape == (K, K)
  for i in range(K):
    for j in range(K):
      assert matrix[i, j] == np.count_nonzero((groundtruth == i) & (prediction == j))
  evaluator, metrics = _evaluate(pairs)
  reversed_evaluator, reversed_metrics = _evaluate(pairs[::-1])
  np.testing.assert_array_equal(evaluator.get_confusion_matrix(),
                                reversed_evaluator.get_confusion_matrix())
  assert _same_metrics(reversed_metrics, metrics)
  # [H, W, 1] maps (as tf.image.decode_png gives) are accepted
  np.testing.assert_array_equal(
      ssm.confusion_matrix(groundtruth[..., None], prediction[..., None], K), matrix)


def test_uint8_maps_do_not_overflow():
  """gt * K + pred in uint8 would wrap at 256: class 15 of 20 must land in row 15."""
  groundtruth = np.array([[15, 19], [0, IGNORE]], np.uint8)
  prediction = np.array([[15, 3], [19, 0]], np.uint8)
  matrix = ssm.confusion_matrix(groundtruth, prediction, 20)
  assert matrix[15, 15] == 1 and matrix[19, 3] == 1 and matrix[0, 19] == 1
  assert matrix.sum() == 3


def test_clear_duplicates_and_empty(pairs, caplog):
  evaluator, metrics = _evaluate(pairs)
  image_id, groundtruth, prediction = pairs[0]
  evaluator.add_single_ground_truth_image_info(image_id, {'groundtruth_semantic': groundtruth})
  evaluator.add_single_detected_image_info(image_id, {'detection_semantic': prediction})
  assert evaluator.num_skipped_duplicate_images == 1
  assert _same_metrics(evaluator.evaluate(), metrics)
  evaluator.clear()
  assert evaluator.num_images == 0 and evaluator.num_skipped_duplicate_images == 0
  assert evaluator.get_confusion_matrix().sum() == 0
  assert evaluator.evaluate() == {}
  single = ssm.SemanticSegmentationEvaluator(CATEGORIES)
  single.add_single_ground_truth_image_info(image_id, {'groundtruth_semantic': groundtruth})
  single.add_single_detected_image_info(image_id, {'detection_semantic': prediction})
  evaluator.add_single_ground_truth_image_info(image_id, {'groundtruth_semantic': groundtruth})
  evaluator.add_single_detected_image_info(image_id, {'detection_semantic': prediction})
  assert evaluator.num_images == 1
  np.testing.assert_array_equal(evaluator.get_confusion_matrix(), single.get_confusion_matrix())
  # without per-class keys
  assert sorted(_evaluate(pairs, include_metrics_per_category=False)[1]) == [
      'SemanticSegmentation/mDice', 'SemanticSegmentation/mIoU',
      'SemanticSegmentation/pixel_accuracy']


def _one_line_error(function, *args, **kwargs):
  with pytest.raises(ValueError) as error:
    function(*args, **kwargs)
  message = str(error.value)
  assert '\n' not in message
  return message


def test_errors_are_one_line_and_name_image_and_values(pairs):
  image_id, groundtruth, prediction = pairs[0]
  evaluator = ssm.SemanticSegmentationEvaluator(CATEGORIES)
  evaluator.add_single_ground_truth_image_info(image_id, {'groundtruth_semantic': groundtruth})
  message = _one_line_error(evaluator.add_single_detected_image_info, image_id,
                            {'detection_semantic': prediction[:, :-1]})
  assert '260' in message and str(prediction[:, :-1].shape) in message
  assert str(groundtruth.shape) in message

  bad = groundtruth.copy()
  bad[0, :5] = 7
  bad[1, :3] = 200
  evaluator.add_single_ground_truth_image_info('bad', {'groundtruth_semantic': bad})
  message = _one_line_error(evaluator.add_single_detected_image_info, 'bad',
                            {'detection_semantic': prediction})
  assert "'bad'" in message and 'class id 7' in message and '8 pixels' in message
  assert '7, 200' in message and '[0, 6)' in message and 'ignore_label 255' in message
  # nothing was counted for the failed images; they are reported by evaluate()
  assert evaluator.get_confusion_matrix().sum() == 0
  message = _one_line_error(evaluator.evaluate)
  assert '2 images' in message

  message = _one_line_error(ssm.confusion_matrix, groundtruth,
                            np.where(prediction == 1, 6, prediction).astype(np.uint8), K,
                            image_id=image_id)
  assert 'Prediction' in message and 'class id 6' in message and '260' in message
  message = _one_line_error(ssm.confusion_matrix, groundtruth, prediction.astype(np.float32), K)
  assert 'float32' in message
  message = _one_line_error(evaluator.add_single_detected_image_info, 'never added',
                            {'detection_semantic': prediction})
  assert 'never added' in message
  assert 'ignore_label 0' in _one_line_error(ssm.SemanticSegmentationEvaluator, CATEGORIES,
                                             ignore_label=0)
  assert "'unused' has id 4 outside [0, 4)" in _one_line_error(
      ssm.SemanticSegmentationEvaluator, CATEGORIES, num_classes=4)
  assert "'other'" in _one_line_error(
      ssm.SemanticSegmentationEvaluator, CATEGORIES + [{'id': 0, 'name': 'other'}])


def test_import_needs_no_tensorflow():
  code = ('import sys; import object_detection.metrics.semantic_segmentation_metrics; '
          "print(sorted(m for m in ('tensorflow', 'pycocotools') if m in sys.modules))")
  output = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True, env=dict(os.environ)).stdout
  assert output.strip() == '[]'
