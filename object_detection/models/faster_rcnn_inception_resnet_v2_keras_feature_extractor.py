"""Inception-ResNet-v2 feature extractor (`faster_rcnn_inception_resnet_v2_keras`).

As the TF OD API's `FasterRCNNInceptionResnetV2KerasFeatureExtractor` (Szegedy et al. 2016,
"Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning"):
  * first stage (RPN features): the network up to the 20th Inception-ResNet-B block (`block17_20_ac`),
    stride 16, 1088 channels, level '4';
  * box classifier (`box_classifier_layers`): `mixed_7a`, the ten Inception-ResNet-C blocks and
    `conv_7b` applied to each ROI crop (1536 channels; the TF OD API configs crop 17x17, no max-pool).

The layers are those of `tf_keras.applications.InceptionResNetV2` (weights=None, include_top=False),
rebuilt with every 'valid' convolution / pooling turned into 'same', which is the TF OD API's
`align_feature_maps=True`: the feature map is then exactly ceil(H / 16) x ceil(W / 16), so anchors line
up with pixels. Weight shapes do not change, so the Keras ImageNet file
`inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5` loads in layer order (`load_weights`;
most layer names are auto-generated, so names cannot be matched).
The Keras application cannot be split at an inner layer directly, so its config is cut in two
(`_split_config`) and each half rebuilt with `tf_keras.Model.from_config`.

Pixel normalization: x / 127.5 - 1 ([-1, 1]), as the TF OD API and Keras' `preprocess_input`.
`first_stage_features_stride` must be 16 (8 would need atrous blocks the Keras model does not have).
"""

import copy

import tensorflow as tf
import tf_keras
from tf_keras.src.applications import inception_resnet_v2 as keras_irv2

from object_detection.models import faster_rcnn_efficientnet_fpn_keras_feature_extractor as fpn_fe
from object_detection.utils import keras_weights

SPLIT_LAYER = 'block17_20_ac'
FIRST_STAGE_DEPTH = 1088
_CUSTOM_OBJECTS = {'CustomScaleLayer': keras_irv2.CustomScaleLayer}


def _same_padding(layer_config):
  if layer_config['config'].get('padding') == 'valid':
    layer_config['config']['padding'] = 'same'
  return layer_config


def _split_config(app_config, split_layer):
  """Cuts a functional model config at `split_layer` -> (first config, second config).

  The second config's input is an InputLayer named `split_layer`, so the inbound references of the
  layers after the cut resolve to it unchanged.
  """
  layers = [_same_padding(copy.deepcopy(l)) for l in app_config['layers']]
  names = [l['name'] for l in layers]
  cut = names.index(split_layer)
  first = dict(app_config, name='inception_resnet_v2_first_stage', layers=layers[:cut + 1],
               output_layers=[[split_layer, 0, 0]])
  depth = FIRST_STAGE_DEPTH
  second_input = {'class_name': 'InputLayer', 'name': split_layer, 'inbound_nodes': [],
                  'config': {'batch_input_shape': (None, None, None, depth), 'dtype': 'float32',
                             'sparse': False, 'ragged': False, 'name': split_layer}}
  second = dict(app_config, name='inception_resnet_v2_box_classifier',
                layers=[second_input] + layers[cut + 1:], input_layers=[[split_layer, 0, 0]])
  return first, second


def preprocess_minus_one_to_one(images):
  """float32 [B, H, W, 3] 0..255 -> float32 [-1, 1]."""
  return tf.cast(images, tf.float32) / 127.5 - 1.0


class _SingleLevel(tf_keras.Model):
  """Wraps the first stage so that it returns {'4': features}, as the registry contract asks."""

  def __init__(self, first_stage, **kwargs):
    super().__init__(**kwargs)
    self.first_stage = first_stage
    self.output_specs = {'4': tf.TensorShape([None, None, None, FIRST_STAGE_DEPTH])}

  def call(self, inputs, training=None):
    return {'4': self.first_stage(inputs, training=training)}


class InceptionResnetV2FeatureExtractor(object):
  """See module docstring; attributes follow feature_extractor_registry's interface."""

  is_fpn = False
  type_name = 'faster_rcnn_inception_resnet_v2_keras'

  def __init__(self, feature_extractor_config, is_training, first_stage_features_stride=16,
               batch_norm_trainable=False, conv_hyperparams=None, **unused_kwargs):
    del feature_extractor_config, is_training, conv_hyperparams
    if first_stage_features_stride != 16:
      raise ValueError('faster_rcnn.first_stage_features_stride must be 16 for '
                       'faster_rcnn_inception_resnet_v2_keras, got %d.' % first_stage_features_stride)
    app = keras_irv2.InceptionResNetV2(include_top=False, weights=None, input_shape=(None, None, 3))
    first_config, second_config = _split_config(app.get_config(), SPLIT_LAYER)
    self._first_stage = tf_keras.Model.from_config(first_config, custom_objects=_CUSTOM_OBJECTS)
    self.box_classifier_layers = tf_keras.Model.from_config(second_config,
                                                            custom_objects=_CUSTOM_OBJECTS)
    del app
    if not batch_norm_trainable:
      fpn_fe.freeze_batch_norm(self._first_stage)
      fpn_fe.freeze_batch_norm(self.box_classifier_layers)
    self.backbone = _SingleLevel(self._first_stage, name='inception_resnet_v2')
    self.levels = ['4']

  def preprocess(self, images):
    return preprocess_minus_one_to_one(images)

  def classification_checkpoint_objects(self):
    return {'first_stage': self._first_stage, 'box_classifier': self.box_classifier_layers}

  def load_weights(self, path):
    """Loads a Keras ImageNet `.h5` file into both halves, in layer order.

    Most layers of the Keras InceptionResNetV2 are auto-named (`conv2d_17`, numbered per process), so
    names cannot be matched; the halves are loaded as one network in topological order, which is the
    order of the Keras application and of its weight files.

    Returns:
      keras_weights.LoadReport.
    Raises:
      ValueError: naming the file when no layer matches.
    """
    both = _Halves([self._first_stage, self.box_classifier_layers])
    return keras_weights.load_weights(both, path, self.type_name, by_order=True)


class _Halves(object):
  """Duck-types `model.layers` over the two halves, for keras_weights.load_weights."""

  def __init__(self, models):
    self.layers = [layer for m in models for layer in m.layers]


def build(*args, **kwargs):
  return InceptionResnetV2FeatureExtractor(*args, **kwargs)
