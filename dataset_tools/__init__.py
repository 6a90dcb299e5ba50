"""Command-line dataset tools (`python dataset_tools/create_coco_tf_record.py ...`).

The scripts are thin flag-parsing entry points; the logic lives in
`object_detection.dataset_tools`.
"""
