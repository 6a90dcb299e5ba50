"""dataset_builder on real coco128_seg records written by the converter."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from object_detection.builders import dataset_builder
from object_detection.core import standard_fields as fields
from object_detection.data_decoders import bad_examples
from object_detection.dataset_tools import coco_tf_record
from object_detection.protos import input_reader_pb2

F = fields.InputDataFields
from conftest import COCO128_DIR as DATA  # pylint: disable=g-bad-import-order
NUM_IMAGES = 4


def make_records(out_dir, num_images, include_masks=True, mask_type='png', num_shards=2):
  """Converts the first `num_images` val images; returns the list of shard files."""
  with open(os.path.join(DATA, 'annotations', 'instances_val.json')) as f:
    coco = json.load(f)
  coco['images'] = sorted(coco['images'], key=lambda im: im['id'])[:num_images]
  ids = {im['id'] for im in coco['images']}
  coco['annotations'] = [a for a in coco['annotations'] if a['image_id'] in ids]
  ann_file = out_dir.rstrip('/') + '_instances.json'
  with open(ann_file, 'w') as f:
    json.dump(coco, f)
  result = coco_tf_record.convert([('train', os.path.join(DATA, 'images'), ann_file)], out_dir,
                                  include_masks=include_masks, num_shards=num_shards,
                                  mask_type=mask_type, show_progress=False)
  return result['splits'][0].output_files


@pytest.fixture(scope='module')
def records(tmp_path_factory):
  root = tmp_path_factory.mktemp('ds')
  return {
      'png': make_records(str(root / 'png'), NUM_IMAGES),
      'nomask': make_records(str(root / 'nomask'), 2, include_masks=False, num_shards=1),
      'root': str(root),
  }


def _config(paths, extra=''):
  text = 'tf_record_input_reader { %s } shuffle: false num_epochs: 1 num_readers: 2 %s' % (
      ' '.join('input_path: "%s"' % p for p in paths), extra)
  return text_format.Merge(text, input_reader_pb2.InputReader())


def _source_ids(dataset):
  return [d[F.source_id].numpy().decode() for d in dataset]


def test_shard_pattern_reads_every_record(records):
  pattern = records['png'][0].replace('00000-of-00002', '?????-of-00002')
  ids = _source_ids(dataset_builder.build(_config([pattern])))
  assert len(ids) == NUM_IMAGES and len(set(ids)) == NUM_IMAGES
  glob_ids = _source_ids(dataset_builder.build(_config([records['png'][0][:-15] + '*'])))
  assert sorted(glob_ids) == sorted(ids)


def test_decoded_masks(records):
  ds = dataset_builder.build(_config(records['png'], 'load_instance_masks: true '
                                     'mask_type: PNG_MASKS'))
  for d in ds:
    masks = d[F.groundtruth_instance_masks]
    assert masks.dtype == tf.uint8
    assert masks.shape[0] == d[F.groundtruth_boxes].shape[0]
    assert masks.shape[1:] == d[F.image].shape[:2]


def test_sample_1_of_n_and_num_epochs(records):
  ids = _source_ids(dataset_builder.build(_config(records['png'], 'sample_1_of_n_examples: 2')))
  assert len(ids) == NUM_IMAGES // 2
  ids = _source_ids(dataset_builder.build(_config(records['png'], 'num_epochs: 3')))
  assert len(ids) == 3 * NUM_IMAGES
  forever = dataset_builder.build(_config(records['png'], 'num_epochs: 0 shuffle: true '
                                          'shuffle_buffer_size: 4'))
  assert len(list(forever.take(3 * NUM_IMAGES + 1))) == 3 * NUM_IMAGES + 1


def test_batching_with_transform(records):
  def transform(d):
    return {'image': tf.image.resize(d[F.image], [32, 32]), 'n': tf.shape(d[F.groundtruth_boxes])[0]}
  ds = dataset_builder.build(_config(records['png'], 'num_epochs: 2'), batch_size=3,
                             transform_input_data_fn=transform)
  batches = list(ds)
  assert len(batches) == (2 * NUM_IMAGES) // 3  # drop_remainder defaults to true.
  assert batches[0]['image'].shape == (3, 32, 32, 3)


def test_input_context_shards_files(records):
  ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1)
  ids = _source_ids(dataset_builder.build(_config(records['png']), input_context=ctx))
  all_ids = _source_ids(dataset_builder.build(_config(records['png'])))
  assert 0 < len(ids) < len(all_ids)


def test_no_matching_file_names_pattern_and_field(records):
  missing = os.path.join(records['root'], 'nothing-?????-of-00009')
  with pytest.raises(ValueError) as e:
    dataset_builder.build(_config([missing]))
  assert missing in str(e.value) and 'input_path' in str(e.value)


def test_garbage_file_names_file(records):
  bad = os.path.join(records['root'], 'garbage.record')
  with open(bad, 'wb') as f:
    f.write(b'this is not a tfrecord file at all' * 10)
  with pytest.raises(ValueError, match='garbage.record'):
    dataset_builder.build(_config([records['png'][0], bad]))


def _truncated_copy(records, name, sources):
  data = b''
  for path in sources:
    with open(path, 'rb') as f:
      data += f.read()
  bad = os.path.join(records['root'], name)
  with open(bad, 'wb') as f:
    f.write(data[:-100])  # The last record is truncated.
  return bad


def test_truncated_file_caught_at_build(records):
  bad = _truncated_copy(records, 'short.record', records['png'][1:])
  with pytest.raises(ValueError, match='short.record'):
    dataset_builder.build(_config([records['png'][0], bad]))


def test_file_corrupt_in_the_middle_names_file(records):
  # 4 records, the 4th truncated: the build-time check (first records) passes, reading fails.
  bad = _truncated_copy(records, 'truncated.record', records['png'])
  config = _config([records['png'][0], bad])
  dataset = dataset_builder.build(config)
  with pytest.raises(dataset_builder.CorruptRecordError) as e:
    for _ in dataset_builder.iterate_naming_corrupt_files(dataset, config, 'train_input_reader'):
      pass
  message = str(e.value)
  assert message.startswith('Corrupt TFRecord file %s at record 3 (truncated record at ' % bad)
  assert records['png'][0] not in message and '\n' not in message
  assert ('Re-create it with dataset_tools/create_coco_tf_record.py '
          '(train_input_reader.tf_record_input_reader.input_path).') in message


def _flipped_copy(records, name, record_index):
  """The 4 records in one file with one byte changed in the middle of record `record_index`."""
  data = b''.join(open(path, 'rb').read() for path in records['png'])
  offsets, pos = [], 0
  while pos < len(data):
    offsets.append(pos)
    pos += 16 + int.from_bytes(data[pos:pos + 8], 'little')
  offsets.append(len(data))
  middle = (offsets[record_index] + offsets[record_index + 1]) // 2
  bad = os.path.join(records['root'], name)
  with open(bad, 'wb') as f:
    f.write(data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:])
  return bad


def test_byte_flipped_in_a_later_record_names_file_and_record(records):
  bad = _flipped_copy(records, 'flipped3.record', 3)
  config = _config([records['png'][0], bad], 'skip_bad_examples: true')
  with pytest.raises(dataset_builder.CorruptRecordError) as e:
    for _ in dataset_builder.iterate_naming_corrupt_files(
        dataset_builder.build(config), config, 'eval_input_reader'):
      pass
  message = str(e.value)
  assert message.startswith('Corrupt TFRecord file %s at record 3 (corrupted record at ' % bad)
  assert 'skip_bad_examples skips records that decode but fail the checks' in message
  assert 'eval_input_reader.tf_record_input_reader.input_path' in message


def test_byte_flipped_in_an_early_record_is_caught_at_build(records):
  bad = _flipped_copy(records, 'flipped1.record', 1)
  with pytest.raises(dataset_builder.InputConfigError) as e:
    dataset_builder.build(_config([records['png'][0], bad]))
  assert bad in str(e.value) and 'create_coco_tf_record.py' in str(e.value)


def test_masks_requested_but_records_have_none(records):
  config = _config(records['nomask'], 'load_instance_masks: true mask_type: PNG_MASKS')
  with pytest.raises(ValueError) as e:
    dataset_builder.build(config)
  assert records['nomask'][0] in str(e.value) and '--include_masks' in str(e.value)


def _with_bad_record(records, name):
  """A file of the real records with, after the first, a copy whose first box is outside [0, 1]."""
  serialized = [r.numpy() for path in records['png'] for r in tf.data.TFRecordDataset(path)]
  example = tf.train.Example.FromString(serialized[0])
  feature = example.features.feature
  feature['image/object/bbox/ymax'].float_list.value[0] = 1.5
  feature['image/source_id'].bytes_list.value[0] = b'bad-7'
  path = os.path.join(records['root'], name)
  with tf.io.TFRecordWriter(path) as writer:
    for record in serialized[:1] + [example.SerializeToString()] + serialized[1:]:
      writer.write(record)
  return path, len(serialized)


def test_bad_record_stops_the_run_naming_it_by_default(records):
  path, _ = _with_bad_record(records, 'with_bad_strict.record')
  dataset = dataset_builder.build(_config([path], 'load_instance_masks: true '
                                          'mask_type: PNG_MASKS'))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'source_id=bad-7.*image/object/bbox/\* holds boxes outside \[0, 1\]'):
    _source_ids(dataset)


def test_skip_bad_examples_drops_logs_and_counts_the_bad_record(records, caplog):
  path, num_good = _with_bad_record(records, 'with_bad_skip.record')
  config = _config([path], 'load_instance_masks: true mask_type: PNG_MASKS num_epochs: 2 '
                   'skip_bad_examples: true')
  ids = _source_ids(dataset_builder.build(config))
  assert len(ids) == 2 * num_good and 'bad-7' not in ids
  counter = bad_examples._ALL[-1]  # pylint: disable=protected-access
  assert counter.num_records == 1 and counter.num_skips == 2  # read once per epoch
  assert 'source_id=bad-7' in counter.errors[0] and 'outside [0, 1]' in counter.errors[0]
  logged = [r.getMessage() for r in caplog.records if 'skip_bad_examples' in r.getMessage()]
  assert len(logged) == 1 and 'skipped bad record 1 of %s' % path in logged[0]
  assert 'source_id=bad-7' in logged[0]
  assert any('1 bad record(s) skipped in %s (2 skip(s)' % path in line
             for line in bad_examples.summary_lines())


# --------------------------------------------------------------- sample_from_datasets_weights
def _record_ids(dataset):
  """Source ids of serialized records (no image decoding)."""
  spec = {'image/source_id': tf.io.FixedLenFeature((), tf.string)}
  return [tf.io.parse_single_example(r, spec)['image/source_id'].numpy().decode()
          for r in dataset]


def _shard_ids(records):
  return [_record_ids(tf.data.TFRecordDataset(path)) for path in records['png']]


def test_sample_from_datasets_weights_reads_each_input_path_as_one_weighted_stream(records):
  shard0, shard1 = _shard_ids(records)
  assert shard0 and shard1 and not set(shard0) & set(shard1)
  # Finite epochs: sampling goes on until every stream is exhausted, so each record comes once.
  ids = _source_ids(dataset_builder.build(_config(
      records['png'], 'sample_from_datasets_weights: 1 sample_from_datasets_weights: 1')))
  assert sorted(ids) == sorted(shard0 + shard1)
  # Weight 0: that input_path is not read at all.
  ids = _source_ids(dataset_builder.build(_config(
      records['png'], 'sample_from_datasets_weights: 1 sample_from_datasets_weights: 0 '
      'num_epochs: 2')))
  assert sorted(ids) == sorted(shard0 * 2)


def test_sample_from_datasets_weights_mix_in_proportion(records):
  shard0, _ = _shard_ids(records)
  config = _config(records['png'], 'num_epochs: 0 sample_from_datasets_weights: 3 '
                   'sample_from_datasets_weights: 1')
  tf.random.set_seed(1)
  groups = dataset_builder.list_input_files_per_path(config.tf_record_input_reader.input_path)
  ids = _record_ids(dataset_builder.read_dataset(tf.data.TFRecordDataset, groups, config)
                    .take(800))
  fraction = np.mean([i in shard0 for i in ids])
  assert 0.68 < fraction < 0.82  # 0.75 expected; +-3.3 standard deviations.


def test_sample_from_datasets_weights_readers_per_input_path(records, monkeypatch):
  """num_readers is split as the TF OD API: ceil(num_readers * weight / sum of weights)."""
  calls = []
  original = dataset_builder._read_records  # pylint: disable=protected-access

  def spy(file_read_func, input_files, num_readers, config, filename_shard_fn=None):
    calls.append((list(input_files), num_readers))
    return original(file_read_func, input_files, num_readers, config, filename_shard_fn)
  monkeypatch.setattr(dataset_builder, '_read_records', spy)
  paths = records['png'] + records['nomask']
  config = _config(paths, 'num_readers: 5 sample_from_datasets_weights: 3 '
                   'sample_from_datasets_weights: 0 sample_from_datasets_weights: 1')
  dataset_builder.read_dataset(tf.data.TFRecordDataset, [[p] for p in paths], config)
  assert calls == [([paths[0]], 4), ([paths[2]], 2)]  # ceil(3.75), weight 0 skipped, ceil(1.25)


@pytest.mark.parametrize('weights, match', [
    ('sample_from_datasets_weights: 1', 'has 1 value.*input_path has 2 entries'),
    ('sample_from_datasets_weights: 1 sample_from_datasets_weights: -1', '>= 0'),
    ('sample_from_datasets_weights: 0 sample_from_datasets_weights: 0', 'positive sum'),
])
def test_bad_sample_from_datasets_weights(records, weights, match):
  with pytest.raises(dataset_builder.InputConfigError, match='sample_from_datasets_weights'):
    dataset_builder.build(_config(records['png'], weights))
  with pytest.raises(ValueError, match=match):
    dataset_builder.build(_config(records['png'], weights))


# ------------------------------------------------------------------------------ drop_remainder
def _batch_sizes(config, **kwargs):
  def transform(d):
    return {'n': tf.shape(d[F.groundtruth_boxes])[0]}
  return [int(b['n'].shape[0]) for b in dataset_builder.build(
      config, batch_size=3, transform_input_data_fn=transform, **kwargs)]


def test_drop_remainder_follows_the_config(records, capfd):
  assert _batch_sizes(_config(records['png'])) == [3]  # TF OD API default: true.
  assert _batch_sizes(_config(records['png'], 'drop_remainder: false')) == [3, 1]
  assert 'partial batch' not in capfd.readouterr().err  # Asked for: nothing to report.


def test_drop_remainder_override_keeps_and_logs_the_partial_batch(records, capfd):
  assert _batch_sizes(_config(records['png']), drop_remainder=False) == [3, 1]
  err = capfd.readouterr().err
  assert err.count('keeping a last partial batch of 1 example(s) (batch_size 3 )') == 1


def test_sample_from_datasets_weights_shard_each_input_path(records):
  ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0)
  config = _config(records['png'], 'sample_from_datasets_weights: 1 '
                   'sample_from_datasets_weights: 1')
  with pytest.raises(ValueError, match='input_path %s matches 1 file' % records['png'][0]):
    dataset_builder.build(config, input_context=ctx)
