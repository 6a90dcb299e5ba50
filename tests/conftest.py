"""Shared pytest fixtures and paths."""
import os
import subprocess

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The real sample data is bundled with the repo (a copy of shared/datasets/coco128_seg).
COCO128_DIR = os.path.join(REPO_ROOT, "samples", "data", "coco128_seg")
COCO128_IMAGES = os.path.join(COCO128_DIR, "images")
COCO128_TRAIN_JSON = os.path.join(COCO128_DIR, "annotations", "instances_train.json")
COCO128_VAL_JSON = os.path.join(COCO128_DIR, "annotations", "instances_val.json")


@pytest.fixture(scope="session")
def coco128_dir():
  return COCO128_DIR


class Launched(object):
  """A command started at once (subprocess.Popen), stdout and stderr to files; `result()` waits.

  For tests whose subprocesses are independent: started together (e.g. by a module-scoped
  fixture), their Python / TensorFlow start-ups run side by side and beside the in-process tests,
  instead of one after another while this process waits (CI has two cores).
  """

  def __init__(self, args, log_dir, cwd=REPO_ROOT, env=None):
    """args: the command (a list); log_dir: an existing folder for stdout.txt / stderr.txt."""
    self.args = list(args)
    self._result = None
    self._files = [open(os.path.join(str(log_dir), name), 'w+')
                   for name in ('stdout.txt', 'stderr.txt')]
    self._proc = subprocess.Popen(self.args, cwd=cwd, env=env, stdout=self._files[0],
                                  stderr=self._files[1], text=True)

  def result(self, timeout=300):
    """Waits for the command (killed after `timeout` s: TimeoutExpired); a CompletedProcess."""
    if self._result is None:
      try:
        self._proc.wait(timeout)
      except subprocess.TimeoutExpired:
        self.close()
        raise
      outputs = []
      for f in self._files:
        f.seek(0)
        outputs.append(f.read())
        f.close()
      self._result = subprocess.CompletedProcess(self.args, self._proc.returncode, *outputs)
    return self._result

  def close(self):
    """Kills the command if it still runs (a failed or interrupted test)."""
    if self._proc.poll() is None:
      self._proc.kill()
      self._proc.wait()
    for f in self._files:
      f.close()


@pytest.fixture(scope="session")
def semantic_export(tmp_path_factory):
  """A tiny semantic segmentation model exported with its OpenVINO IR, built once for the
  semantic export tests (test_semantic_export.build_export)."""
  import test_semantic_export  # pylint: disable=g-import-not-at-top
  return test_semantic_export.build_export(tmp_path_factory)
