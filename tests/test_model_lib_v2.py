"""Training loop, checkpoints, EMA restore, freeze, fine-tune, recipe and continuous eval.

Loop mechanics use the tiny `DetectionModel` stand-in of tests/fake_detection_model.py (seconds per
test); the real Mask R-CNN runs in tests/test_model_main.py.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_detection_model as fake  # pylint: disable=g-import-not-at-top,wrong-import-position

from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection.training import checkpoint_evaluator  # pylint: disable=wrong-import-position
from object_detection.training import checkpointing  # pylint: disable=wrong-import-position
from object_detection.training import early_stopping  # pylint: disable=wrong-import-position
from object_detection.training import fine_tune  # pylint: disable=wrong-import-position
from object_detection.training import lr_plateau  # pylint: disable=wrong-import-position
from object_detection.training import progress  # pylint: disable=wrong-import-position
from object_detection.training import recipe as recipe_lib  # pylint: disable=wrong-import-position
from object_detection.training import train_step  # pylint: disable=wrong-import-position
from object_detection.utils import checkpoint_utils  # pylint: disable=wrong-import-position

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)

BASE_CONFIG = """
model { faster_rcnn { num_classes: 2 feature_extractor { type: 'fake' } } }
train_config {
  batch_size: 2 num_steps: 4 log_every_n_steps: 1
  optimizer { momentum_optimizer { learning_rate { constant_learning_rate {
    learning_rate: 0.01 } } momentum_optimizer_value: 0.9 } use_moving_average: false }
}
train_input_reader { }
eval_config { }
eval_input_reader { }
"""


def make_configs(override=''):
  """configs dict (the keys of `config_util.get_configs_from_pipeline_file`) built directly from
  the pipeline proto."""
  from object_detection.protos import pipeline_pb2  # pylint: disable=g-import-not-at-top
  pipeline = text_format.Parse(BASE_CONFIG, pipeline_pb2.TrainEvalPipelineConfig())
  if override:
    pipeline.MergeFrom(text_format.Parse(override, pipeline_pb2.TrainEvalPipelineConfig()))
  return {'model': pipeline.model, 'train_config': pipeline.train_config,
          'train_input_config': pipeline.train_input_reader, 'eval_config': pipeline.eval_config,
          'eval_input_configs': list(pipeline.eval_input_reader),
          'eval_input_config': pipeline.eval_input_reader[0]}


def run_fake_training(model_dir, num_steps=4, override='', **kwargs):
  configs = make_configs(override)
  configs['train_config'].num_steps = num_steps
  return model_lib_v2.train_loop(
      None, model_dir, configs=configs, model_fn=fake.fake_model_fn,
      train_input_fn=fake.fake_train_input, eval_input_fn=fake.fake_eval_input,
      num_train_images_to_summarize=1, **kwargs)


def _python(code, **popen_kwargs):
  pythonpath = os.pathsep.join(
      p for p in (REPO_ROOT, TESTS_DIR, os.environ.get('PYTHONPATH')) if p)
  env = dict(os.environ, PYTHONPATH=pythonpath, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.Popen([sys.executable, '-c', code], cwd=REPO_ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **popen_kwargs)


def _model_variables(model):
  return {v.name: v.numpy() for v in model.variables}


# ---------------------------------------------------------------- training loop basics


def test_train_loop_trains_checkpoints_and_summaries(tmp_path):
  model_dir = str(tmp_path / 'model')
  result = run_fake_training(model_dir, num_steps=4, checkpoint_every_n=2)
  assert result['step'] == 4
  assert tf.train.latest_checkpoint(model_dir).endswith('ckpt-4')
  assert os.path.exists(os.path.join(model_dir, 'ckpt-2.index'))
  assert checkpoint_utils.checkpoint_step(result['checkpoint']) == 4
  assert os.path.exists(os.path.join(model_dir, 'pipeline.config'))
  tags = set()
  for path in tf.io.gfile.glob(os.path.join(model_dir, 'train', 'events*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  for tag in ('Loss/RPNLoss/localization_loss', 'Loss/BoxClassifierLoss/mask_loss',
              'Loss/regularization_loss', 'Loss/total_loss', 'learning_rate', 'steps_per_sec',
              'train_input_images'):
    assert tag in tags, (tag, tags)


def test_record_summaries_false_writes_no_train_events(tmp_path):
  model_dir = str(tmp_path / 'model')
  run_fake_training(model_dir, num_steps=1, record_summaries=False)
  assert not tf.io.gfile.glob(os.path.join(model_dir, 'train', 'events*'))


def test_resume_after_kill_continues_from_last_checkpoint(tmp_path):
  model_dir = str(tmp_path / 'model')
  code = ('import test_model_lib_v2 as t; t.run_fake_training(%r, num_steps=100000, '
          'checkpoint_every_n=3)' % model_dir)
  proc = _python(code)
  deadline = time.time() + 300

  def saved_step():
    # The `checkpoint` state file, not ckpt-6.index: the index is written before the state file
    # names the new checkpoint, and a kill between the two leaves ckpt-3 as the latest one.
    latest = tf.train.latest_checkpoint(model_dir)
    return checkpoint_utils.checkpoint_step(latest) if latest else 0

  while time.time() < deadline and saved_step() < 6:
    time.sleep(0.2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  last = tf.train.latest_checkpoint(model_dir)
  assert last is not None, proc.stdout.read()
  killed_at = checkpoint_utils.checkpoint_step(last)
  assert killed_at >= 6 and killed_at % 3 == 0
  out = _python('import test_model_lib_v2 as t; r = t.run_fake_training(%r, num_steps=%d, '
                'checkpoint_every_n=3); print("FINAL", r["step"])' % (model_dir, killed_at + 2))
  text = out.communicate(timeout=120)[0]
  assert out.returncode == 0, text
  assert 'Resuming from %s (step %d)' % (last, killed_at) in text
  assert 'FINAL %d' % (killed_at + 2) in text
  assert 'step %d/%d' % (killed_at + 1, killed_at + 2) in text  # first step after resume


def test_two_logical_cpu_devices_train_two_steps(tmp_path):
  model_dir = str(tmp_path / 'model')
  code = """
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from object_detection.training import strategy as strategy_lib
import test_model_lib_v2 as t
strategy = strategy_lib.get_strategy()
print('REPLICAS', strategy.num_replicas_in_sync)
r = t.run_fake_training(%r, num_steps=2, strategy=strategy)
print('FINAL', r['step'])
""" % model_dir
  proc = _python(code)
  text = proc.communicate(timeout=180)[0]
  assert proc.returncode == 0, text
  assert 'REPLICAS 2' in text and 'FINAL 2' in text, text


def test_nan_loss_stops_naming_step_and_term_and_keeps_last_good_checkpoint(tmp_path):
  model_dir = str(tmp_path / 'model')
  override = ('train_config { optimizer { momentum_optimizer { learning_rate { '
              'constant_learning_rate { learning_rate: 1e30 } } } } }')
  with pytest.raises(progress.NonFiniteLossError) as info:
    run_fake_training(model_dir, num_steps=50, override=override, checkpoint_every_n=1)
  err = info.value
  assert err.step > 1 and err.term.startswith(('Loss/', 'gradient_norm'))
  assert 'at step %d' % err.step in str(err) and err.term in str(err)
  last = tf.train.latest_checkpoint(model_dir)
  assert checkpoint_utils.checkpoint_step(last) == err.step - 1
  reader = tf.train.load_checkpoint(last)
  for key in reader.get_variable_to_shape_map():
    if key.startswith('model/'):
      assert np.all(np.isfinite(reader.get_tensor(key))), key


def test_check_finite_names_component_before_total():
  with pytest.raises(progress.NonFiniteLossError, match='mask_loss is nan at step 7'):
    progress.check_finite({'Loss/total_loss': float('nan'),
                           'Loss/BoxClassifierLoss/mask_loss': float('nan'),
                           'Loss/RPNLoss/objectness_loss': 1.0}, 7)


# ---------------------------------------------------------------- EMA, freeze, fine-tune


def test_restore_for_inference_swaps_in_moving_averages(tmp_path):
  model_dir = str(tmp_path / 'model')
  run_fake_training(model_dir, num_steps=3, override=(
      'train_config { optimizer { use_moving_average: true moving_average_decay: 0.9 } }'))
  path = tf.train.latest_checkpoint(model_dir)
  reader = tf.train.load_checkpoint(path)
  raw_key = 'model/box_head/kernel/.ATTRIBUTES/VARIABLE_VALUE'
  ema_key = 'model/box_head/kernel/.OPTIMIZER_SLOT/optimizer/average/.ATTRIBUTES/VARIABLE_VALUE'
  assert not np.allclose(reader.get_tensor(raw_key), reader.get_tensor(ema_key))

  def restored_kernel(use_ema):
    model = fake.FakeDetectionModel(is_training=False)
    report = checkpoint_utils.restore_for_inference(model, model_dir, use_ema, (16, 16))
    assert report.step == 3 and not report.missing
    return model.box_head.kernel.numpy(), report

  kernel, report = restored_kernel(True)
  np.testing.assert_allclose(kernel, reader.get_tensor(ema_key))
  assert 'model/box_head/kernel/' in report.from_moving_average
  kernel, _ = restored_kernel(False)
  np.testing.assert_allclose(kernel, reader.get_tensor(raw_key))


def test_restore_for_inference_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='/nonexistent_x not found'):
    checkpoint_utils.restore_for_inference(fake.FakeDetectionModel(), '/nonexistent_x', False)
  with pytest.raises(FileNotFoundError, match='No checkpoint found in directory'):
    checkpoint_utils.restore_for_inference(fake.FakeDetectionModel(), str(tmp_path), False)


def test_restore_for_inference_rejects_ema_without_averages(tmp_path):
  model_dir = str(tmp_path / 'model')
  run_fake_training(model_dir, num_steps=1)
  with pytest.raises(ValueError, match='holds no moving averages'):
    checkpoint_utils.restore_for_inference(fake.FakeDetectionModel(is_training=False),
                                           model_dir, True, (16, 16))


def test_filter_trainable_variables_semantics():
  names = ['FeatureExtractor/conv1/kernel:0', 'FeatureExtractor/conv1/bias:0',
           'BoxPredictor/box/kernel:0', 'MaskPredictor/mask/kernel:0']
  variables = [tf.Variable(0.0, name=n[:-2]) for n in names]
  kept = train_step.filter_trainable_variables(variables, [], ['FeatureExtractor'])
  assert [v.name for v in kept] == names[2:]
  kept = train_step.filter_trainable_variables(variables, ['Predictor'], ['Mask'])
  assert [v.name for v in kept] == ['BoxPredictor/box/kernel:0']
  kept = train_step.filter_trainable_variables(variables, [], [])
  assert len(kept) == 4


def test_freeze_variables_keeps_frozen_weights_unchanged(tmp_path):
  model_dir = str(tmp_path / 'model')
  run_fake_training(model_dir, num_steps=2, checkpoint_every_n=1,
                    override='train_config { freeze_variables: "conv1" }')
  first = tf.train.load_checkpoint(os.path.join(model_dir, 'ckpt-1'))
  last = tf.train.load_checkpoint(os.path.join(model_dir, 'ckpt-2'))
  conv = 'model/backbone/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE'
  head = 'model/box_head/kernel/.ATTRIBUTES/VARIABLE_VALUE'
  np.testing.assert_array_equal(first.get_tensor(conv), last.get_tensor(conv))
  assert not np.allclose(first.get_tensor(head), last.get_tensor(head))


def _built_fake_model():
  model = fake.FakeDetectionModel()
  features, labels = next(iter(fake.fake_train_input(make_configs()['train_config'], None, None)))
  train_step.compute_losses(model, features, labels)
  return model


def test_fine_tune_classification_reports_and_loads(tmp_path, capsys):
  source = _built_fake_model()
  path = tf.train.Checkpoint(feature_extractor=source.backbone).save(str(tmp_path / 'cls'))
  target = _built_fake_model()
  report = fine_tune.load_fine_tune_checkpoint(target, path, 'classification',
                                               make_configs()['model'])
  assert len(report.restored) == 2 and not report.missing
  np.testing.assert_array_equal(target.backbone.variables[0].numpy(),
                                source.backbone.variables[0].numpy())
  out = capsys.readouterr().out
  assert 'restored 2 of 2 variables' in out and "extractor fake" in out


def test_fine_tune_full_reports_shape_mismatch_and_missing(tmp_path, capsys):
  source = _built_fake_model()
  path = tf.train.Checkpoint(model=tf.train.Checkpoint(
      backbone=source.backbone)).save(str(tmp_path / 'partial'))
  target = _built_fake_model()
  report = fine_tune.load_fine_tune_checkpoint(target, path, 'full', make_configs()['model'])
  assert len(report.restored) == 2 and len(report.missing) == 6
  assert 'skipped model/box_head/kernel/: not in the checkpoint' in capsys.readouterr().out


def test_fine_tune_full_other_num_classes_reports_each_mismatch_once(tmp_path, capsys):
  source = fake.FakeDetectionModel(num_classes=4)  # class head 5 wide instead of 3
  features, labels = next(iter(fake.fake_train_input(make_configs()['train_config'], None, None)))
  labels = dict(labels)
  key = fake._IF.groundtruth_classes  # pylint: disable=protected-access
  labels[key] = tf.pad(labels[key], [[0, 0], [0, 0], [0, 2]])
  train_step.compute_losses(source, features, labels)
  path = tf.train.Checkpoint(model=source).save(str(tmp_path / 'four_classes'))
  report = fine_tune.load_fine_tune_checkpoint(_built_fake_model(), path, 'full',
                                               make_configs()['model'])
  out = capsys.readouterr().out
  assert sorted(k for k, _, _ in report.shape_mismatch) == ['model/class_head/bias/',
                                                             'model/class_head/kernel/']
  assert 'skipped model/class_head/kernel/: shape [4, 5] in checkpoint vs [4, 3] in model' in out
  assert not [k for k in report.unused_checkpoint_keys if 'class_head' in k]
  assert 'not used' not in out


def test_fine_tune_checkpoint_matching_nothing_is_an_error(tmp_path):
  path = tf.train.Checkpoint(something=tf.Variable([1.0, 2.0])).save(str(tmp_path / 'other'))
  with pytest.raises(fine_tune.FineTuneError) as info:
    fine_tune.load_fine_tune_checkpoint(_built_fake_model(), path, 'classification',
                                        make_configs()['model'])
  assert path in str(info.value) and "'fake'" in str(info.value)
  with pytest.raises(fine_tune.FineTuneError, match='does not exist|not found'):
    fine_tune.load_fine_tune_checkpoint(_built_fake_model(), str(tmp_path / 'nope'), 'full',
                                        make_configs()['model'])


# ---------------------------------------------------------------- seed recipe (unit level)


def _plateau_config(**fields):
  from object_detection.protos import optimizer_pb2  # pylint: disable=g-import-not-at-top
  config = optimizer_pb2.ReduceLROnPlateauLearningRate(metric='m', **fields)
  return config


def test_reduce_lr_on_plateau_sequence_and_resume():
  lr_var = tf.Variable(0.0)
  config = _plateau_config(initial_learning_rate=0.1, patience=2, factor=0.5,
                           min_learning_rate=0.03)
  plateau = lr_plateau.ReduceLROnPlateau(config, lr_var)
  lrs = [plateau.update({'m': v}) for v in [0.1, 0.2, 0.2, 0.19, 0.3, 0.3, 0.3]]
  assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03])
  assert float(lr_var.numpy()) == pytest.approx(0.03)
  assert plateau.update({'m': 0.1}) == pytest.approx(0.03)  # min_learning_rate floor
  resumed = lr_plateau.ReduceLROnPlateau(config, tf.Variable(0.0))
  resumed.load_state_dict(json.loads(json.dumps(plateau.state_dict())))
  assert resumed.learning_rate == pytest.approx(0.03)
  assert float(resumed.lr_variable.numpy()) == pytest.approx(0.03)
  assert resumed.monitor.best == pytest.approx(0.3)
  with pytest.raises(KeyError, match="'m'"):
    plateau.update({'other': 1.0})


def test_reduce_lr_on_plateau_lower_is_better_with_min_delta():
  config = _plateau_config(initial_learning_rate=1.0, patience=1, factor=0.1,
                           metric_higher_is_better=False, min_delta=0.05)
  plateau = lr_plateau.ReduceLROnPlateau(config, None)
  assert [plateau.update({'m': v}) for v in [1.0, 0.9, 0.88, 0.5]] == pytest.approx(
      [1.0, 1.0, 0.1, 0.1])


def test_early_stopping_sequence():
  from object_detection.protos import train_pb2  # pylint: disable=g-import-not-at-top
  stopper = early_stopping.EarlyStopping(train_pb2.EarlyStopping(metric='m', patience=2))
  decisions = [stopper.update({'m': v}, step) for step, v in
               enumerate([0.1, 0.3, 0.2, 0.4, 0.4, 0.35])]
  assert decisions == [False, False, False, False, False, True]
  assert 'best 0.40000 at step 3' in stopper.message()


def test_best_checkpoint_keeper_copies_best_only(tmp_path):
  model_dir = str(tmp_path)
  var = tf.Variable(1.0)
  ckpt = tf.train.Checkpoint(v=var)
  keeper = early_stopping.BestCheckpointKeeper(model_dir, 'm', higher_is_better=True)
  for step, value in [(1, 0.2), (2, 0.5), (3, 0.4)]:
    var.assign(float(step))
    path = ckpt.write(os.path.join(model_dir, 'ckpt-%d' % step))
    keeper.update({'m': value}, path, step)
  best_dir = os.path.join(model_dir, 'best')
  assert tf.train.latest_checkpoint(best_dir).endswith('ckpt-2')
  assert not tf.io.gfile.glob(os.path.join(best_dir, 'ckpt-1*'))
  with open(os.path.join(best_dir, 'best_metric.json')) as f:
    assert json.load(f) == {'metric': 'm', 'value': 0.5, 'step': 2, 'checkpoint': 'ckpt-2'}
  restored = tf.Variable(0.0)
  tf.train.Checkpoint(v=restored).restore(tf.train.latest_checkpoint(best_dir))
  assert float(restored.numpy()) == 2.0


def test_recipe_state_survives_resume(tmp_path):
  from object_detection.protos import train_pb2  # pylint: disable=g-import-not-at-top
  configs = make_configs("""
    train_config {
      optimizer { momentum_optimizer { learning_rate { reduce_lr_on_plateau_learning_rate {
        initial_learning_rate: 0.1 patience: 1 factor: 0.5 metric: 'm' } } } }
      early_stopping { metric: 'm' patience: 3 }
    }""")
  model_dir = str(tmp_path)
  var = tf.Variable(0.1)
  recipe = recipe_lib.Recipe(configs['train_config'], model_dir, var)
  assert not recipe.update({'m': 0.5}, 'ckpt-1', 1)
  assert not recipe.update({'m': 0.4}, 'ckpt-2', 2)
  assert float(var.numpy()) == pytest.approx(0.05)
  var2 = tf.Variable(0.1)
  again = recipe_lib.Recipe(configs['train_config'], model_dir, var2)
  assert float(var2.numpy()) == pytest.approx(0.05)
  assert again.early_stopping.monitor.num_bad_evals == 1
  assert not again.update({'m': 0.4}, 'ckpt-3', 3)
  assert again.update({'m': 0.4}, 'ckpt-4', 4)  # third evaluation without improvement
  assert isinstance(train_pb2.EarlyStopping(), object)


def test_in_training_eval_drives_recipe(tmp_path, monkeypatch):
  """eval_every_n triggers evaluation on the saved checkpoint, and early stopping ends training."""
  evaluated = []

  def fake_evaluate(self, checkpoint_path, step):
    evaluated.append((os.path.basename(checkpoint_path), step))
    return {'m': 0.5}

  monkeypatch.setattr(checkpoint_evaluator.CheckpointEvaluator, 'evaluate', fake_evaluate)
  model_dir = str(tmp_path / 'model')
  result = run_fake_training(
      model_dir, num_steps=20, eval_every_n=2, checkpoint_every_n=100,
      override="train_config { early_stopping { metric: 'm' patience: 2 } "
               "best_checkpoint_metric: 'm' }")
  assert evaluated == [('ckpt-2', 2), ('ckpt-4', 4), ('ckpt-6', 6)]
  assert result['stopped_early'] and result['step'] == 6
  assert tf.train.latest_checkpoint(os.path.join(model_dir, 'best')).endswith('ckpt-2')
  state = checkpointing.load_state(model_dir)
  assert state['last_eval_step'] == 6 and state['early_stopping']['num_bad_evals'] == 2


# ---------------------------------------------------------------- continuous evaluation


def _write_checkpoints(directory, steps):
  step = tf.Variable(0, dtype=tf.int64)
  ckpt = tf.train.Checkpoint(step=step)
  manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=7, checkpoint_name='ckpt')
  for s in steps:
    step.assign(s)
    manager.save(checkpoint_number=s)


def _patch_evaluator(monkeypatch):
  evaluated = []

  def fake_evaluate(self, checkpoint_path, step):
    evaluated.append(step)
    return {'DetectionMasks_Precision/mAP': 0.1}

  monkeypatch.setattr(checkpoint_evaluator.CheckpointEvaluator, 'evaluate', fake_evaluate)
  return evaluated


def test_eval_continuously_stops_after_final_checkpoint(tmp_path, monkeypatch):
  evaluated = _patch_evaluator(monkeypatch)
  _write_checkpoints(str(tmp_path), [2, 4])
  start = time.time()
  results = model_lib_v2.eval_continuously(None, str(tmp_path), str(tmp_path),
                                           configs=make_configs(), timeout=30)
  assert evaluated == [4] and list(results) == [4]
  assert time.time() - start < 25  # did not wait for the timeout


def test_eval_continuously_gives_up_after_timeout(tmp_path, monkeypatch, capsys):
  evaluated = _patch_evaluator(monkeypatch)
  _write_checkpoints(str(tmp_path), [2])
  model_lib_v2.eval_continuously(None, str(tmp_path), str(tmp_path), configs=make_configs(),
                                 timeout=2)
  assert evaluated == [2]
  assert 'No new checkpoint' in capsys.readouterr().out


def test_jit_compile_without_the_static_shape_path_fails_before_building(tmp_path):
  from object_detection.training import xla  # pylint: disable=g-import-not-at-top
  with pytest.raises(xla.JitCompileError, match='use_static_shapes: true') as e:
    run_fake_training(str(tmp_path), jit_compile=True)
  assert 'train_config.unpad_groundtruth_tensors: false' in str(e.value)
  assert not os.listdir(str(tmp_path))  # nothing built or written


def test_seed_repeats_a_run_and_another_seed_changes_it(tmp_path):
  # A subprocess: op determinism is process-wide and cannot be switched off again.
  code = """
import numpy as np, tensorflow as tf
import test_model_lib_v2 as t
from object_detection.training import determinism
def run(name, seed):
  determinism.make_deterministic(seed)
  reader = tf.train.load_checkpoint(t.run_fake_training(%r + name, num_steps=3)['checkpoint'])
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if 'conv1' in k or 'head' in k}
a, b, c = run('/a', 0), run('/b', 0), run('/c', 1)
assert a and a.keys() == b.keys() == c.keys()
print('SAME', all(np.array_equal(a[k], b[k]) for k in a))
print('OTHER_SEED_DIFFERS', any(not np.array_equal(a[k], c[k]) for k in a))
""" % str(tmp_path)
  out = _python(code)
  text = out.communicate(timeout=300)[0]
  assert out.returncode == 0, text
  assert 'SAME True' in text and 'OTHER_SEED_DIFFERS True' in text, text


def test_negative_seed_is_refused():
  from object_detection.training import determinism  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match='--seed must be >= 0'):
    determinism.make_deterministic(-1)


# ---------------------------------------------------------------- damaged model_dir on resume


def _damage(path, how):
  with open(path, 'rb') as f:
    data = f.read()
  if how == 'truncate':
    data = data[:len(data) // 2]
  else:
    middle = len(data) // 2
    data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
  with open(path, 'wb') as f:
    f.write(data)


@pytest.mark.parametrize('part,how', [('index', 'truncate'), ('data-00000-of-00001', 'truncate'),
                                      ('data-00000-of-00001', 'flip')])
def test_damaged_latest_checkpoint_falls_back_to_previous_one(tmp_path, capsys, part, how):
  model_dir = str(tmp_path / 'model')
  run_fake_training(model_dir, num_steps=4, checkpoint_every_n=2)
  latest = os.path.join(model_dir, 'ckpt-4')
  _damage(latest + '.' + part, how)
  assert checkpoint_utils.verify_checkpoint(latest) is not None
  capsys.readouterr()
  result = run_fake_training(model_dir, num_steps=6, checkpoint_every_n=2)
  out = capsys.readouterr().out
  damaged_dir = os.path.join(model_dir, 'damaged_checkpoints')
  lines = [l for l in out.splitlines() if l.startswith('Damaged checkpoint')]
  assert len(lines) == 1, out
  assert lines[0].startswith('Damaged checkpoint %s (' % latest)
  assert lines[0].endswith(') moved to %s; resuming from the previous intact checkpoint %s '
                           '(step 2).' % (damaged_dir, os.path.join(model_dir, 'ckpt-2')))
  assert 'Resuming from %s (step 2).' % os.path.join(model_dir, 'ckpt-2') in out
  assert result['step'] == 6
  assert os.path.exists(os.path.join(damaged_dir, 'ckpt-4.' + part))
  # ckpt-4 was trained again and saved intact; the state lists only intact checkpoints.
  for step in (2, 4, 6):
    assert checkpoint_utils.verify_checkpoint(os.path.join(model_dir, 'ckpt-%d' % step)) is None
  assert tf.train.get_checkpoint_state(model_dir).all_model_checkpoint_paths[-3:] == [
      os.path.join(model_dir, 'ckpt-%d' % s) for s in (2, 4, 6)]


def test_every_checkpoint_damaged_starts_over_saying_so(tmp_path, capsys):
  model_dir = str(tmp_path / 'model')
  run_fake_training(model_dir, num_steps=2, checkpoint_every_n=2)
  _damage(os.path.join(model_dir, 'ckpt-2.index'), 'truncate')
  capsys.readouterr()
  result = run_fake_training(model_dir, num_steps=2, checkpoint_every_n=2)
  out = capsys.readouterr().out
  assert ('no intact checkpoint is left, so training starts from step 0.') in out
  assert 'Resuming' not in out and result['step'] == 2


def test_leftovers_of_a_killed_save_are_deleted_at_start(tmp_path):
  model_dir = tmp_path / 'model'
  run_fake_training(str(model_dir), num_steps=2, checkpoint_every_n=2)
  leftovers = [model_dir / 'ckpt-4_temp', model_dir / 'ckpt-5_temp_3f2a9c',
               model_dir / 'best' / 'ckpt-1_temp']
  for folder in leftovers:
    folder.mkdir(parents=True)
    (folder / 'part-00000-of-00001.data-00000-of-00001').write_bytes(b'\0' * 10)
  (model_dir / 'pipeline.config.tmp').write_text('half a conf')
  keep = model_dir / 'my_temperature_notes'
  keep.mkdir()
  run_fake_training(str(model_dir), num_steps=3, checkpoint_every_n=2)
  for folder in leftovers:
    assert not folder.exists(), folder
  assert not (model_dir / 'pipeline.config.tmp').exists()
  assert keep.exists()


def test_failed_resume_with_changed_config_keeps_pipeline_config(tmp_path):
  model_dir = str(tmp_path / 'model')

  def model_fn(model_config, is_training=True):
    import tf_keras  # pylint: disable=g-import-not-at-top
    model = fake.FakeDetectionModel(is_training=is_training)
    if model_config.faster_rcnn.num_classes == 3:  # a config change that reshapes a variable
      model.mask_head = tf_keras.layers.Conv2D(1, 3, padding='same', name='mask_head')
    return model

  configs = make_configs()
  configs['train_config'].num_steps = 2
  model_lib_v2.train_loop(None, model_dir, configs=configs, model_fn=model_fn,
                          train_input_fn=fake.fake_train_input, num_train_images_to_summarize=0)
  with open(os.path.join(model_dir, 'pipeline.config')) as f:
    saved = f.read()
  assert 'num_classes: 2' in saved
  changed = make_configs('model { faster_rcnn { num_classes: 3 } }')
  changed['train_config'].num_steps = 4
  with pytest.raises(checkpointing.ResumeError, match=r'Cannot resume from .*ckpt-2: 1 model '
                     r'variables do not fit the config: .*mask_head/kernel.*\(checkpoint shape '
                     r'\[1, 1, 4, 1\], model shape \[3, 3, 4, 1\]\)'):
    model_lib_v2.train_loop(None, model_dir, configs=changed, model_fn=model_fn,
                            train_input_fn=fake.fake_train_input, num_train_images_to_summarize=0)
  with open(os.path.join(model_dir, 'pipeline.config')) as f:
    assert f.read() == saved


def test_train_loop_records_the_finished_step(tmp_path):
  model_dir = str(tmp_path / 'model')
  run_fake_training(model_dir, num_steps=2, checkpoint_every_n=2)
  assert checkpointing.load_state(model_dir)['finished_step'] == 2
  # A resumed run clears it while it trains (an evaluator must not stop at the old end) and
  # writes its own at the end.
  checkpointing.prepare_model_dir(model_dir)
  assert 'finished_step' not in checkpointing.load_state(model_dir)
  run_fake_training(model_dir, num_steps=3, checkpoint_every_n=2)
  assert checkpointing.load_state(model_dir)['finished_step'] == 3


def _write_run_pipeline_config(directory, num_steps):
  configs = make_configs()
  configs['train_config'].num_steps = num_steps
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  checkpointing.write_pipeline_config(
      config_util.create_pipeline_proto_from_configs(configs), directory)


def test_eval_continuously_stops_at_the_watched_runs_num_steps(tmp_path, monkeypatch, capsys):
  evaluated = _patch_evaluator(monkeypatch)
  _write_checkpoints(str(tmp_path), [2, 4])
  _write_run_pipeline_config(str(tmp_path), 4)
  configs = make_configs()
  configs['train_config'].num_steps = 1000  # the evaluating command's config
  start = time.time()
  results = model_lib_v2.eval_continuously(None, str(tmp_path / 'eval'), str(tmp_path),
                                           configs=configs, timeout=60)
  assert evaluated == [4] and list(results) == [4]
  assert time.time() - start < 30
  out = capsys.readouterr().out
  assert ('Continuous evaluation stops after the checkpoint of step 4: %s has num_steps 4, not '
          'this command\'s num_steps 1000.' % os.path.join(str(tmp_path), 'pipeline.config')) in out


def test_eval_continuously_stops_when_the_watched_run_finished_early(tmp_path, monkeypatch, capsys):
  evaluated = _patch_evaluator(monkeypatch)
  _write_checkpoints(str(tmp_path), [2])
  _write_run_pipeline_config(str(tmp_path), 100)
  checkpointing.set_finished_step(str(tmp_path), 2)  # e.g. early stopping at step 2
  results = model_lib_v2.eval_continuously(None, str(tmp_path / 'eval'), str(tmp_path),
                                           configs=make_configs(), timeout=60)
  assert evaluated == [2] and list(results) == [2]
  assert ('Continuous evaluation stops after the checkpoint of step 2: the run in %s finished at '
          'step 2 (training_state.json), not this command\'s num_steps 4.' % tmp_path
          ) in capsys.readouterr().out


def test_eval_continuously_notices_a_run_that_finishes_while_it_waits(tmp_path, monkeypatch,
                                                                     capsys):
  evaluated = _patch_evaluator(monkeypatch)
  _write_checkpoints(str(tmp_path), [2])
  configs = make_configs()
  configs['train_config'].num_steps = 100
  monkeypatch.setattr(model_lib_v2, '_FINISHED_POLL_SECS', 1)
  # The run stops early (no checkpoint of step 100 will come) while the evaluator waits.
  finisher = threading.Timer(1.5, checkpointing.set_finished_step, (str(tmp_path), 2))
  finisher.start()
  start = time.time()
  try:
    model_lib_v2.eval_continuously(None, str(tmp_path / 'eval'), str(tmp_path), configs=configs,
                                   timeout=60)
  finally:
    finisher.join()
  assert evaluated == [2] and time.time() - start < 20
  assert 'The run in %s finished at step 2, which is evaluated; exiting.' % tmp_path in (
      capsys.readouterr().out)
