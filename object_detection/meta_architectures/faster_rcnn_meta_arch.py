"""Faster R-CNN / Mask R-CNN meta-architecture: the TF OD API's `FasterRCNNMetaArch` (TF2 / Keras path).

Ren et al. 2015 (Faster R-CNN), He et al. 2017 (Mask R-CNN). The network, the attribute names that hold
its layers (and so the checkpoint keys), the prediction dict, the post-processing and the losses are those
of the TF OD API's `meta_architectures/faster_rcnn_meta_arch.py` at upstream commit e3c7e300, so TF OD API
checkpoints restore here and give the same detections. Checkpoint objects under `model/`:

  _feature_extractor_for_proposal_features         the extractor's proposal (RPN feature) model
  _feature_extractor_for_box_classifier_features   the extractor's box classifier model
  _first_stage_box_predictor_first_conv            RPN conv (kernel_size, depth, atrous rate) + BN + relu6
  _first_stage_box_predictor                       RPN box / objectness heads (ConvolutionalBoxPredictor)
  _mask_rcnn_box_predictor                         second stage box, class and mask heads

Flow (B images; A anchors; P = `max_num_proposals`: `second_stage_batch_size` when training without a
hard example miner, else `first_stage_max_proposals`; K = num_classes):
  1. First stage: feature maps -> RPN conv -> box encodings [B, A, 4] and objectness logits [B, A, 2]
     (background first). Anchors (absolute pixels of the padded, preprocessed image) are pruned to those
     fully inside the image when training (or clipped with `clip_anchors_to_image`), clipped at inference.
  2. Proposals: decode, softmax, per-image NMS clipped to the true image (`first_stage_*`); when training,
     `second_stage_batch_size` proposals are sampled with the second stage target assigner and sampler.
     Proposals are then normalized to the padded image.
  3. Second stage: crop_and_resize of the feature map at each proposal to `initial_crop_size`, max pool,
     box classifier model, box / class heads: refined_box_encodings [B*P, K or 1, 4],
     class_predictions_with_background [B*P, K + 1].
  4. Stage 3, training: the mask head on the same box classifier features -> mask_predictions
     [B*P, K or 1, h, w] (logits). Stage 3, inference: box post-processing (per-class NMS) first, then the
     crops at the detected boxes go through the box classifier model and the mask head again.
Losses (`loss`): `Loss/RPNLoss/{localization,objectness}_loss`,
`Loss/BoxClassifierLoss/{localization,classification,mask}_loss`, with the TF OD API's normalizations.

Coordinates: `provide_groundtruth` boxes are normalized [ymin, xmin, ymax, xmax] relative to the
preprocessed (padded) image, as the TF OD API's input pipeline gives them; `postprocess` detection boxes
are normalized relative to the true (unpadded) image; `detection_classes` are 0-based class indices (add
1 for label-map ids, as the TF OD API's exporter and evaluation do).

Project extensions (off by default, so the TF OD API's behaviour and numbers hold; see
docs/config_extensions.md): `mask_head_features` (the FPN Mask R-CNN's mask head may read the ROI crops
instead of the [N, 1, 1, 1024] FC output), `crop_detections_in_true_image_frame` (stage-3 crops at
inference use the detections' true-image frame; the TF OD API crops padded feature maps with boxes
normalized to the true image, which misplaces masks when the resizer pads). Ways of running the same math
faster (no option, no change in numbers): the training mask head runs on the positive proposals only when
it has no batch norm or dropout, and mask targets are cropped from each proposal's matched mask without
materialising [B, P, H, W] assigned masks.
"""

import tensorflow as tf
import tf_keras

from object_detection.builders import box_predictor_builder
from object_detection.builders import hyperparams_builder
from object_detection.core import box_list
from object_detection.core import box_list_ops
from object_detection.core import box_predictor
from object_detection.core import losses
from object_detection.core import model
from object_detection.core import standard_fields as fields
from object_detection.meta_architectures import faster_rcnn_losses
from object_detection.meta_architectures.faster_rcnn_feature_extractor import FasterRCNNKerasFeatureExtractor  # pylint: disable=unused-import
from object_detection.utils import ops
from object_detection.utils import shape_utils

# Which features the mask head reads (extension field `mask_head_features`).
MASK_HEAD_READS_BOX_CLASSIFIER_FEATURES = 0  # the TF OD API
MASK_HEAD_READS_CROPPED_FEATURES = 1


class FasterRCNNMetaArch(model.DetectionModel):
  """The TF OD API's Faster R-CNN meta-architecture. See the module docstring.

  Constructor arguments are the TF OD API's (`FasterRCNNMetaArch.__init__`), built from the config by
  `object_detection.builders.model_builder`; the Keras path only (`first_stage_box_predictor_arg_scope_fn`
  must be a `KerasLayerHyperparams`). Extension arguments: `mask_head_features`,
  `crop_detections_in_true_image_frame` (config extensions, see the module docstring) and
  `mask_head_is_per_roi` (set by the builder when the mask head has no batch norm: each ROI's mask
  logits then depend on that ROI alone, and training runs the mask head on the positive proposals only,
  which gives the same loss and gradients).

  Raises:
    ValueError: `number_of_stages` not in {1, 2, 3}; a slim (non-Keras) RPN hyperparams object.
  """

  def __init__(self,
               is_training,
               num_classes,
               image_resizer_fn,
               feature_extractor,
               number_of_stages,
               first_stage_anchor_generator,
               first_stage_target_assigner,
               first_stage_atrous_rate,
               first_stage_box_predictor_arg_scope_fn,
               first_stage_box_predictor_kernel_size,
               first_stage_box_predictor_depth,
               first_stage_minibatch_size,
               first_stage_sampler,
               first_stage_non_max_suppression_fn,
               first_stage_max_proposals,
               first_stage_localization_loss_weight,
               first_stage_objectness_loss_weight,
               crop_and_resize_fn,
               initial_crop_size,
               maxpool_kernel_size,
               maxpool_stride,
               second_stage_target_assigner,
               second_stage_mask_rcnn_box_predictor,
               second_stage_batch_size,
               second_stage_sampler,
               second_stage_non_max_suppression_fn,
               second_stage_score_conversion_fn,
               second_stage_localization_loss_weight,
               second_stage_classification_loss_weight,
               second_stage_classification_loss,
               second_stage_mask_prediction_loss_weight=1.0,
               hard_example_miner=None,
               parallel_iterations=16,
               add_summaries=True,
               clip_anchors_to_image=False,
               use_static_shapes=False,
               resize_masks=True,
               freeze_batchnorm=False,
               return_raw_detections_during_predict=False,
               output_final_box_features=False,
               output_final_box_rpn_features=False,
               mask_head_features=MASK_HEAD_READS_BOX_CLASSIFIER_FEATURES,
               crop_detections_in_true_image_frame=False,
               mask_head_is_per_roi=False):
    super().__init__(num_classes=num_classes)
    if number_of_stages not in (1, 2, 3):
      raise ValueError('faster_rcnn.number_of_stages must be 1 (RPN), 2 (Faster R-CNN) or 3 '
                       '(Mask R-CNN); got %r.' % (number_of_stages,))
    if not isinstance(first_stage_box_predictor_arg_scope_fn,
                      hyperparams_builder.KerasLayerHyperparams):
      raise ValueError('first_stage_box_predictor_arg_scope_fn must be a KerasLayerHyperparams (the TF2 '
                       'Keras path); slim arg scopes are not supported.')
    self._is_training = is_training
    self._image_resizer_fn = image_resizer_fn
    self._resize_masks = resize_masks
    self._feature_extractor = feature_extractor
    # Built on first use, as the TF OD API does, so the models share one classification backbone.
    self._feature_extractor_for_proposal_features = None
    self._feature_extractor_for_box_classifier_features = None
    self._number_of_stages = number_of_stages

    self._proposal_target_assigner = first_stage_target_assigner
    self._detector_target_assigner = second_stage_target_assigner
    self._box_coder = self._proposal_target_assigner.box_coder

    self._first_stage_anchor_generator = first_stage_anchor_generator
    self._first_stage_atrous_rate = first_stage_atrous_rate
    self._first_stage_box_predictor_depth = first_stage_box_predictor_depth
    self._first_stage_box_predictor_kernel_size = first_stage_box_predictor_kernel_size
    self._first_stage_minibatch_size = first_stage_minibatch_size
    self._first_stage_sampler = first_stage_sampler
    conv_hyperparams = first_stage_box_predictor_arg_scope_fn
    kernel = first_stage_box_predictor_kernel_size
    self._first_stage_box_predictor_first_conv = tf_keras.Sequential([
        tf_keras.layers.Conv2D(first_stage_box_predictor_depth, kernel_size=[kernel, kernel],
                               dilation_rate=first_stage_atrous_rate, padding='SAME', name='RPNConv',
                               **conv_hyperparams.params()),
        conv_hyperparams.build_batch_norm(is_training and not freeze_batchnorm, name='RPNBatchNorm'),
        tf_keras.layers.Lambda(tf.nn.relu6, name='RPNActivation'),
    ], name='FirstStageRPNFeatures')
    self._first_stage_box_predictor = box_predictor_builder.build_convolutional_keras_box_predictor(
        is_training=is_training,
        num_classes=1,
        conv_hyperparams=conv_hyperparams,
        freeze_batchnorm=freeze_batchnorm,
        inplace_batchnorm_update=False,
        num_predictions_per_location_list=(
            first_stage_anchor_generator.num_anchors_per_location()),
        use_dropout=False,
        dropout_keep_prob=1.0,
        box_code_size=self._box_coder.code_size,
        kernel_size=1,
        num_layers_before_predictor=0,
        min_depth=0,
        max_depth=0,
        name=self.first_stage_box_predictor_scope)

    self._first_stage_nms_fn = first_stage_non_max_suppression_fn
    self._first_stage_max_proposals = first_stage_max_proposals
    self._use_static_shapes = use_static_shapes
    self._first_stage_localization_loss = losses.WeightedSmoothL1LocalizationLoss()
    self._first_stage_objectness_loss = losses.WeightedSoftmaxClassificationLoss()
    self._first_stage_loc_loss_weight = first_stage_localization_loss_weight
    self._first_stage_obj_loss_weight = first_stage_objectness_loss_weight

    self._crop_and_resize_fn = crop_and_resize_fn
    self._initial_crop_size = initial_crop_size
    self._maxpool_kernel_size = maxpool_kernel_size
    self._maxpool_stride = maxpool_stride
    if maxpool_kernel_size:
      self._maxpool_layer = tf_keras.layers.MaxPooling2D(
          [maxpool_kernel_size, maxpool_kernel_size], strides=maxpool_stride, name='MaxPool2D')
    else:
      # The TF OD API would fail on its missing layer at the first crop; no pooling is what 0 asks for.
      self._maxpool_layer = None

    self._mask_rcnn_box_predictor = second_stage_mask_rcnn_box_predictor
    self._second_stage_batch_size = second_stage_batch_size
    self._second_stage_sampler = second_stage_sampler
    self._second_stage_nms_fn = second_stage_non_max_suppression_fn
    self._second_stage_score_conversion_fn = second_stage_score_conversion_fn
    self._second_stage_localization_loss = losses.WeightedSmoothL1LocalizationLoss()
    self._second_stage_classification_loss = second_stage_classification_loss
    self._second_stage_mask_loss = losses.WeightedSigmoidClassificationLoss()
    self._second_stage_loc_loss_weight = second_stage_localization_loss_weight
    self._second_stage_cls_loss_weight = second_stage_classification_loss_weight
    self._second_stage_mask_loss_weight = second_stage_mask_prediction_loss_weight
    self._hard_example_miner = hard_example_miner
    self._parallel_iterations = parallel_iterations
    self.clip_anchors_to_image = clip_anchors_to_image
    self._batched_prediction_tensor_names = []
    self._return_raw_detections_during_predict = return_raw_detections_during_predict
    self._output_final_box_features = output_final_box_features
    self._output_final_box_rpn_features = output_final_box_rpn_features
    self._mask_head_features = mask_head_features
    self._crop_detections_in_true_image_frame = crop_detections_in_true_image_frame
    self._anchors = None
    # Not a TF OD API argument: the training mask head may run on the positive proposals only when
    # nothing in it couples proposals (no batch norm), which gives the same loss.
    self._mask_head_is_per_roi = mask_head_is_per_roi

  # ----------------------------------------------------------------------------------- properties
  @property
  def first_stage_feature_extractor_scope(self):
    return 'FirstStageFeatureExtractor'

  @property
  def second_stage_feature_extractor_scope(self):
    return 'SecondStageFeatureExtractor'

  @property
  def first_stage_box_predictor_scope(self):
    return 'FirstStageBoxPredictor'

  @property
  def second_stage_box_predictor_scope(self):
    return 'SecondStageBoxPredictor'

  @property
  def max_num_proposals(self):
    """Proposals per image out of the RPN: second_stage_batch_size when training (sampled), else
    first_stage_max_proposals."""
    if self._is_training and not self._hard_example_miner:
      return self._second_stage_batch_size
    return self._first_stage_max_proposals

  @property
  def anchors(self):
    """BoxList of the anchors of the last `predict` call (absolute coordinates)."""
    if self._anchors is None:
      raise RuntimeError('anchors have not been constructed yet: call predict() first.')
    return self._anchors

  @property
  def batched_prediction_tensor_names(self):
    if not self._batched_prediction_tensor_names:
      raise RuntimeError('Must call predict() method to get batched prediction tensor names.')
    return self._batched_prediction_tensor_names

  @property
  def feature_extractor(self):
    return self._feature_extractor

  @property
  def number_of_stages(self):
    return self._number_of_stages

  # ----------------------------------------------------------------------------------- preprocess
  def preprocess(self, inputs):
    """Resizes each image with the image resizer, then applies the extractor's pixel normalization.

    Args:
      inputs: float32 [B, H, W, 3] RGB in [0, 255].

    Returns:
      (preprocessed float32 [B, h, w, 3], true_image_shapes int32 [B, 3]: each image's size inside
      the (possibly padded) resized batch).

    Raises:
      ValueError: inputs are not float32.
    """
    resized_inputs, true_image_shapes = shape_utils.resize_images_and_return_shapes(
        inputs, self._image_resizer_fn)
    return self._feature_extractor.preprocess(resized_inputs), true_image_shapes

  # -------------------------------------------------------------------------------------- predict
  def predict(self, preprocessed_inputs, true_image_shapes, **side_inputs):
    """Runs the network; returns the TF OD API's prediction dict.

    Args:
      preprocessed_inputs: float32 [B, H, W, 3] from `preprocess`.
      true_image_shapes: int32 [B, 3] from `preprocess`.
      **side_inputs: unused (ContextRCNN inputs in the TF OD API).

    Returns:
      dict with (P = max_num_proposals, A = anchors kept):
        rpn_box_predictor_features, rpn_features_to_crop, feature_maps: lists of float32 [B, h_i, w_i, C];
        image_shape: int32 [4]; rpn_box_encodings: float32 [B, A, 4];
        rpn_objectness_predictions_with_background: float32 [B, A, 2]; anchors: float32 [A, 4] absolute;
      stages >= 2: refined_box_encodings [B*P, K or 1, 4], class_predictions_with_background
        [B*P, K + 1], num_proposals int32 [B], proposal_boxes [B, P, 4] absolute, proposal_boxes_normalized
        and final_anchors [B, P, 4], box_classifier_features [B*P, h, w, D];
      stage 3: mask_predictions [B*P, K or 1, mask_h, mask_w] logits when training; at inference the
        detection fields of `postprocess` plus detection_masks [B, max_detections, mask_h, mask_w]
        (probabilities) and mask_predictions [B*max_detections, K or 1, mask_h, mask_w] (logits).
    """
    del side_inputs
    prediction_dict = self._predict_first_stage(preprocessed_inputs)
    if self._number_of_stages >= 2:
      prediction_dict.update(self._predict_second_stage(
          prediction_dict['rpn_box_encodings'],
          prediction_dict['rpn_objectness_predictions_with_background'],
          prediction_dict['rpn_features_to_crop'], prediction_dict['anchors'],
          prediction_dict['image_shape'], true_image_shapes))
    if self._number_of_stages == 3:
      prediction_dict = self._predict_third_stage(prediction_dict, true_image_shapes)
    self._batched_prediction_tensor_names = [
        name for name in prediction_dict if name not in ('image_shape', 'anchors')]
    return prediction_dict

  def _predict_first_stage(self, preprocessed_inputs):
    rpn_box_predictor_features, rpn_features_to_crop, anchors_boxlist, image_shape = (
        self._extract_rpn_feature_maps(preprocessed_inputs))
    rpn_box_encodings, rpn_objectness = self._predict_rpn_proposals(rpn_box_predictor_features)
    clip_window = tf.cast(tf.stack([0, 0, image_shape[1], image_shape[2]]), tf.float32)
    if self._is_training:
      if self.clip_anchors_to_image:
        anchors_boxlist = box_list_ops.clip_to_window(anchors_boxlist, clip_window,
                                                      filter_nonoverlapping=False)
      else:
        # Faster R-CNN paper: anchors crossing the image border are ignored in training.
        anchors_boxlist, keep = box_list_ops.prune_outside_window(anchors_boxlist, clip_window)
        rpn_box_encodings = tf.gather(rpn_box_encodings, keep, axis=1)
        rpn_objectness = tf.gather(rpn_objectness, keep, axis=1)
    else:
      anchors_boxlist = box_list_ops.clip_to_window(
          anchors_boxlist, clip_window, filter_nonoverlapping=not self._use_static_shapes)
    self._anchors = anchors_boxlist
    return {
        'rpn_box_predictor_features': rpn_box_predictor_features,
        'rpn_features_to_crop': rpn_features_to_crop,
        'image_shape': image_shape,
        'rpn_box_encodings': tf.cast(rpn_box_encodings, tf.float32),
        'rpn_objectness_predictions_with_background': tf.cast(rpn_objectness, tf.float32),
        'anchors': anchors_boxlist.get(),
        fields.PredictionFields.feature_maps: rpn_features_to_crop,
    }

  def _extract_proposal_features(self, preprocessed_inputs):
    if self._feature_extractor_for_proposal_features is None:
      self._feature_extractor_for_proposal_features = (
          self._feature_extractor.get_proposal_feature_extractor_model(
              name=self.first_stage_feature_extractor_scope))
    return self._feature_extractor_for_proposal_features(preprocessed_inputs,
                                                         training=self._is_training)

  def _extract_box_classifier_features(self, flattened_feature_maps):
    if self._feature_extractor_for_box_classifier_features is None:
      self._feature_extractor_for_box_classifier_features = (
          self._feature_extractor.get_box_classifier_feature_extractor_model(
              name=self.second_stage_feature_extractor_scope))
    return self._feature_extractor_for_box_classifier_features(flattened_feature_maps,
                                                               training=self._is_training)

  def _extract_rpn_feature_maps(self, preprocessed_inputs):
    # Static sizes where known (TF OD API: combined_static_and_dynamic_shape), so a fixed-size input
    # gives a static anchor count: the static-shape (XLA / TPU) path needs it.
    image_shape = tf.shape(preprocessed_inputs)
    rpn_features_to_crop = self._extract_proposal_features(preprocessed_inputs)
    if not isinstance(rpn_features_to_crop, list):
      rpn_features_to_crop = [rpn_features_to_crop]
    feature_map_shapes = []
    rpn_box_predictor_features = []
    for features in rpn_features_to_crop:
      shape = shape_utils.combined_static_and_dynamic_shape(features)
      feature_map_shapes.append((shape[1], shape[2]))
      rpn_box_predictor_features.append(
          self._first_stage_box_predictor_first_conv(features, training=self._is_training))
    anchors = box_list_ops.concatenate(
        self._first_stage_anchor_generator.generate(feature_map_shapes))
    return rpn_box_predictor_features, rpn_features_to_crop, anchors, image_shape

  def _predict_rpn_proposals(self, rpn_box_predictor_features):
    predictions = self._first_stage_box_predictor(rpn_box_predictor_features,
                                                  training=self._is_training)
    box_encodings = tf.concat(predictions[box_predictor.BOX_ENCODINGS], axis=1)
    objectness = tf.concat(predictions[box_predictor.CLASS_PREDICTIONS_WITH_BACKGROUND], axis=1)
    return tf.squeeze(box_encodings, axis=2), objectness

  def _image_batch_shape_2d(self, image_batch_shape_1d):
    """int32 [4] batch shape -> int32 [B, 3] rows of [height, width, channels]."""
    return tf.tile(tf.expand_dims(image_batch_shape_1d[1:], 0), [image_batch_shape_1d[0], 1])

  def _predict_second_stage(self, rpn_box_encodings, rpn_objectness_predictions_with_background,
                            rpn_features_to_crop, anchors, image_shape, true_image_shapes):
    image_shape_2d = self._image_batch_shape_2d(image_shape)
    proposal_boxes_normalized, _, _, num_proposals, _, _, sampled_classes = self._postprocess_rpn(
        rpn_box_encodings, rpn_objectness_predictions_with_background, anchors, image_shape_2d,
        true_image_shapes)
    prediction_dict = self._box_prediction(rpn_features_to_crop, proposal_boxes_normalized,
                                           image_shape, true_image_shapes)
    prediction_dict['num_proposals'] = num_proposals
    if sampled_classes is not None:
      prediction_dict[faster_rcnn_losses.SAMPLED_PROPOSAL_CLASSES] = sampled_classes
    return prediction_dict

  def _box_prediction(self, rpn_features_to_crop, proposal_boxes_normalized, image_shape,
                      true_image_shapes):
    cropped = self._crop_features(rpn_features_to_crop, proposal_boxes_normalized, image_shape)
    flattened_proposal_feature_maps = self._maxpool(cropped)
    box_classifier_features = self._extract_box_classifier_features(flattened_proposal_feature_maps)
    predictions = self._mask_rcnn_box_predictor([box_classifier_features], prediction_stage=2,
                                                training=self._is_training)
    refined_box_encodings = tf.squeeze(predictions[box_predictor.BOX_ENCODINGS], axis=1)
    class_predictions_with_background = tf.squeeze(
        predictions[box_predictor.CLASS_PREDICTIONS_WITH_BACKGROUND], axis=1)
    absolute_proposal_boxes = ops.normalized_to_image_coordinates(
        proposal_boxes_normalized, image_shape, self._parallel_iterations)
    prediction_dict = {
        'refined_box_encodings': tf.cast(refined_box_encodings, tf.float32),
        'class_predictions_with_background': tf.cast(class_predictions_with_background, tf.float32),
        'proposal_boxes': absolute_proposal_boxes,
        'box_classifier_features': box_classifier_features,
        'proposal_boxes_normalized': proposal_boxes_normalized,
        'final_anchors': proposal_boxes_normalized,
    }
    if self._mask_head_features == MASK_HEAD_READS_CROPPED_FEATURES:
      prediction_dict[faster_rcnn_losses.MASK_HEAD_INPUT_FEATURES] = cropped
    if self._return_raw_detections_during_predict:
      prediction_dict.update(self._raw_detections_and_feature_map_inds(
          refined_box_encodings, absolute_proposal_boxes, true_image_shapes))
    return prediction_dict

  def _raw_detections_and_feature_map_inds(self, refined_box_encodings, absolute_proposal_boxes,
                                           true_image_shapes):
    encodings = tf.reshape(refined_box_encodings, [-1, self.max_num_proposals,
                                                   refined_box_encodings.shape[1],
                                                   self._box_coder.code_size])
    boxes_absolute = self._batch_decode_boxes(encodings, absolute_proposal_boxes)
    boxes_normalized = shape_utils.static_or_dynamic_map_fn(
        self._normalize_and_clip_boxes, elems=[boxes_absolute, true_image_shapes], dtype=tf.float32)
    return {
        fields.PredictionFields.raw_detection_boxes: boxes_normalized,
        fields.PredictionFields.raw_detection_feature_map_indices: tf.zeros_like(
            boxes_normalized[:, :, :, 0], dtype=tf.int32),
    }

  def _crop_features(self, features_to_crop, boxes_normalized, image_shape):
    """crop_and_resize of each box (normalized [B, N, 4]) -> float32 [B*N, crop, crop, C].

    FPN extractors: each box reads the level the TF OD API's `ops.fpn_feature_levels` assigns it
    (unit scale = the second-to-last map, 224-pixel boxes, image area normalizing the size).
    """
    # Under a bfloat16/float16 policy the maps come in that dtype; tf.image.crop_and_resize takes
    # no bfloat16 and returns float32 anyway (a no-op cast in float32).
    features_to_crop = [tf.cast(f, tf.float32) for f in features_to_crop]
    num_levels = len(features_to_crop)
    box_levels = None
    if num_levels != 1:
      image_ratio = tf.sqrt(tf.cast(image_shape[1] * image_shape[2], tf.float32)) / 224.0
      box_levels = ops.fpn_feature_levels(num_levels, num_levels - 2, image_ratio, boxes_normalized)
    cropped = self._crop_and_resize_fn(features_to_crop, boxes_normalized, box_levels,
                                       [self._initial_crop_size, self._initial_crop_size])
    return self._flatten_first_two_dimensions(cropped)

  def _maxpool(self, cropped):
    if self._maxpool_layer is None:
      return cropped
    return self._maxpool_layer(cropped)

  def _compute_second_stage_input_feature_maps(self, features_to_crop, proposal_boxes_normalized,
                                               image_shape):
    """ROI features for the box classifier: crop_and_resize then max pool ([B*N, h, w, C])."""
    return self._maxpool(self._crop_features(features_to_crop, proposal_boxes_normalized, image_shape))

  def _flatten_first_two_dimensions(self, inputs):
    shape = shape_utils.combined_static_and_dynamic_shape(inputs)
    return tf.reshape(inputs, tf.stack([shape[0] * shape[1]] + shape[2:]))

  def _predict_masks(self, box_classifier_features, cropped_features):
    """Mask head on the given ROI features -> logits [N, K or 1, mask_h, mask_w]."""
    features = box_classifier_features
    if self._mask_head_features == MASK_HEAD_READS_CROPPED_FEATURES:
      features = cropped_features
    predictions = self._mask_rcnn_box_predictor([features], prediction_stage=3,
                                                training=self._is_training)
    # float32 logits for the loss and the sigmoid under a bfloat16/float16 policy (no-op in float32).
    return tf.cast(tf.squeeze(predictions[box_predictor.MASK_PREDICTIONS], axis=1), tf.float32)

  def _predict_third_stage(self, prediction_dict, image_shapes):
    if self._is_training:
      prediction_dict.update(self._predict_training_masks(prediction_dict))
      return prediction_dict
    detections_dict = self._postprocess_box_classifier(
        prediction_dict['refined_box_encodings'],
        prediction_dict['class_predictions_with_background'], prediction_dict['proposal_boxes'],
        prediction_dict['num_proposals'], image_shapes)
    prediction_dict.update(detections_dict)
    detection_boxes = detections_dict[fields.DetectionResultFields.detection_boxes]
    detection_classes = detections_dict[fields.DetectionResultFields.detection_classes]
    image_shape = prediction_dict['image_shape']
    batch_size = tf.shape(detection_boxes)[0]
    max_detection = tf.shape(detection_boxes)[1]
    crop_boxes = detection_boxes
    if self._crop_detections_in_true_image_frame:
      crop_boxes = _true_to_padded_frame(detection_boxes, image_shapes, image_shape)
      prediction_dict[faster_rcnn_losses.DETECTION_MASK_CROP_BOXES] = crop_boxes
    cropped = self._crop_features(prediction_dict['rpn_features_to_crop'], crop_boxes, image_shape)
    box_classifier_features = self._extract_box_classifier_features(self._maxpool(cropped))
    detection_masks = self._predict_masks(box_classifier_features, cropped)
    num_mask_classes, mask_height, mask_width = detection_masks.shape.as_list()[1:]
    prediction_dict['mask_predictions'] = tf.reshape(
        detection_masks, [-1, num_mask_classes, mask_height, mask_width])
    if num_mask_classes > 1:
      detection_masks = self._gather_instance_masks(detection_masks, detection_classes)
    prediction_dict[fields.DetectionResultFields.detection_masks] = tf.reshape(
        tf.sigmoid(tf.cast(detection_masks, tf.float32)),
        [batch_size, max_detection, mask_height, mask_width])
    return prediction_dict

  def _predict_training_masks(self, prediction_dict):
    """Training mask predictions: [B*P, K or 1, h, w] logits, or on the positives only (same loss)."""
    box_classifier_features = prediction_dict['box_classifier_features']
    cropped = prediction_dict.get(faster_rcnn_losses.MASK_HEAD_INPUT_FEATURES)
    sampled_classes = prediction_dict.get(faster_rcnn_losses.SAMPLED_PROPOSAL_CLASSES)
    if sampled_classes is None or not self._mask_head_is_per_roi or self._use_static_shapes:
      return {'mask_predictions': self._predict_masks(box_classifier_features, cropped)}
    # The mask loss weighs positive proposals only; a per-ROI mask head gives them the same logits
    # whatever else is in the batch, so the others need not go through it (about 4x less work at the
    # usual 25% positive fraction). Not on the static-shape path: the positive count is data-dependent.
    flat_classes = tf.reshape(sampled_classes, [-1])
    positive_rows = tf.cast(tf.where(flat_classes > 0)[:, 0], tf.int32)
    # One extra row (proposal 0, dropped below) keeps the batch non-empty when no proposal is positive:
    # convolutions on an empty batch fail on CPU (oneDNN).
    rows = tf.concat([positive_rows, [0]], axis=0)
    features = tf.gather(box_classifier_features, rows)
    if cropped is not None:
      cropped = tf.gather(cropped, rows)
    masks = self._predict_masks(features, cropped)[:-1]
    return {faster_rcnn_losses.POSITIVE_MASK_PREDICTIONS: masks,
            faster_rcnn_losses.POSITIVE_MASK_ROWS: positive_rows}

  def _gather_instance_masks(self, instance_masks, classes):
    """[N, K, h, w] masks, [B, D] 0-based classes (N = B*D) -> [N, h, w] masks of each class."""
    _, num_classes, height, width = instance_masks.shape.as_list()
    k = tf.shape(instance_masks)[0]
    instance_masks = tf.reshape(instance_masks, [-1, height, width])
    classes = tf.cast(tf.reshape(classes, [-1]), tf.int32)
    return tf.gather(instance_masks, tf.range(k) * num_classes + classes)

  # ---------------------------------------------------------------------------------- postprocess
  def postprocess(self, prediction_dict, true_image_shapes):
    """Converts the prediction dict into detections (TF OD API `FasterRCNNMetaArch.postprocess`).

    Returns:
      number_of_stages 1: the proposals: detection_boxes [B, P, 4] normalized to the padded image,
        detection_scores, detection_multiclass_scores [B, P, 2], num_detections (float32),
        raw_detection_boxes / raw_detection_scores; plus detection_classes (zeros: one "object"
        class; the TF OD API leaves the key out).
      stage 2 (and stage 3 when training): detection_boxes [B, D, 4] normalized to the true image,
        detection_scores [B, D], detection_classes [B, D] (0-based, float32), num_detections [B]
        (float32), detection_multiclass_scores [B, D, K + 1], detection_anchor_indices int32 [B, D],
        raw_detection_boxes [B, P, 4], raw_detection_scores [B, P, K + 1]; detection_masks
        [B, D, h, w] when mask predictions exist.
      stage 3 at inference: the prediction dict (its tensors), which holds the same detection fields
        and detection_masks [B, D, mask_h, mask_w] (box-relative probabilities).
    """
    if self._number_of_stages == 1:
      image_shapes = self._image_batch_shape_2d(prediction_dict['image_shape'])
      (proposal_boxes, proposal_scores, proposal_multiclass_scores, num_proposals,
       raw_proposal_boxes, raw_proposal_scores, _) = self._postprocess_rpn(
           prediction_dict['rpn_box_encodings'],
           prediction_dict['rpn_objectness_predictions_with_background'],
           prediction_dict['anchors'], image_shapes, true_image_shapes)
      return {
          fields.DetectionResultFields.detection_boxes: proposal_boxes,
          fields.DetectionResultFields.detection_scores: proposal_scores,
          fields.DetectionResultFields.detection_classes: tf.zeros_like(proposal_scores),
          fields.DetectionResultFields.detection_multiclass_scores: proposal_multiclass_scores,
          fields.DetectionResultFields.num_detections: tf.cast(num_proposals, tf.float32),
          fields.DetectionResultFields.raw_detection_boxes: raw_proposal_boxes,
          fields.DetectionResultFields.raw_detection_scores: raw_proposal_scores,
      }
    if self._number_of_stages == 2 or self._is_training:
      detections_dict = self._postprocess_box_classifier(
          prediction_dict['refined_box_encodings'],
          prediction_dict['class_predictions_with_background'], prediction_dict['proposal_boxes'],
          prediction_dict['num_proposals'], true_image_shapes,
          mask_predictions=prediction_dict.get(box_predictor.MASK_PREDICTIONS))
      if self._output_final_box_features or self._output_final_box_rpn_features:
        if 'rpn_features_to_crop' not in prediction_dict:
          raise ValueError('output_final_box_features needs rpn_features_to_crop in the prediction dict.')
        detection_boxes = detections_dict[fields.DetectionResultFields.detection_boxes]
        features = self._compute_second_stage_input_feature_maps(
            prediction_dict['rpn_features_to_crop'], detection_boxes, prediction_dict['image_shape'])
        batch_size = tf.shape(detection_boxes)[0]
        max_detections = tf.shape(detection_boxes)[1]
        if self._output_final_box_features:
          box_features = self._extract_box_classifier_features(features)
          detections_dict['detection_features'] = _unflatten(box_features, batch_size, max_detections)
        if self._output_final_box_rpn_features:
          detections_dict['cropped_rpn_box_features'] = _unflatten(features, batch_size, max_detections)
      return detections_dict
    return {k: v for k, v in prediction_dict.items() if isinstance(v, tf.Tensor)}

  def _postprocess_rpn(self, rpn_box_encodings_batch, rpn_objectness_predictions_with_background_batch,
                       anchors, image_shapes, true_image_shapes):
    """Proposals (TF OD API `_postprocess_rpn`), sampled for the box classifier when training.

    Returns:
      (proposal_boxes normalized to the padded image [B, P, 4], proposal_scores [B, P],
       proposal_multiclass_scores [B, P, 2], num_proposals int32 [B],
       raw proposal boxes normalized [B, A, 4], objectness softmax [B, A, 2],
       sampled_classes int32 [B, P] (1-based class of each sampled proposal, 0 = background or padding;
       None unless sampling ran)).
    """
    encodings = tf.expand_dims(rpn_box_encodings_batch, axis=2)
    batch = shape_utils.combined_static_and_dynamic_shape(encodings)[0]
    tiled_anchor_boxes = tf.tile(tf.expand_dims(anchors, 0), [batch, 1, 1])
    proposal_boxes = self._batch_decode_boxes(encodings, tiled_anchor_boxes)
    raw_proposal_boxes = tf.squeeze(proposal_boxes, axis=2)
    rpn_objectness_softmax = tf.nn.softmax(rpn_objectness_predictions_with_background_batch)
    objectness = rpn_objectness_softmax[:, :, 1]
    clip_window = _compute_clip_window(true_image_shapes)
    (proposal_boxes, proposal_scores, _, _, nmsed_additional_fields,
     num_proposals) = self._first_stage_nms_fn(
         tf.expand_dims(raw_proposal_boxes, axis=2), tf.expand_dims(objectness, axis=2),
         additional_fields={'multiclass_scores': rpn_objectness_softmax}, clip_window=clip_window)
    sampled_classes = None
    if self._is_training:
      proposal_boxes = tf.stop_gradient(proposal_boxes)
      if not self._hard_example_miner:
        gt_boxlists, gt_classes_with_background, _, gt_weights = self._format_groundtruth_data(
            image_shapes, with_masks=False)
        proposal_boxes, proposal_scores, num_proposals, sampled_classes = (
            faster_rcnn_losses.sample_box_classifier_batch(
                proposal_boxes, proposal_scores, num_proposals, gt_boxlists,
                gt_classes_with_background, gt_weights, self._detector_target_assigner,
                self._second_stage_sampler, self._second_stage_batch_size, self.num_classes,
                self._use_static_shapes))

    def normalize_boxes(args):
      boxes, image_shape = args
      return box_list_ops.to_normalized_coordinates(
          box_list.BoxList(boxes), image_shape[0], image_shape[1], check_range=False).get()

    normalized_proposal_boxes = shape_utils.static_or_dynamic_map_fn(
        normalize_boxes, elems=[proposal_boxes, image_shapes], dtype=tf.float32)
    raw_normalized_proposal_boxes = shape_utils.static_or_dynamic_map_fn(
        normalize_boxes, elems=[raw_proposal_boxes, image_shapes], dtype=tf.float32)
    multiclass_scores = (nmsed_additional_fields or {}).get('multiclass_scores')
    return (normalized_proposal_boxes, proposal_scores, multiclass_scores, num_proposals,
            raw_normalized_proposal_boxes, rpn_objectness_softmax, sampled_classes)

  def _postprocess_box_classifier(self, refined_box_encodings, class_predictions_with_background,
                                  proposal_boxes, num_proposals, image_shapes, mask_predictions=None):
    """Per-class NMS of the refined boxes (TF OD API `_postprocess_box_classifier`)."""
    refined_box_encodings_batch = tf.reshape(
        refined_box_encodings,
        [-1, self.max_num_proposals, refined_box_encodings.shape[1], self._box_coder.code_size])
    class_predictions_batch_logits = tf.reshape(
        class_predictions_with_background, [-1, self.max_num_proposals, self.num_classes + 1])
    refined_decoded_boxes_batch = self._batch_decode_boxes(refined_box_encodings_batch, proposal_boxes)
    scores_with_background = self._second_stage_score_conversion_fn(class_predictions_batch_logits)
    class_scores = tf.reshape(scores_with_background[:, :, 1:],
                              [-1, self.max_num_proposals, self.num_classes])
    clip_window = _compute_clip_window(image_shapes)
    masks_batch = None
    if mask_predictions is not None:
      mask_height, mask_width = mask_predictions.shape.as_list()[2:4]
      masks_batch = tf.reshape(tf.sigmoid(mask_predictions),
                               [-1, self.max_num_proposals, self.num_classes, mask_height, mask_width])
    batch_size = shape_utils.combined_static_and_dynamic_shape(refined_box_encodings_batch)[0]
    anchor_indices = tf.tile(tf.expand_dims(tf.range(self.max_num_proposals), 0), [batch_size, 1])
    additional_fields = {'multiclass_scores': scores_with_background,
                         'anchor_indices': tf.cast(anchor_indices, tf.float32)}
    (nmsed_boxes, nmsed_scores, nmsed_classes, nmsed_masks, nmsed_additional_fields,
     num_detections) = self._second_stage_nms_fn(
         refined_decoded_boxes_batch, class_scores, clip_window=clip_window,
         change_coordinate_frame=True, num_valid_boxes=num_proposals,
         additional_fields=additional_fields, masks=masks_batch)
    if refined_decoded_boxes_batch.shape[2] > 1:
      class_ids = tf.expand_dims(tf.argmax(class_predictions_batch_logits[:, :, 1:], axis=2,
                                           output_type=tf.int32), axis=-1)
      raw_detection_boxes = tf.squeeze(
          tf.gather(refined_decoded_boxes_batch, class_ids, batch_dims=2), axis=2)
    else:
      raw_detection_boxes = tf.squeeze(refined_decoded_boxes_batch, axis=2)
    raw_normalized_detection_boxes = shape_utils.static_or_dynamic_map_fn(
        self._normalize_and_clip_boxes, elems=[raw_detection_boxes, image_shapes], dtype=tf.float32)
    detections = {
        fields.DetectionResultFields.detection_boxes: nmsed_boxes,
        fields.DetectionResultFields.detection_scores: nmsed_scores,
        fields.DetectionResultFields.detection_classes: nmsed_classes,
        fields.DetectionResultFields.detection_multiclass_scores:
            nmsed_additional_fields['multiclass_scores'],
        fields.DetectionResultFields.detection_anchor_indices:
            tf.cast(nmsed_additional_fields['anchor_indices'], tf.int32),
        fields.DetectionResultFields.num_detections: tf.cast(num_detections, tf.float32),
        fields.DetectionResultFields.raw_detection_boxes: raw_normalized_detection_boxes,
        fields.DetectionResultFields.raw_detection_scores: scores_with_background,
    }
    if nmsed_masks is not None:
      detections[fields.DetectionResultFields.detection_masks] = nmsed_masks
    return detections

  def _batch_decode_boxes(self, box_encodings, anchor_boxes):
    """[B, N, K, 4] encodings, [B, N, 4] absolute anchors -> [B, N, K, 4] absolute boxes."""
    shape = shape_utils.combined_static_and_dynamic_shape(box_encodings)
    num_classes = shape[2]
    tiled_anchor_boxes = tf.tile(tf.expand_dims(anchor_boxes, 2), [1, 1, num_classes, 1])
    tiled_anchors_boxlist = box_list.BoxList(tf.reshape(tiled_anchor_boxes, [-1, 4]))
    decoded = self._box_coder.decode(tf.reshape(box_encodings, [-1, self._box_coder.code_size]),
                                     tiled_anchors_boxlist)
    return tf.reshape(decoded.get(), tf.stack([shape[0], shape[1], num_classes, 4]))

  def _normalize_and_clip_boxes(self, boxes_and_image_shape):
    """(absolute boxes [N, 4] or [N, K, 4], image shape [3]) -> normalized, clipped to [0, 1]."""
    boxes, image_shape = boxes_and_image_shape
    has_classes = boxes.shape.ndims == 3
    if has_classes:
      boxes = shape_utils.flatten_first_n_dimensions(boxes, 2)
    normalized = box_list_ops.to_normalized_coordinates(
        box_list.BoxList(boxes), image_shape[0], image_shape[1], check_range=False).get()
    normalized = box_list_ops.clip_to_window(
        box_list.BoxList(normalized), tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32),
        filter_nonoverlapping=False).get()
    if has_classes:
      num_boxes, num_classes, _ = shape_utils.combined_static_and_dynamic_shape(
          boxes_and_image_shape[0])
      normalized = shape_utils.expand_first_dimension(normalized, [num_boxes, num_classes])
    return normalized

  # ----------------------------------------------------------------------------------------- loss
  def _format_groundtruth_data(self, image_shapes, with_masks=True):
    """Ground truth as the losses use it (TF OD API `_format_groundtruth_data`).

    Args:
      image_shapes: int32 [B, 3], the padded (preprocessed) image shape of each image.
      with_masks: also format (and resize, with `resize_masks`) the instance masks.

    Returns:
      (box lists in absolute coordinates of the padded image, classes with a background column
       float32 [N_i, K + 1], masks float32 [N_i, H, W] list or None, weights float32 [N_i] list).
    """
    boxlists = [box_list_ops.to_absolute_coordinates(box_list.BoxList(boxes), image_shapes[i, 0],
                                                     image_shapes[i, 1])
                for i, boxes in enumerate(self.groundtruth_lists(fields.BoxListFields.boxes))]
    classes_with_background = [
        tf.cast(tf.pad(one_hot, [[0, 0], [1, 0]], mode='CONSTANT'), tf.float32)
        for one_hot in self.groundtruth_lists(fields.BoxListFields.classes)]
    masks = None
    if with_masks:
      masks = self._groundtruth_lists.get(fields.BoxListFields.masks)
      if masks is not None and self._resize_masks:
        resized = []
        for mask in masks:
          image = tf.zeros(tf.stack([tf.shape(mask)[1], tf.shape(mask)[2], 1]))
          _, resized_mask, _ = self._image_resizer_fn(image=image, masks=mask)
          resized.append(resized_mask)
        masks = resized
      if masks:
        masks = [tf.cast(mask, tf.float32) for mask in masks]
    if self.groundtruth_has_field(fields.BoxListFields.weights):
      weights = self.groundtruth_lists(fields.BoxListFields.weights)
    else:
      weights = [tf.ones(tf.shape(c)[0]) for c in classes_with_background]
    return boxlists, classes_with_background, masks, weights

  def _losses_mask(self):
    if self.groundtruth_has_field(fields.InputDataFields.is_annotated):
      return tf.stack(self.groundtruth_lists(fields.InputDataFields.is_annotated))
    return None

  def loss(self, prediction_dict, true_image_shapes, scope=None):
    """Computes the losses (TF OD API `FasterRCNNMetaArch.loss`); call `provide_groundtruth` first.

    Args:
      prediction_dict: the output of `predict`.
      true_image_shapes: int32 [B, 3] (unused beyond the TF OD API's interface).
      scope: unused.

    Returns:
      dict of float32 scalars, already multiplied by their config weights:
      `Loss/RPNLoss/localization_loss`, `Loss/RPNLoss/objectness_loss`, and for stages >= 2
      `Loss/BoxClassifierLoss/localization_loss`, `Loss/BoxClassifierLoss/classification_loss`, plus
      `Loss/BoxClassifierLoss/mask_loss` when masks are predicted.

    Raises:
      RuntimeError: no ground truth provided. ValueError: masks predicted but no ground truth masks.
    """
    del true_image_shapes, scope
    image_shapes = self._image_batch_shape_2d(prediction_dict['image_shape'])
    gt_boxlists, gt_classes, gt_masks, gt_weights = self._format_groundtruth_data(image_shapes)
    losses_mask = self._losses_mask()
    loss_dict = faster_rcnn_losses.rpn_losses(
        prediction_dict['rpn_box_encodings'],
        prediction_dict['rpn_objectness_predictions_with_background'], prediction_dict['anchors'],
        gt_boxlists, gt_weights, self._proposal_target_assigner, self._first_stage_sampler,
        self._first_stage_minibatch_size, self._first_stage_localization_loss,
        self._first_stage_objectness_loss, self._first_stage_loc_loss_weight,
        self._first_stage_obj_loss_weight, losses_mask, self._parallel_iterations)
    if self._number_of_stages > 1:
      labeled_classes = None
      if self.groundtruth_has_field(fields.InputDataFields.groundtruth_labeled_classes):
        labeled_classes = self.groundtruth_lists(fields.InputDataFields.groundtruth_labeled_classes)
      loss_dict.update(faster_rcnn_losses.box_classifier_losses(
          prediction_dict, gt_boxlists, gt_classes, gt_masks, gt_weights, labeled_classes,
          losses_mask, config=self._box_classifier_loss_config()))
    return loss_dict

  def _box_classifier_loss_config(self):
    return faster_rcnn_losses.BoxClassifierLossConfig(
        is_training=self._is_training,
        num_classes=self.num_classes,
        max_num_proposals=self.max_num_proposals,
        box_coder=self._box_coder,
        target_assigner=self._detector_target_assigner,
        localization_loss=self._second_stage_localization_loss,
        classification_loss=self._second_stage_classification_loss,
        mask_loss=self._second_stage_mask_loss,
        localization_loss_weight=self._second_stage_loc_loss_weight,
        classification_loss_weight=self._second_stage_cls_loss_weight,
        mask_loss_weight=self._second_stage_mask_loss_weight,
        hard_example_miner=self._hard_example_miner,
        crop_and_resize_fn=self._crop_and_resize_fn,
        use_static_shapes=self._use_static_shapes)

  # ---------------------------------------------------------------------------- checkpoints, etc.
  def regularization_losses(self):
    """The Keras regularization losses of every sub-model (list of float32 scalars)."""
    all_losses = []
    for layer in (self._feature_extractor_for_proposal_features,
                  self._first_stage_box_predictor_first_conv, self._first_stage_box_predictor,
                  self._feature_extractor_for_box_classifier_features, self._mask_rcnn_box_predictor):
      if layer is not None:
        all_losses.extend(layer.losses)
    return all_losses

  def restore_map(self, fine_tune_checkpoint_type='detection',
                  load_all_detection_checkpoint_vars=False):
    raise NotImplementedError('restore_map is the TF1 (name-based) restore path; TF2 checkpoints are '
                              'restored with restore_from_objects.')

  def restore_from_objects(self, fine_tune_checkpoint_type='detection'):
    """Objects to restore for `fine_tune_checkpoint_type` (TF OD API semantics).

    'classification': {'feature_extractor': classification backbone};
    'detection': {'model': <the two feature extractor models>} (the RPN and the heads start fresh);
    'full': {'model': this model}. Build the variables first (e.g. one `predict` call).

    Raises:
      ValueError: another type (the message names `fine_tune_checkpoint_type`).
    """
    if fine_tune_checkpoint_type == 'classification':
      return {'feature_extractor': self._feature_extractor.classification_backbone}
    if fine_tune_checkpoint_type == 'detection':
      fake_model = tf.train.Checkpoint(
          _feature_extractor_for_box_classifier_features=(
              self._feature_extractor_for_box_classifier_features),
          _feature_extractor_for_proposal_features=self._feature_extractor_for_proposal_features)
      return {'model': fake_model}
    if fine_tune_checkpoint_type == 'full':
      return {'model': self}
    raise ValueError('train_config.fine_tune_checkpoint_type must be "classification", "detection" or '
                     '"full"; got %r.' % (fine_tune_checkpoint_type,))

  def updates(self):
    # TF2 Keras layers update their batch norm statistics inside the call.
    return []


def _compute_clip_window(image_shapes):
  """int32 [B, 3] shapes -> float32 [B, 4] windows [0, 0, height, width]."""
  heights = image_shapes[:, 0]
  widths = image_shapes[:, 1]
  zeros = tf.zeros_like(heights)
  return tf.cast(tf.stack([zeros, zeros, heights, widths], axis=1), tf.float32)


def _true_to_padded_frame(boxes, true_image_shapes, image_shape):
  """Boxes normalized to each true image [B, D, 4] -> normalized to the padded batch image."""
  true_hw = tf.cast(true_image_shapes[:, :2], tf.float32)
  padded_hw = tf.cast(image_shape[1:3], tf.float32)
  scale = true_hw / padded_hw[tf.newaxis]
  return boxes * tf.concat([scale, scale], axis=1)[:, tf.newaxis, :]


def _unflatten(features, batch_size, num):
  shape = tf.shape(features)
  return tf.reshape(features, tf.concat([[batch_size, num], shape[1:]], axis=0))

