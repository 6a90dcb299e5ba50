"""Matchers (TF OD API `object_detection/matchers`)."""
