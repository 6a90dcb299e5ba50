"""Writes how the TF OD API's TfExampleDecoder maps `image/object/class/text` to class ids.

Reference side of `tests/test_tfod_label_map.py`. Each case is a label map (text), a list of
serialized tf.train.Example records and, per record and per `use_display_name` setting, the
`groundtruth_classes` the TF OD API's decoder returns for them:
  - `coco_converter`: records written by the TF OD API's own
    `dataset_tools/create_coco_tf_record.create_tf_example` from coco128 images (resized to at most
    48 pixels so the records stay small; class text = COCO category names), with the upstream
    `data/mscoco_label_map.pbtxt` (name "/m/...", display_name = COCO name) and with a label map
    whose names are the COCO names;
  - hand-made records and label maps that pin the lookup rules: name and display_name both
    looked up (the larger id wins when a text is one item's name and another's display_name), the
    last item wins among duplicate display names, an unknown text gives -1 (so does an empty
    text, unless an item lacks a display_name), an empty class/text list falls back to
    image/object/class/label, `use_display_name` changes nothing.

Writes `tests/testdata/tfod_golden/label_map/class_lookup.json`. Rerun (outside /work/main, in
the reference environment):

  source /work/tfod/env.sh; cd /tmp
  /work/tfod_venv/bin/python /work/main/tools/tfod_golden/label_map.py
"""

import base64
import glob
import io
import json
import os
import tempfile

import numpy as np
import PIL.Image
import tensorflow as tf

from object_detection.data_decoders import tf_example_decoder
from object_detection.dataset_tools import create_coco_tf_record
from object_detection.utils import label_map_util

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_OUT_DIR = os.path.join(_REPO, 'tests', 'testdata', 'tfod_golden', 'label_map')
_COCO128 = os.path.join(_REPO, 'samples', 'data', 'coco128_seg')
_MSCOCO_LABEL_MAP = os.path.join(os.path.dirname(tf_example_decoder.__file__), '..', 'data',
                                 'mscoco_label_map.pbtxt')
_MAX_SIDE = 48
_NUM_COCO_IMAGES = 4


def _coco_converter_records():
  """Records from the TF OD API's COCO converter on small copies of coco128 val images."""
  with open(os.path.join(_COCO128, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  category_index = label_map_util.create_category_index(coco['categories'])
  images = sorted(coco['images'], key=lambda im: im['id'])[:_NUM_COCO_IMAGES]
  records = []
  with tempfile.TemporaryDirectory() as image_dir:
    for image in images:
      scale = _MAX_SIDE / max(image['width'], image['height'])
      width = max(1, int(round(image['width'] * scale)))
      height = max(1, int(round(image['height'] * scale)))
      photo = PIL.Image.open(os.path.join(_COCO128, 'images', image['file_name']))
      photo.convert('RGB').resize((width, height), PIL.Image.BILINEAR).save(
          os.path.join(image_dir, image['file_name']), format='JPEG', quality=90)
      small = dict(image, width=width, height=height)
      annotations = []
      for ann in coco['annotations']:
        if ann['image_id'] != image['id']:
          continue
        x, y, w, h = ann['bbox']
        sx, sy = width / image['width'], height / image['height']
        box = [x * sx, y * sy, w * sx, h * sy]
        # Rounding must not push a box past the border (the converter would drop it).
        box[2] = min(box[2], width - box[0])
        box[3] = min(box[3], height - box[1])
        annotations.append(dict(ann, bbox=box, area=ann['area'] * sx * sy))
      _, example, skipped, _, _ = create_coco_tf_record.create_tf_example(
          small, annotations, image_dir, category_index, include_masks=False)
      assert skipped == 0, 'converter skipped %d annotations of image %d' % (skipped, image['id'])
      records.append(example.SerializeToString(deterministic=True))
  return records


def _jpeg(height=8, width=8):
  pixels = np.random.RandomState(0).randint(0, 255, size=(height, width, 3), dtype=np.uint8)
  buffer = io.BytesIO()
  PIL.Image.fromarray(pixels).save(buffer, format='JPEG')
  return buffer.getvalue()


def _record(texts, labels):
  """A minimal valid record with one box per class entry (texts and/or labels)."""
  count = max(len(texts), len(labels))
  ymin = [0.1] * count
  xmin = [0.2] * count
  ymax = [0.6] * count
  xmax = [0.7] * count
  feature = {
      'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[_jpeg()])),
      'image/format': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'jpeg'])),
      'image/height': tf.train.Feature(int64_list=tf.train.Int64List(value=[8])),
      'image/width': tf.train.Feature(int64_list=tf.train.Int64List(value=[8])),
      'image/source_id': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'7'])),
      'image/filename': tf.train.Feature(bytes_list=tf.train.BytesList(value=[b'7.jpg'])),
      'image/object/bbox/ymin': tf.train.Feature(float_list=tf.train.FloatList(value=ymin)),
      'image/object/bbox/xmin': tf.train.Feature(float_list=tf.train.FloatList(value=xmin)),
      'image/object/bbox/ymax': tf.train.Feature(float_list=tf.train.FloatList(value=ymax)),
      'image/object/bbox/xmax': tf.train.Feature(float_list=tf.train.FloatList(value=xmax)),
  }
  if texts:
    feature['image/object/class/text'] = tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[t.encode('utf-8') for t in texts]))
  if labels:
    feature['image/object/class/label'] = tf.train.Feature(
        int64_list=tf.train.Int64List(value=list(labels)))
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(
      deterministic=True)


# Hand-made label maps and records: (name, label map text, [(texts, labels), ...]).
_HAND_MADE = [
    # "a" is item 1's name and item 2's display_name, "b" the reverse: both give max(1, 2).
    ('crossed_name_and_display_name',
     'item { name: "a" id: 1 display_name: "b" }\n'
     'item { name: "b" id: 2 display_name: "a" }\n',
     [(['a', 'b'], []), (['b'], [1]), (['a', 'a', 'b'], [5, 5, 5])]),
    # Duplicate display names: the later item wins; names still work; "z" has no display_name.
    ('duplicate_display_name',
     'item { name: "x" id: 3 display_name: "same" }\n'
     'item { name: "y" id: 5 display_name: "same" }\n'
     'item { name: "z" id: 4 }\n',
     [(['same', 'x', 'y', 'z'], []), (['z'], [9])]),
    # A name-only label map: texts by name; no texts -> class/label.
    ('names_only',
     'item { name: "cat" id: 1 }\n'
     'item { name: "dog" id: 2 }\n',
     [(['dog', 'cat'], []), ([], [2, 1, 2]), (['cat'], [2])]),
    # Unknown texts give -1 in the TF OD API (and in our decoder).
    ('unknown_text',
     'item { name: "cat" id: 1 display_name: "Cat" }\n',
     [(['Cat', 'cow'], []), (['cat', 'Cat'], [])]),
    # An empty text matches the empty display_name of the last item without one in the TF OD
    # API (here id 2); our decoder refuses an empty class text.
    ('empty_text',
     'item { name: "cat" id: 1 }\n'
     'item { name: "dog" id: 2 }\n',
     [(['', 'cat'], [])]),
]


def _decode_classes(label_map_path, records, use_display_name):
  decoder = tf_example_decoder.TfExampleDecoder(label_map_proto_file=label_map_path,
                                                use_display_name=use_display_name)
  out = []
  for serialized in records:
    tensors = decoder.decode(tf.constant(serialized))
    out.append([int(v) for v in tensors['groundtruth_classes'].numpy()])
  return out


def _case(name, label_map_text, records, workdir):
  path = os.path.join(workdir, name + '.pbtxt')
  with open(path, 'w') as f:
    f.write(label_map_text)
  return {
      'label_map': label_map_text,
      'records': [base64.b64encode(r).decode('ascii') for r in records],
      'classes': {
          'use_display_name_false': _decode_classes(path, records, False),
          'use_display_name_true': _decode_classes(path, records, True),
      },
  }


def main():
  cases = {}
  coco_records = _coco_converter_records()
  with open(_MSCOCO_LABEL_MAP) as f:
    mscoco_text = f.read()
  with open(os.path.join(_COCO128, 'annotations', 'instances_val.json')) as f:
    categories = json.load(f)['categories']
  coco_names_text = ''.join('item { name: "%s" id: %d }\n' % (c['name'], c['id'])
                            for c in categories)
  with tempfile.TemporaryDirectory() as workdir:
    cases['coco_converter_mscoco_label_map'] = _case(
        'coco_converter_mscoco_label_map', mscoco_text, coco_records, workdir)
    cases['coco_converter_names_label_map'] = _case(
        'coco_converter_names_label_map', coco_names_text, coco_records, workdir)
    for name, text, specs in _HAND_MADE:
      cases[name] = _case(name, text, [_record(t, l) for t, l in specs], workdir)
  os.makedirs(_OUT_DIR, exist_ok=True)
  path = os.path.join(_OUT_DIR, 'class_lookup.json')
  with open(path, 'w') as f:
    json.dump(cases, f, indent=1, sort_keys=True)
  for name, case in sorted(cases.items()):
    print(name, case['classes']['use_display_name_false'])
  print('wrote %s (%d bytes)' % (path, os.path.getsize(path)))


if __name__ == '__main__':
  main()
