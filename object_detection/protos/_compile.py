"""Compiles `protos/*.proto` into `object_detection/protos/*_pb2.py` with grpcio-tools.

The sources are imported as `object_detection/protos/<name>.proto` (the TF OD API's import
paths), so protoc is given a virtual path mapping from that prefix to the `protos/` folder.
"""
import glob
import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(os.path.dirname(_PACKAGE_DIR))
PROTO_SRC_DIR = os.path.join(_REPO_ROOT, "protos")


def _stale_sources(src_dir, out_dir):
  stale = []
  for src in sorted(glob.glob(os.path.join(src_dir, "*.proto"))):
    name = os.path.splitext(os.path.basename(src))[0]
    out = os.path.join(out_dir, name + "_pb2.py")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
      stale.append(src)
  return stale


def compile_protos(src_dir=PROTO_SRC_DIR, out_root=_REPO_ROOT, force=False):
  """Compiles every `.proto` in `src_dir` into `out_root/object_detection/protos/`.

  Args:
    src_dir: folder holding the `.proto` sources.
    out_root: folder under which `object_detection/protos/*_pb2.py` is written.
    force: compile even when every output is newer than its source.

  Returns:
    The list of compiled `.proto` paths (empty when everything was up to date).

  Raises:
    RuntimeError: grpcio-tools is missing or protoc reports an error (its message included).
  """
  out_dir = os.path.join(out_root, "object_detection", "protos")
  sources = sorted(glob.glob(os.path.join(src_dir, "*.proto")))
  if not force and not _stale_sources(src_dir, out_dir):
    return []
  try:
    import grpc_tools  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise RuntimeError(
        "Compiling the config schema needs grpcio-tools: run `pip install -e .` "
        "from the repository root (it installs grpcio-tools).") from e
  import importlib.resources  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  os.makedirs(out_dir, exist_ok=True)
  tmp_root = tempfile.mkdtemp(prefix=".protoc_", dir=out_dir)
  well_known = str(importlib.resources.files("grpc_tools") / "_proto")
  args = [sys.executable, "-m", "grpc_tools.protoc",
          "--proto_path=object_detection/protos=" + src_dir,
          "--proto_path=" + well_known,
          "--python_out=" + tmp_root]
  args += ["object_detection/protos/" + os.path.basename(s) for s in sources]
  # A separate process: protoc loaded into a process that already imported TensorFlow can crash
  # (seen as SIGSEGV), and a failed compile must not take the caller down with it.
  result = subprocess.run(args, capture_output=True, text=True, check=False)
  if result.returncode != 0:
    shutil.rmtree(tmp_root, ignore_errors=True)
    raise RuntimeError("protoc failed on the config schema in %s:\n%s" % (
        src_dir, result.stderr.strip()))
  # Generated into a scratch folder and moved in one rename per file, so a process importing the
  # modules while another compiles never reads a half-written file.
  tmp_out = os.path.join(tmp_root, "object_detection", "protos")
  for name in os.listdir(tmp_out):
    os.replace(os.path.join(tmp_out, name), os.path.join(out_dir, name))
  shutil.rmtree(tmp_root, ignore_errors=True)
  return sources


_GENCODE_LINE = "# Protobuf Python Version: "


def _version_tuple(text):
  parts = []
  for part in text.strip().split(".")[:3]:
    digits = "".join(ch for ch in part if ch.isdigit())
    parts.append(int(digits) if digits else 0)
  return tuple(parts)


def gencode_version(out_dir=_PACKAGE_DIR):
  """The protobuf version the generated modules were written for, or None (none generated)."""
  for path in sorted(glob.glob(os.path.join(out_dir, "*_pb2.py"))):
    with open(path) as fid:
      for line in fid.read(4096).splitlines():
        if line.startswith(_GENCODE_LINE):
          return _version_tuple(line[len(_GENCODE_LINE):])
  return None


def _gencode_newer_than_runtime(out_dir=_PACKAGE_DIR):
  # Generated code refuses an older protobuf runtime. `pip install -e .` builds the schema in an
  # isolated environment with the newest grpcio-tools, while an extra may hold protobuf back
  # (apache-beam needs protobuf < 7): then the modules are regenerated with this environment's
  # grpcio-tools, which pip matched to its protobuf.
  import google.protobuf  # pylint: disable=g-import-not-at-top
  generated = gencode_version(out_dir)
  return generated is not None and generated > _version_tuple(google.protobuf.__version__)


def ensure_compiled():
  """Compiles the schema on import when running from a source checkout and it is stale.

  Stale: a module is missing or older than its `.proto`, or was generated for a newer protobuf
  than the one installed.

  Raises:
    RuntimeError: the modules were generated for a newer protobuf than the installed one and
      cannot be regenerated here (a regular, non-editable install); the message says what to do.
  """
  if not os.path.isdir(PROTO_SRC_DIR):
    # Installed as a regular (non-editable) package: modules were built at install.
    if _gencode_newer_than_runtime():
      import google.protobuf  # pylint: disable=g-import-not-at-top
      raise RuntimeError(
          "The config schema was compiled for protobuf %s but protobuf %s is installed: "
          "reinstall with `pip install --no-build-isolation .` (compiles with this "
          "environment's grpcio-tools) or upgrade protobuf." % (
              ".".join(map(str, gencode_version())), google.protobuf.__version__))
    return
  if _stale_sources(PROTO_SRC_DIR, _PACKAGE_DIR) or _gencode_newer_than_runtime():
    compile_protos(force=True)


if __name__ == "__main__":
  compiled = compile_protos(force="--force" in sys.argv)
  print("compiled %d proto files" % len(compiled))
