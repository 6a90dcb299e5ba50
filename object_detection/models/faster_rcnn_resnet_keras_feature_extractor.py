"""Single-level ResNet-v1 feature extractors (`faster_rcnn_resnet{50,101,152}_keras`).

As in the TF OD API (Ren et al. 2015, "Faster R-CNN"; He et al. 2016 ResNet), the RPN runs on the conv4
output (stride 16, level '4') and the box classifier applies the conv5 stage to each ROI crop
(`box_classifier_layers`: 3 bottleneck blocks, 2048 channels, stride 1 because the crop is already
max-pooled).

Backbone: `official.vision.modeling.backbones.ResNet` truncated at level '4'. With
`first_stage_features_stride: 8` (atrous configs) the TF OD API dilates conv4; here the Model Garden's
`DilatedResNet(output_stride=8)` is used, whose single output (key '3', dilated conv4+conv5, 2048
channels) feeds both the RPN and the box classifier, so `box_classifier_layers` is None in that case
(documented deviation: the Model Garden has no conv4-only dilated ResNet).

Pixel normalization: ImageNet mean/std as Model Garden ResNets are trained with
(mean [123.675, 116.28, 103.53], std [58.395, 57.12, 57.375]); input float32 0..255.
"""

import tensorflow as tf
import tf_keras
from official.vision.modeling import backbones
from official.vision.modeling.backbones import resnet_deeplab
from official.vision.modeling.layers import nn_blocks

_MEAN = (123.675, 116.28, 103.53)
_STD = (58.395, 57.12, 57.375)


def imagenet_preprocess(images):
  """float32 [B, H, W, 3] 0..255 -> (x - mean) / std."""
  return (tf.cast(images, tf.float32) - tf.constant(_MEAN)) / tf.constant(_STD)


class ResNetFeatureExtractor(object):
  """See module docstring. Attributes follow feature_extractor_registry's interface."""

  is_fpn = False

  def __init__(self, model_id, feature_extractor_config, is_training, first_stage_features_stride=16, batch_norm_trainable=False,
               conv_hyperparams=None, **unused_kwargs):
    del is_training, feature_extractor_config
    regularizer = None
    if conv_hyperparams is not None:
      from object_detection.builders import hyperparams_builder  # pylint: disable=g-import-not-at-top
      regularizer = hyperparams_builder.KerasLayerHyperparams(conv_hyperparams).params().get(
          'kernel_regularizer')
    if first_stage_features_stride == 16:
      full = backbones.ResNet(model_id=model_id, bn_trainable=batch_norm_trainable,
                              kernel_regularizer=regularizer)
      self._full_backbone = full
      out = full.output['4']
      self.backbone = tf_keras.Model(inputs=full.inputs, outputs={'4': out},
                                     name='resnet%d_conv4' % model_id)
      self.backbone.output_specs = {'4': out.shape}
      self.levels = ['4']
      blocks = [nn_blocks.BottleneckBlock(filters=512, strides=1, use_projection=(i == 0),
                                          bn_trainable=batch_norm_trainable,
                                          kernel_regularizer=regularizer, name='conv5_block%d' % i)
                for i in range(3)]
      self.box_classifier_layers = tf_keras.Sequential(blocks, name='box_classifier_conv5')
    elif first_stage_features_stride == 8:
      self._full_backbone = resnet_deeplab.DilatedResNet(model_id=model_id, output_stride=8,
                                                         kernel_regularizer=regularizer)
      self.backbone = self._full_backbone
      self.levels = ['3']
      self.box_classifier_layers = None
    else:
      raise ValueError('faster_rcnn.first_stage_features_stride must be 8 or 16 for ResNet extractors, '
                       'got %d.' % first_stage_features_stride)

  def preprocess(self, images):
    return imagenet_preprocess(images)

  def classification_checkpoint_objects(self):
    return {'backbone': self._full_backbone}


def resnet50(*args, **kwargs):
  return ResNetFeatureExtractor(50, *args, **kwargs)


def resnet101(*args, **kwargs):
  return ResNetFeatureExtractor(101, *args, **kwargs)


def resnet152(*args, **kwargs):
  return ResNetFeatureExtractor(152, *args, **kwargs)
