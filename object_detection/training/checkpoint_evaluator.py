"""Evaluates checkpoints as an export would see them: the one evaluator of in-training and
continuous evaluation.

The inference-mode model and the eval dataset are built at the first evaluation (a training run
that never evaluates builds neither); each checkpoint is restored with its EMA weights when
`use_moving_average` (`checkpoint_utils.restore_for_inference`) and scored by
`eval_util.evaluate` (which hands semantic segmentation models to `semantic_eval.evaluate`).
Metrics (`metric_lines`), the model's complexity and skipped-record counts are printed once.
"""
import os
import time

import tensorflow as tf

from object_detection.builders import dataset_builder
from object_detection.data_decoders import bad_examples
from object_detection.utils import checkpoint_utils
from object_detection.utils import model_stats


# Per-class semantic segmentation IoU / Dice are printed for at most this many classes
# (background included); with more, only the means (all of them are in the JSON and TensorBoard).
MAX_CLASSES_PRINTED = 10
_SEMANTIC = 'SemanticSegmentation/'
_SEMANTIC_MEANS = ('mIoU', 'mDice', 'pixel_accuracy')


def metric_lines(metrics, json_path=None):
  """The lines printed after an evaluation (two leading spaces each).

  Detection: every 'Detection*' key (COCO box / mask AP and AR), then 'Loss/total_loss'. Semantic
  segmentation: 'SemanticSegmentation/mIoU', '/mDice', '/pixel_accuracy', then per class
  'IoU / Dice of <name>: x / y' when there are at most MAX_CLASSES_PRINTED classes (else one line
  saying where they are: `json_path`).
  """
  lines = []
  for key in sorted(metrics):
    if key.startswith('Detection') or key.startswith('Loss/total'):
      lines.append('  %s: %.4f' % (key, metrics[key]))
  for name in _SEMANTIC_MEANS:
    if _SEMANTIC + name in metrics:
      lines.append('  %s: %.4f' % (_SEMANTIC + name, metrics[_SEMANTIC + name]))
  iou_prefix, dice_prefix = _SEMANTIC + 'IoU/', _SEMANTIC + 'Dice/'
  # Label-map order is kept (the metrics dict lists classes by id).
  classes = [key[len(iou_prefix):] for key in metrics if key.startswith(iou_prefix)]
  if classes and len(classes) <= MAX_CLASSES_PRINTED:
    for name in classes:
      lines.append('  IoU / Dice of %s: %.4f / %.4f' % (
          name, metrics[iou_prefix + name], metrics.get(dice_prefix + name, float('nan'))))
  elif classes:
    lines.append('  (per-class IoU / Dice of the %d classes: %s)' % (
        len(classes), json_path or 'the metrics JSON and TensorBoard'))
  return lines


class CheckpointEvaluator(object):
  """Evaluates checkpoint paths of one run on its eval (or train) input.

  Args:
    configs: the validated configs dict (`model_lib_v2.load_configs`).
    model_dir: output folder; metrics go to `model_dir/eval` (`model_dir/eval_on_train/eval`
      with eval_on_train_data).
    eval_on_train_data: evaluate on train_input_reader instead of eval_input_reader.
    eval_index: which eval_input_reader.
    model_fn / eval_input_fn: optional replacements for model_builder.build / inputs.eval_input.
    jit_compile: XLA-compile the evaluation function (`eval_util.evaluate(jit_compile=...)`).
  """

  def __init__(self, configs, model_dir, eval_on_train_data=False, eval_index=0,
               model_fn=None, eval_input_fn=None, jit_compile=False):
    self.jit_compile = jit_compile
    self.model_fn = model_fn
    self.eval_input_fn = eval_input_fn
    self.configs = configs
    self.model_dir = model_dir
    self.eval_on_train_data = eval_on_train_data
    self.eval_index = eval_index
    self.model = None
    self.dataset = None
    self._complexity_printed = False

  def _input_config(self):
    configs = self.configs
    if not self.eval_on_train_data:
      return configs['eval_input_configs'][self.eval_index]
    input_config = type(configs['train_input_config'])()
    input_config.CopyFrom(configs['train_input_config'])
    n = configs.get('_sample_1_of_n_eval_on_train_examples')
    if n:
      input_config.sample_1_of_n_examples = n
    return input_config

  def _build(self):
    # pylint: disable=g-import-not-at-top
    if self.eval_input_fn is None:
      from object_detection import inputs
    if self.model_fn is None:
      from object_detection.builders import model_builder
    # pylint: enable=g-import-not-at-top
    configs = self.configs
    self.model = (self.model_fn or model_builder.build)(configs['model'], is_training=False)
    self.input_config = self._input_config()
    self.reader_name = 'train_input_reader' if self.eval_on_train_data else 'eval_input_reader'
    self.dataset = (self.eval_input_fn or inputs.eval_input)(
        configs['eval_config'], self.input_config, configs['model'], model=self.model)
    self.output_dir = (os.path.join(self.model_dir, 'eval_on_train') if self.eval_on_train_data
                       else self.model_dir)
    self.writer = tf.summary.create_file_writer(os.path.join(self.output_dir, 'eval'))

  def evaluate(self, checkpoint_path, step):
    """Restores `checkpoint_path` (EMA if configured) and returns the metrics dict.

    Returns None (with a message) for a checkpoint holding no model variables: the TF OD API's
    step-0 checkpoint of a run without fine_tune_checkpoint, which the TF OD API would score as an
    untrained model.

    Raises:
      dataset_builder.CorruptRecordError: an eval TFRecord is corrupt (names file and record).
    """
    # pylint: disable=g-import-not-at-top
    from object_detection import eval_util
    # pylint: enable=g-import-not-at-top
    if not checkpoint_utils.holds_model_variables(checkpoint_path):
      print('Skipping %s (step %d): it holds no model variables (a TF OD API step-0 checkpoint).'
            % (checkpoint_path, step))
      return None
    if self.model is None:
      self._build()
    checkpoint_utils.restore_for_inference(
        self.model, checkpoint_path,
        checkpoint_utils.uses_moving_average(self.configs['train_config']))
    start = time.time()
    try:
      metrics, stats = eval_util.evaluate(
          self.model, self.configs, self.dataset, step, summary_writer=self.writer,
          model_dir=self.output_dir, return_model_stats=True, jit_compile=self.jit_compile)
    except tf.errors.DataLossError as e:
      raise dataset_builder.explain_data_loss_error(self.input_config, e,
                                                    self.reader_name) from None
    print('Evaluation of %s (step %d) took %.1f s:' % (checkpoint_path, step, time.time() - start))
    for line in metric_lines(metrics, os.path.join(self.output_dir, 'eval',
                                                   'metrics_%d.json' % step)):
      print(line)
    if stats and not self._complexity_printed:
      # The same model every time: its size is said once per run.
      for line in model_stats.complexity_lines(stats):
        print('  ' + line)
      self._complexity_printed = True
    for line in bad_examples.summary_lines():
      print('  ' + line)
    return metrics
