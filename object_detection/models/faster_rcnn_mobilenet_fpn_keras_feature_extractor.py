"""MobileNet FPN extractors (`faster_rcnn_mobilenet_{v2,v3_small,v3_large}_fpn_keras`; project extension).

The TF OD API ResNet-v1 FPN's layers (FPN top-down maps, coarse levels, FC box classifier; see
`faster_rcnn_efficientnet_fpn_keras_feature_extractor.BackboneFpnKerasFeatureExtractor`, which also
describes the batch norm and `override_base_feature_extractor_hyperparams` handling) over a Keras
application cut at levels 2..5. Same constructor arguments as the TF OD API's
`FasterRCNNResnet50FpnKerasFeatureExtractor`; `conv_hyperparams` is required.

`classification_backbone`: `tf_keras.applications.MobileNetV2` / `MobileNetV3Small` / `MobileNetV3Large`
(alpha 1.0, weights=None, include_top=False; V3 with include_preprocessing=False) with the
application's layer names, so Keras ImageNet `.h5` files load by name (`load_weights`). Levels (stride
2**level):
  V2:        2 `block_2_add` (24 channels), 3 `block_5_add` (32), 4 `block_12_add` (96), 5 `out_relu` (1280).
  V3 small:  2 end of `expanded_conv` (16), 3 end of `expanded_conv_2` (24), 4 end of `expanded_conv_7`
             (48), 5 last layer (576).
  V3 large:  2 end of `expanded_conv_2` (24), 3 end of `expanded_conv_5` (40), 4 end of
             `expanded_conv_11` (112), 5 last layer (960).

Pixels: `preprocess` maps [0, 255] to [-1, 1] (x / 127.5 - 1), as `mobilenet_v2.preprocess_input` and the
MobileNetV3 built-in preprocessing do.
"""

import tf_keras

from object_detection.models import faster_rcnn_efficientnet_fpn_keras_feature_extractor as fpn_base


def _last_layer_of_block(app, block):
  return fpn_base.last_layer_with_prefix(app, block + '/')


class FasterRCNNMobileNetFpnKerasFeatureExtractor(fpn_base.KerasApplicationFpnFeatureExtractor):
  """MobileNet FPN base: [-1, 1] pixels; subclasses implement `_build_backbone`."""

  def preprocess(self, resized_inputs):
    """float32 [B, H, W, 3] RGB in [0, 255] -> float32 in [-1, 1]."""
    return resized_inputs / 127.5 - 1.0


class FasterRCNNMobileNetV2FpnKerasFeatureExtractor(FasterRCNNMobileNetFpnKerasFeatureExtractor):
  """`faster_rcnn_mobilenet_v2_fpn_keras`; arguments as `BackboneFpnKerasFeatureExtractor`."""

  EXTRACTOR_TYPE = 'faster_rcnn_mobilenet_v2_fpn_keras'

  def _build_backbone(self):
    app = tf_keras.applications.MobileNetV2(input_shape=(None, None, 3), alpha=1.0, include_top=False,
                                            weights=None)
    return fpn_base.multi_level_model(
        app, ['block_2_add', 'block_5_add', 'block_12_add', 'out_relu'], name='mobilenet_v2')


class _MobileNetV3FpnKerasFeatureExtractor(FasterRCNNMobileNetFpnKerasFeatureExtractor):
  """MobileNetV3 FPN base; subclasses set `_APPLICATION`, `_LEVEL_BLOCKS` (levels 2..4) and `_NAME`."""

  _APPLICATION = None
  _LEVEL_BLOCKS = ()
  _NAME = None

  def _build_backbone(self):
    app = self._APPLICATION(input_shape=(None, None, 3), alpha=1.0, include_top=False,
                            weights=None, include_preprocessing=False)
    names = [_last_layer_of_block(app, block) for block in self._LEVEL_BLOCKS]
    names.append(app.layers[-1].name)
    return fpn_base.multi_level_model(app, names, name=self._NAME)


class FasterRCNNMobileNetV3SmallFpnKerasFeatureExtractor(_MobileNetV3FpnKerasFeatureExtractor):
  """`faster_rcnn_mobilenet_v3_small_fpn_keras`; arguments as `BackboneFpnKerasFeatureExtractor`."""

  EXTRACTOR_TYPE = 'faster_rcnn_mobilenet_v3_small_fpn_keras'
  _APPLICATION = staticmethod(tf_keras.applications.MobileNetV3Small)
  _LEVEL_BLOCKS = ('expanded_conv', 'expanded_conv_2', 'expanded_conv_7')
  _NAME = 'mobilenet_v3_small'


class FasterRCNNMobileNetV3LargeFpnKerasFeatureExtractor(_MobileNetV3FpnKerasFeatureExtractor):
  """`faster_rcnn_mobilenet_v3_large_fpn_keras`; arguments as `BackboneFpnKerasFeatureExtractor`."""

  EXTRACTOR_TYPE = 'faster_rcnn_mobilenet_v3_large_fpn_keras'
  _APPLICATION = staticmethod(tf_keras.applications.MobileNetV3Large)
  _LEVEL_BLOCKS = ('expanded_conv_2', 'expanded_conv_5', 'expanded_conv_11')
  _NAME = 'mobilenet_v3_large'
