"""Semantic segmentation training on real coco128_seg photos (issue 16).

  * A small Lite0-FPN + FCN model, trained from random weights through `model_lib_v2.train_loop`
    (the code model_main.py runs) on 2 photos painted person / background by the converter,
    overfits them: mIoU >= 0.5 at step 40 (0.62 measured) from the in-training evaluation, which also keeps the
    best checkpoint and writes the metrics JSON and the TensorBoard images.
  * The input pipeline moves label maps with the pixels (flip, rotation), never interpolates
    them, and marks every padded pixel as ignore.
  * The losses equal a numpy computation of their documented formulas.
  * Config errors: one line naming the field.
"""
import contextlib
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from conftest import COCO128_IMAGES, COCO128_VAL_JSON
from object_detection import semantic_inputs
from object_detection.builders import image_resizer_builder
from object_detection.builders import preprocessor_builder
from object_detection.data_decoders import semantic_decoder
from object_detection.dataset_tools import semantic_tf_record
from object_detection.meta_architectures import semantic_segmentation_losses as losses
from object_detection.protos import image_resizer_pb2
from object_detection.protos import pipeline_pb2
from object_detection.protos import preprocessor_pb2
from object_detection.utils import config_validation

# Two val photos where people cover about half of the picture.
_IMAGE_IDS = (165, 370)

_CONFIG = """
model {
  semantic_segmentation {
    num_classes: 1
    image_resizer { fixed_shape_resizer { height: 96 width: 96 } }
    feature_extractor {
      type: 'faster_rcnn_efficientnet_lite0_fpn_keras'
      batch_norm_trainable: false
      conv_hyperparams {
        activation: RELU_6
        initializer { truncated_normal_initializer { stddev: 0.03 } }
      }
      fpn { min_level: 2 max_level: 5 additional_layer_depth: 32 }
    }
    fcn_head {
      num_convs: 1
      depth: 32
      dropout_rate: 0.0
      conv_hyperparams {
        activation: RELU
        initializer { variance_scaling_initializer { factor: 2.0 mode: FAN_IN } }
      }
    }
  }
}
train_config {
  batch_size: 2
  num_steps: 40
  log_every_n_steps: 30
  optimizer { adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.003 } } } }
  gradient_clipping_by_norm: 40.0
  best_checkpoint_metric: "SemanticSegmentation/mDice"
}
train_input_reader {
  label_map_path: "%(records)s/label_map.pbtxt"
  tf_record_input_reader { input_path: "%(records)s/semantic_train.record-?????-of-00001" }
}
eval_config { metrics_set: "semantic_segmentation_metrics" batch_size: 2 num_visualizations: 1 }
eval_input_reader {
  label_map_path: "%(records)s/label_map.pbtxt"
  shuffle: false
  num_epochs: 1
  tf_record_input_reader { input_path: "%(records)s/semantic_val.record-?????-of-00001" }
}
"""


@pytest.fixture(scope='module')
def records(tmp_path_factory):
  """The 2 photos converted (person = 1, other classes background) as train and val."""
  folder = tmp_path_factory.mktemp('semantic_train')
  with open(COCO128_VAL_JSON) as f:
    coco = json.load(f)
  coco['images'] = [i for i in coco['images'] if i['id'] in _IMAGE_IDS]
  coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in _IMAGE_IDS]
  subset = str(folder / 'two.json')
  with open(subset, 'w') as f:
    json.dump(coco, f)
  out = str(folder / 'records')
  with contextlib.redirect_stdout(io.StringIO()):
    semantic_tf_record.convert('coco', out, coco_splits=[
        ('train', COCO128_IMAGES, subset), ('val', COCO128_IMAGES, subset)],
                               classes=['person'], show_progress=False)
  return out


def _config_path(tmp_path, records, extra=''):
  path = str(tmp_path / 'pipeline.config')
  with open(path, 'w') as f:
    f.write(_CONFIG % {'records': records} + extra)
  return path


@pytest.mark.slow
def test_small_model_overfits_two_photos_through_train_loop(tmp_path, records):
  from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  # Seeds only: op determinism (`--seed`) is process-wide and would stay on for the later tests
  # (XLA refuses some gradients under it).
  tf_keras.utils.set_random_seed(0)
  model_dir = str(tmp_path / 'model')
  result = model_lib_v2.train_loop(_config_path(tmp_path, records), model_dir,
                                   checkpoint_every_n=1000, eval_every_n=40)
  metrics = result['metrics']
  assert result["step"] == 40
  # Foreground (person) IoU: background is left out of the means by default.
  assert metrics['SemanticSegmentation/mIoU'] >= 0.5, metrics
  assert metrics['SemanticSegmentation/IoU/person'] == metrics['SemanticSegmentation/mIoU']
  assert 0.5 <= metrics['SemanticSegmentation/pixel_accuracy'] <= 1.0
  assert metrics['Loss/SemanticSegmentationLoss/cross_entropy_loss'] > 0
  with open(os.path.join(model_dir, 'eval', 'metrics_40.json')) as f:
    record = json.load(f)
  assert record['num_images'] == 2
  assert record['metrics']['SemanticSegmentation/mDice'] == pytest.approx(
      metrics['SemanticSegmentation/mDice'])
  assert tf.train.latest_checkpoint(os.path.join(model_dir, 'best')) is not None
  assert os.listdir(os.path.join(model_dir, 'eval'))


def _decoded(records, split='val'):
  path = tf.io.gfile.glob(os.path.join(records, 'semantic_%s.record-*' % split))[0]
  serialized = next(iter(tf.data.TFRecordDataset(path)))
  return semantic_decoder.SemanticSegmentationDecoder().decode(serialized)


def _resizer(text):
  return image_resizer_builder.build(text_format.Parse(text, image_resizer_pb2.ImageResizer()))


def _preprocess_with(resizer):
  def preprocess(images):
    image, shape = resizer(images[0])
    return image[tf.newaxis], shape[tf.newaxis]
  return preprocess


def _step(text):
  return preprocessor_builder.build(text_format.Parse(text, preprocessor_pb2.PreprocessingStep()))


@pytest.mark.parametrize('step, expected', [
    ('random_horizontal_flip { probability: 1.0 }', lambda a: a[:, ::-1]),
    ('random_rotation90 { probability: 1.0 }', lambda a: np.rot90(a)),
])
def test_augmentations_move_label_maps_with_the_pixels(records, step, expected):
  decoded = _decoded(records)
  resizer = _resizer('identity_resizer { }')
  features, labels = semantic_inputs.transform(decoded, _preprocess_with(resizer), resizer, 255,
                                               [_step(step)])
  image = decoded['image'].numpy().astype(np.float32)
  np.testing.assert_array_equal(features['image'].numpy(), expected(image))
  np.testing.assert_array_equal(labels['groundtruth_semantic'].numpy(),
                                expected(decoded['groundtruth_semantic'].numpy()))


def test_resizer_padding_is_ignored_and_labels_are_never_interpolated(records):
  decoded = _decoded(records)
  height, width = decoded['groundtruth_semantic'].shape
  resizer = _resizer('keep_aspect_ratio_resizer { min_dimension: 100 max_dimension: 100 '
                     'pad_to_max_dimension: true }')
  features, labels = semantic_inputs.transform(decoded, _preprocess_with(resizer), resizer, 255,
                                               is_eval=True, retain_original_image=True)
  resized = labels['groundtruth_semantic'].numpy()
  true_h, true_w = features['true_image_shape'].numpy()[:2]
  assert resized.shape == (100, 100) and (true_h, true_w) != (100, 100)
  assert set(np.unique(resized[:true_h, :true_w])) <= {0, 1}
  assert (resized[true_h:, :] == 255).all() and (resized[:, true_w:] == 255).all()
  # Nearest neighbour: each kept pixel is the source pixel it maps to.
  original = decoded['groundtruth_semantic'].numpy()
  assert labels['original_groundtruth_semantic'].numpy().shape == (height, width)
  assert abs(resized[:true_h, :true_w].mean() - original.mean()) < 0.05


def test_losses_equal_their_formulas():
  rng = np.random.RandomState(0)
  logits = rng.randn(2, 5, 7, 3).astype(np.float32)
  labels = rng.randint(0, 3, size=(2, 5, 7))
  labels[0, 0, :4] = 255
  valid = labels != 255
  safe = np.where(valid, labels, 0)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  ce = -np.take_along_axis(log_p, safe[..., None], -1)[..., 0]
  assert float(losses.softmax_cross_entropy(logits, labels)) == pytest.approx(ce[valid].mean(),
                                                                              rel=1e-5)
  w = np.array([0.2, 1.0, 3.0], np.float32)
  weighted = (w[safe] * ce)[valid].sum() / w[safe][valid].sum()
  assert float(losses.softmax_cross_entropy(logits, labels, list(w))) == pytest.approx(
      weighted, rel=1e-5)
  p = np.exp(log_p) * valid[..., None]
  g = np.eye(3)[safe] * valid[..., None]
  dice = 1 - (2 * (p * g).sum((0, 1, 2)) + 1) / ((p ** 2).sum((0, 1, 2)) + (g ** 2).sum(
      (0, 1, 2)) + 1)
  assert float(losses.dice_loss(logits, labels)) == pytest.approx(dice.mean(), rel=1e-5)


@pytest.mark.parametrize('change, field', [
    (('num_classes: 1', 'num_classes: 1 loss { class_weights: [1.0] }'),
     'model.semantic_segmentation.loss.class_weights'),
    (('num_classes: 1', 'num_classes: 1 ignore_label: 1'),
     'model.semantic_segmentation.ignore_label'),
    (('dropout_rate: 0.0', 'dropout_rate: 1.0'), 'model.semantic_segmentation.fcn_head.dropout_rate'),
    (('fpn { min_level: 2', 'fpn { min_level: 1'), 'model.semantic_segmentation.feature_extractor'),
    (('gradient_clipping_by_norm: 40.0',
      'gradient_clipping_by_norm: 40.0 data_augmentation_options { random_pad_image { } }'),
     'train_config.data_augmentation_options[0].random_pad_image'),
    (('metrics_set: "semantic_segmentation_metrics"', 'metrics_set: "coco_mask_metrics"'),
     'eval_config.metrics_set[0]'),
    (('best_checkpoint_metric: "SemanticSegmentation/mDice"',
      'best_checkpoint_metric: "SemanticSegmentation/mdice"'), 'train_config.best_checkpoint_metric'),
])
def test_config_errors_name_the_field(change, field):
  text = (_CONFIG % {'records': '/nowhere'}).replace(*change)
  configs = pipeline_pb2.TrainEvalPipelineConfig()
  text_format.Parse(text, configs)
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  with pytest.raises(config_validation.ConfigError) as error:
    config_validation.validate_pipeline_configs(
        config_util.create_configs_from_pipeline_proto(configs))
  message = str(error.value)
  assert '`%s`' % field in message and '\n' not in message, message


def test_instance_records_in_a_semantic_config_fail_naming_the_file(tmp_path, records):
  from object_detection.dataset_tools import coco_tf_record  # pylint: disable=g-import-not-at-top
  del coco_tf_record
  # An instance record has no image/segmentation/class/encoded.
  example = tf.train.Example(features=tf.train.Features(feature={
      'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[
          tf.io.encode_png(tf.zeros([4, 4, 3], tf.uint8)).numpy()])),
      'image/source_id': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'7']))}))
  bad = str(tmp_path / 'coco_train.record-00000-of-00001')
  with tf.io.TFRecordWriter(bad) as writer:
    writer.write(example.SerializeToString())
  text = _CONFIG % {'records': records}
  text = text.replace('%s/semantic_train.record-?????-of-00001' % records, bad)
  path = str(tmp_path / 'bad.config')
  with open(path, 'w') as f:
    f.write(text)
  from object_detection import model_lib_v2  # pylint: disable=g-import-not-at-top
  with pytest.raises(config_validation.ConfigError) as error:
    model_lib_v2.load_configs(path, mode='train')
  message = str(error.value)
  assert bad in message and 'create_semantic_tf_record.py' in message, message


def test_jit_compile_needs_one_input_size():
  from object_detection.training import xla  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  configs = pipeline_pb2.TrainEvalPipelineConfig()
  text_format.Parse(_CONFIG % {'records': '/nowhere'}, configs)
  xla.check(config_util.create_configs_from_pipeline_proto(configs), training=True,
            inference=True)  # fixed_shape_resizer: every batch has one size
  configs.model.semantic_segmentation.image_resizer.identity_resizer.SetInParent()
  with pytest.raises(xla.JitCompileError) as error:
    xla.check(config_util.create_configs_from_pipeline_proto(configs), training=True)
  assert 'model.semantic_segmentation.image_resizer' in str(error.value)
