"""Convolutional box predictor: the Faster R-CNN RPN head (TF OD API
`predictors/convolutional_keras_box_predictor.py::ConvolutionalBoxPredictor`).

One box head and one class head per input feature map, each with its own weights (for FPN the
RPN has five levels, so five head pairs inside one predictor). The heads live in the dict
`_prediction_heads` = {'box_encodings': [head per level], 'class_predictions_with_background':
[head per level]}, so checkpoint keys read `model/_first_stage_box_predictor/_prediction_heads/
box_encodings/<level>/_box_encoder_layers/0/kernel`.

The TF OD API's `WeightSharedConvolutionalBoxPredictor` (SSD / RetinaNet) is not implemented.
"""

import collections

from absl import logging
import tf_keras

from object_detection.core import box_predictor

BOX_ENCODINGS = box_predictor.BOX_ENCODINGS
CLASS_PREDICTIONS_WITH_BACKGROUND = box_predictor.CLASS_PREDICTIONS_WITH_BACKGROUND
MASK_PREDICTIONS = box_predictor.MASK_PREDICTIONS


class ConvolutionalBoxPredictor(box_predictor.KerasBoxPredictor):
  """Per-anchor box encodings and class logits over a list of feature maps.

  Optionally `num_layers_before_predictor` 1x1 conv + batch norm + activation layers (depth
  max(min(channels, max_depth), min_depth); none when that depth is 0) run before the heads of
  each level, in `_shared_nets[level]` (the Faster R-CNN RPN uses none: max_depth 0).

  Args:
    is_training: bool.
    num_classes: int, classes without background (the RPN: 1).
    box_prediction_heads: list of `ConvolutionalBoxHead`, one per feature map.
    class_prediction_heads: list of `ConvolutionalClassHead`, one per feature map.
    other_heads: dict head name -> list of heads (one per feature map); may be empty.
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams` for the extra convs.
    num_layers_before_predictor: int.
    min_depth, max_depth: ints, bounds of the extra convs' depth.
    freeze_batchnorm: bool.
    inplace_batchnorm_update: bool (kept for the TF OD API interface).
    name: str or None, Keras layer name (the RPN: 'FirstStageBoxPredictor').

  Call: `predictor(image_features)` with a list of L float32 tensors [batch, height_i, width_i,
  channels_i] (one per head) -> dict of lists with one entry per feature map:
    BOX_ENCODINGS: [batch, height_i * width_i * anchors_i, 1, box_code_size],
    CLASS_PREDICTIONS_WITH_BACKGROUND: [batch, height_i * width_i * anchors_i, num_class_slots],
  anchors ordered (y, x, anchor) row-major; plus one list per other head.

  Raises:
    ValueError: min_depth > max_depth, head lists of different lengths, or (at the first call) a
      number of feature maps different from the number of heads.
  """

  def __init__(self, is_training, num_classes, box_prediction_heads, class_prediction_heads,
               other_heads, conv_hyperparams, num_layers_before_predictor, min_depth, max_depth,
               freeze_batchnorm, inplace_batchnorm_update, name=None):
    super().__init__(is_training, num_classes, freeze_batchnorm=freeze_batchnorm,
                     inplace_batchnorm_update=inplace_batchnorm_update, name=name)
    if min_depth > max_depth:
      raise ValueError('ConvolutionalBoxPredictor: min_depth (%d) must be <= max_depth (%d).'
                       % (min_depth, max_depth))
    head_lists = [box_prediction_heads, class_prediction_heads] + list(other_heads.values())
    if len({len(heads) for heads in head_lists}) != 1:
      raise ValueError('ConvolutionalBoxPredictor: the box, class and other head lists must have '
                       'the same length (one head per feature map), got %s.'
                       % [len(heads) for heads in head_lists])
    prediction_heads = {
        BOX_ENCODINGS: box_prediction_heads,
        CLASS_PREDICTIONS_WITH_BACKGROUND: class_prediction_heads,
    }
    prediction_heads.update(other_heads)
    self._prediction_heads = prediction_heads
    # A fixed order, so every replica creates the heads' variables in the same order.
    self._sorted_head_names = sorted(prediction_heads.keys())
    self._conv_hyperparams = conv_hyperparams
    self._min_depth = min_depth
    self._max_depth = max_depth
    self._num_layers_before_predictor = num_layers_before_predictor
    self._shared_nets = []

  def build(self, input_shapes):
    num_heads = len(self._prediction_heads[BOX_ENCODINGS])
    if len(input_shapes) != num_heads:
      raise ValueError('ConvolutionalBoxPredictor was built with %d heads (one per '
                       'num_predictions_per_location_list entry) but called on %d feature maps.'
                       % (num_heads, len(input_shapes)))
    for stack_index, input_shape in enumerate(input_shapes):
      net = []
      # Without extra layers the channel count is not needed (it may be unknown).
      depth = 0
      if self._num_layers_before_predictor > 0:
        depth = max(min(int(input_shape[3]), self._max_depth), self._min_depth)
        logging.info('depth of additional conv before box predictor: %d', depth)
      if depth > 0:
        for i in range(self._num_layers_before_predictor):
          prefix = 'SharedConvolutions_%d/Conv2d_%d_1x1_%d' % (stack_index, i, depth)
          net.append(tf_keras.layers.Conv2D(depth, [1, 1], padding='SAME', name=prefix,
                                            **self._conv_hyperparams.params()))
          net.append(self._conv_hyperparams.build_batch_norm(
              training=(self._is_training and not self._freeze_batchnorm),
              name=prefix + '_norm'))
          net.append(self._conv_hyperparams.build_activation_layer(name=prefix + '_activation'))
      # Appended only once filled (the TF OD API does the same for its tracked lists).
      self._shared_nets.append(net)
    self.built = True

  def _predict(self, image_features, **kwargs):
    del kwargs  # `training` reaches the layers through the Keras call context.
    predictions = collections.defaultdict(list)
    for index, net in enumerate(image_features):
      for layer in self._shared_nets[index]:
        net = layer(net)
      for head_name in self._sorted_head_names:
        predictions[head_name].append(self._prediction_heads[head_name][index](net))
    return predictions
