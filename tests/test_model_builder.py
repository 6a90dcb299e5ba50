"""model_builder: TF OD API faster_rcnn configs -> models (ResNet C4 and FPN), clear errors."""

from google.protobuf import text_format
from object_detection.protos import model_pb2  # pylint: disable=g-bad-import-order
import numpy as np
import pytest
import tensorflow as tf

from object_detection.builders import hyperparams_builder
from object_detection.builders import model_builder
from object_detection.core import balanced_positive_negative_sampler
from object_detection.protos import hyperparams_pb2
from object_detection.utils import spatial_transform_ops
from tests import mask_rcnn_test_utils as utils

_GRID = ('grid_anchor_generator { scales: [0.5, 1.0] aspect_ratios: [1.0] height: 32 width: 32 '
         'height_stride: 16 width_stride: 16 }')
_MULTI = ('multiscale_anchor_generator { min_level: 2 max_level: 5 anchor_scale: 2.0 aspect_ratios: [1.0] '
          'scales_per_octave: 1 normalize_coordinates: false }')
_FPN_EXTRA = """fpn { min_level: 2 max_level: 5 additional_layer_depth: 32 }
  conv_hyperparams { activation: RELU_6 regularizer { l2_regularizer { weight: 0.0004 } }
                     initializer { truncated_normal_initializer { stddev: 0.03 } }
                     batch_norm { scale: true decay: 0.997 epsilon: 0.001 } }
  override_base_feature_extractor_hyperparams: true"""


def _config(extractor='faster_rcnn_resnet50_keras', stages=3, extra='', fpn=False):
  text = utils.mask_rcnn_config_text(
      extractor, _MULTI if fpn else _GRID, number_of_stages=stages,
      extractor_extra=_FPN_EXTRA if fpn else '', extra='first_stage_box_predictor_depth: 32 ' + extra)
  return text_format.Parse(text, model_pb2.DetectionModel())


def _groundtruth(model):
  model.provide_groundtruth([tf.constant([[0.1, 0.1, 0.7, 0.6]])], [tf.constant([[0.0, 1.0, 0.0]])],
                            [tf.ones([1, 64, 64], tf.uint8)])


@pytest.mark.parametrize('extractor,fpn,stages', [
    ('faster_rcnn_resnet50_keras', False, 3),
    ('faster_rcnn_resnet50_fpn_keras', True, 3),
    ('faster_rcnn_resnet50_keras', False, 2),
])
def test_resnet_models_train_and_infer(extractor, fpn, stages, tmp_path):
  images = tf.random.uniform([1, 80, 96, 3], 0, 255)
  train = model_builder.build(_config(extractor, stages, fpn=fpn), is_training=True)
  assert train.num_classes == 3
  pre, shapes = train.preprocess(images)
  assert pre.shape == (1, 64, 64, 3) and shapes.numpy().tolist() == [[64, 64, 3]]
  utils.build_variables(train, images)
  _groundtruth(train)
  losses = train.loss(train.predict(pre, shapes), shapes)
  assert ('Loss/BoxClassifierLoss/mask_loss' in losses) == (stages == 3)
  assert len(losses) == (5 if stages == 3 else 4)
  assert all(np.isfinite(v.numpy()) for v in losses.values())
  assert train.regularization_losses()  # conv / FPN hyperparams regularizers are honoured

  infer = model_builder.build(_config(extractor, stages, fpn=fpn), is_training=False)
  det = infer(images)
  assert det['detection_boxes'].shape == (1, 10, 4)
  assert det['detection_multiclass_scores'].shape == (1, 10, 4)
  assert det['raw_detection_boxes'].shape == (1, 16, 4)
  # The untrained ResNet-50 (no batch norm statistics) predicts huge box encodings: its boxes may
  # all be clipped away, so an image may have no detection (the padding is checked then).
  utils.assert_detections_are_consistent(det, num_classes=3, max_detections=10, min_detections=0)
  if stages == 3:
    assert det['detection_masks'].shape == (1, 10, 14, 14)
  # Checkpoints written by the training model restore into the inference model and back.
  path = tf.train.Checkpoint(model=train).write(str(tmp_path / 'ckpt'))
  tf.train.Checkpoint(model=infer).read(path).assert_existing_objects_matched()


def test_builder_wires_the_config_into_the_components():
  config = _config(extra='use_matmul_crop_and_resize: true use_static_shapes: true '
                         'use_static_balanced_label_sampler: true '
                         'first_stage_positive_balance_fraction: 0.4 second_stage_balance_fraction: 0.3')
  model = model_builder.build(config, is_training=True)
  # pylint: disable=protected-access
  assert model._crop_and_resize_fn is spatial_transform_ops.multilevel_matmul_crop_and_resize
  assert isinstance(model._first_stage_sampler,
                    balanced_positive_negative_sampler.BalancedPositiveNegativeSampler)
  assert model._first_stage_sampler._positive_fraction == pytest.approx(0.4)
  assert model._second_stage_sampler._positive_fraction == pytest.approx(0.3)
  assert model._first_stage_sampler._is_static and model._use_static_shapes
  assert model._first_stage_max_proposals == 16 and model.max_num_proposals == 8
  assert model._maxpool_layer.pool_size == (2, 2)
  # Evaluation uses the dynamic path unless use_static_shapes_for_eval.
  assert not model_builder.build(config, is_training=False)._use_static_shapes
  # pylint: enable=protected-access


def test_stage_one_rpn_only():
  model = model_builder.build(_config(stages=1), is_training=False)
  det = model(tf.zeros([1, 64, 64, 3]))
  assert det['detection_boxes'].shape == (1, 16, 4)
  assert 'detection_masks' not in det
  # The RPN's proposals as detections: one class (0), objectness scores, best first.
  utils.assert_detections_are_consistent(det, num_classes=1, max_detections=16)


@pytest.mark.parametrize('meta', ['ssd { num_classes: 3 }', 'center_net { num_classes: 3 }'])
def test_other_meta_architectures_fail_clearly(meta):
  config = text_format.Parse(meta, model_pb2.DetectionModel())
  with pytest.raises(ValueError, match='only `faster_rcnn`'):
    model_builder.build(config, is_training=True)


def test_unknown_extractor_names_field_and_supported_names():
  with pytest.raises(ValueError, match=r'feature_extractor.type .*bogus.*faster_rcnn_resnet50_keras'):
    model_builder.build(_config('bogus_extractor'), is_training=True)


def test_tf1_name_builds_tf2_equivalent():
  model = model_builder.build(_config('faster_rcnn_resnet50'), is_training=False)
  assert type(model.feature_extractor).__name__ == 'FasterRCNNResnet50KerasFeatureExtractor'


def test_resnet_stride_8_is_refused_as_in_the_tf_od_api():
  config = _config()
  config.faster_rcnn.feature_extractor.first_stage_features_stride = 8
  with pytest.raises(ValueError, match='first_stage_features_stride'):
    model_builder.build(config, is_training=True)


def test_fields_an_extractor_does_not_take_are_named():
  config = _config(extra='')
  config.faster_rcnn.feature_extractor.fpn.min_level = 2
  with pytest.raises(ValueError, match='feature_extractor.fpn'):
    model_builder.build(config, is_training=True)


def test_hard_example_miner_is_built():
  model = model_builder.build(_config(extra='hard_example_miner { num_hard_examples: 10 }'),
                              is_training=True)
  assert model.max_num_proposals == 16  # no sampling with a miner, as in the TF OD API


def test_context_rcnn_and_bad_values_fail_clearly():
  with pytest.raises(ValueError, match='context_config'):
    model_builder.build(_config(extra='context_config { }'), is_training=True)
  config = _config()
  config.faster_rcnn.second_stage_batch_size = 64
  with pytest.raises(ValueError, match='second_stage_batch_size'):
    model_builder.build(config, is_training=True)
  config = _config()
  config.faster_rcnn.first_stage_nms_iou_threshold = 1.5
  with pytest.raises(ValueError, match='first_stage_nms_iou_threshold'):
    model_builder.build(config, is_training=True)


def test_hyperparams_builder_follows_the_tf_od_api():
  config = text_format.Parse("""
    regularizer { l2_regularizer { weight: 0.5 } }
    initializer { truncated_normal_initializer { stddev: 0.03 } }
    activation: RELU_6
    batch_norm { decay: 0.9 epsilon: 0.01 center: true scale: false }
  """, hyperparams_pb2.Hyperparams())
  hp = hyperparams_builder.KerasLayerHyperparams(config)
  params = hp.params()
  assert params['kernel_initializer'].stddev == pytest.approx(0.03)
  assert params['kernel_regularizer'].l2 == pytest.approx(0.25)  # Keras l2(0.5 * weight), as slim
  assert params['use_bias'] is False and params['activation'] is None  # batch norm centers
  bn = hp.build_batch_norm(training=False)
  assert bn.momentum == pytest.approx(0.9) and bn.epsilon == pytest.approx(0.01) and not bn.scale
  assert float(hp.build_activation_layer()(tf.constant(10.0))) == 6.0
  no_bn = hyperparams_builder.KerasLayerHyperparams(text_format.Parse(
      'initializer { keras_initializer_by_name: "he_normal" } activation: NONE',
      hyperparams_pb2.Hyperparams()))
  assert no_bn.params()['use_bias'] is True
  assert float(no_bn.build_batch_norm()(tf.constant(-3.0))) == -3.0  # identity without batch norm
  with pytest.raises(ValueError, match='keras_initializer_by_name'):
    hyperparams_builder.KerasLayerHyperparams(text_format.Parse(
        'initializer { keras_initializer_by_name: "no_such_initializer" }',
        hyperparams_pb2.Hyperparams()))
