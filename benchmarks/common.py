"""Shared helpers for the benchmark scripts: sample data, records, configs, timing, output.

Standard library and numpy only (TensorFlow imported inside functions): benchmarks/tfod_peer.py
imports this module inside the TF OD API's own process, where this project's package must not
be imported.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128_DIR = os.path.join(REPO_ROOT, "samples", "data", "coco128_seg")
CONFIG_DIR = os.path.join(REPO_ROOT, "samples", "configs")
# The same-network config measured beside the TF OD API (both sides read this very file).
C4_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs",
                         "mask_rcnn_resnet50_c4_512.config")
# The real image every inference benchmark serves (resized to size x size).
IMAGE = os.path.join(COCO128_DIR, "images", "000000000009.jpg")


def convert_coco128(output_dir, mask_type="png", num_workers=1, splits=("train", "val")):
  """Runs dataset_tools/create_coco_tf_record.py on coco128_seg; returns (seconds, num_images)."""
  args = [sys.executable, os.path.join(REPO_ROOT, "dataset_tools", "create_coco_tf_record.py"),
          "--output_dir=" + output_dir, "--include_masks", "--mask_type=" + mask_type,
          "--num_workers=%d" % num_workers, "--noprogress"]
  num_images = 0
  for split in splits:
    args += ["--%s_image_dir=%s" % (split, os.path.join(COCO128_DIR, "images")),
             "--%s_annotations_file=%s" % (
                 split, os.path.join(COCO128_DIR, "annotations", "instances_%s.json" % split))]
    num_images += {"train": 103, "val": 25}[split]
  start = time.perf_counter()
  subprocess.run(args, check=True, stdout=subprocess.DEVNULL, cwd=REPO_ROOT)
  return time.perf_counter() - start, num_images


def records_dir():
  """A temporary folder holding coco128_seg records with PNG masks (made once per process)."""
  if not hasattr(records_dir, "path"):
    path = tempfile.mkdtemp(prefix="bench_records_")
    convert_coco128(path)
    records_dir.path = path
  return records_dir.path


def time_calls(fn, steps, warmup):
  """Calls `fn()` warmup + steps times; `fn` must block until its result is computed.

  Returns:
    (wall seconds of each of the last `steps` calls, wall seconds of the first call (tracing
    included), the last call's return value).
  """
  times, first, out = [], None, None
  for i in range(warmup + steps):
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    if i == 0:
      first = elapsed
    if i >= warmup:
      times.append(elapsed)
  return times, first, out


def write_result(output_json, benchmark, **payload):
  """Writes {'benchmark': benchmark, **payload} as JSON to `output_json` (nothing when unset)."""
  if output_json:
    with open(output_json, "w") as f:
      json.dump(dict(benchmark=benchmark, **payload), f, indent=2)


def load_image(size):
  """uint8 [size, size, 3] real image (coco128_seg 000000000009.jpg, bilinear resize)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  image = tf.io.decode_jpeg(tf.io.read_file(IMAGE), channels=3)
  image = tf.image.resize(image, [size, size])
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8).numpy()


def _sub_once(pattern, replacement, text, what):
  out, count = re.subn(pattern, replacement, text, flags=re.S)
  if count != 1:
    raise ValueError("%s: expected one %s in the config, found %d" % (C4_CONFIG, what, count))
  return out


def write_c4_config(output_path, records, image_size=512, batch_size=2, num_steps=10):
  """Writes the C4 benchmark config with the records folder, size, batch and steps filled in.

  A text edit of benchmarks/configs/mask_rcnn_resnet50_c4_512.config (no proto library), so the
  TF OD API's process and ours read byte-identical pipeline configs.

  Args:
    output_path: file to write.
    records: folder written by create_coco_tf_record.py (coco_train / coco_val records with PNG
      masks, label_map.pbtxt); replaces PATH_TO_BE_CONFIGURED.
    image_size: fixed_shape_resizer height = width.
    batch_size: train_config.batch_size (eval_config.batch_size stays 1).
    num_steps: train_config.num_steps.
  Returns:
    output_path.
  """
  with open(C4_CONFIG) as f:
    text = f.read()
  text = text.replace("PATH_TO_BE_CONFIGURED", os.path.abspath(records).rstrip("/"))
  text = _sub_once(r"(fixed_shape_resizer \{\s*height: )\d+(\s*width: )\d+",
                   r"\g<1>%d\g<2>%d" % (image_size, image_size), text, "fixed_shape_resizer")
  text = _sub_once(r"(train_config: \{\s*batch_size: )\d+", r"\g<1>%d" % batch_size, text,
                   "train_config.batch_size")
  text = _sub_once(r"(\n  num_steps: )\d+", r"\g<1>%d" % num_steps, text,
                   "train_config.num_steps")
  with open(output_path, "w") as f:
    f.write(text)
  return output_path


def peak_rss_mb():
  """This process's peak resident set size so far (VmHWM of /proc/self/status), in MiB.

  Returns None off Linux.
  """
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024.0  # kB
  except OSError:
    pass
  return None


class TimedIterable(object):
  """Wraps an eval dataset: yields its first `limit` elements, timing each request.

  `marks[i]` is the perf_counter when element i was requested (so marks[i + 1] - marks[i] is
  the eval loop's work on element i plus fetching i + 1); `end` is set when the loop asks for an
  element past the last one (the loop is over: what follows is the metric computation).
  """

  def __init__(self, dataset, limit=None):
    self.dataset = dataset
    self.limit = limit
    self.marks = []
    self.end = None

  def __iter__(self):
    iterator = iter(self.dataset)
    count = 0
    while self.limit is None or count < self.limit:
      self.marks.append(time.perf_counter())
      try:
        element = next(iterator)
      except StopIteration:
        self.marks.pop()
        break
      count += 1
      yield element
    self.end = time.perf_counter()


def eval_timing(timed, returned_at, excluded_seconds=0.0):
  """Per-image evaluation figures from a TimedIterable and the time the eval call returned.

  Args:
    timed: the TimedIterable the eval loop consumed.
    returned_at: perf_counter when the evaluation call returned (metrics computed).
    excluded_seconds: time spent after the loop in work that is not evaluation (ours writes a
      model-statistics record); subtracted from the metric time.
  Returns:
    dict: num_images; seconds_per_image = (returned_at - the start of image 2 - excluded) /
    (num_images - 1), i.e. images 2..N plus the COCO metric computation, without the first
    image (its call traces the tf.function); image_seconds_median (loop work per image after
    the first); first_image_seconds; metrics_seconds; total_seconds (loop + metrics).
  """
  marks = timed.marks + [timed.end]
  n = len(timed.marks)
  if n < 2:
    raise ValueError("need at least 2 eval images to time steady-state evaluation, got %d" % n)
  per_image = list(np.diff(marks))
  metrics = returned_at - timed.end - excluded_seconds
  return {"num_images": n,
          "seconds_per_image": (returned_at - marks[1] - excluded_seconds) / (n - 1),
          "image_seconds_median": float(np.median(per_image[1:])),
          "image_seconds_all": per_image, "first_image_seconds": per_image[0],
          "metrics_seconds": metrics, "excluded_seconds": excluded_seconds,
          "total_seconds": returned_at - marks[0] - excluded_seconds}


def set_static_shapes(configs):
  """Puts a configs dict on the TF OD API's static-shape path (what --jit_compile needs,
  object_detection/training/xla.py): the fields its TPU configs set, plus padded second-stage
  NMS and padded ground truth."""
  faster_rcnn = configs['model'].faster_rcnn
  for field in ('use_static_shapes', 'use_static_shapes_for_eval', 'use_matmul_crop_and_resize',
                'use_static_balanced_label_sampler', 'use_matmul_gather_in_matcher',
                'clip_anchors_to_image'):
    setattr(faster_rcnn, field, True)
  faster_rcnn.second_stage_post_processing.batch_non_max_suppression.use_static_shapes = True
  configs['train_config'].unpad_groundtruth_tensors = False
  return configs
