"""Evaluation loop: COCO box / mask metrics, eval losses, TensorBoard summaries, metrics JSON.

TF2 counterpart of the TF OD API's `model_lib_v2.eager_eval_loop` + `eval_util`. Called by
`object_detection/model_lib_v2.py` (training helper) through `evaluate(...)`.

Data flow (batches as described in `inputs.py`, a `core.model.DetectionModel`):
  eval dataset (features, labels), already preprocessed by the input pipeline
    -> model.provide_groundtruth(unpadded per-image lists) -> model.predict -> model.loss
    -> model.postprocess (normalized boxes, label-map ids, box-relative masks)
    -> detections converted to the ORIGINAL image: boxes * original size; masks pasted with
       `ops.reframe_box_masks_to_image_masks` at the original size and thresholded at 0.5
    -> ground truth from the labels at the original resolution
       (`original_groundtruth_instance_masks` cropped to each image's original shape)
    -> CocoDetectionEvaluator / CocoMaskEvaluator (pycocotools).
"""

import json
import logging
import os
import time

import numpy as np
import tensorflow as tf

from object_detection import inputs
from object_detection.core import standard_fields as fields
from object_detection.metrics import coco_evaluation
from object_detection.training import train_step
from object_detection.utils import model_stats as model_stats_lib
from object_detection.utils import ops
from object_detection.utils import visualization_utils as vutils

_IN = fields.InputDataFields
_DET = fields.DetectionResultFields

# metrics_set name -> evaluator class.
EVAL_METRICS_CLASS_DICT = {
    'coco_detection_metrics': coco_evaluation.CocoDetectionEvaluator,
    'coco_mask_metrics': coco_evaluation.CocoMaskEvaluator,
}
# Reported by semantic segmentation models only (`semantic_eval.evaluate`, which `evaluate`
# dispatches them to); `get_evaluators` of a detection model refuses them.
SEMANTIC_METRICS_SETS = ('semantic_segmentation_metrics',)
EVAL_DEFAULT_METRIC = 'coco_detection_metrics'

# Eval-config fields read here, with the TF OD API's defaults (used when a stand-in config
# object lacks a field).
_EVAL_CONFIG_DEFAULTS = {
    'metrics_set': (),
    'include_metrics_per_category': False,
    'all_metrics_per_category': False,
    'skip_predictions_for_unlabeled_class': False,
    'num_visualizations': 10,
    'max_num_boxes_to_visualize': 20,
    'min_score_threshold': 0.5,
    'retain_original_images': True,
    'num_examples': 0,
}

# Model stats are computed once per model object (tracing Mask R-CNN costs seconds).
_MODEL_STATS_CACHE = {}


def _eval_field(eval_config, name):
  return getattr(eval_config, name, _EVAL_CONFIG_DEFAULTS[name])


def get_evaluators(eval_config, categories, evaluator_options=None):
  """Builds the evaluators named in `eval_config.metrics_set`.

  Args:
    eval_config: EvalConfig proto (or an object with the same fields).
    categories: list of {'id': int, 'name': str}.
    evaluator_options: optional dict metrics_set name -> kwargs; default from eval_config.

  Returns:
    list of evaluator objects (in metrics_set order, duplicates removed).

  Raises:
    ValueError: if a metrics_set entry is unknown, or is semantic_segmentation_metrics (only a
      semantic segmentation model reports it, through `semantic_eval.evaluate`).
  """
  metrics_set = list(_eval_field(eval_config, 'metrics_set')) or [EVAL_DEFAULT_METRIC]
  for name in metrics_set:
    if name in SEMANTIC_METRICS_SETS:
      raise ValueError(
          "eval_config.metrics_set: '{}' needs a semantic_segmentation model (this model is a "
          'detection model): use coco_detection_metrics / coco_mask_metrics, or a '
          'model {{ semantic_segmentation {{ ... }} }} config.'.format(name))
  if evaluator_options is None:
    evaluator_options = evaluator_options_from_eval_config(eval_config)
  evaluators = []
  seen = set()
  for name in metrics_set:
    if name not in EVAL_METRICS_CLASS_DICT:
      raise ValueError(
          'eval_config.metrics_set: metric {!r} is not supported. Supported values: {}.'.format(
              name, ', '.join(sorted(EVAL_METRICS_CLASS_DICT))))
    if name in seen:
      continue
    seen.add(name)
    evaluators.append(EVAL_METRICS_CLASS_DICT[name](categories,
                                                    **evaluator_options.get(name, {})))
  return evaluators


def evaluator_options_from_eval_config(eval_config):
  """Per-metrics_set kwargs from the eval config (TF OD API function of that name)."""
  per_category = bool(_eval_field(eval_config, 'include_metrics_per_category'))
  all_per_category = bool(_eval_field(eval_config, 'all_metrics_per_category'))
  return {
      'coco_detection_metrics': {
          'include_metrics_per_category': per_category,
          'all_metrics_per_category': all_per_category,
          'skip_predictions_for_unlabeled_class': bool(
              _eval_field(eval_config, 'skip_predictions_for_unlabeled_class')),
      },
      'coco_mask_metrics': {
          'include_metrics_per_category': per_category,
          'all_metrics_per_category': all_per_category,
      },
  }


def category_index_from_configs(configs, num_classes):
  """{id: {'id', 'name'}} from the eval input's `label_map_path`, or 'class_<id>' names."""
  eval_input_config = configs.get('eval_input_config') if configs else None
  if eval_input_config is None and configs and configs.get('eval_input_configs'):
    eval_input_config = configs['eval_input_configs'][0]
  label_map_path = getattr(eval_input_config, 'label_map_path', '') if eval_input_config else ''
  if label_map_path:
    from object_detection.utils import label_map_util  # pylint: disable=g-import-not-at-top
    return label_map_util.create_category_index_from_labelmap(label_map_path)
  logging.warning('eval_input_reader.label_map_path is empty: categories are named class_<id>.')
  return {i: {'id': i, 'name': 'class_%d' % i} for i in range(1, num_classes + 1)}


# Only these reach the traced function: the original image and original-resolution masks vary in
# size from image to image and would retrace it for every batch.
_MODEL_FEATURE_KEYS = (_IN.image, _IN.true_image_shape)
_MODEL_LABEL_KEYS = (_IN.num_groundtruth_boxes, _IN.groundtruth_boxes, _IN.groundtruth_classes,
                     _IN.groundtruth_weights, _IN.groundtruth_is_crowd,
                     _IN.groundtruth_instance_masks, _IN.groundtruth_labeled_classes)


def _make_compute_fn(detection_model, add_regularization_loss=True, jit_compile=False):
  """features, labels -> (detections dict, losses dict).

  jit_compile: one XLA computation for predict, losses and postprocess. The ground truth then keeps
  its padding rows (weight 0; the losses are unchanged), as the TF OD API's eval on TPU does.
  """
  def compute(features, labels):
    if labels[_IN.groundtruth_boxes].shape[0] is None:
      raise ValueError('The eval dataset must have a static batch size '
                       '(drop_remainder or a known batch_size).')
    prediction_dict, losses = train_step.predict_and_compute_losses(
        detection_model, features, labels, add_regularization_loss,
        unpad_groundtruth_tensors=not jit_compile)
    detections = detection_model.postprocess(prediction_dict, features[_IN.true_image_shape])
    return detections, losses
  # Traced with the concrete shapes of each batch (the per-image ground-truth lists need a static
  # batch size); a final partial batch costs one extra trace.
  fn = tf.function(compute, reduce_retracing=False, jit_compile=jit_compile or None)

  def call(features, labels):
    return fn({k: features[k] for k in _MODEL_FEATURE_KEYS if k in features},
              {k: labels[k] for k in _MODEL_LABEL_KEYS if k in labels})
  return call


def _to_str(value):
  if isinstance(value, bytes):
    return value.decode('utf-8', errors='replace')
  return str(value)


def image_id_of(features, i, counter):
  """The COCO image id of batch element i: its `source_id` (str), else its `key`, else
  'image_<counter>' for records without either."""
  for key in (_IN.source_id, _IN.key):
    if key in features:
      value = _to_str(features[key][i].numpy())
      if value:
        return value
  return 'image_%d' % counter


def groundtruth_for_image(labels, i, height, width, needs_masks, image_id):
  """Numpy ground truth of batch element i at its original resolution, for the COCO evaluators.

  Args:
    labels: eval labels of `inputs.eval_input` (padded per-box fields, normalized boxes).
    i: batch index; height, width: the image's original size in pixels.
    needs_masks: also return `original_groundtruth_instance_masks` cropped to [n, height, width].
    image_id: named in the error message.

  Returns:
    dict: groundtruth_boxes float64 [n, 4] absolute pixels (ymin, xmin, ymax, xmax),
    groundtruth_classes int64 [n] label-map ids, and when present groundtruth_is_crowd bool [n],
    groundtruth_instance_masks uint8 [n, height, width], groundtruth_area float64 [n].

  Raises:
    ValueError: masks needed but the labels have none (load_instance_masks is off).
  """
  n = int(labels[_IN.num_groundtruth_boxes][i])
  boxes = labels[_IN.groundtruth_boxes][i, :n].numpy().astype(np.float64)
  boxes = boxes * np.array([height, width, height, width], np.float64)
  classes_one_hot = labels[_IN.groundtruth_classes][i, :n].numpy()
  classes = (np.argmax(classes_one_hot, axis=1).astype(np.int64) + fields.LABEL_ID_OFFSET
             if n else np.zeros(0, np.int64))
  gt = {_IN.groundtruth_boxes: boxes, _IN.groundtruth_classes: classes}
  if _IN.groundtruth_is_crowd in labels:
    gt[_IN.groundtruth_is_crowd] = labels[_IN.groundtruth_is_crowd][i, :n].numpy().astype(bool)
  masks = None
  if needs_masks:
    if inputs.ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS not in labels:
      raise ValueError(
          'eval_config.metrics_set contains coco_mask_metrics but the eval labels have no '
          '"original_groundtruth_instance_masks" (image {}): set load_instance_masks: true in '
          'eval_input_reader.'.format(image_id))
    masks = labels[inputs.ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS][i, :n, :height, :width].numpy()
    masks = (masks > 0).astype(np.uint8)
    gt[_IN.groundtruth_instance_masks] = masks
  if _IN.groundtruth_area in labels:
    area = labels[_IN.groundtruth_area][i, :n].numpy().astype(np.float64)
    # Records without image/object/area decode to 0: COCO would then call every object
    # "small". Use the mask area (COCO's definition) or, without masks, the box area instead.
    missing = area <= 0
    if np.any(missing):
      if masks is not None:
        fallback = masks.reshape(n, -1).sum(axis=1).astype(np.float64)
      else:
        fallback = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
      area = np.where(missing, fallback, area)
    gt[_IN.groundtruth_area] = area
  return gt


def _detections_for_image(detections, i, height, width, needs_masks, image_id):
  """Numpy detections of image i at the original resolution.

  Returns:
    (dict for the evaluators, normalized boxes [n, 4]).
  """
  n = int(detections[_DET.num_detections][i])
  boxes_normalized = detections[_DET.detection_boxes][i, :n]
  boxes = boxes_normalized.numpy().astype(np.float64) * np.array(
      [height, width, height, width], np.float64)
  det = {
      _DET.detection_boxes: boxes,
      _DET.detection_scores: detections[_DET.detection_scores][i, :n].numpy(),
      # The model's classes are 0-based; label-map ids start at 1 (the TF OD API's label_id_offset).
      _DET.detection_classes: (np.round(detections[_DET.detection_classes][i, :n].numpy())
                               .astype(np.int64) + fields.LABEL_ID_OFFSET),
  }
  if needs_masks:
    if _DET.detection_masks not in detections:
      raise ValueError(
          'eval_config.metrics_set contains coco_mask_metrics but the model returns no '
          'detection_masks (image {}): use a Mask R-CNN config (number_of_stages: 3 and '
          'mask_rcnn_box_predictor.predict_instance_masks: true) or remove '
          'coco_mask_metrics.'.format(image_id))
    det[_DET.detection_masks] = ops.reframe_and_threshold_masks(
        detections[_DET.detection_masks][i, :n], boxes_normalized, height, width,
        threshold=ops.MASK_THRESHOLD).numpy()
  return det, boxes_normalized.numpy()


def _write_visualization(summary_writer, index, step, original_image, height, width, det,
                         det_boxes_normalized, gt, gt_boxes_normalized, category_index,
                         eval_config):
  """Writes one side-by-side (prediction | ground truth) image summary."""
  eval_dict = {
      _IN.original_image: original_image[np.newaxis, :height, :width],
      _IN.original_image_spatial_shape: np.array([[height, width]], np.int32),
      _DET.detection_boxes: det_boxes_normalized[np.newaxis].astype(np.float32),
      _DET.detection_classes: det[_DET.detection_classes][np.newaxis].astype(np.float32),
      _DET.detection_scores: det[_DET.detection_scores][np.newaxis].astype(np.float32),
      _IN.groundtruth_boxes: gt_boxes_normalized[np.newaxis].astype(np.float32),
      _IN.groundtruth_classes: gt[_IN.groundtruth_classes][np.newaxis].astype(np.float32),
  }
  if _DET.detection_masks in det:
    eval_dict[_DET.detection_masks] = det[_DET.detection_masks][np.newaxis]
  if _IN.groundtruth_instance_masks in gt:
    eval_dict[_IN.groundtruth_instance_masks] = gt[_IN.groundtruth_instance_masks][np.newaxis]
  images = vutils.draw_side_by_side_evaluation_image(
      eval_dict, category_index,
      max_boxes_to_draw=int(_eval_field(eval_config, 'max_num_boxes_to_visualize')),
      min_score_thresh=float(_eval_field(eval_config, 'min_score_threshold')),
      use_normalized_coordinates=True)
  with summary_writer.as_default():
    tf.summary.image('eval_side_by_side_{}'.format(index), images[0], step=step,
                     max_outputs=1)
  return images[0]


def _get_model_stats(detection_model, image_size):
  key = (id(detection_model), tuple(image_size))
  if key not in _MODEL_STATS_CACHE:
    _MODEL_STATS_CACHE[key] = model_stats_lib.model_stats(detection_model, image_size)
  return _MODEL_STATS_CACHE[key]


def _unique_batches(eval_dataset, state):
  """Yields (features, labels, image ids) until the data ends or starts over.

  eval_config.num_examples is deprecated and ignored, as in the TF2 TF OD API: the whole eval
  dataset is evaluated. A repeating eval input (num_epochs: 0) would loop forever, so iteration
  stops at the first batch made only of images already seen (`state['repeated']` is then True).
  """
  seen_image_ids = set()
  num_images = 0
  for features, labels in eval_dataset:
    batch_ids = [image_id_of(features, i, num_images + i)
                 for i in range(int(features[_IN.original_image_spatial_shape].shape[0]))]
    if batch_ids and all(image_id in seen_image_ids for image_id in batch_ids):
      state['repeated'] = True
      return
    seen_image_ids.update(batch_ids)
    num_images += len(batch_ids)
    yield features, labels, batch_ids


class _LossAverager(object):
  """Per-image average of each loss over the evaluated batches."""

  def __init__(self):
    self.sums = {}
    self.num_images = 0

  def add(self, losses, batch_size):
    for key, value in losses.items():
      self.sums[key] = self.sums.get(key, 0.0) + float(value) * batch_size
    self.num_images += batch_size

  def averages(self):
    return {key: total / self.num_images for key, total in self.sums.items()}


class _SideBySideWriter(object):
  """Writes the first `limit` (prediction | ground truth) images to TensorBoard."""

  def __init__(self, summary_writer, limit, step, category_index, eval_config):
    self.writer = summary_writer
    self.limit = limit if summary_writer is not None else 0
    self.step = step
    self.category_index = category_index
    self.eval_config = eval_config
    self.count = 0
    self.warned_no_original = False

  def maybe_write(self, features, labels, i, height, width, det, det_boxes_normalized, gt):
    if self.count >= self.limit:
      return
    if _IN.original_image not in features:
      if not self.warned_no_original:
        logging.warning('No original_image in the eval features: side-by-side images are '
                        'skipped (set eval_config.retain_original_images: true).')
        self.warned_no_original = True
      return
    n_gt = gt[_IN.groundtruth_boxes].shape[0]
    _write_visualization(
        self.writer, self.count, self.step, features[_IN.original_image][i].numpy(),
        height, width, det, det_boxes_normalized, gt,
        labels[_IN.groundtruth_boxes][i, :n_gt].numpy(), self.category_index, self.eval_config)
    self.count += 1


def _write_summaries(summary_writer, metrics, step, model_stats=None):
  """Scalars for every metric, and the model's complexity lines as text."""
  with summary_writer.as_default():
    for key, value in metrics.items():
      tf.summary.scalar(key, value, step=step)
    if model_stats:
      lines = model_stats_lib.complexity_lines(model_stats)
      tf.summary.text('model_complexity', '\n\n'.join(lines), step=step)
  summary_writer.flush()


def _write_metrics_json(model_dir, record):
  """Writes model_dir/eval/metrics_<step>.json aside and renames it (a kill leaves no half file)."""
  eval_dir = os.path.join(model_dir, 'eval')
  tf.io.gfile.makedirs(eval_dir)
  path = os.path.join(eval_dir, 'metrics_{}.json'.format(record['global_step']))
  with tf.io.gfile.GFile(path + '.tmp', 'w') as f:
    json.dump(record, f, indent=2, sort_keys=True)
  tf.io.gfile.rename(path + '.tmp', path, overwrite=True)
  logging.info('Wrote %s', path)


def check_eval_pass(num_images, repeated, num_duplicates):
  """After one pass over the eval input: an empty input fails; a repeating one is warned about.

  Raises:
    ValueError: no image was evaluated.
  """
  if num_images == 0:
    raise ValueError('The eval dataset is empty: check eval_input_reader input_path.')
  if repeated:
    logging.warning('The eval input repeats (a whole batch of already evaluated images): '
                    'stopped after %d images. Set num_epochs: 1 in eval_input_reader.',
                    num_images)
  if num_duplicates:
    logging.warning('%d eval images had a source_id seen before and were skipped (is the eval '
                    'input repeating? set num_epochs: 1 in eval_input_reader).', num_duplicates)


def _add_loss_regularization(configs):
  """Whether eval losses include the regularization loss: train_config.add_regularization_loss,
  as the TF OD API's eager_eval_loop does (default True)."""
  train_config = (configs or {}).get('train_config')
  return bool(getattr(train_config, 'add_regularization_loss', True))


def evaluate(detection_model, configs, eval_dataset, global_step, summary_writer=None,
             model_dir=None, num_visualizations=None, category_index=None,
             compute_model_stats=True, return_model_stats=False, jit_compile=False):
  """Evaluates a detection model on one pass of the eval dataset.

  Args:
    detection_model: a `core.model.DetectionModel` with restored weights.
    configs: dict from `config_util.get_configs_from_pipeline_file` (uses 'eval_config',
      'eval_input_config' / 'eval_input_configs' for the label map, and
      'train_config.add_regularization_loss' for the eval losses, as the TF OD API).
    eval_dataset: `tf.data.Dataset` of (features, labels) from `inputs.eval_input` with the
      model's preprocess applied (see the `inputs.py` module docstring), static batch size.
    global_step: int or tf.Variable, the checkpoint's training step (summary step).
    summary_writer: optional `tf.summary` writer (normally for `model_dir/eval`); created for
      `model_dir/eval` when None and model_dir is given.
    model_dir: optional training directory; `model_dir/eval/metrics_<step>.json` is written.
    num_visualizations: number of side-by-side images to write; default
      `eval_config.num_visualizations`.
    category_index: optional dict id -> {'id', 'name'}; default from the eval label map.
    compute_model_stats: count parameters and GFLOPs per image (at the size the model runs,
      `utils/model_stats.py`), write them to the JSON ('model_stats') and TensorBoard text.
    jit_compile: XLA-compile the per-batch function (the model must be on its static-shape path,
      `training/xla.py`).

  Returns:
    flat dict: COCO metrics (python floats, keys 'DetectionBoxes_Precision/mAP', ...,
    'DetectionMasks_...') + eval losses averaged over images ('Loss/...'); with
    return_model_stats, a tuple (metrics, model_stats dict or None).

  A semantic segmentation model (`semantic_segmentation_meta_arch.is_semantic_model`) is
  evaluated by `semantic_eval.evaluate` with these arguments (mIoU / mDice / pixel accuracy at
  the original resolution; see that module).

  Raises:
    ValueError: on unknown metrics_set entries, missing masks for coco_mask_metrics, or an
      empty eval dataset.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection.meta_architectures import semantic_segmentation_meta_arch
  # pylint: enable=g-import-not-at-top
  if semantic_segmentation_meta_arch.is_semantic_model(detection_model):
    from object_detection import semantic_eval  # pylint: disable=g-import-not-at-top
    return semantic_eval.evaluate(
        detection_model, configs, eval_dataset, global_step, summary_writer=summary_writer,
        model_dir=model_dir, num_visualizations=num_visualizations,
        category_index=category_index, compute_model_stats=compute_model_stats,
        return_model_stats=return_model_stats, jit_compile=jit_compile)
  eval_config = configs['eval_config']
  step = int(global_step.numpy()) if hasattr(global_step, 'numpy') else int(global_step)
  if category_index is None:
    category_index = category_index_from_configs(configs, int(detection_model.num_classes))
  evaluators = get_evaluators(eval_config, list(category_index.values()))
  needs_masks = any(isinstance(e, coco_evaluation.CocoMaskEvaluator) for e in evaluators)
  if num_visualizations is None:
    num_visualizations = int(_eval_field(eval_config, 'num_visualizations'))
  if summary_writer is None and model_dir:
    summary_writer = tf.summary.create_file_writer(os.path.join(model_dir, 'eval'))

  compute_fn = _make_compute_fn(detection_model, _add_loss_regularization(configs), jit_compile)
  losses = _LossAverager()
  side_by_side = _SideBySideWriter(summary_writer, num_visualizations, step, category_index,
                                   eval_config)
  num_images = 0
  first_image_size = None
  start = time.time()
  state = {'repeated': False}
  for batch_index, (features, labels, batch_ids) in enumerate(
      _unique_batches(eval_dataset, state)):
    detections, batch_losses = compute_fn(features, labels)
    losses.add(batch_losses, len(batch_ids))
    original_shapes = features[_IN.original_image_spatial_shape].numpy()
    for i, image_id in enumerate(batch_ids):
      height, width = int(original_shapes[i][0]), int(original_shapes[i][1])
      first_image_size = first_image_size or (height, width)
      gt = groundtruth_for_image(labels, i, height, width, needs_masks, image_id)
      det, det_boxes_normalized = _detections_for_image(detections, i, height, width,
                                                        needs_masks, image_id)
      for evaluator in evaluators:
        evaluator.add_single_ground_truth_image_info(image_id, gt)
        evaluator.add_single_detected_image_info(image_id, det)
      num_images += 1
      side_by_side.maybe_write(features, labels, i, height, width, det, det_boxes_normalized, gt)
    if batch_index % 10 == 0:
      logging.info('Finished eval step %d (%d images, %.1f s).', batch_index, num_images,
                   time.time() - start)
  num_duplicates = max(getattr(e, 'num_skipped_duplicate_images', 0) for e in evaluators)
  check_eval_pass(num_images, state['repeated'], num_duplicates)
  metrics = {}
  for evaluator in evaluators:
    metrics.update(evaluator.evaluate())
    evaluator.clear()
  metrics.update(losses.averages())

  stats = None
  if compute_model_stats:
    stats = _get_model_stats(detection_model, first_image_size)
  if summary_writer is not None:
    _write_summaries(summary_writer, metrics, step, stats)
  # The entry points print every metric once; the per-metric log lines are for debugging.
  logging.info('Eval metrics at step %d computed on %d images.', step, num_images)
  for key in sorted(metrics):
    logging.debug('\t+ %s: %f', key, metrics[key])
  if model_dir:
    record = {'global_step': step, 'num_images': num_images - num_duplicates,
              'num_skipped_duplicate_images': num_duplicates, 'metrics': metrics}
    if stats is not None:
      record['model_stats'] = stats
    _write_metrics_json(model_dir, record)
  return (metrics, stats) if return_model_stats else metrics
