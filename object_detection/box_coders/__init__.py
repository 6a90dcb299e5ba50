"""Box coders (TF OD API `object_detection/box_coders`)."""
