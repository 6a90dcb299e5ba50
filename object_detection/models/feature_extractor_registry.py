"""Registry of Faster R-CNN / Mask R-CNN feature extractors (contract E).

A feature extractor is selected by `faster_rcnn.feature_extractor.type` (a string, so new types need no
proto change). Each type name maps to a *factory*::

  factory(feature_extractor_config,      # FasterRcnnFeatureExtractor proto message
          is_training,                   # bool
          first_stage_features_stride,   # int, e.g. 16 (or 8 for atrous ResNets)
          batch_norm_trainable,          # bool (FasterRcnnFeatureExtractor.batch_norm_trainable)
          conv_hyperparams=None,         # Hyperparams proto or None (feature_extractor.conv_hyperparams)
          **kwargs)                      # ignore unknown keyword arguments (forward compatibility);
                                         # currently passed: `first_stage_atrous_rate` (int, 1 = none),
                                         # `fpn_min_level`, `fpn_max_level` (ints, FPN extractors only,
                                         # from feature_extractor.fpn { min_level max_level }),
                                         # `pad_to_multiple` (int).
    -> extractor object with:
      extractor.backbone:   a Model-Garden-style `tf_keras.Model`; calling it on float32
                            [B, H, W, 3] preprocessed images returns a dict {level string: float32
                            [B, H / 2**level, W / 2**level, C]} and it has an `output_specs` dict with the
                            same keys (tf.TensorShape values). For FPN extractors `backbone` is the backbone
                            *plus* the FPN decoder, i.e. its outputs are the FPN levels
                            str(min_level)..str(max_level), all with the same depth. Single-level
                            extractors return exactly one level: '4' for stride 16, '3' for stride 8.
      extractor.is_fpn:     bool.
      extractor.levels:     list of level strings produced by `backbone`, ascending (e.g. ['4'] or
                            ['2', '3', '4', '5', '6']).
      extractor.preprocess(images): float32 [B, H, W, 3] in 0..255 -> float32 [B, H, W, 3] normalized as
                            the backbone expects (e.g. ImageNet mean/std for ResNets, [-1, 1] for
                            Inception / MobileNet / EfficientNet).
      extractor.classification_checkpoint_objects(): dict {name: trackable} restored for
                            `fine_tune_checkpoint_type: "classification"` via tf.train.Checkpoint(**dict).
      extractor.box_classifier_layers (optional): a tf_keras layer applied to the ROI-aligned crops before
                            the box predictor (e.g. ResNet stage 5 for the single-level ResNet extractors, as
                            in the TF OD API). If absent or None, the crops go straight to the box predictor.

Registration: `register(type_name, factory)` for an object, or a lazy entry in `_LAZY` ("module:function")
imported only when that type is requested, so a missing or broken module never breaks import of this
registry. A lazily imported module may also call `register(...)` at import time for its own type names;
that registration wins over the "module:function" name. `get(type_name)` raises ValueError naming `feature_extractor.type` and the supported names.

TF1 names (without `_keras`) are mapped to their TF2 equivalent by `resolve_type_name` with a logged note.
"""

import importlib

from absl import logging

_REGISTRY = {}

_MODELS = 'object_detection.models.'

# Lazy registrations: type name -> "module:function".
_LAZY = {
    'faster_rcnn_resnet50_keras': _MODELS + 'faster_rcnn_resnet_keras_feature_extractor:resnet50',
    'faster_rcnn_resnet101_keras': _MODELS + 'faster_rcnn_resnet_keras_feature_extractor:resnet101',
    'faster_rcnn_resnet152_keras': _MODELS + 'faster_rcnn_resnet_keras_feature_extractor:resnet152',
    'faster_rcnn_resnet50_fpn_keras': _MODELS + 'faster_rcnn_resnet_fpn_keras_feature_extractor:resnet50',
    'faster_rcnn_resnet101_fpn_keras': _MODELS + 'faster_rcnn_resnet_fpn_keras_feature_extractor:resnet101',
    'faster_rcnn_resnet152_fpn_keras': _MODELS + 'faster_rcnn_resnet_fpn_keras_feature_extractor:resnet152',
    # Extractors helper's modules.
    'faster_rcnn_inception_resnet_v2_keras':
        _MODELS + 'faster_rcnn_inception_resnet_v2_keras_feature_extractor:build',
    'faster_rcnn_efficientnet_b0_fpn_keras': _MODELS + 'faster_rcnn_efficientnet_fpn_keras_feature_extractor:b0',
    'faster_rcnn_efficientnet_b1_fpn_keras': _MODELS + 'faster_rcnn_efficientnet_fpn_keras_feature_extractor:b1',
    'faster_rcnn_efficientnet_b2_fpn_keras': _MODELS + 'faster_rcnn_efficientnet_fpn_keras_feature_extractor:b2',
    'faster_rcnn_efficientnet_lite0_fpn_keras':
        _MODELS + 'faster_rcnn_efficientnet_fpn_keras_feature_extractor:lite0',
    'faster_rcnn_mobilenet_v2_fpn_keras': _MODELS + 'faster_rcnn_mobilenet_fpn_keras_feature_extractor:v2',
    'faster_rcnn_mobilenet_v3_small_fpn_keras':
        _MODELS + 'faster_rcnn_mobilenet_fpn_keras_feature_extractor:v3_small',
    'faster_rcnn_mobilenet_v3_large_fpn_keras':
        _MODELS + 'faster_rcnn_mobilenet_fpn_keras_feature_extractor:v3_large',
}

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


def register(type_name, factory):
  """Registers `factory` (callable, see module docstring) under `type_name` (str)."""
  _REGISTRY[type_name] = factory


def supported_names():
  """Sorted list of all registered (eager or lazy) TF2 type names."""
  return sorted(set(_REGISTRY) | set(_LAZY))


def resolve_type_name(type_name):
  """Maps a TF1 type name to its TF2 equivalent (logging a note); other names are returned unchanged."""
  if type_name in _TF1_TO_TF2 and type_name not in _REGISTRY:
    new_name = _TF1_TO_TF2[type_name]
    note = ''
    if type_name == 'faster_rcnn_inception_v2':
      note = (' (the TF OD API has no TF2 inception_v2 extractor; inception_resnet_v2 is the documented '
              'substitute, see docs/model.md)')
    logging.warning('feature_extractor.type %r is a TF1 name; building its TF2 equivalent %r%s.',
                    type_name, new_name, note)
    return new_name
  return type_name


def get(type_name):
  """Returns the factory registered for `type_name` (TF1 names are resolved first).

  Raises:
    ValueError: unknown type name (message names `feature_extractor.type` and the supported names), or
      the module implementing a known type is missing / fails to import.
  """
  name = resolve_type_name(type_name)
  if name in _REGISTRY:
    return _REGISTRY[name]
  if name not in _LAZY:
    raise ValueError(
        'Unknown faster_rcnn.feature_extractor.type %r. Supported names: %s (TF1 names %s are mapped to '
        'their TF2 equivalent).' % (type_name, ', '.join(supported_names()), ', '.join(sorted(_TF1_TO_TF2))))
  module_name, fn_name = _LAZY[name].split(':')
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise ValueError('faster_rcnn.feature_extractor.type %r is known but its module %s could not be '
                     'imported (%s).' % (type_name, module_name, e)) from e
  if name in _REGISTRY:  # the module registered itself on import
    return _REGISTRY[name]
  try:
    factory = getattr(module, fn_name)
  except AttributeError as e:
    raise ValueError('faster_rcnn.feature_extractor.type %r: module %s has no function %r.'
                     % (type_name, module_name, fn_name)) from e
  _REGISTRY[name] = factory
  return factory
