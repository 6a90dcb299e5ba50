"""Tests of exporter_main.py / object_detection.exporter_lib_v2 on a tiny real Mask R-CNN.

A tiny Mask R-CNN (the CPU sample config with a tiny image size) is built, run once and saved as
a training-style checkpoint; it is exported for three input types (image_tensor through the
exporter_main.py command line, the others through the library). The SavedModels are then loaded
in a FRESH Python process in which importing this project (or official.vision) is blocked, and
run on a real coco128_seg photo.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from object_detection import exporter_lib_v2

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128_DIR = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
# The smallest sample model (a missing or renamed file fails the tests).
SAMPLE_CONFIG = os.path.join(REPO_ROOT, 'samples', 'configs',
                             'mask_rcnn_efficientnet_lite0_fpn_sample_cpu.config')
# A 480x640 val photo (a non-square input: outputs must follow the INPUT size).
IMAGE_PATH = os.path.join(COCO128_DIR, 'images', '000000000133.jpg')
MAX_DETECTIONS = 8
# 3 classes instead of the sample's 90: post-processing runs one NMS per class; 90 of them make each
# export about 30 % and each SavedModel load and run about twice as slow (the class logic is the
# same).
NUM_CLASSES = 3
FLOAT_KEYS = ('num_detections', 'detection_boxes', 'detection_scores', 'detection_classes',
              'detection_masks', 'detection_multiclass_scores', 'raw_detection_boxes',
              'raw_detection_scores')
TINY_OVERRIDE = """
model {
  faster_rcnn {
    num_classes: %d
    image_resizer { keep_aspect_ratio_resizer { min_dimension: 64 max_dimension: 64 } }
    first_stage_max_proposals: 16
    second_stage_batch_size: 16
    second_stage_post_processing {
      batch_non_max_suppression {
        score_threshold: 0.0
        iou_threshold: 0.6
        max_detections_per_class: %d
        max_total_detections: %d
      }
    }
  }
}
train_config { optimizer { use_moving_average: false } }
""" % (NUM_CLASSES, MAX_DETECTIONS, MAX_DETECTIONS)


def np_reframe_box_masks(box_masks, boxes, height, width):
  """Numpy reference of pasting box masks into the image (tf.image.crop_and_resize semantics).

  The whole image, expressed in each box's frame, is sampled bilinearly from the box mask;
  samples outside the box mask are 0 (TF OD API `reframe_box_masks_to_image_masks`).

  Returns:
    (float64 [N, height, width] masks, bool [N, height, width] `edge`: pixels whose sample lies
    within 1e-3 mask pixels of the box border, where float32 rounding in TF may decide
    inside/outside differently).
  """
  box_masks = np.asarray(box_masks, np.float64)
  out = np.zeros([box_masks.shape[0], height, width], np.float64)
  edge = np.zeros(out.shape, bool)
  mask_h, mask_w = box_masks.shape[1:]
  for i, (ymin, xmin, ymax, xmax) in enumerate(np.asarray(boxes, np.float64)):
    box_h, box_w = max(ymax - ymin, 1e-4), max(xmax - xmin, 1e-4)
    y1, y2 = -ymin / box_h, (1.0 - ymin) / box_h
    x1, x2 = -xmin / box_w, (1.0 - xmin) / box_w
    ys = y1 * (mask_h - 1) + np.arange(height) * (y2 - y1) * (mask_h - 1) / (height - 1)
    xs = x1 * (mask_w - 1) + np.arange(width) * (x2 - x1) * (mask_w - 1) / (width - 1)
    valid = ((ys >= 0) & (ys <= mask_h - 1))[:, None] & ((xs >= 0) & (xs <= mask_w - 1))[None]
    yc, xc = np.clip(ys, 0, mask_h - 1), np.clip(xs, 0, mask_w - 1)
    top, left = np.floor(yc).astype(int), np.floor(xc).astype(int)
    bottom, right = np.ceil(yc).astype(int), np.ceil(xc).astype(int)
    ly, lx = (yc - top)[:, None], (xc - left)[None]
    m = box_masks[i]
    upper = m[top][:, left] + (m[top][:, right] - m[top][:, left]) * lx
    lower = m[bottom][:, left] + (m[bottom][:, right] - m[bottom][:, left]) * lx
    out[i] = np.where(valid, upper + (lower - upper) * ly, 0.0)
    near_y = (np.abs(ys) < 1e-3) | (np.abs(ys - (mask_h - 1)) < 1e-3)
    near_x = (np.abs(xs) < 1e-3) | (np.abs(xs - (mask_w - 1)) < 1e-3)
    edge[i] = near_y[:, None] | near_x[None]
  return out, edge


# Runs in a fresh interpreter; importing this project or official.* is made to fail, so the
# SavedModel provably needs nothing but TensorFlow.
_FRESH_PROCESS_SCRIPT = textwrap.dedent("""
    import importlib.abc, json, sys

    class _Block(importlib.abc.MetaPathFinder):
      def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('object_detection', 'official', 'tf_keras'):
          raise ImportError('blocked import of ' + name)
        return None

    sys.meta_path.insert(0, _Block())
    import numpy as np
    import tensorflow as tf

    exports, image_path, out_path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    encoded = open(image_path, 'rb').read()
    image = tf.io.decode_jpeg(encoded, channels=3)
    arrays = {'image': image.numpy()}
    for input_type, saved_model_dir in exports.items():
      fn = tf.saved_model.load(saved_model_dir).signatures['serving_default']
      if input_type == 'image_tensor':
        value = image[tf.newaxis]
      elif input_type == 'float_image_tensor':
        value = tf.cast(image, tf.float32)[tf.newaxis]
      elif input_type == 'encoded_image_string_tensor':
        value = tf.constant([encoded])
      else:
        example = tf.train.Example(features=tf.train.Features(feature={
            'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded]))}))
        value = tf.constant([example.SerializeToString()])
      for key, tensor in fn(input_tensor=value).items():
        arrays[input_type + '/' + key] = tensor.numpy()
    assert not [m for m in sys.modules if m.split('.')[0] in ('object_detection', 'official')]
    np.savez(out_path, **arrays)
""")


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """(model_dir, model): pipeline.config + a model_main.py-style checkpoint of a tiny Mask R-CNN."""
  from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path_factory.mktemp('model_dir'))
  configs = config_util.get_configs_from_pipeline_file(SAMPLE_CONFIG,
                                                       config_override=TINY_OVERRIDE)
  pipeline_config = config_util.create_pipeline_proto_from_configs(configs)
  config_util.save_pipeline_config(pipeline_config, model_dir)
  model = model_builder.build(configs['model'], is_training=False)
  checkpoint_utils.build_model_variables(model, (64, 64))
  checkpoint = tf.train.Checkpoint(model=model, step=tf.Variable(3, dtype=tf.int64))
  tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=1,
                             checkpoint_name='ckpt').save(checkpoint_number=3)
  return model_dir, model


@pytest.fixture(scope='module')
def trained_dir(trained):
  return trained[0]


@pytest.fixture(scope='module')
def exports(trained, tmp_path_factory):
  """{input_type: saved_model dir}: image_tensor via the CLI, two others via the library.

  The CLI export runs in a subprocess while this process makes the library exports: CI has two
  cores, and each export is mostly single-threaded tracing and saving.
  """
  trained_dir, model = trained
  root = str(tmp_path_factory.mktemp('exports'))
  config_path = os.path.join(trained_dir, 'pipeline.config')
  result = {}
  cli_output = os.path.join(root, 'image_tensor')
  cli_log = os.path.join(root, 'exporter_main.log')
  with open(cli_log, 'w') as log:
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO_ROOT, 'exporter_main.py'), '--input_type=image_tensor',
         '--pipeline_config_path=' + config_path, '--trained_checkpoint_dir=' + trained_dir,
         '--output_directory=' + cli_output],
        stdout=log, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT)
  try:
    # The library path, on the model the checkpoint was written from (saves a rebuild).
    pipeline_config = exporter_lib_v2.load_pipeline_config(config_path)
    for input_type in ('encoded_image_string_tensor', 'tf_example'):
      output = exporter_lib_v2.save_detection_model(model, input_type,
                                                    os.path.join(root, input_type),
                                                    pipeline_config)
      result[input_type] = os.path.join(output, 'saved_model')
    proc.wait(timeout=600)
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  with open(cli_log) as f:
    cli_out = f.read()
  assert proc.returncode == 0, cli_out[-4000:]
  assert 'Exported image_tensor SavedModel' in cli_out
  result['image_tensor'] = os.path.join(cli_output, 'saved_model')
  return result


def _in_memory_detections(model, image):
  """The in-memory model's postprocess output (numpy) on `image` (uint8 [H, W, 3])."""
  images = tf.cast(image[np.newaxis], tf.float32)
  preprocessed, true_image_shapes = model.preprocess(images)
  detections = model.postprocess(model.predict(preprocessed, true_image_shapes), true_image_shapes)
  return {key: value.numpy() for key, value in detections.items() if key in FLOAT_KEYS}


@pytest.fixture(scope='module')
def fresh_and_in_memory(trained, exports, tmp_path_factory):
  """(fresh-process outputs, in-memory detections on the same photo).

  The in-memory model runs while the fresh process loads and runs the SavedModels.
  """
  _, model = trained
  out_path = str(tmp_path_factory.mktemp('fresh') / 'outputs.npz')
  proc = subprocess.Popen(
      [sys.executable, '-c', _FRESH_PROCESS_SCRIPT, json.dumps(exports), IMAGE_PATH, out_path],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    with open(IMAGE_PATH, 'rb') as f:
      image = tf.io.decode_jpeg(f.read(), channels=3).numpy()
    in_memory = _in_memory_detections(model, image)
    _, stderr = proc.communicate(timeout=600)
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.communicate()
  assert proc.returncode == 0, stderr[-4000:]
  with np.load(out_path) as data:
    fresh = {key: data[key] for key in data.files}
  # The in-memory model ran on the very pixels the fresh process decoded.
  np.testing.assert_array_equal(fresh['image'], image)
  return fresh, in_memory


@pytest.fixture(scope='module')
def fresh_outputs(fresh_and_in_memory):
  return fresh_and_in_memory[0]


@pytest.fixture(scope='module')
def in_memory_detections(fresh_and_in_memory):
  """The in-memory model's postprocess output (numpy) on the image the SavedModels were run on."""
  return fresh_and_in_memory[1]


@pytest.mark.slow
def test_export_layout(exports):
  for saved_model_dir in exports.values():
    export_dir = os.path.dirname(saved_model_dir)
    assert sorted(os.listdir(export_dir)) == ['checkpoint', 'pipeline.config', 'saved_model']
    assert tf.train.latest_checkpoint(os.path.join(export_dir, 'checkpoint')).endswith('ckpt-0')
    # No temporary folders are left next to the export.
    assert not [n for n in os.listdir(os.path.dirname(export_dir)) if n.startswith('.')]


@pytest.mark.slow
@pytest.mark.parametrize('input_type', ['image_tensor', 'encoded_image_string_tensor',
                                        'tf_example'])
def test_outputs_in_fresh_process(fresh_outputs, in_memory_detections, input_type):
  height, width = fresh_outputs['image'].shape[:2]
  out = {key.split('/', 1)[1]: value for key, value in fresh_outputs.items()
         if key.startswith(input_type + '/')}
  assert set(FLOAT_KEYS) | {'detection_masks_reframed'} <= set(out)
  for key in FLOAT_KEYS:
    assert out[key].dtype == np.float32, key
  num_classes = NUM_CLASSES
  assert out['num_detections'].shape == (1,)
  num = int(out['num_detections'][0])
  assert 0 < num <= MAX_DETECTIONS  # score_threshold 0: the untrained model detects something.
  assert out['detection_boxes'].shape == (1, MAX_DETECTIONS, 4)
  assert out['detection_scores'].shape == (1, MAX_DETECTIONS)
  assert out['detection_classes'].shape == (1, MAX_DETECTIONS)
  assert out['detection_multiclass_scores'].shape == (1, MAX_DETECTIONS, num_classes + 1)
  assert out['detection_masks'].shape[:2] == (1, MAX_DETECTIONS)
  assert out['raw_detection_boxes'].shape[-1] == 4
  assert out['raw_detection_scores'].shape[-1] == num_classes + 1
  # The SavedModel gives what the model it was exported from gives in memory on the same image,
  # with classes as label-map ids (0-based + 1).
  expected = in_memory_detections
  assert int(expected['num_detections'][0]) == num
  for key in FLOAT_KEYS:
    if key != 'detection_classes':
      np.testing.assert_allclose(out[key], expected[key], atol=1e-4, err_msg=key)
  np.testing.assert_array_equal(out['detection_classes'][0, :num],
                                expected['detection_classes'][0, :num] + 1)
  boxes = out['detection_boxes'][0, :num]
  masks = out['detection_masks'][0]

  reframed = out['detection_masks_reframed']
  assert reframed.dtype == np.uint8
  assert reframed.shape == (1, MAX_DETECTIONS, height, width)  # The INPUT image size.
  assert set(np.unique(reframed)) <= {0, 1}
  # Equals pasting detection_masks into the image and thresholding at 0.5 (away from ties).
  probabilities, edge = np_reframe_box_masks(masks, out['detection_boxes'][0], height, width)
  decided = (np.abs(probabilities - 0.5) > 1e-3) & ~edge
  assert decided.mean() > 0.5
  np.testing.assert_array_equal(reframed[0][decided], (probabilities[decided] > 0.5))
  # ... and ops.reframe_box_masks_to_image_masks of the model's own box masks (at the input size).
  from object_detection.utils import ops  # pylint: disable=g-import-not-at-top
  pasted = ops.reframe_box_masks_to_image_masks(
      expected['detection_masks'][0], expected['detection_boxes'][0], height, width).numpy()
  away_from_ties = np.abs(pasted - 0.5) > 1e-3
  assert away_from_ties.mean() > 0.5
  np.testing.assert_array_equal(reframed[0][away_from_ties], pasted[away_from_ties] > 0.5)
  # Nothing outside each detection box (crop_and_resize puts pixel i at i / (size - 1)).
  for i in range(num):
    ymin, xmin, ymax, xmax = boxes[i] * [height - 1, width - 1, height - 1, width - 1]
    outside = np.ones([height, width], bool)
    outside[max(int(np.floor(ymin)) - 1, 0):int(np.ceil(ymax)) + 2,
            max(int(np.floor(xmin)) - 1, 0):int(np.ceil(xmax)) + 2] = False
    assert not reframed[0, i][outside].any()


@pytest.mark.slow
def test_input_types_agree(fresh_outputs):
  # Same image, same model: decoding in the graph gives the same detections as uint8 input.
  for input_type in ('encoded_image_string_tensor', 'tf_example'):
    for key in ('num_detections', 'detection_boxes', 'detection_scores', 'detection_classes'):
      np.testing.assert_allclose(fresh_outputs[input_type + '/' + key],
                                 fresh_outputs['image_tensor/' + key], atol=1e-4)


@pytest.mark.slow
def test_missing_checkpoint_is_a_clear_error(trained_dir, tmp_path):
  pipeline_config = exporter_lib_v2.load_pipeline_config(
      os.path.join(trained_dir, 'pipeline.config'))
  with pytest.raises(exporter_lib_v2.ExportError, match='No checkpoint found'):
    exporter_lib_v2.export_inference_graph('image_tensor', pipeline_config, str(tmp_path),
                                           str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()


class _BrokenModel(tf_keras.layers.Layer):
  """A model whose postprocess fails while the serving function is traced."""

  def __init__(self):
    super().__init__()
    self.w = self.add_weight(name='w', shape=[])

  def preprocess(self, inputs):
    return inputs, tf.shape(inputs)[1:][tf.newaxis]

  def predict(self, preprocessed_inputs, true_image_shapes):
    return {'x': preprocessed_inputs * self.w}

  def postprocess(self, prediction_dict, true_image_shapes):
    raise ValueError('boom in postprocess')


def test_failed_export_leaves_no_output(tmp_path):
  model = _BrokenModel()
  model.build(None)
  output = tmp_path / 'exported'
  with pytest.raises(ValueError, match='boom in postprocess'):
    exporter_lib_v2.save_detection_model(model, 'image_tensor', str(output))
  assert os.listdir(tmp_path) == []  # Neither the output nor a temporary folder.


def test_refuses_to_replace_a_directory_that_is_not_an_export(tmp_path):
  (tmp_path / 'notes.txt').write_text('mine')
  model = _BrokenModel()
  model.build(None)
  with pytest.raises(exporter_lib_v2.ExportError, match='not from an export'):
    exporter_lib_v2.save_detection_model(model, 'image_tensor', str(tmp_path))
  assert os.listdir(tmp_path) == ['notes.txt']


def test_unknown_input_type():
  with pytest.raises(ValueError, match='Unknown input_type'):
    exporter_lib_v2.save_detection_model(_BrokenModel(), 'jpeg', '/nonexistent/out')


def test_np_reframe_matches_tf_reference():
  # The numpy reference used above agrees with tf.image.crop_and_resize-based reframing.
  from object_detection.utils import ops  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(0)
  box_masks = rng.uniform(size=[3, 7, 5]).astype(np.float32)
  boxes = np.array([[0.1, 0.2, 0.6, 0.9], [0.0, 0.0, 1.0, 1.0], [0.5, 0.4, 0.55, 0.47]],
                   np.float32)
  expected = ops.reframe_box_masks_to_image_masks(box_masks, boxes, 23, 31).numpy()
  actual, edge = np_reframe_box_masks(box_masks, boxes, 23, 31)
  assert edge.mean() < 0.1
  np.testing.assert_allclose(actual[~edge], expected[~edge], atol=1e-4)
  assert (expected[1] > 0).all()  # The full-image box covers every pixel.


class _TinyMaskModel(tf_keras.layers.Layer):
  """Minimal DetectionModel stand-in with one detection and a box mask (for wiring tests)."""

  num_classes = 3

  def __init__(self):
    super().__init__()
    self.logit = self.add_weight(name='logit', shape=[],
                                 initializer=tf_keras.initializers.Constant(2.0))

  def preprocess(self, inputs):
    resized = tf.image.resize(inputs, [16, 16])
    return resized, tf.tile(tf.constant([[16, 16, 3]], tf.int32), [tf.shape(inputs)[0], 1])

  def predict(self, preprocessed_inputs, true_image_shapes):
    return {'score': tf.sigmoid(self.logit + 0.0 * tf.reduce_mean(preprocessed_inputs))}

  def postprocess(self, prediction_dict, true_image_shapes):
    score = tf.reshape(prediction_dict['score'], [1, 1])
    return {'detection_boxes': tf.constant([[[0.0, 0.5, 1.0, 1.0]]]),
            'detection_scores': score,
            'detection_classes': tf.constant([[2.0]]),  # 0-based; label id 3 after export
            'num_detections': tf.constant([1.0]),
            'detection_masks': tf.fill([1, 1, 2, 2], score[0, 0])}


def test_float_image_tensor_and_optional_reframed_masks(tmp_path):
  model = _TinyMaskModel()
  model.build(None)
  image = np.random.RandomState(0).uniform(0, 255, [1, 5, 8, 3]).astype(np.float32)
  with_masks = exporter_lib_v2.save_detection_model(model, 'float_image_tensor',
                                                    str(tmp_path / 'a'))
  fn = tf.saved_model.load(os.path.join(with_masks, 'saved_model')).signatures['serving_default']
  out = fn(input_tensor=tf.constant(image))
  reframed = out['detection_masks_reframed'].numpy()
  assert reframed.dtype == np.uint8 and reframed.shape == (1, 1, 5, 8)
  # The box covers the right half of the image: mask there (sigmoid(2) > 0.5), not elsewhere.
  np.testing.assert_array_equal(reframed[0, 0, :, 4:], 1)
  np.testing.assert_array_equal(reframed[0, 0, :, :4], 0)
  assert out['detection_classes'].dtype == tf.float32
  without = exporter_lib_v2.save_detection_model(model, 'float_image_tensor', str(tmp_path / 'b'),
                                                 output_masks_reframed=False)
  fn = tf.saved_model.load(os.path.join(without, 'saved_model')).signatures['serving_default']
  out = fn(input_tensor=tf.constant(image))
  assert 'detection_masks_reframed' not in out and 'detection_masks' in out
  with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
    fn(input_tensor=tf.constant(image[0]))  # Rank 3: the signature wants [1, H, W, 3].


def test_export_replaces_a_previous_export(tmp_path):
  model = _TinyMaskModel()
  model.build(None)
  output = str(tmp_path / 'exported')
  exporter_lib_v2.save_detection_model(model, 'image_tensor', output)
  model.logit.assign(-2.0)  # Score sigmoid(-2) ~ 0.12 from now on.
  exporter_lib_v2.save_detection_model(model, 'image_tensor', output)
  fn = tf.saved_model.load(os.path.join(output, 'saved_model')).signatures['serving_default']
  out = fn(input_tensor=tf.zeros([1, 4, 4, 3], tf.uint8))
  np.testing.assert_allclose(out['detection_scores'].numpy(), [[1 / (1 + np.exp(2.0))]],
                             rtol=1e-5)
  assert sorted(os.listdir(tmp_path)) == ['exported']


def test_export_killed_between_the_renames_gets_the_old_export_back(tmp_path):
  """A kill after the old export was moved aside but before the new one was moved in."""
  model = _TinyMaskModel()
  model.build(None)
  output = str(tmp_path / 'exported')
  exporter_lib_v2.save_detection_model(model, 'image_tensor', output)
  listing = sorted(os.listdir(output))
  os.rename(output, str(tmp_path / '.exported.old-k9'))
  os.makedirs(str(tmp_path / '.exported.tmp-k9' / 'saved_model'))  # what the kill left
  os.makedirs(str(tmp_path / '.other.tmp-1'))  # another export's: not touched
  exporter_lib_v2._prepare_output_directory(output)  # pylint: disable=protected-access
  assert sorted(os.listdir(tmp_path)) == ['.other.tmp-1', 'exported']
  assert sorted(os.listdir(output)) == listing
  model.logit.assign(-2.0)
  exporter_lib_v2.save_detection_model(model, 'image_tensor', output)
  fn = tf.saved_model.load(os.path.join(output, 'saved_model')).signatures['serving_default']
  out = fn(input_tensor=tf.zeros([1, 4, 4, 3], tf.uint8))
  np.testing.assert_allclose(out['detection_scores'].numpy(), [[1 / (1 + np.exp(2.0))]],
                             rtol=1e-5)


def _pipeline_pb2():
  from object_detection.protos import pipeline_pb2  # pylint: disable=g-import-not-at-top
  return pipeline_pb2


@pytest.mark.parametrize('config_value,forced,expected', [
    (True, None, True), (False, None, False), (True, False, False), (False, True, True)])
def test_moving_average_choice_reaches_restore_for_inference(
    tmp_path, monkeypatch, config_value, forced, expected):
  pipeline_pb2 = _pipeline_pb2()
  from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  pipeline_config = pipeline_pb2.TrainEvalPipelineConfig()
  pipeline_config.train_config.optimizer.use_moving_average = config_value
  model = _TinyMaskModel()
  model.build(None)
  model_dir = str(tmp_path / 'model_dir')
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), model_dir, max_to_keep=1,
                             checkpoint_name='ckpt').save(checkpoint_number=5)
  calls = []
  monkeypatch.setattr(model_builder, 'build', lambda model_config, is_training: model)
  monkeypatch.setattr(checkpoint_utils, 'restore_for_inference',
                      lambda m, path, use_moving_average: calls.append((path, use_moving_average)))
  exporter_lib_v2.export_inference_graph('image_tensor', pipeline_config, model_dir,
                                         str(tmp_path / 'out'), use_moving_average=forced)
  assert calls == [(os.path.join(model_dir, 'ckpt-5'), expected)]
  assert sorted(os.listdir(tmp_path / 'out')) == ['checkpoint', 'pipeline.config', 'saved_model']
