"""Tests for object_detection.metrics.coco_evaluation / coco_tools.

Parity tests compare against pycocotools run directly (COCO + loadRes + COCOeval) on REAL ground
truth (coco128_seg val split) and perturbed detections.
"""
import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import coco
from pycocotools import cocoeval
from pycocotools import mask as mask_utils

from object_detection.metrics import coco_evaluation
from object_detection.metrics import coco_tools
from tests.conftest import COCO128_VAL_JSON

METRIC_SUFFIXES = ['Precision/mAP', 'Precision/mAP@.50IOU', 'Precision/mAP@.75IOU',
                   'Precision/mAP (small)', 'Precision/mAP (medium)', 'Precision/mAP (large)',
                   'Recall/AR@1', 'Recall/AR@10', 'Recall/AR@100', 'Recall/AR@100 (small)',
                   'Recall/AR@100 (medium)', 'Recall/AR@100 (large)']


def _quiet(fn, *args, **kwargs):
  with contextlib.redirect_stdout(io.StringIO()):
    return fn(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# The TF OD API's own unit checks.


@pytest.mark.parametrize('evaluator_class, heading', [
    (coco_evaluation.CocoDetectionEvaluator,
     'pycocotools COCOeval summary (box metrics, DetectionBoxes_*):'),
    (coco_evaluation.CocoMaskEvaluator,
     'pycocotools COCOeval summary (mask metrics, DetectionMasks_*):')])
def test_pycocotools_table_hidden_unless_verbose_then_labelled(monkeypatch, capsys, evaluator_class,
                                                                heading):
  """Each metric is printed once (by the evaluation, under its TF OD API name); ODSEG_VERBOSE=1 adds
  pycocotools' own table under a heading saying which metrics it holds."""
  mask = _square_masks()[0]

  def run():
    evaluator = evaluator_class([{'id': 1, 'name': 'person'}])
    evaluator.add_single_ground_truth_image_info(0, {
        'groundtruth_boxes': np.array([[10., 10., 110., 110.]]), 'groundtruth_classes': np.array([1]),
        'groundtruth_instance_masks': mask})
    evaluator.add_single_detected_image_info(0, {
        'detection_boxes': np.array([[10., 10., 110., 110.]]), 'detection_scores': np.array([.8]),
        'detection_classes': np.array([1]), 'detection_masks': mask})
    return evaluator.evaluate()

  monkeypatch.delenv('ODSEG_VERBOSE', raising=False)
  quiet_metrics = run()
  assert capsys.readouterr().out == ''
  monkeypatch.setenv('ODSEG_VERBOSE', '1')
  assert run() == quiet_metrics
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == heading
  assert len(lines) == 13  # The heading and COCOeval.summarize's 12 lines.
  assert lines[1].startswith(' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]')
  assert lines[1].endswith('= 1.000')


def _square_masks():
  masks = []
  for size, offset in ((100, 10), (50, 5), (25, 0)):
    m = np.zeros((1, 128, 128), np.uint8)
    m[0, offset:offset + size, offset:offset + size] = 1
    masks.append(m)
  return masks


def test_box_evaluator_matching_gt_and_detections_gives_one():
  categories = [{'id': 1, 'name': 'person'}, {'id': 2, 'name': 'dog'}, {'id': 3, 'name': 'cat'}]
  evaluator = coco_evaluation.CocoDetectionEvaluator(categories)
  for image_id, box in (('image1', [100., 100., 200., 200.]), ('image2', [50., 50., 100., 100.]),
                        ('image3', [25., 25., 50., 50.])):
    evaluator.add_single_ground_truth_image_info(image_id, {
        'groundtruth_boxes': np.array([box]), 'groundtruth_classes': np.array([1])})
    evaluator.add_single_detected_image_info(image_id, {
        'detection_boxes': np.array([box]), 'detection_scores': np.array([.8]),
        'detection_classes': np.array([1])})
  metrics = _quiet(evaluator.evaluate)
  for suffix in METRIC_SUFFIXES:
    assert metrics['DetectionBoxes_' + suffix] == pytest.approx(1.0), suffix
  assert not any('PerformanceByCategory' in k for k in metrics)


def test_mask_evaluator_matching_gt_and_detections_gives_one():
  categories = [{'id': 1, 'name': 'person'}, {'id': 2, 'name': 'dog'}, {'id': 3, 'name': 'cat'}]
  evaluator = coco_evaluation.CocoMaskEvaluator(categories, include_metrics_per_category=True)
  boxes = ([10., 10., 110., 110.], [5., 5., 55., 55.], [0., 0., 25., 25.])
  for i, (box, mask) in enumerate(zip(boxes, _square_masks())):
    evaluator.add_single_ground_truth_image_info(i, {
        'groundtruth_boxes': np.array([box]), 'groundtruth_classes': np.array([1]),
        'groundtruth_instance_masks': mask})
    evaluator.add_single_detected_image_info(i, {
        'detection_scores': np.array([.8]), 'detection_classes': np.array([1]),
        'detection_masks': mask})
  metrics = _quiet(evaluator.evaluate)
  for suffix in METRIC_SUFFIXES:
    assert metrics['DetectionMasks_' + suffix] == pytest.approx(1.0), suffix
  assert metrics['DetectionMasks_PerformanceByCategory/mAP/person'] == pytest.approx(1.0)
  # Categories without ground truth get COCOeval's -1.
  assert metrics['DetectionMasks_PerformanceByCategory/mAP/dog'] == -1.0
  # clear() resets: a fresh evaluation with a wrong mask is below 1.
  evaluator.clear()
  mask = _square_masks()[0]
  evaluator.add_single_ground_truth_image_info(0, {
      'groundtruth_boxes': np.array([boxes[0]]), 'groundtruth_classes': np.array([1]),
      'groundtruth_instance_masks': mask})
  shifted = np.zeros_like(mask)
  shifted[0, 0:30, 0:30] = 1  # IoU with the ground truth ~0.04
  evaluator.add_single_detected_image_info(0, {
      'detection_scores': np.array([.8]), 'detection_classes': np.array([1]),
      'detection_masks': shifted})
  assert _quiet(evaluator.evaluate)['DetectionMasks_Precision/mAP'] == pytest.approx(0.0)


def test_evaluator_errors_and_duplicates():
  categories = [{'id': 1, 'name': 'person'}]
  box_eval = coco_evaluation.CocoDetectionEvaluator(categories)
  with pytest.raises(ValueError, match='Missing groundtruth for image id: 7'):
    box_eval.add_single_detected_image_info(7, {
        'detection_boxes': np.zeros((0, 4)), 'detection_scores': np.zeros(0),
        'detection_classes': np.zeros(0)})
  gt = {'groundtruth_boxes': np.array([[0., 0., 10., 10.]]), 'groundtruth_classes': np.array([1])}
  box_eval.add_single_ground_truth_image_info(7, gt)
  box_eval.add_single_ground_truth_image_info(7, gt)  # ignored, counted
  assert box_eval.num_skipped_duplicate_images == 1
  with pytest.raises(ValueError, match='missing'):
    box_eval.add_single_detected_image_info(7, {'detection_boxes': np.zeros((0, 4))})
  # No detections at all: metrics are 0 (not an error).
  box_eval.add_single_detected_image_info(7, {
      'detection_boxes': np.zeros((0, 4)), 'detection_scores': np.zeros(0),
      'detection_classes': np.zeros(0)})
  assert _quiet(box_eval.evaluate)['DetectionBoxes_Precision/mAP'] == 0.0

  mask_eval = coco_evaluation.CocoMaskEvaluator(categories)
  mask_eval.add_single_ground_truth_image_info(1, {
      'groundtruth_boxes': np.array([[0., 0., 10., 10.]]), 'groundtruth_classes': np.array([1]),
      'groundtruth_instance_masks': np.ones((1, 20, 30), np.uint8)})
  with pytest.raises(ValueError, match='incompatible'):
    mask_eval.add_single_detected_image_info(1, {
        'detection_scores': np.array([.5]), 'detection_classes': np.array([1]),
        'detection_masks': np.ones((1, 10, 30), np.uint8)})


def test_crowd_and_area_are_honoured():
  categories = [{'id': 1, 'name': 'person'}]
  evaluator = coco_evaluation.CocoDetectionEvaluator(categories)
  # Image 1: a normal object (detected) and a crowd region with an extra detection on it.
  evaluator.add_single_ground_truth_image_info(1, {
      'groundtruth_boxes': np.array([[0., 0., 100., 100.], [200., 200., 300., 300.]]),
      'groundtruth_classes': np.array([1, 1]),
      'groundtruth_is_crowd': np.array([False, True]),
      # The first object is declared small through its area (box area would be large).
      'groundtruth_area': np.array([500., 10000.])})
  evaluator.add_single_detected_image_info(1, {
      'detection_boxes': np.array([[0., 0., 100., 100.], [210., 210., 290., 290.]]),
      'detection_scores': np.array([0.6, 0.9]), 'detection_classes': np.array([1, 1])})
  metrics = _quiet(evaluator.evaluate)
  # The higher-scored detection on the crowd region is ignored, not a false positive.
  assert metrics['DetectionBoxes_Precision/mAP'] == pytest.approx(1.0)
  assert metrics['DetectionBoxes_Precision/mAP (small)'] == pytest.approx(1.0)
  assert metrics['DetectionBoxes_Precision/mAP (large)'] == -1.0


def test_encode_masks_rle_roundtrip_and_json():
  masks = np.zeros((2, 7, 9), np.uint8)
  masks[0, 1:4, 2:5] = 1
  masks[1, 5:, :] = 3  # nonzero counts as foreground
  rles = coco_tools.encode_masks_rle(masks)
  json.dumps(rles)  # serializable
  decoded = mask_utils.decode([{'size': r['size'], 'counts': r['counts'].encode()} for r in rles])
  np.testing.assert_array_equal(np.transpose(decoded, (2, 0, 1)), (masks > 0).astype(np.uint8))
  assert coco_tools.encode_masks_rle(np.zeros((0, 7, 9), np.uint8)) == []
  assert coco_tools.encode_masks_rle(masks[0])['size'] == [7, 9]


# ---------------------------------------------------------------------------------------------
# Parity with pycocotools on real ground truth.


@pytest.fixture(scope='module')
def real_data():
  """Ground truth of coco128_seg val in evaluator format + perturbed detections."""
  coco_gt = _quiet(coco.COCO, COCO128_VAL_JSON)
  rng = np.random.RandomState(0)
  cat_ids = sorted(coco_gt.getCatIds())
  images = []
  for image_id in sorted(coco_gt.getImgIds()):
    info = coco_gt.imgs[image_id]
    h, w = info['height'], info['width']
    anns = coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=[image_id]))
    gt_boxes = np.array([[a['bbox'][1], a['bbox'][0], a['bbox'][1] + a['bbox'][3],
                          a['bbox'][0] + a['bbox'][2]] for a in anns], np.float64).reshape(-1, 4)
    gt_masks = np.stack([coco_gt.annToMask(a) for a in anns]) if anns else np.zeros(
        (0, h, w), np.uint8)
    gt = {'groundtruth_boxes': gt_boxes,
          'groundtruth_classes': np.array([a['category_id'] for a in anns], np.int64),
          'groundtruth_instance_masks': gt_masks,
          'groundtruth_is_crowd': np.array([a['iscrowd'] for a in anns], bool),
          'groundtruth_area': np.array([a['area'] for a in anns], np.float32)}
    det_boxes, det_masks, det_classes = [], [], []
    for i, a in enumerate(anns):
      if rng.rand() < 0.15:  # missed object
        continue
      box = gt_boxes[i] + rng.normal(0, 0.08, 4) * np.tile(
          [gt_boxes[i][2] - gt_boxes[i][0], gt_boxes[i][3] - gt_boxes[i][1]], 2)
      box = np.clip(box, 0, [h, w, h, w])
      mask = gt_masks[i].copy()
      mask = np.roll(mask, rng.randint(-4, 5), axis=int(rng.randint(0, 2)))
      if rng.rand() < 0.5:  # erode: drop the boundary pixels
        inner = (mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] &
                 mask[1:-1, 2:])
        mask = np.pad(inner, 1)
      cls = a['category_id'] if rng.rand() > 0.1 else int(rng.choice(cat_ids))
      det_boxes.append(box)
      det_masks.append(mask.astype(np.uint8))
      det_classes.append(cls)
    for _ in range(rng.randint(0, 4)):  # false positives
      y0, x0 = rng.randint(0, h - 20), rng.randint(0, w - 20)
      y1, x1 = y0 + rng.randint(5, h - y0), x0 + rng.randint(5, w - x0)
      mask = np.zeros((h, w), np.uint8)
      mask[y0:y1, x0:x1] = 1
      det_boxes.append(np.array([y0, x0, y1, x1], np.float64))
      det_masks.append(mask)
      det_classes.append(int(rng.choice(cat_ids)))
    n = len(det_boxes)
    det = {'detection_boxes': np.array(det_boxes, np.float64).reshape(-1, 4),
           'detection_scores': rng.permutation(np.linspace(0.05, 0.99, n)) if n else np.zeros(0),
           'detection_classes': np.array(det_classes, np.int64),
           'detection_masks': np.array(det_masks, np.uint8).reshape(-1, h, w)}
    images.append((image_id, gt, det))
  return coco_gt, images


def _direct_pycocotools(coco_gt, images, iou_type, cat_ids=None):
  results = []
  for image_id, _, det in images:
    for i in range(det['detection_scores'].shape[0]):
      b = det['detection_boxes'][i]
      result = {'image_id': image_id, 'category_id': int(det['detection_classes'][i]),
                'score': float(det['detection_scores'][i])}
      if iou_type == 'bbox':
        result['bbox'] = [float(b[1]), float(b[0]), float(b[3] - b[1]), float(b[2] - b[0])]
      else:
        rle = mask_utils.encode(np.asfortranarray(det['detection_masks'][i]))
        rle['counts'] = rle['counts'].decode('ascii')
        result['segmentation'] = rle
      results.append(result)
  coco_dt = _quiet(coco_gt.loadRes, results)
  ev = cocoeval.COCOeval(coco_gt, coco_dt, iou_type)
  if cat_ids is not None:
    ev.params.catIds = cat_ids
  _quiet(ev.evaluate)
  _quiet(ev.accumulate)
  _quiet(ev.summarize)
  return ev.stats


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_parity_with_pycocotools_on_real_data(real_data, iou_type):
  coco_gt, images = real_data
  categories = coco_gt.loadCats(coco_gt.getCatIds())
  if iou_type == 'bbox':
    evaluator = coco_evaluation.CocoDetectionEvaluator(categories,
                                                       include_metrics_per_category=True)
    prefix = 'DetectionBoxes_'
  else:
    evaluator = coco_evaluation.CocoMaskEvaluator(categories, include_metrics_per_category=True,
                                                  all_metrics_per_category=True)
    prefix = 'DetectionMasks_'
  for image_id, gt, det in images:
    gt = dict(gt)
    det = dict(det)
    if iou_type == 'bbox':
      del gt['groundtruth_instance_masks'], det['detection_masks']
    else:
      del det['detection_boxes']
    evaluator.add_single_ground_truth_image_info(image_id, gt)
    evaluator.add_single_detected_image_info(image_id, det)
  metrics = _quiet(evaluator.evaluate)
  expected = _direct_pycocotools(coco_gt, images, iou_type)
  # The perturbation must leave a non-trivial score (the test could not fail otherwise).
  assert 0.2 < expected[0] < 0.95
  for i, suffix in enumerate(METRIC_SUFFIXES):
    assert metrics[prefix + suffix] == pytest.approx(expected[i], abs=1e-9), suffix
  # Per-category: equal to COCOeval restricted to that category.
  names = {c['id']: c['name'] for c in categories}
  for cat_id in (1, 3, 47):  # person, car, cup
    key = prefix + 'PerformanceByCategory/mAP/' + names[cat_id]
    direct = _direct_pycocotools(coco_gt, images, iou_type, cat_ids=[cat_id])
    assert metrics[key] == pytest.approx(direct[0], abs=1e-9), key
    if iou_type == 'segm':
      assert metrics[prefix + 'PerformanceByCategory/Recall/AR@100/' + names[cat_id]] == (
          pytest.approx(direct[8], abs=1e-9))
  assert sum(k.startswith(prefix + 'PerformanceByCategory/mAP/') for k in metrics) == 80


def test_export_helpers_produce_loadable_coco_json(real_data, tmp_path):
  coco_gt, images = real_data
  categories = coco_gt.loadCats(coco_gt.getCatIds())
  image_ids = [i for i, _, _ in images[:5]]
  gt_path = str(tmp_path / 'gt.json')
  det_path = str(tmp_path / 'det.json')
  coco_tools.ExportGroundtruthToCOCO(
      image_ids, [g['groundtruth_boxes'] for _, g, _ in images[:5]],
      [g['groundtruth_classes'] for _, g, _ in images[:5]], categories, output_path=gt_path,
      groundtruth_masks=[g['groundtruth_instance_masks'] for _, g, _ in images[:5]],
      groundtruth_area=[g['groundtruth_area'] for _, g, _ in images[:5]])
  results = coco_tools.ExportDetectionsToCOCO(
      image_ids, [d['detection_boxes'] for _, _, d in images[:5]],
      [d['detection_scores'] for _, _, d in images[:5]],
      [d['detection_classes'] for _, _, d in images[:5]], categories, output_path=det_path,
      detection_masks=[d['detection_masks'] for _, _, d in images[:5]])
  assert results and 'segmentation' in results[0]
  # No 'bbox' in segm results: loadRes would take the box area instead of the mask area.
  assert 'bbox' not in results[0]
  gt = _quiet(coco.COCO, gt_path)
  dt = _quiet(gt.loadRes, det_path)
  assert len(dt.getAnnIds()) == sum(d['detection_scores'].shape[0] for _, _, d in images[:5])
  ev = cocoeval.COCOeval(gt, dt, 'segm')
  _quiet(ev.evaluate)
  _quiet(ev.accumulate)
  _quiet(ev.summarize)
  # Same numbers as the in-memory evaluator on these images.
  evaluator = coco_evaluation.CocoMaskEvaluator(categories)
  for image_id, g, d in images[:5]:
    evaluator.add_single_ground_truth_image_info(image_id, g)
    evaluator.add_single_detected_image_info(image_id, d)
  metrics = _quiet(evaluator.evaluate)
  assert 0.0 < ev.stats[0] < 1.0
  for i, suffix in enumerate(METRIC_SUFFIXES):
    assert metrics['DetectionMasks_' + suffix] == pytest.approx(ev.stats[i], abs=1e-9), suffix
