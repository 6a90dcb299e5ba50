"""EfficientNet-Lite0 (Tan & Le 2019; "EfficientNet-Lite", TF TPU reference `efficientnet/lite`).

Built from the TF Model Garden backbone `official.vision.modeling.backbones.EfficientNet`, which can
express Lite0 exactly, so no custom layers are written here:
  * Lite0 uses width = depth = 1.0, i.e. the B0 block specs (ds_r1_k3_s1_e1_c16, ir_r2_k3_s2_e6_c24,
    ir_r2_k5_s2_e6_c40, ir_r3_k3_s2_e6_c80, ir_r3_k5_s1_e6_c112, ir_r4_k5_s2_e6_c192,
    ir_r1_k3_s1_e6_c320); the Lite rule "stem 32 / head 1280 are not scaled" is a no-op at width 1.0.
  * no squeeze-excitation -> `se_ratio=0.0`; ReLU6 -> `activation='relu6'`.
  * TF "same" padding (Model Garden convs) matches the source weights, which were ported from the TF
    checkpoints (the PyTorch port emulates TF "same" padding with static padding).
  * BatchNorm momentum 0.99 / epsilon 1e-3 (TF reference; PyTorch port momentum 0.01 == Keras 0.99).

Outputs of `build_lite0_backbone()` (dict keyed by level string, float32, stride 2**level):
  '2': [B, H/4, W/4, 24], '3': [B, H/8, W/8, 40], '4': [B, H/16, W/16, 112], '5': [B, H/32, W/32, 320],
  and '6': [B, H/32, W/32, 1280] -- NOTE '6' is the classification head conv (still stride 32), not a
  stride-64 map; it is not in `output_specs`.
`build_lite0_feature_levels()` is the detection backbone: the same layers cut at levels '2'..'5' (a list,
finest first; the head conv is left out, so it is neither computed nor stored in checkpoints).

Input pixels: `preprocess()` applies the ImageNet mean / std normalization the source weights expect.
"""

import tensorflow as tf
import tf_keras
from official.vision.modeling import backbones

NUM_CLASSES = 1000
HEAD_LEVEL = '6'

# ImageNet mean / std in 0..255 units, as used by the source PyTorch port (EfficientNet-PyTorch).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def preprocess(images):
  """float32 [B, H, W, 3] RGB in 0..255 -> ImageNet mean/std normalized float32 [B, H, W, 3]."""
  images = tf.cast(images, tf.float32)
  return (images - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def build_lite0_backbone():
  """Returns a Model Garden EfficientNet configured as EfficientNet-Lite0 (see module docstring).

  Batch norm freezing and weight decay are the feature extractor's
  (`faster_rcnn_efficientnet_fpn_keras_feature_extractor`).
  """
  return backbones.EfficientNet(
      model_id='b0', se_ratio=0.0, activation='relu6', kernel_regularizer=None,
      norm_momentum=0.99, norm_epsilon=1e-3)


FEATURE_LEVELS = ('2', '3', '4', '5')


def build_lite0_feature_levels():
  """Returns a tf_keras.Model: preprocessed float32 [B, H, W, 3] -> [level 2, 3, 4, 5 maps].

  The maps are float32 [B, ceil(H / 2**l), ceil(W / 2**l), C] with C = 24, 40, 112, 320. The model holds
  the layers of a new `build_lite0_backbone()` up to level 5 (stem and the 16 blocks, no head conv); it
  is the `classification_backbone` of `faster_rcnn_efficientnet_lite0_fpn_keras` and what
  tools/convert_efficientnet_lite0.py saves.
  """
  backbone = build_lite0_backbone()
  return tf_keras.Model(inputs=backbone.inputs,
                        outputs=[backbone.output[level] for level in FEATURE_LEVELS],
                        name='efficientnet_lite0')


class Lite0Classifier(tf_keras.Model):
  """Lite0 backbone + global average pooling + 1000-way Dense (ImageNet logits)."""

  def __init__(self, backbone=None, **kwargs):
    super().__init__(**kwargs)
    self.backbone = backbone if backbone is not None else build_lite0_backbone()
    self.pool = tf_keras.layers.GlobalAveragePooling2D()
    self.classifier = tf_keras.layers.Dense(NUM_CLASSES, name='classifier')

  def call(self, inputs, training=None):
    """inputs: preprocessed float32 [B, H, W, 3] -> logits float32 [B, 1000]."""
    features = self.backbone(inputs, training=training)[HEAD_LEVEL]
    return self.classifier(self.pool(features))
