"""The converter's output folder: which files belong to it, and replacing it whole.

A conversion writes every file (shards, label map, summary) into a hidden temporary folder beside
the output folder (same parent, same file system), then swaps the two folders with one atomic
rename-exchange (Linux `renameat2(RENAME_EXCHANGE)`). So whatever moment a run is killed at
(SIGKILL included), `--output_dir` holds the complete old output or the complete new one, never a
mix, and no shard of an earlier run with another --num_shards survives. Where the exchange is not
available, the old folder is renamed aside first and the new one renamed in; a run killed between
those two renames leaves the old folder aside, and the next run puts it back.

Temporary folders are named `.<output name>.tmp-<pid>-<random>` (hidden, and outside the output
folder, so `<output_dir>/coco_train.record-*` never matches them); the next run removes those whose
process is gone.

No TensorFlow here: the command line checks the output folder before it imports TensorFlow.
"""
import ctypes
import errno
import logging
import os
import re
import secrets
import shutil

from object_detection.dataset_tools.coco_annotations import ConversionError

# The TF OD API's output names: <output_dir>/coco_<split>.record-00000-of-00001.
SPLIT_RECORD_NAMES = {
    'train': 'coco_train.record',
    'val': 'coco_val.record',
    'testdev': 'coco_testdev.record',
}
LABEL_MAP_NAME = 'label_map.pbtxt'
SUMMARY_NAME = 'conversion_summary.txt'

# The record-name prefixes of the converters: coco_train.record, oid_val.record, ...
RECORD_PREFIXES = ('coco', 'oid', 'instances', 'semantic')
SPLITS = ('train', 'val', 'test', 'testdev')

# Every name a converter writes (and ever wrote): a folder holding only these is a converter's
# output, which a new run replaces without --overwrite.
_OWN_NAME = re.compile(r'^((%s)_(%s)\.record-\d{5}-of-\d{5}|%s|%s)$' % (
    '|'.join(RECORD_PREFIXES), '|'.join(SPLITS), re.escape(LABEL_MAP_NAME),
    re.escape(SUMMARY_NAME)))

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class OutputWriteError(RuntimeError):
  """Writing or swapping in the new output failed; the old output is unchanged."""


def is_converter_file(name):
  """True for a file name this converter writes into its output folder."""
  return bool(_OWN_NAME.match(name))


def _temp_prefix(real_output, kind):
  return '.%s.%s-' % (os.path.basename(real_output), kind)


def _is_inside(path, folder):
  return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_dir(output_dir, overwrite=False, inputs=()):
  """Checks that the conversion may replace `output_dir` whole.

  Args:
    output_dir: the --output_dir value (may not exist yet; a symlink is followed).
    overwrite: allow replacing a folder that holds files this converter did not write.
    inputs: image folders and annotation files of the conversion.

  Returns:
    the real path of the output folder.

  Raises:
    ConversionError: `output_dir` is empty, a file, the file system root, a folder directly under
      it, the home folder, the current folder or one of its parents, or contains an input; or it
      holds files the converter did not write and `overwrite` is false; or its parent cannot be
      written. The message names the folder and what to do.
  """
  if not output_dir:
    raise ConversionError('--output_dir is empty: give the folder to write the records to '
                          '(e.g. --output_dir=data/coco_records).')
  real = os.path.realpath(output_dir)
  if os.path.exists(real) and not os.path.isdir(real):
    raise ConversionError('--output_dir=%s is a file, not a folder: give a folder path.'
                          % output_dir)
  cwd = os.path.realpath(os.getcwd())
  home = os.path.realpath(os.path.expanduser('~'))
  if (os.path.dirname(real) == real or os.path.dirname(os.path.dirname(real)) ==
      os.path.dirname(real) or real == home or _is_inside(cwd, real)):
    raise ConversionError(
        '--output_dir=%s is the file system root, a folder directly under it, the home folder '
        'or (a parent of) the current folder: the converter replaces the whole output folder, '
        'so give it a folder of its own (e.g. %s).'
        % (output_dir, os.path.join(output_dir, 'coco_records')))
  for path in inputs:
    if path and _is_inside(os.path.realpath(path), real):
      raise ConversionError(
          '--output_dir=%s contains the input %s: the converter replaces the whole output '
          'folder, which would delete it; write the records to another folder.'
          % (output_dir, path))
  if os.path.isdir(real) and not overwrite:
    foreign = sorted(n for n in os.listdir(real) if not is_converter_file(n))
    if foreign:
      raise ConversionError(
          '--output_dir=%s holds %d file(s) this converter did not write (%s): give a new or '
          'empty folder, or pass --overwrite to replace the whole folder (deleting them).'
          % (output_dir, len(foreign), ', '.join(repr(n) for n in foreign[:3]) +
             (', ...' if len(foreign) > 3 else '')))
  parent = os.path.dirname(real)
  if os.path.isdir(parent) and not os.access(parent, os.W_OK | os.X_OK):
    raise ConversionError(
        'Cannot write in %s, the parent of --output_dir=%s (the new output is built beside the '
        'old one, then swapped in): choose a folder in a writable place.' % (parent, output_dir))
  return real


def _process_alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def clean_leftovers(real_output):
  """Removes the temporary folders of killed runs beside `real_output`; restores a set-aside one.

  Returns:
    list of (path, what was done) for the log.
  """
  parent = os.path.dirname(real_output)
  if not os.path.isdir(parent):
    return []
  done = []
  entries = sorted(os.listdir(parent))
  for kind in ('old', 'tmp'):  # A set-aside old output is put back before temp folders go.
    prefix = _temp_prefix(real_output, kind)
    for name in entries:
      match = re.match(re.escape(prefix) + r'(\d+)-', name)
      path = os.path.join(parent, name)
      if not match or not os.path.isdir(path):
        continue
      pid = int(match.group(1))
      if pid == os.getpid() or _process_alive(pid):
        continue  # Another conversion into the same folder is running: leave its files alone.
      if kind == 'old' and not os.path.lexists(real_output):
        os.rename(path, real_output)
        done.append((path, 'put back as %s (a run was killed while swapping it out)'
                     % real_output))
      else:
        shutil.rmtree(path, ignore_errors=True)
        done.append((path, 'removed (left by a killed run)'))
  return done


def _exchange(path_a, path_b):
  """Atomically swaps two folders; False where renameat2(RENAME_EXCHANGE) is unavailable."""
  try:
    renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
  except (OSError, AttributeError):
    return False
  renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                        ctypes.c_uint]
  renameat2.restype = ctypes.c_int
  if renameat2(_AT_FDCWD, os.fsencode(path_a), _AT_FDCWD, os.fsencode(path_b),
               _RENAME_EXCHANGE) == 0:
    return True
  error = ctypes.get_errno()
  if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
    return False
  raise OSError(error, os.strerror(error), path_b)


def _fsync(path, directory=False):
  fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


class Replacement(object):
  """Context manager: a temporary folder to write into, swapped in whole by `commit()`.

  Usage:
    with Replacement(output_dir, overwrite, inputs) as out:
      ... write files into out.temp_dir ...
      out.commit()

  Leaving the block without `commit()` (an error, Ctrl-C) removes the temporary folder and
  leaves `output_dir` as it was.

  Raises:
    ConversionError: from `check_output_dir`, on entry.
    OutputWriteError: the temporary folder cannot be created, or the swap fails.
  """

  def __init__(self, output_dir, overwrite=False, inputs=()):
    self.output_dir = output_dir
    self.real = check_output_dir(output_dir, overwrite, inputs)
    self.temp_dir = None
    self._committed = False

  def __enter__(self):
    for path, what in clean_leftovers(self.real):
      logging.warning('%s: %s.', path, what)
    parent = os.path.dirname(self.real)
    try:
      os.makedirs(parent, exist_ok=True)
      while self.temp_dir is None:
        path = os.path.join(parent, '%s%d-%s' % (_temp_prefix(self.real, 'tmp'), os.getpid(),
                                                   secrets.token_hex(4)))
        try:
          os.mkdir(path)  # Mode 0777 & ~umask, like a folder the user would create.
          self.temp_dir = path
        except FileExistsError:
          continue
    except OSError as e:
      raise OutputWriteError('Cannot create the temporary output folder in %s (%s): choose '
                             'another --output_dir.' % (parent, e)) from None
    return self

  def commit(self):
    """Makes the written files durable, then swaps them in as `output_dir` in one step."""
    try:
      for name in os.listdir(self.temp_dir):
        _fsync(os.path.join(self.temp_dir, name))
      _fsync(self.temp_dir, directory=True)
      if not os.path.isdir(self.real):
        os.rename(self.temp_dir, self.real)  # Atomic; replaces nothing but a missing folder.
        self.temp_dir = None
      elif not _exchange(self.temp_dir, self.real):
        aside = os.path.join(os.path.dirname(self.real), '%s%d-%s' % (
            _temp_prefix(self.real, 'old'), os.getpid(), secrets.token_hex(4)))
        os.rename(self.real, aside)
        try:
          os.rename(self.temp_dir, self.real)
        except OSError:
          os.rename(aside, self.real)
          raise
        self.temp_dir = aside
      # After an exchange or set-aside, temp_dir holds the old output.
      _fsync(os.path.dirname(self.real), directory=True)
    except OSError as e:
      raise OutputWriteError('Swapping the new output into %s failed (%s); the previous output '
                             'is unchanged.' % (self.output_dir, e)) from None
    self._committed = True
    if self.temp_dir:
      shutil.rmtree(self.temp_dir, ignore_errors=True)
      self.temp_dir = None

  def __exit__(self, exc_type, exc, tb):
    if self.temp_dir and not self._committed:
      shutil.rmtree(self.temp_dir, ignore_errors=True)
      self.temp_dir = None
    return False
