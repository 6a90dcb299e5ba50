"""Hides TensorFlow's start-up noise, and says so once.

Entry points call `quiet_tensorflow_startup()` BEFORE the first `import tensorflow` (TensorFlow's C++
logging reads TF_CPP_MIN_LOG_LEVEL once, at import). It hides:
  * TensorFlow's C++ start-up messages: the CUDA stub / cuInit / cuDNN-cuFFT-cuBLAS factory lines of
    a machine without a GPU, the oneDNN notice and cpu_feature_guard's instruction-set notice
    (TF_CPP_MIN_LOG_LEVEL=3, only when the user has not set it: 3 and not 2 because the cuInit
    failure of a GPU-less machine is logged at ERROR level; errors that matter still reach the user
    as Python exceptions);
  * deprecation warnings that TensorFlow logs about calls made by this project's own code (they
    tell a user nothing they can act on);
  * INFO lines other libraries log through absl (tf-models' per-block "round_filter" lines, the
    strategy's device list, checkpoint saver timings); this project's own INFO lines stay.
It prints one line to stderr naming what is hidden and how to see it: ODSEG_VERBOSE=1 turns all of
this off (and also shows pycocotools' summary tables during evaluation, see `verbose()`).
"""

import logging
import os
import sys
import warnings

VERBOSE_ENV = 'ODSEG_VERBOSE'

_NOTICE = ('Hiding TensorFlow start-up messages (CUDA/cuInit, oneDNN, CPU instruction notices) and '
           'TensorFlow deprecation warnings; set %s=1 to see them.' % VERBOSE_ENV)

_DEPRECATION_MARKERS = ('is deprecated and will be removed', 'deprecated and will be removed',
                        'is deprecated. Please use', 'Instructions for updating')

_done = False


def verbose():
  """True when the user asked to see everything (ODSEG_VERBOSE set to anything but '', '0')."""
  return os.environ.get(VERBOSE_ENV, '') not in ('', '0')


class _DropDeprecations(logging.Filter):
  """Drops TensorFlow's "... is deprecated and will be removed ..." log records."""

  def filter(self, record):
    try:
      message = record.getMessage()
    except Exception:  # pylint: disable=broad-except
      return True  # A record that fails to format is someone else's problem; let it through.
    return not any(marker in message for marker in _DEPRECATION_MARKERS)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _DropForeignInfo(logging.Filter):
  """Drops absl INFO (and DEBUG) records logged from outside this project's package."""

  def filter(self, record):
    if record.levelno > logging.INFO:
      return True
    return os.path.abspath(record.pathname).startswith(_PACKAGE_DIR + os.sep)


def quiet_tensorflow_startup(stream=None):
  """Filters TensorFlow's start-up noise (see the module docstring); idempotent.

  Call before importing TensorFlow; later calls (or after the import) still filter the deprecation
  warnings but can no longer hide the C++ start-up lines.

  Args:
    stream: where the one-line notice goes (default sys.stderr).

  Returns:
    True if something is hidden (False under ODSEG_VERBOSE=1).
  """
  global _done
  if verbose():
    return False
  if _done:
    return True
  _done = True
  # setdefault: a user who set the level chose what to see.
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  # The 'tensorflow' logger exists before TensorFlow is imported; TF adds its handler to it later.
  logging.getLogger('tensorflow').addFilter(_DropDeprecations())
  # absl INFO lines of other libraries (tf-models' "round_filter input=32 output=32" per EfficientNet
  # block, MirroredStrategy's device list, the checkpoint saver's timings): not this project's.
  for name in ('absl', 'tensorflow'):
    logging.getLogger(name).addFilter(_DropForeignInfo())
  for module in ('tensorflow', 'tf_keras', 'keras'):
    warnings.filterwarnings('ignore', category=DeprecationWarning, module=module)
  print(_NOTICE, file=stream or sys.stderr)
  return True
