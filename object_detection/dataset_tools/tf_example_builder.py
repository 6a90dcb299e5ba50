"""Builds one image's `tf.train.Example` with the TF OD API's instance-segmentation keys.

Every converter (COCO JSON, Open Images CSV + mask PNGs, instance-ID PNGs, per-instance PNG
folders) writes its records through `build_example`, so they all carry the same keys and dtypes
as the TF OD API's `create_coco_tf_record.py`:

  image/height, image/width            int64, pixels
  image/filename                       bytes
  image/source_id                      bytes
  image/key/sha256                     bytes, hex sha256 of image/encoded
  image/encoded, image/format          bytes ('jpeg' or 'png')
  image/object/bbox/{xmin,xmax,ymin,ymax}  float, normalized to [0, 1] by width / height
  image/object/class/text              bytes, class name
  image/object/class/label             int64, class id (1-based, the label map's)
  image/object/is_crowd                int64, 0 / 1
  image/object/area                    float, pixels
  image/object/mask (masks given)      'png': one whole-image single-channel PNG per instance,
                                       values 0/1 (input reader mask_type: PNG_MASKS);
                                       'numerical': float list N*H*W row-major (NUMERICAL_MASKS).

No TensorFlow ops: only the `tf.train` protos (runs in the converters' forked workers and in Beam
workers).
"""
import hashlib
import io

import numpy as np
from PIL import Image
import tensorflow as tf

from object_detection.utils import dataset_util

MASK_TYPES = ('png', 'numerical')


def float_list_feature_fast(array):
  """A float_list Feature built from a float32 array without a per-element Python loop."""
  raw = np.ascontiguousarray(array, dtype='<f4').tobytes()
  length = len(raw)
  varint = bytearray()
  while True:  # Protobuf varint of the payload length (packed repeated field 1).
    byte = length & 0x7F
    length >>= 7
    if length:
      varint.append(byte | 0x80)
    else:
      varint.append(byte)
      break
  float_list = tf.train.FloatList.FromString(b'\x0a' + bytes(varint) + raw if raw else b'')
  return tf.train.Feature(float_list=float_list)


def encode_png_mask(mask):
  """PNG bytes of one [H, W] uint8 mask (values 0/1), mode L."""
  output = io.BytesIO()
  Image.fromarray(np.asarray(mask, dtype=np.uint8)).save(output, format='PNG')
  return output.getvalue()


def serialize(example):
  """The bytes of a `tf.train.Example`, the same in every process.

  Deterministic serialization writes the feature map sorted by key; the default order follows the
  protobuf runtime's per-process hash seed, so the same conversion would give different bytes in
  worker processes, Beam workers and successive runs.
  """
  return example.SerializeToString(deterministic=True)


def build_example(encoded, image_format, filename, source_id, height, width, xmin, xmax, ymin,
                  ymax, class_ids, class_names, is_crowd, areas, masks=None, mask_type='png'):
  """Returns the `tf.train.Example` of one image and its instances.

  Args:
    encoded: bytes, the encoded image (stored as is).
    image_format: 'jpeg' or 'png'.
    filename: str, image/filename.
    source_id: str, image/source_id (the dataset's image id).
    height, width: int, image size in pixels.
    xmin, xmax, ymin, ymax: sequences of N floats, box corners normalized to [0, 1].
    class_ids: N ints, class ids of the label map (1-based).
    class_names: N str, class names.
    is_crowd: N ints, 0 / 1.
    areas: N floats, instance areas in pixels.
    masks: None (no image/object/mask feature), or N arrays [height, width] uint8 with values
      0 / 1.
    mask_type: 'png' or 'numerical' (see the module docstring).

  Returns:
    tf.train.Example.

  Raises:
    ValueError: mask_type is not one of MASK_TYPES.
  """
  if mask_type not in MASK_TYPES:
    raise ValueError('mask_type must be one of %s, got %r.' % (MASK_TYPES, mask_type))
  key = hashlib.sha256(encoded).hexdigest()
  feature_dict = {
      'image/height': dataset_util.int64_feature(int(height)),
      'image/width': dataset_util.int64_feature(int(width)),
      'image/filename': dataset_util.bytes_feature(str(filename).encode('utf8')),
      'image/source_id': dataset_util.bytes_feature(str(source_id).encode('utf8')),
      'image/key/sha256': dataset_util.bytes_feature(key.encode('utf8')),
      'image/encoded': dataset_util.bytes_feature(encoded),
      'image/format': dataset_util.bytes_feature(image_format.encode('utf8')),
      'image/object/bbox/xmin': dataset_util.float_list_feature(list(xmin)),
      'image/object/bbox/xmax': dataset_util.float_list_feature(list(xmax)),
      'image/object/bbox/ymin': dataset_util.float_list_feature(list(ymin)),
      'image/object/bbox/ymax': dataset_util.float_list_feature(list(ymax)),
      'image/object/class/text': dataset_util.bytes_list_feature(
          [str(name).encode('utf8') for name in class_names]),
      'image/object/class/label': dataset_util.int64_list_feature(
          [int(c) for c in class_ids]),
      'image/object/is_crowd': dataset_util.int64_list_feature([int(c) for c in is_crowd]),
      'image/object/area': dataset_util.float_list_feature([float(a) for a in areas]),
  }
  if masks is not None:
    if mask_type == 'png':
      feature_dict['image/object/mask'] = dataset_util.bytes_list_feature(
          [encode_png_mask(m) for m in masks])
    else:
      flat = (np.stack(masks).astype(np.float32).ravel() if len(masks)
              else np.zeros([0], np.float32))
      feature_dict['image/object/mask'] = float_list_feature_fast(flat)
  return tf.train.Example(features=tf.train.Features(feature=feature_dict))
