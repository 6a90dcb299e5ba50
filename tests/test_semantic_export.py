"""Export of a semantic segmentation model (semantic_exporter.py), predict's overlays, OpenVINO IR.

A tiny `model { semantic_segmentation }` (MobileNetV3-small FPN levels 3-4, 16-channel FCN head,
64 px input) is built by model_builder with random weights; its classifier is scaled so the
per-pixel classes differ across a photo (an untrained head gives near-equal probabilities). It is
saved as a training checkpoint (tf.train.Checkpoint(model=...)), exported once through
exporter_lib_v2.export_inference_graph (the path of exporter_main.py) together with the OpenVINO
IR (export_openvino.write_ir_into_export, the hook of --output_format=openvino), and:
  * the SavedModel's outputs on real coco128_seg photos are at the input size, classes are the
    argmax of the probabilities, and both equal the in-process model's postprocess cropped to the
    true image and resized with a numpy bilinear reference (half-pixel centres);
  * predict writes the class-id PNG (equal to the SavedModel's classes), the overlay with its
    legend and the per-class pixel summary;
  * the IR gives the SavedModel's classes.
"""
import json
import os
import shutil

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf
import tf_keras

from object_detection import export_openvino
from object_detection import exporter_lib_v2
from object_detection import inference_backends
from object_detection import predict
from object_detection import semantic_exporter
from object_detection.utils import semantic_palette
from object_detection.utils import semantic_visualization

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128_IMAGES = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg', 'images')
# Real photos: 480x640 (landscape) and 640x481 (portrait); non-square, unlike the model input.
PHOTOS = ('000000000133.jpg', '000000000036.jpg')
NUM_CLASSES = 3
CLASS_NAMES = ('person', 'car', 'dog')
TINY_CONFIG = """
model {
  semantic_segmentation {
    num_classes: %d
    image_resizer {
      keep_aspect_ratio_resizer { min_dimension: 64 max_dimension: 64 pad_to_max_dimension: true }
    }
    feature_extractor {
      type: 'faster_rcnn_mobilenet_v3_small_fpn_keras'
      batch_norm_trainable: false
      conv_hyperparams {
        activation: RELU_6
        regularizer { l2_regularizer { weight: 0.00004 } }
        initializer { truncated_normal_initializer { stddev: 0.03 } }
      }
      fpn { min_level: 3 max_level: 4 additional_layer_depth: 16 }
    }
    fcn_head {
      num_convs: 1
      depth: 16
      conv_hyperparams {
        op: CONV
        regularizer { l2_regularizer { weight: 0.00004 } }
        initializer { truncated_normal_initializer { stddev: 0.03 } }
      }
    }
  }
}
train_config { optimizer { use_moving_average: false } }
""" % NUM_CLASSES


def _photo(name):
  with open(os.path.join(COCO128_IMAGES, name), 'rb') as f:
    return tf.io.decode_jpeg(f.read(), channels=3).numpy()


def np_resize_bilinear(values, height, width):
  """Numpy reference of bilinear resizing with half-pixel centres (align_corners=False).

  values: [h, w, C]. Source coordinate of output pixel i: (i + 0.5) * h / height - 0.5, clamped
  to [0, h - 1] (PyTorch interpolate(mode='bilinear', align_corners=False), TF2 tf.image.resize).
  """
  values = np.asarray(values, np.float64)

  def axis(n_out, n_in):
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(src).astype(int)
    return low, np.minimum(low + 1, n_in - 1), src - low

  y0, y1, wy = axis(height, values.shape[0])
  x0, x1, wx = axis(width, values.shape[1])
  rows = values[y0] * (1 - wy)[:, None, None] + values[y1] * wy[:, None, None]
  return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


@pytest.fixture(scope='module')
def export(semantic_export):
  """{'model', 'dir', 'saved_model', 'loaded', 'xml', 'label_map'} (conftest: built once)."""
  return semantic_export


def build_export(tmp_path_factory):
  """The tiny model exported with its IR (conftest's session fixture `semantic_export`, shared
  with test_semantic_evaluate_exported.py); see `export`."""
  from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('semantic_export')
  config_path = root / 'pipeline.config'
  config_path.write_text(TINY_CONFIG)
  pipeline_config = exporter_lib_v2.load_pipeline_config(str(config_path))
  tf_keras.utils.set_random_seed(16)
  model = model_builder.build(pipeline_config.model, is_training=False)
  image = tf.constant(_photo(PHOTOS[0])[np.newaxis], tf.float32)
  preprocessed, true_shapes = model.preprocess(image)
  logits = model.predict(preprocessed, true_shapes)['semantic_logits']
  # Spread the classes: the random backbone's features are ~1e-4, so the logits are ~1e-6 and
  # the probabilities all ~1/4. Scaling the classifier's kernel to logits of std 4 makes the
  # per-pixel argmax vary over the photo with clear margins.
  classifier = [v for v in model.variables if 'classifier' in v.name and 'kernel' in v.name]
  assert len(classifier) == 1, [v.name for v in model.variables if 'classifier' in v.name]
  classifier[0].assign(classifier[0] * (4.0 / float(tf.math.reduce_std(logits))))
  train_dir = root / 'train'
  tf.train.Checkpoint(model=model).save(str(train_dir / 'ckpt'))
  export_dir = exporter_lib_v2.export_inference_graph(
      'image_tensor', pipeline_config, str(train_dir), str(root / 'exported'),
      extra_outputs_fn=export_openvino.write_ir_into_export)
  label_map = root / 'label_map.pbtxt'
  label_map.write_text(''.join("item { id: %d name: '%s' }\n" % (i + 1, name)
                               for i, name in enumerate(CLASS_NAMES)))
  saved_model = os.path.join(export_dir, 'saved_model')
  return {'model': model, 'dir': export_dir, 'saved_model': saved_model,
          'loaded': tf.saved_model.load(saved_model),
          'xml': os.path.join(export_dir, 'openvino', 'model.xml'), 'label_map': str(label_map),
          'root': root}


def _serve(export, image):
  outputs = export['loaded'].signatures['serving_default'](
      input_tensor=tf.constant(image[np.newaxis]))
  return {key: value.numpy() for key, value in outputs.items()}


def test_outputs_at_input_size_equal_in_process_model(export):
  for name in PHOTOS:
    image = _photo(name)
    height, width = image.shape[:2]
    outputs = _serve(export, image)
    probabilities = outputs[semantic_exporter.SEMANTIC_PROBABILITIES]
    classes = outputs[semantic_exporter.SEMANTIC_CLASSES]
    assert probabilities.shape == (1, height, width, NUM_CLASSES + 1)
    assert probabilities.dtype == np.float32
    assert classes.shape == (1, height, width) and classes.dtype == np.int32
    np.testing.assert_array_equal(classes, np.argmax(probabilities, axis=-1))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    # The in-process model: postprocess at the padded 64x64 model input, cropped to the true
    # image, resized by the numpy reference.
    model = export['model']
    preprocessed, true_shapes = model.preprocess(tf.constant(image[np.newaxis], tf.float32))
    post = model.postprocess(model.predict(preprocessed, true_shapes), true_shapes)
    true_h, true_w = true_shapes.numpy()[0, :2]
    assert (true_h, true_w) != (64, 64) and max(true_h, true_w) == 64  # padding was cropped
    reference = np_resize_bilinear(
        post['semantic_probabilities'].numpy()[0, :true_h, :true_w], height, width)
    np.testing.assert_allclose(probabilities[0], reference, atol=2e-5)
    top2 = np.sort(reference, axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-4
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(classes[0][clear], np.argmax(reference, axis=-1)[clear])
    # A real prediction map: several classes, none filling the photo.
    shares = np.bincount(classes.ravel(), minlength=NUM_CLASSES + 1) / classes.size
    assert (shares > 0.01).sum() >= 2, shares
  assert export['loaded'].num_classes.numpy() == NUM_CLASSES
  assert export['loaded'].input_type.numpy() == b'image_tensor'
  assert sorted(os.listdir(export['dir'])) == ['checkpoint', 'openvino', 'pipeline.config',
                                               'saved_model']


def test_predict_writes_overlay_class_png_and_summary(export):
  image_dir = export['root'] / 'photos'
  image_dir.mkdir()
  for name in PHOTOS:
    shutil.copy(os.path.join(COCO128_IMAGES, name), image_dir)
  output_dir = str(export['root'] / 'predictions')
  summary = predict.run_predictions(export['saved_model'], str(image_dir), output_dir,
                                    label_map_path=export['label_map'])
  assert summary['num_processed'] == len(PHOTOS) and summary['semantic'] is not None
  assert not os.path.exists(os.path.join(output_dir, predict.RESULTS_FILENAME))
  with open(summary['semantic_summary_path']) as f:
    written = json.load(f)
  table = semantic_palette.palette(NUM_CLASSES)
  totals = np.zeros(NUM_CLASSES + 1, np.int64)
  for name in PHOTOS:
    image = _photo(name)
    stem = os.path.splitext(name)[0]
    expected = _serve(export, image)[semantic_exporter.SEMANTIC_CLASSES][0]
    png = PIL.Image.open(os.path.join(output_dir, 'classes', stem + '.png'))
    assert png.mode == 'L' and png.size == (image.shape[1], image.shape[0])
    np.testing.assert_array_equal(np.asarray(png), expected)
    counts = np.bincount(expected.ravel(), minlength=NUM_CLASSES + 1)
    totals += counts
    assert {c['id']: c['pixels'] for c in written['images'][name]['classes']} == {
        k: int(n) for k, n in enumerate(counts) if n}
    overlay = np.asarray(PIL.Image.open(os.path.join(output_dir, stem + '.png')))
    height, width = image.shape[:2]
    # The photo blended with the colours on the left, unchanged where background ...
    np.testing.assert_array_equal(overlay[:height, :width],
                                  semantic_visualization.blend(image, expected, table))
    np.testing.assert_array_equal(overlay[:height, :width][expected == 0], image[expected == 0])
    assert (overlay[:height, :width][expected != 0] != image[expected != 0]).any()
    # ... and a legend on the right with a swatch of each class present, in its colour.
    legend = overlay[:, width:]
    assert legend.shape[1] > 40
    for k in np.nonzero(counts[1:])[0] + 1:
      assert (legend == table[k]).all(-1).sum() > 20, k
    for k in np.nonzero(counts[1:] == 0)[0] + 1:
      assert not (legend == table[k]).all(-1).any(), k
  names = {c['id']: c['name'] for c in written['classes']}
  assert all(names[k] == CLASS_NAMES[k - 1] for k in names if k)
  assert {c['id']: c['pixels'] for c in written['classes']} == {
      k: int(n) for k, n in enumerate(totals) if n}
  lines = predict.summary_lines(summary, 0.5)
  assert 'Processed 2 of 2 images' in lines[0]
  top = CLASS_NAMES[int(np.argmax(totals[1:]))] if totals[1:].max() > totals[0] else 'background'
  assert lines[1].startswith('Pixel share over all images: %s ' % top), lines[1]


def test_openvino_ir_gives_savedmodel_classes(export):
  backend = inference_backends.load_backend(export['xml'])
  for name in PHOTOS:
    image = _photo(name)
    expected = _serve(export, image)
    got = backend.detect(image)
    assert got[semantic_exporter.SEMANTIC_CLASSES].shape == image.shape[:2]
    np.testing.assert_allclose(got[semantic_exporter.SEMANTIC_PROBABILITIES],
                               expected[semantic_exporter.SEMANTIC_PROBABILITIES][0], atol=1e-4)
    # Equal classes wherever the SavedModel's two best probabilities are not a near-tie (f32
    # kernels of OpenVINO and TF differ by ~1e-7).
    top2 = np.sort(expected[semantic_exporter.SEMANTIC_PROBABILITIES][0], axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-4
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(got[semantic_exporter.SEMANTIC_CLASSES][clear],
                                  expected[semantic_exporter.SEMANTIC_CLASSES][0][clear])


def test_jit_compile_is_refused(export, tmp_path):
  with pytest.raises(exporter_lib_v2.ExportError, match='--jit_compile: semantic_segmentation'):
    exporter_lib_v2.save_detection_model(export['model'], 'image_tensor', str(tmp_path / 'x'),
                                         jit_compile=True)
  assert not os.path.exists(tmp_path / 'x')


def test_class_id_png_round_trips_and_unlisted_ids_are_named(tmp_path):
  classes = np.zeros([3, 5], np.int64)
  classes[0, 0], classes[2, 4] = 7, 300
  path = str(tmp_path / 'ids.png')
  semantic_visualization.class_id_png(classes).save(path)
  np.testing.assert_array_equal(np.asarray(PIL.Image.open(path)), classes)  # 16-bit PNG
  semantic_visualization.class_id_png(np.minimum(classes, 255)).save(path)
  assert PIL.Image.open(path).mode == 'L'
  assert semantic_visualization.class_names({7: {'id': 7, 'name': 'car'}}, [0, 7, 300]) == {
      0: 'background', 7: 'car', 300: 'id 300'}
