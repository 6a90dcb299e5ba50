"""MultiWorkerMirroredStrategy shown on one machine: two `model_main.py --num_workers=2` processes.

Two real subprocesses (TF_CONFIG: a cluster of two workers on free localhost ports, task 0 = the
chief, task 1) train the sample EfficientNet-Lite0 FPN Mask R-CNN config at 128 px, from scratch
(a real extractor: its batch-norm moving averages are SyncOnRead variables, so every save is a
collective), on TFRecords of the first 4 bundled coco128_seg val photos written as 2 shards
(tf.data shards the files over the 2 workers' input pipelines).

What each launch records for the test (the runner wraps two functions, without changing them):
  - inputs.train_input: the static batch dimension of the dataset this worker reads, and its
    input pipeline id (train_config.batch_size 2 is the GLOBAL batch: 1 image per worker per step);
  - checkpointing.save: a SHA-256 of this worker's own copy of every trainable variable, after the
    save of each step. Each worker reads different images, so equal digests on both workers
    show the gradients were all-reduced (two unsynchronised workers would drift apart at step 1).

The two launches of one run share the 2 CPU cores; a launch is mostly imports, model build and
tracing (about 55 s of CPU each here).
"""
import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import COCO128_DIR  # pylint: disable=g-bad-import-order

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
NUM_IMAGES = 4
GLOBAL_BATCH = 2
FIRST_STEPS = 3
LAUNCH_TIMEOUT = 300

# Runs model_main.py as a user does, after wrapping the two functions whose results the test
# checks (module docstring). Writes <MW_TEST_OUT>/task<i>.json.
_RUNNER = r"""
import hashlib, json, os, runpy, sys
from object_detection import inputs
from object_detection.training import checkpointing

task = json.loads(os.environ['TF_CONFIG'])['task']['index']
out_path = os.path.join(os.environ['MW_TEST_OUT'], 'task%d.json' % task)
record = {'input': [], 'digests': {}}

def dump():
  with open(out_path, 'w') as f:
    json.dump(record, f)

original_train_input = inputs.train_input
def train_input(*args, **kwargs):
  dataset = original_train_input(*args, **kwargs)
  context = kwargs['input_context']
  features = dataset.element_spec[0]
  record['input'].append({'batch': features['image'].shape[0],
                          'pipeline_id': context.input_pipeline_id,
                          'num_pipelines': context.num_input_pipelines})
  dump()
  return dataset
inputs.train_input = train_input

original_save = checkpointing.save
def save(manager, global_step):
  path = original_save(manager, global_step)
  digest = hashlib.sha256()
  for variable in sorted(manager.checkpoint.model.trainable_variables, key=lambda v: v.name):
    digest.update(variable.name.encode())
    digest.update(variable.numpy().tobytes())  # this worker's own (first local replica) copy
  record['digests'][str(int(global_step.numpy()))] = digest.hexdigest()
  dump()
  return path
checkpointing.save = save

sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""

# The sample EfficientNet-Lite0 FPN config (a real extractor, with batch norm), made small: 128 px
# instead of 256, from scratch (no ImageNet weights), the test's records and classes.
SAMPLE_LITE0_CONFIG = os.path.join(REPO_ROOT, 'samples', 'configs',
                                   'mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config')
_LITE0_CHANGES = (
    ('min_dimension: 256', 'min_dimension: 128'),
    ('max_dimension: 256', 'max_dimension: 128'),
    ('num_classes: 90', 'num_classes: %(num_classes)d'),
    ('log_every_n_steps: 25', 'log_every_n_steps: 1'),
    ('batch_size: 2\n  num_steps: 800', 'batch_size: %(batch_size)d\n  num_steps: %(num_steps)d'),
    ('fine_tune_checkpoint: "runs/sample/pretrained/efficientnet_lite0/ckpt-1"', ''),
    ('fine_tune_checkpoint_type: "classification"', ''),
    ('runs/sample/data/label_map.pbtxt', '%(label_map)s'),
    ('runs/sample/data/coco_train.record-?????-of-00001', '%(train)s'),
    ('runs/sample/data/coco_val.record-?????-of-00001', '%(train)s'),
)


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(('localhost', 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  """2 record shards of the first NUM_IMAGES val photos (categories renumbered 1..K, as in
  test_kill_resume: fewer classes, smaller graphs) and the small Lite0 pipeline config."""
  from object_detection.dataset_tools import coco_tf_record  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('multi_worker')
  with open(os.path.join(COCO128_DIR, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  coco['images'] = sorted(coco['images'], key=lambda im: im['id'])[:NUM_IMAGES]
  ids = {im['id'] for im in coco['images']}
  coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in ids]
  new_id = {old: i + 1 for i, old in enumerate(sorted({a['category_id']
                                                       for a in coco['annotations']}))}
  coco['categories'] = [dict(c, id=new_id[c['id']]) for c in coco['categories']
                        if c['id'] in new_id]
  for annotation in coco['annotations']:
    annotation['category_id'] = new_id[annotation['category_id']]
  ann_file = str(root / 'instances.json')
  with open(ann_file, 'w') as f:
    json.dump(coco, f)
  result = coco_tf_record.convert([('train', os.path.join(COCO128_DIR, 'images'), ann_file)],
                                  str(root / 'data'), include_masks=True, num_shards=2,
                                  mask_type='png', show_progress=False)
  shards = result['splits'][0].output_files
  assert len(shards) == 2
  with open(SAMPLE_LITE0_CONFIG) as f:
    text = f.read().replace('%', '%%')
  for old, new in _LITE0_CHANGES:
    assert text.count(old) >= 1, old  # the sample config changed: update _LITE0_CHANGES
    text = text.replace(old, new)
  config = str(root / 'pipeline.config')
  with open(config, 'w') as f:
    f.write(text % dict(num_classes=len(new_id), batch_size=GLOBAL_BATCH, num_steps=FIRST_STEPS,
                        label_map=result['label_map_path'],
                        train=os.path.join(str(root / 'data'), 'coco_train.record-*')))
  return {'root': root, 'config': config}


def _launch_pair(workspace, model_dir, num_steps, out_dir):
  """Starts the two workers of one run and waits for both; returns [(exit status, output)]."""
  os.makedirs(out_dir)
  tmp = os.path.join(out_dir, 'tmp')  # each worker's TMPDIR: where a non-chief saves
  os.makedirs(tmp)
  hosts = ['localhost:%d' % p for p in _free_ports(2)]
  procs = []
  for index in range(2):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', MW_TEST_OUT=out_dir, TMPDIR=tmp,
               CUDA_VISIBLE_DEVICES='',
               TF_CONFIG=json.dumps({'cluster': {'worker': hosts},
                                     'task': {'type': 'worker', 'index': index}}))
    log = open(os.path.join(out_dir, 'task%d.log' % index), 'w')
    procs.append((subprocess.Popen(
        [sys.executable, '-c', _RUNNER, 'model_main.py', '--num_workers=2',
         '--pipeline_config_path=%s' % workspace['config'], '--model_dir=%s' % model_dir,
         '--num_train_steps=%d' % num_steps, '--checkpoint_every_n=2'],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
  results = []
  for proc, log in procs:
    try:
      proc.wait(LAUNCH_TIMEOUT)
    except subprocess.TimeoutExpired:
      for other, _ in procs:
        other.kill()
    log.close()
    with open(log.name) as f:
      results.append((proc.wait(), f.read()))
  return results


def _recorded(out_dir, task):
  with open(os.path.join(out_dir, 'task%d.json' % task)) as f:
    return json.load(f)


def _worker_folders(out_dir):
  """The non-chief's temporary checkpoint folders left in its TMPDIR."""
  return [n for n in os.listdir(os.path.join(out_dir, 'tmp')) if n.startswith('od_worker')]


def _step_lines(output):
  return [line for line in output.splitlines() if line.startswith('step ')]


@pytest.mark.slow
def test_two_workers_train_and_save_from_the_chief_only(workspace):
  root = workspace['root']
  model_dir = str(root / 'model')

  # --- run 1: steps 1..3 ---
  first = str(root / 'run1')
  (chief_rc, chief_out), (worker_rc, worker_out) = _launch_pair(workspace, model_dir,
                                                                FIRST_STEPS, first)
  assert chief_rc == 0, chief_out[-4000:]
  assert worker_rc == 0, worker_out[-4000:]
  # The chief prints the progress (global batch in images/s); the other worker one line at the end.
  assert [l.split()[1] for l in _step_lines(chief_out)] == ['1/3', '2/3', '3/3']
  assert 'Training finished at step 3; last checkpoint %s' % os.path.join(
      model_dir, 'ckpt-3') in chief_out
  assert _step_lines(worker_out) == []
  assert 'Worker 1 finished at step 3 (the chief writes %s).' % model_dir in worker_out
  # Only the chief's files: checkpoints every 2 steps and at the end, its config, its TensorBoard.
  assert sorted(os.listdir(model_dir)) == [
      'checkpoint', 'ckpt-2.data-00000-of-00001', 'ckpt-2.index', 'ckpt-3.data-00000-of-00001',
      'ckpt-3.index', 'pipeline.config', 'train', 'training_state.json']
  # Worker 1 saved too (it must take part), into a temporary folder that is gone.
  assert _worker_folders(first) == []

  # Global batch 2 over 2 workers: each reads 1 image per step, from its own shard.
  chief, worker = _recorded(first, 0), _recorded(first, 1)
  assert chief['input'] == [{'batch': 1, 'pipeline_id': 0, 'num_pipelines': 2}]
  assert worker['input'] == [{'batch': 1, 'pipeline_id': 1, 'num_pipelines': 2}]
  # Synchronised: both workers hold bit-identical weights after every saved step, and they train.
  assert sorted(chief['digests']) == sorted(worker['digests']) == ['2', '3']
  assert chief['digests'] == worker['digests']
  assert chief['digests']['2'] != chief['digests']['3']
  # Resuming (the same commands with more steps) is not run again here: a second pair of launches
  # costs about a minute of CI; single-process resume is tested in test_kill_resume and
  # test_model_lib_v2, and both workers restore the chief's checkpoint through the same code.


def _model_main(args, env_update=None, timeout=300):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
  env.pop('TF_CONFIG', None)
  env.update(env_update or {})
  return subprocess.run([sys.executable, 'model_main.py'] + args, cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


SAMPLE_CONFIG = os.path.join(REPO_ROOT, 'samples', 'configs', 'mask_rcnn_sample_cpu.config')


def test_use_tpu_without_a_tpu_is_one_line_and_exit_2(tmp_path):
  """No TPU here: TPUClusterResolver has no name to resolve outside Cloud TPU (docs/errors.md)."""
  model_dir = tmp_path / 'model'
  result = _model_main(['--pipeline_config_path=%s' % SAMPLE_CONFIG, '--model_dir=%s' % model_dir,
                        '--use_tpu'])
  assert result.returncode == 2, result.stderr[-3000:]
  lines = [l for l in result.stderr.splitlines() if l.startswith('Error: ')]
  assert lines == [
      'Error: --use_tpu: no TPU reachable with --tpu_name=(unset) (ValueError: Please provide a TPU '
      'Name to connect to.). Pass --tpu_name=<Cloud TPU name, grpc://<address>, or local on a TPU '
      'VM> from a machine that can reach it, or remove --use_tpu.'], result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  assert not model_dir.exists()


@pytest.mark.parametrize('tf_config, extra, message', [
    (None, ['--num_workers=0'], 'Usage error: --num_workers=0: it must be >= 1.'),
    (None, [], 'Usage error: --num_workers=2 needs the TF_CONFIG environment variable describing '
     'the cluster on every worker, e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", '
     '"host2:12345"]}, "task": {"type": "worker", "index": 0}}\' (docs/distributed.md).'),
    ({'cluster': {'worker': ['localhost:1', 'localhost:2', 'localhost:3']},
      'task': {'type': 'worker', 'index': 0}}, [],
     "Usage error: --num_workers=2 but TF_CONFIG lists 3 training tasks (chief + worker: chief=[], "
     "worker=['localhost:1', 'localhost:2', 'localhost:3']); make them equal."),
    ({'cluster': {'worker': ['localhost:1', 'localhost:2']},
      'task': {'type': 'evaluator', 'index': 0}}, [],
     "Usage error: --num_workers=2: TF_CONFIG task type 'evaluator' does not train; use \"chief\" "
     'or "worker" (evaluate with a separate model_main.py --checkpoint_dir job, without '
     'TF_CONFIG).'),
    ({'cluster': {'worker': ['localhost:1', 'localhost:2']},
      'task': {'type': 'worker', 'index': 0}}, ['--eval_every_n=10'],
     'Usage error: --eval_every_n is not supported with --num_workers > 1: evaluate as a separate '
     'job, model_main.py --checkpoint_dir=<model_dir> (docs/distributed.md).'),
])
def test_num_workers_needs_a_matching_tf_config(tmp_path, tf_config, extra, message):
  """Checked before TensorFlow is imported: MultiWorkerMirroredStrategy would otherwise train on
  this machine alone (no TF_CONFIG) or on another number of workers."""
  env = {'TF_CONFIG': json.dumps(tf_config)} if tf_config else {}
  result = _model_main(['--pipeline_config_path=%s' % SAMPLE_CONFIG,
                        '--model_dir=%s' % (tmp_path / 'model'), '--num_workers=2'] + extra,
                       env, timeout=120)
  assert result.returncode == 2, result.stderr[-3000:]
  assert result.stderr.strip().splitlines() == [message]
  assert not (tmp_path / 'model').exists()


class _TwoWorkerStrategy(object):
  """What train_loop reads of a 2-worker MultiWorkerMirroredStrategy before it builds anything."""
  num_replicas_in_sync = 2
  cluster_resolver = None

  class extended(object):  # pylint: disable=invalid-name
    _num_workers = 2


def test_global_batch_not_divisible_by_the_replicas_is_a_config_error(tmp_path):
  """train_config.batch_size is the global batch: 3 images cannot be split over 2 replicas (the
  check runs before a model, a dataset or model_dir is made)."""
  from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_validation  # pylint: disable=g-import-not-at-top
  with pytest.raises(config_validation.ConfigError) as raised:
    model_lib_v2.train_loop(SAMPLE_CONFIG, str(tmp_path / 'model'),
                            config_override='train_config { batch_size: 3 }',
                            strategy=_TwoWorkerStrategy())
  assert str(raised.value) == (
      'Invalid pipeline config: `train_config.batch_size` is 3, the global batch (TF OD API), which '
      'must be divisible by the 2 replicas in sync (1 per worker x 2 workers); set a multiple of 2.')
  assert not (tmp_path / 'model').exists()
