"""Golden fixtures of the TF OD API's ResNet-v1 FPN Faster R-CNN feature extractors.

Reference side of `tests/test_tfod_resnet_fpn.py`. Builds `FasterRCNNResnet{50,101,152}FpnKerasFeatureExtractor`
(`faster_rcnn_resnet{50,101,152}_fpn_keras`, TF2 path): the proposal model
(`get_proposal_feature_extractor_model('FirstStageFeatureExtractor')`: the `_ResnetFPN` layer, ResNet +
`KerasFpnTopDownFeatureMaps` + coarse levels) and the box classifier model
(`get_box_classifier_feature_extractor_model('SecondStageFeatureExtractor')`), calls each once, and writes
to `tests/testdata/tfod_golden/resnet_fpn/`:

  - `keys_<variant>.txt`: `tf.train.list_variables` (key <TAB> comma-separated shape) of
    `tf.train.Checkpoint(_feature_extractor_for_proposal_features=...,
    _feature_extractor_for_box_classifier_features=...)` (the meta-architecture's attribute names), for
    the variants in `VARIANTS` (`a` and `b` on ResNet-50; `a_resnet101`, `a_resnet152`: variant a's
    settings on the deeper ResNets).
  - `classification_keys_a.txt`: the same for `tf.train.Checkpoint(feature_extractor=classification_backbone)`
    (fine_tune_checkpoint_type "classification") of variant a.
  - `inputs.npz`: `images` uint8 [2, 128, 128, 3] (two coco128 photos resized bilinearly and rounded;
    variant b uses images[:, :120, :100], which the extractor pads to 128 x 128), `crops` float16
    [4, 7, 7, 256] (normal(0, 1), seed 0); both used as float32.
  - `outputs_<variant>_<mode>.npz` for a_inference, a_training, b_inference: `level_<l>` = channels
    [:SLICE_CHANNELS] of proposal model(preprocess(images)) at FPN level l, float32
    [2, 128 / 2**l, 128 / 2**l, SLICE_CHANNELS]; `box` float32 [4, 1, 1, 1024] = box model(crops);
    `losses` float32 [n]: the proposal model's regularization losses, sorted. Modes: inference =
    is_training False, models called with training=False; training = is_training True,
    batch_norm_trainable True, training=True (batch statistics).
  - `fpn_options_keys.txt` and `fpn_options.npz`: a bare `KerasFpnTopDownFeatureMaps` (3 levels, depth 16,
    zoo hyperparams, is_training False) with use_depthwise, use_explicit_padding, use_bounded_activations
    and use_native_resize_op all True (options the Faster R-CNN FPN does not set), on inputs
    `feature_<i>` float32 [2, h_i, w_i, c_i] with sizes 9x11, 5x6, 3x3 (not exact halves: the explicit
    padding path crops each upsampled map) and channels 8, 16, 32 (normal(0, 1), seed 1); outputs
    `output_<i>` float32 [2, h_i, w_i, 16], finest first; keys of `tf.train.Checkpoint(generator=...)`.
  - `frozen_check.npz`: `max_abs_diff` = max |a_frozen - a_inference| over every output, where a_frozen
    is variant a with is_training True, batch_norm_trainable False, called with training=True (every
    batch norm frozen): the reference's own proof that frozen training equals inference (0.0).

Variants (FPN levels, depth, conv_hyperparams, override_base_feature_extractor_hyperparams):
  a: 2..6, 256, the TF2 zoo faster_rcnn_resnet50_v1_fpn config's block (RELU_6, l2 0.0004, truncated
     normal 0.03, batch norm scale / decay 0.997 / epsilon 0.001), override true.
  b: 3..7, 128, RELU, l2 0.0001, variance scaling, no batch norm (identity layers instead), override false.

Every variable is set with `deterministic_weights.value_for(key, shape)`, key = its checkpoint key in the
two-model checkpoint above (keys from `checkpoint_utils.variable_keys`, checked here against
`tf.train.list_variables`). Both helper files are loaded by path: this process must not import this
project's `object_detection` package.

Rerun (outside /work/main, in the reference environment; a few minutes):

  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/resnet_fpn.py
"""

import importlib.util
import os
import tempfile

import numpy as np
import tensorflow as tf

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_OUT_DIR = os.path.join(_ROOT, 'tests', 'testdata', 'tfod_golden', 'resnet_fpn')
_IMAGES = [os.path.join(_ROOT, 'samples', 'data', 'coco128_seg', 'images', name)
           for name in ('000000000009.jpg', '000000000025.jpg')]
IMAGE_SIZE = (128, 128)
VARIANT_B_SIZE = (120, 100)
CROP_SHAPE = (4, 7, 7, 256)
SLICE_CHANNELS = 32
PROPOSAL_ROOT = '_feature_extractor_for_proposal_features'
BOX_ROOT = '_feature_extractor_for_box_classifier_features'

ZOO_HYPERPARAMS = """
activation: RELU_6
regularizer { l2_regularizer { weight: 0.0004 } }
initializer { truncated_normal_initializer { stddev: 0.03 mean: 0.0 } }
batch_norm { scale: true decay: 0.997 epsilon: 0.001 }
"""
NO_BATCH_NORM_HYPERPARAMS = """
activation: RELU
regularizer { l2_regularizer { weight: 0.0001 } }
initializer { variance_scaling_initializer { factor: 1.0 mode: FAN_AVG uniform: true } }
"""
# name -> (depth, hyperparams text, extractor kwargs, image size).
VARIANTS = {
    'a': (50, ZOO_HYPERPARAMS, dict(fpn_min_level=2, fpn_max_level=6, additional_layer_depth=256,
                                    override_base_feature_extractor_hyperparams=True), IMAGE_SIZE),
    'b': (50, NO_BATCH_NORM_HYPERPARAMS, dict(fpn_min_level=3, fpn_max_level=7, additional_layer_depth=128,
                                              override_base_feature_extractor_hyperparams=False),
          VARIANT_B_SIZE),
    'a_resnet101': (101, ZOO_HYPERPARAMS, dict(fpn_min_level=2, fpn_max_level=6, additional_layer_depth=256,
                                               override_base_feature_extractor_hyperparams=True), None),
    'a_resnet152': (152, ZOO_HYPERPARAMS, dict(fpn_min_level=2, fpn_max_level=6, additional_layer_depth=256,
                                               override_base_feature_extractor_hyperparams=True), None),
}


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


def _hyperparams(text):
  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format
  from object_detection.builders import hyperparams_builder
  from object_detection.protos import hyperparams_pb2
  return hyperparams_builder.KerasLayerHyperparams(text_format.Parse(text, hyperparams_pb2.Hyperparams()))


def _build(variant, is_training, batch_norm_trainable):
  from object_detection.models import faster_rcnn_resnet_v1_fpn_keras_feature_extractor as fe  # pylint: disable=g-import-not-at-top
  classes = {50: fe.FasterRCNNResnet50FpnKerasFeatureExtractor,
             101: fe.FasterRCNNResnet101FpnKerasFeatureExtractor,
             152: fe.FasterRCNNResnet152FpnKerasFeatureExtractor}
  depth, hyperparams_text, kwargs, _ = VARIANTS[variant]
  extractor = classes[depth](is_training, 16, batch_norm_trainable,
                             conv_hyperparams=_hyperparams(hyperparams_text), **kwargs)
  proposal = extractor.get_proposal_feature_extractor_model('FirstStageFeatureExtractor')
  box = extractor.get_box_classifier_feature_extractor_model('SecondStageFeatureExtractor')
  proposal(tf.zeros([1, 64, 64, 3]))
  box(tf.zeros([1, 7, 7, 256]))
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


def _run(variant, extractor, proposal, box, images, crops, training):
  size = VARIANTS[variant][3]
  images = images[:, :size[0], :size[1], :]
  features = proposal(extractor.preprocess(tf.constant(images, tf.float32)), training=training)
  min_level = VARIANTS[variant][2]['fpn_min_level']
  out = {'level_%d' % (min_level + i): f.numpy()[..., :SLICE_CHANNELS] for i, f in enumerate(features)}
  out['box'] = box(tf.constant(crops, tf.float32), training=training).numpy()
  out['losses'] = np.sort(np.array([float(loss) for loss in proposal.losses], np.float32))
  return out


FPN_OPTION_SHAPES = ((2, 9, 11, 8), (2, 5, 6, 16), (2, 3, 3, 32))
FPN_OPTION_DEPTH = 16


def _fpn_options(helpers):
  """Writes fpn_options_keys.txt and fpn_options.npz (see the module docstring)."""
  from object_detection.models import feature_map_generators  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  features = [rng.normal(0.0, 1.0, shape).astype(np.float32) for shape in FPN_OPTION_SHAPES]
  generator = feature_map_generators.KerasFpnTopDownFeatureMaps(
      num_levels=len(features), depth=FPN_OPTION_DEPTH, is_training=False,
      conv_hyperparams=_hyperparams(ZOO_HYPERPARAMS), freeze_batchnorm=False, use_depthwise=True,
      use_explicit_padding=True, use_bounded_activations=True, use_native_resize_op=True,
      name='FeatureMaps')
  named = [('block%d' % (i + 1), tf.constant(f)) for i, f in enumerate(features)]
  generator(named)
  with tempfile.TemporaryDirectory() as directory:
    listing = _listing({'generator': generator}, os.path.join(directory, 'c'))
  _write_listing(os.path.join(_OUT_DIR, 'fpn_options_keys.txt'), listing)
  helpers['weights'].assign_all({'generator': generator}, helpers['ckpt'].variable_keys)
  outputs = list(generator(named, training=False).values())
  arrays = {'feature_%d' % i: f for i, f in enumerate(features)}
  arrays.update({'output_%d' % i: o.numpy() for i, o in enumerate(outputs)})
  np.savez(os.path.join(_OUT_DIR, 'fpn_options.npz'), **arrays)
  print('fpn options: %d keys, outputs %s' % (len(listing), [o.shape for o in outputs]))


def main():
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
  _fpn_options(helpers)
  for variant in VARIANTS:
    extractor, proposal, box = _build(variant, is_training=False, batch_norm_trainable=False)
    with tempfile.TemporaryDirectory() as directory:
      listing = _listing({PROPOSAL_ROOT: proposal, BOX_ROOT: box}, os.path.join(directory, 'a'))
      classification = _listing({'feature_extractor': extractor.classification_backbone},
                                os.path.join(directory, 'b'))
    _write_listing(os.path.join(_OUT_DIR, 'keys_%s.txt' % variant), listing)
    if variant == 'a':
      _write_listing(os.path.join(_OUT_DIR, 'classification_keys_a.txt'), classification)
    print('%s: %d keys, %d classification keys' % (variant, len(listing), len(classification)))
    if VARIANTS[variant][3] is None:
      continue
    _assign(proposal, box, helpers, listing)
    inference = _run(variant, extractor, proposal, box, images, crops, training=False)
    np.savez(os.path.join(_OUT_DIR, 'outputs_%s_inference.npz' % variant), **inference)
    print('  inference: %s' % {k: v.shape for k, v in inference.items()})
    if variant != 'a':
      continue
    extractor, proposal, box = _build(variant, is_training=True, batch_norm_trainable=True)
    _assign(proposal, box, helpers, listing)
    training = _run(variant, extractor, proposal, box, images, crops, training=True)
    np.savez(os.path.join(_OUT_DIR, 'outputs_a_training.npz'), **training)
    extractor, proposal, box = _build(variant, is_training=True, batch_norm_trainable=False)
    _assign(proposal, box, helpers, listing)
    frozen = _run(variant, extractor, proposal, box, images, crops, training=True)
    max_diff = max(float(np.max(np.abs(frozen[k] - inference[k]))) for k in inference)
    np.savez(os.path.join(_OUT_DIR, 'frozen_check.npz'), max_abs_diff=np.float32(max_diff))
    print('  training vs inference max |diff| %.3g; frozen vs inference %.3g' % (
        max(float(np.max(np.abs(training[k] - inference[k]))) for k in inference if k != 'losses'),
        max_diff))


if __name__ == '__main__':
  main()
