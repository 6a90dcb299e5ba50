"""Drawing of boxes, labels and instance masks on images.

Port of the parts of the TF OD API's `object_detection/utils/visualization_utils.py` used by
evaluation (side-by-side TensorBoard images), training summaries and the predict tool.
Drawing is done with Pillow on numpy uint8 images; the TF-side helpers wrap the numpy code in
`tf.numpy_function`.

Coordinates: boxes are [ymin, xmin, ymax, xmax], either normalized to [0, 1]
(`use_normalized_coordinates=True`) or absolute pixels of the image being drawn on.
"""

import collections

import numpy as np
import PIL.Image as Image
import PIL.ImageColor as ImageColor
import PIL.ImageDraw as ImageDraw
import PIL.ImageFont as ImageFont
import tensorflow as tf

from object_detection.core import standard_fields as fields

# Same palette as the TF OD API (class id -> color by modulo).
STANDARD_COLORS = [
    'AliceBlue', 'Chartreuse', 'Aqua', 'Aquamarine', 'Azure', 'Beige', 'Bisque',
    'BlanchedAlmond', 'BlueViolet', 'BurlyWood', 'CadetBlue', 'AntiqueWhite',
    'Chocolate', 'Coral', 'CornflowerBlue', 'Cornsilk', 'Crimson', 'Cyan',
    'DarkCyan', 'DarkGoldenRod', 'DarkGrey', 'DarkKhaki', 'DarkOrange',
    'DarkOrchid', 'DarkSalmon', 'DarkSeaGreen', 'DarkTurquoise', 'DarkViolet',
    'DeepPink', 'DeepSkyBlue', 'DodgerBlue', 'FireBrick', 'FloralWhite',
    'ForestGreen', 'Fuchsia', 'Gainsboro', 'GhostWhite', 'Gold', 'GoldenRod',
    'Salmon', 'Tan', 'HoneyDew', 'HotPink', 'IndianRed', 'Ivory', 'Khaki',
    'Lavender', 'LavenderBlush', 'LawnGreen', 'LemonChiffon', 'LightBlue',
    'LightCoral', 'LightCyan', 'LightGoldenRodYellow', 'LightGray', 'LightGrey',
    'LightGreen', 'LightPink', 'LightSalmon', 'LightSeaGreen', 'LightSkyBlue',
    'LightSlateGray', 'LightSlateGrey', 'LightSteelBlue', 'LightYellow', 'Lime',
    'LimeGreen', 'Linen', 'Magenta', 'MediumAquaMarine', 'MediumOrchid',
    'MediumPurple', 'MediumSeaGreen', 'MediumSlateBlue', 'MediumSpringGreen',
    'MediumTurquoise', 'MediumVioletRed', 'MintCream', 'MistyRose', 'Moccasin',
    'NavajoWhite', 'OldLace', 'Olive', 'OliveDrab', 'Orange', 'OrangeRed',
    'Orchid', 'PaleGoldenRod', 'PaleGreen', 'PaleTurquoise', 'PaleVioletRed',
    'PapayaWhip', 'PeachPuff', 'Peru', 'Pink', 'Plum', 'PowderBlue', 'Purple',
    'Red', 'RosyBrown', 'RoyalBlue', 'SaddleBrown', 'Green', 'SandyBrown',
    'SeaGreen', 'SeaShell', 'Sienna', 'Silver', 'SkyBlue', 'SlateBlue',
    'SlateGray', 'SlateGrey', 'Snow', 'SpringGreen', 'SteelBlue', 'GreenYellow',
    'Teal', 'Thistle', 'Tomato', 'Turquoise', 'Violet', 'Wheat', 'White',
    'WhiteSmoke', 'Yellow', 'YellowGreen'
]


def _get_font():
  """Pillow's default font (no font file is read from disk or downloaded)."""
  return ImageFont.load_default()


def _text_size(draw, text, font):
  """(width, height) of `text` in pixels, for old and new Pillow."""
  if hasattr(draw, 'textbbox'):
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top
  return font.getsize(text)  # Pillow < 8.


def draw_bounding_box_on_image(image, ymin, xmin, ymax, xmax, color='red', thickness=4,
                               display_str_list=(), use_normalized_coordinates=True):
  """Draws one box (and its label strings) on a PIL image, in place.

  Args:
    image: PIL.Image.
    ymin, xmin, ymax, xmax: box corners, normalized or absolute pixels.
    color: color name or RGB tuple.
    thickness: line thickness in pixels; 0 draws no box (only the label).
    display_str_list: strings drawn stacked above the box (below it when no room above).
    use_normalized_coordinates: if True the corners are in [0, 1], else absolute pixels.
  """
  draw = ImageDraw.Draw(image)
  im_width, im_height = image.size
  if use_normalized_coordinates:
    (left, right, top, bottom) = (xmin * im_width, xmax * im_width,
                                  ymin * im_height, ymax * im_height)
  else:
    (left, right, top, bottom) = (xmin, xmax, ymin, ymax)
  if thickness > 0:
    draw.line([(left, top), (left, bottom), (right, bottom), (right, top), (left, top)],
              width=thickness, fill=color)
  font = _get_font()
  display_str_heights = [_text_size(draw, ds, font)[1] for ds in display_str_list]
  # Each string has a 0.05 top and bottom margin, as in the TF OD API.
  total_display_str_height = (1 + 2 * 0.05) * sum(display_str_heights)
  if top > total_display_str_height:
    text_bottom = top
  else:
    text_bottom = bottom + total_display_str_height
  # Drawn bottom-up so the first string ends up on top.
  for display_str in display_str_list[::-1]:
    text_width, text_height = _text_size(draw, display_str, font)
    margin = np.ceil(0.05 * text_height)
    draw.rectangle([(left, text_bottom - text_height - 2 * margin),
                    (left + text_width, text_bottom)], fill=color)
    draw.text((left + margin, text_bottom - text_height - margin), display_str,
              fill='black', font=font)
    text_bottom -= text_height - 2 * margin


def draw_bounding_box_on_image_array(image, ymin, xmin, ymax, xmax, color='red', thickness=4,
                                     display_str_list=(), use_normalized_coordinates=True):
  """Draws one box on a numpy image, in place.

  Args:
    image: uint8 numpy [H, W, 3].
    ymin, xmin, ymax, xmax, color, thickness, display_str_list, use_normalized_coordinates:
      see `draw_bounding_box_on_image`.
  """
  image_pil = Image.fromarray(np.uint8(image)).convert('RGB')
  draw_bounding_box_on_image(image_pil, ymin, xmin, ymax, xmax, color, thickness,
                             display_str_list, use_normalized_coordinates)
  np.copyto(image, np.array(image_pil))


def draw_bounding_boxes_on_image_array(image, boxes, color='red', thickness=4,
                                       display_str_list_list=()):
  """Draws several normalized boxes on a numpy image, in place.

  Args:
    image: uint8 numpy [H, W, 3].
    boxes: float [N, 4] normalized ymin, xmin, ymax, xmax.
    color, thickness: see `draw_bounding_box_on_image`.
    display_str_list_list: optional list (per box) of lists of strings.

  Raises:
    ValueError: if `boxes` is not [N, 4].
  """
  boxes = np.asarray(boxes)
  if boxes.size == 0:
    return
  if boxes.ndim != 2 or boxes.shape[1] != 4:
    raise ValueError('boxes must be of shape [N, 4], got %s.' % (boxes.shape,))
  for i in range(boxes.shape[0]):
    display_str_list = ()
    if display_str_list_list:
      display_str_list = display_str_list_list[i]
    draw_bounding_box_on_image_array(image, boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3],
                                     color, thickness, display_str_list)


def draw_mask_on_image_array(image, mask, color='red', alpha=0.4):
  """Blends a translucent colored mask into a numpy image, in place.

  Args:
    image: uint8 numpy [H, W, 3].
    mask: uint8 numpy [H, W] with values 0 or 1 (same size as `image`).
    color: color name or RGB tuple.
    alpha: opacity of the mask color, in [0, 1].

  Raises:
    ValueError: if the dtypes are not uint8, the mask is not 0/1, or the shapes differ.
  """
  if image.dtype != np.uint8:
    raise ValueError('`image` not of type np.uint8 (got %s).' % image.dtype)
  if mask.dtype != np.uint8:
    raise ValueError('`mask` not of type np.uint8 (got %s).' % mask.dtype)
  if np.any(np.logical_and(mask != 1, mask != 0)):
    raise ValueError('`mask` elements should be in [0, 1].')
  if image.shape[:2] != mask.shape:
    raise ValueError('The image has spatial dimensions %s but the mask has dimensions %s.' %
                     (image.shape[:2], mask.shape))
  rgb = ImageColor.getrgb(color) if isinstance(color, str) else tuple(color)
  pil_image = Image.fromarray(image)
  solid_color = np.expand_dims(np.ones_like(mask), axis=2) * np.reshape(list(rgb), [1, 1, 3])
  pil_solid_color = Image.fromarray(np.uint8(solid_color)).convert('RGBA')
  pil_mask = Image.fromarray(np.uint8(255.0 * alpha * (mask > 0))).convert('L')
  pil_image = Image.composite(pil_solid_color, pil_image, pil_mask)
  np.copyto(image, np.array(pil_image.convert('RGB')))


def visualize_boxes_and_labels_on_image_array(
    image, boxes, classes, scores, category_index, instance_masks=None,
    instance_boundaries=None, keypoints=None, keypoint_scores=None, keypoint_edges=None,
    track_ids=None, use_normalized_coordinates=False, max_boxes_to_draw=20,
    min_score_thresh=.5, agnostic_mode=False, line_thickness=4, mask_alpha=.4,
    groundtruth_box_visualization_color='black', skip_boxes=False, skip_scores=False,
    skip_labels=False, skip_track_ids=False):
  """Draws boxes, 'label: score%' strings and translucent masks on a numpy image.

  Same semantics as the TF OD API function of that name: boxes are drawn in descending input
  order up to `max_boxes_to_draw`, skipping those with score < `min_score_thresh`; if
  `scores` is None the boxes are ground truth, drawn in `groundtruth_box_visualization_color`.
  Colors are per class (`STANDARD_COLORS[class % len]`), or 'DarkOrange' in agnostic mode.

  Args:
    image: uint8 numpy [H, W, 3], modified in place.
    boxes: float numpy [N, 4] ymin, xmin, ymax, xmax, normalized if
      `use_normalized_coordinates` else absolute pixels.
    classes: int numpy [N], label-map ids (keys of `category_index`).
    scores: float numpy [N] or None (ground truth).
    category_index: dict id -> {'id': int, 'name': str}.
    instance_masks: optional uint8 numpy [N, H, W] image-sized 0/1 masks.
    instance_boundaries: optional uint8 numpy [N, H, W], drawn as opaque outlines.
    keypoints, keypoint_scores, keypoint_edges: accepted for API compatibility, not drawn.
    track_ids: optional int numpy [N], appended to the label strings.
    use_normalized_coordinates: whether boxes are normalized.
    max_boxes_to_draw: maximum number of boxes drawn; None draws all.
    min_score_thresh: minimum score of a drawn box.
    agnostic_mode: draw all boxes in one color without class names.
    line_thickness: box line thickness in pixels.
    mask_alpha: opacity of the masks.
    groundtruth_box_visualization_color: box color when `scores` is None.
    skip_boxes: draw only the masks / labels.
    skip_scores: omit the score from the label strings.
    skip_labels: omit the class name from the label strings.
    skip_track_ids: omit the track ids.

  Returns:
    `image` (uint8 numpy [H, W, 3]) with the drawings.
  """
  del keypoints, keypoint_scores, keypoint_edges  # Not used by Mask R-CNN.
  box_to_display_str_map = collections.defaultdict(list)
  box_to_color_map = collections.defaultdict(str)
  box_to_instance_masks_map = {}
  box_to_instance_boundaries_map = {}
  boxes = np.asarray(boxes)
  classes = np.asarray(classes)
  if not max_boxes_to_draw:
    max_boxes_to_draw = boxes.shape[0]
  for i in range(min(max_boxes_to_draw, boxes.shape[0])):
    if scores is None or scores[i] > min_score_thresh:
      box = tuple(boxes[i].tolist())
      if instance_masks is not None:
        box_to_instance_masks_map[box] = instance_masks[i]
      if instance_boundaries is not None:
        box_to_instance_boundaries_map[box] = instance_boundaries[i]
      if scores is None:
        box_to_color_map[box] = groundtruth_box_visualization_color
      else:
        display_str = ''
        if not skip_labels:
          if not agnostic_mode:
            class_id = int(classes[i])
            if class_id in category_index:
              class_name = str(category_index[class_id]['name'])
            else:
              class_name = 'N/A'
            display_str = class_name
        if not skip_scores:
          score_str = '{}%'.format(round(100 * float(scores[i])))
          display_str = '{}: {}'.format(display_str, score_str) if display_str else score_str
        if not skip_track_ids and track_ids is not None:
          track_str = 'ID {}'.format(track_ids[i])
          display_str = '{}: {}'.format(display_str, track_str) if display_str else track_str
        box_to_display_str_map[box].append(display_str)
        if agnostic_mode:
          box_to_color_map[box] = 'DarkOrange'
        elif track_ids is not None:
          box_to_color_map[box] = STANDARD_COLORS[int(track_ids[i]) % len(STANDARD_COLORS)]
        else:
          box_to_color_map[box] = STANDARD_COLORS[int(classes[i]) % len(STANDARD_COLORS)]

  for box, color in box_to_color_map.items():
    ymin, xmin, ymax, xmax = box
    if instance_masks is not None:
      draw_mask_on_image_array(image, np.asarray(box_to_instance_masks_map[box], np.uint8),
                               color=color, alpha=mask_alpha)
    if instance_boundaries is not None:
      draw_mask_on_image_array(image, np.asarray(box_to_instance_boundaries_map[box], np.uint8),
                               color='red', alpha=1.0)
    draw_bounding_box_on_image_array(
        image, ymin, xmin, ymax, xmax, color=color,
        thickness=0 if skip_boxes else line_thickness,
        display_str_list=box_to_display_str_map[box],
        use_normalized_coordinates=use_normalized_coordinates)
  return image


def draw_bounding_boxes_on_image_tensors(images, boxes, classes, scores, category_index,
                                         original_image_spatial_shape=None, true_image_shape=None,
                                         instance_masks=None, max_boxes_to_draw=20,
                                         min_score_thresh=0.2, use_normalized_coordinates=True,
                                         agnostic_mode=False, skip_scores=False):
  """Draws boxes, labels and masks on a batch of image tensors (TF side, for summaries).

  Args:
    images: uint8 tensor [B, H, W, 3] (padded originals or model inputs).
    boxes: float32 [B, max_det, 4] ymin, xmin, ymax, xmax, normalized if
      `use_normalized_coordinates` (relative to the unpadded image).
    classes: int/float [B, max_det] label-map ids.
    scores: float32 [B, max_det]; all ones for ground truth.
    category_index: dict id -> {'id', 'name'}.
    original_image_spatial_shape: optional int32 [B, 2]; the unpadded part of each image
      (used when `true_image_shape` is not given).
    true_image_shape: optional int32 [B, 3]; the unpadded part of each image.
    instance_masks: optional uint8 [B, max_det, H, W] image-sized 0/1 masks, spatially
      aligned with `images` (same H, W).
    max_boxes_to_draw: maximum boxes per image.
    min_score_thresh: minimum score of a drawn box.
    use_normalized_coordinates: whether `boxes` are normalized.
    agnostic_mode: single color, no class names.
    skip_scores: omit scores from the label strings (ground truth).

  Returns:
    uint8 tensor [B, H, W, 3] with the drawings; the padding beyond the true shape is 0.
  """
  images = tf.convert_to_tensor(images)
  if images.dtype != tf.uint8:
    images = tf.cast(tf.clip_by_value(images, 0, 255), tf.uint8)
  batch = tf.shape(images)[0]
  height, width = tf.shape(images)[1], tf.shape(images)[2]
  if true_image_shape is None:
    if original_image_spatial_shape is not None:
      hw = tf.cast(original_image_spatial_shape, tf.int32)
      true_image_shape = tf.concat([hw, 3 * tf.ones_like(hw[:, :1])], axis=1)
    else:
      true_image_shape = tf.tile(tf.stack([height, width, 3])[tf.newaxis], [batch, 1])
  true_image_shape = tf.cast(true_image_shape, tf.int32)
  has_masks = instance_masks is not None
  if not has_masks:
    instance_masks = tf.zeros([batch, 0, height, width], tf.uint8)
  instance_masks = tf.cast(instance_masks, tf.uint8)

  def draw_one(image, box, cls, score, masks, true_shape):
    def _np_draw(image_np, box_np, cls_np, score_np, masks_np):
      image_np = np.array(image_np, dtype=np.uint8, copy=True)
      visualize_boxes_and_labels_on_image_array(
          image_np, box_np, cls_np.astype(np.int64), score_np, category_index,
          instance_masks=masks_np if has_masks else None,
          use_normalized_coordinates=use_normalized_coordinates,
          max_boxes_to_draw=max_boxes_to_draw, min_score_thresh=min_score_thresh,
          agnostic_mode=agnostic_mode, line_thickness=4, skip_scores=skip_scores)
      return image_np

    crop = image[:true_shape[0], :true_shape[1], :]
    crop_masks = masks[:, :true_shape[0], :true_shape[1]]
    drawn = tf.numpy_function(_np_draw, [crop, box, cls, score, crop_masks], tf.uint8)
    drawn = tf.reshape(drawn, tf.shape(crop))
    paddings = [[0, height - true_shape[0]], [0, width - true_shape[1]], [0, 0]]
    return tf.pad(drawn, paddings)

  return tf.map_fn(
      lambda args: draw_one(*args),
      (images, tf.cast(boxes, tf.float32), tf.cast(classes, tf.float32),
       tf.cast(scores, tf.float32), instance_masks, true_image_shape),
      fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


def draw_side_by_side_evaluation_image(eval_dict, category_index, max_boxes_to_draw=20,
                                       min_score_thresh=0.2, use_normalized_coordinates=True,
                                       keypoint_edges=None):
  """Creates side-by-side images: detections (left) | ground truth (right), with masks.

  Like the TF OD API function of that name, for an eval dict of one or more images.

  Args:
    eval_dict: dict of tensors with (batched) keys:
      'original_image' uint8 [B, H, W, 3] (padded to the largest image of the batch);
      'original_image_spatial_shape' int32 [B, 2] true size of each original (optional);
      'detection_boxes' float32 [B, D, 4]; 'detection_classes' [B, D] label ids;
      'detection_scores' [B, D]; 'detection_masks' optional uint8 [B, D, H, W] image-sized;
      'groundtruth_boxes' float32 [B, M, 4]; 'groundtruth_classes' [B, M] label ids;
      'groundtruth_instance_masks' optional uint8 [B, M, H, W] image-sized;
      'num_groundtruth_boxes' optional int32 [B]: rows beyond it are padding and not drawn.
      Boxes are normalized to the true original size when `use_normalized_coordinates`,
      otherwise absolute pixels of the original.
    category_index: dict id -> {'id', 'name'}.
    max_boxes_to_draw: maximum boxes drawn per image.
    min_score_thresh: minimum detection score drawn.
    use_normalized_coordinates: whether boxes are normalized.
    keypoint_edges: accepted for TF OD API compatibility; keypoints are not drawn.

  Returns:
    list of B uint8 tensors [1, H, 2 * W, 3] (in a graph with unknown batch size, a list with
    one [B, H, 2 * W, 3] tensor).
  """
  del keypoint_edges  # Mask R-CNN has no keypoints.
  images = tf.convert_to_tensor(eval_dict[fields.InputDataFields.original_image])
  if images.shape.rank == 3:
    images = images[tf.newaxis]
  batch = tf.shape(images)[0]
  if fields.InputDataFields.original_image_spatial_shape in eval_dict:
    orig_shape = tf.cast(eval_dict[fields.InputDataFields.original_image_spatial_shape],
                         tf.int32)
    orig_shape = tf.reshape(orig_shape, [-1, 2])
  else:
    orig_shape = tf.tile(tf.shape(images)[1:3][tf.newaxis], [batch, 1])
  true_shape = tf.concat([orig_shape, 3 * tf.ones_like(orig_shape[:, :1])], axis=1)

  def _batched(key, rank):
    value = tf.convert_to_tensor(eval_dict[key])
    if value.shape.rank == rank - 1:
      value = value[tf.newaxis]
    return value

  det_boxes = _batched(fields.DetectionResultFields.detection_boxes, 3)
  det_classes = _batched(fields.DetectionResultFields.detection_classes, 2)
  det_scores = _batched(fields.DetectionResultFields.detection_scores, 2)
  det_masks = None
  if eval_dict.get(fields.DetectionResultFields.detection_masks) is not None:
    det_masks = _batched(fields.DetectionResultFields.detection_masks, 4)
  gt_boxes = _batched(fields.InputDataFields.groundtruth_boxes, 3)
  gt_classes = _batched(fields.InputDataFields.groundtruth_classes, 2)
  gt_masks = None
  if eval_dict.get(fields.InputDataFields.groundtruth_instance_masks) is not None:
    gt_masks = _batched(fields.InputDataFields.groundtruth_instance_masks, 4)

  left = draw_bounding_boxes_on_image_tensors(
      images, det_boxes, det_classes, det_scores, category_index,
      true_image_shape=true_shape, instance_masks=det_masks,
      max_boxes_to_draw=max_boxes_to_draw, min_score_thresh=min_score_thresh,
      use_normalized_coordinates=use_normalized_coordinates)
  # Ground truth is drawn with score 1 (0 for padded rows) and without score strings.
  gt_scores = tf.ones_like(tf.cast(gt_classes, tf.float32))
  if eval_dict.get(fields.InputDataFields.num_groundtruth_boxes) is not None:
    num_gt = tf.reshape(tf.cast(eval_dict[fields.InputDataFields.num_groundtruth_boxes],
                                tf.int32), [-1])
    gt_scores = tf.sequence_mask(num_gt, tf.shape(gt_classes)[1], dtype=tf.float32)
  right = draw_bounding_boxes_on_image_tensors(
      images, gt_boxes, gt_classes, gt_scores,
      category_index, true_image_shape=true_shape, instance_masks=gt_masks,
      max_boxes_to_draw=None, min_score_thresh=0.0,
      use_normalized_coordinates=use_normalized_coordinates, skip_scores=True)
  side_by_side = tf.concat([left, right], axis=2)
  num_images = side_by_side.shape[0]
  if num_images is None:
    if not tf.executing_eagerly():
      # Unknown batch size in a graph: one [B, H, 2W, 3] tensor.
      return [side_by_side]
    num_images = int(batch)
  return [side_by_side[i:i + 1] for i in range(num_images)]
