"""Evaluation time: COCO metrics alone, or our whole eval loop on the C4 benchmark config.

Default: seconds for COCO box + mask evaluation (pycocotools COCOeval) of a fixed set of
detections. The detections are the coco128_seg val ground truth, perturbed deterministically
(shifted masks, random scores, one false positive per image), so the figure is reproducible.

--model_eval c4: seconds per image of our `model_lib_v2.eval_continuously` (the model_main.py
--checkpoint_dir path: model, eval losses, post-processing, COCO box + mask metrics) on one
random-init checkpoint of benchmarks/configs/mask_rcnn_resnet50_c4_512.config (fixed_shape_resizer
set to --image_size), over the first --eval_images images of the coco128_seg val records in
--records. Its peer is benchmarks/tfod_peer.py --mode eval (the TF OD API's eval_continuously on
the same file and records). Figures from common.eval_timing: the first image (tracing) is
excluded, the metric computation included; the model-statistics record our evaluation writes
after the metrics (parameters, GFLOPs: the TF OD API has none) is timed and left out.

Usage:
  python benchmarks/evaluation.py [--repeats 3] [--output_json out.json]
  python benchmarks/evaluation.py --model_eval c4 --records DIR [--image_size 512
      --eval_images 25 --output_json out.json]
"""
import contextlib
import io
import json
import os
import shutil
import tempfile
import time

import numpy as np
from pycocotools import coco as coco_api
from pycocotools import cocoeval
from pycocotools import mask as mask_api

import common  # pylint: disable=g-bad-import-order
from common import COCO128_DIR  # pylint: disable=g-bad-import-order


def make_detections(gt, seed=0, copies=4):
  """COCO results list: `copies` perturbed detections per ground-truth instance, RLE masks."""
  rng = np.random.default_rng(seed)
  results = []
  for ann in gt.dataset["annotations"]:
    img = gt.imgs[ann["image_id"]]
    mask = gt.annToMask(ann)
    for _ in range(copies):
      dy, dx = rng.integers(-8, 9, size=2)
      shifted = np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
      rle = mask_api.encode(np.asfortranarray(shifted.astype(np.uint8)))
      rle["counts"] = rle["counts"].decode("ascii")
      bbox = mask_api.toBbox(rle).tolist()
      if bbox[2] <= 0 or bbox[3] <= 0:
        continue
      results.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                      "bbox": bbox, "score": float(rng.uniform()), "segmentation": rle})
    del img
  return results


def time_coco_eval(repeats=3):
  """Median seconds to run COCOeval bbox + segm on the fixed detections; also the two mAPs."""
  with contextlib.redirect_stdout(io.StringIO()):
    gt = coco_api.COCO(os.path.join(COCO128_DIR, "annotations", "instances_val.json"))
  detections = make_detections(gt)
  times, maps = [], {}
  for _ in range(repeats):
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
      dt = gt.loadRes(json.loads(json.dumps(detections)))
      for iou_type in ("bbox", "segm"):
        ev = cocoeval.COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        maps[iou_type] = float(ev.stats[0])
    times.append(time.perf_counter() - start)
  return float(np.median(times)), len(detections), maps


def run_model_eval(records, image_size, num_images):
  """Our eval_continuously on one random-init C4 checkpoint; returns common.eval_timing's dict."""
  work_dir = tempfile.mkdtemp(prefix="bench_eval_")
  try:
    return _run_model_eval(records, image_size, num_images, work_dir)
  finally:
    shutil.rmtree(work_dir, ignore_errors=True)


def _run_model_eval(records, image_size, num_images, work_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from object_detection import eval_util
  from object_detection import inputs
  from object_detection import model_lib_v2
  from object_detection.builders import model_builder
  from object_detection.utils import checkpoint_utils
  from object_detection.utils import config_util
  # pylint: enable=g-import-not-at-top
  config_path = common.write_c4_config(os.path.join(work_dir, "pipeline.config"), records,
                                       image_size, num_steps=1)
  configs = config_util.get_configs_from_pipeline_file(config_path)
  tf.random.set_seed(0)
  model = model_builder.build(configs["model"], is_training=False)
  checkpoint_utils.build_model_variables(model, (image_size, image_size))
  ckpt_dir = os.path.join(work_dir, "train")
  tf.train.Checkpoint(model=model).save(os.path.join(ckpt_dir, "ckpt"))  # ckpt-1 = num_steps
  del model
  state = {"stats_seconds": 0.0}

  def eval_input_fn(*args, **kwargs):
    state["timed"] = common.TimedIterable(inputs.eval_input(*args, **kwargs), num_images)
    return state["timed"]

  original_evaluate = eval_util.evaluate
  original_stats = eval_util._get_model_stats  # pylint: disable=protected-access

  def timed_evaluate(*args, **kwargs):
    result = original_evaluate(*args, **kwargs)
    state["returned_at"] = time.perf_counter()
    # The checkpoint evaluator asks for (metrics, model stats).
    state["metrics"] = result[0] if kwargs.get("return_model_stats") else result
    return result

  def timed_stats(*args, **kwargs):
    start = time.perf_counter()
    try:
      return original_stats(*args, **kwargs)
    finally:
      state["stats_seconds"] += time.perf_counter() - start

  eval_util.evaluate = timed_evaluate
  eval_util._get_model_stats = timed_stats  # pylint: disable=protected-access
  try:
    start = time.perf_counter()
    model_lib_v2.eval_continuously(config_path, model_dir=os.path.join(work_dir, "eval"),
                                   checkpoint_dir=ckpt_dir, eval_input_fn=eval_input_fn,
                                   wait_interval=0, timeout=1)
    wall = time.perf_counter() - start
  finally:
    eval_util.evaluate = original_evaluate
    eval_util._get_model_stats = original_stats  # pylint: disable=protected-access
  if "returned_at" not in state:
    raise RuntimeError("eval_continuously evaluated no checkpoint in %s" % ckpt_dir)
  result = common.eval_timing(state["timed"], state["returned_at"], state["stats_seconds"])
  metrics = state["metrics"]
  result.update({"eval_continuously_seconds": wall,
                 "bbox_map": float(metrics.get("DetectionBoxes_Precision/mAP", float("nan"))),
                 "segm_map": float(metrics.get("DetectionMasks_Precision/mAP", float("nan")))})
  return result


if __name__ == "__main__":
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--model_eval", choices=("", "c4"), default="",
                      help="c4: time our eval loop on the C4 benchmark config instead")
  parser.add_argument("--records", default="",
                      help="create_coco_tf_record.py output folder (PNG masks); made if empty")
  parser.add_argument("--image_size", type=int, default=512)
  parser.add_argument("--eval_images", type=int, default=25)
  parser.add_argument("--output_json", default="")
  args = parser.parse_args()
  if args.model_eval:
    r = run_model_eval(args.records or common.records_dir(), args.image_size, args.eval_images)
    r.update({"side": "ours", "config": os.path.basename(common.C4_CONFIG),
              "image_size": args.image_size})
    common.write_result(args.output_json, "model_eval", result=r)
    print("ours eval of %d images: %.2f s/image (first image %.1f s, metrics %.1f s, model "
          "stats %.1f s left out; bbox mAP %.4f, segm mAP %.4f)" % (
              r["num_images"], r["seconds_per_image"], r["first_image_seconds"],
              r["metrics_seconds"], r["excluded_seconds"], r["bbox_map"], r["segm_map"]))
    raise SystemExit(0)
  seconds, n, maps = time_coco_eval(args.repeats)
  common.write_result(args.output_json, "evaluation", result={
      "seconds": seconds, "num_detections": n, "repeats": args.repeats,
      "bbox_map": maps["bbox"], "segm_map": maps["segm"]})
  print("COCO box+mask eval of %d detections: %.2f s (bbox mAP %.4f, segm mAP %.4f)" % (
      n, seconds, maps["bbox"], maps["segm"]))
