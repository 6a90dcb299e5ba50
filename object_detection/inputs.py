"""Training and evaluation input pipelines (TF OD API `inputs.py`, contract D).

`train_input(...)` / `eval_input(...)` return a batched `tf.data.Dataset` of
`(features, labels)`:

features:
  image: float32 [B, H, W, 3]; `model.preprocess` output when a model is given, else the
    image_resizer output (pixels 0..255). Images of different sizes are padded bottom/right to
    the largest in the batch.
  true_image_shape: int32 [B, 3], the unpadded resized shape of each image.
  original_image_spatial_shape: int32 [B, 2], (H0, W0) of the decoded image.
  source_id, key: string [B].
  original_image (eval only): uint8 [B, H0max, W0max, 3], padded decoded images.
labels (M = max_number_of_boxes; rows >= num_groundtruth_boxes are padding with weight 0):
  num_groundtruth_boxes: int32 [B].
  groundtruth_boxes: float32 [B, M, 4] normalized [ymin, xmin, ymax, xmax] relative to the TRUE
    (unpadded) resized image.
  groundtruth_classes: float32 [B, M, num_classes] one-hot without background (label id k ->
    column k - 1).
  groundtruth_weights: float32 [B, M]; groundtruth_is_crowd: bool [B, M];
  groundtruth_area: float32 [B, M] (pixels of the augmented, not resized, image).
  groundtruth_instance_masks (when load_instance_masks): uint8 [B, M, H, W] 0/1 at the padded
    model-input resolution.
  original_groundtruth_instance_masks (eval, with masks): uint8 [B, M, H0max, W0max] at the
    original resolution, for COCO mask metrics against unresized ground truth.

Memory (tensorflow/models#3610, #9463): masks stay uint8 from the decoder to the batch (4x
smaller than float32), they are resized exactly once (nearest neighbour, straight to the model's
true shape, then zero-padded), and no float copy of a batch of masks is ever made here. Peak
per-batch mask memory is B * M * H * W bytes: lower max_number_of_boxes if it is too large.
"""

import sys

import tensorflow as tf

from object_detection.builders import dataset_builder
from object_detection.builders import image_resizer_builder
from object_detection.builders import preprocessor_builder
from object_detection.core import preprocessor
from object_detection.core import standard_fields as fields

_F = fields.InputDataFields

ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS = 'original_groundtruth_instance_masks'
_MASK_FIELDS = (_F.groundtruth_instance_masks, ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS)

# Per-box fields filled in when a decoder does not provide them: (key, dtype); float32 -> ones,
# bool -> False.
_PER_BOX_DEFAULTS = (
    (_F.groundtruth_weights, tf.float32),
    (_F.groundtruth_is_crowd, tf.bool),
    (_F.groundtruth_area, tf.float32),
)


# ------------------------------------------------------------------------------- config helpers
def _meta_arch_config(model_config):
  which = model_config.WhichOneof('model')
  if which is None:
    raise ValueError('model config has no model set (e.g. faster_rcnn { ... }).')
  return getattr(model_config, which)


def get_num_classes(model_config):
  """num_classes of the model config (without background)."""
  return int(_meta_arch_config(model_config).num_classes)


def get_image_resizer_fn(model_config):
  """The contract-C resize function of the model config's image_resizer."""
  return image_resizer_builder.build(_meta_arch_config(model_config).image_resizer)


# ------------------------------------------------------------------------------- per example
def _resize_masks_to(masks, true_shape, padded_hw):
  """Nearest-resizes uint8 [N, H, W] masks to true_shape[:2] and zero-pads to padded_hw."""
  resized = tf.image.resize(masks[..., tf.newaxis], true_shape[:2],
                            method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)[..., 0]
  resized = tf.cast(resized, masks.dtype)
  return tf.pad(resized, [[0, 0], [0, padded_hw[0] - true_shape[0]],
                          [0, padded_hw[1] - true_shape[1]]])


def transform_input_data(tensor_dict, model_preprocess_fn, image_resizer_fn, num_classes,
                         data_augmentation_fn=None, retain_original_image=False):
  """Augments, resizes and one-hots one decoded example (TF OD API `transform_input_data`).

  Args:
    tensor_dict: decoder output (image uint8 [H, W, 3], groundtruth_classes int64 label ids...).
    model_preprocess_fn: optional fn(float32 [1, H, W, 3]) -> (float32 [1, h, w, 3], int32
      [1, 3]) (`model.preprocess`); None = `image_resizer_fn` only.
    image_resizer_fn: contract-C resizer (used when there is no model).
    num_classes: number of classes without background.
    data_augmentation_fn: optional fn(tensor_dict) -> tensor_dict (image float32 0..255).
    retain_original_image: keep `original_image` (uint8) and
      `original_groundtruth_instance_masks` (eval).

  Returns:
    tensor dict with image float32 [h, w, 3], true_image_shape int32 [3], groundtruth_classes
    float32 [N, num_classes] one-hot, masks uint8 [N, h, w] (when present).

  Raises:
    tf.errors.InvalidArgumentError (at run time): a label id outside [1, num_classes]; the message
      gives the record's source_id.
  """
  out = dict(tensor_dict)
  if retain_original_image:
    out[_F.original_image] = tf.cast(out[_F.image], tf.uint8)
    if _F.groundtruth_instance_masks in out:
      out[ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS] = out[_F.groundtruth_instance_masks]
  out[_F.image] = tf.cast(out[_F.image], tf.float32)
  for key, dtype in _PER_BOX_DEFAULTS:
    if key not in out:
      n = tf.shape(out[_F.groundtruth_boxes])[0]
      out[key] = tf.ones([n], dtype) if dtype == tf.float32 else tf.zeros([n], dtype)
  if data_augmentation_fn is not None:
    out = data_augmentation_fn(out)

  image = out[_F.image]
  masks = out.get(_F.groundtruth_instance_masks)
  if model_preprocess_fn is not None:
    preprocessed, true_shapes = model_preprocess_fn(image[tf.newaxis])
    out[_F.image] = preprocessed[0]
    true_shape = tf.cast(true_shapes[0], tf.int32)
    if masks is not None:
      out[_F.groundtruth_instance_masks] = _resize_masks_to(
          masks, true_shape, tf.shape(preprocessed)[1:3])
  else:
    if masks is not None:
      resized, resized_masks, true_shape = image_resizer_fn(image, masks)
      out[_F.groundtruth_instance_masks] = resized_masks
    else:
      resized, true_shape = image_resizer_fn(image)
    out[_F.image] = resized
  out[_F.true_image_shape] = tf.cast(true_shape, tf.int32)

  classes = tf.cast(out[_F.groundtruth_classes], tf.int32)
  valid = tf.reduce_all(tf.logical_and(classes >= 1, classes <= num_classes))
  with tf.control_dependencies([tf.debugging.Assert(valid, [
      'Record image/source_id=', out.get(_F.source_id, ''), 'has label ids', classes,
      'outside [1, num_classes=%d]: fix the label map or num_classes.' % num_classes])]):
    out[_F.groundtruth_classes] = tf.one_hot(classes - 1, num_classes, dtype=tf.float32)
  return out


def _pad_rows(tensor, m):
  """Pads/truncates dim 0 of `tensor` to m rows (zeros)."""
  tensor = tensor[:m]
  pad = [[0, m - tf.shape(tensor)[0]]] + [[0, 0]] * (tensor.shape.rank - 1)
  padded = tf.pad(tensor, pad)
  # tf.pad with a computed amount loses the static row count; the ROI sampler needs it.
  padded.set_shape([m] + tensor.shape.as_list()[1:])
  return padded


def pad_to_max_boxes(tensor_dict, max_number_of_boxes, pad_masks=True):
  """Pads every per-box field to `max_number_of_boxes` rows; sets num_groundtruth_boxes.

  With pad_masks=False the mask fields are only truncated to `max_number_of_boxes` rows (the
  batching pads them, which saves memory per example in flight).

  Examples with more boxes keep the first `max_number_of_boxes` (as the TF OD API) and a warning
  naming the record's source_id is printed, so the truncation is never silent.
  """
  out = dict(tensor_dict)
  m = max_number_of_boxes
  n = tf.shape(out[_F.groundtruth_boxes])[0]

  def warn():
    tf.print('WARNING: record image/source_id=', out.get(_F.source_id, ''), 'has', n,
             'boxes; only the first', m, 'are used (raise max_number_of_boxes).',
             output_stream=sys.stderr)
    return tf.constant(0)
  tf.cond(n > m, warn, lambda: tf.constant(0))
  out[_F.num_groundtruth_boxes] = tf.minimum(n, m)
  for key in preprocessor.PER_BOX_FIELDS + _MASK_FIELDS:
    if key in out:
      if key in _MASK_FIELDS and not pad_masks:
        out[key] = out[key][:m]  # Padded to m rows at batching time (see _padded_shapes_fn).
      else:
        out[key] = _pad_rows(out[key], m)
  return out


def _padded_shapes_fn(max_number_of_boxes):
  """padded_batch shapes: mask rows padded to M, every other dim to the batch maximum.

  Per-example masks stay [N, H, W] (N ~ 7 on COCO) until batching instead of [M, H, W], so the
  examples in flight in the parallel map / batch buffers hold ~M/N times less mask memory.
  """
  def fn(element_spec):
    def shape(key, spec):
      dims = spec.shape.as_list()
      if key in _MASK_FIELDS:
        dims[0] = max_number_of_boxes
      return tf.TensorShape(dims)
    return tuple({k: shape(k, v) for k, v in part.items()} for part in element_spec)
  return fn


def _split_features_labels(tensor_dict, is_eval):
  feature_keys = [_F.image, _F.true_image_shape, _F.original_image_spatial_shape,
                  _F.source_id, _F.key]
  if is_eval:
    feature_keys.append(_F.original_image)
  label_keys = [_F.num_groundtruth_boxes, _F.groundtruth_boxes, _F.groundtruth_classes,
                _F.groundtruth_weights, _F.groundtruth_is_crowd, _F.groundtruth_area,
                _F.groundtruth_instance_masks, ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS]
  features = {k: tensor_dict[k] for k in feature_keys if k in tensor_dict}
  labels = {k: tensor_dict[k] for k in label_keys if k in tensor_dict}
  return features, labels


def _build(input_config, model_config, model, batch_size, max_boxes, augmentation_options,
           is_eval, input_context):
  num_classes = get_num_classes(model_config)
  resizer = get_image_resizer_fn(model_config)
  preprocess_fn = model.preprocess if model is not None else None
  augment = None
  if augmentation_options:
    augment = lambda d: preprocessor.preprocess(d, augmentation_options)

  def transform(tensor_dict):
    out = transform_input_data(tensor_dict, preprocess_fn, resizer, num_classes,
                               data_augmentation_fn=augment, retain_original_image=is_eval)
    out = pad_to_max_boxes(out, max_boxes, pad_masks=False)
    return _split_features_labels(out, is_eval)

  # Training needs a static batch size (TF OD API); evaluation must see every image.
  return dataset_builder.build(input_config, batch_size=batch_size,
                               transform_input_data_fn=transform, input_context=input_context,
                               drop_remainder=not is_eval,
                               padded_shapes_fn=_padded_shapes_fn(max_boxes))


def _batch_size(config_batch_size, params, input_context):
  batch_size = (params or {}).get('batch_size', config_batch_size) or 1
  if input_context is not None:
    batch_size = input_context.get_per_replica_batch_size(batch_size)
  return int(batch_size)


def train_input(train_config, train_input_config, model_config, model=None, params=None,
                input_context=None):
  """Training dataset of (features, labels); see the module docstring.

  Batch size: params['batch_size'] or train_config.batch_size (global; divided per replica with
  input_context). Batches are full (drop_remainder). Augmentations:
  train_config.data_augmentation_options. M = train_config.max_number_of_boxes.

  Raises:
    ValueError: unsupported augmentation step, bad input_path, unreadable file or records without
      masks while load_instance_masks is true (messages name the step / field / file).
  """
  options = [preprocessor_builder.build(step)
             for step in train_config.data_augmentation_options]
  batch_size = _batch_size(train_config.batch_size, params, input_context)
  return _build(train_input_config, model_config, model, batch_size,
                int(train_config.max_number_of_boxes or 100), options, False, input_context)


def eval_input(eval_config, eval_input_config, model_config, model=None, params=None,
               input_context=None):
  """Evaluation dataset of (features, labels), with original images and masks; no augmentation.

  Batch size: params['batch_size'] or eval_config.batch_size; the last batch may be smaller.
  M = eval_input_config.max_number_of_boxes (default 100).
  """
  batch_size = _batch_size(getattr(eval_config, 'batch_size', 1), params, input_context)
  max_boxes = int(getattr(eval_input_config, 'max_number_of_boxes', 100) or 100)
  return _build(eval_input_config, model_config, model, batch_size, max_boxes, [], True,
                input_context)
