"""Golden fixtures for the Faster R-CNN target-assignment stack, written by the TF OD API itself.

Runs in the reference process only:
  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/targets.py

Writes tests/testdata/tfod_golden/targets/ (compressed .npz, inputs and reference outputs):
  anchors.npz          GridAnchorGenerator (zoo config: scales 0.25..2, ratios 0.5/1/2, stride 16,
                       default base size; built with the reference anchor_generator_builder) on two
                       feature maps; a grid with non-default base size / stride / offset;
                       MultiscaleGridAnchorGenerator (levels 2-6, anchor_scale 4, ratios 1/2/0.5,
                       2 scales per octave, absolute) for a 128x96 input; the same generator with
                       normalized coordinates and explicit image sizes (offset rule).
  box_coder.npz        FasterRcnnBoxCoder encode / decode with and without scale factors, with
                       degenerate (zero-size) boxes and anchors, and decode(encode(boxes)).
  box_list_ops.npz     the box_list_ops the meta-arch / post-processing use, ops.fpn_feature_levels,
                       ops.matmul_gather_on_zeroth_axis, ops.normalized_to_image_coordinates and
                       shape_utils.pad_or_clip_nd on seeded random boxes.
  matcher.npz          ArgMaxMatcher on hand-made similarity matrices with ties, weak groundtruth,
                       forced matches, invalid rows, no rows, and on random IoU matrices; Match
                       query results; use_matmul_gather.
  target_assigner.npz  create_target_assigner('FasterRCNN', 'proposal' / 'detection') through
                       batch_assign_targets as faster_rcnn_meta_arch.py calls it, for two real
                       coco128_seg images (000000000009, 000000000049) resized as the zoo's 640x640
                       configs do, with a zero groundtruth weight; detection targets with one-hot
                       classes + background and with instance masks as class targets; the proposal
                       stage with use_matmul_gather.
  sampler.npz          BalancedPositiveNegativeSampler: (a) cases where every candidate is taken
                       (exact), (b) dynamic and static algorithms with the random shuffle replaced
                       by tools/tfod_golden/fixed_shuffle.py (exact), (c) positive / negative counts
                       of the real random sampler over seeds.

Inputs are seeded numpy arrays or the coco128_seg annotations; every input a test needs is stored.
Imports tensorflow, numpy, the reference package and (by file path) fixed_shuffle.py only.
"""

import importlib.util
import json
import os

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from object_detection.anchor_generators import grid_anchor_generator
from object_detection.anchor_generators import multiscale_grid_anchor_generator
from object_detection.box_coders import faster_rcnn_box_coder
from object_detection.builders import anchor_generator_builder
from object_detection.core import balanced_positive_negative_sampler as bpns
from object_detection.core import box_list
from object_detection.core import box_list_ops
from object_detection.core import minibatch_sampler
from object_detection.core import target_assigner
from object_detection.matchers import argmax_matcher
from object_detection.protos import anchor_generator_pb2
from object_detection.utils import ops
from object_detection.utils import shape_utils

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
OUT_DIR = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'targets')
COCO_DIR = os.path.join(_REPO, 'samples', 'data', 'coco128_seg')


def _load_by_path(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


fixed_shuffle = _load_by_path('fixed_shuffle', os.path.join(_HERE, 'fixed_shuffle.py'))

# Zoo Faster R-CNN / Mask R-CNN first-stage anchors (e.g. faster_rcnn_resnet50_v1_640x640).
GRID_ZOO_CONFIG = """
grid_anchor_generator {
  scales: [0.25, 0.5, 1.0, 2.0]
  aspect_ratios: [0.5, 1.0, 2.0]
  height_stride: 16
  width_stride: 16
}
"""
GRID_CUSTOM_CONFIG = """
grid_anchor_generator {
  height: 128
  width: 192
  height_stride: 8
  width_stride: 12
  height_offset: 4
  width_offset: 6
  scales: [0.5, 1.0]
  aspect_ratios: [1.0, 2.0, 0.5]
}
"""
MULTISCALE_CONFIG = """
multiscale_anchor_generator {
  min_level: 2
  max_level: 6
  anchor_scale: 4.0
  aspect_ratios: [1.0, 2.0, 0.5]
  scales_per_octave: 2
  normalize_coordinates: false
}
"""
# Images of the target-assignment fixture and their zoo 640x640 resize
# (keep_aspect_ratio_resizer min 640 max 640, pad_to_max_dimension).
COCO_IMAGE_IDS = (9, 49)
PADDED_SIZE = 640
NUM_CLASSES = 90
MASK_SIZE = 40


def _np(tensor):
  return tensor.numpy() if hasattr(tensor, 'numpy') else np.asarray(tensor)


def _save(name, arrays):
  os.makedirs(OUT_DIR, exist_ok=True)
  path = os.path.join(OUT_DIR, name)
  np.savez_compressed(path, **{k: np.asarray(v) for k, v in arrays.items()})
  print('wrote %s (%d arrays, %d bytes)' % (path, len(arrays), os.path.getsize(path)))


def _anchor_generator(config_text):
  config = anchor_generator_pb2.AnchorGenerator()
  text_format.Merge(config_text, config)
  return anchor_generator_builder.build(config)


def _random_boxes(rng, n, low, high, min_size=0.0, max_size=None):
  max_size = max_size or (high - low) / 2.0
  ymin = rng.uniform(low, high, n)
  xmin = rng.uniform(low, high, n)
  h = rng.uniform(min_size, max_size, n)
  w = rng.uniform(min_size, max_size, n)
  return np.stack([ymin, xmin, ymin + h, xmin + w], axis=1).astype(np.float32)


# ----------------------------------------------------------------------------------------------
def write_anchors():
  out = {'grid_zoo_config': np.array(GRID_ZOO_CONFIG), 'grid_custom_config':
         np.array(GRID_CUSTOM_CONFIG), 'multiscale_config': np.array(MULTISCALE_CONFIG)}
  zoo = _anchor_generator(GRID_ZOO_CONFIG)
  out['grid_zoo_num_anchors_per_location'] = np.array(zoo.num_anchors_per_location())
  for i, shape in enumerate([(3, 5), (40, 40)]):
    (anchors,) = zoo.generate([shape])
    out['grid_zoo_%d_shape' % i] = np.array(shape)
    out['grid_zoo_%d_boxes' % i] = _np(anchors.get())
    out['grid_zoo_%d_feature_map_index' % i] = _np(anchors.get_field('feature_map_index'))

  custom = _anchor_generator(GRID_CUSTOM_CONFIG)
  (anchors,) = custom.generate([(4, 3)])
  out['grid_custom_shape'] = np.array((4, 3))
  out['grid_custom_boxes'] = _np(anchors.get())
  out['grid_custom_num_anchors_per_location'] = np.array(custom.num_anchors_per_location())

  # Default constructor arguments (scales / ratios (0.5, 1, 2), base 256, stride 16, offset 0).
  (anchors,) = grid_anchor_generator.GridAnchorGenerator().generate([(2, 3)])
  out['grid_default_boxes'] = _np(anchors.get())

  multiscale = _anchor_generator(MULTISCALE_CONFIG)
  image_height, image_width = 128, 96
  shapes = [(int(np.ceil(image_height / 2.0**l)), int(np.ceil(image_width / 2.0**l)))
            for l in range(2, 7)]
  out['multiscale_shapes'] = np.array(shapes)
  out['multiscale_num_anchors_per_location'] = np.array(multiscale.num_anchors_per_location())
  anchors_list = multiscale.generate(shapes)
  for level, anchors in zip(range(2, 7), anchors_list):
    out['multiscale_level%d_boxes' % level] = _np(anchors.get())
  out['multiscale_concat_boxes'] = _np(box_list_ops.concatenate(anchors_list).get())
  out['multiscale_concat_feature_map_index'] = _np(
      box_list_ops.concatenate(anchors_list).get_field('feature_map_index'))

  # Normalized, with explicit (odd) image sizes: exercises the offset rule and the normalization.
  normalized = multiscale_grid_anchor_generator.MultiscaleGridAnchorGenerator(
      min_level=3, max_level=4, anchor_scale=3.0, aspect_ratios=[1.0, 2.0],
      scales_per_octave=3, normalize_coordinates=True)
  norm_shapes = [(13, 12), (7, 6)]
  anchors_list = normalized.generate(norm_shapes, im_height=100, im_width=96)
  out['normalized_shapes'] = np.array(norm_shapes)
  for i, anchors in enumerate(anchors_list):
    out['normalized_%d_boxes' % i] = _np(anchors.get())
  _save('anchors.npz', out)


# ----------------------------------------------------------------------------------------------
def write_box_coder():
  rng = np.random.RandomState(11)
  anchors = _random_boxes(rng, 40, 0.0, 600.0, min_size=4.0, max_size=300.0)
  boxes = _random_boxes(rng, 40, 0.0, 600.0, min_size=1.0, max_size=300.0)
  # Degenerate rows: zero-height / zero-width / zero-size boxes, and zero-size anchors.
  boxes[0, 2] = boxes[0, 0]
  boxes[1, 3] = boxes[1, 1]
  boxes[2, 2:] = boxes[2, :2]
  anchors[3, 2:] = anchors[3, :2]
  boxes[4] = anchors[4]
  anchors[5, 2:] = anchors[5, :2]
  boxes[5] = anchors[5]
  codes = rng.normal(0.0, 1.0, (40, 4)).astype(np.float32)
  out = {'anchors': anchors, 'boxes': boxes, 'codes': codes}
  for name, factors in (('scaled', [10.0, 10.0, 5.0, 5.0]), ('unscaled', None)):
    coder = faster_rcnn_box_coder.FasterRcnnBoxCoder(scale_factors=factors)
    anchors_bl = box_list.BoxList(tf.constant(anchors))
    encoded = coder.encode(box_list.BoxList(tf.constant(boxes)), anchors_bl)
    out[name + '_encoded'] = _np(encoded)
    out[name + '_decoded'] = _np(coder.decode(tf.constant(codes), anchors_bl).get())
    out[name + '_roundtrip'] = _np(coder.decode(encoded, anchors_bl).get())
    out[name + '_code_size'] = np.array(coder.code_size)
  _save('box_coder.npz', out)


# ----------------------------------------------------------------------------------------------
def _boxlist_with_fields(boxes, scores, classes):
  bl = box_list.BoxList(tf.constant(boxes))
  bl.add_field('scores', tf.constant(scores))
  bl.add_field('classes', tf.constant(classes))
  return bl


def _store_boxlist(out, prefix, bl):
  out[prefix + '_boxes'] = _np(bl.get())
  for field in bl.get_extra_fields():
    out['%s_%s' % (prefix, field)] = _np(bl.get_field(field))


def write_box_list_ops():
  rng = np.random.RandomState(5)
  n = 30
  boxes = _random_boxes(rng, n, -80.0, 600.0, min_size=0.0, max_size=250.0)
  boxes[7] = [10.0, 10.0, 10.0, 50.0]  # zero height
  boxes[8] = [-50.0, -60.0, -10.0, -5.0]  # entirely outside the window
  scores = rng.uniform(0, 1, n).astype(np.float32)
  classes = rng.uniform(0, 1, (n, 3)).astype(np.float32)
  other = _random_boxes(rng, 12, 0.0, 500.0, min_size=5.0, max_size=200.0)
  window = np.array([0.0, 0.0, 480.0, 640.0], np.float32)
  indicator = rng.uniform(0, 1, n) > 0.5
  indices = rng.randint(0, n, 17).astype(np.int32)
  out = {'boxes': boxes, 'scores': scores, 'classes': classes, 'other': other,
         'window': window, 'indicator': indicator, 'indices': indices}

  def bl():
    return _boxlist_with_fields(boxes, scores, classes)

  other_bl = box_list.BoxList(tf.constant(other))
  win = tf.constant(window)
  _store_boxlist(out, 'clip_filter', box_list_ops.clip_to_window(bl(), win))
  _store_boxlist(out, 'clip_nofilter',
                 box_list_ops.clip_to_window(bl(), win, filter_nonoverlapping=False))
  pruned, keep = box_list_ops.prune_outside_window(bl(), win)
  _store_boxlist(out, 'prune_outside', pruned)
  out['prune_outside_indices'] = _np(keep)
  pruned, keep = box_list_ops.prune_completely_outside_window(bl(), win)
  _store_boxlist(out, 'prune_completely', pruned)
  out['prune_completely_indices'] = _np(keep)
  positive = np.abs(boxes) + 2.0  # max > 1.01 for the range check
  out['positive_boxes'] = positive
  _store_boxlist(out, 'to_normalized', box_list_ops.to_normalized_coordinates(
      box_list.BoxList(tf.constant(positive)), 480, 640))
  _store_boxlist(out, 'to_normalized_tensor_size', box_list_ops.to_normalized_coordinates(
      box_list.BoxList(tf.constant(positive)), tf.constant(481), tf.constant(639),
      check_range=False))
  normalized = (positive / positive.max() * 1.05).astype(np.float32)
  out['normalized_boxes'] = normalized
  _store_boxlist(out, 'to_absolute', box_list_ops.to_absolute_coordinates(
      box_list.BoxList(tf.constant(normalized)), 480, 640))
  _store_boxlist(out, 'boolean_mask_dynamic',
                 box_list_ops.boolean_mask(bl(), tf.constant(indicator)))
  _store_boxlist(out, 'boolean_mask_static', box_list_ops.boolean_mask(
      bl(), tf.constant(indicator), use_static_shapes=True, indicator_sum=int(indicator.sum())))
  _store_boxlist(out, 'boolean_mask_static_larger', box_list_ops.boolean_mask(
      bl(), tf.constant(indicator), use_static_shapes=True,
      indicator_sum=int(indicator.sum()) + 3))
  _store_boxlist(out, 'gather', box_list_ops.gather(bl(), tf.constant(indices)))
  _store_boxlist(out, 'gather_int64', box_list_ops.gather(
      bl(), tf.constant(indices.astype(np.int64)), fields=['scores']))
  _store_boxlist(out, 'gather_static', box_list_ops.gather(
      bl(), tf.constant(indices), use_static_shapes=True))
  _store_boxlist(out, 'pad', box_list_ops.pad_or_clip_box_list(bl(), n + 6))
  _store_boxlist(out, 'clip', box_list_ops.pad_or_clip_box_list(bl(), 9))
  _store_boxlist(out, 'pad_tensor', box_list_ops.pad_or_clip_box_list(bl(), tf.constant(n + 2)))
  second = _boxlist_with_fields(other, np.ones(12, np.float32), np.zeros((12, 3), np.float32))
  _store_boxlist(out, 'concatenate', box_list_ops.concatenate([bl(), second]))
  _store_boxlist(out, 'change_frame', box_list_ops.change_coordinate_frame(
      bl(), tf.constant([20.0, 30.0, 420.0, 530.0])))
  _store_boxlist(out, 'scale', box_list_ops.scale(bl(), 0.5, 2.0))
  _store_boxlist(out, 'scale_height_width', box_list_ops.scale_height_width(bl(), 0.5, 2.0))
  _store_boxlist(out, 'sort_descend', box_list_ops.sort_by_field(bl(), 'scores'))
  _store_boxlist(out, 'sort_ascend', box_list_ops.sort_by_field(
      bl(), 'scores', order=box_list_ops.SortOrder.ascend))
  _store_boxlist(out, 'prune_small', box_list_ops.prune_small_boxes(bl(), 60.0))
  pruned, keep = box_list_ops.prune_non_overlapping_boxes(bl(), other_bl, min_overlap=0.3)
  _store_boxlist(out, 'prune_non_overlapping', pruned)
  out['prune_non_overlapping_indices'] = _np(keep)
  _store_boxlist(out, 'filter_greater_than', box_list_ops.filter_greater_than(bl(), 0.4))
  _store_boxlist(out, 'nms', box_list_ops.non_max_suppression(bl(), 0.5, 10))
  out['area'] = _np(box_list_ops.area(bl()))
  heights, widths = box_list_ops.height_width(bl())
  out['height'], out['width'] = _np(heights), _np(widths)
  out['intersection'] = _np(box_list_ops.intersection(bl(), other_bl))
  out['iou'] = _np(box_list_ops.iou(bl(), other_bl))
  out['ioa'] = _np(box_list_ops.ioa(bl(), other_bl))
  out['sq_dist'] = _np(box_list_ops.sq_dist(bl(), other_bl))
  first12 = box_list.BoxList(tf.constant(boxes[:12]))
  out['matched_iou'] = _np(box_list_ops.matched_iou(first12, other_bl))
  out['matched_intersection'] = _np(box_list_ops.matched_intersection(first12, other_bl))

  # utils/ops and utils/shape_utils.
  fpn_boxes = np.stack([_random_boxes(rng, 25, 0.0, 0.8, 0.0, 0.6) for _ in range(2)])
  fpn_boxes[0, 0] = [0.1, 0.1, 0.1, 0.3]  # zero area -> log(0) = -inf -> level 0
  out['fpn_boxes'] = fpn_boxes
  image_ratio = float(np.sqrt(640.0 * 640.0) / 224.0)
  out['fpn_image_ratio'] = np.array(image_ratio, np.float32)
  out['fpn_levels_4_2'] = _np(ops.fpn_feature_levels(4, 2, image_ratio, tf.constant(fpn_boxes)))
  out['fpn_levels_5_3'] = _np(ops.fpn_feature_levels(
      5, 3, tf.sqrt(tf.cast(800 * 1024, tf.float32)) / 224.0, tf.constant(fpn_boxes)))
  out['matmul_gather'] = _np(ops.matmul_gather_on_zeroth_axis(
      tf.constant(classes), tf.constant(indices)))
  out['dense_vector'] = _np(ops.indices_to_dense_vector(
      tf.constant(indices), n, indices_value=3.0, default_value=-1.0))
  out['normalized_to_image'] = _np(ops.normalized_to_image_coordinates(
      tf.constant(fpn_boxes), tf.constant([2, 480, 640, 3])))
  tensor = rng.normal(0, 1, (5, 7, 3)).astype(np.float32)
  out['pad_clip_input'] = tensor
  out['pad_or_clip_nd'] = _np(shape_utils.pad_or_clip_nd(tf.constant(tensor), [8, 4, None]))
  out['pad_or_clip_tensor'] = _np(shape_utils.pad_or_clip_tensor(tf.constant(tensor), 3))
  four_d = rng.normal(0, 1, (2, 3, 4, 5)).astype(np.float32)
  out['four_d'] = four_d
  out['flatten_first_2'] = _np(shape_utils.flatten_first_n_dimensions(tf.constant(four_d), 2))
  out['expand_first'] = _np(shape_utils.expand_first_dimension(
      tf.constant(four_d.reshape(6, 4, 5)), [3, 2]))
  mapped = shape_utils.static_or_dynamic_map_fn(
      lambda args: [args[0] * 2.0 + tf.reduce_sum(args[1]), args[1] - 1.0],
      [tf.constant(four_d), tf.constant(tensor[:2])])
  out['map_fn_0'], out['map_fn_1'] = _np(mapped[0]), _np(mapped[1])
  _save('box_list_ops.npz', out)


# ----------------------------------------------------------------------------------------------
def _matcher_case(out, name, similarity, matcher_kwargs, valid_rows=None):
  matcher = argmax_matcher.ArgMaxMatcher(**matcher_kwargs)
  sim = tf.constant(similarity, tf.float32)
  valid = None if valid_rows is None else tf.constant(valid_rows)
  match = matcher.match(sim, valid_rows=valid)
  out[name + '_similarity'] = similarity.astype(np.float32)
  if valid_rows is not None:
    out[name + '_valid_rows'] = np.asarray(valid_rows)
  config = [matcher_kwargs.get('matched_threshold'), matcher_kwargs.get('unmatched_threshold')]
  out[name + '_thresholds'] = np.array([np.nan if v is None else v for v in config], np.float32)
  out[name + '_flags'] = np.array([
      matcher_kwargs.get('negatives_lower_than_unmatched', True),
      matcher_kwargs.get('force_match_for_each_row', False),
      matcher_kwargs.get('use_matmul_gather', False)])
  out[name + '_match_results'] = _np(match.match_results)
  out[name + '_matched_column_indices'] = _np(match.matched_column_indices())
  out[name + '_matched_row_indices'] = _np(match.matched_row_indices())
  out[name + '_unmatched_column_indices'] = _np(match.unmatched_column_indices())
  out[name + '_ignored_column_indices'] = _np(match.ignored_column_indices())
  out[name + '_unmatched_or_ignored_column_indices'] = _np(
      match.unmatched_or_ignored_column_indices())
  out[name + '_num_matched_rows'] = _np(match.num_matched_rows())
  rows = similarity.shape[0]
  row_values = (np.arange(rows * 2, dtype=np.float32).reshape(rows, 2) + 1.0) * 1.5
  out[name + '_gathered'] = _np(match.gather_based_on_match(
      tf.constant(row_values), unmatched_value=tf.constant([-1.0, -1.5]),
      ignored_value=tf.constant([-2.0, -2.5])))


def write_matcher():
  out = {}
  # Rows: groundtruth, columns: anchors.
  ties = np.array([
      # gt0: equal best similarity 0.8 at anchors 1 and 4 (row tie -> anchor 1 when forced).
      [0.1, 0.8, 0.0, 0.75, 0.8, 0.0, 0.2, 0.0],
      # gt1: never above 0.3 (weak); equal best 0.25 at anchors 2 and 5.
      [0.0, 0.1, 0.25, 0.0, 0.1, 0.25, 0.0, 0.0],
      # gt2: ties gt0 at anchor 3 (column tie -> gt0 by argmax); best column 1 like gt0.
      [0.0, 0.9, 0.0, 0.75, 0.0, 0.0, 0.5, 0.05],
      # gt3: best anchor 6 in the ignore band.
      [0.0, 0.0, 0.1, 0.0, 0.0, 0.2, 0.65, 0.0],
  ], np.float32)
  _matcher_case(out, 'ties_force', ties, dict(matched_threshold=0.7, unmatched_threshold=0.3,
                                              force_match_for_each_row=True))
  _matcher_case(out, 'ties_noforce', ties, dict(matched_threshold=0.7, unmatched_threshold=0.3))
  _matcher_case(out, 'ties_force_matmul', ties, dict(
      matched_threshold=0.7, unmatched_threshold=0.3, force_match_for_each_row=True,
      use_matmul_gather=True))
  _matcher_case(out, 'ties_force_invalid_rows', ties, dict(
      matched_threshold=0.7, unmatched_threshold=0.3, force_match_for_each_row=True),
                valid_rows=np.array([True, False, True, True]))
  _matcher_case(out, 'ties_negatives_between', ties, dict(
      matched_threshold=0.5, unmatched_threshold=0.1, negatives_lower_than_unmatched=False))
  _matcher_case(out, 'ties_detection', ties, dict(matched_threshold=0.5,
                                                  negatives_lower_than_unmatched=True))
  _matcher_case(out, 'ties_no_threshold', ties, dict(matched_threshold=None))
  _matcher_case(out, 'no_rows', np.zeros((0, 6), np.float32), dict(
      matched_threshold=0.7, unmatched_threshold=0.3, force_match_for_each_row=True))

  rng = np.random.RandomState(3)
  gts = _random_boxes(rng, 10, 0.0, 500.0, min_size=10.0, max_size=200.0)
  anchors = _random_boxes(rng, 300, 0.0, 500.0, min_size=10.0, max_size=200.0)
  anchors[:10] = gts + rng.normal(0, 3, gts.shape).astype(np.float32)
  iou = _np(box_list_ops.iou(box_list.BoxList(tf.constant(gts)),
                             box_list.BoxList(tf.constant(anchors))))
  _matcher_case(out, 'random_proposal', iou, dict(
      matched_threshold=0.7, unmatched_threshold=0.3, force_match_for_each_row=True))
  _matcher_case(out, 'random_proposal_matmul', iou, dict(
      matched_threshold=0.7, unmatched_threshold=0.3, force_match_for_each_row=True,
      use_matmul_gather=True))
  _matcher_case(out, 'random_detection', iou, dict(matched_threshold=0.5))
  _save('matcher.npz', out)


# ----------------------------------------------------------------------------------------------
def _polygon_mask(polygons, scale_y, scale_x, size):
  """Even-odd rasterization of COCO polygons (pixel centers) on a size x size grid."""
  mask = np.zeros((size, size), bool)
  ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
  for poly in polygons:
    px = np.array(poly[0::2]) * scale_x
    py = np.array(poly[1::2]) * scale_y
    inside = np.zeros_like(mask)
    for i in range(len(px)):
      x0, y0, x1, y1 = px[i - 1], py[i - 1], px[i], py[i]
      crosses = (y0 > ys) != (y1 > ys)
      with np.errstate(divide='ignore', invalid='ignore'):
        x_at = (x1 - x0) * (ys - y0) / (y1 - y0) + x0
      inside ^= crosses & (xs < x_at)
    mask |= inside
  return mask.astype(np.float32)


def _coco_groundtruth():
  with open(os.path.join(COCO_DIR, 'annotations', 'instances_train.json')) as f:
    data = json.load(f)
  images = {im['id']: im for im in data['images']}
  result = []
  for image_id in COCO_IMAGE_IDS:
    im = images[image_id]
    anns = [a for a in data['annotations'] if a['image_id'] == image_id]
    width, height = float(im['width']), float(im['height'])
    scale = PADDED_SIZE / max(width, height)
    true_shape = [int(round(height * scale)), int(round(width * scale)), 3]
    boxes = np.array([[a['bbox'][1] / height, a['bbox'][0] / width,
                       (a['bbox'][1] + a['bbox'][3]) / height,
                       (a['bbox'][0] + a['bbox'][2]) / width] for a in anns], np.float32)
    classes = np.array([a['category_id'] for a in anns], np.int32)
    # Masks on a MASK_SIZE grid covering the padded image.
    cell = PADDED_SIZE / float(MASK_SIZE)
    masks = np.stack([_polygon_mask(a['segmentation'], scale / cell, scale / cell, MASK_SIZE)
                      for a in anns])
    result.append(dict(image_id=image_id, true_shape=np.array(true_shape, np.int32),
                       boxes=boxes, classes=classes, masks=masks))
  return result


def write_target_assigner():
  gts = _coco_groundtruth()
  rng = np.random.RandomState(7)
  out = {'padded_size': np.array(PADDED_SIZE), 'num_classes': np.array(NUM_CLASSES)}
  weights = []
  for i, gt in enumerate(gts):
    w = np.ones(len(gt['boxes']), np.float32)
    if i == 0:
      w[3] = 0.0  # the TF OD API keeps zero-weight boxes in the matching, with zero weights
    weights.append(w)
    for key in ('true_shape', 'boxes', 'classes', 'masks'):
      out['gt%d_%s' % (i, key)] = gt[key]
    out['gt%d_weights' % i] = w

  def gt_boxlists():
    # As FasterRCNNMetaArch._format_groundtruth_data: normalized -> absolute (true image shape).
    return [box_list_ops.to_absolute_coordinates(
        box_list.BoxList(tf.constant(gt['boxes'])), int(gt['true_shape'][0]),
        int(gt['true_shape'][1])) for gt in gts]

  # First stage: zoo grid anchors on the 640x640 padded input (stride-16 features: 40x40),
  # pruned to the image window as the meta-arch does in training (clip_anchors_to_image false).
  zoo = _anchor_generator(GRID_ZOO_CONFIG)
  anchors = box_list_ops.concatenate(zoo.generate([(PADDED_SIZE // 16, PADDED_SIZE // 16)]))
  window = tf.constant([0, 0, PADDED_SIZE, PADDED_SIZE], tf.float32)
  pruned, _ = box_list_ops.prune_outside_window(anchors, window)
  out['rpn_anchors'] = _np(pruned.get())
  clipped = box_list_ops.clip_to_window(anchors, window, filter_nonoverlapping=False)
  out['rpn_anchors_clipped'] = _np(clipped.get())
  for name, anchor_boxes, matmul in (('rpn', out['rpn_anchors'], False),
                                     ('rpn_clipped', out['rpn_anchors_clipped'], False),
                                     ('rpn_matmul', out['rpn_anchors'], True)):
    assigner = target_assigner.create_target_assigner('FasterRCNN', 'proposal',
                                                      use_matmul_gather=matmul)
    results = target_assigner.batch_assign_targets(
        target_assigner=assigner, anchors_batch=box_list.BoxList(tf.constant(anchor_boxes)),
        gt_box_batch=gt_boxlists(), gt_class_targets_batch=len(gts) * [None],
        gt_weights_batch=[tf.constant(w) for w in weights])
    for key, value in zip(('cls_targets', 'cls_weights', 'reg_targets', 'reg_weights', 'match'),
                          results):
      out['%s_%s' % (name, key)] = _np(value)

  # Second stage: proposals (jittered groundtruth + random boxes, absolute) per image.
  proposals = []
  for i, gt in enumerate(gts):
    h, w = float(gt['true_shape'][0]), float(gt['true_shape'][1])
    gt_abs = gt['boxes'] * np.array([h, w, h, w], np.float32)
    sizes = np.concatenate([gt_abs[:, 2:] - gt_abs[:, :2]] * 2, axis=1)
    jitter = np.concatenate([gt_abs + rng.normal(0, 0.08, gt_abs.shape) * sizes
                             for _ in range(3)])
    random = _random_boxes(rng, 64 - len(jitter), 0.0, min(h, w) * 0.8, 4.0, min(h, w) * 0.5)
    props = np.concatenate([jitter, random]).astype(np.float32)[:64]
    props[-1] = props[0]  # two proposals with identical IoU to the same groundtruth
    proposals.append(props)
    out['proposals%d' % i] = props

  detector = target_assigner.create_target_assigner('FasterRCNN', 'detection')
  classes_with_background = [
      tf.constant(np.pad(np.eye(NUM_CLASSES, dtype=np.float32)[gt['classes'] - 1],
                         [[0, 0], [1, 0]])) for gt in gts]
  out['classes_with_background0'] = _np(classes_with_background[0])
  out['classes_with_background1'] = _np(classes_with_background[1])
  results = target_assigner.batch_assign_targets(
      target_assigner=detector,
      anchors_batch=[box_list.BoxList(tf.constant(p)) for p in proposals],
      gt_box_batch=gt_boxlists(), gt_class_targets_batch=classes_with_background,
      unmatched_class_label=tf.constant([1] + NUM_CLASSES * [0], dtype=tf.float32),
      gt_weights_batch=[tf.constant(w) for w in weights])
  for key, value in zip(('cls_targets', 'cls_weights', 'reg_targets', 'reg_weights', 'match'),
                        results):
    out['det_%s' % key] = _np(value)

  # Mask targets as the meta-arch assigns them: masks as class targets, zeros unmatched label.
  image_shape = tf.constant([len(gts), MASK_SIZE, MASK_SIZE, 3])
  results = target_assigner.batch_assign_targets(
      target_assigner=detector,
      anchors_batch=[box_list.BoxList(tf.constant(p)) for p in proposals],
      gt_box_batch=gt_boxlists(),
      gt_class_targets_batch=[tf.constant(gt['masks']) for gt in gts],
      unmatched_class_label=tf.zeros(image_shape[1:3], dtype=tf.float32),
      gt_weights_batch=[tf.constant(w) for w in weights])
  for key, value in zip(('cls_targets', 'cls_weights', 'reg_targets', 'reg_weights', 'match'),
                        results):
    out['mask_%s' % key] = _np(value)

  # An image without groundtruth: every anchor is a negative.
  empty_boxes = box_list.BoxList(tf.zeros([0, 4], tf.float32))
  results = target_assigner.batch_assign_targets(
      target_assigner=target_assigner.create_target_assigner('FasterRCNN', 'proposal'),
      anchors_batch=box_list.BoxList(tf.constant(out['rpn_anchors'][:50])),
      gt_box_batch=[empty_boxes], gt_class_targets_batch=[None],
      gt_weights_batch=[tf.zeros([0], tf.float32)])
  for key, value in zip(('cls_targets', 'cls_weights', 'reg_targets', 'reg_weights', 'match'),
                        results):
    out['empty_rpn_%s' % key] = _np(value)
  results = target_assigner.batch_assign_targets(
      target_assigner=detector, anchors_batch=[box_list.BoxList(tf.constant(proposals[0]))],
      gt_box_batch=[box_list.BoxList(tf.zeros([0, 4], tf.float32))],
      gt_class_targets_batch=[tf.zeros([0, NUM_CLASSES + 1], tf.float32)],
      unmatched_class_label=tf.constant([1] + NUM_CLASSES * [0], dtype=tf.float32),
      gt_weights_batch=[tf.zeros([0], tf.float32)])
  for key, value in zip(('cls_targets', 'cls_weights', 'reg_targets', 'reg_weights', 'match'),
                        results):
    out['empty_det_%s' % key] = _np(value)

  # A single TargetAssigner.assign call, default labels / weights / unmatched label; the
  # 'scores' field it adds to the groundtruth BoxList.
  gt_bl = gt_boxlists()[1]
  single = detector.assign(box_list.BoxList(tf.constant(proposals[1])), gt_bl)
  for key, value in zip(('cls_targets', 'cls_weights', 'reg_targets', 'reg_weights', 'match'),
                        single):
    out['single_%s' % key] = _np(value)
  out['single_gt_scores'] = _np(gt_bl.get_field('scores'))
  _save('target_assigner.npz', out)


# ----------------------------------------------------------------------------------------------
class _TfProxy(object):
  """Delegates to a tf module, overriding some attributes (the reference stays unpatched)."""

  def __init__(self, base, **overrides):
    self._base = base
    self.__dict__.update(overrides)

  def __getattr__(self, name):
    return getattr(self._base, name)


def _fixed_random_shuffle(value, seed=None, name=None):
  del seed, name
  return tf.gather(value, fixed_shuffle.fixed_order(int(tf.shape(value)[0])))


class _FixedShuffle(object):
  """Context manager: the reference samplers shuffle with fixed_shuffle.fixed_order."""

  def __enter__(self):
    self._saved = (minibatch_sampler.tf, bpns.tf)
    minibatch_sampler.tf = _TfProxy(minibatch_sampler.tf, random_shuffle=_fixed_random_shuffle)
    bpns.tf = _TfProxy(bpns.tf, random_shuffle=_fixed_random_shuffle)
    return self

  def __exit__(self, *args):
    minibatch_sampler.tf, bpns.tf = self._saved


def _sampler_inputs(rng, n, candidate_prob, positive_prob):
  indicator = rng.uniform(0, 1, n) < candidate_prob
  labels = rng.uniform(0, 1, n) < positive_prob
  return indicator, labels


def write_sampler():
  rng = np.random.RandomState(21)
  out = {}
  cases = []
  # (a) every candidate is taken: the result is the indicator whatever the shuffle.
  ind, lab = _sampler_inputs(rng, 40, 0.6, 0.2)
  cases.append(('all_dynamic', ind, lab, 64, 0.5, False, 'exact'))
  ind, lab = _sampler_inputs(rng, 40, 0.5, 0.4)
  cases.append(('all_dynamic_none', ind, lab, None, 0.25, False, 'exact'))
  ind, lab = _sampler_inputs(rng, 24, 0.5, 0.3)
  cases.append(('all_static', ind, lab, 24, 0.5, True, 'exact'))
  # (b) deterministic given the shuffle.
  ind, lab = _sampler_inputs(rng, 100, 0.7, 0.15)
  cases.append(('dynamic', ind, lab, 16, 0.5, False, 'fixed'))
  cases.append(('dynamic_few_pos', ind, lab, 64, 0.5, False, 'fixed'))
  cases.append(('dynamic_none', ind, lab, None, 0.5, False, 'fixed'))
  cases.append(('static', ind, lab, 16, 0.5, True, 'fixed'))
  cases.append(('static_quarter', ind, lab, 32, 0.25, True, 'fixed'))
  ind, lab = _sampler_inputs(rng, 60, 0.15, 0.3)
  cases.append(('static_topup', ind, lab, 24, 0.5, True, 'fixed'))
  ind, lab = _sampler_inputs(rng, 60, 0.8, 0.85)
  cases.append(('static_few_neg', ind, lab, 20, 0.25, True, 'fixed'))
  cases.append(('dynamic_few_neg', ind, lab, 20, 0.25, False, 'fixed'))
  # (c) counts of the real random sampler over seeds.
  ind, lab = _sampler_inputs(rng, 500, 0.8, 0.05)
  cases.append(('random_dynamic', ind, lab, 64, 0.5, False, 'seeds'))
  cases.append(('random_static', ind, lab, 64, 0.5, True, 'seeds'))
  ind, lab = _sampler_inputs(rng, 300, 0.9, 0.5)
  cases.append(('random_dynamic_many_pos', ind, lab, 128, 0.25, False, 'seeds'))
  cases.append(('random_static_many_pos', ind, lab, 128, 0.25, True, 'seeds'))

  seeds = [0, 1, 2, 3, 4]
  out['seeds'] = np.array(seeds)
  out['case_names'] = np.array([c[0] for c in cases])
  for name, ind, lab, batch_size, fraction, is_static, mode in cases:
    out[name + '_indicator'] = ind
    out[name + '_labels'] = lab
    out[name + '_batch_size'] = np.array(-1 if batch_size is None else batch_size)
    out[name + '_positive_fraction'] = np.array(fraction, np.float32)
    out[name + '_is_static'] = np.array(is_static)
    out[name + '_mode'] = np.array(mode)
    sampler = bpns.BalancedPositiveNegativeSampler(positive_fraction=fraction,
                                                   is_static=is_static)

    def run():
      return _np(sampler.subsample(tf.constant(ind), batch_size, tf.constant(lab)))

    if mode == 'exact':
      out[name + '_sampled'] = run()
    elif mode == 'fixed':
      with _FixedShuffle():
        out[name + '_sampled'] = run()
    else:
      counts = []
      for seed in seeds:
        tf.random.set_seed(seed)
        sampled = run()
        counts.append([int((sampled & lab).sum()), int((sampled & ~lab).sum()),
                       int((sampled & ~ind).sum())])
      out[name + '_counts'] = np.array(counts)
  _save('sampler.npz', out)


def main():
  write_anchors()
  write_box_coder()
  write_box_list_ops()
  write_matcher()
  write_target_assigner()
  write_sampler()


if __name__ == '__main__':
  main()
