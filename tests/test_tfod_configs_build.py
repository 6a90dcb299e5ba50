"""Real TF OD API sample configs (tests/testdata/tfod_configs/) build unchanged; the cheap ones also
run one inference pass with a small image_resizer override.

The protos are imported before TensorFlow: compiling stale protos (grpc_tools) after TF is loaded
segfaults in this environment."""

import os

from google.protobuf import text_format
from object_detection.protos import pipeline_pb2  # pylint: disable=g-bad-import-order
import pytest
import tensorflow as tf

from object_detection.builders import model_builder

_DIR = os.path.join(os.path.dirname(__file__), 'testdata', 'tfod_configs')
_CONFIGS = [
    # TF2 model zoo configs (configs/tf2 of the TF OD API).
    ('mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config', 3, True),
    ('faster_rcnn_resnet50_v1_640x640_coco17_tpu-8.config', 2, True),
    ('faster_rcnn_resnet50_v1_fpn_640x640_coco17_tpu-8.config', 2, True),
    ('faster_rcnn_resnet101_v1_1024x1024_coco17_tpu-8.config', 2, False),
    ('faster_rcnn_resnet152_v1_800x1333_coco17_gpu-8.config', 2, False),
    # TF1 sample configs: their TF1 extractor names build the TF2 extractors.
    ('faster_rcnn_resnet101_pets.config', 2, True),
    ('mask_rcnn_inception_v2_coco.config', 3, False),
]
# TF1 atrous ResNet configs (first_stage_features_stride: 8): the TF OD API's TF2 ResNet extractors
# support stride 16 only, and so do these (a clear error, not another network).
_REFUSED = ['mask_rcnn_resnet50_atrous_coco.config', 'mask_rcnn_resnet101_atrous_coco.config']


def _model_config(name):
  path = os.path.join(_DIR, name)
  if not os.path.exists(path):
    pytest.fail('missing sample config %s' % path)
  with open(path) as f:
    return text_format.Parse(f.read(), pipeline_pb2.TrainEvalPipelineConfig()).model


@pytest.mark.parametrize('name', _REFUSED)
def test_tf1_atrous_resnet_config_is_refused_clearly(name):
  with pytest.raises(ValueError, match='first_stage_features_stride must be 16'):
    model_builder.build(_model_config(name), is_training=True)


@pytest.mark.slow
@pytest.mark.parametrize('name,stages,forward', _CONFIGS)
def test_tfod_config_builds(name, stages, forward):
  model_config = _model_config(name)
  model = model_builder.build(model_config, is_training=True)
  assert model.number_of_stages == stages
  assert model.num_classes == model_config.faster_rcnn.num_classes
  if forward:
    # Inference at a small size (CPU budget): override the resizer and the proposal / detection
    # counts only, everything else as in the file.
    frcnn = model_config.faster_rcnn
    frcnn.image_resizer.Clear()
    frcnn.image_resizer.fixed_shape_resizer.height = 96
    frcnn.image_resizer.fixed_shape_resizer.width = 96
    frcnn.first_stage_max_proposals = 20
    nms = frcnn.second_stage_post_processing.batch_non_max_suppression
    nms.max_detections_per_class = 5
    nms.max_total_detections = 5
    infer = model_builder.build(model_config, is_training=False)
    det = infer(tf.random.uniform([1, 120, 100, 3], 0, 255))
    assert det['detection_boxes'].shape == (1, 5, 4)
    assert det['detection_multiclass_scores'].shape == (1, 5, frcnn.num_classes + 1)
    if stages == 3:
      mask = frcnn.second_stage_box_predictor.mask_rcnn_box_predictor
      assert det['detection_masks'].shape == (1, 5, mask.mask_height, mask.mask_width)
