"""Whole models against the TF OD API: golden fixtures written by tools/tfod_parity.py --write_golden.

Each folder of tests/testdata/tfod_golden/models/ holds what the TF OD API's own model computed for one
config (tools/parity_configs/*.config at a small size, sampling taking every candidate so the losses are
deterministic): its checkpoint key listing, two real coco128_seg photos with their annotations, and its
detections, proposals, RPN outputs, box classifier outputs, masks and training losses, with every
variable set to `deterministic_weights.value_for(checkpoint key)`. Here our model is built from the same
config, must list exactly the same checkpoint keys and shapes, gets the same weights by key, and must
give the same tensors: boxes and scores within 1e-4, masks within 1e-3, losses within 1e-4 relative,
the same classes and counts.

Regenerate (with the TF OD API set up as docs/parity.md says):
  python tools/tfod_parity.py --tfod_research_dir=... --python=... \\
      --pipeline_config_path=tools/parity_configs/<config> --image_size=96 --max_image_side=160 \\
      --config_override='model { faster_rcnn { first_stage_max_proposals: 24 second_stage_post_processing {
        batch_non_max_suppression { max_detections_per_class: 8 max_total_detections: 8 } } } }' \\
      --write_golden=tests/testdata/tfod_golden/models/<name>
"""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection.builders import model_builder
from object_detection.protos import pipeline_pb2
from object_detection.utils import checkpoint_utils

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GOLDEN = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'models')
_MODELS = sorted(os.listdir(_GOLDEN)) if os.path.isdir(_GOLDEN) else []


def _load(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


_parity = _load('tfod_parity', os.path.join(_REPO, 'tools', 'tfod_parity.py'))
_weights = _load('deterministic_weights',
                 os.path.join(_REPO, 'tools', 'tfod_golden', 'deterministic_weights.py'))


def _reference_keys(folder):
  keys = {}
  with open(os.path.join(folder, 'keys.txt')) as f:
    for line in f:
      key, shape = line.rstrip('\n').split('\t')
      if key != '_CHECKPOINTABLE_OBJECT_GRAPH':
        keys[key] = shape
  return keys


def _our_keys(model):
  return {prefix + '.ATTRIBUTES/VARIABLE_VALUE': str([int(d) for d in var.shape])
          for prefix, var in checkpoint_utils.variable_keys({'model': model}).items()}


def _set_weights(model):
  for prefix, var in checkpoint_utils.variable_keys({'model': model}).items():
    var.assign(_weights.value_for(prefix, var.shape))


def test_golden_models_exist():
  # One per extractor family at least: ResNet C4, ResNet FPN, Inception-ResNet-v2.
  assert {'resnet50_c4', 'resnet50_fpn', 'inception_resnet_v2'} <= set(_MODELS), _MODELS


@pytest.mark.slow
@pytest.mark.parametrize('name', _MODELS)
def test_model_matches_the_tf_od_api(name):
  folder = os.path.join(_GOLDEN, name)
  pipeline = pipeline_pb2.TrainEvalPipelineConfig()
  with open(os.path.join(folder, 'pipeline.config')) as f:
    text_format.Merge(f.read(), pipeline)
  inputs = dict(np.load(os.path.join(folder, 'inputs.npz')))
  reference = np.load(os.path.join(folder, 'reference.npz'))

  model = model_builder.build(pipeline.model, is_training=False)
  preprocessed, true_shapes, groundtruth = _parity.prepare(model, inputs)
  model.predict(preprocessed, true_shapes)
  assert _our_keys(model) == _reference_keys(folder)
  _set_weights(model)
  ours = {'input/preprocessed': preprocessed.numpy(), 'input/true_image_shapes': true_shapes.numpy()}
  prediction_dict = model.predict(preprocessed, true_shapes)
  ours.update(_parity._to_numpy_dict('infer/', prediction_dict))  # pylint: disable=protected-access
  ours.update(_parity._to_numpy_dict(  # pylint: disable=protected-access
      'infer/', model.postprocess(prediction_dict, true_shapes)))
  for i, mask in enumerate(groundtruth['groundtruth_masks_list']):
    ours['input/masks/%d' % i] = mask.numpy()
  for i, boxes in enumerate(groundtruth['groundtruth_boxes_list']):
    ours['input/boxes/%d' % i] = boxes.numpy()

  train_model = model_builder.build(pipeline.model, is_training=True)
  train_model._is_training = False  # pylint: disable=protected-access
  train_model.predict(preprocessed, true_shapes)
  train_model._is_training = True  # pylint: disable=protected-access
  _set_weights(train_model)
  train_model.provide_groundtruth(**groundtruth)
  losses = train_model.loss(train_model.predict(preprocessed, true_shapes), true_shapes)
  ours.update(_parity._to_numpy_dict('train/', losses))  # pylint: disable=protected-access

  rows = _parity.compare(reference, ours, other_tolerance=(1e-4, 1e-4))
  failed = [r for r in rows if not r[5]]
  assert not failed, '\n'.join('%s: max|d| %s rel %s' % (r[0], r[3], r[4]) for r in failed)
  assert any(r[0].startswith('train/Loss/') for r in rows)
  assert any(r[0] == 'infer/detection_boxes' for r in rows)
