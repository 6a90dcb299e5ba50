"""Label map (StringIntLabelMap pbtxt) utilities with the TF OD API's names.

A label map maps class names to 1-based integer ids:

  item {
    name: "/m/01g317"     # or the class name
    id: 1                 # >= 1; 0 is reserved for the background class
    display_name: "person"
  }

Ids need not be contiguous (COCO uses 1..90 for 80 classes): a model with
`num_classes: 90` has one-hot column `id - 1` for each item. Id 0 is allowed only for an item
named (or displayed as) "background", as in the TF OD API (its `mscoco_complete_label_map.pbtxt`
has one).

Class texts in records (`image/object/class/text`) are looked up by `name` and by `display_name`
together (`get_class_text_to_id_dict`), as the TF OD API's TfExampleDecoder does.
"""
import logging

import tensorflow as tf
from google.protobuf import text_format

from object_detection.protos import string_int_label_map_pb2
from object_detection.utils import config_validation


class LabelMapError(config_validation.ConfigError):
  """A label map file is missing, does not parse or has invalid ids / names."""


_BACKGROUND = 'background'


def _validate_label_map(label_map, source='Label map'):
  """Checks ids are >= 1 (0 only for "background", as in the TF OD API) and unique.

  Raises:
    LabelMapError: one line naming `source`, the offending item and what to do.
  """
  seen = {}
  for item in label_map.item:
    if not item.HasField('id'):
      raise LabelMapError('%s: item %r has no `id`; give every item an integer id >= 1.'
                          % (source, item.name or item.display_name))
    if item.id < 0:
      raise LabelMapError('%s: item %r has id %d; label map ids must be >= 1.'
                          % (source, item.name, item.id))
    if item.id == 0 and _BACKGROUND not in (item.name, item.display_name):
      raise LabelMapError('%s: item %r has id 0; id 0 is reserved for the background class: '
                          'number the classes from 1.' % (source, item.name))
    if item.id in seen:
      # A second item with the same id would silently rename the class (the last name wins).
      raise LabelMapError('%s: id %d is used by both %r and %r; give every class its own id.'
                          % (source, item.id, seen[item.id], item.name))
    seen[item.id] = item.name


def load_labelmap(path):
  """Loads and validates a label map proto: the one label map parser of the project.

  Args:
    path: path to a text-format (or binary) StringIntLabelMap file.

  Returns:
    a `StringIntLabelMap` proto.

  Raises:
    LabelMapError (a config_validation.ConfigError), one line naming the file: missing or
      unreadable file, parse error (with line and column), an item without id, an id < 0, id 0
      on an item that is not "background", an id used twice.
  """
  if not tf.io.gfile.exists(path):
    raise LabelMapError('Label map file not found: %s (check `label_map_path` in the input '
                        'reader config).' % path)
  try:
    with tf.io.gfile.GFile(path, 'rb') as fid:
      data = fid.read()
  except (tf.errors.OpError, OSError) as e:
    reason = getattr(e, 'message', None) or str(e)
    raise LabelMapError('Label map file %s cannot be read (%s); check `label_map_path` in the '
                        'input reader config.' % (path, reason.splitlines()[0])) from None
  label_map_string = data.decode('utf-8', errors='replace')
  label_map = string_int_label_map_pb2.StringIntLabelMap()
  try:
    text_format.Merge(label_map_string, label_map)
  except text_format.ParseError as e:
    # The TF OD API also accepts binary label maps. Text with a syntax error often happens to
    # decode as some binary proto, so the binary reading is only believed when it is exact.
    binary = string_int_label_map_pb2.StringIntLabelMap()
    try:
      binary.ParseFromString(data)
      exact = bool(binary.item) and binary.SerializeToString() == data
    except Exception:  # pylint: disable=broad-except
      exact = False
    if not exact:
      raise LabelMapError('%s:%s (a label map is a list of item { name: "..." id: 1 })'
                          % (path, str(e).splitlines()[0])) from None
    label_map = binary
  _validate_label_map(label_map, 'Label map %s' % path)
  return label_map


def _names(label_map, use_display_name):
  for item in label_map.item:
    yield (item.display_name if use_display_name and item.display_name else item.name), item


def _load(label_map_path_or_proto):
  """Returns (validated StringIntLabelMap, source text for error messages)."""
  if isinstance(label_map_path_or_proto, string_int_label_map_pb2.StringIntLabelMap):
    _validate_label_map(label_map_path_or_proto)
    return label_map_path_or_proto, 'Label map'
  return load_labelmap(label_map_path_or_proto), 'Label map %s' % label_map_path_or_proto


def _unique_name_dict(label_map, use_display_name, source):
  label_map_dict = {}
  for name, item in _names(label_map, use_display_name):
    if name in label_map_dict and label_map_dict[name] != item.id:
      raise LabelMapError('%s: name %r is used by ids %d and %d; give every class its own name.'
                          % (source, name, label_map_dict[name], item.id))
    label_map_dict[name] = item.id
  return label_map_dict


def get_label_map_dict(label_map_path_or_proto, use_display_name=False,
                       fill_in_gaps_and_background=False):
  """Returns {class name: id}.

  Args:
    label_map_path_or_proto: path to a label map file, or a StringIntLabelMap proto.
    use_display_name: key by `display_name` instead of `name`.
    fill_in_gaps_and_background: add 'background': 0 (when no item has id 0) and a '<id>'
      entry (the id as a string) for each id missing between 1 and the max id.

  Raises:
    LabelMapError: invalid label map (see `load_labelmap`), or two items with the same
      name (the dict would silently drop one).
  """
  label_map, source = _load(label_map_path_or_proto)
  label_map_dict = _unique_name_dict(label_map, use_display_name, source)
  if fill_in_gaps_and_background:
    values = set(label_map_dict.values())
    if 0 not in values:
      label_map_dict['background'] = 0
    if values:
      for value in range(1, max(values) + 1):
        if value not in values:
          label_map_dict[str(value)] = value
  return label_map_dict


def get_class_text_to_id_dict(label_map_path_or_proto):
  """Returns {class text: id} for looking up `image/object/class/text` of records.

  Matches the TF OD API's TfExampleDecoder (`_ClassTensorHandler`): a text is looked up among the
  items' `name`s and among their `display_name`s, and the larger of the two ids wins (a text that
  is only one of them gets that id). Among items with the same `display_name` the last one wins,
  as in the TF OD API's dict. The input reader's `use_display_name` plays no part (the TF OD API's
  decoder ignores it too). So records written by the TF OD API's `create_coco_tf_record.py`
  (class text = COCO name) decode with the upstream `mscoco_label_map.pbtxt` (name = "/m/..." id,
  display_name = COCO name) as they do there.

  One difference: the empty text is never a key. In the TF OD API it matches the (empty)
  display_name of the last item without one, giving that item's id; here it is an unknown text.

  Args:
    label_map_path_or_proto: path to a label map file, or a StringIntLabelMap proto.

  Returns:
    dict {str: int}.

  Raises:
    LabelMapError: invalid label map, or two items with the same `name` and different ids.
  """
  label_map, source = _load(label_map_path_or_proto)
  by_name = _unique_name_dict(label_map, False, source)
  by_display_name = {}
  for item in label_map.item:
    if item.display_name:
      by_display_name[item.display_name] = item.id
  lookup = {}
  for text in set(by_name) | set(by_display_name):
    if text:
      lookup[text] = max(by_name.get(text, -1), by_display_name.get(text, -1))
  return lookup


def convert_label_map_to_categories(label_map, max_num_classes, use_display_name=True):
  """Returns a list of {'id': int, 'name': str} dicts, ids in (0, max_num_classes].

  If `label_map` is None, returns default categories 'category_<id>' for 1..max_num_classes.
  Items with ids > max_num_classes are skipped (and logged).
  """
  categories = []
  list_of_ids_already_added = []
  if not label_map:
    for class_id in range(1, max_num_classes + 1):
      categories.append({'id': class_id, 'name': 'category_{}'.format(class_id)})
    return categories
  for item in label_map.item:
    if not 0 < item.id <= max_num_classes:
      logging.info('Ignore item %d since it falls outside of requested label range.', item.id)
      continue
    name = item.display_name if (use_display_name and item.HasField('display_name')) else item.name
    if item.id not in list_of_ids_already_added:
      list_of_ids_already_added.append(item.id)
      category = {'id': item.id, 'name': name}
      if item.keypoints:
        category['keypoints'] = {kv.id: kv.label for kv in item.keypoints}
      categories.append(category)
  return categories


def get_max_label_map_index(label_map):
  """Returns the largest id of a StringIntLabelMap proto (0 for an empty map)."""
  return max([item.id for item in label_map.item] or [0])


def create_categories_from_labelmap(label_map_path, use_display_name=True):
  """Reads a label map file; returns [{'id': id, 'name': name}, ...] in file order."""
  label_map = load_labelmap(label_map_path)
  max_num_classes = get_max_label_map_index(label_map)
  return convert_label_map_to_categories(label_map, max_num_classes, use_display_name)


def create_category_index(categories):
  """Returns {id: category dict} from a list of category dicts."""
  return {cat['id']: cat for cat in categories}


def create_category_index_from_labelmap(label_map_path, use_display_name=True):
  """Reads a label map file; returns {id: {'id': id, 'name': name}}."""
  return create_category_index(create_categories_from_labelmap(label_map_path, use_display_name))


def create_class_agnostic_category_index():
  """Returns a category index with the single class 'object' (id 1)."""
  return {1: {'id': 1, 'name': 'object'}}
