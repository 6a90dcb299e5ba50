"""Reads instance masks stored as PNG files: instance-ID PNGs and per-instance mask folders.

No TensorFlow here: the command line (`dataset_tools/create_instance_png_tf_record.py`) finds and
pairs every image with its masks and checks the classes with this module before it imports
TensorFlow; the encoders (`instance_png_tf_record`) read the masks with it in worker processes.

Two input formats (`INPUT_FORMATS`):

`instance_id_png`: one single-channel PNG per image (8-bit, 16-bit, or 32-bit integer), the same
  size as the image, whose pixel value v says which object the pixel belongs to. With
  `id_divisor` D > 0 (default 1000, the Cityscapes `*_gtFine_instanceIds.png` encoding
  `class id * 1000 + instance index`, instance index from 0):
    v >= D       one instance per distinct v, of class v // D;
    0 < v < D    pixels of class v that belong to no single instance (Cityscapes "group" regions
                 such as a crowd of cars, and classes without instances such as road): skipped
                 and counted (`class_only_regions='skip'`), or written as ONE is_crowd=1 instance
                 per class per image (`'crowd'`). The COCO evaluation (pycocotools, as the TF
                 OD API) ignores detections that fall on a crowd region instead of counting them
                 as false positives, and never counts a crowd region as a missed object;
                 this project's training uses it as an ordinary target box and mask (the model
                 does not read is_crowd), so give `crowd` with `classes` limited to the classes
                 with instances (a road region would otherwise become one "road" object);
    v == 0, v in `ignore_values`, v < 0   background.
  With D == 0: every v > 0 not in `ignore_values` is one instance of the single class
  `class_name` (e.g. a nucleus dataset whose label images number the nuclei 1..N).
  Pixels where instances overlapped when the PNG was drawn belong to the instance drawn last:
  a PNG holds one value per pixel, so each instance's mask is what is left of it.

`instance_mask_folder`: one binary PNG per instance, in a folder per image:
    <mask_dir>/<image key>/<class name>/<any name>.png     (the class is the subfolder's name)
    <mask_dir>/<image key>/<any name>.png                  (with `class_name`: one class)
  Any nonzero pixel is the object (8-bit 0/255 or 0/1, palette indices, RGB(A) colours).
  An optional `mask_subfolder` is inserted after the image key: the 2018 Data Science Bowl
  layout `stage1_train/<id>/images/<id>.png` + `stage1_train/<id>/masks/*.png` is
  `image_dir=mask_dir=stage1_train, image_pattern='*/images/*.png', mask_subfolder='masks',
  class_name='nucleus'`. A mask whose size differs from the image is skipped and counted (not
  resized): a per-instance mask of another size is most likely paired with the wrong image.

Pairing. The images are the .jpg / .jpeg / .png files under `image_dir` (recursively, sorted by
path) or those matching `image_pattern` (a glob relative to `image_dir`, `**` allowed). An
image's *key* is its file name without extension, minus `image_suffix` when it ends with it
(Cityscapes: `aachen_000000_000019_leftImg8bit.png` with image_suffix `_leftImg8bit` has key
`aachen_000000_000019`). Its mask is looked up first at the image's relative subfolder under
`mask_dir` (`<mask_dir>/<sub/folders>/<key><mask_suffix>`, or the folder `<key>` there), then by
name anywhere under `mask_dir` (an error if the name is found in two places). An image without
a mask is skipped and counted, or written with no objects (a negative) with `keep_empty_images`.

Images are read with `coco_images.read_image`: a photo with an EXIF orientation is stored
upright, and its masks must have the upright size.

Instances (both formats): mask = uint8 [H, W] 0/1 array; box = the tight box of its pixels,
  normalized: xmin = first column / W, xmax = (last column + 1) / W (and the same for rows), as
  a COCO box covers whole pixels; area = pixel count. Instances with fewer than
  `min_instance_pixels` pixels are skipped and counted. Instance order in a record:
  instance_id_png by pixel value (so by class id, then instance index; crowd regions first);
  instance_mask_folder by class id, then file name.

Errors are `coco_annotations.ConversionError` (a ConfigError) with one line naming the flag,
folder or file and what to do.
"""
import collections
import glob
import io
import numbers
import os

import numpy as np
from PIL import Image

from object_detection.dataset_tools import coco_annotations

ConversionError = coco_annotations.ConversionError
ClassesError = coco_annotations.ClassesError

INSTANCE_ID_PNG = 'instance_id_png'
INSTANCE_MASK_FOLDER = 'instance_mask_folder'
INPUT_FORMATS = (INSTANCE_ID_PNG, INSTANCE_MASK_FOLDER)

CLASS_ONLY_SKIP = 'skip'
CLASS_ONLY_CROWD = 'crowd'
CLASS_ONLY_CHOICES = (CLASS_ONLY_SKIP, CLASS_ONLY_CROWD)

CITYSCAPES_ID_DIVISOR = 1000
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')

# Skip reasons of whole images, in summary order (with coco_images' unreadable / unsupported).
SKIP_NO_MASK = 'image_without_mask'
SKIP_UNREADABLE_MASK = 'unreadable_mask'
SKIP_MASK_NOT_SINGLE_CHANNEL = 'mask_not_single_channel'
SKIP_MASK_SIZE = 'mask_size_differs_from_image'
# Skip reasons of instances.
SKIP_CLASS_ONLY_REGION = 'class_only_region'
SKIP_CLASS_NOT_IN_LABEL_MAP = 'class_not_in_label_map'
SKIP_BELOW_MIN_PIXELS = 'instance_below_min_pixels'
SKIP_EMPTY_MASK = 'mask_without_pixels'
SKIP_OUTSIDE_CLASS_FOLDER = 'mask_outside_class_folder'
SKIP_OF_SKIPPED_IMAGE = 'instance_of_skipped_image'

# PIL modes whose pixel values are the stored integers (palette: the indices, not colours).
_SINGLE_CHANNEL_MODES = ('1', 'L', 'P', 'I', 'I;16', 'I;16L', 'I;16B', 'I;16N')
# bincount is faster than np.unique for the value ranges of 8 / 16-bit PNGs.
_BINCOUNT_LIMIT = 1 << 20


class MaskSkipped(Exception):
  """A mask file cannot be used; `reason` is a skip reason above, `detail` says why."""

  def __init__(self, reason, detail):
    super().__init__('%s (%s)' % (reason, detail))
    self.reason = reason
    self.detail = detail


# ------------------------------------------------------------------------------------------------
# Tasks: one picklable description per image, built in the main process.

IdPngTask = collections.namedtuple('IdPngTask', [
    'image_path',  # str
    'filename',    # str, image/filename: the image's path relative to image_dir ('/'-separated)
    'source_id',   # str, image/source_id: the same relative path (unique within the split)
    'mask_path',   # str, or None when the image has no mask
])

MaskFolderTask = collections.namedtuple('MaskFolderTask', [
    'image_path', 'filename', 'source_id',
    'mask_folder',  # str, or None when the image has no mask folder
    'mask_files',   # tuple of (class name or None, path); None: a file outside a class folder
])

Instance = collections.namedtuple('Instance', [
    'source_class',  # int (instance_id_png: the class id in the PNG) or str (folder: class name)
    'mask',          # uint8 [H, W], values 0 / 1
    'pixels',        # int
    'is_crowd',      # 0 / 1
])

ScannedSplit = collections.namedtuple('ScannedSplit', [
    'tasks',            # list of IdPngTask / MaskFolderTask, sorted by image path
    'images_total',     # int
    'images_without_mask',  # int
    'masks_total',      # int: instance_id_png: PNGs paired; folder: per-instance mask files
    'class_names',      # set of str, the class subfolder names seen (folder format), else empty
])


# ------------------------------------------------------------------------------------------------
# Label maps.


def read_label_map(path):
  """Reads a TF OD API label map (StringIntLabelMap text) into {id: name}.

  An item's name is its `display_name` when set (the TF OD API's mscoco_label_map.pbtxt has
  name "/m/01g317", display_name "person"), else its `name`.

  Raises:
    ConversionError: the file is missing or not a label map, or an id is < 1 or listed twice.
  """
  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format
  from object_detection.protos import string_int_label_map_pb2
  # pylint: enable=g-import-not-at-top
  if not os.path.isfile(path):
    raise ConversionError('--label_map_path=%s does not exist.' % path)
  label_map = string_int_label_map_pb2.StringIntLabelMap()
  try:
    with open(path, 'r', encoding='utf8') as fid:
      text_format.Parse(fid.read(), label_map)
  except (text_format.ParseError, UnicodeDecodeError, OSError) as e:
    raise ConversionError('--label_map_path=%s is not a TF OD API label map (%s).'
                          % (path, str(e).splitlines()[0])) from None
  categories = {}
  for item in label_map.item:
    name = item.display_name or item.name
    if item.id < 1:
      raise ConversionError('--label_map_path=%s: item %r has id %d; ids start at 1 (0 is the '
                            'background).' % (path, name, item.id))
    if item.id in categories:
      raise ConversionError('--label_map_path=%s lists id %d twice (%r and %r).'
                            % (path, item.id, categories[item.id], name))
    categories[item.id] = name or 'class_%d' % item.id
  if not categories:
    raise ConversionError('--label_map_path=%s has no item.' % path)
  return categories


# ------------------------------------------------------------------------------------------------
# Classes.


def id_png_classes(label_map=None, classes=None, id_divisor=CITYSCAPES_ID_DIVISOR,
                   class_name=''):
  """The classes an instance_id_png conversion writes.

  Args:
    label_map: None, or {id: name} of `read_label_map` (ids as in the PNGs).
    classes: None, or `--classes` items (names of the label map, or class ids).
    id_divisor: see the module docstring; 0 = one class, `class_name`.
    class_name: the class of a single-class dataset (id_divisor 0).

  Returns:
    (categories, class_map, chosen): categories {record id: name} for the label map;
    class_map {class id in the PNG: (record id, name)}; chosen: None or list of ClassChoice.

  Raises:
    ConversionError / ClassesError (one line naming the flag).
  """
  if id_divisor == 0:
    if not class_name:
      raise ConversionError('--id_divisor=0 (pixel value = instance id of one class) needs '
                            '--class_name, e.g. --class_name=nucleus.')
    if label_map is not None or classes is not None:
      raise ConversionError('--id_divisor=0 converts one class (--class_name): drop '
                            '--label_map_path and --classes.')
    return {1: class_name}, {1: (1, class_name)}, None
  if class_name:
    raise ConversionError('--class_name is for single-class datasets (--id_divisor=0 or '
                          '--input_format=instance_mask_folder): drop it, or give '
                          '--label_map_path / --classes for the classes of the PNGs.')
  if label_map is None:
    if classes is None:
      raise ConversionError(
          '--input_format=instance_id_png needs the classes: give --label_map_path (a TF OD API '
          'label map of the class ids in the PNGs, e.g. Cityscapes person=24, car=26) or '
          '--classes with class ids (e.g. --classes=24,26; named class_24, class_26).')
    ids = []
    for item in classes:
      text = str(item).strip()
      if not text.isdigit() or int(text) < 1:
        raise ClassesError('--classes: %r is not a class id, and without --label_map_path '
                           'classes can only be given by id (e.g. --classes=24,26): give '
                           '--label_map_path to use names.' % (item,))
      ids.append(int(text))
    label_map = {i: 'class_%d' % i for i in ids}
  if classes is None:
    return dict(label_map), {i: (i, n) for i, n in label_map.items()}, None
  chosen = coco_annotations.resolve_classes(classes, label_map)
  return ({c.id: c.name for c in chosen}, {c.source_id: (c.id, c.name) for c in chosen},
          chosen)


def folder_classes(class_names, classes=None, class_name=''):
  """The classes an instance_mask_folder conversion writes.

  Args:
    class_names: the class subfolder names found (ignored with `class_name`).
    classes: None, or `--classes` items (folder names, or ids of the sorted names 1..K).
    class_name: the one class of a flat layout (`<key>/*.png`), or ''.

  Returns:
    (categories, class_map, chosen) as `id_png_classes`, class_map keyed by folder name (None
    for the flat layout's masks).

  Raises:
    ConversionError: no class folder found; ClassesError for a bad --classes item.
  """
  if class_name:
    if classes is not None:
      raise ConversionError('--class_name converts one class: drop --classes.')
    return {1: class_name}, {None: (1, class_name)}, None
  if not class_names:
    raise ConversionError(
        'no class subfolder found in the mask folders (layout <mask_dir>/<image>/<class>/*.png): '
        'for masks directly in <mask_dir>/<image>/ give --class_name=<the one class>.')
  categories = {i + 1: name for i, name in enumerate(sorted(class_names))}
  if classes is None:
    return categories, {n: (i, n) for i, n in categories.items()}, None
  chosen = coco_annotations.resolve_classes(classes, categories)
  return ({c.id: c.name for c in chosen}, {c.name: (c.id, c.name) for c in chosen}, chosen)


# ------------------------------------------------------------------------------------------------
# Finding and pairing files.


def _image_key(file_name, image_suffix):
  stem = os.path.splitext(file_name)[0]
  if image_suffix and stem.endswith(image_suffix) and len(stem) > len(image_suffix):
    stem = stem[:-len(image_suffix)]
  return stem


def find_images(image_dir, image_pattern=''):
  """Relative paths ('/'-separated, sorted) of the images under `image_dir`.

  Args:
    image_dir: folder searched recursively.
    image_pattern: '' (every .jpg / .jpeg / .png file), or a glob relative to image_dir
      (`**` matches any number of folders), e.g. '*/images/*.png'.

  Raises:
    ConversionError: image_dir does not exist.
  """
  if not os.path.isdir(image_dir):
    raise ConversionError('Image folder %s does not exist.' % image_dir)
  if image_pattern:
    paths = glob.glob(os.path.join(image_dir, image_pattern), recursive=True)
    relative = [os.path.relpath(p, image_dir) for p in paths if os.path.isfile(p)]
  else:
    relative = []
    for root, dirs, files in os.walk(image_dir):
      dirs.sort()
      relative.extend(os.path.relpath(os.path.join(root, f), image_dir) for f in files
                      if f.lower().endswith(IMAGE_EXTENSIONS))
  return sorted(r.replace(os.sep, '/') for r in relative)


def _index_by_name(mask_dir, wanted):
  """{name: [paths]} of the files (or folders) under mask_dir for which wanted(name, is_dir)."""
  index = collections.defaultdict(list)
  for root, dirs, files in os.walk(mask_dir):
    dirs.sort()
    for name in dirs:
      if wanted(name, True):
        index[name].append(os.path.join(root, name))
    for name in files:
      if wanted(name, False):
        index[name].append(os.path.join(root, name))
  return index


def _find_mask(mask_dir, rel_dir, name, index, is_dir, image_rel, flag):
  """The path of mask `name` of one image: beside its relative subfolder, else found by name."""
  exists = os.path.isdir if is_dir else os.path.isfile
  direct = os.path.join(mask_dir, rel_dir, name)
  if exists(direct):
    return direct
  if rel_dir and exists(os.path.join(mask_dir, name)):
    return os.path.join(mask_dir, name)
  found = index.get(name, [])
  if len(found) > 1:
    raise ConversionError('%s: the mask %r of image %s is in %d places (%s and %s): put each '
                          'image\'s mask in the same relative subfolder as the image.'
                          % (flag, name, image_rel, len(found), found[0], found[1]))
  return found[0] if found else None


def scan_split(input_format, image_dir, mask_dir, image_pattern='', image_suffix='',
               mask_suffix='.png', mask_subfolder='', class_name='', split='train'):
  """Finds the images of one split and pairs each with its masks.

  Args:
    input_format: one of INPUT_FORMATS.
    image_dir, mask_dir: the split's folders (`--<split>_image_dir`, `--<split>_mask_dir`).
    image_pattern, image_suffix: see `find_images` and the module docstring.
    mask_suffix: instance_id_png: appended to the image key to name its mask file.
    mask_subfolder: instance_mask_folder: folder between `<key>/` and the masks (e.g. 'masks').
    class_name: instance_mask_folder: masks lie directly in the image's folder (one class).
    split: named in the errors.

  Returns:
    ScannedSplit.

  Raises:
    ConversionError: a folder is missing, no image is found, no image has a mask (the message
      names the mask expected for the first image), or a mask name is found in two places.
  """
  flag = '--%s_mask_dir' % split
  if input_format not in INPUT_FORMATS:
    raise ConversionError('--input_format must be one of %s, got %r.'
                          % (', '.join(INPUT_FORMATS), input_format))
  if not os.path.isdir(mask_dir):
    raise ConversionError('%s=%s does not exist.' % (flag, mask_dir))
  images = find_images(image_dir, image_pattern)
  if not images:
    raise ConversionError('--%s_image_dir=%s: no image found (%s).' % (
        split, image_dir, 'pattern %r' % image_pattern if image_pattern else
        '.jpg, .jpeg or .png files, searched recursively'))
  by_folder = input_format == INSTANCE_MASK_FOLDER
  if by_folder:
    index = _index_by_name(mask_dir, lambda name, is_dir: is_dir)
  else:
    if not mask_suffix:
      raise ConversionError('--mask_suffix is empty: the mask of image <key>.jpg is '
                            '<key><mask_suffix>, e.g. .png or _gtFine_instanceIds.png.')
    index = _index_by_name(mask_dir, lambda name, is_dir: not is_dir and
                           name.endswith(mask_suffix))
  tasks, class_names, masks_total, without = [], set(), 0, 0
  first_expected = None
  for rel in images:
    rel_dir, file_name = os.path.split(rel)
    key = _image_key(file_name, image_suffix)
    name = key if by_folder else key + mask_suffix
    image_path = os.path.join(image_dir, rel)
    found = _find_mask(mask_dir, rel_dir, name, index, by_folder, rel, flag)
    if first_expected is None:
      first_expected = os.path.join(mask_dir, rel_dir, name)
    if found is not None and not by_folder and (
        os.path.realpath(found) == os.path.realpath(image_path)):
      raise ConversionError(
          '%s: the mask of image %s would be the image itself (%s): give --mask_suffix '
          '(e.g. _instanceIds.png) and/or --image_suffix so that image and mask names differ.'
          % (flag, rel, found))
    if found is not None and by_folder and mask_subfolder:
      found = os.path.join(found, mask_subfolder)
      if not os.path.isdir(found):
        found = None
    if found is None:
      without += 1
    if by_folder:
      mask_files = ()
      if found is not None:
        mask_files = _list_mask_folder(found, class_name)
        class_names.update(c for c, _ in mask_files if c is not None)
        masks_total += len(mask_files)
      tasks.append(MaskFolderTask(image_path, rel, rel, found, mask_files))
    else:
      masks_total += found is not None
      tasks.append(IdPngTask(image_path, rel, rel, found))
  if without == len(images):
    raise ConversionError(
        '%s=%s: none of the %d images of --%s_image_dir has a mask (the first, %s, needs %s '
        '%s): check %s.' % (
            flag, mask_dir, len(images), split, images[0],
            'the folder' if by_folder else 'the file', first_expected,
            '--image_suffix and the folder layout' if by_folder else
            '--mask_suffix and --image_suffix'))
  return ScannedSplit(tasks, len(images), without, masks_total, class_names)


def _list_mask_folder(folder, class_name):
  """((class name or None, path), ...) of one image's mask folder, sorted."""
  if not os.path.isdir(folder):
    return ()
  files = []
  with os.scandir(folder) as entries:
    entries = sorted(entries, key=lambda e: e.name)
  for entry in entries:
    if entry.is_dir():
      if class_name:
        continue  # Flat layout: only the folder's own PNGs are masks.
      with os.scandir(entry.path) as inner:
        files.extend((entry.name, e.path) for e in sorted(inner, key=lambda e: e.name)
                     if e.is_file() and e.name.lower().endswith('.png'))
    elif entry.name.lower().endswith('.png'):
      files.append((None, entry.path))
  return tuple(files)


# ------------------------------------------------------------------------------------------------
# Reading masks.


def _open_png(path):
  try:
    with open(path, 'rb') as fid:
      data = fid.read()
  except OSError as e:
    raise MaskSkipped(SKIP_UNREADABLE_MASK, 'cannot open %s: %s' % (path, e.strerror)) from None
  try:
    image = Image.open(io.BytesIO(data))
    image.load()
  except Exception as e:  # pylint: disable=broad-except
    raise MaskSkipped(SKIP_UNREADABLE_MASK, 'cannot decode %s: %s' % (path, e)) from None
  if image.format != 'PNG':
    raise MaskSkipped(SKIP_UNREADABLE_MASK, '%s is %s, not PNG' % (path, image.format))
  return image


def read_id_png(path):
  """Reads an instance-ID PNG.

  Returns:
    int64 [H, W] array of the stored pixel values (palette PNGs: the palette indices).

  Raises:
    MaskSkipped: SKIP_UNREADABLE_MASK (missing, undecodable, not PNG) or
      SKIP_MASK_NOT_SINGLE_CHANNEL (an RGB / grey+alpha PNG: values would be colours).
  """
  image = _open_png(path)
  if image.mode not in _SINGLE_CHANNEL_MODES:
    raise MaskSkipped(SKIP_MASK_NOT_SINGLE_CHANNEL, '%s is mode %s; an instance-ID PNG has one '
                      'channel (8, 16 or 32-bit)' % (path, image.mode))
  return np.asarray(image).astype(np.int64)


def read_binary_mask(path):
  """Reads a per-instance mask PNG: uint8 [H, W], 1 where any colour channel is nonzero.

  Alpha is not a colour: an RGBA / LA mask is read from its colour channels.

  Raises:
    MaskSkipped: SKIP_UNREADABLE_MASK.
  """
  image = _open_png(path)
  if image.mode in ('RGBA', 'LA', 'PA'):
    image = image.convert('RGB' if image.mode == 'RGBA' else 'L')
  array = np.asarray(image)
  if array.ndim == 3:
    array = array.any(axis=2)
  return (array != 0).astype(np.uint8)


def tight_box(mask):
  """(ymin, xmin, ymax, xmax) in pixel edges of a mask with pixels: ymax = last row + 1."""
  rows = np.flatnonzero(mask.any(axis=1))
  cols = np.flatnonzero(mask.any(axis=0))
  return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _distinct_values(id_map):
  """Sorted distinct values of an integer array and their pixel counts."""
  if id_map.size and id_map.min() >= 0 and id_map.max() < _BINCOUNT_LIMIT:
    counts = np.bincount(id_map.ravel())
    values = np.flatnonzero(counts)
    return values, counts[values]
  return np.unique(id_map, return_counts=True)


def instances_from_id_map(id_map, id_divisor=CITYSCAPES_ID_DIVISOR, ignore_values=(),
                          class_only_regions=CLASS_ONLY_SKIP):
  """Splits an instance-ID map into instances (see the module docstring for the encoding).

  Args:
    id_map: integer [H, W] array.
    id_divisor: D > 0: class = v // D for v >= D, class-only region for 0 < v < D; 0: every
      v > 0 is an instance of class 1.
    ignore_values: pixel values that are background.
    class_only_regions: CLASS_ONLY_SKIP or CLASS_ONLY_CROWD.

  Returns:
    (instances, skipped): list of Instance (source_class = class id in the PNG), in pixel value
    order; skipped a Counter {SKIP_CLASS_ONLY_REGION: regions skipped}.
  """
  ignored = set(int(v) for v in ignore_values)
  values, counts = _distinct_values(id_map)
  instances, skipped = [], collections.Counter()
  for value, count in zip(values.tolist(), counts.tolist()):
    if value <= 0 or value in ignored:
      continue
    is_crowd = 0
    if id_divisor == 0:
      source_class = 1
    elif value >= id_divisor:
      source_class = value // id_divisor
    else:
      if class_only_regions != CLASS_ONLY_CROWD:
        skipped[SKIP_CLASS_ONLY_REGION] += 1
        continue
      source_class, is_crowd = value, 1
    mask = (id_map == value).astype(np.uint8)
    instances.append(Instance(source_class, mask, int(count), is_crowd))
  return instances, skipped


def check_id_options(id_divisor, ignore_values, class_only_regions, min_instance_pixels):
  """Raises ConversionError (one line naming the flag) for invalid instance_id_png options."""
  if isinstance(id_divisor, bool) or not isinstance(id_divisor, numbers.Integral) or (
      id_divisor < 0):
    raise ConversionError('--id_divisor must be an integer >= 0 (1000 for Cityscapes '
                          'instanceIds; 0: pixel value = instance id of one class), got %r.'
                          % (id_divisor,))
  if id_divisor == 1:
    raise ConversionError('--id_divisor=1 would make every value its own class with instance '
                          '0: use 0 for one class whose pixel values are instance ids.')
  if class_only_regions not in CLASS_ONLY_CHOICES:
    raise ConversionError('--class_only_regions must be one of %s, got %r.'
                          % (', '.join(CLASS_ONLY_CHOICES), class_only_regions))
  check_min_pixels(min_instance_pixels)
  for value in ignore_values:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
      raise ConversionError('--ignore_values must be integers, got %r.' % (value,))


def check_min_pixels(min_instance_pixels):
  if (isinstance(min_instance_pixels, bool) or
      not isinstance(min_instance_pixels, numbers.Integral) or min_instance_pixels < 1):
    raise ConversionError('--min_instance_pixels must be an integer >= 1, got %r.'
                          % (min_instance_pixels,))


def parse_int_list(value, flag):
  """'255, 65535' -> [255, 65535]; raises ConversionError naming `flag` for a non-integer."""
  items = [v.strip() for v in str(value).split(',') if v.strip()]
  try:
    return [int(v) for v in items]
  except ValueError:
    raise ConversionError('%s must be comma-separated integers (e.g. 255), got %r.'
                          % (flag, value)) from None


# ------------------------------------------------------------------------------------------------
# Everything checked before anything is written.

SPLITS = ('train', 'val', 'test')


def prepare_inputs(input_format, splits, label_map_path='', classes=None, class_name='',
                   id_divisor=CITYSCAPES_ID_DIVISOR, ignore_values=(),
                   class_only_regions=CLASS_ONLY_SKIP, image_pattern='', image_suffix='',
                   mask_suffix='.png', mask_subfolder='', min_instance_pixels=1):
  """Checks the options, finds and pairs every split's images and masks, resolves the classes.

  Args: see `instance_png_tf_record.convert`.

  Returns:
    (scans, categories, class_map, chosen): list of ScannedSplit (in `splits` order);
    categories {record id: name} for the label map; class_map {source class: (record id,
    name)}; chosen None or the list of coco_annotations.ClassChoice of `classes`.

  Raises:
    ConversionError / ClassesError: one line naming the flag, folder or file.
  """
  if input_format not in INPUT_FORMATS:
    raise ConversionError('--input_format must be one of %s, got %r.'
                          % (', '.join(INPUT_FORMATS), input_format))
  if not splits:
    raise ConversionError('No split to convert: give --train_image_dir with --train_mask_dir '
                          'and/or --val_image_dir with --val_mask_dir.')
  for split, _, _ in splits:
    if split not in SPLITS:
      raise ConversionError('Unknown split %r (expected one of %s).' % (split, ', '.join(SPLITS)))
  check_min_pixels(min_instance_pixels)
  if classes is not None:
    classes = list(classes)
  if input_format == INSTANCE_ID_PNG:
    check_id_options(id_divisor, ignore_values, class_only_regions, min_instance_pixels)
    if mask_subfolder:
      raise ConversionError('--mask_subfolder is for --input_format=instance_mask_folder; an '
                            'instance-ID PNG is found by --mask_suffix.')
    label_map = read_label_map(label_map_path) if label_map_path else None
  elif label_map_path:
    raise ConversionError('--label_map_path is for --input_format=instance_id_png: the classes '
                          'of instance_mask_folder are its class subfolder names (or '
                          '--class_name).')
  scans = [scan_split(input_format, image_dir, mask_dir, image_pattern, image_suffix,
                      mask_suffix, mask_subfolder, class_name, split)
           for split, image_dir, mask_dir in splits]
  if input_format == INSTANCE_ID_PNG:
    _check_bit_depth(scans, id_divisor)
    categories, class_map, chosen = id_png_classes(label_map, classes, id_divisor, class_name)
  else:
    names = set()
    for scan in scans:
      names.update(scan.class_names)
    categories, class_map, chosen = folder_classes(names, classes, class_name)
  return scans, categories, class_map, chosen


def _check_bit_depth(scans, id_divisor):
  """Refuses an id_divisor that no pixel of the first instance-ID PNG can reach.

  Only the PNG header is read. An 8-bit PNG holds values <= 255: with --id_divisor=1000 every
  object would be a class-only region and nothing would be written.
  """
  first = next((t.mask_path for scan in scans for t in scan.tasks if t.mask_path), None)
  if first is None or id_divisor <= 255:
    return
  try:
    with Image.open(first) as image:
      mode = image.mode
  except Exception:  # pylint: disable=broad-except
    return  # The encoder skips and names an unreadable PNG.
  if mode in ('1', 'L', 'P'):
    raise ConversionError(
        '--id_divisor=%d, but %s is an 8-bit PNG (values 0..255): every object would be a '
        'class-only region. If its values are instance ids of one class, give --id_divisor=0 '
        '--class_name=<class>; if they encode class * D + instance, give --id_divisor=D.'
        % (id_divisor, first))
