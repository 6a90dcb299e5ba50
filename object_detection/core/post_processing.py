"""Non-maximum suppression post-processing (matches the TF OD API's `core/post_processing.py`).

Public functions and their TF OD API counterparts (same arguments, defaults and outputs):

* `multiclass_non_max_suppression`: per-class NMS on one image.
* `class_agnostic_non_max_suppression`: NMS on each box's best class score, one image.
* `batch_multiclass_non_max_suppression`: either of the above over a batch, padded outputs
  (this is what the Faster R-CNN / Mask R-CNN meta-architecture calls for both stages).
* `partitioned_non_max_suppression_padded`: tiled NMS used when `use_partitioned_nms` is set.
* `batch_iou`: pairwise IoU of two batched box sets with the -1 padding convention.

Boxes are [ymin, xmin, ymax, xmax] in whatever frame the caller uses (absolute pixels for the
first stage, absolute or normalized for the second stage); `clip_window` must be in the same frame.
The TF ops that do the suppression itself (`tf.image.non_max_suppression_with_scores`,
`non_max_suppression_padded`, `non_max_suppression`, `combined_non_max_suppression`) are the
ones the TF OD API calls, so selections and tie-breaking match it exactly.

Internally a set of boxes and their per-box fields is a plain dict of tensors sharing the first
dimension (the TF OD API uses a BoxList): 'boxes', 'scores', 'classes', 'masks', 'boundaries' and
the caller's additional fields under ('extra', key).
"""

import collections
import logging

import numpy as np
import tensorflow as tf

_NMS_TILE_SIZE = 512

_BOXES = 'boxes'
_SCORES = 'scores'
_CLASSES = 'classes'
_MASKS = 'masks'
_BOUNDARIES = 'boundaries'


def _extra_key(key):
  return ('extra', key)


# ----------------------------------------------------------------------------------------------
# Small helpers on dicts of per-box tensors.
# ----------------------------------------------------------------------------------------------


def _gather_fields(fields, indices):
  return {name: tf.gather(value, indices) for name, value in fields.items()}


def _concat_fields(field_dicts):
  return {name: tf.concat([d[name] for d in field_dicts], 0) for name in field_dicts[0]}


def _num_rows(fields):
  return tf.shape(fields[_BOXES])[0]


def _sort_fields_by_scores(fields):
  # top_k over the whole list: descending, ties broken by lower index (as the TF OD API's
  # box_list_ops.sort_by_field).
  _, order = tf.nn.top_k(fields[_SCORES], _num_rows(fields), sorted=True)
  return _gather_fields(fields, order)


def _box_area(boxes):
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
  return (ymax - ymin) * (xmax - xmin)


def _clip_boxes_to_window(boxes, window):
  ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
  win_ymin, win_xmin, win_ymax, win_xmax = window[0], window[1], window[2], window[3]
  return tf.stack([
      tf.maximum(tf.minimum(ymin, win_ymax), win_ymin),
      tf.maximum(tf.minimum(xmin, win_xmax), win_xmin),
      tf.maximum(tf.minimum(ymax, win_ymax), win_ymin),
      tf.maximum(tf.minimum(xmax, win_xmax), win_xmin),
  ], axis=1)


def _to_window_frame(boxes, window):
  """Expresses boxes relative to `window` (its min corner -> 0, max corner -> 1)."""
  y_scale = 1.0 / (window[2] - window[0])
  x_scale = 1.0 / (window[3] - window[1])
  shifted = boxes - tf.stack([window[0], window[1], window[0], window[1]])
  ymin, xmin, ymax, xmax = tf.unstack(shifted, axis=1)
  return tf.stack([y_scale * ymin, x_scale * xmin, y_scale * ymax, x_scale * xmax], axis=1)


def _pad_or_clip_rows(tensor, num_rows):
  """Keeps the first `num_rows` rows of `tensor`, zero-padding at the end when it is shorter."""
  rank = len(tensor.shape)
  current = tf.shape(tensor)[0]
  size = [tf.where(current - num_rows > 0, num_rows, -1)] + [-1] * (rank - 1)
  clipped = tf.slice(tensor, tf.zeros([rank], tf.int32), tf.stack(size))
  paddings = [[0, num_rows - tf.shape(clipped)[0]]] + [[0, 0]] * (rank - 1)
  padded = tf.pad(clipped, paddings)
  static_rows = num_rows if not isinstance(num_rows, tf.Tensor) else None
  padded.set_shape([static_rows] + tensor.shape.as_list()[1:])
  return padded


def _static_dim(dim):
  return dim if dim is None or isinstance(dim, int) else tf.compat.dimension_value(dim)


# ----------------------------------------------------------------------------------------------
# Tiled (partitioned) NMS.
# ----------------------------------------------------------------------------------------------


def batch_iou(boxes1, boxes2):
  """Pairwise IoU between two batched box sets (TF OD API `post_processing.batch_iou`).

  Args:
    boxes1: float32 [batch, N, 4] boxes [ymin, xmin, ymax, xmax].
    boxes2: float32 [batch, M, 4] boxes; rows padded with negative values (all -1) are padding.

  Returns:
    float32 [batch, N, M] IoU; -1 where the pair's intersection lies entirely at negative
    coordinates (i.e. against padded boxes). The union gets +1e-8 to avoid division by zero.
  """
  y1_min, x1_min, y1_max, x1_max = tf.split(boxes1, 4, axis=2)
  y2_min, x2_min, y2_max, x2_max = [tf.transpose(t, [0, 2, 1]) for t in tf.split(boxes2, 4, axis=2)]
  inter_xmin = tf.maximum(x1_min, x2_min)
  inter_xmax = tf.minimum(x1_max, x2_max)
  inter_ymin = tf.maximum(y1_min, y2_min)
  inter_ymax = tf.minimum(y1_max, y2_max)
  inter = tf.maximum(inter_xmax - inter_xmin, 0) * tf.maximum(inter_ymax - inter_ymin, 0)
  area1 = (y1_max - y1_min) * (x1_max - x1_min)
  area2 = (y2_max - y2_min) * (x2_max - x2_min)
  union = area1 + area2 - inter + 1e-8
  iou = inter / union
  is_padding = tf.logical_and(inter_xmax < 0, inter_ymax < 0)
  return tf.where(is_padding, -tf.ones_like(iou), iou)


def _suppress_within_tile(tile, iou_threshold):
  """Greedy NMS inside one score-sorted tile of boxes, as a fixed-point iteration.

  A box is suppressed when an earlier, itself unsuppressed box overlaps it with IoU >=
  threshold. The iteration stops when an update removes at most `iou_threshold` of total IoU
  mass (the TF OD API's stopping rule, kept so that borderline cases select the same boxes).
  Returns the tile with suppressed boxes zeroed.
  """
  iou = batch_iou(tile[tf.newaxis], tile[tf.newaxis])[0]
  positions = tf.range(_NMS_TILE_SIZE)
  later = positions[tf.newaxis, :] > positions[:, tf.newaxis]  # [row i, column j]: j after i.
  iou *= tf.cast(tf.logical_and(later, iou >= iou_threshold), iou.dtype)

  def _step(current_iou, _, previous_sum):
    # Column j is unsuppressed when no row hits it; only unsuppressed rows may suppress.
    free = tf.cast(tf.reduce_max(current_iou, 0) <= iou_threshold, current_iou.dtype)
    hit = tf.reduce_max(free[:, tf.newaxis] * current_iou, 0)
    keep_rows = tf.cast(hit <= iou_threshold, current_iou.dtype)
    new_iou = keep_rows[:, tf.newaxis] * current_iou
    new_sum = tf.reduce_sum(new_iou)
    return new_iou, previous_sum - new_sum > iou_threshold, new_sum

  final_iou, _, _ = tf.while_loop(
      lambda _iou, changed, _sum: changed, _step,
      [iou, tf.constant(True), tf.reduce_sum(iou)])
  suppressed = tf.reduce_sum(final_iou, 0) > 0
  return tile * (1.0 - tf.cast(suppressed, tile.dtype))[:, tf.newaxis]


def partitioned_non_max_suppression_padded(boxes,
                                           scores,
                                           max_output_size,
                                           iou_threshold=0.5,
                                           score_threshold=float('-inf')):
  """Tiled hard NMS (TF OD API `post_processing.partitioned_non_max_suppression_padded`).

  Boxes are sorted by score, padded with -1 rows to a multiple of 512, boxes with score <=
  `score_threshold` are set to -1, then tiles of 512 are processed in order: each tile is
  suppressed by the surviving boxes of all earlier tiles (IoU >= threshold) and then by itself.
  Processing stops once at least `max_output_size` boxes survived. A surviving box is one with
  a positive coordinate left.

  Args:
    boxes: float32 [num_boxes, 4].
    scores: float32 [num_boxes].
    max_output_size: int, number of indices returned (must be <= padded number of boxes).
    iou_threshold: float IoU threshold.
    score_threshold: float, boxes with score <= it are dropped.

  Returns:
    selected_indices: int32 [max_output_size] indices into the sorted, padded boxes; surviving
      boxes first in score order, then the last real index as filler.
    num_valid_boxes: int32 scalar, number of surviving boxes in the processed tiles.
    nms_proposals: float32 [padded_num_boxes, 4] the sorted boxes after score masking (note the
      (box + 1) - 1 round trip, which the TF OD API also applies).
    nms_scores: float32 [padded_num_boxes] sorted, zero-padded scores.
    argsort_ids: int32 [num_boxes] input index of each sorted box.
  """
  num_boxes = boxes.shape[0]
  if num_boxes is None:
    num_boxes = tf.shape(boxes)[0]
    num_tiles = tf.cast(tf.math.ceil(tf.cast(num_boxes, tf.float32) / _NMS_TILE_SIZE), tf.int32)
  else:  # Python ints: the padded shapes below are then static (XLA, TPU).
    num_tiles = -(-num_boxes // _NMS_TILE_SIZE)
  padded_size = num_tiles * _NMS_TILE_SIZE
  pad = padded_size - num_boxes

  sorted_scores, argsort_ids = tf.nn.top_k(scores, k=num_boxes, sorted=True)
  sorted_boxes = tf.gather(boxes, argsort_ids)
  sorted_boxes = tf.pad(tf.cast(sorted_boxes, tf.float32), [[0, pad], [0, 0]], constant_values=-1)
  sorted_scores = tf.pad(tf.cast(sorted_scores, tf.float32), [[0, pad]])
  above_threshold = tf.cast(sorted_scores > score_threshold, sorted_boxes.dtype)[:, tf.newaxis]
  sorted_boxes = (sorted_boxes + 1.) * above_threshold - 1.

  def _process_tile(work_boxes, output_size, tile_index):
    start = tile_index * _NMS_TILE_SIZE
    tile = tf.slice(work_boxes, [start, 0], [_NMS_TILE_SIZE, 4])
    # The tile against every box, keeping only the pairs with an earlier box (suppressed boxes are
    # zero and hit nothing): masks rather than slices of data-dependent size keep every shape
    # static, so XLA compiles the loop (the TF OD API loops over earlier tiles for the same result).
    position = tf.range(padded_size)
    cross_iou = batch_iou(work_boxes[tf.newaxis], tile[tf.newaxis])[0]
    earlier = (position < start)[:, tf.newaxis]
    cross_iou = tf.where(earlier, cross_iou, tf.zeros_like(cross_iou))
    not_covered = tf.reduce_all(cross_iou < iou_threshold, axis=0)
    tile = tile * tf.cast(not_covered, tile.dtype)[:, tf.newaxis]
    tile = _suppress_within_tile(tile, iou_threshold)
    in_tile = tf.logical_and(position >= start, position < start + _NMS_TILE_SIZE)
    work_boxes = tf.where(in_tile[:, tf.newaxis], tf.tile(tile, [num_tiles, 1]), work_boxes)
    output_size += tf.reduce_sum(tf.cast(tf.reduce_any(tile > 0, axis=1), tf.int32))
    return work_boxes, output_size, tile_index + 1

  selected_boxes, output_size, _ = tf.while_loop(
      lambda _b, size, index: tf.logical_and(size < max_output_size, index < num_tiles),
      _process_tile,
      [sorted_boxes, tf.constant(0), tf.constant(0)])

  # Survivors ranked by position (earliest first); unselected rows rank last.
  survivor = tf.cast(tf.reduce_any(selected_boxes > 0, axis=1), tf.int32)
  rank_key = survivor * tf.range(padded_size, 0, -1)
  selected_indices = padded_size - tf.nn.top_k(rank_key, max_output_size)[0]
  selected_indices = tf.minimum(selected_indices, padded_size - 1 - pad)
  return selected_indices, output_size, sorted_boxes, sorted_scores, argsort_ids


# ----------------------------------------------------------------------------------------------
# Single-image NMS.
# ----------------------------------------------------------------------------------------------


def _validate_boxes_scores_iou_thresh(boxes, scores, iou_thresh, change_coordinate_frame,
                                      clip_window):
  if not 0 <= iou_thresh <= 1.0:
    raise ValueError('iou_thresh must be between 0 and 1 (got %r); set iou_threshold in [0, 1].'
                     % (iou_thresh,))
  if scores.shape.ndims != 2:
    raise ValueError('scores must be of rank 2 [num_boxes, num_classes] (got shape %s).'
                     % scores.shape)
  if _static_dim(scores.shape[1]) is None:
    raise ValueError('scores must have a statically known second (class) dimension.')
  if boxes.shape.ndims != 3:
    raise ValueError('boxes must be of rank 3 [num_boxes, q, 4] (got shape %s).' % boxes.shape)
  q = _static_dim(boxes.shape[1])
  if not (q == _static_dim(scores.shape[1]) or q == 1):
    raise ValueError('second dimension of boxes (%s) must be 1 or equal to the number of '
                     'classes in scores (%s).' % (q, _static_dim(scores.shape[1])))
  if _static_dim(boxes.shape[2]) != 4:
    raise ValueError('last dimension of boxes must be 4 (got %s).' % boxes.shape[2])
  if change_coordinate_frame and clip_window is None:
    raise ValueError('change_coordinate_frame=True needs a clip_window; pass clip_window.')


def _clip_window_prune_boxes(fields, clip_window, pad_to_max_output_size,
                             change_coordinate_frame):
  """Clips sorted boxes to the window, marks zero-area ones invalid (-1 score), re-sorts.

  Without padding, boxes with no positive area left after clipping are dropped first.
  Returns (fields, number of boxes with score >= 0).
  """
  fields = dict(fields)
  fields[_BOXES] = _clip_boxes_to_window(fields[_BOXES], clip_window)
  if not pad_to_max_output_size:
    keep = tf.cast(tf.reshape(tf.where(_box_area(fields[_BOXES]) > 0.0), [-1]), tf.int32)
    fields = _gather_fields(fields, keep)
  num_rows = _num_rows(fields)
  has_area = tf.cast(_box_area(fields[_BOXES]), tf.bool)
  fields[_SCORES] = tf.where(has_area, fields[_SCORES], -1 * tf.ones(num_rows))
  num_valid = tf.reduce_sum(tf.cast(tf.greater_equal(fields[_SCORES], 0), tf.int32))
  fields = _sort_fields_by_scores(fields)
  if change_coordinate_frame:
    fields[_BOXES] = _to_window_frame(fields[_BOXES], clip_window)
  return fields, num_valid


def _finish_single_image(fields, num_valid, clip_window, pad_to_max_output_size,
                         change_coordinate_frame, max_total_size):
  """Common tail of both single-image NMS variants: sort, clip/prune, cap, drop invalid."""
  fields = _sort_fields_by_scores(fields)
  if clip_window is not None:
    fields, num_valid = _clip_window_prune_boxes(fields, clip_window, pad_to_max_output_size,
                                                 change_coordinate_frame)
  if max_total_size:
    max_total_size = tf.minimum(max_total_size, _num_rows(fields))
    fields = _gather_fields(fields, tf.range(max_total_size))
    num_valid = tf.where(max_total_size > num_valid, num_valid, max_total_size)
  if not pad_to_max_output_size:
    fields = _gather_fields(fields, tf.range(num_valid))
  return fields, num_valid


def _select_with_nms(fields, max_selection_size, iou_thresh, score_thresh, pad_to_max_output_size,
                     use_partitioned_nms, soft_nms_sigma, use_hard_nms):
  """Runs one NMS op on fields[boxes]/fields[scores].

  Returns (selected fields, selected indices, selected scores, num_valid, max_selection_size,
  argsort_ids or None). Selected rows past num_valid are filler (index 0 or the last index)
  whose score the caller sets to -1.
  """
  argsort_ids = None
  if pad_to_max_output_size:
    if use_partitioned_nms:
      (indices, num_valid, sorted_boxes, sorted_scores,
       argsort_ids) = partitioned_non_max_suppression_padded(
           fields[_BOXES], fields[_SCORES], max_selection_size,
           iou_threshold=iou_thresh, score_threshold=score_thresh)
      # Only boxes and scores are replaced by their sorted, padded versions; the other fields
      # stay in input order and are gathered with the sorted indices, as in the TF OD API.
      fields = dict(fields)
      fields[_BOXES] = sorted_boxes
      fields[_SCORES] = sorted_scores
    else:
      indices, num_valid = tf.image.non_max_suppression_padded(
          fields[_BOXES], fields[_SCORES], max_selection_size, iou_threshold=iou_thresh,
          score_threshold=score_thresh, pad_to_max_output_size=True)
    selected = _gather_fields(fields, indices)
    selected_scores = selected[_SCORES]
    return selected, indices, selected_scores, num_valid, max_selection_size, argsort_ids

  max_selection_size = tf.minimum(max_selection_size, _num_rows(fields))
  if not use_hard_nms:
    indices, selected_scores = tf.image.non_max_suppression_with_scores(
        fields[_BOXES], fields[_SCORES], max_selection_size, iou_threshold=iou_thresh,
        score_threshold=score_thresh, soft_nms_sigma=soft_nms_sigma)
    num_valid = tf.shape(indices)[0]
    filler = max_selection_size - num_valid
    indices = tf.concat([indices, tf.zeros(filler, tf.int32)], 0)
    selected_scores = tf.concat([selected_scores, tf.zeros(filler, tf.float32)], -1)
    selected = _gather_fields(fields, indices)
  else:
    if soft_nms_sigma != 0:
      raise ValueError('soft_nms_sigma must be 0 when use_hard_nms is True; unset one of them.')
    indices = tf.image.non_max_suppression(
        fields[_BOXES], fields[_SCORES], max_selection_size, iou_threshold=iou_thresh,
        score_threshold=score_thresh)
    num_valid = tf.shape(indices)[0]
    indices = tf.concat([indices, tf.zeros(max_selection_size - num_valid, tf.int32)], 0)
    selected = _gather_fields(fields, indices)
    selected_scores = selected[_SCORES]
  return selected, indices, selected_scores, num_valid, max_selection_size, argsort_ids


def _to_box_list(fields):
  """Wraps the result dict into the project's BoxList (fields named as the TF OD API's)."""
  from object_detection.core import box_list  # pylint: disable=g-import-not-at-top
  boxlist = box_list.BoxList(fields[_BOXES])
  for name, value in fields.items():
    if name == _BOXES:
      continue
    boxlist.add_field(name[1] if isinstance(name, tuple) else name, value)
  return boxlist


class _NoDevice(object):

  def __enter__(self):
    return None

  def __exit__(self, *unused_args):
    return False


def _multiclass_nms_fields(boxes, scores, score_thresh, iou_thresh, max_size_per_class,
                           max_total_size=0, clip_window=None, change_coordinate_frame=False,
                           masks=None, boundaries=None, pad_to_max_output_size=False,
                           use_partitioned_nms=False, additional_fields=None,
                           soft_nms_sigma=0.0, use_hard_nms=False, use_cpu_nms=False,
                           scope=None):
  """`multiclass_non_max_suppression` returning (fields dict, num_valid)."""
  _validate_boxes_scores_iou_thresh(boxes, scores, iou_thresh, change_coordinate_frame,
                                    clip_window)
  if pad_to_max_output_size and soft_nms_sigma != 0.0:
    raise ValueError('soft_nms_sigma != 0 is not supported with padded (static-shape) NMS; '
                     'set use_static_shapes false or soft_nms_sigma 0.')
  device = tf.device('cpu:0') if use_cpu_nms else _NoDevice()
  with tf.name_scope(scope or 'MultiClassNonMaxSuppression'), device:
    num_classes = _static_dim(scores.shape[1])
    per_class_boxes = tf.unstack(boxes, axis=1)
    per_class_masks = tf.unstack(masks, axis=1) if masks is not None else None
    per_class_boundaries = tf.unstack(boundaries, axis=1) if boundaries is not None else None
    shared_boxes = len(per_class_boxes) == 1

    selected_per_class = []
    num_valid_total = tf.constant(0)
    for class_idx in range(num_classes):
      box_idx = 0 if shared_boxes else class_idx
      fields = {_BOXES: per_class_boxes[box_idx], _SCORES: scores[:, class_idx]}
      if per_class_masks is not None:
        fields[_MASKS] = per_class_masks[box_idx]
      if per_class_boundaries is not None:
        fields[_BOUNDARIES] = per_class_boundaries[box_idx]
      for key, tensor in (additional_fields or {}).items():
        fields[_extra_key(key)] = tensor

      selected, _, selected_scores, num_valid, size, _ = _select_with_nms(
          fields, max_size_per_class, iou_thresh, score_thresh, pad_to_max_output_size,
          use_partitioned_nms, soft_nms_sigma, use_hard_nms)
      is_valid = tf.less(tf.range(size), num_valid)
      selected[_SCORES] = tf.where(is_valid, selected_scores, -1 * tf.ones(size))
      num_valid_total += num_valid
      selected[_CLASSES] = tf.zeros_like(selected[_SCORES]) + class_idx
      selected_per_class.append(selected)

    return _finish_single_image(_concat_fields(selected_per_class), num_valid_total, clip_window,
                                pad_to_max_output_size, change_coordinate_frame, max_total_size)


def multiclass_non_max_suppression(boxes,
                                   scores,
                                   score_thresh,
                                   iou_thresh,
                                   max_size_per_class,
                                   max_total_size=0,
                                   clip_window=None,
                                   change_coordinate_frame=False,
                                   masks=None,
                                   boundaries=None,
                                   pad_to_max_output_size=False,
                                   use_partitioned_nms=False,
                                   additional_fields=None,
                                   soft_nms_sigma=0.0,
                                   use_hard_nms=False,
                                   use_cpu_nms=False,
                                   scope=None):
  """Per-class NMS on one image (TF OD API `post_processing.multiclass_non_max_suppression`).

  Order of operations (it decides the output): per class, NMS with `score_thresh` (boxes with
  score <= score_thresh are dropped) keeps up to `max_size_per_class` boxes; all classes are
  concatenated and sorted by score; with a `clip_window` boxes are clipped to it, (without
  padding) boxes left with no area are dropped, zero-area boxes get score -1, the list is
  re-sorted and optionally expressed in the window's frame; then the first `max_total_size`
  (if nonzero) are kept and, without padding, only the valid ones.

  Args:
    boxes: float32 [k, q, 4], q = 1 (shared boxes) or num_classes.
    scores: float32 [k, num_classes] (num_classes static); non-negative when padding.
    score_thresh: float score threshold.
    iou_thresh: float IoU threshold in [0, 1].
    max_size_per_class: int, boxes kept per class.
    max_total_size: int, boxes kept over all classes (0: no cap).
    clip_window: optional float32 [4] window [ymin, xmin, ymax, xmax] in the boxes' frame.
    change_coordinate_frame: express output boxes relative to clip_window (needs clip_window).
    masks: optional float32 [k, q, mask_height, mask_width].
    boundaries: optional float32 [k, q, boundary_height, boundary_width].
    pad_to_max_output_size: pad each class to max_size_per_class (static shapes).
    use_partitioned_nms: use `partitioned_non_max_suppression_padded` (padding only).
    additional_fields: optional dict key -> tensor [k, ...], gathered with the boxes.
    soft_nms_sigma: Soft-NMS sigma (0: hard NMS); not with padding.
    use_hard_nms: use tf.image.non_max_suppression instead of the with_scores variant.
    use_cpu_nms: place the ops on the CPU.
    scope: name scope.

  Returns:
    (boxlist, num_valid_nms_boxes): a BoxList (object_detection.core.box_list) with fields
    'scores', 'classes' (float32 class index, 0-based over `scores` columns), 'masks' /
    'boundaries' if given and the additional fields; valid boxes come first. num_valid is an
    int32 scalar.

  Raises:
    ValueError: bad shapes, iou_thresh outside [0, 1], change_coordinate_frame without
      clip_window, soft NMS with padding.
  """
  fields, num_valid = _multiclass_nms_fields(
      boxes, scores, score_thresh, iou_thresh, max_size_per_class, max_total_size, clip_window,
      change_coordinate_frame, masks, boundaries, pad_to_max_output_size, use_partitioned_nms,
      additional_fields, soft_nms_sigma, use_hard_nms, use_cpu_nms, scope)
  return _to_box_list(fields), num_valid


def _class_agnostic_nms_fields(boxes, scores, score_thresh, iou_thresh,
                               max_classes_per_detection=1, max_total_size=0, clip_window=None,
                               change_coordinate_frame=False, masks=None, boundaries=None,
                               pad_to_max_output_size=False, use_partitioned_nms=False,
                               additional_fields=None, soft_nms_sigma=0.0, scope=None):
  """`class_agnostic_non_max_suppression` returning (fields dict, num_valid)."""
  _validate_boxes_scores_iou_thresh(boxes, scores, iou_thresh, change_coordinate_frame,
                                    clip_window)
  if pad_to_max_output_size and soft_nms_sigma != 0.0:
    raise ValueError('soft_nms_sigma != 0 is not supported with padded (static-shape) NMS; '
                     'set use_static_shapes false or soft_nms_sigma 0.')
  if max_classes_per_detection > 1:
    raise ValueError('max_classes_per_detection > 1 is not supported by class-agnostic NMS '
                     '(the TF OD API refuses it too); set max_classes_per_detection: 1.')
  if _static_dim(boxes.shape[1]) > 1:
    # Per-class boxes: each detection keeps the box (and mask) of its best class.
    best_class = tf.argmax(scores, axis=1, output_type=tf.int32)[:, tf.newaxis]
    boxes = tf.gather(boxes, best_class, batch_dims=1)
    if masks is not None:
      masks = tf.gather(masks, best_class, batch_dims=1)
    if boundaries is not None:
      boundaries = tf.gather(boundaries, best_class, batch_dims=1)
  fields = {_BOXES: tf.squeeze(boxes, axis=[1]), _SCORES: tf.reduce_max(scores, axis=-1)}
  if masks is not None:
    fields[_MASKS] = tf.squeeze(masks, axis=[1])
  if boundaries is not None:
    fields[_BOUNDARIES] = tf.squeeze(boundaries, axis=[1])
  for key, tensor in (additional_fields or {}).items():
    fields[_extra_key(key)] = tensor

  with tf.name_scope(scope or 'ClassAgnosticNonMaxSuppression'):
    best_classes = tf.argmax(scores, axis=-1)
    selected, indices, selected_scores, num_valid, size, argsort_ids = _select_with_nms(
        fields, max_total_size, iou_thresh, score_thresh, pad_to_max_output_size,
        use_partitioned_nms, soft_nms_sigma, use_hard_nms=False)
    if argsort_ids is not None:
      best_classes = tf.gather(best_classes, argsort_ids)
    is_valid = tf.less(tf.range(size), num_valid)
    selected[_SCORES] = tf.where(is_valid, selected_scores, -1 * tf.ones(size))
    selected[_CLASSES] = tf.cast(tf.gather(best_classes, indices), tf.float32)
    return _finish_single_image(selected, num_valid, clip_window, pad_to_max_output_size,
                                change_coordinate_frame, max_total_size)


def class_agnostic_non_max_suppression(boxes,
                                       scores,
                                       score_thresh,
                                       iou_thresh,
                                       max_classes_per_detection=1,
                                       max_total_size=0,
                                       clip_window=None,
                                       change_coordinate_frame=False,
                                       masks=None,
                                       boundaries=None,
                                       pad_to_max_output_size=False,
                                       use_partitioned_nms=False,
                                       additional_fields=None,
                                       soft_nms_sigma=0.0,
                                       scope=None):
  """Class-agnostic NMS on one image (TF OD API `class_agnostic_non_max_suppression`).

  Each detection is scored by its best class (argmax over `scores`; with per-class boxes its
  box / mask is that class's), one NMS keeps up to `max_total_size` boxes, then the same
  sort / clip / prune / cap steps as `multiclass_non_max_suppression` follow.

  Args:
    See `multiclass_non_max_suppression`; `max_classes_per_detection` must be 1.

  Returns:
    (boxlist, num_valid_nms_boxes) as `multiclass_non_max_suppression`.

  Raises:
    ValueError: as `multiclass_non_max_suppression`, or max_classes_per_detection > 1.
  """
  fields, num_valid = _class_agnostic_nms_fields(
      boxes, scores, score_thresh, iou_thresh, max_classes_per_detection, max_total_size,
      clip_window, change_coordinate_frame, masks, boundaries, pad_to_max_output_size,
      use_partitioned_nms, additional_fields, soft_nms_sigma, scope)
  return _to_box_list(fields), num_valid


# ----------------------------------------------------------------------------------------------
# Batched NMS.
# ----------------------------------------------------------------------------------------------


def _map_over_batch(fn, elems, output_dtypes, parallel_iterations):
  """Applies fn to each batch slice: a Python loop when the batch size is static (as the TF OD
  API's static_or_dynamic_map_fn), tf.map_fn otherwise."""
  first_dims = [_static_dim(e.shape[0]) if e.shape.ndims else None for e in elems]
  if all(d is not None and d == first_dims[0] for d in first_dims) and first_dims[0]:
    outputs = [fn(args) for args in zip(*[tf.unstack(e) for e in elems])]
    return [tf.stack(values) for values in zip(*outputs)]
  return tf.map_fn(fn, elems, fn_output_signature=output_dtypes,
                   parallel_iterations=parallel_iterations)


def _combined_nms(boxes, scores, score_thresh, iou_thresh, max_size_per_class, max_total_size,
                  clip_window, change_coordinate_frame, num_valid_boxes, masks,
                  additional_fields, soft_nms_sigma, scope, use_static_shapes,
                  parallel_iterations, use_class_agnostic_nms, max_classes_per_detection):
  if change_coordinate_frame:
    raise ValueError('use_combined_nms does not support change_coordinate_frame; set '
                     'change_coordinate_frame false or use_combined_nms false.')
  if num_valid_boxes is not None:
    raise ValueError('use_combined_nms does not support num_valid_boxes; set '
                     'use_combined_nms false.')
  if masks is not None:
    raise ValueError('use_combined_nms does not support masks; set use_combined_nms false.')
  if soft_nms_sigma != 0.0:
    raise ValueError('use_combined_nms does not support soft_nms_sigma; set one of them off.')
  if use_class_agnostic_nms:
    raise ValueError('use_combined_nms does not support use_class_agnostic_nms; set one off.')
  if clip_window is not None:
    logging.warning('clip_window is ignored by combined NMS unless it is [0, 0, 1, 1].')
  if additional_fields is not None:
    logging.warning('additional_fields are not returned by combined NMS.')
  if parallel_iterations != 32:
    logging.warning('parallel_iterations is ignored by combined NMS.')
  if max_classes_per_detection > 1:
    logging.warning('max_classes_per_detection is ignored by combined NMS.')
  with tf.name_scope(scope or 'CombinedNonMaxSuppression'):
    nmsed_boxes, nmsed_scores, nmsed_classes, num_detections = (
        tf.image.combined_non_max_suppression(
            boxes=boxes, scores=scores, max_output_size_per_class=max_size_per_class,
            max_total_size=max_total_size, iou_threshold=iou_thresh,
            score_threshold=score_thresh, pad_per_class=use_static_shapes))
  return nmsed_boxes, nmsed_scores, nmsed_classes, None, None, num_detections


def batch_multiclass_non_max_suppression(boxes,
                                         scores,
                                         score_thresh,
                                         iou_thresh,
                                         max_size_per_class,
                                         max_total_size=0,
                                         clip_window=None,
                                         change_coordinate_frame=False,
                                         num_valid_boxes=None,
                                         masks=None,
                                         additional_fields=None,
                                         soft_nms_sigma=0.0,
                                         scope=None,
                                         use_static_shapes=False,
                                         use_partitioned_nms=False,
                                         parallel_iterations=32,
                                         use_class_agnostic_nms=False,
                                         max_classes_per_detection=1,
                                         use_dynamic_map_fn=False,
                                         use_combined_nms=False,
                                         use_hard_nms=False,
                                         use_cpu_nms=False):
  """Batched multi-class NMS (TF OD API `post_processing.batch_multiclass_non_max_suppression`).

  Each image runs `multiclass_non_max_suppression` (or `class_agnostic_non_max_suppression`)
  on its first `num_valid_boxes[i]` boxes (with `use_static_shapes`, on all boxes with the
  invalid ones scored float32-min instead), then is zero-padded to `max_total_size` rows.
  Without a clip_window the window is the min/max box extent over the whole batch, so boxes
  are always clipped and zero-area ones pruned.

  Args:
    boxes: float32 [batch, num_anchors, q, 4], q = 1 or num_classes.
    scores: float32 [batch, num_anchors, num_classes] (num_classes static; non-negative with
      use_static_shapes).
    score_thresh, iou_thresh, max_size_per_class, max_total_size: as the single-image version.
    clip_window: optional float32 [batch, 4] or [4] window(s) in the boxes' frame.
    change_coordinate_frame: express output boxes relative to the clip window.
    num_valid_boxes: optional int32 [batch], number of leading valid boxes per image.
    masks: optional float32 [batch, num_anchors, q, mask_height, mask_width].
    additional_fields: optional dict key -> [batch, num_anchors, ...] tensors.
    soft_nms_sigma: Soft-NMS sigma (0: hard NMS).
    scope: name scope.
    use_static_shapes: pad per class (static output shapes); scores must be non-negative.
    use_partitioned_nms: tiled NMS (only effective with use_static_shapes).
    parallel_iterations: tf.map_fn parallelism (dynamic batch size only).
    use_class_agnostic_nms: class-agnostic NMS; max_classes_per_detection must be 1.
    max_classes_per_detection: see use_class_agnostic_nms.
    use_dynamic_map_fn: always use tf.map_fn over the batch.
    use_combined_nms: use tf.image.combined_non_max_suppression (no masks, additional fields,
      num_valid_boxes, change_coordinate_frame, soft NMS or class-agnostic NMS).
    use_hard_nms: use tf.image.non_max_suppression.
    use_cpu_nms: place NMS on the CPU.

  Returns:
    nmsed_boxes: float32 [batch, max_detections, 4].
    nmsed_scores: float32 [batch, max_detections].
    nmsed_classes: float32 [batch, max_detections], 0-based over the scores' columns.
    nmsed_masks: float32 [batch, max_detections, mask_height, mask_width] or None.
    nmsed_additional_fields: dict key -> [batch, max_detections, ...] or None.
    num_detections: int32 [batch]; rows past it are zero padding.

  Raises:
    ValueError: q neither 1 nor num_classes, change_coordinate_frame without clip_window, or
      an option combination refused by the TF OD API (see use_combined_nms).
  """
  if use_combined_nms:
    return _combined_nms(boxes, scores, score_thresh, iou_thresh, max_size_per_class,
                         max_total_size, clip_window, change_coordinate_frame, num_valid_boxes,
                         masks, additional_fields, soft_nms_sigma, scope, use_static_shapes,
                         parallel_iterations, use_class_agnostic_nms, max_classes_per_detection)

  q = _static_dim(boxes.shape[2])
  num_classes = _static_dim(scores.shape[2])
  if q != 1 and q != num_classes:
    raise ValueError('third dimension of boxes (%s) must be 1 or equal to the number of '
                     'classes in scores (%s).' % (q, num_classes))
  if change_coordinate_frame and clip_window is None:
    raise ValueError('change_coordinate_frame=True needs a clip_window; pass clip_window.')
  has_masks = masks is not None
  # Sorted keys fix the order in which fields travel through the per-image function.
  ordered_fields = collections.OrderedDict(sorted((additional_fields or {}).items()))

  with tf.name_scope(scope or 'BatchMultiClassNonMaxSuppression'):
    batch_size = _static_dim(boxes.shape[0])
    num_anchors = _static_dim(boxes.shape[1])
    if batch_size is None:
      batch_size = tf.shape(boxes)[0]
    if num_anchors is None:
      num_anchors = tf.shape(boxes)[1]
    if num_valid_boxes is None:
      num_valid_boxes = tf.ones([batch_size], dtype=tf.int32) * num_anchors
    if masks is None:
      # Placeholder masks keep one per-image code path; they are dropped from the outputs.
      masks = tf.zeros(tf.stack([batch_size, num_anchors, q, 1, 1]))
    if clip_window is None:
      clip_window = tf.stack([
          tf.reduce_min(boxes[:, :, :, 0]), tf.reduce_min(boxes[:, :, :, 1]),
          tf.reduce_max(boxes[:, :, :, 2]), tf.reduce_max(boxes[:, :, :, 3])])
    if clip_window.shape.ndims == 1:
      clip_window = tf.tile(clip_window[tf.newaxis], [batch_size, 1])
    mask_h = _static_dim(masks.shape[3])
    mask_w = _static_dim(masks.shape[4])

    def _single_image(args):
      image_boxes, image_scores, image_masks, image_window = args[:4]
      image_fields = dict(zip(ordered_fields, args[4:-1]))
      image_num_valid = args[-1]
      if use_static_shapes:
        score_shape = tf.shape(image_scores)
        # Invalid rows get the lowest float so the score threshold drops them.
        image_scores = tf.where(
            tf.less(tf.range(score_shape[0]), image_num_valid)[:, tf.newaxis],
            image_scores, tf.fill(score_shape, np.finfo('float32').min))
      else:
        image_boxes = tf.reshape(image_boxes[:image_num_valid], [-1, q, 4])
        image_scores = tf.reshape(image_scores[:image_num_valid], [-1, num_classes])
        image_masks = tf.reshape(image_masks[:image_num_valid], [-1, q, mask_h, mask_w])
        for key, tensor in image_fields.items():
          trailing = [_static_dim(d) for d in tensor.shape[1:]]
          image_fields[key] = tf.reshape(tensor[:image_num_valid], [-1] + trailing)

      common = dict(clip_window=image_window, change_coordinate_frame=change_coordinate_frame,
                    masks=image_masks, pad_to_max_output_size=use_static_shapes,
                    use_partitioned_nms=use_partitioned_nms, additional_fields=image_fields,
                    soft_nms_sigma=soft_nms_sigma)
      if use_class_agnostic_nms:
        fields, num_valid = _class_agnostic_nms_fields(
            image_boxes, image_scores, score_thresh, iou_thresh, max_classes_per_detection,
            max_total_size, **common)
      else:
        fields, num_valid = _multiclass_nms_fields(
            image_boxes, image_scores, score_thresh, iou_thresh, max_size_per_class,
            max_total_size, use_hard_nms=use_hard_nms, use_cpu_nms=use_cpu_nms, **common)
      if not use_static_shapes:
        fields = {name: _pad_or_clip_rows(value, max_total_size) for name, value in fields.items()}
      return ([fields[_BOXES], fields[_SCORES], fields[_CLASSES], fields[_MASKS]] +
              [fields[_extra_key(key)] for key in ordered_fields] + [num_valid])

    elems = ([boxes, scores, masks, clip_window] + list(ordered_fields.values()) +
             [num_valid_boxes])
    output_dtypes = ([tf.float32] * 4 + [t.dtype for t in ordered_fields.values()] + [tf.int32])
    if use_dynamic_map_fn:
      outputs = tf.map_fn(_single_image, elems, fn_output_signature=output_dtypes,
                          parallel_iterations=parallel_iterations)
    else:
      outputs = _map_over_batch(_single_image, elems, output_dtypes, parallel_iterations)

    nmsed_boxes, nmsed_scores, nmsed_classes, nmsed_masks = outputs[:4]
    nmsed_additional_fields = dict(zip(ordered_fields, outputs[4:-1])) or None
    if not has_masks:
      nmsed_masks = None
    return (nmsed_boxes, nmsed_scores, nmsed_classes, nmsed_masks, nmsed_additional_fields,
            outputs[-1])
