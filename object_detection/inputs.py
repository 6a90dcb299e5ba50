"""Training and evaluation input pipelines (TF OD API `inputs.py`).

`train_input(...)` / `eval_input(...)` return a batched `tf.data.Dataset` of
`(features, labels)`:

features:
  image: float32 [B, H, W, 3]; `model.preprocess` output when a model is given, else the
    image_resizer output (pixels 0..255). Images of different sizes are padded bottom/right to
    the largest in the batch.
  true_image_shape: int32 [B, 3], the unpadded resized shape of each image.
  original_image_spatial_shape: int32 [B, 2], (H0, W0) of the decoded image.
  source_id, key: string [B].
  original_image (eval, when eval_config.retain_original_images, default true): uint8
    [B, H0max, W0max, 3], the decoded (not resized) images, padded.
labels (M = max_number_of_boxes; rows >= num_groundtruth_boxes are padding with weight 0):
  num_groundtruth_boxes: int32 [B], min(objects kept, M).
  groundtruth_boxes: float32 [B, M, 4] normalized [ymin, xmin, ymax, xmax] relative to the TRUE
    (unpadded) resized image.
  groundtruth_classes: float32 [B, M, num_classes] one-hot without background (label id k ->
    column k - 1).
  groundtruth_weights: float32 [B, M] (image/object/weight, else 1); groundtruth_is_crowd: bool
    [B, M]; groundtruth_area: float32 [B, M] (pixels of the augmented, not resized, image).
  groundtruth_labeled_classes (only when the decoder gives it): float32 [B, num_classes] k-hot.
  groundtruth_instance_masks (when load_instance_masks): uint8 [B, M, H, W] 0/1 at the padded
    model-input resolution.
  original_groundtruth_instance_masks (eval, with masks): uint8 [B, M, H0max, W0max] at the
    original resolution, for COCO mask metrics against unresized ground truth.

Which objects reach the model (as the TF OD API's `transform_input_data`): objects whose box has a
NaN coordinate and objects of class id -1 (a class the decoder could not map: a class text not in
the label map, or a class/label not among its ids) are dropped from every per-box field (boxes,
classes, weights, is_crowd, area, masks, ...), so a label map that lists a subset of the
records' classes trains and evaluates on that subset; the first M of the rest are kept
(`pad_to_max_boxes` warns, naming the record, when it clips). `train_input` / `eval_input` count
the dropped objects per reason and class (`bad_examples.count_dropped_objects`), reported by
`bad_examples.summary_lines()` after each evaluation and at the end of training.

Deliberate differences from the TF OD API's inputs.py (values are equal elsewhere):
  * Boxes are normalized to the true image, not to the padded one (the model re-normalizes them
    when the ground truth is provided); images are padded per batch (`padded_batch`), not to a
    static spatial shape, so keep_aspect_ratio_resizer without padding works with batch > 1.
  * A class id 0, below -1 or above num_classes is an error naming the record; the TF OD API
    one-hots it to an all-zero row and trains on a box of no class. With a label map (whose ids
    config validation keeps <= num_classes) such ids cannot occur: the decoder gives -1 to any
    class/label that is not a label map id, so those objects are dropped and counted instead.
  * Dropping objects also drops their groundtruth_weights / group_of rows; the TF OD API's
    `retain_groundtruth` leaves those unfiltered, which moves non-uniform image/object/weight
    values onto the wrong boxes.
  * original_image is the decoded image (the TF OD API keeps the resized one); evaluation keeps
    a last partial batch whatever drop_remainder says (see `eval_input`).
  * Not produced (Mask R-CNN does not read them): groundtruth_confidences, groundtruth_difficult
    / group_of in the labels, the `hash` feature, keypoints, DensePose, context features,
    multiclass scores (train_config.use_multiclass_scores / merge_multiple_label_boxes are
    refused by config validation), bfloat16 images, training-time original images
    (train_config.retain_original_images).

Memory (tensorflow/models#3610, #9463): masks stay uint8 from the decoder to the batch (4x
smaller than float32), they are resized once by the image resizer (nearest neighbour, the TF OD
API's kernels; zero-padded like the image) and padded to M rows only when batching, and no float
copy of a batch of masks is ever made here. Peak per-batch mask memory is B * M * H * W bytes:
lower max_number_of_boxes if it is too large.
"""

import sys

import tensorflow as tf

from object_detection.builders import dataset_builder
from object_detection.builders import image_resizer_builder
from object_detection.builders import preprocessor_builder
from object_detection.core import preprocessor
from object_detection.core import standard_fields as fields
from object_detection.data_decoders import bad_examples
from object_detection.data_decoders import tf_example_decoder

_F = fields.InputDataFields

ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS = 'original_groundtruth_instance_masks'
_MASK_FIELDS = (_F.groundtruth_instance_masks, ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS)

# Class id a decoder gives an object whose class it cannot map (TF OD API decoder: a class text
# missing from the label map); such objects are dropped.
UNRECOGNIZED_LABEL = -1
_LABEL_OFFSET = 1  # Label-map id k is one-hot column k - 1 (no background column).

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
  """The resize function (`image_resizer_builder.build`) of the model config's image_resizer."""
  return image_resizer_builder.build(_meta_arch_config(model_config).image_resizer)


# ------------------------------------------------------------------------------- per example
def _pad_spatial_to(masks, padded_hw):
  """Zero-pads [N, h, w] masks bottom/right up to padded_hw ([2]); never crops."""
  shape = tf.shape(masks)
  return tf.pad(masks, [[0, 0], [0, tf.maximum(padded_hw[0] - shape[1], 0)],
                        [0, tf.maximum(padded_hw[1] - shape[2], 0)]])


def _retain_groundtruth(tensor_dict, keep):
  """Keeps the rows where `keep` (bool [N]) is true in every per-box field present.

  Unlike the TF OD API's `utils/ops.retain_groundtruth`, groundtruth_weights and
  groundtruth_group_of are filtered too (the TF OD API leaves them unfiltered, which shifts
  per-box weights onto the wrong boxes whenever a box before them is dropped).
  """
  out = dict(tensor_dict)
  indices = tf.where(keep)[:, 0]
  keep_all = tf.reduce_all(keep)
  for key in preprocessor.PER_BOX_FIELDS + (ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS,):
    if key in out:
      # Usually nothing is dropped: skip the copy (whole-image masks are the bulk of an example).
      out[key] = tf.cond(keep_all, lambda t=out[key]: tf.identity(t),
                         lambda t=out[key]: tf.gather(t, indices))
  return out


def filter_groundtruth_with_nan_box_coordinates(tensor_dict):
  """Drops the objects whose box has a NaN coordinate (TF OD API `utils/ops` function).

  Args:
    tensor_dict: decoded example; groundtruth_boxes float32 [N, 4].

  Returns:
    The dict with every per-box field restricted to the boxes without NaN.
  """
  boxes = tensor_dict[_F.groundtruth_boxes]
  return _retain_groundtruth(
      tensor_dict, tf.logical_not(tf.reduce_any(tf.math.is_nan(boxes), axis=1)))


def filter_unrecognized_classes(tensor_dict):
  """Drops the objects of class id UNRECOGNIZED_LABEL (-1) (TF OD API `utils/ops` function).

  -1 is the id a decoder gives a class it cannot map (TF OD API: a class text missing from the
  label map), so a label map listing a subset of the dataset's classes trains on that subset.

  Raises:
    ValueError: groundtruth_classes is missing.
  """
  if _F.groundtruth_classes not in tensor_dict:
    raise ValueError('filter_unrecognized_classes: the tensor dict has no groundtruth_classes.')
  classes = tensor_dict[_F.groundtruth_classes]
  return _retain_groundtruth(
      tensor_dict, tf.greater(classes, tf.cast(UNRECOGNIZED_LABEL, classes.dtype)))


def convert_labeled_classes_to_k_hot(groundtruth_labeled_classes, num_classes,
                                     map_empty_to_ones=False):
  """K-hot float32 [num_classes] of label ids (id k -> column k - 1) (TF OD API function).

  Args:
    groundtruth_labeled_classes: int [K] label-map ids in [1, num_classes].
    num_classes: number of classes without background.
    map_empty_to_ones: an empty list means every class is labeled (all ones).

  Raises:
    tf.errors.InvalidArgumentError (at run time): an id outside [1, num_classes].
  """
  ids = tf.cast(groundtruth_labeled_classes, tf.int32)
  valid = tf.reduce_all(tf.logical_and(ids >= 1, ids <= num_classes))
  with tf.control_dependencies([tf.debugging.Assert(valid, [
      'labeled / image-level class ids', ids, 'outside [1, num_classes=%d].' % num_classes])]):
    k_hot = tf.minimum(tf.reduce_sum(
        tf.one_hot(ids - _LABEL_OFFSET, num_classes, dtype=tf.float32), axis=0), 1.0)
  if map_empty_to_ones:
    k_hot = tf.cond(tf.size(ids) > 0, lambda: k_hot,
                    lambda: tf.ones([num_classes], tf.float32))
  return k_hot


def _k_hot_image_level_classes(tensor_dict, num_classes):
  """groundtruth_labeled_classes / groundtruth_image_classes -> k-hot [num_classes] (TF OD API).

  Raises:
    KeyError: both fields are present (they carry the same information).
  """
  out = dict(tensor_dict)
  if _F.groundtruth_labeled_classes in out and _F.groundtruth_image_classes in out:
    raise KeyError('The decoder gave both groundtruth_labeled_classes and '
                   'groundtruth_image_classes; only one may be set.')
  for key in (_F.groundtruth_labeled_classes, _F.groundtruth_image_classes):
    if key in out:
      ids = out[key]
      ids = tf.boolean_mask(ids, tf.greater(ids, tf.cast(UNRECOGNIZED_LABEL, ids.dtype)))
      out[key] = convert_labeled_classes_to_k_hot(ids, num_classes, map_empty_to_ones=True)
  return out


def transform_input_data(tensor_dict, model_preprocess_fn, image_resizer_fn, num_classes,
                         data_augmentation_fn=None, retain_original_image=False):
  """Filters, augments, resizes and one-hots one decoded example (TF OD API function).

  Steps, in the TF OD API's order: image-level class ids (groundtruth_labeled_classes or
  groundtruth_image_classes) -> k-hot [num_classes] (ids -1 removed, empty -> all ones); objects
  with a NaN box coordinate or class id -1 dropped from every per-box field; original image
  kept (retain_original_image); data augmentation; model preprocessing (or the image resizer)
  of the image; masks resized by `image_resizer_fn` (the TF OD API's kernels); classes
  one-hot; num_groundtruth_boxes set.

  Boxes stay normalized to the TRUE (unpadded) resized image, which for normalized boxes is the
  augmented image (the TF OD API re-normalizes them to the padded image here; this project's
  model does that when the ground truth is provided).

  Args:
    tensor_dict: decoder output (image uint8 [H, W, 3], groundtruth_boxes float32 [N, 4],
      groundtruth_classes int64 [N] label ids, optional masks uint8 [N, H, W], ...).
    model_preprocess_fn: optional fn(float32 [1, H, W, 3]) -> (float32 [1, h, w, 3], int32
      [1, 3]) (`model.preprocess`); None = `image_resizer_fn` only.
    image_resizer_fn: `image_resizer_builder.build(...)` function; resizes the masks (and the
      image when there is no model).
    num_classes: number of classes without background.
    data_augmentation_fn: optional fn(tensor_dict) -> tensor_dict (image float32 0..255).
    retain_original_image: keep `original_image` (uint8, NOT resized: unlike the TF OD API,
      which keeps the resized image) and, with masks, `original_groundtruth_instance_masks`.

  Returns:
    tensor dict with image float32 [h, w, 3], true_image_shape int32 [3], groundtruth_classes
    float32 [N', num_classes] one-hot, masks uint8 [N', h, w] (when present), every per-box
    field restricted to the N' kept objects, num_groundtruth_boxes int32 [] = N'.

  Raises:
    KeyError: both groundtruth_labeled_classes and groundtruth_image_classes are given.
    tf.errors.InvalidArgumentError (at run time): a class id outside [1, num_classes] other than
      -1 (the TF OD API silently one-hots it to an all-zero row); the message gives the
      record's source_id.
  """
  out = _k_hot_image_level_classes(tensor_dict, num_classes)
  # The decoder's names of the class -1 objects serve only the drop count (`_build`).
  out.pop(tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY, None)
  for key, dtype in _PER_BOX_DEFAULTS:
    if key not in out:
      n = tf.shape(out[_F.groundtruth_boxes])[0]
      out[key] = tf.ones([n], dtype) if dtype == tf.float32 else tf.zeros([n], dtype)
  out = filter_groundtruth_with_nan_box_coordinates(out)
  out = filter_unrecognized_classes(out)
  if retain_original_image:
    out[_F.original_image] = tf.cast(out[_F.image], tf.uint8)
    if _F.groundtruth_instance_masks in out:
      out[ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS] = out[_F.groundtruth_instance_masks]
  out[_F.image] = tf.cast(out[_F.image], tf.float32)
  if data_augmentation_fn is not None:
    out = data_augmentation_fn(out)

  image = out[_F.image]
  masks = out.get(_F.groundtruth_instance_masks)
  if model_preprocess_fn is not None:
    preprocessed, true_shapes = model_preprocess_fn(image[tf.newaxis])
    out[_F.image] = preprocessed[0]
    true_shape = tf.cast(true_shapes[0], tf.int32)
    if masks is not None:
      # As the TF OD API: the masks go through the image resizer itself (same size, padding and
      # kernel as the model's image), then are padded to the preprocessed image.
      resized_masks = image_resizer_fn(image, masks)[1]
      out[_F.groundtruth_instance_masks] = _pad_spatial_to(
          resized_masks, tf.shape(preprocessed)[1:3])
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
      'outside [1, num_classes=%d]: raise num_classes, or set the input reader\'s '
      'label_map_path to the classes to train on (objects of the other classes are then '
      'skipped and counted).' % num_classes])]):
    out[_F.groundtruth_classes] = tf.one_hot(classes - _LABEL_OFFSET, num_classes,
                                             dtype=tf.float32)
  out[_F.num_groundtruth_boxes] = tf.shape(out[_F.groundtruth_boxes])[0]
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
                _F.groundtruth_labeled_classes, _F.groundtruth_instance_masks,
                ORIGINAL_GROUNDTRUTH_INSTANCE_MASKS]
  features = {k: tensor_dict[k] for k in feature_keys if k in tensor_dict}
  labels = {k: tensor_dict[k] for k in label_keys if k in tensor_dict}
  return features, labels


def _build(input_config, model_config, model, batch_size, max_boxes, augmentation_options,
           is_eval, input_context, retain_original_image=False):
  num_classes = get_num_classes(model_config)
  resizer = get_image_resizer_fn(model_config)
  preprocess_fn = model.preprocess if model is not None else None
  augment = None
  if augmentation_options:
    augment = lambda d: preprocessor.preprocess(d, augmentation_options)
  # Objects dropped below (NaN box, class -1 such as a class text not in the label map) are
  # counted and reported once per evaluation and at the end of training (bad_examples).
  dropped = bad_examples.new_counter(
      ', '.join(input_config.tf_record_input_reader.input_path),
      label_map_path=getattr(input_config, 'label_map_path', ''))

  def transform(tensor_dict):
    tensor_dict = bad_examples.count_dropped_objects(tensor_dict, dropped)
    # Evaluation always keeps the original-resolution masks (COCO mask metrics compare with
    # them); the original image only when asked.
    out = transform_input_data(tensor_dict, preprocess_fn, resizer, num_classes,
                               data_augmentation_fn=augment,
                               retain_original_image=retain_original_image or is_eval)
    if not retain_original_image:
      out.pop(_F.original_image, None)
    out = pad_to_max_boxes(out, max_boxes, pad_masks=False)
    return _split_features_labels(out, is_eval)

  # Training batches as the input reader's drop_remainder says (TF OD API); evaluation keeps a
  # last partial batch whatever it says, so that every image is evaluated (docs/evaluation.md).
  return dataset_builder.build(input_config, batch_size=batch_size,
                               transform_input_data_fn=transform, input_context=input_context,
                               drop_remainder=False if is_eval else None,
                               padded_shapes_fn=_padded_shapes_fn(max_boxes))


def per_replica_batch_size(config_batch_size, params, input_context):
  """params['batch_size'] or the config's (global) batch size, divided per replica with
  input_context."""
  batch_size = (params or {}).get('batch_size', config_batch_size) or 1
  if input_context is not None:
    batch_size = input_context.get_per_replica_batch_size(batch_size)
  return int(batch_size)


def train_input(train_config, train_input_config, model_config, model=None, params=None,
                input_context=None):
  """Training dataset of (features, labels); see the module docstring.

  A `semantic_segmentation` model config gets `semantic_inputs.train_input` instead.

  Batch size: params['batch_size'] or train_config.batch_size (global; divided per replica with
  input_context). A last partial batch is dropped as train_input_reader.drop_remainder says
  (default true; config validation refuses false, which the training step cannot consume).
  Augmentations: train_config.data_augmentation_options. M = train_config.max_number_of_boxes.

  Raises:
    ValueError: unsupported augmentation step, bad input_path, unreadable file or records without
      masks while load_instance_masks is true (messages name the step / field / file).
  """
  if model_config.WhichOneof('model') == 'semantic_segmentation':
    from object_detection import semantic_inputs  # pylint: disable=g-import-not-at-top
    return semantic_inputs.train_input(train_config, train_input_config, model_config, model,
                                       params, input_context)
  options = [preprocessor_builder.build(step)
             for step in train_config.data_augmentation_options]
  batch_size = per_replica_batch_size(train_config.batch_size, params, input_context)
  return _build(train_input_config, model_config, model, batch_size,
                int(train_config.max_number_of_boxes or 100), options, False, input_context)


def eval_input(eval_config, eval_input_config, model_config, model=None, params=None,
               input_context=None):
  """Evaluation dataset of (features, labels), with original masks; no augmentation.

  A `semantic_segmentation` model config gets `semantic_inputs.eval_input` instead.

  Batch size: params['batch_size'] or eval_config.batch_size. Every image is evaluated: the last
  batch may be smaller even with the input reader's drop_remainder: true (the TF OD API drops it
  and so leaves those images out of the metrics; a kept partial batch is logged with its size).
  features['original_image'] (the decoded image, not resized) is there when
  eval_config.retain_original_images (default true). M = eval_input_config.max_number_of_boxes
  (default 100).
  """
  if model_config.WhichOneof('model') == 'semantic_segmentation':
    from object_detection import semantic_inputs  # pylint: disable=g-import-not-at-top
    return semantic_inputs.eval_input(eval_config, eval_input_config, model_config, model, params,
                                      input_context)
  batch_size = per_replica_batch_size(getattr(eval_config, 'batch_size', 1), params,
                                      input_context)
  max_boxes = int(getattr(eval_input_config, 'max_number_of_boxes', 100) or 100)
  retain = bool(getattr(eval_config, 'retain_original_images', True))
  return _build(eval_input_config, model_config, model, batch_size, max_boxes, [], True,
                input_context, retain_original_image=retain)
