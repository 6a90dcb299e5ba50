"""Tests for object_detection.eval_util with a stand-in detection model and eval dataset.

The stand-in model returns the ground truth it is given through `provide_groundtruth` as its
detections (`postprocess` output format), so box and mask metrics must be exactly 1.0 when the
box-relative masks reproduce the ground-truth masks.
"""
import glob
import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from pycocotools import coco

from object_detection import eval_util
from tests.conftest import COCO128_IMAGES, COCO128_VAL_JSON

CATEGORY_INDEX = {1: {'id': 1, 'name': 'person'}, 2: {'id': 2, 'name': 'bicycle'},
                  3: {'id': 3, 'name': 'car'}}


class FakeDetectionModel(tf.Module):
  """DetectionModel stand-in: detections = provided ground truth (normalized boxes, label ids).

  mask_mode 'ones': box-relative masks are all ones (exact for rectangular ground truth);
  mask_mode 'crop': box-relative masks are crops of the ground-truth masks (mask_size^2).
  """

  def __init__(self, num_classes=3, max_detections=6, mask_mode='ones', mask_size=7):
    super().__init__()
    self.num_classes = num_classes
    self._max_det = max_detections
    self._mask_mode = mask_mode
    self._mask_size = mask_size
    self.conv = tf_keras.layers.Conv2D(4, 3, padding='same')
    self._gt = None

  def preprocess(self, inputs):
    # Only model_stats calls preprocess (the pipeline already preprocessed the eval data):
    # forget ground truth so that tracing does not capture tensors of another graph.
    self._gt = None
    shape = tf.shape(inputs)
    return inputs, tf.tile(tf.stack([shape[1], shape[2], 3])[tf.newaxis], [shape[0], 1])

  def provide_groundtruth(self, groundtruth_boxes_list, groundtruth_classes_list,
                          groundtruth_masks_list=None, groundtruth_weights_list=None,
                          groundtruth_is_crowd_list=None, **unused):
    self._gt = (groundtruth_boxes_list, groundtruth_classes_list, groundtruth_masks_list)

  def predict(self, preprocessed_inputs, true_image_shapes):
    features = self.conv(preprocessed_inputs)
    batch = preprocessed_inputs.shape[0]
    if self._gt is None:
      return {'features': features, 'boxes': tf.zeros([batch, self._max_det, 4]),
              'classes': tf.zeros([batch, self._max_det]), 'num': tf.zeros([batch], tf.int32),
              'masks': tf.zeros([batch, self._max_det, self._mask_size, self._mask_size])}
    boxes_list, classes_list, masks_list = self._gt
    boxes, classes, nums, masks = [], [], [], []
    padded_hw = tf.cast(tf.shape(preprocessed_inputs)[1:3], tf.float32)
    for i in range(batch):
      n = tf.shape(boxes_list[i])[0]
      pad = self._max_det - n
      # provide_groundtruth boxes are normalized to the padded input (the TF OD API's convention);
      # detections are normalized to the true image.
      scale = tf.cast(true_image_shapes[i, :2], tf.float32) / padded_hw
      boxes.append(tf.pad(boxes_list[i] / tf.concat([scale, scale], axis=0), [[0, pad], [0, 0]]))
      # Detection classes are 0-based, as the TF OD API's postprocess gives them.
      classes.append(tf.pad(tf.cast(tf.argmax(classes_list[i], axis=1), tf.float32), [[0, pad]]))
      nums.append(n)
      if self._mask_mode == 'ones':
        masks.append(tf.ones([self._max_det, self._mask_size, self._mask_size]))
      else:
        # The masks are at padded resolution, like the provided boxes.
        crop_boxes = boxes_list[i]
        crops = tf.image.crop_and_resize(
            tf.transpose(tf.cast(masks_list[i], tf.float32), [1, 2, 0])[tf.newaxis],
            crop_boxes, tf.zeros([n], tf.int32), [self._mask_size, self._mask_size])
        # crop_and_resize samples one image here: masks are the channels of image 0.
        crops = tf.gather(tf.transpose(crops, [0, 3, 1, 2]), tf.range(n), axis=1,
                          batch_dims=1)
        masks.append(tf.pad(crops, [[0, pad], [0, 0], [0, 0]]))
    return {'features': features, 'boxes': tf.stack(boxes), 'classes': tf.stack(classes),
            'num': tf.stack(nums), 'masks': tf.stack(masks)}

  def loss(self, prediction_dict, true_image_shapes):
    return {'Loss/BoxClassifierLoss/mask_loss':
                tf.reduce_mean(tf.cast(prediction_dict['num'], tf.float32)) +
                0.0 * tf.reduce_mean(prediction_dict['features'])}

  def postprocess(self, prediction_dict, true_image_shapes):
    num = prediction_dict['num']
    valid = tf.sequence_mask(num, self._max_det, dtype=tf.float32)
    return {'detection_boxes': prediction_dict['boxes'],
            # The features term keeps the conv in the frozen inference graph (model_stats).
            'detection_scores': 0.9 * valid + 0.0 * tf.reduce_mean(prediction_dict['features']),
            'detection_classes': prediction_dict['classes'],
            'num_detections': tf.cast(num, tf.float32),
            'detection_masks': prediction_dict['masks']}

  def regularization_losses(self):
    return []


def _make_dataset(images, annotations, num_classes, batch_size, max_boxes, source_ids,
                  areas=None):
  """(features, labels) batches like `inputs.eval_input`, identity resizer (model input = original).

  Args:
    images: list of uint8 [h, w, 3].
    annotations: list of (boxes absolute [n, 4], label ids [n], masks uint8 [n, h, w]).
  """
  pad_h = max(im.shape[0] for im in images)
  pad_w = max(im.shape[1] for im in images)
  batches = []
  for start in range(0, len(images), batch_size):
    idx = list(range(start, min(start + batch_size, len(images))))
    b = len(idx)
    f = {'image': np.zeros((b, pad_h, pad_w, 3), np.float32),
         'original_image': np.zeros((b, pad_h, pad_w, 3), np.uint8),
         'true_image_shape': np.zeros((b, 3), np.int32),
         'original_image_spatial_shape': np.zeros((b, 2), np.int32),
         'source_id': np.array([source_ids[i].encode() for i in idx]),
         'key': np.array([b'k%d' % i for i in idx])}
    l = {'num_groundtruth_boxes': np.zeros(b, np.int32),
         'groundtruth_boxes': np.zeros((b, max_boxes, 4), np.float32),
         'groundtruth_classes': np.zeros((b, max_boxes, num_classes), np.float32),
         'groundtruth_weights': np.zeros((b, max_boxes), np.float32),
         'groundtruth_is_crowd': np.zeros((b, max_boxes), bool),
         'groundtruth_area': np.zeros((b, max_boxes), np.float32),
         'groundtruth_instance_masks': np.zeros((b, max_boxes, pad_h, pad_w), np.uint8),
         'original_groundtruth_instance_masks': np.zeros((b, max_boxes, pad_h, pad_w), np.uint8)}
    for j, i in enumerate(idx):
      h, w = images[i].shape[:2]
      boxes, classes, masks = annotations[i]
      n = len(classes)
      f['image'][j, :h, :w] = images[i]
      f['original_image'][j, :h, :w] = images[i]
      f['true_image_shape'][j] = [h, w, 3]
      f['original_image_spatial_shape'][j] = [h, w]
      l['num_groundtruth_boxes'][j] = n
      l['groundtruth_boxes'][j, :n] = boxes / np.array([h, w, h, w])
      l['groundtruth_classes'][j, np.arange(n), np.asarray(classes) - 1] = 1
      l['groundtruth_weights'][j, :n] = 1
      if areas is not None:
        l['groundtruth_area'][j, :n] = areas[i]
      l['groundtruth_instance_masks'][j, :n, :h, :w] = masks
      l['original_groundtruth_instance_masks'][j, :n, :h, :w] = masks
    batches.append((f, l))

  def gen():
    for batch in batches:
      yield batch

  signature = tuple({k: tf.TensorSpec((None,) + v.shape[1:], tf.as_dtype(v.dtype))
                     for k, v in d.items()} for d in batches[0])
  return tf.data.Dataset.from_generator(gen, output_signature=signature)


def _synthetic_data():
  rng = np.random.RandomState(1)
  sizes = [(60, 80), (50, 70), (64, 64)]
  images, annotations = [], []
  for (h, w), n in zip(sizes, (2, 3, 1)):
    images.append(rng.randint(0, 255, (h, w, 3)).astype(np.uint8))
    boxes, classes, masks = [], [], []
    for k in range(n):
      y0, x0 = rng.randint(0, h // 2), rng.randint(0, w // 2)
      y1, x1 = y0 + rng.randint(8, h // 2), x0 + rng.randint(8, w // 2)
      boxes.append([y0, x0, y1, x1])
      classes.append(1 + (k % 3))
      m = np.zeros((h, w), np.uint8)
      m[y0:y1, x0:x1] = 1
      masks.append(m)
    annotations.append((np.array(boxes, np.float64), np.array(classes), np.array(masks)))
  return images, annotations


def _configs(metrics_set, **kwargs):
  eval_config = types.SimpleNamespace(
      metrics_set=metrics_set, include_metrics_per_category=True, all_metrics_per_category=False,
      num_visualizations=2, max_num_boxes_to_visualize=20, min_score_threshold=0.5,
      retain_original_images=True, skip_predictions_for_unlabeled_class=False)
  for k, v in kwargs.items():
    setattr(eval_config, k, v)
  return {'eval_config': eval_config}


def test_evaluate_matching_detections_give_one_and_writes_outputs(tmp_path):
  images, annotations = _synthetic_data()
  dataset = _make_dataset(images, annotations, 3, batch_size=2, max_boxes=4,
                          source_ids=['a', 'b', 'c'])
  model = FakeDetectionModel()
  model_dir = str(tmp_path)
  metrics = eval_util.evaluate(
      model, _configs(['coco_detection_metrics', 'coco_mask_metrics']), dataset,
      global_step=tf.Variable(7, dtype=tf.int64), model_dir=model_dir,
      category_index=CATEGORY_INDEX)
  for prefix in ('DetectionBoxes_', 'DetectionMasks_'):
    assert metrics[prefix + 'Precision/mAP'] == pytest.approx(1.0), prefix
    assert metrics[prefix + 'Precision/mAP@.75IOU'] == pytest.approx(1.0)
    assert metrics[prefix + 'Recall/AR@100'] == pytest.approx(1.0)
    assert metrics[prefix + 'PerformanceByCategory/mAP/person'] == pytest.approx(1.0)
  # Loss averaged over images: mean number of boxes per image = (2 + 3 + 1) / 3.
  assert metrics['Loss/BoxClassifierLoss/mask_loss'] == pytest.approx(2.0)
  assert metrics['Loss/total_loss'] == pytest.approx(2.0)

  with open(os.path.join(model_dir, 'eval', 'metrics_7.json')) as f:
    record = json.load(f)
  assert record['global_step'] == 7 and record['num_images'] == 3
  assert record['metrics']['DetectionMasks_Precision/mAP'] == pytest.approx(1.0)
  stats = record['model_stats']
  assert stats['num_parameters'] == 3 * 3 * 3 * 4 + 4
  # Conv FLOPs of one 60x80 image: 2 * 60 * 80 * 4 * 27 multiply-adds (+ bias adds).
  assert stats['gflops_per_image'] * 1e9 >= 2 * 60 * 80 * 4 * 27

  # TensorBoard: scalars and 2 side-by-side images in model_dir/eval.
  event_files = glob.glob(os.path.join(model_dir, 'eval', 'events.out.tfevents.*'))
  assert event_files
  tags = set()
  for event_file in event_files:
    for event in tf.compat.v1.train.summary_iterator(event_file):
      for value in event.summary.value:
        tags.add(value.tag)
  assert 'DetectionMasks_Precision/mAP' in tags and 'Loss/total_loss' in tags
  assert {'eval_side_by_side_0', 'eval_side_by_side_1'} <= tags
  assert 'eval_side_by_side_2' not in tags
  assert 'model_complexity' in tags  # parameters and GFLOPs as TensorBoard text


class _RegularizedModel(FakeDetectionModel):

  def regularization_losses(self):
    return [tf.constant(0.25)]


@pytest.mark.parametrize('add_regularization_loss', [True, False])
def test_eval_losses_follow_train_config_add_regularization_loss(add_regularization_loss):
  # As the TF OD API's eager_eval_loop: train_config.add_regularization_loss decides whether the
  # eval Loss/total_loss includes the regularization loss.
  images, annotations = _synthetic_data()
  dataset = _make_dataset(images, annotations, 3, batch_size=3, max_boxes=4,
                          source_ids=['a', 'b', 'c'])
  configs = _configs(['coco_detection_metrics'])
  configs['train_config'] = types.SimpleNamespace(add_regularization_loss=add_regularization_loss)
  metrics = eval_util.evaluate(_RegularizedModel(), configs, dataset, global_step=1,
                               category_index=CATEGORY_INDEX, num_visualizations=0,
                               compute_model_stats=False)
  if add_regularization_loss:
    assert metrics['Loss/regularization_loss'] == pytest.approx(0.25)
    assert metrics['Loss/total_loss'] == pytest.approx(2.0 + 0.25)
  else:
    assert 'Loss/regularization_loss' not in metrics
    assert metrics['Loss/total_loss'] == pytest.approx(2.0)


def test_wrong_detections_lower_metrics():
  images, annotations = _synthetic_data()
  # Shift every ground-truth box: detections (= the original boxes) no longer match.
  shifted = [(b, c, np.roll(m, 20, axis=1)) for b, c, m in annotations]
  dataset = _make_dataset(images, shifted, 3, batch_size=3, max_boxes=4,
                          source_ids=['a', 'b', 'c'])
  metrics = eval_util.evaluate(FakeDetectionModel(), _configs(['coco_mask_metrics']), dataset,
                               global_step=1, category_index=CATEGORY_INDEX,
                               num_visualizations=0)
  assert metrics['DetectionMasks_Precision/mAP'] < 0.5
  assert not any(k.startswith('DetectionBoxes_') for k in metrics)


def test_unknown_metrics_set_names_the_field():
  images, annotations = _synthetic_data()
  dataset = _make_dataset(images, annotations, 3, 2, 4, ['a', 'b', 'c'])
  with pytest.raises(ValueError, match=r'eval_config\.metrics_set.*pascal_voc'):
    eval_util.evaluate(FakeDetectionModel(), _configs(['pascal_voc_detection_metrics']),
                       dataset, 0, category_index=CATEGORY_INDEX)


def test_real_coco128_images_at_original_resolution():
  """Real val images and polygon masks; detections = 14x14 crops of the ground-truth masks."""
  from PIL import Image
  gt = coco.COCO(COCO128_VAL_JSON)
  image_ids = sorted(gt.getImgIds())[:4]
  images, annotations, areas = [], [], []
  for image_id in image_ids:
    info = gt.imgs[image_id]
    image = np.array(Image.open(os.path.join(COCO128_IMAGES, info['file_name'])).convert('RGB'))
    anns = gt.loadAnns(gt.getAnnIds(imgIds=[image_id]))
    boxes = np.array([[a['bbox'][1], a['bbox'][0], a['bbox'][1] + a['bbox'][3],
                       a['bbox'][0] + a['bbox'][2]] for a in anns])
    masks = np.stack([gt.annToMask(a) for a in anns])
    images.append(image)
    annotations.append((boxes, np.array([a['category_id'] for a in anns]), masks))
    areas.append(np.array([a['area'] for a in anns]))
  max_boxes = max(len(a[1]) for a in annotations)
  category_index = {c['id']: c for c in gt.loadCats(gt.getCatIds())}
  dataset = _make_dataset(images, annotations, 90, batch_size=2, max_boxes=max_boxes,
                          source_ids=[str(i) for i in image_ids], areas=areas)
  model = FakeDetectionModel(num_classes=90, max_detections=max_boxes, mask_mode='crop',
                             mask_size=14)
  metrics = eval_util.evaluate(model, _configs(['coco_detection_metrics', 'coco_mask_metrics']),
                               dataset, 0, category_index=category_index, num_visualizations=0)
  assert metrics['DetectionBoxes_Precision/mAP'] == pytest.approx(1.0)
  # 14x14 box masks lose detail: high but below 1 (exactly 1 would mean masks were ignored).
  assert 0.75 < metrics["DetectionMasks_Precision/mAP"] < 1.0
  assert metrics['DetectionMasks_Precision/mAP@.50IOU'] > 0.9
  assert 'DetectionMasks_PerformanceByCategory/mAP/person' in metrics


def test_repeating_eval_input_stops_and_duplicates_are_counted(tmp_path):
  images, annotations = _synthetic_data()
  # 'c' appears twice inside the first pass; then the input repeats (like num_epochs: 0).
  dataset = _make_dataset(images + images[2:], annotations + annotations[2:], 3, batch_size=2,
                          max_boxes=4, source_ids=['a', 'b', 'c', 'c']).repeat()
  # num_examples is deprecated and ignored (TF2 TF OD API): it does not cap the evaluation.
  configs = _configs(['coco_detection_metrics'], num_examples=1, num_visualizations=0)
  metrics = eval_util.evaluate(FakeDetectionModel(), configs, dataset, 3,
                               model_dir=str(tmp_path), category_index=CATEGORY_INDEX,
                               compute_model_stats=False)
  assert metrics['DetectionBoxes_Precision/mAP'] == pytest.approx(1.0)
  with open(os.path.join(str(tmp_path), 'eval', 'metrics_3.json')) as f:
    record = json.load(f)
  assert record['num_images'] == 3 and record['num_skipped_duplicate_images'] == 1
  assert 'model_stats' not in record


def test_model_stats_counts_parameters_and_flops_of_a_keras_model():
  from object_detection.utils import model_stats
  model = tf_keras.Sequential([
      tf_keras.layers.Conv2D(8, 3, padding='same', use_bias=False, input_shape=(16, 16, 3)),
      tf_keras.layers.BatchNormalization(),
      tf_keras.layers.Flatten(),
      tf_keras.layers.Dense(10, use_bias=False)])
  assert model_stats.count_parameters(model, trainable_only=True) == 3 * 3 * 3 * 8 + 2 * 8 + (
      16 * 16 * 8 * 10)
  assert model_stats.count_parameters(model) == (
      model_stats.count_parameters(model, trainable_only=True) + 2 * 8)  # + BN statistics
  conv = 2 * (16 * 16 * 8 * 27)
  dense = 2 * (16 * 16 * 8 * 10)
  breakdown = model_stats.flop_breakdown(model, (16, 16))
  assert breakdown['input_size'] == [16, 16]
  # Inference batch norm is one FusedBatchNormV3 op, which has no FLOP statistic (it folds into
  # the conv at deployment), as reshapes have none.
  assert breakdown['flops_by_op_type'] == {'Conv2D': conv, 'MatMul': dense}
  assert breakdown['flops'] == conv + dense
  assert model_stats.flops_per_image(model, (16, 16)) == conv + dense


def test_real_input_pipeline_with_groundtruth_echo_model(tmp_path):
  """coco128 val TFRecords -> inputs.eval_input -> evaluate: boxes 1.0, masks high.

  Checks the label contract end to end: normalized boxes relative to the true resized image,
  one-hot classes, original-resolution masks, padding, the last partial batch.
  """
  from google.protobuf import text_format
  from object_detection import inputs
  from object_detection.dataset_tools import coco_tf_record
  from object_detection.protos import eval_pb2
  from object_detection.protos import input_reader_pb2
  from object_detection.protos import model_pb2

  gt = coco.COCO(COCO128_VAL_JSON)
  image_ids = sorted(gt.getImgIds())[:3]
  subset = dict(gt.dataset)
  subset['images'] = [gt.imgs[i] for i in image_ids]
  subset['annotations'] = [a for a in gt.dataset['annotations'] if a['image_id'] in image_ids]
  annotations_file = str(tmp_path / 'val.json')
  with open(annotations_file, 'w') as f:
    json.dump(subset, f)
  record = str(tmp_path / 'val.record')
  coco_tf_record.create_tf_record_from_coco_annotations(
      annotations_file, COCO128_IMAGES, record, include_masks=True, show_progress=False)
  record_files = glob.glob(record + '*')
  model_config = text_format.Parse(
      'faster_rcnn { num_classes: 90 image_resizer { keep_aspect_ratio_resizer { '
      'min_dimension: 128 max_dimension: 128 pad_to_max_dimension: true } } }',
      model_pb2.DetectionModel())
  eval_config = text_format.Parse(
      'metrics_set: "coco_detection_metrics" metrics_set: "coco_mask_metrics" batch_size: 2 '
      'num_visualizations: 1', eval_pb2.EvalConfig())
  input_config = input_reader_pb2.InputReader()
  input_config.shuffle = False
  input_config.num_epochs = 1
  input_config.load_instance_masks = True
  input_config.mask_type = input_reader_pb2.PNG_MASKS
  input_config.tf_record_input_reader.input_path.extend(record_files)
  dataset = inputs.eval_input(eval_config, input_config, model_config)
  category_index = {c['id']: c for c in gt.loadCats(gt.getCatIds())}
  model = FakeDetectionModel(num_classes=90, max_detections=100, mask_mode='crop',
                             mask_size=28)
  metrics = eval_util.evaluate(model, {'eval_config': eval_config}, dataset, 0,
                               model_dir=str(tmp_path / 'model'), category_index=category_index,
                               compute_model_stats=False)
  with open(str(tmp_path / 'model' / 'eval' / 'metrics_0.json')) as f:
    assert json.load(f)['num_images'] == 3
  assert metrics['DetectionBoxes_Precision/mAP'] == pytest.approx(1.0, abs=1e-6)
  # Masks resized to 128 px, cropped at 28x28 and pasted back at 640 px: close, not exact.
  assert 0.6 < metrics['DetectionMasks_Precision/mAP'] < 1.0
  # The echoed masks went through the TF OD API's TF1 nearest-neighbour resize to 128 px
  # (top-left sampling, up to 2 original pixels off at this 5x reduction) and back: 0.83 here.
  assert metrics['DetectionMasks_Precision/mAP@.50IOU'] > 0.8
