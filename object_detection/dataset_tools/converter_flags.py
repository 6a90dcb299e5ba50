"""The command-line flags every dataset converter shares, and how Apache Beam options pass through.

`dataset_tools/create_{coco,oid,instance_png}_tf_record.py` call `define_common_flags()` at import
and run `app.run(main, flags_parser=parse_flags)`. Flags this module does not define are kept for
Beam (`beam_args()`) when `--runner` is given, e.g.

  --runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing
  --runner=FlinkRunner --flink_master=host:8081 --environment_type=LOOPBACK
  --runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp

and are an error (one line, exit 2) without it. No TensorFlow here.
"""
import os
import signal
import sys

from absl import flags

FLAGS = flags.FLAGS
_BEAM_ARGS = []
# The converter command's own process (this module is imported when the command starts): forked
# workers are other processes.
_MAIN_PID = os.getpid()

BEAM_MISSING = ('--runner needs Apache Beam: run `pip install -e ".[beam]"` from the repository '
                'root (or drop --runner to convert with local worker processes, --num_workers).')


_KEEP_EMPTY_HELP = ('With --classes: write the images that have no instance of those classes '
                    'as negatives (no objects) instead of dropping them.')


def define_common_flags(classes_help, keep_empty_help=_KEEP_EMPTY_HELP, masks=True):
  """Defines the shared flags.

  Args:
    classes_help: the help of --classes (what a class is called in this source format).
    keep_empty_help: the help of --keep_empty_images, where a format gives it more to do.
    masks: define --include_masks and --mask_type (instance masks); False for a converter that
      always writes its own label masks (semantic segmentation).
  """
  flags.DEFINE_string('output_dir', '',
                      'Output folder (required). It is replaced whole at the end of the '
                      'conversion.')
  flags.DEFINE_boolean('overwrite', False,
                       'Replace --output_dir even when it holds files this converter did not '
                       'write (they are deleted). Not needed to re-run over an earlier '
                       'conversion.')
  if masks:
    _define_mask_flags()
  _define_rest(classes_help, keep_empty_help)


def _define_mask_flags():
  flags.DEFINE_boolean('include_masks', False,
                       'Whether to include instance segmentation masks (needed for Mask R-CNN).')
  flags.DEFINE_enum('mask_type', 'png', ['png', 'numerical'],
                    'png: one PNG per instance (small; input reader mask_type: PNG_MASKS). '
                    'numerical: float list N*H*W (large; mask_type: NUMERICAL_MASKS).')


def _define_rest(classes_help, keep_empty_help):
  flags.DEFINE_integer('num_shards', 1,
                       'Output files per split (the TF OD API uses 100 for train and 50 for val '
                       'on full COCO; 1 suits small datasets).')
  flags.DEFINE_integer('num_workers', 1,
                       'Processes that read and encode images (without --runner).')
  flags.DEFINE_boolean('progress', True, 'Show a progress bar (images/s) on stderr.')
  flags.DEFINE_string('classes', '', classes_help)
  flags.DEFINE_boolean('keep_empty_images', False, keep_empty_help)
  flags.DEFINE_string('runner', '',
                      'Run the conversion as an Apache Beam pipeline on this runner '
                      '(DirectRunner, FlinkRunner, SparkRunner, DataflowRunner; needs '
                      '`pip install -e ".[beam]"`). Other Beam pipeline options are passed '
                      'through (e.g. --direct_num_workers=2). Empty: local worker processes '
                      '(--num_workers).')


_COUNT_WORDS = {2: 'both', 3: 'all three'}

# The split flags of the COCO-JSON converters (create_coco_tf_record.py, and
# create_semantic_tf_record.py --input_format=coco), for `split_flags`.
COCO_SPLIT_FLAGS = (('train', ('train_image_dir', 'train_annotations_file')),
                    ('val', ('val_image_dir', 'val_annotations_file')),
                    ('testdev', ('test_image_dir', 'testdev_annotations_file')))


def split_flags(specs, usage_error):
  """The splits whose flags are all given: [(split, value, value, ...)] in `specs` order.

  Args:
    specs: [(split, [flag names])], the flags each split needs.
    usage_error: exception class raised (one line) for a split with some but not all of its
      flags.
  """
  splits = []
  for split, names in specs:
    values = [FLAGS[name].value for name in names]
    if any(values) and not all(values):
      given = [n for n, v in zip(names, values) if v]
      missing = [n for n, v in zip(names, values) if not v]
      raise usage_error('--%s %s given but --%s %s not: a split needs %s.' % (
          ' and --'.join(given), 'is' if len(given) == 1 else 'are', ' and --'.join(missing),
          'is' if len(missing) == 1 else 'are', _COUNT_WORDS.get(len(names), 'all of them')))
    if all(values):
      splits.append((split,) + tuple(values))
  return splits


def check_format_flags(input_format, only_for, usage_error):
  """Refuses a flag of another --input_format: `only_for` = {format: [its own flag names]}."""
  for owner, names in only_for.items():
    if owner == input_format:
      continue
    for name in names:
      if FLAGS[name].present:
        raise usage_error('--%s does not apply to --input_format=%s (only to %s): remove it.'
                          % (name, input_format, owner))


def parse_flags(argv):
  """`app.run` flags parser: absl parses its flags, the rest is kept for Beam.

  Returns:
    [argv[0]] (main's argv).
  """
  try:
    rest = FLAGS(argv, known_only=True)
  except flags.Error as e:
    print('Error: %s' % e, file=sys.stderr)
    sys.exit(2)
  _BEAM_ARGS[:] = rest[1:]
  return rest[:1]


def beam_args():
  """The Beam pipeline options of this run, or None without --runner.

  Returns:
    None, or a list of str: `--runner=<FLAGS.runner>` and the flags absl did not know.

  Raises:
    coco_annotations.ConversionError: flags absl does not know, without --runner; --runner
      without Apache Beam installed.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import coco_annotations
  # pylint: enable=g-import-not-at-top
  if not FLAGS.runner:
    if _BEAM_ARGS:
      raise coco_annotations.ConversionError(
          'Unknown flag(s) %s: see --help (Apache Beam pipeline options such as '
          '--direct_num_workers need --runner, e.g. --runner=DirectRunner).'
          % ' '.join(_BEAM_ARGS))
    return None
  import importlib.util  # pylint: disable=g-import-not-at-top
  if importlib.util.find_spec('apache_beam') is None:
    raise coco_annotations.ConversionError(BEAM_MISSING)
  return ['--runner=%s' % FLAGS.runner] + list(_BEAM_ARGS)


def common_kwargs():
  """The shared flags as keyword arguments of the converters' `convert` functions."""
  kwargs = dict(num_shards=FLAGS.num_shards, num_workers=FLAGS.num_workers,
                show_progress=FLAGS.progress, overwrite=FLAGS.overwrite,
                keep_empty_images=FLAGS.keep_empty_images, runner_options=beam_args())
  if 'include_masks' in FLAGS:
    kwargs.update(include_masks=FLAGS.include_masks, mask_type=FLAGS.mask_type)
  return kwargs


def _exit_on_sigterm(signum, frame):
  del frame  # Unused.
  # `kill` (SIGTERM) unwinds like Ctrl-C, so the temporary output folder is removed; forked
  # worker processes (stopped with SIGTERM by their pool) just exit.
  if os.getpid() == _MAIN_PID:
    raise SystemExit(128 + signum)
  os._exit(128 + signum)  # pylint: disable=protected-access


def run_converter(convert):
  """Runs one converter command: prints the summary, or one error line and exits.

  Args:
    convert: a function of no arguments doing the command's work (TF-free checks first) and
      returning the summary text to print.

  Exits with status 2 and one line for a ConfigError (usage and input errors, ConversionError,
  ClassesError), 1 and one line when writing the output fails (the old output is kept).
  """
  signal.signal(signal.SIGTERM, _exit_on_sigterm)
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import output_folder
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  try:
    summary = convert()
  except config_validation.ConfigError as e:  # ConversionError and UsageError included.
    print(config_validation.error_line(e), file=sys.stderr)
    sys.exit(2)
  except output_folder.OutputWriteError as e:
    print('Error: %s' % e, file=sys.stderr)
    sys.exit(1)
  print(summary)
