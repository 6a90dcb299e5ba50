"""EfficientNet + FPN feature extractors (`faster_rcnn_efficientnet_{b0,b1,b2,lite0}_fpn_keras`).

B0..B2: `tf_keras.applications.EfficientNetB{0,1,2}` (weights=None, include_top=False), as the TF OD API's
TF2 extractors wrap `tf.keras.applications`, so the Keras ImageNet `.h5` files users already have load by
layer name (`load_weights`, docs/pretrained.md). Lite0: the Model Garden EfficientNet configured as Lite0
(object_detection.models.efficientnet_lite), with offline ImageNet weights
(tools/convert_efficientnet_lite0.py).

Backbone levels (stride 2**level) fed to the Model Garden FPN (`official.vision.modeling.decoders.FPN`,
Lin et al. 2017), which outputs levels fpn_min_level..fpn_max_level (default 2..6), all fpn_depth (256)
channels, float32 [B, ceil(H / 2**l), ceil(W / 2**l), 256]:
  B0/B1/B2: '2' = last `block2*` layer (24 ch), '3' = last `block3*` (40/40/48), '4' = last `block5*`
  (112/112/120), '5' = `top_activation` (1280/1280/1408).
  Lite0: '2' 24, '3' 40, '4' 112, '5' 320 channels.

Pixel normalization (`preprocess`): B0..B2 take raw 0..255 pixels -- the Keras EfficientNet has its
Rescaling + Normalization layers inside; the Normalization layer is set to the ImageNet mean/std
(what the Keras ImageNet weights expect, see tf_keras efficientnet.py and TF issue 49930) and excluded from
`.h5` loading. Lite0: ImageNet mean/std (as its PyTorch source).

`batch_norm_trainable=False` freezes every BatchNormalization layer of the backbone (trainable=False ->
inference mode). The FPN's BatchNorm always trains: it starts untrained, and freezing it at its initial
statistics leaves the FPN unnormalized (first-step losses 8x higher from ImageNet weights in trials).
The box classifier is the TF OD API FPN one (flatten + 2 x FC 1024).
"""

import numpy as np
import tensorflow as tf
import tf_keras
from official.vision.modeling import decoders

from object_detection.models import efficientnet_lite
from object_detection.utils import keras_weights

IMAGENET_MEAN_RGB = [0.485, 0.456, 0.406]
IMAGENET_STDDEV_RGB = [0.229, 0.224, 0.225]


class _FPNModel(tf_keras.Model):
  """Backbone followed by FPN; output dict keyed by level string."""

  def __init__(self, backbone, fpn, fpn_input_levels, **kwargs):
    super().__init__(**kwargs)
    self.feature_backbone = backbone
    self.fpn = fpn
    self._fpn_input_levels = list(fpn_input_levels)
    self.output_specs = dict(fpn.output_specs)

  def call(self, inputs, training=None):
    features = self.feature_backbone(inputs, training=training)
    return self.fpn({l: features[l] for l in self._fpn_input_levels}, training=training)


def box_classifier_fc(depth=1024, regularizer=None, name='box_classifier_fc'):
  return tf_keras.Sequential([
      tf_keras.layers.Flatten(),
      tf_keras.layers.Dense(depth, activation='relu', kernel_regularizer=regularizer),
      tf_keras.layers.Dense(depth, activation='relu', kernel_regularizer=regularizer),
      tf_keras.layers.Reshape((1, 1, depth)),
  ], name=name)


def freeze_batch_norm(model):
  for layer in model.submodules:
    if isinstance(layer, tf_keras.layers.BatchNormalization):
      layer.trainable = False


def multi_level_model(app, level_layer_names, name):
  """Functional model sharing `app`'s layers with outputs {level: app.get_layer(name).output}.

  Layer names are kept, so Keras `.h5` files load by name. Sets `output_specs` {level: TensorShape}.
  """
  outputs = {level: app.get_layer(n).output for level, n in level_layer_names.items()}
  model = tf_keras.Model(inputs=app.inputs, outputs=outputs, name=name)
  model.output_specs = {level: t.shape for level, t in outputs.items()}
  return model


def last_layer_with_prefix(app, prefix):
  names = [l.name for l in app.layers if l.name.startswith(prefix)]
  if not names:
    raise ValueError('%s has no layer named %s*' % (app.name, prefix))
  return names[-1]


def regularizer_from_hyperparams(conv_hyperparams):
  if conv_hyperparams is None:
    return None
  from object_detection.builders import hyperparams_builder  # pylint: disable=g-import-not-at-top
  return hyperparams_builder.KerasLayerHyperparams(conv_hyperparams).params().get('kernel_regularizer')


class KerasFPNFeatureExtractor(object):
  """Backbone (multi-level tf_keras.Model) + Model Garden FPN. See module docstring / registry."""

  is_fpn = True

  def __init__(self, type_name, multi_level_backbone, preprocess_fn, batch_norm_trainable,
               conv_hyperparams=None, fpn_min_level=2, fpn_max_level=6, fpn_depth=256,
               weight_load_exclude=()):
    if not 2 <= fpn_min_level <= 5 or fpn_max_level < max(fpn_min_level, 5):
      raise ValueError('feature_extractor.fpn: need 2 <= min_level <= 5 and max_level >= 5, got %d..%d.'
                       % (fpn_min_level, fpn_max_level))
    self.type_name = type_name
    regularizer = regularizer_from_hyperparams(conv_hyperparams)
    self._multi_level = multi_level_backbone
    if not batch_norm_trainable:
      freeze_batch_norm(self._multi_level)
    input_specs = {k: v for k, v in self._multi_level.output_specs.items() if k in ('2', '3', '4', '5')}
    fpn = decoders.FPN(input_specs=input_specs, min_level=fpn_min_level, max_level=fpn_max_level,
                       num_filters=fpn_depth, kernel_regularizer=regularizer)
    self.backbone = _FPNModel(self._multi_level, fpn, sorted(input_specs), name=type_name.replace('faster_rcnn_', ''))
    self.levels = [str(l) for l in range(fpn_min_level, fpn_max_level + 1)]
    self.box_classifier_layers = box_classifier_fc(regularizer=regularizer)
    self._preprocess_fn = preprocess_fn
    self._weight_load_exclude = tuple(weight_load_exclude)

  @property
  def classification_backbone(self):
    """The multi-level backbone (without FPN): call -> {'2'..'5': float32 [B, h, w, C]}."""
    return self._multi_level

  def preprocess(self, images):
    """float32 [B, H, W, 3] RGB 0..255 -> float32 [B, H, W, 3] as the backbone expects."""
    return self._preprocess_fn(tf.cast(images, tf.float32))

  def classification_checkpoint_objects(self):
    return {'backbone': self._multi_level}

  def load_weights(self, path):
    """Loads a Keras ImageNet `.h5` / `.weights.h5` file into the backbone; returns a LoadReport.

    Raises ValueError naming the file and this extractor if nothing matches."""
    return keras_weights.load_weights(self._multi_level, path, self.type_name,
                                      exclude=self._weight_load_exclude)


def _identity(images):
  return images


def _set_imagenet_normalization(app):
  """Sets the Keras EfficientNet input Normalization layer to ImageNet mean / variance (on 0..1 input)."""
  norms = [l for l in app.layers if isinstance(l, tf_keras.layers.Normalization)]
  for layer in norms:
    layer.set_weights([np.array(IMAGENET_MEAN_RGB, np.float32),
                       np.square(np.array(IMAGENET_STDDEV_RGB, np.float32)),
                       np.array(0, np.int64)][:len(layer.get_weights())])
  return [l.name for l in norms]


_APPS = {
    'b0': tf_keras.applications.EfficientNetB0,
    'b1': tf_keras.applications.EfficientNetB1,
    'b2': tf_keras.applications.EfficientNetB2,
}


def _efficientnet(model_id, feature_extractor_config, is_training, first_stage_features_stride=16,
                  batch_norm_trainable=False, conv_hyperparams=None, fpn_min_level=2, fpn_max_level=6,
                  fpn_depth=256, **unused_kwargs):
  del feature_extractor_config, is_training, first_stage_features_stride
  type_name = 'faster_rcnn_efficientnet_%s_fpn_keras' % model_id
  app = _APPS[model_id](include_top=False, weights=None, input_shape=(None, None, 3))
  excluded = _set_imagenet_normalization(app)
  names = {'2': last_layer_with_prefix(app, 'block2'), '3': last_layer_with_prefix(app, 'block3'),
           '4': last_layer_with_prefix(app, 'block5'), '5': 'top_activation'}
  backbone = multi_level_model(app, names, name='efficientnet%s' % model_id)
  return KerasFPNFeatureExtractor(type_name, backbone, _identity, batch_norm_trainable, conv_hyperparams,
                                  fpn_min_level, fpn_max_level, fpn_depth, weight_load_exclude=excluded)


def b0(*args, **kwargs):
  return _efficientnet('b0', *args, **kwargs)


def b1(*args, **kwargs):
  return _efficientnet('b1', *args, **kwargs)


def b2(*args, **kwargs):
  return _efficientnet('b2', *args, **kwargs)


def lite0(*args, **kwargs):
  # pylint: disable=g-import-not-at-top
  from object_detection.models import faster_rcnn_efficientnet_lite0_fpn_keras_feature_extractor as l0
  return l0.build(*args, **kwargs)
