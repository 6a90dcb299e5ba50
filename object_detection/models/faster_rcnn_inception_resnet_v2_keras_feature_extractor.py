"""Faster R-CNN Inception-ResNet-v2 feature extractor (`faster_rcnn_inception_resnet_v2_keras`).

Matches the TF OD API's `FasterRCNNInceptionResnetV2KerasFeatureExtractor`
(`models/faster_rcnn_inception_resnet_v2_keras_feature_extractor.py`), used by the TF2 zoo's
`mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8` config (Huang et al. 2017, "Speed/accuracy
trade-offs for modern convolutional object detectors"; Szegedy et al. 2016 for the network).

One backbone, `classification_backbone` = `keras_models.inception_resnet_v2.inception_resnet_v2(
align_feature_maps=True, weights=None, include_top=False)`, is shared by two Keras models:
  * proposal model: image input -> `block17_20_ac` (after the 20th Inception-ResNet-B block),
    float32 [B, ceil(H / s), ceil(W / s), 1088] for stride s = first_stage_features_stride;
  * box classifier model (`model_util.extract_submodel`): `block17_20_ac` -> `conv_7b_ac`
    (`mixed_7a`, ten Inception-ResNet-C blocks, `conv_7b`), float32 [N, c, c, 1088] ROI crops ->
    float32 [N, ceil(c / 2), ceil(c / 2), 1536] at stride 16. At stride 8 `mixed_7a` only accepts
    1x1 crops (a TF OD API limitation kept as is; see `keras_models/inception_resnet_v2.py`).
Both share the backbone's layers, so their checkpoint keys (`layer_with_weights-N/...`) and the backbone's
(`tf.train.Checkpoint(feature_extractor=classification_backbone)`, read by
`fine_tune_checkpoint_type: "classification"`) are the TF OD API's.

Batch norm: frozen (inference statistics, no updates) unless `batch_norm_trainable` and `is_training`.
"""

import contextlib

import tensorflow as tf
import tf_keras

from object_detection.meta_architectures import faster_rcnn_feature_extractor
from object_detection.models.keras_models import inception_resnet_v2
from object_detection.utils import keras_weights
from object_detection.utils import model_util

EXTRACTOR_TYPE = 'faster_rcnn_inception_resnet_v2_keras'
PROPOSAL_FEATURES_LAYER = 'block17_20_ac'
BOX_CLASSIFIER_FEATURES_LAYER = 'conv_7b_ac'


def _scope(name):
  return tf.name_scope(name) if name else contextlib.nullcontext()


class FasterRCNNInceptionResnetV2KerasFeatureExtractor(
    faster_rcnn_feature_extractor.FasterRCNNKerasFeatureExtractor):
  """Inception-ResNet-v2 feature extractor; see the module docstring.

  Args:
    is_training: bool, model built for training.
    first_stage_features_stride: 16, or 8 (atrous Inception-ResNet-B blocks).
    batch_norm_trainable: bool, train batch norm (only when `is_training`).
    weight_decay: float, slim-style L2 weight of the backbone's kernels and biases (the zoo configs,
      through the model builder, leave it 0.0).

  Raises:
    ValueError: `first_stage_features_stride` is not 8 or 16.
  """

  def __init__(self, is_training, first_stage_features_stride, batch_norm_trainable=False,
               weight_decay=0.0):
    if first_stage_features_stride not in (8, 16):
      raise ValueError(
          'feature_extractor.first_stage_features_stride must be 8 or 16 for %s, got %r.'
          % (EXTRACTOR_TYPE, first_stage_features_stride))
    super().__init__(is_training, first_stage_features_stride, batch_norm_trainable, weight_decay)
    self.classification_backbone = None

  def preprocess(self, resized_inputs):
    """float32 [B, H, W, 3] RGB in [0, 255] -> float32 [B, H, W, 3] in [-1, 1] (2 / 255 * x - 1)."""
    return (2.0 / 255.0) * resized_inputs - 1.0

  def _backbone(self):
    if self.classification_backbone is None:
      self.classification_backbone = inception_resnet_v2.inception_resnet_v2(
          self._train_batch_norm,
          output_stride=self._first_stage_features_stride,
          align_feature_maps=True,
          weight_decay=self._weight_decay,
          weights=None,
          include_top=False)
    return self.classification_backbone

  def get_proposal_feature_extractor_model(self, name=None):
    """Returns the tf_keras.Model: preprocessed float32 [B, H, W, 3] -> [B, h, w, 1088] RPN features.

    h = ceil(H / stride), w = ceil(W / stride) ('same' padding everywhere). `name` is the TF OD API's
    scope name (e.g. 'FirstStageFeatureExtractor'); it names ops only, never variables.
    """
    backbone = self._backbone()
    with _scope(name), tf.name_scope('InceptionResnetV2'):
      return tf_keras.Model(inputs=backbone.inputs,
                            outputs=backbone.get_layer(name=PROPOSAL_FEATURES_LAYER).output)

  def get_box_classifier_feature_extractor_model(self, name=None):
    """Returns the tf_keras.Model: ROI crops float32 [N, c, c, 1088] -> [N, c', c', 1536].

    c' = ceil(c / 2) at stride 16; at stride 8 only c = 1 works (see the module docstring).
    `name` is the TF OD API's scope name (e.g. 'SecondStageFeatureExtractor'); it names ops only.
    """
    backbone = self._backbone()
    with _scope(name), tf.name_scope('InceptionResnetV2'):
      return model_util.extract_submodel(
          model=backbone,
          inputs=backbone.get_layer(name=PROPOSAL_FEATURES_LAYER).output,
          outputs=backbone.get_layer(name=BOX_CLASSIFIER_FEATURES_LAYER).output)

  def load_weights(self, path):
    """Loads the Keras ImageNet weights of InceptionResNetV2 into `classification_backbone`.

    The file is `inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5`, or any tf_keras
    `InceptionResNetV2(...).save_weights('x.h5')` file (`keras_weights` leaves the `predictions` layer
    of a file with the classification top unused). Layers are matched in topological order (most
    layer names are auto-generated and numbered per process): `align_feature_maps`, atrous strides and
    dilations change no weight shape, so the file fits at stride 16 and 8 alike. The Keras application's
    batch norm has no `gamma` (scale=False) and neither has this network (`batchnorm_scale=False`), so
    every variable of the backbone is set from the file and nothing is left at its initial value
    (all or nothing: `complete=True`).

    Args:
      path: str, `.h5` file.

    Returns:
      keras_weights.LoadReport.

    Raises:
      ValueError: the file cannot be read or does not fit the network (message names the file);
        nothing is loaded then.
    """
    return keras_weights.load_weights(self._backbone(), path, EXTRACTOR_TYPE, by_order=True,
                                      complete=True)
