"""Base class of the Keras box predictors (TF OD API `object_detection.core.box_predictor`).

A box predictor maps feature maps to per-anchor (first stage) or per-proposal (second stage)
predictions, returned as a dict keyed by the constants below (the same strings as in the TF OD API,
so the meta-architecture and the losses read the same keys):

  - `BOX_ENCODINGS` ('box_encodings'): box-coder encodings, float32.
  - `CLASS_PREDICTIONS_WITH_BACKGROUND` ('class_predictions_with_background'): class logits,
    float32, column 0 = background when the predictor adds a background class.
  - `MASK_PREDICTIONS` ('mask_predictions'): instance mask logits, float32.

Only the Keras (TF2) predictor exists here; the TF OD API's slim `BoxPredictor` is TF1-only.
"""

import abc

import tf_keras

BOX_ENCODINGS = 'box_encodings'
CLASS_PREDICTIONS_WITH_BACKGROUND = 'class_predictions_with_background'
MASK_PREDICTIONS = 'mask_predictions'


class KerasBoxPredictor(tf_keras.layers.Layer):
  """Keras box predictor base class (TF OD API `box_predictor.KerasBoxPredictor`).

  Subclasses implement `_predict(image_features, **kwargs)`; calling the layer on a list of feature
  maps delegates to it. Keyword arguments of the call (e.g. `prediction_stage` for Mask R-CNN, or
  `training`) are passed through to `_predict`.

  Args:
    is_training: bool, whether the model is built for training (decides whether batch norm layers
      may follow the call's `training` argument; see `freeze_batchnorm`).
    num_classes: int, number of object classes WITHOUT the background class (labels 0..K-1 give
      num_classes=K even though targets range over 0..K with 0 = background).
    freeze_batchnorm: bool, run batch norm in inference mode even during training (pretrained
      statistics, no updates); useful with small batches.
    inplace_batchnorm_update: bool, kept for the TF OD API interface; in TF2 eager / tf.function
      training Keras applies batch norm updates in place either way.
    name: str or None, Keras layer name (auto-generated from the class name when None).
  """

  def __init__(self, is_training, num_classes, freeze_batchnorm, inplace_batchnorm_update,
               name=None):
    super().__init__(name=name)
    self._is_training = is_training
    self._num_classes = num_classes
    self._freeze_batchnorm = freeze_batchnorm
    self._inplace_batchnorm_update = inplace_batchnorm_update

  @property
  def is_keras_model(self):
    """Always True: the meta-architecture calls Keras predictors as layers, not via `predict`."""
    return True

  @property
  def num_classes(self):
    return self._num_classes

  def call(self, image_features, **kwargs):
    """Runs `_predict`.

    Args:
      image_features: list of float32 tensors [batch_size, height_i, width_i, channels_i].
      **kwargs: predictor-specific keyword arguments.

    Returns:
      dict with at least `BOX_ENCODINGS` and `CLASS_PREDICTIONS_WITH_BACKGROUND` (layout defined by
      the subclass).
    """
    return self._predict(image_features, **kwargs)

  @abc.abstractmethod
  def _predict(self, image_features, **kwargs):
    raise NotImplementedError
