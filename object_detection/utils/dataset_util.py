"""Helpers to build `tf.train.Example` features, with the TF OD API's names.

Same functions as the TF OD API's `object_detection/utils/dataset_util.py` (`int64_feature`,
`bytes_list_feature`, ...), so dataset scripts written against it run unchanged.

Only the protobuf classes of `tf.train` are used here (no TF ops), so these helpers are safe to
call in forked worker processes.
"""
import tensorflow as tf


def int64_feature(value):
  """Returns a `tf.train.Feature` holding one int64 `value`."""
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def int64_list_feature(value):
  """Returns a `tf.train.Feature` holding the int64 sequence `value` (may be empty)."""
  return tf.train.Feature(int64_list=tf.train.Int64List(value=value))


def bytes_feature(value):
  """Returns a `tf.train.Feature` holding one bytes `value` (encode str with utf-8 first)."""
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def bytes_list_feature(value):
  """Returns a `tf.train.Feature` holding the bytes sequence `value` (may be empty)."""
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=value))


def float_feature(value):
  """Returns a `tf.train.Feature` holding one float32 `value`."""
  return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def float_list_feature(value):
  """Returns a `tf.train.Feature` holding the float32 sequence `value` (may be empty)."""
  return tf.train.Feature(float_list=tf.train.FloatList(value=value))


def read_examples_list(path):
  """Reads an examples list file (one example per line, first token of each line).

  Args:
    path: path of a text file such as the PASCAL `trainval.txt` ("name [label]" per line).

  Returns:
    list of example names (str), blank lines ignored.
  """
  with tf.io.gfile.GFile(path) as fid:
    lines = fid.readlines()
  return [line.strip().split(' ')[0] for line in lines if line.strip()]


def recursive_parse_xml_to_dict(xml):
  """Parses an XML tree (lxml / ElementTree element) into a nested dict.

  As in the TF OD API: children whose tag is `object` are gathered in a list.

  Args:
    xml: the element.

  Returns:
    dict {tag: text or nested dict}.
  """
  if not len(xml):  # pylint: disable=g-explicit-length-test
    return {xml.tag: xml.text}
  result = {}
  for child in xml:
    child_result = recursive_parse_xml_to_dict(child)
    if child.tag != 'object':
      result[child.tag] = child_result[child.tag]
    else:
      result.setdefault(child.tag, []).append(child_result[child.tag])
  return {xml.tag: result}
