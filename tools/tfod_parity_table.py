"""Runs tools/tfod_parity.py for every TF OD API extractor, at a small and at the zoo's image size,
and prints the README's parity table.

  python tools/tfod_parity_table.py --tfod_research_dir=/path/to/models/research \\
      --python=/path/to/tfod_venv/bin/python [--only resnet50_c4,resnet50_fpn] [--sizes small,zoo]

Each run is its own subprocess (one model pair in memory at a time). The zoo-size runs use one photo and
skip the training-loss comparison (the losses are compared at the small size, where sampling takes every
candidate); a full Inception-ResNet-v2 training pass at 1024 px does not fit this machine's memory next
to the TF OD API's. Results go to --output_dir (one JSON per run) and the table to stdout.
"""

import argparse
import json
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO_ROOT, 'tools', 'parity_configs')


def _type(name):
  return 'model { faster_rcnn { feature_extractor { type: "%s" } } }' % name


# name -> (config, override, zoo image size)
RUNS = {
    'resnet50_c4': ('mask_rcnn_resnet50_c4.config', '', 640),
    'resnet101_c4': ('mask_rcnn_resnet50_c4.config', _type('faster_rcnn_resnet101_keras'), 1024),
    'resnet152_c4': ('mask_rcnn_resnet50_c4.config', _type('faster_rcnn_resnet152_keras'), 1024),
    'resnet50_fpn': ('mask_rcnn_resnet50_fpn.config', '', 640),
    'resnet101_fpn': ('mask_rcnn_resnet50_fpn.config', _type('faster_rcnn_resnet101_fpn_keras'), 640),
    'resnet152_fpn': ('mask_rcnn_resnet50_fpn.config', _type('faster_rcnn_resnet152_fpn_keras'), 640),
    'inception_resnet_v2': ('mask_rcnn_inception_resnet_v2.config', '', 1024),
    'inception_resnet_v2_atrous': ('mask_rcnn_inception_resnet_v2_atrous.config', '', 1024),
}
SMALL = 256


def _summary(rows):
  """Max abs differences by group and whether every target held."""
  def worst(group, field='max_abs'):
    values = [r[field] for r in rows
              if (group is None or r['group'] == group) and r[field] is not None]
    return max(values) if values else None
  return {
      'tensors': len(rows),
      'failed': sum(1 for r in rows if not r['passed'] and r['group'] != 'other'),
      'boxes': worst('boxes'),
      'scores': worst('scores'),
      'masks': worst('masks'),
      'classes_equal': all(r['max_abs'] == 0 for r in rows
                           if r['key'].endswith('/detection_classes')),
      'losses_rel': worst('losses', 'max_rel'),
      'all_max_abs': worst(None),
  }


def _fmt(value):
  return '-' if value is None else ('0' if value == 0 else '%.1e' % value)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--tfod_research_dir', required=True)
  parser.add_argument('--python', default=sys.executable)
  parser.add_argument('--only', default='', help='comma-separated run names (default: all)')
  parser.add_argument('--sizes', default='small,zoo')
  parser.add_argument('--output_dir', default=os.path.join(REPO_ROOT, 'runs', 'parity'))
  args = parser.parse_args(argv)
  names = [n for n in args.only.split(',') if n] or list(RUNS)
  unknown = [n for n in names if n not in RUNS]
  if unknown:
    parser.error('--only: unknown run(s) %s; known: %s' % (', '.join(unknown), ', '.join(RUNS)))
  os.makedirs(args.output_dir, exist_ok=True)
  table = []
  for name in names:
    config, override, zoo_size = RUNS[name]
    for size_kind in args.sizes.split(','):
      size = SMALL if size_kind == 'small' else zoo_size
      output = os.path.join(args.output_dir, '%s_%d.json' % (name, size))
      cmd = [sys.executable, os.path.join(REPO_ROOT, 'tools', 'tfod_parity.py'),
             '--tfod_research_dir', args.tfod_research_dir, '--python', args.python,
             '--pipeline_config_path', os.path.join(CONFIGS, config), '--image_size', str(size),
             '--json_output', output]
      if override:
        cmd += ['--config_override', override]
      if size_kind == 'zoo':
        cmd += ['--image_ids', '34', '--skip_training']
      print('running %s at %d px ...' % (name, size), flush=True)
      result = subprocess.run(cmd, capture_output=True, text=True)
      if not os.path.exists(output) or result.returncode not in (0, 1):
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        table.append((name, size, None))
        continue
      with open(output) as f:
        table.append((name, size, _summary(json.load(f))))
  print('| extractor | image size | tensors | boxes max abs diff | scores | masks | classes | '
        'losses max rel diff | targets |')
  print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for name, size, s in table:
    if s is None:
      print('| %s | %d | run failed | | | | | | |' % (name, size))
      continue
    print('| %s | %d | %d | %s | %s | %s | %s | %s | %s |' % (
        name, size, s['tensors'], _fmt(s['boxes']), _fmt(s['scores']), _fmt(s['masks']),
        'equal' if s['classes_equal'] else 'DIFFER', _fmt(s['losses_rel']),
        'all met' if not s['failed'] else '%d failed' % s['failed']))
  return 0 if all(s and not s['failed'] for _, _, s in table) else 1


if __name__ == '__main__':
  sys.exit(main())
