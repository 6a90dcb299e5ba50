"""Single-level ResNet-v1 Faster R-CNN feature extractors (`faster_rcnn_resnet{50,101,152}_keras`).

Matches the TF OD API's `models/faster_rcnn_resnet_keras_feature_extractor.py` (TF2 path): same classes,
constructor arguments, models and checkpoint keys. The backbone is `keras_models.resnet_v1` (He et al. 2016,
"Deep Residual Learning for Image Recognition", as slim's ResNet-v1: bias-free convolutions, stride on the
first 1x1 conv of a block).

  - `preprocess`: VGG-style channel-mean subtraction, RGB means [123.68, 116.779, 103.939], no scaling.
  - Proposal model (`get_proposal_feature_extractor_model`): the backbone from its input to the last block
    of conv4 (`conv4_block6_out` / `conv4_block23_out` / `conv4_block36_out`): float32 [B, H, W, 3] ->
    float32 [B, ceil(H / 16), ceil(W / 16), 1024].
  - Box classifier model (`get_box_classifier_feature_extractor_model`): the backbone's conv5 stage,
    extracted from the same backbone (`model_util.extract_submodel`, sharing its layers), with the stride
    2 of its first block kept: float32 [N, h, w, 1024] ROI crops (e.g. 14x14 crops max-pooled to 7x7 by
    the meta-architecture) -> float32 [N, ceil(h / 2), ceil(w / 2), 2048] (7x7 -> 4x4).
  - `classification_backbone`: the whole ResNet-v1 (to conv5, no top), built with
    `batchnorm_training = batch_norm_trainable and is_training` and L2 `weight_decay`, created on the
    first call of either model getter; restored by `fine_tune_checkpoint_type: "classification"`.

Only `first_stage_features_stride: 16` exists in the TF OD API's TF2 ResNet extractors (no atrous
variant); other strides raise ValueError.

Project extension: `load_weights(path)` loads a Keras ImageNet ResNet `.h5` file, folding the Keras conv
biases into the batch norms (see the method).
"""

import tf_keras

from object_detection.meta_architectures import faster_rcnn_feature_extractor
from object_detection.models.keras_models import resnet_v1
from object_detection.utils import keras_weights
from object_detection.utils import model_util

_CONV4_LAST_LAYER = {
    'resnet_v1_50': 'conv4_block6_out',
    'resnet_v1_101': 'conv4_block23_out',
    'resnet_v1_152': 'conv4_block36_out',
}
_CONV5_LAST_LAYER = 'conv5_block3_out'
_EXTRACTOR_TYPE = {
    'resnet_v1_50': 'faster_rcnn_resnet50_keras',
    'resnet_v1_101': 'faster_rcnn_resnet101_keras',
    'resnet_v1_152': 'faster_rcnn_resnet152_keras',
}
_CHANNEL_MEANS = (123.68, 116.779, 103.939)


def _batch_norm_after(conv_name):
  """Name of the batch norm that follows a backbone conv (`convS_blockB_I_conv` -> `..._I_bn`)."""
  if conv_name.endswith('_conv'):
    return conv_name[:-len('_conv')] + '_bn'
  return None


class FasterRCNNResnetKerasFeatureExtractor(
    faster_rcnn_feature_extractor.FasterRCNNKerasFeatureExtractor):
  """Faster R-CNN ResNet-v1 feature extractor (TF OD API class of the same name); see module docstring.

  Args:
    is_training: bool, whether the model is built for training.
    resnet_v1_base_model: one of `resnet_v1.resnet_v1_{50,101,152}`.
    resnet_v1_base_model_name: 'resnet_v1_50', 'resnet_v1_101' or 'resnet_v1_152'.
    first_stage_features_stride: int, must be 16.
    batch_norm_trainable: bool, batch norm follows the call's `training` (only when `is_training`);
      otherwise it is frozen (moving statistics, no updates).
    weight_decay: float, L2 weight of the backbone's kernel regularizers.

  Raises:
    ValueError: `first_stage_features_stride` is not 16, or an unknown `resnet_v1_base_model_name`.
  """

  def __init__(self, is_training, resnet_v1_base_model, resnet_v1_base_model_name,
               first_stage_features_stride=16, batch_norm_trainable=False, weight_decay=0.0):
    if resnet_v1_base_model_name not in _CONV4_LAST_LAYER:
      raise ValueError('resnet_v1_base_model_name must be one of %s, got %r.'
                       % (sorted(_CONV4_LAST_LAYER), resnet_v1_base_model_name))
    if first_stage_features_stride != 16:
      raise ValueError(
          'feature_extractor.first_stage_features_stride must be 16 for %s (the TF OD API TF2 ResNet '
          'extractors support only 16), got %r.'
          % (_EXTRACTOR_TYPE[resnet_v1_base_model_name], first_stage_features_stride))
    super().__init__(is_training, first_stage_features_stride, batch_norm_trainable, weight_decay)
    self._resnet_v1_base_model = resnet_v1_base_model
    self._resnet_v1_base_model_name = resnet_v1_base_model_name

  def preprocess(self, resized_inputs):
    """Subtracts the RGB channel means (VGG style); inputs without 3 channels are returned unchanged.

    Args:
      resized_inputs: float32 [B, H, W, C] tensor, pixel values in [0, 255].

    Returns:
      float32 [B, H, W, C] tensor.
    """
    if resized_inputs.shape[-1] == 3:
      return resized_inputs - [[_CHANNEL_MEANS]]
    return resized_inputs

  def _backbone(self):
    if self.classification_backbone is None:
      self.classification_backbone = self._resnet_v1_base_model(
          batchnorm_training=self._train_batch_norm,
          conv_hyperparams=None,
          weight_decay=self._weight_decay,
          classes=None,
          weights=None,
          include_top=False)
    return self.classification_backbone

  def get_proposal_feature_extractor_model(self, name=None):
    """Returns the RPN feature model: float32 [B, H, W, 3] -> float32 [B, H/16, W/16, 1024] (ceil).

    Args:
      name: unused (the TF OD API opens a name scope with it, which names no variable in TF2).
    """
    del name
    backbone = self._backbone()
    conv4 = backbone.get_layer(name=_CONV4_LAST_LAYER[self._resnet_v1_base_model_name]).output
    return tf_keras.Model(inputs=backbone.inputs, outputs=conv4)

  def get_box_classifier_feature_extractor_model(self, name=None):
    """Returns conv5 as a model: float32 [N, h, w, 1024] -> float32 [N, ceil(h/2), ceil(w/2), 2048].

    Args:
      name: unused (see `get_proposal_feature_extractor_model`).
    """
    del name
    backbone = self._backbone()
    conv4 = backbone.get_layer(name=_CONV4_LAST_LAYER[self._resnet_v1_base_model_name]).output
    conv5 = backbone.get_layer(name=_CONV5_LAST_LAYER).output
    return model_util.extract_submodel(model=backbone, inputs=conv4, outputs=conv5)

  def load_weights(self, path):
    """Loads a Keras ImageNet ResNet weight file into `classification_backbone` (project extension).

    The file is what `tf_keras.applications.ResNet50/101/152(include_top=False).save_weights('x.h5')`
    writes, e.g. `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5` (a file with the classification
    top also loads; the top is left unused). Layers are matched by name and every backbone layer must be
    loaded; nothing is downloaded. The Keras convolutions have a bias and are each followed by a batch
    norm, whereas this backbone's convolutions are bias-free, so each bias is folded into its batch norm:
    moving_mean = file moving_mean - conv bias. That is exact in inference mode (frozen batch norm,
    the TF OD API default `batch_norm_trainable: false`); when batch norm trains on batch statistics, a
    constant per-channel bias is removed by the normalization anyway. The Keras batch norm epsilon is
    1.001e-5 and this backbone's 1e-5; that difference (1e-8 added to the variance) is not compensated.

    Builds the backbone first if neither model getter has been called.

    Args:
      path: str, `.h5` file.

    Returns:
      keras_weights.LoadReport (`folded` lists the (conv, batch norm) pairs whose bias was folded).

    Raises:
      ValueError: the file cannot be read or is not the same ResNet depth (the message names the file);
        nothing is loaded then.
    """
    return keras_weights.load_weights(
        self._backbone(), path, _EXTRACTOR_TYPE[self._resnet_v1_base_model_name],
        fold_conv_bias=_batch_norm_after, complete=True)


class FasterRCNNResnet50KerasFeatureExtractor(FasterRCNNResnetKerasFeatureExtractor):
  """`faster_rcnn_resnet50_keras`: see `FasterRCNNResnetKerasFeatureExtractor` (conv4 ends at block 6)."""

  def __init__(self, is_training, first_stage_features_stride=16, batch_norm_trainable=False,
               weight_decay=0.0):
    super().__init__(is_training=is_training, resnet_v1_base_model=resnet_v1.resnet_v1_50,
                     resnet_v1_base_model_name='resnet_v1_50',
                     first_stage_features_stride=first_stage_features_stride,
                     batch_norm_trainable=batch_norm_trainable, weight_decay=weight_decay)


class FasterRCNNResnet101KerasFeatureExtractor(FasterRCNNResnetKerasFeatureExtractor):
  """`faster_rcnn_resnet101_keras`: see `FasterRCNNResnetKerasFeatureExtractor` (conv4 ends at block 23)."""

  def __init__(self, is_training, first_stage_features_stride=16, batch_norm_trainable=False,
               weight_decay=0.0):
    super().__init__(is_training=is_training, resnet_v1_base_model=resnet_v1.resnet_v1_101,
                     resnet_v1_base_model_name='resnet_v1_101',
                     first_stage_features_stride=first_stage_features_stride,
                     batch_norm_trainable=batch_norm_trainable, weight_decay=weight_decay)


class FasterRCNNResnet152KerasFeatureExtractor(FasterRCNNResnetKerasFeatureExtractor):
  """`faster_rcnn_resnet152_keras`: see `FasterRCNNResnetKerasFeatureExtractor` (conv4 ends at block 36)."""

  def __init__(self, is_training, first_stage_features_stride=16, batch_norm_trainable=False,
               weight_decay=0.0):
    super().__init__(is_training=is_training, resnet_v1_base_model=resnet_v1.resnet_v1_152,
                     resnet_v1_base_model_name='resnet_v1_152',
                     first_stage_features_stride=first_stage_features_stride,
                     batch_norm_trainable=batch_norm_trainable, weight_decay=weight_decay)
