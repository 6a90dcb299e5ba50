"""Operations on BoxLists (TF OD API `core/box_list_ops.py`), the subset Faster R-CNN uses.

Same function names, arguments, defaults and return structures as the TF OD API, and the same
arithmetic (so results match it bit for bit on CPU): e.g. `to_normalized_coordinates` multiplies by
1 / height rather than dividing. Ops that return a BoxList carry the input's extra fields along
unless a docstring says otherwise.

Boxes are [ymin, xmin, ymax, xmax]; ops that care say whether they expect normalized or absolute
coordinates.
"""

import tensorflow as tf

from object_detection.core import box_list
from object_detection.utils import ops
from object_detection.utils import shape_utils


class SortOrder(object):
  """Sort order for `sort_by_field`."""
  ascend = 1
  descend = 2


def _split_corners(boxlist):
  """Returns ymin, xmin, ymax, xmax as four [N, 1] tensors."""
  return tf.split(value=boxlist.get(), num_or_size_splits=4, axis=1)


def _copy_extra_fields(boxlist_to_copy_to, boxlist_to_copy_from):
  """Adds the extra fields of `boxlist_to_copy_from` to `boxlist_to_copy_to` and returns it."""
  for field in boxlist_to_copy_from.get_extra_fields():
    boxlist_to_copy_to.add_field(field, boxlist_to_copy_from.get_field(field))
  return boxlist_to_copy_to


def area(boxlist, scope=None):
  """Returns the float32 [N] areas (ymax - ymin) * (xmax - xmin)."""
  with tf.name_scope(scope or 'Area'):
    ymin, xmin, ymax, xmax = _split_corners(boxlist)
    return tf.squeeze((ymax - ymin) * (xmax - xmin), [1])


def height_width(boxlist, scope=None):
  """Returns (heights, widths), two float32 [N] tensors."""
  with tf.name_scope(scope or 'HeightWidth'):
    ymin, xmin, ymax, xmax = _split_corners(boxlist)
    return tf.squeeze(ymax - ymin, [1]), tf.squeeze(xmax - xmin, [1])


def scale(boxlist, y_scale, x_scale, scope=None):
  """Multiplies y coordinates by `y_scale` and x coordinates by `x_scale` (scalars).

  Returns:
    BoxList with N scaled boxes and the input's extra fields.
  """
  with tf.name_scope(scope or 'Scale'):
    y_scale = tf.cast(y_scale, tf.float32)
    x_scale = tf.cast(x_scale, tf.float32)
    ymin, xmin, ymax, xmax = _split_corners(boxlist)
    scaled = box_list.BoxList(
        tf.concat([y_scale * ymin, x_scale * xmin, y_scale * ymax, x_scale * xmax], 1))
    return _copy_extra_fields(scaled, boxlist)


def scale_height_width(boxlist, y_scale, x_scale, scope=None):
  """Scales box heights by `y_scale` and widths by `x_scale` about the box centers."""
  with tf.name_scope(scope or 'ScaleHeightWidth'):
    y_scale = tf.cast(y_scale, tf.float32)
    x_scale = tf.cast(x_scale, tf.float32)
    yc, xc, height, width = boxlist.get_center_coordinates_and_sizes()
    half_h = 0.5 * y_scale * height
    half_w = 0.5 * x_scale * width
    scaled = box_list.BoxList(tf.stack([yc - half_h, xc - half_w, yc + half_h, xc + half_w], 1))
    return _copy_extra_fields(scaled, boxlist)


def clip_to_window(boxlist, window, filter_nonoverlapping=True, scope=None):
  """Clips boxes to `window`, optionally dropping the boxes left with zero area.

  Args:
    boxlist: BoxList of M_in boxes.
    window: float32 [4] ymin, xmin, ymax, xmax of the window, same coordinates as the boxes.
    filter_nonoverlapping: if True, boxes whose clipped area is 0 are removed (with their fields).
    scope: name scope.

  Returns:
    BoxList of M_out <= M_in clipped boxes (M_out == M_in when filter_nonoverlapping is False).
  """
  with tf.name_scope(scope or 'ClipToWindow'):
    ymin, xmin, ymax, xmax = _split_corners(boxlist)
    win_ymin, win_xmin, win_ymax, win_xmax = window[0], window[1], window[2], window[3]

    def clip(value, low, high):
      return tf.maximum(tf.minimum(value, high), low)

    clipped = box_list.BoxList(tf.concat([
        clip(ymin, win_ymin, win_ymax), clip(xmin, win_xmin, win_xmax),
        clip(ymax, win_ymin, win_ymax), clip(xmax, win_xmin, win_xmax)], 1))
    clipped = _copy_extra_fields(clipped, boxlist)
    if filter_nonoverlapping:
      keep = tf.cast(tf.reshape(tf.where(tf.greater(area(clipped), 0.0)), [-1]), tf.int32)
      clipped = gather(clipped, keep)
    return clipped


def prune_outside_window(boxlist, window, scope=None):
  """Removes boxes that are not entirely inside `window`.

  Args:
    boxlist: BoxList of M_in boxes.
    window: float32 [4] ymin, xmin, ymax, xmax.
    scope: name scope.

  Returns:
    pruned_boxlist: BoxList of the M_out boxes (and fields) fully inside the window.
    valid_indices: int64 [M_out] indices of the kept boxes in the input.
  """
  with tf.name_scope(scope or 'PruneOutsideWindow'):
    ymin, xmin, ymax, xmax = _split_corners(boxlist)
    win_ymin, win_xmin, win_ymax, win_xmax = tf.unstack(window)
    outside = tf.concat([tf.less(ymin, win_ymin), tf.less(xmin, win_xmin),
                         tf.greater(ymax, win_ymax), tf.greater(xmax, win_xmax)], 1)
    valid_indices = tf.reshape(tf.where(tf.logical_not(tf.reduce_any(outside, 1))), [-1])
    return gather(boxlist, valid_indices), valid_indices


def prune_completely_outside_window(boxlist, window, scope=None):
  """Removes boxes that do not overlap `window` at all (partially outside boxes are kept).

  Returns:
    pruned_boxlist: BoxList of the kept boxes; valid_indices: int64 [M_out] indices of them.
  """
  with tf.name_scope(scope or 'PruneCompleteleyOutsideWindow'):
    ymin, xmin, ymax, xmax = _split_corners(boxlist)
    win_ymin, win_xmin, win_ymax, win_xmax = tf.unstack(window)
    outside = tf.concat([tf.greater_equal(ymin, win_ymax), tf.greater_equal(xmin, win_xmax),
                         tf.less_equal(ymax, win_ymin), tf.less_equal(xmax, win_xmin)], 1)
    valid_indices = tf.reshape(tf.where(tf.logical_not(tf.reduce_any(outside, 1))), [-1])
    return gather(boxlist, valid_indices), valid_indices


def intersection(boxlist1, boxlist2, scope=None):
  """Returns float32 [N, M] pairwise intersection areas of N and M boxes."""
  with tf.name_scope(scope or 'Intersection'):
    ymin1, xmin1, ymax1, xmax1 = _split_corners(boxlist1)
    ymin2, xmin2, ymax2, xmax2 = _split_corners(boxlist2)
    heights = tf.maximum(
        0.0, tf.minimum(ymax1, tf.transpose(ymax2)) - tf.maximum(ymin1, tf.transpose(ymin2)))
    widths = tf.maximum(
        0.0, tf.minimum(xmax1, tf.transpose(xmax2)) - tf.maximum(xmin1, tf.transpose(xmin2)))
    return heights * widths


def matched_intersection(boxlist1, boxlist2, scope=None):
  """Returns float32 [N] intersection areas of box i of boxlist1 with box i of boxlist2."""
  with tf.name_scope(scope or 'MatchedIntersection'):
    ymin1, xmin1, ymax1, xmax1 = _split_corners(boxlist1)
    ymin2, xmin2, ymax2, xmax2 = _split_corners(boxlist2)
    heights = tf.maximum(0.0, tf.minimum(ymax1, ymax2) - tf.maximum(ymin1, ymin2))
    widths = tf.maximum(0.0, tf.minimum(xmax1, xmax2) - tf.maximum(xmin1, xmin2))
    return tf.reshape(heights * widths, [-1])


def iou(boxlist1, boxlist2, scope=None):
  """Returns float32 [N, M] pairwise IoU; 0 wherever the intersection is 0 (no 0 / 0)."""
  with tf.name_scope(scope or 'IOU'):
    inter = intersection(boxlist1, boxlist2)
    unions = tf.expand_dims(area(boxlist1), 1) + tf.expand_dims(area(boxlist2), 0) - inter
    return tf.where(tf.equal(inter, 0.0), tf.zeros_like(inter), tf.truediv(inter, unions))


def matched_iou(boxlist1, boxlist2, scope=None):
  """Returns float32 [N] IoU of box i of boxlist1 with box i of boxlist2."""
  with tf.name_scope(scope or 'MatchedIOU'):
    inter = matched_intersection(boxlist1, boxlist2)
    unions = area(boxlist1) + area(boxlist2) - inter
    return tf.where(tf.equal(inter, 0.0), tf.zeros_like(inter), tf.truediv(inter, unions))


def ioa(boxlist1, boxlist2, scope=None):
  """Returns float32 [N, M] intersection over the area of the boxlist2 box (not symmetric)."""
  with tf.name_scope(scope or 'IOA'):
    return tf.truediv(intersection(boxlist1, boxlist2), tf.expand_dims(area(boxlist2), 0))


def prune_non_overlapping_boxes(boxlist1, boxlist2, min_overlap=0.0, scope=None):
  """Keeps the boxes of boxlist1 whose best IoA with a boxlist2 box is >= min_overlap.

  Returns:
    new_boxlist1: BoxList of the kept boxes; keep_inds: int64 [N'] their indices in boxlist1.
  """
  with tf.name_scope(scope or 'PruneNonOverlappingBoxes'):
    best_ioa = tf.reduce_max(ioa(boxlist2, boxlist1), axis=[0])
    keep_inds = tf.squeeze(tf.where(tf.greater_equal(best_ioa, tf.constant(min_overlap))), axis=[1])
    return gather(boxlist1, keep_inds), keep_inds


def prune_small_boxes(boxlist, min_side, scope=None):
  """Keeps the boxes whose height and width are both >= min_side."""
  with tf.name_scope(scope or 'PruneSmallBoxes'):
    height, width = height_width(boxlist)
    keep = tf.logical_and(tf.greater_equal(width, min_side), tf.greater_equal(height, min_side))
    return gather(boxlist, tf.reshape(tf.where(keep), [-1]))


def change_coordinate_frame(boxlist, window, scope=None):
  """Expresses boxes relative to `window` (window min corner -> (0, 0), max corner -> (1, 1)).

  Args:
    boxlist: BoxList of N boxes.
    window: float32 [4] ymin, xmin, ymax, xmax in the boxes' coordinates.
    scope: name scope.

  Returns:
    BoxList of N boxes with the input's extra fields.
  """
  with tf.name_scope(scope or 'ChangeCoordinateFrame'):
    win_height = window[2] - window[0]
    win_width = window[3] - window[1]
    shifted = box_list.BoxList(boxlist.get() - [window[0], window[1], window[0], window[1]])
    reframed = scale(shifted, 1.0 / win_height, 1.0 / win_width)
    return _copy_extra_fields(reframed, boxlist)


def sq_dist(boxlist1, boxlist2, scope=None):
  """Returns float32 [N, M] squared Euclidean distances between boxes seen as 4-vectors."""
  with tf.name_scope(scope or 'SqDist'):
    sqnorm1 = tf.reduce_sum(tf.square(boxlist1.get()), 1, keepdims=True)
    sqnorm2 = tf.reduce_sum(tf.square(boxlist2.get()), 1, keepdims=True)
    inner = tf.matmul(boxlist1.get(), boxlist2.get(), transpose_a=False, transpose_b=True)
    return sqnorm1 + tf.transpose(sqnorm2) - 2.0 * inner


def boolean_mask(boxlist, indicator, fields=None, scope=None, use_static_shapes=False,
                 indicator_sum=None):
  """Keeps the boxes (and fields) where `indicator` is True.

  Args:
    boxlist: BoxList of N boxes.
    indicator: bool [N].
    fields: extra fields to carry over (default: all; [] keeps only the boxes). Ignored on the
      static path, which gathers every field as `gather` does.
    scope: name scope.
    use_static_shapes: if True, select with a one-hot matmul so the output has the static size
      `indicator_sum` (the selected boxes first, in order).
    indicator_sum: int, the number of True entries in `indicator`; required when
      use_static_shapes is True.

  Returns:
    BoxList of the selected boxes.

  Raises:
    ValueError: if `indicator` is not rank-1 bool, if use_static_shapes is set without an int
      `indicator_sum`, or if a requested field is missing.
  """
  with tf.name_scope(scope or 'BooleanMask'):
    if indicator.shape.ndims != 1:
      raise ValueError('indicator should have rank 1')
    if indicator.dtype != tf.bool:
      raise ValueError('indicator should be a boolean tensor')
    if use_static_shapes:
      if not (indicator_sum and isinstance(indicator_sum, int)):
        raise ValueError('`indicator_sum` must be a of type int')
      # Rank (1-based) of each selected entry among the selected ones; 0 for unselected entries,
      # whose one-hot row (index -1) is all zeros.
      selected = tf.cast(indicator, tf.float32)
      rank = tf.cast(tf.multiply(tf.cumsum(selected), selected), tf.int32)
      selector = tf.one_hot(rank - 1, indicator_sum, dtype=tf.float32)
      positions = tf.cast(tf.range(tf.shape(indicator)[0]), tf.float32)
      sampled_indices = tf.cast(tf.tensordot(positions, selector, axes=[0, 0]), tf.int32)
      return gather(boxlist, sampled_indices, use_static_shapes=True)
    subboxlist = box_list.BoxList(tf.boolean_mask(boxlist.get(), indicator))
    if fields is None:
      fields = boxlist.get_extra_fields()
    for field in fields:
      if not boxlist.has_field(field):
        raise ValueError('boxlist must contain all specified fields')
      subboxlist.add_field(field, tf.boolean_mask(boxlist.get_field(field), indicator))
    return subboxlist


def gather(boxlist, indices, fields=None, scope=None, use_static_shapes=False):
  """Gathers boxes (and fields) at `indices`.

  Args:
    boxlist: BoxList of N boxes.
    indices: int32 / int64 [K].
    fields: extra fields to carry over (default: all; [] keeps only the boxes).
    scope: name scope.
    use_static_shapes: if True, gather with `ops.matmul_gather_on_zeroth_axis` (float fields).

  Returns:
    BoxList of K boxes.

  Raises:
    ValueError: if `indices` is not a rank-1 int32/int64 tensor, or a requested field is missing.
  """
  with tf.name_scope(scope or 'Gather'):
    if len(indices.shape.as_list()) != 1:
      raise ValueError('indices should have rank 1')
    if indices.dtype != tf.int32 and indices.dtype != tf.int64:
      raise ValueError('indices should be an int32 / int64 tensor')
    gather_op = ops.matmul_gather_on_zeroth_axis if use_static_shapes else tf.gather
    subboxlist = box_list.BoxList(gather_op(boxlist.get(), indices))
    if fields is None:
      fields = boxlist.get_extra_fields()
    for field in fields:
      if not boxlist.has_field(field):
        raise ValueError('boxlist must contain all specified fields')
      subboxlist.add_field(field, gather_op(boxlist.get_field(field), indices))
    return subboxlist


def concatenate(boxlists, fields=None, scope=None):
  """Concatenates BoxLists along the box dimension.

  Args:
    boxlists: non-empty list of BoxLists.
    fields: extra fields to concatenate (default: the extra fields of the first BoxList); each
      must exist in every BoxList with the same static shape apart from dimension 0.
    scope: name scope.

  Returns:
    BoxList with sum(num_boxes) boxes.

  Raises:
    ValueError: if `boxlists` is not a non-empty list of BoxLists, or a field is missing or has
      inconsistent / not fully defined trailing dimensions.
  """
  with tf.name_scope(scope or 'Concatenate'):
    if not isinstance(boxlists, list):
      raise ValueError('boxlists should be a list')
    if not boxlists:
      raise ValueError('boxlists should have nonzero length')
    for boxlist in boxlists:
      if not isinstance(boxlist, box_list.BoxList):
        raise ValueError('all elements of boxlists should be BoxList objects')
    concatenated = box_list.BoxList(tf.concat([b.get() for b in boxlists], 0))
    if fields is None:
      fields = boxlists[0].get_extra_fields()
    for field in fields:
      first_shape = boxlists[0].get_field(field).get_shape().as_list()
      first_shape[0] = -1
      if None in first_shape:
        raise ValueError('field %s must have fully defined shape except for the 0th dimension.'
                         % field)
      for boxlist in boxlists:
        if not boxlist.has_field(field):
          raise ValueError('boxlist must contain all requested fields')
        shape = boxlist.get_field(field).get_shape().as_list()
        shape[0] = -1
        if shape != first_shape:
          raise ValueError('field %s must have same shape for all boxlists except for the 0th '
                           'dimension.' % field)
      concatenated.add_field(field, tf.concat([b.get_field(field) for b in boxlists], 0))
    return concatenated


def sort_by_field(boxlist, field, order=SortOrder.descend, scope=None):
  """Sorts boxes and fields by a rank-1 field (`tf.nn.top_k` order; ascend reverses it).

  Raises:
    ValueError: if the field is missing or not rank 1, or `order` is invalid.
  """
  with tf.name_scope(scope or 'SortByField'):
    if order != SortOrder.descend and order != SortOrder.ascend:
      raise ValueError('Invalid sort order')
    values = boxlist.get_field(field)
    if len(values.shape.as_list()) != 1:
      raise ValueError('Field should have rank 1')
    num_boxes = boxlist.num_boxes()
    size_check = tf.debugging.Assert(
        tf.equal(num_boxes, tf.size(values)),
        ['Incorrect field size: actual vs expected.', tf.size(values), num_boxes])
    with tf.control_dependencies([size_check]):
      _, order_indices = tf.nn.top_k(values, num_boxes, sorted=True)
    if order == SortOrder.ascend:
      order_indices = tf.reverse(order_indices, [0])
    return gather(boxlist, order_indices)


def filter_field_value_equals(boxlist, field, value, scope=None):
  """Keeps the boxes whose `field` equals `value`.

  Raises:
    ValueError: if `boxlist` is not a BoxList or lacks `field`.
  """
  with tf.name_scope(scope or 'FilterFieldValueEquals'):
    if not isinstance(boxlist, box_list.BoxList):
      raise ValueError('boxlist must be a BoxList')
    if not boxlist.has_field(field):
      raise ValueError('boxlist must contain the specified field')
    keep = tf.reshape(tf.where(tf.equal(boxlist.get_field(field), value)), [-1])
    return gather(boxlist, keep)


def filter_greater_than(boxlist, thresh, scope=None):
  """Keeps the boxes whose 'scores' field ([N] or [N, 1]) is > thresh.

  Raises:
    ValueError: if `boxlist` is not a BoxList, has no 'scores' field, or the scores have another
      shape.
  """
  with tf.name_scope(scope or 'FilterGreaterThan'):
    if not isinstance(boxlist, box_list.BoxList):
      raise ValueError('boxlist must be a BoxList')
    if not boxlist.has_field('scores'):
      raise ValueError('input boxlist must have \'scores\' field')
    scores = boxlist.get_field('scores')
    if len(scores.shape.as_list()) > 2:
      raise ValueError('Scores should have rank 1 or 2')
    if len(scores.shape.as_list()) == 2 and scores.shape.as_list()[1] != 1:
      raise ValueError('Scores should have rank 1 or have shape consistent with [None, 1]')
    keep = tf.cast(tf.reshape(tf.where(tf.greater(scores, thresh)), [-1]), tf.int32)
    return gather(boxlist, keep)


def non_max_suppression(boxlist, thresh, max_output_size, scope=None):
  """Single-class NMS (`tf.image.non_max_suppression`) on a BoxList with a 'scores' field.

  Raises:
    ValueError: if thresh is not in [0, 1], or `boxlist` is not a BoxList with 'scores'.
  """
  with tf.name_scope(scope or 'NonMaxSuppression'):
    if not 0 <= thresh <= 1.0:
      raise ValueError('thresh must be between 0 and 1')
    if not isinstance(boxlist, box_list.BoxList):
      raise ValueError('boxlist must be a BoxList')
    if not boxlist.has_field('scores'):
      raise ValueError('input boxlist must have \'scores\' field')
    selected = tf.image.non_max_suppression(
        boxlist.get(), boxlist.get_field('scores'), max_output_size, iou_threshold=thresh)
    return gather(boxlist, selected)


def to_normalized_coordinates(boxlist, height, width, check_range=True, scope=None):
  """Converts absolute pixel boxes to normalized [0, 1] coordinates (multiplies by 1 / size).

  Args:
    boxlist: BoxList in absolute pixel coordinates.
    height: image height (int, float or scalar tensor).
    width: image width.
    check_range: if True, asserts (at run time) that the largest coordinate is > 1.01, i.e. the
      boxes were not already normalized.
    scope: name scope.

  Returns:
    BoxList in normalized coordinates with the input's extra fields.
  """
  with tf.name_scope(scope or 'ToNormalizedCoordinates'):
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    if check_range:
      max_val = tf.reduce_max(boxlist.get())
      check = tf.debugging.Assert(tf.greater(max_val, 1.01),
                                  ['max value is lower than 1.01: ', max_val])
      with tf.control_dependencies([check]):
        width = tf.identity(width)
    return scale(boxlist, 1 / height, 1 / width)


def to_absolute_coordinates(boxlist, height, width, check_range=True,
                            maximum_normalized_coordinate=1.1, scope=None):
  """Converts normalized boxes to absolute pixel coordinates.

  Args:
    boxlist: BoxList in normalized coordinates.
    height: image height (int, float or scalar tensor).
    width: image width.
    check_range: if True, asserts (at run time) that no coordinate exceeds
      `maximum_normalized_coordinate`.
    maximum_normalized_coordinate: float, largest value accepted as normalized.
    scope: name scope.

  Returns:
    BoxList in absolute coordinates with the input's extra fields.
  """
  with tf.name_scope(scope or 'ToAbsoluteCoordinates'):
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    if check_range:
      box_maximum = tf.reduce_max(boxlist.get())
      check = tf.debugging.Assert(
          tf.greater_equal(maximum_normalized_coordinate, box_maximum),
          ['maximum box coordinate value is larger than %f: ' % maximum_normalized_coordinate,
           box_maximum])
      with tf.control_dependencies([check]):
        width = tf.identity(width)
    return scale(boxlist, height, width)


def pad_or_clip_box_list(boxlist, num_boxes, scope=None):
  """Zero-pads or clips the boxes and every extra field to `num_boxes` rows.

  Args:
    boxlist: BoxList of any number of boxes.
    num_boxes: int (static output size) or scalar int tensor.
    scope: name scope.

  Returns:
    BoxList of exactly `num_boxes` boxes: the first ones of the input, then zero rows.
  """
  with tf.name_scope(scope or 'PadOrClipBoxList'):
    padded = box_list.BoxList(shape_utils.pad_or_clip_tensor(boxlist.get(), num_boxes))
    for field in boxlist.get_extra_fields():
      padded.add_field(field, shape_utils.pad_or_clip_tensor(boxlist.get_field(field), num_boxes))
    return padded
