"""Losses of semantic segmentation models (per-pixel, ignore label excluded).

Both take logits float32 [B, H, W, K] and labels int [B, H, W] (class ids 0..K-1, any other value,
e.g. the ignore label 255, is left out) at the same resolution, and return a float32 scalar.
"""
import tensorflow as tf


def _valid_pixels(logits, labels, num_classes):
  labels = tf.cast(labels, tf.int32)
  valid = tf.logical_and(labels >= 0, labels < num_classes)
  return tf.cast(logits, tf.float32), tf.where(valid, labels, 0), tf.cast(valid, tf.float32)


def softmax_cross_entropy(logits, labels, class_weights=None):
  """Mean softmax cross-entropy over the valid pixels of the batch.

  Without class weights: sum(ce * valid) / max(sum(valid), 1). With class weights w (K floats):
  sum(w[y] * ce) / sum(w[y]) over valid pixels, which is PyTorch's
  `CrossEntropyLoss(weight=w, ignore_index=..., reduction='mean')` (mmsegmentation's
  `CrossEntropyLoss` with `avg_non_ignore=True`). A batch without any valid pixel gives 0.
  """
  num_classes = logits.shape[-1]
  logits, safe_labels, valid = _valid_pixels(logits, labels, num_classes)
  ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
  weights = valid
  if class_weights is not None:
    weights = weights * tf.gather(tf.constant(class_weights, tf.float32), safe_labels)
  return tf.math.divide_no_nan(tf.reduce_sum(ce * weights), tf.reduce_sum(weights))


def dice_loss(logits, labels, smooth=1.0, exponent=2.0):
  """Soft Dice loss of softmax probabilities against one-hot labels, mean over the K classes.

  Per class k over the valid pixels of the batch: 1 - (2 * sum(p_k * g_k) + smooth) /
  (sum(p_k ** exponent) + sum(g_k ** exponent) + smooth), mmsegmentation's `DiceLoss`
  (smooth 1, exponent 2, classes averaged, ignore_index pixels left out).
  """
  num_classes = logits.shape[-1]
  logits, safe_labels, valid = _valid_pixels(logits, labels, num_classes)
  probabilities = tf.nn.softmax(logits) * valid[..., tf.newaxis]
  onehot = tf.one_hot(safe_labels, num_classes, dtype=tf.float32) * valid[..., tf.newaxis]
  axes = [0, 1, 2]
  numerator = 2.0 * tf.reduce_sum(probabilities * onehot, axis=axes) + smooth
  denominator = (tf.reduce_sum(tf.pow(probabilities, exponent), axis=axes) +
                 tf.reduce_sum(tf.pow(onehot, exponent), axis=axes) + smooth)
  return tf.reduce_mean(1.0 - numerator / denominator)
