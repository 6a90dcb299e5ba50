"""A tiny `core.model.DetectionModel` and a synthetic dataset in the `inputs.py` format for
training-loop tests.

The real Mask R-CNN is exercised by the sample-run tests; this stand-in keeps the loop mechanics
tests (resume, NaN, strategy, EMA, freeze, fine-tune) within a few seconds each.
"""
import tensorflow as tf
import tf_keras

from object_detection.core import standard_fields as fields

_IF = fields.InputDataFields
IMAGE_SIZE = 16
MAX_BOXES = 3


class FakeDetectionModel(tf_keras.Model):
  """conv backbone -> pooled features -> box / class heads, conv mask head. Five TF OD API losses."""

  def __init__(self, num_classes=2, is_training=True):
    super().__init__(name='fake_detection_model')
    self.num_classes = num_classes
    self._is_training = is_training
    self.backbone = tf_keras.Sequential(
        [tf_keras.layers.Conv2D(4, 3, padding='same', name='conv1')], name='backbone')
    self.box_head = tf_keras.layers.Dense(4, name='box_head')
    self.class_head = tf_keras.layers.Dense(num_classes + 1, name='class_head')
    self.mask_head = tf_keras.layers.Conv2D(1, 1, name='mask_head')
    self._groundtruth = None

  def preprocess(self, inputs):
    batch = tf.shape(inputs)[0]
    shape = tf.stack([tf.shape(inputs)[1], tf.shape(inputs)[2], 3])
    return inputs / 127.5 - 1.0, tf.tile(shape[None], [batch, 1])

  def provide_groundtruth(self, groundtruth_boxes_list, groundtruth_classes_list,
                          groundtruth_masks_list=None, groundtruth_weights_list=None,
                          groundtruth_is_crowd_list=None, **unused):
    self._groundtruth = {'boxes': groundtruth_boxes_list, 'classes': groundtruth_classes_list,
                         'masks': groundtruth_masks_list}

  def predict(self, preprocessed_inputs, true_image_shapes, **side_inputs):
    features = self.backbone(preprocessed_inputs)
    pooled = tf.reduce_mean(features, axis=[1, 2])
    return {'box': self.box_head(pooled), 'class': self.class_head(pooled),
            'mask': self.mask_head(features)}

  def loss(self, prediction_dict, true_image_shapes):
    gt = self._groundtruth
    box_t = tf.stack([tf.reduce_mean(b, axis=0) for b in gt['boxes']])
    cls_t = tf.stack([tf.reduce_mean(c, axis=0) for c in gt['classes']])
    loc = tf.reduce_mean(tf.square(prediction_dict['box'] - box_t))
    logits = prediction_dict['class']
    cls = tf.reduce_mean(tf.square(tf.nn.softmax(logits)[:, 1:] - cls_t))
    mask_t = tf.stack([tf.reduce_max(m, axis=0) for m in gt['masks']])[..., None]
    mask = tf.reduce_mean(tf.square(tf.sigmoid(prediction_dict['mask']) - mask_t))
    return {'Loss/RPNLoss/localization_loss': loc,
            'Loss/RPNLoss/objectness_loss': 0.5 * cls,
            'Loss/BoxClassifierLoss/localization_loss': 0.5 * loc,
            'Loss/BoxClassifierLoss/classification_loss': cls,
            'Loss/BoxClassifierLoss/mask_loss': mask}

  def postprocess(self, prediction_dict, true_image_shapes):
    batch = tf.shape(prediction_dict['box'])[0]
    boxes = tf.sigmoid(prediction_dict['box'])
    boxes = tf.concat([tf.minimum(boxes[:, :2], boxes[:, 2:]),
                       tf.maximum(boxes[:, :2], boxes[:, 2:])], axis=1)[:, None]
    probs = tf.nn.softmax(prediction_dict['class'])
    return {'detection_boxes': boxes,
            'detection_scores': tf.reduce_max(probs[:, 1:], axis=1)[:, None],
            'detection_classes': tf.cast(tf.argmax(probs[:, 1:], axis=1), tf.float32)[:, None],
            'num_detections': tf.ones([batch], tf.float32),
            'detection_masks': tf.ones([batch, 1, 4, 4], tf.float32) * 0.9}

  def regularization_losses(self):
    return [1e-4 * tf.reduce_sum(tf.square(self.box_head.kernel))] if self.box_head.built else []

  def updates(self):
    return []

  def restore_from_objects(self, fine_tune_checkpoint_type='detection'):
    if fine_tune_checkpoint_type == 'classification':
      return {'feature_extractor': self.backbone}
    if fine_tune_checkpoint_type == 'detection':
      return {'model': tf.train.Checkpoint(backbone=self.backbone, box_head=self.box_head)}
    return {'model': self}


def fake_model_fn(model_config, is_training=True):
  return FakeDetectionModel(num_classes=2, is_training=is_training)


def _example(seed):
  # Already "preprocessed" (as inputs.train_input does with a model): values in [-1, 1].
  image = tf.random.stateless_uniform([IMAGE_SIZE, IMAGE_SIZE, 3], [seed, 0], -1, 1)
  boxes = tf.constant([[0.1, 0.1, 0.6, 0.5], [0.3, 0.2, 0.9, 0.9], [0, 0, 0, 0]], tf.float32)
  masks = tf.zeros([MAX_BOXES, IMAGE_SIZE, IMAGE_SIZE], tf.uint8)
  masks = tf.tensor_scatter_nd_update(
      masks, [[0]], tf.pad(tf.ones([1, 8, 6], tf.uint8), [[0, 0], [2, 6], [2, 8]]))
  features = {_IF.image: image,
              _IF.true_image_shape: tf.constant([IMAGE_SIZE, IMAGE_SIZE, 3], tf.int32),
              _IF.original_image_spatial_shape: tf.constant([IMAGE_SIZE, IMAGE_SIZE], tf.int32),
              _IF.source_id: tf.strings.as_string(seed), _IF.key: tf.strings.as_string(seed)}
  labels = {_IF.num_groundtruth_boxes: tf.constant(2, tf.int32),
            _IF.groundtruth_boxes: boxes,
            _IF.groundtruth_classes: tf.constant([[1, 0], [0, 1], [0, 0]], tf.float32),
            _IF.groundtruth_weights: tf.constant([1, 1, 0], tf.float32),
            _IF.groundtruth_is_crowd: tf.constant([False, False, False]),
            _IF.groundtruth_area: tf.constant([30, 40, 0], tf.float32),
            _IF.groundtruth_instance_masks: masks}
  return features, labels


def fake_train_input(train_config, train_input_config, model_config, model=None, params=None,
                     input_context=None):
  """Repeated synthetic batches; per-replica batch = train_config.batch_size / num_replicas."""
  batch = int(train_config.batch_size)
  if input_context is not None:
    batch = input_context.get_per_replica_batch_size(batch)
  ds = tf.data.Dataset.range(8).map(lambda i: _example(0)).repeat()
  return ds.batch(batch, drop_remainder=True)


def fake_eval_input(eval_config, eval_input_config, model_config, model=None, params=None,
                    input_context=None):
  return tf.data.Dataset.range(2).map(lambda i: _example(1)).batch(1, drop_remainder=True)
