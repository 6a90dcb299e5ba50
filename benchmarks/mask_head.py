"""Cost of the Mask R-CNN mask head in training: how the TF OD API runs it vs how we run the same math.

The config is the TF OD API's C4 ResNet-50 Mask R-CNN (benchmarks/configs/mask_rcnn_resnet50_c4_512.config):
the mask head reads the box classifier's [N, 4, 4, 2048] conv5 features, resizes them bilinearly to
33x33, then runs 3 convs 3x3 (depth 256 from mask_prediction_conv_depth: 0) and a last conv to 90 class
masks. The TF OD API runs it on every sampled proposal (second_stage_batch_size, 64 per image), although
only the positives (at most 25% = 16 per image) have a mask loss.

This times the mask head's forward + backward (loss = sigmoid cross-entropy of the first class channel
against random targets; gradients w.r.t. the head's weights and its input) in a tf.function on random
features, for:
  tfod       batch * rois_per_image ROIs, resize then convolve (the TF OD API's computation),
  all_rois   the same ROIs with the resize and first convolution reordered (keras_mask_head
             resize_then_conv: same math),
  positives  batch * positives_per_image ROIs, reordered: what our training step computes.
FLOPs are counted from the traced graph.

Usage:
  python benchmarks/mask_head.py [--batch_size 2 --rois_per_image 64 --positives_per_image 16
                                  --steps 3 --warmup 1 --output_json out.json]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

import common  # pylint: disable=g-import-not-at-top,wrong-import-position

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs',
                      'mask_rcnn_resnet50_c4_512.config')


def time_mask_head(num_rois, steps, warmup, reordered, with_flops):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from object_detection.builders import box_predictor_builder
  from object_detection.builders import hyperparams_builder
  from object_detection.predictors.heads import keras_mask_head
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(CONFIG)
  frcnn = configs['model'].faster_rcnn
  predictor = box_predictor_builder.build_keras(
      hyperparams_builder.KerasLayerHyperparams, freeze_batchnorm=False,
      inplace_batchnorm_update=False, num_predictions_per_location_list=[1],
      box_predictor_config=frcnn.second_stage_box_predictor, is_training=True,
      num_classes=frcnn.num_classes)
  rng = np.random.default_rng(0)
  features = tf.constant(rng.standard_normal([num_rois, 4, 4, 2048]).astype(np.float32))
  mask_h = frcnn.second_stage_box_predictor.mask_rcnn_box_predictor.mask_height
  targets = tf.constant((rng.uniform(size=[num_rois, mask_h, mask_h]) > 0.5).astype(np.float32))
  original = keras_mask_head._resize_then_conv_is_cheaper  # pylint: disable=protected-access
  if not reordered:
    keras_mask_head._resize_then_conv_is_cheaper = lambda *args: False  # pylint: disable=protected-access
  try:
    predictor([features[:1]], prediction_stage=3, training=True)  # builds the head
    variables = predictor.trainable_variables

    def forward_backward(features, targets):
      with tf.GradientTape() as tape:
        tape.watch(features)
        masks = predictor([features], prediction_stage=3, training=True)['mask_predictions']
        logits = masks[:, 0, 0]
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets,
                                                                      logits=logits))
      grads = tape.gradient(loss, variables + [features])
      return [loss] + [g for g in grads if g is not None]

    step = tf.function(forward_backward)
    times, _, _ = common.time_calls(lambda: step(features, targets)[0].numpy(), steps, warmup)
    result = {'num_rois': num_rois, 'reordered': reordered, 'steps': steps,
              'seconds': float(np.median(times)), 'seconds_all': times}
    if with_flops:
      import flops as flops_lib  # pylint: disable=g-import-not-at-top
      result['flops'] = flops_lib.count_flops(forward_backward, (features, targets))['total_flops']
  finally:
    keras_mask_head._resize_then_conv_is_cheaper = original  # pylint: disable=protected-access
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--batch_size', type=int, default=2)
  parser.add_argument('--rois_per_image', type=int, default=64)
  parser.add_argument('--positives_per_image', type=int, default=16)
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--warmup', type=int, default=1)
  parser.add_argument('--no_flops', action='store_true')
  parser.add_argument('--output_json', default='')
  args = parser.parse_args()
  results = []
  for mode, per_image, reordered in (('tfod', args.rois_per_image, False),
                                     ('all_rois', args.rois_per_image, True),
                                     ('positives', args.positives_per_image, True)):
    r = time_mask_head(args.batch_size * per_image, args.steps, args.warmup, reordered,
                       with_flops=not args.no_flops)
    r['mode'] = mode
    results.append(r)
    print('mask head fwd+bwd, %4d ROIs %-9s: %.2f s%s' % (
        r['num_rois'], mode, r['seconds'],
        ', %.0f GFLOP' % (r['flops'] / 1e9) if r.get('flops') else ''))
  common.write_result(args.output_json, 'mask_head', results=results)


if __name__ == '__main__':
  main()
