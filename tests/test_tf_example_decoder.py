"""Tests of TfExampleDecoder, validate_records and check_first_record (hand-built and real records)."""
import io
import json
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection.builders import dataset_builder
from object_detection.core import standard_fields as fields
from object_detection.data_decoders import record_validation
from object_detection.data_decoders import tf_example_decoder
from object_detection.protos import input_reader_pb2
from object_detection.utils import config_validation
from object_detection.utils import dataset_util
from object_detection.utils import label_map_util

from conftest import COCO128_DIR  # pylint: disable=g-bad-import-order

F = fields.InputDataFields
H, W = 6, 8


def _png(array):
  out = io.BytesIO()
  Image.fromarray(array).save(out, format='PNG')
  return out.getvalue()


def _image():
  rng = np.random.RandomState(0)
  return rng.randint(0, 255, size=(H, W, 3)).astype(np.uint8)


def _masks(n, height=H, width=W):
  masks = np.zeros((n, height, width), np.uint8)
  for i in range(n):
    masks[i, i:i + 2, i:i + 3] = 1
  return masks


def make_example(boxes=((0.1, 0.2, 0.5, 0.6), (0.0, 0.0, 1.0, 1.0)), labels=(1, 3),
                 texts=(b'person', b'car'), masks='png', mask_arrays=None, source_id=b'42',
                 extra=None, drop=()):
  """A serialized example; boxes are (ymin, xmin, ymax, xmax)."""
  boxes = np.asarray(boxes, np.float32).reshape([-1, 4])
  image = _image()
  feature = {
      'image/height': dataset_util.int64_feature(H),
      'image/width': dataset_util.int64_feature(W),
      'image/filename': dataset_util.bytes_feature(b'img.png'),
      'image/source_id': dataset_util.bytes_feature(source_id),
      'image/key/sha256': dataset_util.bytes_feature(b'abc'),
      'image/encoded': dataset_util.bytes_feature(_png(image)),
      'image/format': dataset_util.bytes_feature(b'png'),
      'image/object/bbox/ymin': dataset_util.float_list_feature(boxes[:, 0]),
      'image/object/bbox/xmin': dataset_util.float_list_feature(boxes[:, 1]),
      'image/object/bbox/ymax': dataset_util.float_list_feature(boxes[:, 2]),
      'image/object/bbox/xmax': dataset_util.float_list_feature(boxes[:, 3]),
      'image/object/class/label': dataset_util.int64_list_feature(list(labels)),
      'image/object/class/text': dataset_util.bytes_list_feature(list(texts)),
      'image/object/is_crowd': dataset_util.int64_list_feature([0] * len(boxes)),
      'image/object/area': dataset_util.float_list_feature([float(10 + i)
                                                           for i in range(len(boxes))]),
  }
  mask_arrays = _masks(len(boxes)) if mask_arrays is None else mask_arrays
  if masks == 'png':
    # 255 instead of 1: the decoder must threshold (> 0), as the TF OD API does.
    feature['image/object/mask'] = dataset_util.bytes_list_feature(
        [_png(m * 255) for m in mask_arrays])
  elif masks == 'numerical':
    feature['image/object/mask'] = dataset_util.float_list_feature(
        mask_arrays.astype(np.float32).ravel())
  feature.update(extra or {})
  for key in drop:
    feature.pop(key)
  example = tf.train.Example(features=tf.train.Features(feature=feature))
  return example.SerializeToString()


@pytest.fixture(scope='module')
def label_map_path(tmp_path_factory):
  path = tmp_path_factory.mktemp('labelmap') / 'label_map.pbtxt'
  path.write_text('item { name: "person" id: 1 display_name: "Person" }\n'
                  'item { name: "car" id: 3 display_name: "Car" }\n'
                  'item { name: "dog" id: 18 display_name: "Dog" }\n')
  return str(path)


def _np(tensor_dict):
  return {k: v.numpy() for k, v in tensor_dict.items()}


def test_decode_outputs_dtypes_shapes_and_values():
  decoder = tf_example_decoder.TfExampleDecoder(
      load_instance_masks=True, instance_mask_type=tf_example_decoder.PNG_MASKS)
  out = decoder.decode(tf.constant(make_example()))
  assert out[F.image].dtype == tf.uint8
  assert out[F.groundtruth_boxes].dtype == tf.float32
  assert out[F.groundtruth_classes].dtype == tf.int64
  assert out[F.groundtruth_instance_masks].dtype == tf.uint8
  assert out[F.groundtruth_is_crowd].dtype == tf.bool
  assert out[F.groundtruth_area].dtype == tf.float32
  assert out[F.groundtruth_weights].dtype == tf.float32
  assert out[F.original_image_spatial_shape].dtype == tf.int32
  out = _np(out)
  np.testing.assert_array_equal(out[F.image], _image())
  np.testing.assert_array_equal(out[F.original_image_spatial_shape], [H, W])
  np.testing.assert_allclose(out[F.groundtruth_boxes],
                             [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]])
  np.testing.assert_array_equal(out[F.groundtruth_classes], [1, 3])
  np.testing.assert_array_equal(out[F.groundtruth_weights], [1.0, 1.0])
  np.testing.assert_array_equal(out[F.groundtruth_is_crowd], [False, False])
  np.testing.assert_array_equal(out[F.groundtruth_area], [10.0, 11.0])
  np.testing.assert_array_equal(out[F.groundtruth_difficult], [False, False])
  np.testing.assert_array_equal(out[F.groundtruth_group_of], [False, False])
  np.testing.assert_array_equal(out[F.groundtruth_instance_masks], _masks(2))
  assert out[F.source_id] == b'42'
  assert out[F.key] == b'abc'
  assert out[F.filename] == b'img.png'


def test_optional_per_box_features_are_read_when_present():
  extra = {
      'image/object/weight': dataset_util.float_list_feature([0.5, 2.0]),
      'image/object/difficult': dataset_util.int64_list_feature([1, 0]),
      'image/object/group_of': dataset_util.int64_list_feature([0, 1]),
      'image/object/is_crowd': dataset_util.int64_list_feature([0, 1]),
  }
  out = _np(tf_example_decoder.TfExampleDecoder().decode(make_example(
      extra=extra, drop=('image/object/area',))))
  np.testing.assert_array_equal(out[F.groundtruth_weights], [0.5, 2.0])
  np.testing.assert_array_equal(out[F.groundtruth_difficult], [True, False])
  np.testing.assert_array_equal(out[F.groundtruth_group_of], [False, True])
  np.testing.assert_array_equal(out[F.groundtruth_is_crowd], [False, True])
  # No image/object/area: the box area in pixels.
  np.testing.assert_allclose(out[F.groundtruth_area], [0.4 * H * 0.4 * W, H * W], rtol=1e-5)
  assert F.groundtruth_instance_masks not in out


@pytest.mark.parametrize('mask_type', ['png', 'numerical'])
def test_png_and_numerical_masks_decode_to_the_same_uint8_masks(mask_type):
  masks = _masks(2)
  mask_enum = 'PNG_MASKS' if mask_type == 'png' else tf_example_decoder.NUMERICAL_MASKS
  decoder = tf_example_decoder.TfExampleDecoder(load_instance_masks=True,
                                                instance_mask_type=mask_enum)
  out = decoder.decode(make_example(masks=mask_type, mask_arrays=masks))
  assert out[F.groundtruth_instance_masks].dtype == tf.uint8
  np.testing.assert_array_equal(out[F.groundtruth_instance_masks].numpy(), masks)


@pytest.mark.parametrize('mask_type', ['png', 'numerical'])
def test_zero_instances_give_empty_masks(mask_type):
  decoder = tf_example_decoder.TfExampleDecoder(load_instance_masks=True,
                                                instance_mask_type=mask_type)
  out = _np(decoder.decode(make_example(boxes=np.zeros([0, 4]), labels=(), texts=(),
                                        masks=mask_type, mask_arrays=_masks(0))))
  assert out[F.groundtruth_boxes].shape == (0, 4)
  assert out[F.groundtruth_classes].shape == (0,)
  assert out[F.groundtruth_instance_masks].shape == (0, H, W)
  assert out[F.groundtruth_weights].shape == (0,)


def test_decoder_runs_in_tf_data_map():
  decoder = tf_example_decoder.TfExampleDecoder(load_instance_masks=True,
                                                instance_mask_type='png')
  dataset = tf.data.Dataset.from_tensor_slices([make_example(), make_example(
      boxes=np.zeros([0, 4]), labels=(), texts=(), mask_arrays=_masks(0))]).map(decoder.decode)
  outputs = list(dataset)
  assert [out[F.groundtruth_instance_masks].shape for out in outputs] == [(2, H, W), (0, H, W)]
  np.testing.assert_array_equal(outputs[0][F.groundtruth_instance_masks].numpy(), _masks(2))
  np.testing.assert_allclose(outputs[0][F.groundtruth_boxes].numpy(),
                             [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]])
  np.testing.assert_array_equal(outputs[1][F.image].numpy(), _image())


def test_label_map_text_takes_precedence_over_label(label_map_path):
  serialized = make_example(labels=(7, 7), texts=(b'car', b'dog'))
  out = tf_example_decoder.TfExampleDecoder(label_map_proto_file=label_map_path).decode(
      serialized)
  np.testing.assert_array_equal(out[F.groundtruth_classes].numpy(), [3, 18])
  # Without a label map, class/label is used.
  out = tf_example_decoder.TfExampleDecoder().decode(serialized)
  np.testing.assert_array_equal(out[F.groundtruth_classes].numpy(), [7, 7])
  # With a label map but no class texts, class/label is used.
  out = tf_example_decoder.TfExampleDecoder(label_map_proto_file=label_map_path).decode(
      make_example(labels=(1, 18), texts=()))
  np.testing.assert_array_equal(out[F.groundtruth_classes].numpy(), [1, 18])
  # Texts are looked up by name and by display_name, whatever use_display_name says (as in the
  # TF OD API's decoder, which ignores use_display_name).
  for use_display_name in (False, True):
    decoder = tf_example_decoder.TfExampleDecoder(
        label_map_proto_file=label_map_path, use_display_name=use_display_name)
    out = decoder.decode(make_example(labels=(), texts=(b'Dog', b'person')))
    np.testing.assert_array_equal(out[F.groundtruth_classes].numpy(), [18, 1])
    out = decoder.decode(make_example(labels=(), texts=(b'car', b'Car')))
    np.testing.assert_array_equal(out[F.groundtruth_classes].numpy(), [3, 3])


def test_tf_od_api_style_record_with_text_only_classes(label_map_path):
  # Class names only (no class/label) and PNG masks: decodes through the label map.
  serialized = make_example(labels=(), texts=(b'person', b'car'),
                            drop=('image/object/class/label',))
  decoder = tf_example_decoder.TfExampleDecoder(
      load_instance_masks=True, instance_mask_type='PNG_MASKS',
      label_map_proto_file=label_map_path)
  np.testing.assert_array_equal(decoder.decode(serialized)[F.groundtruth_classes].numpy(),
                                [1, 3])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'source_id=42.*image/object/class/label has 0 values but the record '
                     r'has 2 boxes.*label_map_path'):
    tf_example_decoder.TfExampleDecoder().decode(serialized)


def _decode_error(serialized, **kwargs):
  decoder = tf_example_decoder.TfExampleDecoder(**kwargs)
  with pytest.raises(tf.errors.InvalidArgumentError) as info:
    decoder.decode(tf.constant(serialized))
  return info.value.message


def test_error_mask_size_differs_from_image():
  message = _decode_error(make_example(mask_arrays=_masks(2, H + 1, W)),
                          load_instance_masks=True, instance_mask_type='PNG_MASKS')
  assert 'source_id=42' in message and 'img.png' in message
  assert 'image/object/mask has a mask of size 7x8 but the image is 6x8' in message


def test_error_numerical_mask_size_differs_from_image():
  message = _decode_error(make_example(masks='numerical', mask_arrays=_masks(2, H, W + 1)),
                          load_instance_masks=True, instance_mask_type='NUMERICAL_MASKS')
  assert 'source_id=42' in message
  assert 'image/object/mask holds 108 floats but the record has 2 boxes x 6x8' in message


def test_error_mask_count_differs_from_box_count():
  message = _decode_error(make_example(mask_arrays=_masks(1)), load_instance_masks=True,
                          instance_mask_type='PNG_MASKS')
  assert 'source_id=42' in message
  assert 'image/object/mask has 1 masks but the record has 2 boxes' in message
  assert '--include_masks' not in message  # The hint is for records without any mask.


@pytest.mark.parametrize('mask_type', ['PNG_MASKS', 'NUMERICAL_MASKS'])
def test_error_records_without_masks_name_the_fix(mask_type):
  message = _decode_error(make_example(masks=None), load_instance_masks=True,
                          instance_mask_type=mask_type)
  assert 'source_id=42' in message and 'image/object/mask' in message
  assert 're-created with create_coco_tf_record.py --include_masks' in message


@pytest.mark.parametrize('box', [(0.1, 0.2, 1.2, 0.6), (-0.5, 0.2, 0.5, 0.6)])
def test_error_box_outside_unit_square(box):
  message = _decode_error(make_example(boxes=[box, (0, 0, 1, 1)]))
  assert 'source_id=42' in message
  assert 'image/object/bbox/* holds boxes outside [0, 1]' in message
  assert 'normalized' in message


def test_box_rounding_overshoot_is_clipped():
  out = tf_example_decoder.TfExampleDecoder().decode(
      make_example(boxes=[(0.1, 0.2, 1.0004, 0.6), (0, -0.0001, 1, 1)]))
  np.testing.assert_allclose(out[F.groundtruth_boxes].numpy(),
                             [[0.1, 0.2, 1.0, 0.6], [0, 0, 1, 1]])


def test_error_image_size_differs_from_height_width_features():
  message = _decode_error(make_example(extra={'image/height': dataset_util.int64_feature(7)}))
  assert 'source_id=42' in message
  assert 'image/height x image/width (7x8) differ from the decoded image/encoded (6x8)' in message


def test_error_min_greater_than_max():
  message = _decode_error(make_example(boxes=[(0.5, 0.2, 0.1, 0.6), (0, 0, 1, 1)]))
  assert 'ymin > ymax or xmin > xmax' in message


def test_class_text_not_in_label_map_decodes_to_minus_one(label_map_path):
  """As the TF OD API's decoder: an unknown text is class -1 (the pipeline drops the object)."""
  for skip in (False, True):
    decoder = tf_example_decoder.TfExampleDecoder(label_map_proto_file=label_map_path,
                                                  skip_bad_examples=skip)
    out = _np(decoder.decode(tf.constant(make_example(texts=(b'unicorn', b'Car')))))
    np.testing.assert_array_equal(out[F.groundtruth_classes], [-1, 3])
    assert tf_example_decoder.UNRECOGNIZED_CLASS_ID == -1
    # The text behind each -1, for the pipeline's count of skipped classes.
    assert list(out[tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY]) == [b'unicorn', b'']
    if skip:
      assert out[tf_example_decoder.RECORD_IS_VALID_KEY]
  # Every object unknown, and no object: still fine.
  out = _np(tf_example_decoder.TfExampleDecoder(label_map_proto_file=label_map_path).decode(
      make_example(texts=(b'cow', b'cow'))))
  np.testing.assert_array_equal(out[F.groundtruth_classes], [-1, -1])
  assert list(out[tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY]) == [b'cow', b'cow']
  # Classes from class/label (no texts): nothing to name.
  out = _np(tf_example_decoder.TfExampleDecoder(label_map_proto_file=label_map_path).decode(
      make_example(labels=(-1, 3), texts=())))
  np.testing.assert_array_equal(out[F.groundtruth_classes], [-1, 3])
  assert list(out[tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY]) == [b'', b'']
  # Without a label map there is no text output.
  assert tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY not in tf_example_decoder.TfExampleDecoder(
  ).decode(make_example())


def test_error_empty_class_text(label_map_path):
  # The TF OD API maps an empty text to an arbitrary item (the last one without display_name).
  message = _decode_error(make_example(texts=(b'person', b'')),
                          label_map_proto_file=label_map_path)
  assert 'source_id=42' in message
  assert 'image/object/class/text is empty for object(s) 1 (0-based)' in message


def test_nan_box_passes_through_and_other_boxes_are_still_checked():
  """As the TF OD API's decoder: a NaN coordinate stays NaN (the pipeline drops the object)."""
  nan = float('nan')
  for skip in (False, True):
    decoder = tf_example_decoder.TfExampleDecoder(skip_bad_examples=skip,
                                                  load_instance_masks=True,
                                                  instance_mask_type='PNG_MASKS')
    out = _np(decoder.decode(make_example(boxes=[(0.1, nan, 0.5, 0.6), (0, -0.0001, 1, 1)])))
    boxes = out[F.groundtruth_boxes]
    assert np.isnan(boxes[0, 1]) and not np.isnan(boxes[0, [0, 2, 3]]).any()
    np.testing.assert_allclose(boxes[0, [0, 2, 3]], [0.1, 0.5, 0.6])
    np.testing.assert_allclose(boxes[1], [0, 0, 1, 1])  # still clipped
    assert out[F.groundtruth_instance_masks].shape[0] == 2
    if skip:
      assert out[tf_example_decoder.RECORD_IS_VALID_KEY]
  # A NaN box does not hide another box's error.
  message = _decode_error(make_example(boxes=[(nan, nan, nan, nan), (0.1, 0.2, 1.2, 0.6)]))
  assert 'holds boxes outside [0, 1] (ymin, xmin, ymax, xmax = 0.1000, 0.2000, 1.2000' in message
  message = _decode_error(make_example(boxes=[(nan, 0, 0, 0), (0.5, 0.2, 0.1, 0.6)]))
  assert 'ymin > ymax or xmin > xmax' in message


def test_error_is_raised_inside_tf_data_with_record_name():
  decoder = tf_example_decoder.TfExampleDecoder(load_instance_masks=True,
                                                instance_mask_type='PNG_MASKS')
  dataset = tf.data.Dataset.from_tensor_slices(
      [make_example(), make_example(mask_arrays=_masks(1), source_id=b'777')]).map(
          decoder.decode)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'source_id=777.*image/object/mask has 1 masks but the record has 2'):
    for _ in dataset:
      pass


def test_mask_type_spellings():
  value = tf_example_decoder.mask_type_value
  assert value('png') == value('PNG_MASKS') == value(2) == tf_example_decoder.PNG_MASKS
  assert value('numerical') == value(1) == value(0) == value('DEFAULT') == 1
  for bad in ('jpeg', 7, None):
    with pytest.raises(config_validation.ConfigError) as info:
      value(bad)
    assert str(info.value) == (
        'Unknown instance mask type %r: use PNG_MASKS (2) or NUMERICAL_MASKS (1) (input reader '
        'field `mask_type`).' % (bad,))


def test_mask_type_enum_of_the_schema():
  assert tf_example_decoder.mask_type_value(input_reader_pb2.PNG_MASKS) == 2
  assert tf_example_decoder.mask_type_value(input_reader_pb2.NUMERICAL_MASKS) == 1
  assert tf_example_decoder.mask_type_value(input_reader_pb2.DEFAULT) == 1


def test_unsupported_options_are_rejected(tmp_path):
  with pytest.raises(config_validation.ConfigError) as info:
    tf_example_decoder.TfExampleDecoder(num_keypoints=17)
  assert str(info.value) == ('TfExampleDecoder option num_keypoints=17 is not supported (instance '
                             'segmentation only); remove it from the input reader config.')
  with pytest.raises(label_map_util.LabelMapError) as info:
    tf_example_decoder.TfExampleDecoder(label_map_proto_file='/no/such/label_map.pbtxt')
  assert str(info.value) == ('Label map file not found: /no/such/label_map.pbtxt (check '
                             '`label_map_path` in the input reader config).')
  empty = tmp_path / 'empty.pbtxt'
  empty.write_text('# no items\n')
  with pytest.raises(label_map_util.LabelMapError) as info:
    tf_example_decoder.TfExampleDecoder(label_map_proto_file=str(empty))
  assert str(info.value) == (
      'Label map %s has no items: list the classes (item { name: "..." id: 1 }) or fix '
      '`label_map_path` in the input reader config.' % empty)


def test_label_maps_with_duplicate_or_zero_ids_are_refused_naming_the_file(tmp_path):
  # The decoder and the file check read label maps through label_map_util, with its checks.
  duplicate = tmp_path / 'duplicate.pbtxt'
  duplicate.write_text('item { name: "cat" id: 1 } item { name: "dog" id: 1 }')
  zero = tmp_path / 'zero.pbtxt'
  zero.write_text('item { name: "cat" id: 0 } item { name: "dog" id: 1 }')
  expected = {
      duplicate: "Label map %s: id 1 is used by both 'cat' and 'dog'; give every class its own "
                 "id." % duplicate,
      zero: "Label map %s: item 'cat' has id 0; id 0 is reserved for the background class: "
            "number the classes from 1." % zero,
  }
  records = _write_records(tmp_path / 'ok.record', [make_example()])
  for path, message in expected.items():
    with pytest.raises(label_map_util.LabelMapError) as info:
      tf_example_decoder.TfExampleDecoder(label_map_proto_file=str(path))
    assert str(info.value) == message
    with pytest.raises(label_map_util.LabelMapError) as info:
      tf_example_decoder.validate_records(records, label_map_proto_file=str(path))
    assert str(info.value) == message


def _write_records(path, serialized_list):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for serialized in serialized_list:
      writer.write(serialized)
  return str(path)


def test_validate_records_without_masks_names_file_and_flag(tmp_path):
  path = _write_records(tmp_path / 'nomask.record-00000-of-00001', [make_example(masks=None)])
  with pytest.raises(tf_example_decoder.RecordValidationError) as info:
    tf_example_decoder.validate_records_have_masks(str(tmp_path / 'nomask.record-*'))
  assert str(info.value) == (
      'File %s, record 0 (image/source_id=42) has 2 objects but no image/object/mask, and '
      'input_reader.load_instance_masks is true: re-create the records with '
      'dataset_tools/create_coco_tf_record.py --include_masks (or set load_instance_masks: false '
      'if the model has no mask head).' % path)
  # Without load_instance_masks the same file is fine.
  report = tf_example_decoder.validate_records(path)
  assert report == {path: {'records_checked': 1, 'mask_type': None}}


def test_validate_records_skips_leading_records_without_objects(tmp_path):
  empty = make_example(boxes=np.zeros([0, 4]), labels=(), texts=(), masks=None)
  path = _write_records(tmp_path / 'a.record', [empty, make_example(masks=None)])
  with pytest.raises(tf_example_decoder.RecordValidationError,
                     match=r'^File .*a\.record, record 1 \(image/source_id=42\) has 2 objects but '
                           r'no image/object/mask'):
    tf_example_decoder.validate_records(path, load_instance_masks=True,
                                        instance_mask_type='PNG_MASKS')


def _mismatch(path, stored, configured, field='input_reader', source_id='42', index=0):
  return ('File %s, record %d (image/source_id=%s) holds %s (image/object/mask is a %s) but '
          '%s.mask_type is %s: set `mask_type: %s`.' % (
              path, index, source_id, stored,
              'list of PNGs' if stored == 'PNG_MASKS' else 'float list', field, configured,
              stored))


def test_validate_records_mask_type_mismatch(tmp_path):
  path = _write_records(tmp_path / 'png.record', [make_example(masks='png')])
  with pytest.raises(tf_example_decoder.RecordValidationError) as info:
    tf_example_decoder.validate_records(path, load_instance_masks=True,
                                        instance_mask_type='NUMERICAL_MASKS')
  assert str(info.value) == _mismatch(path, 'PNG_MASKS', 'NUMERICAL_MASKS')
  num_path = _write_records(tmp_path / 'num.record', [make_example(masks='numerical')])
  with pytest.raises(tf_example_decoder.RecordValidationError) as info:
    tf_example_decoder.validate_records(num_path, load_instance_masks=True,
                                        instance_mask_type='PNG_MASKS',
                                        field='eval_input_reader[0]')
  assert str(info.value) == _mismatch(num_path, 'NUMERICAL_MASKS', 'PNG_MASKS',
                                      'eval_input_reader[0]')
  # A record without objects still shows its mask type by its (empty) mask list.
  empty_png = _write_records(tmp_path / 'empty_png.record', [make_example(
      boxes=np.zeros([0, 4]), labels=(), texts=(), masks='png', mask_arrays=_masks(0),
      source_id=b'5')])
  with pytest.raises(tf_example_decoder.RecordValidationError) as info:
    tf_example_decoder.validate_records(empty_png, load_instance_masks=True,
                                        instance_mask_type='NUMERICAL_MASKS')
  assert str(info.value) == _mismatch(empty_png, 'PNG_MASKS', 'NUMERICAL_MASKS', source_id='5')
  assert tf_example_decoder.detect_mask_type(path) == 'PNG_MASKS'
  assert tf_example_decoder.detect_mask_type(num_path) == 'NUMERICAL_MASKS'
  report = tf_example_decoder.validate_records([path], load_instance_masks=True,
                                               instance_mask_type=2)
  assert report[path]['mask_type'] == 'PNG_MASKS'


def test_validate_records_bad_files(tmp_path, label_map_path):
  # Globbing is the dataset builder's (one place), with its error.
  with pytest.raises(dataset_builder.InputConfigError,
                     match=r"No file matches '.*nothing-\*' \(tf_record_input_reader.input_path"):
    tf_example_decoder.validate_records(str(tmp_path / 'nothing-*'))
  garbage = tmp_path / 'garbage.record'
  garbage.write_bytes(b'this is not a tfrecord file at all, just some bytes' * 3)
  with pytest.raises(tf_example_decoder.RecordValidationError,
                     match='garbage.record is not a readable TFRecord'):
    tf_example_decoder.validate_records(str(garbage))
  text_only = _write_records(tmp_path / 'text.record', [make_example(
      labels=(), texts=(b'person', b'car'), drop=('image/object/class/label',))])
  with pytest.raises(tf_example_decoder.RecordValidationError, match='set input_reader.label_map_path'):
    tf_example_decoder.validate_records(text_only)
  tf_example_decoder.validate_records(text_only, label_map_proto_file=label_map_path)
  # A class text not in the label map is not an error (the pipeline drops those objects).
  unknown = _write_records(tmp_path / 'unknown.record',
                           [make_example(texts=(b'person', b'unicorn'))])
  tf_example_decoder.validate_records(unknown, label_map_proto_file=label_map_path)
  empty = _write_records(tmp_path / 'empty.record', [make_example(texts=(b'person', b''))])
  with pytest.raises(tf_example_decoder.RecordValidationError,
                     match='empty.record, record 0 .*empty image/object/class/text'):
    tf_example_decoder.validate_records(empty, label_map_proto_file=label_map_path)


def test_validate_records_warns_when_no_text_is_in_the_label_map(tmp_path, label_map_path,
                                                                 caplog):
  path = _write_records(tmp_path / 'farm.record', [make_example(texts=(b'cow', b'sheep'))])
  tf_example_decoder.validate_records(path, label_map_proto_file=label_map_path)
  warnings = [r.getMessage() for r in caplog.records if 'label map' in r.getMessage()]
  assert len(warnings) == 1
  assert path in warnings[0] and 'cow, sheep' in warnings[0] and 'label_map_path' in warnings[0]
  caplog.clear()
  partly = _write_records(tmp_path / 'partly.record', [make_example(texts=(b'cow', b'car'))])
  tf_example_decoder.validate_records(partly, label_map_proto_file=label_map_path)
  assert not [r for r in caplog.records if 'label map' in r.getMessage()]


# ---------------------------------------------------------------- skip_bad_examples

_PNG = dict(load_instance_masks=True, instance_mask_type='PNG_MASKS')
_NUMERICAL = dict(load_instance_masks=True, instance_mask_type='NUMERICAL_MASKS')
# (example kwargs, decoder kwargs, text the error must contain): every bad-record case above.
_BAD_RECORDS = {
    'mask_size': (dict(mask_arrays=_masks(2, H + 1, W)), _PNG,
                  'image/object/mask has a mask of size 7x8 but the image is 6x8'),
    'numerical_mask_size': (dict(masks='numerical', mask_arrays=_masks(2, H, W + 1)), _NUMERICAL,
                            'image/object/mask holds 108 floats but the record has 2 boxes'),
    'png_mask_count': (dict(mask_arrays=_masks(1)), _PNG,
                       'image/object/mask has 1 masks but the record has 2 boxes'),
    'numerical_mask_count': (dict(masks='numerical', mask_arrays=_masks(1)), _NUMERICAL,
                             'image/object/mask holds 48 floats but the record has 2 boxes'),
    'no_masks': (dict(masks=None), _PNG, '--include_masks'),
    'box_outside': (dict(boxes=[(0.1, 0.2, 1.2, 0.6), (0, 0, 1, 1)]), {},
                    'image/object/bbox/* holds boxes outside [0, 1]'),
    'box_min_max': (dict(boxes=[(0.5, 0.2, 0.1, 0.6), (0, 0, 1, 1)]), {},
                    'ymin > ymax or xmin > xmax'),
    'bbox_lengths': (dict(extra={'image/object/bbox/xmax': dataset_util.float_list_feature(
        [0.6])}), {}, 'image/object/bbox/{ymin,xmin,ymax,xmax} have different lengths'),
    'label_count': (dict(labels=(1,), texts=()), {},
                    'image/object/class/label has 1 values but the record has 2 boxes'),
    'height_width': (dict(extra={'image/height': dataset_util.int64_feature(7)}), {},
                     'image/height x image/width (7x8) differ from the decoded image/encoded'),
}


@pytest.mark.parametrize('case', sorted(_BAD_RECORDS))
def test_skip_bad_examples_reports_instead_of_raising(case):
  example_kwargs, decoder_kwargs, expected = _BAD_RECORDS[case]
  serialized = make_example(source_id=b'77', **example_kwargs)
  # Raising mode: the same record is an error with the same message.
  assert expected in _decode_error(serialized, **decoder_kwargs)
  decoder = tf_example_decoder.TfExampleDecoder(skip_bad_examples=True, **decoder_kwargs)
  out = decoder.decode(tf.constant(serialized))
  assert not out[tf_example_decoder.RECORD_IS_VALID_KEY].numpy()
  error = out[tf_example_decoder.RECORD_ERROR_KEY].numpy().decode()
  assert error.startswith('record image/source_id=77 (image/filename=img.png): '), error
  assert expected in error


def test_skip_bad_examples_empty_class_text(label_map_path):
  decoder = tf_example_decoder.TfExampleDecoder(skip_bad_examples=True,
                                                label_map_proto_file=label_map_path)
  out = decoder.decode(tf.constant(make_example(texts=(b'', b'unicorn'))))
  assert not out[tf_example_decoder.RECORD_IS_VALID_KEY].numpy()
  assert 'class/text is empty for object(s) 0' in out[
      tf_example_decoder.RECORD_ERROR_KEY].numpy().decode()


@pytest.mark.parametrize('decoder_kwargs', [_PNG, _NUMERICAL])
def test_skip_bad_examples_leaves_good_records_unchanged(decoder_kwargs):
  serialized = make_example(masks='png' if decoder_kwargs is _PNG else 'numerical')
  strict = _np(tf_example_decoder.TfExampleDecoder(**decoder_kwargs).decode(
      tf.constant(serialized)))
  skipping = _np(tf_example_decoder.TfExampleDecoder(skip_bad_examples=True, **decoder_kwargs)
                 .decode(tf.constant(serialized)))
  assert skipping.pop(tf_example_decoder.RECORD_IS_VALID_KEY)
  assert skipping.pop(tf_example_decoder.RECORD_ERROR_KEY).endswith(b': ')
  assert strict.keys() == skipping.keys()
  for key in strict:
    np.testing.assert_array_equal(strict[key], skipping[key], err_msg=key)


def test_validate_records_leaves_record_checks_to_the_decoder_when_skipping(tmp_path,
                                                                            label_map_path):
  path = _write_records(tmp_path / 'empty.record', [make_example(texts=(b'person', b''))])
  with pytest.raises(tf_example_decoder.RecordValidationError, match='empty'):
    tf_example_decoder.validate_records(path, label_map_proto_file=label_map_path)
  tf_example_decoder.validate_records(path, label_map_proto_file=label_map_path,
                                      skip_bad_examples=True)


# ---------------------------------------------------------------- check_first_record (real data)


def _sample_examples(num_images, mask_type):
  """Serialized records of the first `num_images` coco128_seg val images (real photos, masks)."""
  from object_detection.dataset_tools import coco_tf_record  # pylint: disable=g-import-not-at-top
  with open(os.path.join(COCO128_DIR, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  categories = {c['id']: c['name'] for c in coco['categories']}
  serialized = []
  for image in sorted(coco['images'], key=lambda im: im['id'])[:num_images]:
    annotations = [a for a in coco['annotations'] if a['image_id'] == image['id']]
    example = coco_tf_record.create_tf_example(
        image, annotations, os.path.join(COCO128_DIR, 'images'), categories,
        include_masks=mask_type is not None, mask_type=mask_type or 'png')[0]
    serialized.append((str(image['id']), example.SerializeToString()))
  return serialized


@pytest.fixture(scope='module')
def sample_records(tmp_path_factory):
  """{'png' | 'numerical' | 'none': (path, [source_id, ...])}: 2 real records per file."""
  root = tmp_path_factory.mktemp('sample_records')
  out = {}
  for name, mask_type in (('png', 'png'), ('numerical', 'numerical'), ('none', None)):
    examples = _sample_examples(2, mask_type)
    path = _write_records(root / ('%s.record-00000-of-00001' % name), [s for _, s in examples])
    out[name] = (path, [source_id for source_id, _ in examples])
  return out


def _reader(paths, extra):
  text = 'tf_record_input_reader { %s } %s' % (
      ' '.join('input_path: "%s"' % p for p in paths), extra)
  return text_format.Merge(text, input_reader_pb2.InputReader())


@pytest.mark.parametrize('records,configured', [('png', 'NUMERICAL_MASKS'),
                                                ('numerical', 'PNG_MASKS')])
def test_check_first_record_names_file_record_and_field_of_a_wrong_mask_type(
    sample_records, records, configured):
  path, source_ids = sample_records[records]
  stored = 'PNG_MASKS' if records == 'png' else 'NUMERICAL_MASKS'
  config = _reader([path], 'load_instance_masks: true mask_type: %s' % configured)
  with pytest.raises(record_validation.RecordValidationError) as info:
    record_validation.check_first_record(config, 'train_input_reader')
  assert str(info.value) == _mismatch(path, stored, configured, 'train_input_reader',
                                      source_ids[0])
  assert isinstance(info.value, config_validation.ConfigError)
  # The matching config passes, having read only the first record.
  config.mask_type = getattr(input_reader_pb2, stored)
  assert record_validation.check_first_record(config, 'train_input_reader') == {
      path: {'records_checked': 1, 'mask_type': stored}}


def test_check_first_record_without_masks(sample_records):
  path, source_ids = sample_records['none']
  config = _reader([path], 'load_instance_masks: true mask_type: PNG_MASKS')
  with pytest.raises(record_validation.RecordValidationError) as info:
    record_validation.check_first_record(config, 'eval_input_reader[0]')
  num_objects = len(tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(
      path))).numpy()).features.feature['image/object/bbox/ymin'].float_list.value)
  assert num_objects > 0
  assert str(info.value) == (
      'File %s, record 0 (image/source_id=%s) has %d objects but no image/object/mask, and '
      'eval_input_reader[0].load_instance_masks is true: re-create the records with '
      'dataset_tools/create_coco_tf_record.py --include_masks (or set load_instance_masks: false '
      'if the model has no mask head).' % (path, source_ids[0], num_objects))
  # Not loading masks: nothing to check about them.
  config.load_instance_masks = False
  assert record_validation.check_first_record(config)[path]['mask_type'] is None


def test_check_first_record_reads_only_up_to_the_first_record_with_objects(sample_records,
                                                                           tmp_path):
  png_path, _ = sample_records['png']
  real = [r.numpy() for r in tf.data.TFRecordDataset(png_path)]
  empty = make_example(boxes=np.zeros([0, 4]), labels=(), texts=(), masks=None,
                       source_id=b'empty')
  # An empty record first, then a real one, then a record that breaks the class check.
  path = _write_records(tmp_path / 'mixed.record', [empty, real[0], make_example(labels=(1,))])
  config = _reader([path, png_path], 'load_instance_masks: true mask_type: PNG_MASKS')
  report = record_validation.check_first_record(config, 'train_input_reader')
  assert report == {path: {'records_checked': 2, 'mask_type': 'PNG_MASKS'},
                    png_path: {'records_checked': 1, 'mask_type': 'PNG_MASKS'}}
  # validate_records reads further and finds record 2.
  with pytest.raises(record_validation.RecordValidationError,
                     match=r'mixed\.record, record 2 \(image/source_id=42\) has 2 boxes but 1 '
                           r'image/object/class/label values; it stores class names only: set '
                               r'input_reader\.label_map_path\.$'):
    record_validation.validate_records(path, load_instance_masks=True,
                                       instance_mask_type='PNG_MASKS')
  # A wrong mask type is found on that first record with objects (record 1), naming it.
  config.mask_type = input_reader_pb2.NUMERICAL_MASKS
  with pytest.raises(record_validation.RecordValidationError, match=r'mixed\.record, record 1 '):
    record_validation.check_first_record(config, 'train_input_reader')


def test_check_first_record_bad_paths_and_label_maps(tmp_path, sample_records):
  with pytest.raises(dataset_builder.InputConfigError, match=r"No file matches '.*nothing\*'"):
    record_validation.check_first_record(_reader([str(tmp_path / 'nothing*')], ''))
  label_map = tmp_path / 'duplicate.pbtxt'
  label_map.write_text('item { name: "person" id: 1 } item { name: "car" id: 1 }')
  config = _reader([sample_records['png'][0]], 'label_map_path: "%s"' % label_map)
  with pytest.raises(label_map_util.LabelMapError,
                     match=r'^Label map .*duplicate.pbtxt: id 1 is used by both'):
    record_validation.check_first_record(config)
