"""TF2 Mask R-CNN training pipeline configured with TF OD API pipeline configs."""
