r"""Runs an exported SavedModel on a folder of images: overlays + COCO results JSON.

Usage:
  python -m object_detection.predict \
      --saved_model_dir=exported/saved_model \
      --image_dir=samples/data/coco128_seg/images \
      --output_dir=predictions \
      --label_map_path=mscoco_label_map.pbtxt

Writes into `output_dir` (which must not be `image_dir`, lie inside it, or hold links to its
images: predict refuses that before writing anything, so it never overwrites a photo):
  <image stem>.png (or .jpg)  the image with boxes, 'label: score%' strings and translucent masks
                              of the detections with score >= --min_score_thresh. Images that share
                              a stem (a.jpg, a.png) get <stem>_<extension>.png (a_jpg.png,
                              a_png.png), so no overlay overwrites another.
  detections.json             COCO mask results (a list of {image_id, category_id, score,
                              segmentation (RLE)}), loadable with pycocotools' `COCO.loadRes`;
                              category_id = detection_classes (label-map ids). Detections with
                              score >= --results_min_score_thresh (default 0: keep all, as COCO
                              evaluation expects). For a box-only model: the box results.
  detections_bbox.json        COCO box results ({image_id, category_id, score, bbox [x, y, w, h]
                              in absolute pixels}), for box metrics. (One file cannot serve both:
                              loadRes takes a result's area from its bbox when there is one,
                              which changes the small/medium/large mask metrics.)
  image_ids.json              {file name: image_id} for every processed image.

A semantic segmentation export (its signature returns `semantic_classes`; semantic_exporter.py)
writes instead, per image:
  <image stem>.png (or .jpg)  the image with every non-background pixel blended with its class
                              colour (utils/semantic_palette.py) and, on the right, a legend of the
                              classes present: colour, label map name, share of the image's pixels.
  classes/<image stem>.png    the predicted class ids (0 = background, k = label map id k) at the
                              image's size: 8-bit PNG (16-bit when an id exceeds 255). Named as the
                              overlays (same rule for shared stems), always PNG.
  semantic_summary.json       per image and over all images: pixels and pixel share per class.
and prints the share of each class over all images. No detections.json is written for it.

image_id: read from the COCO annotation file when --coco_annotations_path is given (matched by
`file_name`); otherwise the integer file stem (COCO's `000000000009.jpg` -> 9); files whose stem
is not an integer (or repeats an id already taken) get max(integer ids) + 1, + 2, ... in sorted
file-name order. image_ids.json records the mapping.

`--model` takes an OpenVINO IR instead (`exported/my_model/openvino/model.xml`, from
`exporter_main.py --output_format=openvino`; needs the openvino package) or a SavedModel folder
(same as --saved_model_dir); both run through `object_detection.inference_backends`.

Works with any input type of `exporter_main.py` (`image_tensor`, `float_image_tensor`,
`encoded_image_string_tensor`, `tf_example`). Images that cannot be read or decoded are reported,
skipped and counted; the others are still processed. At the end it prints how many detections
reached --min_score_thresh and how many images have none, and warns when no image has any.

Usage errors (a missing saved model, image folder, label map or annotation file, a folder without
images, an --output_dir over the inputs) are `PredictUsageError` (a ConfigError): the command
prints them as one line and exits with status 2, before loading the model or writing anything.
"""

import collections
import json
import logging
import os
import re
import sys

if __name__ == '__main__':
  # Before TensorFlow is imported: its C++ start-up lines are decided at import time.
  from object_detection.utils import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs.quiet_tensorflow_startup()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import numpy as np
import PIL.Image
import tensorflow as tf
import tqdm

from object_detection import inference_backends
from object_detection.core import standard_fields as fields
from object_detection.metrics import coco_tools
from object_detection.utils import semantic_palette
from object_detection.utils import semantic_visualization
from object_detection.utils import visualization_utils
from object_detection.utils.config_validation import ConfigError
# pylint: enable=g-import-not-at-top,wrong-import-position

_DETECTION_FIELDS = fields.DetectionResultFields
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp')
RESULTS_FILENAME = 'detections.json'
BOX_RESULTS_FILENAME = 'detections_bbox.json'
IMAGE_IDS_FILENAME = 'image_ids.json'
SEMANTIC_SUMMARY_FILENAME = 'semantic_summary.json'
CLASS_ID_DIRECTORY = 'classes'
SEMANTIC_CLASSES = 'semantic_classes'  # semantic_exporter.SEMANTIC_CLASSES (no TF import here)


class PredictUsageError(ConfigError):
  """A bad flag of predict; the one-line message names the flag, the value and what to do."""


def list_images(image_dir):
  """Sorted file names (not paths) in `image_dir` with an image extension.

  Raises:
    PredictUsageError: if `image_dir` is not a directory, or holds no image file.
  """
  if not image_dir or not os.path.isdir(image_dir):
    raise PredictUsageError('--image_dir=%s is not a directory; pass the folder of your images.'
                            % image_dir)
  names = sorted(name for name in os.listdir(image_dir)
                 if name.lower().endswith(IMAGE_EXTENSIONS)
                 and os.path.isfile(os.path.join(image_dir, name)))
  if not names:
    raise PredictUsageError('--image_dir=%s holds no image file (%s; sub-folders are not searched).'
                            % (image_dir, ', '.join(IMAGE_EXTENSIONS)))
  return names


def overlay_names(file_names, overlay_format):
  """Maps each input file name to a unique overlay file name.

  `<stem>.<overlay_format>`; inputs that share a stem (a.jpg, a.png) get `<stem>_<ext>.<format>`
  (a_jpg.png, a_png.png), and a name still taken gets `_2`, `_3`, ... before the extension.
  """
  stems = collections.Counter(os.path.splitext(name)[0] for name in file_names)
  names = {}
  for name in file_names:
    if stems[os.path.splitext(name)[0]] == 1:
      names[name] = '%s.%s' % (os.path.splitext(name)[0], overlay_format)
  taken = ({RESULTS_FILENAME, BOX_RESULTS_FILENAME, IMAGE_IDS_FILENAME, SEMANTIC_SUMMARY_FILENAME}
           | set(names.values()))
  for name in file_names:
    if name in names:
      continue
    stem, ext = os.path.splitext(name)
    base = '%s_%s' % (stem, ext.lstrip('.'))
    candidate, k = '%s.%s' % (base, overlay_format), 2
    while candidate in taken:
      candidate, k = '%s_%d.%s' % (base, k, overlay_format), k + 1
    names[name] = candidate
    taken.add(candidate)
  return names


def _relation(path, folder):
  """'the same folder as', 'inside' or None: where `path` lies relative to `folder`."""
  real_path, real_folder = os.path.realpath(path), os.path.realpath(folder)
  if real_path == real_folder:
    return 'the same folder as'
  if os.path.commonpath([real_path, real_folder]) == real_folder:
    return 'inside'
  try:  # The same folder under another name (a bind mount).
    return 'the same folder as' if os.path.samefile(path, folder) else None
  except OSError:
    return None


def check_output_dir(image_dir, output_dir, file_names, output_file_names):
  """Refuses an --output_dir whose writes could overwrite an input image.

  Args:
    image_dir: the input folder.
    output_dir: the output folder (may not exist yet).
    file_names: the input image file names.
    output_file_names: every file name predict will write into output_dir.

  Raises:
    PredictUsageError: output_dir is image_dir (also through a symlink), lies inside it, is a file,
      or already holds a file that is one of the input images (a symlink or hard link to it).
  """
  relation = _relation(output_dir, image_dir)
  if relation:
    raise PredictUsageError(
        '--output_dir=%s is %s --image_dir=%s: predict would write among (and over) your images; '
        'choose a separate folder, e.g. --output_dir=predictions.' % (output_dir, relation, image_dir))
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise PredictUsageError('--output_dir=%s is a file, not a folder; choose a folder.' % output_dir)
  inputs = {}
  for name in file_names:
    st = os.stat(os.path.join(image_dir, name))
    inputs[(st.st_dev, st.st_ino)] = name
  for name in output_file_names:
    path = os.path.join(output_dir, name)
    if not os.path.exists(path):
      continue
    st = os.stat(path)
    if (st.st_dev, st.st_ino) in inputs:
      raise PredictUsageError(
          '--output_dir=%s: %s is the input image %s (a link to it); writing it would overwrite '
          'your image: choose an empty --output_dir.'
          % (output_dir, name, os.path.join(image_dir, inputs[(st.st_dev, st.st_ino)])))


def assign_image_ids(file_names, coco_annotations_path=None):
  """Maps each file name to a COCO image_id (see the module docstring for the rule).

  Args:
    file_names: list of image file names.
    coco_annotations_path: optional COCO JSON whose `images[].file_name` / `id` give the ids.

  Returns:
    dict file name -> int image_id.

  Raises:
    PredictUsageError: the annotation file is missing or not COCO JSON, or a file name is not in it.
  """
  if coco_annotations_path:
    try:
      with open(coco_annotations_path) as f:
        images = json.load(f)['images']
      by_name = {os.path.basename(image['file_name']): int(image['id']) for image in images}
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise PredictUsageError(
          '--coco_annotations_path=%s cannot be read as a COCO annotation file (%s: %s); pass an '
          'instances_*.json with images[].file_name and id.'
          % (coco_annotations_path, type(e).__name__, str(e).splitlines()[0] if str(e) else '')
      ) from e
    missing = [name for name in file_names if name not in by_name]
    if missing:
      raise PredictUsageError('%d image(s) of --image_dir are not in --coco_annotations_path=%s (e.g. %s):'
                       ' point --image_dir at that dataset\'s images.' %
                       (len(missing), coco_annotations_path, missing[0]))
    return {name: by_name[name] for name in file_names}
  image_ids = {}
  unassigned = []
  for name in sorted(file_names):
    stem = os.path.splitext(name)[0]
    if stem.isdigit() and int(stem) not in image_ids.values():
      image_ids[name] = int(stem)
    else:
      unassigned.append(name)
  next_id = max(image_ids.values(), default=0) + 1
  for offset, name in enumerate(unassigned):
    image_ids[name] = next_id + offset
  return image_ids


def load_category_index(label_map_path=None):
  """dict label id -> {'id', 'name'} from a label map (empty when no path is given).

  Raises:
    PredictUsageError: the label map is missing, unreadable or invalid.
  """
  if not label_map_path:
    return {}
  from object_detection.utils import label_map_util  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(label_map_path):
    raise PredictUsageError('--label_map_path=%s is not a file; pass the label map used for training '
                            '(or leave the flag out: the overlays then show class ids).'
                            % label_map_path)
  try:
    return label_map_util.create_category_index_from_labelmap(label_map_path)
  except (ValueError, OSError, tf.errors.OpError) as e:
    reason = getattr(e, 'message', None) or str(e) or type(e).__name__
    raise PredictUsageError('--label_map_path=%s: %s' % (label_map_path, reason.splitlines()[0])) from e


def check_saved_model_dir(saved_model_dir):
  """Raises PredictUsageError unless `saved_model_dir` holds a saved_model.pb."""
  if not saved_model_dir or not tf.io.gfile.exists(os.path.join(saved_model_dir, 'saved_model.pb')):
    raise PredictUsageError(
        '--saved_model_dir=%s holds no saved_model.pb: pass the `saved_model` folder written by '
        'exporter_main.py (e.g. exported/my_model/saved_model).' % saved_model_dir)


# The runner lives with the other backends (object_detection/inference_backends.py).
SavedModelRunner = inference_backends.SavedModelRunner


def decode_image(encoded):
  """Decodes image bytes to uint8 [H, W, 3] with TensorFlow's decoders (as training does).

  Raises:
    ValueError: if the bytes are not a decodable image.
  """
  try:
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
  except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
    # Keep TF's reason, without its "{{function_node ...}}" / "[Op:DecodeImage]" decorations.
    message = re.sub(r'\{\{[^}]*\}\}|\[Op:[^\]]*\]', '', e.message or str(e)).strip()
    raise ValueError(message or 'not a decodable image') from e
  return image.numpy()


def image_masks(detections, image_height, image_width):
  """uint8 [N, H, W] 0/1 image-sized masks of the detections (None for a box-only model).

  Uses `detection_masks_reframed` when the export has it; otherwise reframes
  `detection_masks` with `ops.reframe_and_threshold_masks` (> `ops.MASK_THRESHOLD`).
  """
  if _DETECTION_FIELDS.detection_masks_reframed in detections:
    return detections[_DETECTION_FIELDS.detection_masks_reframed].astype(np.uint8)
  if _DETECTION_FIELDS.detection_masks not in detections:
    return None
  from object_detection.utils import ops  # pylint: disable=g-import-not-at-top
  return ops.reframe_and_threshold_masks(
      detections[_DETECTION_FIELDS.detection_masks], detections[_DETECTION_FIELDS.detection_boxes],
      image_height, image_width, threshold=ops.MASK_THRESHOLD).numpy()


def detections_to_coco(image_id, detections, masks, image_height, image_width, min_score_thresh):
  """COCO result dicts of one image.

  Args:
    image_id: int COCO image id.
    detections: dict of numpy outputs of one image (batch dimension removed).
    masks: uint8 [N, H, W] image-sized masks, or None.
    image_height, image_width: int, size of the image in pixels.
    min_score_thresh: float, detections with a lower score are left out.

  Returns:
    (mask results: list of {image_id, category_id, segmentation (RLE), score}, or None when
    `masks` is None; box results: list of {image_id, category_id, bbox [x, y, w, h] absolute,
    score}).
  """
  num = int(detections[_DETECTION_FIELDS.num_detections])
  scores = detections[_DETECTION_FIELDS.detection_scores][:num]
  keep = np.nonzero(scores >= min_score_thresh)[0]
  classes = detections[_DETECTION_FIELDS.detection_classes][:num][keep].astype(np.int64)
  boxes = detections[_DETECTION_FIELDS.detection_boxes][:num][keep] * np.array(
      [image_height, image_width, image_height, image_width], np.float64)
  category_ids = set(int(c) for c in classes)
  box_results = coco_tools.ExportSingleImageDetectionBoxesToCoco(
      image_id, category_ids, boxes, scores[keep], classes)
  mask_results = None
  if masks is not None:
    # No 'bbox' key: pycocotools' loadRes would then set each result's area to the box area
    # instead of the mask area, changing the small/medium/large segm metrics (the evaluator of
    # model_main.py exports masks the same way).
    mask_results = coco_tools.ExportSingleImageDetectionMasksToCoco(
        image_id, category_ids, masks[:num][keep], scores[keep], classes)
  return mask_results, box_results


def draw_overlay(image, detections, masks, category_index, min_score_thresh, max_boxes_to_draw):
  """Returns a copy of `image` with boxes, labels, scores and translucent masks drawn."""
  num = int(detections[_DETECTION_FIELDS.num_detections])
  classes = detections[_DETECTION_FIELDS.detection_classes][:num].astype(np.int64)
  # Ids missing from the label map (or no --label_map_path) are labelled with their id.
  category_index = dict(category_index)
  for class_id in set(classes.tolist()) - set(category_index):
    category_index[class_id] = {'id': class_id, 'name': 'id %d' % class_id}
  overlay = image.copy()
  visualization_utils.visualize_boxes_and_labels_on_image_array(
      overlay,
      detections[_DETECTION_FIELDS.detection_boxes][:num],
      classes,
      detections[_DETECTION_FIELDS.detection_scores][:num],
      category_index,
      instance_masks=None if masks is None else masks[:num],
      use_normalized_coordinates=True,
      max_boxes_to_draw=max_boxes_to_draw,
      # visualize_boxes_and_labels_on_image_array draws scores strictly above the threshold.
      min_score_thresh=np.nextafter(np.float32(min_score_thresh), np.float32(-np.inf)),
      line_thickness=2)
  return overlay


class SemanticResults(object):
  """Writes the overlay and class-id PNG of each image of a semantic export; counts pixels."""

  def __init__(self, output_dir, category_index, overlays, class_pngs, write_overlays):
    self._output_dir = output_dir
    self._category_index = category_index
    self._overlays = overlays
    self._class_pngs = class_pngs
    self._write_overlays = write_overlays
    self._table = semantic_palette.palette(0)
    self.images = {}
    self.totals = np.zeros([0], np.int64)

  def add(self, name, image, outputs):
    """Writes the files of image `name` (uint8 [H, W, 3]) from its outputs (batch removed).

    Raises:
      PredictUsageError: `semantic_classes` is not [H, W] (not an export of exporter_main.py).
    """
    classes = np.asarray(outputs[SEMANTIC_CLASSES])
    if classes.shape != image.shape[:2]:
      raise PredictUsageError(
          'semantic_classes has shape %s for a %dx%d image: export the model with this '
          'project\'s exporter_main.py (outputs at the input size).'
          % (classes.shape, image.shape[0], image.shape[1]))
    counts = semantic_visualization.class_pixel_counts(classes)
    path = os.path.join(self._output_dir, self._class_pngs[name])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    semantic_visualization.class_id_png(classes).save(path)
    if self._write_overlays:
      overlay = semantic_visualization.overlay_with_legend(image, classes, self._category_index,
                                                           self._table)
      PIL.Image.fromarray(overlay).save(os.path.join(self._output_dir, self._overlays[name]))
    size = max(len(self.totals), len(counts))
    self.totals = np.pad(self.totals, [0, size - len(self.totals)]) + np.pad(
        counts, [0, size - len(counts)])
    self.images[name] = {'height': int(image.shape[0]), 'width': int(image.shape[1]),
                         'class_id_png': self._class_pngs[name],
                         'classes': self._class_table(counts)}

  def _class_table(self, counts):
    total = max(int(np.sum(counts)), 1)
    present = [int(k) for k in np.nonzero(counts)[0]]
    names = semantic_visualization.class_names(self._category_index, present)
    return [{'id': k, 'name': names[k], 'pixels': int(counts[k]),
             'share': float(counts[k]) / total} for k in present]

  def summary(self):
    """{'classes': [{id, name, pixels, share}] over all images, 'images': {file name: ...}}."""
    return {'classes': self._class_table(self.totals), 'images': self.images}


def run_predictions(saved_model_dir, image_dir, output_dir, label_map_path=None,
                    min_score_thresh=0.5, results_min_score_thresh=0.0,
                    coco_annotations_path=None, overlay_format='png', max_boxes_to_draw=100,
                    write_overlays=True):
  """Runs the SavedModel on every image of `image_dir` (see the module docstring).

  Args:
    saved_model_dir: the `saved_model` folder of an export, or an OpenVINO IR `model.xml`.
    image_dir: folder of images (not recursive).
    output_dir: created if missing.
    label_map_path: optional label map for class names on the overlays.
    min_score_thresh: minimum score of a drawn detection.
    results_min_score_thresh: minimum score of a detection in detections.json.
    coco_annotations_path: optional COCO JSON giving image ids by file name.
    overlay_format: 'png' or 'jpg'.
    max_boxes_to_draw: at most this many detections per overlay.
    write_overlays: whether to write overlay images.

  Returns:
    dict with 'num_images', 'num_processed', 'skipped' (list of (file name, reason)),
    'semantic' (None, or for a semantic export the dict written to semantic_summary.json, whose
    path is 'semantic_summary_path'; the detection keys are then zero / None),
    'num_detections' (in detections.json), 'results_path', 'box_results_path', 'has_masks',
    'num_above_thresh' (detections with score >= min_score_thresh, over all images),
    'images_without_detections' (processed images with none of them), 'max_score' (highest
    detection score seen, None without any detection), 'overlays' ({file name: overlay name}).

  Raises:
    PredictUsageError: bad overlay_format; missing saved_model.pb, image_dir, label map or
      annotation file; no image in image_dir; file names missing from the annotation file;
      output_dir that could overwrite an input (see check_output_dir). All raised before the model
      is loaded and before anything is written.
  """
  if overlay_format not in ('png', 'jpg'):
    raise PredictUsageError('--overlay_format must be "png" or "jpg", got %r.' % (overlay_format,))
  is_ir = saved_model_dir.lower().endswith('.xml')
  if is_ir:
    inference_backends.resolve_model_path(saved_model_dir)  # before anything is written
  else:
    check_saved_model_dir(saved_model_dir)
  file_names = list_images(image_dir)
  overlays = overlay_names(file_names, overlay_format)
  # A semantic export writes classes/<name>.png: checked here too (the kind of model is known
  # only once it is loaded, and nothing may be written before the checks).
  class_pngs = {name: os.path.join(CLASS_ID_DIRECTORY, png)
                for name, png in overlay_names(file_names, 'png').items()}
  check_output_dir(image_dir, output_dir, file_names,
                   [RESULTS_FILENAME, BOX_RESULTS_FILENAME, IMAGE_IDS_FILENAME,
                    SEMANTIC_SUMMARY_FILENAME] + sorted(class_pngs.values()) +
                   (sorted(overlays.values()) if write_overlays else []))
  image_ids = assign_image_ids(file_names, coco_annotations_path)
  category_index = load_category_index(label_map_path)
  if is_ir:
    backend = inference_backends.load_backend(saved_model_dir)
    runner = lambda image, encoded: backend.detect(image, encoded)
  else:
    runner = SavedModelRunner(saved_model_dir)
  os.makedirs(output_dir, exist_ok=True)
  results = []  # Mask results (box results for a box-only model).
  box_results_all = []
  has_masks = False
  skipped = []
  processed_ids = {}
  num_above_thresh = 0
  images_without_detections = 0
  max_score = None
  semantic = None
  for name in tqdm.tqdm(file_names, desc='predict', unit='image'):
    path = os.path.join(image_dir, name)
    try:
      with open(path, 'rb') as f:
        encoded = f.read()
      image = decode_image(encoded)
    except (OSError, ValueError) as e:
      reason = str(e) or type(e).__name__
      tqdm.tqdm.write('Skipping unreadable image %s: %s' % (path, reason), file=sys.stderr)
      skipped.append((name, reason))
      continue
    height, width = image.shape[:2]
    detections = runner(image, encoded)
    if SEMANTIC_CLASSES in detections:
      if semantic is None:
        semantic = SemanticResults(output_dir, category_index, overlays, class_pngs,
                                   write_overlays)
      semantic.add(name, image, detections)
      processed_ids[name] = image_ids[name]
      continue
    num = int(detections[_DETECTION_FIELDS.num_detections])
    scores = detections[_DETECTION_FIELDS.detection_scores][:num]
    above = int(np.sum(scores >= min_score_thresh))
    num_above_thresh += above
    images_without_detections += int(above == 0)
    if num:
      max_score = max(float(np.max(scores)), -np.inf if max_score is None else max_score)
    masks = image_masks(detections, height, width)
    mask_results, box_results = detections_to_coco(image_ids[name], detections, masks, height,
                                                   width, results_min_score_thresh)
    has_masks = has_masks or mask_results is not None
    results.extend(mask_results if mask_results is not None else box_results)
    box_results_all.extend(box_results)
    processed_ids[name] = image_ids[name]
    if write_overlays:
      overlay = draw_overlay(image, detections, masks, category_index, min_score_thresh,
                             max_boxes_to_draw)
      PIL.Image.fromarray(overlay).save(os.path.join(output_dir, overlays[name]))
  if semantic is not None:
    summary_path = os.path.join(output_dir, SEMANTIC_SUMMARY_FILENAME)
    semantic_summary = semantic.summary()
    with open(summary_path, 'w') as f:
      json.dump(dict(semantic_summary, skipped=[list(s) for s in skipped]), f, indent=1)
    with open(os.path.join(output_dir, IMAGE_IDS_FILENAME), 'w') as f:
      json.dump(processed_ids, f, indent=1, sort_keys=True)
    return {'num_images': len(file_names), 'num_processed': len(processed_ids),
            'skipped': skipped, 'num_detections': 0, 'results_path': None,
            'box_results_path': None, 'has_masks': False, 'num_above_thresh': 0,
            'images_without_detections': 0, 'max_score': None,
            'overlays': overlays if write_overlays else {}, 'semantic': semantic_summary,
            'semantic_summary_path': summary_path, 'class_pngs': class_pngs}
  results_path = os.path.join(output_dir, RESULTS_FILENAME)
  with open(results_path, 'w') as f:
    json.dump(results, f)
  with open(os.path.join(output_dir, BOX_RESULTS_FILENAME), 'w') as f:
    json.dump(box_results_all, f)
  with open(os.path.join(output_dir, IMAGE_IDS_FILENAME), 'w') as f:
    json.dump(processed_ids, f, indent=1, sort_keys=True)
  return {'num_images': len(file_names), 'num_processed': len(processed_ids),
          'skipped': skipped, 'num_detections': len(results), 'results_path': results_path,
          'box_results_path': os.path.join(output_dir, BOX_RESULTS_FILENAME),
          'has_masks': has_masks, 'num_above_thresh': num_above_thresh,
          'images_without_detections': images_without_detections, 'max_score': max_score,
          'overlays': overlays if write_overlays else {}, 'semantic': None}


def summary_lines(summary, min_score_thresh):
  """The lines predict prints after a run: counts, skipped images, and the no-detection warning
  (for a semantic export: counts, where the files are, and each class's share of the pixels)."""
  if summary.get('semantic') is not None:
    return _semantic_summary_lines(summary)
  lines = ['Processed %d of %d images, skipped %d unreadable; %d detections written to %s' % (
      summary['num_processed'], summary['num_images'], len(summary['skipped']),
      summary['num_detections'], summary['results_path'])]
  lines.append('%d detections scored >= --min_score_thresh=%g (drawn on the overlays); %d of %d '
               'processed images have none.' % (
                   summary['num_above_thresh'], min_score_thresh,
                   summary['images_without_detections'], summary['num_processed']))
  for name, reason in summary['skipped']:
    lines.append('  skipped %s: %s' % (name, reason))
  if summary['num_processed'] and not summary['num_above_thresh']:
    best = ('no detection at all' if summary['max_score'] is None
            else 'the highest score is %.3f' % summary['max_score'])
    lines.append('WARNING: no detection reached --min_score_thresh=%g in any image (%s): the '
                 'overlays show nothing. Lower --min_score_thresh, or check that the export is of '
                 'a trained checkpoint.' % (min_score_thresh, best))
  return lines


def _semantic_summary_lines(summary):
  output_dir = os.path.dirname(summary['semantic_summary_path'])
  overlays = ('overlays in %s' % output_dir if summary['overlays']
              else 'no overlays (--write_overlays=false)')
  lines = ['Processed %d of %d images, skipped %d unreadable; %s, class-id PNGs in %s, '
           'per-class pixel shares in %s' % (
               summary['num_processed'], summary['num_images'], len(summary['skipped']),
               overlays, os.path.join(output_dir, CLASS_ID_DIRECTORY),
               summary['semantic_summary_path'])]
  classes = sorted(summary['semantic']['classes'], key=lambda c: (-c['pixels'], c['id']))
  lines.append('Pixel share over all images: %s' % (', '.join(
      '%s %.1f%%' % (c['name'], 100.0 * c['share']) for c in classes) or 'no image processed'))
  for name, reason in summary['skipped']:
    lines.append('  skipped %s: %s' % (name, reason))
  return lines


FLAGS = flags.FLAGS
flags.DEFINE_string('saved_model_dir', None, 'The saved_model folder written by exporter_main.py.')
flags.DEFINE_string('model', None, 'Instead of --saved_model_dir: an OpenVINO IR model.xml '
                    '(exporter_main.py --output_format=openvino) or a saved_model folder.')
flags.DEFINE_string('image_dir', None, 'Folder of images (.jpg, .jpeg, .png, .bmp, .gif, .webp).')
flags.DEFINE_string('output_dir', None, 'Where overlays, detections.json and image_ids.json go.')
flags.DEFINE_string('label_map_path', None, 'Label map (pbtxt) for class names on the overlays.')
flags.DEFINE_float('min_score_thresh', 0.5, 'Minimum score of a detection drawn on the overlays.')
flags.DEFINE_float('results_min_score_thresh', 0.0,
                   'Minimum score of a detection written to detections.json (keep 0 for COCO '
                   'evaluation: thresholding lowers AP).')
flags.DEFINE_string('coco_annotations_path', None,
                    'Optional COCO annotation JSON: image ids are taken from its images[].file_name.')
flags.DEFINE_enum('overlay_format', 'png', ['png', 'jpg'], 'File format of the overlays.')
flags.DEFINE_integer('max_boxes_to_draw', 100, 'At most this many detections per overlay.')
flags.DEFINE_boolean('write_overlays', True, 'Write overlay images (False: JSON only).')


REQUIRED_FLAGS = ('saved_model_dir', 'image_dir', 'output_dir')


def main(argv):
  del argv
  try:
    if FLAGS.model and FLAGS.saved_model_dir:
      raise PredictUsageError('pass --model or --saved_model_dir, not both.')
    if FLAGS.model:
      FLAGS.saved_model_dir = FLAGS.model
    missing = [name for name in REQUIRED_FLAGS if not getattr(FLAGS, name)]
    if missing:
      raise PredictUsageError('missing %s: predict needs --saved_model_dir (or --model), '
                              '--image_dir and --output_dir.' % ', '.join('--' + name for name in missing))
    summary = run_predictions(
        FLAGS.saved_model_dir, FLAGS.image_dir, FLAGS.output_dir,
        label_map_path=FLAGS.label_map_path, min_score_thresh=FLAGS.min_score_thresh,
        results_min_score_thresh=FLAGS.results_min_score_thresh,
        coco_annotations_path=FLAGS.coco_annotations_path, overlay_format=FLAGS.overlay_format,
        max_boxes_to_draw=FLAGS.max_boxes_to_draw, write_overlays=FLAGS.write_overlays)
  except ConfigError as e:
    print('Error: %s' % e, file=sys.stderr)
    sys.exit(2)
  for line in summary_lines(summary, FLAGS.min_score_thresh):
    print(line, file=sys.stderr if line.startswith('WARNING') else sys.stdout)


if __name__ == '__main__':
  logging.getLogger().setLevel(logging.INFO)
  app.run(main)
