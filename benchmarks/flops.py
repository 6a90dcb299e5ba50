"""FLOPs of a traced TF function, counted from its graph with run-time shapes.

Method (used for the training step and for inference):
  1. Trace `fn(*args)` into a concrete function; its GraphDef gets fresh variables in place of
     the captured ones (initialised with their current values, so batch-norm moving-average
     updates still run) and placeholders for the other captures.
  2. Import the GraphDef into a `tf.Graph` and run it ONCE in a `tf.compat.v1.Session`
     (grappler off, so node names survive) with `FULL_TRACE`, feeding the same `args`.
  3. Fill every shape the static graph leaves unknown (e.g. the ROI batch of the box/mask heads,
     built with a dynamic reshape) from the run-time shapes of the trace.
  4. Sum TF's registered FLOP statistics (`tf.compat.v1.profiler`'s registry:
     Conv2D, Conv2DBackpropInput/Filter, MatMul, BatchMatMul, DepthwiseConv2dNative, BiasAdd,
     element-wise ops, reductions, pooling, ...) over all ops; a multiply-add counts 2 FLOPs.
     The depthwise-convolution gradients, which TF does not register, are added here.

Not counted: ops inside function bodies (`While`/`If`/`PartitionedCall`: the ROI sampler's and
NMS's small loops), and ops without a registered statistic (resize, crop_and_resize, gathers,
NMS, batch-norm): these are not dense matmul work, so the count is a floor, not an estimate of
everything the step does. For a training step, `fn` is loss + `tape.gradient` (the optimizer
update, ~5 FLOPs per parameter, is added separately by the caller).
"""
import collections
import time

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import graph_util_impl  # pylint: disable=g-direct-tensorflow-import
from tensorflow.python.framework import ops as tf_ops  # pylint: disable=g-direct-tensorflow-import
from tensorflow.python.framework import tensor_shape  # pylint: disable=g-direct-tensorflow-import
from tensorflow.python.profiler.internal import flops_registry  # pylint: disable=g-direct-tensorflow-import,unused-import

# Ops whose FLOPs are dense multiply-adds (what the matmul floor rate applies to).
MATMUL_LIKE = ('Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MatMul',
               'BatchMatMul', 'BatchMatMulV2', 'BatchMatMulV3', 'DepthwiseConv2dNative',
               'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter',
               'Conv2DTranspose')


def _register_depthwise_gradients():
  """FLOPs of the depthwise conv gradients (same as the forward depthwise conv)."""
  if getattr(_register_depthwise_gradients, 'done', False):
    return
  _register_depthwise_gradients.done = True

  def shape_of(graph, name):
    return graph_util_impl.tensor_shape_from_node_def_name(graph, name)

  try:
    @tf_ops.RegisterStatistics('DepthwiseConv2dNativeBackpropInput', 'flops')
    def _dw_input(graph, node):  # pylint: disable=unused-variable
      out = shape_of(graph, node.name)            # [B, H, W, C] (the conv input)
      kernel = shape_of(graph, node.input[1])     # [kh, kw, C, m]
      grad = shape_of(graph, node.input[2])       # [B, H', W', C * m]
      for s in (out, kernel, grad):
        s.assert_is_fully_defined()
      return tf_ops.OpStats('flops', int(2 * grad.num_elements() * kernel[0] * kernel[1]))

    @tf_ops.RegisterStatistics('DepthwiseConv2dNativeBackpropFilter', 'flops')
    def _dw_filter(graph, node):  # pylint: disable=unused-variable
      kernel = shape_of(graph, node.name)
      grad = shape_of(graph, node.input[2])
      kernel.assert_is_fully_defined()
      grad.assert_is_fully_defined()
      return tf_ops.OpStats('flops', int(2 * grad.num_elements() * kernel[0] * kernel[1]))
  except KeyError:  # already registered (a newer TF)
    pass


def _fill_missing_shapes(graph, run_meta):
  """Sets unknown static shapes from the run-time output shapes in `run_meta`."""
  filled = 0
  for dev_stat in run_meta.step_stats.dev_stats:
    for node_stat in dev_stat.node_stats:
      if not node_stat.output:
        continue
      try:
        op = graph.get_operation_by_name(node_stat.node_name)
      except KeyError:
        continue
      for out in node_stat.output:
        if out.slot >= len(op.outputs):
          continue
        tensor = op.outputs[out.slot]
        if tensor.shape.is_fully_defined():
          continue
        dims = [d.size for d in out.tensor_description.shape.dim]
        try:
          tensor.set_shape(tensor.shape.merge_with(tensor_shape.TensorShape(dims)))
          filled += 1
        except ValueError:
          pass
  return filled


# Ops whose output 0 has the shape of input 0 (used to carry run-time shapes across nodes that
# oneDNN fused and renamed, e.g. Conv2D + BiasAdd -> one node named after the BiasAdd).
_SAME_SHAPE_OPS = frozenset([
    'BiasAdd', 'Relu', 'Relu6', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'Identity', 'FusedBatchNorm',
    'FusedBatchNormV2', 'FusedBatchNormV3', 'LeakyRelu', 'Softplus', 'ReluGrad', 'Relu6Grad',
    'SigmoidGrad', 'TanhGrad', 'Neg', 'Square', 'Sqrt', 'Rsqrt', 'Exp', 'Log'])


def _propagate_shapes(graph, rounds=4):
  """Copies known shapes between input 0 and output 0 of shape-preserving ops, both ways."""
  filled = 0
  for _ in range(rounds):
    changed = 0
    for op in graph.get_operations():
      if op.type not in _SAME_SHAPE_OPS or not op.inputs or not op.outputs:
        continue
      a, b = op.inputs[0], op.outputs[0]
      for src, dst in ((a, b), (b, a)):
        if src.shape.is_fully_defined() and not dst.shape.is_fully_defined():
          try:
            dst.set_shape(dst.shape.merge_with(src.shape))
            changed += 1
          except ValueError:
            pass
    filled += changed
    if not changed:
      break
  return filled


def _scope(name, depth=2):
  """Name scope of an op for the per-component breakdown (gradients folded into the layer)."""
  parts = [p for p in name.split('/') if p != 'gradient_tape']
  return '/'.join(parts[:depth])


def _resource_value(handle):
  """Numpy value of the resource variable behind an eager handle tensor."""
  from tensorflow.python.ops import resource_variable_ops  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  dtypes = [tf.float32, tf.int64, tf.int32, tf.float64, tf.bool, tf.string]
  try:
    data = resource_variable_ops.get_eager_safe_handle_data(handle)
    if data.is_set and data.shape_and_type:
      dtypes.insert(0, tf.as_dtype(data.shape_and_type[0].dtype))
  except Exception:  # pylint: disable=broad-except
    pass
  for dtype in dtypes:
    try:
      return tf.raw_ops.ReadVariableOp(resource=handle, dtype=dtype).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, TypeError):
      continue
  raise ValueError('cannot read the captured variable %r' % handle)


def count_flops(fn, args, run_graph=True):
  """FLOPs of one call `fn(*args)` (args: nested structures of tensors / numpy arrays).

  `fn` may be a Python function (traced here) or a `tf.function` (its existing trace is reused).

  The traced graph is run once in a v1 Session: captured variables become fresh variables
  initialised with their current values (so batch-norm updates and other assignments stay
  valid), captured tensors are fed.

  Returns:
    dict: total_flops, matmul_flops (conv / matmul multiply-adds), by_type {op type: FLOPs},
    by_scope {top-2 name scope, forward + gradient: FLOPs} (25 largest),
    ops_missing_shape (ops with a FLOP statistic whose shapes stayed unknown; not counted),
    function_ops (ops calling function bodies, not descended into), shapes_filled, and from
    the traced Session run (grappler off, so slower than the tf.function; an attribution, not a
    timing): traced_run_seconds, op_seconds_by_type / op_seconds_by_scope (sum of op durations;
    ops fused by oneDNN are named after the last op of the fusion).
  """
  _register_depthwise_gradients()
  args = tf.nest.map_structure(tf.convert_to_tensor, args)
  if hasattr(fn, 'get_concrete_function'):  # a tf.function: reuse its trace
    concrete = fn.get_concrete_function(*args)
  else:
    concrete = tf.function(fn).get_concrete_function(*args)
  graph_def = concrete.graph.as_graph_def()
  flat_args = tf.nest.flatten(args)
  arg_names = [t.op.name for t in concrete.inputs[:len(flat_args)]]
  capture_names = [t.op.name for t in concrete.inputs[len(flat_args):]]
  captures = list(concrete.captured_inputs)
  assert len(capture_names) == len(captures), (len(capture_names), len(captures))
  feeds, variables = {}, {}
  nodes = {n.name: n for n in graph_def.node}
  for i, (name, value) in enumerate(zip(capture_names, captures)):
    if value.dtype == tf.resource:
      array = _resource_value(value)
      node = nodes[name]
      node.op = 'VarHandleOp'
      node.attr.clear()
      node.attr['dtype'].type = tf.as_dtype(array.dtype).as_datatype_enum
      node.attr['shape'].shape.CopyFrom(tf.TensorShape(array.shape).as_proto())
      node.attr['shared_name'].s = ('flops_capture_%d' % i).encode()
      node.attr['container'].s = b''
      variables[name] = array
    else:
      feeds[name] = value.numpy()
  for name, value in zip(arg_names, flat_args):
    feeds[name] = value.numpy()
  output_names = [t.name for t in concrete.outputs]
  graph = tf.Graph()
  with graph.as_default():
    tf.graph_util.import_graph_def(graph_def, name='')
    init_feeds, init_ops = {}, []
    for name, array in variables.items():
      value = tf.compat.v1.placeholder(tf.as_dtype(array.dtype), array.shape)
      init_ops.append(tf.raw_ops.AssignVariableOp(
          resource=graph.get_tensor_by_name(name + ':0'), value=value))
      init_feeds[value] = array
  # Only ops the outputs depend on run (the runtime prunes e.g. unused gradient branches).
  needed = set(node.name for node in tf.compat.v1.graph_util.extract_sub_graph(
      graph_def, [n.split(':')[0] for n in output_names]).node)
  filled, traced_seconds = 0, None
  time_by_type, time_by_scope = collections.Counter(), collections.Counter()
  if run_graph:
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    config.graph_options.optimizer_options.opt_level = tf.compat.v1.OptimizerOptions.L0
    run_meta = tf.compat.v1.RunMetadata()
    options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    with tf.compat.v1.Session(graph=graph, config=config) as sess:
      sess.run(init_ops, feed_dict=init_feeds)
      start = time.perf_counter()
      sess.run([graph.get_tensor_by_name(n) for n in output_names],
               feed_dict={graph.get_tensor_by_name(k + ':0'): v for k, v in feeds.items()},
               options=options, run_metadata=run_meta)
      traced_seconds = time.perf_counter() - start
    filled = _fill_missing_shapes(graph, run_meta)
    filled += _propagate_shapes(graph)
    for dev_stat in run_meta.step_stats.dev_stats:
      for node_stat in dev_stat.node_stats:
        label = node_stat.timeline_label
        op_type = label.split(' = ', 1)[1].split('(', 1)[0] if ' = ' in label else '?'
        micros = node_stat.all_end_rel_micros
        time_by_type[op_type] += micros / 1e6
        time_by_scope[_scope(node_stat.node_name)] += micros / 1e6
  by_type = collections.Counter()
  missing = collections.Counter()
  by_scope = collections.Counter()
  function_ops = 0
  skip = set(init_op.name for init_op in init_ops)
  for op in graph.get_operations():
    if op.name in skip or op.name not in needed:
      continue  # not part of fn's computation (pruned by the runtime, e.g. unused gradients)
    if op.type in ('While', 'StatelessWhile', 'If', 'StatelessIf', 'PartitionedCall',
                   'StatefulPartitionedCall'):
      function_ops += 1
    try:
      stats = tf_ops.get_stats_for_node_def(graph, op.node_def, 'flops')
    except ValueError:
      missing[op.type] += 1
      continue
    if stats is not None and stats.value:
      by_type[op.type] += int(stats.value)
      by_scope[_scope(op.name)] += int(stats.value)
  total = int(sum(by_type.values()))
  matmul = int(sum(v for k, v in by_type.items() if k in MATMUL_LIKE))
  return {'total_flops': total, 'matmul_flops': matmul,
          'by_type': dict(by_type.most_common()),
          'by_scope': dict(by_scope.most_common(25)),
          'ops_missing_shape': dict(missing), 'function_ops': function_ops,
          'shapes_filled': filled, 'traced_run_seconds': traced_seconds,
          'op_seconds_by_type': {k: round(v, 4) for k, v in time_by_type.most_common(25)},
          'op_seconds_by_scope': {k: round(v, 4) for k, v in time_by_scope.most_common(25)}}


def summarize(result):
  """One line: GFLOPs total, matmul share, missing-shape ops."""
  return '%.1f GFLOP (%.0f%% conv/matmul), %d ops without shapes' % (
      result['total_flops'] / 1e9, 100.0 * result['matmul_flops'] / max(result['total_flops'], 1),
      sum(result['ops_missing_shape'].values()))


if __name__ == '__main__':
  # Self-check: a conv + dense layer, forward and gradient.
  x = np.random.rand(2, 32, 32, 3).astype(np.float32)
  conv = tf.keras.layers.Conv2D(8, 3, padding='same')
  conv.build(x.shape)

  def forward_backward(images):
    with tf.GradientTape() as tape:
      y = tf.reduce_sum(conv(images))
    return [y] + tape.gradient(y, conv.trainable_variables)

  print(count_flops(forward_backward, (x,)))
  print("expected conv FLOPs: forward %d, + filter gradient = 2x" % (2 * 2 * 32 * 32 * 8 * 3 * 3 * 3))
