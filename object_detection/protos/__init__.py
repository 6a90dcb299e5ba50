"""Protocol buffer messages of the pipeline config, package `object_detection.protos`.

The `.proto` sources live in the repository's top-level `protos/` folder; the generated
`*_pb2.py` modules are written next to this file. They are compiled with grpcio-tools when the
package is installed (`setup.py` build step) and, when running from a source checkout, again on
import whenever a module is missing or older than its `.proto` source. Users never run `protoc`
by hand (the TF OD API's top install complaint: tensorflow/models#1570, #4109, #8765).
"""
from object_detection.protos import _compile

_compile.ensure_compiled()
