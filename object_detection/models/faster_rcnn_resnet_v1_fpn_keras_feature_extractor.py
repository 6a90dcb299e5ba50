"""ResNet-v1 FPN feature extractors (`faster_rcnn_resnet{50,101,152}_fpn_keras`).

Matches the TF OD API's `models/faster_rcnn_resnet_v1_fpn_keras_feature_extractor.py` (classes
`FasterRCNNResnetV1FpnKerasFeatureExtractor` and `FasterRCNNResnet{50,101,152}FpnKerasFeatureExtractor`,
same constructor arguments and defaults), used by the TF2 zoo's
`faster_rcnn_resnet{50,101,152}_v1_fpn_640x640_coco17_tpu-8` configs (Lin et al. 2017, Feature Pyramid
Networks, https://arxiv.org/abs/1612.03144):

  * proposal model (`_ResnetFPN`): preprocessed float32 [B, H, W, 3] -> zero-padded at the bottom / right
    to multiples of 32 -> `classification_backbone` (the Keras ResNet-v1 of `keras_models/resnet_v1.py`
    cut at `conv{2,3,4,5}_block*_out`, levels 2..5) -> `KerasFpnTopDownFeatureMaps` on levels
    fpn_min_level..min(fpn_max_level, 5) -> one stride-2 3x3 conv / batch norm / activation per level above
    5 (`bottom_up_block5`, ...) -> list of fpn_max_level - fpn_min_level + 1 float32 maps
    [B, H' / 2**l, W' / 2**l, additional_layer_depth], l = fpn_min_level..fpn_max_level, finest first
    (H', W': H, W rounded up to multiples of 32).
  * box classifier model: float32 [N, h, w, C] ROI crops -> Flatten -> Dense(1024, relu) -> batch norm
    (from conv_hyperparams) -> Dense(1024, relu) -> float32 [N, 1, 1, 1024].

The layers sit under the TF OD API's attribute names (`classification_backbone`,
`fpn_features_generator`, `coarse_feature_layers`; a Sequential box classifier), so a TF OD API
detection checkpoint restores key for key, and `tf.train.Checkpoint(feature_extractor=
classification_backbone)` is what `fine_tune_checkpoint_type: "classification"` restores.

The FPN builders here (`build_fpn_layers`, `build_fpn_box_classifier`, `_ResnetFPN`) are also what this
project's EfficientNet / MobileNet FPN extractors use, so every FPN extractor feeds the same heads.

Batch norm: the ResNet's follows `batch_norm_trainable and is_training`; the FPN's, the coarse levels'
and the box classifier's are frozen (inference mode) unless `batch_norm_trainable` (TF OD API
`freeze_batchnorm = not batch_norm_trainable`), and follow the call's `training` otherwise.
"""

import contextlib
import math

import tensorflow as tf
import tf_keras

from object_detection.meta_architectures import faster_rcnn_feature_extractor
from object_detection.models import feature_map_generators
from object_detection.utils import keras_weights

# Layers of the Keras ResNet-v1 whose outputs are levels 2..5 (strides 4, 8, 16, 32).
_RESNET_MODEL_OUTPUT_LAYERS = {
    'resnet_v1_50': ['conv2_block3_out', 'conv3_block4_out', 'conv4_block6_out', 'conv5_block3_out'],
    'resnet_v1_101': ['conv2_block3_out', 'conv3_block4_out', 'conv4_block23_out', 'conv5_block3_out'],
    'resnet_v1_152': ['conv2_block3_out', 'conv3_block8_out', 'conv4_block36_out', 'conv5_block3_out'],
}

# Names the FPN generator gives the backbone outputs of levels 2..5 ('block{level - 1}').
BACKBONE_BLOCK_NAMES = ['block1', 'block2', 'block3', 'block4']

# Channel means subtracted by `preprocess` (RGB, 0..255 units).
_CHANNEL_MEANS = [123.68, 116.779, 103.939]


def _scope(name):
  return tf.name_scope(name) if name else contextlib.nullcontext()


def pad_to_multiple(tensor, multiple):
  """Zero-pads H and W at the bottom / right up to multiples of `multiple` (TF OD API `ops.pad_to_multiple`).

  Args:
    tensor: float tensor [B, H, W, C] (static or dynamic H, W).
    multiple: int >= 1.

  Returns:
    Tensor [B, ceil(H / multiple) * multiple, ceil(W / multiple) * multiple, C], same dtype; static
    sizes stay static.
  """
  if multiple == 1:
    return tensor
  padding = []
  for axis in (1, 2):
    size = tensor.shape[axis]
    if size is None:
      size = tf.shape(tensor)[axis]
      padding.append((-size) % multiple)
    else:
      padding.append(int(math.ceil(size / multiple) * multiple) - size)
  return tf.pad(tensor, [[0, 0], [0, padding[0]], [0, padding[1]], [0, 0]])


class _ResnetFPN(tf_keras.layers.Layer):
  """Backbone + FPN top-down maps + coarse levels (TF OD API `_ResnetFPN`); the proposal model.

  Args:
    backbone_classifier: tf_keras.Model, float32 [B, H, W, 3] -> list of the level 2..5 maps.
    fpn_features_generator: `feature_map_generators.KerasFpnTopDownFeatureMaps`.
    coarse_feature_layers: list (one per level above 5) of lists of layers.
    pad_to_multiple: int, inputs are zero-padded to multiples of it first.
    fpn_min_level: int in [2, 5], finest level.
    resnet_block_names: names of the backbone outputs, `BACKBONE_BLOCK_NAMES`.
    base_fpn_max_level: int, min(fpn_max_level, 5).

  Call: float32 [B, H, W, 3] -> list of float32 [B, H' / 2**l, W' / 2**l, depth], finest first (see
  the module docstring).
  """

  def __init__(self, backbone_classifier, fpn_features_generator, coarse_feature_layers,
               pad_to_multiple, fpn_min_level, resnet_block_names, base_fpn_max_level):
    super().__init__()
    # Attribute names are the TF OD API's: they are the checkpoint keys of the sub-models.
    self.classification_backbone = backbone_classifier
    self.fpn_features_generator = fpn_features_generator
    self.coarse_feature_layers = coarse_feature_layers
    self.pad_to_multiple = pad_to_multiple
    self._fpn_min_level = fpn_min_level
    self._resnet_block_names = resnet_block_names
    self._base_fpn_max_level = base_fpn_max_level

  def call(self, inputs):
    inputs = pad_to_multiple(inputs, self.pad_to_multiple)
    backbone_outputs = self.classification_backbone(inputs)
    by_block = dict(zip(self._resnet_block_names, backbone_outputs))
    levels = range(self._fpn_min_level, self._base_fpn_max_level + 1)
    blocks = ['block%d' % (level - 1) for level in levels]
    fpn_features = self.fpn_features_generator([(block, by_block[block]) for block in blocks])
    feature_maps = [fpn_features['top_down_' + block] for block in blocks]
    last_feature_map = feature_maps[-1]
    for layers in self.coarse_feature_layers:
      for layer in layers:
        last_feature_map = layer(last_feature_map)
      feature_maps.append(last_feature_map)
    return feature_maps


# Public name of `_ResnetFPN` for this project's FPN extractors (the layer is not ResNet-specific).
ResnetFPN = _ResnetFPN


def check_fpn_arguments(extractor_type, conv_hyperparams, first_stage_features_stride, fpn_min_level,
                        fpn_max_level):
  """Raises ValueError (naming the config field) for arguments no FPN extractor can build with.

  Args:
    extractor_type: str, `feature_extractor.type`, named in the messages.
    conv_hyperparams: `KerasLayerHyperparams` or None (None is an error: the FPN layers need it).
    first_stage_features_stride: must be 8 or 16 (as the TF OD API checks; the FPN ignores it).
    fpn_min_level, fpn_max_level: ints, need 2 <= fpn_min_level <= 5 and fpn_max_level >= fpn_min_level.
  """
  if conv_hyperparams is None:
    raise ValueError(
        'feature_extractor.conv_hyperparams is required for %s: it configures the FPN, coarse-level and '
        'box classifier layers (e.g. the TF2 zoo faster_rcnn_resnet50_v1_fpn config\'s block).'
        % extractor_type)
  if first_stage_features_stride not in (8, 16):
    raise ValueError('feature_extractor.first_stage_features_stride must be 8 or 16 for %s, got %r.'
                     % (extractor_type, first_stage_features_stride))
  if not 2 <= fpn_min_level <= 5 or fpn_max_level < fpn_min_level:
    raise ValueError('feature_extractor.fpn: %s needs 2 <= min_level <= 5 and max_level >= min_level, '
                     'got min_level %r, max_level %r.' % (extractor_type, fpn_min_level, fpn_max_level))


def build_fpn_layers(conv_hyperparams, is_training, freeze_batchnorm, fpn_min_level, fpn_max_level,
                     additional_layer_depth):
  """Builds the FPN top-down generator and the coarse levels as the TF OD API's ResNet-FPN does.

  Args:
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams`.
    is_training: bool.
    freeze_batchnorm: bool, batch norms fixed in inference mode.
    fpn_min_level, fpn_max_level: ints (see `check_fpn_arguments`).
    additional_layer_depth: int, channels of every FPN level.

  Returns:
    (fpn_features_generator: KerasFpnTopDownFeatureMaps named 'FeatureMaps' over levels
     fpn_min_level..min(fpn_max_level, 5),
     coarse_feature_layers: list of [Conv2D 3x3 stride 2 'bottom_up_block<i>_conv', batch norm
     'bottom_up_block<i>_batchnorm', activation 'bottom_up_block<i>'] for i = 5..fpn_max_level - 1,
     base_fpn_max_level: int).
  """
  base_fpn_max_level = min(fpn_max_level, 5)
  fpn_features_generator = feature_map_generators.KerasFpnTopDownFeatureMaps(
      num_levels=base_fpn_max_level + 1 - fpn_min_level,
      depth=additional_layer_depth,
      is_training=is_training,
      conv_hyperparams=conv_hyperparams,
      freeze_batchnorm=freeze_batchnorm,
      name='FeatureMaps')
  coarse_feature_layers = []
  for i in range(base_fpn_max_level, fpn_max_level):
    layer_name = 'bottom_up_block%d' % i
    coarse_feature_layers.append([
        tf_keras.layers.Conv2D(additional_layer_depth, [3, 3], padding='SAME', strides=2,
                               name=layer_name + '_conv', **conv_hyperparams.params()),
        conv_hyperparams.build_batch_norm(training=(is_training and not freeze_batchnorm),
                                          name=layer_name + '_batchnorm'),
        conv_hyperparams.build_activation_layer(name=layer_name),
    ])
  return fpn_features_generator, coarse_feature_layers, base_fpn_max_level


def build_fpn_box_classifier(conv_hyperparams, is_training, freeze_batchnorm):
  """The FPN box classifier Sequential: float32 [N, h, w, C] -> float32 [N, 1, 1, 1024].

  Flatten -> Dense(1024, relu) -> batch norm of `conv_hyperparams` (identity without one) ->
  Dense(1024, relu) -> Reshape((1, 1, 1024)). The Dense layers use Keras defaults (glorot uniform, zero
  bias, no regularizer), as in the TF OD API.
  """
  return tf_keras.models.Sequential([
      tf_keras.layers.Flatten(),
      tf_keras.layers.Dense(units=1024, activation='relu'),
      conv_hyperparams.build_batch_norm(training=(is_training and not freeze_batchnorm)),
      tf_keras.layers.Dense(units=1024, activation='relu'),
      tf_keras.layers.Reshape((1, 1, 1024)),
  ])


class FasterRCNNResnetV1FpnKerasFeatureExtractor(
    faster_rcnn_feature_extractor.FasterRCNNKerasFeatureExtractor):
  """ResNet-v1 FPN extractor (TF OD API class of the same name); see the module docstring.

  Args:
    is_training: bool.
    resnet_v1_base_model: `keras_models.resnet_v1.resnet_v1_{50,101,152}`.
    resnet_v1_base_model_name: 'resnet_v1_50', 'resnet_v1_101' or 'resnet_v1_152'.
    first_stage_features_stride: 8 or 16 (checked, otherwise unused: FPN levels set the strides).
    conv_hyperparams: `hyperparams_builder.KerasLayerHyperparams` of the FPN, coarse-level and box
      classifier layers (`feature_extractor.conv_hyperparams`); required.
    batch_norm_trainable: bool.
    pad_to_multiple: int, inputs padded to multiples of it (32 lets every level halve exactly).
    weight_decay: float, kept for the interface; unused (as in the TF OD API: the ResNet keeps its own
      L2 1e-4 unless overridden).
    fpn_min_level: int in [2, 5].
    fpn_max_level: int >= fpn_min_level; levels above 5 come from stride-2 convs.
    additional_layer_depth: int, channels of the FPN levels.
    override_base_feature_extractor_hyperparams: bool, build the ResNet's convs and batch norms from
      `conv_hyperparams` instead of its defaults.

  Raises:
    ValueError: `conv_hyperparams` is None, bad stride, or bad FPN levels (see `check_fpn_arguments`).
  """

  def __init__(self, is_training, resnet_v1_base_model, resnet_v1_base_model_name,
               first_stage_features_stride, conv_hyperparams, batch_norm_trainable=True,
               pad_to_multiple=32, weight_decay=0.0, fpn_min_level=2, fpn_max_level=6,
               additional_layer_depth=256, override_base_feature_extractor_hyperparams=False):
    extractor_type = 'faster_rcnn_%s_fpn_keras' % resnet_v1_base_model_name.replace('_v1_', '')
    check_fpn_arguments(extractor_type, conv_hyperparams, first_stage_features_stride, fpn_min_level,
                        fpn_max_level)
    super().__init__(is_training=is_training, first_stage_features_stride=first_stage_features_stride,
                     batch_norm_trainable=batch_norm_trainable, weight_decay=weight_decay)
    self._extractor_type = extractor_type
    self._resnet_v1_base_model = resnet_v1_base_model
    self._resnet_v1_base_model_name = resnet_v1_base_model_name
    self._conv_hyperparams = conv_hyperparams
    self._fpn_min_level = fpn_min_level
    self._fpn_max_level = fpn_max_level
    self._additional_layer_depth = additional_layer_depth
    self._freeze_batchnorm = not batch_norm_trainable
    self._pad_to_multiple = pad_to_multiple
    self._override_base_feature_extractor_hyperparams = override_base_feature_extractor_hyperparams
    self._resnet_block_names = list(BACKBONE_BLOCK_NAMES)
    self.classification_backbone = None
    self._fpn_features_generator = None
    self._coarse_feature_layers = []

  def preprocess(self, resized_inputs):
    """float32 [B, H, W, C] in [0, 255] -> minus the RGB means (123.68, 116.779, 103.939) when C == 3.

    Other channel counts are returned unchanged (as in the TF OD API).
    """
    if resized_inputs.shape.as_list()[3] == 3:
      return resized_inputs - [[_CHANNEL_MEANS]]
    return resized_inputs

  def get_proposal_feature_extractor_model(self, name=None):
    """Builds `classification_backbone` and returns the `_ResnetFPN` proposal model.

    Each call builds new layers (as in the TF OD API); the meta-architecture calls it once. `name` (e.g.
    'FirstStageFeatureExtractor') scopes op names only.
    """
    with _scope(name), tf.name_scope('ResnetV1FPN'):
      full_resnet = self._resnet_v1_base_model(
          batchnorm_training=self._train_batch_norm,
          conv_hyperparams=(self._conv_hyperparams
                            if self._override_base_feature_extractor_hyperparams else None),
          classes=None, weights=None, include_top=False)
      outputs = [full_resnet.get_layer(layer_name).output
                 for layer_name in _RESNET_MODEL_OUTPUT_LAYERS[self._resnet_v1_base_model_name]]
      self.classification_backbone = tf_keras.Model(inputs=full_resnet.inputs, outputs=outputs)
      (self._fpn_features_generator, self._coarse_feature_layers,
       self._base_fpn_max_level) = build_fpn_layers(
           self._conv_hyperparams, self._is_training, self._freeze_batchnorm, self._fpn_min_level,
           self._fpn_max_level, self._additional_layer_depth)
      return _ResnetFPN(self.classification_backbone, self._fpn_features_generator,
                        self._coarse_feature_layers, self._pad_to_multiple, self._fpn_min_level,
                        self._resnet_block_names, self._base_fpn_max_level)

  def get_box_classifier_feature_extractor_model(self, name=None):
    """Returns the FC box classifier (`build_fpn_box_classifier`): [N, h, w, C] -> [N, 1, 1, 1024]."""
    with _scope(name), tf.name_scope('ResnetV1FPN'):
      return build_fpn_box_classifier(self._conv_hyperparams, self._is_training, self._freeze_batchnorm)

  def load_weights(self, path):
    """Loads a Keras ImageNet ResNet `.h5` file into `classification_backbone` (project extension).

    As `faster_rcnn_resnet_keras_feature_extractor`'s loader: layers matched by name, every backbone
    layer loaded, each Keras conv bias folded into the following batch norm's moving mean (this ResNet's
    convs have no bias). The proposal model must have been built (the meta-architecture builds it on the
    first call), since each `get_proposal_feature_extractor_model` call builds a new backbone.

    Returns:
      keras_weights.LoadReport.

    Raises:
      ValueError: the proposal model was not built yet, or the file cannot be read or is not this
        ResNet (the message names the file); nothing is loaded then.
    """
    if self.classification_backbone is None:
      raise ValueError('%s.load_weights(%s): build the model first (call it once on an image batch), so '
                       'the weights land in the backbone it uses.' % (self._extractor_type, path))
    return keras_weights.load_weights(self.classification_backbone, path, self._extractor_type,
                                      fold_conv_bias=_batch_norm_after_conv, complete=True)


def _batch_norm_after_conv(conv_name):
  # The Keras ResNet names each conv `..._conv` and the batch norm right after it `..._bn`.
  if conv_name.endswith('_conv'):
    return conv_name[:-len('_conv')] + '_bn'
  return None


def _resnet_v1_model(model_name):
  # Imported when a ResNet extractor is built, so the project's FPN extractors that reuse this module's
  # builders do not depend on the ResNet module.
  from object_detection.models.keras_models import resnet_v1  # pylint: disable=g-import-not-at-top
  return getattr(resnet_v1, model_name)


class FasterRCNNResnet50FpnKerasFeatureExtractor(FasterRCNNResnetV1FpnKerasFeatureExtractor):
  """`faster_rcnn_resnet50_fpn_keras`: ResNet-50 v1 + FPN; arguments as the base class."""

  def __init__(self, is_training, first_stage_features_stride=16, batch_norm_trainable=True,
               conv_hyperparams=None, weight_decay=0.0, fpn_min_level=2, fpn_max_level=6,
               additional_layer_depth=256, override_base_feature_extractor_hyperparams=False):
    super().__init__(
        is_training=is_training, first_stage_features_stride=first_stage_features_stride,
        conv_hyperparams=conv_hyperparams, resnet_v1_base_model=_resnet_v1_model('resnet_v1_50'),
        resnet_v1_base_model_name='resnet_v1_50', batch_norm_trainable=batch_norm_trainable,
        weight_decay=weight_decay, fpn_min_level=fpn_min_level, fpn_max_level=fpn_max_level,
        additional_layer_depth=additional_layer_depth,
        override_base_feature_extractor_hyperparams=override_base_feature_extractor_hyperparams)


class FasterRCNNResnet101FpnKerasFeatureExtractor(FasterRCNNResnetV1FpnKerasFeatureExtractor):
  """`faster_rcnn_resnet101_fpn_keras`: ResNet-101 v1 + FPN; arguments as the base class."""

  def __init__(self, is_training, first_stage_features_stride=16, batch_norm_trainable=True,
               conv_hyperparams=None, weight_decay=0.0, fpn_min_level=2, fpn_max_level=6,
               additional_layer_depth=256, override_base_feature_extractor_hyperparams=False):
    super().__init__(
        is_training=is_training, first_stage_features_stride=first_stage_features_stride,
        conv_hyperparams=conv_hyperparams, resnet_v1_base_model=_resnet_v1_model('resnet_v1_101'),
        resnet_v1_base_model_name='resnet_v1_101', batch_norm_trainable=batch_norm_trainable,
        weight_decay=weight_decay, fpn_min_level=fpn_min_level, fpn_max_level=fpn_max_level,
        additional_layer_depth=additional_layer_depth,
        override_base_feature_extractor_hyperparams=override_base_feature_extractor_hyperparams)


class FasterRCNNResnet152FpnKerasFeatureExtractor(FasterRCNNResnetV1FpnKerasFeatureExtractor):
  """`faster_rcnn_resnet152_fpn_keras`: ResNet-152 v1 + FPN; arguments as the base class."""

  def __init__(self, is_training, first_stage_features_stride=16, batch_norm_trainable=True,
               conv_hyperparams=None, weight_decay=0.0, fpn_min_level=2, fpn_max_level=6,
               additional_layer_depth=256, override_base_feature_extractor_hyperparams=False):
    super().__init__(
        is_training=is_training, first_stage_features_stride=first_stage_features_stride,
        conv_hyperparams=conv_hyperparams, resnet_v1_base_model=_resnet_v1_model('resnet_v1_152'),
        resnet_v1_base_model_name='resnet_v1_152', batch_norm_trainable=batch_norm_trainable,
        weight_decay=weight_decay, fpn_min_level=fpn_min_level, fpn_max_level=fpn_max_level,
        additional_layer_depth=additional_layer_depth,
        override_base_feature_extractor_hyperparams=override_base_feature_extractor_hyperparams)
