"""Skipping bad records (`input_reader.skip_bad_examples: true`): drop, log and count them.

`TfExampleDecoder(skip_bad_examples=True)` reports a failed record check in its output instead of
raising; `filter_bad_examples` drops those records from the dataset. Every distinct bad record is
logged once (a WARNING with the decoder's message: image/source_id, image/filename, the feature and
what is wrong) with a running count, so a training set that repeats does not flood the log;
`SkippedRecords` keeps the counts, and `summary_lines` reports them (printed after each
evaluation).
"""
import threading

from absl import logging
import tensorflow as tf

from object_detection.data_decoders import tf_example_decoder

_IS_VALID = tf_example_decoder.RECORD_IS_VALID_KEY
_ERROR = tf_example_decoder.RECORD_ERROR_KEY


class SkippedRecords(object):
  """Counts the records a dataset skipped.

  Attributes:
    name: what the dataset reads (its input paths), used in the log lines.
    num_skips: records dropped, counting a record again each epoch it is read.
    errors: the distinct error messages (one per distinct bad record), in the order seen.
  """

  def __init__(self, name):
    self.name = name
    self.num_skips = 0
    self.errors = []
    self._seen = set()
    self._lock = threading.Lock()

  @property
  def num_records(self):
    """Distinct bad records skipped."""
    return len(self.errors)

  def record(self, error):
    """Counts one skip (`error`: the decoder's message, bytes or str); logs it the first time."""
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

  def summary(self):
    return ('skip_bad_examples: %d bad record(s) skipped in %s (%d skip(s) counting repeats)'
            % (self.num_records, self.name, self.num_skips))


_ALL = []  # every SkippedRecords created in this process, for summary_lines


def new_counter(name):
  """Returns a registered `SkippedRecords` for the dataset reading `name`."""
  counter = SkippedRecords(name)
  _ALL.append(counter)
  return counter


def summary_lines():
  """One line per dataset of this process that skipped records (none: an empty list)."""
  return [c.summary() for c in _ALL if c.num_skips]


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
