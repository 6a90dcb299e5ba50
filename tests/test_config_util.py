"""config_util (read / override / save) and config_validation (one error per bad field)."""
import os

import pytest

from object_detection.utils import config_util
from object_detection.utils import config_validation

_TFOD = os.path.join(os.path.dirname(__file__), 'testdata', 'tfod_configs')
_MASK_CONFIG = os.path.join(_TFOD, 'mask_rcnn_resnet50_atrous_coco.config')
_PETS_CONFIG = os.path.join(_TFOD, 'faster_rcnn_resnet101_pets.config')


def _configs(path=_MASK_CONFIG, override=None):
  return config_util.get_configs_from_pipeline_file(path, config_override=override)


def _write(tmp_path, text, name='pipeline.config'):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_get_configs_keys_and_values():
  configs = _configs()
  assert set(configs) >= {'model', 'train_config', 'train_input_config', 'eval_config',
                          'eval_input_configs', 'eval_input_config'}
  assert configs['eval_input_config'] is configs['eval_input_configs'][0]
  assert configs['model'].faster_rcnn.feature_extractor.type == 'faster_rcnn_resnet50'
  assert config_util.get_number_of_classes(configs['model']) == 90
  assert configs['train_input_config'].load_instance_masks


# TF2 zoo configs whose augmentation this project does not implement: refused at validation
# (before the model is built), not when the training input is built.
_UNSUPPORTED_AUGMENTATION = ('faster_rcnn_resnet101_v1_1024x1024_coco17_tpu-8.config',
                             'faster_rcnn_resnet152_v1_800x1333_coco17_gpu-8.config')


def test_all_tfod_configs_validate_with_placeholder_paths():
  names = sorted(os.listdir(_TFOD))
  assert set(_UNSUPPORTED_AUGMENTATION) < set(names)
  for name in names:
    configs = _configs(os.path.join(_TFOD, name))
    if name in _UNSUPPORTED_AUGMENTATION:
      steps = configs['train_config'].data_augmentation_options
      index = [s.WhichOneof('preprocessing_step') for s in steps].index(
          'random_square_crop_by_scale')
      with pytest.raises(config_validation.ConfigError,
                         match=r'`train_config\.data_augmentation_options\[%d\]\.'
                         r'random_square_crop_by_scale`: .* is not supported' % index):
        config_validation.validate_pipeline_configs(configs)
      del steps[index]  # everything else of the file is valid
    config_validation.validate_pipeline_configs(configs)


def test_syntax_error_names_file_line_and_column(tmp_path):
  path = _write(tmp_path, 'model {\n  faster_rcnn {\n    num_classes: 3\n    }}\n}\n')
  with pytest.raises(config_util.ConfigParseError) as e:
    _configs(path)
  assert str(e.value).startswith(path + ':')
  assert ':5:' in str(e.value)  # line 4 closes both blocks; line 5's brace is the stray one


def test_unknown_field_is_named(tmp_path):
  path = _write(tmp_path, 'model {\n  faster_rcnn {\n    num_clases: 3\n  }\n}\n')
  with pytest.raises(config_util.ConfigParseError) as e:
    _configs(path)
  msg = str(e.value)
  assert path in msg and 'num_clases' in msg and '3:' in msg


def test_missing_file():
  with pytest.raises(FileNotFoundError, match='does_not_exist.config'):
    _configs('/nonexistent/does_not_exist.config')


def test_config_override_merges():
  configs = _configs(override="""
      train_config { batch_size: 4 optimizer { momentum_optimizer { learning_rate {
        constant_learning_rate { learning_rate: 0.01 } } } } }
      eval_config { metrics_set: "coco_mask_metrics" }
      model { faster_rcnn { num_classes: 5 } }""")
  assert configs['train_config'].batch_size == 4
  optimizer = configs['train_config'].optimizer.momentum_optimizer
  # The oneof switched: the manual step schedule of the file is gone.
  assert optimizer.learning_rate.WhichOneof('learning_rate') == 'constant_learning_rate'
  assert optimizer.momentum_optimizer_value == pytest.approx(0.9)  # kept from the file
  assert not configs['train_config'].optimizer.use_moving_average  # kept from the file
  # Repeated fields set by the override replace the file's list.
  assert list(configs['eval_config'].metrics_set) == ['coco_mask_metrics']
  assert configs['model'].faster_rcnn.num_classes == 5
  assert configs['model'].faster_rcnn.number_of_stages == 3  # untouched


def test_bad_override_names_config_override():
  with pytest.raises(config_util.ConfigParseError, match='config_override:1:.*no_such_field'):
    _configs(override='no_such_field: 1')


def test_merge_external_params():
  configs = _configs()
  config_util.merge_external_params_with_configs(configs, kwargs_dict={
      'train_steps': 123, 'sample_1_of_n_eval_examples': 4, 'eval_num_epochs': 1,
      'config_override': 'train_config { batch_size: 2 }', 'learning_rate': 0.003,
      'label_map_path': 'a/label_map.pbtxt', 'unused_none': None})
  assert configs['train_config'].num_steps == 123
  assert configs['train_config'].batch_size == 2
  assert configs['eval_input_config'].sample_1_of_n_examples == 4
  assert configs['eval_input_config'].num_epochs == 1
  lr = configs['train_config'].optimizer.momentum_optimizer.learning_rate
  lr = lr.manual_step_learning_rate
  assert lr.initial_learning_rate == pytest.approx(0.003)
  # The whole schedule is rescaled (0.0003 -> 0.003 is x10).
  assert lr.schedule[0].learning_rate == pytest.approx(0.0003)
  assert configs['train_input_config'].label_map_path == 'a/label_map.pbtxt'
  assert configs['eval_input_config'].label_map_path == 'a/label_map.pbtxt'
  configs = config_util.merge_external_params_with_configs(
      configs, kwargs_dict={'num_train_steps': 7})
  assert configs['train_config'].num_steps == 7
  with pytest.raises(ValueError, match='no_such_param'):
    config_util.merge_external_params_with_configs(configs, kwargs_dict={'no_such_param': 1})


def test_save_and_reload_is_lossless(tmp_path):
  configs = _configs()
  pipeline = config_util.create_pipeline_proto_from_configs(configs)
  path = config_util.save_pipeline_config(pipeline, str(tmp_path / 'out'))
  assert path == str(tmp_path / 'out' / 'pipeline.config')
  reloaded = config_util.create_pipeline_proto_from_configs(_configs(path))
  assert reloaded == pipeline


@pytest.mark.parametrize('override, field, why', [
    ('model { faster_rcnn { num_classes: 0 } }', 'faster_rcnn.num_classes', '>= 1'),
    ('model { faster_rcnn { first_stage_nms_iou_threshold: 1.5 } }',
     'first_stage_nms_iou_threshold', r'\(0, 1\]'),
    ('model { faster_rcnn { first_stage_nms_iou_threshold: 0.0 } }',
     'first_stage_nms_iou_threshold', r'\(0, 1\]'),
    ('model { faster_rcnn { second_stage_post_processing { batch_non_max_suppression {'
     ' iou_threshold: 0 } } } }', 'batch_non_max_suppression.iou_threshold', r'\(0, 1\]'),
    ('model { faster_rcnn { second_stage_box_predictor { mask_rcnn_box_predictor {'
     ' predict_instance_masks: false } } } }', 'predict_instance_masks',
     'predict_instance_masks: true'),
    ('model { faster_rcnn { second_stage_box_predictor { rfcn_box_predictor { } } } }',
     'second_stage_box_predictor', 'mask_rcnn_box_predictor'),
    ('train_input_reader { load_instance_masks: false }', 'train_input_reader.load_instance_masks',
     'load_instance_masks: true'),
    ('train_input_reader { tf_record_input_reader { input_path: "" } }',  # overrides append
     'train_input_reader.tf_record_input_reader.input_path', 'is empty'),
    ('eval_input_reader { tf_record_input_reader { input_path: "" } }',
     r'eval_input_reader\[0\].tf_record_input_reader.input_path', 'is empty'),
    ('model { faster_rcnn { number_of_stages: 4 } }', 'number_of_stages', '1 .* 2 .* 3'),
    ('train_config { batch_size: 0 }', 'train_config.batch_size', '>= 1'),
    ('model { faster_rcnn { context_config { max_num_context_features: 10 } } }',
     'model.faster_rcnn.context_config', 'Context R-CNN .* not built'),
    ('train_input_reader { drop_remainder: false }', 'train_input_reader.drop_remainder',
     'static size'),
    ('train_input_reader { sample_from_datasets_weights: 1 sample_from_datasets_weights: 2 }',
     'train_input_reader.sample_from_datasets_weights', 'has 2 value.*input_path has 1'),
    ('eval_input_reader { tf_record_input_reader { input_path: "e.record" } '
     'load_instance_masks: true sample_from_datasets_weights: -1 }',
     r'eval_input_reader\[0\].sample_from_datasets_weights', '>= 0'),
    ('train_config { merge_multiple_label_boxes: true }', 'train_config.merge_multiple_label_boxes',
     'not supported'),
    ('train_config { use_multiclass_scores: true }', 'train_config.use_multiclass_scores',
     'not supported'),
    ('eval_config { force_no_resize: true }', 'eval_config.force_no_resize', 'not supported'),
])
def test_validation_errors_name_the_field(override, field, why):
  configs = _configs(override=override)
  with pytest.raises(config_validation.ConfigError) as e:
    config_validation.validate_pipeline_configs(configs)
  assert isinstance(e.value, ValueError)
  assert e.match(field) and e.match(why)


def test_unsupported_meta_architectures(tmp_path):
  for arch in ('ssd', 'center_net'):
    path = _write(tmp_path, 'model { %s { num_classes: 3 } }' % arch, arch + '.config')
    with pytest.raises(config_validation.ConfigError,
                       match="meta-architecture '%s' is not supported by this project; "
                       "supported: faster_rcnn" % arch):
      config_validation.validate_pipeline_configs(_configs(path), parts=('model',))


def test_unparsable_center_net_config_says_unsupported(tmp_path):
  # A field no schema has: the parse fails, and the error says center_net is not built here.
  path = _write(tmp_path, 'model { center_net { no_such_field: 1 } }')
  with pytest.raises(config_util.ConfigParseError, match='center_net configs are not supported'):
    _configs(path)


def test_validate_parts():
  configs = _configs()
  configs['train_input_config'].tf_record_input_reader.ClearField('input_path')
  # Export / eval do not read the train input: validating only what they use passes.
  config_validation.validate_pipeline_configs(configs, parts=('model', 'eval'))
  with pytest.raises(config_validation.ConfigError):
    config_validation.validate_pipeline_configs(configs)
  with pytest.raises(ValueError, match='unknown parts'):
    config_validation.validate_pipeline_configs(configs, parts=('bogus',))


def test_eval_reader_may_keep_partial_batches_and_weights_may_mix_paths():
  configs = _configs(override=(
      'eval_input_reader { tf_record_input_reader { input_path: "e.record" } '
      'load_instance_masks: true mask_type: PNG_MASKS drop_remainder: false } '
      'train_input_reader { tf_record_input_reader { input_path: "a.record" '
      'input_path: "b.record" } sample_from_datasets_weights: 0.7 '
      'sample_from_datasets_weights: 0.3 }'))
  assert not configs['eval_input_configs'][0].drop_remainder
  config_validation.validate_pipeline_configs(configs)


def test_faster_rcnn_two_stage_does_not_need_masks():
  configs = _configs(_PETS_CONFIG)
  assert configs['model'].faster_rcnn.number_of_stages == 2
  assert not configs['train_input_config'].load_instance_masks
  config_validation.validate_pipeline_configs(configs)
