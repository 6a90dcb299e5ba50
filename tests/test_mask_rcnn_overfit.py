"""Learning test: a tiny Mask R-CNN overfits 3 real coco128_seg images (mean mask IoU >= 0.5)."""

import json
import os
import tempfile

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
import pytest
import tensorflow as tf
import tf_keras

from tests import mask_rcnn_test_utils as utils

from conftest import COCO128_DIR as _DATA
_IMAGE_IDS = (34, 81, 263)  # 4 large instances: a zebra, an airplane, two giraffes
_SIZE = 128


def _load():
  with open(os.path.join(_DATA, 'annotations', 'instances_train.json')) as f:
    coco = json.load(f)
  images, boxes, classes, masks = [], [], [], []
  for image_id in _IMAGE_IDS:
    info = next(i for i in coco['images'] if i['id'] == image_id)
    h, w = info['height'], info['width']
    image = Image.open(os.path.join(_DATA, 'images', info['file_name'])).convert('RGB')
    images.append(np.asarray(image.resize((_SIZE, _SIZE), Image.BILINEAR), np.float32))
    anns = [a for a in coco['annotations'] if a['image_id'] == image_id]
    img_masks, img_boxes, img_classes = [], [], []
    for a in anns:
      rle = mask_utils.merge(mask_utils.frPyObjects(a['segmentation'], h, w))
      m = Image.fromarray(mask_utils.decode(rle) * 255).resize((_SIZE, _SIZE), Image.NEAREST)
      m = (np.asarray(m) > 127).astype(np.float32)
      ys, xs = np.nonzero(m)
      img_masks.append(m)
      img_boxes.append([ys.min() / _SIZE, xs.min() / _SIZE, (ys.max() + 1) / _SIZE, (xs.max() + 1) / _SIZE])
      img_classes.append(a['category_id'])
    masks.append(np.stack(img_masks))
    boxes.append(np.array(img_boxes, np.float32))
    classes.append(img_classes)
  return np.stack(images), boxes, classes, masks


@pytest.mark.slow
def test_tiny_mask_rcnn_overfits_coco128_images():
  tf_keras.utils.set_random_seed(0)  # also seeds the initializers (tf_keras uses Python's random)
  num_classes = 90
  images, boxes, classes, masks = _load()
  onehots = [tf.one_hot(np.array(c) - 1, num_classes) for c in classes]
  model = utils.tiny_model(number_of_stages=3, is_training=True, num_classes=num_classes, depth=48,
                           second_stage_batch_size=32)
  optimizer = tf_keras.optimizers.Adam(2e-3)
  images_t = tf.constant(images)

  @tf.function
  def train_step():
    with tf.GradientTape() as tape:
      pre, shapes = model.preprocess(images_t)
      model.provide_groundtruth([tf.constant(b) for b in boxes], onehots,
                                [tf.constant(m) for m in masks])
      losses = model.loss(model.predict(pre, shapes), shapes)
      total = tf.add_n(list(losses.values()))
    grads = tape.gradient(total, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return losses

  first = None
  for step in range(200):
    losses = train_step()
    # The first step with a mask loss: a step whose sampled proposals have no positive has none.
    if first is None and float(losses['Loss/BoxClassifierLoss/mask_loss']) > 0:
      first = {k: float(v) for k, v in losses.items()}
  last = {k: float(v) for k, v in losses.items()}
  assert first is not None, 'no training step sampled a positive proposal'
  assert last['Loss/BoxClassifierLoss/mask_loss'] < first['Loss/BoxClassifierLoss/mask_loss']

  # Inference model restored from a checkpoint of the trained one.
  eval_model = utils.tiny_model(number_of_stages=3, is_training=False, num_classes=num_classes, depth=48)
  eval_model(images_t[:1])
  with tempfile.TemporaryDirectory() as tmp:
    path = tf.train.Checkpoint(model=model).save(os.path.join(tmp, 'ckpt'))
    tf.train.Checkpoint(model=eval_model).restore(path).assert_existing_objects_matched()
  pre, shapes = eval_model.preprocess(images_t)
  det = eval_model.postprocess(eval_model.predict(pre, shapes), shapes)
  ious = []
  for i in range(len(_IMAGE_IDS)):
    n = int(det['num_detections'][i])
    pasted = [utils.paste_mask(det['detection_boxes'][i, j].numpy(), det['detection_masks'][i, j].numpy(),
                               _SIZE, _SIZE) for j in range(n)]
    for gt in masks[i]:
      ious.append(max([utils.mask_iou(gt > 0.5, p) for p in pasted] + [0.0]))
  print("mask IoUs", ious, "first", first, "last", last)
  assert np.mean(ious) >= 0.5, (ious, first, last)
