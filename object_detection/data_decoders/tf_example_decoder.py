"""Decodes serialized `tf.train.Example` records into tensor dicts (TF OD API format).

Reads the records written by `dataset_tools/create_coco_tf_record.py` (this repo's and the TF OD
API's own: same feature keys and dtypes) and returns a dict keyed by
`standard_fields.InputDataFields`.

Objects the TF OD API's decoder passes through and its input pipeline drops pass through here
too: a class text not in the label map decodes to class id -1 (UNRECOGNIZED_CLASS_ID) and a box
with a NaN coordinate stays NaN. One addition: with a label map, a record that stores only
image/object/class/label (no texts) gets -1 for a label that is not an id of the label map (the
TF OD API keeps such a label: it trains on it as a class the label map does not name, or as an
all-zero one-hot row above num_classes). `inputs.py` drops such objects (`filter_unrecognized_classes`,
`filter_groundtruth_with_nan_box_coordinates`) and counts them (`bad_examples`), so a label map
that lists only some of the records' classes trains on those classes. The texts behind the -1
ids are in the extra output UNRECOGNIZED_CLASS_TEXT_KEY, for that count.

Record checks: `TfExampleDecoder.decode` asserts, per record, that the masks match the boxes in
count and the image in size, that boxes lie in [0, 1] with min <= max (NaN boxes excepted), and
that no class text is empty. The TF OD API's decoder does none of this: its input pipeline stops
on a box with min > max with a bare assertion, and trains on boxes outside the image and on
empty texts (which it maps to an arbitrary label map item). A failure raises
`tf.errors.InvalidArgumentError` whose message names the record (`image/source_id`,
`image/filename`) and the feature. With `skip_bad_examples=True` nothing is raised: the decoded
dict carries `RECORD_IS_VALID_KEY` and `RECORD_ERROR_KEY` instead, and the dataset builder
drops, logs and counts the bad records (`bad_examples.filter_bad_examples`).

The rest of the input checking lives next door, one job per module:
  * `mask_types`: PNG_MASKS / NUMERICAL_MASKS and their spellings;
  * `record_validation`: file-level checks before any `tf.data` pipeline or model is built
    (files exist, are TFRecords, hold masks of the configured type), errors naming the file;
  * `object_detection.utils.label_map_util`: the one label map parser (the decoder only asks it
    for the {class text: id} lookup).
"""
import tensorflow as tf

from object_detection.core import standard_fields as fields
from object_detection.utils import config_validation
from object_detection.utils import label_map_util

# The mask types (used below) and the file checks, importable from here as they always were.
# pylint: disable=unused-import
from object_detection.data_decoders.mask_types import DEFAULT
from object_detection.data_decoders.mask_types import mask_type_name
from object_detection.data_decoders.mask_types import mask_type_value
from object_detection.data_decoders.mask_types import NUMERICAL_MASKS
from object_detection.data_decoders.mask_types import PNG_MASKS
from object_detection.data_decoders.record_validation import detect_mask_type
from object_detection.data_decoders.record_validation import RecordValidationError
from object_detection.data_decoders.record_validation import validate_records
from object_detection.data_decoders.record_validation import validate_records_have_masks
# pylint: enable=unused-import

# Boxes may exceed [0, 1] by this much (float rounding in third-party converters); they are then
# clipped. Anything further out is an error.
BOX_TOLERANCE = 1e-3

# The decoder options of the TF OD API that Mask R-CNN training does not use. They are accepted
# (the dataset builder passes them from the input reader config) but must keep their defaults.
_UNSUPPORTED_OPTIONS = (
    'num_keypoints', 'num_additional_channels', 'load_multiclass_scores',
    'load_context_features', 'expand_hierarchy_labels', 'load_dense_pose', 'load_track_id',
    'load_keypoint_depth_features', 'use_keypoint_label_map')


# Class id of an object whose class text is not in the label map (TF OD API: the lookup table's
# default value); the input pipeline drops such objects.
UNRECOGNIZED_CLASS_ID = -1

# Extra key of `decode`'s output when a label map is given: string [N], the class text of each
# object whose id is UNRECOGNIZED_CLASS_ID because the text is not in the label map (for a record
# without texts, '<image/object/class/label N>' for a label N that is not a label map id), '' for
# the other objects. Read (and removed) by the input pipeline's drop count (`bad_examples`).
UNRECOGNIZED_CLASS_TEXT_KEY = 'unrecognized_class_text'

# Extra keys of `decode`'s output with skip_bad_examples=True: bool scalar, true when every record
# check passed; string scalar, the failed checks' messages (empty when valid).
RECORD_IS_VALID_KEY = 'record_is_valid'
RECORD_ERROR_KEY = 'record_error'


def _dense(sparse, default):
  return tf.sparse.to_dense(sparse, default_value=default)


class TfExampleDecoder(object):
  """Decodes a serialized `tf.train.Example` into a tensor dict (TF OD API semantics).

  Output (keys from `fields.InputDataFields`; N = number of boxes in the record):
    image: uint8 [H, W, 3].
    original_image_spatial_shape: int32 [2], (H, W) of the decoded image.
    source_id, key (image/key/sha256), filename: string scalars.
    groundtruth_boxes: float32 [N, 4], normalized [ymin, xmin, ymax, xmax] in [0, 1]; a box
      with a NaN coordinate is returned as written (the input pipeline drops it).
    groundtruth_classes: int64 [N], label-map ids. With `label_map_proto_file` and a non-empty
      image/object/class/text, the ids come from looking the texts up in the label map by `name`
      and by `display_name` (the larger id when both match, see
      `label_map_util.get_class_text_to_id_dict`), as in the
      TF OD API; a text in neither gives UNRECOGNIZED_CLASS_ID (-1), as in the TF OD API (the
      input pipeline drops those objects). Otherwise the ids are image/object/class/label; with
      a label map, a label that is not one of its ids gives -1 too (not in the TF OD API).
    groundtruth_weights: float32 [N], image/object/weight or ones when absent.
    groundtruth_is_crowd: bool [N], image/object/is_crowd or False when absent.
    groundtruth_area: float32 [N], image/object/area in pixels of the original image; when absent,
      the box area in pixels (as the TF OD API's COCO export does).
    groundtruth_difficult, groundtruth_group_of: bool [N], False when absent.
    groundtruth_instance_masks (only with load_instance_masks): uint8 [N, H, W], 0/1, whole
      image; [0, H, W] for a record without objects.
    UNRECOGNIZED_CLASS_TEXT_KEY (only with a label map): string [N], the text of each object of
      class -1 because its text is not in the label map ('<image/object/class/label N>' for a
      label N not in the label map of a record without texts), '' for the others (not in the TF
      OD API's output; the input pipeline uses it to name the skipped classes, then removes it).

  Errors (tf.errors.InvalidArgumentError when the tensor is evaluated, naming the record's
  image/source_id and image/filename, and the feature): box count differs between the four
  bbox features; a box without NaN outside [0, 1] (beyond BOX_TOLERANCE) or with min > max;
  class count differs from the box count; an empty class text (with a label map); mask count
  differs from the box count; a mask whose size differs from the image; image/height or
  image/width differ from the decoded image. With skip_bad_examples=True these are reported, not
  raised: the output also holds RECORD_IS_VALID_KEY (bool []) and RECORD_ERROR_KEY (string [],
  the same messages), and the other outputs of a bad record are placeholders of the right rank.
  An image that cannot be decoded raises in both modes.
  """

  def __init__(self,
               load_instance_masks=False,
               instance_mask_type=NUMERICAL_MASKS,
               label_map_proto_file=None,
               use_display_name=False,
               dct_method='',
               num_keypoints=0,
               num_additional_channels=0,
               load_multiclass_scores=False,
               load_context_features=False,
               expand_hierarchy_labels=False,
               load_dense_pose=False,
               load_track_id=False,
               load_keypoint_depth_features=False,
               use_keypoint_label_map=False,
               skip_bad_examples=False):
    """Constructor.

    Args:
      load_instance_masks: decode image/object/mask into groundtruth_instance_masks.
      instance_mask_type: how masks are stored: PNG_MASKS (one PNG per instance, as written by
        `create_coco_tf_record.py --mask_type=png`, the default there and in the TF OD API's
        converter) or NUMERICAL_MASKS (float list N*H*W). `input_reader_pb2` enum values, the
        ints 2 / 1 / 0 or names are accepted. The default is NUMERICAL_MASKS, as in the TF OD API.
      label_map_proto_file: optional label map path; class texts are looked up in it, by `name`
        and by `display_name`; a text in neither gives class id -1, and so does a class/label
        that is not one of its ids in a record without texts.
      use_display_name: ignored, as in the TF OD API's decoder (which accepts and drops it):
        class texts are always looked up by both `name` and `display_name`.
      dct_method: JPEG DCT method passed to `tf.io.decode_jpeg` ('' = TF default).
      num_keypoints, num_additional_channels, load_multiclass_scores, load_context_features,
      expand_hierarchy_labels, load_dense_pose, load_track_id, load_keypoint_depth_features,
      use_keypoint_label_map: TF OD API options not supported here; must keep their defaults.
      skip_bad_examples: report failed record checks in the output (RECORD_IS_VALID_KEY,
        RECORD_ERROR_KEY) instead of raising, so the input pipeline can skip those records.

    Raises:
      config_validation.ConfigError: an unsupported option is set or the mask type is unknown.
      label_map_util.LabelMapError: the label map file is missing, unreadable, malformed, has
        duplicate ids / names or id 0 (other than "background"), or has no items.
    """
    options = dict(
        num_keypoints=num_keypoints, num_additional_channels=num_additional_channels,
        load_multiclass_scores=load_multiclass_scores,
        load_context_features=load_context_features,
        expand_hierarchy_labels=expand_hierarchy_labels, load_dense_pose=load_dense_pose,
        load_track_id=load_track_id,
        load_keypoint_depth_features=load_keypoint_depth_features,
        use_keypoint_label_map=use_keypoint_label_map)
    for name in _UNSUPPORTED_OPTIONS:
      if options[name]:
        raise config_validation.ConfigError(
            'TfExampleDecoder option %s=%r is not supported (instance segmentation only); '
            'remove it from the input reader config.' % (name, options[name]))
    self._load_instance_masks = bool(load_instance_masks)
    self._instance_mask_type = mask_type_value(instance_mask_type)
    self._dct_method = dct_method or ''
    self._skip_bad_examples = bool(skip_bad_examples)
    self._label_table = None
    self._label_map_proto_file = label_map_proto_file
    if label_map_proto_file:
      # use_display_name plays no part: the TF OD API's decoder looks up both keys too.
      label_map_proto = label_map_util.load_labelmap(label_map_proto_file)
      label_map = label_map_util.get_class_text_to_id_dict(label_map_proto)
      if not label_map:
        # An empty lookup table cannot be built, and every object would be dropped.
        raise label_map_util.LabelMapError(
            'Label map %s has no items: list the classes (item { name: "..." id: 1 }) or fix '
            '`label_map_path` in the input reader config.' % label_map_proto_file)
      keys = tf.constant(list(label_map.keys()), dtype=tf.string)
      values = tf.constant(list(label_map.values()), dtype=tf.int64)
      self._label_table = tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(keys, values), default_value=UNRECOGNIZED_CLASS_ID)
      # The label map's ids, for records that store only class/label: a label that is not one
      # of them (a class the label map leaves out) is -1 like an unknown text.
      self._label_map_ids = tf.constant(sorted(item.id for item in label_map_proto.item),
                                        dtype=tf.int64)

    self.keys_to_features = {
        'image/encoded': tf.io.FixedLenFeature((), tf.string, default_value=''),
        'image/format': tf.io.FixedLenFeature((), tf.string, default_value='jpeg'),
        'image/filename': tf.io.FixedLenFeature((), tf.string, default_value=''),
        'image/key/sha256': tf.io.FixedLenFeature((), tf.string, default_value=''),
        'image/source_id': tf.io.FixedLenFeature((), tf.string, default_value=''),
        # -1 = absent: the decoded image's size is then used.
        'image/height': tf.io.FixedLenFeature((), tf.int64, default_value=-1),
        'image/width': tf.io.FixedLenFeature((), tf.int64, default_value=-1),
        'image/object/bbox/xmin': tf.io.VarLenFeature(tf.float32),
        'image/object/bbox/xmax': tf.io.VarLenFeature(tf.float32),
        'image/object/bbox/ymin': tf.io.VarLenFeature(tf.float32),
        'image/object/bbox/ymax': tf.io.VarLenFeature(tf.float32),
        'image/object/class/label': tf.io.VarLenFeature(tf.int64),
        'image/object/class/text': tf.io.VarLenFeature(tf.string),
        'image/object/area': tf.io.VarLenFeature(tf.float32),
        'image/object/is_crowd': tf.io.VarLenFeature(tf.int64),
        'image/object/difficult': tf.io.VarLenFeature(tf.int64),
        'image/object/group_of': tf.io.VarLenFeature(tf.int64),
        'image/object/weight': tf.io.VarLenFeature(tf.float32),
    }
    if self._load_instance_masks:
      mask_dtype = tf.string if self._instance_mask_type == PNG_MASKS else tf.float32
      self.keys_to_features['image/object/mask'] = tf.io.VarLenFeature(mask_dtype)

  @property
  def instance_mask_type(self):
    """NUMERICAL_MASKS (1) or PNG_MASKS (2)."""
    return self._instance_mask_type

  @property
  def load_instance_masks(self):
    return self._load_instance_masks

  @property
  def skip_bad_examples(self):
    return self._skip_bad_examples

  def _decode_image(self, encoded):
    if self._dct_method:
      image = tf.cond(
          tf.io.is_jpeg(encoded),
          lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method=self._dct_method),
          lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False))
    else:
      image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image = tf.cast(image, tf.uint8)  # decode_image is uint8 for jpeg/png/bmp/gif.
    image.set_shape([None, None, 3])
    return image

  def decode(self, tf_example_string_tensor):
    """Decodes one serialized example.

    Args:
      tf_example_string_tensor: string scalar, a serialized `tf.train.Example`.

    Returns:
      dict of tensors, keys and shapes as in the class docstring.
    """
    f = tf.io.parse_single_example(tf_example_string_tensor, self.keys_to_features)
    source_id = f['image/source_id']
    filename = f['image/filename']
    where = tf.strings.join(['record image/source_id=', source_id,
                             ' (image/filename=', filename, '): '])
    checks = []  # assert ops (raising mode)
    failures = []  # message, or '' when the check passed (skip mode)

    def check(condition, *message_parts):
      """Asserts `condition` (skip mode: records its failure); the message names the record."""
      message = tf.strings.join([p if isinstance(p, str) or p.dtype == tf.string else
                                 tf.as_string(p) for p in message_parts])
      if self._skip_bad_examples:
        failures.append(tf.where(condition, '', message))
        return tf.no_op()
      op = tf.debugging.Assert(condition, [tf.strings.join([where, message])])
      checks.append(op)
      return op

    image = self._decode_image(f['image/encoded'])
    image_shape = tf.shape(image)
    height, width = image_shape[0], image_shape[1]
    rec_h = tf.cast(f['image/height'], tf.int32)
    rec_w = tf.cast(f['image/width'], tf.int32)
    check(tf.logical_and(tf.logical_or(rec_h < 0, tf.equal(rec_h, height)),
                         tf.logical_or(rec_w < 0, tf.equal(rec_w, width))),
          'image/height x image/width (', rec_h, 'x', rec_w,
          ') differ from the decoded image/encoded (', height, 'x', width, ')')

    ymin = _dense(f['image/object/bbox/ymin'], 0.0)
    xmin = _dense(f['image/object/bbox/xmin'], 0.0)
    ymax = _dense(f['image/object/bbox/ymax'], 0.0)
    xmax = _dense(f['image/object/bbox/xmax'], 0.0)
    num_boxes = tf.size(ymin)
    check(tf.reduce_all(tf.equal(tf.stack([tf.size(xmin), tf.size(ymax), tf.size(xmax)]),
                                 num_boxes)),
          'image/object/bbox/{ymin,xmin,ymax,xmax} have different lengths (', num_boxes, ', ',
          tf.size(xmin), ', ', tf.size(ymax), ', ', tf.size(xmax), ')')
    # Sliced to the shortest so that a bad record in skip mode still decodes (in raising mode the
    # assert above has fired first).
    n = tf.reduce_min(tf.stack([num_boxes, tf.size(xmin), tf.size(ymax), tf.size(xmax)]))
    with tf.control_dependencies(checks[-1:]):
      boxes = tf.stack([ymin[:n], xmin[:n], ymax[:n], xmax[:n]], axis=1)
    boxes = tf.reshape(boxes, [-1, 4])
    # A box with a NaN coordinate passes through, as in the TF OD API's decoder: the input
    # pipeline drops and counts it (inputs.py / bad_examples). The other checks skip such rows.
    has_nan = tf.reduce_any(tf.math.is_nan(boxes), axis=1)
    in_range = tf.logical_or(
        has_nan[:, None],
        tf.logical_and(boxes >= -BOX_TOLERANCE, boxes <= 1.0 + BOX_TOLERANCE))
    check(tf.reduce_all(in_range),
          'image/object/bbox/* holds boxes outside [0, 1] (ymin, xmin, ymax, xmax = ',
          tf.strings.reduce_join(tf.as_string(tf.boolean_mask(
              boxes, tf.logical_not(tf.reduce_all(in_range, axis=1))), precision=4),
                                 separator=', '),
          '); bbox features must be normalized by the image width and height')
    ordered = tf.logical_and(boxes[:, 0] <= boxes[:, 2], boxes[:, 1] <= boxes[:, 3])
    check(tf.reduce_all(tf.logical_or(has_nan, ordered)),
          'image/object/bbox/* has a box with ymin > ymax or xmin > xmax')
    boxes = tf.where(tf.math.is_nan(boxes), boxes, tf.clip_by_value(boxes, 0.0, 1.0))

    classes, unrecognized_texts = self._decode_classes(f, num_boxes, check)

    def per_box(values, default, name):
      """Returns `values` [N], or `default` [N] when the feature is absent."""
      n = tf.size(values)
      check(tf.logical_or(tf.equal(n, 0), tf.equal(n, num_boxes)),
            name, ' has ', n, ' values but the record has ', num_boxes, ' boxes')
      return tf.cond(tf.equal(n, 0), lambda: default, lambda: values)

    box_heights = (boxes[:, 2] - boxes[:, 0]) * tf.cast(height, tf.float32)
    box_widths = (boxes[:, 3] - boxes[:, 1]) * tf.cast(width, tf.float32)
    zeros = tf.zeros([num_boxes], tf.int64)
    tensor_dict = {
        fields.InputDataFields.image: image,
        fields.InputDataFields.original_image_spatial_shape: image_shape[:2],
        fields.InputDataFields.source_id: source_id,
        fields.InputDataFields.key: f['image/key/sha256'],
        fields.InputDataFields.filename: filename,
        fields.InputDataFields.groundtruth_boxes: boxes,
        fields.InputDataFields.groundtruth_classes: classes,
        fields.InputDataFields.groundtruth_weights: per_box(
            _dense(f['image/object/weight'], 0.0), tf.ones([num_boxes], tf.float32),
            'image/object/weight'),
        fields.InputDataFields.groundtruth_is_crowd: tf.cast(per_box(
            _dense(f['image/object/is_crowd'], 0), zeros, 'image/object/is_crowd'), tf.bool),
        fields.InputDataFields.groundtruth_area: per_box(
            _dense(f['image/object/area'], 0.0), box_heights * box_widths,
            'image/object/area'),
        fields.InputDataFields.groundtruth_difficult: tf.cast(per_box(
            _dense(f['image/object/difficult'], 0), zeros, 'image/object/difficult'), tf.bool),
        fields.InputDataFields.groundtruth_group_of: tf.cast(per_box(
            _dense(f['image/object/group_of'], 0), zeros, 'image/object/group_of'), tf.bool),
    }
    if unrecognized_texts is not None:
      tensor_dict[UNRECOGNIZED_CLASS_TEXT_KEY] = unrecognized_texts
    if self._load_instance_masks:
      tensor_dict[fields.InputDataFields.groundtruth_instance_masks] = self._decode_masks(
          f, height, width, num_boxes, check)

    if self._skip_bad_examples:
      failed = tf.boolean_mask(tf.stack(failures), tf.strings.length(tf.stack(failures)) > 0)
      tensor_dict[RECORD_IS_VALID_KEY] = tf.equal(tf.size(failed), 0)
      tensor_dict[RECORD_ERROR_KEY] = tf.strings.join(
          [where, tf.strings.reduce_join(failed, separator='; ')])
    else:
      # Every output depends on every check, so a bad record fails wherever it is consumed.
      with tf.control_dependencies(checks):
        tensor_dict = {k: tf.identity(v) for k, v in tensor_dict.items()}
    tensor_dict[fields.InputDataFields.image].set_shape([None, None, 3])
    tensor_dict[fields.InputDataFields.groundtruth_boxes].set_shape([None, 4])
    if unrecognized_texts is not None:
      tensor_dict[UNRECOGNIZED_CLASS_TEXT_KEY].set_shape([None])
    if self._load_instance_masks:
      tensor_dict[fields.InputDataFields.groundtruth_instance_masks].set_shape(
          [None, None, None])
    return tensor_dict

  def _decode_classes(self, f, num_boxes, check):
    """Class ids (label-map lookup of class/text first, as in the TF OD API).

    Returns:
      (int64 [N] class ids, -1 for a text not in the label map; string [N] such texts, '' for
      the other objects, or None without a label map).
    """
    labels = _dense(f['image/object/class/label'], 0)
    unrecognized = None
    if self._label_table is not None:
      texts = _dense(f['image/object/class/text'], '')
      looked_up = self._label_table.lookup(texts)
      # The TF OD API gives an empty text the id of the label map's last item without a
      # display_name (or -1 when every item has one): an arbitrary class, so it is refused.
      empty = tf.cast(tf.where(tf.equal(texts, ''))[:, 0], tf.int32)
      check(tf.equal(tf.size(empty), 0),
            'image/object/class/text is empty for object(s) ',
            tf.strings.reduce_join(tf.as_string(empty), separator=', '),
            ' (0-based); write the class name of every object (the TF OD API would give it the '
            'id of the label map\'s last item without a display_name)')
      use_texts = tf.size(texts) > 0
      known_label = tf.reduce_any(tf.equal(labels[:, None], self._label_map_ids[None, :]), axis=1)
      # -1 stays -1 with no name (bad_examples counts it under '<image/object/class/label -1>').
      unknown_label = tf.logical_and(tf.logical_not(known_label),
                                     tf.not_equal(labels, UNRECOGNIZED_CLASS_ID))
      classes = tf.cond(use_texts, lambda: looked_up,
                        lambda: tf.where(unknown_label, tf.constant(UNRECOGNIZED_CLASS_ID,
                                                                    tf.int64), labels))
      unrecognized = tf.cond(
          use_texts, lambda: tf.where(looked_up < 0, texts, ''),
          lambda: tf.where(unknown_label, tf.strings.join(
              ['<image/object/class/label ', tf.as_string(labels), '>']), ''))
      hint = ''
    else:
      classes = labels
      hint = ('; records that store only image/object/class/text need label_map_path in the '
              'input reader config')
    check(tf.equal(tf.size(classes), num_boxes),
          'image/object/class/label has ', tf.size(classes), ' values but the record has ',
          num_boxes, ' boxes', hint)
    return classes, unrecognized

  def _decode_masks(self, f, height, width, num_boxes, check):
    """Returns uint8 [N, H, W] 0/1 masks from PNG strings or a flat float list."""
    mask_key = 'image/object/mask'
    no_masks_hint = ('; records written without masks must be re-created with '
                     'create_coco_tf_record.py --include_masks (or set load_instance_masks: '
                     'false)')
    if self._instance_mask_type == PNG_MASKS:
      pngs = _dense(f[mask_key], '')
      check(tf.equal(tf.size(pngs), num_boxes),
            mask_key, ' has ', tf.size(pngs), ' masks but the record has ', num_boxes, ' boxes',
            tf.where(tf.equal(tf.size(pngs), 0), no_masks_hint, ''))

      def decode_png_mask(png):
        """Returns the 0/1 mask cropped or padded to the image size, and its own size."""
        mask = tf.io.decode_image(png, channels=1, expand_animations=False)
        fitted = tf.image.resize_with_crop_or_pad(mask, height, width)[:, :, 0]
        return tf.cast(tf.greater(fitted, 0), tf.uint8), tf.shape(mask)[:2]

      masks, sizes = tf.cond(
          tf.size(pngs) > 0,
          lambda: tf.map_fn(decode_png_mask, pngs, fn_output_signature=(
              tf.TensorSpec([None, None], tf.uint8), tf.TensorSpec([2], tf.int32))),
          lambda: (tf.zeros([0, height, width], tf.uint8), tf.zeros([0, 2], tf.int32)))
      wrong = tf.boolean_mask(sizes, tf.reduce_any(
          tf.not_equal(sizes, tf.stack([height, width])[None]), axis=1))[:1]
      check(tf.equal(tf.shape(wrong)[0], 0),
            mask_key, ' has a mask of size ',
            tf.strings.reduce_join(tf.strings.join([tf.as_string(wrong[:, 0]), 'x',
                                                    tf.as_string(wrong[:, 1])])),
            ' but the image is ', height, 'x', width)
    else:
      values = _dense(f[mask_key], 0.0)
      expected = num_boxes * height * width
      size_ok = check(tf.equal(tf.size(values), expected),
            mask_key, ' holds ', tf.size(values), ' floats but the record has ', num_boxes,
            ' boxes x ', height, 'x', width, ' pixels = ', expected,
            ' (mask count differs from the box count, or mask size differs from the image)',
            tf.where(tf.equal(tf.size(values), 0), no_masks_hint, ''))
      # The reshape runs after the size check, so a bad record fails with the check's message;
      # in skip mode a bad record gets no masks.
      with tf.control_dependencies([size_ok]):
        masks = tf.cond(
            tf.equal(tf.size(values), expected),
            lambda: tf.cast(tf.greater(tf.reshape(values, [-1, height, width]), 0.0), tf.uint8),
            lambda: tf.zeros([0, height, width], tf.uint8))
    return masks
