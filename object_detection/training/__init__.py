"""Training-loop building blocks used by `object_detection/model_lib_v2.py`."""
