"""Inference ms/image: our exported SavedModel vs the Model Garden Mask R-CNN, batch 1.

Ours (--side ours): the ResNet-50-FPN sample config with its image resizer set to --image_size
(min = max = size) or, with --config c4, benchmarks/configs/mask_rcnn_resnet50_c4_512.config
(the TF OD API's C4 network; fixed_shape_resizer set to --image_size; its peer is
benchmarks/tfod_peer.py --mode inference, which exports the same file with the TF OD API's own
exporter and times it the same way), randomly initialised, saved as a checkpoint, exported with
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

--jit_compile (ours): the config on the static-shape path (common.set_static_shapes), exported
with `exporter_lib_v2.export_inference_graph(..., jit_compile=True)` (an XLA-compiled serving
function); --static_shapes: the same config exported without XLA.

Usage:
  python benchmarks/inference.py --side ours --image_size 512 [--config fpn|c4 --steps 5
      --warmup 2 --no_flops --jit_compile --static_shapes --output_json out.json]
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
IMAGE = common.IMAGE
load_image = common.load_image


def load_configs(config, image_size, work_dir, static_shapes=False):
  """The pipeline configs dict: the FPN sample config resized, or the C4 benchmark config."""
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  if config == 'c4':
    # The exporter reads no input paths: the records folder placeholder stays unused.
    path = common.write_c4_config(os.path.join(work_dir, 'pipeline.config'), work_dir,
                                  image_size)
    return config_util.get_configs_from_pipeline_file(path)
  configs = config_util.get_configs_from_pipeline_file(os.path.join(common.CONFIG_DIR, CONFIG))
  resizer = configs['model'].faster_rcnn.image_resizer.keep_aspect_ratio_resizer
  resizer.min_dimension = image_size
  resizer.max_dimension = image_size
  if static_shapes:
    common.set_static_shapes(configs)
  return configs


def export_random_init(image_size, work_dir, config='fpn', jit_compile=False, static_shapes=False):
  """Writes a random-init checkpoint and exports it; returns (saved_model_dir, seconds)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from object_detection import exporter_lib_v2
  from object_detection.builders import model_builder
  from object_detection.utils import checkpoint_utils
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = load_configs(config, image_size, work_dir, static_shapes or jit_compile)
  pipeline_config = config_util.create_pipeline_proto_from_configs(configs)
  model = model_builder.build(configs['model'], is_training=False)
  checkpoint_utils.build_model_variables(model, (image_size, image_size))
  ckpt_dir = os.path.join(work_dir, 'train')
  tf.train.Checkpoint(model=model).save(os.path.join(ckpt_dir, 'ckpt'))
  start = time.perf_counter()
  out = exporter_lib_v2.export_inference_graph('image_tensor', pipeline_config, ckpt_dir,
                                               os.path.join(work_dir, 'exported'),
                                               jit_compile=jit_compile)
  seconds = time.perf_counter() - start
  return os.path.join(out, 'saved_model'), seconds


def run_ours(image_size, steps, warmup, with_flops, config='fpn', jit_compile=False,
             static_shapes=False):
  work_dir = tempfile.mkdtemp(prefix='bench_inference_')
  try:
    return _run_ours(image_size, steps, warmup, with_flops, work_dir, config, jit_compile,
                     static_shapes)
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)


def _run_ours(image_size, steps, warmup, with_flops, work_dir, config, jit_compile=False,
              static_shapes=False):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  saved_model_dir, export_seconds = export_random_init(image_size, work_dir, config, jit_compile,
                                                       static_shapes)
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
            'num_detections': float(out['num_detections'].numpy()[0]),
            'detection_masks_shape': (list(out['detection_masks'].shape)
                                      if 'detection_masks' in out else None)}
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


def run_mg(image_size, steps, warmup, with_flops, config='fpn', jit_compile=False,
           static_shapes=False):
  del config, jit_compile, static_shapes  # the Model Garden peer is ResNet-50-FPN only
  import model_garden  # pylint: disable=g-import-not-at-top
  return model_garden.inference_benchmark(image_size, steps, warmup, image=load_image(image_size),
                                          with_flops=with_flops)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--side', choices=('ours', 'mg'), required=True)
  parser.add_argument('--image_size', type=int, default=512)
  parser.add_argument('--config', choices=('fpn', 'c4'), default='fpn',
                      help='ours: fpn = samples/configs/%s, c4 = benchmarks/configs/%s' % (
                          CONFIG, os.path.basename(common.C4_CONFIG)))
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--no_flops', action='store_true')
  parser.add_argument('--jit_compile', action='store_true',
                      help='ours: static-shape config, XLA-compiled serving function')
  parser.add_argument('--static_shapes', action='store_true',
                      help='ours: static-shape config, no XLA')
  parser.add_argument('--output_json', default='')
  args = parser.parse_args()
  if args.side == 'mg' and args.config != 'fpn':
    parser.error('--config c4 is ours only (its peer is benchmarks/tfod_peer.py --mode inference)')
  run = run_ours if args.side == 'ours' else run_mg
  result = run(args.image_size, args.steps, args.warmup, not args.no_flops, args.config,
               args.jit_compile, args.static_shapes)
  result.update({'side': args.side, 'config': args.config, 'image_size': args.image_size,
                 'steps': args.steps, 'warmup': args.warmup, 'jit_compile': args.jit_compile,
                 'static_shapes': args.static_shapes or args.jit_compile})
  line = '%-4s inference %dx%d: %.1f ms/image' % (args.side, args.image_size, args.image_size,
                                                   result['ms_per_image'])
  if 'flops' in result:
    import flops as flops_lib  # pylint: disable=g-import-not-at-top
    line += '; ' + flops_lib.summarize(result['flops'])
  print(line)
  common.write_result(args.output_json, 'inference', result=result)


if __name__ == '__main__':
  main()
