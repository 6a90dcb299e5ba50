"""Golden fixtures of the TF OD API's single-level Faster R-CNN ResNet-v1 feature extractors.

Reference side of `tests/test_tfod_resnet.py`. For `FasterRCNNResnet{50,101,152}KerasFeatureExtractor`
(`faster_rcnn_resnet{50,101,152}_keras`, TF2 path) it builds the proposal model
(`get_proposal_feature_extractor_model('FirstStageFeatureExtractor')`) and the box classifier model
(`get_box_classifier_feature_extractor_model('SecondStageFeatureExtractor')`), calls each once, and writes
to `tests/testdata/tfod_golden/resnet/`:

  - `keys_resnet{D}.txt`: `tf.train.list_variables` (key <TAB> comma-separated shape) of
    `tf.train.Checkpoint(_feature_extractor_for_proposal_features=...,
    _feature_extractor_for_box_classifier_features=...)`, the meta-architecture's attribute names.
  - `classification_keys_resnet{D}.txt`: the same for
    `tf.train.Checkpoint(feature_extractor=classification_backbone)` (fine_tune_checkpoint_type
    "classification").
  - `inputs.npz`: `images` uint8 [2, 64, 96, 3] (two coco128 photos resized bilinearly and rounded) and
    `crops` float16 [2, 7, 7, 1024] (normal(0, 1), seed 0), both used as float32.
  - `outputs_resnet50_inference.npz` (is_training=False: frozen batch norm) and
    `outputs_resnet50_training.npz` (is_training=True, batch_norm_trainable=True, models called with
    training=True: batch statistics): `proposal` float32 [2, 4, 6, 1024] = proposal model(preprocess(images)),
    `box` float32 [2, 4, 4, 2048] = box classifier model(crops).
  - `outputs_resnet{101,152}_inference.npz`: channels [:128] of the same two outputs (inference mode).
  - `resnet_v1` backbone variants (`models/keras_models/resnet_v1.resnet_v1_50` called directly, see
    `VARIANTS`): `keys_variant_{name}.txt` (`tf.train.Checkpoint(backbone=model)`) and
    `variant_{name}.npz`: `output` float32 [2, 2, 3, 512] = model(images - channel means, training=...),
    `losses` float64 [number of losses, their sum], `conv1_bn_moving_mean` after that call (moves only
    in variant b: batch norm in training mode with momentum 0.9).

Every variable is set with `deterministic_weights.value_for(key, shape)`, key = its checkpoint key in the
two-model checkpoint above (keys from `checkpoint_utils.variable_keys`, checked here against
`tf.train.list_variables`). Both helper files are loaded by path: this process must not import this
project's `object_detection` package.

Rerun (outside /work/main, in the reference environment; about a minute):

  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/resnet.py
"""

import importlib.util
import os
import tempfile

import numpy as np
import tensorflow as tf

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_OUT_DIR = os.path.join(_ROOT, 'tests', 'testdata', 'tfod_golden', 'resnet')
_IMAGES = [os.path.join(_ROOT, 'samples', 'data', 'coco128_seg', 'images', name)
           for name in ('000000000009.jpg', '000000000025.jpg')]
IMAGE_SIZE = (64, 96)
CROP_SHAPE = (2, 7, 7, 1024)
SLICE_CHANNELS = 128
PROPOSAL_ROOT = '_feature_extractor_for_proposal_features'
CHANNEL_MEANS = (123.68, 116.779, 103.939)
# a: conv_hyperparams (as the FPN extractors with override_base_feature_extractor_hyperparams) with
#    min_depth raising depth_multiplier's 16-filter convs to 32; frozen batch norm.
# b: default layers with non-default batch norm / weight decay arguments; batch norm in training mode.
VARIANTS = {
    'a': dict(
        hyperparams="""
          regularizer { l2_regularizer { weight: 0.0004 } }
          initializer { truncated_normal_initializer { stddev: 0.03 } }
          activation: RELU_6
          batch_norm { decay: 0.9 scale: true center: true epsilon: 0.001 }
        """,
        kwargs=dict(batchnorm_training=False, depth_multiplier=0.25, min_depth=32),
        training=False),
    'b': dict(
        hyperparams=None,
        kwargs=dict(batchnorm_training=True, batchnorm_scale=False, default_batchnorm_momentum=0.9,
                    default_batchnorm_epsilon=1e-3, weight_decay=5e-4, depth_multiplier=0.25),
        training=True),
}
BOX_ROOT = '_feature_extractor_for_box_classifier_features'


def _load_by_path(name, path):
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _inputs():
  images = []
  for path in _IMAGES:
    image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
    image = tf.image.resize(tf.cast(image, tf.float32), IMAGE_SIZE, method='bilinear')
    images.append(np.clip(np.round(image.numpy()), 0, 255).astype(np.uint8))
  crops = np.random.default_rng(0).normal(0.0, 1.0, CROP_SHAPE).astype(np.float16)
  return np.stack(images), crops


def _listing(root_objects, directory):
  prefix = tf.train.Checkpoint(**root_objects).save(os.path.join(directory, 'ckpt'))
  return [(key, tuple(shape)) for key, shape in tf.train.list_variables(prefix)]


def _write_listing(path, listing):
  with open(path, 'w') as f:
    for key, shape in listing:
      f.write('%s\t%s\n' % (key, ','.join(str(d) for d in shape)))


def _build(extractor_class, is_training, batch_norm_trainable):
  extractor = extractor_class(is_training=is_training, first_stage_features_stride=16,
                              batch_norm_trainable=batch_norm_trainable, weight_decay=0.0)
  proposal = extractor.get_proposal_feature_extractor_model('FirstStageFeatureExtractor')
  box = extractor.get_box_classifier_feature_extractor_model('SecondStageFeatureExtractor')
  return extractor, proposal, box


def _assign(proposal, box, helpers, listing):
  roots = {BOX_ROOT: box, PROPOSAL_ROOT: proposal}  # tf.train.Checkpoint orders its children by name
  keys = helpers['ckpt'].variable_keys(roots)
  listed = {k for k, _ in listing if k.endswith('/.ATTRIBUTES/VARIABLE_VALUE') and
            not k.startswith('save_counter')}
  ours = {k + '.ATTRIBUTES/VARIABLE_VALUE' for k in keys}
  assert ours == listed, 'variable_keys disagrees with tf.train.list_variables: %s' % sorted(
      ours ^ listed)[:5]
  helpers['weights'].assign_all(roots, helpers['ckpt'].variable_keys)


def _run(extractor, proposal, box, images, crops, training):
  features = proposal(extractor.preprocess(tf.constant(images, tf.float32)), training=training)
  box_features = box(tf.constant(crops, tf.float32), training=training)
  return features.numpy(), box_features.numpy()


def _variants(helpers, images):
  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format
  from object_detection.builders import hyperparams_builder
  from object_detection.models.keras_models import resnet_v1
  from object_detection.protos import hyperparams_pb2
  for name, variant in VARIANTS.items():
    kwargs = dict(variant['kwargs'])
    if variant['hyperparams']:
      config = text_format.Parse(variant['hyperparams'], hyperparams_pb2.Hyperparams())
      kwargs['conv_hyperparams'] = hyperparams_builder.KerasLayerHyperparams(config)
    model = resnet_v1.resnet_v1_50(weights=None, include_top=False, classes=None, **kwargs)
    with tempfile.TemporaryDirectory() as directory:
      listing = _listing({'backbone': model}, os.path.join(directory, 'c'))
    _write_listing(os.path.join(_OUT_DIR, 'keys_variant_%s.txt' % name), listing)
    helpers['weights'].assign_all({'backbone': model}, helpers['ckpt'].variable_keys)
    output = model(tf.constant(images - np.array(CHANNEL_MEANS, np.float32)),
                   training=variant['training'])
    losses = [float(loss.numpy()) for loss in model.losses]
    np.savez(os.path.join(_OUT_DIR, 'variant_%s.npz' % name), output=output.numpy(),
             losses=np.array([len(losses), np.sum(losses)], np.float64),
             conv1_bn_moving_mean=model.get_layer('conv1_bn').moving_mean.numpy())
    print('variant %s: %d keys, output %s, %d losses' % (name, len(listing), output.shape, len(losses)))


def main():
  # pylint: disable=g-import-not-at-top
  from object_detection.models import faster_rcnn_resnet_keras_feature_extractor as fe
  helpers = {
      'weights': _load_by_path('deterministic_weights',
                               os.path.join(_ROOT, 'tools', 'tfod_golden', 'deterministic_weights.py')),
      'ckpt': _load_by_path('checkpoint_utils_by_path',
                            os.path.join(_ROOT, 'object_detection', 'utils', 'checkpoint_utils.py')),
  }
  os.makedirs(_OUT_DIR, exist_ok=True)
  images, crops = _inputs()
  np.savez(os.path.join(_OUT_DIR, 'inputs.npz'), images=images, crops=crops)
  images = images.astype(np.float32)
  crops = crops.astype(np.float32)
  classes = {50: fe.FasterRCNNResnet50KerasFeatureExtractor,
             101: fe.FasterRCNNResnet101KerasFeatureExtractor,
             152: fe.FasterRCNNResnet152KerasFeatureExtractor}
  for depth, extractor_class in classes.items():
    extractor, proposal, box = _build(extractor_class, is_training=False, batch_norm_trainable=False)
    proposal(tf.zeros([1, 64, 64, 3]))
    box(tf.zeros([1, 7, 7, 1024]))
    with tempfile.TemporaryDirectory() as directory:
      listing = _listing({PROPOSAL_ROOT: proposal, BOX_ROOT: box}, os.path.join(directory, 'a'))
      classification = _listing({'feature_extractor': extractor.classification_backbone},
                                os.path.join(directory, 'b'))
    _write_listing(os.path.join(_OUT_DIR, 'keys_resnet%d.txt' % depth), listing)
    _write_listing(os.path.join(_OUT_DIR, 'classification_keys_resnet%d.txt' % depth), classification)
    _assign(proposal, box, helpers, listing)
    features, box_features = _run(extractor, proposal, box, images, crops, training=False)
    if depth == 50:
      np.savez(os.path.join(_OUT_DIR, 'outputs_resnet50_inference.npz'), proposal=features,
               box=box_features)
      extractor, proposal, box = _build(extractor_class, is_training=True, batch_norm_trainable=True)
      _assign(proposal, box, helpers, listing)
      features, box_features = _run(extractor, proposal, box, images, crops, training=True)
      np.savez(os.path.join(_OUT_DIR, 'outputs_resnet50_training.npz'), proposal=features,
               box=box_features)
    else:
      np.savez(os.path.join(_OUT_DIR, 'outputs_resnet%d_inference.npz' % depth),
               proposal=features[..., :SLICE_CHANNELS], box=box_features[..., :SLICE_CHANNELS])
    print('resnet%d: %d keys, %d classification keys, proposal %s, box %s' % (
        depth, len(listing), len(classification), features.shape, box_features.shape))
  _variants(helpers, images)


if __name__ == '__main__':
  main()
