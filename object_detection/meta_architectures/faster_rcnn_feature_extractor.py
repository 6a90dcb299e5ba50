"""Interface of Faster R-CNN / Mask R-CNN feature extractors (TF OD API `FasterRCNNKerasFeatureExtractor`).

The TF OD API defines this class in `meta_architectures/faster_rcnn_meta_arch.py`; it lives in its own
module here so extractors do not import the meta-architecture. `faster_rcnn_meta_arch` re-exports it.

An extractor gives the meta-architecture two Keras models, built on first use and tracked by the
meta-architecture under the TF OD API's attribute names (so checkpoint keys match):

  - `get_proposal_feature_extractor_model(name)` -> `_feature_extractor_for_proposal_features`:
    float32 [B, H, W, 3] preprocessed images -> the RPN feature map float32 [B, H / stride, W / stride, C]
    (single-level extractors) or a list of maps, finest first (FPN extractors).
  - `get_box_classifier_feature_extractor_model(name)` -> `_feature_extractor_for_box_classifier_features`:
    float32 [N, crop, crop, C] ROI crops (after the max pool) -> float32 [N, h, w, D] box classifier
    features (e.g. ResNet conv5, or [N, 1, 1, 1024] FC features for FPN extractors).

`preprocess(resized_inputs)` normalizes float32 [B, H, W, 3] RGB pixels in [0, 255] as the backbone
expects. `classification_backbone` is the Keras model restored by `fine_tune_checkpoint_type:
"classification"` (as `tf.train.Checkpoint(feature_extractor=classification_backbone)`); it exists once
either model has been built.

Project extension: `load_weights(path)` loads a Keras ImageNet weight file (`.h5` / `.weights.h5`) into
`classification_backbone` and returns a `keras_weights.LoadReport`; extractors without one raise
NotImplementedError.
"""

import abc


class FasterRCNNKerasFeatureExtractor(object, metaclass=abc.ABCMeta):
  """Base class; see the module docstring.

  Args:
    is_training: bool, whether the model is built for training.
    first_stage_features_stride: int, output stride of the RPN feature map (e.g. 16).
    batch_norm_trainable: bool, whether the backbone's batch norm layers train (only when
      `is_training`); otherwise they are frozen (inference mode, no updates).
    weight_decay: float, L2 weight decay of the backbone's kernels.
  """

  def __init__(self, is_training, first_stage_features_stride, batch_norm_trainable=False,
               weight_decay=0.0):
    self._is_training = is_training
    self._first_stage_features_stride = first_stage_features_stride
    self._train_batch_norm = batch_norm_trainable and is_training
    self._weight_decay = weight_decay
    self.classification_backbone = None

  @property
  def is_training(self):
    return self._is_training

  @abc.abstractmethod
  def preprocess(self, resized_inputs):
    """float32 [B, H, W, 3] RGB in [0, 255] -> float32 [B, H, W, 3] as the backbone expects."""

  @abc.abstractmethod
  def get_proposal_feature_extractor_model(self, name):
    """Returns the Keras model computing the RPN feature map(s); see the module docstring."""

  @abc.abstractmethod
  def get_box_classifier_feature_extractor_model(self, name):
    """Returns the Keras model computing box classifier features from ROI crops."""

  def load_weights(self, path):
    """Loads a Keras ImageNet weight file into `classification_backbone` (project extension)."""
    raise NotImplementedError('%s cannot load Keras weight files (%s); use a TF checkpoint with '
                              'fine_tune_checkpoint_type: "classification".'
                              % (type(self).__name__, path))
