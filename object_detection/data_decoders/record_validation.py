"""File-level checks of TFRecord inputs, before any `tf.data` pipeline or model is built.

The decoder (`tf_example_decoder`) checks each record as it is read, inside `tf.data`, where an
error can only name the record. What is wrong with a whole file or with the config that reads it
(no file matches, not a TFRecord, masks of the other type, no masks at all, class names without
a label map) is checked here, on the first records, with plain Python, so the error is one line
naming the file, the record's image/source_id and the config field to change:

  * `check_first_record(input_reader_config, field)`: the first file of every `input_path`
    entry, up to its first record with objects. Cheap (no image is decoded); training and
    evaluation call it before building the model.
  * `validate_records(input_path, ...)`: the first records of EVERY file; the dataset builder
    calls it once per input reader.
"""
from absl import logging
import tensorflow as tf

from object_detection.data_decoders import mask_types
from object_detection.utils import config_validation
from object_detection.utils import label_map_util

# A record without objects does not show whether masks are stored; this many records are read
# looking for one with objects before the file is taken as it is.
_MAX_RECORDS_TO_FIND_OBJECTS = 50

# When none of the class texts of the records checked is in the label map, up to this many
# records per file are read looking for one that is before warning: a label map listing a
# subset of the classes (e.g. person only) legitimately misses every text of many records.
_MAX_RECORDS_TO_FIND_A_LABEL_MAP_TEXT = 500


class RecordValidationError(config_validation.ConfigError):
  """A TFRecord file cannot be used as configured (the message names the file and the fix)."""


def _list_files(input_path):
  """Sorted files of a pattern or list of patterns (the dataset builder's globbing)."""
  # Imported here: the dataset builder imports the decoders, so a top-level import would cycle.
  from object_detection.builders import dataset_builder  # pylint: disable=g-import-not-at-top
  patterns = [input_path] if isinstance(input_path, (str, bytes)) else list(input_path)
  patterns = [p.decode('utf-8') if isinstance(p, bytes) else p for p in patterns]
  return dataset_builder.list_input_files(patterns)


def _read_examples(path, max_records, stop_after_objects=False):
  """Parses up to `max_records` records of `path` into tf.train.Examples.

  With `stop_after_objects`, stops after the first record that has boxes or masks.

  Raises:
    RecordValidationError: the file is not a TFRecord file of tf.train.Example records.
  """
  examples = []
  try:
    for raw in tf.data.TFRecordDataset(path).take(max_records):
      example = tf.train.Example()
      example.ParseFromString(raw.numpy())
      examples.append(example)
      if stop_after_objects and (_num_boxes(example) or mask_types.stored_mask_type(example)):
        break
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
    raise RecordValidationError(
        'File %s is not a readable TFRecord file (%s). Re-create it with '
        'dataset_tools/create_coco_tf_record.py.' % (path, e.message.splitlines()[0])) from None
  except Exception as e:  # pylint: disable=broad-except
    raise RecordValidationError(
        'File %s does not hold tf.train.Example records (%s: %s).'
        % (path, type(e).__name__, str(e).splitlines()[0] if str(e) else '')) from None
  return examples


def _num_boxes(example):
  feature_map = example.features.feature
  if 'image/object/bbox/ymin' not in feature_map:
    return 0
  return len(feature_map['image/object/bbox/ymin'].float_list.value)


def _source_id(example):
  feature = example.features.feature.get('image/source_id')
  if feature is None or not feature.bytes_list.value:
    return '?'
  return feature.bytes_list.value[0].decode('utf-8', 'replace')


def _check_masks(example, where, load_instance_masks, mask_type, field):
  """Raises when the record's masks do not match `load_instance_masks` / `mask_type`."""
  if not load_instance_masks:
    return
  stored = mask_types.stored_mask_type(example)
  num_boxes = _num_boxes(example)
  if stored is None and num_boxes > 0:
    raise RecordValidationError(
        '%s has %d objects but no image/object/mask, and %s.load_instance_masks is true: '
        're-create the records with dataset_tools/create_coco_tf_record.py --include_masks '
        '(or set load_instance_masks: false if the model has no mask head).'
        % (where, num_boxes, field))
  if stored is not None and stored != mask_type:
    raise RecordValidationError(
        '%s holds %s (image/object/mask is a %s) but %s.mask_type is %s: set `mask_type: %s`.'
        % (where, stored, 'list of PNGs' if stored == 'PNG_MASKS' else 'float list', field,
           mask_type, stored))


def _check_classes(example, where, has_label_map, field):
  """Raises when the record's classes cannot be decoded as configured."""
  feature_map = example.features.feature
  num_boxes = _num_boxes(example)
  texts = (list(feature_map['image/object/class/text'].bytes_list.value)
           if 'image/object/class/text' in feature_map else [])
  labels = (list(feature_map['image/object/class/label'].int64_list.value)
            if 'image/object/class/label' in feature_map else [])
  if num_boxes and len(labels) != num_boxes and not (has_label_map and texts):
    raise RecordValidationError(
        '%s has %d boxes but %d image/object/class/label values%s.' % (
            where, num_boxes, len(labels),
            '; it stores class names only: set %s.label_map_path' % field
            if texts and not has_label_map else ''))
  if has_label_map and b'' in texts:
    raise RecordValidationError(
        '%s has an empty image/object/class/text: write the class name of every object.'
        % where)


def validate_records(input_path,
                     load_instance_masks=False,
                     instance_mask_type=mask_types.NUMERICAL_MASKS,
                     label_map_proto_file=None,
                     use_display_name=False,
                     max_records_per_file=20,
                     skip_bad_examples=False,
                     field='input_reader'):
  """Checks that TFRecord files can be decoded as configured; errors name the file and record.

  Reads up to `max_records_per_file` records from the start of every file (no image is
  decoded) and checks them in order, so the first offending record is the one named.

  Args:
    input_path: file pattern or list of patterns (`tf_record_input_reader.input_path`).
    load_instance_masks: the input reader's `load_instance_masks`.
    instance_mask_type: the input reader's `mask_type` (enum value, int or name).
    label_map_proto_file: the input reader's `label_map_path` (optional).
    use_display_name: the input reader's `use_display_name`; ignored, as in the decoder (class
      texts are looked up by `name` and `display_name`).
    max_records_per_file: records read per file.
    skip_bad_examples: the input reader's `skip_bad_examples`: the per-record class checks are
      then left to the decoder, which skips such records; the file-level checks still raise.
    field: the input reader's name in the pipeline config (e.g. 'train_input_reader'), named
      in the messages.

  Class texts not in the label map are not an error (the input pipeline drops and counts those
  objects, as the TF OD API drops them); when none of the texts read is in the label map, which
  points at the wrong label_map_path, one warning is logged.

  Returns:
    dict {file path: {'records_checked': int, 'mask_type': 'PNG_MASKS' | 'NUMERICAL_MASKS' |
    None (no masks seen)}}.

  Raises:
    dataset_builder.InputConfigError: a pattern matches no file.
    label_map_util.LabelMapError: the label map is missing, unreadable or invalid.
    RecordValidationError: a file is not a TFRecord of tf.train.Example; a record has no
      image/encoded; masks are requested but a record with objects has none (re-create them
      with --include_masks) or the records hold the other mask type (set mask_type); classes
      are only stored as text and no label map is given; a class text is empty.
  """
  del use_display_name  # Both keys are always looked up, as in the TF OD API's decoder.
  return _validate(_list_files(input_path), load_instance_masks, instance_mask_type,
                   label_map_proto_file, max_records_per_file, skip_bad_examples, field,
                   stop_after_objects=False)


def _validate(files, load_instance_masks, instance_mask_type, label_map_proto_file, max_records,
              skip_bad_examples, field, stop_after_objects):
  mask_type = mask_types.mask_type_name(instance_mask_type)
  label_map = None
  if label_map_proto_file:
    label_map = label_map_util.get_class_text_to_id_dict(label_map_proto_file)
  report = {}
  texts_seen = set()
  for path in files:
    examples = _read_examples(path, max_records, stop_after_objects)
    seen_kind = None
    for index, example in enumerate(examples):
      where = 'File %s, record %d (image/source_id=%s)' % (path, index, _source_id(example))
      if 'image/encoded' not in example.features.feature:
        raise RecordValidationError('%s has no image/encoded feature: not an object detection '
                                    'record.' % where)
      seen_kind = seen_kind or mask_types.stored_mask_type(example)
      _check_masks(example, where, load_instance_masks, mask_type, field)
      if label_map and 'image/object/class/text' in example.features.feature:
        texts_seen.update(t.decode('utf-8', 'replace') for t in
                          example.features.feature['image/object/class/text'].bytes_list.value
                          if t)
      if not skip_bad_examples:
        _check_classes(example, where, bool(label_map), field)
    report[path] = {'records_checked': len(examples), 'mask_type': seen_kind}
  if texts_seen and not texts_seen & set(label_map):
    texts_seen |= _texts_until_one_in(files, label_map)
    if not texts_seen & set(label_map):
      logging.warning(
          'No class text of the first records of %s is in the label map %s (texts: %s): their '
          'objects are skipped. Check %s.label_map_path.',
          ', '.join(report), label_map_proto_file, ', '.join(sorted(texts_seen)[:10]), field)
  return report


def _texts_until_one_in(files, label_map):
  """Class texts of the files' first records, read until one is in `label_map` (or the limit)."""
  texts = set()
  for path in files:
    try:
      for raw in tf.data.TFRecordDataset(path).take(_MAX_RECORDS_TO_FIND_A_LABEL_MAP_TEXT):
        feature = tf.train.Example.FromString(raw.numpy()).features.feature.get(
            'image/object/class/text')
        if feature is None:
          continue
        texts.update(t.decode('utf-8', 'replace') for t in feature.bytes_list.value if t)
        if texts & set(label_map):
          return texts
    except Exception:  # pylint: disable=broad-except
      continue  # Unreadable files are the first check's and the decoder's to report.
  return texts


def check_first_record(input_reader_config, field='input_reader'):
  """Checks the first record of an input reader's files against its config, before the model.

  For the first file of every `tf_record_input_reader.input_path` entry, reads records up to the
  first one with objects (or masks) and checks it as `validate_records` does: it is a
  tf.train.Example with an image, its masks match `load_instance_masks` / `mask_type`, its
  classes can be decoded with `label_map_path`. No image is decoded, so it takes milliseconds;
  call it before building the model so that a wrong `mask_type` is reported at once.

  Args:
    input_reader_config: an `input_reader_pb2.InputReader`.
    field: its name in the pipeline config ('train_input_reader', 'eval_input_reader[0]'),
      named in the messages.

  Returns:
    dict {file path: {'records_checked': int, 'mask_type': ...}} as `validate_records`.

  Raises:
    dataset_builder.InputConfigError: an input_path entry matches no file.
    label_map_util.LabelMapError: the label map is missing, unreadable or invalid.
    RecordValidationError: the first record with objects does not match the config, e.g.
      'File data/train.record-00000-of-00001, record 0 (image/source_id=9) holds
      NUMERICAL_MASKS (image/object/mask is a float list) but train_input_reader.mask_type is
      PNG_MASKS: set `mask_type: NUMERICAL_MASKS`.'
  """
  from object_detection.builders import dataset_builder  # pylint: disable=g-import-not-at-top
  groups = dataset_builder.list_input_files_per_path(
      list(input_reader_config.tf_record_input_reader.input_path))
  first_files = []
  for group in groups:
    if group[0] not in first_files:
      first_files.append(group[0])
  return _validate(
      first_files,
      load_instance_masks=input_reader_config.load_instance_masks,
      instance_mask_type=input_reader_config.mask_type,
      label_map_proto_file=input_reader_config.label_map_path or None,
      max_records=_MAX_RECORDS_TO_FIND_OBJECTS,
      skip_bad_examples=input_reader_config.skip_bad_examples,
      field=field,
      stop_after_objects=True)


def validate_records_have_masks(file_pattern, instance_mask_type=mask_types.PNG_MASKS):
  """Checks that the records matching `file_pattern` hold masks of `instance_mask_type`.

  Shorthand for `validate_records(file_pattern, load_instance_masks=True, ...)`.

  Raises:
    RecordValidationError: naming the file, telling the user to re-create the records with
      `--include_masks` or to set `mask_type`.
  """
  return validate_records(file_pattern, load_instance_masks=True,
                          instance_mask_type=instance_mask_type)


def detect_mask_type(file_pattern):
  """Returns the mask type stored in the first records: 'PNG_MASKS', 'NUMERICAL_MASKS' or None."""
  for info in validate_records(file_pattern).values():
    if info['mask_type']:
      return info['mask_type']
  return None
