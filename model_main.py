r"""Trains or continuously evaluates a Mask R-CNN from a TF OD API pipeline config.

Same flags as the TF OD API's model_main_tf2.py, plus --eval_every_n and --config_override.

Train (resumes from the last checkpoint in model_dir when re-run with the same command):
  python model_main.py --pipeline_config_path=samples/configs/mask_rcnn_sample_cpu.config \
      --model_dir=runs/sample/model --eval_every_n=200

Evaluate every new checkpoint (stops after the final one, or after --eval_timeout s idle):
  python model_main.py --pipeline_config_path=... --model_dir=runs/x \
      --checkpoint_dir=runs/x

Several GPUs, machines (--num_workers with TF_CONFIG) or a TPU (--use_tpu --tpu_name): see
docs/distributed.md.

Input paths in the config are resolved relative to the current directory.
Exit status: 0 on success, 1 on a NaN/Inf loss or a runtime failure, 2 on a config, input-file
or flag error (one line on stderr, no traceback; docs/errors.md lists them).
"""
import os
import sys

from absl import app
from absl import flags

flags.DEFINE_string('pipeline_config_path', None, 'Path to pipeline config file.')
flags.DEFINE_integer('num_train_steps', None, 'Number of train steps (overrides num_steps).')
flags.DEFINE_bool('eval_on_train_data', False, 'Enable evaluating on train data (only supported '
                  'in distributed training).')
flags.DEFINE_integer('sample_1_of_n_eval_examples', None, 'Will sample one of every n eval '
                     'input examples, where n is provided.')
flags.DEFINE_integer('sample_1_of_n_eval_on_train_examples', 5, 'Will sample one of every n '
                     'train input examples for evaluation, where n is provided. This is only '
                     'used if `eval_training_data` is True.')
flags.DEFINE_string('model_dir', None, 'Path to output model directory where event and '
                    'checkpoint files will be written.')
flags.DEFINE_string('checkpoint_dir', None, 'Path to directory holding a checkpoint. If '
                    '`checkpoint_dir` is provided, this binary operates in eval-only mode, '
                    'writing resulting metrics to `model_dir`.')
flags.DEFINE_integer('eval_timeout', 3600, 'Number of seconds to wait for an evaluation '
                     'checkpoint before exiting.')
flags.DEFINE_bool('use_tpu', False, 'Whether the job is executing on a TPU.')
flags.DEFINE_string('tpu_name', None, 'Name of the Cloud TPU for Cluster Resolvers.')
flags.DEFINE_integer('num_workers', 1, 'When num_workers > 1, training uses '
                     'MultiWorkerMirroredStrategy. When num_workers = 1 it uses '
                     'MirroredStrategy.')
flags.DEFINE_integer('checkpoint_every_n', 1000, 'Integer defining how often we checkpoint.')
flags.DEFINE_boolean('record_summaries', True, 'Whether or not to record summaries defined by '
                     'the model or the training pipeline. This does not impact the summaries of '
                     'the loss values which are always recorded.')
flags.DEFINE_integer('eval_every_n', None, 'Evaluate on eval_input_reader every n steps during '
                     'training (and at the last step). Needed by reduce_lr_on_plateau, '
                     'early_stopping and best_checkpoint_metric.')
flags.DEFINE_string('config_override', None, 'A text-format TrainEvalPipelineConfig merged into '
                    'the pipeline config, e.g. "train_config { batch_size: 1 }".')
flags.DEFINE_integer('seed', None, 'Seed every random generator and enable TF op determinism (input '
                     'order kept): same initial weights and batches; short runs repeat bit for '
                     'bit, long CPU runs drift slightly (docs/training.md). Unset: as in the TF '
                     'OD API.', lower_bound=0)
flags.DEFINE_bool('jit_compile', False, 'XLA-compile the train step (and the evaluation step): '
                  'the config must select the TF OD API\'s static-shape path, which is checked '
                  'first (docs/accelerators.md).')

FLAGS = flags.FLAGS


def _check_flags():
  """Refuses missing, contradictory or impossible flags before anything is read.

  Raises:
    config_validation.UsageError: naming the flag and what to do.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection.training import strategy
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  usage = config_validation.UsageError
  for name, example in (('pipeline_config_path', 'path/to/pipeline.config'),
                        ('model_dir', 'runs/my_model')):
    if not FLAGS[name].value:
      raise usage('--%s is required (e.g. --%s=%s).' % (name, name, example))
  if FLAGS.checkpoint_dir:
    if not os.path.isdir(FLAGS.checkpoint_dir):
      raise usage('--checkpoint_dir=%s does not exist; point it at the training model_dir '
                  '(or a TF2 model zoo / exported folder).' % FLAGS.checkpoint_dir)
    for name in ('eval_every_n',):
      if FLAGS[name].present:
        raise usage('--%s only applies to training, but --checkpoint_dir selects evaluation; '
                    'remove one of them.' % name)
  elif FLAGS.eval_on_train_data:
    raise usage('--eval_on_train_data only applies to evaluation; add --checkpoint_dir=<the '
                'training model_dir> or remove it.')
  for name in ('eval_every_n', 'checkpoint_every_n', 'sample_1_of_n_eval_examples'):
    if FLAGS[name].value is not None and FLAGS[name].value < 1:
      raise usage('--%s=%d: it must be >= 1.' % (name, FLAGS[name].value))
  if FLAGS.eval_timeout < 0:
    raise usage('--eval_timeout=%d: it must be >= 0 seconds.' % FLAGS.eval_timeout)
  if FLAGS.num_workers < 1:
    raise usage('--num_workers=%d: it must be >= 1.' % FLAGS.num_workers)
  if not FLAGS.checkpoint_dir and not FLAGS.use_tpu and FLAGS.num_workers > 1:
    if FLAGS.eval_every_n:
      raise usage('--eval_every_n is not supported with --num_workers > 1: evaluate as a separate '
                  'job, model_main.py --checkpoint_dir=<model_dir> (docs/distributed.md).')
    strategy.check_cluster(FLAGS.num_workers)  # TF_CONFIG, before TensorFlow starts


def _mode():
  if FLAGS.checkpoint_dir:
    return 'eval_on_train' if FLAGS.eval_on_train_data else 'eval'
  return 'train_and_eval' if FLAGS.eval_every_n else 'train'


def main(unused_argv):
  # Imported here so that --help is fast and config errors print before TF initializes devices.
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_validation
  try:
    _check_flags()  # before TensorFlow is imported: a wrong flag fails in a second
  except config_validation.UsageError as e:
    print(config_validation.error_line(e), file=sys.stderr)
    sys.exit(2)
  from object_detection.utils import quiet_logs
  quiet_logs.quiet_tensorflow_startup()  # before the first TensorFlow import
  from object_detection import model_lib_v2
  from object_detection.builders import dataset_builder
  from object_detection.training import checkpointing
  from object_detection.training import determinism
  from object_detection.training import strategy
  # pylint: enable=g-import-not-at-top
  try:
    distribution = None
    if not FLAGS.checkpoint_dir and (FLAGS.use_tpu or FLAGS.num_workers > 1):
      # Before any other TensorFlow op (the config checks read records): MultiWorkerMirroredStrategy
      # configures the runtime's collective ops, which only works at startup (as does TPU init).
      distribution = strategy.get_strategy(FLAGS.use_tpu, FLAGS.tpu_name, FLAGS.num_workers)
    if FLAGS.seed is not None:
      determinism.make_deterministic(FLAGS.seed)
    # Every config and input check runs here, before a model or dataset is built.
    configs = model_lib_v2.load_configs(
        FLAGS.pipeline_config_path, FLAGS.config_override, FLAGS.num_train_steps,
        FLAGS.sample_1_of_n_eval_examples,
        FLAGS.sample_1_of_n_eval_on_train_examples,
        mode=_mode())
    if FLAGS.checkpoint_dir:
      model_lib_v2.eval_continuously(
          pipeline_config_path=FLAGS.pipeline_config_path,
          model_dir=FLAGS.model_dir,
          config_override=FLAGS.config_override,
          train_steps=FLAGS.num_train_steps,
          sample_1_of_n_eval_examples=FLAGS.sample_1_of_n_eval_examples,
          sample_1_of_n_eval_on_train_examples=FLAGS.sample_1_of_n_eval_on_train_examples,
          checkpoint_dir=FLAGS.checkpoint_dir,
          timeout=FLAGS.eval_timeout,
          eval_on_train_data=FLAGS.eval_on_train_data,
          jit_compile=FLAGS.jit_compile,
          configs=configs)
    else:
      model_lib_v2.train_loop(
          pipeline_config_path=FLAGS.pipeline_config_path,
          model_dir=FLAGS.model_dir,
          config_override=FLAGS.config_override,
          train_steps=FLAGS.num_train_steps,
          use_tpu=FLAGS.use_tpu,
          tpu_name=FLAGS.tpu_name,
          num_workers=FLAGS.num_workers,
          strategy=distribution,
          checkpoint_every_n=FLAGS.checkpoint_every_n,
          record_summaries=FLAGS.record_summaries,
          eval_every_n=FLAGS.eval_every_n,
          jit_compile=FLAGS.jit_compile,
          sample_1_of_n_eval_examples=FLAGS.sample_1_of_n_eval_examples,
          configs=configs)
  except config_validation.ConfigError as e:
    # Config, input-file and flag errors (every project error type of bad input subclasses it).
    # These name their own subject (the flag, the record file, the checkpoint), not the config.
    own_subject = (dataset_builder.CorruptRecordError, checkpointing.ResumeError,
                   strategy.StrategyError)
    path = None if isinstance(e, own_subject) else FLAGS.pipeline_config_path
    print(config_validation.error_line(e, path), file=sys.stderr)
    sys.exit(2)
  except model_lib_v2.NonFiniteLossError as e:
    print(str(e), file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
