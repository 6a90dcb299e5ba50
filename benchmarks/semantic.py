r"""Semantic segmentation speed: the sample config's training s/step and inference ms/image.

Measures `samples/configs/semantic_lite0_fpn_sample_cpu.config` (EfficientNet-Lite0 FPN + FCN
head) resized to --image_size (default 512, keep-aspect resizer padded to a square), beside its
peer measured in the same run: the instance sample config with the same backbone
(`mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config`, Mask R-CNN) at the same size, so the
ratio says what the FCN head costs against the two-stage heads on this machine.

  training: `model_lib_v2.train_loop` (train_step.run_ours's timing probes), batch 2, random
    init, coco128_seg records (semantic: person painted per pixel; instance: person instances),
    median of --steps timed steps after --warmup.
  inference: random-init checkpoint exported by `exporter_lib_v2.export_inference_graph`
    (image_tensor), `serving_default` on one real 512x512 photo, median of --steps calls.

Each measurement runs in its own process. Results: benchmarks/results/semantic.json and a table.
  python benchmarks/semantic.py [--image_size 512 --steps 5 --warmup 2]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

import common  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIGS = {'semantic': 'semantic_lite0_fpn_sample_cpu.config',
           'instance': 'mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config'}
RESULTS = os.path.join(common.REPO_ROOT, 'benchmarks', 'results', 'semantic.json')


def _records(kind, folder):
  """Writes the person records of `kind` into `folder`; returns the record file patterns."""
  splits = [('train', os.path.join(common.COCO128_DIR, 'images'),
             os.path.join(common.COCO128_DIR, 'annotations', 'instances_train.json'))]
  if kind == 'semantic':
    from object_detection.dataset_tools import semantic_tf_record  # pylint: disable=g-import-not-at-top
    semantic_tf_record.convert('coco', folder, coco_splits=splits, classes=['person'],
                               show_progress=False)
    return os.path.join(folder, 'semantic_train.record-?????-of-00001')
  from object_detection.dataset_tools import coco_tf_record  # pylint: disable=g-import-not-at-top
  coco_tf_record.convert(splits, folder, include_masks=True, num_shards=1, mask_type='png',
                         show_progress=False, classes=[1])
  return os.path.join(folder, 'coco_train.record-?????-of-00001')


def load_configs(kind, image_size, batch_size=2, num_steps=10, folder=None):
  """The sample config of `kind` resized to image_size (and reading fresh records if `folder`)."""
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(
      os.path.join(common.CONFIG_DIR, CONFIGS[kind]))
  model = configs['model']
  meta = getattr(model, model.WhichOneof('model'))
  resizer = meta.image_resizer.keep_aspect_ratio_resizer
  resizer.min_dimension = resizer.max_dimension = image_size
  resizer.pad_to_max_dimension = True
  meta.num_classes = 1
  train = configs['train_config']
  train.batch_size, train.num_steps, train.log_every_n_steps = batch_size, num_steps, 10 ** 6
  train.fine_tune_checkpoint = ''  # random init: speed only
  train.ClearField('best_checkpoint_metric')
  train.ClearField('early_stopping')
  rate = getattr(train.optimizer, train.optimizer.WhichOneof('optimizer')).learning_rate
  if rate.WhichOneof('learning_rate') == 'reduce_lr_on_plateau_learning_rate':
    rate.constant_learning_rate.learning_rate = 1e-4
  if folder:
    pattern = _records(kind, folder)
    reader = configs['train_input_config']
    reader.label_map_path = os.path.join(folder, 'label_map.pbtxt')
    del reader.tf_record_input_reader.input_path[:]
    reader.tf_record_input_reader.input_path.append(pattern)
  return configs


def run_train(kind, image_size, steps, warmup):
  import train_step  # pylint: disable=g-import-not-at-top
  folder = tempfile.mkdtemp(prefix='bench_semantic_records_')
  configs = load_configs(kind, image_size, 2, warmup + steps, folder)
  result = train_step.run_ours(kind, image_size, 2, steps, warmup, folder, False, False,
                               configs=configs)
  return {k: result[k] for k in ('step_seconds', 'loop_seconds', 'step_seconds_all',
                                 'first_step_seconds', 'peak_rss_mb', 'num_params')}


def run_inference(kind, image_size, steps, warmup):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from object_detection import exporter_lib_v2
  from object_detection.builders import model_builder
  from object_detection.utils import checkpoint_utils
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  work_dir = tempfile.mkdtemp(prefix='bench_semantic_export_')
  configs = load_configs(kind, image_size)
  model = model_builder.build(configs['model'], is_training=False)
  checkpoint_utils.build_model_variables(model, (image_size, image_size))
  tf.train.Checkpoint(model=model).save(os.path.join(work_dir, 'train', 'ckpt'))
  out = exporter_lib_v2.export_inference_graph(
      'image_tensor', config_util.create_pipeline_proto_from_configs(configs),
      os.path.join(work_dir, 'train'), os.path.join(work_dir, 'exported'))
  serve = tf.saved_model.load(os.path.join(out, 'saved_model')).signatures['serving_default']
  image = tf.constant(common.load_image(image_size)[np.newaxis])

  def call():
    outputs = serve(input_tensor=image)
    for value in outputs.values():
      value.numpy()
    return outputs

  times, first, outputs = common.time_calls(call, steps, warmup)
  return {'ms_per_image': 1000.0 * float(np.median(times)), 'ms_all': [1e3 * t for t in times],
          'first_call_seconds': first, 'outputs': sorted(outputs)}


def _child(args):
  fn = run_train if args.mode == 'train' else run_inference
  result = fn(args.kind, args.image_size, args.steps, args.warmup)
  with open(args.output_json, 'w') as f:
    json.dump(result, f)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--image_size', type=int, default=512)
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--kind', choices=sorted(CONFIGS), help=argparse.SUPPRESS)
  parser.add_argument('--mode', choices=('train', 'inference'), help=argparse.SUPPRESS)
  parser.add_argument('--output_json', default='', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.kind:
    _child(args)
    return
  results = {'image_size': args.image_size, 'steps': args.steps, 'warmup': args.warmup,
             'date': time.strftime('%Y-%m-%d %H:%M'), 'nproc': os.cpu_count()}
  for mode in ('train', 'inference'):
    for kind in ('semantic', 'instance'):
      with tempfile.NamedTemporaryFile(suffix='.json') as out:
        subprocess.run([sys.executable, os.path.abspath(__file__), '--kind', kind, '--mode', mode,
                        '--image_size', str(args.image_size), '--steps', str(args.steps),
                        '--warmup', str(args.warmup), '--output_json', out.name],
                       check=True, cwd=common.REPO_ROOT)
        with open(out.name) as f:
          results['%s_%s' % (mode, kind)] = json.load(f)
  train_s = results['train_semantic']['step_seconds']
  train_i = results['train_instance']['step_seconds']
  infer_s = results['inference_semantic']['ms_per_image']
  infer_i = results['inference_instance']['ms_per_image']
  results['ratios'] = {'train_semantic_over_instance': train_s / train_i,
                       'inference_semantic_over_instance': infer_s / infer_i}
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, 'w') as f:
    json.dump(results, f, indent=2)
  size = args.image_size
  print('| %dx%d, batch 2 train / batch 1 inference | semantic (Lite0 FPN + FCN) | instance '
        '(Lite0 FPN Mask R-CNN) | ratio |' % (size, size))
  print('| --- | --- | --- | --- |')
  print('| training s/step | %.2f | %.2f | %.2fx |' % (train_s, train_i, train_s / train_i))
  print('| inference ms/image | %.0f | %.0f | %.2fx |' % (infer_s, infer_i, infer_s / infer_i))
  print('Results: %s' % RESULTS)


if __name__ == '__main__':
  main()
