"""Training and continuous evaluation (TF OD API `model_lib_v2` entry points), a thin orchestrator.

The pieces live in `object_detection/training/`: strategy choice, the distributed train step,
checkpointing, fine-tuning, progress logging, and the seed recipe (ReduceLROnPlateau, early
stopping, best checkpoint). Evaluation is `eval_util.evaluate` on weights loaded by
`checkpoint_utils.restore_for_inference` (EMA weights when `use_moving_average`), in-training and
continuous alike, so both see exactly what an export would.
"""
import os
import time

from absl import logging
import tensorflow as tf

from object_detection.builders import dataset_builder
from object_detection.data_decoders import bad_examples
from object_detection.training import checkpoint_evaluator
from object_detection.training import checkpointing
from object_detection.training import fine_tune
from object_detection.training import precision
from object_detection.training import progress
from object_detection.training import recipe as recipe_lib
from object_detection.training import strategy as strategy_lib
from object_detection.training import train_step as train_step_lib
from object_detection.training import watched_run
from object_detection.training import xla
from object_detection.utils import checkpoint_utils

NonFiniteLossError = progress.NonFiniteLossError


def load_configs(pipeline_config_path, config_override=None, train_steps=None,
                 sample_1_of_n_eval_examples=None, sample_1_of_n_eval_on_train_examples=None,
                 mode=None, check_files=True):
  """Reads, overrides and validates the pipeline config; returns the configs dict.

  The one config loader of training, evaluation and the entry points: nothing heavy is built.

  Args:
    pipeline_config_path: text-format pipeline config.
    config_override: text-format TrainEvalPipelineConfig merged over it.
    train_steps: overrides train_config.num_steps when set (--num_train_steps).
    sample_1_of_n_eval_examples / sample_1_of_n_eval_on_train_examples: eval subsampling.
    mode: what the run does, to also check the files it reads
      (`config_validation.check_inputs`): 'train', 'train_and_eval', 'eval' or
      'eval_on_train'; 'export' checks the model part alone. None checks the whole config alone.
    check_files: False skips the file checks of `mode` (its config parts are still validated).

  Raises:
    config_validation.ConfigError (or a subclass: ConfigParseError, ConfigFileNotFoundError,
      UsageError): the message names the file, field or flag and what to do.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  if train_steps is not None and int(train_steps) < 0:
    raise config_validation.UsageError('--num_train_steps=%d: it must be >= 1 (or unset to use '
                                       'train_config.num_steps).' % int(train_steps))
  configs = config_util.get_configs_from_pipeline_file(pipeline_config_path,
                                                       config_override=config_override)
  if train_steps:
    configs['train_config'].num_steps = int(train_steps)
  if sample_1_of_n_eval_examples and sample_1_of_n_eval_examples > 1:
    for eval_input_config in configs['eval_input_configs']:
      eval_input_config.sample_1_of_n_examples = int(sample_1_of_n_eval_examples)
  if sample_1_of_n_eval_on_train_examples and sample_1_of_n_eval_on_train_examples > 1:
    configs['_sample_1_of_n_eval_on_train_examples'] = int(sample_1_of_n_eval_on_train_examples)
  public = {k: v for k, v in configs.items() if not k.startswith('_')}
  # Evaluation does not check the training part: a model zoo config whose augmentation is not
  # implemented here still evaluates.
  if mode == 'export':  # export builds the model only
    parts = ('model',)
  elif mode in ('eval', 'eval_on_train'):
    parts = ('model', 'eval')
  else:
    parts = config_validation.ALL_PARTS
  config_validation.validate_pipeline_configs(public, parts)
  if mode not in (None, 'export') and check_files:
    config_validation.check_inputs(public, mode)
  return configs


def _is_chief(strategy):
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not getattr(resolver, 'task_type', None):
    return True
  return resolver.task_type == 'chief' or (resolver.task_type == 'worker' and
                                           resolver.task_id == 0)


def _task_id(strategy):
  """This worker's TF_CONFIG task index, or None outside a multi-worker cluster."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  return getattr(resolver, 'task_id', None) if resolver is not None else None


def _num_workers(strategy):
  """Number of worker machines of `strategy` (1 for MirroredStrategy / one TPU host)."""
  return int(getattr(strategy.extended, '_num_workers', 1) or 1)


class _SilentLogger(object):
  """The progress logger of non-chief workers: the chief prints and writes TensorBoard alone."""

  def step(self, step, losses, learning_rate):
    del step, losses, learning_rate

  def close(self):
    pass


def _next_batch(iterator, input_config, reader_name):
  """next(iterator), with tf.data's DataLossError (which names no file) turned into a
  CorruptRecordError naming the corrupt file and record."""
  try:
    return next(iterator)
  except tf.errors.DataLossError as e:
    raise dataset_builder.explain_data_loss_error(input_config, e, reader_name) from None


def _numeric(strategy, batch):
  """Drops string tensors (source_id, key): the step does not use them and XLA cannot take them."""
  def keep(value):
    return strategy.experimental_local_results(value)[0].dtype != tf.string
  return tuple({k: v for k, v in part.items() if keep(v)} for part in batch)


def train_loop(pipeline_config_path, model_dir, config_override=None, train_steps=None,
               use_tpu=False, checkpoint_every_n=1000, record_summaries=True, eval_every_n=None,
               strategy=None, num_workers=1, tpu_name=None, jit_compile=False,
               num_train_images_to_summarize=3, model_fn=None, train_input_fn=None,
               eval_input_fn=None, **kwargs):
  """Trains the model of `pipeline_config_path` into `model_dir` (resuming when possible).

  Args:
    pipeline_config_path: pipeline.config path (input paths inside are relative to the CWD).
    model_dir: output directory: ckpt-N (max 7 kept), pipeline.config, train/ (TensorBoard),
      eval/ (metrics_<step>.json + TensorBoard) with eval_every_n, best/ with
      best_checkpoint_metric, training_state.json (recipe state and the step a finished run
      stopped at). At start, folders of a save killed half-way are deleted and a damaged latest
      checkpoint is moved to damaged_checkpoints/ (the previous intact one is resumed from, and
      one line says so); pipeline.config is only (re)written once the config has been checked
      against the checkpoint it resumes from.
    config_override: text-format TrainEvalPipelineConfig merged into the file's config.
    train_steps: overrides train_config.num_steps.
    use_tpu, tpu_name, num_workers: strategy choice (see training/strategy.py); ignored when
      `strategy` is given.
    checkpoint_every_n: save every n steps (and at the last step).
    record_summaries: write TensorBoard summaries to model_dir/train.
    eval_every_n: evaluate every n steps (and at the last step) on eval_input_reader; needed by
      reduce_lr_on_plateau, early_stopping and best_checkpoint_metric.
    jit_compile: XLA-compile the train step (and the in-training evaluation): the config must
      select the static-shape path (`training/xla.py`, docs/accelerators.md).

    Raises (besides the list below) xla.JitCompileError: jit_compile without the static-shape
    fields.
    num_train_images_to_summarize: training images (with ground truth) written at step 0.
    model_fn: optional replacement for model_builder.build(model_config, is_training).
    train_input_fn / eval_input_fn: optional replacements for inputs.train_input /
      inputs.eval_input (same signatures).
    **kwargs: `sample_1_of_n_eval_examples` is honoured; `configs` (an already loaded and
      validated configs dict) replaces reading `pipeline_config_path`; others are ignored (TF OD
      API compat).

  Returns:
    dict: {'step': final global step, 'metrics': last eval metrics or None,
           'stopped_early': bool, 'checkpoint': last checkpoint path}.

  Raises:
    config_validation.ConfigError: bad config. fine_tune.FineTuneError: unusable fine-tune
    checkpoint. NonFiniteLossError: a loss became NaN/Inf (nothing saved for that step).
    dataset_builder.CorruptRecordError: a TFRecord file is corrupt (names the file and record).
    ValueError: the checkpoint to resume from does not fit the config (pipeline.config is kept).
  """
  configs = kwargs.get('configs') or load_configs(
      pipeline_config_path, config_override, train_steps,
      kwargs.get('sample_1_of_n_eval_examples'))
  train_config = configs['train_config']
  num_steps = int(train_config.num_steps)
  if num_steps <= 0:
    raise ValueError('train_config.num_steps must be > 0 (or pass --num_train_steps).')
  policy = precision.policy_name(train_config)
  if jit_compile or use_tpu:  # before anything is built: every missing static-shape field
    # A TPU compiles the whole step with XLA, so it needs the same fields as --jit_compile.
    xla.check(configs, training=True, inference=bool(eval_every_n),
              flag='--use_tpu' if use_tpu else '--jit_compile')
  strategy = strategy or strategy_lib.get_strategy(use_tpu, tpu_name, num_workers)
  chief = _is_chief(strategy)
  replicas = int(strategy.num_replicas_in_sync)
  if int(train_config.batch_size) % replicas:
    # tf.distribute's InputContext.get_per_replica_batch_size would refuse it from inside tf.data.
    from object_detection.utils import config_validation  # pylint: disable=g-import-not-at-top
    raise config_validation.ConfigError(
        'Invalid pipeline config: `train_config.batch_size` is %d, the global batch (TF OD API), '
        'which must be divisible by the %d replicas in sync (%d per worker x %d workers); set a '
        'multiple of %d.' % (int(train_config.batch_size), replicas, replicas // _num_workers(
            strategy), _num_workers(strategy), replicas))
  if eval_every_n and _num_workers(strategy) > 1:
    # Only the chief would evaluate: an early stop or a plateau LR change would then be the
    # chief's alone, and the other workers would wait for it forever or train with another LR.
    from object_detection.utils import config_validation  # pylint: disable=g-import-not-at-top
    raise config_validation.UsageError(
        '--eval_every_n is not supported with --num_workers > 1: evaluate as a separate job, '
        'model_main.py --checkpoint_dir=<model_dir> (docs/distributed.md).')
  if chief:
    # Before the CheckpointManager reads the folder (this creates it): leftovers of a killed
    # save go, a damaged latest checkpoint is set aside (with one line saying which one is used
    # instead). The other workers read model_dir only after creating their variables, which
    # waits for the chief's (MultiWorkerMirroredStrategy broadcasts the chief's initial values).
    checkpointing.prepare_model_dir(model_dir)

  # Keras layers take the global policy when they are built (here, first pass included); it is
  # restored at once, so the in-training evaluator and later models in this process are float32.
  with precision.policy_scope(policy):
    run = _build_training(configs, strategy, model_fn, train_input_fn)
  step_optimizer = run.optimizer
  if policy != precision.FLOAT32:
    print('Mixed precision: %s compute, float32 variables and losses.' % policy)
  if precision.uses_loss_scaling(policy):
    # The checkpoint keeps the same keys, plus optimizer/loss_scale/* (Keras' wrapper delegates
    # its tracking to the wrapped optimizer), which float32 / bfloat16 runs ignore on resume.
    with strategy.scope():
      step_optimizer = precision.loss_scale_optimizer(run.optimizer)
  # Non-chief workers save into a temporary folder (every worker must take part in a save).
  save_dir = checkpointing.worker_checkpoint_dir(model_dir, chief, _task_id(strategy))
  manager = _resume_or_initialize(run, configs, model_dir, save_dir)
  trainable = _trainable_variables(run.model, train_config)
  if chief:
    # Only now that the config has been checked against the checkpoint it resumes from: a resume
    # refused for a changed config keeps the pipeline.config the checkpoints were trained with.
    _write_pipeline_config(configs, model_dir)
  step_fn = train_step_lib.make_train_step(
      strategy, run.model, step_optimizer, trainable, run.global_step,
      bool(train_config.add_regularization_loss),
      train_config.gradient_clipping_by_norm or None, jit_compile=jit_compile,
      unpad_groundtruth_tensors=bool(train_config.unpad_groundtruth_tensors))

  recipe = recipe_lib.Recipe(train_config, model_dir, run.built.plateau_variable)
  if recipe.plateau is not None and not eval_every_n:
    logging.warning('reduce_lr_on_plateau_learning_rate without --eval_every_n: the learning '
                    'rate will never be reduced.')
  evaluator = checkpoint_evaluator.CheckpointEvaluator(
      configs, model_dir, model_fn=model_fn, eval_input_fn=eval_input_fn,
      jit_compile=jit_compile) if (
          eval_every_n and chief) else None
  writer = tf.summary.create_file_writer(os.path.join(model_dir, 'train')) if (
      chief and record_summaries) else None
  if writer is not None and int(run.global_step.numpy()) == 0 and num_train_images_to_summarize:
    features, labels = tf.nest.map_structure(
        lambda v: strategy.experimental_local_results(v)[0], run.first_batch)
    progress.write_train_images(writer, features, labels, 0, num_train_images_to_summarize)
  logger = progress.ProgressLogger(int(run.global_step.numpy()), num_steps,
                                   int(train_config.batch_size), train_config.log_every_n_steps,
                                   writer, record_summaries) if chief else _SilentLogger()
  schedule = _Schedule(num_steps, checkpoint_every_n, eval_every_n if evaluator else None)
  try:
    result = _run_steps(run, configs, step_fn, manager, schedule, logger, evaluator, recipe)
  finally:
    logger.close()
    if writer is not None:
      writer.flush()
    checkpointing.remove_worker_checkpoint_dir(save_dir, model_dir)
  if not chief:
    print('Worker %s finished at step %d (the chief writes %s).' % (
        _task_id(strategy), result['step'], model_dir))
    result['checkpoint'] = None  # its own copy is deleted
    return result
  checkpointing.set_finished_step(model_dir, result['step'])  # continuous eval stops here
  print('Training finished at step %d; last checkpoint %s.' % (result['step'],
                                                               result['checkpoint']))
  for line in bad_examples.summary_lines():
    print(line)
  return result


class _TrainingRun(object):
  """What one training run builds: model, optimizer (+ schedule), step counter, input."""

  def __init__(self, strategy, model, built, global_step, iterator, first_batch):
    self.strategy = strategy
    self.model = model
    self.built = built
    self.optimizer = built.optimizer
    self.global_step = global_step
    self.iterator = iterator
    self.first_batch = first_batch


def _build_training(configs, strategy, model_fn=None, train_input_fn=None):
  """Builds the training model, its input, optimizer and variables (+ EMA slots).

  The variables are created by one forward/backward pass on the first batch (the TF OD API's
  `_ensure_model_is_built`), so checkpoints can be restored into them.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection.builders import optimizer_builder
  if model_fn is None:
    from object_detection.builders import model_builder
  if train_input_fn is None:
    from object_detection import inputs
  # pylint: enable=g-import-not-at-top
  model_config = configs['model']
  train_config = configs['train_config']
  with strategy.scope():
    detection_model = (model_fn or model_builder.build)(model_config, is_training=True)

    def dataset_fn(input_context):
      return (train_input_fn or inputs.train_input)(
          train_config, configs['train_input_config'], model_config, model=detection_model,
          input_context=input_context)

    dataset = strategy.distribute_datasets_from_function(dataset_fn)
    global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step',
                              aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    built = optimizer_builder.build_with_schedule(train_config.optimizer, global_step)
  iterator = iter(dataset)
  first_batch = _next_batch(iterator, configs['train_input_config'], 'train_input_reader')
  train_step_lib.make_build_fn(
      strategy, detection_model, bool(train_config.add_regularization_loss),
      bool(train_config.unpad_groundtruth_tensors))(*first_batch)
  if built.use_moving_average:
    with strategy.scope():
      built.optimizer.shadow_copy(detection_model)
  return _TrainingRun(strategy, detection_model, built, global_step, iterator, first_batch)


def _resume_or_initialize(run, configs, model_dir, save_dir=None):
  """Resumes from model_dir's latest checkpoint, else loads fine_tune_checkpoint.

  `save_dir` is where the returned manager saves (default model_dir; a non-chief worker's
  temporary folder with MultiWorkerMirroredStrategy): every worker resumes from model_dir.

  Returns:
    the run's tf.train.CheckpointManager.

  Raises:
    ValueError: the checkpoint to resume from does not fit the config.
    fine_tune.FineTuneError: unusable fine-tune checkpoint.
  """
  train_config = configs['train_config']
  save_dir = save_dir or model_dir
  ckpt, manager = checkpointing.make_manager(save_dir, run.model, run.optimizer, run.global_step)
  resume_from = (manager.latest_checkpoint if save_dir == model_dir else
                 tf.train.latest_checkpoint(model_dir))
  if resume_from and not checkpoint_utils.holds_model_variables(resume_from):
    # The TF OD API's step-0 checkpoint of a run without fine_tune_checkpoint: nothing to resume
    # (the TF OD API itself starts over from it).
    print('Note: %s holds no model variables (a TF OD API step-0 checkpoint): starting from step 0.'
          % resume_from)
    resume_from = None
  if resume_from:
    checkpointing.restore_for_resume(ckpt, resume_from, run.model)
    print('Resuming from %s (step %d).' % (resume_from, int(run.global_step.numpy())))
    return manager
  if train_config.fine_tune_checkpoint:
    # TF OD API: an unset type falls back on the deprecated from_detection_checkpoint.
    checkpoint_type = train_config.fine_tune_checkpoint_type or (
        'detection' if train_config.from_detection_checkpoint else 'classification')
    fine_tune.load_fine_tune_checkpoint(run.model, train_config.fine_tune_checkpoint,
                                        checkpoint_type, configs['model'])
  if run.built.use_moving_average:
    # Start the averages at the initial weights (tfa MovingAverage / tf.train EMA behaviour)
    # instead of the zeros the Model Garden wrapper uses.
    optimizer = run.optimizer
    for average, weight in zip(optimizer._average_weights, optimizer._model_weights):  # pylint: disable=protected-access
      average.assign(weight)
  return manager


def _trainable_variables(detection_model, train_config):
  """The variables the optimizer updates (freeze_variables / update_trainable_variables).

  Raises:
    ValueError: the filters leave nothing to train.
  """
  trainable = train_step_lib.filter_trainable_variables(
      detection_model.trainable_variables, train_config.update_trainable_variables,
      train_config.freeze_variables)
  if len(trainable) != len(detection_model.trainable_variables):
    print('Training %d of %d trainable variables (freeze_variables / '
          'update_trainable_variables).' % (len(trainable),
                                            len(detection_model.trainable_variables)))
  if not trainable:
    raise ValueError('freeze_variables / update_trainable_variables leave no variable to train.')
  return trainable


def _write_pipeline_config(configs, model_dir):
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  checkpointing.write_pipeline_config(
      config_util.create_pipeline_proto_from_configs(
          {k: v for k, v in configs.items() if not k.startswith('_')}), model_dir)


class _Schedule(object):
  """When the loop saves and evaluates: every n steps and at the last step."""

  def __init__(self, num_steps, checkpoint_every_n, eval_every_n):
    self.num_steps = num_steps
    self.checkpoint_every_n = checkpoint_every_n
    self.eval_every_n = eval_every_n

  def evaluate_at(self, step):
    return bool(self.eval_every_n) and (step % self.eval_every_n == 0 or step == self.num_steps)

  def save_at(self, step):
    return (step % self.checkpoint_every_n == 0 or step == self.num_steps or
            self.evaluate_at(step))


def _run_steps(run, configs, step_fn, manager, schedule, logger, evaluator, recipe):
  """The training loop: step, log, check, save, evaluate, until num_steps or early stopping.

  Raises:
    NonFiniteLossError: a loss or an updated weight is NaN/Inf (that step is not saved).
    dataset_builder.CorruptRecordError: a train TFRecord is corrupt.
  """
  input_config = configs['train_input_config']
  step = int(run.global_step.numpy())
  pending = run.first_batch
  last_checkpoint = manager.latest_checkpoint
  metrics, stopped_early = None, False
  while step < schedule.num_steps:
    batch, pending = (pending or _next_batch(run.iterator, input_config,
                                             'train_input_reader')), None
    losses = {k: float(v) for k, v in step_fn(*_numeric(run.strategy, batch)).items()}
    step = int(run.global_step.numpy())
    progress.check_finite(losses, step)  # raises before anything of this step is saved
    logger.step(step, losses, float(run.built.learning_rate_fn()))
    if schedule.save_at(step):
      # The loss of step k is computed before its update: check the updated weights too.
      progress.check_weights_finite(run.model, step)
      last_checkpoint = checkpointing.save(manager, run.global_step)
    if evaluator is not None and schedule.evaluate_at(step):
      metrics = evaluator.evaluate(last_checkpoint, step)
      if recipe.active and recipe.update(metrics, last_checkpoint, step):
        stopped_early = True
        break
  return {'step': step, 'metrics': metrics, 'stopped_early': stopped_early,
          'checkpoint': last_checkpoint}



# Seconds between checks, while waiting for a checkpoint, that the watched run has not finished
# (a run stopped early never writes the checkpoint of num_steps).
_FINISHED_POLL_SECS = 5


def eval_continuously(pipeline_config_path, model_dir, checkpoint_dir, config_override=None,
                      train_steps=None, sample_1_of_n_eval_examples=1,
                      sample_1_of_n_eval_on_train_examples=1, use_tpu=False,
                      postprocess_on_cpu=False, eval_index=0, timeout=3600,
                      wait_interval=1, eval_on_train_data=False, eval_input_fn=None,
                      jit_compile=False, **kwargs):
  """Evaluates each new checkpoint of `checkpoint_dir` once, writing to `model_dir/eval`.

  Unlike the TF OD API (tensorflow/models#10841, #9866), this stops (a) after evaluating the final
  checkpoint of the run that writes `checkpoint_dir`, and (b) after `timeout` seconds without a new
  checkpoint (tf.train.checkpoints_iterator's timeout). The final step is the run's own: the step
  its `training_state.json` says it finished at (early stopping included), else the `num_steps` of
  its saved `pipeline.config`, else this config's `train_config.num_steps`; one line says which.
  If evaluation is slower than training, intermediate checkpoints are skipped (the latest one is
  evaluated). `checkpoint_dir` may be a training model_dir (this project's or the TF OD API's) or a
  model zoo / exported folder (its `checkpoint/` sub-folder is read; without a `checkpoint` state
  file there, its newest ckpt-N is evaluated once). A checkpoint holding no model variables (the TF
  OD API's step-0 checkpoint of a run without fine_tune_checkpoint) is skipped with a message.

  jit_compile: XLA-compile the evaluation function (static-shape config, `training/xla.py`).

  Returns:
    dict step -> metrics dict for every evaluated checkpoint.

  Raises:
    dataset_builder.CorruptRecordError: an eval TFRecord file is corrupt (names it).
    xla.JitCompileError: jit_compile without the static-shape fields.
  """
  del use_tpu, postprocess_on_cpu
  # Evaluation validates the model and eval parts only (a zoo config's training part may use
  # what this project does not train with); model_main.py has checked the files already.
  configs = kwargs.get('configs') or load_configs(
      pipeline_config_path, config_override, train_steps, sample_1_of_n_eval_examples,
      sample_1_of_n_eval_on_train_examples,
      mode='eval_on_train' if eval_on_train_data else 'eval', check_files=False)
  if jit_compile:
    xla.check(configs, inference=True)
  num_steps = int(configs['train_config'].num_steps)
  evaluator = checkpoint_evaluator.CheckpointEvaluator(
      configs, model_dir, eval_on_train_data, eval_index, eval_input_fn=eval_input_fn,
      jit_compile=jit_compile)
  results = {}
  # A TF OD API export / model zoo folder keeps its checkpoint in checkpoint/.
  folder, checkpoint_dir = checkpoint_dir, checkpoint_utils.checkpoint_directory(checkpoint_dir)
  if checkpoint_dir != folder and tf.train.latest_checkpoint(checkpoint_dir) is None:
    # A zoo folder copied without the `checkpoint` state file that tf.train.checkpoints_iterator
    # waits for: its checkpoint is evaluated once.
    path = checkpoint_utils.latest_checkpoint(checkpoint_dir)
    if path is not None:
      print('%s has no `checkpoint` state file: evaluating %s once.' % (checkpoint_dir, path))
      step = checkpoint_utils.checkpoint_step(path)
      metrics = evaluator.evaluate(path, step)
      if metrics is not None:
        results[step] = metrics
      return results
  run = watched_run.WatchedRun(folder, num_steps)
  run.final_step()
  waiting = {'since': time.time(), 'last_step': None, 'finished': False}

  def stop_waiting():
    # Called by checkpoints_iterator after each _FINISHED_POLL_SECS without a new checkpoint.
    last = waiting['last_step']
    if last is not None and run.finished() and last >= run.final_step():
      waiting['finished'] = True
      return True
    return time.time() - waiting['since'] >= timeout

  for path in tf.train.checkpoints_iterator(
      checkpoint_dir, min_interval_secs=wait_interval, timeout=min(timeout, _FINISHED_POLL_SECS),
      timeout_fn=stop_waiting):
    try:
      step = checkpoint_utils.checkpoint_step(path)
      metrics = evaluator.evaluate(path, step)
      if metrics is None:
        continue
      results[step] = metrics
    except tf.errors.NotFoundError:
      # The CheckpointManager deleted it (max_to_keep) before we read it: wait for the next one.
      logging.warning('Checkpoint %s disappeared before it was evaluated; skipping.', path)
      continue
    finally:
      waiting['since'] = time.time()
    waiting['last_step'] = step
    final_step = run.final_step()
    if final_step > 0 and step >= final_step:
      print('Evaluated the final checkpoint (step %d >= %d); exiting.' % (step, final_step))
      break
  else:
    if waiting['finished']:
      print('The run in %s finished at step %d, which is evaluated; exiting.' % (
          folder, run.final_step()))
    else:
      print('No new checkpoint in %s for %s s; exiting.' % (checkpoint_dir, timeout))
  return results
