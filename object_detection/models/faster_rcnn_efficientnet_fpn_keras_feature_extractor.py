"""EfficientNet-B0/B1/B2 FPN extractors (`faster_rcnn_efficientnet_b{0,1,2}_fpn_keras`; project extension).

The TF OD API has no EfficientNet Faster R-CNN extractor. These extractors put this project's backbones
under the TF OD API's FPN: `BackboneFpnKerasFeatureExtractor` (the shared base class, also used by the
EfficientNet-Lite0 and MobileNet FPN extractors) builds the proposal model, the FPN top-down maps, the
coarse levels and the FC box classifier with the same functions as the TF OD API's ResNet-v1 FPN
(`faster_rcnn_resnet_v1_fpn_keras_feature_extractor`), so they feed the same heads, take the same
constructor arguments (`conv_hyperparams` is required), and their checkpoints have the same layout:

  proposal model: preprocessed float32 [B, H, W, 3] -> zero-padded to multiples of 32 ->
    `classification_backbone` (levels 2..5, strides 4..32) -> FPN -> list of float32
    [B, H' / 2**l, W' / 2**l, additional_layer_depth] for l = fpn_min_level..fpn_max_level, finest first.
  box classifier: float32 [N, h, w, C] -> float32 [N, 1, 1, 1024].

B0..B2: `classification_backbone` is `tf_keras.applications.EfficientNetB{0,1,2}` (weights=None,
include_top=False) cut at its level outputs, with the application's layer names, so Keras ImageNet `.h5`
files (`efficientnetb0_notop.h5`, ...) load by layer name (`load_weights`, docs/pretrained.md):
  level 2 = last `block2*` layer (24 channels), 3 = last `block3*` (40 / 40 / 48), 4 = last `block5*`
  (112 / 112 / 120), 5 = `top_activation` (1280 / 1280 / 1408).

Pixels: the application holds its own Rescaling (1/255) and Normalization layers, so `preprocess` passes
[0, 255] RGB through; the Normalization layer is set to the ImageNet mean / std (what the Keras ImageNet
weights expect: see tf_keras `efficientnet.py` and TF issue 49930) and excluded from `.h5` loading.

Batch norm of the backbone: with `batch_norm_trainable and is_training` it follows the call's
`training`; otherwise each batch norm layer gets `trainable=False` (tf_keras: inference mode, and gamma /
beta fixed too, unlike the TF OD API's FreezableBatchNorm which fixes only the statistics; the Keras
applications take no layer override). The FPN / coarse / box classifier batch norms follow the TF OD
API's rule (frozen unless `batch_norm_trainable`).

`override_base_feature_extractor_hyperparams`: the regularizer of `conv_hyperparams` is added on every
conv kernel of the backbone (its initializers, batch norm settings and activations stay those of the
pretrained network). Otherwise the backbone is not regularized.
"""

import abc
import contextlib

import numpy as np
import tensorflow as tf
import tf_keras

from object_detection.meta_architectures import faster_rcnn_feature_extractor
from object_detection.models import faster_rcnn_resnet_v1_fpn_keras_feature_extractor as resnet_fpn
from object_detection.utils import keras_weights

IMAGENET_MEAN_RGB = [0.485, 0.456, 0.406]
IMAGENET_STDDEV_RGB = [0.229, 0.224, 0.225]

# Variables of these names are conv kernels (Conv2D, DepthwiseConv2D, SeparableConv2D).
_KERNEL_ATTRIBUTES = ('kernel', 'depthwise_kernel', 'pointwise_kernel')


def _scope(name):
  return tf.name_scope(name) if name else contextlib.nullcontext()


def freeze_batch_norm(model):
  """Sets `trainable=False` on every BatchNormalization layer inside `model` (inference mode)."""
  for layer in model.submodules:
    if isinstance(layer, tf_keras.layers.BatchNormalization):
      layer.trainable = False


def add_kernel_regularization(model, regularizer):
  """Adds `regularizer(kernel)` to `model.losses` for every conv kernel inside `model`.

  Args:
    model: tf_keras.Model, already built.
    regularizer: a Keras regularizer (callable on a variable) or None (nothing is added).

  Returns:
    int, the number of kernels regularized.
  """
  if regularizer is None:
    return 0
  kernels = []
  for layer in model.submodules:
    for attribute in _KERNEL_ATTRIBUTES:
      variable = getattr(layer, attribute, None)
      if isinstance(variable, tf.Variable) and all(variable is not k for k in kernels):
        kernels.append(variable)
  for kernel in kernels:
    model.add_loss(lambda kernel=kernel: regularizer(kernel))
  return len(kernels)


def last_layer_with_prefix(app, prefix):
  """Name of the last layer of `app` whose name starts with `prefix`; ValueError if there is none."""
  names = [layer.name for layer in app.layers if layer.name.startswith(prefix)]
  if not names:
    raise ValueError('%s has no layer named %s*.' % (app.name, prefix))
  return names[-1]


def multi_level_model(app, level_layer_names, name):
  """A functional model sharing `app`'s layers (and names): input -> [level 2, 3, 4, 5 outputs].

  Args:
    app: functional tf_keras.Model (a Keras application).
    level_layer_names: list of the 4 layer names whose outputs are levels 2..5.
    name: model name.
  """
  return tf_keras.Model(inputs=app.inputs,
                        outputs=[app.get_layer(layer_name).output for layer_name in level_layer_names],
                        name=name)


class BackboneFpnKerasFeatureExtractor(
    faster_rcnn_feature_extractor.FasterRCNNKerasFeatureExtractor, metaclass=abc.ABCMeta):
  """A multi-level backbone under the TF OD API ResNet-v1 FPN's layers (project FPN extractors).

  Subclasses set `EXTRACTOR_TYPE` (the `feature_extractor.type`) and implement `_build_backbone()`
  (-> tf_keras.Model: float32 [B, H, W, 3] -> list of the level 2..5 maps) and `preprocess`.

  Args (those of the TF OD API's FasterRCNNResnet50FpnKerasFeatureExtractor):
    is_training: bool.
    first_stage_features_stride: 8 or 16 (checked; the FPN levels set the strides).
    batch_norm_trainable: bool.
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams` (`feature_extractor.conv_hyperparams`),
      required.
    weight_decay: float, unused (interface of the TF OD API).
    fpn_min_level: int in [2, 5].
    fpn_max_level: int >= fpn_min_level.
    additional_layer_depth: int, channels of the FPN levels.
    override_base_feature_extractor_hyperparams: bool, regularize the backbone's conv kernels with
      `conv_hyperparams`' regularizer.

  Raises:
    ValueError: `conv_hyperparams` is None, bad stride or FPN levels (names the config field).
  """

  EXTRACTOR_TYPE = None

  def __init__(self, is_training, first_stage_features_stride=16, batch_norm_trainable=True,
               conv_hyperparams=None, weight_decay=0.0, fpn_min_level=2, fpn_max_level=6,
               additional_layer_depth=256, override_base_feature_extractor_hyperparams=False):
    resnet_fpn.check_fpn_arguments(self.EXTRACTOR_TYPE, conv_hyperparams, first_stage_features_stride,
                                   fpn_min_level, fpn_max_level)
    super().__init__(is_training, first_stage_features_stride, batch_norm_trainable, weight_decay)
    self._conv_hyperparams = conv_hyperparams
    self._fpn_min_level = fpn_min_level
    self._fpn_max_level = fpn_max_level
    self._additional_layer_depth = additional_layer_depth
    self._freeze_batchnorm = not batch_norm_trainable
    self._override_base_feature_extractor_hyperparams = override_base_feature_extractor_hyperparams
    self.classification_backbone = None

  @abc.abstractmethod
  def _build_backbone(self):
    """Returns a new tf_keras.Model: float32 [B, H, W, 3] -> [level 2, 3, 4, 5 maps]."""

  def _backbone(self):
    # Built once, so weights loaded before the first model call land in the model the
    # meta-architecture uses.
    if self.classification_backbone is None:
      backbone = self._build_backbone()
      if not self._train_batch_norm:
        freeze_batch_norm(backbone)
      if self._override_base_feature_extractor_hyperparams:
        add_kernel_regularization(backbone, self._conv_hyperparams.params()['kernel_regularizer'])
      self.classification_backbone = backbone
    return self.classification_backbone

  def get_proposal_feature_extractor_model(self, name=None):
    """Returns the proposal model (see the module docstring); `name` scopes op names only."""
    backbone = self._backbone()
    with _scope(name):
      fpn_features_generator, coarse_feature_layers, base_fpn_max_level = resnet_fpn.build_fpn_layers(
          self._conv_hyperparams, self._is_training, self._freeze_batchnorm, self._fpn_min_level,
          self._fpn_max_level, self._additional_layer_depth)
      return resnet_fpn.ResnetFPN(backbone, fpn_features_generator, coarse_feature_layers,
                                  pad_to_multiple=32, fpn_min_level=self._fpn_min_level,
                                  resnet_block_names=list(resnet_fpn.BACKBONE_BLOCK_NAMES),
                                  base_fpn_max_level=base_fpn_max_level)

  def get_box_classifier_feature_extractor_model(self, name=None):
    """Returns the FC box classifier: float32 [N, h, w, C] -> float32 [N, 1, 1, 1024]."""
    with _scope(name):
      return resnet_fpn.build_fpn_box_classifier(self._conv_hyperparams, self._is_training,
                                                 self._freeze_batchnorm)


class KerasApplicationFpnFeatureExtractor(BackboneFpnKerasFeatureExtractor):
  """A `BackboneFpnKerasFeatureExtractor` over a Keras application: `.h5` ImageNet files load by name."""

  # Layer names never loaded from `.h5` files (set by `_build_backbone`).
  _weight_load_exclude = ()

  def load_weights(self, path):
    """Loads a Keras ImageNet weight file (`.h5` / `.weights.h5`) into `classification_backbone`.

    Builds the backbone if no model was built yet (the proposal model then reuses it).

    Returns:
      keras_weights.LoadReport.

    Raises:
      ValueError: unreadable file, or no layer fits (names the file and this extractor).
    """
    backbone = self._backbone()
    return keras_weights.load_weights(backbone, path, self.EXTRACTOR_TYPE,
                                      exclude=self._weight_load_exclude)


def _set_imagenet_normalization(app):
  """Sets the application's Normalization layers to the ImageNet mean / variance (input in [0, 1]).

  Returns the names of the layers set (to exclude them from `.h5` loading).
  """
  layers = [layer for layer in app.layers if isinstance(layer, tf_keras.layers.Normalization)]
  for layer in layers:
    values = [np.array(IMAGENET_MEAN_RGB, np.float32),
              np.square(np.array(IMAGENET_STDDEV_RGB, np.float32)),
              np.array(0, np.int64)]
    layer.set_weights(values[:len(layer.get_weights())])
  return tuple(layer.name for layer in layers)


_APPLICATIONS = {
    'b0': tf_keras.applications.EfficientNetB0,
    'b1': tf_keras.applications.EfficientNetB1,
    'b2': tf_keras.applications.EfficientNetB2,
}


class FasterRCNNEfficientNetFpnKerasFeatureExtractor(KerasApplicationFpnFeatureExtractor):
  """EfficientNet-B{0,1,2} FPN base; subclasses set `MODEL_ID` and `EXTRACTOR_TYPE`."""

  MODEL_ID = None

  def preprocess(self, resized_inputs):
    """float32 [B, H, W, 3] RGB in [0, 255], returned as is (the backbone rescales / normalizes)."""
    return resized_inputs

  def _build_backbone(self):
    app = _APPLICATIONS[self.MODEL_ID](include_top=False, weights=None, input_shape=(None, None, 3))
    self._weight_load_exclude = _set_imagenet_normalization(app)
    names = [last_layer_with_prefix(app, 'block2'), last_layer_with_prefix(app, 'block3'),
             last_layer_with_prefix(app, 'block5'), 'top_activation']
    return multi_level_model(app, names, name='efficientnet%s' % self.MODEL_ID)


class FasterRCNNEfficientNetB0FpnKerasFeatureExtractor(FasterRCNNEfficientNetFpnKerasFeatureExtractor):
  """`faster_rcnn_efficientnet_b0_fpn_keras`; arguments as `BackboneFpnKerasFeatureExtractor`."""
  MODEL_ID = 'b0'
  EXTRACTOR_TYPE = 'faster_rcnn_efficientnet_b0_fpn_keras'


class FasterRCNNEfficientNetB1FpnKerasFeatureExtractor(FasterRCNNEfficientNetFpnKerasFeatureExtractor):
  """`faster_rcnn_efficientnet_b1_fpn_keras`; arguments as `BackboneFpnKerasFeatureExtractor`."""
  MODEL_ID = 'b1'
  EXTRACTOR_TYPE = 'faster_rcnn_efficientnet_b1_fpn_keras'


class FasterRCNNEfficientNetB2FpnKerasFeatureExtractor(FasterRCNNEfficientNetFpnKerasFeatureExtractor):
  """`faster_rcnn_efficientnet_b2_fpn_keras`; arguments as `BackboneFpnKerasFeatureExtractor`."""
  MODEL_ID = 'b2'
  EXTRACTOR_TYPE = 'faster_rcnn_efficientnet_b2_fpn_keras'
