"""label_map_util on the TF OD API label maps and on broken ones."""
import json
import os

import pytest

from object_detection.utils import label_map_util

_TESTDATA = os.path.join(os.path.dirname(__file__), 'testdata')
_COCO_MAP = os.path.join(_TESTDATA, 'mscoco_label_map.pbtxt')
_PET_MAP = os.path.join(_TESTDATA, 'pet_label_map.pbtxt')


def _write(tmp_path, text):
  path = tmp_path / 'label_map.pbtxt'
  path.write_text(text)
  return str(path)


def test_mscoco_label_map_matches_coco128_categories(coco128_dir):
  with open(os.path.join(coco128_dir, 'annotations', 'instances_train.json')) as f:
    categories = json.load(f)['categories']
  by_name = label_map_util.get_label_map_dict(_COCO_MAP, use_display_name=True)
  assert by_name == {c['name']: c['id'] for c in categories}
  assert label_map_util.get_label_map_dict(_COCO_MAP)['/m/01g317'] == 1
  label_map = label_map_util.load_labelmap(_COCO_MAP)
  assert len(label_map.item) == 80
  assert label_map_util.get_max_label_map_index(label_map) == 90


def test_category_index():
  index = label_map_util.create_category_index_from_labelmap(_COCO_MAP)
  assert index[1] == {'id': 1, 'name': 'person'}
  assert index[90]['name'] == 'toothbrush'
  assert 12 not in index  # COCO ids have gaps.
  categories = label_map_util.create_categories_from_labelmap(_COCO_MAP, use_display_name=False)
  assert categories[0] == {'id': 1, 'name': '/m/01g317'}


def test_pet_label_map():
  label_map_dict = label_map_util.get_label_map_dict(_PET_MAP)
  assert len(label_map_dict) == 37
  assert label_map_dict['Abyssinian'] == 1 and label_map_dict['yorkshire_terrier'] == 37


def test_fill_in_gaps_and_background(tmp_path):
  path = _write(tmp_path, 'item { name: "a" id: 1 } item { name: "c" id: 3 }')
  d = label_map_util.get_label_map_dict(path, fill_in_gaps_and_background=True)
  assert d == {'a': 1, 'c': 3, 'background': 0, '2': 2}


@pytest.mark.parametrize('text, match', [
    ('item { name: "bg" id: 0 }', 'id 0 is reserved for the background'),
    ('item { name: "a" id: -2 }', 'must be >= 1'),
    ('item { name: "a" id: 1 } item { name: "b" id: 1 }', 'id 1 is used by both'),
    ('item { name: "a" }', 'has no `id`'),
    ('item { name: "a" id: 1 } item { name: "a" id: 2 }', "name 'a' is used by ids 1 and 2"),
    ('item { name: "a" id: 1 ', r':1:\d+'),
    ('item { nme: "a" id: 1 }', 'nme'),
])
def test_bad_label_maps_name_the_file(tmp_path, text, match):
  path = _write(tmp_path, text)
  with pytest.raises(label_map_util.LabelMapError, match=match) as e:
    label_map_util.get_label_map_dict(path)
  assert isinstance(e.value, ValueError)
  if 'name' not in match:
    assert path in str(e.value)


def test_class_text_lookup_uses_name_and_display_name():
  lookup = label_map_util.get_class_text_to_id_dict(_COCO_MAP)
  assert lookup['person'] == 1 and lookup['/m/01g317'] == 1
  assert lookup['toothbrush'] == 90 and len(lookup) == 160
  # Name-only label maps: the names (no empty-text key from the missing display names).
  lookup = label_map_util.get_class_text_to_id_dict(_PET_MAP)
  assert len(lookup) == 37 and '' not in lookup


def test_class_text_lookup_conflicts(tmp_path):
  # A text that is one item's name and another's display_name gets the larger id; the last of
  # several items with the same display_name wins (the TF OD API decoder's rules).
  path = _write(tmp_path, 'item { name: "a" id: 1 display_name: "b" }\n'
                          'item { name: "b" id: 2 display_name: "a" }\n'
                          'item { name: "x" id: 4 display_name: "same" }\n'
                          'item { name: "y" id: 3 display_name: "same" }\n')
  assert label_map_util.get_class_text_to_id_dict(path) == {
      'a': 2, 'b': 2, 'x': 4, 'y': 3, 'same': 3}


def test_background_item_with_id_0_is_accepted(tmp_path):
  # As in the TF OD API (its mscoco_complete_label_map.pbtxt starts with this item).
  path = _write(tmp_path, 'item { name: "background" id: 0 display_name: "background" }\n'
                          'item { name: "/m/01g317" id: 1 display_name: "person" }\n')
  assert label_map_util.get_label_map_dict(path) == {'background': 0, '/m/01g317': 1}
  assert label_map_util.get_class_text_to_id_dict(path)['person'] == 1
  categories = label_map_util.create_categories_from_labelmap(path)
  assert categories == [{'id': 1, 'name': 'person'}]
  path = _write(tmp_path, 'item { name: "/m/0" id: 0 display_name: "background" }')
  assert label_map_util.get_label_map_dict(path) == {'/m/0': 0}


def test_missing_label_map():
  with pytest.raises(label_map_util.LabelMapError, match='not found: /no/such/map.pbtxt'):
    label_map_util.load_labelmap('/no/such/map.pbtxt')


def test_unreadable_label_map_is_one_line_naming_the_file(tmp_path):
  directory = tmp_path / 'label_map.pbtxt'
  directory.mkdir()  # exists, but is not a file that can be read
  with pytest.raises(label_map_util.LabelMapError) as e:
    label_map_util.load_labelmap(str(directory))
  message = str(e.value)
  assert message.startswith('Label map file %s cannot be read (' % directory)
  assert message.endswith('); check `label_map_path` in the input reader config.')
  assert '\n' not in message


@pytest.mark.parametrize('text, message, every_reader', [
    ('item { name: "a" id: 1 } item { name: "b" id: 1 }',
     "Label map {path}: id 1 is used by both 'a' and 'b'; give every class its own id.", True),
    ('item { name: "a" id: 0 }',
     "Label map {path}: item 'a' has id 0; id 0 is reserved for the background class: number "
     "the classes from 1.", True),
    ('item { name: "a" id: 1 } item { name: "a" id: 2 }',
     # Category indexes are keyed by id: two names are no ambiguity there.
     "Label map {path}: name 'a' is used by ids 1 and 2; give every class its own name.", False),
])
def test_duplicate_and_zero_ids_exact_messages(tmp_path, text, message, every_reader):
  path = _write(tmp_path, text)
  readers = [label_map_util.get_label_map_dict, label_map_util.get_class_text_to_id_dict]
  if every_reader:
    readers.append(label_map_util.create_category_index_from_labelmap)
  for read in readers:
    with pytest.raises(label_map_util.LabelMapError) as e:
      read(path)
    assert str(e.value) == message.format(path=path), read.__name__
