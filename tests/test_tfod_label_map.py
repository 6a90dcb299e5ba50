"""Class text -> id in our decoder is the TF OD API decoder's, on the TF OD API's own records.

Golden fixture `tests/testdata/tfod_golden/label_map/class_lookup.json` (written by the TF OD API
at upstream commit e3c7e300, tools/tfod_golden/label_map.py): label maps, serialized records
(some written by the TF OD API's create_coco_tf_record.py from coco128 images, with COCO
category names as class text) and the `groundtruth_classes` the TF OD API's TfExampleDecoder
returns for them, with use_display_name false and true. Our decoder returns the same ids, -1
included (a text in no item's name or display_name: the input pipeline drops the object). One
deliberate difference: an empty class text, which the TF OD API maps to the last item without a
display_name, is an error here.
"""
import base64
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from object_detection.core import standard_fields as fields
from object_detection.data_decoders import record_validation
from object_detection.data_decoders import tf_example_decoder
from object_detection.utils import label_map_util

_TESTDATA = os.path.join(os.path.dirname(__file__), 'testdata')
with open(os.path.join(_TESTDATA, 'tfod_golden', 'label_map', 'class_lookup.json')) as _f:
  _CASES = json.load(_f)
_SETTINGS = {'use_display_name_false': False, 'use_display_name_true': True}
# Cases where the TF OD API returns an id and our decoder deliberately refuses the record: an empty
# class text (the TF OD API matches it to the empty display_name of the last item without one).
_REFUSED_BY_US = {'empty_text'}


def _refused(name):
  return name in _REFUSED_BY_US


def _label_map_path(tmp_path, name):
  path = tmp_path / (name + '.pbtxt')
  path.write_text(_CASES[name]['label_map'])
  return str(path)


def _write_records(tmp_path, name):
  path = str(tmp_path / (name + '.record'))
  with tf.io.TFRecordWriter(path) as writer:
    for record in _CASES[name]['records']:
      writer.write(base64.b64decode(record))
  return path


def test_fixture_has_the_cases(tmp_path):
  assert set(_CASES) == {
      'coco_converter_mscoco_label_map', 'coco_converter_names_label_map',
      'crossed_name_and_display_name', 'duplicate_display_name', 'names_only', 'unknown_text',
      'empty_text'}
  # The upstream COCO label map is the one in our testdata.
  ours = label_map_util.load_labelmap(os.path.join(_TESTDATA, 'mscoco_label_map.pbtxt'))
  upstream = label_map_util.load_labelmap(
      _label_map_path(tmp_path, 'coco_converter_mscoco_label_map'))
  assert ours == upstream and len(ours.item) == 80


@pytest.mark.parametrize('setting', sorted(_SETTINGS))
@pytest.mark.parametrize('name', sorted(_CASES))
def test_class_ids_match_the_tfod_decoder(tmp_path, name, setting):
  label_map_path = _label_map_path(tmp_path, name)
  decoder = tf_example_decoder.TfExampleDecoder(label_map_proto_file=label_map_path,
                                                use_display_name=_SETTINGS[setting])
  expected_per_record = _CASES[name]['classes'][setting]
  for record, expected in zip(_CASES[name]['records'], expected_per_record):
    serialized = tf.constant(base64.b64decode(record))
    if _refused(name):
      with pytest.raises(tf.errors.InvalidArgumentError,
                         match='image/object/class/text is empty for object'):
        decoder.decode(serialized)
      continue
    out = decoder.decode(serialized)
    np.testing.assert_array_equal(out[fields.InputDataFields.groundtruth_classes].numpy(),
                                  expected)
    # The texts behind the -1 ids, for the pipeline's count of skipped classes.
    texts = tf.train.Example.FromString(serialized.numpy()).features.feature[
        'image/object/class/text'].bytes_list.value
    expected_texts = [t if c == -1 and texts else b'' for t, c in
                      zip(list(texts) or [b''] * len(expected), expected)]
    assert list(out[tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY].numpy()) == expected_texts


def test_fixture_has_minus_one_cases():
  """The fixture pins at least one -1 from the TF OD API (else the test above proves little)."""
  expected = _CASES['unknown_text']['classes']
  assert expected['use_display_name_false'][0] == [1, -1]
  assert expected['use_display_name_true'][0] == [1, -1]


def test_coco_converter_records_decode_with_the_upstream_coco_label_map(tmp_path):
  """TF OD API COCO records + upstream mscoco_label_map.pbtxt, no use_display_name: COCO ids."""
  case = _CASES['coco_converter_mscoco_label_map']
  label_map_path = os.path.join(_TESTDATA, 'mscoco_label_map.pbtxt')
  decoder = tf_example_decoder.TfExampleDecoder(label_map_proto_file=label_map_path)
  for record, expected in zip(case['records'], case['classes']['use_display_name_false']):
    example = tf.train.Example.FromString(base64.b64decode(record))
    feature = example.features.feature
    # The converter writes the COCO names as text (not the label map's "/m/..." names) and no
    # class/label, so the ids can only come from the label map.
    texts = list(feature['image/object/class/text'].bytes_list.value)
    assert texts and not any(t.startswith(b'/m/') for t in texts)
    assert 'image/object/class/label' not in feature
    classes = decoder.decode(tf.constant(base64.b64decode(record)))[
        fields.InputDataFields.groundtruth_classes]
    np.testing.assert_array_equal(classes.numpy(), expected)
  # The file-level check accepts them too.
  records = _write_records(tmp_path, 'coco_converter_mscoco_label_map')
  report = record_validation.validate_records(records, label_map_proto_file=label_map_path)
  assert report[records]['records_checked'] == len(case['records'])


def test_validate_records_agrees_with_the_decoder(tmp_path):
  for name in ('crossed_name_and_display_name', 'duplicate_display_name', 'unknown_text',
               'empty_text'):
    label_map_path = _label_map_path(tmp_path, name)
    records = _write_records(tmp_path, name)
    if _refused(name):
      with pytest.raises(record_validation.RecordValidationError,
                         match='empty image/object/class/text'):
        record_validation.validate_records(records, label_map_proto_file=label_map_path)
    else:
      record_validation.validate_records(records, label_map_proto_file=label_map_path)


def test_unknown_text_is_named_and_the_empty_text_refused(tmp_path):
  # What the TF OD API does with the empty text: the id of the last item without display_name.
  assert _CASES['empty_text']['classes']['use_display_name_false'] == [[2, 1]]
  decoder = tf_example_decoder.TfExampleDecoder(
      label_map_proto_file=_label_map_path(tmp_path, 'empty_text'))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'source_id=7.*image/object/class/text is empty for object\(s\) 0 '):
    decoder.decode(tf.constant(base64.b64decode(_CASES['empty_text']['records'][0])))
  decoder = tf_example_decoder.TfExampleDecoder(
      label_map_proto_file=_label_map_path(tmp_path, 'unknown_text'))
  out = decoder.decode(tf.constant(base64.b64decode(_CASES['unknown_text']['records'][0])))
  assert list(out[tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY].numpy()) == [b'', b'cow']
