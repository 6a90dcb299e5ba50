"""Deterministic weights keyed by checkpoint key, for golden tests without committed checkpoints.

A golden fixture is written in the TF OD API's process (tools/tfod_golden/*.py) and checked in this
project's tests. Neither side can ship a ResNet's weights, so both sides fill every variable with
`value_for(key, shape)`: the same object-based checkpoint key (e.g.
`model/_feature_extractor_for_proposal_features/layer_with_weights-3/kernel`) gives the same
numbers in both processes. If our model's keys differ from the TF OD API's, the values differ and
the golden comparison fails, which is the point.

This file imports numpy only, so the reference-side scripts can load it by path without importing
this project (whose package is also called `object_detection`).
"""

import zlib

import numpy as np


def value_for(key, shape):
  """Returns float32 numpy values of `shape` for the variable with checkpoint key prefix `key`.

  The values are well-scaled for a forward pass through a deep network:
    - `moving_variance`: uniform in [0.5, 1.5]; `gamma`: uniform in [0.5, 1.0];
      `moving_mean`, `beta`: normal(0, 0.1); `bias`: normal(0, 0.01);
    - kernels (rank >= 2): He-normal, std sqrt(2 / fan_in) with fan_in = prod(shape[:-1]), scaled
      by 0.5 so deep residual stacks stay finite;
    - anything else: normal(0, 0.1).

  Args:
    key: str, the checkpoint key prefix without `/.ATTRIBUTES/VARIABLE_VALUE` (a trailing '/' is
      ignored).
    shape: sequence of ints.
  """
  key = key.rstrip('/')
  if key.endswith('.ATTRIBUTES/VARIABLE_VALUE'):
    key = key[:-len('/.ATTRIBUTES/VARIABLE_VALUE')]
  rng = np.random.default_rng(zlib.crc32(key.encode('utf-8')))
  shape = tuple(int(d) for d in shape)
  leaf = key.split('/')[-1]
  if leaf == 'moving_variance':
    values = rng.uniform(0.5, 1.5, shape)
  elif leaf == 'gamma':
    values = rng.uniform(0.5, 1.0, shape)
  elif leaf in ('moving_mean', 'beta'):
    values = rng.normal(0.0, 0.1, shape)
  elif leaf == 'bias':
    values = rng.normal(0.0, 0.01, shape)
  elif len(shape) >= 2:
    fan_in = int(np.prod(shape[:-1]))
    values = rng.normal(0.0, 0.5 * np.sqrt(2.0 / max(fan_in, 1)), shape)
  else:
    values = rng.normal(0.0, 0.1, shape)
  return values.astype(np.float32)


def assign_all(root_objects, variable_keys_fn):
  """Assigns `value_for(key, var.shape)` to every variable reachable from `root_objects`.

  Args:
    root_objects: dict name -> trackable, as for `tf.train.Checkpoint(**root_objects)`.
    variable_keys_fn: callable(root_objects) -> ordered dict {key prefix: tf.Variable}, the
      checkpoint key of each variable (each side passes its own implementation of TF's object-graph
      key naming; this project's is `object_detection.utils.checkpoint_utils.variable_keys`).

  Returns:
    list of the key prefixes assigned, in order.
  """
  assigned = []
  for key, var in variable_keys_fn(root_objects).items():
    var.assign(value_for(key, var.shape))
    assigned.append(key.rstrip('/'))
  return assigned
