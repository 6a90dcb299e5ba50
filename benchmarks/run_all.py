"""Runs every benchmark (each in its own subprocess) and prints one table.

  python benchmarks/run_all.py            # the full run (~14 min on 2 CPU cores)
  python benchmarks/run_all.py --quick    # tiny smoke run of every benchmark (a few minutes)
  python benchmarks/run_all.py --only train_resnet50,train_mg_resnet50   # names or globs
  python benchmarks/run_all.py --list
  python benchmarks/run_all.py --tfod_research_dir /work/tfod/research \
      --tfod_python /work/tfod_venv/bin/python        # adds the TF OD API peer rows (c4_*_tfod)
  python benchmarks/run_all.py --only 'c4_*' --tfod_research_dir ... --tfod_python ...

Writes benchmarks/results/latest.json (every benchmark's JSON, the table, date, nproc, TF
version; --quick writes quick.json) and keeps each benchmark's log in benchmarks/results/logs/.
The figures of a full run are recorded in benchmarks/README.md.

Table columns: the measured figure; the peer's figure and ours/peer (time ratio: < 1 means ours
is faster); FLOPs of one step / image counted from the traced graph (benchmarks/flops.py); the
floor = FLOPs / the measured dense fp32 matmul rate (benchmarks/matmul_floor.py); and the
fraction of floor = floor time / measured time (1.0 would be matmul speed throughout). The floor
rate is the best of the matmul runs at the start and at the end of the run. Each benchmark's
JSON also records the machine's CPU busy / steal fractions while it ran (`machine`), to spot a
run disturbed by other work.

The same-network comparison with the TF Object Detection API (rows c4_*): both sides run
benchmarks/configs/mask_rcnn_resnet50_c4_512.config (the TF OD API's C4 ResNet-50 Mask R-CNN,
512x512, train batch 2) on the same records: training s/step and the training process's peak
RSS (train_step.py --model resnet50_c4 vs tfod_peer.py --mode train), exported-SavedModel
inference ms/image (inference.py --config c4 vs tfod_peer.py --mode inference) and evaluation
s/image (evaluation.py --model_eval c4 vs tfod_peer.py --mode eval). The TF OD API side runs in
its own interpreter and environment (--tfod_python; PYTHONPATH = --tfod_research_dir and its
slim/, TF_USE_LEGACY_KERAS=1, working directory outside this repository, as
/work/tfod/env.sh sets up); without those flags its rows are skipped with a note and the c4 rows
of ours are shown without ratios. Targets: ours <= 0.3x its training time and <= 1/3 of its peak
RSS, <= 0.5x its inference and evaluation time.
"""
import argparse
import datetime
import fnmatch
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')  # INFO logs off (also in the benchmark logs)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # pylint: disable=g-import-not-at-top,wrong-import-position

RESULTS_DIR = os.path.join(HERE, 'results')

# Full-run settings (the quick run uses QUICK below). Training: 512x512, batch 2, 2 warm-up
# steps (the first traces), median of 5 timed steps. Inference: batch 1, 2 warm-up calls, median
# of 5. Mask head: one image's 512 sampled ROIs vs 128 positives, median of 2 after 1 warm-up.
# Input pipeline: 50 timed batches (512px, batch 2) / 10 (1024px, batch 8) after 2 warm-up.
FULL = {'train_size': 512, 'train_batch': 2, 'train_steps': 5, 'train_warmup': 2,
        'infer_sizes': (512, 1024), 'infer_steps': 5, 'infer_warmup': 2,
        'pipeline_batches': 10, 'data_repeats': 3, 'eval_repeats': 3, 'matmul_n': 2048,
        'mask_head_steps': 2, 'mask_head_rois': (64, 16),
        # Same-network rows (ours vs the TF OD API, C4 config): ~27 s/step and ~7-9 s/image for
        # the TF OD API on 2 cores plus ~1-2 min of start-up / tracing / export per process, so
        # fewer repeats than above keep the whole run near 25 min. Training: median of 4 after
        # 1 warm-up (the first call traces, optimizer slots included; the median of 4 absorbs
        # one slow second step); inference median of 3 after 1; evaluation 6 val images (the
        # first, which traces, excluded).
        'c4_size': 512, 'c4_batch': 2, 'c4_train_steps': 4, 'c4_train_warmup': 1,
        'c4_infer_steps': 3, 'c4_infer_warmup': 1, 'c4_eval_images': 6}
QUICK = {'train_size': 128, 'train_batch': 1, 'train_steps': 1, 'train_warmup': 1,
         'infer_sizes': (128,), 'infer_steps': 1, 'infer_warmup': 1,
         'pipeline_batches': 2, 'data_repeats': 1, 'eval_repeats': 1, 'matmul_n': 512,
         'mask_head_steps': 1, 'mask_head_rois': (8, 2),
         'c4_size': 128, 'c4_batch': 1, 'c4_train_steps': 1, 'c4_train_warmup': 1,
         'c4_infer_steps': 1, 'c4_infer_warmup': 1, 'c4_eval_images': 2}

TRAIN_MODELS = ('resnet50', 'mg_resnet50', 'efficientnet_b2', 'mobilenet_v2')
# Same-network rows: (kind, TF OD API benchmark, ours); the TF OD API one runs first.
C4_PAIRS = (('train', 'c4_train_tfod', 'c4_train_ours'),
            ('inference', 'c4_inference_tfod', 'c4_inference_ours'),
            ('eval', 'c4_eval_tfod', 'c4_eval_ours'))
C4_TARGETS = {'train': 0.3, 'train_rss': 1.0 / 3.0, 'inference': 0.5, 'eval': 0.5}
TFOD_SKIP_NOTE = 'TF OD API not given: pass --tfod_research_dir and --tfod_python'


class Tfod(object):
  """How to launch the TF OD API peer: its interpreter and research/ folder (None: skipped)."""

  def __init__(self, python, research_dir):
    self.python = python
    self.research_dir = os.path.abspath(research_dir)

  def env(self):
    """os.environ with the TF OD API's PYTHONPATH (research/, research/slim) and legacy Keras."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([self.research_dir,
                                         os.path.join(self.research_dir, 'slim')])
    env['TF_USE_LEGACY_KERAS'] = '1'
    return env

  def check(self):
    """One clear error line for a flag that cannot work; None when both look right."""
    if not os.path.isfile(os.path.join(self.research_dir, 'object_detection', 'model_lib_v2.py')):
      return ('--tfod_research_dir %s: no object_detection/model_lib_v2.py there (give the TF OD '
              'API research/ folder)' % self.research_dir)
    if not (os.path.isfile(self.python) and os.access(self.python, os.X_OK)):
      return '--tfod_python %s: not an executable file' % self.python
    return None


def c4_specs(s, records, tfod):
  """The same-network specs: (name, argv, launch) with launch = None (ours) or the TF OD API's."""
  py = sys.executable
  size = '--image_size=%d' % s['c4_size']
  ours = {
      'train': [py, os.path.join(HERE, 'train_step.py'), '--model=resnet50_c4', size,
                '--batch_size=%d' % s['c4_batch'], '--steps=%d' % s['c4_train_steps'],
                '--warmup=%d' % s['c4_train_warmup'], '--records=' + records, '--no_flops'],
      'inference': [py, os.path.join(HERE, 'inference.py'), '--side=ours', '--config=c4', size,
                    '--steps=%d' % s['c4_infer_steps'], '--warmup=%d' % s['c4_infer_warmup'],
                    '--no_flops'],
      'eval': [py, os.path.join(HERE, 'evaluation.py'), '--model_eval=c4', size,
               '--records=' + records, '--eval_images=%d' % s['c4_eval_images']],
  }
  peer_args = {
      'train': ['--batch_size=%d' % s['c4_batch'], '--steps=%d' % s['c4_train_steps'],
                '--warmup=%d' % s['c4_train_warmup']],
      'inference': ['--steps=%d' % s['c4_infer_steps'], '--warmup=%d' % s['c4_infer_warmup']],
      'eval': ['--eval_images=%d' % s['c4_eval_images']],
  }
  specs = []
  for kind, peer_name, ours_name in C4_PAIRS:
    if tfod is None:
      specs.append((peer_name, None, {'skip': TFOD_SKIP_NOTE}))
    else:
      specs.append((peer_name, [tfod.python, os.path.join(HERE, 'tfod_peer.py'), '--mode=' + kind,
                                '--records=' + records, size,
                                '--tfod_research_dir=' + tfod.research_dir] + peer_args[kind],
                    {'env': tfod.env(), 'cwd': tempfile.gettempdir()}))
    specs.append((ours_name, ours[kind], None))
  return specs


def benchmark_specs(s, records, tfod=None):
  """[(name, argv without --output_json, launch)] in run order.

  launch: None (this interpreter, cwd = the repository), {'env': ..., 'cwd': ...} for the TF OD
  API peer, or {'skip': reason} (argv None) when the TF OD API was not given.
  """
  py = sys.executable
  specs = [('matmul_floor', [py, os.path.join(HERE, 'matmul_floor.py'),
                             '--n=%d' % s['matmul_n']])]
  for model in TRAIN_MODELS:
    specs.append(('train_' + model, [
        py, os.path.join(HERE, 'train_step.py'), '--model=' + model,
        '--image_size=%d' % s['train_size'], '--batch_size=%d' % s['train_batch'],
        '--steps=%d' % s['train_steps'], '--warmup=%d' % s['train_warmup'],
        '--records=' + records]))
  specs.append(('mask_head', [py, os.path.join(HERE, 'mask_head.py'), '--batch_size=2',
                              '--steps=%d' % s['mask_head_steps'], '--warmup=1',
                              '--rois_per_image=%d' % s['mask_head_rois'][0],
                              '--positives_per_image=%d' % s['mask_head_rois'][1]]))
  for size in s['infer_sizes']:
    for side in ('ours', 'mg'):
      specs.append(('inference_%s_%d' % (side, size), [
          py, os.path.join(HERE, 'inference.py'), '--side=' + side, '--image_size=%d' % size,
          '--steps=%d' % s['infer_steps'], '--warmup=%d' % s['infer_warmup']]))
  specs.append(('input_pipeline_%d' % s['train_size'], [
      py, os.path.join(HERE, 'input_pipeline.py'), '--image_size=%d' % s['train_size'],
      '--batch_size=%d' % s['train_batch'], '--num_batches=%d' % (5 * s['pipeline_batches']),
      '--mask_types', 'png']))
  specs.append(('input_pipeline_1024', [
      py, os.path.join(HERE, 'input_pipeline.py'), '--image_size=1024', '--batch_size=8',
      '--num_batches=%d' % s['pipeline_batches']]))
  specs.append(('data_tools', [py, os.path.join(HERE, 'data_tools.py'),
                               '--repeats=%d' % s['data_repeats']]))
  specs.append(('evaluation', [py, os.path.join(HERE, 'evaluation.py'),
                               '--repeats=%d' % s['eval_repeats']]))
  specs = [(name, argv, None) for name, argv in specs]
  specs += c4_specs(s, records, tfod)
  # Measured again at the end: the floor uses the best rate of both (a rate lowered by a
  # momentary slowdown of the machine would make every floor fraction too optimistic).
  specs.append(('matmul_floor_end', [py, os.path.join(HERE, 'matmul_floor.py'),
                                     '--n=%d' % s['matmul_n']], None))
  return specs


def run_one(name, argv, log_dir, timeout, launch=None):
  """Runs one benchmark subprocess; returns its JSON payload plus wall seconds (or an error).

  launch: optional {'env': environment, 'cwd': working directory} (the TF OD API peer runs in
  its own environment, outside this repository); default: this environment, the repository.
  """
  launch = launch or {}
  out_json = os.path.join(log_dir, name + '.json')
  if os.path.exists(out_json):
    os.remove(out_json)
  log_path = os.path.join(log_dir, name + '.log')
  cpu_before = _cpu_times()
  start = time.perf_counter()
  with open(log_path, 'w') as log:
    try:
      proc = subprocess.run(argv + ['--output_json=' + out_json], stdout=log,
                            stderr=subprocess.STDOUT, cwd=launch.get('cwd', common.REPO_ROOT),
                            env=launch.get('env'), timeout=timeout)
      code = proc.returncode
    except subprocess.TimeoutExpired:
      code = 'timeout after %d s' % timeout
  seconds = time.perf_counter() - start
  load = machine_load(cpu_before, _cpu_times())
  if code == 0 and os.path.exists(out_json):
    with open(out_json) as f:
      payload = json.load(f)
    payload['wall_seconds'] = seconds
    payload['machine'] = load
    return payload
  with open(log_path) as f:
    tail = f.read().splitlines()[-15:]
  return {'benchmark': name, 'error': 'exit status %s' % code, 'log_tail': tail,
          'wall_seconds': seconds, 'machine': load}


# ----------------------------------------------------------------------------------- table
def _fmt(value, spec='%.2f'):
  return '-' if value is None else spec % value


def floor_rate(results):
  """GFLOP/s used for the floor: the best matmul rate measured (start and end of the run)."""
  rates = []
  for key in ('matmul_floor', 'matmul_floor_end'):
    m = results.get(key, {}).get('result')
    if m:
      rates.append(m.get('best_gflops_per_second', m['gflops_per_second']))
  return max(rates) if rates else None


def _cpu_times():
  """(busy, idle, steal, total) jiffies from /proc/stat (None off Linux)."""
  try:
    with open('/proc/stat') as f:
      fields = [int(x) for x in f.readline().split()[1:]]
  except (OSError, ValueError):
    return None
  idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
  steal = fields[7] if len(fields) > 7 else 0
  total = sum(fields[:8])
  return total - idle - steal, idle, steal, total


def machine_load(before, after):
  """CPU use of the whole machine while a benchmark ran: busy / steal fractions."""
  if not before or not after or after[3] <= before[3]:
    return {}
  total = float(after[3] - before[3])
  return {'cpu_busy_fraction': (after[0] - before[0]) / total,
          'cpu_steal_fraction': (after[2] - before[2]) / total,
          'loadavg_1min_after': os.getloadavg()[0]}


def _payload(results, name, rows):
  """Benchmark `name`'s JSON payload; {} when it did not run, or when it failed, after adding
  its FAILED row to `rows`."""
  payload = results.get(name, {})
  if 'error' in payload:
    rows.append({'name': name, 'result': 'FAILED (%s)' % payload['error']})
    return {}
  if 'skipped' in payload:
    # The full reason is printed under the table.
    rows.append({'name': name, 'result': 'SKIPPED (%s)' % payload['skipped'].split(':')[0]})
    return {}
  return payload


def build_rows(results):
  """Table rows: dicts with name, setting, result, peer, ratio, gflop, floor, fraction."""
  rows = []
  rate = floor_rate(results)
  flops_per_s = rate * 1e9 if rate else None

  def floor_fields(flops, seconds):
    if not flops or not flops_per_s or not seconds:
      return None, None
    floor = flops / flops_per_s
    return floor, floor / seconds

  for key in ('matmul_floor', 'matmul_floor_end'):
    m = results.get(key, {}).get('result')
    if m:
      rows.append({'name': key, 'setting': 'fp32 %dx%d matmul, %d runs' % (
          m['n'], m['n'], m['repeats']), 'result': '%.1f GFLOP/s best (%.1f median)' % (
              m.get('best_gflops_per_second', m['gflops_per_second']), m['gflops_per_second'])})
  if rate:
    rows.append({'name': 'floor rate', 'setting': 'best of the matmul runs',
                 'result': '%.1f GFLOP/s' % rate})
  mg = results.get('train_mg_resnet50', {}).get('result')
  for model in TRAIN_MODELS:
    name = 'train_' + model
    r = _payload(results, name, rows).get('result')
    if not r:
      continue
    flops = None
    if 'flops' in r:
      flops = r['flops']['total_flops'] + r.get('optimizer_flops', 0)
    floor, fraction = floor_fields(flops, r['loop_seconds'])
    row = {'name': name, 'setting': '%dpx b%d, median of %d' % (
        r['image_size'], r['batch_size'], r['steps']),
           'result': '%.2f s/step (%.2f img/s; step only %.2f s)' % (
               r['loop_seconds'], r['batch_size'] / r['loop_seconds'], r['step_seconds']),
           'gflop': flops / 1e9 if flops else None, 'floor': floor, 'fraction': fraction}
    if mg and model != 'mg_resnet50':
      row['peer'] = '%.2f s/step (MG)' % mg['loop_seconds']
      row['ratio'] = r['loop_seconds'] / mg['loop_seconds']
      if model == 'resnet50':
        row['target'] = '<= 1.00x'
    rows.append(row)
  for r in _payload(results, 'mask_head', rows).get('results', []):
    floor, fraction = floor_fields(r.get('flops'), r['seconds'])
    rows.append({'name': 'mask_head', 'setting': '%d ROIs %s' % (r['num_rois'], r['mode']),
                 'result': '%.2f s fwd+bwd' % r['seconds'],
                 'gflop': r['flops'] / 1e9 if r.get('flops') else None,
                 'floor': floor, 'fraction': fraction})
  sizes = sorted(set(int(k.rsplit('_', 1)[1]) for k in results if k.startswith('inference_')))
  for size in sizes:
    peer = results.get('inference_mg_%d' % size, {}).get('result')
    for side in ('ours', 'mg'):
      name = 'inference_%s_%d' % (side, size)
      r = _payload(results, name, rows).get('result')
      if not r:
        continue
      flops = r['flops']['total_flops'] if 'flops' in r else None
      floor, fraction = floor_fields(flops, r['ms_per_image'] / 1e3)
      row = {'name': name, 'setting': '%dpx b1, median of %d' % (size, r['steps']),
             'result': '%.0f ms/image' % r['ms_per_image'],
             'gflop': flops / 1e9 if flops else None,
             'floor': floor * 1e3 if floor else None, 'floor_unit': 'ms', 'fraction': fraction}
      if peer and side == 'ours':
        row['peer'] = '%.0f ms/image (MG)' % peer['ms_per_image']
        row['ratio'] = r['ms_per_image'] / peer['ms_per_image']
      rows.append(row)
  for key in sorted((k for k in results if k.startswith('input_pipeline')),
                   key=lambda k: int(k.rsplit('_', 1)[1])):
    for p in _payload(results, key, rows).get('results', []):
      rows.append({'name': key, 'setting': '%s %dpx b%d' % (
          p['mask_type'], p['image_size'], p['batch_size']),
                   'result': '%.1f img/s, peak RSS %.0f MB' % (
                       p['images_per_second'], p['peak_rss_mb'])})
  for p in _payload(results, 'data_tools', rows).get('results', []):
    rows.append({'name': 'data_tools', 'setting': '%s %s' % (
        p.get('converter', 'coco'), p.get('setting', 'w%d' % p['num_workers'])),
                 'result': '%s img/s (%.1f img/s incl. start-up)' % (
                     _fmt(p['convert_images_per_second'], '%.1f'),
                     p['wall_images_per_second'])})
  e = _payload(results, 'evaluation', rows).get('result')
  if e:
    rows.append({'name': 'evaluation', 'setting': 'COCO bbox+segm, %d detections' %
                 e['num_detections'], 'result': '%.2f s' % e['seconds']})
  rows.extend(c4_rows(results))
  return rows


# Result key of each c4 figure (train: s/step, train_rss: MB, inference: ms, eval: s/image).
C4_KEYS = {'train': 'loop_seconds', 'train_rss': 'peak_rss_mb', 'inference': 'ms_per_image',
           'eval': 'seconds_per_image'}
C4_FIGURES = {'train': ('train', 'train_rss'), 'inference': ('inference',), 'eval': ('eval',)}


def c4_figures(results):
  """{figure: (ours value, TF OD API value or None)} for the c4 figures ours measured; figure
  is train, train_rss, inference or eval (units in C4_KEYS)."""
  out = {}
  for kind, peer_name, ours_name in C4_PAIRS:
    ours = results.get(ours_name, {}).get('result')
    peer = results.get(peer_name, {}).get('result')
    for figure in C4_FIGURES[kind]:
      key = C4_KEYS[figure]
      if ours and ours.get(key) is not None:
        out[figure] = (ours[key], peer.get(key) if peer else None)
  return out


def c4_rows(results):
  """Table rows of the same-network comparison with the TF OD API (C4 config)."""
  rows = []
  formats = {'train': '%.2f s/step', 'train_rss': '%.0f MB peak RSS',
             'inference': '%.0f ms/image', 'eval': '%.2f s/image'}
  for kind, peer_name, ours_name in C4_PAIRS:
    peer = _payload(results, peer_name, rows).get('result')
    ours = _payload(results, ours_name, rows).get('result')
    for side_name, r, other in ((peer_name, peer, None), (ours_name, ours, peer)):
      if not r:
        continue
      if kind == 'train':
        setting = '%dpx b%d, median of %d' % (r['image_size'], r['batch_size'], r['steps'])
        figures = [('train', r['loop_seconds'], setting),
                   ('train_rss', r.get('peak_rss_mb'), 'training process, VmHWM')]
      elif kind == 'inference':
        figures = [('inference', r['ms_per_image'], '%dpx b1 SavedModel, median of %d' % (
            r['image_size'], r['steps']))]
      else:
        figures = [('eval', r['seconds_per_image'], '%dpx, %d images (first excluded)' % (
            r['image_size'], r['num_images']))]
      for figure, value, setting in figures:
        if value is None:
          continue
        row = {'name': side_name, 'setting': 'C4 ' + setting,
               'result': formats[figure] % value}
        if side_name == ours_name:
          row['target'] = '<= %.2fx' % C4_TARGETS[figure]
        if other is not None:
          peer_value = other.get(C4_KEYS[figure])
          if peer_value:
            row['peer'] = (formats[figure] % peer_value) + ' (TF OD API)'
            row['ratio'] = value / peer_value
        rows.append(row)
  return rows


def format_table(rows):
  header = ['benchmark', 'setting', 'result', 'peer', 'ours/peer', 'target', 'GFLOP', 'floor',
            'floor/measured']
  lines = []
  for r in rows:
    floor = None
    if r.get('floor') is not None:
      floor = ('%.0f ms' % r['floor']) if r.get('floor_unit') == 'ms' else '%.2f s' % r['floor']
    lines.append([r['name'], r.get('setting', ''), r.get('result', ''), r.get('peer', ''),
                  _fmt(r.get('ratio'), '%.2fx'), r.get('target', ''),
                  _fmt(r.get('gflop'), '%.0f'), floor or '-', _fmt(r.get('fraction'), '%.3f')])
  widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
  out = ['| ' + ' | '.join(h.ljust(w) for h, w in zip(header, widths)) + ' |',
         '|' + '|'.join('-' * (w + 2) for w in widths) + '|']
  for line in lines:
    out.append('| ' + ' | '.join(str(x).ljust(w) for x, w in zip(line, widths)) + ' |')
  return '\n'.join(out)


def targets(results):
  """The README targets, evaluated on the results (None when not measured)."""
  out = {}
  names = {'train': 'c4_train_step_vs_tfod', 'train_rss': 'c4_train_peak_rss_vs_tfod',
           'inference': 'c4_inference_vs_tfod', 'eval': 'c4_eval_per_image_vs_tfod'}
  for figure, (ours_value, peer_value) in c4_figures(results).items():
    if peer_value:
      ratio = ours_value / peer_value
      out[names[figure]] = {'target': '<= %.2fx' % C4_TARGETS[figure], 'value': ratio,
                            'ours': ours_value, 'tfod': peer_value,
                            'met': ratio <= C4_TARGETS[figure]}
  ours = results.get('train_resnet50', {}).get('result')
  mg = results.get('train_mg_resnet50', {}).get('result')
  if ours and mg:
    ratio = ours['loop_seconds'] / mg['loop_seconds']
    out['train_step_vs_mg'] = {'target': '<= 1.0x', 'value': ratio, 'met': ratio <= 1.0}
  pipe = None
  for key in sorted(k for k in results if k.startswith('input_pipeline')):
    for p in results[key].get('results', []):
      if ours and p['image_size'] == ours['image_size'] and p['mask_type'] == 'PNG_MASKS':
        pipe = p
  if ours and pipe:
    consumption = ours['batch_size'] / ours['loop_seconds']
    factor = pipe['images_per_second'] / consumption
    out['input_pipeline_vs_consumption'] = {
        'target': '>= 5x the training step image consumption, bounded memory',
        'value': factor, 'pipeline_images_per_second': pipe['images_per_second'],
        'train_images_per_second': consumption, 'peak_rss_mb': pipe['peak_rss_mb'],
        'met': factor >= 5.0}
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--quick', action='store_true', help='tiny smoke run of everything')
  parser.add_argument('--only', default='', help='comma-separated names or globs (see --list)')
  parser.add_argument('--list', action='store_true')
  parser.add_argument('--timeout', type=int, default=1800, help='seconds per benchmark')
  parser.add_argument('--tfod_research_dir', default='',
                      help='the TF OD API research/ folder (object_detection/, slim/): adds the '
                      'TF OD API peer rows c4_*_tfod; needs --tfod_python')
  parser.add_argument('--tfod_python', default='',
                      help='the interpreter of the TF OD API environment (e.g. '
                      '/work/tfod_venv/bin/python)')
  parser.add_argument('--output_json', default='',
                      help='default: benchmarks/results/latest.json (quick.json with --quick)')
  args = parser.parse_args()
  settings = QUICK if args.quick else FULL
  tfod = None
  if bool(args.tfod_research_dir) != bool(args.tfod_python):
    parser.error('--tfod_research_dir and --tfod_python go together (the TF OD API peer needs '
                 'both)')
  if args.tfod_research_dir:
    tfod = Tfod(args.tfod_python, args.tfod_research_dir)
    problem = tfod.check()
    if problem:
      parser.error(problem)
  if args.list:
    for name, _, launch in benchmark_specs(settings, 'RECORDS', tfod):
      print(name + ('  (skipped: %s)' % launch['skip'] if launch and 'skip' in launch else ''))
    return
  patterns = [p.strip() for p in args.only.split(',') if p.strip()]
  log_dir = os.path.join(RESULTS_DIR, 'logs' + ('_quick' if args.quick else ''))
  os.makedirs(log_dir, exist_ok=True)
  output_json = args.output_json or os.path.join(
      RESULTS_DIR, 'quick.json' if args.quick else 'latest.json')

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  info = {'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
          'nproc': multiprocessing.cpu_count(),
          'nproc_cmd': subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip(),
          'tf_version': tf.__version__, 'python': platform.python_version(),
          'cpu': _cpu_model(), 'quick': args.quick, 'settings': settings,
          'tfod': ({'python': tfod.python, 'research_dir': tfod.research_dir} if tfod else None),
          'git_head': subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
                                     text=True, cwd=common.REPO_ROOT).stdout.strip(),
          # Uncommitted changes outside benchmarks/ (what was measured beyond git_head).
          'git_modified': [line[3:] for line in subprocess.run(
              ['git', 'status', '--porcelain', '--untracked-files=no'], capture_output=True,
              text=True, cwd=common.REPO_ROOT).stdout.splitlines()
                           if not line[3:].startswith('benchmarks/')]}
  del tf
  print('%s, nproc %s, TF %s, %s' % (info['date'], info['nproc_cmd'], info['tf_version'],
                                      info['cpu']), flush=True)
  start_all = time.perf_counter()
  records = tempfile.mkdtemp(prefix='bench_records_')
  convert_seconds, _ = common.convert_coco128(records)
  print('coco128_seg records written in %.1f s (%s)' % (convert_seconds, records), flush=True)
  results = {}
  if patterns and os.path.exists(output_json):
    # A partial run updates the previous results file.
    with open(output_json) as f:
      results = json.load(f).get('results', {})
  skipped = []
  for name, argv, launch in benchmark_specs(settings, records, tfod):
    if patterns and not any(fnmatch.fnmatch(name, p) or name == p for p in patterns):
      continue
    if launch and 'skip' in launch:
      skipped.append(name)
      results[name] = {'benchmark': name, 'skipped': launch['skip']}
      print('skipped %-26s (%s)' % (name, launch['skip']), flush=True)
      continue
    print('running %-26s ...' % name, end=' ', flush=True)
    payload = run_one(name, argv, log_dir, args.timeout, launch)
    results[name] = payload
    load = payload.get('machine', {})
    print('%s (%.0f s; machine CPU busy %s, steal %s)' % (
        'FAILED: ' + payload['error'] if 'error' in payload else 'done', payload['wall_seconds'],
        _fmt(load.get('cpu_busy_fraction'), '%.2f'), _fmt(load.get('cpu_steal_fraction'), '%.2f')),
          flush=True)
  shutil.rmtree(records, ignore_errors=True)
  info['total_seconds'] = time.perf_counter() - start_all
  rows = build_rows(results)
  table = format_table(rows)
  goals = targets(results)
  print()
  print(table)
  for key, goal in goals.items():
    print('target %s %s: %.2f -> %s' % (key, goal['target'], goal['value'],
                                         'met' if goal['met'] else 'NOT met'))
  if skipped:
    print('note: %s skipped (%s); ours/TF OD API ratios are missing' % (
        ', '.join(skipped), TFOD_SKIP_NOTE))
  print('total %.0f s' % info['total_seconds'])
  os.makedirs(os.path.dirname(output_json), exist_ok=True)
  with open(output_json, 'w') as f:
    json.dump({'info': info, 'results': results, 'rows': rows, 'table': table,
               'targets': goals}, f, indent=2)
  print('results: %s' % output_json)
  if any('error' in r for r in results.values()):
    sys.exit(1)


def _cpu_model():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


if __name__ == '__main__':
  main()
