"""Cost of our mask head in training: all sampled ROIs vs positives only, with / without XLA.

Our Mask R-CNN (TF OD API semantics) runs the mask tower of the ResNet-50-FPN sample config
(bilinear resize of the 14x14x256 ROI crop (initial_crop_size) to 28x28, 3 conv 3x3 + final conv to 90
classes, depth from mask_prediction_conv_depth: 0) on every sampled ROI:
second_stage_batch_size (512) per image, although only the positive ROIs (at most 25% = 128)
have a mask loss. The Model Garden samples 128 ROIs per image for its mask head.

This times the mask tower forward + backward (loss = sigmoid cross-entropy of the first class
channel against random targets; gradients w.r.t. the tower weights and its input) in a
tf.function on random ROI features for:
  all_rois   batch * 512 ROIs (what our training step computes),
  positives  batch * 128 ROIs (what a positives-only mask head would compute),
and `positives` again with jit_compile=True (XLA). FLOPs are counted from the traced graph.

Usage:
  python benchmarks/mask_head.py [--batch_size 2 --steps 3 --warmup 1 --output_json out.json]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

import common  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIG = 'mask_rcnn_resnet50_fpn_coco.config'


def time_mask_tower(num_rois, steps, warmup, jit_compile, with_flops):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from object_detection.predictors import mask_rcnn_box_predictor
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(os.path.join(common.CONFIG_DIR, CONFIG))
  frcnn = configs['model'].faster_rcnn
  predictor = mask_rcnn_box_predictor.MaskRCNNBoxPredictor(
      frcnn.second_stage_box_predictor.mask_rcnn_box_predictor, frcnn.num_classes,
      predict_instance_masks=True)
  depth = frcnn.feature_extractor.fpn.additional_layer_depth or 256
  rng = np.random.default_rng(0)
  crop = frcnn.initial_crop_size  # FPN mask heads read the crops before the max pool
  features = tf.constant(rng.standard_normal([num_rois, crop, crop, depth]).astype(np.float32))
  predictor.predict_masks(features[:1], training=True)  # builds the tower
  mask_h = frcnn.second_stage_box_predictor.mask_rcnn_box_predictor.mask_height
  targets = tf.constant((rng.uniform(size=[num_rois, mask_h, mask_h]) > 0.5).astype(np.float32))
  variables = predictor.mask_tower.trainable_variables

  def forward_backward(features, targets):
    with tf.GradientTape() as tape:
      tape.watch(features)
      logits = predictor.predict_masks(features, training=True)[:, 0]
      loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets,
                                                                    logits=logits))
    grads = tape.gradient(loss, variables + [features])
    return [loss] + grads

  step = tf.function(forward_backward, jit_compile=jit_compile)
  times, _, _ = common.time_calls(lambda: step(features, targets)[0].numpy(), steps, warmup)
  result = {'num_rois': num_rois, 'jit_compile': jit_compile, 'steps': steps,
            'seconds': float(np.median(times)), 'seconds_all': times}
  if with_flops:
    import flops as flops_lib  # pylint: disable=g-import-not-at-top
    result['flops'] = flops_lib.count_flops(forward_backward, (features, targets))['total_flops']
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--batch_size', type=int, default=2)
  parser.add_argument('--rois_per_image', type=int, default=512)
  parser.add_argument('--positives_per_image', type=int, default=128)
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--warmup', type=int, default=1)
  parser.add_argument('--output_json', default='')
  args = parser.parse_args()
  results = []
  for mode, per_image, jit in (('all_rois', args.rois_per_image, False),
                               ('positives', args.positives_per_image, False),
                               ('positives', args.positives_per_image, True)):
    try:
      r = time_mask_tower(args.batch_size * per_image, args.steps, args.warmup, jit,
                          with_flops=not jit)
    except Exception as e:  # pylint: disable=broad-except  (XLA may not compile it)
      r = {'num_rois': args.batch_size * per_image, 'jit_compile': jit, 'seconds': None,
           'error': str(e).splitlines()[0][:300]}
    r['mode'] = mode
    if jit and results and results[-1].get('flops'):
      r['flops'] = results[-1]['flops']
    results.append(r)
    print('mask tower fwd+bwd, %4d ROIs %-9s%s: %s' % (
        r['num_rois'], mode, ' (XLA)' if jit else '      ',
        '%.2f s' % r['seconds'] if r['seconds'] is not None else 'FAILED ' + r['error']))
  common.write_result(args.output_json, 'mask_head', results=results)


if __name__ == '__main__':
  main()
