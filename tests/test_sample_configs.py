"""Every config the project ships (samples, benchmarks, parity tools) builds the model it describes,
for training and for inference, as the TF OD API's model builder would accept it (e.g. it refuses a
second_stage_batch_size larger than first_stage_max_proposals when training)."""

import glob
import os

import pytest

from object_detection.builders import model_builder
from object_detection.utils import config_util

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIGS = sorted(glob.glob(os.path.join(_ROOT, 'samples', 'configs', '*.config')) +
                  glob.glob(os.path.join(_ROOT, 'benchmarks', 'configs', '*.config')) +
                  glob.glob(os.path.join(_ROOT, 'tools', 'parity_configs', '*.config')))


def test_the_shipped_configs_are_found():
  assert len(_CONFIGS) >= 10, _CONFIGS


@pytest.mark.parametrize('path', _CONFIGS, ids=[os.path.relpath(p, _ROOT) for p in _CONFIGS])
def test_shipped_config_builds_for_training_and_inference(path):
  configs = config_util.get_configs_from_pipeline_file(path)
  meta = getattr(configs['model'], configs['model'].WhichOneof('model'))
  if configs['model'].WhichOneof('model') == 'faster_rcnn':
    assert meta.second_stage_batch_size <= meta.first_stage_max_proposals
  for is_training in (True, False):
    model = model_builder.build(configs['model'], is_training=is_training)
    assert model.num_classes == meta.num_classes
