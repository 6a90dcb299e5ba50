"""Training and evaluation input pipelines of semantic segmentation models.

The counterpart of `inputs.py` for `model { semantic_segmentation }` configs, on the same reader
(`dataset_builder.build`: shards, sample_1_of_n, shuffling, corrupt-file messages) with the
semantic decoder (`data_decoders/semantic_decoder.py`). `train_input(...)` / `eval_input(...)`
take the arguments of `inputs.train_input` / `inputs.eval_input` and return a batched
`tf.data.Dataset` of `(features, labels)`:

features:
  image: float32 [B, h, w, 3], `model.preprocess` output (image resizer + pixel normalization);
    images of different sizes are padded bottom / right to the largest in the batch.
  true_image_shape: int32 [B, 3], the unpadded resized shape of each image.
  original_image_spatial_shape: int32 [B, 2], (H0, W0) of the decoded image.
  source_id, key: string [B].
  original_image (eval, when eval_config.retain_original_images, default true): uint8
    [B, H0max, W0max, 3], the decoded images, zero padded.
labels:
  groundtruth_semantic: uint8 [B, h, w] class ids at the padded model-input resolution (label
    maps go through the same augmentations as the image and the image resizer with nearest
    neighbour); every pixel outside the image (resizer or batch padding) is `ignore_label`.
  original_groundtruth_semantic (eval): uint8 [B, H0max, W0max], the decoded label maps,
    padded with `ignore_label`, for metrics at the original resolution.

Augmentations (train_config.data_augmentation_options) run the project's preprocessor ops with
the label map as a one-instance mask, so geometric ops move labels and pixels together and never
interpolate labels: random_horizontal_flip, random_vertical_flip, random_rotation90,
random_crop_image, random_image_scale, and the photometric ones (random_adjust_brightness /
contrast / hue / saturation, random_distort_color, random_rgb_to_gray, random_pixel_value_scale,
random_jpeg_quality). Config validation refuses the others (random_pad_image would paint its
border as background).
"""
import tensorflow as tf

from object_detection import inputs
from object_detection.builders import dataset_builder
from object_detection.builders import image_resizer_builder
from object_detection.builders import preprocessor_builder
from object_detection.core import preprocessor
from object_detection.core import standard_fields as fields
from object_detection.data_decoders import semantic_decoder

_F = fields.InputDataFields
GROUNDTRUTH_SEMANTIC = semantic_decoder.GROUNDTRUTH_SEMANTIC
ORIGINAL_GROUNDTRUTH_SEMANTIC = 'original_groundtruth_semantic'

# The augmentation steps that keep labels and pixels aligned (module docstring).
SUPPORTED_AUGMENTATIONS = (
    'random_horizontal_flip', 'random_vertical_flip', 'random_rotation90', 'random_crop_image',
    'random_image_scale', 'random_adjust_brightness', 'random_adjust_contrast',
    'random_adjust_hue', 'random_adjust_saturation', 'random_distort_color',
    'random_rgb_to_gray', 'random_pixel_value_scale', 'random_jpeg_quality')


def _semantic_config(model_config):
  return model_config.semantic_segmentation


def _augment(image, labels, augmentation_options):
  """Runs the preprocessor ops on (image, label map as one mask); see the module docstring."""
  out = preprocessor.preprocess(
      {_F.image: image, _F.groundtruth_instance_masks: labels[tf.newaxis]}, augmentation_options)
  return out[_F.image], out[_F.groundtruth_instance_masks][0]


def transform(decoded, model_preprocess_fn, image_resizer_fn, ignore_label,
              augmentation_options=None, is_eval=False, retain_original_image=False):
  """One decoded example -> the per-example features and labels (before batching).

  Args:
    decoded: `SemanticSegmentationDecoder.decode` output (image uint8 [H, W, 3],
      groundtruth_semantic uint8 [H, W], ...).
    model_preprocess_fn: `model.preprocess` (float32 [1, H, W, 3] -> ([1, h, w, 3], [1, 3])).
    image_resizer_fn: the model config's `image_resizer_builder.build` function (resizes the
      label map exactly as the model resizes the image, nearest neighbour).
    ignore_label: value given to every pixel outside the image.
    augmentation_options: list of (op, kwargs) from `preprocessor_builder.build`, or None.
    is_eval: also keep the original label map (and the original image with
      retain_original_image).

  Returns:
    (features dict, labels dict) of one example (module docstring, without the batch dim).
  """
  labels = decoded[GROUNDTRUTH_SEMANTIC]
  image = tf.cast(decoded[_F.image], tf.float32)
  if augmentation_options:
    image, labels = _augment(image, labels, augmentation_options)
  preprocessed, true_shapes = model_preprocess_fn(image[tf.newaxis])
  # A second plane of ones marks the image inside the resizer's padding (which is 0, a class).
  planes = tf.stack([labels, tf.ones_like(labels)])
  resized = image_resizer_fn(image, planes)[1]
  resized_labels = tf.where(resized[1] > 0, resized[0], tf.cast(ignore_label, tf.uint8))
  padded_hw = tf.shape(preprocessed)[1:3]
  shape = tf.shape(resized_labels)
  resized_labels = tf.pad(resized_labels, [[0, tf.maximum(padded_hw[0] - shape[0], 0)],
                                           [0, tf.maximum(padded_hw[1] - shape[1], 0)]],
                          constant_values=tf.cast(ignore_label, tf.uint8))
  features = {
      _F.image: preprocessed[0],
      _F.true_image_shape: tf.cast(true_shapes[0], tf.int32),
      _F.original_image_spatial_shape: decoded[semantic_decoder.ORIGINAL_IMAGE_SPATIAL_SHAPE],
      _F.source_id: decoded[semantic_decoder.SOURCE_ID],
      _F.key: decoded[semantic_decoder.KEY],
  }
  out_labels = {GROUNDTRUTH_SEMANTIC: resized_labels}
  if is_eval:
    out_labels[ORIGINAL_GROUNDTRUTH_SEMANTIC] = decoded[GROUNDTRUTH_SEMANTIC]
    if retain_original_image:
      features[_F.original_image] = decoded[_F.image]
  return features, out_labels


def _padding_values(element_spec, ignore_label):
  """padded_batch padding: ignore_label for label maps, 0 (or '') for the rest."""
  def value(key, spec):
    if key in (GROUNDTRUTH_SEMANTIC, ORIGINAL_GROUNDTRUTH_SEMANTIC):
      return tf.constant(ignore_label, spec.dtype)
    return tf.constant('' if spec.dtype == tf.string else 0, spec.dtype)
  features_spec, labels_spec = element_spec
  return ({k: value(k, s) for k, s in features_spec.items()},
          {k: value(k, s) for k, s in labels_spec.items()})


def check_records(input_config, reader_name):
  """Decodes the first record of each input file eagerly (a record of another kind fails here, in
  one line naming the file, instead of inside training).

  Raises:
    dataset_builder.InputConfigError: a file's first record is not a semantic segmentation
      record (e.g. a create_coco_tf_record.py instance record).
  """
  decoder = semantic_decoder.SemanticSegmentationDecoder()
  files = dataset_builder.list_input_files(list(input_config.tf_record_input_reader.input_path))
  for path in files:
    for serialized in tf.data.TFRecordDataset(path).take(1):
      try:
        decoder.decode(serialized)
      except semantic_decoder.SemanticRecordError as e:
        raise dataset_builder.InputConfigError(
            '%s.tf_record_input_reader.input_path: %s: %s' % (reader_name, path, e)) from None


def _build(input_config, model_config, model, batch_size, augmentation_options, is_eval,
           input_context, retain_original_image=False):
  config = _semantic_config(model_config)
  if model is None:
    from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
    model = model_builder.build(model_config, is_training=not is_eval)
  resizer = image_resizer_builder.build(config.image_resizer)
  ignore_label = int(config.ignore_label)
  check_records(input_config, 'eval_input_reader' if is_eval else 'train_input_reader')

  def transform_fn(decoded):
    return transform(decoded, model.preprocess, resizer, ignore_label, augmentation_options,
                     is_eval, retain_original_image)

  def padding_values_fn(element_spec):
    return _padding_values(element_spec, ignore_label)

  return dataset_builder.build(
      input_config, batch_size=batch_size, transform_input_data_fn=transform_fn,
      input_context=input_context, drop_remainder=False if is_eval else None,
      decoder=semantic_decoder.SemanticSegmentationDecoder(),
      padding_values_fn=padding_values_fn)


def train_input(train_config, train_input_config, model_config, model=None, params=None,
                input_context=None):
  """Training dataset of (features, labels); see the module docstring.

  Raises:
    dataset_builder.InputConfigError: bad input_path, unreadable file, or records that are not
      semantic segmentation records (messages name the file).
  """
  options = [preprocessor_builder.build(step)
             for step in train_config.data_augmentation_options]
  batch_size = inputs.per_replica_batch_size(train_config.batch_size, params,
                                            input_context)
  return _build(train_input_config, model_config, model, batch_size, options, False,
                input_context)


def eval_input(eval_config, eval_input_config, model_config, model=None, params=None,
               input_context=None):
  """Evaluation dataset of (features, labels) with the original label maps; no augmentation.
  Every image is evaluated (a last partial batch is kept)."""
  batch_size = inputs.per_replica_batch_size(getattr(eval_config, 'batch_size', 1), params,
                                            input_context)
  retain = bool(getattr(eval_config, 'retain_original_images', True))
  return _build(eval_input_config, model_config, model, batch_size, [], True, input_context,
                retain_original_image=retain)
