"""Conversion of ground truth and detections to COCO JSON dicts, and a COCOeval wrapper.

Port of the TF OD API's `object_detection/metrics/coco_tools.py` on top of pycocotools.

Conventions of the inputs: boxes are ABSOLUTE pixel coordinates of the original image,
[ymin, xmin, ymax, xmax]; they are converted to COCO's [x, y, width, height]. Masks are
image-sized uint8 [N, H, W] 0/1 arrays at the original image resolution; they are encoded as
COCO run-length encoding (RLE) with `pycocotools.mask.encode`.

The metrics are COCO's (Lin et al., "Microsoft COCO: Common Objects in Context", 2014), computed
by `pycocotools.cocoeval.COCOeval` unchanged; only the per-category summaries are computed here
(the TF OD API relies on a patched COCOeval for them), with the same formula as
`COCOeval.summarize` restricted to one category.

pycocotools' printed summary table is hidden: every number in it is returned (and printed by the
evaluation) under its TF OD API name, so it would print each metric twice. ODSEG_VERBOSE=1 shows it,
headed by the metric family it belongs to (box: DetectionBoxes_*, mask: DetectionMasks_*).
"""

import collections
import contextlib
import copy
import io
import json
import logging

import numpy as np
from pycocotools import coco
from pycocotools import cocoeval
from pycocotools import mask as mask_utils

from object_detection.utils import quiet_logs

# Order of COCOeval.stats, with the TF OD API's metric names.
SUMMARY_METRIC_NAMES = (
    'Precision/mAP',
    'Precision/mAP@.50IOU',
    'Precision/mAP@.75IOU',
    'Precision/mAP (small)',
    'Precision/mAP (medium)',
    'Precision/mAP (large)',
    'Recall/AR@1',
    'Recall/AR@10',
    'Recall/AR@100',
    'Recall/AR@100 (small)',
    'Recall/AR@100 (medium)',
    'Recall/AR@100 (large)',
)

# (is_precision, iou_threshold or None for .5:.95, area range label, max detections), one per
# entry of SUMMARY_METRIC_NAMES: the arguments of COCOeval.summarize's `_summarize` calls.
_SUMMARY_SPECS = (
    (True, None, 'all', 100),
    (True, .5, 'all', 100),
    (True, .75, 'all', 100),
    (True, None, 'small', 100),
    (True, None, 'medium', 100),
    (True, None, 'large', 100),
    (False, None, 'all', 1),
    (False, None, 'all', 10),
    (False, None, 'all', 100),
    (False, None, 'small', 100),
    (False, None, 'medium', 100),
    (False, None, 'large', 100),
)


def encode_masks_rle(masks):
  """Encodes binary masks as COCO RLE dicts with string counts (JSON-serializable).

  Args:
    masks: uint8 numpy [N, H, W] (or [H, W] for one mask); nonzero pixels are foreground.

  Returns:
    list of N dicts {'size': [H, W], 'counts': str} (one dict if the input is [H, W]).

  Raises:
    ValueError: if `masks` is not 2-D or 3-D.
  """
  masks = np.asarray(masks)
  if masks.ndim not in (2, 3):
    raise ValueError('masks must be [N, H, W] or [H, W], got shape %s.' % (masks.shape,))
  single = masks.ndim == 2
  if single:
    masks = masks[np.newaxis]
  binary = np.asfortranarray(np.transpose((masks > 0).astype(np.uint8), (1, 2, 0)))
  rles = mask_utils.encode(binary) if masks.shape[0] else []
  result = []
  for rle in rles:
    counts = rle['counts']
    result.append({'size': [int(rle['size'][0]), int(rle['size'][1])],
                   'counts': counts.decode('ascii') if isinstance(counts, bytes) else counts})
  return result[0] if single else result


def _convert_box_to_coco_format(box):
  """[ymin, xmin, ymax, xmax] absolute -> [x, y, width, height] (python floats)."""
  return [float(box[1]), float(box[0]), float(box[3] - box[1]), float(box[2] - box[0])]


def _check_rank(name, value, rank):
  if value is not None and np.ndim(value) != rank:
    raise ValueError('%s must be of rank %d, got shape %s.' % (name, rank, np.shape(value)))


def ExportSingleImageGroundtruthToCoco(image_id, next_annotation_id, category_id_set,  # pylint: disable=invalid-name
                                       groundtruth_boxes, groundtruth_classes,
                                       groundtruth_masks=None, groundtruth_is_crowd=None,
                                       groundtruth_area=None):
  """Exports the ground truth of one image as COCO annotation dicts.

  Boxes whose class is not in `category_id_set` are skipped (and logged with their count),
  as in the TF OD API.

  Args:
    image_id: int or str, unique image identifier.
    next_annotation_id: int, id of the first annotation (COCO ids start at 1).
    category_id_set: set of valid label-map ids.
    groundtruth_boxes: float numpy [N, 4] absolute ymin, xmin, ymax, xmax.
    groundtruth_classes: int numpy [N] label-map ids.
    groundtruth_masks: optional uint8 numpy [N, H, W] image-sized 0/1 masks.
    groundtruth_is_crowd: optional bool/int numpy [N].
    groundtruth_area: optional float numpy [N], object area in pixels; the box area is used
      when absent (TF OD API behaviour).

  Returns:
    list of COCO annotation dicts (keys id, image_id, category_id, bbox, area, iscrowd and,
    with masks, segmentation).

  Raises:
    ValueError: on inconsistent shapes.
  """
  _check_rank('groundtruth_classes', groundtruth_classes, 1)
  _check_rank('groundtruth_boxes', groundtruth_boxes, 2)
  groundtruth_boxes = np.asarray(groundtruth_boxes, np.float64)
  groundtruth_classes = np.asarray(groundtruth_classes)
  num_boxes = groundtruth_classes.shape[0]
  if groundtruth_boxes.shape != (num_boxes, 4):
    raise ValueError('groundtruth_boxes of image %r must be [%d, 4] (one per class), got %s.' %
                     (image_id, num_boxes, groundtruth_boxes.shape))
  for name, value in (('groundtruth_is_crowd', groundtruth_is_crowd),
                      ('groundtruth_area', groundtruth_area),
                      ('groundtruth_masks', groundtruth_masks)):
    if value is not None and np.shape(value)[0] != num_boxes:
      raise ValueError('%s of image %r has %d entries but there are %d boxes.' %
                       (name, image_id, np.shape(value)[0], num_boxes))
  rles = encode_masks_rle(groundtruth_masks) if groundtruth_masks is not None else None
  annotations = []
  skipped = 0
  for i in range(num_boxes):
    category_id = int(groundtruth_classes[i])
    if category_id not in category_id_set:
      skipped += 1
      continue
    iscrowd = int(groundtruth_is_crowd[i]) if groundtruth_is_crowd is not None else 0
    box = groundtruth_boxes[i]
    if groundtruth_area is not None:
      area = float(groundtruth_area[i])
    else:
      area = float((box[2] - box[0]) * (box[3] - box[1]))
    annotation = {
        'id': next_annotation_id + len(annotations),
        'image_id': image_id,
        'category_id': category_id,
        'bbox': _convert_box_to_coco_format(box),
        'area': area,
        'iscrowd': iscrowd,
    }
    if rles is not None:
      annotation['segmentation'] = rles[i]
    annotations.append(annotation)
  if skipped:
    logging.warning('Image %r: skipped %d ground-truth boxes whose class is not in the label '
                    'map.', image_id, skipped)
  return annotations


def _check_detections(image_id, detection_scores, detection_classes, num_expected_name,
                      num_expected):
  _check_rank('detection_scores', detection_scores, 1)
  _check_rank('detection_classes', detection_classes, 1)
  if not (np.shape(detection_scores)[0] == np.shape(detection_classes)[0] == num_expected):
    raise ValueError('Image %r: %s, detection_scores and detection_classes must have the same '
                     'length, got %d, %d, %d.' % (image_id, num_expected_name, num_expected,
                                                  np.shape(detection_scores)[0],
                                                  np.shape(detection_classes)[0]))


def ExportSingleImageDetectionBoxesToCoco(image_id, category_id_set, detection_boxes,  # pylint: disable=invalid-name
                                          detection_scores, detection_classes):
  """Exports the box detections of one image as COCO result dicts.

  Args:
    image_id: int or str.
    category_id_set: set of valid label-map ids; other detections are skipped (logged).
    detection_boxes: float numpy [N, 4] absolute ymin, xmin, ymax, xmax.
    detection_scores: float numpy [N].
    detection_classes: int numpy [N] label-map ids.

  Returns:
    list of dicts {image_id, category_id, bbox [x, y, w, h], score}.

  Raises:
    ValueError: on inconsistent shapes.
  """
  _check_rank('detection_boxes', detection_boxes, 2)
  detection_boxes = np.asarray(detection_boxes, np.float64)
  _check_detections(image_id, detection_scores, detection_classes, 'detection_boxes',
                    detection_boxes.shape[0])
  results = []
  skipped = 0
  for i in range(detection_boxes.shape[0]):
    category_id = int(detection_classes[i])
    if category_id not in category_id_set:
      skipped += 1
      continue
    results.append({'image_id': image_id, 'category_id': category_id,
                    'bbox': _convert_box_to_coco_format(detection_boxes[i]),
                    'score': float(detection_scores[i])})
  if skipped:
    # Per image at debug level: the evaluators report one total (see coco_evaluation).
    logging.debug('Image %r: skipped %d detections whose class is not in the label map.',
                  image_id, skipped)
  return results


def ExportSingleImageDetectionMasksToCoco(image_id, category_id_set, detection_masks,  # pylint: disable=invalid-name
                                          detection_scores, detection_classes,
                                          detection_boxes=None):
  """Exports the mask detections of one image as COCO result dicts with RLE masks.

  Args:
    image_id: int or str.
    category_id_set: set of valid label-map ids; other detections are skipped (logged).
    detection_masks: uint8 numpy [N, H, W] image-sized 0/1 masks.
    detection_scores: float numpy [N].
    detection_classes: int numpy [N] label-map ids.
    detection_boxes: optional float numpy [N, 4] absolute ymin, xmin, ymax, xmax; when given,
      the results also carry 'bbox'. Leave it out for files scored with `COCO.loadRes`:
      loadRes takes the area of a result with a 'bbox' from the box, not the mask, which
      changes the small/medium/large segm metrics.

  Returns:
    list of dicts {image_id, category_id, segmentation (RLE), score[, bbox]}.

  Raises:
    ValueError: on inconsistent shapes.
  """
  _check_rank('detection_masks', detection_masks, 3)
  _check_detections(image_id, detection_scores, detection_classes, 'detection_masks',
                    np.shape(detection_masks)[0])
  rles = encode_masks_rle(detection_masks)
  results = []
  skipped = 0
  for i, rle in enumerate(rles):
    category_id = int(detection_classes[i])
    if category_id not in category_id_set:
      skipped += 1
      continue
    result = {'image_id': image_id, 'category_id': category_id, 'segmentation': rle,
              'score': float(detection_scores[i])}
    if detection_boxes is not None:
      result['bbox'] = _convert_box_to_coco_format(np.asarray(detection_boxes[i], np.float64))
    results.append(result)
  if skipped:
    # Per image at debug level: the evaluators report one total (see coco_evaluation).
    logging.debug('Image %r: skipped %d detections whose class is not in the label map.',
                  image_id, skipped)
  return results


def ExportGroundtruthToCOCO(image_ids, groundtruth_boxes, groundtruth_classes, categories,  # pylint: disable=invalid-name
                            output_path=None, groundtruth_masks=None, groundtruth_is_crowd=None,
                            groundtruth_area=None, image_shapes=None):
  """Exports the ground truth of a dataset as a COCO dataset dict (optionally to JSON).

  Args:
    image_ids: list of image ids.
    groundtruth_boxes: list of float numpy [N_i, 4] absolute ymin, xmin, ymax, xmax.
    groundtruth_classes: list of int numpy [N_i].
    categories: list of {'id': int, 'name': str}.
    output_path: optional path of the JSON file to write.
    groundtruth_masks: optional list of uint8 numpy [N_i, H_i, W_i].
    groundtruth_is_crowd: optional list of numpy [N_i].
    groundtruth_area: optional list of numpy [N_i].
    image_shapes: optional list of (height, width); taken from the masks when absent.

  Returns:
    dict with 'images', 'annotations', 'categories'.
  """
  category_id_set = set(cat['id'] for cat in categories)
  annotations = []
  images = []
  for i, image_id in enumerate(image_ids):
    annotations.extend(ExportSingleImageGroundtruthToCoco(
        image_id, len(annotations) + 1, category_id_set, groundtruth_boxes[i],
        groundtruth_classes[i],
        groundtruth_masks=groundtruth_masks[i] if groundtruth_masks else None,
        groundtruth_is_crowd=groundtruth_is_crowd[i] if groundtruth_is_crowd else None,
        groundtruth_area=groundtruth_area[i] if groundtruth_area else None))
    image = {'id': image_id}
    if image_shapes is not None:
      image['height'], image['width'] = int(image_shapes[i][0]), int(image_shapes[i][1])
    elif groundtruth_masks:
      image['height'], image['width'] = (int(groundtruth_masks[i].shape[1]),
                                         int(groundtruth_masks[i].shape[2]))
    images.append(image)
  groundtruth_dict = {'annotations': annotations, 'images': images,
                      'categories': list(categories)}
  if output_path:
    with open(output_path, 'w') as f:
      json.dump(groundtruth_dict, f)
  return groundtruth_dict


def ExportDetectionsToCOCO(image_ids, detection_boxes, detection_scores, detection_classes,  # pylint: disable=invalid-name
                           categories, output_path=None, detection_masks=None):
  """Exports the detections of a dataset as a COCO results list (optionally to JSON).

  Args:
    image_ids: list of image ids.
    detection_boxes: list of float numpy [N_i, 4] absolute ymin, xmin, ymax, xmax.
    detection_scores: list of float numpy [N_i].
    detection_classes: list of int numpy [N_i] label-map ids.
    categories: list of {'id', 'name'}.
    output_path: optional path of the JSON file to write.
    detection_masks: optional list of uint8 numpy [N_i, H_i, W_i] image-sized masks; when given
      the results are segm results (RLE 'segmentation', no 'bbox', so that `COCO.loadRes` uses
      the mask area); export the boxes separately for box evaluation.

  Returns:
    list of COCO result dicts.
  """
  category_id_set = set(cat['id'] for cat in categories)
  results = []
  for i, image_id in enumerate(image_ids):
    if detection_masks is not None:
      results.extend(ExportSingleImageDetectionMasksToCoco(
          image_id, category_id_set, detection_masks[i], detection_scores[i],
          detection_classes[i]))
    else:
      results.extend(ExportSingleImageDetectionBoxesToCoco(
          image_id, category_id_set, detection_boxes[i], detection_scores[i],
          detection_classes[i]))
  if output_path:
    with open(output_path, 'w') as f:
      json.dump(results, f)
  return results


class COCOWrapper(coco.COCO):
  """A pycocotools COCO object built from an in-memory dataset dict (no JSON file)."""

  def __init__(self, dataset, detection_type='bbox'):
    """Builds the index of `dataset`.

    Args:
      dataset: COCO dataset dict ('images', 'annotations', 'categories').
      detection_type: 'bbox' or 'segmentation'.

    Raises:
      ValueError: on an unknown detection_type.
    """
    if detection_type not in ('bbox', 'segmentation'):
      raise ValueError('detection_type must be "bbox" or "segmentation", got %r.' %
                       (detection_type,))
    self._detection_type = detection_type
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools' "creating index..." chatter
      super().__init__()
      self.dataset = dataset
      self.createIndex()

  def LoadAnnotations(self, annotations):  # pylint: disable=invalid-name
    """Builds a results COCO object from detections, like `COCO.loadRes`.

    Same area / id / iscrowd assignment as `COCO.loadRes` (so metrics are identical to a
    direct pycocotools run) but also accepts an empty list.

    Args:
      annotations: list of COCO result dicts (bbox or segmentation + score).

    Returns:
      a COCO object.

    Raises:
      ValueError: if a detection refers to an image absent from the ground truth.
    """
    results = coco.COCO()
    results.dataset['images'] = list(self.dataset['images'])
    results.dataset['categories'] = copy.deepcopy(self.dataset['categories'])
    known_ids = set(self.getImgIds())
    annotations = [dict(ann) for ann in annotations]
    for idx, ann in enumerate(annotations):
      if ann['image_id'] not in known_ids:
        raise ValueError('Detection for image id %r which has no ground truth.' %
                         (ann['image_id'],))
      if self._detection_type == 'bbox':
        bb = ann['bbox']
        ann['area'] = bb[2] * bb[3]
        if 'segmentation' not in ann:
          x1, x2, y1, y2 = bb[0], bb[0] + bb[2], bb[1], bb[1] + bb[3]
          ann['segmentation'] = [[x1, y1, x1, y2, x2, y2, x2, y1]]
      else:
        ann['area'] = mask_utils.area(ann['segmentation'])
        if 'bbox' not in ann:
          ann['bbox'] = mask_utils.toBbox(ann['segmentation'])
      ann['id'] = idx + 1
      ann['iscrowd'] = 0
    results.dataset['annotations'] = annotations
    with contextlib.redirect_stdout(io.StringIO()):
      results.createIndex()
    return results


def summary_table_heading(iou_type):
  """The line printed above pycocotools' summary table (under ODSEG_VERBOSE=1)."""
  family = {'bbox': 'box metrics, DetectionBoxes_*', 'segm': 'mask metrics, DetectionMasks_*'}
  return 'pycocotools COCOeval summary (%s):' % family.get(iou_type, iou_type)


class COCOEvalWrapper(cocoeval.COCOeval):
  """COCOeval that returns the TF OD API's metric dicts."""

  def __init__(self, groundtruth=None, detections=None, agnostic_mode=False, iou_type='bbox'):
    """Args:
      groundtruth: COCOWrapper of the ground truth.
      detections: COCO object of the detections (COCOWrapper.LoadAnnotations).
      agnostic_mode: evaluate ignoring classes.
      iou_type: 'bbox' or 'segm'.
    """
    super().__init__(groundtruth, detections, iouType=iou_type)
    if agnostic_mode:
      self.params.useCats = 0

  def GetCategory(self, category_id):  # pylint: disable=invalid-name
    return self.cocoGt.cats[category_id]

  def GetAgnosticMode(self):  # pylint: disable=invalid-name
    return self.params.useCats == 0

  def GetCategoryIdList(self):  # pylint: disable=invalid-name
    return self.params.catIds

  def _category_stats(self):
    """[12, num_categories] summary stats per category (COCOeval._summarize per class).

    -1 where the category has no ground truth (as COCOeval reports for empty cells).
    """
    p = self.params
    precision = self.eval['precision']  # [T, R, K, A, M]
    recall = self.eval['recall']  # [T, K, A, M]
    stats = np.full((len(_SUMMARY_SPECS), len(p.catIds)), -1.0)
    for s, (is_precision, iou_thr, area_rng, max_dets) in enumerate(_SUMMARY_SPECS):
      aind = p.areaRngLbl.index(area_rng)
      mind = p.maxDets.index(max_dets)
      for k in range(len(p.catIds)):
        if is_precision:
          values = precision[:, :, k, aind, mind]
          if iou_thr is not None:
            values = values[np.where(iou_thr == p.iouThrs)[0]]
        else:
          values = recall[:, k, aind, mind]
          if iou_thr is not None:
            values = values[np.where(iou_thr == p.iouThrs)[0]]
        values = values[values > -1]
        stats[s, k] = np.mean(values) if values.size else -1.0
    return stats

  def ComputeMetrics(self, include_metrics_per_category=False,  # pylint: disable=invalid-name
                     all_metrics_per_category=False):
    """Runs evaluate / accumulate / summarize and returns the metrics.

    Args:
      include_metrics_per_category: add 'PerformanceByCategory/mAP/<name>'.
      all_metrics_per_category: add all 12 summary metrics per category (many scalars).

    Returns:
      (summary_metrics, per_category_ap): OrderedDicts of python floats keyed by the TF OD
      API names without the 'DetectionBoxes_' / 'DetectionMasks_' prefix.

    Raises:
      ValueError: if per-category metrics are asked for in agnostic mode.
    """
    with contextlib.redirect_stdout(io.StringIO()):
      self.evaluate()
      self.accumulate()
    if quiet_logs.verbose():
      print(summary_table_heading(self.params.iouType))
      self.summarize()
    else:
      with contextlib.redirect_stdout(io.StringIO()):
        self.summarize()  # Fills self.stats; its table repeats the returned metrics.
    summary_metrics = collections.OrderedDict(
        (name, float(self.stats[i])) for i, name in enumerate(SUMMARY_METRIC_NAMES))
    per_category_ap = collections.OrderedDict()
    if not (include_metrics_per_category or all_metrics_per_category):
      return summary_metrics, per_category_ap
    if self.GetAgnosticMode():
      raise ValueError('Per-category metrics cannot be computed in agnostic mode '
                       '(set include_metrics_per_category: false).')
    self.category_stats = self._category_stats()
    for k, category_id in enumerate(self.GetCategoryIdList()):
      name = self.GetCategory(category_id)['name']
      per_category_ap['PerformanceByCategory/mAP/{}'.format(name)] = float(
          self.category_stats[0][k])
      if all_metrics_per_category:
        for s, metric in enumerate(SUMMARY_METRIC_NAMES[1:], start=1):
          # 'Precision/mAP@.50IOU' -> 'PerformanceByCategory/mAP@.50IOU/<name>' as in TF OD API.
          short = metric.replace('Precision/', '')
          per_category_ap['PerformanceByCategory/{}/{}'.format(short, name)] = float(
              self.category_stats[s][k])
    return summary_metrics, per_category_ap
