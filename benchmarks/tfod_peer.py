"""The TF OD API peer: its own training loop, exporter and eval loop on the C4 benchmark config.

Runs INSIDE the TF Object Detection API's environment (its `object_detection` package on
PYTHONPATH, TF_USE_LEGACY_KERAS=1) and imports only TensorFlow, numpy, the TF OD API and
benchmarks/common.py (standard library + numpy); never this project's package (both are called
`object_detection`: the script checks which one it got). run_all.py launches it with
`--tfod_python` / `--tfod_research_dir`; by hand:

  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/benchmarks/tfod_peer.py --mode train \\
      --records DIR [--image_size 512 --batch_size 2 --steps 5 --warmup 2 --output_json out.json]

DIR holds coco128_seg records written by this project's dataset_tools/create_coco_tf_record.py
(--include_masks --mask_type=png). The config is benchmarks/configs/mask_rcnn_resnet50_c4_512.config
filled in by common.write_c4_config (the byte-identical file our side reads).

Modes (one per process, so each figure has its own process):
  train      `model_lib_v2.train_loop(..., num_steps_per_iteration=1)` inside a MirroredStrategy
             scope (as model_main_tf2.py does), random init, record_summaries=False (with one
             step per iteration the TF OD API would otherwise write image summaries every step).
             Per step: the loop's own `steps_per_sec` scalar (wall time between consecutive
             iterations: the tf.function step with its next(iterator), loss summaries). The
             first --warmup steps are dropped; loop_seconds is the median of --steps. Also the
             process's peak RSS (VmHWM) when the loop returns.
  inference  random-init checkpoint (model variables created by one preprocess / predict /
             postprocess pass), `exporter_lib_v2.export_inference_graph('image_tensor', ...)`,
             `tf.saved_model.load(...).signatures['serving_default']` on the real coco128_seg
             image resized to size x size (uint8, batch 1); median of --steps after --warmup.
  eval       the same kind of checkpoint, `model_lib_v2.eval_continuously(checkpoint_dir=...)`
             (the model_main_tf2.py --checkpoint_dir path: eager_eval_loop with COCO box + mask
             metrics) on the first --eval_images val images; per-image figures from
             common.eval_timing (first image, which traces, excluded; metrics included).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

import common  # pylint: disable=g-import-not-at-top,wrong-import-position


def _import_tfod(research_dir):
  """Imports the TF OD API modules; exits with one line if `object_detection` is not the TF OD API."""
  import object_detection  # pylint: disable=g-import-not-at-top
  found = os.path.dirname(os.path.dirname(os.path.abspath(object_detection.__file__)))
  if research_dir and os.path.realpath(found) != os.path.realpath(research_dir):
    sys.exit('tfod_peer.py: object_detection was imported from %s, not from --tfod_research_dir '
             '%s: put the TF OD API research/ folder first on PYTHONPATH.' % (found, research_dir))
  if os.path.realpath(found) == os.path.realpath(common.REPO_ROOT):
    sys.exit('tfod_peer.py: object_detection is this project\'s package, not the TF OD API: '
             'run with the TF OD API environment (PYTHONPATH=<research>:<research>/slim).')
  return found


def _num_params(variables):
  return int(sum(int(np.prod(v.shape)) for v in variables))


def run_train(config_path, model_dir, steps, warmup):
  """Runs the TF OD API's train_loop for warmup + steps steps; returns the timing dict."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top
  rss_before = common.peak_rss_mb()
  seconds_per_step, marks, captured = [], [], {}
  summary = tf.compat.v2.summary
  original_scalar = summary.scalar

  def scalar(name, data, *args, **kwargs):
    # train_loop reports each iteration's wall time (one step per iteration here) as this scalar.
    if name == 'steps_per_sec':
      marks.append(time.perf_counter())
      seconds_per_step.append(1.0 / float(data))
    return original_scalar(name, data, *args, **kwargs)

  build_map = model_lib_v2.MODEL_BUILD_UTIL_MAP
  original_build = build_map['detection_model_fn_base']

  def build(*args, **kwargs):
    captured['model'] = original_build(*args, **kwargs)
    return captured['model']

  summary.scalar = scalar
  build_map['detection_model_fn_base'] = build
  try:
    strategy = tf.compat.v2.distribute.MirroredStrategy()
    start = time.perf_counter()
    with strategy.scope():
      model_lib_v2.train_loop(config_path, model_dir, train_steps=warmup + steps,
                              checkpoint_every_n=10 ** 9, record_summaries=False,
                              num_steps_per_iteration=1)
    total = time.perf_counter() - start
  finally:
    summary.scalar = original_scalar
    build_map['detection_model_fn_base'] = original_build
  peak = common.peak_rss_mb()
  if len(seconds_per_step) != warmup + steps:
    raise RuntimeError('expected %d per-step times from train_loop, got %d' % (
        warmup + steps, len(seconds_per_step)))
  timed = seconds_per_step[warmup:]
  model = captured['model']
  return {'loop_seconds': float(np.median(timed)), 'loop_seconds_all': timed,
          'first_step_seconds': seconds_per_step[0], 'warmup_seconds_all': seconds_per_step[:warmup],
          'train_loop_seconds': total, 'peak_rss_mb': peak, 'peak_rss_mb_before_training': rss_before,
          'num_trainable_params': _num_params(model.trainable_variables),
          'num_params': _num_params(model.variables),
          'num_replicas': strategy.num_replicas_in_sync}


def write_random_checkpoint(configs, image_size, ckpt_dir):
  """Builds the inference-mode model, creates its variables with one pass, saves ckpt_dir/ckpt-1.

  The training-mode model has the same variables (and checkpoint keys) but its predict needs
  ground truth, hence inference mode.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
  tf.random.set_seed(0)
  model = model_builder.build(configs['model'], is_training=False)
  image = tf.cast(common.load_image(image_size)[np.newaxis], tf.float32)
  preprocessed, shapes = model.preprocess(image)
  model.postprocess(model.predict(preprocessed, shapes), shapes)
  checkpoint = tf.train.Checkpoint(model=model)
  path = checkpoint.save(os.path.join(ckpt_dir, 'ckpt'))
  return path, _num_params(model.variables)


def run_inference(config_path, image_size, steps, warmup, work_dir):
  """Exports a random-init checkpoint with the TF OD API's exporter and times serving_default."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from object_detection import exporter_lib_v2
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(config_path)
  ckpt_dir = os.path.join(work_dir, 'train')
  _, num_params = write_random_checkpoint(configs, image_size, ckpt_dir)
  pipeline_config = config_util.create_pipeline_proto_from_configs(configs)
  export_dir = os.path.join(work_dir, 'exported')
  start = time.perf_counter()
  exporter_lib_v2.export_inference_graph('image_tensor', pipeline_config, ckpt_dir, export_dir)
  export_seconds = time.perf_counter() - start
  serve = tf.saved_model.load(os.path.join(export_dir, 'saved_model')).signatures[
      'serving_default']
  image = tf.constant(common.load_image(image_size)[np.newaxis])

  def call():
    out = serve(input_tensor=image)
    out['detection_boxes'].numpy()
    return out

  times, first, out = common.time_calls(call, steps, warmup)
  return {'ms_per_image': 1000.0 * float(np.median(times)), 'ms_all': [1e3 * t for t in times],
          'first_call_seconds': first, 'export_seconds': export_seconds,
          'num_detections': float(out['num_detections'].numpy()[0]),
          'detection_masks_shape': list(out['detection_masks'].shape)
                                   if 'detection_masks' in out else None,
          'num_params': num_params}


def run_eval(config_path, image_size, num_images, work_dir):
  """eval_continuously on one random-init checkpoint, first `num_images` val images."""
  # pylint: disable=g-import-not-at-top
  from object_detection import model_lib_v2
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(config_path)
  ckpt_dir = os.path.join(work_dir, 'train')
  write_random_checkpoint(configs, image_size, ckpt_dir)
  original_loop = model_lib_v2.eager_eval_loop
  state = {}

  def timed_loop(detection_model, loop_configs, eval_dataset, **kwargs):
    state['timed'] = common.TimedIterable(eval_dataset, num_images)
    state['metrics'] = original_loop(detection_model, loop_configs, state['timed'], **kwargs)
    state['returned_at'] = time.perf_counter()
    return state['metrics']

  model_lib_v2.eager_eval_loop = timed_loop
  try:
    start = time.perf_counter()
    # timeout=1, wait_interval=0: evaluate the one checkpoint, then stop waiting for more.
    model_lib_v2.eval_continuously(config_path, model_dir=os.path.join(work_dir, 'eval'),
                                   checkpoint_dir=ckpt_dir, wait_interval=0, timeout=1)
    wall = time.perf_counter() - start
  finally:
    model_lib_v2.eager_eval_loop = original_loop
  if 'timed' not in state:
    raise RuntimeError('eval_continuously evaluated no checkpoint in %s' % ckpt_dir)
  result = common.eval_timing(state['timed'], state['returned_at'])
  metrics = state['metrics']
  result.update({'eval_continuously_seconds': wall,
                 'bbox_map': float(metrics.get('DetectionBoxes_Precision/mAP', float('nan'))),
                 'segm_map': float(metrics.get('DetectionMasks_Precision/mAP', float('nan')))})
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--mode', choices=('train', 'inference', 'eval'), required=True)
  parser.add_argument('--records', required=True,
                      help='create_coco_tf_record.py output folder (PNG masks, label_map.pbtxt)')
  parser.add_argument('--image_size', type=int, default=512)
  parser.add_argument('--batch_size', type=int, default=2, help='train batch size')
  parser.add_argument('--steps', type=int, default=5, help='timed train steps / inference calls')
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--eval_images', type=int, default=25)
  parser.add_argument('--tfod_research_dir', default='',
                      help='check that object_detection is imported from this folder')
  parser.add_argument('--output_json', default='')
  args = parser.parse_args()
  found = _import_tfod(args.tfod_research_dir)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  work_dir = tempfile.mkdtemp(prefix='bench_tfod_%s_' % args.mode)
  try:
    config_path = common.write_c4_config(
        os.path.join(work_dir, 'pipeline.config'), args.records, args.image_size,
        args.batch_size, args.warmup + args.steps if args.mode == 'train' else 1)
    if args.mode == 'train':
      result = run_train(config_path, os.path.join(work_dir, 'model'), args.steps, args.warmup)
      line = 'TF OD API train %dx%d batch %d: %.2f s/step, peak RSS %.0f MB' % (
          args.image_size, args.image_size, args.batch_size, result['loop_seconds'],
          result['peak_rss_mb'])
    elif args.mode == 'inference':
      result = run_inference(config_path, args.image_size, args.steps, args.warmup, work_dir)
      line = 'TF OD API inference %dx%d: %.1f ms/image (%d detections)' % (
          args.image_size, args.image_size, result['ms_per_image'], result['num_detections'])
    else:
      result = run_eval(config_path, args.image_size, args.eval_images, work_dir)
      line = ('TF OD API eval of %d images: %.2f s/image (first image %.1f s, metrics %.1f s, '
              'bbox mAP %.4f, segm mAP %.4f)' % (
                  result['num_images'], result['seconds_per_image'],
                  result['first_image_seconds'], result['metrics_seconds'], result['bbox_map'],
                  result['segm_map']))
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)
  if args.mode == 'train':
    result['batch_size'] = args.batch_size
  if args.mode != 'eval':
    result.update({'steps': args.steps, 'warmup': args.warmup})
  result.update({'side': 'tfod', 'mode': args.mode, 'config': os.path.basename(common.C4_CONFIG),
                 'image_size': args.image_size, 'tfod_research_dir': found,
                 'tf_version': tf.__version__,
                 'tf_use_legacy_keras': os.environ.get('TF_USE_LEGACY_KERAS', '')})
  print(line)
  common.write_result(args.output_json, 'tfod_' + args.mode, result=result)


if __name__ == '__main__':
  main()
