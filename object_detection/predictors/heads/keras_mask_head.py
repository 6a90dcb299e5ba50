"""Mask R-CNN instance mask head (TF OD API `predictors/heads/keras_mask_head.MaskRCNNMaskHead`).

Only the second-stage Mask R-CNN head is implemented (the convolutional / weight-shared mask heads
are SSD-only).
"""

import math

import tensorflow as tf
import tf_keras

from object_detection.predictors.heads import head
from object_detection.utils import ops


def get_mask_predictor_conv_depth(num_feature_channels, num_classes, class_weight=3.0,
                                  feature_weight=2.0):
  """Mask tower depth for mask_prediction_conv_depth 0 (TF OD API `_get_mask_predictor_conv_depth`).

  depth = 2 ** round((feature_weight * log2(C) + class_weight * log2(K)) / (feature_weight +
  class_weight)): a weighted geometric mean of the feature depth C and the number of classes K,
  rounded to a power of two (Python's round: halves go to the even exponent). E.g. C=2048, K=90
  gives 256; C=1536, K=90 gives 256; C=1024, K=90 gives 256.
  """
  log_channels = math.log(float(num_feature_channels), 2.0)
  log_classes = math.log(float(num_classes), 2.0)
  exponent = round((log_channels * feature_weight + log_classes * class_weight)
                   / (feature_weight + class_weight))
  return int(math.pow(2.0, exponent))


class MaskRCNNMaskHead(head.KerasHead):
  """Per-proposal instance mask logits (TF OD API `keras_mask_head.MaskRCNNMaskHead`).

  The layers are created at the first call, from the feature shape, in the list attribute
  `_mask_predictor_layers` (indices are part of the checkpoint keys, as in the TF OD API):
    for i in 0 .. mask_prediction_num_conv_layers - 2:
      Conv2D(depth, 3x3, SAME, 'MaskPredictor_conv2d_i', conv_hyperparams, bias unless batch norm
      with center), batch norm 'MaskPredictor_batchnorm_i' (identity without batch_norm in
      conv_hyperparams), activation 'MaskPredictor_activation_i' (conv_hyperparams' activation);
    if convolve_then_upsample: nearest-neighbour upsampling Lambda, Conv2D 'MaskPredictor_upsample_
      conv2d' (3x3, depth), batch norm, activation;
    Conv2D(num_masks, 3x3, SAME, 'MaskPredictor_last_conv2d', with bias).
  depth = mask_prediction_conv_depth, or `get_mask_predictor_conv_depth(channels, num_classes)`
  when it is 0. num_masks = 1 if masks_are_class_agnostic else num_classes.

  Upsampling:
    - convolve_then_upsample=False (default): the features are first resized to
      [mask_height, mask_width] with `tf.compat.v1.image.resize_bilinear(align_corners=True)`, then
      convolved. Works for features of any spatial size, also one that changes between calls
      (e.g. [N, 1, 1, 1024] from the FPN box classifier, or [N, 14, 14, 256] ROI crops).
    - convolve_then_upsample=True: convolutions run at the feature resolution, then a
      nearest-neighbour upsampling by integer factors fixed at the first call:
      height_scale = mask_height // height, width_scale = mask_width // width (floor, as in the
      TF OD API: with mask 33 on 4x4 features the output is 32x32, not 33x33). Needs static
      height / width, and later calls use the same factors.

  Args:
    is_training: bool; batch norm follows the call's mode only if is_training and not
      freeze_batchnorm.
    num_classes: int, classes without background.
    freeze_batchnorm: bool.
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams` for the convs.
    mask_height, mask_width: ints, output mask size (see Upsampling for convolve_then_upsample).
    mask_prediction_num_conv_layers: int, number of convs including the last one.
    mask_prediction_conv_depth: int, tower depth; 0 derives it (see above).
    masks_are_class_agnostic: bool, one mask per proposal instead of one per class.
    convolve_then_upsample: bool, see Upsampling.
    name: str or None.

  Call: features float32 [N, height, width, channels] ->
    mask logits float32 [N, 1, num_masks, out_height, out_width] (out = mask size, see Upsampling).

  Raises:
    ValueError (at the first call): convolve_then_upsample with unknown feature height / width, or
      features larger than the mask (the upsampling factor would be 0).
  """

  def __init__(self, is_training, num_classes, freeze_batchnorm, conv_hyperparams, mask_height=14,
               mask_width=14, mask_prediction_num_conv_layers=2, mask_prediction_conv_depth=256,
               masks_are_class_agnostic=False, convolve_then_upsample=False, name=None):
    super().__init__(name=name)
    self._is_training = is_training
    self._freeze_batchnorm = freeze_batchnorm
    self._num_classes = num_classes
    self._conv_hyperparams = conv_hyperparams
    self._mask_height = mask_height
    self._mask_width = mask_width
    self._mask_prediction_num_conv_layers = mask_prediction_num_conv_layers
    self._mask_prediction_conv_depth = mask_prediction_conv_depth
    self._masks_are_class_agnostic = masks_are_class_agnostic
    self._convolve_then_upsample = convolve_then_upsample
    self._mask_predictor_layers = []

  def _conv_block(self, depth, conv_name, norm_name, activation_name):
    hyperparams = self._conv_hyperparams
    return [
        tf_keras.layers.Conv2D(depth, [3, 3], padding='SAME', name=conv_name,
                               **hyperparams.params()),
        hyperparams.build_batch_norm(training=(self._is_training and not self._freeze_batchnorm),
                                     name=norm_name),
        hyperparams.build_activation_layer(name=activation_name),
    ]

  def build(self, input_shape):
    input_shape = tf.TensorShape(input_shape)
    depth = self._mask_prediction_conv_depth
    if depth == 0:
      depth = get_mask_predictor_conv_depth(int(input_shape[3]), self._num_classes)

    layers = []
    for i in range(self._mask_prediction_num_conv_layers - 1):
      layers += self._conv_block(depth, 'MaskPredictor_conv2d_%d' % i,
                                 'MaskPredictor_batchnorm_%d' % i,
                                 'MaskPredictor_activation_%d' % i)
    if self._convolve_then_upsample:
      height, width = input_shape[1], input_shape[2]
      if height is None or width is None:
        raise ValueError('MaskRCNNMaskHead: convolve_then_upsample_masks needs mask features '
                         'with a static height and width, got shape %s.' % input_shape)
      height_scale = self._mask_height // height
      width_scale = self._mask_width // width
      if height_scale < 1 or width_scale < 1:
        raise ValueError('MaskRCNNMaskHead: convolve_then_upsample_masks needs mask_height / '
                         'mask_width (%d, %d) at least the feature height / width (%d, %d).'
                         % (self._mask_height, self._mask_width, height, width))
      layers.append(tf_keras.layers.Lambda(
          lambda x: ops.nearest_neighbor_upsampling(x, height_scale=height_scale,
                                                    width_scale=width_scale),
          name='MaskPredictor_upsample'))
      layers += self._conv_block(depth, 'MaskPredictor_upsample_conv2d',
                                 'MaskPredictor_upsample_batchnorm',
                                 'MaskPredictor_upsample_activation')
    num_masks = 1 if self._masks_are_class_agnostic else self._num_classes
    layers.append(tf_keras.layers.Conv2D(
        num_masks, [3, 3], padding='SAME', name='MaskPredictor_last_conv2d',
        **self._conv_hyperparams.params(use_bias=True)))
    self._mask_predictor_layers = layers
    self.built = True

  def _predict(self, features):
    net = features
    layers = self._mask_predictor_layers
    if not self._convolve_then_upsample:
      if _resize_then_conv_is_cheaper(features.shape, self._mask_height, self._mask_width):
        # Same math as resizing, then the first conv, reordered (the module's resize_then_conv).
        first_conv = layers[0]
        if not first_conv.built:
          first_conv.build(features.shape)
        net = resize_then_conv(net, first_conv.kernel, first_conv.bias if first_conv.use_bias
                               else None, self._mask_height, self._mask_width)
        layers = layers[1:]
      else:
        # The TF OD API's resize: tf.compat.v1.image.resize_bilinear(align_corners=True), i.e. the
        # ResizeBilinear kernel without half-pixel centers (called directly to avoid its
        # deprecation warning).
        net = tf.raw_ops.ResizeBilinear(images=net, size=[self._mask_height, self._mask_width],
                                        align_corners=True, half_pixel_centers=False)
    for layer in layers:
      net = layer(net)
    # [N, H, W, num_masks] -> [N, 1, num_masks, H, W].
    return tf.expand_dims(tf.transpose(net, perm=[0, 3, 1, 2]), axis=1, name='MaskPredictor')


def _resize_then_conv_is_cheaper(feature_shape, out_height, out_width):
  """True when the features are static and at most a quarter of the mask's area: the reordered
  first convolution then costs at most a quarter of the TF OD API's (and much less memory)."""
  height, width = feature_shape[1], feature_shape[2]
  if height is None or width is None:
    return False
  return 4 * height * width <= out_height * out_width


def _bilinear_matrix(in_size, out_size):
  """[out_size, in_size] weights of ResizeBilinear(align_corners=True) along one axis.

  Obtained from the kernel itself (resizing the identity), so the weights are exactly the ones the
  TF OD API's resize applies; bilinear resizing is this matrix applied along each axis.
  """
  basis = tf.eye(in_size, dtype=tf.float32)[tf.newaxis, :, tf.newaxis, :]  # [1, in, 1, in]
  resized = tf.raw_ops.ResizeBilinear(images=basis, size=[out_size, 1], align_corners=True,
                                      half_pixel_centers=False)
  return resized[0, :, 0, :]


def _shifted(matrix, offset):
  """Rows shifted by `offset` with zero fill: out[p] = matrix[p + offset] (0 outside)."""
  size = matrix.shape[0]
  zeros = tf.zeros_like(matrix[:abs(offset)])
  if offset > 0:
    return tf.concat([matrix[offset:], zeros], axis=0)
  if offset < 0:
    return tf.concat([zeros, matrix[:size + offset]], axis=0)
  return matrix


def resize_then_conv(features, kernel, bias, out_height, out_width):
  """conv2d(SAME, stride 1)(ResizeBilinear(align_corners=True)(features)) without the resized tensor.

  The TF OD API's mask head resizes [N, h, w, C] features to the mask size (e.g. 4x4x2048 ResNet conv5
  features to 33x33) and convolves them 3x3 to D channels: N * 33 * 33 * 9 * C * D multiply-adds and a
  [N, 33, 33, C] activation. Both operations are linear, so with Ay [H, h] / Ax [W, w] the bilinear
  weights along each axis and W_ab the kernel tap at offset (a, b) (zero padding = zero weight rows):

    out[n, P, Q] = sum_ab sum_ij Ay[P + a - ry, i] Ax[Q + b - rx, j] (x[n, i, j] @ W_ab) + bias

  The per-tap products x @ W_ab are taken at the h x w input positions (N * h * w * 9 * C * D
  multiply-adds: 68x fewer for 4x4 -> 33x33), then spread with the interpolation weights. Same result
  up to float rounding.

  Args:
    features: float32 [N, h, w, C] with static h, w.
    kernel: float32 [kh, kw, C, D] (odd kh, kw). bias: float32 [D] or None.
    out_height, out_width: ints, the resize target.

  Returns:
    float32 [N, out_height, out_width, D].
  """
  # In float32 under a bfloat16/float16 policy too (the kernel then reads as that dtype), like the
  # ResizeBilinear it replaces, whose output is float32 whatever its input.
  features, kernel = tf.cast(features, tf.float32), tf.cast(kernel, tf.float32)
  bias = None if bias is None else tf.cast(bias, tf.float32)
  kernel_h, kernel_w = int(kernel.shape[0]), int(kernel.shape[1])
  in_h, in_w = int(features.shape[1]), int(features.shape[2])
  a_y = _bilinear_matrix(in_h, out_height)
  a_x = _bilinear_matrix(in_w, out_width)
  rows = tf.stack([_shifted(a_y, a - kernel_h // 2) for a in range(kernel_h)])  # [kh, H, h]
  cols = tf.stack([_shifted(a_x, b - kernel_w // 2) for b in range(kernel_w)])  # [kw, W, w]
  taps = tf.einsum('nijc,abcd->naibjd', features, kernel)  # [N, kh, h, kw, w, D]
  spread_rows = tf.einsum('aPi,naibjd->nPbjd', rows, taps)  # [N, H, kw, w, D]
  out = tf.einsum('bQj,nPbjd->nPQd', cols, spread_rows)  # [N, H, W, D]
  if bias is not None:
    out = out + bias
  return out
