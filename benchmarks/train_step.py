"""Training step time: our Mask R-CNN (as model_lib_v2.train_loop runs it) vs the Model Garden's.

Ours: `model_lib_v2.train_loop` itself, on coco128_seg TFRecords (PNG masks) written by
dataset_tools/create_coco_tf_record.py, random init, a sample config with the image resizer set
to --image_size (keep_aspect_ratio_resizer min = max = size, padded) and train_config.batch_size
= --batch_size. --model resnet50_c4 reads benchmarks/configs/mask_rcnn_resnet50_c4_512.config
instead (the TF OD API's C4 network, fixed_shape_resizer set to --image_size; its peer is
benchmarks/tfod_peer.py --mode train, which reads the same file). Two timings are taken without
changing the loop:
  loop_seconds  wall time between consecutive steps of the loop (next(iterator), the tf.function
                step, host reads of the losses, finiteness checks): what training actually costs;
  step_seconds  the tf.function step call alone (the train step returned by
                training/train_step.make_train_step, wrapped to time it).
The first `--warmup` steps (tracing) are discarded; figures are medians of `--steps` steps.
peak_rss_mb is the process's peak resident set size (VmHWM) when train_loop returns, before the
FLOP count (which traces more graphs).

Peer (--model mg_resnet50): benchmarks/model_garden.py, Model Garden `maskrcnn_resnetfpn_coco`
at the same size and batch, random init, SGD momentum, same records; loop_seconds includes its
next(iterator), step_seconds does not.

With --flops (default on), FLOPs of one training step are counted from the traced graph of
loss + gradients (benchmarks/flops.py) on the last batch, plus the optimizer update.

Usage:
  python benchmarks/train_step.py --model resnet50 [--image_size 512 --batch_size 2
      --steps 5 --warmup 2 --records DIR --output_json out.json --jit_compile
      --static_shapes --use_bfloat16 --inter_op_threads N --intra_op_threads N --no_flops]

--static_shapes puts the config on the TF OD API's static-shape path (common.set_static_shapes);
--jit_compile implies it (XLA needs it). --use_bfloat16 sets train_config.use_bfloat16 (bfloat16
compute, float32 variables and losses).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

import common  # pylint: disable=g-import-not-at-top,wrong-import-position

OUR_CONFIGS = {
    'resnet50': 'mask_rcnn_resnet50_fpn_coco.config',
    'efficientnet_b2': 'mask_rcnn_efficientnet_b2_fpn_480.config',
    'mobilenet_v2': 'mask_rcnn_sample_cpu.config',
    'lite0_sample': 'mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config',
    'resnet50_c4': os.path.basename(common.C4_CONFIG),
}
MODELS = tuple(OUR_CONFIGS) + ('mg_resnet50',)


def load_c4_configs(image_size, batch_size, num_steps, records, work_dir):
  """The C4 benchmark config as the TF OD API peer reads it (common.write_c4_config), validated."""
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  path = common.write_c4_config(os.path.join(work_dir, 'pipeline.config'), records, image_size,
                                batch_size, num_steps)
  configs = config_util.get_configs_from_pipeline_file(path)
  configs['train_config'].log_every_n_steps = 1000000
  config_validation.validate_pipeline_configs(configs)
  return configs


def load_our_configs(config_name, image_size, batch_size, num_steps, records):
  """The sample config, resized, batch set, reading `records` (create_coco_tf_record output)."""
  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(
      os.path.join(common.CONFIG_DIR, config_name))
  resizer = configs['model'].faster_rcnn.image_resizer.keep_aspect_ratio_resizer
  resizer.min_dimension = image_size
  resizer.max_dimension = image_size
  resizer.pad_to_max_dimension = True
  configs['train_config'].batch_size = batch_size
  configs['train_config'].num_steps = num_steps
  configs['train_config'].log_every_n_steps = 1000000
  label_map = os.path.join(records, 'label_map.pbtxt')
  for reader, split in [(configs['train_input_config'], 'train')] + [
      (c, 'val') for c in configs['eval_input_configs']]:
    reader.label_map_path = label_map
    del reader.tf_record_input_reader.input_path[:]
    reader.tf_record_input_reader.input_path.append(
        os.path.join(records, 'coco_%s.record-?????-of-00001' % split))
  config_validation.validate_pipeline_configs(configs)
  return configs


def run_ours(model, image_size, batch_size, steps, warmup, records, with_flops, jit_compile,
             static_shapes=False, use_bfloat16=False, configs=None):
  """Runs model_lib_v2.train_loop for warmup + steps steps, timing each; returns a dict.

  `configs`: an already prepared configs dict (num_steps = warmup + steps) replacing the one of
  `model` (benchmarks/semantic.py)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from object_detection import model_lib_v2
  from object_detection.builders import model_builder
  from object_detection.training import progress
  from object_detection.training import strategy as strategy_lib
  from object_detection.training import train_step as train_step_lib
  # pylint: enable=g-import-not-at-top
  num_steps = warmup + steps
  model_dir = tempfile.mkdtemp(prefix='bench_train_%s_' % model)
  if configs is not None:
    pass
  elif model == 'resnet50_c4':
    configs = load_c4_configs(image_size, batch_size, num_steps, records, model_dir)
  else:
    configs = load_our_configs(OUR_CONFIGS[model], image_size, batch_size, num_steps, records)
  if static_shapes or jit_compile:
    common.set_static_shapes(configs)
  configs['train_config'].use_bfloat16 = use_bfloat16
  marks = []        # perf_counter at logger creation and after each step
  step_calls = []   # seconds of each tf.function step call
  captured = {}

  class TimingLogger(progress.ProgressLogger):

    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      marks.append(time.perf_counter())

    def step(self, step, losses, learning_rate):
      marks.append(time.perf_counter())
      return super().step(step, losses, learning_rate)

  original_make = train_step_lib.make_train_step

  def timed_make_train_step(*args, **kwargs):
    step_fn = original_make(*args, **kwargs)

    def timed(features, labels):
      start = time.perf_counter()
      out = step_fn(features, labels)
      for value in out.values():
        value.numpy()
      step_calls.append(time.perf_counter() - start)
      captured['batch'] = (features, labels)
      captured['traces'] = step_fn.experimental_get_tracing_count()
      return out
    return timed

  def model_fn(model_config, is_training):
    built = model_builder.build(model_config, is_training=is_training)
    if is_training:
      captured['model'] = built
    return built

  strategy = strategy_lib.get_strategy()
  progress.ProgressLogger, saved_logger = TimingLogger, progress.ProgressLogger
  train_step_lib.make_train_step = timed_make_train_step
  rss_before = common.peak_rss_mb()
  try:
    start = time.perf_counter()
    model_lib_v2.train_loop(None, model_dir, configs=configs, checkpoint_every_n=10 ** 9,
                            record_summaries=False, strategy=strategy, jit_compile=jit_compile,
                            model_fn=model_fn)
    total = time.perf_counter() - start
    peak_rss = common.peak_rss_mb()
  finally:
    progress.ProgressLogger = saved_logger
    train_step_lib.make_train_step = original_make
    shutil.rmtree(model_dir, ignore_errors=True)  # checkpoints are not needed
  intervals = list(np.diff(marks))
  detection_model = captured['model']
  trainable = detection_model.trainable_variables
  result = {
      'model': model, 'config': OUR_CONFIGS.get(model, model), 'image_size': image_size,
      'batch_size': batch_size, 'steps': steps, 'warmup': warmup, 'jit_compile': jit_compile,
      'static_shapes': bool(static_shapes or jit_compile), 'use_bfloat16': use_bfloat16,
      'loop_seconds': float(np.median(intervals[warmup:])),
      'step_seconds': float(np.median(step_calls[warmup:])),
      'loop_seconds_all': intervals[warmup:], 'step_seconds_all': step_calls[warmup:],
      'first_step_seconds': intervals[0], 'train_loop_seconds': total,
      'peak_rss_mb': peak_rss, 'peak_rss_mb_before_training': rss_before,
      'num_trainable_params': int(sum(int(np.prod(v.shape)) for v in trainable)),
      'num_params': int(sum(int(np.prod(v.shape)) for v in detection_model.variables)),
      'train_step_traces': captured.get('traces'),
  }
  if with_flops:
    import flops as flops_lib  # pylint: disable=g-import-not-at-top
    features, labels = tf.nest.map_structure(
        lambda v: strategy.experimental_local_results(v)[0], captured['batch'])
    add_reg = bool(configs['train_config'].add_regularization_loss)

    def forward_backward(features, labels):
      with tf.GradientTape() as tape:
        losses = train_step_lib.compute_losses(detection_model, features, labels, add_reg)
      grads = tape.gradient(losses['Loss/total_loss'], trainable)
      return [losses['Loss/total_loss']] + [g for g in grads if g is not None]

    result['flops'] = flops_lib.count_flops(forward_backward, (features, labels))
    # Momentum update (4 / parameter) + global-norm clipping (3 / parameter).
    result['optimizer_flops'] = 7 * result['num_trainable_params']
  return result


def run_mg(image_size, batch_size, steps, warmup, records, with_flops):
  import model_garden  # pylint: disable=g-import-not-at-top
  pattern = os.path.join(records, 'coco_train.record-?????-of-00001')
  result = model_garden.train_benchmark(pattern, image_size, batch_size, steps, warmup,
                                        with_flops=with_flops)
  result.update({'model': 'mg_resnet50', 'config': 'Model Garden maskrcnn_resnetfpn_coco',
                 'image_size': image_size, 'batch_size': batch_size, 'steps': steps,
                 'warmup': warmup, 'jit_compile': False})
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--model', choices=MODELS, required=True)
  parser.add_argument('--image_size', type=int, default=512)
  parser.add_argument('--batch_size', type=int, default=2)
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--records', default='',
                      help='create_coco_tf_record.py output dir (PNG masks); made if empty')
  parser.add_argument('--no_flops', action='store_true')
  parser.add_argument('--jit_compile', action='store_true', help='ours only: XLA train step')
  parser.add_argument('--static_shapes', action='store_true',
                      help='ours only: the static-shape path without XLA')
  parser.add_argument('--use_bfloat16', action='store_true',
                      help='ours only: train_config.use_bfloat16 (bfloat16 compute)')
  parser.add_argument('--inter_op_threads', type=int, default=0,
                      help='tf.config.threading inter-op threads (0 = TF default)')
  parser.add_argument('--intra_op_threads', type=int, default=0,
                      help='tf.config.threading intra-op threads (0 = TF default)')
  parser.add_argument('--output_json', default='')
  args = parser.parse_args()
  if args.inter_op_threads or args.intra_op_threads:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
  records = args.records or common.records_dir()
  if args.model == 'mg_resnet50':
    result = run_mg(args.image_size, args.batch_size, args.steps, args.warmup, records,
                    not args.no_flops)
  else:
    result = run_ours(args.model, args.image_size, args.batch_size, args.steps, args.warmup,
                      records, not args.no_flops, args.jit_compile, args.static_shapes,
                      args.use_bfloat16)
  result['images_per_second'] = args.batch_size / result['loop_seconds']
  result['inter_op_threads'] = args.inter_op_threads
  result['intra_op_threads'] = args.intra_op_threads
  variant = ''.join(name for name, on in ((' xla', args.jit_compile),
                                           (' static', args.static_shapes and not args.jit_compile),
                                           (' bf16', args.use_bfloat16)) if on)
  line = '%-16s %dx%d batch %d: %.2f s/step loop (%.2f s step only), %.2f images/s' % (
      args.model + variant, args.image_size, args.image_size, args.batch_size, result['loop_seconds'],
      result['step_seconds'], result['images_per_second'])
  if result.get('peak_rss_mb'):
    line += ', peak RSS %.0f MB' % result['peak_rss_mb']
  if 'flops' in result:
    import flops as flops_lib  # pylint: disable=g-import-not-at-top
    line += '; ' + flops_lib.summarize(result['flops'])
  print(line)
  common.write_result(args.output_json, 'train_step', result=result)


if __name__ == '__main__':
  main()
