"""Keras backbones built as the TF OD API's `object_detection/models/keras_models` builds them."""
