"""evaluate_exported.py on a semantic segmentation export (semantic_evaluate_exported.py).

The tiny model of test_semantic_export.py (MobileNetV3-small FPN + FCN head, 64 px input, random
weights, classifier scaled so the per-pixel classes vary), exported once by that file's
`build_export` (conftest's `semantic_export`: export_inference_graph, as exporter_main.py). Eval
records of two
real coco128_seg photos of different sizes hold label maps painted from their COCO polygons
(person, umbrella, bed; teddy bear pixels = 255, ignored). evaluate_exported.evaluate_backend on
the pipeline config must give the IoU / Dice / pixel accuracy of a numpy confusion matrix of the
SavedModel's own `semantic_classes` against those label maps.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from object_detection import evaluate_exported
from object_detection import inference_backends
from object_detection import semantic_evaluate_exported
from object_detection.dataset_tools import coco_images
from object_detection.dataset_tools import semantic_annotations
from object_detection.dataset_tools import semantic_tf_record
from object_detection.utils import config_validation

import test_semantic_export as tse  # pylint: disable=g-bad-import-order

REPO_ROOT = tse.REPO_ROOT
COCO128 = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
# 000000000133 (480x640: bed, teddy bear), 000000000036 (640x481: umbrella, person).
PHOTOS = tse.PHOTOS
CLASS_NAMES = ('person', 'umbrella', 'bed')
VALUE_OF = {1: 1, 28: 2, 65: 3, 88: 255}  # COCO category id -> label id (teddy bear ignored)
EVAL_PART = """
eval_config { metrics_set: 'semantic_segmentation_metrics' batch_size: 1 }
eval_input_reader {
  label_map_path: '%s'
  shuffle: false
  num_epochs: 1
  tf_record_input_reader { input_path: '%s' }
}
"""


def _coco_label_maps():
  with open(os.path.join(COCO128, 'annotations', 'instances_val.json')) as f:
    data = json.load(f)
  images = {image['file_name']: image for image in data['images']}
  maps = {}
  for name in PHOTOS:
    image = images[name]
    annotations = [a for a in data['annotations'] if a['image_id'] == image['id']]
    label_map, _, _ = semantic_annotations.paint_coco_label_map(
        annotations, image['height'], image['width'], VALUE_OF)
    maps[name] = (str(image['id']), label_map)
  return maps


@pytest.fixture(scope='module')
def setup(tmp_path_factory, semantic_export):
  """Eval records of the 2 photos and a config reading them, for the tiny model that
  test_semantic_export.py exports (conftest's `semantic_export`, built once)."""
  root = tmp_path_factory.mktemp('semantic_evaluate_exported')
  label_maps = _coco_label_maps()
  record = str(root / 'semantic_val.record-00000-of-00001')
  with tf.io.TFRecordWriter(record) as writer:
    for name in PHOTOS:
      source_id, label_map = label_maps[name]
      read = coco_images.read_image(os.path.join(COCO128, 'images', name))
      writer.write(semantic_tf_record.build_semantic_example(
          read, name, source_id, label_map).SerializeToString())
  label_map_path = root / 'label_map.pbtxt'
  label_map_path.write_text(''.join("item { id: %d name: '%s' }\n" % (i + 1, name)
                                    for i, name in enumerate(CLASS_NAMES)))
  config_path = str(root / 'pipeline.config')
  with open(config_path, 'w') as f:
    f.write(tse.TINY_CONFIG + EVAL_PART % (label_map_path, record))
  return {'config': config_path, 'saved_model': semantic_export['saved_model'],
          'label_maps': label_maps, 'root': root}


def _numpy_metrics(pairs, num_classes):
  """IoU / Dice per class, their foreground means and pixel accuracy from (gt, pred) pairs."""
  matrix = np.zeros([num_classes, num_classes], np.int64)
  for groundtruth, prediction in pairs:
    keep = groundtruth != 255
    np.add.at(matrix, (groundtruth[keep].astype(int), prediction[keep].astype(int)), 1)
  tp = np.diag(matrix).astype(float)
  fp, fn = matrix.sum(0) - tp, matrix.sum(1) - tp
  with np.errstate(invalid='ignore'):
    iou, dice = tp / (tp + fp + fn), 2 * tp / (2 * tp + fp + fn)
  return iou, dice, np.nanmean(iou[1:]), np.nanmean(dice[1:]), tp.sum() / matrix.sum()


class _Recording(object):
  """A backend that keeps every image it is given and every output it returns."""

  def __init__(self, backend):
    self.backend, self.kind, self.path, self.calls = backend, backend.kind, backend.path, []

  def detect(self, image):
    outputs = self.backend.detect(image)
    self.calls.append((image.copy(), outputs))
    return outputs


def test_metrics_equal_numpy_of_savedmodel_outputs(setup):
  configs = evaluate_exported.load_eval_configs(setup['config'])
  backend = _Recording(inference_backends.load_backend(setup['saved_model']))
  result = evaluate_exported.evaluate_backend(backend, configs, progress=False)
  assert result['num_images'] == 2 and result['ms_per_image'] > 0
  pairs = []
  for name, (image, outputs) in zip(PHOTOS, backend.calls):
    # The SavedModel got each decoded photo at its original size ...
    np.testing.assert_array_equal(image, tse._photo(name))  # pylint: disable=protected-access
    classes = outputs['semantic_classes']
    groundtruth = setup['label_maps'][name][1]
    assert classes.shape == groundtruth.shape == image.shape[:2]
    # ... and its classes are the argmax of its probabilities at that size.
    np.testing.assert_array_equal(classes, np.argmax(outputs['semantic_probabilities'], -1))
    pairs.append((groundtruth, classes))
  # Real label maps: every class present, ignored (teddy bear) pixels left out.
  groundtruth_values = set(np.unique(np.concatenate([g.ravel() for g, _ in pairs])).tolist())
  assert groundtruth_values == {0, 1, 2, 3, 255}
  iou, dice, miou, mdice, accuracy = _numpy_metrics(pairs, len(CLASS_NAMES) + 1)
  metrics = result['metrics']
  prefix = 'SemanticSegmentation/'
  assert 0.0 < miou < 1.0
  assert metrics[prefix + 'mIoU'] == pytest.approx(miou, abs=1e-12)
  assert metrics[prefix + 'mDice'] == pytest.approx(mdice, abs=1e-12)
  assert metrics[prefix + 'pixel_accuracy'] == pytest.approx(accuracy, abs=1e-12)
  for k, name in enumerate(('background',) + CLASS_NAMES):
    assert metrics[prefix + 'IoU/' + name] == pytest.approx(iou[k], abs=1e-12), name
    assert metrics[prefix + 'Dice/' + name] == pytest.approx(dice[k], abs=1e-12), name
  # max_images=1: the first record's figures alone.
  first = evaluate_exported.evaluate_backend(backend, configs, max_images=1, progress=False)
  assert first['num_images'] == 1 and first['ms_per_image'] is None
  assert first['metrics'][prefix + 'pixel_accuracy'] == pytest.approx(
      _numpy_metrics(pairs[:1], len(CLASS_NAMES) + 1)[4], abs=1e-12)
  # The metrics JSON is strict JSON: a NaN (class absent everywhere) is written as null.
  path = str(setup['root'] / 'metrics.json')
  evaluate_exported.write_metrics_json(path, setup['saved_model'], backend.kind, dict(
      result, metrics=dict(metrics, **{prefix + 'IoU/x': float('nan')})), setup['config'])
  with open(path) as f:
    written = json.load(f)
  assert written['metrics'][prefix + 'IoU/x'] is None
  assert written['metrics'][prefix + 'mIoU'] == metrics[prefix + 'mIoU']


class _FakeBackend(object):
  kind = 'saved_model'
  path = 'exported/detector/saved_model'

  def __init__(self, outputs):
    self.outputs = outputs

  def detect(self, image):
    return self.outputs(image)


def test_mismatched_model_and_config_are_one_line_errors(setup):
  configs = evaluate_exported.load_eval_configs(setup['config'])
  detector = _FakeBackend(lambda image: {'num_detections': np.float32(0),
                                         'detection_boxes': np.zeros([1, 4], np.float32)})
  with pytest.raises(config_validation.ConfigError,
                     match=r'^--model=exported/detector/saved_model returns no semantic_classes '
                     r'\(outputs: detection_boxes, num_detections\)'):
    evaluate_exported.evaluate_backend(detector, configs, progress=False)
  too_many = _FakeBackend(lambda image: {'semantic_classes': np.full(image.shape[:2], 7, np.int32)})
  with pytest.raises(semantic_evaluate_exported.SemanticEvalError,
                     match=r'Prediction of image .* class id 7 outside \[0, 4\)'):
    evaluate_exported.evaluate_backend(too_many, configs, progress=False)
  # A semantic export evaluated with a detection config.
  with pytest.raises(config_validation.ConfigError, match='returns no num_detections'):
    evaluate_exported.detections_for_evaluator(
        {'semantic_classes': np.zeros([4, 4], np.int32)}, 4, 4, False)
