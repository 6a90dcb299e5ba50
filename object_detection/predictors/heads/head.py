"""Base class of the Keras prediction heads (TF OD API `predictors/heads/head.py::KerasHead`).

A head is a Keras layer holding the layers of one prediction branch (boxes, classes or masks).
Its `call(features)` has no `training` argument on purpose: the Dropout / batch norm layers inside
take the mode from the enclosing call (the box predictor's `training` or the Keras learning phase),
as in the TF OD API.
"""

import abc

import tf_keras


class KerasHead(tf_keras.layers.Layer):
  """Keras head base class: `call(features)` returns `self._predict(features)`."""

  def call(self, features):
    return self._predict(features)

  @abc.abstractmethod
  def _predict(self, features):
    """Returns the head's float32 prediction tensor for float32 `features`."""
    raise NotImplementedError
