"""Reference side of tools/tfod_parity.py: runs the TF OD API's own model on prepared inputs.

Runs in a separate process with the TF OD API importable (see tools/tfod_parity.py and docs/parity.md for
the environment: TF_USE_LEGACY_KERAS=1, PYTHONPATH=<research>:<research>/slim, compiled protos, four
small source patches). It imports the TF OD API, TensorFlow and numpy only: never this project's package,
which has the same name (`object_detection`).

  python tools/tfod_parity_reference.py --pipeline_config_path=P --inputs=inputs.npz --output_dir=D

Writes to D:
  ckpt-1.*         tf.train.Checkpoint(model=<inference model>) holding the weights both sides use
  reference.npz    every compared tensor (see tools/tfod_parity.py `COMPARED`), keys prefixed
                   `infer/` (inference model), `train/` (training model: predictions and losses) and
                   `input/` (preprocessed images, true shapes, resized masks)
  keys.txt         the checkpoint's keys and shapes (one `key<TAB>shape` per line)

Weights: every model variable is set with tools/tfod_golden/deterministic_weights.py `value_for(key, shape)`
(loaded by path) rather than the builder's random initializers: the RPN head's default stddev 0.01 gives
objectness scores so close together that float reordering would shuffle the NMS, which says nothing about
the network. `--keep_initial_weights` keeps the builder's initial values instead.
"""

import argparse
import importlib.util
import os

import numpy as np
import tensorflow as tf
from google.protobuf import text_format

from object_detection.builders import model_builder
from object_detection.core import standard_fields as fields
from object_detection.protos import pipeline_pb2

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_by_path(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


_weights = _load_by_path('deterministic_weights',
                         os.path.join(_HERE, 'tfod_golden', 'deterministic_weights.py'))
_ckpt = _load_by_path('checkpoint_keys', os.path.join(_HERE, '..', 'object_detection', 'utils',
                                                      'checkpoint_utils.py'))


def _images(inputs):
  return [inputs['image_%d' % i] for i in range(int(inputs['num_images']))]


def prepare(model, inputs):
  """Preprocesses each image as the TF OD API input pipeline does; returns batched model inputs.

  Returns:
    (preprocessed float32 [B, H, W, 3], true_image_shapes int32 [B, 3], groundtruth dict of lists:
     boxes normalized to the padded image, one-hot classes, masks resized to the padded image)
  """
  preprocessed, shapes, boxes, classes, masks = [], [], [], [], []
  num_classes = model.num_classes
  for i, image in enumerate(_images(inputs)):
    image = tf.constant(image, tf.float32)
    pre, true_shape = model.preprocess(image[tf.newaxis])
    preprocessed.append(pre[0])
    shapes.append(true_shape[0])
    padded = tf.cast(tf.shape(pre)[1:3], tf.float32)
    true_hw = tf.cast(true_shape[0, :2], tf.float32)
    scale = true_hw / padded
    boxes.append(tf.constant(inputs['boxes_%d' % i], tf.float32) *
                 tf.concat([scale, scale], axis=0)[tf.newaxis])
    classes.append(tf.one_hot(tf.constant(inputs['classes_%d' % i], tf.int32) - 1, num_classes))
    _, resized_masks, _ = model._image_resizer_fn(image, tf.constant(inputs['masks_%d' % i], tf.uint8))  # pylint: disable=protected-access
    masks.append(tf.cast(resized_masks, tf.float32))
  groundtruth = {'groundtruth_boxes_list': boxes, 'groundtruth_classes_list': classes,
                 'groundtruth_masks_list': masks}
  return tf.stack(preprocessed), tf.stack(shapes), groundtruth


def _collect(prefix, tensors, out):
  for key, value in tensors.items():
    if isinstance(value, (list, tuple)):
      for i, v in enumerate(value):
        if isinstance(v, tf.Tensor):
          out['%s%s/%d' % (prefix, key, i)] = v.numpy()
    elif isinstance(value, tf.Tensor):
      out[prefix + key] = value.numpy()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--pipeline_config_path', required=True)
  parser.add_argument('--inputs', required=True)
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--keep_initial_weights', action='store_true')
  parser.add_argument('--skip_training', action='store_true')
  args = parser.parse_args()
  config = pipeline_pb2.TrainEvalPipelineConfig()
  with open(args.pipeline_config_path) as f:
    text_format.Merge(f.read(), config)
  inputs = dict(np.load(args.inputs))
  out = {}

  model = model_builder.build(config.model, is_training=False)
  preprocessed, true_shapes, groundtruth = prepare(model, inputs)
  prediction_dict = model.predict(preprocessed, true_shapes)
  if not args.keep_initial_weights:
    _weights.assign_all({'model': model}, _ckpt.variable_keys)
    prediction_dict = model.predict(preprocessed, true_shapes)
  detections = model.postprocess(prediction_dict, true_shapes)
  out['input/preprocessed'] = preprocessed.numpy()
  out['input/true_image_shapes'] = true_shapes.numpy()
  for i, mask in enumerate(groundtruth['groundtruth_masks_list']):
    out['input/masks/%d' % i] = mask.numpy()
  for i, boxes in enumerate(groundtruth['groundtruth_boxes_list']):
    out['input/boxes/%d' % i] = boxes.numpy()
  _collect('infer/', prediction_dict, out)
  _collect('infer/', detections, out)
  checkpoint = tf.train.Checkpoint(model=model)
  path = checkpoint.write(os.path.join(args.output_dir, 'ckpt-1'))
  with open(os.path.join(args.output_dir, 'keys.txt'), 'w') as f:
    for key, shape in tf.train.list_variables(path):
      f.write('%s\t%s\n' % (key, list(shape)))

  if not args.skip_training:
    train_model = model_builder.build(config.model, is_training=True)
    train_model._is_training = False  # pylint: disable=protected-access
    train_model.predict(preprocessed, true_shapes)  # creates the variables, as _ensure_model_is_built
    train_model._is_training = True  # pylint: disable=protected-access
    tf.train.Checkpoint(model=train_model).read(path).assert_existing_objects_matched()
    tf.keras.backend.set_learning_phase(True)
    train_model.provide_groundtruth(**groundtruth)
    train_predictions = train_model.predict(preprocessed, true_shapes)
    losses = train_model.loss(train_predictions, true_shapes)
    _collect('train/', train_predictions, out)
    _collect('train/', losses, out)
  np.savez_compressed(os.path.join(args.output_dir, 'reference.npz'), **out)
  print('reference: wrote %d tensors and %s' % (len(out), path))


if __name__ == '__main__':
  main()
