"""Decodes semantic segmentation records (`dataset_tools/create_semantic_tf_record.py`).

A record holds the image part of the TF OD API keys and the label mask under the keys of TF
models' DeepLab `build_data.py` (see `object_detection.dataset_tools.semantic_tf_record`):

  image/encoded, image/format                  the image (JPEG or PNG)
  image/height, image/width                    int64, its size
  image/source_id, image/filename, image/key/sha256
  image/segmentation/class/encoded             single-channel PNG, one class id per pixel
                                               (0 = background, 255 = ignore)
  image/segmentation/class/format              'png'

`SemanticSegmentationDecoder().decode(serialized)` returns a dict of tensors:

  'image'                         uint8 [H, W, 3]
  'groundtruth_semantic'          uint8 [H, W] class ids (int32 with `label_dtype=tf.int32`)
  'source_id', 'filename', 'key'  string scalars
  'original_image_spatial_shape'  int32 [2], (H, W)

A record without the label mask (e.g. an instance segmentation record of
create_coco_tf_record.py), a mask that is not a single-channel PNG or whose size differs from
the image, and image/height / image/width that differ from the decoded image fail: called
eagerly, `decode` raises `SemanticRecordError` (a ValueError) with one line naming the record and
what is wrong; inside `tf.data` (graph mode) the iterator raises tf.errors.InvalidArgumentError,
and `error_line(error)` gives that same line.
"""
import re

import tensorflow as tf

SEGMENTATION_KEY = 'image/segmentation/class/encoded'
SEGMENTATION_FORMAT_KEY = 'image/segmentation/class/format'
IGNORE_LABEL = 255

IMAGE = 'image'
GROUNDTRUTH_SEMANTIC = 'groundtruth_semantic'
SOURCE_ID = 'source_id'
FILENAME = 'filename'
KEY = 'key'
ORIGINAL_IMAGE_SPATIAL_SHAPE = 'original_image_spatial_shape'

_RECORD_MESSAGE = re.compile(r'record image/source_id=[^\n]*')


class SemanticRecordError(ValueError):
  """A record that is not a valid semantic segmentation record (one-line message)."""


def error_line(error):
  """The one-line message of a decoding failure.

  Args:
    error: a `SemanticRecordError`, or the tf.errors.InvalidArgumentError a tf.data iterator
      raises when `decode` fails inside `Dataset.map`.

  Returns:
    str: 'record image/source_id=... (image/filename=...) <what is wrong>'; for other errors
    their first line.
  """
  text = str(error.message if isinstance(error, tf.errors.OpError) else error)
  match = _RECORD_MESSAGE.search(text)
  if match:
    line = match.group(0).rstrip("]'")
  else:
    line = text.splitlines()[0] if text else type(error).__name__
  return ' '.join(line.split())


NO_MASK_MESSAGE = ('has no image/segmentation/class/encoded: it is not a semantic segmentation '
                   'record (convert the data with dataset_tools/create_semantic_tf_record.py)')


class SemanticSegmentationDecoder(object):
  """Decodes a serialized `tf.train.Example` of a semantic segmentation record.

  Args:
    label_dtype: tf.uint8 (default) or tf.int32, the dtype of 'groundtruth_semantic'.
  """

  def __init__(self, label_dtype=tf.uint8):
    if label_dtype not in (tf.uint8, tf.int32):
      raise ValueError('label_dtype must be tf.uint8 or tf.int32, got %r.' % (label_dtype,))
    self._label_dtype = label_dtype
    self.keys_to_features = {
        'image/encoded': tf.io.FixedLenFeature((), tf.string, default_value=''),
        'image/format': tf.io.FixedLenFeature((), tf.string, default_value='jpeg'),
        'image/height': tf.io.FixedLenFeature((), tf.int64, default_value=-1),
        'image/width': tf.io.FixedLenFeature((), tf.int64, default_value=-1),
        'image/source_id': tf.io.FixedLenFeature((), tf.string, default_value=''),
        'image/filename': tf.io.FixedLenFeature((), tf.string, default_value=''),
        'image/key/sha256': tf.io.FixedLenFeature((), tf.string, default_value=''),
        SEGMENTATION_KEY: tf.io.FixedLenFeature((), tf.string, default_value=''),
        SEGMENTATION_FORMAT_KEY: tf.io.FixedLenFeature((), tf.string, default_value='png'),
    }

  def decode(self, serialized):
    """Decodes one serialized example (graph or eager; usable in `tf.data.Dataset.map`).

    Args:
      serialized: string scalar tensor.

    Returns:
      dict of tensors (module docstring).

    Raises:
      SemanticRecordError (eager) / tf.errors.InvalidArgumentError (when a graph runs): the
        record has no label mask, its format is not png, it is not single-channel, or its size
        differs from the image's (`error_line` gives the one-line message).
    """
    if tf.executing_eagerly():
      try:
        return self._decode(serialized)
      except tf.errors.InvalidArgumentError as e:
        raise SemanticRecordError(error_line(e)) from None
    return self._decode(serialized)

  def _decode(self, serialized):
    f = tf.io.parse_single_example(serialized, self.keys_to_features)
    where = tf.strings.join(['record image/source_id=', f['image/source_id'],
                             ' (image/filename=', f['image/filename'], ') '])

    def check(condition, *parts):
      message = tf.strings.join([p if isinstance(p, str) or p.dtype == tf.string
                                 else tf.as_string(p) for p in parts])
      return tf.debugging.Assert(condition, [tf.strings.join([where, message])])

    encoded_mask = f[SEGMENTATION_KEY]
    has_mask = check(tf.strings.length(encoded_mask) > 0, NO_MASK_MESSAGE)
    is_png = check(tf.equal(tf.strings.lower(f[SEGMENTATION_FORMAT_KEY]), 'png'),
                   'has image/segmentation/class/format=', f[SEGMENTATION_FORMAT_KEY],
                   ': only png label masks are read')
    image = tf.io.decode_image(f['image/encoded'], channels=3, expand_animations=False)
    image = tf.cast(image, tf.uint8)
    image.set_shape([None, None, 3])
    with tf.control_dependencies([has_mask, is_png]):
      mask = tf.io.decode_png(encoded_mask, channels=0, dtype=tf.uint8)
    image_shape = tf.shape(image)[:2]
    mask_shape = tf.shape(mask)
    checks = [
        check(tf.equal(mask_shape[2], 1), 'has a label mask with ', mask_shape[2],
              ' channels: it must be a single-channel PNG of class ids'),
        check(tf.reduce_all(tf.equal(mask_shape[:2], image_shape)), 'has a label mask of ',
              mask_shape[0], 'x', mask_shape[1], ' (HxW) for an image of ', image_shape[0], 'x',
              image_shape[1]),
        check(tf.logical_and(
            tf.logical_or(f['image/height'] < 0,
                          tf.equal(tf.cast(f['image/height'], tf.int32), image_shape[0])),
            tf.logical_or(f['image/width'] < 0,
                          tf.equal(tf.cast(f['image/width'], tf.int32), image_shape[1]))),
              'has image/height x image/width ', f['image/height'], 'x', f['image/width'],
              ' but the decoded image is ', image_shape[0], 'x', image_shape[1]),
    ]
    with tf.control_dependencies(checks):
      labels = tf.identity(mask[:, :, 0])
    labels.set_shape([None, None])
    if self._label_dtype != tf.uint8:
      labels = tf.cast(labels, self._label_dtype)
    return {
        IMAGE: image,
        GROUNDTRUTH_SEMANTIC: labels,
        SOURCE_ID: f['image/source_id'],
        FILENAME: f['image/filename'],
        KEY: f['image/key/sha256'],
        ORIGINAL_IMAGE_SPATIAL_SHAPE: tf.cast(image_shape, tf.int32),
    }
