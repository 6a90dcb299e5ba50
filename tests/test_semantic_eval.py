"""Tests of object_detection/semantic_eval.py (evaluation of semantic segmentation models) on
real coco128_seg photos.

Ground truth: the label maps of 3 val images (260: 333x500, 536: 336x448, 71: 426x640) painted
from instances_val.json by the converter's rule (`semantic_annotations.paint_coco_label_map`,
the 9 classes they show + 'dog' + background, as `--classes` would convert them). The eval batches are built here as `semantic_inputs.eval_input`
documents them (padded images, 255-padded label maps), and a fake model
(a `SemanticSegmentationModel` subclass, so `eval_util.evaluate` dispatches to `semantic_eval`)
predicts logits 4 * one_hot(ground truth given to provide_groundtruth) + 0.01 * class id / K:
  * model input at the original size: the predictions equal the ground truth -> mIoU = mDice =
    pixel accuracy = 1.0; metrics JSON, eval losses (the fake loss is mean(true height) / 100, so
    its per-image average is known), TensorBoard picture image | prediction | ground truth of
    size H0 x 3 W0 whose panels are the photo and the colour maps.
  * model input at a quarter of the size: the metrics equal a numpy reference (softmax, bilinear
    half-pixel resize of the cropped probabilities to the original size, argmax, confusion
    matrix with `semantic_segmentation_metrics`), and are below 1.
  * errors: a COCO metrics_set, an empty dataset; checkpoint_evaluator's printed lines;
    progress.write_train_images of a semantic batch.
"""
import glob
import json
import math
import os

from google.protobuf import text_format
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from object_detection import eval_util
from object_detection import inputs
from object_detection import semantic_eval
from object_detection.builders import model_builder
from object_detection.dataset_tools import coco_images as coco_images_lib
from object_detection.dataset_tools import semantic_annotations as sa
from object_detection.dataset_tools import semantic_tf_record
from object_detection.meta_architectures import semantic_segmentation_meta_arch as meta_arch
from object_detection.metrics import semantic_segmentation_metrics as ssm
from object_detection.protos import pipeline_pb2
from object_detection.training import checkpoint_evaluator
from object_detection.training import progress
from object_detection.utils import config_util
from object_detection.utils import semantic_palette
from tests import mask_rcnn_test_utils  # pylint: disable=unused-import  # test_tiny_extractor_32

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128 = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
VAL_JSON = os.path.join(COCO128, 'annotations', 'instances_val.json')
IMAGE_IDS = (260, 536, 71)
# The classes of those images (ids 1..9 in this order) and 'dog' (10), in none of them.
CLASSES = ('person', 'car', 'bus', 'truck', 'train', 'chair', 'suitcase', 'handbag', 'cell phone',
           'dog')
IGNORE = 255
CE_KEY = meta_arch.CROSS_ENTROPY_LOSS_KEY


@pytest.fixture(scope='module')
def coco_images():
  """[(source_id, image uint8 [H, W, 3], label map uint8 [H, W])], and the category index."""
  with open(VAL_JSON) as f:
    data = json.load(f)
  categories = {c['id']: c['name'] for c in data['categories']}
  plan = sa.coco_classes(categories, CLASSES, sa.OTHER_IGNORE)
  images = {im['id']: im for im in data['images']}
  out = []
  for image_id in IMAGE_IDS:
    info = images[image_id]
    anns = [a for a in data['annotations'] if a['image_id'] == image_id]
    label_map, painted, _ = sa.paint_coco_label_map(anns, info['height'], info['width'],
                                                    plan.value_of)
    assert len(painted) >= 2
    photo = np.asarray(Image.open(os.path.join(COCO128, 'images', info['file_name']))
                       .convert('RGB'))
    assert photo.shape[:2] == label_map.shape
    out.append((str(image_id), photo, label_map))
  category_index = {i: {'id': i, 'name': n} for i, n in plan.categories.items() if i}
  return out, category_index


class FakeSemanticModel(meta_arch.SemanticSegmentationModel):
  """Predicts the ground truth it is given: logits 4 * one_hot(label) + 0.01 * k / K (ignored
  pixels: no one-hot, so the highest class id); loss = mean(true image height) / 100."""

  def __init__(self, num_classes):
    super().__init__(is_training=False, num_classes=num_classes, image_resizer_fn=None,
                     feature_extractor=None, fcn_head=None, feature_stride=1)

  def predict(self, preprocessed_inputs, true_image_shapes, **unused):
    labels = tf.cast(self.groundtruth_lists(meta_arch.GROUNDTRUTH_SEMANTIC), tf.int32)
    return {meta_arch.SEMANTIC_LOGITS: fake_logits(labels, self.num_output_classes)}

  def loss(self, prediction_dict, true_image_shapes):
    return {CE_KEY: tf.reduce_mean(tf.cast(true_image_shapes[:, 0], tf.float32)) / 100.0}


def fake_logits(labels, num_classes):
  bias = 0.01 * tf.range(num_classes, dtype=tf.float32) / num_classes
  return 4.0 * tf.one_hot(labels, num_classes) + bias


def nearest_resize(label_map, height, width):
  rows = np.minimum(((np.arange(height) + 0.5) * label_map.shape[0] / height).astype(int),
                    label_map.shape[0] - 1)
  cols = np.minimum(((np.arange(width) + 0.5) * label_map.shape[1] / width).astype(int),
                    label_map.shape[1] - 1)
  return label_map[rows][:, cols]


def pad(arrays, value):
  height = max(a.shape[0] for a in arrays)
  width = max(a.shape[1] for a in arrays)
  out = np.full((len(arrays), height, width) + arrays[0].shape[2:], value, arrays[0].dtype)
  for i, a in enumerate(arrays):
    out[i, :a.shape[0], :a.shape[1]] = a
  return out


def make_batches(items, scale, batch_size=2):
  """Eval batches as semantic_inputs.eval_input gives them; the model input is the image
  resized by `scale` (label maps nearest). Returns (batches, model-input label maps)."""
  batches, model_labels = [], []
  for start in range(0, len(items), batch_size):
    chunk = items[start:start + batch_size]
    images, labels, true_shapes = [], [], []
    for _, photo, label_map in chunk:
      height = int(round(photo.shape[0] * scale))
      width = int(round(photo.shape[1] * scale))
      images.append(tf.image.resize(photo.astype(np.float32), (height, width)).numpy())
      labels.append(nearest_resize(label_map, height, width))
      true_shapes.append([height, width, 3])
    model_labels.extend(labels)
    features = {
        'image': tf.constant(pad(images, 0.0)),
        'true_image_shape': tf.constant(true_shapes, tf.int32),
        'original_image_spatial_shape': tf.constant([p.shape[:2] for _, p, _ in chunk], tf.int32),
        'source_id': tf.constant([s for s, _, _ in chunk]),
        'key': tf.constant([s for s, _, _ in chunk]),
        'original_image': tf.constant(pad([p for _, p, _ in chunk], np.uint8(0))),
    }
    batch_labels = {
        'groundtruth_semantic': tf.constant(pad(labels, np.uint8(IGNORE))),
        'original_groundtruth_semantic': tf.constant(pad([m for _, _, m in chunk],
                                                         np.uint8(IGNORE))),
    }
    batches.append((features, batch_labels))
  return batches, model_labels


class EvalConfig(object):
  metrics_set = ['semantic_segmentation_metrics']
  num_visualizations = 2


def configs(metrics_set=None):
  config = EvalConfig()
  if metrics_set is not None:
    config.metrics_set = metrics_set
  return {'eval_config': config}


def read_images(model_dir):
  """{tag: decoded uint8 [H, W, 3]} of the image summaries in model_dir/eval."""
  found = {}
  for path in glob.glob(os.path.join(model_dir, 'eval', 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name == 'images':
          encoded = tf.make_ndarray(value.tensor)[2]
          found[value.tag] = tf.io.decode_png(encoded).numpy()
  return found


def bilinear(values, height, width):
  """numpy float64 bilinear resize with half-pixel centres (tf.image.resize's formula)."""
  def axis(out_size, in_size):
    src = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
    low = np.floor(src)
    frac = src - low
    low = low.astype(int)
    return np.clip(low, 0, in_size - 1), np.clip(low + 1, 0, in_size - 1), frac
  r0, r1, fr = axis(height, values.shape[0])
  c0, c1, fc = axis(width, values.shape[1])
  rows = values[r0] * (1 - fr)[:, None, None] + values[r1] * fr[:, None, None]
  return rows[:, c0] * (1 - fc)[None, :, None] + rows[:, c1] * fc[None, :, None]


def test_perfect_model_metrics_json_losses_and_pictures(coco_images, tmp_path):
  items, category_index = coco_images
  model = FakeSemanticModel(len(category_index))
  batches, _ = make_batches(items, scale=1.0)
  # A repeating input (its first batch again) stops at the repeat.
  metrics = eval_util.evaluate(model, configs(), batches + batches[:1], 7,
                               model_dir=str(tmp_path), category_index=category_index,
                               compute_model_stats=False)
  assert metrics['SemanticSegmentation/mIoU'] == 1.0
  assert metrics['SemanticSegmentation/mDice'] == 1.0
  assert metrics['SemanticSegmentation/pixel_accuracy'] == 1.0
  present = set()
  for _, _, label_map in items:
    present |= set(np.unique(label_map).tolist()) - {IGNORE}
  for class_id, category in category_index.items():
    iou = metrics['SemanticSegmentation/IoU/' + category['name']]
    assert (iou == 1.0) if class_id in present else math.isnan(iou)
  assert metrics['SemanticSegmentation/IoU/background'] == 1.0
  # Loss: mean true height per batch, averaged over images = mean height.
  expected = np.mean([p.shape[0] for _, p, _ in items]) / 100.0
  assert metrics[CE_KEY] == pytest.approx(expected)
  assert metrics['Loss/total_loss'] == pytest.approx(expected)

  with open(os.path.join(tmp_path, 'eval', 'metrics_7.json')) as f:
    record = json.load(f)
  assert record['num_images'] == 3 and record['global_step'] == 7
  assert record['metrics']['SemanticSegmentation/mIoU'] == 1.0
  assert record['metrics']['SemanticSegmentation/IoU/dog'] is None
  assert math.isnan(metrics['SemanticSegmentation/IoU/dog'])

  assert sorted(read_images(str(tmp_path))) == ['eval_side_by_side_0', 'eval_side_by_side_1']


def test_downscaled_model_equals_numpy_reference(coco_images, tmp_path):
  items, category_index = coco_images
  num_classes = len(category_index) + 1
  model = FakeSemanticModel(len(category_index))
  batches, model_labels = make_batches(items, scale=0.25)
  metrics = semantic_eval.evaluate(model, configs([]), batches, 1, model_dir=str(tmp_path),
                                   category_index=category_index, compute_model_stats=False)
  matrix = np.zeros((num_classes, num_classes), np.int64)
  pictures = read_images(str(tmp_path))
  assert sorted(pictures) == ['eval_side_by_side_0', 'eval_side_by_side_1']
  table = semantic_palette.palette(len(category_index))
  for index, ((_, photo, label_map), small) in enumerate(zip(items, model_labels)):
    logits = fake_logits(tf.constant(small, tf.int32), num_classes).numpy().astype(np.float64)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    prediction = np.argmax(bilinear(probabilities, *label_map.shape), axis=-1)
    matrix += ssm.confusion_matrix(label_map, prediction, num_classes)
    if index < 2:  # image | prediction | ground truth, at the original size
      width = label_map.shape[1]
      picture = pictures['eval_side_by_side_%d' % index]
      assert picture.shape == (label_map.shape[0], 3 * width, 3)
      np.testing.assert_array_equal(picture[:, :width], photo)
      np.testing.assert_array_equal(picture[:, width:2 * width],
                                    semantic_palette.colorize(prediction, table))
      np.testing.assert_array_equal(picture[:, 2 * width:],
                                    semantic_palette.colorize(label_map, table))
  reference = ssm.metrics_from_confusion_matrix(matrix)
  assert metrics['SemanticSegmentation/mIoU'] == reference['miou']
  assert metrics['SemanticSegmentation/mDice'] == reference['mdice']
  assert metrics['SemanticSegmentation/pixel_accuracy'] == reference['pixel_accuracy']
  assert 0.5 < reference['miou'] < 1.0
  names = ssm.class_names_from_categories(list(category_index.values()), num_classes)
  for class_id, name in enumerate(names):
    np.testing.assert_equal(metrics['SemanticSegmentation/Dice/' + name],
                            reference['dice'][class_id])


def test_errors_and_printed_lines(coco_images, tmp_path):
  items, category_index = coco_images
  model = FakeSemanticModel(len(category_index))
  with pytest.raises(ValueError, match=r"metrics_set\[0\] is 'coco_mask_metrics'"):
    semantic_eval.evaluate(model, configs(['coco_mask_metrics']), [], 0,
                           category_index=category_index)
  with pytest.raises(ValueError, match=r"label_map_path does not fit the model's num_classes 10"):
    semantic_eval.evaluate(model, configs(), [], 0,
                           category_index={**category_index, 11: {'id': 11, 'name': 'x'}})
  with pytest.raises(ValueError, match='eval dataset is empty'):
    semantic_eval.evaluate(model, configs(), [], 0, category_index=category_index)

  # Class chunks: same argmax as one resize of all classes; ties -> the lower class id.
  probabilities = np.random.RandomState(0).rand(5, 7, 11).astype(np.float32)
  probabilities[..., 9] = probabilities[..., 2] = 2.0
  expected = np.argmax(tf.image.resize(probabilities, (9, 13)).numpy(), axis=-1)
  chunked = semantic_eval.class_map_at_size(probabilities, 9, 13, chunk=3)
  np.testing.assert_array_equal(chunked, expected)
  assert (chunked == 2).all()

  few = {'SemanticSegmentation/mIoU': 0.5, 'SemanticSegmentation/mDice': 0.6,
         'SemanticSegmentation/pixel_accuracy': 0.9, 'SemanticSegmentation/IoU/background': 0.8,
         'SemanticSegmentation/Dice/background': 0.85, 'SemanticSegmentation/IoU/road': 0.25,
         'SemanticSegmentation/Dice/road': 0.4, 'Loss/total_loss': 1.5}
  assert checkpoint_evaluator.metric_lines(few) == [
      '  Loss/total_loss: 1.5000', '  SemanticSegmentation/mIoU: 0.5000',
      '  SemanticSegmentation/mDice: 0.6000', '  SemanticSegmentation/pixel_accuracy: 0.9000',
      '  IoU / Dice of background: 0.8000 / 0.8500', '  IoU / Dice of road: 0.2500 / 0.4000']
  many = dict(few, **{'SemanticSegmentation/IoU/c%d' % i: 0.1 for i in range(20)})
  lines = checkpoint_evaluator.metric_lines(many, 'm/eval/metrics_3.json')
  assert lines[-1] == '  (per-class IoU / Dice of the 22 classes: m/eval/metrics_3.json)'
  assert len(lines) == 5

  # write_train_images of a semantic batch: model input | colour map.
  batches, _ = make_batches(items[:2], scale=0.25)
  features, labels = batches[0]
  writer = tf.summary.create_file_writer(os.path.join(tmp_path, 'eval'))
  progress.write_train_images(writer, features, {'groundtruth_semantic':
                                                 labels['groundtruth_semantic']}, 0)
  picture = read_images(str(tmp_path))['train_input_images']
  height, width = labels['groundtruth_semantic'].shape[1:]
  assert picture.shape == (height, 2 * width, 3)
  expected = semantic_palette.colorize(labels['groundtruth_semantic'][0].numpy(),
                                       semantic_palette.palette(80))
  np.testing.assert_array_equal(picture[:, width:], expected)


PIPELINE = """
model { semantic_segmentation {
  num_classes: %(num_classes)d
  image_resizer { fixed_shape_resizer { height: 48 width: 64 } }
  feature_extractor { type: 'test_tiny_extractor_32' first_stage_features_stride: 8 }
  fcn_head { num_convs: 1 depth: 8 conv_hyperparams {
    op: CONV regularizer { l2_regularizer { weight: 0.0001 } }
    initializer { truncated_normal_initializer { stddev: 0.01 } } } }
} }
train_config { batch_size: 2 }
eval_config { batch_size: 3 metrics_set: 'semantic_segmentation_metrics' num_visualizations: 1 }
eval_input_reader {
  label_map_path: '%(label_map)s'
  shuffle: false num_epochs: 1
  tf_record_input_reader { input_path: '%(records)s' }
}
"""


def test_real_model_and_eval_input(coco_images, tmp_path):
  """The builder's model on semantic_inputs.eval_input of records of the 3 images, through
  eval_util.evaluate: every image is scored at its original size, losses, stats, picture."""
  items, category_index = coco_images
  records = str(tmp_path / 'semantic_val.record')
  with tf.io.TFRecordWriter(records) as writer:
    for source_id, _, label_map in items:
      path = os.path.join(COCO128, 'images', '%012d.jpg' % int(source_id))
      example = semantic_tf_record.build_semantic_example(
          coco_images_lib.read_image(path), os.path.basename(path), source_id, label_map)
      writer.write(example.SerializeToString())
  label_map_path = str(tmp_path / 'label_map.pbtxt')
  with open(label_map_path, 'w') as f:  # as create_semantic_tf_record.py writes it
    f.write("item { id: 0 name: 'background' }\n")
    for class_id, category in sorted(category_index.items()):
      f.write("item { id: %d name: '%s' }\n" % (class_id, category['name']))
  pipeline = text_format.Parse(PIPELINE % {'num_classes': len(category_index),
                                           'label_map': label_map_path, 'records': records},
                               pipeline_pb2.TrainEvalPipelineConfig())
  configs = config_util.create_configs_from_pipeline_proto(pipeline)
  model = model_builder.build(configs['model'], is_training=False)
  model(tf.zeros([1, 48, 64, 3]))  # variables built eagerly (as a restored checkpoint's are)
  dataset = inputs.eval_input(configs['eval_config'], configs['eval_input_configs'][0],
                              configs['model'], model=model)
  model_dir = str(tmp_path / 'run')
  metrics, stats = eval_util.evaluate(model, configs, dataset, 5, model_dir=model_dir,
                                      return_model_stats=True)
  with open(os.path.join(model_dir, 'eval', 'metrics_5.json')) as f:
    record = json.load(f)
  assert record['num_images'] == 3
  assert record['model_stats']['gflops_per_image'] > 0
  assert stats['num_parameters'] == record['model_stats']['num_parameters']
  assert 0.0 <= metrics['SemanticSegmentation/pixel_accuracy'] <= 1.0
  assert 'SemanticSegmentation/IoU/' + category_index[1]['name'] in metrics
  # Untrained: about log(11) = 2.4 per pixel; the regularization loss is in the total.
  assert 1.5 < metrics[CE_KEY] < 4.0
  assert metrics['Loss/total_loss'] == pytest.approx(
      metrics[CE_KEY] + metrics['Loss/regularization_loss'])
  height, width = items[0][2].shape
  assert read_images(model_dir)['eval_side_by_side_0'].shape == (height, 3 * width, 3)
