"""Runs every benchmark (each in its own subprocess) and prints one table.

  python benchmarks/run_all.py            # the full run (~14 min on 2 CPU cores)
  python benchmarks/run_all.py --quick    # tiny smoke run of every benchmark (a few minutes)
  python benchmarks/run_all.py --only train_resnet50,train_mg_resnet50   # names or globs
  python benchmarks/run_all.py --list

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
        'mask_head_steps': 2, 'mask_head_rois': (512, 128)}
QUICK = {'train_size': 128, 'train_batch': 1, 'train_steps': 1, 'train_warmup': 1,
         'infer_sizes': (128,), 'infer_steps': 1, 'infer_warmup': 1,
         'pipeline_batches': 2, 'data_repeats': 1, 'eval_repeats': 1, 'matmul_n': 512,
         'mask_head_steps': 1, 'mask_head_rois': (64, 16)}

TRAIN_MODELS = ('resnet50', 'mg_resnet50', 'efficientnet_b2', 'mobilenet_v2')


def benchmark_specs(s, records):
  """[(name, argv without --output_json)] in run order."""
  py = sys.executable
  specs = [('matmul_floor', [py, os.path.join(HERE, 'matmul_floor.py'),
                             '--n=%d' % s['matmul_n']])]
  for model in TRAIN_MODELS:
    specs.append(('train_' + model, [
        py, os.path.join(HERE, 'train_step.py'), '--model=' + model,
        '--image_size=%d' % s['train_size'], '--batch_size=%d' % s['train_batch'],
        '--steps=%d' % s['train_steps'], '--warmup=%d' % s['train_warmup'],
        '--records=' + records]))
  specs.append(('mask_head', [py, os.path.join(HERE, 'mask_head.py'), '--batch_size=1',
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
  # Measured again at the end: the floor uses the best rate of both (a rate lowered by a
  # momentary slowdown of the machine would make every floor fraction too optimistic).
  specs.append(('matmul_floor_end', [py, os.path.join(HERE, 'matmul_floor.py'),
                                     '--n=%d' % s['matmul_n']]))
  return specs


def run_one(name, argv, log_dir, timeout):
  """Runs one benchmark subprocess; returns its JSON payload plus wall seconds (or an error)."""
  out_json = os.path.join(log_dir, name + '.json')
  if os.path.exists(out_json):
    os.remove(out_json)
  log_path = os.path.join(log_dir, name + '.log')
  cpu_before = _cpu_times()
  start = time.perf_counter()
  with open(log_path, 'w') as log:
    try:
      proc = subprocess.run(argv + ['--output_json=' + out_json], stdout=log,
                            stderr=subprocess.STDOUT, cwd=common.REPO_ROOT, timeout=timeout)
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
      row['peer'] = '%.2f s/step' % mg['loop_seconds']
      row['ratio'] = r['loop_seconds'] / mg['loop_seconds']
    rows.append(row)
  for r in _payload(results, 'mask_head', rows).get('results', []):
    floor, fraction = floor_fields(r.get('flops'), r['seconds'])
    rows.append({'name': 'mask_head', 'setting': '%d ROIs %s%s' % (
        r['num_rois'], r['mode'], ' jit' if r['jit_compile'] else ''),
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
        row['peer'] = '%.0f ms/image' % peer['ms_per_image']
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
    rows.append({'name': 'data_tools', 'setting': 'create_coco_tf_record --num_workers=%d' %
                 p['num_workers'], 'result': '%s img/s (%.1f img/s incl. start-up)' % (
                     _fmt(p['convert_images_per_second'], '%.1f'),
                     p['wall_images_per_second'])})
  e = _payload(results, 'evaluation', rows).get('result')
  if e:
    rows.append({'name': 'evaluation', 'setting': 'COCO bbox+segm, %d detections' %
                 e['num_detections'], 'result': '%.2f s' % e['seconds']})
  return rows


def format_table(rows):
  header = ['benchmark', 'setting', 'result', 'peer (MG)', 'ours/MG', 'GFLOP', 'floor',
            'floor/measured']
  lines = []
  for r in rows:
    floor = None
    if r.get('floor') is not None:
      floor = ('%.0f ms' % r['floor']) if r.get('floor_unit') == 'ms' else '%.2f s' % r['floor']
    lines.append([r['name'], r.get('setting', ''), r.get('result', ''), r.get('peer', ''),
                  _fmt(r.get('ratio'), '%.2fx'), _fmt(r.get('gflop'), '%.0f'), floor or '-',
                  _fmt(r.get('fraction'), '%.3f')])
  widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
  out = ['| ' + ' | '.join(h.ljust(w) for h, w in zip(header, widths)) + ' |',
         '|' + '|'.join('-' * (w + 2) for w in widths) + '|']
  for line in lines:
    out.append('| ' + ' | '.join(str(x).ljust(w) for x, w in zip(line, widths)) + ' |')
  return '\n'.join(out)


def targets(results):
  """The two README targets, evaluated on the results (None when not measured)."""
  out = {}
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
  parser.add_argument('--output_json', default='',
                      help='default: benchmarks/results/latest.json (quick.json with --quick)')
  args = parser.parse_args()
  settings = QUICK if args.quick else FULL
  if args.list:
    for name, _ in benchmark_specs(settings, 'RECORDS'):
      print(name)
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
  for name, argv in benchmark_specs(settings, records):
    if patterns and not any(fnmatch.fnmatch(name, p) or name == p for p in patterns):
      continue
    print('running %-26s ...' % name, end=' ', flush=True)
    payload = run_one(name, argv, log_dir, args.timeout)
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
