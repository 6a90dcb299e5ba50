"""Model size and compute statistics: parameter count and GFLOPs per image.

Method for FLOPs (documented in docs/evaluation.md):
  1. Trace a `tf.function` of `preprocess -> predict -> postprocess` (a `DetectionModel`) or of
     `model(images)` (a plain Keras model) for ONE image of the given size (batch 1, static
     shape).
  2. Freeze it (`convert_variables_to_constants_v2`) so variables become constants.
  3. Run `tf.compat.v1.profiler.profile(graph, options=float_operation())`, which sums the
     registered FLOP statistics of every op with a static shape (Conv2D, MatMul, BiasAdd,
     element-wise ops, ...). One multiply-add counts as 2 FLOPs (the TF convention).
  If the profiler is unavailable or reports nothing, the FLOPs of Conv2D / DepthwiseConv2dNative /
  MatMul / BatchMatMul ops are summed from their static shapes instead (2 * MACs).
Ops whose shapes are data dependent (NMS, ROI crops with dynamic box counts) may be counted
partially; the count is dominated by the backbone, FPN and heads, so it is a close lower bound.
"""

import logging

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import convert_to_constants  # pylint: disable=g-direct-tensorflow-import


def count_parameters(model, trainable_only=False):
  """Number of scalar parameters of a model.

  Args:
    model: a tf.Module / tf_keras model (variables must already be built).
    trainable_only: count only trainable variables (else all, incl. batch-norm statistics).

  Returns:
    int, the number of scalars (duplicated variable references counted once).
  """
  variables = model.trainable_variables if trainable_only else model.variables
  seen = set()
  total = 0
  for v in variables:
    key = id(v)
    if key in seen:
      continue
    seen.add(key)
    total += int(np.prod(v.shape.as_list())) if v.shape.rank else 1
  return total


def _forward_fn(model):
  """A function images -> outputs of the full inference path of `model`."""
  if all(hasattr(model, name) for name in ('preprocess', 'predict', 'postprocess')):
    def fn(images):
      preprocessed, true_image_shapes = model.preprocess(images)
      prediction_dict = model.predict(preprocessed, true_image_shapes)
      return model.postprocess(prediction_dict, true_image_shapes)
  else:
    def fn(images):
      return model(images, training=False)
  return fn


def _manual_flops(graph_def):
  """2 * MACs of conv / matmul nodes of a frozen graph, from static shapes."""
  graph = tf.Graph()
  with graph.as_default():
    tf.import_graph_def(graph_def, name='')
  total = 0
  for op in graph.get_operations():
    try:
      if op.type in ('Conv2D', 'DepthwiseConv2dNative'):
        out = op.outputs[0].shape.as_list()
        kernel = op.inputs[1].shape.as_list()
        if None in out or None in kernel:
          continue
        if op.type == 'Conv2D':
          macs = np.prod(out) * kernel[0] * kernel[1] * kernel[2]
        else:
          macs = np.prod(out) * kernel[0] * kernel[1]
        total += 2 * int(macs)
      elif op.type in ('MatMul', 'BatchMatMulV2', 'BatchMatMul', 'BatchMatMulV3'):
        out = op.outputs[0].shape.as_list()
        a = op.inputs[0].shape.as_list()
        if None in out or None in a:
          continue
        transpose_a = op.get_attr('transpose_a') if op.type == 'MatMul' else op.get_attr('adj_x')
        inner = a[-2] if transpose_a else a[-1]
        total += 2 * int(np.prod(out)) * int(inner)
    except (ValueError, TypeError):
      continue
  return total


def flops_per_image(model, image_size, num_channels=3):
  """FLOPs of one forward pass (preprocess + predict + postprocess) for one image.

  Args:
    model: a `DetectionModel` (preprocess/predict/postprocess) or a callable Keras model.
    image_size: (height, width) of the input image in pixels (before `preprocess`).
    num_channels: input channels.

  Returns:
    int, FLOPs (multiply-add = 2 FLOPs). 0 if nothing could be counted.
  """
  height, width = int(image_size[0]), int(image_size[1])
  fn = tf.function(_forward_fn(model), autograph=True)
  concrete = fn.get_concrete_function(
      tf.TensorSpec([1, height, width, num_channels], tf.float32))
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
  graph_def = frozen.graph.as_graph_def()
  flops = 0
  try:
    graph = tf.Graph()
    with graph.as_default():
      tf.import_graph_def(graph_def, name='')
      opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
      opts['output'] = 'none'
      profile = tf.compat.v1.profiler.profile(graph=graph, run_meta=None, cmd='scope',
                                              options=opts)
      flops = int(profile.total_float_ops) if profile is not None else 0
  except Exception as e:  # pylint: disable=broad-except
    logging.warning('tf.compat.v1.profiler failed (%s); summing conv/matmul FLOPs instead.', e)
  if flops <= 0:
    flops = _manual_flops(graph_def)
  return flops


def gflops_per_image(model, image_size, num_channels=3):
  """GFLOPs (1e9 FLOPs, multiply-add = 2) of one forward pass for one image.

  See `flops_per_image` and the module docstring for the counting method.
  """
  return flops_per_image(model, image_size, num_channels) / 1e9


def model_stats(model, image_size):
  """Dict with 'num_parameters', 'num_trainable_parameters' and 'gflops_per_image'.

  The GFLOPs entry is None (with a logged warning) if tracing the model fails, so evaluation
  never fails because of statistics.
  """
  stats = {'num_parameters': count_parameters(model),
           'num_trainable_parameters': count_parameters(model, trainable_only=True),
           'gflops_per_image': None,
           'gflops_image_size': [int(image_size[0]), int(image_size[1])]}
  try:
    stats['gflops_per_image'] = gflops_per_image(model, image_size)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning('Could not count FLOPs of the model: %s', e)
  return stats
