"""The config schema (protos/) matches the TF OD API: TF OD API configs parse unchanged,
text round trips are lossless and important defaults equal the TF OD API's."""
import glob
import os

import pytest
from google.protobuf import text_format

from object_detection.protos import input_reader_pb2
from object_detection.protos import optimizer_pb2
from object_detection.protos import pipeline_pb2
from object_detection.protos import preprocessor_pb2
from object_detection.protos import train_pb2

_TESTDATA = os.path.join(os.path.dirname(__file__), 'testdata')
_TFOD_CONFIGS = sorted(glob.glob(os.path.join(_TESTDATA, 'tfod_configs', '*.config')))
_SAMPLE_CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), '..', 'samples',
                                                'configs', '*.config')))


def _parse(path):
  with open(path) as f:
    return text_format.Parse(f.read(), pipeline_pb2.TrainEvalPipelineConfig())


def test_testdata_has_the_tfod_configs():
  names = {os.path.basename(p) for p in _TFOD_CONFIGS}
  assert {'mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config',
          'mask_rcnn_resnet50_atrous_coco.config', 'mask_rcnn_resnet101_atrous_coco.config',
          'mask_rcnn_inception_v2_coco.config', 'faster_rcnn_resnet101_pets.config'} <= names


@pytest.mark.parametrize('path', _TFOD_CONFIGS + _SAMPLE_CONFIGS, ids=os.path.basename)
def test_config_parses_and_round_trips(path):
  config = _parse(path)
  assert config.model.WhichOneof('model') == (
      'semantic_segmentation' if os.path.basename(path).startswith('semantic_') else 'faster_rcnn')
  text = text_format.MessageToString(config)
  reparsed = text_format.Parse(text, pipeline_pb2.TrainEvalPipelineConfig())
  assert reparsed == config
  # Serialization is stable (a re-saved config is byte-identical).
  assert text_format.MessageToString(reparsed) == text
  # Binary round trip too.
  assert pipeline_pb2.TrainEvalPipelineConfig.FromString(config.SerializeToString()) == config


def test_mask_rcnn_tfod_config_fields():
  config = _parse(os.path.join(_TESTDATA, 'tfod_configs',
                               'mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config'))
  frcnn = config.model.faster_rcnn
  assert frcnn.number_of_stages == 3
  assert frcnn.num_classes == 90
  predictor = frcnn.second_stage_box_predictor.mask_rcnn_box_predictor
  assert predictor.predict_instance_masks
  assert (predictor.mask_height, predictor.mask_width) == (33, 33)
  assert list(frcnn.first_stage_anchor_generator.grid_anchor_generator.scales) == [
      0.25, 0.5, 1.0, 2.0]
  assert config.train_input_reader.mask_type == input_reader_pb2.PNG_MASKS
  assert config.train_input_reader.tf_record_input_reader.input_path[0].startswith(
      'PATH_TO_BE_CONFIGURED')
  assert list(config.eval_config.metrics_set) == ['coco_detection_metrics', 'coco_mask_metrics']
  assert config.train_config.fine_tune_checkpoint_version == train_pb2.V2


def test_tfod_defaults():
  """Defaults of the TF OD API protos (research/object_detection/protos)."""
  frcnn = pipeline_pb2.TrainEvalPipelineConfig().model.faster_rcnn
  assert frcnn.number_of_stages == 2
  assert frcnn.first_stage_nms_iou_threshold == pytest.approx(0.7)
  assert frcnn.first_stage_nms_score_threshold == 0.0
  assert frcnn.first_stage_max_proposals == 300
  assert frcnn.first_stage_minibatch_size == 256
  assert frcnn.first_stage_positive_balance_fraction == 0.5
  assert frcnn.first_stage_box_predictor_kernel_size == 3
  assert frcnn.first_stage_box_predictor_depth == 512
  assert frcnn.second_stage_batch_size == 64
  assert frcnn.second_stage_balance_fraction == 0.25
  assert frcnn.initial_crop_size == 0 and not frcnn.HasField('initial_crop_size')
  assert frcnn.feature_extractor.first_stage_features_stride == 16
  assert frcnn.feature_extractor.pad_to_multiple == 32
  assert frcnn.resize_masks
  grid = frcnn.first_stage_anchor_generator.grid_anchor_generator
  assert (grid.height, grid.width, grid.height_stride, grid.width_stride) == (256, 256, 16, 16)
  predictor = frcnn.second_stage_box_predictor.mask_rcnn_box_predictor
  assert (predictor.mask_height, predictor.mask_width) == (15, 15)
  assert predictor.mask_prediction_conv_depth == 256
  assert predictor.mask_prediction_num_conv_layers == 2
  assert not predictor.predict_instance_masks
  assert predictor.dropout_keep_probability == 0.5
  nms = frcnn.second_stage_post_processing.batch_non_max_suppression
  assert nms.iou_threshold == pytest.approx(0.6)
  assert nms.max_detections_per_class == 100 and nms.max_total_detections == 100
  resizer = frcnn.image_resizer.keep_aspect_ratio_resizer
  assert (resizer.min_dimension, resizer.max_dimension) == (600, 1024)
  fixed = frcnn.image_resizer.fixed_shape_resizer
  assert (fixed.height, fixed.width) == (300, 300)

  optimizer = optimizer_pb2.Optimizer()
  assert optimizer.momentum_optimizer.momentum_optimizer_value == pytest.approx(0.9)
  assert optimizer.use_moving_average
  assert optimizer.moving_average_decay == pytest.approx(0.9999)
  assert optimizer.adam_optimizer.epsilon == pytest.approx(1e-8)
  lr = optimizer.momentum_optimizer.learning_rate
  assert lr.constant_learning_rate.learning_rate == pytest.approx(0.002)
  assert lr.cosine_decay_learning_rate.warmup_steps == 10000
  assert lr.exponential_decay_learning_rate.decay_steps == 4000000

  reader = input_reader_pb2.InputReader()
  assert reader.shuffle
  assert reader.shuffle_buffer_size == 2048
  assert reader.queue_capacity == 2000
  assert reader.min_after_dequeue == 1000
  assert reader.num_readers == 64
  assert reader.num_epochs == 0
  assert reader.sample_1_of_n_examples == 1
  assert reader.max_number_of_boxes == 100
  assert reader.mask_type == input_reader_pb2.NUMERICAL_MASKS
  assert not reader.load_instance_masks

  train = train_pb2.TrainConfig()
  assert train.batch_size == 32
  assert train.num_steps == 0
  assert train.add_regularization_loss
  assert train.max_number_of_boxes == 100
  eval_config = pipeline_pb2.TrainEvalPipelineConfig().eval_config
  assert eval_config.batch_size == 1
  assert eval_config.num_visualizations == 10
  assert eval_config.min_score_threshold == pytest.approx(0.5)
  assert eval_config.max_num_boxes_to_visualize == 20

  flip = preprocessor_pb2.RandomHorizontalFlip()
  assert flip.probability == 0.5


def test_extensions_have_documented_defaults_and_numbers():
  lr = optimizer_pb2.LearningRate()
  plateau = lr.reduce_lr_on_plateau_learning_rate
  assert lr.DESCRIPTOR.fields_by_name['reduce_lr_on_plateau_learning_rate'].number == 1000
  assert plateau.initial_learning_rate == pytest.approx(0.002)
  assert plateau.metric == 'DetectionMasks_Precision/mAP'
  assert plateau.metric_higher_is_better
  assert plateau.patience == 3 and plateau.factor == 0.5
  train = train_pb2.TrainConfig()
  fields = train.DESCRIPTOR.fields_by_name
  assert fields['early_stopping'].number == 1000
  assert fields['best_checkpoint_metric'].number == 1001
  assert fields['best_checkpoint_metric_higher_is_better'].number == 1002
  assert fields['log_every_n_steps'].number == 1003
  assert train.early_stopping.patience == 5
  assert train.early_stopping.metric == 'DetectionMasks_Precision/mAP'
  assert train.best_checkpoint_metric == '' and train.best_checkpoint_metric_higher_is_better
  assert train.log_every_n_steps == 100
  # Every field this project added uses a number >= 1000 (TF OD API numbers stay free).
  text_format.Parse('early_stopping { patience: 2 } log_every_n_steps: 10', train)
  assert train.early_stopping.patience == 2


def test_all_preprocessing_steps_declared():
  names = set(preprocessor_pb2.PreprocessingStep.DESCRIPTOR.oneofs_by_name[
      'preprocessing_step'].fields[i].name for i in range(39))
  for name in ['normalize_image', 'random_horizontal_flip', 'random_vertical_flip',
               'random_rotation90', 'random_pixel_value_scale', 'random_image_scale',
               'random_rgb_to_gray', 'random_adjust_brightness', 'random_adjust_contrast',
               'random_adjust_hue', 'random_adjust_saturation', 'random_distort_color',
               'random_jitter_boxes', 'random_crop_image', 'random_pad_image',
               'random_absolute_pad_image', 'random_crop_pad_image',
               'random_crop_to_aspect_ratio', 'random_black_patches', 'random_resize_method',
               'scale_boxes_to_pixel_coordinates', 'resize_image', 'subtract_channel_mean',
               'ssd_random_crop', 'ssd_random_crop_pad', 'ssd_random_crop_fixed_aspect_ratio',
               'ssd_random_crop_pad_fixed_aspect_ratio', 'random_jpeg_quality',
               'random_downscale_to_target_pixels', 'random_patch_gaussian',
               'random_square_crop_by_scale', 'random_scale_crop_and_pad_to_square',
               'adjust_gamma', 'convert_class_logits_to_softmax', 'random_self_concat_image',
               'autoaugment_image', 'drop_label_probabilistically', 'remap_labels',
               'rgb_to_gray']:
    assert name in names, name
