"""Abstract detection model (TF OD API `object_detection.core.model.DetectionModel` interface, TF2).

Subclasses implement `preprocess`, `predict`, `postprocess`, `loss`, `restore_from_objects`,
`regularization_losses`, `updates`. Ground truth is handed over with `provide_groundtruth` before `loss`
(per-image lists of UNPADDED tensors, normalized boxes; see `provide_groundtruth`).
"""

import abc

import tf_keras

from object_detection.core import standard_fields as fields


class DetectionModel(tf_keras.layers.Layer, metaclass=abc.ABCMeta):
  """Base class: stores ground truth lists and exposes the TF OD API methods."""

  def __init__(self, num_classes, **kwargs):
    super().__init__(**kwargs)
    self._num_classes = num_classes
    self._groundtruth_lists = {}

  @property
  def num_classes(self):
    """Number of classes WITHOUT background (int)."""
    return self._num_classes

  def groundtruth_lists(self, field):
    """Returns the list of per-image tensors provided for `field` (KeyError if not provided)."""
    if field not in self._groundtruth_lists:
      raise RuntimeError('Groundtruth %r was not provided: call provide_groundtruth() before loss().'
                         % field)
    return self._groundtruth_lists[field]

  def groundtruth_has_field(self, field):
    return field in self._groundtruth_lists

  def provide_groundtruth(self, groundtruth_boxes_list, groundtruth_classes_list,
                          groundtruth_masks_list=None, groundtruth_keypoints_list=None,
                          groundtruth_weights_list=None, groundtruth_confidences_list=None,
                          groundtruth_is_crowd_list=None, groundtruth_area_list=None,
                          is_annotated_list=None, **unused_kwargs):
    """Stores per-image ground truth.

    Args:
      groundtruth_boxes_list: list of float32 [N_i, 4] boxes, normalized ymin, xmin, ymax, xmax relative
        to the true (unpadded) image shape.
      groundtruth_classes_list: list of float32 [N_i, num_classes] one-hot (no background column).
      groundtruth_masks_list: optional list of [N_i, H, W] uint8/float32 0/1 masks at the preprocessed
        (padded) image resolution.
      groundtruth_weights_list: optional list of float32 [N_i] weights (default 1).
      groundtruth_is_crowd_list: optional list of bool [N_i].
      (other arguments are accepted for API compatibility and stored when given)
    """
    f = fields.BoxListFields
    self._groundtruth_lists = {f.boxes: groundtruth_boxes_list, f.classes: groundtruth_classes_list}
    optional = {f.masks: groundtruth_masks_list, f.keypoints: groundtruth_keypoints_list,
                f.weights: groundtruth_weights_list, f.confidences: groundtruth_confidences_list,
                fields.InputDataFields.groundtruth_is_crowd: groundtruth_is_crowd_list,
                fields.InputDataFields.groundtruth_area: groundtruth_area_list,
                fields.InputDataFields.is_annotated: is_annotated_list}
    for key, value in optional.items():
      if value is not None:
        self._groundtruth_lists[key] = value

  @abc.abstractmethod
  def preprocess(self, inputs):
    """float32 [B, H, W, 3] 0..255 -> (preprocessed [B, h, w, 3], true_image_shapes int32 [B, 3])."""

  @abc.abstractmethod
  def predict(self, preprocessed_inputs, true_image_shapes, **side_inputs):
    """Returns a prediction dict."""

  @abc.abstractmethod
  def postprocess(self, prediction_dict, true_image_shapes, **params):
    """Returns the detection dict (`standard_fields.DetectionResultFields` keys)."""

  @abc.abstractmethod
  def loss(self, prediction_dict, true_image_shapes):
    """Returns a dict of scalar losses (already weighted)."""

  @abc.abstractmethod
  def restore_from_objects(self, fine_tune_checkpoint_type='detection'):
    """Returns a dict of trackables for tf.train.Checkpoint(**dict)."""

  def regularization_losses(self):
    return list(self.losses)

  def updates(self):
    return []

  def call(self, images):
    """Runs preprocess -> predict -> postprocess (builds all variables)."""
    preprocessed, shapes = self.preprocess(images)
    return self.postprocess(self.predict(preprocessed, shapes), shapes)
