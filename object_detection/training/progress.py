"""Training progress: log lines, tqdm bar (TTY only), TensorBoard scalars and NaN detection."""
import math
import sys
import time

import numpy as np
import tensorflow as tf


class NonFiniteLossError(RuntimeError):
  """A loss term became NaN or Inf; `.step` and `.term` say where."""

  def __init__(self, step, term, value):
    super().__init__('Training stopped: %s is %s at step %d. The last good checkpoint is kept '
                     '(the non-finite state was not saved). Lower the learning rate, enable '
                     'gradient_clipping_by_norm, or check the input data.' % (term, value, step))
    self.step, self.term, self.value = step, term, value


def check_finite(losses, step):
  """Raises NonFiniteLossError naming the first non-finite loss term (component terms before
  `Loss/total_loss`, then `gradient_norm`)."""
  keys = sorted(k for k in losses if k not in ('Loss/total_loss', 'gradient_norm'))
  keys += [k for k in ('Loss/total_loss', 'gradient_norm') if k in losses]
  for key in keys:
    value = float(losses[key])
    if not math.isfinite(value):
      raise NonFiniteLossError(step, key, value)


def check_weights_finite(detection_model, step):
  """Raises NonFiniteLossError naming the first model variable holding NaN/Inf."""
  for var in detection_model.variables:
    if var.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(var))):
      raise NonFiniteLossError(step, 'model variable %s' % var.name, 'non-finite')


def format_eta(seconds):
  if seconds is None or not math.isfinite(seconds):
    return '?'
  seconds = int(seconds)
  return '%d:%02d:%02d' % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)


class ProgressLogger(object):
  """Prints one line every `log_every_n_steps` (step, losses, lr, steps/s, images/s, ETA) and
  writes the same scalars to TensorBoard; shows a tqdm bar when stdout is a terminal."""

  def __init__(self, start_step, num_steps, batch_size, log_every_n_steps=100,
               summary_writer=None, record_summaries=True, use_tqdm=None):
    self.num_steps = num_steps
    self.batch_size = batch_size
    self.log_every_n_steps = max(int(log_every_n_steps or 100), 1)
    self.summary_writer = summary_writer
    self.record_summaries = record_summaries
    self._last_step, self._last_time = start_step, time.time()
    self.steps_per_sec = None
    if use_tqdm is None:
      use_tqdm = sys.stdout.isatty()
    self._bar = None
    if use_tqdm:
      import tqdm  # pylint: disable=g-import-not-at-top
      self._bar = tqdm.tqdm(total=num_steps, initial=start_step, unit='step', dynamic_ncols=True)

  def step(self, step, losses, learning_rate):
    """Call after each step with host floats; logs every log_every_n_steps and at the end."""
    if self._bar is not None:
      self._bar.update(step - self._bar.n)
      self._bar.set_postfix(loss='%.4f' % float(losses['Loss/total_loss']))
    if step % self.log_every_n_steps and step != self.num_steps:
      return
    now = time.time()
    if step > self._last_step:
      self.steps_per_sec = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_step, self._last_time = step, now
    sps = self.steps_per_sec
    eta = (self.num_steps - step) / sps if sps else None
    loss_text = ' '.join('%s=%.4f' % (k[len('Loss/'):], float(v))
                         for k, v in sorted(losses.items()) if k.startswith('Loss/'))
    line = ('step %d/%d %s lr=%.6g steps/s=%s images/s=%s ETA %s' % (
        step, self.num_steps, loss_text, learning_rate,
        '%.3f' % sps if sps else '?', '%.2f' % (sps * self.batch_size) if sps else '?',
        format_eta(eta)))
    if self._bar is not None:
      self._bar.write(line)
    else:
      print(line, flush=True)
    if self.summary_writer is not None and self.record_summaries:
      with self.summary_writer.as_default():
        for key, value in losses.items():
          if key.startswith('Loss/'):
            tf.summary.scalar(key, float(value), step=step)
        tf.summary.scalar('learning_rate', float(learning_rate), step=step)
        if sps:
          tf.summary.scalar('steps_per_sec', sps, step=step)
      self.summary_writer.flush()

  def close(self):
    if self._bar is not None:
      self._bar.close()


GROUNDTRUTH_SEMANTIC = 'groundtruth_semantic'


def write_train_images(summary_writer, features, labels, step, max_images=3):
  """Writes `train_input_images` to TensorBoard: the model inputs (min-max rescaled for display,
  since they are normalized) with ground-truth boxes and masks (red overlay) drawn.

  Semantic segmentation batches (labels with 'groundtruth_semantic' uint8 [B, h, w] and no
  boxes): each picture is the model input | its label map coloured with `utils.semantic_palette`
  (background black, PASCAL VOC colours, ignore_label 255 and the padding white), [h, 2w, 3]."""
  from object_detection.core import standard_fields as fields  # pylint: disable=g-import-not-at-top
  images = tf.cast(features[fields.InputDataFields.image][:max_images], tf.float32)
  lo = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
  hi = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
  images = (images - lo) / tf.maximum(hi - lo, 1e-6)
  if GROUNDTRUTH_SEMANTIC in labels and fields.InputDataFields.groundtruth_boxes not in labels:
    from object_detection.utils import semantic_palette  # pylint: disable=g-import-not-at-top
    table = tf.constant(semantic_palette.palette(0), tf.float32) / 255.0
    label_maps = tf.cast(labels[GROUNDTRUTH_SEMANTIC][:max_images], tf.int32)
    colours = tf.gather(table, tf.clip_by_value(label_maps, 0, 255))
    images = tf.concat([images, colours], axis=2)
    with summary_writer.as_default():
      tf.summary.image('train_input_images', images, step=step, max_outputs=max_images,
                       description='model input | ground-truth label map (white = ignored)')
    summary_writer.flush()
    return
  masks_key = fields.InputDataFields.groundtruth_instance_masks
  if masks_key in labels:
    masks = tf.cast(labels[masks_key][:max_images], tf.float32)
    weights = tf.cast(labels[fields.InputDataFields.groundtruth_weights][:max_images] > 0,
                      tf.float32)
    union = tf.reduce_max(masks * weights[:, :, None, None], axis=1)[..., None]
    union = tf.image.resize(union, tf.shape(images)[1:3], method='nearest')
    red = tf.constant([1.0, 0.0, 0.0])
    images = images * (1 - 0.5 * union) + 0.5 * union * red
  # Boxes are normalized to the TRUE image; rescale to the padded image for drawing.
  true_shape = tf.cast(features[fields.InputDataFields.true_image_shape][:max_images], tf.float32)
  padded = tf.cast(tf.shape(images)[1:3], tf.float32)
  scale = tf.concat([true_shape[:, :2] / padded, true_shape[:, :2] / padded], axis=1)
  boxes = labels[fields.InputDataFields.groundtruth_boxes][:max_images] * scale[:, None, :]
  images = tf.image.draw_bounding_boxes(images, boxes, np.array([[0.0, 1.0, 0.0]], np.float32))
  with summary_writer.as_default():
    tf.summary.image('train_input_images', images, step=step, max_outputs=max_images)
  summary_writer.flush()
