"""Second-stage Mask R-CNN box predictor (TF OD API
`predictors/mask_rcnn_keras_box_predictor.py::MaskRCNNKerasBoxPredictor`).

Holds the per-proposal box head (`_box_prediction_head`), class head (`_class_prediction_head`) and
third-stage heads (`_third_stage_heads`, a dict: {'mask_predictions': MaskRCNNMaskHead} when masks
are predicted, else empty). Those attribute names are the checkpoint keys' path, e.g.
`model/_mask_rcnn_box_predictor/_box_prediction_head/_box_encoder_layers/1/kernel`.

Box predictions are not shared across classes unless the box head was built with
`share_box_across_classes`.
"""

from object_detection.core import box_predictor

BOX_ENCODINGS = box_predictor.BOX_ENCODINGS
CLASS_PREDICTIONS_WITH_BACKGROUND = box_predictor.CLASS_PREDICTIONS_WITH_BACKGROUND
MASK_PREDICTIONS = box_predictor.MASK_PREDICTIONS


class MaskRCNNKerasBoxPredictor(box_predictor.KerasBoxPredictor):
  """Second-stage box / class / mask predictor of Faster R-CNN and Mask R-CNN.

  Args:
    is_training: bool.
    num_classes: int, classes without background.
    freeze_batchnorm: bool.
    box_prediction_head: `keras_box_head.MaskRCNNBoxHead`.
    class_prediction_head: `keras_class_head.MaskRCNNClassHead`.
    third_stage_heads: dict head name -> head (the mask head under `MASK_PREDICTIONS`).
    name: str or None, Keras layer name.

  Call: `predictor([features], prediction_stage=2 or 3)` with features float32
  [N, height, width, channels], N = batch * proposals (proposals along the batch axis):
    - prediction_stage=2 -> {BOX_ENCODINGS: [N, 1, num_classes (or 1 when boxes are shared),
      code_size], CLASS_PREDICTIONS_WITH_BACKGROUND: [N, 1, num_classes + 1] logits (column 0 =
      background)}. The box and class heads average-pool over height and width, so any spatial
      size works (C4 box classifier: [N, 4, 4, 2048]; Inception-ResNet-v2: [N, 8, 8, 1536]; FPN
      box classifier: [N, 1, 1, 1024]).
    - prediction_stage=3 -> {MASK_PREDICTIONS: [N, 1, num_masks, mask_height, mask_width] logits}
      (num_masks = 1 for class-agnostic masks). The mask head may be fed features different from
      those of stage 2, of any spatial size and depth: with the default bilinear upsampling they are
      resized to the mask size first; with convolve_then_upsample_masks the size of the first call
      fixes the upsampling factors (see `keras_mask_head.MaskRCNNMaskHead`). The mask tower's depth
      (for mask_prediction_conv_depth 0) and its first conv's input depth come from the first
      stage-3 call, so later calls must keep that channel count.
  `training` may be passed too; the heads' Dropout / batch norm take it from the call.

  Raises:
    ValueError: `image_features` is not a list of exactly one tensor, or prediction_stage is not 2
      or 3 (stage 3 on a predictor built without masks returns an empty dict, as in the TF OD API).
  """

  def __init__(self, is_training, num_classes, freeze_batchnorm, box_prediction_head,
               class_prediction_head, third_stage_heads, name=None):
    super().__init__(is_training, num_classes, freeze_batchnorm=freeze_batchnorm,
                     inplace_batchnorm_update=False, name=name)
    self._box_prediction_head = box_prediction_head
    self._class_prediction_head = class_prediction_head
    self._third_stage_heads = third_stage_heads

  @property
  def num_classes(self):
    return self._num_classes

  def get_second_stage_prediction_heads(self):
    return BOX_ENCODINGS, CLASS_PREDICTIONS_WITH_BACKGROUND

  def get_third_stage_prediction_heads(self):
    return sorted(self._third_stage_heads.keys())

  def _predict(self, image_features, prediction_stage=2, **kwargs):
    del kwargs  # `training` reaches the heads through the Keras call context.
    if len(image_features) != 1:
      raise ValueError('MaskRCNNKerasBoxPredictor: image_features must be a list of exactly one '
                       'tensor, got %d.' % len(image_features))
    features = image_features[0]
    if prediction_stage == 2:
      return {
          BOX_ENCODINGS: self._box_prediction_head(features),
          CLASS_PREDICTIONS_WITH_BACKGROUND: self._class_prediction_head(features),
      }
    if prediction_stage == 3:
      return {head_name: self._third_stage_heads[head_name](features)
              for head_name in self.get_third_stage_prediction_heads()}
    raise ValueError('MaskRCNNKerasBoxPredictor: prediction_stage must be 2 or 3, got %r.'
                     % (prediction_stage,))
