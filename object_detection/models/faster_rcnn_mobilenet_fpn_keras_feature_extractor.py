"""MobileNet + FPN feature extractors (`faster_rcnn_mobilenet_v2_fpn_keras`,
`faster_rcnn_mobilenet_v3_small_fpn_keras`, `faster_rcnn_mobilenet_v3_large_fpn_keras`).

Backbones: `tf_keras.applications.MobileNetV2` / `MobileNetV3Small` / `MobileNetV3Large` (weights=None,
include_top=False, alpha=1.0 by default or `feature_extractor.depth_multiplier`; MobileNetV3 with
include_preprocessing=False), so the Keras ImageNet `.h5` files load by layer name (`load_weights`).
Levels (stride 2**level) fed to the Model Garden FPN (levels fpn_min_level..fpn_max_level, default 2..6,
depth 256, float32 [B, ceil(H / 2**l), ceil(W / 2**l), 256]):
  V2:        '2' block_2_add (24 ch), '3' block_5_add (32), '4' block_12_add (96), '5' out_relu (1280).
  V3 small:  '2' end of expanded_conv (16), '3' end of expanded_conv_2 (24), '4' end of expanded_conv_7
             (48), '5' last layer (576).
  V3 large:  '2' end of expanded_conv_2 (24), '3' end of expanded_conv_5 (40), '4' end of
             expanded_conv_11 (112), '5' last layer (960).
Pixel normalization: x / 127.5 - 1 ([-1, 1]), as `tf.keras.applications.mobilenet_v2.preprocess_input`
and the MobileNetV3 built-in preprocessing. `batch_norm_trainable=False` freezes BatchNorm.
"""

import tf_keras

from object_detection.models import faster_rcnn_efficientnet_fpn_keras_feature_extractor as fpn_fe


def preprocess_minus_one_to_one(images):
  """float32 0..255 -> float32 [-1, 1]."""
  return images / 127.5 - 1.0


def _depth_multiplier(feature_extractor_config):
  value = getattr(feature_extractor_config, 'depth_multiplier', 0.0) if feature_extractor_config else 0.0
  return value or 1.0


def _last_of_block(app, block):
  return fpn_fe.last_layer_with_prefix(app, block + '/')


def _build(version, feature_extractor_config, is_training, first_stage_features_stride=16,
           batch_norm_trainable=False, conv_hyperparams=None, fpn_min_level=2, fpn_max_level=6,
           fpn_depth=256, **unused_kwargs):
  del is_training, first_stage_features_stride
  alpha = _depth_multiplier(feature_extractor_config)
  type_name = 'faster_rcnn_mobilenet_%s_fpn_keras' % version
  if version == 'v2':
    app = tf_keras.applications.MobileNetV2(input_shape=(None, None, 3), alpha=alpha, include_top=False,
                                            weights=None)
    names = {'2': 'block_2_add', '3': 'block_5_add', '4': 'block_12_add', '5': 'out_relu'}
  else:
    cls = (tf_keras.applications.MobileNetV3Small if version == 'v3_small'
           else tf_keras.applications.MobileNetV3Large)
    app = cls(input_shape=(None, None, 3), alpha=alpha, include_top=False, weights=None,
              include_preprocessing=False)
    blocks = ({'2': 'expanded_conv', '3': 'expanded_conv_2', '4': 'expanded_conv_7'}
              if version == 'v3_small' else
              {'2': 'expanded_conv_2', '3': 'expanded_conv_5', '4': 'expanded_conv_11'})
    names = {level: _last_of_block(app, b) for level, b in blocks.items()}
    names['5'] = app.layers[-1].name
  backbone = fpn_fe.multi_level_model(app, names, name='mobilenet_%s' % version)
  return fpn_fe.KerasFPNFeatureExtractor(type_name, backbone, preprocess_minus_one_to_one,
                                         batch_norm_trainable, conv_hyperparams, fpn_min_level,
                                         fpn_max_level, fpn_depth)


def v2(*args, **kwargs):
  return _build('v2', *args, **kwargs)


def v3_small(*args, **kwargs):
  return _build('v3_small', *args, **kwargs)


def v3_large(*args, **kwargs):
  return _build('v3_large', *args, **kwargs)
