"""Anchor generators (TF OD API `object_detection/anchor_generators`)."""
