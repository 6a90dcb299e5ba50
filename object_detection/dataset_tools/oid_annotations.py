"""Reads and checks Open Images instance-segmentation annotations; builds one task per image.

No TensorFlow here: the command line checks every input with this module (CSV headers, class
names, image and mask folders) before it imports TensorFlow and starts writing.

The files, as Open Images ships them (https://storage.googleapis.com/openimages/web/download.html,
the "Instance segmentations" downloads, V5 to V7):

  <split>-annotations-object-segmentation.csv, one row per instance mask, header
      MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks
    e.g. 677c122b0eaa5d16_m04yx4_9a041d52.png,677c122b0eaa5d16,/m/04yx4,9a041d52,0.8875,
    0.960938,0.454167,0.720833,0.86864,<clicks>. MaskPath is the mask's file name; ImageID is a
    16-hex-digit id (the image file is <ImageID>.jpg); LabelName a `/m/...` class id; the box is
    normalized to [0, 1] (0 = left / top edge, 1 = right / bottom edge). Only MaskPath, ImageID,
    LabelName and the four Box columns are read (the others, BoxID included, may be absent;
    extra columns are ignored). The CSV lists only images that have masks, and not every object
    of an image need have a row (Open Images' training masks cover a subset of its boxes).
  <split>-masks-<c>.zip, c = 0..9, a..f: the mask PNGs of the images whose ImageID starts with
    c (16 zips per split, e.g. train-masks-0.zip .. train-masks-f.zip). A mask is a binary PNG
    (nonzero = the object) at its own resolution, not the image's: it is resized to the image
    with nearest-neighbour interpolation.
  class descriptions (class-descriptions-boxable.csv, oidv7-class-descriptions.csv, ...):
    `LabelName,DisplayName` rows (`/m/05zsy,Pumpkin`), with or without a header row.

Mask folder (--*_mask_dir): a mask is looked up as <mask_dir>/<MaskPath>, then in the
subfolders of <mask_dir> that hold the zip of its ImageID's first hex digit c, unzipped:
`<anything>-masks-<c>` (train-masks-0, validation-masks-a), `<anything>-masks-<c>.zip` (a folder
named after the zip) and `<c>` / `<C>` (FiftyOne's layout, labels/masks/0 .. labels/masks/F).

Class ids: with --classes, the chosen classes (display names, case-insensitive when that picks
one class, or `/m/` ids) get ids 1..K in the order given; without it every LabelName of the
CSV(s) gets an id 1..N in the order of the display names (case-insensitive, then by `/m/` id),
so the ids depend only on the set of classes the CSVs hold.

Images: only the images listed in the CSV are converted, in the CSV's order (of first
appearance); other files of the image folder are ignored. With --classes, the CSV's images
without a row of a chosen class are dropped (counted), or written as negatives (no objects) with
--keep_empty_images (as masks are not exhaustive, such a negative may still show an unsegmented
object of a chosen class); images absent from the CSV are never written, with or without it:
having no mask row at all, nothing is known of them.

Errors are `coco_annotations.ConversionError` (one line naming the file and what to do), or
`coco_annotations.ClassesError` for a `--classes` value.
"""
import collections
import csv
import difflib
import math
import os
import re

from object_detection.dataset_tools import coco_annotations

ConversionError = coco_annotations.ConversionError
ClassesError = coco_annotations.ClassesError
ClassChoice = coco_annotations.ClassChoice

SPLITS = ('train', 'val', 'test')
# The columns the converter reads (the others of the Open Images header are not needed).
REQUIRED_COLUMNS = ('MaskPath', 'ImageID', 'LabelName', 'BoxXMin', 'BoxXMax', 'BoxYMin',
                    'BoxYMax')
OPEN_IMAGES_HEADER = ('MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,'
                      'PredictedIoU,Clicks')
# First cells of a class-descriptions header row (Open Images has used `LabelName,DisplayName`,
# `id,name` and no header at all).
_DESCRIPTION_HEADER_CELLS = ('labelname', 'label_name', 'label', 'id', 'mid', 'class')
# Image file names tried for an ImageID, in this order (Open Images ships .jpg).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.JPG', '.JPEG', '.PNG')
# A folder of unzipped masks: train-masks-0, validation-masks-a, test-masks-f.zip, 0 .. F.
_MASK_SUBDIR = re.compile(r'^(?:.*-masks-([0-9a-f])(?:\.zip)?|([0-9a-f]))$', re.IGNORECASE)
# Rows whose masks are looked for before anything is written: none found means a wrong folder.
_MASK_CHECK_ROWS = 1000
_NAMES_LISTED = 12

# One instance of a task: the CSV row of a chosen class, with its new class id.
OidInstance = collections.namedtuple('OidInstance', [
    'mask_path',  # str, MaskPath
    'class_id',   # int, the id written (label map id)
    'xmin', 'xmax', 'ymin', 'ymax',  # float, the CSV box, normalized; NaN when not a number
])

# One image to encode (picklable: built in the main process, encoded in a worker).
OidTask = collections.namedtuple('OidTask', [
    'image_id',    # str, ImageID (written as image/source_id)
    'image_file',  # str, the image's file name in the image folder, or None when absent
    'instances',   # tuple of OidInstance (empty: a negative, --keep_empty_images)
])

# What `prepare_split` returns for one split.
OidSplit = collections.namedtuple('OidSplit', [
    'split',            # 'train' | 'val' | 'test'
    'annotations_file',  # str
    'image_dir',        # str
    'mask_dir',         # str
    'mask_subdirs',     # dict hex digit -> tuple of mask subfolders (see mask_subdirs)
    'tasks',            # list of OidTask, CSV order of first appearance
    'images_total',     # int, distinct ImageIDs of the CSV
    'instances_total',  # int, rows of the CSV
    'instances_other_classes',      # int, rows of classes not chosen
    'images_without_chosen_class',  # int, images of the CSV without a row of a chosen class,
                                    # dropped (0 with keep_empty_images: they are tasks)
    'images_missing',   # int, tasks whose image file is not in image_dir
])


def _fail(path, message):
  raise ConversionError('%s: %s' % (path, message))


def _open_csv(path, what):
  if not os.path.isfile(path):
    raise ConversionError('%s %s does not exist.' % (what, path))
  try:
    # utf-8-sig: a file saved by a spreadsheet program starts with a byte-order mark.
    return open(path, newline='', encoding='utf-8-sig')
  except OSError as e:
    raise ConversionError('%s %s cannot be read (%s).' % (what, path, e.strerror)) from None


# ------------------------------------------------------------------------------------------------
# Class descriptions and class ids.


def read_class_descriptions(path):
  """Reads an Open Images class-descriptions CSV.

  Args:
    path: CSV of `LabelName,DisplayName` rows, with or without a header row (a first row whose
      first cell is LabelName, id, mid, label or class, any case, is a header).

  Returns:
    dict LabelName (str, e.g. '/m/05zsy') -> display name (str, e.g. 'Pumpkin'), file order.

  Raises:
    ConversionError: the file is missing, unreadable, empty, has a row with fewer than 2 cells
      or an empty LabelName, or lists one LabelName twice with different names.
  """
  descriptions, line_of = {}, {}
  with _open_csv(path, 'Class descriptions file') as fid:
    try:
      for index, row in enumerate(csv.reader(fid)):
        if not row or not any(cell.strip() for cell in row):
          continue
        if index == 0 and row[0].strip().lower() in _DESCRIPTION_HEADER_CELLS:
          continue
        if len(row) < 2 or not row[0].strip():
          _fail(path, 'line %d (%r) is not `LabelName,DisplayName` (e.g. /m/05zsy,Pumpkin).'
                % (index + 1, ','.join(row)[:80]))
        label, name = row[0].strip(), row[1].strip()
        if label in descriptions and descriptions[label] != name:
          _fail(path, 'LabelName %s is %r on line %d but %r on line %d: give each class once.'
                % (label, descriptions[label], line_of[label], name, index + 1))
        descriptions.setdefault(label, name)
        line_of.setdefault(label, index + 1)
    except (csv.Error, UnicodeDecodeError) as e:
      _fail(path, 'cannot be read as CSV (%s).' % e)
  if not descriptions:
    _fail(path, 'lists no class: expected `LabelName,DisplayName` rows (e.g. /m/05zsy,Pumpkin).')
  return descriptions


def resolve_classes(items, descriptions, descriptions_file, flag='--classes'):
  """Maps `--classes` items (display names or `/m/` ids) to the K classes converted.

  An item is a LabelName of the descriptions file (`/m/05zsy`), or a display name: exact, else
  ignoring case when that picks one class. A display name that several LabelNames share must be
  given as one of their `/m/` ids.

  Args:
    items: sequence of str, in the order the new ids are given (1..K).
    descriptions: dict LabelName -> display name (`read_class_descriptions`).
    descriptions_file: its path, named in the errors.
    flag: how the classes were given, named in the errors.

  Returns:
    list of coco_annotations.ClassChoice(name=display name, source_id=LabelName, id=1..K).

  Raises:
    ClassesError: no item; an item that names no class (the message suggests close names), that
      names several, or a class given twice.
  """
  if isinstance(items, (str, bytes)):
    raise ClassesError('%s must be a list of class names or /m/ ids, got %r.' % (flag, items))
  items = [str(item).strip() for item in items if str(item).strip()]
  if not items:
    raise ClassesError('%s names no class: give one or more display names or /m/ ids, e.g. '
                       '%s=Pumpkin,Tomato or %s=/m/05zsy.' % (flag, flag, flag))
  by_name = collections.defaultdict(list)
  by_lower = collections.defaultdict(list)
  for label, name in descriptions.items():
    by_name[name].append(label)
    by_lower[name.lower()].append(label)
  chosen, given_as = [], {}
  for item in items:
    if item in descriptions:
      labels = [item]
    else:
      labels = by_name.get(item) or by_lower.get(item.lower()) or []
    if len(labels) > 1:
      raise ClassesError('%s: %r names %d classes of %s (%s): give the /m/ id of the one you '
                         'mean.' % (flag, item, len(labels), descriptions_file, ', '.join(
                             '%s=%s' % (l, descriptions[l]) for l in labels[:6])))
    if not labels:
      close = difflib.get_close_matches(item, list(by_name), n=3, cutoff=0.6)
      if not close:
        lowered = difflib.get_close_matches(item.lower(), list(by_lower), n=3, cutoff=0.6)
        close = [descriptions[by_lower[name][0]] for name in lowered]
      hint = ' (did you mean %s?)' % ' or '.join(repr(c) for c in close) if close else ''
      names = sorted(by_name, key=str.lower)
      listed = ', '.join(names[:_NAMES_LISTED]) + (
          ' and %d more' % (len(names) - _NAMES_LISTED) if len(names) > _NAMES_LISTED else '')
      raise ClassesError('%s: %r is not a display name or /m/ id of %s%s; valid names (%d): '
                         '%s.' % (flag, item, descriptions_file, hint, len(names), listed))
    label = labels[0]
    if label in given_as:
      raise ClassesError('%s lists %r (%s) twice (as %r and %r): give each class once.'
                         % (flag, descriptions[label], label, given_as[label], item))
    given_as[label] = item
    chosen.append(ClassChoice(name=descriptions[label], source_id=label, id=len(chosen) + 1))
  return chosen


def all_classes(labels_by_file, descriptions, descriptions_file):
  """The classes of every LabelName in the CSVs, ids 1..N by display name (then `/m/` id).

  Args:
    labels_by_file: list of (CSV path, iterable of its LabelNames).
    descriptions: dict LabelName -> display name.
    descriptions_file: its path, named in the errors.

  Returns:
    list of coco_annotations.ClassChoice(name=display name, source_id=LabelName, id=1..N).

  Raises:
    ConversionError: a LabelName of a CSV is not in the descriptions file (names both files).
  """
  labels = set()
  for path, file_labels in labels_by_file:
    missing = sorted(set(file_labels) - set(descriptions))
    if missing:
      raise ConversionError(
          '%s has LabelName %s%s, which %s does not list: give the class-descriptions file of '
          'the same Open Images version (e.g. oidv7-class-descriptions.csv).' % (
              path, missing[0], ' (and %d more)' % (len(missing) - 1) if len(missing) > 1
              else '', descriptions_file))
    labels.update(file_labels)
  ordered = sorted(labels, key=lambda l: (descriptions[l].lower(), descriptions[l], l))
  return [ClassChoice(name=descriptions[l], source_id=l, id=i + 1)
          for i, l in enumerate(ordered)]


# ------------------------------------------------------------------------------------------------
# The segmentation CSV.


def _float_or_nan(text):
  try:
    value = float(text)
  except ValueError:
    return math.nan
  return value


def read_header(annotations_file):
  """Checks the CSV header; returns {column name: index} of the REQUIRED_COLUMNS.

  Raises:
    ConversionError: the file is missing, empty, or its header lacks a required column (the
      message names the file and the column).
  """
  with _open_csv(annotations_file, 'Annotations file') as fid:
    try:
      header = next(csv.reader(fid), None)
    except (csv.Error, UnicodeDecodeError) as e:
      _fail(annotations_file, 'cannot be read as CSV (%s).' % e)
  if not header:
    _fail(annotations_file, 'is empty: expected the Open Images header %s.' % OPEN_IMAGES_HEADER)
  header = [cell.strip() for cell in header]
  missing = [c for c in REQUIRED_COLUMNS if c not in header]
  if missing:
    _fail(annotations_file, 'the header has no %s column%s (an Open Images segmentation CSV '
          'starts with %s; got %s).' % (', '.join(missing), 's' if len(missing) > 1 else '',
                                       OPEN_IMAGES_HEADER, ','.join(header)[:120]))
  return {c: header.index(c) for c in REQUIRED_COLUMNS}


def read_segmentation_csv(annotations_file, class_ids=None):
  """Reads a segmentation CSV, keeping the rows of the chosen classes.

  Args:
    annotations_file: the CSV (see the module docstring).
    class_ids: None (keep every row, with class_id 0: `prepare` numbers the classes once every
      CSV is read), or dict LabelName -> new id:
      rows of other LabelNames are only counted (a full train CSV has 2.7M rows; one class's
      are a few thousand).

  Returns:
    dict with `rows_by_image` (dict ImageID -> list of (OidInstance, LabelName), CSV order),
    `image_ids` (list of every ImageID, order of first appearance), `num_rows` (int),
    `rows_other_classes` (int), `labels` (collections.Counter LabelName -> rows, all rows).

  Raises:
    ConversionError: missing / unreadable file, a missing required column, a row with fewer
      cells than the header needs, or an empty ImageID, MaskPath or LabelName (names the line).
  """
  columns = read_header(annotations_file)
  i_mask, i_image, i_label = columns['MaskPath'], columns['ImageID'], columns['LabelName']
  i_box = [columns[c] for c in ('BoxXMin', 'BoxXMax', 'BoxYMin', 'BoxYMax')]
  needed = max(columns.values()) + 1
  rows_by_image = collections.OrderedDict()
  image_ids = collections.OrderedDict()
  labels = collections.Counter()
  label_objects = {}
  num_rows = other = 0
  with _open_csv(annotations_file, 'Annotations file') as fid:
    reader = csv.reader(fid)
    try:
      next(reader)
      for row in reader:
        if not row:
          continue
        num_rows += 1
        if len(row) < needed:
          _fail(annotations_file, 'line %d has %d cells, the header needs %d (%r).' % (
              reader.line_num, len(row), needed, ','.join(row)[:80]))
        image_id = row[i_image].strip()
        label = row[i_label].strip()
        mask_path = row[i_mask].strip()
        if not image_id or not label or not mask_path:
          _fail(annotations_file, 'line %d has an empty %s.' % (
              reader.line_num, 'ImageID' if not image_id else
              'LabelName' if not label else 'MaskPath'))
        # One str object per class: a full train CSV has 2.7M rows of ~350 LabelNames.
        label = label_objects.setdefault(label, label)
        labels[label] += 1
        image_ids[image_id] = None
        if class_ids is not None and label not in class_ids:
          other += 1
          continue
        box = [_float_or_nan(row[i]) for i in i_box]
        instance = OidInstance(
            mask_path=mask_path,
            class_id=class_ids[label] if class_ids is not None else 0,
            xmin=box[0], xmax=box[1], ymin=box[2], ymax=box[3])
        rows_by_image.setdefault(image_id, []).append((instance, label))
    except (csv.Error, UnicodeDecodeError) as e:
      _fail(annotations_file, 'cannot be read as CSV (line %d: %s).' % (reader.line_num, e))
  return {'rows_by_image': rows_by_image, 'image_ids': list(image_ids), 'num_rows': num_rows,
          'rows_other_classes': other, 'labels': labels}


# ------------------------------------------------------------------------------------------------
# Image and mask folders.


def index_images(image_dir, image_ids):
  """{ImageID: file name} of the CSV's images found in `image_dir` (one folder listing).

  `<ImageID>.jpg` is preferred, then .jpeg, .png (any case of these).
  """
  wanted = set(image_ids)
  found = {}
  rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
  with os.scandir(image_dir) as entries:
    for entry in entries:
      stem, ext = os.path.splitext(entry.name)
      if ext not in rank or stem not in wanted:
        continue
      if stem in found and rank[os.path.splitext(found[stem])[1]] <= rank[ext]:
        continue
      found[stem] = entry.name
  return found


def mask_subdirs(mask_dir):
  """{hex digit: tuple of subfolders of mask_dir} holding the masks of ImageIDs starting with it.

  Recognised names (any case): `<anything>-masks-<c>` (train-masks-0, unzipped),
  `<anything>-masks-<c>.zip` (a folder named after the zip) and `<c>` (FiftyOne: masks/0..F).
  """
  found = collections.defaultdict(list)
  with os.scandir(mask_dir) as entries:
    for entry in sorted(entries, key=lambda e: e.name):
      match = _MASK_SUBDIR.match(entry.name)
      if match and entry.is_dir():
        found[(match.group(1) or match.group(2)).lower()].append(entry.path)
  return {digit: tuple(paths) for digit, paths in found.items()}


def find_mask(mask_dir, subdirs, image_id, mask_path):
  """Path of a mask file, or None: <mask_dir>/<MaskPath>, then the zip subfolders of its digit."""
  path = os.path.join(mask_dir, mask_path)
  if os.path.isfile(path):
    return path
  for folder in subdirs.get(image_id[:1].lower(), ()):
    path = os.path.join(folder, mask_path)
    if os.path.isfile(path):
      return path
  return None


# ------------------------------------------------------------------------------------------------
# Splits.


def _check_folder(path, flag, split):
  if not path:
    raise ConversionError('%s is not given: the %s split needs it.' % (flag, split))
  if not os.path.isdir(path):
    raise ConversionError('%s=%s (for the %s split) is not a folder.' % (flag, path, split))


def prepare_split(split, annotations_file, image_dir, mask_dir, loaded, keep_empty_images,
                  by_class=False):
  """Builds one split's tasks from its read CSV.

  Args:
    split: 'train', 'val' or 'test'.
    annotations_file, image_dir, mask_dir: its inputs (checked to exist).
    loaded: `read_segmentation_csv(annotations_file, class_ids)` with the final class ids.
    keep_empty_images: make a task without instances (a negative) of every image of the CSV
      without a row of a chosen class.
    by_class: a class subset was chosen (named in the error about missing images).

  Returns:
    OidSplit.

  Raises:
    ConversionError: no image of the tasks is in image_dir, or no mask of the first rows
      (_MASK_CHECK_ROWS) is in mask_dir or its zip subfolders: a wrong folder.
  """
  rows_by_image = loaded['rows_by_image']
  needed = loaded['image_ids'] if keep_empty_images else list(rows_by_image)
  images = index_images(image_dir, needed)
  if needed and not images:
    raise ConversionError(
        'None of the %d image(s) of %s%s is in %s (e.g. %s.jpg): give the folder of the Open '
        'Images files <ImageID>.jpg for the %s split.' % (
            len(needed), annotations_file, ' with an instance of the chosen classes'
            if by_class and not keep_empty_images else '', image_dir, needed[0], split))
  subdirs = mask_subdirs(mask_dir)
  looked_at = []
  for image_id, rows in rows_by_image.items():
    if len(looked_at) >= _MASK_CHECK_ROWS:
      break
    found = [inst for inst, _ in rows if find_mask(mask_dir, subdirs, image_id, inst.mask_path)]
    if found:
      looked_at = []
      break
    looked_at.extend((image_id, inst.mask_path) for inst, _ in rows)
  if looked_at:
    raise ConversionError(
        'No mask of the first %d row(s) of %s is in %s (e.g. %s, looked for there and in its '
        'subfolders %s-masks-%s, %s, ...): give the folder holding the unzipped '
        '<split>-masks-<c>.zip files (or their folders) for the %s split.' % (
            len(looked_at), annotations_file, mask_dir, looked_at[0][1],
            'train' if split == 'train' else 'validation' if split == 'val' else split,
            looked_at[0][0][:1].lower(), looked_at[0][0][:1].lower(), split))
  tasks = []
  missing = without_class = 0
  for image_id in loaded['image_ids']:
    rows = rows_by_image.get(image_id)
    if not rows and not keep_empty_images:
      without_class += 1
      continue
    image_file = images.get(image_id)
    missing += image_file is None
    tasks.append(OidTask(image_id=image_id, image_file=image_file,
                         instances=tuple(inst for inst, _ in rows or ())))
  return OidSplit(
      split=split, annotations_file=annotations_file, image_dir=image_dir, mask_dir=mask_dir,
      mask_subdirs=subdirs, tasks=tasks, images_total=len(loaded['image_ids']),
      instances_total=loaded['num_rows'],
      instances_other_classes=loaded['rows_other_classes'],
      images_without_chosen_class=without_class, images_missing=missing)


def prepare(splits, class_descriptions_file, classes=None, keep_empty_images=False):
  """Checks every input and builds every split's tasks, before anything is written.

  Args:
    splits: list of (split, annotations_file, image_dir, mask_dir).
    class_descriptions_file: the class-descriptions CSV.
    classes: None (every class of the CSVs, ids by display name), or a sequence of display names
      / `/m/` ids (ids 1..K in this order).
    keep_empty_images: with `classes`, keep the images without a chosen class as negatives.

  Returns:
    (oid_splits, chosen): list of OidSplit, and the list of ClassChoice written (the label map).

  Raises:
    ConversionError: a missing or malformed input (see the functions above), no split;
    ClassesError: a bad `classes` value, or keep_empty_images without classes.
  """
  if not splits:
    raise ConversionError('No split to convert: give --train_annotations_file, '
                          '--train_image_dir and --train_mask_dir (or the --val_ / --test_ '
                          'ones).')
  if keep_empty_images and classes is None:
    raise ClassesError('--keep_empty_images only applies with --classes (the CSV lists only '
                       'images with masks, so every image has an instance): remove it or give '
                       '--classes.')
  names = [split[0] for split in splits]
  for name in names:
    if name not in SPLITS or names.count(name) > 1:
      raise ConversionError('Split %r is unknown or given twice (splits: %s, each once).'
                            % (name, ', '.join(SPLITS)))
  for split, annotations_file, image_dir, mask_dir in splits:
    read_header(annotations_file)
    _check_folder(image_dir, '--%s_image_dir' % split, split)
    _check_folder(mask_dir, '--%s_mask_dir' % split, split)
  descriptions = read_class_descriptions(class_descriptions_file)
  if classes is not None:
    chosen = resolve_classes(classes, descriptions, class_descriptions_file)
    class_ids = {c.source_id: c.id for c in chosen}
    loaded = [read_segmentation_csv(annotations_file, class_ids)
              for _, annotations_file, _, _ in splits]
  else:
    loaded = [read_segmentation_csv(annotations_file) for _, annotations_file, _, _ in splits]
    chosen = all_classes([(s[1], l['labels']) for s, l in zip(splits, loaded)], descriptions,
                         class_descriptions_file)
    class_ids = {c.source_id: c.id for c in chosen}
    for one in loaded:
      for rows in one['rows_by_image'].values():
        rows[:] = [(inst._replace(class_id=class_ids[label]), label) for inst, label in rows]
  oid_splits = [prepare_split(split, annotations_file, image_dir, mask_dir, one,
                              keep_empty_images and classes is not None, classes is not None)
                for (split, annotations_file, image_dir, mask_dir), one in zip(splits, loaded)]
  return oid_splits, chosen
