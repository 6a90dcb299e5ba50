"""The TF OD API's static-shape path, and XLA: same numbers as the dynamic path on real images.

One tiny Mask R-CNN's weights are loaded into three models: the default (dynamic-shape) model, the
static-shape model (`use_static_shapes`, matmul crop-and-resize, static sampler, padded NMS), and
the static model run under `tf.function(jit_compile=True)`. On real coco128_seg photos, their
detections, masks and training losses must agree to float tolerance.

Training losses compare only when sampling is not random: the test makes both samplers take every
candidate, so the dynamic and static paths train on the same anchors and proposals.
"""
import json
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
import pytest
import tensorflow as tf
import tf_keras

from tests import mask_rcnn_test_utils as utils
from conftest import COCO128_DIR

from object_detection.training import train_step
from object_detection.training import xla

_IMAGE_IDS = (34, 81, 263)
_SIZE = 64
# COCO ids folded into 3 classes: a 90-class model would run 90 per-class NMS (and XLA compile
# each); 3 keep the test fast and still exercise the per-class path.
_NUM_CLASSES = 3
_MAX_BOXES = 8  # ground truth padded to this many rows, as train_config.max_number_of_boxes

_STATIC = ('use_static_shapes: true use_static_shapes_for_eval: true use_matmul_crop_and_resize: '
           'true use_static_balanced_label_sampler: true use_matmul_gather_in_matcher: true ')


def _model(static, is_training):
  extra = 'clip_anchors_to_image: true ' + (_STATIC if static else '')
  config = utils.tiny_model_config(number_of_stages=3, num_classes=_NUM_CLASSES, extra=extra,
                                   size=_SIZE)
  config.faster_rcnn.second_stage_post_processing.batch_non_max_suppression.use_static_shapes = (
      static)
  from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
  return model_builder.build(config, is_training=is_training)


def _load():
  """3 real photos at 64x64 and their padded ground truth (boxes normalized, masks pycocotools')."""
  with open(os.path.join(COCO128_DIR, 'annotations', 'instances_train.json')) as f:
    coco = json.load(f)
  images = []
  labels = {'num_groundtruth_boxes': [], 'groundtruth_boxes': [], 'groundtruth_classes': [],
            'groundtruth_weights': [], 'groundtruth_instance_masks': []}
  for image_id in _IMAGE_IDS:
    info = next(i for i in coco['images'] if i['id'] == image_id)
    h, w = info['height'], info['width']
    image = Image.open(os.path.join(COCO128_DIR, 'images', info['file_name'])).convert('RGB')
    images.append(np.asarray(image.resize((_SIZE, _SIZE), Image.BILINEAR), np.float32))
    boxes = np.zeros([_MAX_BOXES, 4], np.float32)
    classes = np.zeros([_MAX_BOXES, _NUM_CLASSES], np.float32)
    masks = np.zeros([_MAX_BOXES, _SIZE, _SIZE], np.uint8)
    anns = [a for a in coco['annotations'] if a['image_id'] == image_id][:_MAX_BOXES]
    for j, a in enumerate(anns):
      rle = mask_utils.merge(mask_utils.frPyObjects(a['segmentation'], h, w))
      m = Image.fromarray(mask_utils.decode(rle) * 255).resize((_SIZE, _SIZE), Image.NEAREST)
      masks[j] = np.asarray(m) > 127
      x, y, bw, bh = a['bbox']
      boxes[j] = [y / h, x / w, (y + bh) / h, (x + bw) / w]
      classes[j, a['category_id'] % _NUM_CLASSES] = 1
    labels['num_groundtruth_boxes'].append(len(anns))
    labels['groundtruth_boxes'].append(boxes)
    labels['groundtruth_classes'].append(classes)
    labels['groundtruth_weights'].append((np.arange(_MAX_BOXES) < len(anns)).astype(np.float32))
    labels['groundtruth_instance_masks'].append(masks)
  labels = {k: tf.constant(np.stack(v)) for k, v in labels.items()}
  return tf.constant(np.stack(images)), labels


@pytest.fixture(scope='module')
def data():
  return _load()


@pytest.fixture(scope='module')
def weights(data):
  """Weights of one tiny model (seeded), shared by every model below."""
  tf_keras.utils.set_random_seed(0)
  model = _model(static=False, is_training=False)
  utils.build_variables(model, data[0])
  return tf.train.Checkpoint(model=model)


def _with_weights(model, weights, images, tmp_path):
  utils.build_variables(model, images)
  path = weights.write(str(tmp_path / 'ckpt'))
  tf.train.Checkpoint(model=model).read(path).assert_existing_objects_matched()
  return model


def _detections(model, images, jit_compile=False):
  def run(images):
    preprocessed, shapes = model.preprocess(images)
    return model.postprocess(model.predict(preprocessed, shapes), shapes)
  return {k: v.numpy() for k, v in tf.function(run, jit_compile=jit_compile)(images).items()}


def _losses(model, images, labels, unpad, jit_compile=False):
  def run(images, labels):
    preprocessed, shapes = model.preprocess(images)
    features = {'image': preprocessed, 'true_image_shape': shapes}
    return train_step.compute_losses(model, features, labels, unpad_groundtruth_tensors=unpad)
  fn = tf.function(run, jit_compile=jit_compile)
  return {k: float(v) for k, v in fn(images, labels).items()}


@pytest.mark.slow
def test_static_and_xla_inference_equal_the_dynamic_path_on_real_images(data, weights, tmp_path):
  # The XLA side is eval_util's per-batch function (predict, losses, postprocess) as
  # `--jit_compile` evaluation runs it, padded ground truth inside XLA.
  from object_detection import eval_util  # pylint: disable=g-import-not-at-top
  images, labels = data
  dynamic = _detections(_with_weights(_model(False, False), weights, images, tmp_path), images)
  static_model = _with_weights(_model(True, False), weights, images, tmp_path)
  preprocessed, shapes = static_model.preprocess(images)
  features = {'image': preprocessed, 'true_image_shape': shapes}
  plain = eval_util._make_compute_fn(static_model, True, jit_compile=False)(features, labels)  # pylint: disable=protected-access
  compiled = eval_util._make_compute_fn(static_model, True, jit_compile=True)(features, labels)  # pylint: disable=protected-access
  assert (dynamic['num_detections'] > 0).all()
  for other in (plain[0], compiled[0]):
    other = {k: v.numpy() for k, v in other.items()}
    for i in range(len(_IMAGE_IDS)):
      _assert_same_detections(other, dynamic, i)
  # The box classifier and mask losses score every proposal / detection (no random sampling).
  for key in ('Loss/BoxClassifierLoss/localization_loss',
              'Loss/BoxClassifierLoss/classification_loss', 'Loss/BoxClassifierLoss/mask_loss'):
    assert float(compiled[1][key]) == pytest.approx(float(plain[1][key]), rel=1e-5), key


# Tolerances: matmul crop-and-resize and CropAndResize interpolate in a different order (ROI crops
# differ by ~1e-6 relative, float rounding); the random-weight heads amplify that to ~1e-5 in scores
# and box coordinates.
_BOX_TOL = 1e-4
_SCORE_TOL = 1e-4
_MASK_TOL = 1e-3


def _assert_same_detections(got, expected, i, pasted_key=None):
  """Image i's detections agree one to one: each expected detection has its own detection of the
  same class whose box, score and box mask are within tolerance. Matched rather than compared row
  by row: random weights give near-tied scores, whose order can flip under float rounding."""
  n = int(expected['num_detections'][i])
  assert int(got['num_detections'][i]) == n
  free = list(range(n))
  for j in range(n):
    candidates = [k for k in free
                  if got['detection_classes'][i, k] == expected['detection_classes'][i, j]]
    distance = [np.abs(got['detection_boxes'][i, k] - expected['detection_boxes'][i, j]).max()
                for k in candidates]
    assert candidates, ('no detection of class', expected['detection_classes'][i, j])
    k = candidates[int(np.argmin(distance))]
    free.remove(k)
    assert min(distance) <= _BOX_TOL, (j, min(distance))
    assert abs(got['detection_scores'][i, k] - expected['detection_scores'][i, j]) <= _SCORE_TOL
    assert np.abs(got['detection_masks'][i, k] - expected['detection_masks'][i, j]).max() <= (
        _MASK_TOL)
    if pasted_key:
      # 0/1 masks at the input size: only pixels at the 0.5 threshold may differ (random-weight
      # mask probabilities sit near 0.5, so a fraction of a percent does).
      assert np.mean(got[pasted_key][i, k] != expected[pasted_key][i, j]) < 1e-2


def _take_every_candidate(self, indicator, batch_size, labels, scope=None):
  del self, batch_size, labels, scope
  return indicator


@pytest.mark.slow
def test_static_and_xla_training_losses_equal_the_dynamic_path(data, weights, tmp_path,
                                                                monkeypatch):
  # The two samplers draw random subsets in different ways (as in the TF OD API), so the losses
  # compare only with sampling made deterministic: both take every candidate (all 32 proposals
  # are candidates here, so the static path's fixed-size selection is full too).
  from object_detection.core import balanced_positive_negative_sampler as sampler_lib  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(sampler_lib.BalancedPositiveNegativeSampler, 'subsample',
                      _take_every_candidate)
  images, labels = data
  dynamic_model = _with_weights(_model(False, True), weights, images, tmp_path)
  dynamic = _losses(dynamic_model, images, labels, unpad=True)
  # train_config.unpad_groundtruth_tensors: false (the zero-weight padding rows kept) changes
  # nothing on the dynamic path either.
  padded = _losses(dynamic_model, images, labels, unpad=False)
  for key in dynamic:
    assert padded[key] == pytest.approx(dynamic[key], rel=1e-6, abs=1e-7), key
  static_model = _with_weights(_model(True, True), weights, images, tmp_path)
  static = _losses(static_model, images, labels, unpad=False)
  # One step of the train step --jit_compile builds (XLA forward, losses, backward; the update
  # outside): the losses it reports are those of the weights before the update.
  step = train_step.make_train_step(
      tf.distribute.get_strategy(), static_model, tf_keras.optimizers.SGD(0.01),
      static_model.trainable_variables, tf.Variable(0, dtype=tf.int64), jit_compile=True,
      unpad_groundtruth_tensors=False)
  before = [v.numpy() for v in static_model.trainable_variables]
  preprocessed, shapes = static_model.preprocess(images)
  out = step({'image': preprocessed, 'true_image_shape': shapes}, labels)
  compiled = {k: float(v) for k, v in out.items() if k != 'gradient_norm'}
  assert float(out['gradient_norm']) > 0
  assert any(not np.array_equal(b, v.numpy())
             for b, v in zip(before, static_model.trainable_variables))
  assert dynamic['Loss/BoxClassifierLoss/mask_loss'] > 0  # positives were sampled
  assert set(static) == set(dynamic) == set(compiled)
  for key in dynamic:
    assert static[key] == pytest.approx(dynamic[key], rel=1e-4, abs=1e-6), key
    assert compiled[key] == pytest.approx(dynamic[key], rel=1e-4, abs=1e-6), key


def _configs(faster_rcnn_text='', train_text=''):
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from object_detection.protos import pipeline_pb2  # pylint: disable=g-import-not-at-top
  pipeline = text_format.Parse(
      'model { faster_rcnn { num_classes: 1 image_resizer { fixed_shape_resizer { height: 64 '
      'width: 64 } } %s } } train_config { %s }' % (faster_rcnn_text, train_text),
      pipeline_pb2.TrainEvalPipelineConfig())
  return {'model': pipeline.model, 'train_config': pipeline.train_config}


def test_jit_compile_names_every_missing_static_shape_field():
  with pytest.raises(xla.JitCompileError) as e:
    xla.check(_configs(), training=True, inference=True)
  message = str(e.value)
  assert '\n' not in message
  for field in ('use_static_shapes: true', 'use_matmul_crop_and_resize: true',
                'use_static_balanced_label_sampler: true', 'clip_anchors_to_image: true',
                'train_config.unpad_groundtruth_tensors: false',
                'use_static_shapes_for_eval: true',
                'batch_non_max_suppression.use_static_shapes: true'):
    assert field in message, field
  ready = _configs(
      _STATIC + 'clip_anchors_to_image: true second_stage_post_processing { '
      'batch_non_max_suppression { use_static_shapes: true } }',
      'unpad_groundtruth_tensors: false')
  xla.check(ready, training=True, inference=True)
  ready['model'].faster_rcnn.image_resizer.keep_aspect_ratio_resizer.max_dimension = 64
  with pytest.raises(xla.JitCompileError, match='pad_to_max_dimension: true'):
    xla.check(ready, inference=True)


def _serve(export_dir, image):
  loaded = tf.saved_model.load(os.path.join(export_dir, 'saved_model'))
  serve = loaded.signatures['serving_default']
  graph_text = str(serve.graph.as_graph_def())
  return {k: v.numpy() for k, v in serve(input_tensor=image).items()}, graph_text


@pytest.mark.slow
def test_xla_export(data, weights, tmp_path):
  # pylint: disable=g-import-not-at-top
  from object_detection import exporter_lib_v2
  # pylint: enable=g-import-not-at-top
  images, _ = data
  dynamic_model = _with_weights(_model(False, False), weights, images, tmp_path)
  static_model = _with_weights(_model(True, False), weights, images, tmp_path)
  exporter_lib_v2.save_detection_model(dynamic_model, 'image_tensor', str(tmp_path / 'dynamic'))
  exporter_lib_v2.save_detection_model(static_model, 'image_tensor', str(tmp_path / 'xla'),
                                       jit_compile=True)
  # A real photo at its own size (the model resizes it to 64x64 inside the SavedModel).
  with open(os.path.join(COCO128_DIR, 'annotations', 'instances_train.json')) as f:
    info = next(i for i in json.load(f)['images'] if i['id'] == _IMAGE_IDS[0])
  photo = np.asarray(Image.open(os.path.join(COCO128_DIR, 'images', info['file_name']))
                     .convert('RGB'))[np.newaxis]
  expected, dynamic_graph = _serve(str(tmp_path / 'dynamic'), photo)
  got, xla_graph = _serve(str(tmp_path / 'xla'), photo)
  assert '_XlaMustCompile' in xla_graph and '_XlaMustCompile' not in dynamic_graph
  assert set(got) == set(expected)
  assert got['num_detections'][0] == expected['num_detections'][0] > 0
  assert got['detection_masks_reframed'].shape[2:] == photo.shape[1:3]
  _assert_same_detections(got, expected, 0, pasted_key='detection_masks_reframed')


def test_xla_export_refuses_openvino_output():
  # What exporter_main.py checks before building anything (exit 2, one line).
  from object_detection.utils import config_validation  # pylint: disable=g-import-not-at-top
  with pytest.raises(config_validation.UsageError,
                     match='remove one of --jit_compile and --output_format=openvino'):
    xla.check_export_flags(True, 'openvino')
  xla.check_export_flags(True, 'saved_model')
  xla.check_export_flags(False, 'openvino')


def test_the_static_sample_config_passes_the_jit_compile_check():
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  configs = config_util.get_configs_from_pipeline_file(
      os.path.join(root, 'samples', 'configs', 'mask_rcnn_resnet50_fpn_static_xla.config'))
  xla.check(configs, training=True, inference=True)
  dynamic = config_util.get_configs_from_pipeline_file(
      os.path.join(root, 'samples', 'configs', 'mask_rcnn_resnet50_fpn_coco.config'))
  with pytest.raises(xla.JitCompileError):
    xla.check(dynamic, training=True)
