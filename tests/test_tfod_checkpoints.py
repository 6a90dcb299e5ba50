"""TF OD API checkpoints and folders as this project's inputs: zoo folders, model_dirs, fine-tuning.

What a user brings from the TF OD API:
  - a TF2 model zoo / exporter folder: `<folder>/checkpoint/ckpt-0` (`tf.train.Checkpoint(model=...)`,
    no optimizer), `<folder>/saved_model/`, `<folder>/pipeline.config`;
  - a `model_main_tf2.py` model_dir: `ckpt-N` = `tf.train.Checkpoint(step, model, optimizer)` numbered
    by save count (the step-0 save is `ckpt-1`; without fine_tune_checkpoint it holds no model
    variable), legacy Keras optimizer state (`optimizer/iter`, `.OPTIMIZER_SLOT/optimizer/momentum`).
These tests run without the TF OD API. The stand-in folders are written by this project's own
exporter / `tf.train.Checkpoint` code in the TF OD API's layout; that our model keys ARE the TF OD
API's is proven by tests/test_tfod_model_golden.py, and the golden listings of
tests/testdata/tfod_golden/checkpoints/ (written by the TF OD API, tools/tfod_golden/checkpoints.py)
give the TF OD API's class-dependent variables, its mask head and its training checkpoint's
non-model objects. The tiny test extractor keeps the file fast; its second-stage heads are
configured as in the golden models, so head keys are the TF OD API's. Weights are
`deterministic_weights.value_for(key)`, so a restored variable is recognised by its value.
"""
import importlib.util
import json
import os
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from google.protobuf import text_format

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mask_rcnn_test_utils as mrcnn  # pylint: disable=g-import-not-at-top,wrong-import-position

from object_detection import exporter_lib_v2  # pylint: disable=wrong-import-position
from object_detection import model_lib_v2  # pylint: disable=wrong-import-position
from object_detection.builders import model_builder  # pylint: disable=wrong-import-position
from object_detection.builders import optimizer_builder  # pylint: disable=wrong-import-position
from object_detection.core import standard_fields as fields  # pylint: disable=wrong-import-position
from object_detection.dataset_tools import coco_tf_record  # pylint: disable=wrong-import-position
from object_detection.protos import optimizer_pb2  # pylint: disable=wrong-import-position
from object_detection.training import checkpointing  # pylint: disable=wrong-import-position
from object_detection.training import fine_tune  # pylint: disable=wrong-import-position
from object_detection.utils import checkpoint_utils  # pylint: disable=wrong-import-position
from object_detection.utils import config_util  # pylint: disable=wrong-import-position

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
GOLDEN_DIR = os.path.join(TESTS_DIR, 'testdata', 'tfod_golden', 'checkpoints')
COCO128 = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
IMAGES = ['000000000036.jpg', '000000000071.jpg', '000000000094.jpg', '000000000260.jpg']
PHOTO = os.path.join(COCO128, 'images', IMAGES[1])
EXTRACTORS = ('model/_feature_extractor_for_proposal_features',
              'model/_feature_extractor_for_box_classifier_features')
HEADS = ('model/_first_stage_box_predictor_first_conv', 'model/_first_stage_box_predictor',
         'model/_mask_rcnn_box_predictor')


def _load_by_path(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


weights = _load_by_path('deterministic_weights',
                        os.path.join(REPO_ROOT, 'tools', 'tfod_golden', 'deterministic_weights.py'))


def golden_keys(name):
  """{key prefix (as variable_keys gives it): shape} of a TF OD API model listing."""
  out = {}
  with open(os.path.join(GOLDEN_DIR, 'model_keys_%s.txt' % name)) as f:
    for line in f:
      key, shape = line.rstrip('\n').split('\t')
      out[key[:-len('.ATTRIBUTES/VARIABLE_VALUE')]] = [int(d) for d in shape.split(',') if d]
  return out


def golden_training(name):
  """(non-model keys, {slot name: count}) of a TF OD API train_loop checkpoint."""
  keys, slots = set(), {}
  with open(os.path.join(GOLDEN_DIR, 'train_%s.txt' % name)) as f:
    for line in f:
      parts = line.rstrip('\n').split('\t')
      if parts[0] == 'slot':
        slots[parts[1]] = int(parts[2])
      else:
        keys.add(parts[0])
  return keys, slots


def group(key):
  return '/'.join(key.split('/')[:2])


def pipeline_text(data_dir, num_classes=3, stages=3, extra_train=''):
  model = mrcnn.mask_rcnn_config_text(
      'test_tiny_extractor_32', mrcnn.TINY_ANCHORS, num_classes=num_classes,
      number_of_stages=stages, size=64, max_proposals=16, second_stage_batch_size=8, stride=8)
  reader = ('label_map_path: "%s" load_instance_masks: true mask_type: PNG_MASKS '
            'tf_record_input_reader { input_path: "%s" }' % (
                os.path.join(data_dir, 'label_map3.pbtxt'),
                os.path.join(data_dir, 'coco_val.record-00000-of-00001')))
  return """
model { %s }
train_config {
  batch_size: 1 num_steps: 2 log_every_n_steps: 1 max_number_of_boxes: 20
  unpad_groundtruth_tensors: false
  optimizer { momentum_optimizer { learning_rate { constant_learning_rate { learning_rate: 1e-30 } }
              momentum_optimizer_value: 0.9 } use_moving_average: false }
  %s
}
train_input_reader { %s }
eval_config { metrics_set: "coco_detection_metrics" metrics_set: "coco_mask_metrics"
              eval_instance_masks: true batch_size: 1 use_moving_averages: false }
eval_input_reader { shuffle: false num_epochs: 1 %s }
""" % (model, extra_train, reader, reader)


def synthetic_train_input(train_config, train_input_config, model_config, model=None,
                          input_context=None, **unused):
  """Batches in inputs.train_input's format for the tiny 64x64 model (fast: no decoding to trace)."""
  size, boxes = 64, tf.constant([[0.1, 0.1, 0.6, 0.5], [0.3, 0.2, 0.9, 0.9], [0, 0, 0, 0]])
  masks = tf.pad(tf.ones([1, 32, 26], tf.uint8), [[0, 2], [6, 26], [6, 32]])

  def example(index):
    image = tf.random.stateless_uniform([size, size, 3], [index, 0], -1, 1)
    features = {fields.InputDataFields.image: image,
                fields.InputDataFields.true_image_shape: tf.constant([size, size, 3]),
                fields.InputDataFields.original_image_spatial_shape: tf.constant([size, size])}
    labels = {fields.InputDataFields.num_groundtruth_boxes: tf.constant(2),
              fields.InputDataFields.groundtruth_boxes: boxes,
              fields.InputDataFields.groundtruth_classes: tf.constant(
                  [[1., 0, 0], [0, 0, 1], [0, 0, 0]]),
              fields.InputDataFields.groundtruth_weights: tf.constant([1., 1, 0]),
              fields.InputDataFields.groundtruth_is_crowd: tf.constant([False, False, False]),
              fields.InputDataFields.groundtruth_area: tf.constant([30., 40, 0]),
              fields.InputDataFields.groundtruth_instance_masks: masks}
    return features, labels

  return tf.data.Dataset.range(4).map(example).repeat().batch(int(train_config.batch_size))


def write_pipeline(directory, text):
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, 'pipeline.config')
  with open(path, 'w') as f:
    f.write(text)
  return path


def build_model(config_path, is_training):
  configs = config_util.get_configs_from_pipeline_file(config_path)
  model = model_builder.build(configs['model'], is_training=is_training)
  mrcnn.build_variables(model, tf.zeros([1, 64, 64, 3]))
  return model, configs


def set_deterministic(model):
  return weights.assign_all({'model': model}, checkpoint_utils.variable_keys)


def holds_deterministic(model):
  """{group: (number of variables holding value_for(key), number not)}."""
  out = {}
  for key, var in checkpoint_utils.variable_keys({'model': model}).items():
    same = np.array_equal(var.numpy(), weights.value_for(key, var.shape))
    counts = out.setdefault(group(key), [0, 0])
    counts[0 if same else 1] += 1
  return {k: tuple(v) for k, v in out.items()}


@pytest.fixture(scope='module')
def root(tmp_path_factory):
  return str(tmp_path_factory.mktemp('tfod_checkpoints'))


@pytest.fixture(scope='module')
def data_dir(root):
  return write_data(os.path.join(root, 'data'))


def write_data(out):
  """coco_val TFRecord (4 coco128 photos, PNG masks) and a 3-class label map (person, bicycle, car)."""
  with open(os.path.join(COCO128, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  coco['images'] = [im for im in coco['images'] if im['file_name'] in IMAGES]
  ids = {im['id'] for im in coco['images']}
  coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in ids]
  os.makedirs(out)
  # Beside the output folder: the converter replaces that folder whole.
  json_path = os.path.normpath(out) + '_instances.json'
  with open(json_path, 'w') as f:
    json.dump(coco, f)
  coco_tf_record.convert([('val', os.path.join(COCO128, 'images'), json_path)], out,
                         include_masks=True, show_progress=False)
  with open(os.path.join(out, 'label_map3.pbtxt'), 'w') as f:
    for i, name in enumerate(['person', 'bicycle', 'car']):
      f.write('item { name: "%s" id: %d display_name: "%s" }\n' % (name, i + 1, name))
  return out


def _write_zoo_folder(directory, config_path):
  """`checkpoint/ckpt-0` and `pipeline.config` of a model zoo folder, written as the TF OD API's
  exporter writes them (`tf.train.Checkpoint(model=...)` saved by a CheckpointManager with
  checkpoint_number=0), with deterministic weights. Returns the model."""
  model, configs = build_model(config_path, is_training=False)
  set_deterministic(model)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), os.path.join(directory, 'checkpoint'),
                             max_to_keep=1).save(checkpoint_number=0)
  config_util.save_pipeline_config(config_util.create_pipeline_proto_from_configs(configs), directory)
  return model


@pytest.fixture(scope='module')
def zoo_mask5_model(root, data_dir):
  """(zoo folder, its model): Mask R-CNN, 5 classes. Its saved_model/ plays no part in restoring and
  is left out; the exports below write the full layout."""
  directory = os.path.join(root, 'zoo_mask5')
  config_path = write_pipeline(os.path.join(root, 'zoo_mask5_config'), pipeline_text(data_dir, 5))
  return directory, _write_zoo_folder(directory, config_path)


@pytest.fixture(scope='module')
def zoo_mask5(zoo_mask5_model):
  return zoo_mask5_model[0]


@pytest.fixture(scope='module')
def zoo_faster5(root, data_dir):
  """Faster R-CNN (2 stages), 5 classes."""
  directory = os.path.join(root, 'zoo_faster5')
  config_path = write_pipeline(os.path.join(root, 'zoo_faster5_config'),
                               pipeline_text(data_dir, 5, stages=2))
  _write_zoo_folder(directory, config_path)
  return directory


def _run_saved_model(saved_model_dir):
  image = tf.io.decode_jpeg(tf.io.read_file(PHOTO), channels=3)[tf.newaxis]
  outputs = tf.saved_model.load(saved_model_dir).signatures['serving_default'](input_tensor=image)
  return {k: v.numpy() for k, v in outputs.items()}


def _assert_same_detections(ours, expected):
  assert int(ours['num_detections'][0]) == int(expected['num_detections'][0]) > 0
  for key in ('detection_boxes', 'detection_scores', 'detection_classes', 'detection_masks'):
    np.testing.assert_allclose(ours[key], expected[key], rtol=0, atol=1e-5, err_msg=key)


@pytest.fixture(scope='module')
def folder_export(zoo_mask5, root):
  """What exporter_main.py --trained_checkpoint_dir=<zoo folder> --pipeline_config_path=<its
  pipeline.config> runs (the command line itself is tested in tests/test_exporter.py)."""
  output = os.path.join(root, 'export_from_folder')
  exporter_lib_v2.export_inference_graph(
      'image_tensor', exporter_lib_v2.load_pipeline_config(os.path.join(zoo_mask5, 'pipeline.config')),
      zoo_mask5, output)
  return output


# ---------------------------------------------------------------- zoo folder: export and eval


def test_zoo_folder_resolution(zoo_mask5):
  expected = os.path.join(zoo_mask5, 'checkpoint', 'ckpt-0')
  keys = [k for k, _ in tf.train.list_variables(expected)]
  assert not [k for k in keys if k.startswith(('optimizer/', 'step/'))]  # model only, as the zoo's
  for path in (zoo_mask5, os.path.join(zoo_mask5, 'checkpoint'), expected):
    assert checkpoint_utils.resolve_checkpoint_path(path) == expected
  # A copy without the `checkpoint` state file (files copied by hand) still resolves.
  copy = zoo_mask5 + '_no_state'
  shutil.copytree(os.path.join(zoo_mask5, 'checkpoint'), os.path.join(copy, 'checkpoint'))
  os.remove(os.path.join(copy, 'checkpoint', 'checkpoint'))
  assert checkpoint_utils.resolve_checkpoint_path(copy) == os.path.join(copy, 'checkpoint', 'ckpt-0')


def test_export_from_zoo_folder(folder_export, zoo_mask5_model):
  """The export holds the folder's weights (every key: deterministic value) and the SavedModel
  detects what the model with those weights detects (classes 1-based, as the TF OD API exports)."""
  _, model = zoo_mask5_model
  assert sorted(os.listdir(folder_export)) == ['checkpoint', 'pipeline.config', 'saved_model']
  path = os.path.join(folder_export, 'checkpoint', 'ckpt-0')
  reader = tf.train.load_checkpoint(path)
  model_keys = [k for k, _ in tf.train.list_variables(path) if k.startswith('model/')]
  assert len(model_keys) == len(checkpoint_utils.variable_keys({'model': model}))
  heads = {k[:-len('.ATTRIBUTES/VARIABLE_VALUE')] for k in model_keys if not k.startswith(EXTRACTORS)}
  assert heads == {k for k in golden_keys('mask_5') if not k.startswith(EXTRACTORS)}
  for key in model_keys:
    value = reader.get_tensor(key)
    np.testing.assert_array_equal(value, weights.value_for(key, value.shape), err_msg=key)
  image = tf.io.decode_jpeg(tf.io.read_file(PHOTO), channels=3)[tf.newaxis]
  preprocessed, shapes = model.preprocess(tf.cast(image, tf.float32))
  expected = {k: v.numpy() for k, v in model.postprocess(model.predict(preprocessed, shapes),
                                                        shapes).items()}
  expected['detection_classes'] = expected['detection_classes'] + 1
  _assert_same_detections(_run_saved_model(os.path.join(folder_export, 'saved_model')), expected)


def test_export_restores_from_checkpoint_subfolder(zoo_mask5):
  """--trained_checkpoint_dir=<folder>/checkpoint: the exporter restores the same checkpoint."""
  model, path = exporter_lib_v2.build_and_restore_model(
      exporter_lib_v2.load_pipeline_config(os.path.join(zoo_mask5, 'pipeline.config')),
      os.path.join(zoo_mask5, 'checkpoint'))
  assert path == os.path.join(zoo_mask5, 'checkpoint', 'ckpt-0')
  values = holds_deterministic(model)
  assert sorted(values) == sorted(EXTRACTORS + HEADS)
  assert all(different == 0 for _, different in values.values()), values


def test_export_errors_name_the_path(root, zoo_mask5):
  empty = os.path.join(root, 'empty_folder')
  os.makedirs(os.path.join(empty, 'checkpoint'))
  with pytest.raises(exporter_lib_v2.ExportError) as info:
    exporter_lib_v2.resolve_checkpoint_path(empty)
  assert str(info.value).startswith('--trained_checkpoint_dir: No checkpoint found in directory '
                                    + empty) and '\n' not in str(info.value)


def test_continuous_eval_of_zoo_folder(zoo_mask5, root, monkeypatch):
  """model_main.py --checkpoint_dir=<zoo folder>: evaluates checkpoint/ckpt-0 with all its weights.
  (The metric computation itself, eval_util.evaluate, is replaced here: it is tested elsewhere and
  costs a minute of tracing; it was run on real TF OD API folders.)"""
  from object_detection import eval_util  # pylint: disable=g-import-not-at-top
  evaluated = []

  def fake_evaluate(model, configs, dataset, step, **kwargs):
    evaluated.append((step, holds_deterministic(model)))
    metrics = {'DetectionMasks_Precision/mAP': 0.25}
    return (metrics, None) if kwargs.get('return_model_stats') else metrics

  monkeypatch.setattr(eval_util, 'evaluate', fake_evaluate)
  results = model_lib_v2.eval_continuously(
      os.path.join(zoo_mask5, 'pipeline.config'), os.path.join(root, 'eval_zoo'), zoo_mask5,
      timeout=1, wait_interval=1, eval_input_fn=lambda *args, **kwargs: None)
  assert results == {0: {'DetectionMasks_Precision/mAP': 0.25}}  # ckpt-0 has no step: 0
  (step, values), = evaluated
  assert step == 0 and sorted(values) == sorted(EXTRACTORS + HEADS)
  assert all(different == 0 for _, different in values.values()), values
  # Without the `checkpoint` state file that tf.train.checkpoints_iterator waits for, the folder's
  # checkpoint is evaluated once.
  copy = os.path.join(root, 'zoo_without_state_file')
  shutil.copytree(zoo_mask5, copy)
  os.remove(os.path.join(copy, 'checkpoint', 'checkpoint'))
  results = model_lib_v2.eval_continuously(
      os.path.join(copy, 'pipeline.config'), os.path.join(root, 'eval_copy'), copy, timeout=60,
      wait_interval=1, eval_input_fn=lambda *args, **kwargs: None)
  assert list(results) == [0] and len(evaluated) == 2


def test_continuous_eval_skips_tfod_step0_checkpoint(root, data_dir, capsys):
  """The TF OD API's first checkpoint of a run without fine_tune_checkpoint holds no model variable;
  it is skipped (the TF OD API would score the untrained model), and export refuses it in one line."""
  model_dir = os.path.join(root, 'tfod_step0')
  config_path = write_pipeline(model_dir, pipeline_text(data_dir))
  checkpoint = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64))
  tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=7).save()  # ckpt-1, as the TF OD API
  results = model_lib_v2.eval_continuously(config_path, os.path.join(root, 'eval_step0'), model_dir,
                                           timeout=1, wait_interval=1)
  assert results == {}
  assert 'Skipping %s (step 0): it holds no model variables' % os.path.join(
      model_dir, 'ckpt-1') in capsys.readouterr().out
  with pytest.raises(exporter_lib_v2.ExportError) as info:
    exporter_lib_v2.build_and_restore_model(exporter_lib_v2.load_pipeline_config(config_path),
                                            model_dir)
  assert str(info.value).startswith(
      '--trained_checkpoint_dir=%s: Checkpoint %s holds no model variables' % (
          model_dir, os.path.join(model_dir, 'ckpt-1'))) and '\n' not in str(info.value)


# ---------------------------------------------------------------- fine-tuning from a zoo checkpoint


def _fine_tune(config_path, checkpoint, checkpoint_type, capsys):
  model, configs = build_model(config_path, is_training=True)
  capsys.readouterr()
  report = fine_tune.load_fine_tune_checkpoint(model, checkpoint, checkpoint_type, configs['model'])
  return model, report, capsys.readouterr().out


def test_fine_tune_detection_with_other_num_classes(zoo_mask5, root, data_dir, capsys):
  """type detection: the two feature extractors are restored, the RPN and second-stage heads (the
  TF OD API model's parts outside its extractors) keep their initial values and are reported."""
  config_path = write_pipeline(os.path.join(root, 'ft_detection'), pipeline_text(data_dir, 3))
  model, report, out = _fine_tune(config_path, zoo_mask5, 'detection', capsys)
  tfod_heads = sorted({group(k) for k in golden_keys('mask_5') if not k.startswith(EXTRACTORS)})
  assert tfod_heads == sorted(HEADS)
  ours = checkpoint_utils.variable_keys({'model': model})
  # The heads' keys are the TF OD API's (the extractor is the tiny test one).
  assert sorted(k for k in ours if not k.startswith(EXTRACTORS)) == sorted(
      k for k in golden_keys('mask_5') if not k.startswith(EXTRACTORS))
  assert not report.missing and not report.shape_mismatch
  assert sorted(report.restored) == sorted(k for k in ours if k.startswith(EXTRACTORS))
  values = holds_deterministic(model)
  for name in EXTRACTORS:
    assert values[name][1] == 0, name
  for name in HEADS:
    assert values[name][0] == 0, name
  count = {g: sum(1 for k in ours if group(k) == g) for g in HEADS + EXTRACTORS}
  restored = count[EXTRACTORS[0]] + count[EXTRACTORS[1]]
  assert ('Fine-tune checkpoint %s (type detection, extractor test_tiny_extractor_32): restored %d '
          'of %d variables.' % (os.path.join(zoo_mask5, 'checkpoint', 'ckpt-0'), restored,
                                restored)) in out
  assert '  restored: %s (%d), %s (%d)\n' % (EXTRACTORS[0], count[EXTRACTORS[0]], EXTRACTORS[1],
                                              count[EXTRACTORS[1]]) in out
  assert ('  kept their initial value (fine_tune_checkpoint_type detection does not restore them): '
          + ', '.join('%s (%d)' % (g, count[g]) for g in
                      ('model/_first_stage_box_predictor_first_conv', 'model/_mask_rcnn_box_predictor',
                       'model/_first_stage_box_predictor'))) in out


def test_fine_tune_full_with_other_num_classes_reports_class_dependent_variables(
    zoo_mask5, root, data_dir, capsys):
  """type full, 5 -> 3 classes: exactly the variables whose shape the TF OD API changes with
  num_classes are reported as shape mismatches and keep their initial values; all others restored.
  (The TF OD API itself stops with 'Received incompatible tensor with shape'.)"""
  config_path = write_pipeline(os.path.join(root, 'ft_full'), pipeline_text(data_dir, 3))
  model, report, out = _fine_tune(config_path, zoo_mask5, 'full', capsys)
  five, three = golden_keys('mask_5'), golden_keys('mask_3')
  class_dependent = sorted(k for k in five if five[k] != three[k])
  assert len(class_dependent) == 8
  assert sorted(k for k, _, _ in report.shape_mismatch) == class_dependent
  assert not report.missing
  for key, ckpt_shape, var_shape in report.shape_mismatch:
    assert ('  skipped %s: shape %s in checkpoint vs %s in model' % (key, ckpt_shape, var_shape)) in out
  for key, var in checkpoint_utils.variable_keys({'model': model}).items():
    same = var.shape == tuple(weights.value_for(key, var.shape).shape) and np.array_equal(
        var.numpy(), weights.value_for(key, var.shape))
    assert same == (key not in class_dependent), key
  assert 'not used' not in out


@pytest.mark.parametrize('checkpoint_type', ['detection', 'full'])
def test_faster_rcnn_checkpoint_into_mask_rcnn_config(zoo_faster5, root, data_dir, capsys,
                                                      checkpoint_type):
  """A Faster R-CNN zoo checkpoint fits a Mask R-CNN config: the mask head (the TF OD API Mask R-CNN's
  keys that its Faster R-CNN lacks) starts fresh."""
  config_path = write_pipeline(os.path.join(root, 'ft_faster_' + checkpoint_type),
                               pipeline_text(data_dir, 5))
  model, report, out = _fine_tune(config_path, zoo_faster5, checkpoint_type, capsys)
  mask_head = sorted(set(golden_keys('mask_5')) - set(golden_keys('faster_5')))
  assert len(mask_head) == 4 and all('/_third_stage_heads/mask_predictions/' in k for k in mask_head)
  values = holds_deterministic(model)
  if checkpoint_type == 'full':
    assert sorted(report.missing) == mask_head and not report.shape_mismatch
    for key in mask_head:
      assert '  skipped %s: not in the checkpoint (keeps its initial value)' % key in out
    assert values['model/_mask_rcnn_box_predictor'] == (4, 4)  # box + class heads restored
    assert values['model/_first_stage_box_predictor'] == (4, 0)
  else:
    assert not report.missing and values['model/_mask_rcnn_box_predictor'] == (0, 8)
    assert 'kept their initial value (fine_tune_checkpoint_type detection' in out
  for name in EXTRACTORS:
    assert values[name][1] == 0


def test_fine_tune_classification_checkpoint(root, data_dir, capsys):
  """A TF OD API-style classification checkpoint, tf.train.Checkpoint(feature_extractor=<the
  extractor's classification_backbone>), restores the backbone only."""
  config_path = write_pipeline(os.path.join(root, 'ft_cls'), pipeline_text(data_dir, 3))
  source, _ = build_model(config_path, is_training=False)
  set_deterministic(source)
  path = tf.train.Checkpoint(
      feature_extractor=source.feature_extractor.classification_backbone).save(
          os.path.join(root, 'classification', 'ckpt'))
  model, report, out = _fine_tune(config_path, path, 'classification', capsys)
  backbone = len(source.feature_extractor.classification_backbone.variables)
  assert len(report.restored) == backbone > 0 and not report.missing
  values = holds_deterministic(model)
  assert values['model/_feature_extractor_for_proposal_features'] == (backbone, 0)
  for name in HEADS + ('model/_feature_extractor_for_box_classifier_features',):
    assert values[name][0] == 0, name
  assert '  restored: model/_feature_extractor_for_proposal_features (%d)\n' % backbone in out
  assert 'kept their initial value (fine_tune_checkpoint_type classification' in out


def test_fine_tune_missing_checkpoint_is_one_line(root, data_dir, capsys):
  config_path = write_pipeline(os.path.join(root, 'ft_missing'), pipeline_text(data_dir, 3))
  missing = os.path.join(root, 'no_such_zoo_folder')
  os.makedirs(missing)
  with pytest.raises(fine_tune.FineTuneError) as info:
    _fine_tune(config_path, missing, 'detection', capsys)
  assert str(info.value).startswith('train_config.fine_tune_checkpoint: No checkpoint found in '
                                    'directory ' + missing) and '\n' not in str(info.value)


# ---------------------------------------------------------------- training checkpoints and resume


@pytest.mark.parametrize('optimizer', ['momentum', 'adam'])
def test_training_checkpoint_objects_are_the_tfod_apis(root, data_dir, optimizer):
  """Our training checkpoint holds the same non-model objects and optimizer slots as the TF OD API's
  train_loop checkpoint (both build legacy Keras optimizers on TF 2.20), so either resumes the other."""
  config_path = write_pipeline(os.path.join(root, 'opt_' + optimizer), pipeline_text(data_dir, 3))
  model, _ = build_model(config_path, is_training=True)
  text = {'momentum': 'momentum_optimizer { learning_rate { constant_learning_rate { '
                      'learning_rate: 0.01 } } momentum_optimizer_value: 0.9 }',
          'adam': 'adam_optimizer { learning_rate { constant_learning_rate { learning_rate: 0.01 } } }'}
  config = text_format.Parse(text[optimizer] + ' use_moving_average: false', optimizer_pb2.Optimizer())
  step = tf.Variable(0, dtype=tf.int64)
  built = optimizer_builder.build_with_schedule(config, step)
  trainable = model.trainable_variables
  built.optimizer.apply_gradients([(tf.zeros_like(v), v) for v in trainable])
  step.assign(1)
  _, manager = checkpointing.make_manager(os.path.join(root, 'opt_' + optimizer, 'model_dir'), model,
                                          built.optimizer, step)
  path = checkpointing.save(manager, step)
  listing = [k for k, _ in tf.train.list_variables(path)]
  slots = {}
  for key in listing:
    if '.OPTIMIZER_SLOT/optimizer/' in key:
      name = key.split('.OPTIMIZER_SLOT/optimizer/')[1].split('/')[0]
      slots[name] = slots.get(name, 0) + 1
  tfod_keys, tfod_slots = golden_training(optimizer)
  assert {k for k in listing if not k.startswith('model/')} - {'_CHECKPOINTABLE_OBJECT_GRAPH'} == (
      tfod_keys)
  assert set(slots) == set(tfod_slots) and set(slots.values()) == {len(trainable)}


def _tfod_style_model_dir(root, data_dir, name, new_optimizer):
  """A model_dir as the TF OD API's train_loop leaves it after 3 steps: ckpt-1 (step 0) .. ckpt-4
  (step 3), numbered by save count, with momentum slots of -0.01 (one step of gradient 1, learning
  rate 0.01) in the legacy optimizer's layout (what the TF OD API writes on TF 2.20) or the new Keras
  optimizer's (`optimizer/_variables/N`). Model weights: deterministic."""
  model_dir = os.path.join(root, name)
  config_path = write_pipeline(model_dir, pipeline_text(data_dir, 3))
  model, _ = build_model(config_path, is_training=True)
  if new_optimizer:
    optimizer = tf_keras.optimizers.SGD(0.01, momentum=0.9)
  else:
    optimizer = tf_keras.optimizers.legacy.SGD(0.01, momentum=0.9)
  optimizer.apply_gradients([(tf.ones_like(v), v) for v in model.trainable_variables])
  set_deterministic(model)
  step = tf.Variable(0, dtype=tf.int64)
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(step=step, model=model, optimizer=optimizer), model_dir, max_to_keep=7)
  for value in range(4):
    step.assign(value)
    manager.save()
  return model_dir, config_path


def test_resume_from_tfod_model_dir_with_new_optimizer_state(root, data_dir, capsys):
  """model_main.py --model_dir=<TF OD API model_dir>: continues from its step with its weights, says
  that the new Keras optimizer's state cannot be used, and never overwrites the TF OD API's
  checkpoints (numbered by save count: ckpt-4 holds step 3, so step 4 goes to ckpt-5, not ckpt-4)."""
  model_dir, config_path = _tfod_style_model_dir(root, data_dir, 'resume_new_opt', True)
  capsys.readouterr()
  result = model_lib_v2.train_loop(config_path, model_dir, train_steps=4, checkpoint_every_n=1,
                                   record_summaries=False, train_input_fn=synthetic_train_input)
  out = capsys.readouterr().out
  assert result['step'] == 4
  assert 'Resuming from %s (step 3).' % os.path.join(model_dir, 'ckpt-4') in out
  assert ('Note: %s holds new Keras optimizer state (' % os.path.join(model_dir, 'ckpt-4')) in out
  steps = {os.path.basename(p): checkpoint_utils.checkpoint_step(p)
           for p in tf.train.get_checkpoint_state(model_dir).all_model_checkpoint_paths}
  assert steps == {'ckpt-1': 0, 'ckpt-2': 1, 'ckpt-3': 2, 'ckpt-4': 3, 'ckpt-5': 4}
  # Learning rate 1e-30 (0 is refused): far below float32 resolution of every weight, so the
  # weights saved at step 4 are exactly the model_dir's.
  reader = tf.train.load_checkpoint(os.path.join(model_dir, 'ckpt-5'))
  keys = [k for k in reader.get_variable_to_shape_map()
          if k.startswith('model/') and '.OPTIMIZER_SLOT' not in k]
  assert len(keys) == len(golden_keys('mask_3')) - sum(
      1 for k in golden_keys('mask_3') if k.startswith(EXTRACTORS)) + sum(
          1 for k in keys if k.startswith(EXTRACTORS))
  for key in keys:
    np.testing.assert_array_equal(
        reader.get_tensor(key), weights.value_for(key, reader.get_tensor(key).shape), err_msg=key)
  # The iteration count restarted (1 step), and our checkpoint is in the TF OD API's layout.
  assert int(reader.get_tensor('optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE')) == 1
  assert not [k for k in reader.get_variable_to_shape_map() if k.startswith('optimizer/_variables')]


def test_resume_uses_the_tfod_apis_legacy_optimizer_state(root, data_dir, capsys):
  """The TF OD API's own model_dir (legacy optimizer state): momentum slots and the iteration count
  are restored, nothing is reported; the next checkpoint continues the TF OD API's numbering."""
  model_dir, config_path = _tfod_style_model_dir(root, data_dir, 'resume_legacy_opt', False)
  configs = config_util.get_configs_from_pipeline_file(config_path)
  model, _ = build_model(config_path, is_training=True)
  step = tf.Variable(0, dtype=tf.int64)
  optimizer = optimizer_builder.build_with_schedule(configs['train_config'].optimizer, step).optimizer
  ckpt, manager = checkpointing.make_manager(model_dir, model, optimizer, step)
  capsys.readouterr()
  assert checkpointing.restore_for_resume(ckpt, manager.latest_checkpoint, model) == []
  assert capsys.readouterr().out == '' and int(step.numpy()) == 3
  trainable = model.trainable_variables
  optimizer.apply_gradients([(tf.zeros_like(v), v) for v in trainable])  # zero gradients
  for var in trainable:  # 0.9 * the restored -0.01
    np.testing.assert_allclose(optimizer.get_slot(var, 'momentum').numpy(), -0.009, rtol=1e-6)
  assert int(optimizer.iterations.numpy()) == 2
  step.assign(4)
  assert checkpointing.save(manager, step) == os.path.join(model_dir, 'ckpt-5')
  assert checkpointing.save(manager, step) == os.path.join(model_dir, 'ckpt-5')  # once per step
  assert checkpoint_utils.checkpoint_step(os.path.join(model_dir, 'ckpt-4')) == 3  # untouched


def test_resume_from_tfod_step0_checkpoint_starts_over(root, data_dir, zoo_mask5, capsys,
                                                       monkeypatch):
  """A TF OD API model_dir holding only its step-0 checkpoint (no model variables): training starts
  at step 0 from fine_tune_checkpoint, as the TF OD API does. (The train step is a stand-in that only
  counts: the resume decision is under test, and tracing the real step costs 10 s.)"""
  from object_detection.training import train_step  # pylint: disable=g-import-not-at-top

  def counting_step(strategy, model, optimizer, trainable, global_step, *args, **kwargs):
    def step(features, labels):
      global_step.assign_add(1)
      return {'Loss/total_loss': tf.constant(1.0)}
    return step

  monkeypatch.setattr(train_step, 'make_train_step', counting_step)
  model_dir = os.path.join(root, 'resume_step0')
  config_path = write_pipeline(model_dir, pipeline_text(
      data_dir, 3, extra_train='fine_tune_checkpoint: "%s" fine_tune_checkpoint_type: "detection"'
      % zoo_mask5))
  tf.train.CheckpointManager(tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64)), model_dir,
                             max_to_keep=7).save()
  capsys.readouterr()
  result = model_lib_v2.train_loop(config_path, model_dir, train_steps=1, record_summaries=False,
                                   train_input_fn=synthetic_train_input)
  out = capsys.readouterr().out
  assert ('Note: %s holds no model variables (a TF OD API step-0 checkpoint): starting from step 0.'
          % os.path.join(model_dir, 'ckpt-1')) in out
  assert 'Fine-tune checkpoint %s' % os.path.join(zoo_mask5, 'checkpoint', 'ckpt-0') in out
  assert result['step'] == 1 and os.path.basename(result['checkpoint']) == 'ckpt-2'
