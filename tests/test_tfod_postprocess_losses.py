"""Parity of losses, NMS post-processing, builders and ROI crop ops with the TF OD API.

Golden values come from the TF OD API reference run by tools/tfod_golden/postprocess_losses.py
(fixtures in tests/testdata/tfod_golden/postprocess_losses/); these tests run this project's
implementation on the same inputs and compare every output (order and padding included).
Tolerance 1e-6 absolute / 1e-5 relative: pure math with the same TF ops.
"""

import glob
import json
import os

import numpy as np
import pytest
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
from object_detection.utils import spatial_transform_ops as spatial_ops

GOLDEN = os.path.join(os.path.dirname(__file__), 'testdata', 'tfod_golden', 'postprocess_losses')
TOL = dict(rtol=1e-5, atol=1e-6)


def _load(name):
  return np.load(os.path.join(GOLDEN, name))


def _close(actual, expected, what):
  actual = np.asarray(actual.numpy() if hasattr(actual, 'numpy') else actual)
  assert actual.shape == expected.shape, '%s: shape %s != %s' % (what, actual.shape,
                                                                 expected.shape)
  np.testing.assert_allclose(actual, expected, err_msg=what, **TOL)


# ------------------------------------------------------------------------------------------
# Losses.
# ------------------------------------------------------------------------------------------


def _loss_cases(d):
  ci = tf.constant(d['class_indices'])
  mask = tf.constant(d['losses_mask'])
  clean = np.nan_to_num(d['loc_target'])
  return {
      'smooth_l1': (losses.WeightedSmoothL1LocalizationLoss(), 'loc_pred', clean,
                    'loc_weights', {}),
      'smooth_l1_delta': (losses.WeightedSmoothL1LocalizationLoss(delta=0.5), 'loc_pred', clean,
                          'loc_weights', dict(losses_mask=mask)),
      'smooth_l1_nan': (losses.WeightedSmoothL1LocalizationLoss(), 'loc_pred', 'loc_target',
                        'loc_weights', dict(ignore_nan_targets=True)),
      'softmax': (losses.WeightedSoftmaxClassificationLoss(), 'logits', 'onehot',
                  'cls_weights_one', {}),
      'softmax_scale_mask': (losses.WeightedSoftmaxClassificationLoss(logit_scale=2.5), 'logits',
                             'onehot', 'cls_weights_full', dict(losses_mask=mask)),
      'logits_softmax': (losses.WeightedSoftmaxClassificationAgainstLogitsLoss(), 'logits',
                         'target_logits', 'cls_weights_full', {}),
      'logits_softmax_scale_mask': (
          losses.WeightedSoftmaxClassificationAgainstLogitsLoss(logit_scale=3.0), 'logits',
          'target_logits', 'cls_weights_one', dict(losses_mask=mask)),
      'sigmoid': (losses.WeightedSigmoidClassificationLoss(), 'logits', 'soft_targets',
                  'cls_weights_full', {}),
      'sigmoid_mask_ci': (losses.WeightedSigmoidClassificationLoss(), 'logits', 'onehot',
                          'cls_weights_one', dict(losses_mask=mask, class_indices=ci)),
      'focal': (losses.SigmoidFocalClassificationLoss(), 'logits', 'onehot', 'cls_weights_full',
                {}),
      'focal_noalpha': (losses.SigmoidFocalClassificationLoss(gamma=1.5, alpha=None), 'logits',
                        'soft_targets', 'cls_weights_one', dict(losses_mask=mask)),
      'focal_gamma0_ci': (losses.SigmoidFocalClassificationLoss(gamma=0.0, alpha=0.75),
                          'logits', 'onehot', 'cls_weights_full', dict(class_indices=ci)),
  }


def test_losses_match_reference():
  d = _load('losses.npz')
  cases = _loss_cases(d)
  assert sorted('out_' + name for name in cases) == sorted(k for k in d.files
                                                           if k.startswith('out_'))
  for name, (loss, pred, target, weights, kwargs) in cases.items():
    target = d[target] if isinstance(target, str) else target
    out = loss(tf.constant(d[pred]), tf.constant(target), weights=tf.constant(d[weights]),
               **kwargs)
    _close(out, d['out_' + name], name)
  # The masked image really contributes nothing, and zero weights give zero loss.
  out = cases['softmax_scale_mask'][0](tf.constant(d['logits']), tf.constant(d['onehot']),
                                       weights=tf.constant(d['cls_weights_full']),
                                       losses_mask=tf.constant(d['losses_mask']))
  assert np.all(out.numpy()[1] == 0) and np.any(out.numpy()[0] != 0)


def test_loss_ignores_nan_targets_only_when_asked():
  d = _load('losses.npz')
  loss = losses.WeightedSmoothL1LocalizationLoss()
  out = loss(tf.constant(d['loc_pred']), tf.constant(d['loc_target']),
             weights=tf.ones_like(tf.constant(d['loc_weights'])))
  assert np.isnan(out.numpy()[1, 3]) and np.isnan(out.numpy()[2, 7])


def _hem_boxlists(d):
  return [box_list.BoxList(tf.constant(d['boxes'][j])) for j in range(2)]


def test_hard_example_miner_matches_reference():
  d = _load('hard_example_miner.npz')
  configs = json.loads(str(d['configs']))
  for i, config in enumerate(configs):
    for with_match in (False, True):
      miner = losses.HardExampleMiner(**config)
      matches = ([matcher.Match(tf.constant(d['match'][j])) for j in range(2)]
                 if with_match else None)
      loc_sum, cls_sum = miner(tf.constant(d['loc']), tf.constant(d['cls']), _hem_boxlists(d),
                               matches)
      key = 'case%d_%s' % (i, 'match' if with_match else 'nomatch')
      _close(loc_sum, d[key + '_loc'], key + ' loc')
      _close(cls_sum, d[key + '_cls'], key + ' cls')
      if key + '_npos' in d.files:
        np.testing.assert_array_equal([v.numpy() for v in miner._num_positives_list],
                                      d[key + '_npos'])
        np.testing.assert_array_equal([v.numpy() for v in miner._num_negatives_list],
                                      d[key + '_nneg'])
      else:
        assert miner._num_positives_list is None
      miner.summarize()  # No default writer: must be a silent no-op.


def test_hard_example_miner_subsample_selection_matches_reference():
  d = _load('hard_example_miner.npz')
  miner = losses.HardExampleMiner()
  for ratio, min_neg in [(1.0, 0), (2.0, 0), (0.5, 3), (3.0, 1)]:
    sel, npos, nneg = miner._subsample_selection_to_desired_neg_pos_ratio(
        tf.constant(d['subsample_indices']), matcher.Match(tf.constant(d['match'][0])), ratio,
        min_neg)
    key = 'subsample_%g_%d' % (ratio, min_neg)
    np.testing.assert_array_equal(sel.numpy(), d[key + '_sel'])
    assert npos.numpy() == d[key + '_npos'] and nneg.numpy() == d[key + '_nneg']


def test_hard_example_miner_rejects_mismatched_inputs():
  d = _load('hard_example_miner.npz')
  miner = losses.HardExampleMiner()
  with pytest.raises(ValueError, match='same number of images'):
    miner(tf.constant(d['loc']), tf.constant(d['cls']), _hem_boxlists(d)[:1])
  with pytest.raises(ValueError, match='match_list'):
    miner(tf.constant(d['loc']), tf.constant(d['cls']), _hem_boxlists(d),
          [matcher.Match(tf.constant(d['match'][0]))])


# ------------------------------------------------------------------------------------------
# NMS.
# ------------------------------------------------------------------------------------------

NMS_CASES = sorted(os.path.basename(p)[4:-4]
                   for p in glob.glob(os.path.join(GOLDEN, 'nms_*.npz'))
                   if not p.endswith('nms_single_image.npz'))


def _nms_call(d):
  call = {key[3:]: tf.constant(d[key]) for key in d.files
          if key.startswith('in_') and not key.startswith('in_af_')}
  fields = {key[6:]: tf.constant(d[key]) for key in d.files if key.startswith('in_af_')}
  if fields:
    call['additional_fields'] = fields
  call.update(json.loads(str(d['kwargs'])))
  return call


def _check_nms_outputs(outputs, d, name):
  boxes, scores, classes, masks, extra, num = outputs
  np.testing.assert_array_equal(num.numpy(), d['out_num'], err_msg=name + ' num_detections')
  _close(boxes, d['out_boxes'], name + ' boxes')
  _close(scores, d['out_scores'], name + ' scores')
  _close(classes, d['out_classes'], name + ' classes')
  assert (masks is not None) == bool(d['out_has_masks']), name
  assert (extra is not None) == bool(d['out_has_fields']), name
  if masks is not None:
    _close(masks, d['out_masks'], name + ' masks')
  expected_fields = sorted(k[7:] for k in d.files if k.startswith('out_af_'))
  assert sorted(extra or {}) == expected_fields, name
  for key in expected_fields:
    _close(extra[key], d['out_af_' + key], name + ' ' + key)


def test_nms_fixture_cases_present():
  assert {'first_stage', 'first_stage_static', 'first_stage_partitioned', 'second_stage',
          'second_stage_thresh', 'second_stage_static', 'second_stage_agnostic',
          'second_stage_soft', 'combined'} <= set(NMS_CASES)


@pytest.mark.parametrize('name', NMS_CASES)
def test_batch_multiclass_nms_matches_reference(name):
  d = _load('nms_%s.npz' % name)
  _check_nms_outputs(post_processing.batch_multiclass_non_max_suppression(**_nms_call(d)), d,
                     name)


@pytest.mark.parametrize('name,dynamic_batch', [('first_stage_partitioned', False),
                                                ('second_stage', True)])
def test_batch_multiclass_nms_in_tf_function_matches_reference(name, dynamic_batch):
  """Graph mode, and (dynamic_batch) an unknown batch size, which goes through tf.map_fn."""
  d = _load('nms_%s.npz' % name)
  call = _nms_call(d)
  tensors = {k: v for k, v in call.items() if isinstance(v, (tf.Tensor, dict))}
  options = {k: v for k, v in call.items() if k not in tensors}
  signature = None
  if dynamic_batch:
    signature = [tf.nest.map_structure(
        lambda t: tf.TensorSpec([None] + t.shape[1:].as_list(), t.dtype), tensors)]

  @tf.function(input_signature=signature)
  def run(tensors):
    return post_processing.batch_multiclass_non_max_suppression(**tensors, **options)

  outputs = run(tensors)
  _check_nms_outputs(outputs, d, name + ' (tf.function)')
  static_boxes_shape = run.get_concrete_function(tensors).structured_outputs[0].shape
  assert static_boxes_shape.as_list()[1:] == list(d['out_boxes'].shape[1:])


def test_multiclass_nms_single_image_matches_reference():
  d = _load('nms_single_image.npz')
  for name in ['plain', 'capped', 'padded']:
    result, num = post_processing.multiclass_non_max_suppression(
        tf.constant(d['in_boxes']), tf.constant(d['in_scores']),
        **json.loads(str(d['kwargs_' + name])))
    assert isinstance(result, box_list.BoxList)
    assert num.numpy() == d[name + '_num'], name
    _close(result.get(), d[name + '_boxes'], name + ' boxes')
    _close(result.get_field('scores'), d[name + '_scores'], name + ' scores')
    _close(result.get_field('classes'), d[name + '_classes'], name + ' classes')


def test_nms_argument_errors():
  d = _load('nms_second_stage.npz')
  call = _nms_call(d)
  with pytest.raises(ValueError, match='clip_window'):
    post_processing.batch_multiclass_non_max_suppression(
        **dict(call, clip_window=None, change_coordinate_frame=True))
  with pytest.raises(ValueError, match='use_combined_nms does not support masks'):
    post_processing.batch_multiclass_non_max_suppression(
        **dict(call, change_coordinate_frame=False, num_valid_boxes=None,
               use_combined_nms=True))
  with pytest.raises(ValueError, match='soft_nms_sigma'):
    post_processing.batch_multiclass_non_max_suppression(
        **dict(call, use_static_shapes=True, soft_nms_sigma=0.5))
  with pytest.raises(ValueError, match='max_classes_per_detection'):
    post_processing.batch_multiclass_non_max_suppression(
        **dict(call, use_class_agnostic_nms=True, max_classes_per_detection=2))
  with pytest.raises(ValueError, match='third dimension of boxes'):
    post_processing.batch_multiclass_non_max_suppression(
        **dict(call, boxes=call['boxes'][:, :, :2]))


# ------------------------------------------------------------------------------------------
# Builders.
# ------------------------------------------------------------------------------------------


def _builders_golden():
  with open(os.path.join(GOLDEN, 'builders.json')) as f:
    return json.load(f)


def _attributes(obj):
  return {key: value for key, value in sorted(vars(obj).items())
          if isinstance(value, (int, float, str, bool, type(None)))}


def _assert_attributes(actual, expected, what):
  assert sorted(actual) == sorted(expected), what
  for key, value in expected.items():
    if isinstance(value, float):
      assert actual[key] == pytest.approx(value, rel=1e-6), (what, key)
    else:
      assert actual[key] == value, (what, key)


def test_post_processing_builder_matches_reference():
  golden = _builders_golden()['post_processing']
  converted = _load('score_converters.npz')
  logits = tf.constant(converted['logits'])
  for name, expected in golden.items():
    config = text_format.Parse(expected['text'], post_processing_pb2.PostProcessing())
    nms_fn, converter = post_processing_builder.build(config)
    assert nms_fn.func is post_processing.batch_multiclass_non_max_suppression
    assert nms_fn.func.__name__ == expected['nms_func']
    _assert_attributes(nms_fn.keywords, expected['nms_keywords'], name)
    assert converter.__name__ == expected['converter_name']
    _close(converter(logits), converted['converted_' + name], name + ' converter')


def test_post_processing_builder_errors():
  bad = {
      'batch_non_max_suppression { iou_threshold: 1.5 }': 'iou_threshold',
      'batch_non_max_suppression { max_detections_per_class: 200 }': 'max_detections_per_class',
      'batch_non_max_suppression { soft_nms_sigma: -1 }': 'soft_nms_sigma',
      'batch_non_max_suppression { use_combined_nms: true use_class_agnostic_nms: true }':
          'use_combined_nms',
      'calibration_config { temperature_scaling_calibration { scaler: 2 } }':
          'calibration_config',
      'logit_scale: 0': 'logit_scale',
  }
  for text, field in bad.items():
    with pytest.raises(ValueError, match=field):
      post_processing_builder.build(text_format.Parse(text, post_processing_pb2.PostProcessing()))
  with pytest.raises(ValueError, match='PostProcessing'):
    post_processing_builder.build(losses_pb2.Loss())


def test_losses_builder_matches_reference():
  golden = _builders_golden()
  for name, expected in golden['classification_loss'].items():
    loss = losses_builder.build_faster_rcnn_classification_loss(
        text_format.Parse(expected['text'], losses_pb2.ClassificationLoss()))
    assert type(loss).__name__ == expected['class'], name
    _assert_attributes(_attributes(loss), expected['attributes'], name)
  for name, expected in golden['hard_example_miner'].items():
    miner = losses_builder.build_hard_example_miner(
        text_format.Parse(expected['text'], losses_pb2.HardExampleMiner()), 0.25, 0.75)
    assert isinstance(miner, losses.HardExampleMiner)
    _assert_attributes(_attributes(miner), expected['attributes'], name)


def test_losses_builder_rejects_unsupported_classification_losses():
  for text in ['bootstrapped_sigmoid { alpha: 0.5 }',
               'penalty_reduced_logistic_focal_loss { alpha: 2 beta: 4 }',
               'weighted_dice_classification_loss { }']:
    with pytest.raises(ValueError, match='second_stage_classification_loss'):
      losses_builder.build_faster_rcnn_classification_loss(
          text_format.Parse(text, losses_pb2.ClassificationLoss()))
  with pytest.raises(ValueError, match='second_stage_classification_loss'):
    losses_builder.build_faster_rcnn_classification_loss(losses_pb2.LocalizationLoss())


# ------------------------------------------------------------------------------------------
# Crop ops.
# ------------------------------------------------------------------------------------------


def test_crop_ops_match_reference():
  d = _load('crops.npz')
  levels = [tf.constant(d['level%d' % i]) for i in range(4)]
  boxes = tf.constant(d['boxes'])
  box_levels = tf.constant(d['box_levels'])
  crop = [7, 5]
  results = {
      'native_single': spatial_ops.multilevel_native_crop_and_resize(levels[:1], boxes, None,
                                                                     crop),
      'native_multi': spatial_ops.multilevel_native_crop_and_resize(levels, boxes, box_levels,
                                                                    crop),
      'native_one_level_explicit': spatial_ops.multilevel_native_crop_and_resize(
          levels[:1], boxes, tf.zeros_like(box_levels), crop),
      'native_crop_and_resize': spatial_ops.native_crop_and_resize(levels[1], boxes, [3, 4]),
      'matmul_single': spatial_ops.multilevel_matmul_crop_and_resize(levels[:1], boxes, None,
                                                                     crop),
      'matmul_multi': spatial_ops.multilevel_matmul_crop_and_resize(levels, boxes, box_levels,
                                                                    crop),
      'matmul_multi_extrapolate': spatial_ops.multilevel_matmul_crop_and_resize(
          levels, boxes, box_levels, [4, 4], extrapolation_value=-2.5),
      'matmul_crop_and_resize': spatial_ops.matmul_crop_and_resize(levels[0], boxes, [6, 6]),
      'roi_align': spatial_ops.multilevel_roi_align(levels, boxes, box_levels, [4, 3]),
      'roi_align_samples': spatial_ops.multilevel_roi_align(
          levels, boxes, box_levels, [3, 3], num_samples_per_cell_y=2, num_samples_per_cell_x=3,
          extrapolation_value=1.0),
      'roi_align_corners': spatial_ops.multilevel_roi_align(
          levels[1:3], boxes, tf.minimum(box_levels, 1), [2, 5], align_corners=True,
          num_samples_per_cell_y=2),
  }
  for name, value in results.items():
    _close(value, d[name], name)
  # The fixture's FPN levels (from the reference's ops.fpn_feature_levels) use several levels.
  assert len(np.unique(d['box_levels_fpn'])) >= 2


def test_crop_ops_in_tf_function_match_reference():
  d = _load('crops.npz')
  levels = [tf.constant(d['level%d' % i]) for i in range(4)]

  @tf.function
  def run(boxes, box_levels):
    return (spatial_ops.multilevel_native_crop_and_resize(levels, boxes, box_levels, [7, 5]),
            spatial_ops.multilevel_matmul_crop_and_resize(levels, boxes, box_levels, [7, 5]))

  native, matmul = run(tf.constant(d['boxes']), tf.constant(d['box_levels']))
  _close(native, d['native_multi'], 'native_multi (tf.function)')
  _close(matmul, d['matmul_multi'], 'matmul_multi (tf.function)')


def test_mask_target_crop_call_matches_reference():
  d = _load('crops.npz')
  masks = tf.constant(d['gt_masks'])
  boxes = tf.constant(d['mask_boxes'])
  for name, fn in [('native', spatial_ops.multilevel_native_crop_and_resize),
                   ('matmul', spatial_ops.multilevel_matmul_crop_and_resize)]:
    out = fn([masks[..., tf.newaxis]], boxes[:, tf.newaxis], None, [15, 15])
    _close(out, d['mask_targets_' + name], 'mask targets ' + name)
