"""Builds a `tf.data.Dataset` of decoded examples from an `InputReader` config (TF OD API).

Honoured `InputReader` fields: tf_record_input_reader.input_path (globs and shard patterns such
as `train-?????-of-00256`, several patterns allowed), shuffle, filenames_shuffle_buffer_size,
shuffle_buffer_size, num_epochs (0 = repeat forever), sample_1_of_n_examples, num_readers
(files read in parallel), read_block_length, num_parallel_batches (parallel decode =
batch_size * num_parallel_batches, as the TF OD API, when set; else tf.data.AUTOTUNE),
num_parallel_map_calls (when no batch size; AUTOTUNE when unset), num_prefetch_batches
(<= 0: tf.data.AUTOTUNE), drop_remainder, sample_from_datasets_weights, load_instance_masks,
mask_type, label_map_path, use_display_name, skip_bad_examples (extension: records failing the
decoder's checks are dropped, logged and counted, `bad_examples`).

sample_from_datasets_weights (TF OD API `read_dataset`): one weight per `input_path` entry. Each
entry becomes its own record stream (its files shuffled, repeated num_epochs times, interleaved
and shuffled as usual, with ceil(num_readers * weight / sum(weights)) parallel readers; an entry of
weight 0 is not read), and the streams are mixed by `tf.data.Dataset.sample_from_datasets` with
those weights (relative, not necessarily summing to 1). Without weights every file of every
entry goes into one stream.

drop_remainder (TF OD API: `dataset.batch(batch_size, drop_remainder=drop_remainder)`, default
true) is honoured as written, except that a caller may override it (`inputs.eval_input` keeps a
last partial batch so that every image is evaluated; see docs/evaluation.md): when the override
keeps a partial batch that the config would drop, its size is logged once per pass.

Bad input fails early with a message naming the file and the config field:
  * a pattern matching no file -> ValueError naming the pattern and
    `tf_record_input_reader.input_path`;
  * a file that is not a TFRecord of tf.train.Example, or (with load_instance_masks) records
    without masks -> ValueError naming the file (the first records of every file are read at
    build time, `tf_example_decoder.validate_records`);
  * a file corrupt further in (truncated, or bytes changed at any offset): tf.data raises
    tf.errors.DataLossError naming no file; wrap iteration with `iterate_naming_corrupt_files`, or
    call `explain_data_loss_error` on the error, to get a CorruptRecordError (an InputConfigError)
    naming the file and its first unreadable record. Training and evaluation (model_lib_v2) do.
"""

import functools
import math
import re

from absl import logging
import tensorflow as tf

from object_detection.builders import decoder_builder
from object_detection.data_decoders import bad_examples
from object_detection.data_decoders import tf_example_decoder
from object_detection.utils import config_validation

_READ_BUFFER_BYTES = 8 * 1000 * 1000  # TF OD API default TFRecordDataset buffer.


class InputConfigError(config_validation.ConfigError):
  """Bad input reader config or input files; the message names the field / file."""


def _is_set(config, name):
  """True when the config sets `name` explicitly (proto2 presence)."""
  try:
    return config.HasField(name)
  except (AttributeError, ValueError):
    return hasattr(config, name)


def _get(config, name, default):
  value = getattr(config, name, default)
  return default if value is None else value


def list_input_files_per_path(input_paths):
  """Expands each pattern on its own: [sorted files of input_paths[0], ...].

  Args:
    input_paths: glob pattern or list of patterns (tf_record_input_reader.input_path).

  Raises:
    InputConfigError: no pattern given, or a pattern matches no file (named in the message).
  """
  if isinstance(input_paths, (str, bytes)):
    input_paths = [input_paths]
  input_paths = list(input_paths)
  if not input_paths:
    raise InputConfigError('tf_record_input_reader.input_path is empty: set it to the TFRecord '
                           'files (glob patterns allowed).')
  groups = []
  for pattern in input_paths:
    matched = sorted(tf.io.gfile.glob(pattern))
    if not matched:
      raise InputConfigError(
          'No file matches %r (tf_record_input_reader.input_path of the input reader). Fix the '
          'path or create the records with dataset_tools/create_coco_tf_record.py.' % pattern)
    groups.append(matched)
  return groups


def _flatten_unique(groups):
  files = []
  for group in groups:
    files.extend(f for f in group if f not in files)
  return files


def list_input_files(input_paths):
  """Expands patterns into one sorted, de-duplicated list of files.

  Args:
    input_paths: list of glob patterns (tf_record_input_reader.input_path).

  Raises:
    InputConfigError: no pattern given, or a pattern matches no file (named in the message).
  """
  return _flatten_unique(list_input_files_per_path(input_paths))


class CorruptRecordError(InputConfigError):
  """A TFRecord file cannot be read past some record; the message names the file, the record and
  how to re-create it (one line)."""


# tf.data's message for a damaged record: "corrupted record at 12345" (a CRC mismatch) or
# "truncated record at 12345" (the file ends inside the record); the number is a byte offset.
_OFFSET = re.compile(r'(corrupted|truncated) record at (\d+)')
_OP_SUFFIX = re.compile(r'\s*\[Op:[^\]]*\](\s*name:\s*\S*)?\s*$')


def _first_line(error):
  """tf.data's reason without the op decorations ({{function_node ...}}, [Op:...] name:)."""
  text = getattr(error, 'message', None) or str(error)
  line = (text.strip().splitlines() or [''])[0]
  match = _OFFSET.search(line)
  if match:
    return match.group(0)
  return _OP_SUFFIX.sub('', re.sub(r'\{\{[^}]*\}\}', '', line)).strip()


def find_corrupt_files(files, min_size=0):
  """Reads every record of `files` (larger than `min_size` bytes); returns the unreadable ones.

  Returns:
    list of (file, index of the first unreadable record, tf.data's message).
  """
  bad = []
  for path in files:
    if min_size and tf.io.gfile.stat(path).length <= min_size:
      continue
    index = 0
    try:
      for _ in tf.data.TFRecordDataset(path):
        index += 1
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
      bad.append((path, index, _first_line(e)))
  return bad


def explain_data_loss_error(input_reader_config, error, reader_name='the input reader'):
  """Returns a CorruptRecordError naming the corrupt file(s) behind a tf.data DataLossError.

  tf.data's DataLossError ("corrupted record at N") does not say which file; this reads the
  configured files (only on this error path; files no larger than the byte offset in the message
  cannot hold it and are not read) and names each unreadable one with its first bad record.

  Args:
    input_reader_config: the InputReader whose dataset raised `error`.
    error: the tf.errors.DataLossError.
    reader_name: the config section, e.g. 'train_input_reader', named in the message.
  """
  files = list_input_files(input_reader_config.tf_record_input_reader.input_path)
  match = _OFFSET.search(_first_line(error))
  min_size = int(match.group(2)) if match else 0
  if len(files) > 1:
    logging.info('Data loss while reading %s: looking for the corrupt file among %d files...',
                 reader_name, len(files))
  bad = find_corrupt_files(files, min_size) or (find_corrupt_files(files) if min_size else [])
  skip_note = ''
  if _get(input_reader_config, 'skip_bad_examples', False):
    skip_note = (' (skip_bad_examples skips records that decode but fail the checks, not '
                 'unreadable ones)')
  if not bad:
    return CorruptRecordError(
        'Data loss while reading %s (%s): %s. Check the files of %s.tf_record_input_reader.'
        'input_path, or re-create them with dataset_tools/create_coco_tf_record.py.' % (
            ', '.join(files), reader_name, _first_line(error), reader_name))
  described = '; '.join('%s at record %d (%s)' % item for item in bad)
  return CorruptRecordError(
      'Corrupt TFRecord file %s%s: the records from there on cannot be read. Re-create %s with '
      'dataset_tools/create_coco_tf_record.py (%s.tf_record_input_reader.input_path).' % (
          described, skip_note, 'it' if len(bad) == 1 else 'them', reader_name))


def iterate_naming_corrupt_files(dataset, input_reader_config, reader_name='the input reader'):
  """Yields the elements of `dataset`; a DataLossError is re-raised as a CorruptRecordError naming
  the corrupt file (`explain_data_loss_error`)."""
  iterator = iter(dataset)
  while True:
    try:
      element = next(iterator)
    except StopIteration:
      return
    except tf.errors.DataLossError as e:
      raise explain_data_loss_error(input_reader_config, e, reader_name) from None
    yield element


def _check_files(files, input_reader_config):
  """Cheap build-time check of the first records of every file (errors name the file)."""
  try:
    tf_example_decoder.validate_records(
        files,
        load_instance_masks=_get(input_reader_config, 'load_instance_masks', False),
        instance_mask_type=_get(input_reader_config, 'mask_type',
                                tf_example_decoder.NUMERICAL_MASKS),
        label_map_proto_file=_get(input_reader_config, 'label_map_path', '') or None,
        use_display_name=_get(input_reader_config, 'use_display_name', False),
        max_records_per_file=3,
        skip_bad_examples=_get(input_reader_config, 'skip_bad_examples', False))
  except tf_example_decoder.RecordValidationError as e:
    raise InputConfigError(str(e)) from None


def _read_records(file_read_func, input_files, num_readers, config, filename_shard_fn=None):
  """One record stream from `input_files` (TF OD API `_read_dataset_internal`).

  The file list is shuffled (filenames_shuffle_buffer_size) when `shuffle`, sharded, repeated
  num_epochs times (0 = forever), read by min(num_readers, number of files) interleaved readers
  (read_block_length records each in turn), and the records shuffled (shuffle_buffer_size).
  """
  num_readers = max(1, min(int(num_readers), len(input_files)))
  shuffle = _get(config, 'shuffle', True)
  filename_dataset = tf.data.Dataset.from_tensor_slices(tf.constant(input_files))
  if shuffle:
    filename_dataset = filename_dataset.shuffle(
        max(1, _get(config, 'filenames_shuffle_buffer_size', 100)))
  if filename_shard_fn:
    filename_dataset = filename_shard_fn(filename_dataset)
  num_epochs = _get(config, 'num_epochs', 0)
  filename_dataset = filename_dataset.repeat(num_epochs or None)
  block_length = max(1, _get(config, 'read_block_length', 15))
  if num_readers > 1:
    records = filename_dataset.interleave(
        file_read_func, cycle_length=num_readers, block_length=block_length,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
  else:
    records = filename_dataset.interleave(file_read_func, cycle_length=1,
                                          block_length=block_length)
  if shuffle:
    records = records.shuffle(max(1, _get(config, 'shuffle_buffer_size', 2048)))
  return records


def check_sample_weights(weights, num_input_paths):
  """Checks `sample_from_datasets_weights` against the input_path count.

  Raises:
    InputConfigError: not one weight per input_path entry, a negative weight, or all zero.
  """
  weights = [float(w) for w in weights]
  if len(weights) != num_input_paths:
    raise InputConfigError(
        'sample_from_datasets_weights has %d value(s) but tf_record_input_reader.input_path has '
        '%d entries: give one weight per input_path entry.' % (len(weights), num_input_paths))
  if any(w < 0 for w in weights) or not sum(weights) > 0:
    raise InputConfigError(
        'sample_from_datasets_weights %s: weights must be >= 0 with a positive sum.' % weights)
  return weights


def read_dataset(file_read_func, input_files, config, filename_shard_fn=None):
  """Records from `input_files`, mixed by `sample_from_datasets_weights` when set (TF OD API).

  Args:
    file_read_func: fn(filename) -> dataset of serialized records.
    input_files: list of file lists, one per tf_record_input_reader.input_path entry
      (`list_input_files_per_path`); a flat list of file names is one entry per file.
    config: InputReader proto.
    filename_shard_fn: optional fn(filename_dataset) -> sharded filename dataset, applied to
      each entry's files.

  Returns:
    tf.data.Dataset of serialized records (tf.string scalars).

  Raises:
    InputConfigError: bad sample_from_datasets_weights (see `check_sample_weights`).
  """
  groups = [[f] if isinstance(f, (str, bytes)) else list(f) for f in input_files]
  num_readers = max(1, _get(config, 'num_readers', 64))
  weights = list(_get(config, 'sample_from_datasets_weights', []))
  if not weights:
    return _read_records(file_read_func, _flatten_unique(groups), num_readers, config,
                         filename_shard_fn)
  weights = check_sample_weights(weights, len(groups))
  streams, stream_weights = [], []
  for group, weight in zip(groups, weights):
    readers = int(math.ceil(num_readers * weight / sum(weights)))
    if readers == 0:
      continue  # Weight 0: never sampled, so not read (as the TF OD API).
    streams.append(_read_records(file_read_func, group, readers, config, filename_shard_fn))
    stream_weights.append(weight)
  return tf.data.Dataset.sample_from_datasets(streams, stream_weights)


def _note_kept_partial_batch(batch_size):
  """fn(element) -> element that logs the size of a batch smaller than `batch_size`."""
  def note(*element):
    size = tf.shape(tf.nest.flatten(element)[0])[0]

    def log():
      tf.print('Input pipeline: keeping a last partial batch of', size, 'example(s) (batch_size',
               batch_size, ') that the input reader\'s drop_remainder: true would drop (the TF OD '
               'API leaves them out of evaluation; every image is evaluated here, see '
               'docs/evaluation.md).', output_stream=tf.compat.v1.logging.warning)
      return tf.constant(0)
    tf.cond(size < batch_size, log, lambda: tf.constant(0))
    return element if len(element) > 1 else element[0]
  return note


def build(input_reader_config, batch_size=None, transform_input_data_fn=None,
          input_context=None, reduce_to_frame_fn=None, drop_remainder=None,
          padded_shapes_fn=None, decoder=None, padding_values_fn=None):
  """Builds a dataset of decoded (and transformed, optionally batched) examples.

  Args:
    input_reader_config: `input_reader_pb2.InputReader`.
    batch_size: optional batch size (per replica); when given, examples are batched with
      `padded_batch` (tensors of different shapes, e.g. images of different sizes, are
      zero-padded bottom/right to the largest in the batch; same-shape tensors are batched as
      by `batch`).
    transform_input_data_fn: optional fn(tensor_dict) -> tensor_dict applied after decoding.
    input_context: optional `tf.distribute.InputContext`; files are sharded across its input
      pipelines.
    reduce_to_frame_fn: optional fn(dataset, dataset_map_fn, batch_size, config) -> dataset
      (TF OD API hook for sequence examples).
    drop_remainder: drop a last incomplete batch; None = the config's `drop_remainder` (TF OD
      API). `inputs.eval_input` passes False so that every image is evaluated; a partial batch
      kept against the config's drop_remainder: true is logged (warning) with its size.
    padded_shapes_fn: optional fn(element_spec) -> `padded_shapes` for `padded_batch` (e.g. to
      pad per-box tensors to a fixed row count only when batching); None = pad every
      dimension to the batch maximum.
    decoder: optional decoder object with `decode(serialized)` (e.g. the semantic segmentation
      decoder); None = `decoder_builder.build(input_reader_config)`.
    padding_values_fn: optional fn(element_spec) -> `padding_values` for `padded_batch` (e.g. the
      ignore label for label maps); None = zeros.

  Returns:
    tf.data.Dataset of dicts (keys `InputDataFields`), see TfExampleDecoder.decode.

  Raises:
    InputConfigError (a ValueError): no tf_record_input_reader, an input pattern matching no
      file, an unreadable file, records missing masks (message names the file), or
      sample_from_datasets_weights not one weight >= 0 per input_path entry.
  """
  if input_reader_config.WhichOneof('input_reader') != 'tf_record_input_reader':
    raise InputConfigError('input_reader: set tf_record_input_reader { input_path: ... }.')
  input_paths = list(input_reader_config.tf_record_input_reader.input_path)
  groups = list_input_files_per_path(input_paths)
  files = _flatten_unique(groups)
  weights = list(_get(input_reader_config, 'sample_from_datasets_weights', []))
  if weights:
    check_sample_weights(weights, len(groups))
  _check_files(files, input_reader_config)
  decoder = decoder or decoder_builder.build(input_reader_config)

  filename_shard_fn = None
  if input_context is not None and input_context.num_input_pipelines > 1:
    # Weighted: every input_path entry is sharded on its own, so each needs enough files.
    for pattern, group in (zip(input_paths, groups) if weights else [(input_paths, files)]):
      if len(group) < input_context.num_input_pipelines:
        raise InputConfigError(
            'tf_record_input_reader.input_path %s matches %d file(s) but there are %d input '
            'pipelines; write at least that many shards (create_coco_tf_record.py --num_shards).'
            % (pattern, len(group), input_context.num_input_pipelines))

    def filename_shard_fn(dataset):
      return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)

  read_fn = functools.partial(tf.data.TFRecordDataset, buffer_size=_READ_BUFFER_BYTES)
  dataset = read_dataset(read_fn, groups, input_reader_config, filename_shard_fn)
  n = _get(input_reader_config, 'sample_1_of_n_examples', 1)
  if n > 1:
    dataset = dataset.shard(n, 0)

  # Parallel decode: the config's value when it sets one (TF OD API: batch_size *
  # num_parallel_batches), else AUTOTUNE. The TF OD API defaults (8 x batch, or 64) keep up to 64
  # full-resolution examples with masks in flight, a memory spike (tensorflow/models#3610);
  # AUTOTUNE bounds the parallelism by the CPU count and tf.data's RAM budget.
  num_parallel_calls = tf.data.AUTOTUNE
  if batch_size and _is_set(input_reader_config, 'num_parallel_batches'):
    num_parallel_calls = batch_size * _get(input_reader_config, 'num_parallel_batches', 8)
  elif not batch_size and _is_set(input_reader_config, 'num_parallel_map_calls'):
    num_parallel_calls = _get(input_reader_config, 'num_parallel_map_calls', 64)
  if num_parallel_calls <= 0:
    num_parallel_calls = tf.data.AUTOTUNE

  def map_fn(ds, fn):
    return ds.map(fn, num_parallel_calls=num_parallel_calls,
                  deterministic=not _get(input_reader_config, 'shuffle', True))

  dataset = map_fn(dataset, decoder.decode)
  if getattr(decoder, 'skip_bad_examples', False):
    dataset = bad_examples.filter_bad_examples(
        dataset, bad_examples.new_counter(', '.join(
            input_reader_config.tf_record_input_reader.input_path)))
  if reduce_to_frame_fn:
    dataset = reduce_to_frame_fn(dataset, map_fn, batch_size, input_reader_config)
  if transform_input_data_fn is not None:
    dataset = map_fn(dataset, transform_input_data_fn)
  if batch_size:
    config_drop_remainder = _get(input_reader_config, 'drop_remainder', True)
    if drop_remainder is None:
      drop_remainder = config_drop_remainder
    padded_shapes = padded_shapes_fn(dataset.element_spec) if padded_shapes_fn else None
    padding_values = padding_values_fn(dataset.element_spec) if padding_values_fn else None
    dataset = dataset.padded_batch(batch_size, padded_shapes=padded_shapes,
                                   padding_values=padding_values, drop_remainder=drop_remainder)
    if config_drop_remainder and not drop_remainder:
      dataset = dataset.map(_note_kept_partial_batch(batch_size))
  prefetch = _get(input_reader_config, 'num_prefetch_batches', 2)
  dataset = dataset.prefetch(prefetch if prefetch > 0 else tf.data.AUTOTUNE)
  return dataset
