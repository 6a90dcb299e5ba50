"""Loads Keras ImageNet weight files (`.h5` / `.weights.h5`) into a keras-application-based backbone.

Supported files:
  * tf_keras / Keras 2 HDF5 weights (`model.save_weights('x.h5')`, and the files Keras downloads for
    `tf.keras.applications`, e.g. `efficientnetb0_notop.h5`,
    `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5`,
    `inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5`): root attribute `layer_names`,
    one group per layer with attribute `weight_names` (also inside a `model_weights` group for full-model
    `.h5` saves).
  * Keras 3 `.weights.h5` files (`keras.Model.save_weights('x.weights.h5')`, e.g. with TF >= 2.16's
    `tf.keras`): groups `layers/<class name in snake case>[_<k>]/vars/<i>`, where `<k>` counts the layers of
    that class in the model's layer order (`conv2d`, `conv2d_1`, ...); recent Keras 3 versions (e.g. 3.15)
    also store the layer name as attribute `name` of the `vars` group.

Matching: by layer name first (shapes must agree; for Keras 3 files the stored layer name). If no layer
matches by name (e.g. auto-generated names such as `conv2d_17` that depend on how many layers the process
created before, or the MobileNetV3 names that Keras 3 changed), layers with weights are matched in order, as
Keras' own `load_weights(by_name=False)` does: topological order for Keras 2 files, the per-class order of
the group names for Keras 3 files (how Keras 3 itself loads). A layer of a subclass of a Keras layer class
counts as that Keras class (the TF OD API's `FreezableBatchNorm` as `batch_normalization`), since the
file holds the Keras application's own classes. Then EVERY layer of the backbone must fit its
file layer (extra file layers, such as a classification top, are left unused), otherwise nothing is loaded
and a ValueError names the file and the first differing layer. (A file of another network often shares its
first few layer shapes, e.g. a 3x3x3x32 stem conv; a partial load in order would silently train from a few
foreign layers.)

Bias-free backbones (the TF OD API's ResNet-v1, whose convolutions have no bias while the Keras ImageNet
files' do) load with `fold_conv_bias`: each file conv bias is folded into the following batch norm's moving
mean, exact in inference mode. `complete=True` makes a load all-or-nothing (every backbone layer loaded,
every file layer but a classification top used).
"""

import collections
import re

import h5py
import numpy as np

LoadReport = collections.namedtuple('LoadReport', ['matched', 'skipped', 'unused', 'mode', 'folded'],
                                    defaults=((),))
LoadReport.__doc__ = """Result of `load_weights`.

matched: list of (model layer name, file layer name) whose weights were loaded.
skipped: list of model layer names (with weights) left unchanged (not in file, excluded, or shape mismatch).
unused: list of file layer names not loaded into any model layer.
mode: 'by_name' or 'by_order'.
folded: list of (conv layer name, batch norm layer name) whose file conv bias was folded into the batch
  norm's moving mean (`load_weights(fold_conv_bias=...)`); empty otherwise.
"""

# Classification head of the Keras applications: a file with the top may still load `complete`ly.
_CLASSIFICATION_TOP = ('predictions',)

_H5Contents = collections.namedtuple('_H5Contents', ['keras3', 'layers', 'keras3_paths'])


def _decode(s):
  return s.decode('utf8') if isinstance(s, bytes) else str(s)


def _read_h5(path):
  """-> _H5Contents(keras3: bool, layers: OrderedDict {layer name: [arrays]},
  keras3_paths: {group path such as 'conv2d_8': layer name} (Keras 3 files only))."""
  try:
    f = h5py.File(path, 'r')
  except (OSError, IOError) as e:
    raise ValueError('Cannot read Keras weights file %s: %s' % (path, e)) from e
  out = collections.OrderedDict()
  keras3_paths = {}
  with f:
    root = f['model_weights'] if 'model_weights' in f else f
    if 'layer_names' in root.attrs:
      for name in root.attrs['layer_names']:
        g = root[_decode(name)]
        weight_names = [_decode(w) for w in g.attrs.get('weight_names', [])]
        if weight_names:
          out[_decode(name)] = [np.asarray(g[w]) for w in weight_names]
      return _H5Contents(False, out, keras3_paths)
    if 'layers' not in root:
      raise ValueError('%s is not a Keras weights file (no `layer_names` attribute and no `layers` group).'
                       % path)

    def visit(group, prefix):
      for key in group:
        sub = group[key]
        if not isinstance(sub, h5py.Group):
          continue
        if 'vars' in sub and len(sub['vars']):
          name = prefix + _decode(sub['vars'].attrs.get('name', key))
          out[name] = [np.asarray(sub['vars'][k]) for k in sorted(sub['vars'], key=int)]
          keras3_paths[prefix + key] = name
        if 'layers' in sub:
          visit(sub['layers'], prefix + key + '/')
    visit(root['layers'], '')
  return _H5Contents(True, out, keras3_paths)


def read_h5_layers(path):
  """Returns an OrderedDict {layer name: [numpy arrays in the layer's weight order]} (layers with weights).

  Raises:
    ValueError: unreadable file or unknown layout (message names the file).
  """
  return _read_h5(path).layers


def _snake_case(class_name):
  # keras.src.utils.naming.to_snake_case, which names the groups of Keras 3 weight files.
  name = re.sub(r'\W+', '', class_name)
  name = re.sub('(.)([A-Z][a-z]+)', r'\1_\2', name)
  return re.sub('([a-z])([A-Z])', r'\1_\2', name).lower()


def _keras_class_name(layer):
  """Name of the Keras layer class `layer` is, or derives from (e.g. `BatchNormalization` for the TF OD
  API's `FreezableBatchNorm`): the Keras 3 file holds the Keras application's own classes. A custom
  layer derived from the base `Layer` keeps its own class name."""
  for cls in type(layer).__mro__:
    if cls.__module__.split('.')[0] in ('tf_keras', 'keras'):
      return type(layer).__name__ if cls.__name__ == 'Layer' else cls.__name__
  return type(layer).__name__


def _keras3_order(layers, contents):
  """Pairs each layer with the Keras 3 file layer of the same Keras class and per-class index -> list
  of (layer, file layer name or None)."""
  counts = collections.Counter()
  pairs = []
  for layer in layers:
    snake = _snake_case(_keras_class_name(layer))
    index = counts[snake]
    counts[snake] += 1
    key = snake if index == 0 else '%s_%d' % (snake, index)
    pairs.append((layer, contents.keras3_paths.get(key)))
  return pairs


def _weighted_layers(model):
  """Leaf layers with weights, in topological order (nested models are flattened)."""
  out = []
  for layer in model.layers:
    if hasattr(layer, 'layers') and layer.layers:
      out.extend(_weighted_layers(layer))
    elif layer.weights:
      out.append(layer)
  return out


def _shapes_match(layer, values):
  current = layer.get_weights()
  return len(current) == len(values) and all(c.shape == v.shape for c, v in zip(current, values))


def _fit(layer, values, fold_conv_bias):
  """(values to set, conv bias to fold or None) if the file layer `values` fit `layer`, else None."""
  if _shapes_match(layer, values):
    return values, None
  if fold_conv_bias is None or len(values) != 2:
    return None
  kernel = getattr(layer, 'kernel', None)
  if (kernel is None or getattr(layer, 'use_bias', True) or len(layer.weights) != 1
      or tuple(kernel.shape) != values[0].shape or values[1].shape != (int(kernel.shape[-1]),)):
    return None
  return [values[0]], values[1]


def load_weights(model, path, extractor_name, exclude=(), by_order=False, fold_conv_bias=None,
                 complete=False):
  """Loads the weights in `path` into `model` (a tf_keras functional model), layer by layer.

  Args:
    model: tf_keras.Model (e.g. the keras application inside a feature extractor).
    path: str, `.h5` or `.weights.h5` file.
    extractor_name: str, named in errors (e.g. 'faster_rcnn_efficientnet_b0_fpn_keras').
    exclude: model layer names never loaded (reported as skipped).
    by_order: match in topological order only. For networks whose layers are partly auto-named
      (`conv2d_17`): a by-name pass would match the few explicitly named layers and stop there.
    fold_conv_bias: None, or callable(conv layer name) -> name of the batch norm layer that directly
      follows that convolution in `model` (or None). Then a bias-free convolution of `model` also fits a
      file layer holding [kernel, bias]: the kernel is loaded and the bias is folded into the batch norm,
      whose `moving_mean` becomes (file moving_mean - bias). In inference mode batch norm computes
      gamma * (x - mean) / sqrt(var + eps) + beta, so conv(x) + bias followed by the file's batch norm
      equals conv(x) followed by the folded one exactly (up to float rounding). That batch norm must be
      loaded from the file too, otherwise ValueError.
    complete: all-or-nothing. True: every layer of `model` with weights outside `exclude` must be loaded,
      and every file layer used except a classification top (`predictions`); otherwise ValueError and
      nothing is loaded (e.g. a ResNet-101 file would otherwise fill a ResNet-50 by name, silently
      leaving blocks out).

  Returns:
    LoadReport.

  Raises:
    ValueError: the file cannot be read, no layer of the file matches the model by name and the layer
      order does not fit either, a conv bias cannot be folded, or (with `complete`) the file does not
      cover the model exactly. Nothing is loaded then; the message names the file and the extractor.
  """
  contents = _read_h5(path)
  file_layers = contents.layers
  all_layers = _weighted_layers(model)
  layers = [l for l in all_layers if l.name not in exclude]
  plan = []  # (model layer, file layer name, values to set, conv bias to fold or None)
  for layer in ([] if by_order else layers):
    values = file_layers.get(layer.name)
    fitted = None if values is None else _fit(layer, values, fold_conv_bias)
    if fitted is not None:
      plan.append((layer, layer.name) + fitted)
  mode = 'by_name'
  if not plan:
    mode = 'by_order'
    if contents.keras3:
      pairs = _keras3_order(all_layers, contents)
    else:
      pairs = list(zip(all_layers, list(file_layers)[:len(all_layers)]))
      pairs += [(layer, None) for layer in all_layers[len(pairs):]]
    problem = _order_mismatch(pairs, file_layers, exclude, fold_conv_bias)
    if problem:
      raise ValueError(
          'Keras weights file %s does not fit the %s backbone: no layer matches by name, and in '
          'layer order %s (file layers: %s...). Nothing was loaded. Use the Keras ImageNet weights of '
          'the same network (see docs/pretrained.md).'
          % (path, extractor_name, problem, ', '.join(list(file_layers)[:5])))
    for layer, file_name in pairs:
      if layer.name not in exclude:
        plan.append((layer, file_name) + _fit(layer, file_layers[file_name], fold_conv_bias))
  if not plan:
    raise ValueError(
        'Keras weights file %s matches no layer of the %s backbone (neither by layer name nor in order; '
        'file layers: %s...). Use the Keras ImageNet weights of the same network (see docs/pretrained.md).'
        % (path, extractor_name, ', '.join(list(file_layers)[:5])))
  used = {file_name for _, file_name, _, _ in plan}
  if complete:
    _check_complete(plan, layers, file_layers, used, path, extractor_name)
  folds = _fold_targets(plan, fold_conv_bias, path, extractor_name)
  for layer, _, values, _ in plan:
    layer.set_weights(values)
  for batch_norm, bias in folds.values():
    batch_norm.moving_mean.assign(batch_norm.moving_mean.numpy() - bias)
  matched = [(layer.name, file_name) for layer, file_name, _, _ in plan]
  matched_model = {m for m, _ in matched}
  all_names = [l.name for l in all_layers]
  return LoadReport(matched=matched, skipped=[n for n in all_names if n not in matched_model],
                    unused=[n for n in file_layers if n not in used], mode=mode,
                    folded=[(conv, bn.name) for conv, (bn, _) in folds.items()])


def _check_complete(plan, layers, file_layers, used, path, extractor_name):
  loaded = {layer.name for layer, _, _, _ in plan}
  missing = [l.name for l in layers if l.name not in loaded]
  unused = [n for n in file_layers if n not in used and n not in _CLASSIFICATION_TOP]
  if missing or unused:
    details = []
    if missing:
      details.append('%d backbone layers have no fitting file layer (first: %s)' % (len(missing), missing[0]))
    if unused:
      details.append('%d file layers would be left unused (first: %s)' % (len(unused), unused[0]))
    raise ValueError(
        'Keras weights file %s does not fit the %s backbone exactly: %s. Nothing was loaded. Use the '
        'Keras ImageNet weights of the same network and depth (see docs/pretrained.md).'
        % (path, extractor_name, '; '.join(details)))


def _fold_targets(plan, fold_conv_bias, path, extractor_name):
  """{conv layer name: (batch norm layer, bias)} for the planned conv biases; checks each can be folded."""
  folds = {}
  planned = {layer.name: layer for layer, _, _, _ in plan}
  for layer, file_name, _, bias in plan:
    if bias is None:
      continue
    bn_name = fold_conv_bias(layer.name)
    batch_norm = planned.get(bn_name)
    if batch_norm is None or getattr(batch_norm, 'moving_mean', None) is None:
      raise ValueError(
          'Keras weights file %s: the bias of %s cannot be folded into the %s backbone, whose %s is '
          'bias-free: its batch norm %r is not loaded from the file. Nothing was loaded.'
          % (path, file_name, extractor_name, layer.name, bn_name))
    folds[layer.name] = (batch_norm, bias)
  return folds


def _order_mismatch(pairs, file_layers, exclude, fold_conv_bias=None):
  """None if every (layer, file layer name) pair outside `exclude` fits; else a description."""
  for i, (layer, file_name) in enumerate(pairs):
    if layer.name in exclude:
      continue
    if file_name is None:
      return ('the file has no layer #%d (backbone %s; the file has %d layers with weights, the '
              'backbone %d)' % (i, layer.name, len(file_layers), len(pairs)))
    values = file_layers[file_name]
    if _fit(layer, values, fold_conv_bias) is None:
      return 'layer #%d differs: backbone %s %s vs file %s %s' % (
          i, layer.name, [tuple(w.shape) for w in layer.weights], file_name,
          [tuple(v.shape) for v in values])
  return None
