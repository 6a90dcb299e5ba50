"""Runs an exported detection model on one image: a SavedModel or an OpenVINO IR, one interface.

`load_backend(path)` picks the backend from the path:
  * `.../model.xml` (with `model.bin` beside it): an OpenVINO IR written by
    `exporter_main.py --output_format=openvino` or `python -m object_detection.export_openvino`
    (needs the optional `openvino` package: pip install -e ".[openvino]");
  * a folder holding `saved_model.pb`: a SavedModel written by `exporter_main.py` (any input type);
  * an export folder (holding `saved_model/`): its SavedModel.

`backend.detect(image)` takes one uint8 [H, W, 3] RGB image (any size; the model resizes it) and
returns a dict of numpy arrays with the batch dimension removed, named as the SavedModel's
outputs (docs/export.md):
  num_detections             float32 scalar
  detection_boxes            float32 [max_det, 4] normalized ymin, xmin, ymax, xmax (input image)
  detection_scores           float32 [max_det]
  detection_classes          float32 [max_det] label-map ids (1-based)
  detection_masks            float32 [max_det, mask_h, mask_w] box-relative probabilities (Mask
                             R-CNN)
  detection_masks_reframed   uint8 [max_det, H, W] 0/1 masks at the input image size (Mask
                             R-CNN). The IR has no such output (see docs/openvino.md): the
                             OpenVINO backend, and a SavedModel exported without it, paste
                             `detection_masks` on the host with `ops.reframe_and_threshold_masks`,
                             the function the SavedModel runs in its graph.
  and the other outputs of the model (detection_multiclass_scores, raw_detection_*, ...).

A path that is none of the above is a `BackendUsageError` (a ConfigError: entry points print one
line and exit 2) raised before anything is loaded.
"""

import collections
import os

import numpy as np

from object_detection.core import standard_fields as fields
from object_detection.utils.config_validation import ConfigError

_DET = fields.DetectionResultFields
_EXAMPLE_FIELDS = fields.TfExampleFields
OPENVINO = 'openvino'
SAVED_MODEL = 'saved_model'
# semantic_exporter.SEMANTIC_CLASSES (not imported: it imports TensorFlow).
SEMANTIC_CLASSES = 'semantic_classes'
# Input sizes whose static-shape compilation of a semantic IR is kept (OpenVINOBackend).
_STATIC_CACHE_SIZE = 4
INSTALL_HINT = 'pip install -e ".[openvino]" (or pip install openvino)'


class BackendUsageError(ConfigError):
  """A model path or backend that cannot be used; the one-line message says what to pass."""


def _import_openvino(flag):
  try:
    import openvino  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise BackendUsageError('%s needs the openvino package, which is not installed: %s.'
                            % (flag, INSTALL_HINT)) from e
  return openvino


def resolve_model_path(model_path, flag='--model'):
  """Returns (kind, path): kind OPENVINO (path = the .xml) or SAVED_MODEL (path = the folder).

  Raises:
    BackendUsageError: the path is not an IR .xml with its .bin, nor a SavedModel / export folder.
  """
  if model_path and model_path.lower().endswith('.xml'):
    if not os.path.isfile(model_path):
      raise BackendUsageError(
          '%s=%s does not exist: pass the model.xml written by exporter_main.py '
          '--output_format=openvino (e.g. exported/my_model/openvino/model.xml).'
          % (flag, model_path))
    weights = os.path.splitext(model_path)[0] + '.bin'
    if not os.path.isfile(weights):
      raise BackendUsageError('%s=%s: its weights file %s is missing; keep model.xml and model.bin '
                              'together.' % (flag, model_path, weights))
    return OPENVINO, model_path
  if model_path and os.path.isfile(os.path.join(model_path, 'saved_model.pb')):
    return SAVED_MODEL, model_path
  if model_path and os.path.isfile(os.path.join(model_path, 'saved_model', 'saved_model.pb')):
    return SAVED_MODEL, os.path.join(model_path, 'saved_model')
  raise BackendUsageError(
      '%s=%s is neither an OpenVINO IR (.xml with its .bin) nor a SavedModel folder '
      '(saved_model.pb): pass exported/my_model/openvino/model.xml or '
      'exported/my_model/saved_model.'
      % (flag, model_path))


def add_reframed_masks(detections, image_height, image_width):
  """Adds `detection_masks_reframed` (uint8 [max_det, H, W]) when only box masks are there.

  Uses `ops.reframe_and_threshold_masks` (> ops.MASK_THRESHOLD) on every row, as the SavedModel's
  graph does, so both backends give the same image masks for the same box masks.
  """
  if _DET.detection_masks not in detections or _DET.detection_masks_reframed in detections:
    return detections
  from object_detection.utils import ops  # pylint: disable=g-import-not-at-top
  detections[_DET.detection_masks_reframed] = ops.reframe_and_threshold_masks(
      detections[_DET.detection_masks], detections[_DET.detection_boxes], image_height,
      image_width, threshold=ops.MASK_THRESHOLD).numpy()
  return detections


class SavedModelRunner(object):
  """Calls an exported `serving_default` signature on one decoded image at a time."""

  def __init__(self, saved_model_dir):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if not saved_model_dir or not os.path.isfile(os.path.join(saved_model_dir, 'saved_model.pb')):
      raise BackendUsageError(
          '--saved_model_dir=%s holds no saved_model.pb: pass the `saved_model` folder written by '
          'exporter_main.py (e.g. exported/my_model/saved_model).' % saved_model_dir)
    self._loaded = tf.saved_model.load(saved_model_dir)
    self._fn = self._loaded.signatures['serving_default']
    spec = list(self._fn.structured_input_signature[1].values())[0]
    self._input_name = list(self._fn.structured_input_signature[1].keys())[0]
    if spec.dtype == tf.string:
      input_type = getattr(self._loaded, 'input_type', None)
      self.input_type = (input_type.numpy().decode() if input_type is not None
                         else 'encoded_image_string_tensor')
    elif spec.dtype == tf.uint8:
      self.input_type = 'image_tensor'
    else:
      self.input_type = 'float_image_tensor'

  def __call__(self, image, encoded):
    """Runs the model.

    Args:
      image: uint8 numpy [H, W, 3], the decoded image.
      encoded: bytes, the image file contents.

    Returns:
      dict of numpy outputs with the batch dimension removed.
    """
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if self.input_type == 'image_tensor':
      value = tf.constant(image[np.newaxis], tf.uint8)
    elif self.input_type == 'float_image_tensor':
      value = tf.constant(image[np.newaxis], tf.float32)
    elif self.input_type == 'tf_example':
      example = tf.train.Example(features=tf.train.Features(feature={
          _EXAMPLE_FIELDS.image_encoded: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[encoded]))}))
      value = tf.constant([example.SerializeToString()])
    else:
      value = tf.constant([encoded])
    outputs = self._fn(**{self._input_name: value})
    return {key: value.numpy()[0] for key, value in outputs.items()}


class SavedModelBackend(object):
  """An exported SavedModel (`serving_default`), run with TensorFlow."""

  kind = SAVED_MODEL

  def __init__(self, saved_model_dir):
    self.path = saved_model_dir
    self._runner = SavedModelRunner(saved_model_dir)
    self.input_type = self._runner.input_type

  def detect(self, image, encoded=None):
    """Runs the model on uint8 [H, W, 3] RGB `image` (see the module docstring for the outputs).

    Args:
      image: uint8 numpy [H, W, 3].
      encoded: the image file bytes, for SavedModels whose input is a string; when None they get
        a lossless PNG encoding of `image`.
    """
    if encoded is None and self.input_type in ('encoded_image_string_tensor', 'tf_example'):
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      encoded = tf.io.encode_png(image).numpy()
    detections = self._runner(image, encoded)
    return add_reframed_masks(detections, image.shape[0], image.shape[1])


class OpenVINOBackend(object):
  """An OpenVINO IR (model.xml + model.bin) compiled for `device` (default CPU).

  `inference_precision` 'f32' (default) runs the FP32 IR in FP32. OpenVINO's CPU plugin would
  otherwise pick bf16 on CPUs with bf16 units (AMX / AVX512_BF16): measured on such a CPU, that
  moves scores by up to 0.02 and mask probabilities by up to 0.2 against the SavedModel, where f32
  agrees to ~3e-6 (docs/openvino.md). 'default' keeps the plugin's choice (faster there).
  """

  kind = OPENVINO

  def __init__(self, xml_path, device='CPU', inference_precision='f32'):
    ov = _import_openvino('--model=%s' % xml_path)
    self.path = xml_path
    core = ov.Core()
    config = {}
    if inference_precision != 'default':
      config['INFERENCE_PRECISION_HINT'] = inference_precision
    try:
      model = core.read_model(xml_path)
      self._compiled = core.compile_model(model, device, config)
      self._core, self._device, self._config, self._xml_path = core, device, config, xml_path
      # 'f32', 'bf16', ... as OpenVINO names the element type.
      self.inference_precision = self._compiled.get_property(
          'INFERENCE_PRECISION_HINT').get_type_name()
    except RuntimeError as e:
      first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
      raise BackendUsageError('--model=%s cannot be loaded by OpenVINO on %s: %s'
                              % (xml_path, device, first)) from e
    if len(self._compiled.inputs) != 1:
      raise BackendUsageError('--model=%s has %d inputs; an IR of exporter_main.py has one '
                              '(input_tensor).' % (xml_path, len(self._compiled.inputs)))
    element_type = self._compiled.inputs[0].get_element_type().get_type_name()
    self._input_dtype = {'u8': np.uint8, 'f32': np.float32}.get(element_type)
    if self._input_dtype is None:
      raise BackendUsageError('--model=%s: input type %s; expected u8 or f32 [1, H, W, 3].'
                              % (xml_path, element_type))
    self.input_type = 'image_tensor' if self._input_dtype == np.uint8 else 'float_image_tensor'
    self._request = self._compiled.create_infer_request()
    self._names = [output.get_any_name() for output in self._compiled.outputs]
    # Semantic segmentation IRs are compiled once per input size (see `_static_request`).
    self._static = SEMANTIC_CLASSES in self._names
    self._static_requests = collections.OrderedDict()

  def _static_request(self, shape):
    """(compiled model, infer request) for the input `shape`, reshaped to it and compiled once.

    With one compiled model reused across input sizes, OpenVINO 2026.4's CPU plugin returns wrong
    probabilities for a semantic segmentation IR after a few sizes (up to half of the pixels
    change class; found evaluating the sample's IR; not seen with the Mask R-CNN IRs), while a
    model compiled for the one size is right (mIoU equal to the SavedModel's to 1e-6). Each new
    size costs one compilation (about 0.5-0.9 s for the sample model); the last
    `_STATIC_CACHE_SIZE` sizes are kept.
    """
    shape = tuple(int(d) for d in shape)
    if shape in self._static_requests:
      self._static_requests.move_to_end(shape)
      return self._static_requests[shape]
    model = self._core.read_model(self._xml_path)
    model.reshape({model.inputs[0].get_any_name(): list(shape)})
    compiled = self._core.compile_model(model, self._device, self._config)
    self._static_requests[shape] = (compiled, compiled.create_infer_request())
    while len(self._static_requests) > _STATIC_CACHE_SIZE:
      self._static_requests.popitem(last=False)
    return self._static_requests[shape]

  def detect(self, image, encoded=None):
    """Runs the IR on uint8 [H, W, 3] RGB `image` (see the module docstring for the outputs)."""
    del encoded
    batch = np.ascontiguousarray(image[np.newaxis].astype(self._input_dtype, copy=False))
    compiled, request = (self._static_request(batch.shape) if self._static else
                         (self._compiled, self._request))
    request.infer({0: batch})
    detections = {}
    for name, output in zip(self._names, compiled.outputs):
      # Copied: the request reuses its output buffers on the next call.
      detections[name] = np.array(request.get_tensor(output).data[0])
    return add_reframed_masks(detections, image.shape[0], image.shape[1])


def load_backend(model_path, flag='--model', device='CPU', inference_precision='f32'):
  """Loads `model_path` (see the module docstring) and returns a backend with `.detect(image)`.

  Args:
    model_path: model.xml, a SavedModel folder or an export folder.
    flag: the flag name used in error messages.
    device, inference_precision: OpenVINO device and precision hint ('f32', 'bf16', 'f16' or
      'default'); see OpenVINOBackend. Not used for a SavedModel.

  Raises:
    BackendUsageError: an unusable path, openvino missing for an IR, or an IR OpenVINO refuses.
  """
  kind, path = resolve_model_path(model_path, flag)
  if kind == OPENVINO:
    return OpenVINOBackend(path, device=device, inference_precision=inference_precision)
  return SavedModelBackend(path)
