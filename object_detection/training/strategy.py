"""Chooses the tf.distribute strategy as model_main_tf2.py does."""
import tensorflow as tf


def get_strategy(use_tpu=False, tpu_name=None, num_workers=1):
  """TPUStrategy with `use_tpu`, MultiWorkerMirroredStrategy with num_workers > 1 (cluster from
  TF_CONFIG), else MirroredStrategy over all local devices (GPUs, or the CPU(s))."""
  if use_tpu:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_name)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  if num_workers and num_workers > 1:
    return tf.distribute.MultiWorkerMirroredStrategy()
  gpus = tf.config.list_logical_devices('GPU')
  devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices('CPU')]
  return tf.distribute.MirroredStrategy(devices=devices)
