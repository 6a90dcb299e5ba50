"""model_main.py flags / exit codes, and the real sample run (run_sample.py) end to end."""
import json
import math
import os
import re
import sys

import pytest

from conftest import Launched  # pylint: disable=g-bad-import-order

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_CONFIG = os.path.join(REPO_ROOT, 'samples', 'configs', 'mask_rcnn_sample_cpu.config')
CONFIGS_DIR = os.path.join(REPO_ROOT, 'samples', 'configs')

TF_OD_API_FLAGS = ('pipeline_config_path', 'model_dir', 'num_train_steps',
                   'sample_1_of_n_eval_examples', 'sample_1_of_n_eval_on_train_examples',
                   'eval_on_train_data', 'checkpoint_dir', 'eval_timeout', 'use_tpu', 'tpu_name',
                   'num_workers', 'checkpoint_every_n', 'record_summaries')


# The metrics of the TF OD API's coco_detection_metrics / coco_mask_metrics (after the
# DetectionBoxes_ / DetectionMasks_ prefix).
TF_OD_API_COCO_METRICS = ('Precision/mAP', 'Precision/mAP@.50IOU', 'Precision/mAP@.75IOU',
                          'Precision/mAP (small)', 'Precision/mAP (medium)',
                          'Precision/mAP (large)', 'Recall/AR@1', 'Recall/AR@10', 'Recall/AR@100',
                          'Recall/AR@100 (small)', 'Recall/AR@100 (medium)',
                          'Recall/AR@100 (large)')


def _printed_metrics(stdout):
  """{key: value} of the lines run_sample.py prints under its '== 4/5 COCO metrics' header."""
  lines = stdout.split('== 4/5 COCO metrics', 1)[1].splitlines()[1:]
  printed = {}
  for line in lines:
    match = re.match(r'^  (\S.*?)\s+(-?\d+\.\d+)$', line)
    if not match:
      break
    assert match.group(1) not in printed, line  # each metric once
    printed[match.group(1)] = float(match.group(2))
  return printed


def test_model_main_defines_the_tf_od_api_flags():
  import model_main  # pylint: disable=g-import-not-at-top
  for name in TF_OD_API_FLAGS + ('eval_every_n', 'config_override', 'seed'):
    assert name in model_main.FLAGS, name
  assert model_main.FLAGS['checkpoint_every_n'].default == 1000
  assert model_main.FLAGS['eval_timeout'].default == 3600


def test_nan_loss_exits_non_zero(monkeypatch, tmp_path, capsys):
  import model_main  # pylint: disable=g-import-not-at-top
  from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top

  def failing_train_loop(**kwargs):
    raise model_lib_v2.NonFiniteLossError(17, 'Loss/BoxClassifierLoss/mask_loss', float('nan'))

  monkeypatch.setattr(model_lib_v2, 'load_configs', lambda *a, **k: {})
  monkeypatch.setattr(model_lib_v2, 'train_loop', failing_train_loop)
  model_main.FLAGS(['model_main', '--pipeline_config_path=x.config',
                    '--model_dir=%s' % tmp_path])
  try:
    with pytest.raises(SystemExit) as info:
      model_main.main([])
  finally:
    model_main.FLAGS.unparse_flags()
  assert info.value.code == 1
  err = capsys.readouterr().err
  assert 'Loss/BoxClassifierLoss/mask_loss is nan at step 17' in err


@pytest.mark.parametrize('name', sorted(n for n in os.listdir(CONFIGS_DIR)
                                        if n.endswith('.config')))
def test_sample_configs_parse_and_validate(name):
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_validation  # pylint: disable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(os.path.join(CONFIGS_DIR, name))
  if name.startswith('semantic_'):
    # Semantic segmentation samples: the person sample has one class, the 512 template four.
    semantic = configs['model'].semantic_segmentation
    assert configs['model'].WhichOneof('model') == 'semantic_segmentation'
    assert semantic.num_classes == (1 if '_sample_' in name else 4)
    assert list(configs['eval_config'].metrics_set) == ['semantic_segmentation_metrics']
  else:
    assert configs['model'].faster_rcnn.number_of_stages == 3
    assert configs['model'].faster_rcnn.second_stage_box_predictor.HasField(
        'mask_rcnn_box_predictor')
    # The person quickstart config has one class; the others COCO's 90 label-map ids.
    assert configs['model'].faster_rcnn.num_classes == (1 if '_person_' in name else 90)
  for path in list(configs['train_input_config'].tf_record_input_reader.input_path) + [
      configs['train_input_config'].label_map_path]:
    assert not os.path.isabs(path), path
  try:
    config_validation.validate_pipeline_configs(configs)
  except config_validation.ConfigError as e:
    # Input files of the COCO configs do not exist here; nothing else may be wrong.
    assert 'input_path' in str(e) or 'label_map_path' in str(e) or 'not exist' in str(e), e


@pytest.fixture(scope='module', autouse=True)
def launched(tmp_path_factory):
  """The subprocesses of this module, started together as its first test starts: run_sample.py
  (`run_sample`: its tmp folder and the run) and the two model_main.py config errors (`bad`,
  `broken`: the config, its model_dir and the run). They run side by side and beside the
  in-process tests (CI has two cores); the tests that check them come last in this file."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  runs = {}

  def launch(name, args):
    runs[name] = Launched([sys.executable] + args, tmp_path_factory.mktemp(name + '_logs'),
                          env=env)
    return runs[name]

  try:
    tmp = tmp_path_factory.mktemp('run_sample')
    result = {'run_sample': (tmp, launch('run_sample', [
        'samples/run_sample.py', '--num_train_steps=2', '--eval_every_n=2',
        '--checkpoint_every_n=2', '--sample_1_of_n_eval_examples=5', '--num_overlays=2',
        '--data_dir=%s' % (tmp / 'data'), '--model_dir=%s' % (tmp / 'model')]))}
    with open(SAMPLE_CONFIG) as f:
      text = f.read().replace('num_classes: 90', 'num_classes: 0')
    for name, config_text in (('bad', text), ('broken', 'model { faster_rcnn { num_classes: 3 ')):
      tmp = tmp_path_factory.mktemp(name)
      config = tmp / (name + '.config')
      config.write_text(config_text)
      model_dir = tmp / 'model'
      result[name] = (config, model_dir, launch(name, [
          'model_main.py', '--pipeline_config_path=%s' % config, '--model_dir=%s' % model_dir]))
    yield result
  finally:
    for run in runs.values():
      run.close()


# The tests of the launched subprocesses come last: they run while the tests above do.


def test_config_error_prints_clean_message_and_exits_2(launched):
  bad, model_dir, run = launched['bad']
  result = run.result(timeout=180)
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'Config error in %s' % bad in result.stderr
  assert 'num_classes' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not (model_dir / 'pipeline.config').exists()


def test_unparsable_config_is_a_clean_error(launched):
  _, _, run = launched['broken']
  result = run.result(timeout=180)
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'Traceback' not in result.stderr and 'Config error' in result.stderr


@pytest.mark.slow
def test_run_sample_end_to_end(launched):
  """The README's main job, shortened: convert `person`, 2 training steps, eval, metrics, overlays."""
  tmp_path, run = launched['run_sample']
  model_dir = tmp_path / 'model'
  result = run.result(timeout=900)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
  out = result.stdout
  assert 'DetectionMasks_Precision/mAP' in out and 'DetectionBoxes_Precision/mAP' in out
  assert (tmp_path / 'data' / 'coco_train.record-00000-of-00001').exists()
  # The default class subset: the label map lists person alone, as id 1.
  from object_detection.utils import label_map_util  # pylint: disable=g-import-not-at-top
  label_map = label_map_util.load_labelmap(str(tmp_path / 'data' / 'label_map.pbtxt'))
  assert [(item.id, item.name) for item in label_map.item] == [(1, 'person')]
  assert '== 3/5 Training' in out and '(1 class: person, 2 steps)' in out, out[-3000:]
  # The default sample fine-tunes from the converted ImageNet Lite0 weights.
  assert 'restored 240 of 240 variables' in out, out[-3000:]
  assert (model_dir / 'ckpt-2.index').exists()
  assert (model_dir / 'pipeline.config').exists()
  with open(model_dir / 'eval' / 'metrics_2.json') as f:
    record = json.load(f)
  # 1 of 5 of the 10 val images that show a person, at the final step.
  assert record['global_step'] == 2 and record['num_images'] == 2, record
  assert 'over 1 class: person, on the 2 val images that show them' in out, out[-3000:]
  metrics = record['metrics']
  # The TF OD API's COCO box and mask metric keys, all finite.
  for prefix in ('DetectionBoxes_', 'DetectionMasks_'):
    for name in TF_OD_API_COCO_METRICS:
      assert math.isfinite(metrics[prefix + name]), prefix + name
    # More detections per image never lower the recall.
    assert (metrics[prefix + 'Recall/AR@1'] <= metrics[prefix + 'Recall/AR@10']
            <= metrics[prefix + 'Recall/AR@100']), metrics
  assert math.isfinite(metrics['Loss/total_loss']) and metrics['Loss/total_loss'] > 0
  # What the run printed is the JSON's value, each metric once.
  printed = _printed_metrics(out)
  assert 'DetectionMasks_Precision/mAP' in printed and 'Loss/total_loss' in printed, out[-3000:]
  for key, value in printed.items():
    assert value == pytest.approx(metrics[key], abs=5e-5), key
  assert any(n.startswith('events') for n in os.listdir(model_dir / 'train'))
  with open(model_dir / 'run_sample_summary.json') as f:
    summary = json.load(f)
  assert summary['step'] == 2
  assert summary['classes'] == [{'name': 'person', 'coco_id': 1, 'id': 1}]
  assert summary['metrics'] == {key: metrics[key] for key in summary['metrics']}
  assert set(printed) == set(summary['metrics'])
  # The overlays: the first 2 person val images (ids 36 and 165), drawn by the exported model.
  assert (model_dir / 'exported' / 'saved_model' / 'saved_model.pb').exists()
  overlays = model_dir / 'overlays'
  assert sorted(n for n in os.listdir(overlays) if n.endswith('.png')) == [
      '000000000036.png', '000000000165.png']
  with open(overlays / 'detections.json') as f:
    assert {d['image_id'] for d in json.load(f)} <= {36, 165}
  assert summary['overlays']['dir'] == str(overlays) and summary['overlays']['images'] == 2
  above = summary['overlays']['detections_above_thresh']
  assert ('Overlays: %s (2 images, %d detections with score >= 0.5; same drawing: python -m '
          'object_detection.predict --saved_model_dir=' % (overlays, above)) in out, out[-3000:]
  if not above:  # after 2 steps, usually: predict's warning says so
    assert 'WARNING: no detection reached --min_score_thresh=0.5' in result.stderr
