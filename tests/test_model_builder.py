"""model_builder: TF OD API faster_rcnn configs -> models (ResNet single-level and FPN), errors."""

from google.protobuf import text_format
from object_detection.protos import model_pb2  # pylint: disable=g-bad-import-order
import numpy as np
import pytest
import tensorflow as tf

from object_detection.builders import model_builder
from object_detection.models import feature_extractor_registry
from object_detection.predictors import mask_rcnn_box_predictor
from tests import mask_rcnn_test_utils as utils

_GRID = 'grid_anchor_generator { scales: [0.5, 1.0] aspect_ratios: [1.0] height_stride: 16 width_stride: 16 }'
_MULTI = ('multiscale_anchor_generator { min_level: 2 max_level: 5 anchor_scale: 2.0 aspect_ratios: [1.0] '
          'scales_per_octave: 1 }')


def _config(extractor='faster_rcnn_resnet50_keras', stages=3, extra='', fpn=False):
  text = utils.mask_rcnn_config_text(
      extractor, _MULTI if fpn else _GRID, number_of_stages=stages,
      extractor_extra='fpn { min_level: 2 max_level: 5 }' if fpn else '',
      extra='first_stage_box_predictor_depth: 32 ' + extra)
  return text_format.Parse(text, model_pb2.DetectionModel())


def _groundtruth(model):
  model.provide_groundtruth([tf.constant([[0.1, 0.1, 0.7, 0.6]])], [tf.constant([[0.0, 1.0, 0.0]])],
                            [tf.ones([1, 64, 64], tf.uint8)])


@pytest.mark.parametrize('extractor,fpn,stages', [
    ('faster_rcnn_resnet50_keras', False, 3),
    ('faster_rcnn_resnet50_fpn_keras', True, 3),
    ('faster_rcnn_resnet50_keras', False, 2),
])
def test_resnet_models_train_and_infer(extractor, fpn, stages):
  images = tf.random.uniform([1, 80, 96, 3], 0, 255)
  train = model_builder.build(_config(extractor, stages, fpn=fpn), is_training=True)
  assert train.num_classes == 3
  pre, shapes = train.preprocess(images)
  assert pre.shape == (1, 64, 64, 3) and shapes.numpy().tolist() == [[64, 64, 3]]
  _groundtruth(train)
  losses = train.loss(train.predict(pre, shapes), shapes)
  assert ('Loss/BoxClassifierLoss/mask_loss' in losses) == (stages == 3)
  assert len(losses) == (5 if stages == 3 else 4)
  assert all(np.isfinite(v.numpy()) for v in losses.values())
  # conv/fc hyperparams regularizers are honoured.
  assert train.regularization_losses()

  infer = model_builder.build(_config(extractor, stages, fpn=fpn), is_training=False)
  det = infer(images)
  assert det['detection_boxes'].shape == (1, 10, 4)
  assert det['detection_multiclass_scores'].shape == (1, 10, 4)
  assert det['raw_detection_boxes'].shape == (1, 16, 4)
  if stages == 3:
    assert det['detection_masks'].shape == (1, 10, 14, 14)
  # Checkpoints written by the training model restore into the inference model.
  ckpt = tf.train.Checkpoint(model=train)
  train(images)
  path = ckpt.save('/tmp/model_builder_test_ckpt/ckpt')
  tf.train.Checkpoint(model=infer).restore(path).assert_existing_objects_matched()


def test_stage_one_rpn_only():
  model = model_builder.build(_config(stages=1), is_training=False)
  det = model(tf.zeros([1, 64, 64, 3]))
  assert det['detection_boxes'].shape == (1, 16, 4)
  assert 'detection_masks' not in det


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
  assert model.feature_extractor.levels == ['4']


def test_hard_example_miner_not_supported():
  with pytest.raises(ValueError, match='hard_example_miner'):
    model_builder.build(_config(extra='hard_example_miner { num_hard_examples: 10 }'), is_training=True)


def test_registry_lazy_missing_module_is_a_clear_error(monkeypatch):
  monkeypatch.setitem(feature_extractor_registry._LAZY, 'faster_rcnn_missing_keras',
                      'object_detection.models.does_not_exist:build')
  with pytest.raises(ValueError, match='could not be imported'):
    feature_extractor_registry.get('faster_rcnn_missing_keras')


def test_mask_predictor_conv_depth_formula():
  # TF OD API _get_mask_predictor_conv_depth: 2 ** round((2 log2 C + 3 log2 K) / 5).
  assert mask_rcnn_box_predictor.get_mask_predictor_conv_depth(1024, 90) == 2 ** round(
      (2 * 10 + 3 * np.log2(90)) / 5)
  assert mask_rcnn_box_predictor.get_mask_predictor_conv_depth(256, 1) == 8


def test_hyperparams_builder_honours_initializer_regularizer_norm_activation():
  from object_detection.builders import hyperparams_builder  # pylint: disable=g-import-not-at-top
  from object_detection.protos import hyperparams_pb2  # pylint: disable=g-import-not-at-top
  config = text_format.Parse("""
    regularizer { l2_regularizer { weight: 0.5 } }
    initializer { truncated_normal_initializer { stddev: 0.03 } }
    activation: RELU_6
    batch_norm { decay: 0.9 epsilon: 0.01 train: false }
  """, hyperparams_pb2.Hyperparams())
  hp = hyperparams_builder.KerasLayerHyperparams(config)
  params = hp.params()
  assert params['kernel_initializer'].stddev == pytest.approx(0.03)
  # TF OD API Keras convention: l2(0.5 * weight).
  assert params['kernel_regularizer'].l2 == pytest.approx(0.25)
  bn = hp.build_normalization()
  assert bn.momentum == pytest.approx(0.9) and bn.epsilon == pytest.approx(0.01) and not bn.trainable
  assert float(hp.build_activation_layer()(tf.constant(10.0))) == 6.0
