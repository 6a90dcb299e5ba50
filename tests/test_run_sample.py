"""samples/run_sample.py's class subset, config and overlay choices on the real sample (no training).

The run itself (convert, train, evaluate, export, overlays) is test_model_main's
test_run_sample_end_to_end.
"""
import json
import os
import sys

import pytest
import tensorflow as tf

from object_detection.dataset_tools import coco_annotations
from object_detection.utils import config_util
from object_detection.utils import label_map_util

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAL_JSON = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg', 'annotations',
                        'instances_val.json')


@pytest.fixture(scope='module')
def run_sample():
  sys.path.insert(0, os.path.join(REPO_ROOT, 'samples'))
  try:
    import run_sample as module  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  return module


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
  # run_sample's paths (and main's chdir) are relative to the repository root.
  monkeypatch.chdir(REPO_ROOT)


def _error_lines(text):
  # Other lines on stderr: the notice that TensorFlow's start-up messages are hidden.
  return [line for line in text.splitlines() if not line.startswith('Hiding TensorFlow')]


def _count_records(path):
  return sum(1 for _ in tf.data.TFRecordDataset(path))


def _val_images_with(category_ids):
  with open(VAL_JSON) as f:
    coco = json.load(f)
  ids = sorted({a['image_id'] for a in coco['annotations'] if a['category_id'] in category_ids})
  names = {image['id']: image['file_name'] for image in coco['images']}
  return [names[i] for i in ids]


def test_default_config_is_the_person_subset_it_is_run_with(run_sample):
  configs = config_util.get_configs_from_pipeline_file(run_sample.DEFAULT_CONFIG)
  assert configs['model'].faster_rcnn.num_classes == 1
  assert run_sample.DEFAULT_CLASSES == 'person'
  _, chosen = run_sample.resolve_classes(run_sample.DEFAULT_CLASSES)
  assert run_sample.classes_slug(chosen) == 'person'
  # The defaults need no rewritten copy: the config reads runs/sample/data_person.
  data_dir = os.path.join('runs', 'sample', 'data_person')
  assert run_sample.config_for_run(run_sample.DEFAULT_CONFIG, data_dir,
                                   os.path.join('runs', 'sample', 'model_person'),
                                   1) == run_sample.DEFAULT_CONFIG


def test_classes_by_name_or_id_in_the_order_given(run_sample):
  _, chosen = run_sample.resolve_classes('car, 1')
  assert [(c.name, c.source_id, c.id) for c in chosen] == [('car', 3, 1), ('person', 1, 2)]
  assert run_sample.classes_slug(chosen) == 'car_person'
  _, chosen = run_sample.resolve_classes('teddy bear')
  assert run_sample.classes_slug(chosen) == 'teddy-bear'
  assert run_sample.resolve_classes('all')[1] is None
  assert run_sample.classes_slug(None) == 'all'


def test_unknown_class_is_one_usage_line_before_anything_is_written(run_sample, tmp_path, capsys):
  model_dir = tmp_path / 'model'
  model_dir.mkdir()
  (model_dir / 'ckpt-1.index').write_bytes(b'kept')
  code = run_sample.main(['--classes=persn', '--fresh', '--model_dir=%s' % model_dir,
                          '--data_dir=%s' % (tmp_path / 'data')])
  assert code == 2
  err = _error_lines(capsys.readouterr().err)
  assert len(err) == 1 and err[0].startswith(
      "Usage error: --classes: 'persn' is not a category name or id of the annotation file(s) "
      "(did you mean 'person'?)"), err
  assert (model_dir / 'ckpt-1.index').read_bytes() == b'kept'  # --fresh did not delete it
  assert not (tmp_path / 'data').exists()


@pytest.mark.parametrize('flag, message', [
    ('--num_overlays=-1', '--num_overlays=-1: it must be >= 0 (0: no overlays).'),
    ('--min_score_thresh=1.5', '--min_score_thresh=1.5: it must be in [0, 1].'),
])
def test_bad_overlay_flags(run_sample, capsys, flag, message):
  assert run_sample.main([flag]) == 2
  assert _error_lines(capsys.readouterr().err) == ['Usage error: ' + message]


def test_convert_writes_only_the_chosen_classes_and_reuses_them(run_sample, tmp_path, capsys):
  loaded, chosen = run_sample.resolve_classes('person')
  data_dir = str(tmp_path / 'data')
  run_sample.convert(data_dir, loaded, chosen)
  out = capsys.readouterr().out
  assert 'instances of other classes' in out
  label_map = label_map_util.load_labelmap(os.path.join(data_dir, 'label_map.pbtxt'))
  assert [(item.id, item.name) for item in label_map.item] == [(1, 'person')]
  # The sample's person images (README of samples/data/coco128_seg): 51 train, 10 val.
  assert _count_records(os.path.join(data_dir, 'coco_train.record-00000-of-00001')) == 51
  assert _count_records(os.path.join(data_dir, 'coco_val.record-00000-of-00001')) == 10
  run_sample.convert(data_dir, loaded, chosen)
  assert 'already in' in capsys.readouterr().out
  # Records of other classes in the folder are converted again, not reused.
  loaded, chosen = run_sample.resolve_classes('person,car')
  run_sample.convert(data_dir, loaded, chosen)
  assert 'already in' not in capsys.readouterr().out
  label_map = label_map_util.load_labelmap(os.path.join(data_dir, 'label_map.pbtxt'))
  assert [(item.id, item.name) for item in label_map.item] == [(1, 'person'), (2, 'car')]
  assert _count_records(os.path.join(data_dir, 'coco_val.record-00000-of-00001')) == len(
      _val_images_with({1, 3}))


def test_config_copy_reads_the_data_dir_with_the_class_count(run_sample, tmp_path):
  data_dir = str(tmp_path / 'data')
  model_dir = str(tmp_path / 'runs' / 'model')
  path = run_sample.config_for_run(run_sample.DEFAULT_CONFIG, data_dir, model_dir, 2)
  assert path == str(tmp_path / 'runs' / 'run_sample_pipeline.config')
  configs = config_util.get_configs_from_pipeline_file(path)
  assert configs['model'].faster_rcnn.num_classes == 2
  for reader, name in ([(configs['train_input_config'], 'coco_train')] +
                       [(r, 'coco_val') for r in configs['eval_input_configs']]):
    assert reader.label_map_path == os.path.join(data_dir, 'label_map.pbtxt')
    assert list(reader.tf_record_input_reader.input_path) == [
        os.path.join(data_dir, name + '.record-?????-of-00001')]
  # Everything else as in the shipped config.
  original = config_util.get_configs_from_pipeline_file(run_sample.DEFAULT_CONFIG)
  assert configs['train_config'] == original['train_config']
  configs['model'].faster_rcnn.num_classes = 1
  assert configs['model'] == original['model']


def test_overlay_images_are_val_images_showing_the_classes(run_sample):
  loaded, chosen = run_sample.resolve_classes('person')
  expected = _val_images_with({1})
  assert len(expected) == 10
  assert run_sample.overlay_images(loaded, chosen, 4) == expected[:4]
  assert run_sample.overlay_images(loaded, chosen, 50) == expected
  loaded, chosen = run_sample.resolve_classes('car')
  assert run_sample.overlay_images(loaded, chosen, 50) == _val_images_with({3})
