"""mIoU / mDice / pixel accuracy of an exported SEMANTIC segmentation model on the eval records.

`evaluate_exported.py` hands a `model { semantic_segmentation }` config
(`semantic_segmentation_meta_arch.is_semantic_config`) to `evaluate_backend` here:

  eval records (eval_input_reader: input_path, sample_1_of_n_examples, num_epochs, ... read by
  `dataset_builder.build` with `data_decoders/semantic_decoder.py`, one image at a time, no
  resizing) -> image uint8 [H, W, 3] at its ORIGINAL size and label map uint8 [H, W]
  -> `backend.detect(image)` (`inference_backends`: the SavedModel or the OpenVINO IR written by
     `semantic_exporter.py`), whose 'semantic_classes' int32 [H, W] is the argmax of the model's
     probabilities cropped to the true image and resized bilinearly to the input size
  -> `metrics/semantic_segmentation_metrics.SemanticSegmentationEvaluator` (class names from the
     eval label map, id 0 'background'; ignore label = model.semantic_segmentation.ignore_label;
     per-class keys unless eval_config.include_metrics_per_category: false is set explicitly).

This is what checkpoint evaluation does (`semantic_eval.evaluate`: the same crop, bilinear resize
to the original size with `tf.image.resize` and argmax, the same evaluator and class names), so an
export of a checkpoint gives model_main.py's figures for that checkpoint up to float rounding
(pixels whose two best probabilities tie within ~1e-6 may flip). The eval losses of
model_main.py are not reported: the export has no loss.
"""

import logging
import time

import numpy as np

from object_detection.utils import config_validation

SEMANTIC_CLASSES = 'semantic_classes'  # semantic_exporter.SEMANTIC_CLASSES


class SemanticEvalError(config_validation.ConfigError):
  """Records, label map or model that cannot be evaluated together (one-line message)."""


def _evaluator(configs):
  """The SemanticSegmentationEvaluator of the config (see the module docstring)."""
  # pylint: disable=g-import-not-at-top
  from object_detection import semantic_eval
  from object_detection.metrics import semantic_segmentation_metrics as ssm
  # pylint: enable=g-import-not-at-top
  eval_config = configs['eval_config']
  model_config = configs['model'].semantic_segmentation
  num_classes = int(model_config.num_classes)
  try:
    semantic_eval.check_metrics_set(eval_config)
    names = ssm.class_names_from_categories(
        semantic_eval.categories_from_configs(configs, num_classes), num_classes + 1)
    return ssm.SemanticSegmentationEvaluator(
        [{'id': i, 'name': name} for i, name in enumerate(names)],
        ignore_label=int(model_config.ignore_label), num_classes=len(names),
        include_metrics_per_category=semantic_eval.include_metrics_per_category(eval_config))
  except ValueError as e:
    raise SemanticEvalError('%s (model.semantic_segmentation.num_classes %d, '
                            'eval_input_reader.label_map_path)' % (e, num_classes)) from None


def eval_images(configs):
  """Yields (image_id, image uint8 [H, W, 3], label map uint8 [H, W]) of the eval records.

  Raises:
    SemanticEvalError: input_path matches no file, or a record is not a semantic record.
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from object_detection import semantic_inputs
  from object_detection.builders import dataset_builder
  from object_detection.data_decoders import semantic_decoder
  # pylint: enable=g-import-not-at-top
  reader = configs['eval_input_configs'][0]
  try:
    semantic_inputs.check_records(reader, 'eval_input_reader')
    dataset = dataset_builder.build(reader,
                                    decoder=semantic_decoder.SemanticSegmentationDecoder())
    for count, decoded in enumerate(dataset):
      image_id = ''
      for key in (semantic_decoder.SOURCE_ID, semantic_decoder.KEY):
        image_id = image_id or decoded[key].numpy().decode('utf-8', 'replace')
      yield (image_id or 'image_%d' % count, decoded[semantic_decoder.IMAGE].numpy(),
             decoded[semantic_decoder.GROUNDTRUTH_SEMANTIC].numpy())
  except dataset_builder.InputConfigError as e:
    raise SemanticEvalError(str(e)) from None
  except tf.errors.InvalidArgumentError as e:
    raise SemanticEvalError('eval_input_reader.tf_record_input_reader.input_path: %s'
                            % semantic_decoder.error_line(e)) from None


def evaluate_backend(backend, configs, max_images=None, progress=True):
  """Runs `backend` on every eval image and scores its 'semantic_classes'.

  Args:
    backend: an `inference_backends` backend of a semantic export (`.detect(uint8 [H, W, 3])`
      -> {'semantic_classes': int32 [H, W], 'semantic_probabilities': float32 [H, W, K], ...}).
    configs: configs dict (evaluate_exported.load_eval_configs) of a semantic_segmentation model.
    max_images: evaluate only the first N images (None: all).
    progress: show a progress bar.

  Returns:
    dict as evaluate_exported.evaluate_backend: 'metrics' ('SemanticSegmentation/mIoU',
    '.../mDice', '.../pixel_accuracy', '.../IoU/<name>', '.../Dice/<name>'; python floats, NaN
    for a class in neither ground truth nor predictions), 'num_images', 'ms_per_image' (mean
    `detect` wall time without the first image; None for one image), 'total_seconds'.

  Raises:
    SemanticEvalError (a ConfigError): the model returns no semantic_classes (not a semantic
      export) or a map of another size, a class id outside the label map's range (model or
      ground truth), an empty eval dataset, or eval records / label map that do not fit.
  """
  import tqdm  # pylint: disable=g-import-not-at-top
  evaluator = _evaluator(configs)
  times = []
  seen = set()
  start = time.time()
  bar = tqdm.tqdm(desc='evaluate %s' % backend.kind, unit='image', disable=not progress)
  try:
    for image_id, image, groundtruth in eval_images(configs):
      if max_images is not None and evaluator.num_images >= max_images:
        break
      if image_id in seen:
        logging.warning('The eval input repeats (image %s): stopped after %d images. Set '
                        'num_epochs: 1 in eval_input_reader.', image_id, evaluator.num_images)
        break
      seen.add(image_id)
      tic = time.perf_counter()
      outputs = backend.detect(image)
      times.append(time.perf_counter() - tic)
      if SEMANTIC_CLASSES not in outputs:
        raise SemanticEvalError(
            '--model=%s returns no semantic_classes (outputs: %s): the pipeline config is a '
            'semantic_segmentation model, so pass its export (exporter_main.py of that config).'
            % (backend.path, ', '.join(sorted(outputs))))
      classes = np.asarray(outputs[SEMANTIC_CLASSES])
      if classes.shape != groundtruth.shape:
        raise SemanticEvalError(
            '--model=%s: semantic_classes of image %s is %s, expected the image size %s.'
            % (backend.path, image_id, classes.shape, groundtruth.shape))
      try:
        evaluator.add_single_ground_truth_image_info(image_id,
                                                     {'groundtruth_semantic': groundtruth})
        evaluator.add_single_detected_image_info(image_id, {'detection_semantic': classes})
      except ValueError as e:
        raise SemanticEvalError('%s (model.semantic_segmentation.num_classes %d)' % (
            e, configs['model'].semantic_segmentation.num_classes)) from None
      bar.update(1)
  finally:
    bar.close()
  if evaluator.num_images == 0:
    raise SemanticEvalError('The eval dataset is empty: check eval_input_reader input_path.')
  return {'metrics': {k: float(v) for k, v in evaluator.evaluate().items()},
          'num_images': evaluator.num_images,
          'ms_per_image': 1000.0 * float(np.mean(times[1:])) if len(times) > 1 else None,
          'total_seconds': time.time() - start}
