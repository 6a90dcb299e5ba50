"""Builds a `tf.data.Dataset` of decoded examples from an `InputReader` config (TF OD API).

Honoured `InputReader` fields: tf_record_input_reader.input_path (globs and shard patterns such
as `train-?????-of-00256`, several patterns allowed), shuffle, filenames_shuffle_buffer_size,
shuffle_buffer_size, num_epochs (0 = repeat forever), sample_1_of_n_examples, num_readers
(files read in parallel), read_block_length, num_parallel_batches (parallel decode =
batch_size * num_parallel_batches, as the TF OD API, when set; else tf.data.AUTOTUNE),
num_parallel_map_calls (when no batch size; AUTOTUNE when unset), num_prefetch_batches
(<= 0: tf.data.AUTOTUNE), drop_remainder, load_instance_masks,
mask_type, label_map_path, use_display_name, skip_bad_examples (extension: records failing the
decoder's checks are dropped, logged and counted, `bad_examples`).

Bad input fails early with a message naming the file and the config field:
  * a pattern matching no file -> ValueError naming the pattern and
    `tf_record_input_reader.input_path`;
  * a file that is not a TFRecord of tf.train.Example, or (with load_instance_masks) records
    without masks -> ValueError naming the file (the first records of every file are read at
    build time, `tf_example_decoder.validate_records`);
  * a file corrupt further in: tf.data raises tf.errors.DataLossError without a file name; wrap
    iteration with `iterate_naming_corrupt_files` or call `explain_data_loss_error` on the error
    to get an error naming the corrupt file(s).
"""

import functools

import tensorflow as tf

from object_detection.builders import decoder_builder
from object_detection.data_decoders import bad_examples
from object_detection.data_decoders import tf_example_decoder

_READ_BUFFER_BYTES = 8 * 1000 * 1000  # TF OD API default TFRecordDataset buffer.


class InputConfigError(ValueError):
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


def list_input_files(input_paths):
  """Expands patterns into a sorted, de-duplicated list of files.

  Args:
    input_paths: list of glob patterns (tf_record_input_reader.input_path).

  Raises:
    InputConfigError: no pattern given, or a pattern matches no file (named in the message).
  """
  if isinstance(input_paths, (str, bytes)):
    input_paths = [input_paths]
  input_paths = list(input_paths)
  if not input_paths:
    raise InputConfigError('tf_record_input_reader.input_path is empty: set it to the TFRecord '
                           'files (glob patterns allowed).')
  files = []
  for pattern in input_paths:
    matched = sorted(tf.io.gfile.glob(pattern))
    if not matched:
      raise InputConfigError(
          'No file matches %r (tf_record_input_reader.input_path of the input reader). Fix the '
          'path or create the records with dataset_tools/create_coco_tf_record.py.' % pattern)
    files.extend(m for m in matched if m not in files)
  return files


def find_corrupt_files(files):
  """Reads every record of `files`; returns [(file, error message)] for unreadable files."""
  bad = []
  for path in files:
    try:
      for _ in tf.data.TFRecordDataset(path):
        pass
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
      bad.append((path, e.message.splitlines()[0]))
  return bad


def explain_data_loss_error(input_reader_config, error):
  """Returns a tf.errors.DataLossError naming the corrupt file(s) behind `error`.

  tf.data's DataLossError ("corrupted record at N") does not say which file; this scans the
  configured files (full read, only on this error path) to find them.
  """
  files = list_input_files(input_reader_config.tf_record_input_reader.input_path)
  bad = find_corrupt_files(files)
  if bad:
    message = ('Corrupt TFRecord file(s) in tf_record_input_reader.input_path: %s. Re-create them '
               'with dataset_tools/create_coco_tf_record.py.' % '; '.join(
                   '%s (%s)' % item for item in bad))
  else:
    message = 'Data loss while reading %s: %s' % (', '.join(files), error)
  return tf.errors.DataLossError(None, None, message)


def iterate_naming_corrupt_files(dataset, input_reader_config):
  """Yields the elements of `dataset`; a DataLossError is re-raised naming the corrupt file."""
  iterator = iter(dataset)
  while True:
    try:
      element = next(iterator)
    except StopIteration:
      return
    except tf.errors.DataLossError as e:
      raise explain_data_loss_error(input_reader_config, e) from None
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


def read_dataset(file_read_func, input_files, config, filename_shard_fn=None):
  """Interleaved, optionally shuffled and repeated records from `input_files` (TF OD API).

  Args:
    file_read_func: fn(filename) -> dataset of serialized records.
    input_files: list of file names (already expanded).
    config: InputReader proto.
    filename_shard_fn: optional fn(filename_dataset) -> sharded filename dataset.

  Returns:
    tf.data.Dataset of serialized records (tf.string scalars).
  """
  num_readers = max(1, min(_get(config, 'num_readers', 64), len(input_files)))
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


def build(input_reader_config, batch_size=None, transform_input_data_fn=None,
          input_context=None, reduce_to_frame_fn=None, drop_remainder=None,
          padded_shapes_fn=None):
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
    drop_remainder: drop a last incomplete batch; None = the config's `drop_remainder`
      (evaluation passes False so that every image is evaluated).
    padded_shapes_fn: optional fn(element_spec) -> `padded_shapes` for `padded_batch` (e.g. to
      pad per-box tensors to a fixed row count only when batching); None = pad every
      dimension to the batch maximum.

  Returns:
    tf.data.Dataset of dicts (keys `InputDataFields`), see TfExampleDecoder.decode.

  Raises:
    InputConfigError (a ValueError): no tf_record_input_reader, an input pattern matching no
      file, an unreadable file or records missing masks (message names the file).
  """
  if input_reader_config.WhichOneof('input_reader') != 'tf_record_input_reader':
    raise InputConfigError('input_reader: set tf_record_input_reader { input_path: ... }.')
  files = list_input_files(input_reader_config.tf_record_input_reader.input_path)
  _check_files(files, input_reader_config)
  decoder = decoder_builder.build(input_reader_config)

  filename_shard_fn = None
  if input_context is not None and input_context.num_input_pipelines > 1:
    if len(files) < input_context.num_input_pipelines:
      raise InputConfigError(
          'tf_record_input_reader.input_path matches %d file(s) but there are %d input '
          'pipelines; write at least that many shards (create_coco_tf_record.py --num_shards).'
          % (len(files), input_context.num_input_pipelines))

    def filename_shard_fn(dataset):
      return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)

  read_fn = functools.partial(tf.data.TFRecordDataset, buffer_size=_READ_BUFFER_BYTES)
  dataset = read_dataset(read_fn, files, input_reader_config, filename_shard_fn)
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
  if decoder.skip_bad_examples:
    dataset = bad_examples.filter_bad_examples(
        dataset, bad_examples.new_counter(', '.join(
            input_reader_config.tf_record_input_reader.input_path)))
  if reduce_to_frame_fn:
    dataset = reduce_to_frame_fn(dataset, map_fn, batch_size, input_reader_config)
  if transform_input_data_fn is not None:
    dataset = map_fn(dataset, transform_input_data_fn)
  if batch_size:
    if drop_remainder is None:
      drop_remainder = _get(input_reader_config, 'drop_remainder', True)
    padded_shapes = padded_shapes_fn(dataset.element_spec) if padded_shapes_fn else None
    dataset = dataset.padded_batch(batch_size, padded_shapes=padded_shapes,
                                   drop_remainder=drop_remainder)
  prefetch = _get(input_reader_config, 'num_prefetch_batches', 2)
  dataset = dataset.prefetch(prefetch if prefetch > 0 else tf.data.AUTOTUNE)
  return dataset
