"""The fine-tuning recipe run after each in-training evaluation: ReduceLROnPlateau, early stopping
and the best checkpoint, with their state kept in model_dir so that a resumed run continues them."""
from object_detection.training import checkpointing
from object_detection.training import early_stopping as early_stopping_lib
from object_detection.training import lr_plateau


class Recipe(object):
  """ReduceLROnPlateau + early stopping + best checkpoint, as configured in train_config.

  Args:
    train_config: TrainConfig proto.
    model_dir: the run's folder (state in `checkpointing.STATE_FILE`, best checkpoint in best/).
    plateau_variable: the learning-rate factor variable of a reduce_lr_on_plateau schedule, or
      None.
  """

  def __init__(self, train_config, model_dir, plateau_variable):
    self.model_dir = model_dir
    self.plateau = None
    if plateau_variable is not None:
      lr_config = getattr(train_config.optimizer, train_config.optimizer.WhichOneof('optimizer'))
      self.plateau = lr_plateau.ReduceLROnPlateau(
          lr_config.learning_rate.reduce_lr_on_plateau_learning_rate, plateau_variable)
    self.early_stopping = None
    if train_config.HasField('early_stopping'):
      self.early_stopping = early_stopping_lib.EarlyStopping(train_config.early_stopping)
    self.best = None
    if train_config.best_checkpoint_metric:
      self.best = early_stopping_lib.BestCheckpointKeeper(
          model_dir, train_config.best_checkpoint_metric,
          train_config.best_checkpoint_metric_higher_is_better)
    state = checkpointing.load_state(model_dir)
    for name, part in self._parts().items():
      if name in state:
        part.load_state_dict(state[name])

  def _parts(self):
    parts = {'lr_plateau': self.plateau, 'early_stopping': self.early_stopping,
             'best_checkpoint': self.best}
    return {k: v for k, v in parts.items() if v is not None}

  @property
  def active(self):
    return bool(self._parts())

  def update(self, metrics, checkpoint_path, step):
    """Feeds one evaluation's metrics to each part; returns True when early stopping says stop."""
    stop = False
    if self.plateau is not None:
      self.plateau.update(metrics, step)
    if self.best is not None:
      self.best.update(metrics, checkpoint_path, step)
    if self.early_stopping is not None and self.early_stopping.update(metrics, step):
      print(self.early_stopping.message())
      stop = True
    state = {name: part.state_dict() for name, part in self._parts().items()}
    state['last_eval_step'] = int(step)
    checkpointing.save_state(self.model_dir, state)
    return stop
