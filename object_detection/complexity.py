r"""Prints a config's model size and GFLOPs per image, without training or a checkpoint.

Usage:
  python -m object_detection.complexity \
      --pipeline_config_path=samples/configs/mask_rcnn_sample_cpu.config [--image_size=480,640]

Prints, for example:
  Parameters: 7.61 M (7.54 M trainable)
  GFLOPs per image: 4.42 at 256x256 (the model input of a 480x640 image; second stage at 100
  proposals, masks at 50 detections)

The model is built from `model { ... }` with the project's model builder (inference mode, random
weights: neither figure depends on the weights) and counted by `utils/model_stats.py` (method and
limits: docs/evaluation.md, "Complexity"). Every evaluation writes the same figures to
`model_dir/eval/metrics_<step>.json` ('model_stats'); `model_stats.complexity_lines` turns them into
these lines.

--image_size=H,W is the size of a photo before the image resizer (default: see
`default_image_size`); the GFLOPs are counted at the size the resizer gives it. Only the model
part of the config is validated. A bad config or flag prints one line and exits with status 2.
"""

import sys

if __name__ == '__main__':
  # Before TensorFlow is imported: its C++ start-up lines are decided at import time.
  from object_detection.utils import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs.quiet_tensorflow_startup()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from object_detection.utils import config_validation
# pylint: enable=g-import-not-at-top,wrong-import-position


def _flag_values():
  """The tool's flags, in their own FlagValues: importing this module (tests, other tools) defines
  no global absl flag that could clash with model_main's or exporter_main's."""
  flag_values = flags.FlagValues()
  flags.DEFINE_string('pipeline_config_path', None,
                      'Path to a pipeline config (only its model part is read).',
                      flag_values=flag_values)
  flags.DEFINE_string('image_size', None,
                      'H,W: height and width in pixels of an input image before the image resizer '
                      '(default: the resizer\'s fixed or largest output size).',
                      flag_values=flag_values)
  flags.DEFINE_string('config_override', '',
                      'pipeline_pb2.TrainEvalPipelineConfig text proto merged over the config.',
                      flag_values=flag_values)
  return flag_values


def parse_image_size(text):
  """'H,W' (or 'N' for N,N) -> (H, W) positive ints.

  Raises:
    config_validation.UsageError: not two positive integers.
  """
  parts = [p.strip() for p in str(text).replace('x', ',').split(',')]
  try:
    values = [int(p) for p in parts]
  except ValueError:
    values = []
  if len(values) == 1:
    values = values * 2
  if len(values) != 2 or min(values) < 1:
    raise config_validation.UsageError(
        '--image_size=%s: give the image height and width in pixels as H,W (e.g. '
        '--image_size=480,640).' % text)
  return values[0], values[1]


def default_image_size(image_resizer_config, field='model.faster_rcnn.image_resizer'):
  """The input image size counted when --image_size is not given, and why.

  Args:
    image_resizer_config: `ImageResizer` proto (the model's image_resizer).
    field: its dotted name, for the error message.

  Returns:
    ((height, width), note): fixed_shape_resizer: its size; keep_aspect_ratio_resizer:
    (min_dimension, max_dimension), the largest image it gives (max_dimension squared when it
    pads), so the figure is the model's maximum. `note` is a line saying so, or None.

  Raises:
    config_validation.UsageError: a resizer whose output follows the photo (identity,
      conditional_shape, pad_to_multiple): --image_size is needed.
  """
  oneof = image_resizer_config.WhichOneof('image_resizer_oneof')
  if oneof == 'fixed_shape_resizer':
    resizer = image_resizer_config.fixed_shape_resizer
    return (resizer.height, resizer.width), None
  if oneof == 'keep_aspect_ratio_resizer':
    resizer = image_resizer_config.keep_aspect_ratio_resizer
    if resizer.pad_to_max_dimension:
      return (resizer.max_dimension, resizer.max_dimension), None
    return (resizer.min_dimension, resizer.max_dimension), (
        'Counted at the largest input keep_aspect_ratio_resizer gives (min_dimension x '
        'max_dimension); --image_size=H,W counts a given photo size.')
  raise config_validation.UsageError(
      '--image_size is required: %s is %s, whose output size '
      'follows the image (e.g. --image_size=480,640).' % (field, oneof or 'not set'))


def build_model(model_config, image_size):
  """The inference `DetectionModel` of a config, with its variables built by one pass on zeros.

  Args:
    model_config: `DetectionModel` proto.
    image_size: (height, width) of the image used to build the variables.

  Returns:
    the `DetectionModel` (random weights).
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from object_detection.builders import model_builder
  # pylint: enable=g-import-not-at-top
  model = model_builder.build(model_config, is_training=False)
  preprocessed, true_image_shapes = model.preprocess(
      tf.zeros([1, int(image_size[0]), int(image_size[1]), 3], tf.float32))
  model.predict(preprocessed, true_image_shapes)
  return model


def config_complexity(pipeline_config_path, image_size=None, config_override=''):
  """Parameters and GFLOPs of a pipeline config's model.

  Args:
    pipeline_config_path: text-format pipeline config (only `model` is validated and used).
    image_size: optional (height, width) of an image before the resizer; default
      `default_image_size`.
    config_override: text-format TrainEvalPipelineConfig merged over the config.

  Returns:
    (stats dict of `model_stats.model_stats`, list of output lines).

  Raises:
    config_validation.ConfigError: a missing / unreadable / invalid config, no --image_size for a
      resizer that needs one, or an --image_size the model cannot run at.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection import model_lib_v2
  from object_detection.utils import model_stats
  # pylint: enable=g-import-not-at-top
  configs = model_lib_v2.load_configs(pipeline_config_path, config_override or None,
                                      mode='export')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  note = None
  given = image_size is not None
  if not given:
    model_config = configs['model']
    meta = getattr(model_config, model_config.WhichOneof('model') or 'faster_rcnn')
    image_size, note = default_image_size(
        meta.image_resizer, 'model.%s.image_resizer' % (model_config.WhichOneof('model') or
                                                        'faster_rcnn'))
  try:
    model = build_model(configs['model'], image_size)
  except (ValueError, tf.errors.OpError) as e:
    if isinstance(e, config_validation.ConfigError) or not given:
      raise
    # For example an image smaller than the extractor's total stride with an identity resizer.
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise config_validation.UsageError(
        '--image_size=%d,%d: the model cannot run on an image of this size (%s).'
        % (image_size[0], image_size[1], reason)) from e
  stats = model_stats.model_stats(model, image_size)
  lines = model_stats.complexity_lines(stats)
  if note:
    lines.append(note)
  return stats, lines


def run(argv):
  """The command: parses argv (argv[0] is the program name), prints the lines; returns the exit
  status (0 ok, 2 bad config or flag with one line on stderr, 1 if the FLOPs could not be
  counted)."""
  flag_values = _flag_values()
  if any(arg in ('-h', '--help', '-help', '--helpfull') for arg in argv[1:]):
    print(__doc__)
    print(flag_values.main_module_help() or flag_values.get_help())
    return 0
  path = None
  try:
    try:
      flag_values(list(argv))
    except flags.Error as e:
      raise config_validation.UsageError(
          '%s (the flags are --pipeline_config_path, --image_size and --config_override; --help '
          'describes them).' % e) from None
    path = flag_values.pipeline_config_path
    if not path:
      raise config_validation.UsageError(
          '--pipeline_config_path is required (e.g. '
          '--pipeline_config_path=samples/configs/mask_rcnn_sample_cpu.config).')
    image_size = (parse_image_size(flag_values.image_size) if flag_values.image_size
                  else None)
    stats, lines = config_complexity(path, image_size, flag_values.config_override)
  except config_validation.ConfigError as e:
    print(config_validation.error_line(e, path), file=sys.stderr)
    return 2
  for line in lines:
    print(line)
  return 0 if stats.get('gflops_per_image') is not None else 1


if __name__ == '__main__':
  sys.exit(run(sys.argv))
