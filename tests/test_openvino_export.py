"""OpenVINO IR export, evaluation on the IR and prediction with it (issue 13).

A tiny Mask R-CNN (the CPU sample config at 64 px, 8 detections) is built; its second-stage class
and mask predictors are scaled so that scores are well apart and mask probabilities leave 0.5
(an untrained model's near-equal scores would make the detection order a coin toss). It is
exported once as SavedModel + IR (`export_openvino.write_ir_into_export`, the hook of
`exporter_main.py --output_format=openvino`), and:
  * the IR's detections on real coco128_seg photos equal the SavedModel's (boxes, scores,
    classes, box masks, image masks),
  * `evaluate_exported` gives the same COCO metrics for both on real eval records, and gives 1.0
    for a backend that returns the ground truth (the evaluation's coordinates, classes and masks
    are right),
  * predict --model=model.xml writes overlays and COCO JSON,
  * bad --model paths and a string-input export are one-line errors with exit status 2.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from conftest import Launched  # pylint: disable=g-bad-import-order
from object_detection import evaluate_exported
from object_detection import export_openvino
from object_detection import exporter_lib_v2
from object_detection import inference_backends
from object_detection import predict

# openvino is in the `test` extra: a missing package fails these tests, it does not skip them.
import openvino  # pylint: disable=g-import-not-at-top,wrong-import-position

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128_DIR = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
SAMPLE_CONFIG = os.path.join(REPO_ROOT, 'samples', 'configs',
                             'mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config')
# Real val photos of different sizes and aspect ratios (480x640, 640x481, 248x640).
VAL_IMAGE_IDS = (36, 133, 597)
MAX_DETECTIONS = 8
# The categories of those photos (COCO ids 1, 22, 28, 65, 88), renumbered 1..5 in the eval JSON and
# records: post-processing runs one NMS per class, and the sample's 90 classes make the export, the
# IR conversion and every SavedModel / IR run much slower, for the same checks.
NUM_CLASSES = 5
TINY_OVERRIDE = """
model {
  faster_rcnn {
    num_classes: %d
    image_resizer { keep_aspect_ratio_resizer { min_dimension: 64 max_dimension: 64 } }
    first_stage_max_proposals: 16
    second_stage_batch_size: 16
    second_stage_post_processing {
      batch_non_max_suppression {
        score_threshold: 0.0 iou_threshold: 0.6
        max_detections_per_class: %d max_total_detections: %d
      }
    }
  }
}
train_config { optimizer { use_moving_average: false } }
""" % (NUM_CLASSES, MAX_DETECTIONS, MAX_DETECTIONS)


def _image_path(image_id):
  return os.path.join(COCO128_DIR, 'images', '%012d.jpg' % image_id)


def _decoded(image_id):
  with open(_image_path(image_id), 'rb') as f:
    return tf.io.decode_jpeg(f.read(), channels=3).numpy()


def _spread_predictions(model):
  """Scales the box classifier and the class / mask predictors of a fresh model.

  A fresh model's box-classifier features are ~1e-6 (ReLU layers without biases scale linearly),
  so all NUM_CLASSES + 1 softmax scores are about equal and all mask probabilities ~0.5. Scaling
  these kernels spreads the scores (gaps > 1e-4) and moves the mask probabilities away from 0.5;
  the objectness kernels likewise.
  """
  # Found by the model part they belong to: Keras layer names ('dense', 'dense_1', ...) depend on
  # what else the test process built before.
  scaled = []
  parts = ((model._feature_extractor_for_box_classifier_features, 'kernel', 60.0),  # pylint: disable=protected-access
           (model._mask_rcnn_box_predictor, 'ClassPredictor', 60.0),  # pylint: disable=protected-access
           (model._mask_rcnn_box_predictor, 'MaskPredictor', 3000.0),  # pylint: disable=protected-access
           # Distinct objectness: the proposals kept by the first-stage NMS are not a tie-break.
           (model._first_stage_box_predictor, 'ClassPredictor', 1e5))  # pylint: disable=protected-access
  for part, marker, factor in parts:
    for variable in part.variables:
      if 'kernel' in variable.name and marker in variable.name:
        variable.assign(variable * factor)
        scaled.append(variable.name)
  assert len(scaled) == 9, scaled


@pytest.fixture(scope='module')
def export(tmp_path_factory):
  """{'dir', 'saved_model', 'xml', 'config', 'records', 'label_map', 'model'}."""
  from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import coco_tf_record  # pylint: disable=g-import-not-at-top
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('openvino')
  # Eval records of three real val photos (polygon masks -> PNG masks).
  with open(os.path.join(COCO128_DIR, 'annotations', 'instances_val.json')) as f:
    data = json.load(f)
  data['images'] = [im for im in data['images'] if im['id'] in VAL_IMAGE_IDS]
  annotations = [a for a in data['annotations'] if a['image_id'] in VAL_IMAGE_IDS]
  new_id = {old: i + 1 for i, old in enumerate(sorted({a['category_id'] for a in annotations}))}
  assert len(new_id) == NUM_CLASSES
  data['categories'] = [dict(c, id=new_id[c['id']]) for c in data['categories']
                        if c['id'] in new_id]
  data['annotations'] = [dict(a, category_id=new_id[a['category_id']]) for a in annotations]
  assert len(data['images']) == len(VAL_IMAGE_IDS) and data['annotations']
  image_dir = root / 'images'
  image_dir.mkdir()
  for image in data['images']:
    shutil.copy(os.path.join(COCO128_DIR, 'images', image['file_name']), image_dir)
  annotations = root / 'val.json'
  annotations.write_text(json.dumps(data))
  records = root / 'records'
  coco_tf_record.convert([('val', str(image_dir), str(annotations))], str(records),
                         include_masks=True, show_progress=False)
  record_glob = str(records / 'coco_val.record-*')
  label_map = str(records / 'label_map.pbtxt')
  configs = config_util.get_configs_from_pipeline_file(SAMPLE_CONFIG,
                                                       config_override=TINY_OVERRIDE)
  for input_config in (configs['train_input_config'], configs['eval_input_configs'][0]):
    input_config.label_map_path = label_map
    input_config.tf_record_input_reader.input_path[:] = [record_glob]
  pipeline_config = config_util.create_pipeline_proto_from_configs(configs)
  # Seeds Python's random too (tf_keras initializers use it). Seed 1: every photo's detections
  # have masks (seed 0 left 597's all below 0.5 with these 5 classes).
  tf_keras.utils.set_random_seed(1)
  model = model_builder.build(configs['model'], is_training=False)
  checkpoint_utils.build_model_variables(model, (64, 64))
  _spread_predictions(model)
  output = exporter_lib_v2.save_detection_model(
      model, 'image_tensor', str(root / 'export'), pipeline_config,
      extra_outputs_fn=export_openvino.write_ir_into_export)
  return {'dir': output, 'saved_model': os.path.join(output, 'saved_model'),
          'xml': os.path.join(output, 'openvino', 'model.xml'),
          'config': os.path.join(output, 'pipeline.config'), 'image_dir': str(image_dir),
          'annotations': str(annotations), 'records': record_glob, 'label_map': label_map}


@pytest.fixture(scope='module')
def backends(export):
  return (inference_backends.load_backend(export['saved_model']),
          inference_backends.load_backend(export['xml']))


@pytest.mark.slow
def test_export_layout_and_ir_interface(export):
  assert sorted(os.listdir(export['dir'])) == ['checkpoint', 'openvino', 'pipeline.config',
                                               'saved_model']
  assert sorted(os.listdir(os.path.dirname(export['xml']))) == ['model.bin', 'model.xml']
  assert not [n for n in os.listdir(os.path.dirname(export['dir'])) if n.startswith('.')]
  model = openvino.Core().read_model(export['xml'])
  assert [i.get_any_name() for i in model.inputs] == ['input_tensor']
  assert model.inputs[0].get_element_type().get_type_name() == 'u8'
  assert str(model.inputs[0].get_partial_shape()) == '[1,?,?,3]'
  names = sorted(o.get_any_name() for o in model.outputs)
  assert names == sorted(['num_detections', 'detection_boxes', 'detection_scores',
                          'detection_classes', 'detection_masks', 'detection_multiclass_scores',
                          'detection_anchor_indices', 'raw_detection_boxes',
                          'raw_detection_scores'])
  # FP32 weights: no f16 constant in the IR.
  with open(export['xml']) as f:
    assert 'element_type="f16"' not in f.read()


@pytest.mark.slow
@pytest.mark.parametrize('image_id', VAL_IMAGE_IDS)
def test_ir_detections_match_the_saved_model(backends, image_id):
  saved_model, ir = backends
  assert ir.inference_precision == 'f32'  # not the CPU plugin's bf16 (see docs/openvino.md)
  image = _decoded(image_id)
  ref, out = saved_model.detect(image), ir.detect(image)
  n = int(ref['num_detections'])
  assert n == MAX_DETECTIONS and int(out['num_detections']) == n
  scores = ref['detection_scores'][:n]
  assert np.min(np.abs(np.diff(scores))) > 1e-4, scores  # distinct: the order is well defined
  np.testing.assert_allclose(out['detection_scores'][:n], scores, atol=1e-5)
  np.testing.assert_array_equal(out['detection_classes'][:n], ref['detection_classes'][:n])
  assert np.all(ref['detection_classes'][:n] >= 1)  # label-map ids
  np.testing.assert_allclose(out['detection_boxes'][:n], ref['detection_boxes'][:n], atol=1e-4)
  np.testing.assert_allclose(out['detection_masks'][:n], ref['detection_masks'][:n], atol=1e-4)
  probabilities = ref['detection_masks'][:n]
  assert np.mean(np.abs(probabilities - 0.5) > 0.05) > 0.5  # masks decide, not rounding noise
  # Image masks: the SavedModel's in-graph detection_masks_reframed vs the host pasting of the
  # IR's box masks (same function); only pixels at probability ~0.5 may differ.
  h, w = image.shape[:2]
  assert out['detection_masks_reframed'].shape == (MAX_DETECTIONS, h, w)
  assert out['detection_masks_reframed'].dtype == np.uint8
  ref_masks = ref['detection_masks_reframed'][:n]
  assert ref_masks.sum() > 0
  differing = np.mean(out['detection_masks_reframed'][:n] != ref_masks)
  assert differing < 1e-3, differing


class _GroundTruthBackend(object):
  """Returns each eval image's COCO ground truth as its detections (score 1)."""

  kind = 'ground_truth'

  def __init__(self, annotations_path):
    from pycocotools import coco  # pylint: disable=g-import-not-at-top
    self._coco = coco.COCO(annotations_path)
    self._by_hash = {}
    for image_id in self._coco.getImgIds():
      self._by_hash[hashlib.sha1(_decoded(image_id).tobytes()).hexdigest()] = image_id

  def detect(self, image):
    image_id = self._by_hash[hashlib.sha1(image.tobytes()).hexdigest()]
    h, w = image.shape[:2]
    anns = self._coco.loadAnns(self._coco.getAnnIds(imgIds=[image_id]))
    boxes = np.array([[a['bbox'][1] / h, a['bbox'][0] / w, (a['bbox'][1] + a['bbox'][3]) / h,
                       (a['bbox'][0] + a['bbox'][2]) / w] for a in anns], np.float32)
    return {'num_detections': np.float32(len(anns)), 'detection_boxes': boxes,
            'detection_scores': np.ones(len(anns), np.float32),
            'detection_classes': np.array([a['category_id'] for a in anns], np.float32),
            'detection_masks_reframed': np.stack([self._coco.annToMask(a) for a in anns])}


@pytest.mark.slow
def test_evaluate_exported_ir_equals_saved_model_and_ground_truth_scores_one(export, backends):
  configs = evaluate_exported.load_eval_configs(export['config'])
  perfect = evaluate_exported.evaluate_backend(_GroundTruthBackend(export['annotations']),
                                               configs, progress=False)
  assert perfect['num_images'] == len(VAL_IMAGE_IDS)
  for key in ('DetectionBoxes_Precision/mAP', 'DetectionMasks_Precision/mAP',
              'DetectionMasks_Precision/mAP@.50IOU'):
    assert perfect['metrics'][key] == pytest.approx(1.0, abs=1e-6), key
  results = [evaluate_exported.evaluate_backend(backend, configs, progress=False)
             for backend in backends]
  assert results[0]['num_images'] == results[1]['num_images'] == len(VAL_IMAGE_IDS)
  assert set(results[0]['metrics']) == set(results[1]['metrics']) == set(perfect['metrics'])
  for key, value in results[0]['metrics'].items():
    assert results[1]['metrics'][key] == pytest.approx(value, abs=5e-3), key
  assert results[1]['ms_per_image'] > 0


def _run(args):
  return subprocess.run([sys.executable] + args, capture_output=True, text=True, cwd=REPO_ROOT,
                        timeout=300)


def test_bad_model_paths_are_one_line_exit_2(tmp_path):
  (tmp_path / 'model.xml').write_text('<net/>')  # no model.bin
  cases = {
      str(tmp_path / 'missing' / 'model.xml'): 'does not exist',
      str(tmp_path / 'model.xml'): 'model.bin is missing',
      str(tmp_path): 'neither an OpenVINO IR',
  }
  for path, message in cases.items():
    proc = _run(['-m', 'object_detection.evaluate_exported', '--model=' + path,
                 '--pipeline_config_path=' + SAMPLE_CONFIG])
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if l.startswith('Error')]
    assert len(lines) == 1 and message in lines[0] and '--model=' + path in lines[0], proc.stderr
    assert 'Traceback' not in proc.stderr
  with pytest.raises(inference_backends.BackendUsageError, match='neither an OpenVINO IR'):
    inference_backends.load_backend(str(tmp_path / 'nothing'))


@pytest.fixture(scope='module', autouse=True)
def string_input_export(tmp_path_factory):
  """(tmp folder, conftest.Launched): the exporter_main.py launch of the test below, started as
  the module's first test starts, so that its start-up runs beside the export fixture's work."""
  tmp = tmp_path_factory.mktemp('string_input')
  run = Launched([sys.executable, 'exporter_main.py', '--input_type=encoded_image_string_tensor',
                  '--output_format=openvino', '--pipeline_config_path=' + SAMPLE_CONFIG,
                  '--trained_checkpoint_dir=' + str(tmp), '--output_directory=' + str(tmp / 'out')],
                 tmp_path_factory.mktemp('string_input_logs'))
  yield tmp, run
  run.close()


def test_string_input_export_is_refused_before_building(string_input_export):
  tmp_path, run = string_input_export
  proc = run.result()
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith(
      'Usage error: --input_type=encoded_image_string_tensor cannot be converted to OpenVINO IR')
  assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_predict_with_the_ir_writes_overlays(export, tmp_path):
  out = tmp_path / 'predictions'
  summary = predict.run_predictions(export['xml'], export['image_dir'], str(out),
                                    label_map_path=export['label_map'], min_score_thresh=0.0)
  assert summary['num_processed'] == len(VAL_IMAGE_IDS) and not summary['skipped']
  assert summary['has_masks'] and summary['num_above_thresh'] == MAX_DETECTIONS * 3
  for image_id in VAL_IMAGE_IDS:
    overlay = np.array(__import__('PIL.Image').Image.open(out / ('%012d.png' % image_id)))
    assert overlay.shape == _decoded(image_id).shape
    assert np.any(overlay != _decoded(image_id))  # something was drawn
  with open(out / 'detections.json') as f:
    results = json.load(f)
  assert len(results) == MAX_DETECTIONS * 3 and all('segmentation' in r for r in results)
