"""Export / evaluation parity on real data (the whole stack, end to end).

Trains a few steps with the real `model_main.py` on a few coco128_seg images, evaluates the final
checkpoint in the same run (`--eval_every_n`), exports it (`exporter_lib_v2.export_inference_graph`,
what `exporter_main.py` runs), runs `object_detection.predict` (its main, with the command's flags)
on the evaluated images, scores the predict JSON with
pycocotools against the same ground truth, and checks that every COCO box and mask metric equals
the one model_main.py reported for that checkpoint (to 1e-3).

Only training runs in a subprocess (`--seed` makes TensorFlow ops deterministic process-wide); the
conversion, export and prediction run in this process, which has TensorFlow imported already: three
process launches (imports, TensorFlow start-up) less. Their command lines are tested by
test_create_coco_tf_record, test_exporter / test_kill_resume and test_predict.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from google.protobuf import text_format
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128_DIR = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
# The smallest sample model (a missing or renamed file fails the tests).
SAMPLE_CONFIG = os.path.join(REPO_ROOT, 'samples', 'configs',
                             'mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config')
# The model overfits two training images, which are then evaluated, so that the compared metrics
# are well above zero (a from-scratch model after a few steps scores 0.0 everywhere, and 0 == 0
# proves nothing). Their instances are large (a zebra; an airplane), which a tiny model learns in
# a few steps, and the run is seeded (`--seed`): an unseeded run on the first two images (smaller
# objects) once left every metric at 0.0 in CI.
IMAGE_IDS = (34, 81)
NUM_VAL_IMAGES = len(IMAGE_IDS)
SEED = 0
TRAIN_STEPS = 80
IMAGE_SIZE = 96
METRIC_NAMES = ('Precision/mAP', 'Precision/mAP@.50IOU', 'Precision/mAP@.75IOU',
                'Precision/mAP (small)', 'Precision/mAP (medium)', 'Precision/mAP (large)',
                'Recall/AR@1', 'Recall/AR@10', 'Recall/AR@100', 'Recall/AR@100 (small)',
                'Recall/AR@100 (medium)', 'Recall/AR@100 (large)')


def _subset(annotations_path, image_ids, output_path, image_dir):
  """Writes a COCO JSON with the images `image_ids`, their annotations and their categories.

  The categories of those images are renumbered 1..K (K = 2: zebra, airplane) instead of COCO's
  ids up to 90, and the model gets num_classes K: post-processing runs one NMS per class, and 90
  classes would make training, evaluation and export trace (and save) a much larger graph than
  the two classes these images show. Returns (sorted image ids, K).
  """
  with open(annotations_path) as f:
    data = json.load(f)
  keep = set(image_ids)
  subset = dict(data)
  subset['images'] = [im for im in data['images'] if im['id'] in keep]
  annotations = [a for a in data['annotations'] if a['image_id'] in keep]
  new_id = {old: i + 1 for i, old in enumerate(sorted({a['category_id'] for a in annotations}))}
  subset['categories'] = [dict(c, id=new_id[c['id']]) for c in data['categories']
                          if c['id'] in new_id]
  subset['annotations'] = [dict(a, category_id=new_id[a['category_id']]) for a in annotations]
  with open(output_path, 'w') as f:
    json.dump(subset, f)
  os.makedirs(image_dir, exist_ok=True)
  for image in subset['images']:
    shutil.copy(os.path.join(COCO128_DIR, 'images', image['file_name']), image_dir)
  return sorted(keep), len(new_id)


def _run(args, timeout=900):
  proc = subprocess.run([sys.executable] + args, capture_output=True, text=True, cwd=REPO_ROOT,
                        timeout=timeout)
  assert proc.returncode == 0, '%s failed:\n%s\n%s' % (args[0], proc.stdout[-3000:],
                                                       proc.stderr[-5000:])
  return proc


def _write_config(tmp, records_dir, label_map_path, num_classes):
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(SAMPLE_CONFIG)
  model = configs['model']
  model.faster_rcnn.num_classes = num_classes
  resizer = model.faster_rcnn.image_resizer
  resizer.keep_aspect_ratio_resizer.min_dimension = IMAGE_SIZE
  resizer.keep_aspect_ratio_resizer.max_dimension = IMAGE_SIZE
  model.faster_rcnn.first_stage_max_proposals = min(model.faster_rcnn.first_stage_max_proposals,
                                                    32)
  model.faster_rcnn.second_stage_batch_size = min(model.faster_rcnn.second_stage_batch_size, 32)
  train_config = configs['train_config']
  train_config.num_steps = TRAIN_STEPS
  train_config.batch_size = 2
  train_config.ClearField('fine_tune_checkpoint')
  train_config.ClearField('optimizer')
  text_format.Merge('adam_optimizer { learning_rate { constant_learning_rate {'
                    ' learning_rate: 0.002 } } }', train_config.optimizer)
  train_config.ClearField('data_augmentation_options')
  # The seed recipe's early stopping / best checkpoint need periodic evaluation: not here.
  for field in ('early_stopping', 'best_checkpoint_metric'):
    if train_config.HasField(field):
      train_config.ClearField(field)
  train_input = configs['train_input_config']
  train_input.label_map_path = label_map_path
  train_input.tf_record_input_reader.ClearField('input_path')
  train_input.tf_record_input_reader.input_path.append(
      os.path.join(records_dir, 'coco_train.record-?????-of-00001'))
  eval_input = configs['eval_input_configs'][0]
  eval_input.label_map_path = label_map_path
  eval_input.tf_record_input_reader.ClearField('input_path')
  eval_input.tf_record_input_reader.input_path.append(
      os.path.join(records_dir, 'coco_val.record-?????-of-00001'))
  eval_config = configs['eval_config']
  eval_config.num_examples = NUM_VAL_IMAGES
  eval_config.num_visualizations = 0
  eval_config.ClearField('metrics_set')
  eval_config.metrics_set.extend(['coco_detection_metrics', 'coco_mask_metrics'])
  pipeline = config_util.create_pipeline_proto_from_configs(configs)
  config_dir = os.path.join(tmp, 'config')
  config_util.save_pipeline_config(pipeline, config_dir)
  return os.path.join(config_dir, 'pipeline.config')


def _coco_stats(gt_json, results_json, image_ids, iou_type):
  # pylint: disable=g-import-not-at-top
  from pycocotools import coco
  from pycocotools import cocoeval
  # pylint: enable=g-import-not-at-top
  ground_truth = coco.COCO(gt_json)
  detections = ground_truth.loadRes(results_json)
  evaluator = cocoeval.COCOeval(ground_truth, detections, iou_type)
  evaluator.params.imgIds = list(image_ids)
  evaluator.evaluate()
  evaluator.accumulate()
  evaluator.summarize()
  return dict(zip(METRIC_NAMES, evaluator.stats))


@pytest.mark.slow
def test_predict_json_scores_like_model_main_eval(tmp_path, capsys):
  # pylint: disable=g-import-not-at-top
  from object_detection import exporter_lib_v2
  from object_detection import predict
  from object_detection.dataset_tools import coco_tf_record
  # pylint: enable=g-import-not-at-top
  tmp = str(tmp_path)
  annotations_dir = os.path.join(COCO128_DIR, 'annotations')
  train_json = os.path.join(tmp, 'train.json')
  val_json = os.path.join(tmp, 'val.json')
  _subset(os.path.join(annotations_dir, 'instances_train.json'), IMAGE_IDS, train_json,
          os.path.join(tmp, 'train_images'))
  val_ids, num_classes = _subset(os.path.join(annotations_dir, 'instances_train.json'), IMAGE_IDS,
                                 val_json, os.path.join(tmp, 'val_images'))
  assert num_classes == 2
  records_dir = os.path.join(tmp, 'records')
  coco_tf_record.convert([('train', os.path.join(tmp, 'train_images'), train_json),
                          ('val', os.path.join(tmp, 'val_images'), val_json)], records_dir,
                         include_masks=True, show_progress=False)
  label_map_path = os.path.join(records_dir, 'label_map.pbtxt')
  config_path = _write_config(tmp, records_dir, label_map_path, num_classes)
  model_dir = os.path.join(tmp, 'model_dir')

  # Evaluated at the last step by the training process (--eval_every_n): one process launch less
  # than a separate `--checkpoint_dir` evaluator, which test_kill_resume and
  # test_tfod_checkpoints run.
  _run(['model_main.py', '--pipeline_config_path=' + config_path, '--model_dir=' + model_dir,
        '--checkpoint_every_n=%d' % TRAIN_STEPS, '--eval_every_n=%d' % TRAIN_STEPS,
        '--seed=%d' % SEED])
  with open(os.path.join(model_dir, 'eval', 'metrics_%d.json' % TRAIN_STEPS)) as f:
    record = json.load(f)
  assert record['num_images'] == NUM_VAL_IMAGES
  eval_metrics = record['metrics']

  # What `exporter_main.py --input_type=encoded_image_string_tensor` runs.
  export_dir = exporter_lib_v2.export_inference_graph(
      'encoded_image_string_tensor', exporter_lib_v2.load_pipeline_config(config_path),
      model_dir, os.path.join(tmp, 'exported'))
  # `python -m object_detection.predict` with these flags, run in this process (absl app.run aside).
  predictions_dir = os.path.join(tmp, 'predictions')
  predict.FLAGS(['predict', '--saved_model_dir=' + os.path.join(export_dir, 'saved_model'),
                 '--image_dir=' + os.path.join(tmp, 'val_images'), '--output_dir=' + predictions_dir,
                 '--coco_annotations_path=' + val_json, '--label_map_path=' + label_map_path,
                 '--nowrite_overlays'])
  try:
    predict.main([])
  finally:
    predict.FLAGS.unparse_flags()
  assert 'Processed %d of %d images' % (NUM_VAL_IMAGES, NUM_VAL_IMAGES) in capsys.readouterr().out
  assert not [n for n in os.listdir(predictions_dir) if n.endswith('.png')]  # --nowrite_overlays

  compared = []
  for prefix, iou_type, results_name in (('DetectionMasks_', 'segm', 'detections.json'),
                                         ('DetectionBoxes_', 'bbox', 'detections_bbox.json')):
    stats = _coco_stats(val_json, os.path.join(predictions_dir, results_name), val_ids, iou_type)
    for name in METRIC_NAMES:
      key = prefix + name
      assert key in eval_metrics, key
      if eval_metrics[key] < 0 and stats[name] < 0:
        continue  # No ground truth in that area range, for both.
      np.testing.assert_allclose(stats[name], eval_metrics[key], atol=1e-3, err_msg=key)
      compared.append(stats[name])
  # The comparison is not vacuous: some metric is non-zero after a few training steps.
  assert max(compared) > 0
