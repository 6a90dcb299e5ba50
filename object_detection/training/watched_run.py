"""Which step the training run watched by continuous evaluation ends at (see
`model_lib_v2.eval_continuously`): the evaluator may run with another config than the run."""
import os

import tensorflow as tf

from object_detection.training import checkpointing


class WatchedRun(object):
  """The final step of the training run that writes a model_dir, as that run says it.

  The run's own `training_state.json` (the step a finished run stopped at, early stopping
  included) wins, then the `num_steps` of its saved `pipeline.config` (which holds the run's
  --num_train_steps), then the evaluating command's own num_steps. Re-read at every check: the run
  may start after the evaluator, or be resumed with more steps.
  """

  def __init__(self, run_dir, own_num_steps):
    self.run_dir = run_dir
    self.own_num_steps = int(own_num_steps)
    self._said = None

  def _read(self):
    """(final step, why) ; final step <= 0 means none is known."""
    try:
      finished = checkpointing.load_state(self.run_dir).get(checkpointing.FINISHED_STEP_KEY)
    except ValueError:
      finished = None
    if finished is not None:
      return int(finished), 'the run in %s finished at step %d (%s)' % (
          self.run_dir, int(finished), checkpointing.STATE_FILE)
    path = os.path.join(self.run_dir, 'pipeline.config')
    if tf.io.gfile.exists(path):
      # pylint: disable=g-import-not-at-top
      from google.protobuf import text_format
      from object_detection.protos import pipeline_pb2
      # pylint: enable=g-import-not-at-top
      try:
        with tf.io.gfile.GFile(path) as f:
          run_config = text_format.Parse(f.read(), pipeline_pb2.TrainEvalPipelineConfig())
        steps = int(run_config.train_config.num_steps)
      except Exception:  # pylint: disable=broad-except  (being rewritten, or not ours)
        steps = 0
      if steps > 0:
        return steps, '%s has num_steps %d' % (path, steps)
    return self.own_num_steps, 'this command\'s config has num_steps %d' % self.own_num_steps

  def final_step(self):
    """The step after whose checkpoint evaluation stops (<= 0: unknown); says so once per value."""
    step, why = self._read()
    if step > 0 and (step, why) != self._said:
      extra = ''
      if step != self.own_num_steps:
        extra = ', not this command\'s num_steps %d' % self.own_num_steps
      print('Continuous evaluation stops after the checkpoint of step %d: %s%s.' % (step, why, extra),
            flush=True)
      self._said = (step, why)
    return step

  def finished(self):
    """Whether the run wrote its finished-run marker."""
    try:
      return checkpointing.FINISHED_STEP_KEY in checkpointing.load_state(self.run_dir)
    except ValueError:
      return False
