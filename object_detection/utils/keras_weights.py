"""Loads Keras ImageNet weight files (`.h5` / `.weights.h5`) into a keras-application-based backbone.

Supported files:
  * tf_keras / Keras 2 HDF5 weights (`model.save_weights('x.h5')`, and the files Keras downloads for
    `tf.keras.applications`, e.g. `efficientnetb0_notop.h5`, `mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5`,
    `inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5`): root attribute `layer_names`,
    one group per layer with attribute `weight_names` (also inside a `model_weights` group for full-model
    `.h5` saves).
  * Keras 3 `.weights.h5` files: groups `layers/<layer name>/vars/<i>`.

Matching: by layer name first (shapes must agree). If no layer matches by name (e.g. auto-generated names
such as `conv2d_17` that depend on how many layers the process created before), layers with weights are
matched in topological order, as Keras' own `load_weights(by_name=False)` does: then EVERY layer of the
backbone must fit the file layer at the same position (extra trailing file layers, such as a classification
top, are left unused), otherwise nothing is loaded and a ValueError names the file and the first differing
layer. (A file of another network often shares its first few layer shapes, e.g. a 3x3x3x32 stem conv; a
partial load in order would silently train from a few foreign layers.)
"""

import collections

import h5py
import numpy as np

LoadReport = collections.namedtuple('LoadReport', ['matched', 'skipped', 'unused', 'mode'])
LoadReport.__doc__ = """Result of `load_weights`.

matched: list of (model layer name, file layer name) whose weights were loaded.
skipped: list of model layer names (with weights) left unchanged (not in file, excluded, or shape mismatch).
unused: list of file layer names not loaded into any model layer.
mode: 'by_name' or 'by_order'.
"""


def _decode(s):
  return s.decode('utf8') if isinstance(s, bytes) else str(s)


def read_h5_layers(path):
  """Returns an OrderedDict {layer name: [numpy arrays in the layer's weight order]} (layers with weights).

  Raises:
    ValueError: unreadable file or unknown layout (message names the file).
  """
  try:
    f = h5py.File(path, 'r')
  except (OSError, IOError) as e:
    raise ValueError('Cannot read Keras weights file %s: %s' % (path, e)) from e
  out = collections.OrderedDict()
  with f:
    root = f['model_weights'] if 'model_weights' in f else f
    if 'layer_names' in root.attrs:
      for name in root.attrs['layer_names']:
        g = root[_decode(name)]
        weight_names = [_decode(w) for w in g.attrs.get('weight_names', [])]
        if weight_names:
          out[_decode(name)] = [np.asarray(g[w]) for w in weight_names]
    elif 'layers' in root:
      def visit(group, prefix):
        for name in group:
          sub = group[name]
          if not isinstance(sub, h5py.Group):
            continue
          if 'vars' in sub and len(sub['vars']):
            out[prefix + name] = [np.asarray(sub['vars'][k])
                                  for k in sorted(sub['vars'], key=int)]
          if 'layers' in sub:
            visit(sub['layers'], prefix + name + '/')
      visit(root['layers'], '')
    else:
      raise ValueError('%s is not a Keras weights file (no `layer_names` attribute and no `layers` group).'
                       % path)
  return out


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


def load_weights(model, path, extractor_name, exclude=(), by_order=False):
  """Loads the weights in `path` into `model` (a tf_keras functional model), layer by layer.

  Args:
    model: tf_keras.Model (e.g. the keras application inside a feature extractor).
    path: str, `.h5` or `.weights.h5` file.
    extractor_name: str, named in errors (e.g. 'faster_rcnn_efficientnet_b0_fpn_keras').
    exclude: model layer names never loaded (reported as skipped).
    by_order: match in topological order only. For networks whose layers are partly auto-named
      (`conv2d_17`): a by-name pass would match the few explicitly named layers and stop there.

  Returns:
    LoadReport.

  Raises:
    ValueError: the file cannot be read, no layer of the file matches the model by name and the layer
      order does not fit either (nothing is loaded then; the message names the file and the extractor).
  """
  file_layers = read_h5_layers(path)
  all_layers = _weighted_layers(model)
  layers = [l for l in all_layers if l.name not in exclude]
  matched, used = [], set()
  for layer in ([] if by_order else layers):
    values = file_layers.get(layer.name)
    if values is not None and _shapes_match(layer, values):
      layer.set_weights(values)
      matched.append((layer.name, layer.name))
      used.add(layer.name)
  mode = 'by_name'
  if not matched:
    mode = 'by_order'
    problem = _order_mismatch(all_layers, file_layers, exclude)
    if problem:
      raise ValueError(
          'Keras weights file %s does not fit the %s backbone: no layer matches by name, and in '
          'layer order %s (file layers: %s...). Nothing was loaded. Use the Keras ImageNet weights of '
          'the same network (see docs/pretrained.md).'
          % (path, extractor_name, problem, ', '.join(list(file_layers)[:5])))
    for layer, (file_name, values) in zip(all_layers, file_layers.items()):
      if layer.name not in exclude:
        layer.set_weights(values)
        matched.append((layer.name, file_name))
        used.add(file_name)
  if not matched:
    raise ValueError(
        'Keras weights file %s matches no layer of the %s backbone (neither by layer name nor in order; '
        'file layers: %s...). Use the Keras ImageNet weights of the same network (see docs/pretrained.md).'
        % (path, extractor_name, ', '.join(list(file_layers)[:5])))
  matched_model = {m for m, _ in matched}
  all_names = [l.name for l in all_layers]
  return LoadReport(matched=matched, skipped=[n for n in all_names if n not in matched_model],
                    unused=[n for n in file_layers if n not in used], mode=mode)


def _order_mismatch(layers, file_layers, exclude):
  """None if every layer of `layers` (except `exclude`) fits the file layer at the same position
  (extra trailing file layers, e.g. a classification top, are allowed); else a description."""
  if len(file_layers) < len(layers):
    return 'the file has only %d layers with weights for the %d of the backbone' % (
        len(file_layers), len(layers))
  for i, (layer, (file_name, values)) in enumerate(zip(layers, file_layers.items())):
    if layer.name not in exclude and not _shapes_match(layer, values):
      return 'layer #%d differs: backbone %s %s vs file %s %s' % (
          i, layer.name, [tuple(w.shape) for w in layer.weights], file_name,
          [tuple(v.shape) for v in values])
  return None
