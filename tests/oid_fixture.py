"""Builds an Open Images-format copy of a few coco128_seg images (a helper of the tests).

The copy has what an Open Images instance-segmentation download has:
  images/<ImageID>.jpg      the COCO JPEG bytes, unchanged; ImageID = 16 hex digits derived from
                            the COCO image id (`image_id_of`)
  masks/...                 one PNG per instance, at TWICE the image's resolution: pycocotools'
                            rasterisation of the COCO polygon, each pixel repeated 2x2 (so a
                            nearest-neighbour resize back to the image gives exactly
                            pycocotools' mask); values 255 (mode L) or 1 (mode 1), alternately.
                            Stored flat in masks/, or (see MASK_LAYOUT) in the unzipped-zip
                            folder masks/train-masks-<c>/ or FiftyOne's masks/<C>/.
  train-annotations-object-segmentation.csv   the Open Images header, one row per instance:
                            MaskPath, ImageID, LabelName (`/m/coco<category id>`), BoxID, the
                            COCO bbox normalized (BoxXMin = x / width, ...), PredictedIoU,
                            Clicks (empty)
  class-descriptions.csv    `LabelName,DisplayName` header, one row per COCO category
"""
import collections
import csv
import hashlib
import os
import shutil

import numpy as np
from PIL import Image

from object_detection.dataset_tools import coco_annotations

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128 = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
COCO128_IMAGES = os.path.join(COCO128, 'images')
TRAIN_JSON = os.path.join(COCO128, 'annotations', 'instances_train.json')

# COCO ids of the images copied: 3 landscape and 1 portrait (480x640), 19 instances of 11
# categories.
COCO_IMAGE_IDS = (9, 30, 64, 61)
# Where each image's masks go inside masks/: '' (flat), 'zip' (train-masks-<c>/) or 'fiftyone'
# (<C>/).
MASK_LAYOUT = {9: '', 30: 'zip', 64: 'fiftyone', 61: ''}
MASK_SCALE = 2
HEADER = ['MaskPath', 'ImageID', 'LabelName', 'BoxID', 'BoxXMin', 'BoxXMax', 'BoxYMin',
          'BoxYMax', 'PredictedIoU', 'Clicks']

Instance = collections.namedtuple('Instance', [
    'image_id',     # str, the ImageID
    'mask_path',    # str, MaskPath
    'label_name',   # str, /m/coco<id>
    'name',         # str, the COCO category name
    'box',          # (xmin, xmax, ymin, ymax) normalized, as written in the CSV
    'mask',         # np.ndarray [H, W] uint8 0/1, pycocotools' mask at the image's size
    'coco_ann_id',  # int
])


def image_id_of(coco_id):
  """A 16-hex-digit Open Images-style ImageID for a COCO image id."""
  return hashlib.sha1(str(coco_id).encode('ascii')).hexdigest()[:16]


def label_name_of(category_id):
  return '/m/coco%d' % category_id


def _mask_folder(root, image_id, layout):
  if layout == 'zip':
    return os.path.join(root, 'train-masks-%s' % image_id[0])
  if layout == 'fiftyone':
    return os.path.join(root, image_id[0].upper())
  return root


def build(folder, coco_ids=COCO_IMAGE_IDS, annotations_file=TRAIN_JSON):
  """Writes the Open Images copy into `folder`; returns what was written.

  Returns:
    dict with `csv` (path), `descriptions` (path), `image_dir`, `mask_dir`, `instances` (list
    of Instance, CSV order), `images` (dict ImageID -> (file name, height, width)),
    `coco_ids` (dict ImageID -> COCO image id), `categories` (dict COCO id -> name).
  """
  coco = coco_annotations.load_coco_annotations(annotations_file)
  images_by_id = {image['id']: image for image in coco['images']}
  image_dir = os.path.join(folder, 'images')
  mask_dir = os.path.join(folder, 'masks')
  os.makedirs(image_dir)
  os.makedirs(mask_dir)
  instances, images, coco_of = [], {}, {}
  rows = []
  for coco_id in coco_ids:
    image = images_by_id[coco_id]
    image_id = image_id_of(coco_id)
    height, width = image['height'], image['width']
    shutil.copyfile(os.path.join(COCO128_IMAGES, image['file_name']),
                    os.path.join(image_dir, image_id + '.jpg'))
    images[image_id] = (image_id + '.jpg', height, width)
    coco_of[image_id] = coco_id
    masks_here = _mask_folder(mask_dir, image_id, MASK_LAYOUT.get(coco_id, ''))
    os.makedirs(masks_here, exist_ok=True)
    for ann in coco['annotations_by_image'][coco_id]:
      if ann.get('iscrowd', 0):
        continue
      mask = coco_annotations.ann_to_mask(ann['segmentation'], height, width)
      label = label_name_of(ann['category_id'])
      box_id = '%08x' % ann['id']
      mask_path = '%s_%s_%s.png' % (image_id, label.replace('/m/', 'm'), box_id)
      big = np.repeat(np.repeat(mask, MASK_SCALE, axis=0), MASK_SCALE, axis=1)
      if len(instances) % 2:
        Image.fromarray(big.astype(bool)).save(os.path.join(masks_here, mask_path))  # mode 1
      else:
        Image.fromarray(big * 255).save(os.path.join(masks_here, mask_path))  # mode L
      x, y, w, h = ann['bbox']
      box = (x / width, (x + w) / width, y / height, (y + h) / height)
      instances.append(Instance(image_id, mask_path, label, coco['categories'][ann['category_id']],
                                box, mask, ann['id']))
      rows.append([mask_path, image_id, label, box_id, repr(box[0]), repr(box[1]),
                   repr(box[2]), repr(box[3]), '0.9', ''])
  csv_path = os.path.join(folder, 'train-annotations-object-segmentation.csv')
  write_csv(csv_path, rows)
  descriptions = os.path.join(folder, 'class-descriptions.csv')
  with open(descriptions, 'w', newline='') as fid:
    writer = csv.writer(fid)
    writer.writerow(['LabelName', 'DisplayName'])
    for category_id, name in sorted(coco['categories'].items()):
      writer.writerow([label_name_of(category_id), name])
  return {'csv': csv_path, 'descriptions': descriptions, 'image_dir': image_dir,
          'mask_dir': mask_dir, 'instances': instances, 'images': images,
          'coco_ids': coco_of, 'categories': coco['categories']}


def write_csv(path, rows, header=HEADER):
  """Writes a segmentation CSV (`rows`: lists of cells in `header` order)."""
  with open(path, 'w', newline='') as fid:
    writer = csv.writer(fid)
    writer.writerow(header)
    writer.writerows(rows)


def read_rows(path):
  """The rows of a CSV written by `write_csv` (header excluded)."""
  with open(path, newline='') as fid:
    return list(csv.reader(fid))[1:]
