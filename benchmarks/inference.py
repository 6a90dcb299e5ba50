"""Inference ms/image: our exported SavedModel vs the Model Garden Mask R-CNN, batch 1.

Ours (--side ours): the ResNet-50-FPN sample config with its image resizer set to --image_size
(min = max = size), randomly initialised, saved as a checkpoint, exported with
`exporter_lib_v2.export_inference_graph(input_type='image_tensor')`, loaded back with
`tf.saved_model.load` and timed through `signatures['serving_default']` (the whole served graph:
uint8 input, preprocess, predict, postprocess with the mask pass on the detections and
`detection_masks_reframed` pasted at the input size).

Peer (--side mg): benchmarks/model_garden.py `inference_benchmark` (the Model Garden model's
call with training=False in a tf.function; its normalisation is done outside the timed call and
it returns box-relative 28x28 masks, it does not paste them).

Both run on the same real coco128_seg image resized to size x size; the median of --steps calls
after --warmup is reported. With FLOP counting on, the FLOPs of one call are counted from the
traced graph (benchmarks/flops.py): ours on the exporter's serving computation
(`DetectionInferenceModule._run_inference_on_images`), the Model Garden's on its call.

Usage:
  python benchmarks/inference.py --side ours --image_size 512 [--steps 5 --warmup 2
      --no_flops --output_json out.json]
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

CONFIG = 'mask_rcnn_resnet50_fpn_coco.config'
IMAGE = os.path.join(common.COCO128_DIR, 'images', '000000000009.jpg')


def load_image(size):
  """uint8 [size, size, 3] real image (coco128_seg 000000000009.jpg, bilinear resize)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  image = tf.io.decode_jpeg(tf.io.read_file(IMAGE), channels=3)
  image = tf.image.resize(image, [size, size])
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8).numpy()


def export_random_init(image_size, work_dir):
  """Writes a random-init checkpoint and exports it; returns (saved_model_dir, seconds, model)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from object_detection import exporter_lib_v2
  from object_detection.builders import model_builder
  from object_detection.utils import checkpoint_utils
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(os.path.join(common.CONFIG_DIR, CONFIG))
  resizer = configs['model'].faster_rcnn.image_resizer.keep_aspect_ratio_resizer
  resizer.min_dimension = image_size
  resizer.max_dimension = image_size
  pipeline_config = config_util.create_pipeline_proto_from_configs(configs)
  model = model_builder.build(configs['model'], is_training=False)
  checkpoint_utils.build_model_variables(model, (image_size, image_size))
  ckpt_dir = os.path.join(work_dir, 'train')
  tf.train.Checkpoint(model=model).save(os.path.join(ckpt_dir, 'ckpt'))
  start = time.perf_counter()
  out = exporter_lib_v2.export_inference_graph('image_tensor', pipeline_config, ckpt_dir,
                                               os.path.join(work_dir, 'exported'))
  seconds = time.perf_counter() - start
  return os.path.join(out, 'saved_model'), seconds


def run_ours(image_size, steps, warmup, with_flops):
  work_dir = tempfile.mkdtemp(prefix='bench_inference_')
  try:
    return _run_ours(image_size, steps, warmup, with_flops, work_dir)
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)


def _run_ours(image_size, steps, warmup, with_flops, work_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  saved_model_dir, export_seconds = export_random_init(image_size, work_dir)
  loaded = tf.saved_model.load(saved_model_dir)
  serve = loaded.signatures['serving_default']
  image = tf.constant(load_image(image_size)[np.newaxis])

  def call():
    out = serve(input_tensor=image)
    out['detection_boxes'].numpy()
    return out

  times, first, out = common.time_calls(call, steps, warmup)
  result = {'ms_per_image': 1000.0 * float(np.median(times)), 'ms_all': [1e3 * t for t in times],
            'first_call_seconds': first, 'export_seconds': export_seconds,
            'num_detections': float(out['num_detections'].numpy()[0])}
  if with_flops:
    # The exporter's serving computation on the same (restored) weights.
    # pylint: disable=g-import-not-at-top
    import flops as flops_lib
    from object_detection import exporter_lib_v2
    from object_detection.utils import config_util
    from object_detection.builders import model_builder
    # pylint: enable=g-import-not-at-top
    configs = config_util.get_configs_from_pipeline_file(
        os.path.join(os.path.dirname(saved_model_dir), 'pipeline.config'))
    model, _ = exporter_lib_v2.build_and_restore_model(
        config_util.create_pipeline_proto_from_configs(configs),
        os.path.join(work_dir, 'train'))
    del model_builder
    module = exporter_lib_v2.DetectionFromImageModule(model)
    result['flops'] = flops_lib.count_flops(module._run_inference_on_images, (image,))  # pylint: disable=protected-access
  return result


def run_mg(image_size, steps, warmup, with_flops):
  import model_garden  # pylint: disable=g-import-not-at-top
  return model_garden.inference_benchmark(image_size, steps, warmup, image=load_image(image_size),
                                          with_flops=with_flops)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--side', choices=('ours', 'mg'), required=True)
  parser.add_argument('--image_size', type=int, default=512)
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--no_flops', action='store_true')
  parser.add_argument('--output_json', default='')
  args = parser.parse_args()
  run = run_ours if args.side == 'ours' else run_mg
  result = run(args.image_size, args.steps, args.warmup, not args.no_flops)
  result.update({'side': args.side, 'image_size': args.image_size, 'steps': args.steps,
                 'warmup': args.warmup})
  line = '%-4s inference %dx%d: %.1f ms/image' % (args.side, args.image_size, args.image_size,
                                                   result['ms_per_image'])
  if 'flops' in result:
    import flops as flops_lib  # pylint: disable=g-import-not-at-top
    line += '; ' + flops_lib.summarize(result['flops'])
  print(line)
  common.write_result(args.output_json, 'inference', result=result)


if __name__ == '__main__':
  main()
