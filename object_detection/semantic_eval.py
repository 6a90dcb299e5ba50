"""Evaluation of semantic segmentation models: mIoU / mDice / pixel accuracy at the original
resolution, eval losses, TensorBoard summaries and pictures, metrics JSON.

`eval_util.evaluate` hands a semantic segmentation model
(`semantic_segmentation_meta_arch.is_semantic_model`) to `evaluate` here, so in-training
(`model_main.py --eval_every_n`) and continuous (`--checkpoint_dir`) evaluation, both through
`training/checkpoint_evaluator.py`, score semantic models with the same call, outputs and files
as detection models.

Data flow (batches of `semantic_inputs.eval_input`, see its module docstring):
  features: 'image' float32 [B, h, w, 3] (preprocessed, padded), 'true_image_shape' int32 [B, 3],
    'original_image_spatial_shape' int32 [B, 2], 'source_id' / 'key' string [B], and
    'original_image' uint8 [B, H0max, W0max, 3] (for the pictures);
  labels: 'groundtruth_semantic' uint8 [B, h, w] (model input resolution, 255 = ignore / padding),
    'original_groundtruth_semantic' uint8 [B, H0max, W0max] (original resolution, 255 padding).
  -> one tf.function per batch (optionally XLA-compiled): provide_groundtruth, predict, loss
     (+ regularization and 'Loss/total_loss': `training.train_step.predict_and_compute_losses`),
     postprocess -> 'semantic_probabilities' [B, h, w, C+1]
  -> per image: probabilities cropped to its true_image_shape [:th, :tw], resized BILINEARLY
     (tf.image.resize, half-pixel centres = align_corners False) to the original size (H0, W0),
     argmax over classes (ties -> the lower class id, as np.argmax) -> class ids [H0, W0]
  -> ground truth: 'original_groundtruth_semantic' cropped to [:H0, :W0]
  -> `semantic_segmentation_metrics.SemanticSegmentationEvaluator` (one confusion matrix over all
     images, ignore_label excluded; formulas and references in that module).

So the metrics are those of the label maps at the resolution they were annotated at, whatever
the image resizer does. mmsegmentation does the same (its segmentors' postprocess_result resizes
each image's output, cropped to the unpadded image, bilinearly to the original shape before the
argmax and IoUMetric); it resizes the logits, here the softmax probabilities are resized (the
`semantic_probabilities` the exported model returns), so a pixel between two regions may differ.

Metrics keys: 'SemanticSegmentation/mIoU', '.../mDice', '.../pixel_accuracy', per class
'.../IoU/<name>' and '.../Dice/<name>' (class names from the eval label map; id 0 is
'background'; NaN for a class in neither the ground truth nor the predictions, null in the
metrics JSON), plus the eval losses averaged over images
('Loss/SemanticSegmentationLoss/cross_entropy_loss', ..., 'Loss/total_loss'). Per-class keys are
reported unless eval_config sets include_metrics_per_category: false explicitly (the TF OD API
default false is meant for COCO's 80-class AP tables; per-class IoU / Dice are part of a
semantic evaluation).

Pictures: the first `num_visualizations` images as TensorBoard images 'eval_side_by_side_<i>'
(the names of the detection pictures): original image | prediction | ground truth, the two label
maps coloured with `utils.semantic_palette` (background black, the PASCAL VOC colours, ignored
pixels white), each panel at the original resolution, so the picture is H0 x 3*W0.
"""

import logging
import math
import os
import time

import numpy as np
import tensorflow as tf

from object_detection import eval_util
from object_detection.metrics import semantic_segmentation_metrics as ssm
from object_detection.training import train_step
from object_detection.utils import semantic_palette

IMAGE = 'image'
TRUE_IMAGE_SHAPE = 'true_image_shape'
ORIGINAL_IMAGE = 'original_image'
ORIGINAL_IMAGE_SPATIAL_SHAPE = 'original_image_spatial_shape'
GROUNDTRUTH_SEMANTIC = 'groundtruth_semantic'
ORIGINAL_GROUNDTRUTH_SEMANTIC = 'original_groundtruth_semantic'
SEMANTIC_PROBABILITIES = 'semantic_probabilities'

METRICS_SET = 'semantic_segmentation_metrics'

# eval_util's loop pieces, shared so that both evaluations count, average and write alike.
# pylint: disable=protected-access
_eval_field = eval_util._eval_field
_add_loss_regularization = eval_util._add_loss_regularization
_LossAverager = eval_util._LossAverager
_unique_batches = eval_util._unique_batches
_get_model_stats = eval_util._get_model_stats
_write_summaries = eval_util._write_summaries
_write_metrics_json = eval_util._write_metrics_json
# pylint: enable=protected-access

# Classes resized at a time when the probabilities are brought to the original size: bounds the
# float32 memory of one image to H0 * W0 * _RESIZE_CHUNK * 4 bytes whatever the class count.
_RESIZE_CHUNK = 32


def check_metrics_set(eval_config):
  """Checks that eval_config.metrics_set suits a semantic model.

  Empty -> semantic_segmentation_metrics (the default for these models).

  Raises:
    ValueError: (one line) an entry other than 'semantic_segmentation_metrics' (the COCO box /
      mask metrics need detections, which a semantic model does not produce).
  """
  for index, name in enumerate(getattr(eval_config, 'metrics_set', ())):
    if name != METRICS_SET:
      raise ValueError(
          "eval_config.metrics_set[%d] is '%s', which a semantic_segmentation model cannot "
          "report: use metrics_set: '%s' (or leave metrics_set empty)." % (index, name,
                                                                            METRICS_SET))


def include_metrics_per_category(eval_config):
  """Per-class keys unless eval_config sets include_metrics_per_category: false explicitly."""
  has_field = getattr(eval_config, 'HasField', None)
  try:
    explicit = bool(has_field and has_field('include_metrics_per_category'))
  except ValueError:  # a stand-in object whose HasField does not know the field
    explicit = False
  if explicit:
    return bool(eval_config.include_metrics_per_category)
  return True


def compute_losses_and_probabilities(model, features, labels, add_regularization_loss=True):
  """One batch through provide_groundtruth -> predict -> loss -> postprocess.

  The losses are those of training (`training.train_step.predict_and_compute_losses`, which
  hands semantic labels to `provide_groundtruth(groundtruth_semantic=...)`).

  Args:
    model: a semantic segmentation `DetectionModel` (interface in
      `meta_architectures/semantic_segmentation_meta_arch.py`).
    features: {'image': float32 [B, h, w, 3] preprocessed, 'true_image_shape': int32 [B, 3]}.
    labels: {'groundtruth_semantic': uint8 [B, h, w], 255 = ignore}.
    add_regularization_loss: add the model's regularization losses as
      'Loss/regularization_loss' (train_config.add_regularization_loss, as in training).

  Returns:
    (probabilities float32 [B, h, w, C+1] softmax, dict of float32 scalar losses: the model's
    'Loss/...' terms, optional 'Loss/regularization_loss', and 'Loss/total_loss' = their sum).
  """
  prediction_dict, losses = train_step.predict_and_compute_losses(
      model, features, labels, add_regularization_loss)
  outputs = model.postprocess(prediction_dict, features[TRUE_IMAGE_SHAPE])
  return outputs[SEMANTIC_PROBABILITIES], losses


def _make_compute_fn(model, add_regularization_loss, jit_compile):
  # reduce_retracing: batches of a keep_aspect_ratio_resizer (without padding) differ in size;
  # after a second shape the function is traced once more with unknown sizes, not per batch.
  fn = tf.function(
      lambda features, labels: compute_losses_and_probabilities(
          model, features, labels, add_regularization_loss),
      reduce_retracing=True, jit_compile=jit_compile or None)

  def call(features, labels):
    if GROUNDTRUTH_SEMANTIC not in labels:
      raise ValueError("The eval labels have no 'groundtruth_semantic': a semantic model is "
                       'evaluated on semantic_inputs.eval_input of semantic records '
                       '(dataset_tools/create_semantic_tf_record.py).')
    return fn({IMAGE: features[IMAGE], TRUE_IMAGE_SHAPE: features[TRUE_IMAGE_SHAPE]},
              {GROUNDTRUTH_SEMANTIC: labels[GROUNDTRUTH_SEMANTIC]})
  return call


def class_map_at_size(probabilities, height, width, chunk=_RESIZE_CHUNK):
  """Class ids at (height, width) of per-class probabilities: argmax of their bilinear resize.

  Args:
    probabilities: float [h, w, K] (the true, unpadded part of one image's output).
    height, width: target size (the image's original size).
    chunk: classes resized at a time (memory bound; the result does not depend on it).

  Returns:
    int32 numpy [height, width]: argmax over K of tf.image.resize(probabilities, (height, width),
    'bilinear') (half-pixel centres, no antialiasing; identity when the size is unchanged); ties
    go to the lower class id, as np.argmax / tf.argmax.
  """
  probabilities = tf.convert_to_tensor(probabilities)
  num_classes = int(probabilities.shape[-1])
  same_size = tuple(probabilities.shape[:2]) == (height, width)
  best_value = best_class = None
  for start in range(0, num_classes, chunk):
    part = probabilities[:, :, start:start + chunk]
    if not same_size:
      part = tf.image.resize(part, (height, width), method='bilinear')
    value = tf.reduce_max(part, axis=-1)
    index = tf.argmax(part, axis=-1, output_type=tf.int32) + start
    if best_value is None:
      best_value, best_class = value, index
    else:
      better = value > best_value  # strict: a tie keeps the earlier (lower) class
      best_value = tf.where(better, value, best_value)
      best_class = tf.where(better, index, best_class)
  return best_class.numpy()


def _picture(original_image, prediction, groundtruth, table):
  """uint8 [H0, 3 * W0, 3]: image | coloured prediction | coloured ground truth."""
  return np.concatenate([original_image, semantic_palette.colorize(prediction, table),
                         semantic_palette.colorize(groundtruth, table)], axis=1)


def _legend(prediction, groundtruth, class_names, table, ignore_label):
  ids = sorted(set(np.unique(prediction).tolist()) | set(np.unique(groundtruth).tolist()))
  parts = []
  for class_id in ids:
    if class_id == ignore_label:
      parts.append('ignored %s' % (tuple(int(c) for c in table[class_id]),))
    elif 0 <= class_id < len(class_names):
      parts.append('%s %s' % (class_names[class_id], tuple(int(c) for c in table[class_id])))
  return ('image | prediction | ground truth (original resolution). Colours (RGB): '
          + ', '.join(parts))


class _PictureWriter(object):
  """Writes the first `limit` image | prediction | ground truth pictures to TensorBoard."""

  def __init__(self, summary_writer, limit, step, class_names, ignore_label):
    self.writer = summary_writer
    self.limit = int(limit) if summary_writer is not None else 0
    self.step = step
    self.class_names = class_names
    self.ignore_label = ignore_label
    self.table = semantic_palette.palette(len(class_names) - 1, ignore_label)
    self.count = 0
    self.warned = False

  def maybe_write(self, features, i, prediction, groundtruth):
    if self.count >= self.limit:
      return
    if ORIGINAL_IMAGE not in features:
      if not self.warned:
        logging.warning('No original_image in the eval features: the eval_side_by_side pictures '
                        'are skipped (set eval_config.retain_original_images: true).')
        self.warned = True
      return
    height, width = groundtruth.shape
    image = features[ORIGINAL_IMAGE][i, :height, :width].numpy().astype(np.uint8)
    picture = _picture(image, prediction, groundtruth, self.table)
    with self.writer.as_default():
      tf.summary.image('eval_side_by_side_{}'.format(self.count), picture[np.newaxis],
                       step=self.step, max_outputs=1,
                       description=_legend(prediction, groundtruth, self.class_names, self.table,
                                           self.ignore_label))
    self.count += 1


def _original_groundtruth(labels, i, height, width, image_id):
  if ORIGINAL_GROUNDTRUTH_SEMANTIC not in labels:
    raise ValueError("The eval labels have no 'original_groundtruth_semantic' (image %s): "
                     'evaluate with semantic_inputs.eval_input, which keeps the label map at the '
                     'original resolution.' % image_id)
  return labels[ORIGINAL_GROUNDTRUTH_SEMANTIC][i, :height, :width].numpy()


def _label_map_path(configs):
  eval_input_config = configs.get('eval_input_config') if configs else None
  if eval_input_config is None and configs and configs.get('eval_input_configs'):
    eval_input_config = configs['eval_input_configs'][0]
  return getattr(eval_input_config, 'label_map_path', '') if eval_input_config else ''


def categories_from_configs(configs, num_classes):
  """[{'id', 'name'}] of the eval label map, id 0 included (display_name when set, as
  `eval_util.category_index_from_configs`); 'class_<id>' names without a label map."""
  path = _label_map_path(configs)
  if not path:
    logging.warning('eval_input_reader.label_map_path is empty: classes are named class_<id>.')
    return [{'id': i, 'name': 'class_%d' % i} for i in range(1, num_classes + 1)]
  from object_detection.utils import label_map_util  # pylint: disable=g-import-not-at-top
  return [{'id': item.id,
           'name': item.display_name if item.HasField('display_name') else item.name}
          for item in label_map_util.load_labelmap(path).item]


def _class_names(model, category_index, configs):
  num_classes = int(model.num_classes)
  if category_index is None:
    categories = categories_from_configs(configs, num_classes)
  else:
    categories = list(category_index.values())
  try:
    return ssm.class_names_from_categories(categories, num_classes + 1)
  except ValueError as e:
    raise ValueError('eval_input_reader.label_map_path does not fit the model\'s num_classes %d '
                     '(class ids 1..%d, 0 = background): %s' % (num_classes, num_classes, e)
                     ) from None


def evaluate(model, configs, eval_dataset, global_step, summary_writer=None, model_dir=None,
             num_visualizations=None, category_index=None, compute_model_stats=True,
             return_model_stats=False, jit_compile=False):
  """Evaluates a semantic segmentation model on one pass of the eval dataset.

  Same contract as `eval_util.evaluate` (which calls it for semantic models).

  Args:
    model: a semantic segmentation `DetectionModel` with restored weights (`num_classes` without
      background, `ignore_label`; preprocess / predict / loss / postprocess as in
      `semantic_segmentation_meta_arch`).
    configs: dict from `config_util.get_configs_from_pipeline_file` ('eval_config',
      'eval_input_config(s)' for the label map, 'train_config.add_regularization_loss').
    eval_dataset: `tf.data.Dataset` of (features, labels) of `semantic_inputs.eval_input` (see
      the module docstring).
    global_step: int or tf.Variable, the checkpoint's step (summary step, JSON name).
    summary_writer: optional `tf.summary` writer; created for `model_dir/eval` when None and
      model_dir is given.
    model_dir: optional; `model_dir/eval/metrics_<step>.json` is written (eval_util's writer).
    num_visualizations: pictures to write; default eval_config.num_visualizations.
    category_index: optional {id: {'id', 'name'}}; default from the eval label map (id 0 is
      'background' when the label map does not name it).
    compute_model_stats: parameters and GFLOPs per image at the first eval image's size
      (`utils/model_stats.py`), in the JSON ('model_stats') and TensorBoard text.
    return_model_stats: return (metrics, model_stats or None).
    jit_compile: XLA-compile the per-batch function.

  Returns:
    flat dict of python floats: the 'SemanticSegmentation/...' metrics (module docstring) and the
    eval losses averaged over images ('Loss/...', incl. 'Loss/total_loss'); with
    return_model_stats, a tuple (metrics, model_stats dict or None).

  Raises:
    ValueError (one line): a metrics_set entry other than semantic_segmentation_metrics, a label
      map with ids above num_classes, labels without the semantic keys, a class id outside
      [0, num_classes] in the ground truth (other than ignore_label), or an empty eval dataset.
  """
  eval_config = configs['eval_config']
  check_metrics_set(eval_config)
  step = int(global_step.numpy()) if hasattr(global_step, 'numpy') else int(global_step)
  ignore_label = int(getattr(model, 'ignore_label', ssm.DEFAULT_IGNORE_LABEL))
  class_names = _class_names(model, category_index, configs)
  evaluator = ssm.SemanticSegmentationEvaluator(
      [{'id': i, 'name': name} for i, name in enumerate(class_names)],
      ignore_label=ignore_label, num_classes=len(class_names),
      include_metrics_per_category=include_metrics_per_category(eval_config))
  if num_visualizations is None:
    num_visualizations = int(_eval_field(eval_config, 'num_visualizations'))
  if summary_writer is None and model_dir:
    summary_writer = tf.summary.create_file_writer(os.path.join(model_dir, 'eval'))

  compute_fn = _make_compute_fn(model, _add_loss_regularization(configs), jit_compile)
  losses = _LossAverager()
  pictures = _PictureWriter(summary_writer, num_visualizations, step, class_names, ignore_label)
  num_images = 0
  num_duplicates = 0
  seen = set()
  first_image_size = None
  start = time.time()
  state = {'repeated': False}
  for batch_index, (features, labels, batch_ids) in enumerate(
      _unique_batches(eval_dataset, state)):
    probabilities, batch_losses = compute_fn(features, labels)
    losses.add(batch_losses, len(batch_ids))
    original_shapes = features[ORIGINAL_IMAGE_SPATIAL_SHAPE].numpy()
    true_shapes = features[TRUE_IMAGE_SHAPE].numpy()
    for i, image_id in enumerate(batch_ids):
      num_images += 1
      if image_id in seen:
        num_duplicates += 1
        logging.warning('Eval image %s was already evaluated: skipped.', image_id)
        continue
      seen.add(image_id)
      height, width = int(original_shapes[i][0]), int(original_shapes[i][1])
      first_image_size = first_image_size or (height, width)
      groundtruth = _original_groundtruth(labels, i, height, width, image_id)
      true_height, true_width = int(true_shapes[i][0]), int(true_shapes[i][1])
      prediction = class_map_at_size(probabilities[i, :true_height, :true_width],
                                     height, width)
      evaluator.add_single_ground_truth_image_info(
          image_id, {ssm.GROUNDTRUTH_SEMANTIC: groundtruth})
      evaluator.add_single_detected_image_info(image_id, {ssm.DETECTION_SEMANTIC: prediction})
      pictures.maybe_write(features, i, prediction, groundtruth)
    if batch_index % 10 == 0:
      logging.info('Finished eval step %d (%d images, %.1f s).', batch_index, num_images,
                   time.time() - start)
  eval_util.check_eval_pass(num_images, state['repeated'], num_duplicates)
  metrics = evaluator.evaluate()
  evaluator.clear()
  metrics.update(losses.averages())

  stats = None
  if compute_model_stats:
    stats = _get_model_stats(model, first_image_size)
  if summary_writer is not None:
    _write_summaries(summary_writer, metrics, step, stats)
  logging.info('Semantic segmentation eval metrics at step %d computed on %d images.', step,
               num_images - num_duplicates)
  if model_dir:
    # Strict JSON has no NaN (json.dump would write a bare NaN token): absent classes -> null.
    record = {'global_step': step, 'num_images': num_images - num_duplicates,
              'num_skipped_duplicate_images': num_duplicates,
              'metrics': {key: None if math.isnan(value) else value
                          for key, value in metrics.items()}}
    if stats is not None:
      record['model_stats'] = stats
    _write_metrics_json(model_dir, record)
  return (metrics, stats) if return_model_stats else metrics
