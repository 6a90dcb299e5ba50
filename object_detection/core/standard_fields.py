"""Standard names of the tensors exchanged between the input pipeline, the model and evaluation.

The same names as the TF OD API's `object_detection/core/standard_fields.py`, so code written
against it finds its keys here.

Conventions: boxes are [ymin, xmin, ymax, xmax]; in records, input dicts and detection outputs
they are normalized to [0, 1]. Instance masks in input dicts are whole-image [N, H, W] uint8
(0/1); `detection_masks` out of `postprocess` are box-relative float32 probabilities.
"""


class InputDataFields(object):
  """Names for the input tensors (decoder output and input-pipeline output).

  Attributes:
    image: image, uint8 [H, W, 3] from the decoder; float32 [B, H, W, 3] once batched.
    image_additional_channels: additional channels.
    original_image: image before preprocessing (for visualization).
    original_image_spatial_shape: int32 [2], height and width of the decoded image.
    key: unique key of the example (sha256 of the encoded image).
    source_id: string, source of the original image (COCO image id).
    filename: original filename of the example.
    groundtruth_image_classes: image-level class labels.
    groundtruth_image_confidences: image-level class confidences.
    groundtruth_labeled_classes: classes labeled in the image.
    groundtruth_boxes: float32 [N, 4] normalized ymin, xmin, ymax, xmax.
    groundtruth_classes: int64 [N] label-map ids (decoder), or float32 [N, num_classes] one-hot
      without background (input pipeline output).
    groundtruth_confidences: box-level class confidences.
    groundtruth_label_types: box-level label types.
    groundtruth_is_crowd: bool [N], COCO crowd flag.
    groundtruth_area: float32 [N], area of the object in pixels of the original image.
    groundtruth_difficult: bool [N].
    groundtruth_group_of: bool [N].
    groundtruth_weights: float32 [N], loss weight of each box.
    groundtruth_instance_masks: uint8 [N, H, W] whole-image 0/1 masks.
    groundtruth_instance_mask_weights: float32 [N].
    groundtruth_instance_boundaries: boundaries of instances.
    groundtruth_instance_classes: classes of instance masks.
    groundtruth_keypoints: keypoints (not used by Mask R-CNN).
    groundtruth_keypoint_visibilities: keypoint visibilities.
    groundtruth_keypoint_weights: keypoint weights.
    groundtruth_label_weights: label weights.
    num_groundtruth_boxes: int32 scalar (per image), number of valid boxes before padding.
    true_image_shape: int32 [3], shape of the image inside the padded, resized image.
    image_height: height of the image.
    image_width: width of the image.
    multiclass_scores: multiclass scores per box.
    context_features: context features.
    valid_context_size: valid context size.
    image_format: encoded image format.
  """
  image = 'image'
  image_additional_channels = 'image_additional_channels'
  original_image = 'original_image'
  original_image_spatial_shape = 'original_image_spatial_shape'
  key = 'key'
  source_id = 'source_id'
  filename = 'filename'
  groundtruth_image_classes = 'groundtruth_image_classes'
  groundtruth_image_confidences = 'groundtruth_image_confidences'
  groundtruth_labeled_classes = 'groundtruth_labeled_classes'
  groundtruth_boxes = 'groundtruth_boxes'
  groundtruth_classes = 'groundtruth_classes'
  groundtruth_track_ids = 'groundtruth_track_ids'
  groundtruth_temporal_offset = 'groundtruth_temporal_offset'
  groundtruth_track_match_flags = 'groundtruth_track_match_flags'
  groundtruth_confidences = 'groundtruth_confidences'
  groundtruth_label_types = 'groundtruth_label_types'
  groundtruth_is_crowd = 'groundtruth_is_crowd'
  groundtruth_area = 'groundtruth_area'
  groundtruth_difficult = 'groundtruth_difficult'
  groundtruth_group_of = 'groundtruth_group_of'
  groundtruth_weights = 'groundtruth_weights'
  groundtruth_instance_masks = 'groundtruth_instance_masks'
  groundtruth_instance_mask_weights = 'groundtruth_instance_mask_weights'
  groundtruth_instance_boundaries = 'groundtruth_instance_boundaries'
  groundtruth_instance_classes = 'groundtruth_instance_classes'
  groundtruth_keypoints = 'groundtruth_keypoints'
  groundtruth_keypoint_depths = 'groundtruth_keypoint_depths'
  groundtruth_keypoint_depth_weights = 'groundtruth_keypoint_depth_weights'
  groundtruth_keypoint_visibilities = 'groundtruth_keypoint_visibilities'
  groundtruth_keypoint_weights = 'groundtruth_keypoint_weights'
  groundtruth_label_weights = 'groundtruth_label_weights'
  groundtruth_verified_neg_classes = 'groundtruth_verified_neg_classes'
  groundtruth_not_exhaustive_classes = 'groundtruth_not_exhaustive_classes'
  num_groundtruth_boxes = 'num_groundtruth_boxes'
  is_annotated = 'is_annotated'
  true_image_shape = 'true_image_shape'
  image_height = 'image_height'
  image_width = 'image_width'
  multiclass_scores = 'multiclass_scores'
  context_features = 'context_features'
  context_feature_length = 'context_feature_length'
  valid_context_size = 'valid_context_size'
  image_format = 'image_format'
  image_timestamps = 'image_timestamps'


# `DetectionModel.postprocess` gives 0-based class indices; label-map ids (evaluation, exported
# `detection_classes`) are 1-based: id = index + LABEL_ID_OFFSET (the TF OD API's label_id_offset).
LABEL_ID_OFFSET = 1


class DetectionResultFields(object):
  """Names of the detection outputs (`postprocess`, exported SavedModel).

  Attributes:
    source_id: source of the original image.
    key: unique key of the example.
    detection_boxes: float32 [B, max_detections, 4], normalized ymin, xmin, ymax, xmax.
    detection_scores: float32 [B, max_detections].
    detection_multiclass_scores: float32 [B, max_detections, num_classes + 1] with background.
    detection_classes: float32 [B, max_detections], label-map ids (1-based).
    detection_masks: float32 [B, max_detections, mask_h, mask_w], box-relative probabilities.
    detection_masks_reframed: uint8 [B, max_detections, H, W] image-sized 0/1 masks (export).
    num_detections: float32 [B], number of valid detections.
    raw_detection_boxes: float32 [B, num_proposals, 4] boxes before NMS, normalized.
    raw_detection_scores: float32 [B, num_proposals, num_classes + 1] scores before NMS.
  """
  source_id = 'source_id'
  key = 'key'
  detection_boxes = 'detection_boxes'
  detection_scores = 'detection_scores'
  detection_multiclass_scores = 'detection_multiclass_scores'
  detection_features = 'detection_features'
  detection_classes = 'detection_classes'
  detection_masks = 'detection_masks'
  detection_masks_reframed = 'detection_masks_reframed'
  detection_boundaries = 'detection_boundaries'
  detection_keypoints = 'detection_keypoints'
  detection_keypoint_scores = 'detection_keypoint_scores'
  detection_anchor_indices = 'detection_anchor_indices'
  num_detections = 'num_detections'
  raw_detection_boxes = 'raw_detection_boxes'
  raw_detection_scores = 'raw_detection_scores'


class BoxListFields(object):
  """Names of the fields attached to box lists."""
  boxes = 'boxes'
  classes = 'classes'
  scores = 'scores'
  weights = 'weights'
  confidences = 'confidences'
  objectness = 'objectness'
  masks = 'masks'
  boundaries = 'boundaries'
  keypoints = 'keypoints'
  keypoint_visibilities = 'keypoint_visibilities'
  keypoint_heatmaps = 'keypoint_heatmaps'
  is_crowd = 'is_crowd'
  group_of = 'group_of'


class PredictionFields(object):
  """Names of standard entries of a model's prediction dict (TF OD API `PredictionFields`).

  Attributes:
    feature_maps: list of float32 [B, h_i, w_i, C] feature maps the heads read.
    anchors: float32 [A, 4] anchors (absolute coordinates for Faster R-CNN).
    raw_detection_boxes: float32 decoded boxes before NMS, normalized.
    raw_detection_feature_map_indices: int32 index of the feature map each raw box came from.
  """
  feature_maps = 'feature_maps'
  anchors = 'anchors'
  raw_detection_boxes = 'raw_detection_boxes'
  raw_detection_feature_map_indices = 'raw_detection_feature_map_indices'


class TfExampleFields(object):
  """tf.train.Example feature keys written by create_coco_tf_record.py (the TF OD API's)."""
  image_encoded = 'image/encoded'
  image_format = 'image/format'
  filename = 'image/filename'
  channels = 'image/channels'
  colorspace = 'image/colorspace'
  height = 'image/height'
  width = 'image/width'
  source_id = 'image/source_id'
  image_class_text = 'image/class/text'
  image_class_label = 'image/class/label'
  object_class_text = 'image/object/class/text'
  object_class_label = 'image/object/class/label'
  object_bbox_ymin = 'image/object/bbox/ymin'
  object_bbox_xmin = 'image/object/bbox/xmin'
  object_bbox_ymax = 'image/object/bbox/ymax'
  object_bbox_xmax = 'image/object/bbox/xmax'
  object_view = 'image/object/view'
  object_truncated = 'image/object/truncated'
  object_occluded = 'image/object/occluded'
  object_difficult = 'image/object/difficult'
  object_group_of = 'image/object/group_of'
  object_depiction = 'image/object/depiction'
  object_is_crowd = 'image/object/is_crowd'
  object_area = 'image/object/area'
  object_segment_area = 'image/object/segment/area'
  object_weight = 'image/object/weight'
  instance_masks = 'image/object/mask'
  instance_boundaries = 'image/boundaries'
  instance_classes = 'image/object/class/label'
  key_sha256 = 'image/key/sha256'
  detection_class_label = 'image/detection/label'
  detection_bbox_ymin = 'image/detection/bbox/ymin'
  detection_bbox_xmin = 'image/detection/bbox/xmin'
  detection_bbox_ymax = 'image/detection/bbox/ymax'
  detection_bbox_xmax = 'image/detection/bbox/xmax'
  detection_score = 'image/detection/score'
