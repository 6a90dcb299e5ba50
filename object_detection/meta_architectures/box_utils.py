"""Small batched box utilities shared by the Faster R-CNN stages.

All boxes are float32 [..., 4] ymin, xmin, ymax, xmax in absolute pixels unless said otherwise.
Box coding is `official.vision.ops.box_ops.encode_boxes/decode_boxes` with the TF OD API
`faster_rcnn_box_coder` scale factors (y, x, h, w) = (10, 10, 5, 5) (Ren et al. 2015, eq. 2).
"""

import tensorflow as tf
from official.vision.ops import box_ops

BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def encode(boxes, anchors):
  return box_ops.encode_boxes(boxes, anchors, weights=BOX_CODER_WEIGHTS)


def decode(encodings, anchors):
  return box_ops.decode_boxes(encodings, anchors, weights=BOX_CODER_WEIGHTS)


def iou(boxes1, boxes2):
  """[B, N, 4] x [B, M, 4] -> IoU float32 [B, N, M] (0 where either box is empty)."""
  y1a, x1a, y2a, x2a = tf.split(boxes1[:, :, tf.newaxis, :], 4, axis=-1)
  y1b, x1b, y2b, x2b = tf.split(boxes2[:, tf.newaxis, :, :], 4, axis=-1)
  ih = tf.maximum(tf.minimum(y2a, y2b) - tf.maximum(y1a, y1b), 0.0)
  iw = tf.maximum(tf.minimum(x2a, x2b) - tf.maximum(x1a, x1b), 0.0)
  inter = ih * iw
  area_a = tf.maximum(y2a - y1a, 0.0) * tf.maximum(x2a - x1a, 0.0)
  area_b = tf.maximum(y2b - y1b, 0.0) * tf.maximum(x2b - x1b, 0.0)
  union = area_a + area_b - inter
  return tf.squeeze(tf.math.divide_no_nan(inter, union), -1)


def clip(boxes, image_shapes):
  """Clips [B, N, 4] boxes to per-image [B, 2+] (height, width)."""
  hw = tf.cast(image_shapes[:, :2], boxes.dtype)
  limits = tf.concat([hw, hw], axis=-1)[:, tf.newaxis, :]
  return tf.minimum(tf.maximum(boxes, 0.0), limits)


def normalize(boxes, image_shapes):
  """Absolute [B, N, 4] -> normalized by per-image (height, width) from image_shapes [B, 2+]."""
  hw = tf.cast(image_shapes[:, :2], boxes.dtype)
  return boxes / tf.concat([hw, hw], axis=-1)[:, tf.newaxis, :]


def balanced_sample(positive, negative, batch_size, positive_fraction):
  """Random balanced subsample (TF OD API BalancedPositiveNegativeSampler, batched).

  Args:
    positive, negative: bool [B, N] candidate indicators (disjoint).
    batch_size: int, samples per image.
    positive_fraction: float, at most int(batch_size * positive_fraction) positives; negatives fill up.
  Returns:
    (sampled_positive, sampled_negative): bool [B, N].
  """
  max_pos = int(batch_size * positive_fraction)

  def ranks(candidates):
    noise = tf.random.uniform(tf.shape(candidates))
    order = tf.argsort(tf.where(candidates, noise, 2.0 + noise), axis=-1)
    return tf.argsort(order, axis=-1)  # position of each element in the random order

  num_pos = tf.minimum(tf.reduce_sum(tf.cast(positive, tf.int32), axis=-1), max_pos)
  sampled_pos = positive & (ranks(positive) < num_pos[:, tf.newaxis])
  num_neg = batch_size - num_pos
  sampled_neg = negative & (ranks(negative) < num_neg[:, tf.newaxis])
  return sampled_pos, sampled_neg


def pad_groundtruth(tensors_list, pad_value=0):
  """List of B tensors [N_i, ...] -> ([B, M, ...] padded with pad_value, valid bool [B, M]); M = max N_i.

  M is dynamic; `pad_to_static_rows` gives the ROI sampler the static row count it needs.
  """
  counts = tf.stack([tf.shape(t)[0] for t in tensors_list])
  max_n = tf.maximum(tf.reduce_max(counts), 1)
  padded = []
  for t in tensors_list:
    pad = [[0, max_n - tf.shape(t)[0]]] + [[0, 0]] * (len(t.shape) - 1)
    padded.append(tf.pad(t, pad, constant_values=tf.cast(pad_value, t.dtype)))
  valid = tf.sequence_mask(counts, max_n)
  return tf.stack(padded), valid


def pad_to_static_rows(tensor, rows, pad_value=0):
  """[B, M, ...] with M unknown -> [B, rows, ...] (truncated or padded with pad_value, static)."""
  if tensor.shape[1] is not None:
    return tensor
  tensor = tensor[:, :rows]
  pad = [[0, 0], [0, rows - tf.shape(tensor)[1]]] + [[0, 0]] * (len(tensor.shape) - 2)
  out = tf.pad(tensor, pad, constant_values=tf.cast(pad_value, tensor.dtype))
  out.set_shape(tensor.shape[:1].concatenate([rows]).concatenate(tensor.shape[2:]))
  return out
