"""Shared helpers for the benchmark scripts: sample data, records, configs, timing, output."""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128_DIR = os.path.join(REPO_ROOT, "samples", "data", "coco128_seg")
CONFIG_DIR = os.path.join(REPO_ROOT, "samples", "configs")


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
