"""Counting what the input pipeline skips: bad records and dropped objects.

Two kinds of skips, one counter (`SkippedRecords`) per dataset, one report (`summary_lines`):

  * Bad records (`input_reader.skip_bad_examples: true`): `TfExampleDecoder(
    skip_bad_examples=True)` reports a failed record check in its output instead of raising, and
    `filter_bad_examples` drops those records. Every distinct bad record is logged once (a
    WARNING with the decoder's message: image/source_id, image/filename, the feature and what is
    wrong) with a running count, so a training set that repeats does not flood the log.
  * Dropped objects (always on, the TF OD API's drops made visible): the input pipeline drops
    objects whose box has a NaN coordinate and objects of class id -1, e.g. a class text missing
    from the label map (TF OD API `inputs.transform_input_data`:
    `filter_groundtruth_with_nan_box_coordinates`, then `filter_unrecognized_classes`).
    `count_dropped_objects` counts them per reason, and the unrecognized ones per class text,
    inside the tf.data map (a host call only for a record that drops something). The first drop
    of each reason is logged once per dataset; nothing is logged per record.

`summary_lines` gives one line per dataset and kind with the totals and what was added since
the previous call, so a caller that reports after each evaluation (model_lib_v2) reports each
evaluation pass once.
"""
import threading

from absl import logging
import tensorflow as tf

from object_detection.core import standard_fields as fields
from object_detection.data_decoders import tf_example_decoder

_IS_VALID = tf_example_decoder.RECORD_IS_VALID_KEY
_ERROR = tf_example_decoder.RECORD_ERROR_KEY
_TEXT = tf_example_decoder.UNRECOGNIZED_CLASS_TEXT_KEY
_F = fields.InputDataFields

# Name under which objects of class id -1 without a class text are counted (records that store
# image/object/class/label -1, or no label map).
NO_TEXT_CLASS_NAME = '<image/object/class/label -1>'
_MAX_CLASSES_NAMED = 10  # classes named in a summary line (most skipped first)


class SkippedRecords(object):
  """Counts the records and objects a dataset skipped (thread-safe).

  Attributes:
    name: what the dataset reads (its input paths), used in the log lines.
    label_map_path: the dataset's label map ('' when none), named in the report.
    num_skips: bad records dropped, counting a record again each epoch it is read.
    errors: the distinct bad records' error messages (one per record), in the order seen.
    num_nan_box_objects: objects dropped for a NaN box coordinate (counting repeats).
    unrecognized_classes: {class text: objects dropped because their class id is -1} (counting
      repeats); objects without a text are under NO_TEXT_CLASS_NAME.
  """

  def __init__(self, name, label_map_path=''):
    self.name = name
    self.label_map_path = label_map_path or ''
    self.num_skips = 0
    self.errors = []
    self.num_nan_box_objects = 0
    self.unrecognized_classes = {}
    self._seen = set()
    self._first_nan_record = None
    self._first_unrecognized = None
    self._reported = {'nan': 0, 'unrecognized': 0}
    self._lock = threading.Lock()

  @property
  def num_records(self):
    """Distinct bad records skipped."""
    return len(self.errors)

  @property
  def num_unrecognized_objects(self):
    """Objects dropped because their class id is -1 (counting repeats)."""
    return sum(self.unrecognized_classes.values())

  def record(self, error):
    """Counts one skipped record (`error`: the decoder's message); logs it the first time."""
    if isinstance(error, bytes):
      error = error.decode('utf-8', 'replace')
    with self._lock:
      self.num_skips += 1
      if error in self._seen:
        return
      self._seen.add(error)
      self.errors.append(error)
      count = len(self.errors)
    logging.warning('skip_bad_examples: skipped bad record %d of %s: %s', count, self.name, error)

  def record_dropped_objects(self, num_nan_box, unrecognized_texts, source_id=''):
    """Counts the objects one record dropped; logs the first drop of each reason.

    Args:
      num_nan_box: objects dropped for a NaN box coordinate.
      unrecognized_texts: class texts (bytes or str) of the objects dropped for class id -1;
        '' for an object without a text.
      source_id: the record's image/source_id (bytes or str), named in the first log line.
    """
    if isinstance(source_id, bytes):
      source_id = source_id.decode('utf-8', 'replace')
    names = [(t.decode('utf-8', 'replace') if isinstance(t, bytes) else t) or NO_TEXT_CLASS_NAME
             for t in unrecognized_texts]
    first_nan = first_unrecognized = False
    with self._lock:
      if num_nan_box:
        self.num_nan_box_objects += int(num_nan_box)
        if self._first_nan_record is None:
          self._first_nan_record = source_id
          first_nan = True
      for name in names:
        self.unrecognized_classes[name] = self.unrecognized_classes.get(name, 0) + 1
      if names and self._first_unrecognized is None:
        self._first_unrecognized = (names[0], source_id)
        first_unrecognized = True
    when = ('further ones are counted, not logged; the totals are reported after each '
            'evaluation and at the end of training')
    if first_nan:
      logging.warning('%s: skipping objects whose box has a NaN coordinate, as the TF OD API '
                      'does (first in record image/source_id=%s); %s.', self.name, source_id,
                      when)
    if first_unrecognized:
      logging.warning('%s: skipping objects whose class is not in the label map %s, as the TF '
                      'OD API does (first: %s in record image/source_id=%s); %s.', self.name,
                      self.label_map_path or '(none)', names[0], source_id, when)

  def summary(self):
    """The bad-record line."""
    return ('skip_bad_examples: %d bad record(s) skipped in %s (%d skip(s) counting repeats)'
            % (self.num_records, self.name, self.num_skips))

  def report_lines(self):
    """Lines for every kind of skip with a count (none: []); marks the counts as reported."""
    lines = []
    if self.num_skips:
      lines.append(self.summary())
    with self._lock:
      classes = sorted(self.unrecognized_classes.items(), key=lambda kv: (-kv[1], kv[0]))
      num_nan = self.num_nan_box_objects
      first_nan = self._first_nan_record
      new = {'nan': num_nan - self._reported['nan']}
      num_unrecognized = sum(n for _, n in classes)
      new['unrecognized'] = num_unrecognized - self._reported['unrecognized']
      self._reported = {'nan': num_nan, 'unrecognized': num_unrecognized}

    def since(kind, total):
      return '' if new[kind] == total else '; %d of them since the previous report' % new[kind]

    if num_unrecognized:
      named = ', '.join('%s %d' % kv for kv in classes[:_MAX_CLASSES_NAMED])
      if len(classes) > _MAX_CLASSES_NAMED:
        named += ', ... (%d more)' % (len(classes) - _MAX_CLASSES_NAMED)
      lines.append(
          '%s: skipped %d object(s) of %d class(es) not in the label map %s (%s)%s. They are '
          'ignored, as in the TF OD API; add the classes to the label map to train on them.' % (
              self.name, num_unrecognized, len(classes), self.label_map_path or '(none)', named,
              since('unrecognized', num_unrecognized)))
    if num_nan:
      lines.append('%s: skipped %d object(s) whose box has a NaN coordinate (first in record '
                   'image/source_id=%s)%s, as in the TF OD API.' % (
                       self.name, num_nan, first_nan, since('nan', num_nan)))
    return lines


_ALL = []  # every SkippedRecords created in this process, for summary_lines


def new_counter(name, label_map_path=''):
  """Returns a registered `SkippedRecords` for the dataset reading `name`."""
  counter = SkippedRecords(name, label_map_path)
  _ALL.append(counter)
  return counter


def summary_lines():
  """Report lines of every dataset of this process that skipped something (else [])."""
  lines = []
  for counter in _ALL:
    lines.extend(counter.report_lines())
  return lines


def filter_bad_examples(dataset, counter):
  """Drops the records whose decoder output is not valid; counts and logs each in `counter`.

  Args:
    dataset: tf.data.Dataset of `TfExampleDecoder(skip_bad_examples=True).decode` outputs.
    counter: a `SkippedRecords`.

  Returns:
    The dataset of the valid records, without the two validity keys.
  """

  def count(error):
    counter.record(error.numpy())
    return False

  def keep(tensor_dict):
    return tf.cond(
        tensor_dict[_IS_VALID], lambda: tf.constant(True),
        lambda: tf.ensure_shape(tf.py_function(count, [tensor_dict[_ERROR]], tf.bool), []))

  def strip(tensor_dict):
    return {k: v for k, v in tensor_dict.items() if k not in (_IS_VALID, _ERROR)}

  return dataset.filter(keep).map(strip)


def count_dropped_objects(tensor_dict, counter):
  """Counts in `counter` the objects the input pipeline is about to drop (graph-safe).

  Mirrors the drops of the TF OD API's `transform_input_data`, in its order: an object whose box
  has a NaN coordinate is counted as such; any other object of class id -1
  (`tf_example_decoder.UNRECOGNIZED_CLASS_ID`) as unrecognized, under its class text. The host
  call (`tf.py_function`) runs only for a record that drops something. Nothing is dropped here.

  Args:
    tensor_dict: one decoded example: groundtruth_boxes float32 [N, 4], groundtruth_classes
      int [N], optional source_id string [], optional UNRECOGNIZED_CLASS_TEXT_KEY string [N]
      (the decoder's texts of the class -1 objects).
    counter: a `SkippedRecords`.

  Returns:
    The dict without UNRECOGNIZED_CLASS_TEXT_KEY; groundtruth_classes carries a control
    dependency on the count.
  """
  out = dict(tensor_dict)
  texts = out.pop(_TEXT, None)
  if _F.groundtruth_boxes not in out or _F.groundtruth_classes not in out:
    return out
  classes = out[_F.groundtruth_classes]
  nan = tf.reduce_any(tf.math.is_nan(out[_F.groundtruth_boxes]), axis=1)
  unrecognized = tf.logical_and(
      tf.logical_not(nan),
      tf.equal(classes, tf.cast(tf_example_decoder.UNRECOGNIZED_CLASS_ID, classes.dtype)))
  if texts is None:
    texts = tf.fill(tf.shape(classes), '')
  dropped_texts = tf.boolean_mask(texts, unrecognized)
  num_nan = tf.reduce_sum(tf.cast(nan, tf.int32))
  source_id = out.get(_F.source_id, tf.constant(''))

  def record(num_nan_value, dropped_texts_value, source_id_value):
    counter.record_dropped_objects(int(num_nan_value.numpy()), list(dropped_texts_value.numpy()),
                                   source_id_value.numpy())
    return 0

  done = tf.cond(
      num_nan + tf.size(dropped_texts) > 0,
      lambda: tf.ensure_shape(tf.py_function(record, [num_nan, dropped_texts, source_id],
                                             tf.int32), []),
      lambda: tf.constant(0))
  with tf.control_dependencies([done]):
    out[_F.groundtruth_classes] = tf.identity(classes)
  return out
