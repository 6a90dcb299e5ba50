"""The peer: the TF Model Garden's own Mask R-CNN (`official.vision`, `maskrcnn_resnetfpn_coco`).

Builds the Model Garden task from its registered experiment, overridden to the benchmark's input size,
batch size and random initialisation, and times its `train_step` and its inference on the same
TFRecords our pipeline reads (the Model Garden's decoder reads the TF OD API record keys).
"""
import time

import numpy as np
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.core import task_factory
import official.vision  # pylint: disable=unused-import  (registers the experiments)


def build_task(image_size, batch_size, input_pattern, num_classes=91):
  """Returns (task, model, optimizer) for Mask R-CNN ResNet-50-FPN at `image_size`, float32, no XLA."""
  config = exp_factory.get_exp_config("maskrcnn_resnetfpn_coco")
  config.runtime.mixed_precision_dtype = "float32"
  config.runtime.enable_xla = False
  task_cfg = config.task
  task_cfg.init_checkpoint = None
  task_cfg.model.num_classes = num_classes
  task_cfg.model.input_size = [image_size, image_size, 3]
  task_cfg.train_data.input_path = input_pattern
  task_cfg.train_data.global_batch_size = batch_size
  task_cfg.train_data.dtype = "float32"
  task_cfg.train_data.shuffle_buffer_size = 64
  task_cfg.validation_data.input_path = input_pattern
  task_cfg.validation_data.global_batch_size = 1
  task_cfg.validation_data.dtype = "float32"
  task_cfg.annotation_file = None
  task_cfg.use_coco_metrics = False
  task = task_factory.get_task(task_cfg)
  model = task.build_model()
  optimizer = tf_keras.optimizers.SGD(learning_rate=0.001, momentum=0.9)
  return task, model, optimizer


def time_train_step(input_pattern, image_size=512, batch_size=2, steps=5, warmup=2):
  """Median seconds per training step (tf.function, after `warmup` steps) on real records."""
  task, model, optimizer = build_task(image_size, batch_size, input_pattern)
  dataset = task.build_inputs(task.task_config.train_data).repeat()
  iterator = iter(dataset)

  @tf.function
  def step(inputs):
    return task.train_step(inputs, model, optimizer)

  times = []
  for i in range(warmup + steps):
    inputs = next(iterator)
    start = time.perf_counter()
    logs = step(inputs)
    float(logs[task.loss])
    if i >= warmup:
      times.append(time.perf_counter() - start)
  return float(np.median(times)), model


def time_inference(image_size, steps=5, warmup=2):
  """Median milliseconds per image of the Model Garden model's inference (batch 1, tf.function)."""
  task, model, _ = build_task(image_size, 1, "")
  from official.vision.ops import anchor  # pylint: disable=g-import-not-at-top
  cfg = task.task_config.model
  anchor_boxes = anchor.Anchor(
      min_level=cfg.min_level, max_level=cfg.max_level, num_scales=cfg.anchor.num_scales,
      aspect_ratios=cfg.anchor.aspect_ratios, anchor_size=cfg.anchor.anchor_size,
      image_size=(image_size, image_size)).multilevel_boxes
  anchor_boxes = {k: tf.expand_dims(v, 0) for k, v in anchor_boxes.items()}
  image_shape = tf.constant([[image_size, image_size]], tf.float32)

  @tf.function
  def infer(images):
    return model(images, image_shape=image_shape, anchor_boxes=anchor_boxes, training=False)

  images = tf.random.uniform([1, image_size, image_size, 3])
  times = []
  for i in range(warmup + steps):
    start = time.perf_counter()
    out = infer(images)
    out["detection_boxes"].numpy()
    if i >= warmup:
      times.append(time.perf_counter() - start)
  return 1000.0 * float(np.median(times))
