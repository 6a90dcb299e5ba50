r"""Exports a trained model as a SavedModel (flags of the TF OD API's `exporter_main_v2.py`).

Usage:
  python exporter_main.py \
      --input_type=image_tensor \
      --pipeline_config_path=path/to/pipeline.config \
      --trained_checkpoint_dir=path/to/model_dir \
      --output_directory=path/to/exported_model

Writes `output_directory/checkpoint/`, `output_directory/saved_model/` (signature
`serving_default`) and `output_directory/pipeline.config`; see docs/export.md for the inputs and
outputs. With `--output_format=openvino` it also writes the OpenVINO IR `output_directory/openvino/
model.xml` + `model.bin` (FP32, converted from that SavedModel; needs pip install -e ".[openvino]";
docs/openvino.md). The output directory is written atomically (temporary folder renamed at the end).
Exit status 2 with a one-line message on a config error, a missing flag or an unusable checkpoint
(docs/errors.md).
"""
import sys

from absl import app
from absl import flags

from object_detection.utils import quiet_logs

if __name__ == '__main__':
  quiet_logs.quiet_tensorflow_startup()  # before exporter_lib_v2 imports TensorFlow

from object_detection import exporter_lib_v2  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection.training import xla  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_enum('input_type', 'image_tensor', list(exporter_lib_v2.INPUT_TYPES),
                  'Input of the serving signature: image_tensor (uint8 [1, H, W, 3]), '
                  'float_image_tensor (float32 [1, H, W, 3], 0..255), '
                  'encoded_image_string_tensor (string [1], JPEG/PNG bytes) or tf_example '
                  '(string [1], serialized tf.train.Example with image/encoded).')
flags.DEFINE_string('pipeline_config_path', None, 'Path to the pipeline config used for training.')
flags.DEFINE_string('trained_checkpoint_dir', None,
                    'Training model_dir (its latest checkpoint is exported; this project\'s or the '
                    'TF OD API\'s), a checkpoint prefix such as model_dir/ckpt-12, or a TF2 model '
                    'zoo / exported folder (its checkpoint/ckpt-0).')
flags.DEFINE_string('output_directory', None, 'Path to write the exported model to.')
flags.DEFINE_string('config_override', '',
                    'pipeline_pb2.TrainEvalPipelineConfig text proto merged over the pipeline '
                    'config (e.g. "model{faster_rcnn{second_stage_post_processing{'
                    'batch_non_max_suppression{score_threshold: 0.5}}}}").')
flags.DEFINE_boolean('output_masks_reframed', True,
                     'Add detection_masks_reframed: uint8 0/1 masks [1, max_det, H, W] at the '
                     'input image size (Mask R-CNN only).')
flags.DEFINE_enum('output_format', 'saved_model', ['saved_model', 'openvino'],
                  'saved_model: the SavedModel only. openvino: also the OpenVINO IR '
                  'output_directory/openvino/model.xml + model.bin (FP32; input_type image_tensor '
                  'or float_image_tensor; docs/openvino.md).')
# The TF OD API's side-input flags (Context R-CNN / LSTM exports), accepted so its export scripts
# run unchanged; this project's models take no side inputs.
flags.DEFINE_boolean('use_side_inputs', False,
                     'TF OD API flag: export a signature with side inputs. Not supported (the '
                     'Faster R-CNN / Mask R-CNN models built here take none); false is accepted.')
flags.DEFINE_string('side_input_shapes', '', 'TF OD API flag; only with --use_side_inputs.')
flags.DEFINE_string('side_input_types', '', 'TF OD API flag; only with --use_side_inputs.')
flags.DEFINE_string('side_input_names', '', 'TF OD API flag; only with --use_side_inputs.')
flags.DEFINE_boolean('jit_compile', False,
                     'Serve with an XLA-compiled function (preprocess, predict, postprocess; '
                     'compiled once per input size). The config must select the TF OD API\'s '
                     'static-shape path, which is checked first (docs/accelerators.md). '
                     'SavedModel only.')
flags.DEFINE_enum('use_moving_average', 'auto', ['auto', 'true', 'false'],
                  'Export the exponential-moving-average weights. auto: when the config trained '
                  'with train_config.optimizer.use_moving_average.')


def _check_flags(usage_error):
  """Missing flags are one line and exit status 2 (absl's required-flag check exits 1)."""
  for name, example in (('pipeline_config_path', 'model_dir/pipeline.config'),
                        ('trained_checkpoint_dir', 'model_dir'),
                        ('output_directory', 'exported/my_model')):
    if not FLAGS[name].value:
      raise usage_error('--%s is required (e.g. --%s=%s).' % (name, name, example))
  xla.check_export_flags(FLAGS.jit_compile, FLAGS.output_format)
  if FLAGS.use_side_inputs:
    raise usage_error('--use_side_inputs: the Faster R-CNN / Mask R-CNN models this project '
                      'builds take no side inputs (the TF OD API uses them for Context R-CNN and '
                      'LSTM models); remove the flag and the --side_input_* flags.')
  ignored = [name for name in ('side_input_shapes', 'side_input_types', 'side_input_names')
             if FLAGS[name].value]
  if ignored:
    # As the TF OD API: without --use_side_inputs these flags are not read.
    print('Note: %s ignored without --use_side_inputs.' % ', '.join('--' + n for n in ignored),
          file=sys.stderr)


def main(argv):
  del argv
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  use_moving_average = {'auto': None, 'true': True, 'false': False}[FLAGS.use_moving_average]
  try:
    _check_flags(config_validation.UsageError)
    extra_outputs_fn = None
    if FLAGS.output_format == 'openvino':
      from object_detection import export_openvino  # pylint: disable=g-import-not-at-top
      # Before the (slow) model build: a string input or a missing package fails at once.
      export_openvino.check_input_type(FLAGS.input_type)
      export_openvino.check_openvino_available()
      extra_outputs_fn = export_openvino.write_ir_into_export
    pipeline_config = exporter_lib_v2.load_pipeline_config(FLAGS.pipeline_config_path,
                                                           FLAGS.config_override)
    output_directory = exporter_lib_v2.export_inference_graph(
        FLAGS.input_type, pipeline_config, FLAGS.trained_checkpoint_dir, FLAGS.output_directory,
        output_masks_reframed=FLAGS.output_masks_reframed, use_moving_average=use_moving_average,
        extra_outputs_fn=extra_outputs_fn, jit_compile=FLAGS.jit_compile)
  except exporter_lib_v2.ExportError as e:
    # About the checkpoint or output folder, not the config: not prefixed with the config path.
    print(config_validation.error_line(e), file=sys.stderr)
    sys.exit(2)
  except config_validation.ConfigError as e:
    # Config and flag errors (ConfigParseError, UsageError, builder errors are ConfigErrors).
    print(config_validation.error_line(e, FLAGS.pipeline_config_path), file=sys.stderr)
    sys.exit(2)
  print('Exported %s SavedModel to %s/saved_model (signature serving_default)' % (
      FLAGS.input_type, output_directory))
  if FLAGS.output_format == 'openvino':
    print('Exported OpenVINO IR (FP32) to %s/openvino/model.xml and model.bin' % output_directory)


if __name__ == '__main__':
  app.run(main)
