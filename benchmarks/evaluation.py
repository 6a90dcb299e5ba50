"""Seconds for COCO box + mask evaluation (pycocotools COCOeval) of a fixed set of detections.

The detections are the coco128_seg val ground truth, perturbed deterministically (shifted masks,
random scores, one false positive per image), so the figure is reproducible.
"""
import contextlib
import io
import json
import os
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


if __name__ == "__main__":
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--output_json", default="")
  args = parser.parse_args()
  seconds, n, maps = time_coco_eval(args.repeats)
  common.write_result(args.output_json, "evaluation", result={
      "seconds": seconds, "num_detections": n, "repeats": args.repeats,
      "bbox_map": maps["bbox"], "segm_map": maps["segm"]})
  print("COCO box+mask eval of %d detections: %.2f s (bbox mAP %.4f, segm mAP %.4f)" % (
      n, seconds, maps["bbox"], maps["segm"]))
