"""Writes a listing of the TF OD API's config schema (every message, field and enum).

Reference side of `tests/test_tfod_schema.py`: the listing is what the TF OD API's compiled
`object_detection/protos/*_pb2.py` modules declare, one line per message, field, enum and enum
value, so the test can prove that every reference field exists in our schema with the same number,
wire type, label and default (binary-serialized configs then read the same in both).

Writes, in `tests/testdata/tfod_golden/schema/`:
  - `tfod_schema.txt`: the listing described below;
  - `tfod_binary_configs.json.gz`: every config under the TF OD API's `configs/tf2/` and
    `samples/configs/`, plus `FIELDS_CONFIG` below (the fields our schema once got wrong), each as
    the reference's binary serialization (base64, deterministic) and its text rendering, so the test
    can read the bytes with our schema and compare.
Rerun (outside /work/main, in the
reference environment):

  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/schema.py

The line format (tab-separated, parsed by `parse_listing` below, which the test loads by file
path; this module imports nothing from either `object_detection` package at import time):

  message <full name> <file>
  field <message full name> <field name> <number> <type> <label> <type name or ->
        <oneof or -> <packed> <default or ->
  extensions <message full name> <start> <end>     (proto2 extension range, end exclusive)
  reserved <message full name> <start> <end>       (reserved field numbers, end exclusive)
  enum <full name> <file>
  value <enum full name> <value name> <number>

`<type>` and `<label>` are `FieldDescriptorProto.TYPE_*` / `LABEL_*` names; `<type name>` is the
full name of the message or enum type; `<default>` is the declared default as protoc records it
(`-` when none is declared). A default holding a tab or newline would break the format; the TF OD
API declares none.
"""

import importlib
import os
import pkgutil

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_OUT_DIR = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'schema')
_PACKAGE = 'object_detection.protos'


def listing_lines(file_descriptors):
  """Returns the sorted listing lines of every message and enum declared in `file_descriptors`.

  Read from each file's `FileDescriptorProto` (what protoc compiled), so labels, declared
  defaults (normalized by protoc: `0.7`, enum value names) and the `packed` option are exactly
  the declaration's.

  Args:
    file_descriptors: iterable of `google.protobuf.descriptor.FileDescriptor`.
  """
  from google.protobuf import descriptor_pb2  # pylint: disable=g-import-not-at-top
  field_proto = descriptor_pb2.FieldDescriptorProto
  lines = []

  def add_enum(enum, scope, file_name):
    full_name = scope + '.' + enum.name
    lines.append('\t'.join(['enum', full_name, file_name]))
    for value in enum.value:
      lines.append('\t'.join(['value', full_name, value.name, str(value.number)]))

  def add_message(message, scope, file_name):
    full_name = scope + '.' + message.name
    lines.append('\t'.join(['message', full_name, file_name]))
    for kind, ranges in (('extensions', message.extension_range),
                         ('reserved', message.reserved_range)):
      for number_range in ranges:
        lines.append('\t'.join([kind, full_name, str(number_range.start),
                                str(number_range.end)]))
    for field in message.field:
      type_name = field.type_name.lstrip('.') if field.type_name else '-'
      oneof = (message.oneof_decl[field.oneof_index].name
               if field.HasField('oneof_index') else '-')
      packed = 'packed' if field.options.packed else 'unpacked'
      default = field.default_value if field.HasField('default_value') else '-'
      lines.append('\t'.join([
          'field', full_name, field.name, str(field.number), field_proto.Type.Name(field.type),
          field_proto.Label.Name(field.label), type_name, oneof, packed, default]))
    for nested in message.nested_type:
      add_message(nested, full_name, file_name)
    for enum in message.enum_type:
      add_enum(enum, full_name, file_name)

  for file_descriptor in file_descriptors:
    file_proto = descriptor_pb2.FileDescriptorProto()
    file_descriptor.CopyToProto(file_proto)
    file_name = os.path.basename(file_proto.name)
    for message in file_proto.message_type:
      add_message(message, file_proto.package, file_name)
    for enum in file_proto.enum_type:
      add_enum(enum, file_proto.package, file_name)
  return sorted(lines)


def parse_listing(text):
  """Parses a listing written by `listing_lines` into dicts.

  Returns:
    (messages, fields, enums, values, ranges): `messages` / `enums` map full name -> file name;
    `fields` maps (message full name, field name) -> dict with keys number (int), type, label,
    type_name, oneof, packed, default; `values` maps (enum full name, value name) -> number (int);
    `ranges` is a set of (kind, message full name, start, end) for extension / reserved ranges.
  """
  messages, fields, enums, values, ranges = {}, {}, {}, {}, set()
  for line in text.splitlines():
    if not line.strip():
      continue
    parts = line.split('\t')
    kind = parts[0]
    if kind == 'message':
      messages[parts[1]] = parts[2]
    elif kind == 'enum':
      enums[parts[1]] = parts[2]
    elif kind in ('extensions', 'reserved'):
      ranges.add((kind, parts[1], int(parts[2]), int(parts[3])))
    elif kind == 'value':
      values[(parts[1], parts[2])] = int(parts[3])
    elif kind == 'field':
      fields[(parts[1], parts[2])] = dict(
          number=int(parts[3]), type=parts[4], label=parts[5], type_name=parts[6],
          oneof=parts[7], packed=parts[8], default=parts[9])
    else:
      raise ValueError('Unknown listing line kind %r in %r' % (kind, line))
  return messages, fields, enums, values, ranges


def _reference_file_descriptors():
  package = importlib.import_module(_PACKAGE)
  descriptors = []
  for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
    if module_info.name.endswith('_pb2'):
      module = importlib.import_module(_PACKAGE + '.' + module_info.name)
      descriptors.append(module.DESCRIPTOR)
  return descriptors


# A config setting the fields that an earlier version of our schema lacked or numbered
# differently, each to a non-default value, so their binary encoding is exercised.
FIELDS_CONFIG = """
model { faster_rcnn {
  num_classes: 3
  image_resizer { pad_to_multiple_resizer { multiple: 32 convert_to_grayscale: true } }
  feature_extractor { type: "faster_rcnn_resnet50_keras" }
  first_stage_box_predictor_conv_hyperparams {
    op: CONV
    regularizer { l2_regularizer { weight: 0.0 } }
    initializer { keras_initializer_by_name: "glorot_uniform" }
  }
  context_config { max_num_context_features: 50 attention_position: POST_RPN
                   num_attention_layers: 2 }
  second_stage_classification_loss { weighted_sigmoid { } }
} }
train_config {
  batch_size: 2
  data_augmentation_options { random_rotation90 { keypoint_rot_permutation: [1, 0, 3, 2]
                                                  probability: 0.25 } }
  data_augmentation_options { random_jitter_boxes { ratio: 0.1 jitter_mode: SHRINK_SYMMETRIC_XY } }
  data_augmentation_options { random_jitter_boxes { jitter_mode: EXPAND_SYMMETRIC } }
}
train_input_reader {
  label_map_path: "label_map.pbtxt"
  include_source_id: true
  drop_remainder: false
  sample_from_datasets_weights: [2.0, 1.0]
  tf_record_input_reader { input_path: ["a.record", "b.record"] }
}
eval_input_reader { label_map_path: "label_map.pbtxt" include_source_id: false
                    drop_remainder: true }
"""


def _binary_configs():
  import base64  # pylint: disable=g-import-not-at-top
  import glob  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from object_detection.protos import pipeline_pb2  # pylint: disable=g-import-not-at-top
  package_dir = os.path.dirname(os.path.dirname(importlib.import_module(_PACKAGE).__file__))
  texts = {'fields_config': FIELDS_CONFIG}
  for pattern in ('configs/tf2/*.config', 'samples/configs/*.config'):
    for path in sorted(glob.glob(os.path.join(package_dir, pattern))):
      with open(path) as f:
        texts[os.path.relpath(path, package_dir)] = f.read()
  out = {}
  for name, text in texts.items():
    config = text_format.Parse(text, pipeline_pb2.TrainEvalPipelineConfig())
    out[name] = {
        'binary': base64.b64encode(config.SerializeToString(deterministic=True)).decode('ascii'),
        'text': text_format.MessageToString(config),
    }
  return out


def main():
  import gzip  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  descriptors = _reference_file_descriptors()
  lines = listing_lines(descriptors)
  os.makedirs(_OUT_DIR, exist_ok=True)
  path = os.path.join(_OUT_DIR, 'tfod_schema.txt')
  with open(path, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('wrote %s: %d files, %d lines' % (path, len(descriptors), len(lines)))
  configs = _binary_configs()
  path = os.path.join(_OUT_DIR, 'tfod_binary_configs.json.gz')
  # mtime=0: the same configs give the same bytes, so a rerun leaves git clean.
  with open(path, 'wb') as raw, gzip.GzipFile(fileobj=raw, mode='wb', mtime=0) as f:
    f.write(json.dumps(configs, sort_keys=True, indent=0).encode('utf-8'))
  print('wrote %s: %d configs' % (path, len(configs)))


if __name__ == '__main__':
  main()
