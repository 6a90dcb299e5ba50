"""Golden key listings of TF OD API TF2 checkpoints, for tests/test_tfod_checkpoints.py.

Reference side (runs the TF OD API; imports only tensorflow, numpy, google.protobuf and the TF OD
API). Writes to `tests/testdata/tfod_golden/checkpoints/`:

  - `model_keys_{mask_5,mask_3,faster_5}.txt`: `tf.train.list_variables` (key <TAB> comma-separated
    shape) of `tf.train.Checkpoint(model=<DetectionModel>)`, the layout of a model zoo
    `checkpoint/ckpt-0`, for three Faster R-CNN ResNet-50 C4 models (`faster_rcnn_resnet50_keras`,
    64 x 64 fixed_shape_resizer) whose second-stage heads are those of
    `tests/mask_rcnn_test_utils.mask_rcnn_config_text` (two 3x3 mask convs, 14x14 masks, class-specific
    masks): Mask R-CNN with 5 and with 3 classes, and Faster R-CNN (2 stages) with 5 classes.
    Between `mask_5` and `mask_3` the class-dependent variables change shape; `mask_5` minus
    `faster_5` is the mask head.
  - `train_{momentum,adam}.txt` (only with `--train_record`): the keys of a checkpoint written by the
    TF OD API's own `model_lib_v2.train_loop` (one step, `num_steps_per_iteration=1`,
    `checkpoint_every_n=1`, the `mask_3` model, labels person / bicycle / car) that are not model
    variables (`optimizer/...`, `step`, `save_counter`), then one line
    `slot <TAB> <slot name> <TAB> <number of variables>` per optimizer slot name
    (`<model key>/.OPTIMIZER_SLOT/optimizer/<slot name>/...`). It shows which Keras optimizer the TF OD
    API builds on TF 2.20 (its builder uses `tf.compat.v1.keras.optimizers`, i.e. the legacy
    OptimizerV2: `optimizer/iter`, `optimizer/decay`, per-variable slots).

Rerun (in the reference environment, outside /work/main; about three minutes). The training listing
needs a TF OD API-format TFRecord with instance masks; write it with THIS project's python first:

  python dataset_tools/create_coco_tf_record.py --include_masks --noprogress \\
      --train_image_dir=samples/data/coco128_seg/images \\
      --train_annotations_file=samples/data/coco128_seg/annotations/instances_train.json \\
      --output_dir=/tmp/tfod_golden_records
  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/checkpoints.py \\
      --train_record=/tmp/tfod_golden_records/coco_train.record-00000-of-00001
"""

import argparse
import os
import re
import shutil
import tempfile

import tensorflow as tf

from object_detection import model_lib_v2
from object_detection.builders import model_builder
from object_detection.protos import pipeline_pb2
from google.protobuf import text_format

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
OUT_DIR = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'checkpoints')

_HYPERPARAMS = ('op: %s regularizer { l2_regularizer { weight: 0.0001 } } initializer { '
                'variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } }')

MODEL = """
model { faster_rcnn {
  num_classes: %(num_classes)d
  number_of_stages: %(stages)d
  image_resizer { fixed_shape_resizer { height: 64 width: 64 } }
  feature_extractor { type: 'faster_rcnn_resnet50_keras' first_stage_features_stride: 16
                      batch_norm_trainable: false }
  first_stage_anchor_generator { grid_anchor_generator { height: 32 width: 32 scales: [0.5, 1.0, 2.0]
      aspect_ratios: [0.5, 1.0, 2.0] height_stride: 16 width_stride: 16 } }
  first_stage_box_predictor_conv_hyperparams { %(conv)s }
  first_stage_nms_score_threshold: 0.0
  first_stage_nms_iou_threshold: 0.7
  first_stage_max_proposals: 16
  first_stage_localization_loss_weight: 2.0
  first_stage_objectness_loss_weight: 1.0
  initial_crop_size: 14
  maxpool_kernel_size: 2
  maxpool_stride: 2
  second_stage_batch_size: 8
  second_stage_box_predictor { mask_rcnn_box_predictor {
    fc_hyperparams { %(fc)s }
    conv_hyperparams { %(conv)s }
    predict_instance_masks: %(masks)s
    masks_are_class_agnostic: false
    mask_height: 14
    mask_width: 14
    mask_prediction_conv_depth: 0
    mask_prediction_num_conv_layers: 2
  } }
  second_stage_post_processing {
    batch_non_max_suppression { score_threshold: 0.0 iou_threshold: 0.6 max_detections_per_class: 10
                                max_total_detections: 10 }
    score_converter: SOFTMAX
  }
  second_stage_localization_loss_weight: 2.0
  second_stage_classification_loss_weight: 1.0
  second_stage_mask_prediction_loss_weight: 4.0
} }
"""

OPTIMIZERS = {
    'momentum': 'momentum_optimizer { learning_rate { constant_learning_rate { '
                'learning_rate: 0.0001 } } momentum_optimizer_value: 0.9 }',
    'adam': 'adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.0001 } } }',
}

TRAIN = """
train_config {
  batch_size: 1
  num_steps: 1
  optimizer { %(optimizer)s use_moving_average: false }
  max_number_of_boxes: 20
  unpad_groundtruth_tensors: false
}
train_input_reader {
  label_map_path: "%(label_map)s"
  load_instance_masks: true
  mask_type: PNG_MASKS
  tf_record_input_reader { input_path: "%(record)s" }
}
"""


def model_text(num_classes, stages):
  return MODEL % dict(num_classes=num_classes, stages=stages, conv=_HYPERPARAMS % 'CONV',
                      fc=_HYPERPARAMS % 'FC', masks='true' if stages == 3 else 'false')


def _write_listing(path, items):
  with open(path, 'w') as f:
    for key, shape in items:
      f.write('%s\t%s\n' % (key, ','.join(str(d) for d in shape)))


def write_model_keys(name, num_classes, stages, work_dir):
  config = text_format.Parse(model_text(num_classes, stages), pipeline_pb2.TrainEvalPipelineConfig())
  model = model_builder.build(config.model, is_training=False)
  preprocessed, shapes = model.preprocess(tf.zeros([1, 64, 64, 3]))
  model.postprocess(model.predict(preprocessed, shapes), shapes)
  path = tf.train.Checkpoint(model=model).write(os.path.join(work_dir, name))
  items = [(k, s) for k, s in tf.train.list_variables(path) if k.startswith('model/')]
  _write_listing(os.path.join(OUT_DIR, 'model_keys_%s.txt' % name), items)
  print('model_keys_%s.txt: %d keys' % (name, len(items)))


LABEL_MAP = ''.join('item { name: "%s" id: %d display_name: "%s" }\n' % (name, i + 1, name)
                    for i, name in enumerate(['person', 'bicycle', 'car']))


def write_training_keys(optimizer_name, record, work_dir):
  label_map = os.path.join(work_dir, 'label_map.pbtxt')
  with open(label_map, 'w') as f:
    f.write(LABEL_MAP)
  config_path = os.path.join(work_dir, 'train_%s.config' % optimizer_name)
  with open(config_path, 'w') as f:
    f.write(model_text(3, 3) + TRAIN % dict(optimizer=OPTIMIZERS[optimizer_name], record=record,
                                           label_map=label_map))
  model_dir = os.path.join(work_dir, 'model_dir_%s' % optimizer_name)
  model_lib_v2.train_loop(pipeline_config_path=config_path, model_dir=model_dir, train_steps=1,
                          checkpoint_every_n=1, num_steps_per_iteration=1)
  latest = tf.train.latest_checkpoint(model_dir)
  listing = tf.train.list_variables(latest)
  other = [(k, s) for k, s in listing
           if not k.startswith('model/') and k != '_CHECKPOINTABLE_OBJECT_GRAPH']
  slots = {}
  for key, _ in listing:
    match = re.search(r'\.OPTIMIZER_SLOT/optimizer/([^/]+)/', key)
    if match:
      slots[match.group(1)] = slots.get(match.group(1), 0) + 1
  reader = tf.train.load_checkpoint(latest)
  step = int(reader.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE'))
  path = os.path.join(OUT_DIR, 'train_%s.txt' % optimizer_name)
  _write_listing(path, other)
  with open(path, 'a') as f:
    for name, count in sorted(slots.items()):
      f.write('slot\t%s\t%d\n' % (name, count))
  print('train_%s.txt from %s (step %d): %s; slots %s' % (optimizer_name, latest, step,
                                                          [k for k, _ in other], slots))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--train_record', default=None)
  args = parser.parse_args()
  os.makedirs(OUT_DIR, exist_ok=True)
  work_dir = tempfile.mkdtemp(prefix='tfod_golden_checkpoints_')
  try:
    write_model_keys('mask_5', 5, 3, work_dir)
    write_model_keys('mask_3', 3, 3, work_dir)
    write_model_keys('faster_5', 5, 2, work_dir)
    if args.train_record:
      for name in sorted(OPTIMIZERS):
        write_training_keys(name, args.train_record, work_dir)
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == '__main__':
  main()
