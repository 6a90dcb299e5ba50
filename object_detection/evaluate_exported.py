r"""COCO box + mask (or semantic segmentation) metrics of an exported model on the eval records.

Usage:
  python -m object_detection.evaluate_exported \
      --model=exported/my_model/openvino/model.xml \      # or exported/my_model/saved_model
      --pipeline_config_path=exported/my_model/pipeline.config \
      [--eval_input_path='data/coco_val.record-*'] [--label_map_path=data/label_map.pbtxt] \
      [--metrics_json=path.json] [--max_images=N] [--device=CPU]

The eval records, label map and metrics come from the config's `eval_input_reader` /
`eval_config.metrics_set` (the flags replace the first two), read by the same input pipeline as
checkpoint evaluation (`inputs.eval_input`: objects of classes missing from the label map are
dropped and counted there). Each decoded image (uint8 [H, W, 3] RGB, original size) goes through
`inference_backends` (`backend.detect`); ground truth and detections reach the same evaluators as
`model_main.py`'s evaluation (`metrics/coco_evaluation.py`: 'DetectionBoxes_Precision/mAP',
'DetectionMasks_Precision/mAP@.50IOU', ...), the detections as absolute boxes and image-sized 0/1
masks (`detection_masks_reframed`: the SavedModel's own, or `detection_masks` pasted with
`ops.reframe_and_threshold_masks` for the IR).

A semantic segmentation export (`model { semantic_segmentation }` config) is scored instead with
mIoU / mDice / pixel accuracy and per-class IoU / Dice of its `semantic_classes` against the
original label maps of the semantic eval records: the figures of model_main.py's evaluation of
the exported checkpoint (`semantic_evaluate_exported.py`).

Prints every metric, the number of images and ms/image (mean wall time of `backend.detect`, the
first image excluded as warm-up), and writes them to --metrics_json (default: metrics.json in the
model's folder, i.e. beside model.xml or inside saved_model/).

Exit status 2 with one line for a bad --model path, a missing flag or a config error.
"""

import json
import logging
import math
import os
import sys
import time

if __name__ == '__main__':
  from object_detection.utils import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs.quiet_tensorflow_startup()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import numpy as np

from object_detection import inference_backends
from object_detection.core import standard_fields as fields
from object_detection.utils import config_validation
# pylint: enable=g-import-not-at-top,wrong-import-position

_IN = fields.InputDataFields
_DET = fields.DetectionResultFields
METRICS_JSON = 'metrics.json'


def default_metrics_json(model_path):
  """metrics.json beside model.xml, or inside the SavedModel folder."""
  kind, path = inference_backends.resolve_model_path(model_path)
  folder = os.path.dirname(path) if kind == inference_backends.OPENVINO else path
  return os.path.join(folder, METRICS_JSON)


def load_eval_configs(pipeline_config_path, config_override=None, eval_input_path=None,
                      label_map_path=None):
  """The configs dict with the eval input flags applied, validated for evaluation.

  Raises:
    config_validation.ConfigError: an invalid config, or eval records / label map not found.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection import model_lib_v2
  # pylint: enable=g-import-not-at-top
  configs = model_lib_v2.load_configs(pipeline_config_path, config_override or None, mode='eval',
                                      check_files=False)
  eval_input_config = configs['eval_input_configs'][0]
  if eval_input_path:
    reader = eval_input_config.tf_record_input_reader
    del reader.input_path[:]
    reader.input_path.append(eval_input_path)
  if label_map_path:
    eval_input_config.label_map_path = label_map_path
  configs['eval_input_config'] = eval_input_config
  public = {k: v for k, v in configs.items() if not k.startswith('_')}
  config_validation.check_inputs(public, 'eval')
  return configs


def detections_for_evaluator(detections, height, width, needs_masks):
  """The evaluator's detection dict of one image from `backend.detect` outputs.

  Args:
    detections: dict of numpy arrays of one image (inference_backends).
    height, width: int, the image size in pixels.
    needs_masks: whether the mask evaluator runs.

  Returns:
    dict with detection_boxes float64 [n, 4] absolute ymin, xmin, ymax, xmax; detection_scores
    [n]; detection_classes int64 [n] label-map ids; detection_masks uint8 [n, H, W] 0/1 (when
    needs_masks).

  Raises:
    ValueError: needs_masks but the model returns no masks.
    config_validation.ConfigError: not a detection model's outputs (no num_detections).
  """
  if _DET.num_detections not in detections:
    raise config_validation.ConfigError(
        'The model returns no num_detections (outputs: %s) but the pipeline config is a detection '
        'model: pass the pipeline.config written beside the export (a semantic export needs its '
        'model { semantic_segmentation } config).' % ', '.join(sorted(detections)))
  n = int(detections[_DET.num_detections])
  det = {
      _DET.detection_boxes: detections[_DET.detection_boxes][:n].astype(np.float64) * np.array(
          [height, width, height, width], np.float64),
      _DET.detection_scores: detections[_DET.detection_scores][:n],
      # Exported classes are label-map ids already (the exporter adds the label offset).
      _DET.detection_classes: np.round(detections[_DET.detection_classes][:n]).astype(np.int64),
  }
  if needs_masks:
    if _DET.detection_masks_reframed not in detections:
      raise ValueError('eval_config.metrics_set contains coco_mask_metrics but the model returns '
                       'no detection_masks: evaluate a Mask R-CNN export or remove '
                       'coco_mask_metrics.')
    det[_DET.detection_masks] = detections[_DET.detection_masks_reframed][:n].astype(np.uint8)
  return det


def evaluate_backend(backend, configs, max_images=None, progress=True):
  """Runs `backend` on every eval image and computes the config's COCO metrics.

  Args:
    backend: an `inference_backends` backend (`.detect(uint8 [H, W, 3]) -> dict`).
    configs: configs dict (load_eval_configs).
    max_images: evaluate only the first N images (None: all).
    progress: show a progress bar.

  A `model { semantic_segmentation }` config goes to `semantic_evaluate_exported.evaluate_backend`
  (mIoU / mDice / pixel accuracy of the export's semantic_classes against the original label maps).

  Returns:
    dict: 'metrics' (flat COCO metrics, python floats), 'num_images', 'ms_per_image' (mean
    `detect` wall time without the first image; None for a single image), 'total_seconds'.

  Raises:
    ValueError: an empty eval dataset, or coco_mask_metrics on a model without masks.
  """
  # pylint: disable=g-import-not-at-top
  import copy
  import tqdm
  from object_detection import eval_util
  from object_detection import inputs
  from object_detection.meta_architectures import semantic_segmentation_meta_arch
  from object_detection.metrics import coco_evaluation
  # pylint: enable=g-import-not-at-top
  if semantic_segmentation_meta_arch.is_semantic_config(configs['model']):
    from object_detection import semantic_evaluate_exported  # pylint: disable=g-import-not-at-top
    return semantic_evaluate_exported.evaluate_backend(backend, configs, max_images, progress)
  eval_config = copy.deepcopy(configs['eval_config'])
  eval_config.retain_original_images = True  # the exported model takes the decoded image
  eval_input_config = configs['eval_input_configs'][0]
  category_index = eval_util.category_index_from_configs(
      configs, configs['model'].faster_rcnn.num_classes)
  evaluators = eval_util.get_evaluators(eval_config, list(category_index.values()))
  needs_masks = any(isinstance(e, coco_evaluation.CocoMaskEvaluator) for e in evaluators)
  # model=None: the pipeline only resizes (its resized image is not used), ground truth as in
  # checkpoint evaluation, one image per batch.
  dataset = inputs.eval_input(eval_config, eval_input_config, configs['model'], model=None,
                              params={'batch_size': 1})
  times = []
  num_images = 0
  seen = set()
  start = time.time()
  bar = tqdm.tqdm(desc='evaluate %s' % backend.kind, unit='image', disable=not progress)
  for features, labels in dataset:
    if max_images is not None and num_images >= max_images:
      break
    height, width = [int(v) for v in features[_IN.original_image_spatial_shape][0].numpy()]
    image_id = eval_util.image_id_of(features, 0, num_images)
    if image_id in seen:  # a repeating eval input (num_epochs: 0)
      logging.warning('The eval input repeats: stopped after %d images. Set num_epochs: 1 in '
                      'eval_input_reader.', num_images)
      break
    seen.add(image_id)
    image = features[_IN.original_image][0, :height, :width].numpy()
    tic = time.perf_counter()
    detections = backend.detect(image)
    times.append(time.perf_counter() - tic)
    # pylint: disable=protected-access
    groundtruth = eval_util.groundtruth_for_image(labels, 0, height, width, needs_masks,
                                                   image_id)
    # pylint: enable=protected-access
    det = detections_for_evaluator(detections, height, width, needs_masks)
    for evaluator in evaluators:
      evaluator.add_single_ground_truth_image_info(image_id, groundtruth)
      evaluator.add_single_detected_image_info(image_id, det)
    num_images += 1
    bar.update(1)
  bar.close()
  if num_images == 0:
    raise ValueError('The eval dataset is empty: check eval_input_reader input_path.')
  metrics = {}
  for evaluator in evaluators:
    metrics.update({k: float(v) for k, v in evaluator.evaluate().items()})
  return {'metrics': metrics, 'num_images': num_images,
          'ms_per_image': 1000.0 * float(np.mean(times[1:])) if len(times) > 1 else None,
          'total_seconds': time.time() - start}


def write_metrics_json(path, model_path, kind, result, pipeline_config_path):
  record = dict(result)
  # Strict JSON has no NaN (a semantic class in neither ground truth nor predictions): null.
  record['metrics'] = {k: None if isinstance(v, float) and math.isnan(v) else v
                       for k, v in result['metrics'].items()}
  record.update({'model': os.path.abspath(model_path), 'backend': kind,
                 'pipeline_config_path': os.path.abspath(pipeline_config_path)})
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path + '.tmp', 'w') as f:
    json.dump(record, f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)


def result_lines(result, kind):
  lines = ['%s: %d images, %s ms/image (detect only, first image excluded)' % (
      kind, result['num_images'],
      '%.1f' % result['ms_per_image'] if result['ms_per_image'] is not None else 'n/a')]
  for key in sorted(result['metrics']):
    lines.append('  %s: %.4f' % (key, result['metrics'][key]))
  return lines


FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (only when run as a program: library users such as
  predict define flags of the same names)."""
  flags.DEFINE_string('model', None,
                      'OpenVINO IR model.xml, or a SavedModel folder / export folder.')
  flags.DEFINE_string('pipeline_config_path', None,
                      'Pipeline config (eval_input_reader, label map, eval_config.metrics_set).')
  flags.DEFINE_string('config_override', '', 'Text proto merged over the pipeline config.')
  flags.DEFINE_string('eval_input_path', None,
                      'Eval TFRecord path / glob (replaces the config\'s).')
  flags.DEFINE_string('label_map_path', None,
                      'Label map (replaces eval_input_reader.label_map_path).')
  flags.DEFINE_string('metrics_json', None, 'Where the metrics JSON goes (default: metrics.json in '
                      'the model\'s folder).')
  flags.DEFINE_integer('max_images', None, 'Evaluate only the first N eval images.')
  flags.DEFINE_string('device', 'CPU', 'OpenVINO device for an IR (CPU, GPU, ...).')
  flags.DEFINE_enum('inference_precision', 'f32', ['f32', 'bf16', 'f16', 'default'],
                    'OpenVINO inference precision of an IR. f32 (default) matches the SavedModel; '
                    'default = the plugin\'s choice (bf16 on CPUs with bf16 units: faster, '
                    'scores move by ~1e-2).')


def main(argv):
  del argv
  try:
    for name in ('model', 'pipeline_config_path'):
      if not FLAGS[name].value:
        raise config_validation.UsageError(
            '--%s is required (e.g. --model=exported/my_model/openvino/model.xml '
            '--pipeline_config_path=exported/my_model/pipeline.config).' % name)
    kind, _ = inference_backends.resolve_model_path(FLAGS.model)  # before anything heavy
    configs = load_eval_configs(FLAGS.pipeline_config_path, FLAGS.config_override,
                                FLAGS.eval_input_path, FLAGS.label_map_path)
    backend = inference_backends.load_backend(FLAGS.model, device=FLAGS.device,
                                              inference_precision=FLAGS.inference_precision)
    result = evaluate_backend(backend, configs, FLAGS.max_images)
  except inference_backends.BackendUsageError as e:
    print(config_validation.error_line(e), file=sys.stderr)
    sys.exit(2)
  except config_validation.ConfigError as e:
    print(config_validation.error_line(e, FLAGS.pipeline_config_path), file=sys.stderr)
    sys.exit(2)
  path = FLAGS.metrics_json or default_metrics_json(FLAGS.model)
  write_metrics_json(path, FLAGS.model, kind, result, FLAGS.pipeline_config_path)
  for line in result_lines(result, kind):
    print(line)
  print('Wrote %s' % path)


if __name__ == '__main__':
  define_flags()
  app.run(main)
