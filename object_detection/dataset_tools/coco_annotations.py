"""Reads and checks COCO instance annotation files; rasterises COCO segmentations.

No TensorFlow here: the converter's command line checks every input with this module (in well
under a second) before it imports TensorFlow and starts writing.

Errors are `ConversionError` (a `ConfigError`, so a ValueError) whose message starts with the
file's path and says which record and key is wrong.
"""
import collections
import json
import math
import numbers
import os

from pycocotools import mask as mask_utils

from object_detection.utils import config_validation


class ConversionError(config_validation.ConfigError):
  """An input file is missing or malformed; the message names the file and what is wrong."""


class ClassesError(ConversionError, config_validation.UsageError):
  """A `--classes` value names no class of the annotation files; the message names the flag."""


def _fail(path, message):
  raise ConversionError('%s: %s' % (path, message))


def _require(record, keys, path, what):
  missing = [k for k in keys if k not in record]
  if missing:
    _fail(path, '%s is missing key(s) %s (COCO format needs %s).' % (
        what, ', '.join(repr(k) for k in missing), ', '.join(repr(k) for k in keys)))


def _load_categories(records, annotations_file):
  """{id: name} of the `categories` list; refuses ids a label map cannot hold as one class."""
  categories, index_of = {}, {}
  for index, category in enumerate(records):
    if not isinstance(category, dict):
      _fail(annotations_file, 'categories[%d] is not an object.' % index)
    _require(category, ('id', 'name'), annotations_file, 'categories[%d]' % index)
    raw_id, name = category['id'], str(category['name'])
    if (isinstance(raw_id, bool) or not isinstance(raw_id, numbers.Real) or
        not float(raw_id).is_integer()):
      _fail(annotations_file, 'categories[%d] (name=%r) has id=%r: category ids must be '
            'integers.' % (index, name, raw_id))
    category_id = int(raw_id)
    if category_id == 0:
      _fail(annotations_file, 'categories[%d] (name=%r) has id 0, which the TF OD API reserves '
            'for the background: renumber the categories from 1 (and the annotations\' '
            'category_id).' % (index, name))
    if category_id < 0:
      _fail(annotations_file, 'categories[%d] (name=%r) has id %d: category ids must be '
            'positive (0 is the background).' % (index, name, category_id))
    if category_id in categories:
      _fail(annotations_file, 'category id %d appears twice in "categories" (categories[%d] '
            '%r and categories[%d] %r): one class would take the other\'s name; remove or '
            'renumber one of them.' % (category_id, index_of[category_id],
                                       categories[category_id], index, name))
    categories[category_id] = name
    index_of[category_id] = index
  return categories


def load_coco_annotations(annotations_file):
  """Reads and checks a COCO instances JSON.

  Args:
    annotations_file: path of a COCO instances JSON (`images`, `categories`, optional
      `annotations`: test-dev files have none).

  Returns:
    dict with `images` (list of image dicts, JSON order), `categories` (dict id -> name),
    `annotations_by_image` (dict image id -> list of annotations, JSON order), `num_annotations`
    (int), `unknown_image_annotations` (int: annotations whose image_id is not in `images`).

  Raises:
    ConversionError: the file is missing, not JSON, or misses required keys; a category id is
      not a positive integer (0 is the TF OD API's background) or appears twice (the message
      names the file, the record and the key).
  """
  if not os.path.isfile(annotations_file):
    raise ConversionError('Annotations file %s does not exist.' % annotations_file)
  try:
    with open(annotations_file, 'rb') as fid:
      data = json.load(fid)
  except json.JSONDecodeError as e:
    _fail(annotations_file, 'not valid JSON (%s at line %d column %d).' % (e.msg, e.lineno,
                                                                            e.colno))
  except (UnicodeDecodeError, OSError) as e:
    _fail(annotations_file, 'cannot be read as JSON (%s).' % e)
  if not isinstance(data, dict):
    _fail(annotations_file, 'the top level must be a JSON object with "images" and '
          '"categories", got %s.' % type(data).__name__)
  _require(data, ('images', 'categories'), annotations_file, 'The top-level object')
  if not isinstance(data['images'], list) or not isinstance(data['categories'], list):
    _fail(annotations_file, '"images" and "categories" must be lists.')

  categories = _load_categories(data['categories'], annotations_file)

  images = []
  seen_ids = set()
  for index, image in enumerate(data['images']):
    if not isinstance(image, dict):
      _fail(annotations_file, 'images[%d] is not an object.' % index)
    _require(image, ('id', 'file_name', 'height', 'width'), annotations_file,
             'images[%d] (id=%s)' % (index, image.get('id', '?')))
    try:
      height, width = int(image['height']), int(image['width'])
    except (TypeError, ValueError):
      height = width = 0
    if height <= 0 or width <= 0:
      _fail(annotations_file, 'images[%d] (id=%s) has height=%r width=%r: both must be positive '
            'integers.' % (index, image['id'], image['height'], image['width']))
    if image['id'] in seen_ids:
      _fail(annotations_file, 'image id %s appears twice in "images".' % image['id'])
    seen_ids.add(image['id'])
    images.append(image)

  annotations = data.get('annotations', [])
  if not isinstance(annotations, list):
    _fail(annotations_file, '"annotations" must be a list.')
  by_image = collections.defaultdict(list)
  unknown_image = 0
  for index, ann in enumerate(annotations):
    if not isinstance(ann, dict):
      _fail(annotations_file, 'annotations[%d] is not an object.' % index)
    what = 'annotations[%d] (id=%s)' % (index, ann.get('id', '?'))
    _require(ann, ('image_id', 'category_id', 'bbox'), annotations_file, what)
    bbox = ann['bbox']
    if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or
        not all(isinstance(v, (int, float)) for v in bbox)):
      _fail(annotations_file, '%s has bbox=%r: it must be [x, y, width, height] in pixels.'
            % (what, bbox))
    if ann['category_id'] not in categories:
      _fail(annotations_file, '%s has category_id=%r, which is not in "categories" (ids %s).'
            % (what, ann['category_id'], sorted(categories)))
    if ann['image_id'] not in seen_ids:
      unknown_image += 1
      continue
    by_image[ann['image_id']].append(ann)
  return {
      'images': images,
      'categories': categories,
      'annotations_by_image': by_image,
      'num_annotations': len(annotations),
      'unknown_image_annotations': unknown_image,
  }


# Masks.


def ann_to_rle(segmentation, height, width):
  """Converts a COCO `segmentation` to one RLE, exactly as pycocotools' `COCO.annToRLE`.

  Args:
    segmentation: list of polygons ([x1, y1, x2, y2, ...] in pixels, several parts allowed),
      an uncompressed RLE dict ({'counts': [int...], 'size': [h, w]}) or a compressed RLE dict
      ({'counts': str, 'size': [h, w]}).
    height, width: image size in pixels.

  Returns:
    a compressed RLE dict.
  """
  if isinstance(segmentation, list):
    # Polygon: one object may be several parts; their union is the mask.
    return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
  if isinstance(segmentation['counts'], list):
    return mask_utils.frPyObjects(segmentation, height, width)
  return segmentation


def polygon_problem(segmentation):
  """Why a polygon segmentation cannot be rasterised as drawn, or None (also for RLE).

  pycocotools would read a 4-number part as a box and drop the last number of an odd-length
  part, so both are refused rather than rasterised into a shape nobody drew.
  """
  if not isinstance(segmentation, list):
    return None
  for index, part in enumerate(segmentation):
    if not isinstance(part, list):
      return 'polygon part %d is not a list of coordinates' % index
    if len(part) % 2:
      return 'polygon part %d has an odd number of coordinates (%d)' % (index, len(part))
    if len(part) < 6:
      return 'polygon part %d has fewer than 3 points' % index
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
               for v in part):
      return 'polygon part %d has a coordinate that is not a finite number' % index
  return None


def ann_to_mask(segmentation, height, width):
  """Returns the uint8 [height, width] 0/1 mask of a COCO `segmentation` (= COCO.annToMask)."""
  return mask_utils.decode(ann_to_rle(segmentation, height, width))


# Why an annotation gives no mask (`annotation_mask`), as the converters' summaries count it.
SKIP_NO_SEGMENTATION = 'empty_or_missing_segmentation'
SKIP_BAD_SEGMENTATION = 'unusable_segmentation'
SKIP_EMPTY_MASK = 'mask_without_pixels'


def annotation_mask(ann, height, width):
  """The pycocotools mask of one COCO annotation, or the reason it has none.

  Args:
    ann: a COCO annotation dict (its `segmentation`: polygons, RLE or compressed RLE).
    height, width: the image's size in pixels.

  Returns:
    (mask, None): mask uint8 [height, width], values 0 / 1, with at least one 1 (`ann_to_mask`,
    pycocotools' rasterisation); or (None, reason): SKIP_NO_SEGMENTATION (empty or missing),
    SKIP_BAD_SEGMENTATION (odd-length or < 3-point polygons, undecodable, another size),
    SKIP_EMPTY_MASK (no pixel: tiny polygons, empty RLE).
  """
  segmentation = ann.get('segmentation')
  if not segmentation:
    return None, SKIP_NO_SEGMENTATION
  if polygon_problem(segmentation):
    return None, SKIP_BAD_SEGMENTATION
  try:
    mask = ann_to_mask(segmentation, height, width)
  except Exception:  # pylint: disable=broad-except
    return None, SKIP_BAD_SEGMENTATION
  if mask.shape != (height, width):
    return None, SKIP_BAD_SEGMENTATION
  if not mask.any():
    return None, SKIP_EMPTY_MASK
  return mask, None


def merge_categories(per_file_categories):
  """Merges {id: name} dicts of several annotation files.

  Args:
    per_file_categories: list of (annotations_file, {id: name}).

  Returns:
    dict id -> name, all categories of all files.

  Raises:
    ConversionError: one id has different names in two files (names both files).
  """
  merged, origin = {}, {}
  for path, categories in per_file_categories:
    for category_id, name in categories.items():
      if category_id in merged and merged[category_id] != name:
        raise ConversionError(
            'Category id %d is %r in %s but %r in %s: the splits must share one category list.'
            % (category_id, merged[category_id], origin[category_id], name, path))
      merged.setdefault(category_id, name)
      origin.setdefault(category_id, path)
  return merged


def load_splits(splits):
  """Checks and loads the inputs of every split before anything is written.

  Args:
    splits: list of (split name, image_dir, annotations_file).

  Returns:
    (loaded, categories): dict annotations_file -> `load_coco_annotations` result, and the
    merged dict category id -> name of all files.

  Raises:
    ConversionError: an image folder or annotations file is missing or malformed, or two files
      disagree on a category's name.
  """
  loaded = {}
  for split, image_dir, annotations_file in splits:
    if not os.path.isdir(image_dir):
      raise ConversionError('Image folder %s (for the %s split, %s) does not exist.'
                            % (image_dir, split, annotations_file))
    if annotations_file not in loaded:
      loaded[annotations_file] = load_coco_annotations(annotations_file)
  categories = merge_categories([(path, coco['categories']) for path, coco in loaded.items()])
  return loaded, categories


# Class subsets (--classes).

ClassChoice = collections.namedtuple('ClassChoice', [
    'name',        # str, the category's name in the annotation file(s)
    'source_id',   # its id in the source: int (COCO category id, pixel class) or str (Open
                   # Images /m/ id)
    'id',          # int, its id in the written records and label map: 1..K in the order given
])

_NAMES_LISTED = 12  # valid names shown in an unknown-class error


def parse_classes_flag(value):
  """Splits a `--classes` value ('person,car', '1,3', 'person,3') into its items.

  Returns:
    list of str, stripped, empty items (a trailing comma) left out; [] for an empty value.
  """
  return [item.strip() for item in str(value).split(',') if item.strip()]


def resolve_classes(classes, categories, flag='--classes'):
  """Maps chosen classes (names or category ids) to the K classes the conversion keeps.

  An item is a category name of the annotation files, or a category id (an int, or a str of
  digits that is not itself a category name). Names match exactly, else ignoring case when that
  picks one category.

  Args:
    classes: sequence of str / int, in the order the new ids are given (1..K).
    categories: dict category id -> name, all categories of the annotation files.
    flag: how the classes were given, named in the errors.

  Returns:
    list of ClassChoice, in the order given, ids 1..K.

  Raises:
    ClassesError (a ConversionError and a UsageError): no class given; an item that is neither a name nor an id (the message names
      `flag` and the value, suggests close names and lists valid ones); a class given twice.
  """
  if isinstance(classes, (str, bytes, numbers.Integral)):
    raise ClassesError('%s must be a list of class names or ids, got %r.' % (flag, classes))
  items = list(classes)
  if not items:
    raise ClassesError('%s names no class: give one or more category names or ids, e.g. '
                          '%s=person,car.' % (flag, flag))
  by_name = {}
  by_lower_name = collections.defaultdict(list)
  for category_id, name in categories.items():
    by_name.setdefault(name, category_id)
    by_lower_name[name.lower()].append(category_id)
  chosen, given_as = [], {}
  for item in items:
    category_id = _resolve_class(item, categories, by_name, by_lower_name, flag)
    if category_id in given_as:
      raise ClassesError('%s lists %r (category id %d) twice (as %r and %r): give each class '
                         'once.' % (flag, categories[category_id], category_id,
                                    given_as[category_id], item))
    given_as[category_id] = item
    chosen.append(ClassChoice(name=categories[category_id], source_id=category_id,
                              id=len(chosen) + 1))
  return chosen


def _resolve_class(item, categories, by_name, by_lower_name, flag):
  """The category id of one `--classes` item (name or id)."""
  if isinstance(item, bool) or not isinstance(item, (str, numbers.Integral)):
    raise ClassesError('%s: %r is neither a class name nor a category id.' % (flag, item))
  if isinstance(item, str):
    if item in by_name:
      return by_name[item]
    if len(by_lower_name.get(item.lower(), ())) == 1:
      return by_lower_name[item.lower()][0]
    if item.isdigit():
      item = int(item)
  if isinstance(item, numbers.Integral):
    if int(item) in categories:
      return int(item)
    raise ClassesError('%s: %d is not a category id of the annotation file(s) (ids %d..%d, %d '
                          'categories; e.g. %s).' % (
                              flag, item, min(categories), max(categories), len(categories),
                              ', '.join('%d=%s' % (i, categories[i])
                                        for i in sorted(categories)[:_NAMES_LISTED // 2])))
  import difflib  # pylint: disable=g-import-not-at-top
  close = difflib.get_close_matches(item, list(by_name), n=3, cutoff=0.6)
  hint = ' (did you mean %s?)' % ' or '.join(repr(c) for c in close) if close else ''
  names = [categories[i] for i in sorted(categories)]
  listed = ', '.join(names[:_NAMES_LISTED]) + (
      ' and %d more' % (len(names) - _NAMES_LISTED) if len(names) > _NAMES_LISTED else '')
  raise ClassesError('%s: %r is not a category name or id of the annotation file(s)%s; valid '
                        'names (%d): %s.' % (flag, item, hint, len(names), listed))
