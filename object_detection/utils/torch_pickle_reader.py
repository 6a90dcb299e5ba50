"""Reads legacy (non-zip) PyTorch `.pth` files into numpy arrays WITHOUT importing torch.

Legacy format (torch.save with `_use_new_zipfile_serialization=False`, default before PyTorch 1.6), as
written by `torch/serialization.py::_legacy_save`, is a sequence of pickles followed by raw storages:

  1. pickle: magic number 0x1950a86a20f9469cfc6c
  2. pickle: protocol version (1001)
  3. pickle: sys info dict (little_endian, type sizes)
  4. pickle: the object itself (e.g. an OrderedDict state dict). Tensors are pickled as
     `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` where
     `storage` is a persistent id tuple ('storage', storage_type, key, location, numel[, view_metadata]).
  5. pickle: list of storage keys, in the order their data follows.
  6. for each key: int64 little-endian element count, then numel * itemsize raw little-endian bytes.

Only what is needed for state dicts is supported (float/int/bool storages, strided tensors,
OrderedDict / dict / list / tuple containers). Anything else raises ValueError naming the file.
"""

import collections
import pickle
import struct

import numpy as np

_MAGIC = 0x1950a86a20f9469cfc6c
_PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    'FloatStorage': np.float32,
    'DoubleStorage': np.float64,
    'HalfStorage': np.float16,
    'LongStorage': np.int64,
    'IntStorage': np.int32,
    'ShortStorage': np.int16,
    'CharStorage': np.int8,
    'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}


class _StorageType(object):
  """Stands in for torch.<X>Storage classes referenced in the pickle."""

  def __init__(self, name):
    self.name = name
    self.dtype = _STORAGE_DTYPES[name]


class _LazyStorage(object):
  """A storage whose data is filled in after the object pickle has been read."""

  def __init__(self, key, dtype, numel):
    self.key = key
    self.dtype = dtype
    self.numel = numel
    self.data = None


class _LazyTensor(object):
  """A tensor view (storage, offset, size, stride) materialized once storages are read."""

  def __init__(self, storage, offset, size, stride):
    self.storage = storage
    self.offset = offset
    self.size = tuple(size)
    self.stride = tuple(stride)

  def materialize(self):
    data = self.storage.data
    itemsize = data.dtype.itemsize
    if not self.size:
      return np.array(data[self.offset])
    view = np.lib.stride_tricks.as_strided(
        data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
    return np.array(view)  # copy: detach from the storage buffer


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
  del requires_grad, backward_hooks, metadata
  return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  del requires_grad, backward_hooks
  return data


class _Unpickler(pickle.Unpickler):
  """Maps torch globals to local stand-ins; collects storages by persistent id."""

  def __init__(self, fileobj, storages):
    super().__init__(fileobj, encoding='utf-8')
    self._storages = storages

  def find_class(self, module, name):
    if module == 'torch._utils' and name == '_rebuild_tensor_v2':
      return _rebuild_tensor_v2
    if module == 'torch._utils' and name == '_rebuild_parameter':
      return _rebuild_parameter
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    if module == 'collections' and name == 'OrderedDict':
      return collections.OrderedDict
    raise pickle.UnpicklingError('unsupported global %s.%s in a PyTorch pickle' % (module, name))

  def persistent_load(self, pid):
    # ('storage', storage_type, root_key, location, numel, view_metadata)
    if not isinstance(pid, tuple) or pid[0] != 'storage':
      raise pickle.UnpicklingError('unsupported persistent id %r' % (pid,))
    storage_type, key, _, numel = pid[1], pid[2], pid[3], pid[4]
    view_metadata = pid[5] if len(pid) > 5 else None
    if view_metadata is not None:
      raise pickle.UnpicklingError('storage views are not supported (key %s)' % key)
    if key not in self._storages:
      self._storages[key] = _LazyStorage(key, storage_type.dtype, numel)
    return self._storages[key]


def _materialize(obj):
  if isinstance(obj, _LazyTensor):
    return obj.materialize()
  if isinstance(obj, collections.OrderedDict):
    return collections.OrderedDict((k, _materialize(v)) for k, v in obj.items())
  if isinstance(obj, dict):
    return {k: _materialize(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialize(v) for v in obj)
  return obj


def load(path):
  """Loads a legacy-format PyTorch `.pth` file.

  Args:
    path: str, path to the file.

  Returns:
    The pickled object with every tensor replaced by a numpy array (same shape and dtype, e.g. float32
    conv kernels [out, in, kh, kw] in PyTorch layout).

  Raises:
    ValueError: the file is not a legacy PyTorch pickle (e.g. the zip format of PyTorch >= 1.6), or uses
      unsupported features. The message names the file.
  """
  with open(path, 'rb') as f:
    if f.read(4)[:2] == b'PK':
      raise ValueError('%s is a zip-format PyTorch file; only the legacy (non-zip) format is supported.'
                       % path)
    f.seek(0)
    try:
      magic = pickle.load(f)
      if magic != _MAGIC:
        raise ValueError('%s: bad magic number %r, not a legacy PyTorch file.' % (path, magic))
      version = pickle.load(f)
      if version != _PROTOCOL_VERSION:
        raise ValueError('%s: unsupported PyTorch protocol version %r.' % (path, version))
      sys_info = pickle.load(f)
      if not sys_info.get('little_endian', True):
        raise ValueError('%s: big-endian PyTorch files are not supported.' % path)
      storages = {}
      obj = _Unpickler(f, storages).load()
      keys = pickle.load(f)
      for key in keys:
        storage = storages[key]
        (numel,) = struct.unpack('<q', f.read(8))
        itemsize = np.dtype(storage.dtype).itemsize
        buf = f.read(numel * itemsize)
        if len(buf) != numel * itemsize:
          raise ValueError('%s: truncated data for storage %s.' % (path, key))
        storage.data = np.frombuffer(buf, dtype=np.dtype(storage.dtype).newbyteorder('<'))
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error) as e:
      raise ValueError('%s: cannot read as a legacy PyTorch pickle: %s' % (path, e)) from e
  return _materialize(obj)
