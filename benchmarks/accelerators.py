"""Accelerator paths measured on this CPU: XLA (--jit_compile), the static-shape path, bfloat16.

Runs, each in its own process (so compile caches and the global precision policy never carry
over), on the same coco128_seg records:
  training s/step (train_step.py, `model_lib_v2.train_loop`, median of --steps after --warmup)
    for ResNet-50-FPN 512x512 batch 2 (samples/configs/mask_rcnn_resnet50_fpn_coco.config
    resized) and the sample config (mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config, its own
    256x256, batch 2), each as
      default   the TF OD API's default dynamic-shape path, float32
      static    the static-shape path (common.set_static_shapes), no XLA
      xla       the static-shape path, --jit_compile
      bf16      the default path with train_config.use_bfloat16
  inference ms/image (inference.py, exported SavedModel, batch 1, ResNet-50-FPN at 512):
      default, static, xla (exported with an XLA-compiled serving function).
Ratios are against `default` of the same model, measured in the same run. The first (warm-up)
steps, which trace and, with XLA, compile, are excluded; their time is reported separately.

Usage:
  python benchmarks/accelerators.py [--quick] [--only train_resnet50_xla,...] [--list]
Results: benchmarks/results/accelerators.json (accelerators_quick.json with --quick); logs in
benchmarks/results/logs/accelerators_<name>.log.
"""
import argparse
import datetime
import fnmatch
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # pylint: disable=g-import-not-at-top,wrong-import-position

RESULTS = os.path.join(HERE, 'results')
VARIANTS = {'default': [], 'static': ['--static_shapes'], 'xla': ['--jit_compile'],
            'bf16': ['--use_bfloat16']}
TRAIN_MODELS = {'resnet50': 512, 'lite0_sample': 256}
INFERENCE_VARIANTS = ('default', 'static', 'xla')
FULL = {'steps': 3, 'warmup': 2, 'inference_steps': 3, 'inference_warmup': 1, 'batch': 2}
QUICK = {'steps': 1, 'warmup': 1, 'inference_steps': 1, 'inference_warmup': 1, 'batch': 1}


def specs(settings, records, py=sys.executable):
  out = []
  for model, size in TRAIN_MODELS.items():
    for variant, flags in VARIANTS.items():
      out.append(('train_%s_%s' % (model, variant), [
          py, os.path.join(HERE, 'train_step.py'), '--model=' + model,
          '--image_size=%d' % (size if settings is FULL else 128),
          '--batch_size=%d' % settings['batch'], '--steps=%d' % settings['steps'],
          '--warmup=%d' % settings['warmup'], '--records=' + records, '--no_flops'] + flags))
  for variant in INFERENCE_VARIANTS:
    flags = {'default': [], 'static': ['--static_shapes'], 'xla': ['--jit_compile']}[variant]
    out.append(('inference_resnet50_%s' % variant, [
        py, os.path.join(HERE, 'inference.py'), '--side=ours',
        '--image_size=%d' % (512 if settings is FULL else 128),
        '--steps=%d' % settings['inference_steps'], '--warmup=%d' % settings['inference_warmup'],
        '--no_flops'] + flags))
  return out


def _run(name, command):
  os.makedirs(os.path.join(RESULTS, 'logs'), exist_ok=True)
  out_json = os.path.join(RESULTS, 'logs', 'accelerators_%s.json' % name)
  if os.path.exists(out_json):
    os.remove(out_json)
  start = time.time()
  with open(os.path.join(RESULTS, 'logs', 'accelerators_%s.log' % name), 'w') as log:
    rc = subprocess.call(command + ['--output_json=' + out_json], stdout=log,
                         stderr=subprocess.STDOUT, cwd=os.path.dirname(HERE))
  payload = {'returncode': rc, 'wall_seconds': time.time() - start, 'command': command}
  if rc == 0 and os.path.exists(out_json):
    with open(out_json) as f:
      payload['result'] = json.load(f)['result']
  return payload


def table(results):
  """Lines: one per run, with the ratio to the same model's default variant."""
  lines = []
  for name, payload in results.items():
    result = payload.get('result')
    if result is None:
      lines.append('%-32s FAILED (exit %s; see logs/accelerators_%s.log)' % (
          name, payload['returncode'], name))
      continue
    kind, model, variant = name.split('_', 1)[0], name.split('_')[1], name.rsplit('_', 1)[1]
    if kind == 'train':
      model = name[len('train_'):-len(variant) - 1]
      value, unit, first = result['loop_seconds'], 's/step', result['first_step_seconds']
    else:
      value, unit, first = result['ms_per_image'], 'ms/image', result['first_call_seconds']
    base = results.get(name[:-len(variant)] + 'default', {}).get('result')
    base_value = None
    if base is not None:
      base_value = base['loop_seconds'] if kind == 'train' else base['ms_per_image']
    ratio = ' (%.2fx default)' % (value / base_value) if base_value else ''
    lines.append('%-32s %8.2f %s%s; first %s %.1f s' % (
        name, value, unit, ratio, 'step' if kind == 'train' else 'call', first))
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--quick', action='store_true', help='tiny sizes and 1 step (smoke run)')
  parser.add_argument('--only', default='', help='comma-separated names or globs')
  parser.add_argument('--list', action='store_true')
  args = parser.parse_args()
  settings = QUICK if args.quick else FULL
  records = common.records_dir() if not args.list else ''
  runs = specs(settings, records)
  if args.list:
    print('\n'.join(name for name, _ in runs))
    return
  if args.only:
    patterns = args.only.split(',')
    runs = [(n, c) for n, c in runs if any(fnmatch.fnmatch(n, p) for p in patterns)]
  path = os.path.join(RESULTS, 'accelerators_quick.json' if args.quick else 'accelerators.json')
  previous = {}
  if args.only and os.path.exists(path):
    with open(path) as f:
      previous = json.load(f).get('runs', {})
  results = dict(previous)
  for name, command in runs:
    print('running %s ...' % name, flush=True)
    results[name] = _run(name, command)
    print('  ' + table({name: results[name]})[0], flush=True)
  lines = table(results)
  print('\n'.join(lines))
  import platform  # pylint: disable=g-import-not-at-top
  record = {'date': datetime.datetime.now(datetime.timezone.utc).isoformat(),
            'nproc': os.cpu_count(), 'machine': platform.processor() or platform.machine(),
            'settings': settings, 'runs': results, 'table': lines,
            'git_head': subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True,
                                       text=True, cwd=HERE).stdout.strip()}
  os.makedirs(RESULTS, exist_ok=True)
  with open(path, 'w') as f:
    json.dump(record, f, indent=1)
  print('Results: %s' % path)


if __name__ == '__main__':
  main()
