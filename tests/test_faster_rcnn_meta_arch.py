"""Faster R-CNN / Mask R-CNN meta-architecture on a tiny extractor: the TF OD API's prediction dict and
loss keys per stage, the positive-only mask head giving the TF OD API's loss and gradients, mask targets,
checkpoint objects, the two extensions, graph mode.

Numerical parity with the TF OD API itself is tests/test_tfod_model_golden.py."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection.meta_architectures import faster_rcnn_losses
from object_detection.meta_architectures import faster_rcnn_meta_arch
from tests import mask_rcnn_test_utils as utils

_B, _SIZE, _K = 2, 64, 3


def _groundtruth(model, mask_dtype=tf.float32):
  model.provide_groundtruth(
      [tf.constant([[0.1, 0.1, 0.6, 0.5]]), tf.constant([[0.2, 0.2, 0.9, 0.7], [0.0, 0.5, 0.4, 1.0]])],
      [tf.constant([[0.0, 1.0, 0.0]]), tf.constant([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])],
      [tf.ones([1, _SIZE, _SIZE], mask_dtype), tf.ones([2, _SIZE, _SIZE], mask_dtype)])


def _images(seed=0):
  return tf.random.stateless_uniform([_B, _SIZE, _SIZE, 3], [seed, 1], 0, 255)


def _copy_weights(source, target):
  for s, t in zip(source.variables, target.variables):
    assert s.shape == t.shape, (s.name, t.name)
    t.assign(s)


@pytest.mark.parametrize('stages', [1, 2, 3])
def test_prediction_dict_and_losses_per_stage(stages):
  images = _images()
  train = utils.tiny_model(stages, is_training=True, num_classes=_K, max_proposals=20,
                           second_stage_batch_size=8)
  pre, shapes = train.preprocess(images)
  assert pre.dtype == tf.float32 and pre.shape == (_B, _SIZE, _SIZE, 3)
  assert shapes.numpy().tolist() == [[_SIZE, _SIZE, 3]] * _B
  utils.build_variables(train, images)
  _groundtruth(train)
  pred = train.predict(pre, shapes)
  num_anchors = pred['anchors'].shape[0]
  assert pred['rpn_box_encodings'].shape == (_B, num_anchors, 4)
  assert pred['rpn_objectness_predictions_with_background'].shape == (_B, num_anchors, 2)
  losses = train.loss(pred, shapes)
  expected = {'Loss/RPNLoss/localization_loss', 'Loss/RPNLoss/objectness_loss'}
  if stages >= 2:
    expected |= {'Loss/BoxClassifierLoss/localization_loss',
                 'Loss/BoxClassifierLoss/classification_loss'}
    # Training: second_stage_batch_size (8) proposals per image, flattened as in the TF OD API.
    assert pred['refined_box_encodings'].shape == (_B * 8, _K, 4)
    assert pred['class_predictions_with_background'].shape == (_B * 8, _K + 1)
    assert pred['proposal_boxes'].shape == (_B, 8, 4)
  if stages == 3:
    expected.add('Loss/BoxClassifierLoss/mask_loss')
    # The mask head has no batch norm: it ran on the positive proposals only.
    rows = pred[faster_rcnn_losses.POSITIVE_MASK_ROWS].numpy()
    classes = pred[faster_rcnn_losses.SAMPLED_PROPOSAL_CLASSES].numpy().reshape(-1)
    np.testing.assert_array_equal(rows, np.nonzero(classes > 0)[0])
    assert pred[faster_rcnn_losses.POSITIVE_MASK_PREDICTIONS].shape == (len(rows), _K, 14, 14)
  assert set(losses) == expected
  for v in losses.values():
    assert v.shape == () and v.dtype == tf.float32 and np.isfinite(v.numpy())

  infer = utils.tiny_model(stages, is_training=False, num_classes=_K, max_proposals=20)
  pre, shapes = infer.preprocess(images)
  pred = infer.predict(pre, shapes)
  det = infer.postprocess(pred, shapes)
  _groundtruth(infer)
  eval_losses = infer.loss(pred, shapes)  # the TF OD API's eval losses
  assert set(eval_losses) == expected
  assert all(np.isfinite(v.numpy()) for v in eval_losses.values())
  max_det = 20 if stages == 1 else 10
  assert det['detection_boxes'].shape == (_B, max_det, 4)
  assert det['detection_scores'].shape == (_B, max_det)
  assert det['num_detections'].dtype == tf.float32
  # Untrained weights may predict boxes that are all clipped away: no minimum number.
  utils.assert_detections_are_consistent(det, num_classes=1 if stages == 1 else _K,
                                         max_detections=max_det, min_detections=0)
  if stages == 3:
    assert det['detection_masks'].shape == (_B, 10, 14, 14)
    masks = det['detection_masks'].numpy()
    assert masks.min() >= 0.0 and masks.max() <= 1.0
  else:
    assert 'detection_masks' not in det


@pytest.mark.parametrize('agnostic', [False, True])
def test_positive_only_mask_head_gives_the_tf_od_api_mask_loss_and_gradients(agnostic):
  """Running the mask head on the positives only is the same math as the TF OD API's all-proposals
  mask head: same mask loss, same gradients for every variable."""
  images = _images(3)
  # Seeded initial weights (tf_keras draws unseeded initializer seeds from Python's `random`, which
  # tf.random.set_seed does not reset): unseeded, some runs sampled no positive proposal at all,
  # and a zero mask loss compares nothing.
  tf_keras.utils.set_random_seed(0)
  per_roi = utils.tiny_model(3, is_training=True, num_classes=_K, max_proposals=20,
                             second_stage_batch_size=8, masks_are_class_agnostic=agnostic)
  full = utils.tiny_model(3, is_training=True, num_classes=_K, max_proposals=20,
                          second_stage_batch_size=8, masks_are_class_agnostic=agnostic)
  full._mask_head_is_per_roi = False  # pylint: disable=protected-access
  assert per_roi._mask_head_is_per_roi  # pylint: disable=protected-access
  for model in (per_roi, full):
    utils.build_variables(model, images)
  _copy_weights(per_roi, full)
  results = []
  for model in (per_roi, full):
    _groundtruth(model)
    pre, shapes = model.preprocess(images)
    with tf.GradientTape() as tape:
      # The samplers draw at random; the same seed gives both models the same proposals.
      tf.random.set_seed(7)
      pred = model.predict(pre, shapes)
      loss = model.loss(pred, shapes)['Loss/BoxClassifierLoss/mask_loss']
    grads = tape.gradient(loss, model.trainable_variables)
    results.append((pred, loss, grads))
  (pred_a, loss_a, grads_a), (pred_b, loss_b, grads_b) = results
  assert 'mask_predictions' in pred_b and 'mask_predictions' not in pred_a
  np.testing.assert_allclose(pred_a['proposal_boxes'], pred_b['proposal_boxes'])
  assert len(pred_a[faster_rcnn_losses.POSITIVE_MASK_ROWS].numpy()) > 0
  assert float(loss_a) > 0.0
  np.testing.assert_allclose(float(loss_a), float(loss_b), rtol=1e-6)
  rows = pred_a[faster_rcnn_losses.POSITIVE_MASK_ROWS].numpy()
  np.testing.assert_allclose(pred_a[faster_rcnn_losses.POSITIVE_MASK_PREDICTIONS],
                             tf.gather(pred_b['mask_predictions'], rows), rtol=1e-5, atol=1e-6)
  for ga, gb, v in zip(grads_a, grads_b, per_roi.trainable_variables):
    if ga is None or gb is None:
      assert ga is None and gb is None, v.name
      continue
    np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-7, err_msg=v.name)


def test_mask_targets_are_crops_of_each_proposals_matched_mask():
  """The TF OD API gathers [B, P, H, W] assigned masks, then crops each at its proposal; cropping the
  matched mask directly must give the same targets (unmatched rows: all zeros)."""
  height = width = 32
  masks = [tf.cast(tf.random.stateless_uniform([3, height, width], [1, 2]) > 0.5, tf.float32),
           tf.cast(tf.random.stateless_uniform([1, height, width], [3, 4]) > 0.5, tf.float32)]
  boxes = tf.constant([[[0, 0, 16, 16], [4, 8, 30, 31], [1, 1, 2, 2]],
                       [[10, 10, 20, 28], [0, 0, 32, 32], [5, 5, 9, 9]]], tf.float32)
  matches = tf.constant([[2, -1, 0], [0, 0, -1]], tf.int32)
  # An image without ground truth first (the zero "unmatched" mask must still be there).
  masks = [tf.zeros([0, height, width])] + masks
  boxes = tf.concat([boxes[:1], boxes], axis=0)
  matches = tf.concat([[[-1, -1, -1]], matches], axis=0)
  image_shape = tf.constant([2, height, width, 3])
  rows_image = tf.constant([0, 0, 0, 1, 1, 1, 2, 2, 2])
  ours = faster_rcnn_losses._matched_mask_crops(  # pylint: disable=protected-access
      tf.reshape(boxes, [-1, 4]), tf.reshape(matches, [-1]), rows_image, image_shape, masks, (7, 7))
  expected = []
  for b in range(3):
    for p in range(3):
      m = int(matches[b, p])
      assigned = masks[b][m] if m >= 0 else tf.zeros([height, width])
      box = boxes[b, p] / [height, width, height, width]
      crop = tf.image.crop_and_resize(assigned[tf.newaxis, ..., tf.newaxis], box[tf.newaxis], [0],
                                      [7, 7])
      expected.append(tf.reshape(crop, [-1]))
  np.testing.assert_array_equal(ours.numpy(), tf.stack(expected).numpy())


def test_restore_from_objects_follows_the_tf_od_api():
  model = utils.tiny_model(3, is_training=False, num_classes=_K)
  utils.build_variables(model, _images())
  classification = model.restore_from_objects('classification')
  assert list(classification) == ['feature_extractor']
  assert classification['feature_extractor'] is model.feature_extractor.classification_backbone
  detection = model.restore_from_objects('detection')['model']
  assert detection._feature_extractor_for_proposal_features is (  # pylint: disable=protected-access
      model._feature_extractor_for_proposal_features)  # pylint: disable=protected-access
  assert model.restore_from_objects('full') == {'model': model}
  with pytest.raises(ValueError, match='fine_tune_checkpoint_type'):
    model.restore_from_objects('everything')


def test_checkpoint_keys_use_the_tf_od_api_object_names(tmp_path):
  model = utils.tiny_model(3, is_training=False, num_classes=_K)
  utils.build_variables(model, _images())
  path = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ckpt'))
  roots = {k.split('/')[1] for k, _ in tf.train.list_variables(path) if k.startswith('model/')}
  assert roots == {'_feature_extractor_for_proposal_features',
                   '_feature_extractor_for_box_classifier_features',
                   '_first_stage_box_predictor_first_conv', '_first_stage_box_predictor',
                   '_mask_rcnn_box_predictor'}


def test_training_model_asks_for_groundtruth():
  model = utils.tiny_model(2, is_training=True, num_classes=_K)
  pre, shapes = model.preprocess(_images())
  with pytest.raises(RuntimeError, match='provide_groundtruth'):
    model.predict(pre, shapes)


def test_crop_detections_in_true_image_frame_only_matters_with_padding():
  """With an unpadded input both settings crop the same place; with padding the extension crops the
  detection where it is in the padded image (boxes normalized to the true image, rescaled)."""
  images = _images(5)
  default = utils.tiny_model(3, is_training=False, num_classes=_K)
  fixed = utils.tiny_model(3, is_training=False, num_classes=_K,
                           extra='crop_detections_in_true_image_frame: true')
  for model in (default, fixed):
    utils.build_variables(model, images)
  _copy_weights(default, fixed)
  outputs = []
  for model in (default, fixed):
    pre, shapes = model.preprocess(images)
    outputs.append(model.postprocess(model.predict(pre, shapes), shapes))
  np.testing.assert_allclose(outputs[0]['detection_masks'], outputs[1]['detection_masks'], atol=1e-6)

  boxes = tf.constant([[[0.0, 0.0, 1.0, 1.0], [0.5, 0.25, 1.0, 0.5]]])
  padded = faster_rcnn_meta_arch._true_to_padded_frame(  # pylint: disable=protected-access
      boxes, tf.constant([[48, 64, 3]]), tf.constant([1, 64, 64, 3]))
  np.testing.assert_allclose(padded[0], [[0.0, 0.0, 0.75, 1.0], [0.375, 0.25, 0.75, 0.5]])


def test_mask_head_reads_cropped_features_with_the_extension():
  images = _images(6)
  model = utils.tiny_model(3, is_training=False, num_classes=_K, extra='mask_head_features: CROPPED_FEATURES')
  pre, shapes = model.preprocess(images)
  det = model.postprocess(model.predict(pre, shapes), shapes)
  assert det['detection_masks'].shape == (_B, 10, 14, 14)
  # The mask head's first conv reads the 32-channel ROI crops, not the 64-channel box classifier output.
  first_conv = [v for v in model._mask_rcnn_box_predictor.variables  # pylint: disable=protected-access
                if 'mask' in v.name and v.shape.rank == 4][0]
  assert first_conv.shape[2] == 32


def test_predict_and_loss_run_in_a_tf_function():
  model = utils.tiny_model(3, is_training=True, num_classes=_K, max_proposals=20,
                           second_stage_batch_size=8)
  images = _images(8)
  utils.build_variables(model, images)

  @tf.function
  def step(images):
    pre, shapes = model.preprocess(images)
    _groundtruth(model, tf.uint8)
    return model.loss(model.predict(pre, shapes), shapes)

  losses = step(images)
  assert all(np.isfinite(v.numpy()) for v in losses.values())


def test_no_positive_proposal_gives_a_zero_mask_loss():
  model = utils.tiny_model(3, is_training=True, num_classes=_K, max_proposals=20,
                           second_stage_batch_size=8)
  images = _images(9)
  utils.build_variables(model, images)
  # A tiny box no 8-pixel-stride proposal overlaps at IoU >= 0.5.
  model.provide_groundtruth([tf.constant([[0.0, 0.0, 0.01, 0.01]])] * _B,
                            [tf.constant([[1.0, 0.0, 0.0]])] * _B, [tf.ones([1, _SIZE, _SIZE])] * _B)
  pre, shapes = model.preprocess(images)
  pred = model.predict(pre, shapes)
  assert pred[faster_rcnn_losses.POSITIVE_MASK_PREDICTIONS].shape[0] == 0
  losses = model.loss(pred, shapes)
  assert float(losses['Loss/BoxClassifierLoss/mask_loss']) == 0.0
