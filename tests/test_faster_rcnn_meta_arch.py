"""Faster R-CNN / Mask R-CNN meta-architecture: output shapes/dtypes per stage, mask-loss selectivity,
graph mode."""

import numpy as np
import pytest
import tensorflow as tf

from object_detection.meta_architectures import faster_rcnn_losses
from tests import mask_rcnn_test_utils as utils

_B, _SIZE, _K = 2, 64, 3


def _groundtruth(model):
  model.provide_groundtruth(
      [tf.constant([[0.1, 0.1, 0.6, 0.5]]), tf.constant([[0.2, 0.2, 0.9, 0.7], [0.0, 0.5, 0.4, 1.0]])],
      [tf.constant([[0.0, 1.0, 0.0]]), tf.constant([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])],
      [tf.ones([1, _SIZE, _SIZE]), tf.ones([2, _SIZE, _SIZE], tf.uint8)])


@pytest.mark.parametrize('stages', [1, 2, 3])
def test_predict_loss_postprocess_shapes(stages):
  images = tf.random.uniform([_B, _SIZE, _SIZE, 3], 0, 255)
  train = utils.tiny_model(stages, is_training=True, num_classes=_K, max_proposals=20,
                           second_stage_batch_size=8)
  pre, shapes = train.preprocess(images)
  assert pre.dtype == tf.float32 and pre.shape == (_B, _SIZE, _SIZE, 3)
  assert shapes.dtype == tf.int32 and shapes.numpy().tolist() == [[_SIZE, _SIZE, 3]] * _B
  _groundtruth(train)
  pred = train.predict(pre, shapes)
  assert pred['rpn_box_encodings'].shape[-1] == 4
  losses = train.loss(pred, shapes)
  expected = {'Loss/RPNLoss/localization_loss', 'Loss/RPNLoss/objectness_loss'}
  if stages >= 2:
    expected |= {'Loss/BoxClassifierLoss/localization_loss', 'Loss/BoxClassifierLoss/classification_loss'}
  if stages == 3:
    expected.add('Loss/BoxClassifierLoss/mask_loss')
    # Masks are predicted for the positive ROIs only: at most 8 * 0.25 (the balance fraction) = 2.
    assert pred['mask_predictions'].shape == (_B, 2, _K, 14, 14)
    assert pred['mask_rois'].shape == (_B, 2, 4)
    classes = pred['sampled_gt_classes'].numpy()
    for i in range(_B):  # every positive sampled ROI is among the mask ROIs
      assert (pred['mask_gt_classes'].numpy()[i] > 0).sum() == min((classes[i] > 0).sum(), 2)
  assert set(losses) == expected
  for v in losses.values():
    assert v.shape == () and v.dtype == tf.float32 and np.isfinite(v.numpy())

  infer = utils.tiny_model(stages, is_training=False, num_classes=_K, max_proposals=20)
  pre, shapes = infer.preprocess(images)
  pred = infer.predict(pre, shapes)
  det = infer.postprocess(pred, shapes)
  # Eval losses: an inference-mode model scores all proposals / detections (no sampling).
  _groundtruth(infer)
  eval_losses = infer.loss(pred, shapes)
  assert set(eval_losses) == expected
  assert all(np.isfinite(v.numpy()) for v in eval_losses.values())
  max_det = 20 if stages == 1 else 10
  num_scores = 2 if stages == 1 else _K + 1
  assert det['detection_boxes'].shape == (_B, max_det, 4)
  assert det['detection_scores'].shape == (_B, max_det)
  assert det['detection_classes'].shape == (_B, max_det)
  assert det['num_detections'].shape == (_B,)
  assert det['detection_multiclass_scores'].shape == (_B, max_det, num_scores)
  assert det['raw_detection_boxes'].shape == (_B, 20, 4)
  assert det['raw_detection_scores'].shape == (_B, 20, num_scores)
  for v in det.values():
    assert v.dtype == tf.float32
  boxes = det['detection_boxes'].numpy()
  assert boxes.min() >= 0.0 and boxes.max() <= 1.0
  classes = det['detection_classes'].numpy()
  for i in range(_B):
    n = int(det['num_detections'][i])
    # Label-map ids: 1-based, <= num_classes for real detections, 0 for padding.
    assert np.all((classes[i, :n] >= 1) & (classes[i, :n] <= _K))
    assert np.all(classes[i, n:] == 0)
  if stages == 3:
    masks = det['detection_masks'].numpy()
    assert masks.shape == (_B, max_det, 14, 14)
    assert masks.min() >= 0.0 and masks.max() <= 1.0
  else:
    assert 'detection_masks' not in det


def test_predict_and_loss_run_in_tf_function():
  model = utils.tiny_model(3, is_training=True, num_classes=_K, second_stage_batch_size=8)
  images = tf.random.uniform([_B, _SIZE, _SIZE, 3], 0, 255)

  @tf.function
  def step(images):
    pre, shapes = model.preprocess(images)
    _groundtruth(model)
    return model.loss(model.predict(pre, shapes), shapes)

  losses = step(images)
  assert len(losses) == 5 and all(np.isfinite(v.numpy()) for v in losses.values())


def _mask_case(agnostic):
  rng = np.random.RandomState(0)
  b, n, k, s = 1, 4, 1 if agnostic else 3, 6
  logits = tf.constant(rng.randn(b, n, k, s, s).astype(np.float32))
  rois = tf.constant([[[0, 0, 16, 16], [8, 8, 30, 30], [0, 0, 32, 32], [4, 4, 20, 20]]], tf.float32)
  classes = tf.constant([[2, 0, 3, 0]])  # ROIs 0 and 2 positive (label ids 2 and 3), 1 and 3 negative
  indices = tf.constant([[0, -1, 1, -1]])
  gt_masks = tf.constant((rng.rand(1, 2, 32, 32) > 0.5).astype(np.float32))
  return logits, rois, classes, indices, gt_masks


@pytest.mark.parametrize('agnostic', [False, True])
def test_mask_loss_uses_only_positive_rois_and_matched_class(agnostic):
  logits, rois, classes, indices, gt_masks = _mask_case(agnostic)
  base = float(faster_rcnn_losses.mask_loss(logits, rois, classes, indices, gt_masks))
  arr = logits.numpy()

  def loss_with(roi, channel):
    changed = arr.copy()
    changed[0, roi, channel] += 5.0
    return float(faster_rcnn_losses.mask_loss(tf.constant(changed), rois, classes, indices, gt_masks))

  # Negative ROIs never count, whatever their logits.
  assert loss_with(1, 0) == pytest.approx(base, abs=1e-6)
  assert loss_with(3, arr.shape[2] - 1) == pytest.approx(base, abs=1e-6)
  matched = 0 if agnostic else 1  # ROI 0 matched label id 2 -> channel 1
  assert abs(loss_with(0, matched) - base) > 1e-3
  if not agnostic:
    # Other class channels of a positive ROI never count.
    assert loss_with(0, 0) == pytest.approx(base, abs=1e-6)
    assert loss_with(0, 2) == pytest.approx(base, abs=1e-6)
    assert abs(loss_with(2, 2) - base) > 1e-3


def test_mask_targets_crop_the_roi_region_of_the_matched_mask():
  gt = np.zeros([1, 2, 32, 32], np.float32)
  gt[0, 1, :16, :] = 1.0  # top half of mask 1
  rois = tf.constant([[[0, 0, 16, 32], [16, 0, 32, 32]]], tf.float32)
  targets = faster_rcnn_losses.mask_targets(rois, tf.constant([[1, 1]]), tf.constant(gt), 8, 8).numpy()
  assert targets[0, 0].mean() > 0.9 and targets[0, 1].mean() < 0.1


def test_restore_from_objects():
  model = utils.tiny_model(3, is_training=False, num_classes=_K)
  model(tf.zeros([1, _SIZE, _SIZE, 3]))
  assert set(model.restore_from_objects('classification')) == {'backbone'}
  assert set(model.restore_from_objects('detection')) == {'model'}
  assert model.restore_from_objects('full')['model'] is model
  with pytest.raises(ValueError, match='fine_tune_checkpoint_type'):
    model.restore_from_objects('bogus')


def test_training_model_builds_variables_without_groundtruth():
  model = utils.tiny_model(3, is_training=True, num_classes=_K)
  model(tf.zeros([1, _SIZE, _SIZE, 3]))
  names = {v.name.split('/')[0] for v in model.trainable_variables}
  assert len(model.trainable_variables) > 10, names
  # Every variable exists now, so a later train step creates none (checkpoints restore fully).
  before = len(model.trainable_variables)
  _groundtruth(model)
  pre, shapes = model.preprocess(tf.zeros([_B, _SIZE, _SIZE, 3]))
  model.loss(model.predict(pre, shapes), shapes)
  assert len(model.trainable_variables) == before


def test_images_without_groundtruth_give_finite_losses():
  model = utils.tiny_model(3, is_training=True, num_classes=_K, second_stage_batch_size=8)
  pre, shapes = model.preprocess(tf.random.uniform([_B, _SIZE, _SIZE, 3], 0, 255))
  model.provide_groundtruth([tf.zeros([0, 4]), tf.zeros([0, 4])], [tf.zeros([0, _K]), tf.zeros([0, _K])],
                            [tf.zeros([0, _SIZE, _SIZE]), tf.zeros([0, _SIZE, _SIZE])])
  losses = model.loss(model.predict(pre, shapes), shapes)
  assert all(np.isfinite(v.numpy()) for v in losses.values())
  # Nothing to localize or segment: those losses are exactly zero; objectness / classification are not.
  assert float(losses['Loss/RPNLoss/localization_loss']) == 0.0
  assert float(losses['Loss/BoxClassifierLoss/mask_loss']) == 0.0
  assert float(losses['Loss/RPNLoss/objectness_loss']) > 0.0
