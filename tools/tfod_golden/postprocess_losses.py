"""Writes golden fixtures for losses, NMS post-processing, score converters and ROI crop ops.

Runs the TF OD API reference (never this project's package) on fixed, seeded inputs and writes
tests/testdata/tfod_golden/postprocess_losses/:
  losses.npz            inputs and outputs of each Faster R-CNN loss (losses_mask, zero weights,
                        NaN targets, class_indices, focal gamma/alpha variants).
  hard_example_miner.npz HardExampleMiner sums / positive-negative counts for several configs,
                        and _subsample_selection_to_desired_neg_pos_ratio selections.
  nms_<case>.npz        inputs, kwargs (JSON) and every output of
                        post_processing.batch_multiclass_non_max_suppression (first / second
                        stage calls, static shapes, class-agnostic, soft / hard / partitioned /
                        combined NMS) or multiclass_non_max_suppression (single image).
  builders.json         what post_processing_builder.build and losses_builder build from text
                        protos (partial keywords, converter names, loss classes + attributes).
  score_converters.npz  score converter outputs with logit_scale.
  crops.npz             multilevel_native / matmul crop and resize, matmul_crop_and_resize,
                        multilevel_roi_align, with box levels from ops.fpn_feature_levels, and
                        the meta-architecture's mask-target crop call.

Rerun (from outside /work/main, with the reference environment):
  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/postprocess_losses.py
"""

import glob
import json
import os

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from object_detection.builders import losses_builder
from object_detection.builders import post_processing_builder
from object_detection.core import box_list
from object_detection.core import losses
from object_detection.core import matcher
from object_detection.core import post_processing
from object_detection.protos import losses_pb2
from object_detection.protos import post_processing_pb2
from object_detection.utils import ops
from object_detection.utils import spatial_transform_ops as spatial_ops

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'postprocess_losses')
PHOTOS = os.path.join(_REPO, 'samples', 'data', 'coco128_seg', 'images', '*.jpg')


def _np(t):
  return None if t is None else np.asarray(t.numpy() if hasattr(t, 'numpy') else t)


def _save(name, arrays):
  path = os.path.join(OUT_DIR, name)
  np.savez_compressed(path, **arrays)
  print('wrote', path, os.path.getsize(path), 'bytes')


# ------------------------------------------------------------------------------------------
# Losses.
# ------------------------------------------------------------------------------------------


def write_losses():
  rng = np.random.RandomState(1)
  b, a, k, code = 3, 40, 5, 4
  arrays = {}
  loc_pred = rng.randn(b, a, code).astype(np.float32) * 1.5
  loc_target = rng.randn(b, a, code).astype(np.float32)
  loc_target[1, 3, 2] = np.nan
  loc_target[2, 7, :] = np.nan
  loc_weights = (rng.rand(b, a) > 0.3).astype(np.float32) * rng.rand(b, a).astype(np.float32)
  logits = rng.randn(b, a, k).astype(np.float32) * 2
  onehot = np.eye(k, dtype=np.float32)[rng.randint(0, k, size=(b, a))]
  soft_targets = rng.rand(b, a, k).astype(np.float32)
  target_logits = rng.randn(b, a, k).astype(np.float32)
  cls_weights_full = (rng.rand(b, a, k) > 0.2).astype(np.float32)
  cls_weights_one = (rng.rand(b, a, 1) > 0.25).astype(np.float32)
  losses_mask = np.array([True, False, True])
  arrays.update(loc_pred=loc_pred, loc_target=loc_target, loc_weights=loc_weights, logits=logits,
                onehot=onehot, soft_targets=soft_targets, target_logits=target_logits,
                cls_weights_full=cls_weights_full, cls_weights_one=cls_weights_one,
                losses_mask=losses_mask, class_indices=np.array([1, 3, 3], np.int32))

  def run(name, loss, pred, target, weights, **kwargs):
    arrays['out_' + name] = _np(loss(tf.constant(pred), tf.constant(target),
                                     weights=tf.constant(weights), **kwargs))

  ci = tf.constant(arrays['class_indices'])
  mask = tf.constant(losses_mask)
  clean_target = np.nan_to_num(loc_target)
  run('smooth_l1', losses.WeightedSmoothL1LocalizationLoss(), loc_pred, clean_target, loc_weights)
  run('smooth_l1_delta', losses.WeightedSmoothL1LocalizationLoss(delta=0.5), loc_pred,
      clean_target, loc_weights, losses_mask=mask)
  run('smooth_l1_nan', losses.WeightedSmoothL1LocalizationLoss(), loc_pred, loc_target,
      loc_weights, ignore_nan_targets=True)
  run('softmax', losses.WeightedSoftmaxClassificationLoss(), logits, onehot, cls_weights_one)
  run('softmax_scale_mask', losses.WeightedSoftmaxClassificationLoss(logit_scale=2.5), logits,
      onehot, cls_weights_full, losses_mask=mask)
  run('logits_softmax', losses.WeightedSoftmaxClassificationAgainstLogitsLoss(), logits,
      target_logits, cls_weights_full)
  run('logits_softmax_scale_mask',
      losses.WeightedSoftmaxClassificationAgainstLogitsLoss(logit_scale=3.0), logits,
      target_logits, cls_weights_one, losses_mask=mask)
  run('sigmoid', losses.WeightedSigmoidClassificationLoss(), logits, soft_targets,
      cls_weights_full)
  run('sigmoid_mask_ci', losses.WeightedSigmoidClassificationLoss(), logits, onehot,
      cls_weights_one, losses_mask=mask, class_indices=ci)
  run('focal', losses.SigmoidFocalClassificationLoss(), logits, onehot, cls_weights_full)
  run('focal_noalpha', losses.SigmoidFocalClassificationLoss(gamma=1.5, alpha=None), logits,
      soft_targets, cls_weights_one, losses_mask=mask)
  run('focal_gamma0_ci', losses.SigmoidFocalClassificationLoss(gamma=0.0, alpha=0.75), logits,
      onehot, cls_weights_full, class_indices=ci)
  _save('losses.npz', arrays)


def write_hard_example_miner():
  rng = np.random.RandomState(2)
  n = 48
  arrays = {}
  centers = rng.rand(2, n, 2).astype(np.float32) * 80 + 10
  sizes = rng.rand(2, n, 2).astype(np.float32) * 30 + 8
  boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=2)
  boxes[:, 10:20] = boxes[:, 0:10] + rng.randn(2, 10, 4).astype(np.float32)  # Near duplicates.
  loc = rng.rand(2, n).astype(np.float32)
  cls = rng.rand(2, n).astype(np.float32) * 2
  match = rng.choice([-2, -1, -1, -1, 0, 1, 2], size=(2, n)).astype(np.int32)
  arrays.update(boxes=boxes, loc=loc, cls=cls, match=match)
  configs = [
      dict(num_hard_examples=16, iou_threshold=0.7, loss_type='both', cls_loss_weight=0.05,
           loc_loss_weight=0.06),
      dict(num_hard_examples=None, iou_threshold=0.5, loss_type='cls'),
      dict(num_hard_examples=12, iou_threshold=1.0, loss_type='loc',
           max_negatives_per_positive=1),
      dict(num_hard_examples=20, iou_threshold=0.6, loss_type='both', cls_loss_weight=1.0,
           loc_loss_weight=2.0, max_negatives_per_positive=3, min_negatives_per_image=2),
      dict(num_hard_examples=30, iou_threshold=0.7, loss_type='cls',
           max_negatives_per_positive=0.5, min_negatives_per_image=4),
  ]
  for i, config in enumerate(configs):
    for with_match in (False, True):
      miner = losses.HardExampleMiner(**config)
      boxlists = [box_list.BoxList(tf.constant(boxes[j])) for j in range(2)]
      matches = ([matcher.Match(tf.constant(match[j])) for j in range(2)]
                 if with_match else None)
      loc_sum, cls_sum = miner(tf.constant(loc), tf.constant(cls), boxlists, matches)
      key = 'case%d_%s' % (i, 'match' if with_match else 'nomatch')
      arrays[key + '_loc'] = _np(loc_sum)
      arrays[key + '_cls'] = _np(cls_sum)
      if miner._num_positives_list is not None:  # pylint: disable=protected-access
        arrays[key + '_npos'] = np.array([_np(v) for v in miner._num_positives_list])  # pylint: disable=protected-access
        arrays[key + '_nneg'] = np.array([_np(v) for v in miner._num_negatives_list])  # pylint: disable=protected-access
  arrays['configs'] = np.array(json.dumps(configs))
  # Direct selection check.
  miner = losses.HardExampleMiner()
  indices = np.array([3, 7, 1, 0, 12, 30, 31, 5, 9, 44, 2, 18], np.int32)
  for ratio, min_neg in [(1.0, 0), (2.0, 0), (0.5, 3), (3.0, 1)]:
    sel, npos, nneg = miner._subsample_selection_to_desired_neg_pos_ratio(  # pylint: disable=protected-access
        tf.constant(indices), matcher.Match(tf.constant(match[0])), ratio, min_neg)
    key = 'subsample_%g_%d' % (ratio, min_neg)
    arrays[key + '_sel'] = _np(sel)
    arrays[key + '_npos'] = _np(npos)
    arrays[key + '_nneg'] = _np(nneg)
  arrays['subsample_indices'] = indices
  _save('hard_example_miner.npz', arrays)


# ------------------------------------------------------------------------------------------
# NMS.
# ------------------------------------------------------------------------------------------

_IMAGE_SHAPES = np.array([[120, 160], [160, 96]], np.float32)  # Padded image is 160 x 160.


def _realistic_boxes(rng, shape, height=160.0, width=160.0):
  """Decoded-proposal-like absolute boxes: clusters around objects, boxes crossing the border,
  boxes fully outside the image, zero-height boxes and exact duplicates."""
  n = shape[-2] if len(shape) > 2 else shape[0]
  out = np.zeros(shape, np.float32)
  flat = out.reshape(-1, n, 4)
  for f in range(flat.shape[0]):
    objects = np.stack([rng.rand(6) * height, rng.rand(6) * width, rng.rand(6) * 50 + 10,
                        rng.rand(6) * 50 + 10], axis=1)
    pick = objects[rng.randint(0, 6, size=n)]
    cy = pick[:, 0] + rng.randn(n) * pick[:, 2] * 0.15
    cx = pick[:, 1] + rng.randn(n) * pick[:, 3] * 0.15
    h = pick[:, 2] * np.exp(rng.randn(n) * 0.2)
    w = pick[:, 3] * np.exp(rng.randn(n) * 0.2)
    random_rows = rng.rand(n) < 0.2
    cy[random_rows] = rng.rand(random_rows.sum()) * height
    cx[random_rows] = rng.rand(random_rows.sum()) * width
    boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1)
    outside = rng.rand(n) < 0.05
    boxes[outside] += np.array([height + 30, 0, height + 30, 0], np.float32)
    left = rng.rand(n) < 0.03
    boxes[left] -= np.array([0, width + 30, 0, width + 30], np.float32)
    flat_zero = rng.rand(n) < 0.03
    boxes[flat_zero, 2] = boxes[flat_zero, 0]
    dup = rng.randint(0, n, size=4)
    boxes[(dup + 1) % n] = boxes[dup]
    flat[f] = boxes
  return out


def _first_stage_inputs(rng, n):
  boxes = _realistic_boxes(rng, (2, n, 4))[:, :, None, :]
  logits = rng.randn(2, n, 2).astype(np.float32) * 2
  softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  softmax = softmax.astype(np.float32)
  softmax[:, 50:55] = softmax[:, 40:45]  # Exact score ties.
  clip = np.concatenate([np.zeros((2, 2), np.float32), _IMAGE_SHAPES], axis=1)
  return dict(boxes=boxes, scores=softmax[:, :, 1:2], clip_window=clip,
              af_multiclass_scores=softmax)


def _second_stage_inputs(rng, n=64, k=4, mask=6):
  boxes = np.transpose(_realistic_boxes(rng, (2, k, n, 4)), [0, 2, 1, 3])
  logits = rng.randn(2, n, k + 1).astype(np.float32) * 2
  softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  softmax = softmax.astype(np.float32)
  clip = np.concatenate([np.zeros((2, 2), np.float32), _IMAGE_SHAPES], axis=1)
  masks = (1 / (1 + np.exp(-rng.randn(2, n, k, mask, mask)))).astype(np.float32)
  anchor = np.tile(np.arange(n, dtype=np.float32)[None], [2, 1])
  return dict(boxes=boxes, scores=softmax[:, :, 1:], clip_window=clip,
              num_valid_boxes=np.array([n, 41], np.int32), masks=masks,
              af_multiclass_scores=softmax, af_anchor_indices=anchor)


def _tie_inputs():
  """Boxes whose IoUs hit the 0.5 threshold exactly, inside the first 512-box tile and across
  tiles, among 600 disjoint grid boxes (all coordinates and IoUs exact in float32)."""
  grid = [[3 * i, 3 * j, 3 * i + 2, 3 * j + 2] for i in range(25) for j in range(24)]
  # Sorted position -> box. Grid box 0 is [0, 0, 2, 2].
  ordered = [grid[0], [0, 0, 2, 1], [0, 0, 1, 1]] + grid[1:517]
  ordered += [[3, 3, 5, 4]]  # IoU 0.5 with grid box 25 ([3, 3, 5, 5]), in the second tile.
  ordered += grid[517:]
  boxes = np.array(ordered, np.float32)
  n = len(boxes)
  scores = np.linspace(0.99, 0.01, n).astype(np.float32)
  shuffle = np.random.RandomState(7).permutation(n)
  boxes, scores = boxes[shuffle], scores[shuffle]
  return dict(boxes=boxes[None, :, None, :], scores=scores[None, :, None],
              af_anchor_indices=shuffle.astype(np.float32)[None])


def _run_batch_nms(name, inputs, kwargs):
  call = {key: tf.constant(value) for key, value in inputs.items() if not key.startswith('af_')}
  fields = {key[3:]: tf.constant(value) for key, value in inputs.items() if key.startswith('af_')}
  if fields:
    call['additional_fields'] = fields
  outputs = post_processing.batch_multiclass_non_max_suppression(**call, **kwargs)
  boxes, scores, classes, masks, extra, num = outputs
  arrays = {'in_' + key: value for key, value in inputs.items()}
  arrays.update(kwargs=np.array(json.dumps(kwargs)), out_boxes=_np(boxes),
                out_scores=_np(scores), out_classes=_np(classes), out_num=_np(num))
  arrays['out_has_masks'] = np.array(masks is not None)
  arrays['out_has_fields'] = np.array(extra is not None)
  if masks is not None:
    arrays['out_masks'] = _np(masks)
  for key, value in (extra or {}).items():
    arrays['out_af_' + key] = _np(value)
  _save('nms_%s.npz' % name, arrays)


def write_nms():
  rng = np.random.RandomState(3)
  first = _first_stage_inputs(rng, 1200)
  first_kwargs = dict(score_thresh=0.0, iou_thresh=0.7, max_size_per_class=300,
                      max_total_size=300)
  _run_batch_nms('first_stage', first, first_kwargs)
  _run_batch_nms('first_stage_static', first, dict(first_kwargs, use_static_shapes=True))
  partitioned = dict(first, af_anchor_indices=np.tile(
      np.arange(1200, dtype=np.float32)[None], [2, 1]))
  _run_batch_nms('first_stage_partitioned', partitioned,
                 dict(first_kwargs, use_static_shapes=True, use_partitioned_nms=True))
  _run_batch_nms('first_stage_partitioned_many_tiles', partitioned,
                 dict(score_thresh=0.3, iou_thresh=0.3, max_size_per_class=100,
                      max_total_size=100, use_static_shapes=True, use_partitioned_nms=True))
  no_window = {key: value for key, value in first.items() if key != 'clip_window'}
  _run_batch_nms('first_stage_no_window', no_window,
                 dict(score_thresh=0.2, iou_thresh=0.5, max_size_per_class=50,
                      max_total_size=80))

  second = _second_stage_inputs(rng)
  second_kwargs = dict(score_thresh=0.0, iou_thresh=0.6, max_size_per_class=100,
                       max_total_size=100, change_coordinate_frame=True)
  _run_batch_nms('second_stage', second, second_kwargs)
  _run_batch_nms('second_stage_thresh', second, dict(second_kwargs, score_thresh=0.3))
  _run_batch_nms('second_stage_static', second, dict(second_kwargs, use_static_shapes=True))
  _run_batch_nms('second_stage_static_thresh', second,
                 dict(second_kwargs, score_thresh=0.3, max_size_per_class=20,
                      max_total_size=50, use_static_shapes=True))
  _run_batch_nms('second_stage_agnostic', second,
                 dict(second_kwargs, use_class_agnostic_nms=True))
  _run_batch_nms('second_stage_agnostic_static', second,
                 dict(second_kwargs, score_thresh=0.2, use_class_agnostic_nms=True,
                      use_static_shapes=True))
  _run_batch_nms('second_stage_agnostic_partitioned', second,
                 dict(second_kwargs, use_class_agnostic_nms=True, use_static_shapes=True,
                      use_partitioned_nms=True))
  _run_batch_nms('second_stage_soft', second, dict(second_kwargs, soft_nms_sigma=0.5))
  _run_batch_nms('second_stage_soft_agnostic', second,
                 dict(second_kwargs, soft_nms_sigma=0.3, score_thresh=0.1,
                      use_class_agnostic_nms=True))
  _run_batch_nms('second_stage_hard', second,
                 dict(second_kwargs, score_thresh=0.3, use_hard_nms=True))
  _run_batch_nms('second_stage_partitioned', second,
                 dict(second_kwargs, score_thresh=0.1, use_static_shapes=True,
                      use_partitioned_nms=True))
  no_masks = {key: value for key, value in second.items()
              if key not in ('masks', 'num_valid_boxes')}
  _run_batch_nms('second_stage_no_masks', no_masks,
                 dict(second_kwargs, change_coordinate_frame=False, max_size_per_class=5,
                      max_total_size=12))
  normalized = dict(no_masks, boxes=no_masks['boxes'] / 160.0)
  del normalized['af_anchor_indices'], normalized['af_multiclass_scores']
  _run_batch_nms('combined', normalized,
                 dict(score_thresh=0.1, iou_thresh=0.5, max_size_per_class=10,
                      max_total_size=25, use_combined_nms=True))
  _run_batch_nms('combined_static', normalized,
                 dict(score_thresh=0.1, iou_thresh=0.5, max_size_per_class=10,
                      max_total_size=25, use_combined_nms=True, use_static_shapes=True))

  _run_batch_nms('second_stage_static_negative_thresh', second,
                 dict(second_kwargs, score_thresh=-2.0, max_size_per_class=10,
                      max_total_size=30, use_static_shapes=True))
  ties = _tie_inputs()
  tie_kwargs = dict(score_thresh=0.0, iou_thresh=0.5, max_size_per_class=620,
                    max_total_size=620)
  _run_batch_nms('ties_partitioned', ties,
                 dict(tie_kwargs, use_static_shapes=True, use_partitioned_nms=True))
  _run_batch_nms('ties_static', ties, dict(tie_kwargs, use_static_shapes=True))
  _run_batch_nms('ties', ties, tie_kwargs)

  # Single-image multiclass_non_max_suppression, no clip window (nothing clipped or pruned).
  boxes = second['boxes'][0]
  scores = second['scores'][0]
  arrays = {'in_boxes': boxes, 'in_scores': scores}
  for name, kwargs in [('plain', dict(score_thresh=0.2, iou_thresh=0.5, max_size_per_class=8)),
                       ('capped', dict(score_thresh=0.0, iou_thresh=0.5, max_size_per_class=8,
                                       max_total_size=10)),
                       ('padded', dict(score_thresh=0.25, iou_thresh=0.5, max_size_per_class=8,
                                       pad_to_max_output_size=True))]:
    result, num = post_processing.multiclass_non_max_suppression(
        tf.constant(boxes), tf.constant(scores), **kwargs)
    arrays['kwargs_' + name] = np.array(json.dumps(kwargs))
    arrays[name + '_boxes'] = _np(result.get())
    arrays[name + '_scores'] = _np(result.get_field('scores'))
    arrays[name + '_classes'] = _np(result.get_field('classes'))
    arrays[name + '_num'] = _np(num)
  _save('nms_single_image.npz', arrays)


# ------------------------------------------------------------------------------------------
# Builders and score converters.
# ------------------------------------------------------------------------------------------

POST_PROCESSING_TEXTS = {
    'default': '',
    'softmax_scaled': """
        batch_non_max_suppression { score_threshold: 0.0 iou_threshold: 0.6
          max_detections_per_class: 100 max_total_detections: 100 }
        score_converter: SOFTMAX logit_scale: 2.0""",
    'sigmoid_options': """
        batch_non_max_suppression { score_threshold: 0.3 iou_threshold: 0.5
          max_detections_per_class: 20 max_total_detections: 50 use_static_shapes: true
          use_class_agnostic_nms: true soft_nms_sigma: 0.0 change_coordinate_frame: false
          use_hard_nms: true use_cpu_nms: true use_partitioned_nms: true }
        score_converter: SIGMOID logit_scale: 0.5""",
    'identity_combined': """
        batch_non_max_suppression { use_combined_nms: true soft_nms_sigma: 0.4
          max_classes_per_detection: 1 }
        score_converter: IDENTITY logit_scale: 3.0""",
}

CLASSIFICATION_LOSS_TEXTS = {
    'unset': '',
    'softmax': 'weighted_softmax { }',
    'softmax_scaled': 'weighted_softmax { logit_scale: 2.0 }',
    'sigmoid': 'weighted_sigmoid { }',
    'logits_softmax': 'weighted_logits_softmax { logit_scale: 4.0 }',
    'focal_default': 'weighted_sigmoid_focal { }',
    'focal_alpha': 'weighted_sigmoid_focal { gamma: 1.5 alpha: 0.3 }',
}

HARD_EXAMPLE_MINER_TEXTS = {
    'default': '',
    'cls_ratio': 'num_hard_examples: 32 iou_threshold: 0.5 loss_type: CLASSIFICATION '
                 'max_negatives_per_positive: 3 min_negatives_per_image: 2',
    'loc_all': 'num_hard_examples: 0 iou_threshold: 0.99 loss_type: LOCALIZATION',
    'both': 'loss_type: BOTH max_negatives_per_positive: 0',
}


def _attributes(obj):
  return {key: value for key, value in sorted(vars(obj).items())
          if isinstance(value, (int, float, str, bool, type(None)))}


def write_builders():
  result = {'post_processing': {}, 'classification_loss': {}, 'hard_example_miner': {}}
  arrays = {}
  rng = np.random.RandomState(4)
  logits = rng.randn(2, 7, 5).astype(np.float32) * 3
  arrays['logits'] = logits
  for name, text in POST_PROCESSING_TEXTS.items():
    config = text_format.Parse(text, post_processing_pb2.PostProcessing())
    nms_fn, converter = post_processing_builder.build(config)
    result['post_processing'][name] = {
        'text': text, 'nms_func': nms_fn.func.__name__, 'nms_keywords': nms_fn.keywords,
        'converter_name': converter.__name__}
    arrays['converted_' + name] = _np(converter(tf.constant(logits)))
  for name, text in CLASSIFICATION_LOSS_TEXTS.items():
    loss = losses_builder.build_faster_rcnn_classification_loss(
        text_format.Parse(text, losses_pb2.ClassificationLoss()))
    result['classification_loss'][name] = {'text': text, 'class': type(loss).__name__,
                                           'attributes': _attributes(loss)}
  for name, text in HARD_EXAMPLE_MINER_TEXTS.items():
    miner = losses_builder.build_hard_example_miner(
        text_format.Parse(text, losses_pb2.HardExampleMiner()), 0.25, 0.75)
    result['hard_example_miner'][name] = {'text': text, 'attributes': _attributes(miner)}
  path = os.path.join(OUT_DIR, 'builders.json')
  with open(path, 'w') as f:
    json.dump(result, f, indent=1, sort_keys=True)
  print('wrote', path)
  _save('score_converters.npz', arrays)


# ------------------------------------------------------------------------------------------
# Crop ops.
# ------------------------------------------------------------------------------------------


def _photo_features(height, width):
  path = sorted(glob.glob(PHOTOS))[0]
  image = tf.image.decode_jpeg(tf.io.read_file(path))
  image = tf.image.resize(tf.cast(image, tf.float32)[tf.newaxis], [height, width])
  return _np(image) / 255.0


def write_crops():
  rng = np.random.RandomState(5)
  arrays = {}
  num_boxes = 14
  ymin = rng.rand(2, num_boxes) * 0.8
  xmin = rng.rand(2, num_boxes) * 0.8
  boxes = np.stack([ymin, xmin, ymin + rng.rand(2, num_boxes) * 0.6 + 0.02,
                    xmin + rng.rand(2, num_boxes) * 0.6 + 0.02], axis=2).astype(np.float32)
  boxes[:, 0] = [0.0, 0.0, 1.0, 1.0]             # Whole image (touches every border).
  boxes[:, 1] = [-0.2, 0.5, 0.4, 1.3]             # Crosses top and right borders.
  boxes[:, 2] = [0.3, 0.3, 0.3, 0.6]              # Zero height.
  boxes[:, 3] = [0.5, 0.5, 0.5, 0.5]              # A point.
  boxes[:, 4] = [1.1, 1.2, 1.5, 1.6]              # Fully outside.
  boxes[:, 5] = [0.7, 0.6, 0.2, 0.1]              # Inverted (flipped crop).
  boxes[:, 6] = [0.0, 0.25, 1.0, 0.75]            # Touches top and bottom.
  boxes[:, 7] = [1.0 / 3, 1.0 / 7, 2.0 / 3, 6.0 / 7]
  boxes[:, 12] = [-1e-9, -2e-9, 0.6, 0.55]        # Just below 0: floor(y + 1) != floor(y) + 1.
  arrays['boxes'] = boxes

  photo = _photo_features(24, 28)
  rng_channels = rng.randn(1, 24, 28, 2).astype(np.float32)
  level0 = np.concatenate([np.concatenate([photo, rng_channels], axis=3)] * 2, axis=0)
  level0[1] = level0[1, ::-1]
  levels = [level0.astype(np.float32)]
  for size in [(12, 14), (6, 7), (3, 4)]:
    levels.append(rng.randn(2, size[0], size[1], 5).astype(np.float32))
  for i, level in enumerate(levels):
    arrays['level%d' % i] = level
  # Box levels as the meta-architecture computes them (unit_scale_index = num_levels - 2 and
  # image ratio sqrt(H * W) / 224, here for a 384 x 448 input).
  image_ratio = np.sqrt(384.0 * 448.0) / 224.0
  box_levels = ops.fpn_feature_levels(4, 2, tf.constant(image_ratio, tf.float32),
                                      tf.constant(boxes))
  box_levels_np = _np(box_levels)
  # Make sure every level is used at least once.
  box_levels_np[0, 8:12] = [0, 1, 2, 3]
  box_levels_np[1, 8:12] = [3, 2, 1, 0]
  arrays['box_levels_fpn'] = _np(box_levels)
  arrays['box_levels'] = box_levels_np
  tf_levels = [tf.constant(level) for level in levels]
  tf_boxes = tf.constant(boxes)
  tf_box_levels = tf.constant(box_levels_np)
  crop = [7, 5]
  arrays['native_single'] = _np(spatial_ops.multilevel_native_crop_and_resize(
      tf_levels[:1], tf_boxes, None, crop))
  arrays['native_multi'] = _np(spatial_ops.multilevel_native_crop_and_resize(
      tf_levels, tf_boxes, tf_box_levels, crop))
  arrays['native_one_level_explicit'] = _np(spatial_ops.multilevel_native_crop_and_resize(
      tf_levels[:1], tf_boxes, tf.zeros_like(tf_box_levels), crop))
  arrays['native_crop_and_resize'] = _np(spatial_ops.native_crop_and_resize(
      tf_levels[1], tf_boxes, [3, 4]))
  arrays['matmul_single'] = _np(spatial_ops.multilevel_matmul_crop_and_resize(
      tf_levels[:1], tf_boxes, None, crop))
  arrays['matmul_multi'] = _np(spatial_ops.multilevel_matmul_crop_and_resize(
      tf_levels, tf_boxes, tf_box_levels, crop))
  arrays['matmul_multi_extrapolate'] = _np(spatial_ops.multilevel_matmul_crop_and_resize(
      tf_levels, tf_boxes, tf_box_levels, [4, 4], extrapolation_value=-2.5))
  arrays['matmul_crop_and_resize'] = _np(spatial_ops.matmul_crop_and_resize(
      tf_levels[0], tf_boxes, [6, 6]))
  arrays['roi_align'] = _np(spatial_ops.multilevel_roi_align(
      tf_levels, tf_boxes, tf_box_levels, [4, 3]))
  arrays['roi_align_samples'] = _np(spatial_ops.multilevel_roi_align(
      tf_levels, tf_boxes, tf_box_levels, [3, 3], num_samples_per_cell_y=2,
      num_samples_per_cell_x=3, extrapolation_value=1.0))
  arrays['roi_align_corners'] = _np(spatial_ops.multilevel_roi_align(
      tf_levels[1:3], tf_boxes, tf.minimum(tf_box_levels, 1), [2, 5], align_corners=True,
      num_samples_per_cell_y=2))

  # The mask-target crop of the meta-architecture's loss:
  # crop_and_resize_fn([masks[..., None]], boxes[:, None], None, [mask_h, mask_w]).
  num_masks, mask_h, mask_w = 9, 33, 41
  yy, xx = np.mgrid[0:mask_h, 0:mask_w]
  masks = np.zeros((num_masks, mask_h, mask_w), np.float32)
  for m in range(num_masks):
    cy, cx = rng.rand() * mask_h, rng.rand() * mask_w
    ry, rx = rng.rand() * 10 + 3, rng.rand() * 12 + 3
    masks[m] = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.float32)
  mask_boxes = boxes.reshape(-1, 4)[:num_masks]
  arrays['gt_masks'] = masks
  arrays['mask_boxes'] = mask_boxes
  for name, fn in [('native', spatial_ops.multilevel_native_crop_and_resize),
                   ('matmul', spatial_ops.multilevel_matmul_crop_and_resize)]:
    arrays['mask_targets_' + name] = _np(fn(
        [tf.constant(masks)[..., tf.newaxis]], tf.constant(mask_boxes)[:, tf.newaxis], None,
        [15, 15]))
  _save('crops.npz', arrays)


def main():
  os.makedirs(OUT_DIR, exist_ok=True)
  write_losses()
  write_hard_example_miner()
  write_nms()
  write_builders()
  write_crops()


if __name__ == '__main__':
  main()
