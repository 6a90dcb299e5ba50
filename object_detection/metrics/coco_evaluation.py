"""COCO box and mask evaluators with the TF OD API's interface and metric names.

Port of `CocoDetectionEvaluator` and `CocoMaskEvaluator` from the TF OD API's
`object_detection/metrics/coco_evaluation.py` (numpy side; the TF1 `get_estimator_eval_metric_ops`
is not provided). Metrics are computed by pycocotools' COCOeval (iouType 'bbox' / 'segm').

Input conventions (as in the TF OD API):
  * boxes are ABSOLUTE pixel coordinates of the ORIGINAL image, [ymin, xmin, ymax, xmax];
  * classes are label-map ids (1-based);
  * masks are image-sized uint8 [N, H, W] at the original resolution (nonzero = foreground).

Metric keys: 'DetectionBoxes_Precision/mAP', 'DetectionBoxes_Precision/mAP@.50IOU',
'DetectionBoxes_Precision/mAP@.75IOU', 'DetectionBoxes_Precision/mAP (small|medium|large)',
'DetectionBoxes_Recall/AR@1|AR@10|AR@100', 'DetectionBoxes_Recall/AR@100 (small|medium|large)',
and the same with 'DetectionMasks_'; per category 'DetectionBoxes_PerformanceByCategory/mAP/<name>'.
"""

import logging

import numpy as np

from object_detection.core import standard_fields
from object_detection.metrics import coco_tools

_IN = standard_fields.InputDataFields
_DET = standard_fields.DetectionResultFields



def _count_outside_label_map(classes, category_id_set):
  """Number of detections whose class id is not a label-map category (they cannot be scored)."""
  classes = np.asarray(classes).reshape(-1)
  return int(np.sum(~np.isin(classes, np.array(sorted(category_id_set)))))


def _report_outside_label_map(evaluator_name, count):
  if count:
    logging.warning('%s: %d detections had a class id that is not in the evaluation label map '
                    '(categories without ground truth); they were not scored.', evaluator_name,
                    count)

class DetectionEvaluator(object):
  """Interface of the TF OD API's evaluators (utils/object_detection_evaluation.py)."""

  def __init__(self, categories):
    """Args:
      categories: list of dicts {'id': int label-map id, 'name': str}.
    """
    self._categories = categories

  def observe_result_dict_for_single_example(self, eval_dict):
    raise NotImplementedError('Not implemented for this evaluator.')

  def add_single_ground_truth_image_info(self, image_id, groundtruth_dict):
    raise NotImplementedError

  def add_single_detected_image_info(self, image_id, detections_dict):
    raise NotImplementedError

  def evaluate(self):
    raise NotImplementedError

  def clear(self):
    raise NotImplementedError


def _optional(groundtruth_dict, key):
  """The value of `key` or None; empty arrays count as absent (TF OD API behaviour)."""
  value = groundtruth_dict.get(key)
  if value is None:
    return None
  value = np.asarray(value)
  if value.shape and value.shape[0] == 0 and key in (_IN.groundtruth_is_crowd,
                                                     _IN.groundtruth_area):
    return None
  return value


def _check_ground_truth_keys(image_id, groundtruth_dict, keys):
  missing = [k for k in keys if k not in groundtruth_dict]
  if missing:
    raise ValueError('Ground truth of image %r is missing %s.' % (image_id, missing))


def _check_detection_keys(image_id, detections_dict, keys):
  missing = [k for k in keys if k not in detections_dict]
  if missing:
    raise ValueError('Detections of image %r are missing %s.' % (image_id, missing))


class CocoDetectionEvaluator(DetectionEvaluator):
  """COCO box metrics (pycocotools COCOeval, iouType 'bbox')."""

  def __init__(self, categories, include_metrics_per_category=False,
               all_metrics_per_category=False, skip_predictions_for_unlabeled_class=False,
               super_categories=None):
    """Args:
      categories: list of {'id': int, 'name': str} (all label-map classes).
      include_metrics_per_category: add 'DetectionBoxes_PerformanceByCategory/mAP/<name>'.
      all_metrics_per_category: add all 12 metrics per category.
      skip_predictions_for_unlabeled_class: drop detections of classes absent from an image's
        ground truth (TF OD API option, for partially labelled data).
      super_categories: not supported (TF OD API option); must be None.

    Raises:
      ValueError: if `super_categories` is given.
    """
    super().__init__(categories)
    if super_categories:
      raise ValueError('super_categories is not supported by this evaluator.')
    self._image_ids = {}
    self._groundtruth_list = []
    self._detection_boxes_list = []
    self._category_id_set = set(cat['id'] for cat in self._categories)
    self._annotation_id = 1
    self._metrics = None
    self._include_metrics_per_category = include_metrics_per_category
    self._all_metrics_per_category = all_metrics_per_category
    self._skip_predictions_for_unlabeled_class = skip_predictions_for_unlabeled_class
    self._groundtruth_labeled_classes = {}
    self.num_skipped_duplicate_images = 0
    self._num_outside_label_map = 0

  def clear(self):
    """Clears the state to prepare for a fresh evaluation."""
    self._num_outside_label_map = 0
    self._image_ids.clear()
    self._groundtruth_list = []
    self._detection_boxes_list = []
    self._annotation_id = 1
    self._groundtruth_labeled_classes.clear()
    self.num_skipped_duplicate_images = 0

  def add_single_ground_truth_image_info(self, image_id, groundtruth_dict):
    """Adds the ground truth of one image.

    A second call with the same image_id is ignored (logged and counted), as in the TF OD API.

    Args:
      image_id: int or str, unique image identifier.
      groundtruth_dict: dict with
        'groundtruth_boxes': float [N, 4] absolute ymin, xmin, ymax, xmax;
        'groundtruth_classes': int [N] label-map ids;
        'groundtruth_is_crowd' (optional): bool/int [N];
        'groundtruth_area' (optional): float [N] area in pixels (box area when absent).

    Raises:
      ValueError: if required keys are missing or shapes disagree.
    """
    if image_id in self._image_ids:
      logging.warning('Ignoring ground truth for image %r: already added.', image_id)
      self.num_skipped_duplicate_images += 1
      return
    _check_ground_truth_keys(image_id, groundtruth_dict,
                             [_IN.groundtruth_boxes, _IN.groundtruth_classes])
    classes = np.asarray(groundtruth_dict[_IN.groundtruth_classes])
    self._groundtruth_list.extend(coco_tools.ExportSingleImageGroundtruthToCoco(
        image_id=image_id, next_annotation_id=self._annotation_id,
        category_id_set=self._category_id_set,
        groundtruth_boxes=groundtruth_dict[_IN.groundtruth_boxes],
        groundtruth_classes=classes,
        groundtruth_is_crowd=_optional(groundtruth_dict, _IN.groundtruth_is_crowd),
        groundtruth_area=_optional(groundtruth_dict, _IN.groundtruth_area)))
    self._annotation_id = len(self._groundtruth_list) + 1
    self._image_ids[image_id] = False
    self._groundtruth_labeled_classes[image_id] = set(int(c) for c in classes)

  def _filter_unlabeled(self, image_id, classes):
    if not self._skip_predictions_for_unlabeled_class:
      return np.ones(classes.shape[0], bool)
    labeled = self._groundtruth_labeled_classes.get(image_id, set())
    return np.array([int(c) in labeled for c in classes], bool)

  def add_single_detected_image_info(self, image_id, detections_dict):
    """Adds the detections of one image (its ground truth must have been added first).

    Args:
      image_id: int or str.
      detections_dict: dict with
        'detection_boxes': float [N, 4] absolute ymin, xmin, ymax, xmax;
        'detection_scores': float [N];
        'detection_classes': int [N] label-map ids.

    Raises:
      ValueError: if the ground truth of `image_id` is missing, or keys/shapes are bad.
    """
    if image_id not in self._image_ids:
      raise ValueError('Missing groundtruth for image id: {}'.format(image_id))
    if self._image_ids[image_id]:
      logging.warning('Ignoring detections for image %r: already added.', image_id)
      return
    _check_detection_keys(image_id, detections_dict,
                          [_DET.detection_boxes, _DET.detection_scores, _DET.detection_classes])
    boxes = np.asarray(detections_dict[_DET.detection_boxes])
    scores = np.asarray(detections_dict[_DET.detection_scores])
    classes = np.asarray(detections_dict[_DET.detection_classes])
    keep = self._filter_unlabeled(image_id, classes)
    self._num_outside_label_map += (
        _count_outside_label_map(classes[keep], self._category_id_set))
    self._detection_boxes_list.extend(coco_tools.ExportSingleImageDetectionBoxesToCoco(
        image_id=image_id, category_id_set=self._category_id_set,
        detection_boxes=boxes.reshape(-1, 4)[keep] if boxes.size else boxes.reshape(0, 4),
        detection_scores=scores[keep], detection_classes=classes[keep]))
    self._image_ids[image_id] = True

  def _groundtruth_dict(self):
    return {
        'annotations': self._groundtruth_list,
        'images': [{'id': image_id} for image_id in self._image_ids],
        'categories': self._categories,
    }

  def evaluate(self):
    """Computes the COCO box metrics.

    Returns:
      dict of python floats keyed 'DetectionBoxes_Precision/mAP', ... (see module docstring),
      plus per-category keys when enabled. Empty dict if no image was added.
    """
    if not self._image_ids:
      logging.warning('CocoDetectionEvaluator.evaluate called with no images.')
      return {}
    logging.info('Performing evaluation on %d images.', len(self._image_ids))
    _report_outside_label_map('CocoDetectionEvaluator', self._num_outside_label_map)
    groundtruth = coco_tools.COCOWrapper(self._groundtruth_dict())
    detections = groundtruth.LoadAnnotations(self._detection_boxes_list)
    box_evaluator = coco_tools.COCOEvalWrapper(groundtruth, detections, agnostic_mode=False,
                                               iou_type='bbox')
    box_metrics, box_per_category_ap = box_evaluator.ComputeMetrics(
        include_metrics_per_category=self._include_metrics_per_category,
        all_metrics_per_category=self._all_metrics_per_category)
    box_metrics.update(box_per_category_ap)
    return {'DetectionBoxes_' + key: value for key, value in box_metrics.items()}

  def dump_detections_to_json_file(self, json_output_path):
    """Writes the accumulated detections as a COCO results JSON."""
    import json  # pylint: disable=g-import-not-at-top
    with open(json_output_path, 'w') as f:
      json.dump(self._detection_boxes_list, f)


def _to_binary_masks(masks):
  """Nonzero -> 1, as uint8 (TF OD API convert_masks_to_binary)."""
  return (np.asarray(masks) > 0).astype(np.uint8)


class CocoMaskEvaluator(DetectionEvaluator):
  """COCO mask metrics (pycocotools COCOeval, iouType 'segm') on image-sized masks."""

  def __init__(self, categories, include_metrics_per_category=False,
               all_metrics_per_category=False, super_categories=None):
    """Args:
      categories: list of {'id': int, 'name': str}.
      include_metrics_per_category: add 'DetectionMasks_PerformanceByCategory/mAP/<name>'.
      all_metrics_per_category: add all 12 metrics per category.
      super_categories: not supported; must be None.

    Raises:
      ValueError: if `super_categories` is given.
    """
    super().__init__(categories)
    if super_categories:
      raise ValueError('super_categories is not supported by this evaluator.')
    self._image_id_to_mask_shape_map = {}
    self._image_ids_with_detections = set()
    self._groundtruth_list = []
    self._detection_masks_list = []
    self._category_id_set = set(cat['id'] for cat in self._categories)
    self._annotation_id = 1
    self._include_metrics_per_category = include_metrics_per_category
    self._all_metrics_per_category = all_metrics_per_category
    self.num_skipped_duplicate_images = 0
    self._num_outside_label_map = 0

  def clear(self):
    """Clears the state to prepare for a fresh evaluation."""
    self._num_outside_label_map = 0
    self._image_id_to_mask_shape_map.clear()
    self._image_ids_with_detections.clear()
    self._groundtruth_list = []
    self._detection_masks_list = []
    self._annotation_id = 1
    self.num_skipped_duplicate_images = 0

  def add_single_ground_truth_image_info(self, image_id, groundtruth_dict):
    """Adds the ground truth of one image.

    Args:
      image_id: int or str.
      groundtruth_dict: dict with
        'groundtruth_boxes': float [N, 4] absolute ymin, xmin, ymax, xmax;
        'groundtruth_classes': int [N] label-map ids;
        'groundtruth_instance_masks': uint8 [N, H, W] image-sized masks at the original
          resolution (nonzero = foreground);
        'groundtruth_is_crowd' (optional): [N]; 'groundtruth_area' (optional): [N].

    Raises:
      ValueError: if required keys are missing or shapes disagree.
    """
    if image_id in self._image_id_to_mask_shape_map:
      logging.warning('Ignoring ground truth for image %r: already added.', image_id)
      self.num_skipped_duplicate_images += 1
      return
    _check_ground_truth_keys(image_id, groundtruth_dict,
                             [_IN.groundtruth_boxes, _IN.groundtruth_classes,
                              _IN.groundtruth_instance_masks])
    masks = _to_binary_masks(groundtruth_dict[_IN.groundtruth_instance_masks])
    if masks.ndim != 3:
      raise ValueError('groundtruth_instance_masks of image %r must be [N, H, W], got %s.' %
                       (image_id, masks.shape))
    self._image_id_to_mask_shape_map[image_id] = masks.shape
    self._groundtruth_list.extend(coco_tools.ExportSingleImageGroundtruthToCoco(
        image_id=image_id, next_annotation_id=self._annotation_id,
        category_id_set=self._category_id_set,
        groundtruth_boxes=groundtruth_dict[_IN.groundtruth_boxes],
        groundtruth_classes=groundtruth_dict[_IN.groundtruth_classes],
        groundtruth_masks=masks,
        groundtruth_is_crowd=_optional(groundtruth_dict, _IN.groundtruth_is_crowd),
        groundtruth_area=_optional(groundtruth_dict, _IN.groundtruth_area)))
    self._annotation_id = len(self._groundtruth_list) + 1

  def add_single_detected_image_info(self, image_id, detections_dict):
    """Adds the mask detections of one image.

    Args:
      image_id: int or str (ground truth added first).
      detections_dict: dict with
        'detection_scores': float [N]; 'detection_classes': int [N] label-map ids;
        'detection_masks': uint8 [N, H, W] image-sized masks, same H, W as the ground truth.

    Raises:
      ValueError: if the ground truth is missing or the mask sizes differ from it.
    """
    if image_id not in self._image_id_to_mask_shape_map:
      raise ValueError('Missing groundtruth for image id: {}'.format(image_id))
    if image_id in self._image_ids_with_detections:
      logging.warning('Ignoring detections for image %r: already added.', image_id)
      return
    _check_detection_keys(image_id, detections_dict,
                          [_DET.detection_scores, _DET.detection_classes,
                           _DET.detection_masks])
    groundtruth_masks_shape = self._image_id_to_mask_shape_map[image_id]
    detection_masks = np.asarray(detections_dict[_DET.detection_masks])
    if detection_masks.ndim != 3 or (
        detection_masks.shape[0] and
        tuple(groundtruth_masks_shape[1:]) != tuple(detection_masks.shape[1:])):
      raise ValueError('Spatial shape of groundtruth masks and detection masks are '
                       'incompatible for image {}: {} vs {} (detection masks must be '
                       'image-sized at the original resolution).'.format(
                           image_id, groundtruth_masks_shape, detection_masks.shape))
    self._num_outside_label_map += (
        _count_outside_label_map(detections_dict[_DET.detection_classes], self._category_id_set))
    self._detection_masks_list.extend(coco_tools.ExportSingleImageDetectionMasksToCoco(
        image_id=image_id, category_id_set=self._category_id_set,
        detection_masks=_to_binary_masks(detection_masks),
        detection_scores=np.asarray(detections_dict[_DET.detection_scores]),
        detection_classes=np.asarray(detections_dict[_DET.detection_classes])))
    self._image_ids_with_detections.add(image_id)

  def evaluate(self):
    """Computes the COCO mask metrics.

    Returns:
      dict of python floats keyed 'DetectionMasks_Precision/mAP', ... plus per-category keys
      when enabled. Empty dict if no image was added.
    """
    if not self._image_id_to_mask_shape_map:
      logging.warning('CocoMaskEvaluator.evaluate called with no images.')
      return {}
    _report_outside_label_map('CocoMaskEvaluator', self._num_outside_label_map)
    groundtruth_dict = {
        'annotations': self._groundtruth_list,
        'images': [{'id': image_id, 'height': shape[1], 'width': shape[2]}
                   for image_id, shape in self._image_id_to_mask_shape_map.items()],
        'categories': self._categories,
    }
    groundtruth = coco_tools.COCOWrapper(groundtruth_dict, detection_type='segmentation')
    detections = groundtruth.LoadAnnotations(self._detection_masks_list)
    mask_evaluator = coco_tools.COCOEvalWrapper(groundtruth, detections, agnostic_mode=False,
                                                iou_type='segm')
    mask_metrics, mask_per_category_ap = mask_evaluator.ComputeMetrics(
        include_metrics_per_category=self._include_metrics_per_category,
        all_metrics_per_category=self._all_metrics_per_category)
    mask_metrics.update(mask_per_category_ap)
    return {'DetectionMasks_' + key: value for key, value in mask_metrics.items()}

  def dump_detections_to_json_file(self, json_output_path):
    """Writes the accumulated mask detections as a COCO results JSON (RLE masks)."""
    import json  # pylint: disable=g-import-not-at-top
    with open(json_output_path, 'w') as f:
      json.dump(self._detection_masks_list, f)
