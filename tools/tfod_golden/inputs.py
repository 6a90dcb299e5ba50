"""Writes the TF OD API's input pipeline outputs (inputs.py) on real coco128_seg photos.

Reference side of `tests/test_tfod_inputs.py`. Writes `tests/testdata/tfod_golden/inputs/`:
  sample.tfrecords (a TFRecord file; `.record` names are git-ignored): three tf.train.Examples
    (the layout of create_coco_tf_record.py, PNG masks, serialized deterministically) made
    from coco128_seg val photos 000000000071 (16 objects), 000000000144 (3) and 000000000036
    (2), in that order, each decoded, down-scaled to a quarter (tf.image.resize AREA) and
    re-encoded as JPEG; masks rasterized from the COCO polygons at that size with pycocotools.
    Data-semantics cases built in: photo 71's object 2 has class/label -1 (a class the
    decoder could not map) and its object 1 is_crowd 1; photo 144 has image/object/weight
    [0.25, 0.5, 1.5] and its last object class/label -1.
  pipeline.npz: the TF OD API's `inputs.train_input` and `inputs.eval_input` batches over
    sample.tfrecords (batch_size 2, max_number_of_boxes 8, keep_aspect_ratio_resizer 64..96 with
    pad_to_max_dimension, a stand-in model whose `preprocess` is that resizer, as Faster R-CNN's
    is before the extractor's value scaling). Keys `<split>/<field>` for image,
    true_image_shape, original_image_spatial_shape, num_groundtruth_boxes, groundtruth_boxes
    (normalized to the PADDED image, as the TF OD API), groundtruth_classes, groundtruth_weights,
    groundtruth_is_crowd, groundtruth_area, masks (np.packbits of the uint8 0/1 masks, shape in
    `<split>/masks_shape`); `<split>/num_batches` (drop_remainder: true drops the third record).
  transform.npz: `transform_input_data` + `pad_input_data_to_static_shapes` (max 8 boxes) on
    photo 71's decoded example after setting box 0's ymin to NaN and groundtruth_image_classes
    to [1, -1, 18, 1]: the same fields plus the k-hot groundtruth_image_classes.

Rerun (outside /work/main, in the reference environment):

  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/inputs.py
"""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from pycocotools import mask as mask_util

from object_detection import inputs
from object_detection.builders import dataset_builder
from object_detection.builders import image_resizer_builder
from object_detection.core import standard_fields as fields
from object_detection.data_decoders import tf_example_decoder
from object_detection.protos import eval_pb2
from object_detection.protos import image_resizer_pb2
from object_detection.protos import input_reader_pb2
from object_detection.protos import model_pb2
from object_detection.protos import train_pb2

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_OUT_DIR = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'inputs')
_COCO128 = os.path.join(_REPO, 'samples', 'data', 'coco128_seg')
PHOTO_IDS = (71, 144, 36)
SCALE = 0.25
NUM_CLASSES = 90
MAX_BOXES = 8
BATCH_SIZE = 2
RESIZER = ('keep_aspect_ratio_resizer { min_dimension: 64 max_dimension: 96 '
           'pad_to_max_dimension: true }')
# (photo id, object index) -> class/label override; photo id -> weights; photo id -> is_crowd.
LABEL_OVERRIDES = {(71, 2): -1, (144, 2): -1}
WEIGHTS = {144: [0.25, 0.5, 1.5]}
IS_CROWD = {71: [0, 1] + [0] * 14}
LABELED_CLASSES = [1, -1, 18, 1]

_F = fields.InputDataFields
_FIELDS = ('image', 'true_image_shape', 'original_image_spatial_shape', 'num_groundtruth_boxes',
           'groundtruth_boxes', 'groundtruth_classes', 'groundtruth_weights',
           'groundtruth_is_crowd', 'groundtruth_area')


def _bytes(values):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _floats(values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _ints(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def make_example(image_info, annotations):
  """A small tf.train.Example of one photo (quarter size, JPEG re-encoded, PNG masks)."""
  with open(os.path.join(_COCO128, 'images', image_info['file_name']), 'rb') as f:
    photo = tf.io.decode_jpeg(f.read(), channels=3)
  h0, w0 = int(photo.shape[0]), int(photo.shape[1])
  h, w = int(round(h0 * SCALE)), int(round(w0 * SCALE))
  small = tf.cast(tf.round(tf.image.resize(photo, [h, w], method='area')), tf.uint8)
  encoded = tf.io.encode_jpeg(small, quality=90).numpy()
  sy, sx = h / h0, w / w0
  boxes, labels, areas, pngs = [], [], [], []
  for i, ann in enumerate(annotations):
    x, y, bw, bh = ann['bbox']
    boxes.append([y * sy / h, x * sx / w, (y + bh) * sy / h, (x + bw) * sx / w])
    labels.append(LABEL_OVERRIDES.get((image_info['id'], i), ann['category_id']))
    areas.append(ann['area'] * sy * sx)
    polygons = [[v * (sx if j % 2 == 0 else sy) for j, v in enumerate(p)]
                for p in ann['segmentation']]
    rle = mask_util.merge(mask_util.frPyObjects(polygons, h, w))
    mask = mask_util.decode(rle).astype(np.uint8)
    pngs.append(tf.io.encode_png(mask[:, :, None]).numpy())
  boxes = np.clip(np.array(boxes, np.float32), 0.0, 1.0)
  n = len(annotations)
  feature = {
      'image/encoded': _bytes([encoded]),
      'image/format': _bytes([b'jpeg']),
      'image/filename': _bytes([image_info['file_name'].encode()]),
      'image/source_id': _bytes([str(image_info['id']).encode()]),
      'image/key/sha256': _bytes([hashlib.sha256(encoded).hexdigest().encode()]),
      'image/height': _ints([h]),
      'image/width': _ints([w]),
      'image/object/bbox/ymin': _floats(boxes[:, 0]),
      'image/object/bbox/xmin': _floats(boxes[:, 1]),
      'image/object/bbox/ymax': _floats(boxes[:, 2]),
      'image/object/bbox/xmax': _floats(boxes[:, 3]),
      'image/object/class/label': _ints(labels),
      'image/object/area': _floats(areas),
      'image/object/is_crowd': _ints(IS_CROWD.get(image_info['id'], [0] * n)),
      'image/object/mask': _bytes(pngs),
  }
  if image_info['id'] in WEIGHTS:
    feature['image/object/weight'] = _floats(WEIGHTS[image_info['id']])
  return tf.train.Example(features=tf.train.Features(feature=feature))


def write_record(path):
  with open(os.path.join(_COCO128, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  images = {im['id']: im for im in coco['images']}
  with tf.io.TFRecordWriter(path) as writer:
    for photo_id in PHOTO_IDS:
      anns = sorted((a for a in coco['annotations'] if a['image_id'] == photo_id),
                    key=lambda a: a['id'])
      writer.write(make_example(images[photo_id], anns).SerializeToString(deterministic=True))


class _ResizerModel(object):
  """Stand-in detection model: `preprocess` = the image resizer (Faster R-CNN's first step)."""

  def __init__(self, resizer_fn):
    self._resizer_fn = resizer_fn

  def preprocess(self, images):
    resized, true_shape = self._resizer_fn(images[0])
    return resized[tf.newaxis], true_shape[tf.newaxis]


def _configs(record_path):
  model_config = text_format.Parse(
      'faster_rcnn { num_classes: %d image_resizer { %s } }' % (NUM_CLASSES, RESIZER),
      model_pb2.DetectionModel())
  reader = text_format.Parse(
      'tf_record_input_reader { input_path: "%s" } shuffle: false num_epochs: 1 num_readers: 1 '
      'load_instance_masks: true mask_type: PNG_MASKS max_number_of_boxes: %d'
      % (record_path, MAX_BOXES), input_reader_pb2.InputReader())
  train_config = text_format.Parse('batch_size: %d max_number_of_boxes: %d'
                                   % (BATCH_SIZE, MAX_BOXES), train_pb2.TrainConfig())
  eval_config = text_format.Parse('batch_size: %d' % BATCH_SIZE, eval_pb2.EvalConfig())
  return model_config, reader, train_config, eval_config


def _store(out, prefix, features, labels):
  merged = dict(features)
  merged.update(labels)
  for key in _FIELDS:
    out['%s/%s' % (prefix, key)] = merged[key].numpy()
  masks = merged[_F.groundtruth_instance_masks].numpy().astype(np.uint8)
  out[prefix + '/masks_shape'] = np.array(masks.shape)
  out[prefix + '/masks'] = np.packbits(masks.reshape(-1))
  if _F.groundtruth_image_classes in merged and prefix == 'transform':
    out[prefix + '/groundtruth_image_classes'] = merged[_F.groundtruth_image_classes].numpy()


def main():
  os.makedirs(_OUT_DIR, exist_ok=True)
  record_path = os.path.join(_OUT_DIR, 'sample.tfrecords')
  write_record(record_path)
  model_config, reader, train_config, eval_config = _configs(record_path)
  resizer_config = text_format.Parse(RESIZER, image_resizer_pb2.ImageResizer())
  resizer_fn = image_resizer_builder.build(resizer_config)
  model = _ResizerModel(resizer_fn)

  out = {}
  for split, dataset in (
      ('train', inputs.train_input(train_config, reader, model_config, model=model)),
      ('eval', inputs.eval_input(eval_config, reader, model_config, model=model))):
    batches = list(dataset)
    out[split + '/num_batches'] = np.array(len(batches))
    _store(out, split, *batches[0])
  np.savez_compressed(os.path.join(_OUT_DIR, 'pipeline.npz'), **out)

  decoder = tf_example_decoder.TfExampleDecoder(
      load_instance_masks=True, instance_mask_type=input_reader_pb2.PNG_MASKS)
  serialized = next(iter(tf.data.TFRecordDataset(record_path)))
  tensor_dict = decoder.decode(serialized)
  boxes = tensor_dict[_F.groundtruth_boxes].numpy()
  boxes[0, 0] = np.nan
  tensor_dict[_F.groundtruth_boxes] = tf.constant(boxes)
  # The TF OD API decoder always gives groundtruth_image_classes (image/class/label, here empty);
  # transform_input_data k-hots it like groundtruth_labeled_classes (one of the two at most).
  tensor_dict[_F.groundtruth_image_classes] = tf.constant(LABELED_CLASSES, tf.int64)
  transformed = inputs.transform_input_data(
      tensor_dict, model_preprocess_fn=model.preprocess, image_resizer_fn=resizer_fn,
      num_classes=NUM_CLASSES, retain_original_image=False)
  padded = inputs.pad_input_data_to_static_shapes(
      transformed, max_num_boxes=MAX_BOXES, num_classes=NUM_CLASSES,
      spatial_image_shape=[96, 96])
  single = {}
  _store(single, 'transform', padded, {})
  np.savez_compressed(os.path.join(_OUT_DIR, 'transform.npz'), **single)
  for name in sorted(os.listdir(_OUT_DIR)):
    print(name, os.path.getsize(os.path.join(_OUT_DIR, name)))


if __name__ == '__main__':
  main()
