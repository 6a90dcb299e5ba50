"""ResNet-v1 + FPN feature extractors (`faster_rcnn_resnet{50,101,152}_fpn_keras`).

Backbone `official.vision.modeling.backbones.ResNet` (levels 2..5) followed by the Model Garden FPN
decoder (`official.vision.modeling.decoders.FPN`, Lin et al. 2017) producing levels min_level..max_level
(from `feature_extractor.fpn { min_level max_level }`, TF OD API defaults 2..6 here because the
Faster R-CNN FPN configs use 2..6) with depth `fpn.additional_layer_depth` (default 256).
The box classifier is the TF OD API FPN one: flatten + 2 x FC 1024 (ReLU), see `box_classifier_layers`.
Pixel normalization: ImageNet mean/std (see faster_rcnn_resnet_keras_feature_extractor).
"""

import tf_keras
from official.vision.modeling import backbones
from official.vision.modeling import decoders

from object_detection.models import faster_rcnn_resnet_keras_feature_extractor as resnet_fe
from object_detection.models.faster_rcnn_efficientnet_fpn_keras_feature_extractor import box_classifier_fc


class _FPNModel(tf_keras.Model):
  """Backbone followed by FPN; output dict keyed by level string."""

  def __init__(self, backbone, fpn, **kwargs):
    super().__init__(**kwargs)
    self.resnet = backbone
    self.fpn = fpn
    self.output_specs = dict(fpn.output_specs)

  def call(self, inputs, training=None):
    return self.fpn(self.resnet(inputs, training=training), training=training)


class ResNetFPNFeatureExtractor(object):
  """See module docstring and feature_extractor_registry."""

  is_fpn = True

  def __init__(self, model_id, feature_extractor_config, is_training, first_stage_features_stride=16, batch_norm_trainable=False,
               conv_hyperparams=None, fpn_min_level=2, fpn_max_level=6, fpn_depth=256, **unused_kwargs):
    del is_training, first_stage_features_stride, feature_extractor_config
    regularizer = None
    if conv_hyperparams is not None:
      from object_detection.builders import hyperparams_builder  # pylint: disable=g-import-not-at-top
      regularizer = hyperparams_builder.KerasLayerHyperparams(conv_hyperparams).params().get(
          'kernel_regularizer')
    if not 2 <= fpn_min_level <= 5 or fpn_max_level < max(fpn_min_level, 5):
      raise ValueError('feature_extractor.fpn: need 2 <= min_level <= 5 and max_level >= 5, got %d..%d.'
                       % (fpn_min_level, fpn_max_level))
    self._resnet = backbones.ResNet(model_id=model_id, bn_trainable=batch_norm_trainable,
                                    kernel_regularizer=regularizer)
    fpn = decoders.FPN(input_specs=self._resnet.output_specs, min_level=fpn_min_level,
                       max_level=fpn_max_level, num_filters=fpn_depth, kernel_regularizer=regularizer)
    self.backbone = _FPNModel(self._resnet, fpn, name='resnet%d_fpn' % model_id)
    self.levels = [str(l) for l in range(fpn_min_level, fpn_max_level + 1)]
    self.box_classifier_layers = box_classifier_fc(regularizer=regularizer)

  def preprocess(self, images):
    return resnet_fe.imagenet_preprocess(images)

  def classification_checkpoint_objects(self):
    return {'backbone': self._resnet}


def resnet50(*args, **kwargs):
  return ResNetFPNFeatureExtractor(50, *args, **kwargs)


def resnet101(*args, **kwargs):
  return ResNetFPNFeatureExtractor(101, *args, **kwargs)


def resnet152(*args, **kwargs):
  return ResNetFPNFeatureExtractor(152, *args, **kwargs)
