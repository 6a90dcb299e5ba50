"""Semantic segmentation metrics: per-class IoU / Dice, mIoU, mDice, pixel accuracy.

numpy only (importing this module imports neither TensorFlow nor pycocotools).

Everything is computed from one confusion matrix accumulated over the whole evaluation
(`confusion_matrix`): int64 [num_classes, num_classes], rows = ground truth class, columns =
predicted class, counting only pixels whose ground truth is not `ignore_label`. Per class c, with
TP = cm[c, c], FP = (column c sum) - TP, FN = (row c sum) - TP:

  IoU_c  = TP / (TP + FP + FN)          (Jaccard index; mmsegmentation IoUMetric 'IoU',
                                          tf.keras.metrics.IoU, sklearn.metrics.jaccard_score)
  Dice_c = 2 TP / (2 TP + FP + FN)      (Sorensen-Dice = F1; mmsegmentation 'Dice',
                                          sklearn.metrics.f1_score)
  pixel_accuracy = trace(cm) / sum(cm)  (mmsegmentation 'aAcc', sklearn accuracy_score)

Intersections and unions are summed over ALL images before dividing (dataset-level IoU, as
mmsegmentation, OTX's DiceAverage and the Cityscapes / VOC benchmarks do), not averaged per image.

Classes absent from the whole evaluation: a class with TP + FP + FN == 0 (in no ground-truth pixel
and no predicted pixel) has no defined IoU / Dice. It is reported as NaN per class and EXCLUDED
from mIoU / mDice. This is what mmsegmentation does (IoUMetric: intersect / union gives NaN for
such a class, and the summary is np.nanmean) and what OTX 1.x's DiceAverage does (it averages only
over the labels that occur in the ground truth or the predictions). A class that is predicted but
never in the ground truth (or the reverse) has IoU = Dice = 0 and DOES count in the means. If no
class is left to average, the mean is NaN (logged).

Background in the means (`include_background`, default False): OTX reports mean Dice over the
foreground labels only (OTX 1.x DiceAverage averages over the model's labels without the empty /
background label, whose pixels are the 0 of its masks), and background usually covers most
pixels, so including it inflates the means and hides poor foreground classes. Set
include_background=True for the PASCAL VOC / mmsegmentation convention, where background is an
ordinary class in mIoU. The background's own IoU / Dice keys are always reported, and pixel
accuracy always counts every non-ignored pixel, background included. (For reference, OTX 2.x
evaluates torchmetrics' Dice(num_classes=K+1, ignore_index=K) with its default 'micro' average.)

Means are math.fsum(values) / count: the correctly rounded sum, independent of class order.

Streaming evaluator (`SemanticSegmentationEvaluator`) with the interface of the project's COCO
evaluators (`coco_evaluation.CocoMaskEvaluator`, itself the TF OD API's), per pixel:

  COCO evaluator                         here
  __init__(categories, ...)              __init__(categories, ignore_label=255,
                                                  include_background=False, num_classes=None,
                                                  include_metrics_per_category=True)
  add_single_ground_truth_image_info     same name; groundtruth_dict['groundtruth_semantic']: the
    (boxes, classes, instance masks)       [H, W] label map. Held until its prediction arrives; a
                                           repeated image id is ignored and counted in
                                           num_skipped_duplicate_images (TF OD API behaviour).
  add_single_detected_image_info         same name; detections_dict['detection_semantic']: the
    (boxes, scores, classes, masks)        predicted [H, W] class-id map, at the ground truth's
                                           size. Folds the image into the confusion matrix and
                                           frees both maps (memory: one image, not the dataset).
  evaluate() -> COCOeval metrics dict    evaluate() -> dict of python floats (keys below)
  clear()                                clear(): empty confusion matrix, forgets image ids
  dump_detections_to_json_file           not provided (per-pixel maps are not COCO results)
  observe_result_dict_for_single_example not provided (TF1 eval_dict path, as in coco_evaluation)

Metric keys (TF OD API style 'Family/metric'):
  'SemanticSegmentation/mIoU', 'SemanticSegmentation/mDice', 'SemanticSegmentation/pixel_accuracy',
  per class 'SemanticSegmentation/IoU/<class name>' and 'SemanticSegmentation/Dice/<class name>'.

Category ids are the label-map values of the label maps: 0 = background, 1 .. num_classes - 1.
A TF OD API label map usually starts at 1: then id 0 is named 'background'.
"""

import logging
import math

import numpy as np

GROUNDTRUTH_SEMANTIC = 'groundtruth_semantic'
DETECTION_SEMANTIC = 'detection_semantic'

METRIC_PREFIX = 'SemanticSegmentation/'
SUMMARY_METRIC_NAMES = ('mIoU', 'mDice', 'pixel_accuracy')
PER_CLASS_METRIC_PREFIXES = (METRIC_PREFIX + 'IoU/', METRIC_PREFIX + 'Dice/')
DEFAULT_IGNORE_LABEL = 255
BACKGROUND_NAME = 'background'


def _describe(image_id):
  return 'image %r' % (image_id,) if image_id is not None else 'this label map pair'


def _as_label_map(values, what, image_id):
  """[H, W] (or [H, W, 1]) integer array -> [H, W] ndarray; ValueError otherwise."""
  array = np.asarray(values)
  if array.ndim == 3 and array.shape[2] == 1:
    array = array[:, :, 0]
  if array.ndim != 2:
    raise ValueError('%s of %s must be an [H, W] label map, got shape %s.'
                     % (what, _describe(image_id), array.shape))
  if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
    raise ValueError('%s of %s must hold integer class ids, got dtype %s (pass the argmax over '
                     'classes, not scores).' % (what, _describe(image_id), array.dtype))
  return array


def _out_of_range_error(what, image_id, bad_values, num_bad, num_classes, ignore_label):
  values = np.unique(bad_values)
  shown = ', '.join(str(int(v)) for v in values[:10]) + (', ...' if len(values) > 10 else '')
  extra = ' that is not ignore_label %d' % ignore_label if what == 'Ground truth' else ''
  return ValueError(
      '%s of %s has class id %d outside [0, %d)%s (%d pixels; values: %s): check num_classes '
      'and the label map.' % (what, _describe(image_id), int(values[0]), num_classes, extra,
                              num_bad, shown))


def confusion_matrix(groundtruth, prediction, num_classes, ignore_label=DEFAULT_IGNORE_LABEL,
                     image_id=None):
  """Confusion matrix of one label map pair, by np.bincount.

  Args:
    groundtruth: integer [H, W] (or [H, W, 1]) ground-truth class ids in [0, num_classes), or
      `ignore_label` for pixels that are not evaluated.
    prediction: integer array of the same shape: predicted class ids in [0, num_classes).
    num_classes: int K, background (0) included.
    ignore_label: ground-truth value excluded from every count (default 255); must lie outside
      [0, num_classes).
    image_id: optional, named in error messages.

  Returns:
    int64 [K, K], element [i, j] = number of pixels with ground truth i predicted as j
    (the layout of sklearn.metrics.confusion_matrix(gt, pred, labels=range(K))).

  Raises:
    ValueError (one line, naming the image): shapes differ, non-integer dtypes, a ground-truth
      value outside [0, K) that is not ignore_label, or a predicted value outside [0, K).
  """
  num_classes = int(num_classes)
  if num_classes < 1:
    raise ValueError('num_classes must be >= 1, got %d.' % num_classes)
  if 0 <= ignore_label < num_classes:
    raise ValueError('ignore_label %d is a class id (num_classes %d): use a value outside '
                     '[0, %d), e.g. 255.' % (ignore_label, num_classes, num_classes))
  groundtruth = _as_label_map(groundtruth, 'Ground truth', image_id)
  prediction = _as_label_map(prediction, 'Prediction', image_id)
  if groundtruth.shape != prediction.shape:
    raise ValueError('Prediction and ground truth of %s differ in shape: prediction %s, ground '
                     'truth %s (predict at the original image size).'
                     % (_describe(image_id), prediction.shape, groundtruth.shape))
  # int64 before any arithmetic: gt * K + pred overflows uint8 / uint16 label maps.
  groundtruth = groundtruth.astype(np.int64).ravel()
  prediction = prediction.astype(np.int64).ravel()
  counted = groundtruth != ignore_label
  bad_groundtruth = counted & ((groundtruth < 0) | (groundtruth >= num_classes))
  if bad_groundtruth.any():
    raise _out_of_range_error('Ground truth', image_id, groundtruth[bad_groundtruth],
                              int(bad_groundtruth.sum()), num_classes, ignore_label)
  bad_prediction = (prediction < 0) | (prediction >= num_classes)
  if bad_prediction.any():
    raise _out_of_range_error('Prediction', image_id, prediction[bad_prediction],
                              int(bad_prediction.sum()), num_classes, ignore_label)
  flat = groundtruth[counted] * num_classes + prediction[counted]
  return np.bincount(flat, minlength=num_classes * num_classes).reshape(
      num_classes, num_classes).astype(np.int64)


def _mean(values):
  """fsum / count over the non-NaN values; NaN when there is none."""
  kept = [v for v in values if not math.isnan(v)]
  return math.fsum(kept) / len(kept) if kept else float('nan')


def metrics_from_confusion_matrix(matrix, include_background=False):
  """Per-class and mean metrics of an accumulated confusion matrix.

  Args:
    matrix: integer [K, K], rows = ground truth, columns = prediction.
    include_background: whether class 0 counts in mIoU / mDice (see the module docstring).

  Returns:
    dict with 'iou', 'dice': lists of K python floats (NaN for a class absent from both ground
    truth and prediction), 'miou', 'mdice', 'pixel_accuracy' (python floats; NaN when nothing
    is left to average / no pixel was counted).
  """
  matrix = np.asarray(matrix, dtype=np.int64)
  true_positives = np.diag(matrix)
  false_positives = matrix.sum(axis=0) - true_positives
  false_negatives = matrix.sum(axis=1) - true_positives
  iou, dice = [], []
  for tp, fp, fn in zip(true_positives.tolist(), false_positives.tolist(),
                        false_negatives.tolist()):
    if tp + fp + fn == 0:
      iou.append(float('nan'))
      dice.append(float('nan'))
    else:
      iou.append(tp / (tp + fp + fn))
      dice.append(2 * tp / (2 * tp + fp + fn))
  first = 0 if include_background else 1
  total = int(matrix.sum())
  return {
      'iou': iou,
      'dice': dice,
      'miou': _mean(iou[first:]),
      'mdice': _mean(dice[first:]),
      'pixel_accuracy': int(np.trace(matrix)) / total if total else float('nan'),
  }


def class_names_from_categories(categories, num_classes=None):
  """[K] class names indexed by class id from [{'id', 'name'}].

  num_classes defaults to max id + 1. Id 0 missing -> 'background'; another id missing ->
  'class_<id>'.

  Raises:
    ValueError: an id outside [0, num_classes), a repeated id or name, or no categories.
  """
  ids = [int(category['id']) for category in categories]
  if num_classes is None:
    if not ids:
      raise ValueError('categories is empty: give the label map classes or num_classes.')
    num_classes = max(ids) + 1
  names = [None] * num_classes
  for category_id, category in zip(ids, categories):
    if not 0 <= category_id < num_classes:
      raise ValueError('Category %r has id %d outside [0, %d): semantic class ids run from 0 '
                       '(background) to num_classes - 1.' % (category['name'], category_id,
                                                               num_classes))
    if names[category_id] is not None:
      raise ValueError('Category id %d appears twice in the categories (%r and %r).'
                       % (category_id, names[category_id], category['name']))
    names[category_id] = str(category['name'])
  for category_id, name in enumerate(names):
    if name is None:
      names[category_id] = BACKGROUND_NAME if category_id == 0 else 'class_%d' % category_id
  seen = {}
  for category_id, name in enumerate(names):
    if name in seen:
      raise ValueError('Class name %r is used by ids %d and %d: metric keys would collide.'
                       % (name, seen[name], category_id))
    seen[name] = category_id
  return names


class SemanticSegmentationEvaluator(object):
  """Accumulates a confusion matrix over images; evaluate() gives mIoU, mDice, pixel accuracy.

  See the module docstring for the formulas, the method mapping to the COCO evaluators, the
  treatment of absent classes and of background.
  """

  def __init__(self, categories, ignore_label=DEFAULT_IGNORE_LABEL, include_background=False,
               num_classes=None, include_metrics_per_category=True):
    """Args:
      categories: list of {'id': int, 'name': str}; ids are class ids 0..num_classes-1
        (0 = background; named 'background' when absent).
      ignore_label: ground-truth value excluded from all metrics (default 255).
      include_background: whether class 0 counts in mIoU / mDice (default False, as OTX's mDice).
      num_classes: K (background included); default max category id + 1.
      include_metrics_per_category: add the per-class IoU / Dice keys (default True).

    Raises:
      ValueError: bad categories (see class_names_from_categories), or ignore_label in [0, K).
    """
    self._categories = categories
    self.class_names = class_names_from_categories(categories, num_classes)
    self.num_classes = len(self.class_names)
    self.ignore_label = int(ignore_label)
    if 0 <= self.ignore_label < self.num_classes:
      raise ValueError('ignore_label %d is a class id (num_classes %d): use a value outside '
                       '[0, %d), e.g. 255.' % (self.ignore_label, self.num_classes,
                                               self.num_classes))
    self.include_background = bool(include_background)
    self.include_metrics_per_category = bool(include_metrics_per_category)
    self._matrix = np.zeros((self.num_classes, self.num_classes), np.int64)
    self._pending_groundtruth = {}
    self._evaluated_image_ids = set()
    self.num_skipped_duplicate_images = 0
    self.num_ignored_pixels = 0

  def clear(self):
    """Clears the state to prepare for a fresh evaluation."""
    self._matrix[:] = 0
    self._pending_groundtruth.clear()
    self._evaluated_image_ids.clear()
    self.num_skipped_duplicate_images = 0
    self.num_ignored_pixels = 0

  @property
  def num_images(self):
    """Images folded into the confusion matrix so far."""
    return len(self._evaluated_image_ids)

  def get_confusion_matrix(self):
    """A copy of the accumulated int64 [K, K] matrix (rows ground truth, columns prediction)."""
    return self._matrix.copy()

  def add_single_ground_truth_image_info(self, image_id, groundtruth_dict):
    """Adds the ground-truth label map of one image.

    A second call with an image id already added (pending or evaluated) is ignored, logged and
    counted in num_skipped_duplicate_images, as in the TF OD API.

    Args:
      image_id: hashable unique image identifier (int or str).
      groundtruth_dict: {'groundtruth_semantic': integer [H, W] (or [H, W, 1]) class ids in
        [0, num_classes) or ignore_label}.

    Raises:
      ValueError: key missing, not an integer [H, W] map.
    """
    if image_id in self._pending_groundtruth or image_id in self._evaluated_image_ids:
      logging.warning('Ignoring ground truth for image %r: already added.', image_id)
      self.num_skipped_duplicate_images += 1
      return
    if GROUNDTRUTH_SEMANTIC not in groundtruth_dict:
      raise ValueError('Ground truth of image %r is missing %r.'
                       % (image_id, GROUNDTRUTH_SEMANTIC))
    self._pending_groundtruth[image_id] = _as_label_map(
        groundtruth_dict[GROUNDTRUTH_SEMANTIC], 'Ground truth', image_id)

  def add_single_detected_image_info(self, image_id, detections_dict):
    """Adds the predicted label map of one image (its ground truth must have been added first).

    Args:
      image_id: as given to add_single_ground_truth_image_info.
      detections_dict: {'detection_semantic': integer [H, W] (or [H, W, 1]) predicted class ids
        in [0, num_classes), the ground truth's H, W}.

    Raises:
      ValueError (one line naming the image): ground truth missing, key missing, shapes differ,
        a ground-truth value outside [0, num_classes) that is not ignore_label, a predicted value
        outside [0, num_classes). The image is then not counted.
    """
    if image_id in self._evaluated_image_ids:
      logging.warning('Ignoring prediction for image %r: already added.', image_id)
      return
    if image_id not in self._pending_groundtruth:
      raise ValueError('Missing groundtruth for image id: {}'.format(image_id))
    if DETECTION_SEMANTIC not in detections_dict:
      raise ValueError('Prediction of image %r is missing %r.' % (image_id, DETECTION_SEMANTIC))
    groundtruth = self._pending_groundtruth[image_id]
    matrix = confusion_matrix(groundtruth, detections_dict[DETECTION_SEMANTIC],
                              self.num_classes, self.ignore_label, image_id=image_id)
    del self._pending_groundtruth[image_id]
    self._matrix += matrix
    self.num_ignored_pixels += int(groundtruth.size - matrix.sum())
    self._evaluated_image_ids.add(image_id)

  def evaluate(self):
    """Computes the metrics over every image added since the last clear().

    Returns:
      dict of python floats: 'SemanticSegmentation/mIoU', '.../mDice', '.../pixel_accuracy',
      and (include_metrics_per_category) '.../IoU/<name>', '.../Dice/<name>' per class, NaN for
      a class absent from both ground truth and prediction. Empty dict if no image was added.

    Raises:
      ValueError: some images have ground truth but no prediction (they would be silently
        missing from the metrics).
    """
    if self._pending_groundtruth:
      first = next(iter(self._pending_groundtruth))
      raise ValueError('%d images have ground truth but no prediction (first: %r): call '
                       'add_single_detected_image_info for each image before evaluate().'
                       % (len(self._pending_groundtruth), first))
    if not self._evaluated_image_ids:
      logging.warning('SemanticSegmentationEvaluator.evaluate called with no images.')
      return {}
    values = metrics_from_confusion_matrix(self._matrix, self.include_background)
    absent = [name for name, iou in zip(self.class_names, values['iou']) if math.isnan(iou)]
    logging.info('Semantic segmentation evaluation: %d images, %d pixels counted, %d ignored '
                 '(ignore_label %d); classes absent from ground truth and prediction (NaN, not '
                 'in the means): %s.', self.num_images, int(self._matrix.sum()),
                 self.num_ignored_pixels, self.ignore_label, ', '.join(absent) or 'none')
    if math.isnan(values['miou']):
      logging.warning('SemanticSegmentationEvaluator: no %sclass occurs in the ground truth or '
                      'the predictions: mIoU and mDice are NaN.',
                      '' if self.include_background else 'foreground ')
    metrics = {
        METRIC_PREFIX + 'mIoU': values['miou'],
        METRIC_PREFIX + 'mDice': values['mdice'],
        METRIC_PREFIX + 'pixel_accuracy': values['pixel_accuracy'],
    }
    if self.include_metrics_per_category:
      for name, iou, dice in zip(self.class_names, values['iou'], values['dice']):
        metrics[METRIC_PREFIX + 'IoU/' + name] = iou
        metrics[METRIC_PREFIX + 'Dice/' + name] = dice
    return metrics
