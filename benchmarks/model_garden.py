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

import common


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


def train_benchmark(input_pattern, image_size=512, batch_size=2, steps=5, warmup=2,
                    with_flops=False, return_model=False):
  """Times the Model Garden training step on real records; optionally counts its FLOPs.

  Each iteration is `next(iterator)` + the tf.function step + reading the loss. Returns a dict:
  step_seconds (median, step only, after `warmup` iterations), loop_seconds (median, including
  the `next(iterator)` wait), first_step_seconds (trace + first step), num_trainable_params,
  and with `with_flops` a `flops` dict (benchmarks/flops.py) of the traced step (loss +
  gradients; the fused momentum update has no FLOP statistic) plus `optimizer_flops` (4 per
  trainable parameter for momentum SGD). With `return_model`, returns (dict, model).
  """
  task, model, optimizer = build_task(image_size, batch_size, input_pattern)
  dataset = task.build_inputs(task.task_config.train_data).repeat()
  iterator = iter(dataset)

  @tf.function
  def step(inputs):
    return task.train_step(inputs, model, optimizer)

  step_times, loop_times, first = [], [], None
  inputs = None
  for i in range(warmup + steps):
    start = time.perf_counter()
    inputs = next(iterator)
    fetched = time.perf_counter()
    logs = step(inputs)
    float(logs[task.loss])
    end = time.perf_counter()
    if i == 0:
      first = end - start
    if i >= warmup:
      step_times.append(end - fetched)
      loop_times.append(end - start)
  result = {'step_seconds': float(np.median(step_times)),
            'loop_seconds': float(np.median(loop_times)),
            'step_seconds_all': step_times, 'loop_seconds_all': loop_times,
            'first_step_seconds': first,
            'train_step_traces': step.experimental_get_tracing_count(),
            'num_trainable_params': int(sum(int(np.prod(v.shape)) for v in
                                            model.trainable_variables))}
  if with_flops:
    import flops as flops_lib  # pylint: disable=g-import-not-at-top
    # The traced train step itself (forward, loss, gradients and the fused momentum update,
    # which has no registered FLOP statistic: optimizer_flops accounts for it).
    result['flops'] = flops_lib.count_flops(step, (inputs,))
    result['optimizer_flops'] = 4 * result['num_trainable_params']
  return (result, model) if return_model else result


def time_train_step(input_pattern, image_size=512, batch_size=2, steps=5, warmup=2):
  """Median seconds per training step (tf.function, after `warmup` steps) on real records."""
  result, model = train_benchmark(input_pattern, image_size, batch_size, steps, warmup,
                                  return_model=True)
  return result['step_seconds'], model


def inference_benchmark(image_size, steps=5, warmup=2, image=None, with_flops=False):
  """Model Garden Mask R-CNN inference, batch 1, tf.function (random init).

  image: optional uint8/float [H, W, 3] (resized to image_size); default random uniform.
  Returns dict: ms_per_image (median after `warmup`), first_call_seconds and, with
  `with_flops`, `flops` (benchmarks/flops.py) of one call.
  """
  task, model, _ = build_task(image_size, 1, "")
  from official.vision.ops import anchor  # pylint: disable=g-import-not-at-top
  cfg = task.task_config.model
  anchor_boxes = anchor.Anchor(
      min_level=cfg.min_level, max_level=cfg.max_level, num_scales=cfg.anchor.num_scales,
      aspect_ratios=cfg.anchor.aspect_ratios, anchor_size=cfg.anchor.anchor_size,
      image_size=(image_size, image_size)).multilevel_boxes
  anchor_boxes = {k: tf.expand_dims(v, 0) for k, v in anchor_boxes.items()}
  image_shape = tf.constant([[image_size, image_size]], tf.float32)

  def forward(images):
    return model(images, image_shape=image_shape, anchor_boxes=anchor_boxes, training=False)

  infer = tf.function(forward)
  if image is None:
    images = tf.random.uniform([1, image_size, image_size, 3])
  else:
    # The Model Garden's own preprocessing (outside the timed call): ImageNet mean / std.
    from official.vision.ops import preprocess_ops  # pylint: disable=g-import-not-at-top
    resized = tf.image.resize(tf.convert_to_tensor(image), [image_size, image_size])
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    images = preprocess_ops.normalize_image(resized)[tf.newaxis]

  def call():
    out = infer(images)
    out["detection_boxes"].numpy()
    return out

  times, first, _ = common.time_calls(call, steps, warmup)
  result = {'ms_per_image': 1000.0 * float(np.median(times)), 'first_call_seconds': first,
            'ms_all': [1000.0 * t for t in times]}
  if with_flops:
    import flops as flops_lib  # pylint: disable=g-import-not-at-top
    result['flops'] = flops_lib.count_flops(infer, (images,))  # reuses the (slow) trace
  return result


def time_inference(image_size, steps=5, warmup=2):
  """Median milliseconds per image of the Model Garden model's inference (batch 1, tf.function)."""
  return inference_benchmark(image_size, steps, warmup)['ms_per_image']
