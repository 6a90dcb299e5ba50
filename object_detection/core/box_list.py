"""BoxList: a set of boxes of one image plus per-box fields (TF OD API `core/box_list.py`).

Boxes are a float32 [N, 4] tensor of [ymin, xmin, ymax, xmax] corners (normalized or absolute,
the BoxList does not know which; box_list_ops states what each op expects). Extra fields
(scores, classes, masks, ...) are tensors indexed by box along dimension 0; the TF OD API assumes
every field dimension except the first is static, and so does this class.
"""

import tensorflow as tf

from object_detection.utils import shape_utils


def _check_box_shape(boxes):
  shape = boxes.get_shape()
  if len(shape) != 2 or shape[-1] != 4:
    raise ValueError('Invalid dimensions for box data: {}'.format(boxes.shape))


class BoxList(object):
  """Box collection: `data` maps field name -> tensor, with the corners under 'boxes'."""

  def __init__(self, boxes):
    """Wraps boxes.

    Args:
      boxes: float32 tensor [N, 4] of ymin, xmin, ymax, xmax.

    Raises:
      ValueError: if `boxes` is not rank 2 with last dimension 4, or not float32.
    """
    _check_box_shape(boxes)
    if boxes.dtype != tf.float32:
      raise ValueError('Invalid tensor type: should be tf.float32')
    self.data = {'boxes': boxes}

  def num_boxes(self):
    """Returns the number of boxes as a scalar int32 tensor."""
    return tf.shape(self.data['boxes'])[0]

  def num_boxes_static(self):
    """Returns the static number of boxes (int), or None if unknown at trace time."""
    return shape_utils.get_dim_as_int(self.data['boxes'].get_shape()[0])

  def get_all_fields(self):
    """Returns the names of all fields, 'boxes' included."""
    return self.data.keys()

  def get_extra_fields(self):
    """Returns the names of all fields except 'boxes', in insertion order."""
    return [name for name in self.data.keys() if name != 'boxes']

  def add_field(self, field, field_data):
    """Adds (or replaces) field `field` with the tensor `field_data` ([N, ...])."""
    self.data[field] = field_data

  def has_field(self, field):
    return field in self.data

  def get(self):
    """Returns the float32 [N, 4] box corners."""
    return self.get_field('boxes')

  def set(self, boxes):
    """Replaces the box corners with the [N, 4] tensor `boxes`.

    Raises:
      ValueError: if `boxes` is not [N, 4].
    """
    _check_box_shape(boxes)
    self.data['boxes'] = boxes

  def get_field(self, field):
    """Returns the tensor of `field`.

    Raises:
      ValueError: if the field does not exist.
    """
    if not self.has_field(field):
      raise ValueError('field ' + str(field) + ' does not exist')
    return self.data[field]

  def set_field(self, field, value):
    """Replaces the tensor of an existing field.

    Raises:
      ValueError: if the field does not exist.
    """
    if not self.has_field(field):
      raise ValueError('field %s does not exist' % field)
    self.data[field] = value

  def get_center_coordinates_and_sizes(self, scope=None):
    """Returns [ycenter, xcenter, height, width], four float32 [N] tensors."""
    with tf.name_scope(scope or 'get_center_coordinates_and_sizes'):
      ymin, xmin, ymax, xmax = tf.unstack(tf.transpose(self.get()))
      height = ymax - ymin
      width = xmax - xmin
      return [ymin + height / 2., xmin + width / 2., height, width]

  def transpose_coordinates(self, scope=None):
    """Swaps y and x: boxes become [xmin, ymin, xmax, ymax] (in place)."""
    with tf.name_scope(scope or 'transpose_coordinates'):
      ymin, xmin, ymax, xmax = tf.split(value=self.get(), num_or_size_splits=4, axis=1)
      self.set(tf.concat([xmin, ymin, xmax, ymax], 1))

  def as_tensor_dict(self, fields=None):
    """Returns {field: tensor} for `fields` (default: all fields).

    Raises:
      ValueError: if a requested field does not exist.
    """
    if fields is None:
      fields = self.get_all_fields()
    out = {}
    for field in fields:
      if not self.has_field(field):
        raise ValueError('boxlist must contain all specified fields')
      out[field] = self.get_field(field)
    return out
