"""Shared pytest fixtures and paths."""
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The real sample data is bundled with the repo (a copy of shared/datasets/coco128_seg).
COCO128_DIR = os.path.join(REPO_ROOT, "samples", "data", "coco128_seg")
COCO128_IMAGES = os.path.join(COCO128_DIR, "images")
COCO128_TRAIN_JSON = os.path.join(COCO128_DIR, "annotations", "instances_train.json")
COCO128_VAL_JSON = os.path.join(COCO128_DIR, "annotations", "instances_val.json")


@pytest.fixture(scope="session")
def coco128_dir():
  return COCO128_DIR
