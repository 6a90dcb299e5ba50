"""Dataset conversion library (the logic behind the scripts in the top-level `dataset_tools/`)."""
