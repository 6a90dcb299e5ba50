"""Reads, overrides and writes TF OD API pipeline configs (TrainEvalPipelineConfig).

Same function names and dict keys as the TF OD API's `object_detection/utils/config_util.py`:
a pipeline config is handled as a dict with keys `model`, `train_config`,
`train_input_config`, `eval_config`, `eval_input_configs` (list of InputReader) and
`eval_input_config` (the first of them, or None), plus `graph_rewriter_config` when present.

Validation (field values that parse but cannot work) lives in
`object_detection/utils/config_validation.py`, not here.
"""
import os
import re

import tensorflow as tf
from google.protobuf import text_format

from object_detection.protos import pipeline_pb2
from object_detection.utils import config_validation

# Meta-architectures declared in model.proto but not built by this project.
_UNSUPPORTED_META_ARCHS = ('ssd', 'center_net', 'experimental_model')


class ConfigParseError(text_format.ParseError, config_validation.ConfigError):
  """A pipeline config (or override) is not valid text-format protobuf.

  Both a `text_format.ParseError` (what callers of the TF OD API catch) and a
  `config_validation.ConfigError` (what this project's entry points catch). The message starts
  with the file path followed by protobuf's `line:column : reason`.
  """


class ConfigFileNotFoundError(config_validation.ConfigError, FileNotFoundError):
  """The pipeline config file does not exist (also a FileNotFoundError)."""


def _parse_text_proto(text, message, source):
  """Merges text-format `text` into `message`; errors name `source`, line and column."""
  try:
    text_format.Merge(text, message)
  except text_format.ParseError as e:
    hint = ''
    for arch in _UNSUPPORTED_META_ARCHS:
      if re.search(r'\b%s\s*:?\s*{' % arch, text):
        hint = ('\nNote: this project only builds the faster_rcnn meta-architecture '
                '(number_of_stages 1-3); %s configs are not supported.' % arch)
        break
    raise ConfigParseError('%s:%s%s' % (source, e, hint)) from e
  return message


def _read_text(path):
  if not tf.io.gfile.exists(path):
    raise ConfigFileNotFoundError('Pipeline config file not found: %s (check '
                                  '--pipeline_config_path; relative paths start at %s).'
                                  % (path, os.getcwd()))
  with tf.io.gfile.GFile(path, 'r') as f:
    return f.read()


def get_configs_from_pipeline_file(pipeline_config_path, config_override=None):
  """Reads a pipeline config file into a dict of config protos.

  Args:
    pipeline_config_path: path to a text-format `TrainEvalPipelineConfig` file.
    config_override: optional text-format `TrainEvalPipelineConfig` merged on top of the
      file (see `merge_text_proto_override` for the merge semantics).

  Returns:
    dict with keys `model`, `train_config`, `train_input_config`, `eval_config`,
    `eval_input_configs`, `eval_input_config` (and `graph_rewriter_config` when set).

  Raises:
    ConfigFileNotFoundError (a FileNotFoundError and a ConfigError): the file does not exist.
    ConfigParseError: a syntax error or unknown field; the message is
      `<path>:<line>:<column> : <reason>` (unknown fields are named in the reason).
  """
  pipeline_config = pipeline_pb2.TrainEvalPipelineConfig()
  _parse_text_proto(_read_text(pipeline_config_path), pipeline_config, pipeline_config_path)
  if config_override:
    merge_text_proto_override(pipeline_config, config_override)
  return create_configs_from_pipeline_proto(pipeline_config)


def merge_text_proto_override(pipeline_config, config_override):
  """Merges a text-format override into `pipeline_config` in place.

  Semantics are protobuf `MergeFrom` (as in the TF OD API): scalar fields set in the override
  replace the file's values, sub-messages are merged recursively, and repeated fields set in
  the override are APPENDED by MergeFrom -- except that, to make overrides predictable,
  any repeated field the override sets (e.g. `eval_input_reader`, `metrics_set`,
  `data_augmentation_options`, `schedule`) REPLACES the file's list. Setting one member of a
  oneof (e.g. a different learning rate) clears the other members.

  Args:
    pipeline_config: `TrainEvalPipelineConfig` to modify.
    config_override: text-format `TrainEvalPipelineConfig`.

  Returns:
    `pipeline_config` (modified in place).

  Raises:
    ConfigParseError: the override does not parse (message names `config_override`).
  """
  override = pipeline_pb2.TrainEvalPipelineConfig()
  _parse_text_proto(config_override, override, 'config_override')
  _merge_replacing_repeated(pipeline_config, override)
  return pipeline_config


def _is_repeated(field):
  if hasattr(field, 'is_repeated'):
    return field.is_repeated
  return field.label == field.LABEL_REPEATED


def _merge_replacing_repeated(dst, src):
  """`dst.MergeFrom(src)`, except that repeated fields present in `src` replace `dst`'s."""
  for field, value in src.ListFields():
    if _is_repeated(field):
      dst.ClearField(field.name)
      getattr(dst, field.name).MergeFrom(value)
    elif field.message_type is not None:
      # Touching a oneof member selects it, which clears its siblings.
      getattr(dst, field.name).SetInParent()
      _merge_replacing_repeated(getattr(dst, field.name), value)
    else:
      setattr(dst, field.name, value)


def create_configs_from_pipeline_proto(pipeline_config):
  """Splits a `TrainEvalPipelineConfig` into the configs dict (see module docstring)."""
  configs = {
      'model': pipeline_config.model,
      'train_config': pipeline_config.train_config,
      'train_input_config': pipeline_config.train_input_reader,
      'eval_config': pipeline_config.eval_config,
      'eval_input_configs': pipeline_config.eval_input_reader,
  }
  # Like the TF OD API: `eval_input_config` is the first eval input (None when there is none).
  configs['eval_input_config'] = (configs['eval_input_configs'][0]
                                  if configs['eval_input_configs'] else None)
  if pipeline_config.HasField('graph_rewriter'):
    configs['graph_rewriter_config'] = pipeline_config.graph_rewriter
  return configs


def get_graph_rewriter_config_from_file(graph_rewriter_config_file):
  """Parses a text-format GraphRewriter config file."""
  from object_detection.protos import graph_rewriter_pb2  # pylint: disable=g-import-not-at-top
  config = graph_rewriter_pb2.GraphRewriter()
  return _parse_text_proto(_read_text(graph_rewriter_config_file), config,
                           graph_rewriter_config_file)


def create_pipeline_proto_from_configs(configs):
  """Builds a `TrainEvalPipelineConfig` from a configs dict (inverse of the split).

  Args:
    configs: dict as returned by `get_configs_from_pipeline_file`; keys starting with `_`
      are ignored.

  Returns:
    A new `TrainEvalPipelineConfig`.
  """
  pipeline_config = pipeline_pb2.TrainEvalPipelineConfig()
  pipeline_config.model.CopyFrom(configs['model'])
  pipeline_config.train_config.CopyFrom(configs['train_config'])
  pipeline_config.train_input_reader.CopyFrom(configs['train_input_config'])
  pipeline_config.eval_config.CopyFrom(configs['eval_config'])
  pipeline_config.eval_input_reader.extend(configs.get('eval_input_configs') or [])
  if configs.get('graph_rewriter_config') is not None:
    pipeline_config.graph_rewriter.CopyFrom(configs['graph_rewriter_config'])
  return pipeline_config


def config_to_text(pipeline_config):
  """Serializes a config proto to text format (stable: the same proto gives the same text)."""
  return text_format.MessageToString(pipeline_config)


def save_pipeline_config(pipeline_config, directory):
  """Writes `directory/pipeline.config` (text format); creates `directory` if needed.

  Returns:
    The path written.
  """
  if not tf.io.gfile.exists(directory):
    tf.io.gfile.makedirs(directory)
  path = os.path.join(directory, 'pipeline.config')
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(config_to_text(pipeline_config))
  return path


def get_number_of_classes(model_config):
  """Returns `num_classes` of a DetectionModel config (without background).

  Raises:
    ValueError: the model config selects no meta-architecture.
  """
  meta_architecture = model_config.WhichOneof('model')
  if meta_architecture is None:
    raise ValueError('model config selects no meta-architecture (expected `faster_rcnn { ... }`).')
  sub = getattr(model_config, meta_architecture)
  if not hasattr(sub, 'num_classes'):
    raise ValueError("Expected the model to be one of 'faster_rcnn', 'ssd' or 'center_net'; "
                     "got %r." % meta_architecture)
  return sub.num_classes


def get_image_resizer_config(model_config):
  """Returns the ImageResizer config of a DetectionModel config."""
  meta_architecture = model_config.WhichOneof('model')
  sub = getattr(model_config, meta_architecture)
  if hasattr(sub, 'image_resizer'):
    return sub.image_resizer
  raise ValueError('Unknown model type: %s' % meta_architecture)


def get_learning_rate_type(optimizer_config):
  """Returns the learning-rate oneof name of an Optimizer config (e.g. 'cosine_decay_learning_rate')."""
  optimizer = getattr(optimizer_config, optimizer_config.WhichOneof('optimizer'))
  return optimizer.learning_rate.WhichOneof('learning_rate')


def get_optimizer_type(train_config):
  return train_config.optimizer.WhichOneof('optimizer')


def _update_initial_learning_rate(configs, learning_rate):
  """Scales every learning-rate value of the schedule so the initial rate is `learning_rate`."""
  optimizer_type = get_optimizer_type(configs['train_config'])
  optimizer = getattr(configs['train_config'].optimizer, optimizer_type)
  lr_type = optimizer.learning_rate.WhichOneof('learning_rate')
  lr = getattr(optimizer.learning_rate, lr_type)
  if lr_type == 'constant_learning_rate':
    lr.learning_rate = learning_rate
  elif lr_type in ('exponential_decay_learning_rate', 'reduce_lr_on_plateau_learning_rate'):
    lr.initial_learning_rate = learning_rate
  elif lr_type == 'manual_step_learning_rate':
    scale = learning_rate / lr.initial_learning_rate if lr.initial_learning_rate else 1.0
    lr.initial_learning_rate = learning_rate
    for schedule in lr.schedule:
      schedule.learning_rate *= scale
  elif lr_type == 'cosine_decay_learning_rate':
    scale = learning_rate / lr.learning_rate_base if lr.learning_rate_base else 1.0
    lr.learning_rate_base = learning_rate
    lr.warmup_learning_rate *= scale
  else:
    raise TypeError('Learning rate %s is not supported for updates.' % lr_type)


def _set_on_all(messages, name, value):
  for m in messages:
    setattr(m, name, value)


def merge_external_params_with_configs(configs, hparams=None, kwargs_dict=None):
  """Updates `configs` with command-line style overrides, like the TF OD API.

  Supported keys of `kwargs_dict` (and of `hparams.values()` if `hparams` is given; None
  values are ignored):
    config_override: text-format `TrainEvalPipelineConfig` merged into the configs
      (`merge_text_proto_override` semantics).
    train_steps / num_train_steps: `train_config.num_steps`.
    batch_size: `train_config.batch_size`.
    learning_rate: initial learning rate (the whole schedule is rescaled).
    momentum_optimizer_value: momentum of a momentum / rms_prop optimizer.
    use_moving_averages: `eval_config.use_moving_averages`.
    sample_1_of_n_eval_examples: `sample_1_of_n_examples` of every eval input reader.
    eval_num_epochs: `num_epochs` of every eval input reader.
    eval_with_moving_averages: alias of use_moving_averages.
    label_map_path: `label_map_path` of the train and every eval input reader.
    train_input_path / eval_input_path: `tf_record_input_reader.input_path` (str or list).
    mask_type: `mask_type` of the train and eval input readers ('PNG_MASKS'/'NUMERICAL_MASKS').
    load_instance_masks: bool, train and eval input readers.
    num_classes: `num_classes` of the model.
    retain_original_images_in_eval: `eval_config.retain_original_images`.
    max_number_of_boxes: `max_number_of_boxes` of all input readers.

  Args:
    configs: configs dict (modified in place and returned).
    hparams: optional object with a `.values()` dict (e.g. tf HParams).
    kwargs_dict: dict of overrides.

  Returns:
    The updated configs dict.

  Raises:
    config_validation.ConfigError (a ValueError): an unknown key (the key is named) or a bad value.
    ConfigParseError: `config_override` does not parse.
  """
  params = {}
  if hparams is not None:
    params.update(hparams.values())
  if kwargs_dict:
    params.update(kwargs_dict)
  params = {k: v for k, v in params.items() if v is not None}

  if 'config_override' in params:
    pipeline = create_pipeline_proto_from_configs(configs)
    merge_text_proto_override(pipeline, params.pop('config_override'))
    new = create_configs_from_pipeline_proto(pipeline)
    extra = {k: v for k, v in configs.items() if k not in new}
    configs.clear()
    configs.update(new)
    configs.update(extra)

  eval_inputs = list(configs.get('eval_input_configs') or [])
  all_inputs = [configs['train_input_config']] + eval_inputs
  for key, value in params.items():
    if key in ('train_steps', 'num_train_steps'):
      configs['train_config'].num_steps = int(value)
    elif key == 'batch_size':
      configs['train_config'].batch_size = int(value)
    elif key == 'learning_rate':
      _update_initial_learning_rate(configs, float(value))
    elif key == 'momentum_optimizer_value':
      optimizer_type = get_optimizer_type(configs['train_config'])
      optimizer = getattr(configs['train_config'].optimizer, optimizer_type)
      if not hasattr(optimizer, 'momentum_optimizer_value'):
        raise config_validation.ConfigError(
            'momentum_optimizer_value override needs a momentum or rms_prop optimizer; '
            'train_config.optimizer is %s.' % optimizer_type)
      optimizer.momentum_optimizer_value = min(max(0.0, float(value)), 1.0)
    elif key in ('use_moving_averages', 'eval_with_moving_averages'):
      configs['eval_config'].use_moving_averages = bool(value)
    elif key == 'sample_1_of_n_eval_examples':
      _set_on_all(eval_inputs, 'sample_1_of_n_examples', int(value))
    elif key == 'eval_num_epochs':
      _set_on_all(eval_inputs, 'num_epochs', int(value))
    elif key == 'label_map_path':
      _set_on_all(all_inputs, 'label_map_path', str(value))
    elif key in ('train_input_path', 'eval_input_path'):
      targets = [configs['train_input_config']] if key == 'train_input_path' else eval_inputs
      paths = [value] if isinstance(value, str) else list(value)
      for reader in targets:
        del reader.tf_record_input_reader.input_path[:]
        reader.tf_record_input_reader.input_path.extend(paths)
    elif key == 'mask_type':
      from object_detection.protos import input_reader_pb2  # pylint: disable=g-import-not-at-top
      mask_type = (input_reader_pb2.InstanceMaskType.Value(value) if isinstance(value, str)
                   else int(value))
      _set_on_all(all_inputs, 'mask_type', mask_type)
    elif key == 'load_instance_masks':
      _set_on_all(all_inputs, 'load_instance_masks', bool(value))
    elif key == 'max_number_of_boxes':
      _set_on_all(all_inputs, 'max_number_of_boxes', int(value))
    elif key == 'num_classes':
      model = configs['model']
      getattr(model, model.WhichOneof('model')).num_classes = int(value)
    elif key == 'retain_original_images_in_eval':
      configs['eval_config'].retain_original_images = bool(value)
    else:
      raise config_validation.ConfigError(
          'Unknown override %r in merge_external_params_with_configs; supported: '
          'config_override, train_steps, num_train_steps, batch_size, learning_rate, '
          'momentum_optimizer_value, use_moving_averages, '
          'sample_1_of_n_eval_examples, eval_num_epochs, label_map_path, '
          'train_input_path, eval_input_path, mask_type, load_instance_masks, '
          'max_number_of_boxes, num_classes, retain_original_images_in_eval.'
          % key)
  if configs.get('eval_input_configs'):
    configs['eval_input_config'] = configs['eval_input_configs'][0]
  return configs
