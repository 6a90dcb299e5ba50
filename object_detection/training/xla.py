"""Checks that a config selects the TF OD API's static-shape path before anything is XLA-compiled.

XLA (and so a TPU) compiles only ops whose output shapes are known when the step is traced. The
TF OD API's dynamic default path has data-dependent shapes (anchor pruning, `tf.where` samplers,
boolean masks, NMS returning a variable number of boxes, `CropAndResize`, which has no XLA kernel);
its static-shape fields replace each of them. `--jit_compile` (training, evaluation) and
`exporter_main.py --jit_compile` call these checks first, so a config that cannot compile fails in
one line naming every field to set, instead of a TensorFlow error after the model is built.
"""
from object_detection.utils import config_validation


class JitCompileError(config_validation.ConfigError):
  """--jit_compile with a config whose model is not on the static-shape path."""


def check_export_flags(jit_compile, output_format):
  """exporter_main.py: --jit_compile applies to the SavedModel only.

  Raises:
    config_validation.UsageError: --jit_compile with --output_format=openvino.
  """
  if jit_compile and output_format == 'openvino':
    raise config_validation.UsageError(
        "--jit_compile applies to the SavedModel's TensorFlow function, not to the OpenVINO IR "
        '(OpenVINO compiles the graph itself): remove one of --jit_compile and '
        '--output_format=openvino.')


def _static_resizer_problem(meta_config, field='model.faster_rcnn'):
  resizer = meta_config.image_resizer
  kind = resizer.WhichOneof('image_resizer_oneof')
  if kind == 'fixed_shape_resizer':
    return None
  if kind == 'keep_aspect_ratio_resizer' and resizer.keep_aspect_ratio_resizer.pad_to_max_dimension:
    return None
  return ('%s.image_resizer: a fixed_shape_resizer or a keep_aspect_ratio_resizer '
          'with pad_to_max_dimension: true (every batch the same size)' % field)


def _model_problems(faster_rcnn):
  problems = []
  if not faster_rcnn.use_static_shapes:
    problems.append('model.faster_rcnn.use_static_shapes: true')
  if not faster_rcnn.use_matmul_crop_and_resize:
    problems.append('model.faster_rcnn.use_matmul_crop_and_resize: true (CropAndResize has no '
                    'XLA kernel)')
  if faster_rcnn.use_combined_nms_in_first_stage:
    problems.append('model.faster_rcnn.use_combined_nms_in_first_stage: false')
  resizer = _static_resizer_problem(faster_rcnn)
  if resizer:
    problems.append(resizer)
  return problems


def training_problems(configs):
  """Config fields the XLA-compiled train step needs that `configs` lacks (list of str)."""
  faster_rcnn = configs['model'].faster_rcnn
  problems = _model_problems(faster_rcnn)
  if not faster_rcnn.use_static_balanced_label_sampler:
    problems.append('model.faster_rcnn.use_static_balanced_label_sampler: true')
  if not faster_rcnn.clip_anchors_to_image:
    problems.append('model.faster_rcnn.clip_anchors_to_image: true (anchors pruned at the image '
                    'border have a data-dependent count)')
  if faster_rcnn.HasField('hard_example_miner'):
    problems.append('no model.faster_rcnn.hard_example_miner (it selects a data-dependent number '
                    'of boxes)')
  if configs['train_config'].unpad_groundtruth_tensors:
    problems.append('train_config.unpad_groundtruth_tensors: false')
  return problems


def inference_problems(configs):
  """Config fields an XLA-compiled evaluation or serving function needs (list of str)."""
  faster_rcnn = configs['model'].faster_rcnn
  problems = _model_problems(faster_rcnn)
  if not faster_rcnn.use_static_shapes_for_eval:
    problems.append('model.faster_rcnn.use_static_shapes_for_eval: true')
  nms = faster_rcnn.second_stage_post_processing.batch_non_max_suppression
  if faster_rcnn.number_of_stages > 1 and not nms.use_static_shapes:
    problems.append('model.faster_rcnn.second_stage_post_processing.batch_non_max_suppression.'
                    'use_static_shapes: true')
  if faster_rcnn.number_of_stages > 1 and nms.use_combined_nms:
    problems.append('model.faster_rcnn.second_stage_post_processing.batch_non_max_suppression.'
                    'use_combined_nms: false')
  return problems


def check(configs, training=False, inference=False, flag='--jit_compile'):
  """Raises JitCompileError (one line, every missing field) unless the config can be compiled.

  Args:
    configs: dict of `config_util.get_configs_from_pipeline_file`.
    training: check the train step's needs. inference: check evaluation / serving's needs.
    flag: the flag named in the message.

  Raises:
    JitCompileError: the model is neither a faster_rcnn nor a semantic_segmentation model, or a
      needed field is missing.
  """
  kind = configs['model'].WhichOneof('model')
  if kind == 'semantic_segmentation':
    # Convolutions, resizes and a per-pixel loss: static shapes once every batch has one size.
    problem = _static_resizer_problem(configs['model'].semantic_segmentation,
                                      'model.semantic_segmentation')
    if problem:
      raise JitCompileError('%s needs every batch the same size; set in the config: %s. See '
                            'docs/accelerators.md.' % (flag, problem))
    return
  if kind != 'faster_rcnn':
    raise JitCompileError('%s: only faster_rcnn (Mask R-CNN) and semantic_segmentation models can '
                          'be XLA-compiled.' % flag)
  problems = []
  if training:
    problems += training_problems(configs)
  if inference:
    problems += [p for p in inference_problems(configs) if p not in problems]
  if problems:
    raise JitCompileError(
        '%s needs the static-shape path (XLA compiles only static shapes); set in the config: %s. '
        'See docs/accelerators.md.' % (flag, '; '.join(problems)))
