"""Semantic segmentation meta-architecture (project extension; `model { semantic_segmentation }`).

One of this project's Faster R-CNN feature extractors (ResNet, EfficientNet, EfficientNet-Lite0,
MobileNet, with or without FPN) gives feature maps; an FCN head (`predictors/heads/fcn_head.py`)
turns them into per-pixel logits for num_classes + 1 classes (0 = background), upsampled to the
input resolution. It implements the `core.model.DetectionModel` interface, so training, evaluation,
checkpoints, EMA and export run through the same code as Mask R-CNN:

  preprocess(float32 [B, H, W, 3] 0..255) -> (preprocessed float32 [B, h, w, 3], true_image_shapes
      int32 [B, 3]): the image resizer, then the extractor's pixel normalization.
  predict(preprocessed, true_image_shapes) -> {'semantic_logits': float32 [B, h, w, K]} at the
      preprocessed (padded) resolution; K = num_classes + 1.
  provide_groundtruth(groundtruth_semantic=uint8/int32 [B, h, w]) then loss(...) ->
      {'Loss/SemanticSegmentationLoss/cross_entropy_loss', optional '.../dice_loss'} (weighted).
  postprocess(...) -> {'semantic_probabilities': float32 [B, h, w, K] (softmax),
      'semantic_classes': int32 [B, h, w] (argmax)}. Only [:true_h, :true_w] of image b is image.

Checkpoint layout: the extractor's model is tracked as `_feature_extractor_for_proposal_features`,
the attribute name of the TF OD API's Faster R-CNN, so `fine_tune_checkpoint_type: "detection"`
restores the backbone (and FPN) of a Mask R-CNN checkpoint of the same extractor (TF OD API zoo or
this project), "classification" the extractor's `classification_backbone` (ImageNet weights), and
"full" this whole model. The head is `_fcn_head`.
"""
import tensorflow as tf

from object_detection.core import model
from object_detection.meta_architectures import semantic_segmentation_losses as losses
from object_detection.utils import shape_utils

GROUNDTRUTH_SEMANTIC = 'groundtruth_semantic'
SEMANTIC_LOGITS = 'semantic_logits'
SEMANTIC_PROBABILITIES = 'semantic_probabilities'
SEMANTIC_CLASSES = 'semantic_classes'
CROSS_ENTROPY_LOSS_KEY = 'Loss/SemanticSegmentationLoss/cross_entropy_loss'
DICE_LOSS_KEY = 'Loss/SemanticSegmentationLoss/dice_loss'
CONFIG_NAME = 'semantic_segmentation'


def _maximum(a, b):
  """max of two dimensions, static (int) when both are."""
  if isinstance(a, int) and isinstance(b, int):
    return max(a, b)
  return tf.maximum(a, b)


def is_semantic_config(model_config):
  """Whether a `DetectionModel` proto selects `semantic_segmentation`."""
  return model_config.WhichOneof('model') == CONFIG_NAME


def is_semantic_model(detection_model):
  """Whether `detection_model` is a SemanticSegmentationModel."""
  return isinstance(detection_model, SemanticSegmentationModel)


class SemanticSegmentationModel(model.DetectionModel):
  """Feature extractor + FCN head; see the module docstring.

  Args:
    is_training: bool.
    num_classes: classes WITHOUT background.
    image_resizer_fn: `image_resizer_builder.build` function.
    feature_extractor: a `FasterRCNNKerasFeatureExtractor`.
    fcn_head: `fcn_head.FcnHead` with num_classes + 1 outputs.
    feature_stride: input pixels per pixel of the finest feature map the head reads (2**fpn
      min_level, or the extractor's first_stage_features_stride).
    upsampling: 'bilinear' or 'nearest', how logits reach the input resolution.
    ignore_label: label value left out of the loss (and the metrics).
    cross_entropy_weight, class_weights (None or K floats), dice_weight: the loss terms.
  """

  def __init__(self, is_training, num_classes, image_resizer_fn, feature_extractor, fcn_head,
               feature_stride, upsampling='bilinear', ignore_label=255, cross_entropy_weight=1.0,
               class_weights=None, dice_weight=0.0, **kwargs):
    super().__init__(num_classes=num_classes, **kwargs)
    self._is_training = is_training
    self._image_resizer_fn = image_resizer_fn
    self._feature_extractor = feature_extractor
    self._fcn_head = fcn_head
    self._feature_stride = int(feature_stride)
    self._upsampling = upsampling
    self._ignore_label = int(ignore_label)
    self._cross_entropy_weight = float(cross_entropy_weight)
    self._class_weights = list(class_weights) if class_weights else None
    self._dice_weight = float(dice_weight)
    self._feature_extractor_for_proposal_features = None

  @property
  def num_output_classes(self):
    """K = num_classes + 1 (background is class 0)."""
    return self._num_classes + 1

  @property
  def ignore_label(self):
    return self._ignore_label

  @property
  def feature_extractor(self):
    return self._feature_extractor

  def preprocess(self, inputs):
    """float32 [B, H, W, 3] RGB 0..255 -> (preprocessed float32 [B, h, w, 3], int32 [B, 3]).

    Raises:
      ValueError: inputs are not float32.
    """
    resized, true_image_shapes = shape_utils.resize_images_and_return_shapes(
        inputs, self._image_resizer_fn)
    return self._feature_extractor.preprocess(resized), true_image_shapes

  def _features(self, preprocessed_inputs):
    if self._feature_extractor_for_proposal_features is None:
      self._feature_extractor_for_proposal_features = (
          self._feature_extractor.get_proposal_feature_extractor_model(name='FeatureExtractor'))
    return self._feature_extractor_for_proposal_features(preprocessed_inputs,
                                                         training=self._is_training)

  def predict(self, preprocessed_inputs, true_image_shapes, **side_inputs):
    """Returns {'semantic_logits': float32 [B, h, w, K]} at the preprocessed input's size.

    The head's logits (at the finest level's stride s) are resized to s times their size, the area
    the extractor saw (extractors zero-pad the input bottom / right to a multiple of their stride),
    and cropped to the input: a pixel's logit comes from the feature cell covering it.
    """
    del true_image_shapes, side_inputs
    logits = tf.cast(self._fcn_head(self._features(preprocessed_inputs),
                                    training=self._is_training), tf.float32)
    input_shape = shape_utils.combined_static_and_dynamic_shape(preprocessed_inputs)
    logit_shape = shape_utils.combined_static_and_dynamic_shape(logits)
    covered = [logit_shape[1] * self._feature_stride, logit_shape[2] * self._feature_stride]
    # The covered area is never smaller than the input (the extractor pads up); max() guards it.
    size = [_maximum(covered[0], input_shape[1]), _maximum(covered[1], input_shape[2])]
    method = 'nearest' if self._upsampling == 'nearest' else 'bilinear'
    logits = tf.image.resize(logits, size, method=method)
    logits = logits[:, :input_shape[1], :input_shape[2], :]
    return {SEMANTIC_LOGITS: logits}

  def provide_groundtruth(self, groundtruth_semantic=None, **unused_kwargs):
    """Stores the label maps: uint8 / int32 [B, h, w] class ids at the preprocessed input's
    (padded) resolution; `ignore_label` (and any value > num_classes) is left out."""
    if groundtruth_semantic is None:
      raise ValueError('provide_groundtruth: semantic segmentation models take '
                       'groundtruth_semantic (label maps [B, h, w]).')
    self._groundtruth_lists = {GROUNDTRUTH_SEMANTIC: groundtruth_semantic}

  def _labels_in_true_images(self, true_image_shapes, shape):
    """The label maps with pixels outside each image's true shape set to ignore_label."""
    labels = tf.cast(self.groundtruth_lists(GROUNDTRUTH_SEMANTIC), tf.int32)
    rows = tf.range(shape[1])[tf.newaxis, :, tf.newaxis]
    cols = tf.range(shape[2])[tf.newaxis, tf.newaxis, :]
    inside = tf.logical_and(rows < true_image_shapes[:, 0, tf.newaxis, tf.newaxis],
                            cols < true_image_shapes[:, 1, tf.newaxis, tf.newaxis])
    return tf.where(inside, labels, self._ignore_label)

  def loss(self, prediction_dict, true_image_shapes):
    """Weighted losses (float32 scalars); see `semantic_segmentation_losses`.

    Raises:
      RuntimeError: provide_groundtruth was not called.
    """
    logits = prediction_dict[SEMANTIC_LOGITS]
    shape = shape_utils.combined_static_and_dynamic_shape(logits)
    labels = self._labels_in_true_images(true_image_shapes, shape)
    result = {CROSS_ENTROPY_LOSS_KEY: self._cross_entropy_weight * losses.softmax_cross_entropy(
        logits, labels, self._class_weights)}
    if self._dice_weight > 0:
      result[DICE_LOSS_KEY] = self._dice_weight * losses.dice_loss(logits, labels)
    return result

  def postprocess(self, prediction_dict, true_image_shapes, **params):
    """{'semantic_probabilities': float32 [B, h, w, K], 'semantic_classes': int32 [B, h, w]}."""
    del true_image_shapes, params
    logits = prediction_dict[SEMANTIC_LOGITS]
    return {SEMANTIC_PROBABILITIES: tf.nn.softmax(logits),
            SEMANTIC_CLASSES: tf.argmax(logits, axis=-1, output_type=tf.int32)}

  def regularization_losses(self):
    """Keras regularization losses of the extractor model and the head."""
    found = []
    for layer in (self._feature_extractor_for_proposal_features, self._fcn_head):
      if layer is not None:
        found.extend(layer.losses)
    return found

  def restore_map(self, fine_tune_checkpoint_type='detection',
                  load_all_detection_checkpoint_vars=False):
    raise NotImplementedError('restore_map is the TF1 restore path; use restore_from_objects.')

  def restore_from_objects(self, fine_tune_checkpoint_type='detection'):
    """Objects to restore for `fine_tune_checkpoint_type`; see the module docstring.

    Raises:
      ValueError: another type (the message names `fine_tune_checkpoint_type`).
    """
    if fine_tune_checkpoint_type == 'classification':
      return {'feature_extractor': self._feature_extractor.classification_backbone}
    if fine_tune_checkpoint_type == 'detection':
      return {'model': tf.train.Checkpoint(
          _feature_extractor_for_proposal_features=self._feature_extractor_for_proposal_features)}
    if fine_tune_checkpoint_type == 'full':
      return {'model': self}
    raise ValueError('train_config.fine_tune_checkpoint_type must be "classification", "detection" '
                     'or "full"; got %r.' % (fine_tune_checkpoint_type,))

  def updates(self):
    return []
