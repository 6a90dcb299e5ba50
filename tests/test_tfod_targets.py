"""Golden parity of box lists, box coder, matcher, target assigner, samplers and anchors.

The fixtures in tests/testdata/tfod_golden/targets/ were written by the TF OD API itself
(tools/tfod_golden/targets.py, see its docstring for the cases and how to regenerate them). Each
test runs this project's module on the stored inputs and compares with the reference outputs:
integer results (match results, indices, sampled indicators, counts) exactly, float results to
1e-6 relative / 1e-6 absolute (the arithmetic is the same op sequence, so in practice they are
bit-identical on CPU).
"""

import importlib.util
import os

import numpy as np
import pytest
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

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GOLDEN = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'targets')


def _load(name):
  return np.load(os.path.join(_GOLDEN, name))


def _fixed_shuffle_module():
  path = os.path.join(_REPO, 'tools', 'tfod_golden', 'fixed_shuffle.py')
  spec = importlib.util.spec_from_file_location('fixed_shuffle', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _close(actual, expected):
  actual = actual.numpy() if hasattr(actual, 'numpy') else np.asarray(actual)
  assert actual.shape == expected.shape, (actual.shape, expected.shape)
  np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


def _equal(actual, expected):
  actual = actual.numpy() if hasattr(actual, 'numpy') else np.asarray(actual)
  assert actual.shape == expected.shape, (actual.shape, expected.shape)
  np.testing.assert_array_equal(actual, expected)


def _build_anchor_generator(config_text):
  config = anchor_generator_pb2.AnchorGenerator()
  text_format.Merge(str(config_text), config)
  return anchor_generator_builder.build(config)


# ------------------------------------------------------------------------------ anchors
def test_grid_anchors_zoo_config_match_reference_order_included():
  g = _load('anchors.npz')
  generator = _build_anchor_generator(g['grid_zoo_config'])
  assert isinstance(generator, grid_anchor_generator.GridAnchorGenerator)
  _equal(np.array(generator.num_anchors_per_location()), g['grid_zoo_num_anchors_per_location'])
  for i in range(2):
    shape = tuple(int(v) for v in g['grid_zoo_%d_shape' % i])
    (anchors,) = generator.generate([shape])
    _close(anchors.get(), g['grid_zoo_%d_boxes' % i])
    _close(anchors.get_field('feature_map_index'), g['grid_zoo_%d_feature_map_index' % i])


def test_grid_anchors_from_tensor_shapes_inside_tf_function():
  # The meta-arch passes (tf.shape(f)[1], tf.shape(f)[2]) tuples and concatenates the BoxLists.
  g = _load('anchors.npz')
  generator = _build_anchor_generator(g['grid_zoo_config'])

  @tf.function(input_signature=[tf.TensorSpec([1, None, None, 8], tf.float32)])
  def anchors_for(features):
    shape = tf.shape(features)
    return box_list_ops.concatenate(generator.generate([(shape[1], shape[2])])).get()

  h, w = (int(v) for v in g['grid_zoo_1_shape'])
  _close(anchors_for(tf.zeros([1, h, w, 8])), g['grid_zoo_1_boxes'])


def test_grid_anchors_custom_and_default_arguments():
  g = _load('anchors.npz')
  generator = _build_anchor_generator(g['grid_custom_config'])
  _equal(np.array(generator.num_anchors_per_location()),
         g['grid_custom_num_anchors_per_location'])
  (anchors,) = generator.generate([tuple(int(v) for v in g['grid_custom_shape'])])
  _close(anchors.get(), g['grid_custom_boxes'])
  (anchors,) = grid_anchor_generator.GridAnchorGenerator().generate([(2, 3)])
  _close(anchors.get(), g['grid_default_boxes'])


def test_multiscale_anchors_match_reference():
  g = _load('anchors.npz')
  generator = _build_anchor_generator(g['multiscale_config'])
  assert isinstance(generator, multiscale_grid_anchor_generator.MultiscaleGridAnchorGenerator)
  _equal(np.array(generator.num_anchors_per_location()),
         g['multiscale_num_anchors_per_location'])
  shapes = [tuple(int(v) for v in s) for s in g['multiscale_shapes']]
  anchors_list = generator.generate(shapes)
  for level, anchors in zip(range(2, 7), anchors_list):
    _close(anchors.get(), g['multiscale_level%d_boxes' % level])
  concatenated = box_list_ops.concatenate(anchors_list)
  _close(concatenated.get(), g['multiscale_concat_boxes'])
  _close(concatenated.get_field('feature_map_index'), g['multiscale_concat_feature_map_index'])


def test_multiscale_anchors_normalized_with_image_size():
  g = _load('anchors.npz')
  generator = multiscale_grid_anchor_generator.MultiscaleGridAnchorGenerator(
      min_level=3, max_level=4, anchor_scale=3.0, aspect_ratios=[1.0, 2.0],
      scales_per_octave=3, normalize_coordinates=True)
  shapes = [tuple(int(v) for v in s) for s in g['normalized_shapes']]
  anchors_list = generator.generate(shapes, im_height=100, im_width=96)
  for i, anchors in enumerate(anchors_list):
    _close(anchors.get(), g['normalized_%d_boxes' % i])
  with pytest.raises(ValueError, match='normalize_coordinates'):
    generator.generate(shapes)


def test_anchor_generator_builder_rejects_other_kinds():
  config = anchor_generator_pb2.AnchorGenerator()
  text_format.Merge('ssd_anchor_generator { num_layers: 6 }', config)
  with pytest.raises(ValueError, match=r'first_stage_anchor_generator\.ssd_anchor_generator'):
    anchor_generator_builder.build(config)
  with pytest.raises(ValueError, match='first_stage_anchor_generator'):
    anchor_generator_builder.build(anchor_generator_pb2.AnchorGenerator())


# ------------------------------------------------------------------------------ box coder
@pytest.mark.parametrize('name,factors', [('scaled', [10.0, 10.0, 5.0, 5.0]),
                                          ('unscaled', None)])
def test_faster_rcnn_box_coder_matches_reference(name, factors):
  g = _load('box_coder.npz')
  coder = faster_rcnn_box_coder.FasterRcnnBoxCoder(scale_factors=factors)
  assert coder.code_size == int(g[name + '_code_size'])
  anchors = box_list.BoxList(tf.constant(g['anchors']))
  encoded = coder.encode(box_list.BoxList(tf.constant(g['boxes'])), anchors)
  assert np.all(np.isfinite(encoded.numpy()))  # degenerate boxes / anchors stay finite
  _close(encoded, g[name + '_encoded'])
  _close(coder.decode(tf.constant(g['codes']), anchors).get(), g[name + '_decoded'])
  _close(coder.decode(encoded, anchors).get(), g[name + '_roundtrip'])


# ------------------------------------------------------------------------------ box_list_ops
def _boxlist(g):
  bl = box_list.BoxList(tf.constant(g['boxes']))
  bl.add_field('scores', tf.constant(g['scores']))
  bl.add_field('classes', tf.constant(g['classes']))
  return bl


def _check_boxlist(g, prefix, bl, fields=('scores', 'classes')):
  _close(bl.get(), g[prefix + '_boxes'])
  assert sorted(bl.get_extra_fields()) == sorted(fields)
  for field in fields:
    _close(bl.get_field(field), g['%s_%s' % (prefix, field)])


def test_box_list_ops_window_ops_match_reference():
  g = _load('box_list_ops.npz')
  window = tf.constant(g['window'])
  _check_boxlist(g, 'clip_filter', box_list_ops.clip_to_window(_boxlist(g), window))
  _check_boxlist(g, 'clip_nofilter', box_list_ops.clip_to_window(
      _boxlist(g), window, filter_nonoverlapping=False))
  pruned, keep = box_list_ops.prune_outside_window(_boxlist(g), window)
  _check_boxlist(g, 'prune_outside', pruned)
  _equal(keep, g['prune_outside_indices'])
  pruned, keep = box_list_ops.prune_completely_outside_window(_boxlist(g), window)
  _check_boxlist(g, 'prune_completely', pruned)
  _equal(keep, g['prune_completely_indices'])
  _check_boxlist(g, 'change_frame', box_list_ops.change_coordinate_frame(
      _boxlist(g), tf.constant([20.0, 30.0, 420.0, 530.0])))


def test_box_list_ops_coordinate_conversions_match_reference():
  g = _load('box_list_ops.npz')
  positive = box_list.BoxList(tf.constant(g['positive_boxes']))
  _check_boxlist(g, 'to_normalized', box_list_ops.to_normalized_coordinates(positive, 480, 640),
                 fields=())
  _check_boxlist(g, 'to_normalized_tensor_size', box_list_ops.to_normalized_coordinates(
      positive, tf.constant(481), tf.constant(639), check_range=False), fields=())
  _check_boxlist(g, 'to_absolute', box_list_ops.to_absolute_coordinates(
      box_list.BoxList(tf.constant(g['normalized_boxes'])), 480, 640), fields=())
  # check_range: normalized input to to_normalized / absolute input to to_absolute fail.
  with pytest.raises(tf.errors.InvalidArgumentError):
    box_list_ops.to_normalized_coordinates(
        box_list.BoxList(tf.constant(g['normalized_boxes'] * 0.5)), 480, 640)
  with pytest.raises(tf.errors.InvalidArgumentError):
    box_list_ops.to_absolute_coordinates(positive, 480, 640)
  _check_boxlist(g, 'scale', box_list_ops.scale(_boxlist(g), 0.5, 2.0))
  _check_boxlist(g, 'scale_height_width', box_list_ops.scale_height_width(_boxlist(g), 0.5, 2.0))


def test_box_list_ops_selection_ops_match_reference():
  g = _load('box_list_ops.npz')
  indicator = tf.constant(g['indicator'])
  _check_boxlist(g, 'boolean_mask_dynamic', box_list_ops.boolean_mask(_boxlist(g), indicator))
  total = int(g['indicator'].sum())
  _check_boxlist(g, 'boolean_mask_static', box_list_ops.boolean_mask(
      _boxlist(g), indicator, use_static_shapes=True, indicator_sum=total))
  _check_boxlist(g, 'boolean_mask_static_larger', box_list_ops.boolean_mask(
      _boxlist(g), indicator, use_static_shapes=True, indicator_sum=total + 3))
  with pytest.raises(ValueError, match='indicator_sum'):
    box_list_ops.boolean_mask(_boxlist(g), indicator, use_static_shapes=True)
  indices = tf.constant(g['indices'])
  _check_boxlist(g, 'gather', box_list_ops.gather(_boxlist(g), indices))
  _check_boxlist(g, 'gather_int64', box_list_ops.gather(
      _boxlist(g), tf.cast(indices, tf.int64), fields=['scores']), fields=('scores',))
  _check_boxlist(g, 'gather_static', box_list_ops.gather(
      _boxlist(g), indices, use_static_shapes=True))
  n = g['boxes'].shape[0]
  padded = box_list_ops.pad_or_clip_box_list(_boxlist(g), n + 6)
  assert padded.num_boxes_static() == n + 6
  _check_boxlist(g, 'pad', padded)
  _check_boxlist(g, 'clip', box_list_ops.pad_or_clip_box_list(_boxlist(g), 9))
  _check_boxlist(g, 'pad_tensor', box_list_ops.pad_or_clip_box_list(_boxlist(g),
                                                                     tf.constant(n + 2)))
  second = box_list.BoxList(tf.constant(g['other']))
  second.add_field('scores', tf.ones([12]))
  second.add_field('classes', tf.zeros([12, 3]))
  _check_boxlist(g, 'concatenate', box_list_ops.concatenate([_boxlist(g), second]))
  _check_boxlist(g, 'sort_descend', box_list_ops.sort_by_field(_boxlist(g), 'scores'))
  _check_boxlist(g, 'sort_ascend', box_list_ops.sort_by_field(
      _boxlist(g), 'scores', order=box_list_ops.SortOrder.ascend))
  _check_boxlist(g, 'prune_small', box_list_ops.prune_small_boxes(_boxlist(g), 60.0))
  pruned, keep = box_list_ops.prune_non_overlapping_boxes(_boxlist(g), second, min_overlap=0.3)
  _check_boxlist(g, 'prune_non_overlapping', pruned)
  _equal(keep, g['prune_non_overlapping_indices'])
  _check_boxlist(g, 'filter_greater_than', box_list_ops.filter_greater_than(_boxlist(g), 0.4))
  _check_boxlist(g, 'nms', box_list_ops.non_max_suppression(_boxlist(g), 0.5, 10))


def test_box_list_ops_pairwise_ops_match_reference():
  g = _load('box_list_ops.npz')
  other = box_list.BoxList(tf.constant(g['other']))
  _close(box_list_ops.area(_boxlist(g)), g['area'])
  heights, widths = box_list_ops.height_width(_boxlist(g))
  _close(heights, g['height'])
  _close(widths, g['width'])
  _close(box_list_ops.intersection(_boxlist(g), other), g['intersection'])
  _close(box_list_ops.iou(_boxlist(g), other), g['iou'])
  _close(box_list_ops.ioa(_boxlist(g), other), g['ioa'])
  _close(box_list_ops.sq_dist(_boxlist(g), other), g['sq_dist'])
  first12 = box_list.BoxList(tf.constant(g['boxes'][:12]))
  _close(box_list_ops.matched_iou(first12, other), g['matched_iou'])
  _close(box_list_ops.matched_intersection(first12, other), g['matched_intersection'])


def test_utils_ops_and_shape_utils_match_reference():
  g = _load('box_list_ops.npz')
  boxes = tf.constant(g['fpn_boxes'])
  _equal(ops.fpn_feature_levels(4, 2, float(g['fpn_image_ratio']), boxes), g['fpn_levels_4_2'])
  _equal(ops.fpn_feature_levels(5, 3, tf.sqrt(tf.cast(800 * 1024, tf.float32)) / 224.0, boxes),
         g['fpn_levels_5_3'])
  _close(ops.matmul_gather_on_zeroth_axis(tf.constant(g['classes']), tf.constant(g['indices'])),
         g['matmul_gather'])
  _close(ops.indices_to_dense_vector(tf.constant(g['indices']), g['boxes'].shape[0],
                                     indices_value=3.0, default_value=-1.0), g['dense_vector'])
  _close(ops.normalized_to_image_coordinates(boxes, tf.constant([2, 480, 640, 3])),
         g['normalized_to_image'])
  tensor = tf.constant(g['pad_clip_input'])
  _close(shape_utils.pad_or_clip_nd(tensor, [8, 4, None]), g['pad_or_clip_nd'])
  _close(shape_utils.pad_or_clip_tensor(tensor, 3), g['pad_or_clip_tensor'])
  four_d = tf.constant(g['four_d'])
  _close(shape_utils.flatten_first_n_dimensions(four_d, 2), g['flatten_first_2'])
  _close(shape_utils.expand_first_dimension(tf.reshape(four_d, [6, 4, 5]), [3, 2]),
         g['expand_first'])
  mapped = shape_utils.static_or_dynamic_map_fn(
      lambda args: [args[0] * 2.0 + tf.reduce_sum(args[1]), args[1] - 1.0],
      [four_d, tensor[:2]])
  _close(mapped[0], g['map_fn_0'])
  _close(mapped[1], g['map_fn_1'])

  # The dynamic (tf.map_fn) path of static_or_dynamic_map_fn and flatten / expand inside a
  # tf.function with an unknown batch size give the same values.
  @tf.function(input_signature=[tf.TensorSpec([None, 3, 4, 5], tf.float32)])
  def dynamic(x):
    flat = shape_utils.flatten_first_n_dimensions(x, 2)
    doubled = shape_utils.static_or_dynamic_map_fn(lambda t: t * 2.0, flat, dtype=tf.float32)
    shape = shape_utils.combined_static_and_dynamic_shape(x)
    return shape_utils.expand_first_dimension(doubled / 2.0, shape[:2])

  _close(dynamic(four_d), g['four_d'])


# ------------------------------------------------------------------------------ matcher
_MATCHER_CASES = ['ties_force', 'ties_noforce', 'ties_force_matmul', 'ties_force_invalid_rows',
                  'ties_negatives_between', 'ties_detection', 'ties_no_threshold', 'no_rows',
                  'random_proposal', 'random_proposal_matmul', 'random_detection']


@pytest.mark.parametrize('name', _MATCHER_CASES)
def test_argmax_matcher_matches_reference(name):
  g = _load('matcher.npz')
  matched, unmatched = (None if np.isnan(v) else float(v) for v in g[name + '_thresholds'])
  negatives_lower, force, matmul = (bool(v) for v in g[name + '_flags'])
  matcher = argmax_matcher.ArgMaxMatcher(
      matched_threshold=matched, unmatched_threshold=unmatched,
      negatives_lower_than_unmatched=negatives_lower, force_match_for_each_row=force,
      use_matmul_gather=matmul)
  valid = g[name + '_valid_rows'] if name + '_valid_rows' in g else None
  match = matcher.match(tf.constant(g[name + '_similarity']),
                        valid_rows=None if valid is None else tf.constant(valid))
  _equal(match.match_results, g[name + '_match_results'])
  _equal(match.matched_column_indices(), g[name + '_matched_column_indices'])
  _equal(match.matched_row_indices(), g[name + '_matched_row_indices'])
  _equal(match.unmatched_column_indices(), g[name + '_unmatched_column_indices'])
  _equal(match.ignored_column_indices(), g[name + '_ignored_column_indices'])
  _equal(match.unmatched_or_ignored_column_indices(),
         g[name + '_unmatched_or_ignored_column_indices'])
  _equal(match.num_matched_rows(), g[name + '_num_matched_rows'])
  rows = g[name + '_similarity'].shape[0]
  row_values = (np.arange(rows * 2, dtype=np.float32).reshape(rows, 2) + 1.0) * 1.5
  _close(match.gather_based_on_match(tf.constant(row_values),
                                     unmatched_value=tf.constant([-1.0, -1.5]),
                                     ignored_value=tf.constant([-2.0, -2.5])),
         g[name + '_gathered'])


def test_argmax_matcher_dynamic_rows_in_tf_function():
  g = _load('matcher.npz')
  matcher = argmax_matcher.ArgMaxMatcher(0.7, 0.3, force_match_for_each_row=True)

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
  def match(similarity):
    return matcher.match(similarity).match_results

  _equal(match(tf.constant(g['ties_force_similarity'])), g['ties_force_match_results'])
  _equal(match(tf.constant(g['no_rows_similarity'])), g['no_rows_match_results'])


# ------------------------------------------------------------------------------ target assigner
_KEYS = ('cls_targets', 'cls_weights', 'reg_targets', 'reg_weights', 'match')


def _gt_boxlists(g):
  return [box_list_ops.to_absolute_coordinates(
      box_list.BoxList(tf.constant(g['gt%d_boxes' % i])), int(g['gt%d_true_shape' % i][0]),
      int(g['gt%d_true_shape' % i][1])) for i in range(2)]


def _gt_weights(g):
  return [tf.constant(g['gt%d_weights' % i]) for i in range(2)]


def _check_targets(g, prefix, results):
  for key, value in zip(_KEYS, results):
    if key == 'match':
      _equal(value, g['%s_%s' % (prefix, key)])
    else:
      _close(value, g['%s_%s' % (prefix, key)])


@pytest.mark.parametrize('prefix,anchors_key,matmul', [
    ('rpn', 'rpn_anchors', False), ('rpn_clipped', 'rpn_anchors_clipped', False),
    ('rpn_matmul', 'rpn_anchors', True)])
def test_proposal_target_assigner_matches_reference(prefix, anchors_key, matmul):
  g = _load('target_assigner.npz')
  assigner = target_assigner.create_target_assigner('FasterRCNN', 'proposal',
                                                    use_matmul_gather=matmul)
  results = target_assigner.batch_assign_targets(
      target_assigner=assigner, anchors_batch=box_list.BoxList(tf.constant(g[anchors_key])),
      gt_box_batch=_gt_boxlists(g), gt_class_targets_batch=2 * [None],
      gt_weights_batch=_gt_weights(g))
  _check_targets(g, prefix, results)


def test_proposal_target_assigner_in_tf_function_with_unknown_anchor_count():
  g = _load('target_assigner.npz')
  assigner = target_assigner.create_target_assigner('FasterRCNN', 'proposal')

  @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)] +
               [tf.TensorSpec([None, 4], tf.float32)] * 2 + [tf.TensorSpec([None], tf.float32)] * 2)
  def assign(anchors, boxes0, boxes1, weights0, weights1):
    gts = [box_list_ops.to_absolute_coordinates(
        box_list.BoxList(b), int(g['gt%d_true_shape' % i][0]), int(g['gt%d_true_shape' % i][1]))
           for i, b in enumerate((boxes0, boxes1))]
    return target_assigner.batch_assign_targets(
        target_assigner=assigner, anchors_batch=box_list.BoxList(anchors), gt_box_batch=gts,
        gt_class_targets_batch=2 * [None], gt_weights_batch=[weights0, weights1])

  results = assign(tf.constant(g['rpn_anchors']), tf.constant(g['gt0_boxes']),
                   tf.constant(g['gt1_boxes']), *_gt_weights(g))
  _check_targets(g, 'rpn', results)


def test_detection_target_assigner_matches_reference():
  g = _load('target_assigner.npz')
  num_classes = int(g['num_classes'])
  assigner = target_assigner.create_target_assigner('FasterRCNN', 'detection')
  results = target_assigner.batch_assign_targets(
      target_assigner=assigner,
      anchors_batch=[box_list.BoxList(tf.constant(g['proposals%d' % i])) for i in range(2)],
      gt_box_batch=_gt_boxlists(g),
      gt_class_targets_batch=[tf.constant(g['classes_with_background%d' % i]) for i in range(2)],
      unmatched_class_label=tf.constant([1] + num_classes * [0], dtype=tf.float32),
      gt_weights_batch=_gt_weights(g))
  _check_targets(g, 'det', results)


def test_mask_targets_assigned_as_class_targets_match_reference():
  g = _load('target_assigner.npz')
  mask_size = g['gt0_masks'].shape[1]
  image_shape = tf.constant([2, mask_size, mask_size, 3])
  assigner = target_assigner.create_target_assigner('FasterRCNN', 'detection')
  results = target_assigner.batch_assign_targets(
      target_assigner=assigner,
      anchors_batch=[box_list.BoxList(tf.constant(g['proposals%d' % i])) for i in range(2)],
      gt_box_batch=_gt_boxlists(g),
      gt_class_targets_batch=[tf.constant(g['gt%d_masks' % i]) for i in range(2)],
      unmatched_class_label=tf.zeros(image_shape[1:3], dtype=tf.float32),
      gt_weights_batch=_gt_weights(g))
  _check_targets(g, 'mask', results)


def test_mask_targets_in_tf_function_with_dynamic_shapes():
  # As in the meta-arch's loss: the unmatched mask label is built from a runtime image shape.
  g = _load('target_assigner.npz')
  assigner = target_assigner.create_target_assigner('FasterRCNN', 'detection')
  spec = tf.TensorSpec

  @tf.function(input_signature=[spec([None, 4], tf.float32), spec([None, 4], tf.float32),
                                spec([None, None, None], tf.float32), spec([4], tf.int32),
                                spec([None], tf.float32)])
  def assign(proposals, boxes, masks, image_shape, weights):
    gt = box_list_ops.to_absolute_coordinates(
        box_list.BoxList(boxes), int(g['gt0_true_shape'][0]), int(g['gt0_true_shape'][1]))
    return target_assigner.batch_assign_targets(
        target_assigner=assigner, anchors_batch=[box_list.BoxList(proposals)], gt_box_batch=[gt],
        gt_class_targets_batch=[masks], unmatched_class_label=tf.zeros(image_shape[1:3]),
        gt_weights_batch=[weights])

  mask_size = g['gt0_masks'].shape[1]
  results = assign(tf.constant(g['proposals0']), tf.constant(g['gt0_boxes']),
                   tf.constant(g['gt0_masks']), tf.constant([1, mask_size, mask_size, 3]),
                   tf.constant(g['gt0_weights']))
  for key, value in zip(_KEYS, results):
    expected = g['mask_%s' % key][:1]
    (_equal if key == 'match' else _close)(value, expected)


def test_assign_without_groundtruth_matches_reference():
  g = _load('target_assigner.npz')
  num_classes = int(g['num_classes'])
  results = target_assigner.batch_assign_targets(
      target_assigner=target_assigner.create_target_assigner('FasterRCNN', 'proposal'),
      anchors_batch=box_list.BoxList(tf.constant(g['rpn_anchors'][:50])),
      gt_box_batch=[box_list.BoxList(tf.zeros([0, 4]))], gt_class_targets_batch=[None],
      gt_weights_batch=[tf.zeros([0])])
  _check_targets(g, 'empty_rpn', results)
  results = target_assigner.batch_assign_targets(
      target_assigner=target_assigner.create_target_assigner('FasterRCNN', 'detection'),
      anchors_batch=[box_list.BoxList(tf.constant(g['proposals0']))],
      gt_box_batch=[box_list.BoxList(tf.zeros([0, 4]))],
      gt_class_targets_batch=[tf.zeros([0, num_classes + 1])],
      unmatched_class_label=tf.constant([1] + num_classes * [0], dtype=tf.float32),
      gt_weights_batch=[tf.zeros([0])])
  _check_targets(g, 'empty_det', results)


def test_single_assign_defaults_match_reference():
  g = _load('target_assigner.npz')
  assigner = target_assigner.create_target_assigner('FasterRCNN', 'detection')
  gt = _gt_boxlists(g)[1]
  results = assigner.assign(box_list.BoxList(tf.constant(g['proposals1'])), gt)
  _check_targets(g, 'single', results)
  _close(gt.get_field('scores'), g['single_gt_scores'])


def test_target_assigner_rejects_mismatched_unmatched_label():
  g = _load('target_assigner.npz')
  assigner = target_assigner.create_target_assigner('FasterRCNN', 'detection')
  with pytest.raises(ValueError, match='Unequal shapes'):
    assigner.assign(box_list.BoxList(tf.constant(g['proposals1'])), _gt_boxlists(g)[1],
                    tf.constant(g['classes_with_background1']),
                    unmatched_class_label=tf.constant([1.0, 0.0]))
  with pytest.raises(ValueError, match='reference'):
    target_assigner.create_target_assigner('FasterRCNN', 'bogus')


# ------------------------------------------------------------------------------ samplers
def _sampler_case(g, name):
  batch_size = int(g[name + '_batch_size'])
  sampler = bpns.BalancedPositiveNegativeSampler(
      positive_fraction=float(g[name + '_positive_fraction']),
      is_static=bool(g[name + '_is_static']))
  return (sampler, tf.constant(g[name + '_indicator']),
          None if batch_size < 0 else batch_size, tf.constant(g[name + '_labels']))


def _case_names(mode):
  g = _load('sampler.npz')
  return [str(n) for n in g['case_names'] if str(g[str(n) + '_mode']) == mode]


@pytest.mark.parametrize('name', _case_names('exact'))
def test_sampler_taking_every_candidate_matches_reference(name):
  g = _load('sampler.npz')
  sampler, indicator, batch_size, labels = _sampler_case(g, name)
  _equal(sampler.subsample(indicator, batch_size, labels), g[name + '_sampled'])


@pytest.mark.parametrize('name', _case_names('fixed'))
def test_sampler_with_fixed_shuffle_matches_reference(name, monkeypatch):
  fixed_order = _fixed_shuffle_module().fixed_order
  monkeypatch.setattr(minibatch_sampler, '_shuffle',
                      lambda t: tf.gather(t, fixed_order(int(tf.shape(t)[0]))))
  monkeypatch.setattr(bpns, '_permutation', lambda n: tf.constant(fixed_order(int(n))))
  g = _load('sampler.npz')
  sampler, indicator, batch_size, labels = _sampler_case(g, name)
  _equal(sampler.subsample(indicator, batch_size, labels), g[name + '_sampled'])


@pytest.mark.parametrize('name', _case_names('seeds'))
def test_random_sampler_counts_match_reference(name):
  g = _load('sampler.npz')
  sampler, indicator, batch_size, labels = _sampler_case(g, name)
  ind, lab = g[name + '_indicator'], g[name + '_labels']
  for seed, expected in zip(g['seeds'], g[name + '_counts']):
    tf.random.set_seed(int(seed))
    sampled = sampler.subsample(indicator, batch_size, labels).numpy()
    counts = [int((sampled & lab).sum()), int((sampled & ~lab).sum()),
              int((sampled & ~ind).sum())]
    assert counts == expected.tolist(), (seed, counts, expected)


def test_static_sampler_in_tf_function():
  # The static sampler is meant for fixed shapes; check it traces and keeps batch_size entries.
  g = _load('sampler.npz')
  name = 'random_static'
  sampler, indicator, batch_size, labels = _sampler_case(g, name)
  sample = tf.function(lambda i, l: sampler.subsample(i, batch_size, l))
  sampled = sample(indicator, labels).numpy()
  assert sampled.sum() == batch_size
  assert not (sampled & ~g[name + '_indicator']).any()
