"""Keras prediction heads of the Faster R-CNN / Mask R-CNN box predictors (TF OD API layout)."""
