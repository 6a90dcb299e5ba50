"""Builds the record decoder from an `InputReader` config (TF OD API decoder_builder)."""

from object_detection.data_decoders import tf_example_decoder
from object_detection.utils import config_validation


def build(input_reader_config):
  """Returns a `TfExampleDecoder` for `input_reader_config`.

  Honoured fields: load_instance_masks, mask_type (PNG_MASKS | NUMERICAL_MASKS), label_map_path,
  use_display_name, skip_bad_examples (extension). Unsupported TF OD API options (keypoints,
  additional channels, multiclass scores, context features, dense pose, track ids) are passed on
  so that the decoder names them when they are set.

  Raises:
    config_validation.ConfigError: the input_reader has no tf_record_input_reader, or an
      unsupported option is set.
    label_map_util.LabelMapError (a ConfigError): the label map is missing or invalid.
  """
  which = input_reader_config.WhichOneof('input_reader')
  if which != 'tf_record_input_reader':
    raise config_validation.ConfigError(
        'input_reader: only tf_record_input_reader is supported, got %r; set '
        '`tf_record_input_reader { input_path: "..." }`.' % which)
  get = lambda name, default: getattr(input_reader_config, name, default)
  return tf_example_decoder.TfExampleDecoder(
      load_instance_masks=get('load_instance_masks', False),
      instance_mask_type=get('mask_type', tf_example_decoder.NUMERICAL_MASKS),
      label_map_proto_file=get('label_map_path', '') or None,
      use_display_name=get('use_display_name', False),
      num_keypoints=get('num_keypoints', 0),
      num_additional_channels=get('num_additional_channels', 0),
      load_multiclass_scores=get('load_multiclass_scores', False),
      load_context_features=get('load_context_features', False),
      load_dense_pose=get('load_dense_pose', False),
      load_track_id=get('load_track_id', False),
      skip_bad_examples=get('skip_bad_examples', False))
