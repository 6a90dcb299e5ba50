"""Tests of object_detection.predict on SavedModels exported from a stand-in DetectionModel.

The stand-in follows the `core.model.DetectionModel` interface and predicts one known,
high-scoring box with a full mask over the image center, so the overlay and COCO JSON
checks are exact. The real Mask R-CNN export is covered by tests/test_exporter.py.
"""
import json
import os
import shutil
import sys

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf
import tf_keras
from pycocotools import coco
from pycocotools import mask as mask_utils

from conftest import Launched  # pylint: disable=g-bad-import-order
from object_detection import exporter_lib_v2
from object_detection import predict

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128_DIR = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
VAL_JSON = os.path.join(COCO128_DIR, 'annotations', 'instances_val.json')
# Two val images of different sizes (640x481 portrait, 426x640 landscape).
VAL_IMAGES = ('000000000036.jpg', '000000000071.jpg')
CENTER_BOX = (0.25, 0.25, 0.75, 0.75)


class StandInMaskModel(tf_keras.layers.Layer):
  """Tiny DetectionModel stand-in: 2 detections, the first one a full mask on CENTER_BOX."""

  num_classes = 2

  def __init__(self):
    super().__init__()
    self.mask_logit = self.add_weight(
        name='mask_logit', shape=[], initializer=tf_keras.initializers.Constant(3.0))

  def preprocess(self, inputs):
    batch = tf.shape(inputs)[0]
    resized = tf.image.resize(inputs, [32, 32]) / 255.0
    return resized, tf.tile(tf.constant([[32, 32, 3]], tf.int32), [batch, 1])

  def predict(self, preprocessed_inputs, true_image_shapes, **side_inputs):
    del true_image_shapes, side_inputs
    return {'mean': tf.reduce_mean(preprocessed_inputs, axis=[1, 2, 3])}

  def postprocess(self, prediction_dict, true_image_shapes):
    del true_image_shapes
    batch = tf.shape(prediction_dict['mean'])[0]

    def tile(value):
      value = tf.constant(value, tf.float32)[tf.newaxis]
      return tf.tile(value, tf.concat([[batch], tf.ones([tf.rank(value) - 1], tf.int32)], 0))

    # mean * 0 keeps the output connected to the input.
    zero = 0.0 * prediction_dict['mean'][:, tf.newaxis]
    mask_prob = tf.sigmoid(self.mask_logit)  # 0.95: depends on the restored variable.
    masks = tf.stack([tf.fill([4, 4], mask_prob), tf.zeros([4, 4])])
    return {
        'detection_boxes': tile([CENTER_BOX, [0.0, 0.0, 0.1, 0.1]]),
        'detection_scores': tile([0.9, 0.2]) + zero,
        'detection_classes': tile([0.0, 1.0]),  # 0-based, as postprocess gives them
        'num_detections': tile(2.0),
        'detection_masks': tf.tile(masks[tf.newaxis], [batch, 1, 1, 1]),
        'detection_multiclass_scores': tile([[0.1, 0.9, 0.0], [0.8, 0.0, 0.2]]),
    }


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp('images'))
  for name in VAL_IMAGES:
    shutil.copy(os.path.join(COCO128_DIR, 'images', name), directory)
  # An unreadable image (truncated bytes) with an integer stem: reported, skipped, counted.
  with open(os.path.join(directory, '000000000999.jpg'), 'wb') as f:
    f.write(b'\xff\xd8\xff\xe0 not really a jpeg')
  return directory


def _export(tmp_path_factory, input_type):
  model = StandInMaskModel()
  model.build(None)
  output = str(tmp_path_factory.mktemp('export_' + input_type))
  exporter_lib_v2.save_detection_model(model, input_type, output)
  return os.path.join(output, 'saved_model')


@pytest.fixture(scope='module')
def image_tensor_export(tmp_path_factory):
  return _export(tmp_path_factory, 'image_tensor')


@pytest.fixture(scope='module', autouse=True)
def cli_runs(image_tensor_export, image_dir, tmp_path_factory):
  """The CLI launches of this module, started together as its first test starts.

  {'writes': (output_dir, run), 'usage_errors': (images, snapshot of images, out, [(run,
  expected error line)])}; the runs are conftest.Launched. Their start-ups (Python, TensorFlow) run
  side by side and beside the in-process tests instead of one after another.
  """
  runs = []

  def launch(flags_):
    runs.append(Launched([sys.executable, '-m', 'object_detection.predict'] + flags_,
                         tmp_path_factory.mktemp('predict_cli_logs')))
    return runs[-1]

  try:
    output_dir = str(tmp_path_factory.mktemp('cli') / 'predictions')
    writes = launch(['--saved_model_dir=' + image_tensor_export, '--image_dir=' + image_dir,
                     '--output_dir=' + output_dir, '--min_score_thresh=0.5'])
    # The usage errors: output over the inputs, a missing saved model.
    tmp_path = tmp_path_factory.mktemp('cli_usage_errors')
    images = str(tmp_path / 'images')
    shutil.copytree(image_dir, images)
    before = _snapshot(images)
    errors = []
    for flags_, expected in (
        (['--saved_model_dir=' + image_tensor_export, '--image_dir=' + images,
          '--output_dir=' + images],
         'Error: --output_dir=%s is the same folder as --image_dir=%s: predict would write among '
         '(and over) your images; choose a separate folder, e.g. --output_dir=predictions.'
         % (images, images)),
        (['--saved_model_dir=' + str(tmp_path / 'nowhere'), '--image_dir=' + images,
          '--output_dir=' + str(tmp_path / 'out')],
         'Error: --saved_model_dir=%s holds no saved_model.pb: pass the `saved_model` folder '
         'written by exporter_main.py (e.g. exported/my_model/saved_model).'
         % (tmp_path / 'nowhere'))):
      errors.append((launch(flags_), expected))
    yield {'writes': (output_dir, writes),
           'usage_errors': (images, before, tmp_path / 'out', errors)}
  finally:
    for run in runs:
      run.close()


@pytest.mark.parametrize('input_type', ['encoded_image_string_tensor', 'tf_example',
                                        'float_image_tensor'])
def test_predict_runs_every_input_type(tmp_path_factory, image_dir, tmp_path, input_type):
  saved_model_dir = _export(tmp_path_factory, input_type)
  summary = predict.run_predictions(saved_model_dir, image_dir, str(tmp_path),
                                    results_min_score_thresh=0.5, write_overlays=False)
  assert summary['num_processed'] == 2
  assert [name for name, _ in summary['skipped']] == ['000000000999.jpg']
  with open(summary['results_path']) as f:
    results = json.load(f)
  # Only the 0.9 detection passes results_min_score_thresh=0.5.
  assert [(r['image_id'], r['category_id']) for r in results] == [(36, 1), (71, 1)]


def test_image_ids_from_names_annotations_or_order(tmp_path):
  assert predict.assign_image_ids(['000000000009.jpg', '12.png']) == {
      '000000000009.jpg': 9, '12.png': 12}
  # Non-integer stems (and repeated ids) get ids above the largest integer stem.
  assert predict.assign_image_ids(['b.jpg', 'a.jpg', '7.jpg', '007.png']) == {
      '007.png': 7, '7.jpg': 8, 'a.jpg': 9, 'b.jpg': 10}
  assert predict.assign_image_ids(['b.jpg', 'a.jpg']) == {'a.jpg': 1, 'b.jpg': 2}
  assert predict.assign_image_ids(['000000000036.jpg'], VAL_JSON) == {'000000000036.jpg': 36}
  with pytest.raises(ValueError, match='not in --coco_annotations_path'):
    predict.assign_image_ids(['000000000009.jpg'], VAL_JSON)


def test_missing_saved_model_is_a_clear_error(tmp_path, image_dir):
  with pytest.raises(predict.PredictUsageError,
                     match='--saved_model_dir=%s holds no saved_model.pb' % tmp_path):
    predict.run_predictions(str(tmp_path), image_dir, str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()


def _snapshot(folder):
  return {name: open(os.path.join(folder, name), 'rb').read() for name in sorted(os.listdir(folder))}


@pytest.fixture
def fake_saved_model(tmp_path):
  """A folder with a saved_model.pb that is never loaded: the checks must refuse before that."""
  folder = tmp_path / 'saved_model'
  folder.mkdir()
  (folder / 'saved_model.pb').write_bytes(b'not loaded')
  return str(folder)


@pytest.mark.parametrize('case', ['same', 'same_via_symlink', 'inside', 'link_to_input',
                                  'hard_link_to_input'])
def test_output_dir_over_the_inputs_is_refused_before_writing(tmp_path, image_dir, fake_saved_model,
                                                               case):
  images = str(tmp_path / 'images')
  shutil.copytree(image_dir, images)
  before = _snapshot(images)
  if case == 'same':
    output_dir, expected = images, 'is the same folder as --image_dir'
  elif case == 'same_via_symlink':
    output_dir, expected = str(tmp_path / 'alias'), 'is the same folder as --image_dir'
    os.symlink(images, output_dir)
  elif case == 'inside':
    output_dir, expected = os.path.join(images, 'predictions'), 'is inside --image_dir'
  else:  # An output folder already holding a link named like an overlay: PIL would write through it.
    output_dir = str(tmp_path / 'out')
    os.mkdir(output_dir)
    link = os.symlink if case == 'link_to_input' else os.link
    link(os.path.join(images, '000000000036.jpg'), os.path.join(output_dir, '000000000036.png'))
    expected = '000000000036.png is the input image %s' % os.path.join(images, '000000000036.jpg')
  with pytest.raises(predict.PredictUsageError) as info:
    predict.run_predictions(fake_saved_model, images, output_dir)
  assert expected in str(info.value) and '\n' not in str(info.value)
  assert _snapshot(images) == before  # Nothing written, nothing overwritten.
  if case == 'inside':
    assert not os.path.exists(output_dir)
  # A separate folder next to the images passes the check.
  predict.check_output_dir(images, str(tmp_path / 'elsewhere'), sorted(before), ['a.png'])


def test_usage_errors_name_the_flag(tmp_path, image_dir, fake_saved_model):
  out = str(tmp_path / 'out')
  missing = str(tmp_path / 'missing')
  with pytest.raises(predict.PredictUsageError, match='--image_dir=%s is not a directory' % missing):
    predict.run_predictions(fake_saved_model, missing, out)
  empty = tmp_path / 'empty'
  empty.mkdir()
  (empty / 'notes.txt').write_text('not an image')
  with pytest.raises(predict.PredictUsageError, match='--image_dir=%s holds no image file' % empty):
    predict.run_predictions(fake_saved_model, str(empty), out)
  bad_label_map = tmp_path / 'label_map.pbtxt'
  bad_label_map.write_text('item { id: 1 name: "a" } item { id: 1 name: "b" }')
  with pytest.raises(predict.PredictUsageError,
                     match='--label_map_path=%s: .*id 1 is used by both' % bad_label_map):
    predict.run_predictions(fake_saved_model, image_dir, out, label_map_path=str(bad_label_map))
  with pytest.raises(predict.PredictUsageError, match='--label_map_path=%s is not a file' % missing):
    predict.run_predictions(fake_saved_model, image_dir, out, label_map_path=missing)
  with pytest.raises(predict.PredictUsageError,
                     match='--coco_annotations_path=%s cannot be read' % missing):
    predict.run_predictions(fake_saved_model, image_dir, out, coco_annotations_path=missing)
  assert not os.path.exists(out)


def test_overlay_names_never_collide():
  names = predict.overlay_names(['a.jpg', 'a.png', 'a_jpg.gif', 'b.jpg', 'detections.jpg'], 'png')
  assert names == {'a.jpg': 'a_jpg_2.png', 'a.png': 'a_png.png', 'a_jpg.gif': 'a_jpg.png',
                   'b.jpg': 'b.png', 'detections.jpg': 'detections.png'}
  assert predict.overlay_names(['000000000036.jpg'], 'jpg') == {'000000000036.jpg': '000000000036.jpg'}


def test_no_detection_above_the_threshold_is_counted_and_warned(image_tensor_export, image_dir,
                                                               tmp_path):
  summary = predict.run_predictions(image_tensor_export, image_dir, str(tmp_path / 'out'),
                                    min_score_thresh=0.95, write_overlays=False)
  assert summary['num_above_thresh'] == 0
  assert summary['images_without_detections'] == 2
  assert summary['max_score'] == pytest.approx(0.9)
  lines = predict.summary_lines(summary, 0.95)
  assert lines[1] == ('0 detections scored >= --min_score_thresh=0.95 (drawn on the overlays); 2 of '
                      '2 processed images have none.')
  assert lines[-1] == ('WARNING: no detection reached --min_score_thresh=0.95 in any image (the '
                       'highest score is 0.900): the overlays show nothing. Lower '
                       '--min_score_thresh, or check that the export is of a trained checkpoint.')


# The CLI tests come last: their commands (`cli_runs`) run while the tests above do.

def test_predict_cli_writes_coco_json_overlays_and_skips_unreadable(cli_runs, image_dir):
  output_dir, run = cli_runs['writes']
  proc = run.result()
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Processed 2 of 3 images, skipped 1 unreadable' in proc.stdout
  # One detection per image scores 0.9 >= 0.5 (the other 0.2).
  assert ('2 detections scored >= --min_score_thresh=0.5 (drawn on the overlays); 0 of 2 processed '
          'images have none.') in proc.stdout
  assert 'WARNING' not in proc.stderr
  # TensorFlow's start-up lines are hidden, and the one line saying so tells how to see them.
  assert 'set ODSEG_VERBOSE=1 to see them' in proc.stderr
  assert 'cpu_feature_guard' not in proc.stderr and 'This TensorFlow binary' not in proc.stderr
  assert '000000000999.jpg' in proc.stdout
  assert '000000000999.jpg' in proc.stderr  # Reported as it happens.

  # COCO results JSON: loadable by pycocotools against the val annotations.
  results_path = os.path.join(output_dir, 'detections.json')
  ground_truth = coco.COCO(VAL_JSON)
  detections = ground_truth.loadRes(results_path)
  with open(results_path) as f:
    results = json.load(f)
  assert sorted(set(r['image_id'] for r in results)) == [36, 71]
  assert len(results) == 4  # 2 detections per image, none dropped (results threshold 0).
  assert all('bbox' not in r for r in results)  # loadRes then uses the mask area.
  # Box results, for box metrics, in their own file.
  boxes = ground_truth.loadRes(os.path.join(output_dir, 'detections_bbox.json'))
  for image_id in (36, 71):
    info = ground_truth.imgs[image_id]
    height, width = info['height'], info['width']
    anns = boxes.loadAnns(boxes.getAnnIds(imgIds=[image_id]))
    assert len(anns) == 2
    best = max(anns, key=lambda a: a['score'])
    assert best['category_id'] == 1
    np.testing.assert_allclose(best['bbox'], [0.25 * width, 0.25 * height, 0.5 * width,
                                              0.5 * height], rtol=1e-5)
  with open(os.path.join(output_dir, 'image_ids.json')) as f:
    assert json.load(f) == {'000000000036.jpg': 36, '000000000071.jpg': 71}
  for name in VAL_IMAGES:
    image_id = int(name[:-4])
    info = ground_truth.imgs[image_id]
    height, width = info['height'], info['width']
    anns = detections.loadAnns(detections.getAnnIds(imgIds=[image_id]))
    best = max(anns, key=lambda a: a['score'])
    assert best['category_id'] == 1
    assert best['score'] == pytest.approx(0.9)
    mask = mask_utils.decode(best['segmentation'])
    assert mask.shape == (height, width)
    assert mask[height // 2, width // 2] == 1
    assert mask[int(0.1 * height), int(0.1 * width)] == 0
    assert mask[int(0.9 * height), int(0.9 * width)] == 0
    # Pasted box mask covers the box (to a pixel at the borders).
    assert abs(mask.sum() - 0.25 * height * width) < 2 * (height + width)
    weak = min(anns, key=lambda a: a['score'])
    assert weak['category_id'] == 2 and mask_utils.decode(weak['segmentation']).sum() == 0

    # Overlay: pixels inside the drawn mask changed color; pixels far outside did not.
    # predict decodes with TensorFlow (as training does), not Pillow: compare to that.
    original = predict.decode_image(open(os.path.join(image_dir, name), 'rb').read())
    overlay = np.array(PIL.Image.open(
        os.path.join(output_dir, name.replace('.jpg', '.png'))).convert('RGB'))
    assert overlay.shape == original.shape
    inside = (slice(int(0.4 * height), int(0.6 * height)),
              slice(int(0.4 * width), int(0.6 * width)))
    changed = np.any(overlay[inside] != original[inside], axis=-1)
    assert changed.mean() > 0.99
    far_outside = (slice(int(0.85 * height), None), slice(int(0.85 * width), None))
    np.testing.assert_array_equal(overlay[far_outside], original[far_outside])
    # The low-score detection (0.2 < 0.5) in the top-left corner is not drawn.
    corner = (slice(0, int(0.08 * height)), slice(0, int(0.08 * width)))
    np.testing.assert_array_equal(overlay[corner], original[corner])
  assert not os.path.exists(os.path.join(output_dir, '000000000999.png'))


def test_cli_usage_errors_are_one_line_exit_2(cli_runs):
  """The CLI: output over the inputs, a missing saved model: one line, status 2, nothing written."""
  images, before, out, runs = cli_runs['usage_errors']
  for run, expected in runs:
    proc = run.result()
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if 'ODSEG_VERBOSE' not in line]
    assert errors == [expected]
    assert proc.stdout == ''
  assert _snapshot(images) == before
  assert not out.exists()
