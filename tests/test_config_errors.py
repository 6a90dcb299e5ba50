"""Every bad config, input file and flag gets ONE line naming the file / field and what to do, exit
status 2, before any model or dataset is built (docs/errors.md is the catalogue of these cases).

The entry points run for real: a few as subprocesses (no traceback on stderr; launched together as the
module starts, see `_COMMANDS`), the rest in-process
with model_lib_v2.train_loop / eval_continuously replaced by a function that fails the test, which
proves that the error came before anything heavy was built. The inputs are the sample's: its CPU
config, a label map of the COCO categories of samples/data/coco128_seg.
"""
import json
import logging
import os
import subprocess
import sys

import pytest

from conftest import Launched  # pylint: disable=g-bad-import-order
from object_detection import model_lib_v2
from object_detection.models import feature_extractor_registry
from object_detection.utils import config_validation
from object_detection.utils import label_map_util

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_CONFIG = os.path.join(REPO_ROOT, 'samples', 'configs', 'mask_rcnn_sample_cpu.config')
SAMPLE_JSON = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg', 'annotations',
                           'instances_train.json')
INVALID = 'Invalid pipeline config: '


def _label_map_text(categories):
  return ''.join('item {\n  id: %d\n  name: "%s"\n}\n' % (c['id'], c['name']) for c in categories)


def _make_setup(tmp_path):
  """The sample config pointed at tmp_path/data: record files (only globbed) and the label map
  of the sample's 80 COCO categories (ids 1-90)."""
  data = tmp_path / 'data'
  data.mkdir()
  for name in ('coco_train.record-00000-of-00001', 'coco_val.record-00000-of-00001'):
    (data / name).write_bytes(b'')
  with open(SAMPLE_JSON) as f:
    categories = json.load(f)['categories']
  (data / 'label_map.pbtxt').write_text(_label_map_text(categories))
  with open(SAMPLE_CONFIG) as f:
    text = f.read().replace('runs/sample/data/', str(data) + '/')
  config = tmp_path / 'pipeline.config'
  config.write_text(text)
  return {'config': str(config), 'data': data, 'tmp': tmp_path, 'categories': categories}


@pytest.fixture(name='setup')
def fixture_setup(tmp_path):
  return _make_setup(tmp_path)


def _error_lines(text):
  return [line for line in text.splitlines()
          if line.startswith(('Config error in ', 'Usage error: ', 'Error: '))]


def _never_built(*args, **kwargs):
  del args, kwargs
  raise AssertionError('the model / dataset was about to be built')


def _model_main(args, monkeypatch, capsys):
  """Runs model_main.main in-process; returns (exit status, the one error line)."""
  import model_main  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(model_lib_v2, 'train_loop', _never_built)
  monkeypatch.setattr(model_lib_v2, 'eval_continuously', _never_built)
  model_main.FLAGS(['model_main'] + args)
  try:
    with pytest.raises(SystemExit) as info:
      model_main.main([])
  finally:
    model_main.FLAGS.unparse_flags()
  lines = _error_lines(capsys.readouterr().err)
  assert len(lines) == 1, lines
  return info.value.code, lines[0]


def _train(setup, monkeypatch, capsys, override=None, extra=()):
  args = ['--pipeline_config_path=%s' % setup['config'],
          '--model_dir=%s' % (setup['tmp'] / 'model')] + list(extra)
  if override:
    args.append('--config_override=%s' % override)
  code, line = _model_main(args, monkeypatch, capsys)
  assert code == 2, line
  assert not (setup['tmp'] / 'model').exists()  # nothing written, not even pipeline.config
  return line


def _config_line(setup, message):
  return 'Config error in %s: %s%s' % (setup['config'], INVALID, message)


# --- Model components -----------------------------------------------------------------------------

def test_unknown_feature_extractor_type_lists_the_valid_ones(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys,
                "model { faster_rcnn { feature_extractor { type: 'faster_rcnn_mobilenet_v2_fpn' "
                "} } }")
  assert line == _config_line(setup, (
      "`model.faster_rcnn.feature_extractor.type` is 'faster_rcnn_mobilenet_v2_fpn', which is "
      "not a feature extractor this project builds; did you mean "
      "'faster_rcnn_mobilenet_v2_fpn_keras'? use one of: %s (TF1 names such as "
      'faster_rcnn_resnet50 build their TF2 equivalent).'
      % ', '.join(feature_extractor_registry.supported_names())))
  assert 'faster_rcnn_resnet50_fpn_keras' in line


def test_unsupported_classification_loss(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys, 'model { faster_rcnn { second_stage_classification_'
                'loss { bootstrapped_sigmoid { alpha: 0.5 } } } }')
  assert line == _config_line(setup, (
      '`model.faster_rcnn.second_stage_classification_loss`: second_stage_classification_loss { '
      'bootstrapped_sigmoid } is not supported for Faster R-CNN; use weighted_softmax, '
      'weighted_sigmoid, weighted_logits_softmax or weighted_sigmoid_focal.'))


def test_unsupported_anchor_generator(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys, 'model { faster_rcnn { first_stage_anchor_generator {'
                ' ssd_anchor_generator { num_layers: 6 } } } }')
  assert line == _config_line(setup, (
      '`model.faster_rcnn.first_stage_anchor_generator`: first_stage_anchor_generator.'
      'ssd_anchor_generator is not supported for Faster R-CNN; use grid_anchor_generator or '
      'multiscale_anchor_generator.'))


def test_unsupported_post_processing_combination(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys, 'model { faster_rcnn { second_stage_post_processing {'
                ' batch_non_max_suppression { use_combined_nms: true use_class_agnostic_nms: true'
                ' } } } }')
  assert line == _config_line(setup, (
      '`model.faster_rcnn.second_stage_post_processing`: batch_non_max_suppression: '
      'use_combined_nms does not support use_class_agnostic_nms; set one of them false.'))


def test_unsupported_augmentation_is_named_with_its_index(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys, 'train_config { data_augmentation_options { '
                'random_horizontal_flip { } } data_augmentation_options { '
                'random_square_crop_by_scale { } } }')
  assert line.startswith(_config_line(setup, (
      '`train_config.data_augmentation_options[1].random_square_crop_by_scale`: '
      "data_augmentation_options step 'random_square_crop_by_scale' is not supported by this "
      'pipeline. Remove it from train_config or use one of: ')))
  assert 'random_horizontal_flip' in line


# --- Learning rates -------------------------------------------------------------------------------

@pytest.mark.parametrize('schedule, field, value', [
    ('constant_learning_rate { learning_rate: -0.01 }', 'constant_learning_rate.learning_rate',
     '-0.01'),
    ('constant_learning_rate { learning_rate: 0 }', 'constant_learning_rate.learning_rate', '0'),
    ('cosine_decay_learning_rate { learning_rate_base: -0.04 }',
     'cosine_decay_learning_rate.learning_rate_base', '-0.04'),
    ('manual_step_learning_rate { initial_learning_rate: 0.01 schedule { step: 10 '
     'learning_rate: 0.001 } schedule { step: 20 learning_rate: -0.001 } }',
     'manual_step_learning_rate.schedule[1].learning_rate', '-0.001'),
    ('exponential_decay_learning_rate { initial_learning_rate: -1 }',
     'exponential_decay_learning_rate.initial_learning_rate', '-1'),
    ('reduce_lr_on_plateau_learning_rate { initial_learning_rate: 0.001 factor: 0 }',
     'reduce_lr_on_plateau_learning_rate.factor', '0'),
])
def test_learning_rate_not_positive(setup, monkeypatch, capsys, schedule, field, value):
  line = _train(setup, monkeypatch, capsys,
                'train_config { optimizer { adam_optimizer { learning_rate { %s } } } }' % schedule)
  assert line == _config_line(setup, (
      '`train_config.optimizer.adam_optimizer.learning_rate.%s` is %s; it must be > 0 (a negative '
      'learning rate climbs the loss, zero does not train); set a positive value.'
      % (field, value)))


# --- Input files and label maps -------------------------------------------------------------------

def test_input_glob_matching_nothing_names_the_reader_and_the_glob(setup, monkeypatch, capsys):
  pattern = str(setup['data'] / 'coco_val.record-?????-of-00004')
  line = _train(setup, monkeypatch, capsys, 'eval_input_reader { label_map_path: "%s" '
                'load_instance_masks: true mask_type: PNG_MASKS tf_record_input_reader { '
                'input_path: "%s" } }' % (setup['data'] / 'label_map.pbtxt', pattern),
                extra=['--eval_every_n=10'])
  assert line == _config_line(setup, (
      "`eval_input_reader[0].tf_record_input_reader.input_path` is '%s', which matches no file; "
      'fix the path or glob, or create the records with dataset_tools/create_coco_tf_record.py.'
      % pattern))


def test_eval_files_are_not_needed_by_training_without_eval(setup, monkeypatch, capsys):
  """Training without --eval_every_n reads no eval files: their glob is not checked."""
  (setup['data'] / 'coco_val.record-00000-of-00001').unlink()
  with pytest.raises(AssertionError, match='about to be built'):
    _model_main(['--pipeline_config_path=%s' % setup['config'],
                 '--model_dir=%s' % (setup['tmp'] / 'model')], monkeypatch, capsys)


def test_relative_glob_names_the_current_directory(setup, monkeypatch, capsys):
  monkeypatch.chdir(setup['tmp'])
  line = _train(setup, monkeypatch, capsys,
                'train_input_reader { tf_record_input_reader { input_path: "records/train-*" } }')
  assert line == _config_line(setup, (
      "`train_input_reader.tf_record_input_reader.input_path` is 'records/train-*', which matches "
      'no file (relative to %s); fix the path or glob, or create the records with '
      'dataset_tools/create_coco_tf_record.py.' % setup['tmp']))


def _label_map_error(path):
  with pytest.raises(label_map_util.LabelMapError) as info:
    label_map_util.load_labelmap(path)
  return ' '.join(str(info.value).split('\n'))


def test_missing_label_map(setup, monkeypatch, capsys):
  path = str(setup['data'] / 'labels.pbtxt')
  line = _train(setup, monkeypatch, capsys, 'train_input_reader { label_map_path: "%s" }' % path)
  assert line == _config_line(setup, '`train_input_reader.label_map_path`: %s'
                              % _label_map_error(path))
  assert path in line


def test_unreadable_label_map(setup, monkeypatch, capsys):
  path = str(setup['data'])  # a directory
  line = _train(setup, monkeypatch, capsys, 'train_input_reader { label_map_path: "%s" }' % path)
  assert line == _config_line(setup, '`train_input_reader.label_map_path`: %s'
                              % _label_map_error(path))
  assert path in line and 'cannot be read' in line


@pytest.mark.parametrize('edit', ['duplicate', 'zero'])
def test_label_map_with_duplicate_or_zero_id(setup, monkeypatch, capsys, edit):
  categories = [dict(c) for c in setup['categories']]
  if edit == 'duplicate':
    categories[1]['id'] = categories[0]['id']  # bicycle gets person's id 1
  else:
    categories[0]['id'] = 0
  path = setup['data'] / ('%s.pbtxt' % edit)
  path.write_text(_label_map_text(categories))
  line = _train(setup, monkeypatch, capsys, 'train_input_reader { label_map_path: "%s" }' % path)
  assert line == _config_line(setup, '`train_input_reader.label_map_path`: %s'
                              % _label_map_error(str(path)))
  assert str(path) in line


def test_num_classes_smaller_than_the_largest_label_map_id(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys, 'model { faster_rcnn { num_classes: 80 } }')
  assert line == _config_line(setup, (
      "`model.faster_rcnn.num_classes` is 80, smaller than the largest id 90 of the label map '%s' "
      '(train_input_reader.label_map_path); set num_classes: 90 (ids need not be contiguous: the '
      'model has one class per id 1..num_classes), or remove the classes above 80 from the label '
      'map.' % (setup['data'] / 'label_map.pbtxt')))


# --- Metrics --------------------------------------------------------------------------------------

def test_unknown_metrics_set(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys, 'eval_config { metrics_set: "coco_mask_metric" }')
  assert line == _config_line(setup, (
      "`eval_config.metrics_set[0]` is 'coco_mask_metric', which is not supported; did you mean "
      "'coco_mask_metrics'? use coco_detection_metrics or coco_mask_metrics."))


def test_misspelled_best_checkpoint_metric_before_the_first_step(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys,
                'train_config { best_checkpoint_metric: "DetectionMask_Precision/mAP@.50IOU" }')
  assert line == _config_line(setup, (
      "`train_config.best_checkpoint_metric` is 'DetectionMask_Precision/mAP@.50IOU', which the "
      'evaluation (eval_config.metrics_set coco_detection_metrics, coco_mask_metrics) does not '
      "report; did you mean 'DetectionMasks_Precision/mAP@.50IOU'?"))


def test_misspelled_early_stopping_metric(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys,
                'train_config { early_stopping { metric: "Loss/totalloss" } }')
  assert line == _config_line(setup, (
      "`train_config.early_stopping.metric` is 'Loss/totalloss', which the evaluation "
      '(eval_config.metrics_set coco_detection_metrics, coco_mask_metrics) does not report; did '
      "you mean 'Loss/total_loss'?"))


def test_mask_metric_without_coco_mask_metrics(setup, monkeypatch, capsys):
  line = _train(setup, monkeypatch, capsys, 'eval_config { metrics_set: "coco_detection_metrics" }')
  assert line == _config_line(setup, (
      "`train_config.best_checkpoint_metric` is 'DetectionMasks_Precision/mAP', which the "
      'evaluation (eval_config.metrics_set coco_detection_metrics) does not report; add '
      "metrics_set: 'coco_mask_metrics' to eval_config to report it, or use "
      "'DetectionBoxes_Precision/mAP'."))


def test_metric_keys_of_the_sample_config():
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  keys, per_category = config_validation.eval_metric_keys(
      config_util.get_configs_from_pipeline_file(SAMPLE_CONFIG))
  assert len(keys) == 2 * 12 + 7 and per_category == ()
  assert 'DetectionMasks_Recall/AR@100 (large)' in keys
  assert 'Loss/BoxClassifierLoss/mask_loss' in keys


# --- Ignored TF OD API fields ---------------------------------------------------------------------

def test_ignored_fields_are_named_once_with_what_is_done_instead(monkeypatch, caplog):
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(config_validation, '_warned_fields', set())
  configs = config_util.get_configs_from_pipeline_file(
      SAMPLE_CONFIG, 'train_config { sync_replicas: true use_bfloat16: false '
      'unpad_groundtruth_tensors: false } '
      'eval_config { num_examples: 8000 max_evals: 3 eval_instance_masks: true }')
  with caplog.at_level(logging.WARNING):
    config_validation.validate_pipeline_configs(configs)
    config_validation.validate_pipeline_configs(configs)
  warnings = [r.getMessage() for r in caplog.records
              if 'is ignored by this project' in r.getMessage()]
  # use_bfloat16: false is its default; unpad_groundtruth_tensors is honoured (no warning).
  assert warnings == [
      'Config field `train_config.sync_replicas` is ignored by this project: replicas always '
      'train synchronously under the tf.distribute strategy (--num_workers), as in the TF2 TF OD '
      'API.',
      'Config field `eval_config.eval_instance_masks` is ignored by this project: masks are '
      'evaluated when metrics_set has coco_mask_metrics.',
      'Config field `eval_config.max_evals` is ignored by this project: continuous evaluation '
      'stops after the final checkpoint or --eval_timeout.',
      'Config field `eval_config.num_examples` is ignored by this project: the whole eval dataset '
      'is evaluated (TF2 TF OD API); use sample_1_of_n_examples to evaluate fewer images.']


def test_refused_instead_of_ignored(setup, monkeypatch, capsys):
  """A field whose loss would train other labels is refused, not warned about."""
  line = _train(setup, monkeypatch, capsys, 'train_input_reader { expand_labels_hierarchy: true }')
  assert line == _config_line(setup, (
      '`train_input_reader.expand_labels_hierarchy` is true, but expanding class labels through '
      'a label map hierarchy (Open Images) is not supported: training would use other labels '
      'than asked; remove it.'))


# --- Flags and files of model_main ----------------------------------------------------------------

def test_missing_pipeline_config_file(setup, monkeypatch, capsys):
  path = str(setup['tmp'] / 'nope.config')
  code, line = _model_main(['--pipeline_config_path=%s' % path,
                            '--model_dir=%s' % (setup['tmp'] / 'model')], monkeypatch, capsys)
  assert code == 2
  assert line == ('Config error in %s: Pipeline config file not found: %s (check '
                  '--pipeline_config_path; relative paths start at %s).'
                  % (path, path, os.getcwd()))


@pytest.mark.parametrize('flags, message', [
    (['--model_dir={tmp}/model', '--checkpoint_dir={tmp}/missing'],
     '--checkpoint_dir={tmp}/missing does not exist; point it at the training model_dir (or a TF2 '
     'model zoo / exported folder).'),
    (['--model_dir={tmp}/model', '--checkpoint_dir={tmp}', '--eval_every_n=100'],
     '--eval_every_n only applies to training, but --checkpoint_dir selects evaluation; remove one '
     'of them.'),
    (['--model_dir={tmp}/model', '--eval_on_train_data'],
     '--eval_on_train_data only applies to evaluation; add --checkpoint_dir=<the training '
     'model_dir> or remove it.'),
    (['--model_dir={tmp}/model', '--checkpoint_every_n=0'],
     '--checkpoint_every_n=0: it must be >= 1.'),
    (['--model_dir={tmp}/model', '--num_train_steps=-5'],
     '--num_train_steps=-5: it must be >= 1 (or unset to use train_config.num_steps).'),
])
def test_wrong_flags(setup, monkeypatch, capsys, flags, message):
  args = ['--pipeline_config_path=%s' % setup['config']] + [
      f.format(tmp=setup['tmp']) for f in flags]
  code, line = _model_main(args, monkeypatch, capsys)
  assert (code, line) == (2, 'Usage error: ' + message.format(tmp=setup['tmp']))
  assert not (setup['tmp'] / 'model').exists()


# The command lines of the subprocess tests below, each given its own `_make_setup` folder. They are
# all launched together when the module's first test starts (`launched`), so that their Python and
# TensorFlow start-ups run side by side and beside the in-process tests (CI has two cores); each
# subprocess test then waits for its own command.
_COMMANDS = {
    'model_main_missing_model_dir': lambda s: [
        'model_main.py', '--pipeline_config_path=%s' % s['config']],
    'model_main_config_error': lambda s: [
        'model_main.py', '--pipeline_config_path=%s' % s['config'],
        '--model_dir=%s' % (s['tmp'] / 'model'),
        '--config_override=model { faster_rcnn { num_classes: 80 } }'],
    'exporter_missing_flag': lambda s: [
        'exporter_main.py', '--pipeline_config_path=%s' % s['config'],
        '--trained_checkpoint_dir=%s' % s['tmp']],
    # The TF OD API's --use_side_inputs (Context R-CNN / LSTM exports) has no model here.
    'exporter_side_inputs': lambda s: [
        'exporter_main.py', '--pipeline_config_path=%s' % s['config'],
        '--trained_checkpoint_dir=%s' % s['tmp'],
        '--output_directory=%s' % (s['tmp'] / 'exported'), '--use_side_inputs',
        '--side_input_shapes=1/2', '--side_input_types=tf.float32', '--side_input_names=context'],
    # exporter_main defines the same absl flags as model_main, so it runs in its own process.
    'exporter_config_error': lambda s: [
        'exporter_main.py', '--pipeline_config_path=%s' % s['config'],
        '--trained_checkpoint_dir=%s' % s['tmp'],
        '--output_directory=%s' % (s['tmp'] / 'exported'),
        "--config_override=model { faster_rcnn { feature_extractor { type: "
        "'faster_rcnn_resnet50_keras_v2' } } }"],
}


@pytest.fixture(scope='module', autouse=True)
def launched(tmp_path_factory):
  """{name: (setup, conftest.Launched)}: every command of `_COMMANDS`, started together."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  runs = {}
  try:
    for name, command in _COMMANDS.items():
      setup = _make_setup(tmp_path_factory.mktemp(name))
      logs = tmp_path_factory.mktemp(name + '_logs')
      runs[name] = (setup, Launched([sys.executable] + command(setup), logs, env=env))
    yield runs
  finally:
    for _, run in runs.values():
      run.close()


def _result(launched, name):
  setup, run = launched[name]
  return setup, run.result()


def test_model_main_subprocess_missing_model_dir(launched):
  _, result = _result(launched, 'model_main_missing_model_dir')
  assert result.returncode == 2, result.stderr[-3000:]
  assert _error_lines(result.stderr) == [
      'Usage error: --model_dir is required (e.g. --model_dir=runs/my_model).']
  assert 'Traceback' not in result.stderr


def test_model_main_subprocess_config_error_is_one_line(launched):
  setup, result = _result(launched, 'model_main_config_error')
  assert result.returncode == 2, result.stderr[-3000:]
  lines = _error_lines(result.stderr)
  assert len(lines) == 1 and lines[0].startswith(_config_line(
      setup, '`model.faster_rcnn.num_classes` is 80, smaller than the largest id 90'))
  assert 'Traceback' not in result.stderr
  assert not (setup['tmp'] / 'model').exists()


# --- exporter_main and run_sample -----------------------------------------------------------------

def test_exporter_subprocess_missing_flag(launched):
  _, result = _result(launched, 'exporter_missing_flag')
  assert result.returncode == 2, result.stderr[-3000:]
  assert _error_lines(result.stderr) == [
      'Usage error: --output_directory is required (e.g. --output_directory=exported/my_model).']
  assert 'Traceback' not in result.stderr


def test_exporter_refuses_side_inputs(launched):
  setup, result = _result(launched, 'exporter_side_inputs')
  assert result.returncode == 2, result.stderr[-3000:]
  assert _error_lines(result.stderr) == [
      'Usage error: --use_side_inputs: the Faster R-CNN / Mask R-CNN models this project builds '
      'take no side inputs (the TF OD API uses them for Context R-CNN and LSTM models); remove '
      'the flag and the --side_input_* flags.']
  assert not (setup['tmp'] / 'exported').exists()


def test_exporter_subprocess_config_error(launched):
  setup, result = _result(launched, 'exporter_config_error')
  assert result.returncode == 2, result.stderr[-3000:]
  lines = _error_lines(result.stderr)
  assert len(lines) == 1 and lines[0].startswith(_config_line(setup, (
      "`model.faster_rcnn.feature_extractor.type` is 'faster_rcnn_resnet50_keras_v2', which is "
      'not a feature extractor this project builds; ')))
  assert 'Traceback' not in result.stderr
  assert not (setup['tmp'] / 'exported').exists()


def test_run_sample_refuses_a_bad_config_before_converting_or_deleting(setup, monkeypatch, capsys):
  sys.path.insert(0, os.path.join(REPO_ROOT, 'samples'))
  try:
    import run_sample  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  monkeypatch.chdir(REPO_ROOT)  # run_sample changes the directory; restored after the test
  monkeypatch.setattr(model_lib_v2, 'train_loop', _never_built)
  model_dir = setup['tmp'] / 'old_model'
  model_dir.mkdir()
  (model_dir / 'ckpt-1.index').write_bytes(b'kept')
  code = run_sample.main([
      '--pipeline_config_path=%s' % setup['config'], '--fresh', '--model_dir=%s' % model_dir,
      '--data_dir=%s' % (setup['tmp'] / 'converted'),
      '--config_override=train_config { early_stopping { metric: '
      '"DetectionMask_Precision/mAP" } }'])
  assert code == 2
  assert _error_lines(capsys.readouterr().err) == [_config_line(setup, (
      "`train_config.early_stopping.metric` is 'DetectionMask_Precision/mAP', which the evaluation "
      '(eval_config.metrics_set coco_detection_metrics, coco_mask_metrics) does not report; did '
      "you mean 'DetectionMasks_Precision/mAP'?"))]
  assert (model_dir / 'ckpt-1.index').read_bytes() == b'kept'  # --fresh did not delete it
  assert not (setup['tmp'] / 'converted').exists()  # nothing converted


# --- One error type -------------------------------------------------------------------------------

def test_every_bad_input_error_type_is_a_config_error():
  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format
  from object_detection import exporter_lib_v2
  from object_detection.builders import dataset_builder
  from object_detection.dataset_tools import coco_annotations
  from object_detection.training import fine_tune
  from object_detection.training import xla
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  for error_type in (dataset_builder.InputConfigError, label_map_util.LabelMapError,
                     fine_tune.FineTuneError, xla.JitCompileError,
                     coco_annotations.ConversionError, config_util.ConfigParseError,
                     config_util.ConfigFileNotFoundError, exporter_lib_v2.ExportError,
                     config_validation.UsageError):
    assert issubclass(error_type, config_validation.ConfigError), error_type
  assert issubclass(config_util.ConfigParseError, text_format.ParseError)
  assert issubclass(config_util.ConfigFileNotFoundError, FileNotFoundError)
  assert issubclass(exporter_lib_v2.ExportError, RuntimeError)


def test_builders_raise_config_errors_too():
  """Code that builds a model without validation (benchmarks, tests) gets the same type."""
  # pylint: disable=g-import-not-at-top
  from object_detection.builders import model_builder
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(
      SAMPLE_CONFIG, 'model { faster_rcnn { context_config { max_num_context_features: 10 } } }')
  with pytest.raises(config_validation.ConfigError, match='context_config'):
    model_builder.build(configs['model'], is_training=True)


def test_error_line_folds_a_multi_line_message():
  error = config_validation.ConfigError('first line\n  second line\n')
  assert config_validation.error_line(error, 'a.config') == (
      'Config error in a.config: first line second line')
  assert config_validation.error_line(config_validation.UsageError('x')) == 'Usage error: x'
  assert config_validation.error_line(config_validation.ConfigError('y')) == 'Error: y'
