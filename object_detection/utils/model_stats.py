"""Model size and compute statistics: parameter count and GFLOPs per image.

Method for FLOPs (documented in docs/evaluation.md, section "Complexity"):
  1. The input size the network runs at is the static shape of `preprocess`'s output for one image
     of the given (original) size: the image resizer decides it (for example 256x256 for a
     `keep_aspect_ratio_resizer` with `pad_to_max_dimension`, whatever the photo's size).
  2. A `tf.function` of `preprocess -> predict -> postprocess` (a `DetectionModel`) or of
     `model(images)` (a plain Keras model) is traced for ONE image (batch 1, static shape). The ops
     its outputs depend on are the ops that run (TensorFlow prunes the others). A graph with loops,
     conditionals or nested functions is frozen instead (`convert_variables_to_constants_v2`
     inlines them and lowers control flow: both branches of a conditional are counted, and ops on
     loop-carried values lose their static shapes, so they are reported as not counted).
  3. Every op that runs is counted from its static shapes. A multiply-add is 2 FLOPs
     (TensorFlow's convention; counters such as ptflops / mmcv report multiply-adds, half of this):
       Conv2D: 2 * output elements * kh * kw * in_channels;
       DepthwiseConv2dNative: 2 * output elements * kh * kw;
       MatMul / BatchMatMul: 2 * output elements * inner dimension;
       Einsum (two operands): 2 * product of the sizes of all its indices (1 * when none is summed);
       other ops: the FLOP statistics TensorFlow registers for them (`tf.compat.v1.profiler`'s
       registry: 1 FLOP per output element for element-wise ops such as BiasAdd / Add / Mul,
       pooling and reductions per input element, Softmax 5 per element, ...).
     Ops without a registered statistic (ResizeBilinear, CropAndResize, ReLU, Sigmoid, Exp, NMS,
     TopK, gathers, ...) count 0, as in the TF profiler.
  Second stage of Faster / Mask R-CNN: in inference the RPN's NMS pads its output to
  `first_stage_max_proposals` boxes, so the box classifier is traced (and counted) at that many
  boxes, and the mask branch (box-classifier features + mask head of the detections) at
  `max_total_detections` boxes. These padded shapes run whatever the number of real proposals or
  detections, so the figure is the cost of every image. Ops whose shapes stay data dependent after
  tracing are not counted; they are listed in `model_stats(...)['flops_ops_with_dynamic_shapes']`.
"""

import logging

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import convert_to_constants  # pylint: disable=g-direct-tensorflow-import
from tensorflow.python.framework import ops as tf_ops  # pylint: disable=g-direct-tensorflow-import
from tensorflow.python.util import deprecation  # pylint: disable=g-direct-tensorflow-import

try:
  # Registers TensorFlow's FLOP statistics of element-wise ops, pooling, reductions, MatMul.
  from tensorflow.python.profiler.internal import flops_registry  # pylint: disable=g-direct-tensorflow-import,unused-import
except ImportError:  # pragma: no cover
  # Convolutions, matmuls and einsums are counted here anyway; only element-wise ops would be 0.
  flops_registry = None


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


def _is_detection_model(model):
  return all(hasattr(model, name) for name in ('preprocess', 'predict', 'postprocess'))


def _forward_fn(model):
  """A function images -> outputs of the full inference path of `model`."""
  if _is_detection_model(model):
    def fn(images):
      preprocessed, true_image_shapes = model.preprocess(images)
      prediction_dict = model.predict(preprocessed, true_image_shapes)
      return model.postprocess(prediction_dict, true_image_shapes)
  else:
    def fn(images):
      return model(images, training=False)
  return fn


def model_input_size(model, image_size, num_channels=3):
  """(height, width) the network runs at for one image of `image_size`.

  Args:
    model: a `DetectionModel` (its `preprocess` resizes and pads) or a Keras model (no resizing).
    image_size: (height, width) in pixels of the image given to `preprocess`.
    num_channels: input channels.

  Returns:
    (height, width) ints: the static spatial shape of `preprocess`'s output (padded size), or
    `image_size` for a model without `preprocess`.

  Raises:
    ValueError: `preprocess` gives no static spatial shape.
  """
  height, width = int(image_size[0]), int(image_size[1])
  if not _is_detection_model(model):
    return height, width
  preprocessed, _ = model.preprocess(tf.zeros([1, height, width, num_channels], tf.float32))
  out_height, out_width = preprocessed.shape.as_list()[1:3]
  if out_height is None or out_width is None:
    raise ValueError('preprocess output has no static size (%s).' % preprocessed.shape)
  return int(out_height), int(out_width)


def _static_shape(tensor):
  shape = tensor.shape
  if shape.rank is None or not shape.is_fully_defined():
    return None
  return shape.as_list()


def _einsum_flops(op):
  """FLOPs of a two-operand Einsum from its equation and static input shapes; None if unknown.

  Every index takes every value once: product(all index sizes) multiply-adds (2 FLOPs each) when
  an index is summed, or that many multiplications when none is (an outer product).
  """
  equation = op.get_attr('equation')
  if isinstance(equation, bytes):
    equation = equation.decode('ascii')
  if '...' in equation or '->' not in equation:
    return None
  inputs, output = equation.replace(' ', '').split('->')
  operands = inputs.split(',')
  if len(operands) != 2 or len(op.inputs) != 2:
    return None
  sizes = {}
  for letters, tensor in zip(operands, op.inputs):
    shape = _static_shape(tensor)
    if shape is None or len(shape) != len(letters):
      return None
    for letter, size in zip(letters, shape):
      sizes[letter] = size
  products = int(np.prod([sizes[letter] for letter in sizes], dtype=np.int64))
  summed = set(sizes) - set(output)
  return 2 * products if summed else products


def _op_flops(graph, op):
  """FLOPs of one op: an int, None when the op has no FLOP statistic, or raises ValueError when its
  shapes are not static."""
  if op.type in ('Conv2D', 'DepthwiseConv2dNative'):
    out, kernel = _static_shape(op.outputs[0]), _static_shape(op.inputs[1])
    if out is None or kernel is None:
      raise ValueError('dynamic shape')
    per_output = kernel[0] * kernel[1] * (kernel[2] if op.type == 'Conv2D' else 1)
    return 2 * int(np.prod(out, dtype=np.int64)) * per_output
  if op.type in ('MatMul', 'BatchMatMul', 'BatchMatMulV2', 'BatchMatMulV3'):
    out, a = _static_shape(op.outputs[0]), _static_shape(op.inputs[0])
    if out is None or a is None:
      raise ValueError('dynamic shape')
    transpose_a = op.get_attr('transpose_a' if op.type == 'MatMul' else 'adj_x')
    inner = a[-2] if transpose_a else a[-1]
    return 2 * int(np.prod(out, dtype=np.int64)) * inner
  if op.type == 'Einsum':
    flops = _einsum_flops(op)
    if flops is None:
      raise ValueError('dynamic shape')
    return flops
  # The registry's functions raise ValueError on incomplete shapes and are absent (value None)
  # for ops without a FLOP statistic.
  return tf_ops.get_stats_for_node_def(graph, op.node_def, 'flops').value


def count_graph_flops(graph, ops=None):
  """FLOPs of the ops of a graph, by op type (see the module docstring for the formulas).

  Args:
    graph: a `tf.Graph` with static shapes (e.g. a traced function's graph).
    ops: the ops to count (default: all of the graph's).

  Returns:
    (total FLOPs int, {op type: FLOPs}, {op type: number of ops not counted because a shape is
    data dependent}).
  """
  by_type = {}
  dynamic = {}
  # The registry's shape helper is a deprecated TF1 function: its warning says nothing to a user.
  with deprecation.silence():
    for op in (graph.get_operations() if ops is None else ops):
      try:
        flops = _op_flops(graph, op)
      except ValueError:
        dynamic[op.type] = dynamic.get(op.type, 0) + 1
        continue
      if flops:
        by_type[op.type] = by_type.get(op.type, 0) + int(flops)
  return sum(by_type.values()), by_type, dynamic


# Ops that run a function body kept outside the graph's op list.
_FUNCTIONAL_OPS = frozenset(['While', 'StatelessWhile', 'If', 'StatelessIf', 'Case',
                             'StatelessCase', 'PartitionedCall', 'StatefulPartitionedCall'])


def _ops_reaching(tensors):
  """The ops the given tensors depend on (data and control inputs): the ops that run.

  A traced function also holds ops whose results nothing uses (for example the box classifier
  pass of the detections when the mask head reads the ROI crops); TensorFlow prunes them when it
  runs the function, so they are not counted.
  """
  stack = [t.op for t in tensors]
  seen = set()
  ordered = []
  while stack:
    op = stack.pop()
    if op in seen:
      continue
    seen.add(op)
    ordered.append(op)
    stack.extend(t.op for t in op.inputs)
    stack.extend(op.control_inputs)
  return ordered


def _trace_and_count(model, input_size, num_channels):
  """count_graph_flops of one forward pass for a [1, height, width, num_channels] float32 image."""
  spec = tf.TensorSpec([1, int(input_size[0]), int(input_size[1]), num_channels], tf.float32)
  try:
    # The model code needs no autograph (no Python control flow over tensors); skipping it traces
    # about 10x faster. Autograph is the fallback for models that do need it.
    concrete = tf.function(_forward_fn(model), autograph=False).get_concrete_function(spec)
  except (TypeError, ValueError, tf.errors.OperatorNotAllowedInGraphError):
    concrete = tf.function(_forward_fn(model), autograph=True).get_concrete_function(spec)
  ops = _ops_reaching(concrete.outputs)
  if not any(op.type in _FUNCTIONAL_OPS for op in ops):
    return count_graph_flops(concrete.graph, ops)
  # Loops, conditionals or nested functions keep their ops in function bodies: freezing inlines
  # them (lowering control flow to plain ops) and prunes unused ops.
  logging.info('Counting FLOPs on the frozen graph (the traced graph has functional ops).')
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
  graph = tf.Graph()
  with graph.as_default():
    tf.import_graph_def(frozen.graph.as_graph_def(), name='')
  return count_graph_flops(graph)


def flop_breakdown(model, image_size, num_channels=3):
  """FLOPs of one forward pass for one image, with the size counted and a per-op-type breakdown.

  Args:
    model: a `DetectionModel` (preprocess/predict/postprocess) or a callable Keras model, with its
      variables built.
    image_size: (height, width) in pixels of the image given to the model (before `preprocess`).
    num_channels: input channels.

  Returns:
    dict: 'flops' (int, multiply-add = 2), 'input_size' ([height, width] the network runs at, after
    the image resizer), 'flops_by_op_type' ({op type: FLOPs}), 'ops_with_dynamic_shapes'
    ({op type: count} of ops left out because a shape is data dependent).
  """
  input_size = model_input_size(model, image_size, num_channels)
  # Traced at the network's input size: the resizer then maps the image to itself, so nothing of
  # the count depends on the original photo size (the resize itself has no FLOP statistic).
  flops, by_type, dynamic = _trace_and_count(model, input_size, num_channels)
  return {'flops': flops, 'input_size': [int(input_size[0]), int(input_size[1])],
          'flops_by_op_type': by_type, 'ops_with_dynamic_shapes': dynamic}


def flops_per_image(model, image_size, num_channels=3):
  """FLOPs (multiply-add = 2) of one forward pass (preprocess + predict + postprocess), one image.

  Args:
    model: a `DetectionModel` (preprocess/predict/postprocess) or a callable Keras model.
    image_size: (height, width) of the input image in pixels (before `preprocess`).
    num_channels: input channels.

  Returns:
    int, FLOPs at the size the network runs at (see `flop_breakdown`).
  """
  return flop_breakdown(model, image_size, num_channels)['flops']


def gflops_per_image(model, image_size, num_channels=3):
  """GFLOPs (1e9 FLOPs, multiply-add = 2) of one forward pass for one image.

  See `flop_breakdown` and the module docstring for the counting method.
  """
  return flops_per_image(model, image_size, num_channels) / 1e9


def _second_stage_boxes(model):
  """{'second_stage_boxes': first_stage_max_proposals, 'mask_boxes': max_total_detections} of an
  inference Faster / Mask R-CNN (the box counts its second stage is traced at), else {}."""
  boxes = {}
  stages = getattr(model, 'number_of_stages', 0)
  proposals = getattr(model, 'max_num_proposals', None)
  if stages >= 2 and isinstance(proposals, (int, np.integer)):
    boxes['second_stage_boxes'] = int(proposals)
  nms_fn = getattr(model, '_second_stage_nms_fn', None)  # pylint: disable=protected-access
  max_total = (getattr(nms_fn, 'keywords', None) or {}).get('max_total_size')
  if stages == 3 and max_total is not None:
    boxes['mask_boxes'] = int(max_total)
  return boxes


def model_stats(model, image_size):
  """Parameters and GFLOPs of one image for the metrics JSON and `complexity_lines`.

  Args:
    model: a `DetectionModel` with built variables (or a Keras model).
    image_size: (height, width) of an input image before `preprocess` (for evaluation: the first
      eval image); the FLOPs are counted at the size the image resizer gives it.

  Returns:
    dict with
      'num_parameters', 'num_trainable_parameters': ints (all variables incl. batch-norm
        statistics; trainable ones);
      'gflops_per_image': float GFLOPs (multiply-add = 2), None (with a logged warning) if tracing
        the model failed, so that evaluation never fails because of statistics;
      'gflops_image_size': [height, width] the network runs at (after resizing and padding), the
        size the GFLOPs are counted at;
      'gflops_original_image_size': [height, width] of the image given (before `preprocess`);
      'gflops_by_op_type': {op type: GFLOPs};
      'flops_ops_with_dynamic_shapes': {op type: number of ops not counted};
      'second_stage_boxes' / 'mask_boxes' (Faster / Mask R-CNN): boxes the box classifier / the
        mask branch are counted at (first_stage_max_proposals / max_total_detections).
  """
  original = [int(image_size[0]), int(image_size[1])]
  stats = {'num_parameters': count_parameters(model),
           'num_trainable_parameters': count_parameters(model, trainable_only=True),
           'gflops_per_image': None,
           'gflops_image_size': original,
           'gflops_original_image_size': original}
  try:
    breakdown = flop_breakdown(model, image_size)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning('Could not count FLOPs of the model: %s', e)
    return stats
  stats['gflops_per_image'] = breakdown['flops'] / 1e9
  stats['gflops_image_size'] = breakdown['input_size']
  by_type = sorted(breakdown['flops_by_op_type'].items())
  stats['gflops_by_op_type'] = {op_type: flops / 1e9 for op_type, flops in by_type}
  stats['flops_ops_with_dynamic_shapes'] = dict(
      sorted(breakdown['ops_with_dynamic_shapes'].items()))
  stats.update(_second_stage_boxes(model))
  return stats


def _millions(count):
  return '%.2f M' % (count / 1e6)


def complexity_lines(stats):
  """Human-readable lines of a `model_stats` dict (printed after each evaluation, TensorBoard text).

  Args:
    stats: dict from `model_stats` (or the 'model_stats' entry of a metrics JSON).

  Returns:
    list of str, e.g. ['Parameters: 7.61 M (7.54 M trainable)', 'GFLOPs per image: 4.42 at
    256x256 (the model input of a 480x640 image; second stage at 100 proposals, masks at 50
    detections)'].
  """
  lines = ['Parameters: %s (%s trainable)' % (_millions(stats['num_parameters']),
                                              _millions(stats['num_trainable_parameters']))]
  height, width = stats['gflops_image_size']
  if stats.get('gflops_per_image') is None:
    lines.append('GFLOPs per image: not measured (tracing the model failed; see the log)')
    return lines
  line = 'GFLOPs per image: %.2f at %dx%d' % (stats['gflops_per_image'], height, width)
  details = []
  original = stats.get('gflops_original_image_size')
  if original and list(original) != [height, width]:
    details.append('the model input of a %dx%d image' % (original[0], original[1]))
  stages = []
  if 'second_stage_boxes' in stats:
    stages.append('second stage at %d proposals' % stats['second_stage_boxes'])
  if 'mask_boxes' in stats:
    stages.append('masks at %d detections' % stats['mask_boxes'])
  if stages:
    details.append(', '.join(stages))
  if details:
    line += ' (%s)' % '; '.join(details)
  lines.append(line)
  return lines
