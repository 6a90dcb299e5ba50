"""Faster R-CNN / Mask R-CNN feature extractor classes by `faster_rcnn.feature_extractor.type`.

The TF OD API keeps this mapping in `model_builder.FASTER_RCNN_KERAS_FEATURE_EXTRACTOR_CLASS_MAP`; here
each type name maps to "module:ClassName", imported only when that type is requested, so an optional
module that is missing or broken (e.g. the Lite0 one without the Model Garden) breaks only its own types.
`get(type_name)` returns the class, a `FasterRCNNKerasFeatureExtractor` subclass
(`meta_architectures/faster_rcnn_feature_extractor.py`).

How the model builder constructs them (as the TF OD API's `model_builder.
_build_faster_rcnn_keras_feature_extractor`):

  cls(is_training, first_stage_features_stride, batch_norm_trainable, **kwargs)

with kwargs only for the fields the config sets:
  * `feature_extractor.conv_hyperparams` set -> `conv_hyperparams=KerasLayerHyperparams(...)` and
    `override_base_feature_extractor_hyperparams=<bool field>`;
  * `feature_extractor.fpn` set -> `fpn_min_level`, `fpn_max_level`, `additional_layer_depth`.

Constructor keyword arguments each class takes besides the three positional ones:
  * faster_rcnn_resnet{50,101,152}_keras (TF OD API): `weight_decay` only. The builder passes no
    conv_hyperparams / fpn kwargs to them: a config setting those fields fails with TypeError, as in
    the TF OD API.
  * faster_rcnn_inception_resnet_v2_keras (TF OD API): `weight_decay` only (as above).
  * faster_rcnn_resnet{50,101,152}_fpn_keras (TF OD API) and the project FPN extractors
    faster_rcnn_efficientnet_{b0,b1,b2,lite0}_fpn_keras, faster_rcnn_mobilenet_{v2,v3_small,v3_large}
    _fpn_keras: `conv_hyperparams` (required: ValueError naming feature_extractor.conv_hyperparams
    without it), `weight_decay`, `fpn_min_level` (default 2), `fpn_max_level` (6),
    `additional_layer_depth` (256), `override_base_feature_extractor_hyperparams` (False).

TF1 type names (without `_keras`) resolve to their TF2 equivalent with a logged note
(`resolve_type_name`). `register(type_name, cls)` adds a class (e.g. a test extractor).
"""

import importlib

from absl import logging

_MODELS = 'object_detection.models.'
_RESNET = _MODELS + 'faster_rcnn_resnet_keras_feature_extractor:'
_RESNET_FPN = _MODELS + 'faster_rcnn_resnet_v1_fpn_keras_feature_extractor:'
_EFFICIENTNET = _MODELS + 'faster_rcnn_efficientnet_fpn_keras_feature_extractor:'
_MOBILENET = _MODELS + 'faster_rcnn_mobilenet_fpn_keras_feature_extractor:'

# Type name -> "module:ClassName", imported on first use.
_LAZY = {
    # TF OD API extractors.
    'faster_rcnn_resnet50_keras': _RESNET + 'FasterRCNNResnet50KerasFeatureExtractor',
    'faster_rcnn_resnet101_keras': _RESNET + 'FasterRCNNResnet101KerasFeatureExtractor',
    'faster_rcnn_resnet152_keras': _RESNET + 'FasterRCNNResnet152KerasFeatureExtractor',
    'faster_rcnn_resnet50_fpn_keras': _RESNET_FPN + 'FasterRCNNResnet50FpnKerasFeatureExtractor',
    'faster_rcnn_resnet101_fpn_keras': _RESNET_FPN + 'FasterRCNNResnet101FpnKerasFeatureExtractor',
    'faster_rcnn_resnet152_fpn_keras': _RESNET_FPN + 'FasterRCNNResnet152FpnKerasFeatureExtractor',
    'faster_rcnn_inception_resnet_v2_keras':
        _MODELS + 'faster_rcnn_inception_resnet_v2_keras_feature_extractor:'
        'FasterRCNNInceptionResnetV2KerasFeatureExtractor',
    # Project extensions (TF OD API FPN layers over other backbones).
    'faster_rcnn_efficientnet_b0_fpn_keras': _EFFICIENTNET + 'FasterRCNNEfficientNetB0FpnKerasFeatureExtractor',
    'faster_rcnn_efficientnet_b1_fpn_keras': _EFFICIENTNET + 'FasterRCNNEfficientNetB1FpnKerasFeatureExtractor',
    'faster_rcnn_efficientnet_b2_fpn_keras': _EFFICIENTNET + 'FasterRCNNEfficientNetB2FpnKerasFeatureExtractor',
    'faster_rcnn_efficientnet_lite0_fpn_keras':
        _MODELS + 'faster_rcnn_efficientnet_lite0_fpn_keras_feature_extractor:'
        'FasterRCNNEfficientNetLite0FpnKerasFeatureExtractor',
    'faster_rcnn_mobilenet_v2_fpn_keras': _MOBILENET + 'FasterRCNNMobileNetV2FpnKerasFeatureExtractor',
    'faster_rcnn_mobilenet_v3_small_fpn_keras':
        _MOBILENET + 'FasterRCNNMobileNetV3SmallFpnKerasFeatureExtractor',
    'faster_rcnn_mobilenet_v3_large_fpn_keras':
        _MOBILENET + 'FasterRCNNMobileNetV3LargeFpnKerasFeatureExtractor',
}

# Classes registered directly or already imported.
_REGISTRY = {}

# TF1 (slim) type names -> TF2 equivalent. faster_rcnn_inception_v2 has no TF2 equivalent in the TF OD
# API; inception_resnet_v2 is the documented substitute (docs/model.md).
_TF1_TO_TF2 = {
    'faster_rcnn_resnet50': 'faster_rcnn_resnet50_keras',
    'faster_rcnn_resnet101': 'faster_rcnn_resnet101_keras',
    'faster_rcnn_resnet152': 'faster_rcnn_resnet152_keras',
    'faster_rcnn_resnet50_fpn': 'faster_rcnn_resnet50_fpn_keras',
    'faster_rcnn_resnet101_fpn': 'faster_rcnn_resnet101_fpn_keras',
    'faster_rcnn_resnet152_fpn': 'faster_rcnn_resnet152_fpn_keras',
    'faster_rcnn_inception_resnet_v2': 'faster_rcnn_inception_resnet_v2_keras',
    'faster_rcnn_inception_v2': 'faster_rcnn_inception_resnet_v2_keras',
}


def register(type_name, extractor_class):
  """Maps `type_name` (str) to `extractor_class` (a FasterRCNNKerasFeatureExtractor subclass)."""
  _REGISTRY[type_name] = extractor_class


def supported_names():
  """Sorted list of the TF2 type names `get` accepts (TF1 names excluded)."""
  return sorted(set(_REGISTRY) | set(_LAZY))


_NOTED_TF1_NAMES = set()


def resolve_type_name(type_name):
  """Maps a TF1 type name to its TF2 equivalent (logging a note); other names are returned unchanged."""
  if type_name in _TF1_TO_TF2 and type_name not in _REGISTRY:
    new_name = _TF1_TO_TF2[type_name]
    note = ''
    if type_name == 'faster_rcnn_inception_v2':
      note = (' (the TF OD API has no TF2 inception_v2 extractor; inception_resnet_v2 is the documented '
              'substitute, see docs/model.md)')
    if type_name not in _NOTED_TF1_NAMES:  # named once per process, not at every model build
      _NOTED_TF1_NAMES.add(type_name)
      logging.warning('feature_extractor.type %r is a TF1 name; building its TF2 equivalent %r%s.',
                      type_name, new_name, note)
    return new_name
  return type_name


def get(type_name):
  """Returns the extractor class for `type_name` (TF1 names are resolved first).

  Raises:
    ValueError: unknown type name (names `faster_rcnn.feature_extractor.type` and the supported
      names), or the module of a known type fails to import or lacks the class.
  """
  name = resolve_type_name(type_name)
  if name in _REGISTRY:
    return _REGISTRY[name]
  if name not in _LAZY:
    raise ValueError(
        'Unknown faster_rcnn.feature_extractor.type %r. Supported names: %s (TF1 names %s are mapped to '
        'their TF2 equivalent).' % (type_name, ', '.join(supported_names()), ', '.join(sorted(_TF1_TO_TF2))))
  module_name, class_name = _LAZY[name].split(':')
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ValueError('faster_rcnn.feature_extractor.type %r is known but its module %s could not be '
                     'imported (%s).' % (type_name, module_name, e)) from e
  try:
    extractor_class = getattr(module, class_name)
  except AttributeError as e:
    raise ValueError('faster_rcnn.feature_extractor.type %r: module %s has no class %r.'
                     % (type_name, module_name, class_name)) from e
  _REGISTRY[name] = extractor_class
  return extractor_class
