"""Faster R-CNN / Mask R-CNN meta-architecture (TF OD API `FasterRCNNMetaArch` semantics, TF2).

Ren et al. 2015 (Faster R-CNN), He et al. 2017 (Mask R-CNN). Composition (one small module per job):
  feature extractor (object_detection/models, `backbone` + optional `box_classifier_layers`)
  -> RPN head, anchor targets, proposals (meta_architectures/rpn.py)
  -> second-stage ROI sampling: `official.vision.modeling.layers.ROISampler` (IoU >= 0.5 positive,
     [0, 0.5) negative, `second_stage_batch_size`, `second_stage_balance_fraction`; ground-truth boxes are
     added to the candidate proposals as in the Model Garden / Detectron, which the TF OD API does not do)
  -> ROI align: `official.vision.modeling.layers.MultilevelROIAligner` to `initial_crop_size`, then
     max-pool `maxpool_kernel_size` / `maxpool_stride` (TF OD API semantics)
  -> box classifier layers (e.g. ResNet conv5) -> box / class / mask heads
     (predictors/mask_rcnn_box_predictor.py)
  -> post-processing: per-class NMS (`tf.image.combined_non_max_suppression`, batch_non_max_suppression
     fields) and, for stage 3 at inference, a mask pass on the detected boxes (TF OD API third stage).
Losses (meta_architectures/faster_rcnn_losses.py) follow the TF OD API normalizations.

Coordinates: inside the model boxes are absolute pixels [ymin, xmin, ymax, xmax] of the preprocessed
image; `provide_groundtruth` boxes and `postprocess` boxes are normalized to the TRUE image shape.
`number_of_stages`: 1 = RPN only, 2 = + box classifier, 3 = + instance masks.
"""

import math

import tensorflow as tf
import tf_keras
from official.vision.modeling.layers import roi_aligner as roi_aligner_lib
from official.vision.modeling.layers import roi_sampler as roi_sampler_lib

from object_detection.core import model
from object_detection.core import standard_fields as fields
from object_detection.meta_architectures import box_utils
from object_detection.meta_architectures import faster_rcnn_losses as losses
from object_detection.meta_architectures import rpn


class FasterRCNNMetaArch(model.DetectionModel):
  """See module docstring. Built by `object_detection.builders.model_builder.build`."""

  def __init__(self, is_training, num_classes, image_resizer_fn, feature_extractor, number_of_stages,
               anchor_generator, rpn_conv_hyperparams, rpn_kernel_size, rpn_depth, rpn_minibatch_size,
               rpn_positive_balance_fraction, rpn_nms_score_threshold, rpn_nms_iou_threshold,
               rpn_max_proposals, rpn_localization_loss_weight, rpn_objectness_loss_weight,
               initial_crop_size, maxpool_kernel_size, maxpool_stride, box_predictor,
               second_stage_batch_size, second_stage_balance_fraction, nms_config, score_converter_fn,
               localization_loss_weight, classification_loss_weight, mask_loss_weight,
               classification_loss_type='weighted_softmax', pad_to_multiple=1, resize_masks=True,
               add_summaries=True, max_groundtruth_boxes=100, **kwargs):
    super().__init__(num_classes=num_classes, **kwargs)
    self._is_training = is_training
    self._image_resizer_fn = image_resizer_fn
    self._extractor = feature_extractor
    self.feature_extractor_backbone = feature_extractor.backbone
    self.box_classifier_layers = getattr(feature_extractor, 'box_classifier_layers', None)
    self._levels = list(feature_extractor.levels)
    self._number_of_stages = number_of_stages
    self._anchor_generator = anchor_generator
    self.rpn_head = rpn.RPNHead(anchor_generator.num_anchors_per_location, rpn_kernel_size, rpn_depth,
                                rpn_conv_hyperparams, name='FirstStageBoxPredictor')
    self._rpn_minibatch_size = rpn_minibatch_size
    self._rpn_positive_fraction = rpn_positive_balance_fraction
    self._rpn_nms = (rpn_nms_score_threshold, rpn_nms_iou_threshold, rpn_max_proposals)
    self._rpn_weights = (rpn_localization_loss_weight, rpn_objectness_loss_weight)
    self._roi_aligner = roi_aligner_lib.MultilevelROIAligner(crop_size=initial_crop_size)
    self._maxpool = tf_keras.layers.MaxPooling2D(maxpool_kernel_size, strides=maxpool_stride,
                                                 name='MaxPool2D')
    self.box_predictor = box_predictor
    self._max_positive_rois = max(1, int(math.ceil(second_stage_batch_size *
                                                   second_stage_balance_fraction)))
    self._roi_sampler = roi_sampler_lib.ROISampler(
        mix_gt_boxes=True, num_sampled_rois=second_stage_batch_size,
        foreground_fraction=second_stage_balance_fraction, foreground_iou_threshold=0.5,
        background_iou_high_threshold=0.5, background_iou_low_threshold=0.0)
    # Inference-mode models (eval) assign targets to all proposals / detections without sampling, so
    # loss() also works for them (the TF OD API reports eval losses).
    self._roi_matcher = roi_sampler_lib.ROISampler(
        mix_gt_boxes=False, num_sampled_rois=1, foreground_iou_threshold=0.5,
        background_iou_high_threshold=0.5, background_iou_low_threshold=0.0, skip_subsampling=True)
    self._nms_config = nms_config
    self._score_converter_fn = score_converter_fn
    self._loss_weights = (localization_loss_weight, classification_loss_weight, mask_loss_weight)
    self._classification_loss_type = classification_loss_type
    self._pad_to_multiple = max(int(pad_to_multiple), 1)
    self._resize_masks = resize_masks
    # The Model Garden ROI sampler needs a static number of ground-truth boxes; inside a
    # tf.function the unpadded lists of provide_groundtruth have none, so they are padded to this
    # (the TF OD API's default train_config.max_number_of_boxes; the input pipeline never yields more
    # than max_number_of_boxes, and model_lib_v2 sets this attribute from it).
    self.max_groundtruth_boxes = int(max_groundtruth_boxes)

  @property
  def number_of_stages(self):
    return self._number_of_stages

  @property
  def feature_extractor(self):
    return self._extractor

  # --------------------------------------------------------------------------------------- preprocess
  def preprocess(self, inputs):
    """float32 [B, H, W, 3] 0..255 -> (preprocessed float32 [B, h, w, 3], true_image_shapes int32 [B, 3]).

    Resizes each image with the `image_resizer` (contract C), pads bottom/right to `pad_to_multiple`,
    then applies the feature extractor's pixel normalization.
    """
    inputs = tf.cast(inputs, tf.float32)
    if self._image_resizer_fn is None:
      resized = inputs
      shape = tf.shape(inputs)[1:]
      true_shapes = tf.tile(shape[tf.newaxis], [tf.shape(inputs)[0], 1])
    else:
      def _resize(image):
        out = self._image_resizer_fn(image)
        return out[0], tf.cast(out[-1], tf.int32)
      resized, true_shapes = tf.map_fn(_resize, inputs, fn_output_signature=(tf.float32, tf.int32))
    if self._pad_to_multiple > 1:
      m = self._pad_to_multiple
      h, w = tf.shape(resized)[1], tf.shape(resized)[2]
      resized = tf.pad(resized, [[0, 0], [0, (m - h % m) % m], [0, (m - w % m) % m], [0, 0]])
    return self._extractor.preprocess(resized), true_shapes

  # ------------------------------------------------------------------------------------------ predict
  def _extract(self, images):
    features = self.feature_extractor_backbone(images, training=self._is_training)
    return {level: features[level] for level in self._levels}

  def _anchors(self, features):
    shapes = {}
    for level, f in features.items():
      static = f.shape.as_list()
      dyn = tf.shape(f)
      shapes[level] = (static[1] if static[1] is not None else dyn[1],
                       static[2] if static[2] is not None else dyn[2])
    per_level = self._anchor_generator.generate(shapes)
    return tf.concat([per_level[l] for l in sorted(per_level, key=int)], axis=0)

  def _box_classifier_features(self, features, rois):
    """rois [B, N, 4] absolute -> (classifier features [B*N, h, w, C], mask features [B*N, h', w', C'])."""
    crops = self._roi_aligner(features, rois)
    shape = tf.shape(crops)
    crops = tf.reshape(crops, tf.concat([[-1], shape[2:]], axis=0))
    crops.set_shape([None] + self._roi_aligner_crop_shape(features))
    pooled = self._maxpool(crops)
    if self.box_classifier_layers is None:
      return pooled, pooled
    classifier = self.box_classifier_layers(pooled, training=self._is_training)
    # FC box classifiers (FPN extractors) flatten the crop: masks then use the crops before the
    # max pool, at initial_crop_size.
    mask_features = classifier if (classifier.shape[1] or 1) > 1 else crops
    return classifier, mask_features

  def _roi_aligner_crop_shape(self, features):
    c = self._roi_aligner.get_config()['crop_size']
    return [c, c, next(iter(features.values())).shape[-1]]

  def predict(self, preprocessed_inputs, true_image_shapes, **side_inputs):
    """Runs the stages. Returns a dict of float32 tensors (B = batch, A = anchors, P = proposals):

      rpn_box_encodings [B, A, 4], rpn_objectness_predictions_with_background [B, A] (logits),
      anchors [A, 4] absolute, image_shape int32 [4], proposal_boxes [B, P, 4] absolute,
      proposal_boxes_normalized [B, P, 4], proposal_scores [B, P], num_proposals int32 [B];
      stage >= 2: rois [B, N, 4] absolute (N = second_stage_batch_size in training, P otherwise),
      refined_box_encodings [B, N, K or 1, 4], class_predictions_with_background [B, N, K + 1] (logits);
      training also sampled_gt_boxes / sampled_gt_classes / sampled_gt_indices;
      stage 3: mask_predictions [B, M, K or 1, mask_h, mask_w] logits (training; with ground truth
      M = ceil(second_stage_batch_size * second_stage_balance_fraction) ROIs, positives first, given
      as mask_rois [B, M, 4] / mask_gt_classes / mask_gt_indices; without ground truth M = N) and,
      at inference, the detections (detection_* keys, see postprocess) with detection_masks.
    """
    del side_inputs
    images = preprocessed_inputs
    features = self._extract(images)
    anchors = self._anchors(features)
    levels = sorted(features, key=int)
    box_enc, logits = self.rpn_head(features, training=self._is_training)
    box_enc = tf.concat([box_enc[l] for l in levels], axis=1)
    logits = tf.concat([logits[l] for l in levels], axis=1)
    score_thr, iou_thr, max_proposals = self._rpn_nms
    proposals, proposal_scores, num_proposals = rpn.propose(
        box_enc, logits, anchors, true_image_shapes, max_proposals, iou_thr, score_thr)
    out = {
        'rpn_box_encodings': box_enc,
        'rpn_objectness_predictions_with_background': logits,
        'anchors': anchors,
        'image_shape': tf.shape(images),
        'proposal_boxes': proposals,
        'proposal_boxes_normalized': box_utils.normalize(proposals, true_image_shapes),
        'proposal_scores': proposal_scores,
        'num_proposals': num_proposals,
    }
    if self._number_of_stages == 1:
      return out
    valid_proposal = tf.sequence_mask(num_proposals, tf.shape(proposals)[1])
    # Without ground truth (e.g. the first call that creates the variables) a training model runs the
    # second stage on all proposals, like inference.
    sample = self._is_training and self.groundtruth_has_field(fields.BoxListFields.boxes)
    if sample:
      gt = self._groundtruth_tensors(true_image_shapes)
      candidates = tf.where(valid_proposal[:, :, tf.newaxis], proposals, -1.0)
      gt_boxes = tf.where(gt['valid'][:, :, tf.newaxis], gt['boxes'], -1.0)
      gt_boxes = box_utils.pad_to_static_rows(gt_boxes, self.max_groundtruth_boxes, -1.0)
      gt_label_ids = box_utils.pad_to_static_rows(gt['label_ids'], self.max_groundtruth_boxes, 0)
      rois, s_boxes, s_classes, s_indices = self._roi_sampler(candidates, gt_boxes, gt_label_ids)
      rois = tf.stop_gradient(rois)
      out.update({'sampled_gt_boxes': s_boxes, 'sampled_gt_classes': s_classes,
                  'sampled_gt_indices': s_indices,
                  'sampled_valid': tf.reduce_max(rois, axis=-1) >= 0.0})
      rois = tf.maximum(rois, 0.0)
    else:
      rois = proposals
    batch = tf.shape(rois)[0]
    num_rois = tf.shape(rois)[1]
    cls_features, mask_features = self._box_classifier_features(features, rois)
    boxes, class_logits = self.box_predictor.predict_boxes_and_classes(cls_features,
                                                                        training=self._is_training)
    out['rois'] = rois
    out['refined_box_encodings'] = tf.reshape(boxes, [batch, num_rois, -1, 4])
    out['class_predictions_with_background'] = tf.reshape(class_logits, [batch, num_rois,
                                                                         self.num_classes + 1])
    if self._number_of_stages >= 3 and self._is_training:
      mask_rois = num_rois
      if sample:
        # The mask loss only reads positive ROIs, so the mask head runs on them alone (at most
        # second_stage_batch_size * second_stage_balance_fraction per image, the sampler's cap),
        # as the Model Garden's mask sampler does: same loss, a quarter of the mask-head cost at the
        # default fraction (benchmarks/mask_head.py).
        mask_rois = min(self._max_positive_rois, rois.shape[1] or self._max_positive_rois)
        _, mask_idx = tf.math.top_k(tf.cast(s_classes > 0, tf.int32), k=mask_rois)
        flat_idx = tf.reshape(mask_idx + tf.range(batch)[:, tf.newaxis] * num_rois, [-1])
        mask_features = tf.gather(mask_features, flat_idx)
        out.update({'mask_rois': tf.gather(rois, mask_idx, batch_dims=1),
                    'mask_gt_classes': tf.gather(s_classes, mask_idx, batch_dims=1),
                    'mask_gt_indices': tf.gather(s_indices, mask_idx, batch_dims=1)})
      masks = self.box_predictor.predict_masks(mask_features, training=True)
      shape = tf.shape(masks)
      out['mask_predictions'] = tf.reshape(masks, tf.concat([[batch, mask_rois], shape[1:]], axis=0))
    if not sample:
      out.update(self._detect(out, valid_proposal, true_image_shapes))
      if self._number_of_stages >= 3 and not self._is_training:
        mask_logits = self._predict_detection_masks(features, out, true_image_shapes)
        out['detection_mask_logits'] = mask_logits
        out['detection_masks'] = tf.sigmoid(mask_logits)
    return out

  # ------------------------------------------------------------------------------------ postprocessing
  def _detect(self, pred, valid_proposal, true_image_shapes):
    """Second-stage post-processing (TF OD API `_postprocess_box_classifier`)."""
    rois = pred['rois']
    scores = self._score_converter_fn(pred['class_predictions_with_background'])
    scores = scores * tf.cast(valid_proposal, scores.dtype)[:, :, tf.newaxis]
    decoded = box_utils.decode(pred['refined_box_encodings'], rois[:, :, tf.newaxis, :])  # [B,N,K',4]
    hw = tf.cast(true_image_shapes[:, :2], tf.float32)
    scale = tf.concat([hw, hw], axis=-1)[:, tf.newaxis, tf.newaxis, :]
    decoded = tf.clip_by_value(decoded / scale, 0.0, 1.0)
    nms = self._nms_config
    det_boxes, det_scores, det_classes, num_det = tf.image.combined_non_max_suppression(
        decoded, scores[:, :, 1:], max_output_size_per_class=nms['max_detections_per_class'],
        max_total_size=nms['max_total_detections'], iou_threshold=nms['iou_threshold'],
        score_threshold=max(nms['score_threshold'], 1e-8), pad_per_class=False, clip_boxes=True)
    # Recover which proposal each detection came from to report its full score vector.
    class_idx = tf.cast(det_classes, tf.int32)
    if decoded.shape[2] == 1:
      cand = decoded[:, :, 0, :]  # [B, N, 4]
      dist = tf.reduce_sum(tf.abs(det_boxes[:, :, tf.newaxis, :] - cand[:, tf.newaxis]), -1)
    else:
      per_class = tf.gather(tf.transpose(decoded, [0, 2, 1, 3]), class_idx, batch_dims=1)  # [B,D,N,4]
      dist = tf.reduce_sum(tf.abs(det_boxes[:, :, tf.newaxis, :] - per_class), -1)
    src = tf.argmin(dist, axis=-1, output_type=tf.int32)
    multiclass = tf.gather(scores, src, batch_dims=1)
    best = tf.argmax(scores[:, :, 1:], axis=-1, output_type=tf.int32)
    raw_boxes = decoded[:, :, 0, :] if decoded.shape[2] == 1 else tf.gather(decoded, best, batch_dims=2)
    valid_det = tf.sequence_mask(num_det, tf.shape(det_scores)[1], dtype=tf.float32)
    return {
        fields.DetectionResultFields.detection_boxes: det_boxes,
        fields.DetectionResultFields.detection_scores: det_scores,
        fields.DetectionResultFields.detection_classes: (det_classes + 1.0) * valid_det,
        fields.DetectionResultFields.num_detections: tf.cast(num_det, tf.float32),
        'detection_multiclass_scores': multiclass * valid_det[:, :, tf.newaxis],
        'raw_detection_boxes': raw_boxes,
        'raw_detection_scores': scores,
        '_detection_class_index': class_idx,
    }

  def _predict_detection_masks(self, features, pred, true_image_shapes):
    """Mask pass on the detected boxes -> float32 [B, D, mask_h, mask_w] logits of the detected class."""
    boxes = pred[fields.DetectionResultFields.detection_boxes]
    hw = tf.cast(true_image_shapes[:, :2], tf.float32)
    abs_boxes = boxes * tf.concat([hw, hw], axis=-1)[:, tf.newaxis, :]
    _, mask_features = self._box_classifier_features(features, abs_boxes)
    logits = self.box_predictor.predict_masks(mask_features, training=False)  # [B*D, Km, h, w]
    batch, num = tf.shape(boxes)[0], tf.shape(boxes)[1]
    logits = tf.reshape(logits, tf.concat([[batch, num], tf.shape(logits)[1:]], axis=0))
    if logits.shape[2] == 1:
      selected = logits[:, :, 0]
    else:
      selected = tf.gather(logits, pred['_detection_class_index'], batch_dims=2)
    return selected

  def postprocess(self, prediction_dict, true_image_shapes, **params):
    """Returns the detection dict of contract E (normalized boxes, 1-based float class ids)."""
    f = fields.DetectionResultFields
    if self._number_of_stages == 1:
      scores = prediction_dict['proposal_scores']
      valid = tf.sequence_mask(prediction_dict['num_proposals'], tf.shape(scores)[1], dtype=tf.float32)
      return {
          f.detection_boxes: prediction_dict['proposal_boxes_normalized'],
          f.detection_scores: scores,
          f.detection_classes: valid,  # one "object" class with label id 1
          f.num_detections: tf.cast(prediction_dict['num_proposals'], tf.float32),
          'detection_multiclass_scores': tf.stack([1.0 - scores, scores], axis=-1) * valid[..., None],
          'raw_detection_boxes': prediction_dict['proposal_boxes_normalized'],
          'raw_detection_scores': tf.stack([1.0 - scores, scores], axis=-1),
      }
    if f.detection_boxes not in prediction_dict:
      # predict() ran in training mode: run the box post-processing now.
      num = tf.reduce_sum(tf.cast(prediction_dict.get(
          'sampled_valid', tf.ones(tf.shape(prediction_dict['rois'])[:2], tf.bool)), tf.int32), axis=1)
      valid = tf.sequence_mask(num, tf.shape(prediction_dict['rois'])[1])
      prediction_dict = dict(prediction_dict)
      prediction_dict.update(self._detect(prediction_dict, valid, true_image_shapes))
    keys = [f.detection_boxes, f.detection_scores, f.detection_classes, f.num_detections,
            'detection_multiclass_scores', 'raw_detection_boxes', 'raw_detection_scores']
    out = {k: prediction_dict[k] for k in keys}
    if f.detection_masks in prediction_dict:
      out[f.detection_masks] = prediction_dict[f.detection_masks]
    return out

  # --------------------------------------------------------------------------------------------- loss
  def _groundtruth_tensors(self, true_image_shapes):
    """Pads the provided per-image ground truth into [B, M, ...] absolute-pixel tensors."""
    bl = fields.BoxListFields
    boxes, valid = box_utils.pad_groundtruth(self.groundtruth_lists(bl.boxes))
    classes, _ = box_utils.pad_groundtruth(self.groundtruth_lists(bl.classes))
    hw = tf.cast(true_image_shapes[:, :2], tf.float32)
    boxes = tf.cast(boxes, tf.float32) * tf.concat([hw, hw], axis=-1)[:, tf.newaxis, :]
    if self.groundtruth_has_field(bl.weights):
      weights, _ = box_utils.pad_groundtruth(self.groundtruth_lists(bl.weights))
      weights = tf.cast(weights, tf.float32)
    else:
      weights = tf.cast(valid, tf.float32)
    valid = valid & (weights > 0.0)
    label_ids = tf.where(valid, tf.argmax(classes, axis=-1, output_type=tf.int32) + 1, 0)
    out = {'boxes': boxes, 'valid': valid, 'weights': weights, 'label_ids': label_ids}
    if self.groundtruth_has_field(bl.masks):
      masks, _ = box_utils.pad_groundtruth([tf.cast(m, tf.float32) for m in self.groundtruth_lists(bl.masks)])
      out['masks'] = masks
    return out

  def loss(self, prediction_dict, true_image_shapes, scope=None):
    """Returns {'Loss/RPNLoss/localization_loss', 'Loss/RPNLoss/objectness_loss', and for stages >= 2
    'Loss/BoxClassifierLoss/{localization,classification}_loss', stage 3 '.../mask_loss'}: float32
    scalars already multiplied by their config weights. Raises RuntimeError without ground truth, and
    ValueError for stage 3 without groundtruth masks."""
    del scope
    gt = self._groundtruth_tensors(true_image_shapes)
    targets = rpn.assign_targets(prediction_dict['anchors'], gt['boxes'], gt['valid'], gt['weights'],
                                 self._rpn_minibatch_size, self._rpn_positive_fraction)
    rpn_loc, rpn_obj = losses.rpn_losses(prediction_dict['rpn_box_encodings'],
                                         prediction_dict['rpn_objectness_predictions_with_background'],
                                         targets)
    out = {'Loss/RPNLoss/localization_loss': self._rpn_weights[0] * rpn_loc,
           'Loss/RPNLoss/objectness_loss': self._rpn_weights[1] * rpn_obj}
    if self._number_of_stages == 1:
      return out
    gt_boxes = tf.where(gt['valid'][:, :, tf.newaxis], gt['boxes'], -1.0)
    if 'sampled_gt_classes' in prediction_dict:
      s_boxes, s_classes = prediction_dict['sampled_gt_boxes'], prediction_dict['sampled_gt_classes']
      s_indices, s_valid = prediction_dict['sampled_gt_indices'], prediction_dict['sampled_valid']
    else:  # inference-mode prediction dict: every valid proposal counts
      s_valid = tf.sequence_mask(prediction_dict['num_proposals'], tf.shape(prediction_dict['rois'])[1])
      candidates = tf.where(s_valid[:, :, tf.newaxis], prediction_dict['rois'], -1.0)
      _, s_boxes, s_classes, s_indices = self._roi_matcher(candidates, gt_boxes, gt['label_ids'])
    loc, cls = losses.box_classifier_losses(
        prediction_dict['refined_box_encodings'], prediction_dict['class_predictions_with_background'],
        prediction_dict['rois'], s_boxes, s_classes, s_valid, self.num_classes,
        self._classification_loss_type)
    out['Loss/BoxClassifierLoss/localization_loss'] = self._loss_weights[0] * loc
    out['Loss/BoxClassifierLoss/classification_loss'] = self._loss_weights[1] * cls
    if self._number_of_stages >= 3:
      if 'masks' not in gt:
        raise ValueError('number_of_stages: 3 (Mask R-CNN) needs groundtruth_instance_masks: set '
                         'load_instance_masks: true in the input reader.')
      if 'mask_rois' in prediction_dict:  # training: masks predicted for the positive ROIs only
        mask = losses.mask_loss(prediction_dict['mask_predictions'], prediction_dict['mask_rois'],
                                prediction_dict['mask_gt_classes'],
                                prediction_dict['mask_gt_indices'], gt['masks'])
      elif 'mask_predictions' in prediction_dict:
        mask = losses.mask_loss(prediction_dict['mask_predictions'], prediction_dict['rois'],
                                s_classes, s_indices, gt['masks'])
      else:
        # Inference mode: masks exist for the detections only; score them against the ground truth
        # they overlap with IoU >= 0.5 (mask logits are already those of the detected class).
        det_f = fields.DetectionResultFields
        hw = tf.cast(true_image_shapes[:, :2], tf.float32)
        det = prediction_dict[det_f.detection_boxes] * tf.concat([hw, hw], axis=-1)[:, tf.newaxis, :]
        det_valid = tf.sequence_mask(tf.cast(prediction_dict[det_f.num_detections], tf.int32),
                                     tf.shape(det)[1])
        det = tf.where(det_valid[:, :, tf.newaxis], det, -1.0)
        _, _, d_classes, d_indices = self._roi_matcher(det, gt_boxes, gt['label_ids'])
        mask = losses.mask_loss(prediction_dict['detection_mask_logits'][:, :, tf.newaxis],
                                tf.maximum(det, 0.0), d_classes, d_indices, gt['masks'])
      out['Loss/BoxClassifierLoss/mask_loss'] = self._loss_weights[2] * mask
    return out

  # ------------------------------------------------------------------------------------- checkpoints
  def restore_from_objects(self, fine_tune_checkpoint_type='detection'):
    """Trackables for tf.train.Checkpoint(**dict).

    'classification': the feature extractor backbone (`classification_checkpoint_objects()`);
    'detection': everything but the class-dependent box predictor, mirroring the attribute names of a
    `tf.train.Checkpoint(model=<this model>)`; 'full': the whole model.
    Raises ValueError for other types.
    """
    if fine_tune_checkpoint_type == 'classification':
      return self._extractor.classification_checkpoint_objects()
    if fine_tune_checkpoint_type == 'detection':
      parts = {'feature_extractor_backbone': self.feature_extractor_backbone, 'rpn_head': self.rpn_head}
      if self.box_classifier_layers is not None:
        parts['box_classifier_layers'] = self.box_classifier_layers
      return {'model': tf.train.Checkpoint(**parts)}
    if fine_tune_checkpoint_type == 'full':
      return {'model': self}
    raise ValueError('fine_tune_checkpoint_type must be "classification", "detection" or "full", got %r.'
                     % fine_tune_checkpoint_type)
