"""Exports a trained detection model as a TF2 SavedModel (TF OD API `exporter_lib_v2` layout).

`export_inference_graph` writes, into `output_directory`:

  checkpoint/       a `tf.train.Checkpoint(model=...)` with the inference weights (the moving
                    averages when the config trained with `use_moving_average`), `ckpt-0`.
  saved_model/      a SavedModel with one signature, `serving_default`, taking `input_tensor`.
  pipeline.config   the pipeline config the model was built from (after `config_override`).

Everything is first written to a temporary sibling directory which is renamed to
`output_directory` only once the export succeeded, so a failed or killed export never leaves a
half-written output: `output_directory` holds the complete previous export or the complete new
one, and the next export deletes (or, for a kill between the two renames, moves back) what a
killed one left beside it.

Input types (`input_tensor` of the signature; batch size 1 as in the TF OD API):
  image_tensor:                 uint8 [1, H, W, 3], RGB.
  float_image_tensor:           float32 [1, H, W, 3], RGB in 0..255 (no normalization).
  encoded_image_string_tensor:  string [1], JPEG / PNG / BMP / GIF bytes.
  tf_example:                   string [1], a serialized tf.train.Example with the image bytes in
                                `image/encoded` (as written by `create_coco_tf_record.py`).

Outputs (all float32 as in the TF OD API, except `detection_masks_reframed`):
  num_detections               [1]
  detection_boxes              [1, max_det, 4] normalized ymin, xmin, ymax, xmax (relative to the
                               input image)
  detection_scores             [1, max_det]
  detection_classes            [1, max_det] label-map ids (1-based)
  detection_multiclass_scores  [1, max_det, num_classes + 1] (column 0 = background)
  detection_anchor_indices     [1, max_det] the proposal each detection came from
  raw_detection_boxes          [1, P, 4] normalized, before non-max suppression
  raw_detection_scores         [1, P, num_classes + 1]
  detection_masks              [1, max_det, mask_h, mask_w] box-relative probabilities (Mask R-CNN)
  detection_masks_reframed     uint8 [1, max_det, H, W] 0/1 masks at the INPUT image size:
                               `detection_masks` pasted into the image
                               (`ops.reframe_box_masks_to_image_masks`, bilinear) and thresholded
                               at > 0.5, so callers do not reframe by hand (Mask R-CNN, on by
                               default; `output_masks_reframed=False` drops it).

A semantic segmentation model (`model { semantic_segmentation }`) is exported in the same layout
by `semantic_exporter.py`: outputs `semantic_classes` int32 [B, H, W] and `semantic_probabilities`
float32 [B, H, W, num_classes + 1] at the input size (see that module).

The SavedModel holds only TensorFlow ops and the model variables: it is loaded with
`tf.saved_model.load(path).signatures['serving_default']` without importing this project, and is
servable by TensorFlow Serving.
"""

import logging
import os
import shutil
import tempfile

import tensorflow as tf

from object_detection.core import standard_fields as fields
from object_detection.utils import config_validation
from object_detection.utils import ops

_DETECTION_FIELDS = fields.DetectionResultFields
INPUT_TENSOR_NAME = 'input_tensor'
SIGNATURE_NAME = 'serving_default'
INPUT_TYPES = ('image_tensor', 'float_image_tensor', 'encoded_image_string_tensor',
               'tf_example')
# The files and folders an export directory holds (anything else there is not ours to replace).
# openvino/: the IR of `exporter_main.py --output_format=openvino` (export_openvino.py).
_EXPORT_ENTRIES = frozenset(['checkpoint', 'saved_model', 'pipeline.config', 'openvino'])
_EXPORTED_FIELDS = frozenset([
    _DETECTION_FIELDS.num_detections, _DETECTION_FIELDS.detection_boxes,
    _DETECTION_FIELDS.detection_scores, _DETECTION_FIELDS.detection_classes,
    _DETECTION_FIELDS.detection_multiclass_scores, _DETECTION_FIELDS.detection_anchor_indices,
    _DETECTION_FIELDS.raw_detection_boxes, _DETECTION_FIELDS.raw_detection_scores,
    _DETECTION_FIELDS.detection_masks])


class ExportError(config_validation.ConfigError, RuntimeError):
  """The export could not be written; the message says why and what to do."""


def _decode_image(encoded_image_string_tensor):
  """Decodes one JPEG / PNG / BMP / GIF string to uint8 [H, W, 3] (first frame of a GIF)."""
  image = tf.io.decode_image(encoded_image_string_tensor, channels=3, dtype=tf.uint8,
                             expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def _decode_tf_example(serialized_example):
  """Parses a serialized tf.train.Example and decodes its `image/encoded` to uint8 [H, W, 3]."""
  parsed = tf.io.parse_single_example(
      serialized_example,
      {fields.TfExampleFields.image_encoded: tf.io.FixedLenFeature([], tf.string)})
  return _decode_image(parsed[fields.TfExampleFields.image_encoded])


class DetectionInferenceModule(tf.Module):
  """Wraps a DetectionModel: input decoding -> preprocess -> predict -> postprocess -> outputs.

  Only the model's variables are tracked (not the Keras layers), so the SavedModel is a plain
  TF graph with variables: nothing from this project is needed to load it.
  """

  def __init__(self, detection_model, output_masks_reframed=True, input_type='image_tensor',
               jit_compile=False):
    """Constructor.

    Args:
      detection_model: a `core.model.DetectionModel` with its variables built and restored.
      output_masks_reframed: whether to add `detection_masks_reframed` (when the model
        predicts masks).
      input_type: recorded in the SavedModel (`loaded.input_type`) for tools such as
        `object_detection.predict`.
      jit_compile: preprocess, predict and postprocess run as one XLA-compiled function (the
        model must be on its static-shape path, `training/xla.py`); XLA compiles it once per
        input image size, when the SavedModel first sees that size. Decoding the input and
        pasting `detection_masks_reframed` at the input size stay outside it.
    """
    super().__init__(name='detection_inference_module')
    # Not tracked: tracking the Keras model would make tf.saved_model.save serialize every
    # layer's call function (slow, and brittle for layers with non-tensor arguments).
    object.__setattr__(self, '_model', detection_model)
    self._output_masks_reframed = output_masks_reframed
    self.model_variables = list(detection_model.variables)
    if not self.model_variables:
      raise ExportError('The detection model has no variables: build and restore it (e.g. with '
                        'checkpoint_utils.restore_for_inference) before exporting.')
    self.input_type = tf.Variable(input_type, trainable=False, dtype=tf.string,
                                  name='input_type')
    self._detect = tf.function(self._detect_impl, jit_compile=True) if jit_compile else (
        self._detect_impl)

  def _detect_impl(self, images):
    """float32 [B, H, W, 3] -> the model's postprocessed detections (0-based classes)."""
    preprocessed_images, true_image_shapes = self._model.preprocess(images)
    prediction_dict = self._model.predict(preprocessed_images, true_image_shapes)
    return self._model.postprocess(prediction_dict, true_image_shapes)

  def _run_inference_on_images(self, images):
    """Runs the model on a batch of images.

    Args:
      images: uint8 or float32 [B, H, W, 3], RGB pixel values in 0..255.

    Returns:
      dict of output tensors, see the module docstring.
    """
    image_shape = tf.shape(images)
    detections = dict(self._detect(tf.cast(images, tf.float32)))
    # postprocess gives 0-based classes; label-map ids start at 1 (as the TF OD API's exporter).
    detections[_DETECTION_FIELDS.detection_classes] = (
        tf.cast(detections[_DETECTION_FIELDS.detection_classes], tf.float32) +
        fields.LABEL_ID_OFFSET)
    # As the TF OD API: every output is float32 (TF Serving clients expect that). Its Mask R-CNN
    # SavedModel also returns the intermediate tensors of the prediction dict (features, proposals);
    # only the detection fields are exported here.
    outputs = {key: tf.cast(value, tf.float32) for key, value in detections.items()
               if value is not None and key in _EXPORTED_FIELDS}
    if self._output_masks_reframed and _DETECTION_FIELDS.detection_masks in outputs:
      # Boxes are normalized to the true (unpadded) resized image, which is the input image
      # rescaled: pasting with them at the input size gives input-sized masks.
      height, width = image_shape[1], image_shape[2]

      def reframe(args):
        box_masks, boxes = args
        return ops.reframe_and_threshold_masks(box_masks, boxes, height, width,
                                               threshold=ops.MASK_THRESHOLD)

      outputs[_DETECTION_FIELDS.detection_masks_reframed] = tf.map_fn(
          reframe,
          (outputs[_DETECTION_FIELDS.detection_masks],
           outputs[_DETECTION_FIELDS.detection_boxes]),
          fn_output_signature=tf.TensorSpec([None, None, None], tf.uint8))
    return outputs

  def get_input_signature(self):
    raise NotImplementedError

  def preprocess_input(self, input_tensor):
    """Turns the signature input into uint8/float32 [B, H, W, 3] images."""
    raise NotImplementedError

  def concrete_function(self):
    """The traced serving function (input `input_tensor`)."""

    @tf.function(input_signature=[self.get_input_signature()])
    def serve(input_tensor):
      return self._run_inference_on_images(self.preprocess_input(input_tensor))

    return serve.get_concrete_function()


class DetectionFromImageModule(DetectionInferenceModule):
  """`image_tensor`: uint8 [1, H, W, 3]."""

  def get_input_signature(self):
    return tf.TensorSpec([1, None, None, 3], tf.uint8, name=INPUT_TENSOR_NAME)

  def preprocess_input(self, input_tensor):
    return input_tensor


class DetectionFromFloatImageModule(DetectionInferenceModule):
  """`float_image_tensor`: float32 [1, H, W, 3] in 0..255."""

  def get_input_signature(self):
    return tf.TensorSpec([1, None, None, 3], tf.float32, name=INPUT_TENSOR_NAME)

  def preprocess_input(self, input_tensor):
    return input_tensor


class DetectionFromEncodedImageModule(DetectionInferenceModule):
  """`encoded_image_string_tensor`: string [1] of JPEG / PNG / BMP / GIF bytes."""

  def get_input_signature(self):
    return tf.TensorSpec([1], tf.string, name=INPUT_TENSOR_NAME)

  def preprocess_input(self, input_tensor):
    return tf.map_fn(_decode_image, input_tensor,
                     fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


class DetectionFromTFExampleModule(DetectionInferenceModule):
  """`tf_example`: string [1] of serialized tf.train.Example (`image/encoded`)."""

  def get_input_signature(self):
    return tf.TensorSpec([1], tf.string, name=INPUT_TENSOR_NAME)

  def preprocess_input(self, input_tensor):
    return tf.map_fn(_decode_tf_example, input_tensor,
                     fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


DETECTION_MODULE_MAP = {
    'image_tensor': DetectionFromImageModule,
    'float_image_tensor': DetectionFromFloatImageModule,
    'encoded_image_string_tensor': DetectionFromEncodedImageModule,
    'tf_example': DetectionFromTFExampleModule,
}


def _check_input_type(input_type):
  if input_type not in DETECTION_MODULE_MAP:
    raise ValueError('Unknown input_type %r: use one of %s.' % (input_type,
                                                                ', '.join(INPUT_TYPES)))


def resolve_checkpoint_path(trained_checkpoint_dir):
  """Returns the checkpoint prefix to restore.

  Args:
    trained_checkpoint_dir: a training `model_dir` (its latest checkpoint), a checkpoint prefix such
      as `model_dir/ckpt-12`, or an exported / TF2 model zoo folder (`checkpoint/ckpt-0` inside);
      see `checkpoint_utils.resolve_checkpoint_path`.

  Returns:
    str checkpoint prefix.

  Raises:
    ExportError: if no checkpoint is found.
  """
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  try:
    return checkpoint_utils.resolve_checkpoint_path(trained_checkpoint_dir)
  except FileNotFoundError as e:
    raise ExportError('--trained_checkpoint_dir: %s' % e) from e


def load_pipeline_config(pipeline_config_path, config_override=''):
  """Reads, overrides and validates a pipeline config.

  Args:
    pipeline_config_path: path of a TrainEvalPipelineConfig text proto.
    config_override: optional TrainEvalPipelineConfig text proto merged on top (as the TF OD API's
      exporter `--config_override`).

  Returns:
    TrainEvalPipelineConfig.

  Raises:
    config_validation.ConfigError: an invalid config (the message names the field).
  """
  # pylint: disable=g-import-not-at-top
  from object_detection import model_lib_v2
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  # The one config loader of training, evaluation and export; export checks the model part only
  # (a zoo config whose augmentation is not implemented here still exports).
  configs = model_lib_v2.load_configs(pipeline_config_path, config_override or None, mode='export')
  public = {k: v for k, v in configs.items() if not k.startswith('_')}
  return config_util.create_pipeline_proto_from_configs(public)


def _tmp_prefix(output_directory):
  return '.%s.tmp-' % os.path.basename(output_directory)


def _old_prefix(output_directory):
  return '.%s.old-' % os.path.basename(output_directory)


def _recover_interrupted_export(output_directory, parent):
  """Undoes what an export killed half-way left next to `output_directory`.

  A kill while writing leaves a `.<name>.tmp-*` folder (deleted); a kill between the two renames of
  `_replace_directory` leaves the previous export as `.<name>.old-*` and no `output_directory`: it
  is moved back, so the folder again holds the complete old export.
  """
  if not os.path.isdir(parent):
    return
  for name in sorted(os.listdir(parent)):
    path = os.path.join(parent, name)
    if name.startswith(_tmp_prefix(output_directory)) and os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
      logging.info('Deleted %s, left by an export that did not finish.', path)
    elif name.startswith(_old_prefix(output_directory)) and os.path.isdir(path):
      if os.path.exists(output_directory):
        shutil.rmtree(path, ignore_errors=True)
      else:
        os.rename(path, output_directory)
        logging.info('Restored the previous export %s from %s (an export was interrupted).',
                     output_directory, path)


def _prepare_output_directory(output_directory):
  """Checks that `output_directory` can be (re)placed by an export; returns it and its parent."""
  output_directory = os.path.abspath(output_directory)
  parent = os.path.dirname(output_directory)
  _recover_interrupted_export(output_directory, parent)
  if os.path.exists(output_directory):
    if not os.path.isdir(output_directory):
      raise ExportError('--output_directory=%s exists and is not a directory.' % output_directory)
    extra = set(os.listdir(output_directory)) - _EXPORT_ENTRIES
    if extra:
      raise ExportError(
          '--output_directory=%s exists and holds files that are not from an export (%s): '
          'choose a new or empty directory.' % (output_directory, ', '.join(sorted(extra))))
  os.makedirs(parent, exist_ok=True)
  return output_directory, parent


def _replace_directory(tmp_directory, output_directory):
  """Moves the finished export into place, replacing a previous export if there is one."""
  old = None
  if os.path.exists(output_directory):
    old = tempfile.mkdtemp(prefix=_old_prefix(output_directory),
                           dir=os.path.dirname(output_directory))
    os.rmdir(old)
    os.rename(output_directory, old)
  os.rename(tmp_directory, output_directory)
  if old is not None:
    shutil.rmtree(old, ignore_errors=True)


def _inference_module(model, input_type, output_masks_reframed, jit_compile):
  """The tf.Module to save: semantic_exporter's for a semantic segmentation model."""
  # pylint: disable=g-import-not-at-top
  from object_detection.meta_architectures import semantic_segmentation_meta_arch
  if semantic_segmentation_meta_arch.is_semantic_model(model):
    from object_detection import semantic_exporter
    return semantic_exporter.inference_module(model, input_type, jit_compile)
  # pylint: enable=g-import-not-at-top
  return DETECTION_MODULE_MAP[input_type](model, output_masks_reframed, input_type=input_type,
                                          jit_compile=jit_compile)


def save_detection_model(detection_model, input_type, output_directory, pipeline_config=None,
                         output_masks_reframed=True, extra_outputs_fn=None, jit_compile=False):
  """Writes checkpoint/, saved_model/ (and pipeline.config) for a built, restored model.

  Args:
    detection_model: a DetectionModel with its variables built and its weights restored.
    input_type: one of INPUT_TYPES.
    output_directory: str, replaced atomically (see the module docstring).
    pipeline_config: optional TrainEvalPipelineConfig, written as pipeline.config.
    output_masks_reframed: whether to add `detection_masks_reframed` (Mask R-CNN only).
    extra_outputs_fn: optional callable(temporary export directory), called once saved_model/ is
      written there and before the folder is moved into place, to add more outputs (e.g.
      `export_openvino.write_ir_into_export`), so they are as atomic as the SavedModel.
    jit_compile: an XLA-compiled serving function (see `DetectionInferenceModule`; not for
      semantic segmentation models).

  Returns:
    str, the absolute output directory.

  Raises:
    ValueError: on an unknown `input_type`.
    ExportError: if `output_directory` holds non-export files, the model has no variables, or
      jit_compile for a semantic segmentation model.
  """
  _check_input_type(input_type)
  output_directory, parent = _prepare_output_directory(output_directory)
  tmp_directory = tempfile.mkdtemp(prefix=_tmp_prefix(output_directory), dir=parent)
  try:
    checkpoint = tf.train.Checkpoint(model=detection_model)
    tf.train.CheckpointManager(checkpoint, os.path.join(tmp_directory, 'checkpoint'),
                               max_to_keep=1).save(checkpoint_number=0)
    module = _inference_module(detection_model, input_type, output_masks_reframed, jit_compile)
    concrete_function = module.concrete_function()
    tf.saved_model.save(module, os.path.join(tmp_directory, 'saved_model'),
                        signatures={SIGNATURE_NAME: concrete_function})
    if pipeline_config is not None:
      _save_pipeline_config(pipeline_config, tmp_directory)
    if extra_outputs_fn is not None:
      extra_outputs_fn(tmp_directory)
    _replace_directory(tmp_directory, output_directory)
  except BaseException:
    shutil.rmtree(tmp_directory, ignore_errors=True)
    raise
  logging.info('Exported a %s SavedModel to %s', input_type, output_directory)
  return output_directory


def _save_pipeline_config(pipeline_config, directory):
  """Writes `directory/pipeline.config` (config_util's writer when available)."""
  try:
    from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
    config_util.save_pipeline_config(pipeline_config, directory)
  except ImportError:
    from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
    with tf.io.gfile.GFile(os.path.join(directory, 'pipeline.config'), 'w') as f:
      f.write(text_format.MessageToString(pipeline_config))


def build_and_restore_model(pipeline_config, trained_checkpoint_dir, use_moving_average=None):
  """Builds the inference model from the config and restores the trained weights.

  Args:
    pipeline_config: TrainEvalPipelineConfig.
    trained_checkpoint_dir: model_dir, checkpoint prefix, or model zoo / exported folder (or its
      `checkpoint/` sub-folder); see `checkpoint_utils.resolve_checkpoint_path`.
    use_moving_average: None = from the config (`train_config.optimizer.use_moving_average`);
      True/False forces it.

  Returns:
    (detection_model, checkpoint_path).

  Raises:
    ExportError: no checkpoint, or one that does not fit the config (missing or mismatched model
      variables, no model variable at all, moving averages asked for but absent); the message
      starts with `--trained_checkpoint_dir=<dir>:`.
  """
  from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  checkpoint_path = resolve_checkpoint_path(trained_checkpoint_dir)
  if use_moving_average is None:
    use_moving_average = checkpoint_utils.uses_moving_average(pipeline_config.train_config)
  detection_model = model_builder.build(pipeline_config.model, is_training=False)
  try:
    checkpoint_utils.restore_for_inference(detection_model, checkpoint_path, use_moving_average)
  except ValueError as e:
    raise ExportError('--trained_checkpoint_dir=%s: %s' % (trained_checkpoint_dir, e)) from e
  logging.info('Restored %s (use_moving_average=%s)', checkpoint_path, use_moving_average)
  return detection_model, checkpoint_path


def export_inference_graph(input_type, pipeline_config, trained_checkpoint_dir, output_directory,
                           output_masks_reframed=True, use_moving_average=None,
                           extra_outputs_fn=None, jit_compile=False):
  """Exports the trained model (TF OD API `exporter_lib_v2.export_inference_graph`).

  Args:
    input_type: one of INPUT_TYPES.
    pipeline_config: TrainEvalPipelineConfig (config_override already merged).
    trained_checkpoint_dir: training model_dir (latest checkpoint; this project's or the TF OD
      API's), a checkpoint prefix, or a model zoo / exported folder (`<folder>/checkpoint/ckpt-0`).
    output_directory: where checkpoint/, saved_model/ and pipeline.config are written.
    output_masks_reframed: whether to add `detection_masks_reframed`.
    use_moving_average: None = from the config; True/False forces it.
    extra_outputs_fn: see `save_detection_model`.
    jit_compile: XLA-compiled serving function; the config must be on the static-shape path.

  Returns:
    str, the absolute output directory.

  Raises:
    ValueError: on an unknown `input_type`.
    ExportError: no checkpoint, or an output directory holding non-export files.
    xla.JitCompileError: jit_compile with a config that is not on the static-shape path.
  """
  _check_input_type(input_type)
  if jit_compile:
    from object_detection.training import xla  # pylint: disable=g-import-not-at-top
    xla.check({'model': pipeline_config.model}, inference=True)
  _prepare_output_directory(output_directory)  # Fail before the (slow) model build.
  detection_model, _ = build_and_restore_model(pipeline_config, trained_checkpoint_dir,
                                               use_moving_average)
  return save_detection_model(detection_model, input_type, output_directory, pipeline_config,
                              output_masks_reframed, extra_outputs_fn, jit_compile)
