"""Static / dynamic shape helpers (TF OD API `object_detection/utils/shape_utils.py`).

Same public functions, arguments and return structures as the TF OD API module, written for TF2
(eager and `tf.function`). Shapes are returned as Python lists whose entries are ints where the
static shape knows them and scalar int32 tensors where it does not, so `tf.reshape` / `tf.zeros`
keep every static dimension they can.
"""

import tensorflow as tf


def get_dim_as_int(dim):
  """Returns a TensorShape dimension as an int (or None when unknown).

  Matches `static_shape.get_dim_as_int` (re-exported by the TF OD API's shape_utils): accepts a
  TF1 `Dimension` (has `.value`) or the plain int / None a TF2 `TensorShape` yields.
  """
  return getattr(dim, 'value', dim)


def _is_tensor(t):
  return isinstance(t, (tf.Tensor, tf.SparseTensor, tf.Variable))


def _set_dim_0(t, d0):
  static = t.get_shape().as_list()
  static[0] = d0
  t.set_shape(static)
  return t


def pad_tensor(t, length):
  """Zero-pads `t` along dimension 0 up to `length` (assumes length >= t.shape[0]).

  Args:
    t: tensor of rank >= 1.
    length: int, scalar int tensor, or int tensor of shape [1].

  Returns:
    `t` padded with zeros to first dimension `length`.
  """
  rank = len(t.get_shape())
  if isinstance(length, int) or length.get_shape().ndims == 0:
    extra = length - tf.shape(t)[0]
  else:
    extra = length[0] - tf.shape(t)[0]
  paddings = [[0, extra]] + [[0, 0]] * (rank - 1)
  return tf.pad(t, paddings)


def clip_tensor(t, length):
  """Keeps the first `length` rows of `t` (assumes length <= t.shape[0]).

  The static first dimension is set when `length` is a Python int.
  """
  clipped = tf.gather(t, tf.range(length))
  if not _is_tensor(length):
    clipped = _set_dim_0(clipped, length)
  return clipped


def pad_or_clip_tensor(t, length):
  """Zero-pads or clips `t` along dimension 0 to `length` (int or scalar int tensor).

  Returns:
    tensor of shape [length] + t.shape[1:], static in dim 0 when `length` is an int.
  """
  return pad_or_clip_nd(t, [length] + t.shape.as_list()[1:])


def pad_or_clip_nd(tensor, output_shape):
  """Clips then zero-pads `tensor` (at the end of every dimension) to `output_shape`.

  Args:
    tensor: tensor of any rank.
    output_shape: list with one entry per dimension: int, scalar int tensor, or None (keep the
      dimension as it is).

  Returns:
    tensor of shape `output_shape` (static where the entries are ints / None-with-static-input).
  """
  in_shape = tf.shape(tensor)
  sizes = []
  for i, target in enumerate(output_shape):
    if target is None:
      sizes.append(-1)
    else:
      # Slice size -1 keeps the whole dimension when it is not longer than the target.
      sizes.append(tf.where(in_shape[i] - target > 0, target, -1))
  clipped = tf.slice(tensor, begin=tf.zeros(len(sizes), dtype=tf.int32), size=sizes)

  clipped_shape = tf.shape(clipped)
  trailing = [0 if target is None else target - clipped_shape[i]
              for i, target in enumerate(output_shape)]
  paddings = tf.stack([tf.zeros(len(trailing), dtype=tf.int32), trailing], axis=1)
  padded = tf.pad(clipped, paddings=paddings)
  padded.set_shape([None if isinstance(d, tf.Tensor) else d for d in output_shape])
  return padded


def combined_static_and_dynamic_shape(tensor):
  """Returns the shape of `tensor` as a list: static ints where known, scalar tensors elsewhere."""
  static = tensor.shape.as_list()
  dynamic = tf.shape(tensor)
  return [dim if dim is not None else dynamic[i] for i, dim in enumerate(static)]


def static_or_dynamic_map_fn(fn, elems, dtype=None, parallel_iterations=32, back_prop=True):
  """Maps `fn` over dimension 0 of `elems`: a Python loop when the batch size is static.

  With a static (and, for a list, common) first dimension the inputs are unstacked, `fn` is
  called once per element and the results are stacked, which keeps the graph acyclic; otherwise
  `tf.map_fn` is used.

  Args:
    fn: callable taking one element (a tensor, or a tuple of tensors when `elems` is a list) and
      returning a tensor or a list of tensors.
    elems: tensor or list of tensors, unpacked along dimension 0.
    dtype: output dtype (or list of dtypes) of `fn`, needed by `tf.map_fn` when the output
      structure differs from `elems`.
    parallel_iterations: `tf.map_fn` parallelism (dynamic path only).
    back_prop: False stops gradients through the dynamic path's outputs.

  Returns:
    a tensor or list of tensors stacked along a new dimension 0.

  Raises:
    ValueError: if `elems` is not a tensor / list of tensors, or `fn` does not return a tensor or
      a list of tensors.
  """
  def dynamic():
    out = tf.map_fn(fn, elems, fn_output_signature=dtype,
                    parallel_iterations=parallel_iterations)
    if not back_prop:
      out = tf.nest.map_structure(tf.stop_gradient, out)
    return out

  if isinstance(elems, list):
    for elem in elems:
      if not isinstance(elem, tf.Tensor):
        raise ValueError('`elems` must be a Tensor or list of Tensors.')
    shapes = [elem.shape.as_list() for elem in elems]
    for shape in shapes:
      if not shape or not shape[0] or shape[0] != shapes[0][0]:
        return dynamic()
    outputs = [fn(args) for args in zip(*[tf.unstack(elem) for elem in elems])]
  else:
    if not isinstance(elems, tf.Tensor):
      raise ValueError('`elems` must be a Tensor or list of Tensors.')
    shape = elems.shape.as_list()
    if not shape or not shape[0]:
      return dynamic()
    outputs = [fn(arg) for arg in tf.unstack(elems)]

  if all(isinstance(out, tf.Tensor) for out in outputs):
    return tf.stack(outputs)
  if all(isinstance(out, list) and all(isinstance(t, tf.Tensor) for t in out)
         for out in outputs):
    return [tf.stack(group) for group in zip(*outputs)]
  raise ValueError('`fn` should return a Tensor or a list of Tensors.')


def check_min_image_dim(min_dim, image_tensor):
  """Checks that a [batch, height, width, channels] image batch is at least `min_dim` x `min_dim`.

  Returns:
    `image_tensor` (behind a runtime assertion when height or width is not static).

  Raises:
    ValueError: if the static height or width is smaller than `min_dim`.
  """
  static = image_tensor.get_shape()
  static.assert_has_rank(4)
  height, width = get_dim_as_int(static[1]), get_dim_as_int(static[2])
  if height is None or width is None:
    dynamic = tf.shape(image_tensor)
    check = tf.debugging.Assert(
        tf.logical_and(tf.greater_equal(dynamic[1], min_dim),
                       tf.greater_equal(dynamic[2], min_dim)),
        ['image size must be >= {} in both height and width.'.format(min_dim)])
    with tf.control_dependencies([check]):
      return tf.identity(image_tensor)
  if height < min_dim or width < min_dim:
    raise ValueError('image size must be >= %d in both height and width; image dim = %d,%d' %
                     (min_dim, height, width))
  return image_tensor


def _all_ints(shape):
  return all(isinstance(d, int) for d in shape)


def assert_shape_equal(shape_a, shape_b):
  """Checks two shape lists (ints and/or scalar tensors) for equality.

  Returns:
    `tf.no_op()` when both shapes are static (and equal); otherwise a runtime assertion (which in
    eager mode has already run).

  Raises:
    ValueError: if both shapes are static and differ.
  """
  if _all_ints(shape_a) and _all_ints(shape_b):
    if shape_a != shape_b:
      raise ValueError('Unequal shapes {}, {}'.format(shape_a, shape_b))
    return tf.no_op()
  return tf.debugging.assert_equal(shape_a, shape_b)


def assert_shape_equal_along_first_dimension(shape_a, shape_b):
  """Like `assert_shape_equal` but compares only the first entries of the two shapes."""
  if isinstance(shape_a[0], int) and isinstance(shape_b[0], int):
    if shape_a[0] != shape_b[0]:
      raise ValueError('Unequal first dimension {}, {}'.format(shape_a[0], shape_b[0]))
    return tf.no_op()
  return tf.debugging.assert_equal(shape_a[0], shape_b[0])


def assert_box_normalized(boxes, maximum_normalized_coordinate=1.1):
  """Returns an assertion that all coordinates of `boxes` are in [0, maximum_normalized_coordinate].
  """
  return tf.debugging.Assert(
      tf.logical_and(tf.less_equal(tf.reduce_max(boxes), maximum_normalized_coordinate),
                     tf.greater_equal(tf.reduce_min(boxes), 0)),
      [boxes])


def flatten_dimensions(inputs, first, last):
  """Merges dimensions [first, last) of `inputs` into one.

  Raises:
    ValueError: if `first` >= rank or `last` > rank.
  """
  ndims = inputs.shape.ndims
  if first >= ndims or last > ndims:
    raise ValueError('`first` and `last` must be less than inputs.shape.ndims. found {} and {} '
                     'respectively while ndims is {}'.format(first, last, ndims))
  shape = combined_static_and_dynamic_shape(inputs)
  merged = tf.reduce_prod(shape[first:last], keepdims=True)
  return tf.reshape(inputs, tf.concat([shape[:first], merged, shape[last:]], axis=0))


def flatten_first_n_dimensions(inputs, n):
  """[D0, ..., D(n-1), Dn, ...] -> [D0 * ... * D(n-1), Dn, ...]."""
  return flatten_dimensions(inputs, first=0, last=n)


def expand_first_dimension(inputs, dims):
  """[D0, D1, ...] -> dims + [D1, ...] (asserts prod(dims) == D0).

  Args:
    inputs: tensor of rank >= 1.
    dims: list of ints / scalar int tensors whose product is D0.
  """
  shape = combined_static_and_dynamic_shape(inputs)
  target = tf.stack(dims + shape[1:])
  check = tf.debugging.assert_equal(
      shape[0], tf.reduce_prod(tf.stack(dims)),
      message='First dimension of `inputs` cannot be expanded into provided `dims`')
  with tf.control_dependencies([check] if check is not None else []):
    return tf.reshape(inputs, target)


def resize_images_and_return_shapes(inputs, image_resizer_fn):
  """Resizes each image of a batch and returns the resized batch and the true image shapes.

  Args:
    inputs: float32 [batch, height, width, channels].
    image_resizer_fn: callable(image [h, w, c]) -> (resized float32 [h', w', c], int32 [3] shape
      of the resized image content).

  Returns:
    resized_inputs: float32 [batch, h', w', c].
    true_image_shapes: int32 [batch, 3].

  Raises:
    ValueError: if `inputs` is not float32.
  """
  if inputs.dtype is not tf.float32:
    raise ValueError('`resize_images_and_return_shapes` expects a tf.float32 tensor')
  outputs = static_or_dynamic_map_fn(image_resizer_fn, elems=inputs, dtype=[tf.float32, tf.int32])
  return outputs[0], outputs[1]
