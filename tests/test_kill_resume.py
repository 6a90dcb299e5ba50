"""kill -9 at several moments of training, evaluation and export, then the same command again.

Real subprocesses of `model_main.py` / `exporter_main.py` (run through runpy after registering the
tiny test extractor of mask_rcnn_test_utils) on TFRecords converted from the first 4 bundled
coco128_seg val photos at 64 x 64. Each is killed with SIGKILL when a file shows it reached the
moment under test; the on-disk state is then checked and the same command run again must complete.
Also: corrupt TFRecords read by training and evaluation name the file and the record (in-process:
what is checked is the message of model_lib_v2, not the entry point).

Every launch costs 10-45 s of CPU (imports, model build, tf.function tracing), so the seven
launches run as three chains started together by the `runs` fixture, to keep both CI cores busy:
  training: killed during a checkpoint save -> the same command resumes and finishes;
  evaluation of a finished run's model_dir: killed -> the same command again completes;
  export of that model_dir: killed mid-write -> the same command completes -> killed mid-write
    again, beside that complete export.
The finished run's model_dir is written in this process with the files a finished training leaves
(checkpoint, pipeline.config, training_state.json; the training test checks that training writes
them), so evaluation and export need not wait for the training chain. Each test waits for its
chain; the in-process tests run meanwhile.
"""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import tensorflow as tf
from google.protobuf import text_format

import mask_rcnn_test_utils  # pylint: disable=unused-import  (registers the tiny extractors)
from conftest import COCO128_DIR  # pylint: disable=g-bad-import-order
from object_detection.utils import checkpoint_utils

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
NUM_STEPS = 8
NUM_IMAGES = 4
# Seconds a launch may take before it counts as hung (CI runs the chains side by side on 2 cores).
LAUNCH_TIMEOUT = 300

# The entry point as a user runs it, after registering the test extractor.
_RUNNER = """
import runpy, sys
sys.path.insert(0, %r)
import mask_rcnn_test_utils
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name='__main__')
""" % TESTS_DIR

_PIPELINE = """
model { %(model)s }
train_config {
  batch_size: %(batch_size)d num_steps: %(num_steps)d log_every_n_steps: 1
  optimizer { momentum_optimizer { learning_rate { constant_learning_rate {
    learning_rate: 0.001 } } momentum_optimizer_value: 0.9 } use_moving_average: false }
}
train_input_reader {
  label_map_path: "%(label_map)s" load_instance_masks: true mask_type: PNG_MASKS
  shuffle: false num_readers: 1
  tf_record_input_reader { input_path: "%(train)s" }
}
eval_config { metrics_set: "coco_mask_metrics" num_visualizations: 0 batch_size: %(eval_batch)d }
eval_input_reader {
  label_map_path: "%(label_map)s" load_instance_masks: true mask_type: PNG_MASKS
  shuffle: false num_epochs: 1 num_readers: 1
  tf_record_input_reader { input_path: "%(eval)s" }
}
"""


def _make_records(out_dir, num_images=NUM_IMAGES):
  """The first `num_images` val photos as one PNG-mask shard; returns (shard, label map, classes).

  Their categories are numbered 1..K (K = 6 categories of real objects in these photos) instead of
  COCO's ids up to 90: post-processing builds one NMS per class, and 90 classes would make every
  launch trace and save a much larger graph for nothing these tests check.
  """
  from object_detection.dataset_tools import coco_tf_record  # pylint: disable=g-import-not-at-top
  with open(os.path.join(COCO128_DIR, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  coco['images'] = sorted(coco['images'], key=lambda im: im['id'])[:num_images]
  ids = {im['id'] for im in coco['images']}
  coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in ids]
  new_id = {old: i + 1 for i, old in enumerate(sorted({a['category_id']
                                                       for a in coco['annotations']}))}
  coco['categories'] = [dict(c, id=new_id[c['id']]) for c in coco['categories']
                        if c['id'] in new_id]
  for annotation in coco['annotations']:
    annotation['category_id'] = new_id[annotation['category_id']]
  ann_file = out_dir.rstrip('/') + '_instances.json'
  with open(ann_file, 'w') as f:
    json.dump(coco, f)
  result = coco_tf_record.convert([('train', os.path.join(COCO128_DIR, 'images'), ann_file)],
                                  out_dir, include_masks=True, num_shards=1, mask_type='png',
                                  show_progress=False)
  return result['splits'][0].output_files[0], result['label_map_path'], len(new_id)


def _write_config(path, workspace, record=None, eval_record=None, num_steps=NUM_STEPS,
                  batch_size=1, eval_batch_size=1):
  model = text_format.MessageToString(
      mask_rcnn_test_utils.tiny_model_config(num_classes=workspace['num_classes']))
  record = record or workspace['record']
  with open(path, 'w') as f:
    f.write(_PIPELINE % dict(model=model, num_steps=num_steps, label_map=workspace['label_map'],
                             train=record, eval=eval_record or record, batch_size=batch_size,
                             eval_batch=eval_batch_size))
  return path


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  root = tmp_path_factory.mktemp('kill')
  record, label_map, num_classes = _make_records(str(root / 'data'))
  space = {'root': root, 'record': record, 'label_map': label_map, 'num_classes': num_classes}
  space['config'] = _write_config(str(root / 'pipeline.config'), space)
  return space


@pytest.fixture(scope='module')
def finished_model_dir(workspace):
  """A model_dir as a finished training run of NUM_STEPS steps leaves it, written in this process:
  ckpt-NUM_STEPS of the tiny model, pipeline.config and training_state.json's finished_step."""
  from object_detection.training import checkpointing  # pylint: disable=g-import-not-at-top
  model_dir = str(workspace['root'] / 'finished_model')
  model = mask_rcnn_test_utils.tiny_model(num_classes=workspace['num_classes'], is_training=False)
  checkpoint_utils.build_model_variables(model, (64, 64))
  checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(NUM_STEPS, dtype=tf.int64))
  tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=1,
                             checkpoint_name='ckpt').save(checkpoint_number=NUM_STEPS)
  shutil.copy(workspace['config'], os.path.join(model_dir, 'pipeline.config'))
  checkpointing.set_finished_step(model_dir, NUM_STEPS)
  return model_dir


def _output(proc):
  with open(proc.log_path) as f:
    return f.read()


def _wait(proc, timeout=LAUNCH_TIMEOUT):
  """Waits for `proc` to exit; returns (exit status, output)."""
  try:
    proc.wait(timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    raise AssertionError('%s did not exit within %d s:\n%s' % (
        proc.args[3:], timeout, _output(proc)[-3000:])) from None
  return proc.returncode, _output(proc)


def _kill_when(proc, condition, timeout=LAUNCH_TIMEOUT, poll=0.005):
  """SIGKILLs `proc` as soon as condition() is true; returns (condition met, output)."""
  deadline = time.time() + timeout
  met = False
  while time.time() < deadline and proc.poll() is None:
    if condition():
      met = True
      break
    time.sleep(poll)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  return met, _output(proc)


def _temp_folders(directory):
  return sorted(n for n in os.listdir(directory) if '_temp' in n)


def _export_temps(parent):
  return sorted(n for n in os.listdir(parent) if '.tmp-' in n) if os.path.isdir(parent) else []


def _export_listing(directory):
  return sorted(os.listdir(directory)), sorted(os.listdir(os.path.join(directory, 'saved_model')))


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


class _Runs(object):
  """The three chains of launches (module docstring), each in a thread; results are futures."""

  def __init__(self, workspace, finished_model_dir):
    self.root = workspace['root']
    self.config = workspace['config']
    self.finished_model_dir = finished_model_dir
    self.model_dir = str(self.root / 'model')
    self.eval_dir = str(self.root / 'eval_model')
    self.export_dir = str(self.root / 'exports' / 'model')
    self._lock = threading.Lock()
    self._procs = []
    self._closed = False
    self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=3)
    self.training = self._pool.submit(self._training)
    self.evaluation = self._pool.submit(self._evaluation)
    self.export = self._pool.submit(self._export)

  def _start(self, script, args, name):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')
    log_path = str(self.root / (name + '.log'))  # a file, not a pipe: nothing blocks on a full pipe
    with self._lock:
      if self._closed:
        raise RuntimeError('the module is being torn down')
      with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [sys.executable, '-c', _RUNNER, os.path.join(REPO_ROOT, script)] + args,
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
      proc.log_path = log_path
      self._procs.append(proc)
    return proc

  def close(self):
    """Kills what is still running (a failed test) and waits for the threads."""
    with self._lock:
      self._closed = True
      for proc in self._procs:
        if proc.poll() is None:
          proc.kill()
          proc.wait()
    self._pool.shutdown(wait=True)

  def train_args(self):
    return ['--pipeline_config_path=%s' % self.config, '--model_dir=%s' % self.model_dir,
            '--checkpoint_every_n=1']

  def eval_args(self):
    # A larger num_steps than the watched run: it must still stop after the run's final checkpoint.
    return ['--pipeline_config_path=%s' % self.config, '--model_dir=%s' % self.eval_dir,
            '--checkpoint_dir=%s' % self.finished_model_dir, '--num_train_steps=1000',
            '--eval_timeout=%d' % (2 * LAUNCH_TIMEOUT)]

  def export_args(self):
    return ['--pipeline_config_path=%s' % os.path.join(self.finished_model_dir, 'pipeline.config'),
            '--trained_checkpoint_dir=%s' % self.finished_model_dir,
            '--output_directory=%s' % self.export_dir]

  def _training(self):
    model_dir = self.model_dir
    outcome = {}
    # Killed while it writes a checkpoint (a save folder is there), once an earlier one is complete.
    def saving():
      return (os.path.exists(os.path.join(model_dir, 'ckpt-2.index'))
              and bool(_temp_folders(model_dir)))
    # A save of this tiny model takes milliseconds: a busy machine can let all of them pass
    # between two polls (seen once in .ci/run). Then the run starts over in a fresh folder.
    for _ in range(3):
      proc = self._start('model_main.py', self.train_args(), 'train_killed')
      outcome['save_met'], outcome['save_out'] = _kill_when(proc, saving)
      if outcome['save_met']:
        break
      shutil.rmtree(model_dir, ignore_errors=True)
    outcome['temp_after_kill'] = _temp_folders(model_dir)
    latest = tf.train.latest_checkpoint(model_dir)
    outcome['latest_after_kill'] = latest
    outcome['latest_problem'] = latest and checkpoint_utils.verify_checkpoint(latest)
    # The same command again resumes and completes.
    outcome['rc'], outcome['out'] = _wait(self._start('model_main.py', self.train_args(),
                                                      'train_resumed'))
    return outcome

  def _evaluation(self):
    outcome = {}
    eval_events = os.path.join(self.eval_dir, 'eval')
    proc = self._start('model_main.py', self.eval_args(), 'eval_killed')
    outcome['kill_met'], outcome['kill_out'] = _kill_when(
        proc, lambda: os.path.isdir(eval_events), poll=0.02)
    outcome['after_kill'] = sorted(os.listdir(eval_events)) if os.path.isdir(eval_events) else []
    # The same command again completes.
    start = time.time()
    outcome['rc'], outcome['out'] = _wait(self._start('model_main.py', self.eval_args(),
                                                      'eval_rerun'))
    outcome['seconds'] = time.time() - start
    return outcome

  def _export(self):
    outcome = {}
    out_dir = self.export_dir
    parent = os.path.dirname(out_dir)
    graph = os.path.join(out_dir, 'saved_model', 'saved_model.pb')
    # 1. Killed mid-write (its temporary folder is there), with no earlier export.
    proc = self._start('exporter_main.py', self.export_args(), 'export_killed_1')
    outcome['first_met'], outcome['first_out'] = _kill_when(
        proc, lambda: _export_temps(parent), poll=0.02)
    outcome['after_first'] = sorted(os.listdir(parent)) if os.path.isdir(parent) else []
    # 2. The same command again completes.
    outcome['rc'], outcome['out'] = _wait(self._start('exporter_main.py', self.export_args(),
                                                      'export_rerun'))
    outcome['after_rerun'] = sorted(os.listdir(parent))
    outcome['listing'] = _export_listing(out_dir) if os.path.isdir(out_dir) else None
    outcome['graph'] = _read(graph) if os.path.exists(graph) else None
    # 3. Killed mid-write again, beside that complete export.
    proc = self._start('exporter_main.py', self.export_args(), 'export_killed_2')
    outcome['second_met'], outcome['second_out'] = _kill_when(
        proc, lambda: _export_temps(parent), poll=0.02)
    outcome['after_second'] = sorted(os.listdir(parent))
    outcome['listing_after_second'] = (_export_listing(out_dir) if os.path.isdir(out_dir)
                                       else None)
    outcome['graph_after_second'] = _read(graph) if os.path.exists(graph) else None
    return outcome


@pytest.fixture(scope='module')
def runs(workspace, finished_model_dir):
  started = _Runs(workspace, finished_model_dir)
  yield started
  started.close()


def _result(future):
  return future.result(timeout=4 * LAUNCH_TIMEOUT)


# The first test to use `runs` starts all three chains; the in-process tests after it run while the
# chains do.


@pytest.mark.slow
def test_export_killed_mid_write_keeps_old_export_and_rerun_completes(runs):
  x = _result(runs.export)
  out_dir = runs.export_dir
  # Killed with no earlier export: only its temporary folder, no output directory.
  assert x['first_met'], x['first_out'][-3000:]
  assert len(x['after_first']) == 1 and x['after_first'][0].startswith('.model.tmp-'), (
      x['after_first'])
  # The same command completes, deleting the killed export's folder.
  assert x['rc'] == 0, x['out'][-4000:]
  assert ('Exported image_tensor SavedModel to %s/saved_model (signature serving_default)'
          % out_dir) in x['out']
  assert x['after_rerun'] == ['model']
  assert x['listing'][0] == ['checkpoint', 'pipeline.config', 'saved_model']
  assert 'saved_model.pb' in x['listing'][1] and x['graph']
  # Killed again: the complete export is untouched; the half-written one is beside it.
  assert x['second_met'], x['second_out'][-3000:]
  assert x['listing_after_second'] == x['listing']
  assert x['graph_after_second'] == x['graph']
  assert len(x['after_second']) == 2 and x['after_second'][0].startswith('.model.tmp-'), (
      x['after_second'])
  assert x['after_second'][1] == 'model'
  detect = tf.saved_model.load(os.path.join(out_dir, 'saved_model')).signatures['serving_default']
  outputs = detect(input_tensor=tf.zeros([1, 64, 64, 3], tf.uint8))
  assert outputs['detection_masks'].shape[:2] == outputs['detection_boxes'].shape[:2]


# ------------------------------------------------------------------------ corrupt TFRecords


def _record_offsets(path):
  """Byte offset of every record of a TFRecord file (8-byte length, 4-byte CRC, data, 4-byte CRC)."""
  data = _read(path)
  offsets, pos = [], 0
  while pos < len(data):
    offsets.append(pos)
    pos += 16 + int.from_bytes(data[pos:pos + 8], 'little')
  return offsets, data


def _damaged_copy(source, target, how, record=3):
  """A copy of `source` truncated inside record `record`, or with one byte of it changed."""
  offsets, data = _record_offsets(source)
  middle = (offsets[record] + offsets[record + 1]) // 2 if record + 1 < len(offsets) else (
      (offsets[record] + len(data)) // 2)
  if how == 'truncated':
    data = data[:middle]
  else:
    data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
  with open(target, 'wb') as f:
    f.write(data)
  return target


@pytest.mark.parametrize('how', ['truncated', 'flipped'])
def test_corrupt_train_record_names_file_and_record(workspace, tmp_path, how):
  from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top
  from object_detection.builders import dataset_builder  # pylint: disable=g-import-not-at-top
  bad = _damaged_copy(workspace['record'], str(tmp_path / 'bad.record'), how)
  # A batch of all 4 records: the first batch already reaches the damaged record 3 (records 0-2
  # pass the build-time check of the first records).
  config = _write_config(str(tmp_path / 'bad.config'), workspace, record=bad, num_steps=2,
                         batch_size=NUM_IMAGES)
  with pytest.raises(dataset_builder.CorruptRecordError) as e:
    model_lib_v2.train_loop(config, str(tmp_path / 'model'))
  message = str(e.value)
  assert '\n' not in message
  assert message.startswith('Corrupt TFRecord file %s at record 3 (' % bad), message
  assert ('corrupted record at' if how == 'flipped' else 'truncated record at') in message
  assert 'dataset_tools/create_coco_tf_record.py' in message
  assert 'train_input_reader' in message


def test_corrupt_eval_record_names_file_and_record(workspace, finished_model_dir, tmp_path):
  from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top
  from object_detection.builders import dataset_builder  # pylint: disable=g-import-not-at-top
  bad = _damaged_copy(workspace['record'], str(tmp_path / 'bad_eval.record'), 'flipped')
  # An eval batch of all 4 records: the first batch reaches the damaged record 3 before the model
  # runs (and is traced) at all.
  config = _write_config(str(tmp_path / 'bad.config'), workspace, eval_record=bad,
                         eval_batch_size=NUM_IMAGES)
  with pytest.raises(dataset_builder.CorruptRecordError) as e:
    model_lib_v2.eval_continuously(config, str(tmp_path / 'eval'),
                                   finished_model_dir, timeout=30)
  message = str(e.value)
  assert '\n' not in message
  assert message.startswith('Corrupt TFRecord file %s at record 3 (corrupted record at '
                            % bad), message
  assert 'eval_input_reader' in message
  assert not os.path.exists(os.path.join(str(tmp_path / 'eval'), 'eval', 'metrics_%d.json' % NUM_STEPS))


# ------------------------------------------------------------------------ training, evaluation


@pytest.mark.slow
def test_training_killed_during_a_save_resumes_from_last_intact_checkpoint(runs):
  k = _result(runs.training)
  assert k['save_met'], k['save_out'][-3000:]
  temp = k['temp_after_kill']
  assert temp, 'the kill did not happen during a save'
  latest = k['latest_after_kill']
  assert latest is not None and k['latest_problem'] is None, k['latest_problem']
  step = checkpoint_utils.checkpoint_step(latest)
  assert 2 <= step < NUM_STEPS
  assert k['rc'] == 0, k['out'][-4000:]
  out = k['out']
  model_dir = runs.model_dir
  for name in temp:  # the killed save's folder is deleted at start, and the log says so
    assert 'Deleted %s, left by a save that did not finish.' % os.path.join(model_dir, name) in out
  assert 'Resuming from %s (step %d).' % (latest, step) in out
  steps_run = [int(line.split()[1].split('/')[0]) for line in out.splitlines()
               if line.startswith('step ')]
  assert steps_run == list(range(step + 1, NUM_STEPS + 1)), steps_run  # none repeated or skipped
  assert 'Training finished at step %d' % NUM_STEPS in out
  assert not _temp_folders(model_dir)
  final = tf.train.latest_checkpoint(model_dir)
  assert checkpoint_utils.checkpoint_step(final) == NUM_STEPS
  assert checkpoint_utils.verify_checkpoint(final) is None
  with open(os.path.join(model_dir, 'training_state.json')) as f:
    assert json.load(f)['finished_step'] == NUM_STEPS


@pytest.mark.slow
def test_evaluation_killed_then_rerun_completes(runs):
  e = _result(runs.evaluation)
  assert e['kill_met'], e['kill_out'][-3000:]
  assert not [n for n in e['after_kill'] if n.startswith('metrics_')], e['after_kill']
  assert e['rc'] == 0, e['out'][-4000:]
  model_dir = runs.finished_model_dir
  assert ('Continuous evaluation stops after the checkpoint of step %d: the run in %s finished at '
          'step %d (training_state.json), not this command\'s num_steps 1000.'
          % (NUM_STEPS, model_dir, NUM_STEPS)) in e['out']
  assert 'Evaluated the final checkpoint (step %d >= %d); exiting.' % (NUM_STEPS, NUM_STEPS) in (
      e['out'])
  assert e['seconds'] < LAUNCH_TIMEOUT  # far below --eval_timeout: did not wait for it
  eval_events = os.path.join(runs.eval_dir, 'eval')
  with open(os.path.join(eval_events, 'metrics_%d.json' % NUM_STEPS)) as f:
    record = json.load(f)
  assert record['global_step'] == NUM_STEPS and record['num_images'] == NUM_IMAGES
  assert 'DetectionMasks_Precision/mAP' in record['metrics']
  assert not [n for n in os.listdir(eval_events) if n.endswith('.tmp')]
