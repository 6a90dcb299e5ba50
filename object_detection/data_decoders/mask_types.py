"""The instance mask storage types of TF OD API records, and their accepted spellings.

Records store `image/object/mask` either as one PNG per instance (a bytes list, PNG_MASKS, what
`create_coco_tf_record.py` writes by default, as the TF OD API's converter) or as one flat float
list of N*H*W values (NUMERICAL_MASKS). The input reader's `mask_type` must say which.
"""

from object_detection.utils import config_validation

# `input_reader_pb2.InstanceMaskType` values (TF OD API `input_reader.proto`).
DEFAULT = 0
NUMERICAL_MASKS = 1
PNG_MASKS = 2

_NAMES = {
    'DEFAULT': DEFAULT,
    'NUMERICAL_MASKS': NUMERICAL_MASKS,
    'NUMERICAL': NUMERICAL_MASKS,
    'PNG_MASKS': PNG_MASKS,
    'PNG': PNG_MASKS,
}


def mask_type_value(instance_mask_type):
  """Returns the `InstanceMaskType` int of an enum value, int or name.

  Args:
    instance_mask_type: `input_reader_pb2.PNG_MASKS` / `NUMERICAL_MASKS` / `DEFAULT`, the ints
      2 / 1 / 0, or a name: 'PNG_MASKS', 'png', 'NUMERICAL_MASKS', 'numerical', 'DEFAULT'.

  Returns:
    NUMERICAL_MASKS (1) or PNG_MASKS (2); DEFAULT (0) means numerical, as in the TF OD API.

  Raises:
    config_validation.ConfigError (a ValueError): unknown type (the message lists the accepted
      ones).
  """
  unknown = config_validation.ConfigError(
      'Unknown instance mask type %r: use PNG_MASKS (2) or NUMERICAL_MASKS (1) (input reader '
      'field `mask_type`).' % (instance_mask_type,))
  value = instance_mask_type
  if isinstance(value, bytes):
    value = value.decode('utf-8')
  if isinstance(value, str):
    value = _NAMES.get(value.strip().upper(), -1)
  try:
    value = int(value)
  except (TypeError, ValueError):
    raise unknown from None
  if value == DEFAULT:
    return NUMERICAL_MASKS
  if value not in (NUMERICAL_MASKS, PNG_MASKS):
    raise unknown
  return value


def mask_type_name(instance_mask_type):
  """Returns 'PNG_MASKS' or 'NUMERICAL_MASKS' for any accepted mask type spelling."""
  return 'PNG_MASKS' if mask_type_value(instance_mask_type) == PNG_MASKS else 'NUMERICAL_MASKS'


def stored_mask_type(example):
  """Returns the mask type a parsed `tf.train.Example` stores, or None when it has no masks.

  A record without objects still tells its type when it carries an (empty) mask list.
  """
  feature_map = example.features.feature
  if 'image/object/mask' not in feature_map:
    return None
  kind = feature_map['image/object/mask'].WhichOneof('kind')
  if kind == 'bytes_list':
    return 'PNG_MASKS'
  if kind == 'float_list':
    return 'NUMERICAL_MASKS'
  return None
