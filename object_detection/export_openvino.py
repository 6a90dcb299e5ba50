r"""Converts an exported SavedModel to OpenVINO IR (model.xml + model.bin, FP32).

Usage (an export of `exporter_main.py`; `--output_format=openvino` there does the same in one step):
  python -m object_detection.export_openvino \
      --saved_model_dir=exported/my_model/saved_model \
      [--output_dir=exported/my_model/openvino]

Writes `output_dir/model.xml` and `output_dir/model.bin` (default `output_dir`: `openvino/` beside
the `saved_model` folder), via a temporary folder renamed at the end. The conversion uses
`openvino.convert_model` (OpenVINO's TensorFlow frontend; nothing is downloaded) and
`openvino.save_model(..., compress_to_fp16=False)`: weights stay FP32.

The IR has the SavedModel's input (`input_tensor`, uint8 [1, H, W, 3] RGB 0..255 for
`image_tensor`; float32 for `float_image_tensor`; H and W dynamic) and the SavedModel's outputs
under the same names and semantics, except `detection_masks_reframed`: its pasting step
(CropAndResize with a crop size taken from the input's shape) is not convertible by the TensorFlow
frontend, so the IR returns the box-relative `detection_masks` and callers paste them
(`inference_backends` does it with `ops.reframe_and_threshold_masks`). docs/openvino.md has the
full description. Only `image_tensor` and `float_image_tensor` exports convert (OpenVINO has no
image decoder for the string inputs).

A semantic segmentation export (outputs `semantic_classes` and `semantic_probabilities`,
semantic_exporter.py) converts whole: the IR has both outputs, at the input size, with the same
names; its SavedModel folder is converted directly (OpenVINO names the outputs from the signature;
about twice as fast as converting the wrapper function detection exports need).

Exit status 2 with one line on a bad path, a string-input export or a missing openvino package.
"""

import os
import shutil
import sys
import tempfile

if __name__ == '__main__':
  from object_detection.utils import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs.quiet_tensorflow_startup()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from object_detection.core import standard_fields as fields
from object_detection.inference_backends import BackendUsageError
from object_detection.inference_backends import INSTALL_HINT
from object_detection.utils import config_validation
# pylint: enable=g-import-not-at-top,wrong-import-position

IR_DIRECTORY = 'openvino'
IR_XML = 'model.xml'
CONVERTIBLE_INPUT_TYPES = ('image_tensor', 'float_image_tensor')
SEMANTIC_CLASSES = 'semantic_classes'  # semantic_exporter.SEMANTIC_CLASSES
# Outputs left out of the IR, with the reason (see the module docstring).
_NOT_CONVERTED = {
    fields.DetectionResultFields.detection_masks_reframed:
        'its CropAndResize takes the crop size from the input shape, which OpenVINO\'s TensorFlow '
        'frontend needs constant',
}


class OpenVINOExportError(config_validation.ConfigError, RuntimeError):
  """The IR could not be written; the one-line message says why and what to do."""


def check_openvino_available(flag='--output_format=openvino'):
  """Raises BackendUsageError (one line, exit 2) when the openvino package is missing."""
  try:
    import openvino  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise BackendUsageError('%s needs the openvino package, which is not installed: %s.'
                            % (flag, INSTALL_HINT)) from e


def check_input_type(input_type, flag='--input_type'):
  """Raises a UsageError for an input type the IR cannot take (string inputs)."""
  if input_type not in CONVERTIBLE_INPUT_TYPES:
    raise config_validation.UsageError(
        '%s=%s cannot be converted to OpenVINO IR (OpenVINO has no image decoder op): export with '
        '--input_type=image_tensor (or float_image_tensor).' % (flag, input_type))


def _serving_function(saved_model_dir):
  """(tf.function returning a tuple, its output names, the unconvertible output names, the loaded
  SavedModel): the serving signature without the unconvertible outputs.

  A tuple and not a dict: the TensorFlow frontend names the outputs of a dict-returning function
  in an order that does not always match the values, so outputs are renamed by position after the
  conversion.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  loaded = tf.saved_model.load(saved_model_dir)
  signature = loaded.signatures['serving_default']
  inputs = signature.structured_input_signature[1]
  if len(inputs) != 1:
    raise OpenVINOExportError('--saved_model_dir=%s: the signature has %d inputs; an export of '
                              'exporter_main.py has one (input_tensor).'
                              % (saved_model_dir, len(inputs)))
  input_name, spec = list(inputs.items())[0]
  if spec.dtype == tf.string:
    input_type = getattr(loaded, 'input_type', None)
    input_type = (input_type.numpy().decode() if input_type is not None
                  else 'encoded_image_string_tensor')
    check_input_type(input_type, flag='--saved_model_dir=%s has input type' % saved_model_dir)
  names = sorted(name for name in signature.structured_outputs if name not in _NOT_CONVERTED)
  dropped = sorted(name for name in signature.structured_outputs if name in _NOT_CONVERTED)

  @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=input_name)])
  def serve(input_tensor):
    outputs = signature(**{input_name: input_tensor})
    return tuple(outputs[name] for name in names)

  # The loaded object must outlive the traced function's first use (it owns the variables).
  # Traced by the caller when needed (a semantic export converts from its folder instead).
  return serve, names, dropped, loaded


def convert_saved_model(saved_model_dir, output_dir=None):
  """Converts an exported SavedModel to `output_dir/model.xml` + `model.bin` (FP32).

  Args:
    saved_model_dir: the `saved_model` folder of an `image_tensor` / `float_image_tensor` export.
    output_dir: where the IR goes; default `openvino/` beside `saved_model_dir`. Replaced whole
      (written to a temporary sibling folder, renamed at the end).

  Returns:
    str path of model.xml.

  Raises:
    BackendUsageError: openvino is not installed, or saved_model_dir holds no SavedModel.
    config_validation.UsageError: the export takes strings (encoded images, tf.Examples).
    OpenVINOExportError: the conversion failed (the message names the first failing op).
  """
  check_openvino_available('--saved_model_dir')
  import openvino as ov  # pylint: disable=g-import-not-at-top
  if not saved_model_dir or not os.path.isfile(os.path.join(saved_model_dir, 'saved_model.pb')):
    raise BackendUsageError('--saved_model_dir=%s holds no saved_model.pb: pass the saved_model '
                            'folder written by exporter_main.py.' % saved_model_dir)
  if output_dir is None:
    output_dir = os.path.join(os.path.dirname(os.path.abspath(saved_model_dir)), IR_DIRECTORY)
  output_dir = os.path.abspath(output_dir)
  function, names, dropped, loaded = _serving_function(saved_model_dir)
  # A semantic export drops nothing: its folder converts directly, outputs named by the signature.
  whole = SEMANTIC_CLASSES in names and not dropped
  source = saved_model_dir if whole else function.get_concrete_function()
  try:
    model = ov.convert_model(source)
  except Exception as e:  # pylint: disable=broad-except
    # OpenVINO's conversion errors are multi-line reports; the op names are what a user needs.
    lines = [line.strip() for line in str(e).splitlines() if line.strip().startswith('--')]
    raise OpenVINOExportError('OpenVINO could not convert %s: %s' % (
        saved_model_dir, '; '.join(lines) or type(e).__name__)) from e
  del loaded
  if len(model.outputs) != len(names):
    raise OpenVINOExportError('OpenVINO converted %s to %d outputs, expected %d (%s).' % (
        saved_model_dir, len(model.outputs), len(names), ', '.join(names)))
  if whole:
    got = sorted(output.get_any_name() for output in model.outputs)
    if got != names:
      raise OpenVINOExportError('OpenVINO converted %s to outputs %s, expected %s.' % (
          saved_model_dir, ', '.join(got), ', '.join(names)))
  else:
    for output, name in zip(model.outputs, names):
      output.get_tensor().set_names({name})
  model.set_rt_info('odseg-maskrcnn exporter_main.py', ['framework', 'source'])
  model.set_rt_info(', '.join(dropped), ['framework', 'outputs_not_converted'])
  parent = os.path.dirname(output_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.%s.tmp-' % os.path.basename(output_dir), dir=parent)
  try:
    ov.save_model(model, os.path.join(tmp, IR_XML), compress_to_fp16=False)
    if os.path.isdir(output_dir):
      shutil.rmtree(output_dir)
    os.rename(tmp, output_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return os.path.join(output_dir, IR_XML)


def write_ir_into_export(export_tmp_directory):
  """`exporter_lib_v2` hook: converts `<export>/saved_model` into `<export>/openvino/`."""
  convert_saved_model(os.path.join(export_tmp_directory, 'saved_model'),
                      os.path.join(export_tmp_directory, IR_DIRECTORY))


FLAGS = flags.FLAGS


def define_flags():
  """Defines the command-line flags (only when run as a program: library users such as
  predict define flags of the same names)."""
  flags.DEFINE_string('saved_model_dir', None,
                      'The saved_model folder written by exporter_main.py.')
  flags.DEFINE_string('output_dir', None,
                      'Where model.xml / model.bin go (default: openvino/ beside saved_model_dir).')


def main(argv):
  del argv
  try:
    if not FLAGS.saved_model_dir:
      raise config_validation.UsageError('--saved_model_dir is required (e.g. '
                                         '--saved_model_dir=exported/my_model/saved_model).')
    xml_path = convert_saved_model(FLAGS.saved_model_dir, FLAGS.output_dir)
  except config_validation.ConfigError as e:
    print(config_validation.error_line(e), file=sys.stderr)
    sys.exit(2)
  print('Wrote OpenVINO IR (FP32) %s and %s' % (xml_path, os.path.splitext(xml_path)[0] + '.bin'))


if __name__ == '__main__':
  define_flags()
  app.run(main)
