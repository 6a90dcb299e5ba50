"""Reading a .pth weight file never executes code from it.

A legacy PyTorch file is five pickles (magic number, protocol version, sys info, the state dict,
storage keys) followed by raw storages. Each test file here is written without torch by `_write_pth`,
the same layout torch.save(..., _use_new_zipfile_serialization=False) writes. Then each of the five
pickles in turn is replaced by one whose `__reduce__` would create a marker file (through exec,
os.system, subprocess, eval and functools.partial): the reader must refuse each with one line naming
the file and the refused global, and the marker must never appear. That each payload is live is
checked too (plain `pickle.loads` of the same bytes does create its marker), so the test would fail
on a reader that used plain pickle for any of the five.
"""
import builtins
import collections
import functools
import io
import os
import pickle
import shlex
import struct
import subprocess
import sys
import types

import numpy as np
import pytest

from object_detection.utils import torch_pickle_reader
from object_detection.utils.config_validation import ConfigError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONVERTER = os.path.join(REPO_ROOT, 'tools', 'convert_efficientnet_lite0.py')
MAGIC = 0x1950a86a20f9469cfc6c
SYS_INFO = {'protocol_version': 1001, 'little_endian': True,
            'type_sizes': {'short': 2, 'int': 4, 'long': 4}}
PICKLES = ('magic-number', 'protocol-version', 'sys-info', 'object', 'storage-key')
_DTYPE_STORAGE = {np.dtype(np.float32): 'FloatStorage', np.dtype(np.int64): 'LongStorage'}


# ------------------------------------------------------------------- a torch-free legacy .pth writer


class _Storage(object):

  def __init__(self, key, data):
    self.key = key
    self.data = np.ascontiguousarray(data)


class _Tensor(object):

  def __init__(self, storage, offset, size, stride):
    self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch):
  """Modules `torch` / `torch._utils` so that pickle writes torch's global names, as torch.save does."""
  torch = types.ModuleType('torch')
  utils = types.ModuleType('torch._utils')

  def _rebuild_tensor_v2(*args):
    raise AssertionError('never called: only pickled by name')

  _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = 'torch._utils', '_rebuild_tensor_v2'
  utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # pylint: disable=protected-access
  torch._utils = utils  # pylint: disable=protected-access
  for name in _DTYPE_STORAGE.values():
    setattr(torch, name, type(name, (), {'__module__': 'torch'}))
  monkeypatch.setitem(sys.modules, 'torch', torch)
  monkeypatch.setitem(sys.modules, 'torch._utils', utils)
  monkeypatch.setattr(_Tensor, '__reduce__', lambda self: (_rebuild_tensor_v2, self.args),
                      raising=False)
  return torch


def _object_pickle(obj, torch):

  class Pickler(pickle.Pickler):

    def persistent_id(self, o):
      if isinstance(o, _Storage):
        storage_class = getattr(torch, _DTYPE_STORAGE[o.data.dtype])
        return ('storage', storage_class, o.key, 'cpu', o.data.size, None)
      return None

  buf = io.BytesIO()
  Pickler(buf, protocol=2).dump(obj)
  return buf.getvalue()


def _write_pth(path, state_dict, storages, torch, replace=None):
  """Writes a legacy .pth; `replace` = (index of one of the five pickles, bytes to write instead)."""
  parts = [pickle.dumps(MAGIC, protocol=2), pickle.dumps(1001, protocol=2),
           pickle.dumps(SYS_INFO, protocol=2), _object_pickle(state_dict, torch),
           pickle.dumps([s.key for s in storages], protocol=2)]
  if replace is not None:
    parts[replace[0]] = replace[1]
  with open(path, 'wb') as f:
    for part in parts:
      f.write(part)
    for s in storages:
      f.write(struct.pack('<q', s.data.size))
      f.write(s.data.astype(s.data.dtype.newbyteorder('<')).tobytes())


def _genuine(torch):
  """A small state dict: a conv kernel, its transposed view, a strided view at an offset, a scalar."""
  weights = _Storage('0', np.arange(6, dtype=np.float32) * 0.5)
  tail = _Storage('1', np.arange(10, dtype=np.float32) - 3.0)
  count = _Storage('2', np.array([7], np.int64))
  state_dict = collections.OrderedDict([
      ('conv.weight', _Tensor(weights, 0, (2, 3), (3, 1))),
      ('conv.weight_t', _Tensor(weights, 0, (3, 2), (1, 3))),
      ('tail', _Tensor(tail, 4, (3,), (2,))),
      ('bn.num_batches_tracked', _Tensor(count, 0, (), ())),
  ])
  del torch
  return state_dict, [weights, tail, count]


def test_genuine_legacy_file_loads_exactly(tmp_path, fake_torch):
  path = str(tmp_path / 'good.pth')
  state_dict, storages = _genuine(fake_torch)
  _write_pth(path, state_dict, storages, fake_torch)
  loaded = torch_pickle_reader.load(path)
  assert list(loaded) == ['conv.weight', 'conv.weight_t', 'tail', 'bn.num_batches_tracked']
  kernel = np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5
  np.testing.assert_array_equal(loaded['conv.weight'], kernel)
  assert loaded['conv.weight'].dtype == np.float32
  np.testing.assert_array_equal(loaded['conv.weight_t'], kernel.T)
  np.testing.assert_array_equal(loaded['tail'], [1.0, 3.0, 5.0])
  assert loaded['bn.num_batches_tracked'] == 7 and loaded['bn.num_batches_tracked'].dtype == np.int64


# ------------------------------------------------------------------------------ malicious payloads


class _Payload(object):
  """Pickles as `fn(*args)`: what an attacker puts in a pickle."""

  def __init__(self, fn, args):
    self.fn, self.args = fn, args

  def __reduce__(self):
    return self.fn, self.args


def _payloads(marker):
  """One payload per pickle of the file, each creating `marker` when unpickled with plain pickle."""
  touch_code = 'open(%r, "w").close()' % marker
  return [
      (_Payload(builtins.exec, (touch_code,)), 'builtins.exec'),
      (_Payload(os.system, ('touch %s' % shlex.quote(marker),)), '%s.system' % os.system.__module__),
      (_Payload(subprocess.call, (['touch', marker],)), 'subprocess.call'),
      (_Payload(builtins.eval, (touch_code,)), 'builtins.eval'),
      (_Payload(functools.partial(os.system, 'touch %s' % shlex.quote(marker)), ()),
       'functools.partial'),
  ]


def _malicious_pickle(index, payload, torch):
  if index == 3:  # The state dict itself: a genuine tensor first, so allowed globals come before.
    state_dict, _ = _genuine(torch)
    state_dict['evil'] = payload
    return _object_pickle(state_dict, torch)
  return pickle.dumps(payload, protocol=2)


@pytest.mark.parametrize('index', range(5), ids=PICKLES)
def test_each_pickle_of_a_malicious_file_is_refused(tmp_path, fake_torch, index):
  marker = str(tmp_path / 'pwned')
  payload, refused_global = _payloads(marker)[index]
  evil = _malicious_pickle(index, payload, fake_torch)

  # The payload is live: plain pickle runs it (in a sandbox path of its own).
  live_marker = str(tmp_path / 'live')
  live_payload, _ = _payloads(live_marker)[index]
  live = pickle.dumps(live_payload, protocol=2)
  pickle.loads(live)
  assert os.path.exists(live_marker), 'payload %d is not live; the test would prove nothing' % index

  path = str(tmp_path / ('evil_%s.pth' % PICKLES[index]))
  state_dict, storages = _genuine(fake_torch)
  _write_pth(path, state_dict, storages, fake_torch, replace=(index, evil))
  with pytest.raises(torch_pickle_reader.RefusedGlobalError) as info:
    torch_pickle_reader.load(path)
  message = str(info.value)
  assert isinstance(info.value, ConfigError)
  assert '\n' not in message
  assert message.startswith(path + ': refused to load: its %s pickle names the global %s,'
                            % (PICKLES[index], refused_global)), message
  assert not os.path.exists(marker)


def test_view_outside_its_storage_is_refused(tmp_path, fake_torch):
  """A crafted stride / offset would make numpy read memory outside the file's data."""
  storage = _Storage('0', np.zeros(4, np.float32))
  state_dict = collections.OrderedDict([('w', _Tensor(storage, 2, (1000,), (1000,)))])
  path = str(tmp_path / 'overread.pth')
  _write_pth(path, state_dict, [storage], fake_torch)
  with pytest.raises(torch_pickle_reader.PthReadError, match='reaches element 999002 of a storage of 4'):
    torch_pickle_reader.load(path)


def test_unreadable_files_get_one_line_naming_the_file(tmp_path):
  missing = str(tmp_path / 'missing.pth')
  with pytest.raises(torch_pickle_reader.PthReadError) as info:
    torch_pickle_reader.load(missing)
  assert str(info.value) == '%s: cannot open the weight file: No such file or directory.' % missing
  zipped = tmp_path / 'new_format.pth'
  zipped.write_bytes(b'PK\x03\x04' + b'\0' * 40)
  with pytest.raises(torch_pickle_reader.PthReadError, match='zip-format .* re-save it with'):
    torch_pickle_reader.load(str(zipped))
  truncated = tmp_path / 'truncated.pth'
  truncated.write_bytes(pickle.dumps(MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)[:3])
  with pytest.raises(torch_pickle_reader.PthReadError) as info:
    torch_pickle_reader.load(str(truncated))
  assert str(info.value).startswith('%s: cannot read as a legacy PyTorch state dict:' % truncated)
  assert '\n' not in str(info.value)


def test_converter_refuses_malicious_file_with_one_line_exit_2(tmp_path, fake_torch):
  marker = str(tmp_path / 'pwned')
  payload, refused_global = _payloads(marker)[1]
  path = str(tmp_path / 'BAD.pth')
  state_dict, storages = _genuine(fake_torch)
  state_dict['evil'] = payload
  _write_pth(path, state_dict, storages, fake_torch)
  output_dir = tmp_path / 'out'
  proc = subprocess.run([sys.executable, CONVERTER, '--output_dir=%s' % output_dir,
                         '--pth_path=%s' % path], cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert proc.stdout == ''
  assert proc.stderr.splitlines() == [
      'error: %s: refused to load: its object pickle names the global %s, which a PyTorch state dict '
      'never needs (it could run code); the file was not loaded. Use only weight files you trust.'
      % (path, refused_global)]
  assert not os.path.exists(marker)
  assert not output_dir.exists()
  assert not [n for n in os.listdir(tmp_path) if n.startswith('.lite0_')]
