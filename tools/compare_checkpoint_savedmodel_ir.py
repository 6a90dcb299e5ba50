r"""Checkpoint vs SavedModel vs OpenVINO IR: COCO metrics and ms/image on the same eval records.

Usage:
  python tools/compare_checkpoint_savedmodel_ir.py \
      --pipeline_config_path=runs/sample/model/pipeline.config \
      --trained_checkpoint_dir=runs/sample/model \
      --work_dir=runs/compare [--image_size=512] [--max_images=N]

In one run:
  1. evaluates the checkpoint with the training evaluation (`model_lib_v2.eval_continuously`,
     metrics in work_dir/checkpoint_eval/eval/),
  2. exports it (`exporter_main.py --output_format=openvino` as a library call) to
     work_dir/export (SavedModel + IR),
  3. evaluates the SavedModel and the IR with `object_detection.evaluate_exported` on the same
     eval records (the IR twice: in f32, and with the CPU plugin's default precision, which is
     bf16 on CPUs with bf16 units),
  4. prints a table (box mAP, box mAP@.50, mask mAP, mask mAP@.50, ms/image) and writes it to
     work_dir/comparison.json, with the largest metric gap between IR and SavedModel.

--image_size S sets the image resizer to S x S (keep_aspect_ratio_resizer min/max_dimension, or
fixed_shape_resizer height/width) for all three. ms/image: the checkpoint's is the mean time of
the in-memory model's serving function (the exporter's tf.function before saving) on the eval
images; the SavedModel's and the IR's are `backend.detect` times. Each excludes the first image
(tracing / compilation) and includes pasting the masks at the image size.
"""
import argparse
import json
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection.utils import quiet_logs

IR_DEFAULT_PRECISION = 'IR plugin dflt'
ROWS = (('box mAP', 'DetectionBoxes_Precision/mAP'),
        ('box mAP@.50', 'DetectionBoxes_Precision/mAP@.50IOU'),
        ('mask mAP', 'DetectionMasks_Precision/mAP'),
        ('mask mAP@.50', 'DetectionMasks_Precision/mAP@.50IOU'))


def image_size_override(pipeline_config_path, image_size):
  """Text proto setting the config's image resizer to image_size x image_size ('' for None)."""
  if not image_size:
    return ''
  from object_detection.utils import config_util
  resizer = config_util.get_configs_from_pipeline_file(
      pipeline_config_path)['model'].faster_rcnn.image_resizer
  kind = resizer.WhichOneof('image_resizer_oneof')
  if kind == 'keep_aspect_ratio_resizer':
    body = 'keep_aspect_ratio_resizer { min_dimension: %d max_dimension: %d }' % (image_size,
                                                                                  image_size)
  elif kind == 'fixed_shape_resizer':
    body = 'fixed_shape_resizer { height: %d width: %d }' % (image_size, image_size)
  else:
    raise SystemExit('--image_size: the config\'s image resizer is %s; set its size with '
                     '--config_override instead.' % kind)
  return 'model { faster_rcnn { image_resizer { %s } } }' % body


def checkpoint_ms_per_image(pipeline_config, trained_checkpoint_dir, configs, max_images):
  """Mean ms/image of the restored model's serving function on the eval images (first excluded)."""
  import numpy as np
  import tensorflow as tf
  from object_detection import exporter_lib_v2
  from object_detection import inputs
  from object_detection.core import standard_fields as fields
  model, _ = exporter_lib_v2.build_and_restore_model(pipeline_config, trained_checkpoint_dir)
  serve = exporter_lib_v2.DetectionFromImageModule(model).concrete_function()
  eval_config = configs['eval_config']
  eval_config.retain_original_images = True
  dataset = inputs.eval_input(eval_config, configs['eval_input_configs'][0], configs['model'],
                              params={'batch_size': 1})
  times = []
  for i, (features, _) in enumerate(dataset):
    if max_images is not None and i >= max_images:
      break
    h, w = [int(v) for v in features[fields.InputDataFields.original_image_spatial_shape][0]]
    image = tf.constant(features[fields.InputDataFields.original_image][:1, :h, :w].numpy())
    tic = time.perf_counter()
    {k: v.numpy() for k, v in serve(image).items()}  # pylint: disable=expression-not-assigned
    times.append(time.perf_counter() - tic)
  return 1000.0 * float(np.mean(times[1:]))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--pipeline_config_path', required=True)
  parser.add_argument('--trained_checkpoint_dir', required=True)
  parser.add_argument('--work_dir', required=True)
  parser.add_argument('--image_size', type=int, default=None)
  parser.add_argument('--config_override', default='')
  parser.add_argument('--max_images', type=int, default=None)
  args = parser.parse_args(argv)
  quiet_logs.quiet_tensorflow_startup()
  from object_detection import evaluate_exported
  from object_detection import export_openvino
  from object_detection import exporter_lib_v2
  from object_detection import inference_backends
  from object_detection import model_lib_v2
  from object_detection.utils import config_validation

  override = ' '.join(x for x in (args.config_override,
                                  image_size_override(args.pipeline_config_path, args.image_size))
                      if x)
  os.makedirs(args.work_dir, exist_ok=True)
  results = {}
  try:
    configs = evaluate_exported.load_eval_configs(args.pipeline_config_path, override)
    if args.max_images:
      print('--max_images is applied to the SavedModel / IR / timing only; the checkpoint '
            'evaluation reads every eval image.')
    t = time.time()
    by_step = model_lib_v2.eval_continuously(
        args.pipeline_config_path, os.path.join(args.work_dir, 'checkpoint_eval'),
        args.trained_checkpoint_dir, config_override=override or None, timeout=1)
    step = max(by_step)
    results['checkpoint'] = {'metrics': by_step[step], 'step': step,
                             'eval_seconds': time.time() - t}
    pipeline_config = exporter_lib_v2.load_pipeline_config(args.pipeline_config_path, override)
    results['checkpoint']['ms_per_image'] = checkpoint_ms_per_image(
        pipeline_config, args.trained_checkpoint_dir,
        evaluate_exported.load_eval_configs(args.pipeline_config_path, override),
        args.max_images)
    export_dir = os.path.join(args.work_dir, 'export')
    t = time.time()
    exporter_lib_v2.export_inference_graph(
        'image_tensor', pipeline_config, args.trained_checkpoint_dir, export_dir,
        extra_outputs_fn=export_openvino.write_ir_into_export)
    export_seconds = time.time() - t
    xml = os.path.join(export_dir, 'openvino', 'model.xml')
    for name, path, precision in (('SavedModel', os.path.join(export_dir, 'saved_model'), None),
                                  ('OpenVINO IR', xml, 'f32'),
                                  (IR_DEFAULT_PRECISION, xml, 'default')):
      backend = inference_backends.load_backend(path, inference_precision=precision or 'f32')
      result = evaluate_exported.evaluate_backend(backend, configs, args.max_images)
      if precision:
        result['inference_precision'] = backend.inference_precision
      if precision != 'default':
        evaluate_exported.write_metrics_json(
            evaluate_exported.default_metrics_json(path), path, backend.kind, result,
            args.pipeline_config_path)
      results[name] = result
  except config_validation.ConfigError as e:
    print(config_validation.error_line(e, args.pipeline_config_path), file=sys.stderr)
    return 2

  names = ('checkpoint', 'SavedModel', 'OpenVINO IR', IR_DEFAULT_PRECISION)
  header = '| %-12s | %s | ms/image |' % ('', ' | '.join('%-12s' % r[0] for r in ROWS))
  lines = ['image size: %s; checkpoint step %d; %d eval images (IR / SavedModel); export + IR '
           'conversion %.0f s' % (args.image_size or 'config', results['checkpoint']['step'],
                                  results['SavedModel']['num_images'], export_seconds),
           header, '|' + '---|' * (len(ROWS) + 2)]
  for name in names:
    metrics = results[name]['metrics']
    lines.append('| %-12s | %s | %8.1f |' % (
        name, ' | '.join('%-12.4f' % metrics.get(key, float('nan')) for _, key in ROWS),
        results[name]['ms_per_image']))
  gaps = {key: abs(results['OpenVINO IR']['metrics'][key] - results['SavedModel']['metrics'][key])
          for key in results['SavedModel']['metrics'] if 'Precision' in key}
  worst = max(gaps, key=gaps.get)
  lines.append('largest |IR - SavedModel| precision gap: %.4f (%s)%s' % (
      gaps[worst], worst, '  > 0.005: see docs/openvino.md' if gaps[worst] > 0.005 else ''))
  lines.append('OpenVINO IR: inference precision f32; IR plugin dflt: the CPU plugin\'s default '
               'precision, here %s.' % results[IR_DEFAULT_PRECISION]['inference_precision'])
  print('\n'.join(lines))
  with open(os.path.join(args.work_dir, 'comparison.json'), 'w') as f:
    json.dump({'image_size': args.image_size, 'results': results, 'table': lines}, f, indent=2)
  return 0


if __name__ == '__main__':
  sys.exit(main())
