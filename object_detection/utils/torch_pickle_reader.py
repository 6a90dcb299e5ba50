"""Reads legacy (non-zip) PyTorch `.pth` files into numpy arrays WITHOUT importing torch, and
without ever executing code from the file.

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

Security: a pickle can name any importable callable (`os.system`, `builtins.eval`, ...) and have it
called while loading, so EVERY one of the five pickles goes through `_RestrictedUnpickler`. Pickles 1-3
and 5 are plain data and may name no global at all; pickle 4 may name only the tensor-rebuild
functions, the storage classes and `collections.OrderedDict`, each mapped to a local stand-in (nothing
is imported from the file's names). Tensor views are bounds-checked against their storage before any
memory is read. Anything else raises `RefusedGlobalError` / `PthReadError`, one line naming the file.

Only what is needed for state dicts is supported (float/int/bool storages, strided tensors,
OrderedDict / dict / list / tuple containers). The zip format of PyTorch >= 1.6 is refused (re-save
with `torch.save(obj, path, _use_new_zipfile_serialization=False)`).
"""

import _compat_pickle
import collections
import pickle
import struct

import numpy as np

from object_detection.utils.config_validation import ConfigError

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


class PthReadError(ConfigError):
  """A .pth file that cannot be read as a legacy PyTorch state dict; the message names the file."""


class RefusedGlobalError(PthReadError):
  """A pickle in the file names a global outside the allow-list (it may be malicious)."""


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
    """-> numpy copy of the view.

    Raises:
      ValueError: the view does not lie inside its storage (as_strided would read foreign memory).
    """
    data = self.storage.data
    if data is None:
      raise ValueError('storage %s has no data' % self.storage.key)
    ints = (self.offset,) + self.size + self.stride
    if not all(isinstance(v, int) and v >= 0 for v in ints) or len(self.size) != len(self.stride):
      raise ValueError('invalid tensor view offset=%r size=%r stride=%r'
                       % (self.offset, self.size, self.stride))
    if not self.size:
      if self.offset >= data.size:
        raise ValueError('scalar at offset %d outside its storage of %d elements'
                         % (self.offset, data.size))
      return np.array(data[self.offset])
    if 0 not in self.size:
      last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
      if last >= data.size:
        raise ValueError('tensor view size=%r stride=%r offset=%d reaches element %d of a storage of '
                         '%d' % (self.size, self.stride, self.offset, last, data.size))
    itemsize = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
    return np.array(view)  # copy: detach from the storage buffer


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
  del requires_grad, backward_hooks, metadata
  if not isinstance(storage, _LazyStorage):
    raise pickle.UnpicklingError('_rebuild_tensor_v2 called on %s, not a storage'
                                 % type(storage).__name__)
  return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  del requires_grad, backward_hooks
  return data


# The only globals a PyTorch state dict pickle needs, mapped to local stand-ins.
_STATE_DICT_GLOBALS = {
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('collections', 'OrderedDict'): collections.OrderedDict,
}
_STATE_DICT_GLOBALS.update({('torch', name): _StorageType(name) for name in _STORAGE_DTYPES})


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that resolves globals only from `allowed` (never imports) and storages by id."""

  def __init__(self, fileobj, path, what, allowed, storages=None):
    super().__init__(fileobj, encoding='utf-8')
    self._path = path
    self._what = what
    self._allowed = allowed
    self._storages = storages

  def find_class(self, module, name):
    # Protocol-2 pickles spell Python 3 names the Python 2 way (__builtin__.eval); translate as
    # pickle itself does, so the allow-list and the refusal use the real name.
    if (module, name) in _compat_pickle.NAME_MAPPING:
      module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
      module = _compat_pickle.IMPORT_MAPPING[module]
    try:
      return self._allowed[(module, name)]
    except (KeyError, TypeError):
      pass
    raise RefusedGlobalError(
        '%s: refused to load: its %s pickle names the global %s.%s, which a PyTorch state dict never '
        'needs (it could run code); the file was not loaded. Use only weight files you trust.'
        % (self._path, self._what, module, name))

  def persistent_load(self, pid):
    # ('storage', storage_type, root_key, location, numel[, view_metadata])
    if self._storages is None:
      raise pickle.UnpicklingError('unexpected persistent id in the %s pickle' % self._what)
    if (not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != 'storage'
        or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
        or not isinstance(pid[4], int) or pid[4] < 0):
      raise pickle.UnpicklingError('unsupported persistent id %r' % (pid,))
    storage_type, key, numel = pid[1], pid[2], pid[4]
    if len(pid) > 5 and pid[5] is not None:
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


def _read_storages(f, path, storages, keys):
  if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
    raise PthReadError('%s: the storage-key pickle is not a list of keys; not a legacy PyTorch file.'
                       % path)
  for key in keys:
    if key not in storages:
      raise PthReadError('%s: storage %s is listed but no tensor uses it.' % (path, key))
    storage = storages[key]
    (numel,) = struct.unpack('<q', f.read(8))
    if numel != storage.numel:
      raise PthReadError('%s: storage %s holds %d elements, its tensors declare %d.'
                         % (path, key, numel, storage.numel))
    itemsize = np.dtype(storage.dtype).itemsize
    buf = f.read(numel * itemsize)
    if len(buf) != numel * itemsize:
      raise PthReadError('%s: truncated data for storage %s.' % (path, key))
    storage.data = np.frombuffer(buf, dtype=np.dtype(storage.dtype).newbyteorder('<'))


def load(path):
  """Loads a legacy-format PyTorch `.pth` file without executing anything from it.

  Args:
    path: str, path to the file.

  Returns:
    The pickled object with every tensor replaced by a numpy array (same shape and dtype, e.g. float32
    conv kernels [out, in, kh, kw] in PyTorch layout).

  Raises:
    RefusedGlobalError: one of the file's pickles names a global outside the allow-list (e.g.
      `posix.system`, `builtins.eval`); nothing from it was called.
    PthReadError: the file is missing, not a legacy PyTorch pickle (e.g. the zip format of
      PyTorch >= 1.6), truncated or uses unsupported features.
    Both are ConfigErrors (ValueErrors) whose one-line message names the file.
  """
  try:
    f = open(path, 'rb')
  except OSError as e:
    raise PthReadError('%s: cannot open the weight file: %s.' % (path, e.strerror or e)) from e
  with f:
    if f.read(4)[:2] == b'PK':
      raise PthReadError('%s is a zip-format PyTorch file (PyTorch >= 1.6); only the legacy format is '
                         'supported: re-save it with torch.save(state_dict, path, '
                         '_use_new_zipfile_serialization=False).' % path)
    f.seek(0)

    def data_pickle(what):
      return _RestrictedUnpickler(f, path, what, allowed={}).load()

    try:
      magic = data_pickle('magic-number')
      if magic != _MAGIC:
        raise PthReadError('%s: bad magic number %r, not a legacy PyTorch file.' % (path, magic))
      version = data_pickle('protocol-version')
      if version != _PROTOCOL_VERSION:
        raise PthReadError('%s: unsupported PyTorch protocol version %r.' % (path, version))
      sys_info = data_pickle('sys-info')
      if not isinstance(sys_info, dict) or not sys_info.get('little_endian', True):
        raise PthReadError('%s: only little-endian legacy PyTorch files are supported.' % path)
      storages = {}
      obj = _RestrictedUnpickler(f, path, 'object', _STATE_DICT_GLOBALS, storages).load()
      keys = data_pickle('storage-key')
      _read_storages(f, path, storages, keys)
      return _materialize(obj)
    except PthReadError:
      raise
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, AttributeError, TypeError,
            ValueError, struct.error, MemoryError, RecursionError) as e:
      # A crafted file can make the pickle machinery fail in many ways; all are "not readable".
      raise PthReadError('%s: cannot read as a legacy PyTorch state dict: %s: %s'
                         % (path, type(e).__name__, str(e).splitlines()[0] if str(e) else '')) from e
