"""Our config schema (protos/) contains the TF OD API's, field for field, so configs read the same.

Golden fixtures (written by the TF OD API at upstream commit e3c7e300, see
tools/tfod_golden/schema.py):
  - tfod_schema.txt: every message, field (number, wire type, label, message / enum type,
    oneof, packed, declared default) and enum value of the TF OD API's protos;
  - tfod_binary_configs.json.gz: every TF OD API sample config (configs/tf2, samples/configs) and
    a config setting the fields we once got wrong, binary-serialized by the TF OD API, with the
    TF OD API's text rendering.

Our additions must be the documented extensions (docs/config_extensions.md), numbered >= 1000 so
that they can never take a number a future TF OD API field uses.
"""
import base64
import gzip
import importlib
import importlib.util
import json
import os
import pkgutil
import re

import pytest
from google.protobuf import text_format
from google.protobuf import unknown_fields

import object_detection.protos
from object_detection.protos import faster_rcnn_pb2
from object_detection.protos import pipeline_pb2

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_GOLDEN = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'schema')
_EXTENSION_MIN_NUMBER = 1000

# Fields below 1000 that the TF OD API at e3c7e300 lacks but later upstream versions declare
# under the same name and number (upstream DeepMAC configs set them); (message, field) -> number.
_LATER_UPSTREAM_FIELDS = {
    ('object_detection.protos.WeightedDiceClassificationLoss', 'is_prediction_probability'): 2,
}


def _load_schema_tool():
  spec = importlib.util.spec_from_file_location(
      'tfod_golden_schema', os.path.join(_REPO, 'tools', 'tfod_golden', 'schema.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


_SCHEMA = _load_schema_tool()


def _our_listing():
  descriptors = []
  for info in sorted(pkgutil.iter_modules(object_detection.protos.__path__), key=lambda m: m.name):
    if info.name.endswith('_pb2'):
      module = importlib.import_module('object_detection.protos.' + info.name)
      descriptors.append(module.DESCRIPTOR)
  return _SCHEMA.parse_listing('\n'.join(_SCHEMA.listing_lines(descriptors)))


@pytest.fixture(scope='module')
def reference():
  with open(os.path.join(_GOLDEN, 'tfod_schema.txt')) as f:
    return _SCHEMA.parse_listing(f.read())


@pytest.fixture(scope='module')
def ours():
  return _our_listing()


def _documented_extensions():
  """(message short name, field) -> number from the table in docs/config_extensions.md."""
  with open(os.path.join(_REPO, 'docs', 'config_extensions.md')) as f:
    text = f.read()
  rows = re.findall(r'^\| `(\w+)`[^|]*\| `(\w+)` \| (\d+) \|', text, flags=re.M)
  return {(message, field): int(number) for message, field, number in rows}


def test_reference_listing_is_complete(reference):
  messages, fields, enums, values, ranges = reference
  # Sanity: the listing covers the whole TF OD API schema, not a part of it.
  assert len(set(messages.values())) == 34
  assert ('extensions', 'object_detection.protos.TrainEvalPipelineConfig', 1000,
          536870912) in ranges
  assert (len(messages), len(fields), len(enums), len(values)) == (166, 824, 17, 57)
  assert fields[('object_detection.protos.InputReader', 'include_source_id')]['number'] == 27


def test_every_reference_message_and_enum_exists_in_the_same_file(reference, ours):
  ref_messages, _, ref_enums, _, _ = reference
  our_messages, _, our_enums, _, _ = ours
  missing = sorted(set(ref_messages) - set(our_messages))
  assert not missing, 'messages missing from protos/: %s' % missing
  moved = sorted(m for m in ref_messages if our_messages[m] != ref_messages[m])
  assert not moved, 'messages declared in another file than the TF OD API: %s' % moved
  missing = sorted(set(ref_enums) - set(our_enums))
  assert not missing, 'enums missing from protos/: %s' % missing
  moved = sorted(e for e in ref_enums if our_enums[e] != ref_enums[e])
  assert not moved, 'enums declared in another file than the TF OD API: %s' % moved


def test_every_reference_field_has_the_same_number_type_label_and_default(reference, ours):
  _, ref_fields, _, _, _ = reference
  _, our_fields, _, _, _ = ours
  problems = []
  for key, ref in sorted(ref_fields.items()):
    if key not in our_fields:
      problems.append('%s.%s: missing (TF OD API: %s)' % (key[0], key[1], ref))
      continue
    for attribute, value in sorted(ref.items()):
      if our_fields[key][attribute] != value:
        problems.append('%s.%s: %s is %r, the TF OD API has %r' % (
            key[0], key[1], attribute, our_fields[key][attribute], value))
  assert not problems, '\n'.join(problems)


def test_enum_values_are_the_reference_values(reference, ours):
  _, _, ref_enums, ref_values, _ = reference
  _, _, _, our_values, _ = ours
  problems = []
  for key, number in sorted(ref_values.items()):
    if our_values.get(key) != number:
      problems.append('%s.%s: %r, the TF OD API has %d' % (key[0], key[1], our_values.get(key),
                                                           number))
  extra = sorted(k for k in our_values if k[0] in ref_enums and k not in ref_values)
  assert not problems, '\n'.join(problems)
  assert not extra, 'enum values the TF OD API does not have: %s' % extra


def test_extension_and_reserved_ranges_are_the_reference_ranges(reference, ours):
  ref_messages, _, _, _, ref_ranges = reference
  _, _, _, _, our_ranges = ours
  ours_on_reference_messages = {r for r in our_ranges if r[1] in ref_messages}
  assert ours_on_reference_messages == ref_ranges


def test_additions_are_documented_extensions_numbered_from_1000(reference, ours):
  ref_messages, ref_fields, _, _, _ = reference
  our_messages, our_fields, _, _, _ = ours
  documented = _documented_extensions()
  assert documented, 'no extension table found in docs/config_extensions.md'
  added = {}
  for (message, field), spec in our_fields.items():
    if message in ref_messages and (message, field) not in ref_fields:
      added[(message, field)] = spec
  problems = []
  for (message, field), spec in sorted(added.items()):
    if _LATER_UPSTREAM_FIELDS.get((message, field)) == spec['number']:
      continue
    short = message.rsplit('.', 1)[-1]
    if spec['number'] < _EXTENSION_MIN_NUMBER:
      problems.append('%s.%s = %d: an addition below %d can collide with a future TF OD API '
                      'field' % (message, field, spec['number'], _EXTENSION_MIN_NUMBER))
    if documented.get((short, field)) != spec['number']:
      problems.append('%s.%s = %d is not in the table of docs/config_extensions.md' % (
          message, field, spec['number']))
  for (short, field), number in sorted(documented.items()):
    matches = [k for k in added if k[0].rsplit('.', 1)[-1] == short and k[1] == field]
    if not matches or added[matches[0]]['number'] != number:
      problems.append('docs/config_extensions.md lists %s.%s = %d, protos/ does not' % (
          short, field, number))
  assert not problems, '\n'.join(problems)
  # Messages of our own are reachable only through extension fields (or other own messages),
  # so a TF OD API config never meets them.
  own_messages = set(our_messages) - set(ref_messages)
  for (message, field), spec in our_fields.items():
    if spec['type_name'] in own_messages and message in ref_messages:
      assert spec['number'] >= _EXTENSION_MIN_NUMBER, (message, field)


def _binary_configs():
  with gzip.open(os.path.join(_GOLDEN, 'tfod_binary_configs.json.gz'), 'rb') as f:
    return json.loads(f.read().decode('utf-8'))


_CONFIGS = _binary_configs()


def _unknown_field_paths(message, path=''):
  """Paths of sub-messages holding fields our schema did not recognise."""
  found = []
  if len(unknown_fields.UnknownFieldSet(message)):
    found.append(path or '<root>')
  for field, value in message.ListFields():
    if field.message_type is None:
      continue
    if field.message_type.GetOptions().map_entry:
      items = value.values() if field.message_type.fields_by_name['value'].message_type else []
      children = list(items)
    elif field.is_repeated:
      children = list(value)
    else:
      children = [value]
    for i, child in enumerate(children):
      found += _unknown_field_paths(child, '%s%s[%d]' % (path + '.' if path else '', field.name, i))
  return found


def test_binary_fixture_covers_the_sample_configs():
  assert len(_CONFIGS) > 100
  assert 'fields_config' in _CONFIGS
  assert any(name.startswith('configs/tf2/center_net_deepmac') for name in _CONFIGS)
  assert 'configs/tf2/mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8.config' in _CONFIGS


@pytest.mark.parametrize('name', sorted(_CONFIGS))
def test_tfod_binary_config_reads_the_same(name):
  entry = _CONFIGS[name]
  data = base64.b64decode(entry['binary'])
  config = pipeline_pb2.TrainEvalPipelineConfig.FromString(data)
  assert not _unknown_field_paths(config), 'fields our schema does not know: %s' % (
      _unknown_field_paths(config))
  # Same field names, values and types as the TF OD API read from the same bytes.
  assert text_format.MessageToString(config) == entry['text']
  # Same numbers and wire types: our serialization is byte for byte the TF OD API's.
  assert config.SerializeToString(deterministic=True) == data
  # And the text rendering parses back to the same message.
  assert text_format.Parse(entry['text'], pipeline_pb2.TrainEvalPipelineConfig()) == config


def test_fields_config_values():
  """The fields an earlier schema got wrong, read from the TF OD API's bytes."""
  config = pipeline_pb2.TrainEvalPipelineConfig.FromString(
      base64.b64decode(_CONFIGS['fields_config']['binary']))
  reader = config.train_input_reader
  assert reader.include_source_id and not reader.drop_remainder
  assert list(reader.sample_from_datasets_weights) == [2.0, 1.0]
  assert config.eval_input_reader[0].drop_remainder and config.eval_input_reader[0].HasField(
      'drop_remainder')
  rotation = config.train_config.data_augmentation_options[0].random_rotation90
  assert list(rotation.keypoint_rot_permutation) == [1, 0, 3, 2]
  assert rotation.probability == 0.25
  jitter = config.train_config.data_augmentation_options[1].random_jitter_boxes
  assert jitter.jitter_mode == jitter.SHRINK_SYMMETRIC_XY
  frcnn = config.model.faster_rcnn
  assert frcnn.image_resizer.pad_to_multiple_resizer.convert_to_grayscale
  initializer = frcnn.first_stage_box_predictor_conv_hyperparams.initializer
  assert initializer.WhichOneof('initializer_oneof') == 'keras_initializer_by_name'
  assert initializer.keras_initializer_by_name == 'glorot_uniform'
  assert frcnn.context_config.attention_position == faster_rcnn_pb2.POST_RPN
