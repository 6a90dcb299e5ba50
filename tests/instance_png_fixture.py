"""Builds instance-ID PNG and per-instance PNG folder copies of a few coco128_seg images.

The masks are pycocotools' rasterisation (`coco_annotations.ann_to_mask`) of the real coco128_seg
polygons, so a converter reading these files must give back exactly those masks:

  (a) `build_instance_id_copy`: a Cityscapes-style copy,
        <root>/leftImg8bit/train/coco/<stem>_leftImg8bit.jpg   (the original JPEG bytes)
        <root>/gtFine/train/coco/<stem>_gtFine_instanceIds.png  (16-bit, mode I;16)
      pixel value = category_id * 1000 + (index of the annotation in the image) + 1, painted in
      annotation order, later over earlier; a "crowd" annotation (ids in `crowd_ann_ids`) is
      painted as value = category_id (a Cityscapes group region). 0 = background.
  (b) `build_mask_folder_copy`:
        <root>/images/<stem>.jpg
        <root>/masks/<stem>/<category name>/<n>.png   (one 0/255 PNG per non-crowd annotation,
                                                      n = index of the annotation in the image)
  (c) `build_single_class_copy`: <root>/images/<stem>.jpg, <root>/labels/<stem>.png (8-bit, mode
      L): pixel value = (index of the annotation in the image) + 1, painted in annotation order,
      whatever the category (a one-class dataset, --id_divisor=0).

`last_painter` gives, for each pixel, the annotation painted last over it: the masks a converter
must read back from (a) and (c) are `last_painter == index`.
"""
import json
import os
import shutil

import numpy as np
from PIL import Image

from object_detection.dataset_tools import coco_annotations

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128 = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
COCO128_IMAGES = os.path.join(COCO128, 'images')
TRAIN_JSON = os.path.join(COCO128, 'annotations', 'instances_train.json')

# 4 images of instances_train.json with 33 instances of 9 classes, overlapping instances in
# each, a portrait image (49: 500x381), all category ids <= 64 (value * 1000 fits 16 bits).
IMAGE_IDS = (9, 49, 74, 77)
ID_DIVISOR = 1000


def load_source(image_ids=IMAGE_IDS):
  """The coco128_seg annotations of `image_ids`.

  Returns:
    (images, anns_by_image, categories): list of COCO image dicts in `image_ids` order; dict
    image id -> its annotations in JSON order; dict category id -> name (all 80).
  """
  with open(TRAIN_JSON) as fid:
    data = json.load(fid)
  images = {im['id']: im for im in data['images']}
  anns = {i: [] for i in image_ids}
  for ann in data['annotations']:
    if ann['image_id'] in anns:
      anns[ann['image_id']].append(ann)
  categories = {c['id']: c['name'] for c in data['categories']}
  return [images[i] for i in image_ids], anns, categories


def source_masks(image, anns):
  """uint8 [N, H, W] pycocotools masks of an image's annotations, in annotation order."""
  return np.stack([coco_annotations.ann_to_mask(a['segmentation'], image['height'],
                                                image['width']) for a in anns])


def stem(image):
  return os.path.splitext(image['file_name'])[0]


def paint_id_map(image, anns, crowd_ann_ids=()):
  """The int64 [H, W] instance-ID map of one image (encoding in the module docstring)."""
  id_map = np.zeros((image['height'], image['width']), np.int64)
  for index, (ann, mask) in enumerate(zip(anns, source_masks(image, anns))):
    if ann['id'] in crowd_ann_ids:
      value = ann['category_id']
    else:
      value = ann['category_id'] * ID_DIVISOR + index + 1
    id_map[mask.astype(bool)] = value
  return id_map


def last_painter(image, anns):
  """int64 [H, W]: index of the last annotation covering each pixel, -1 where none does."""
  painter = np.full((image['height'], image['width']), -1, np.int64)
  for index, mask in enumerate(source_masks(image, anns)):
    painter[mask.astype(bool)] = index
  return painter


def write_label_map(categories, path):
  """A TF OD API label map text of {id: name} (name and display_name)."""
  with open(path, 'w') as fid:
    for category_id in sorted(categories):
      fid.write('item {\n  name: "%s"\n  id: %d\n  display_name: "%s"\n}\n' % (
          categories[category_id], category_id, categories[category_id]))


def build_instance_id_copy(root, crowd_ann_ids=(), image_ids=IMAGE_IDS):
  """Writes copy (a) under `root`; returns (image_dir, mask_dir, label_map_path)."""
  images, anns_by_image, categories = load_source(image_ids)
  image_dir = os.path.join(root, 'leftImg8bit', 'train')
  mask_dir = os.path.join(root, 'gtFine', 'train')
  os.makedirs(os.path.join(image_dir, 'coco'), exist_ok=True)
  os.makedirs(os.path.join(mask_dir, 'coco'), exist_ok=True)
  for image in images:
    shutil.copyfile(os.path.join(COCO128_IMAGES, image['file_name']),
                    os.path.join(image_dir, 'coco', stem(image) + '_leftImg8bit.jpg'))
    id_map = paint_id_map(image, anns_by_image[image['id']], crowd_ann_ids)
    assert id_map.max() < 1 << 16, 'a category id above 65 does not fit a 16-bit PNG'
    Image.fromarray(id_map.astype(np.uint16)).save(
        os.path.join(mask_dir, 'coco', stem(image) + '_gtFine_instanceIds.png'))
  label_map_path = os.path.join(root, 'coco_label_map.pbtxt')
  write_label_map(categories, label_map_path)
  return image_dir, mask_dir, label_map_path


def build_mask_folder_copy(root, image_ids=IMAGE_IDS):
  """Writes copy (b) under `root`; returns (image_dir, mask_dir)."""
  images, anns_by_image, categories = load_source(image_ids)
  image_dir = os.path.join(root, 'images')
  mask_dir = os.path.join(root, 'masks')
  os.makedirs(image_dir, exist_ok=True)
  for image in images:
    shutil.copyfile(os.path.join(COCO128_IMAGES, image['file_name']),
                    os.path.join(image_dir, image['file_name']))
    anns = anns_by_image[image['id']]
    for index, (ann, mask) in enumerate(zip(anns, source_masks(image, anns))):
      folder = os.path.join(mask_dir, stem(image), categories[ann['category_id']])
      os.makedirs(folder, exist_ok=True)
      Image.fromarray(mask * 255).save(os.path.join(folder, '%d.png' % index))
  return image_dir, mask_dir


def build_single_class_copy(root, image_ids=IMAGE_IDS):
  """Writes copy (c) under `root`; returns (image_dir, mask_dir)."""
  images, anns_by_image, _ = load_source(image_ids)
  image_dir = os.path.join(root, 'images')
  mask_dir = os.path.join(root, 'labels')
  os.makedirs(image_dir, exist_ok=True)
  os.makedirs(mask_dir, exist_ok=True)
  for image in images:
    shutil.copyfile(os.path.join(COCO128_IMAGES, image['file_name']),
                    os.path.join(image_dir, image['file_name']))
    labels = last_painter(image, anns_by_image[image['id']]) + 1
    assert labels.max() < 256
    Image.fromarray(labels.astype(np.uint8)).save(os.path.join(mask_dir, stem(image) + '.png'))
  return image_dir, mask_dir
