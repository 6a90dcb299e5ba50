r"""Converts a COCO-format instance segmentation dataset to TFRecords (TF OD API format).

Same flags and output names as the TF OD API's `create_coco_tf_record.py`, plus --num_shards,
--mask_type and --num_workers. Any split may be omitted: a split is converted when both its image
folder and its annotations file are given. Writes <output_dir>/coco_{train,val,testdev}.record-
NNNNN-of-NNNNN and <output_dir>/label_map.pbtxt (every category of the annotation files, with
their ids), then prints a summary: images and instances written, every skip by reason.

Example (the bundled sample data, from the repository root):

  python dataset_tools/create_coco_tf_record.py --logtostderr \
    --train_image_dir=samples/data/coco128_seg/images \
    --val_image_dir=samples/data/coco128_seg/images \
    --train_annotations_file=samples/data/coco128_seg/annotations/instances_train.json \
    --val_annotations_file=samples/data/coco128_seg/annotations/instances_val.json \
    --output_dir=/tmp/coco128_records --include_masks

Exits with status 1 and a message naming the file when an input is missing or malformed, and
with status 2 on a usage error (no split, or a split with only one of its two flags).
"""
import os
import sys

# Runs from a source checkout without installation: `python dataset_tools/create_coco_tf_record.py`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_string('train_image_dir', '', 'Training image directory.')
flags.DEFINE_string('val_image_dir', '', 'Validation image directory.')
flags.DEFINE_string('test_image_dir', '', 'Test(-dev) image directory.')
flags.DEFINE_string('train_annotations_file', '', 'Training annotations JSON file.')
flags.DEFINE_string('val_annotations_file', '', 'Validation annotations JSON file.')
flags.DEFINE_string('testdev_annotations_file', '', 'Test-dev annotations JSON file.')
flags.DEFINE_string('output_dir', '/tmp/', 'Output data directory.')
flags.DEFINE_boolean('include_masks', False,
                     'Whether to include instance segmentation masks (needed for Mask R-CNN).')
flags.DEFINE_integer('num_shards', 1,
                     'Output files per split (the TF OD API uses 100 for train and 50 for val on '
                     'full COCO; 1 suits small datasets).')
flags.DEFINE_enum('mask_type', 'png', ['png', 'numerical'],
                  'png: one PNG per instance (small; input reader mask_type: PNG_MASKS). '
                  'numerical: float list N*H*W (large; mask_type: NUMERICAL_MASKS).')
flags.DEFINE_integer('num_workers', 1, 'Processes that read and encode images.')
flags.DEFINE_boolean('progress', True, 'Show a progress bar (images/s) on stderr.')

FLAGS = flags.FLAGS


def _splits():
  """Returns [(split, image_dir, annotations_file)]; exits 2 on a half-given split."""
  splits = []
  for split, image_flag, annotations_flag in (
      ('train', 'train_image_dir', 'train_annotations_file'),
      ('val', 'val_image_dir', 'val_annotations_file'),
      ('testdev', 'test_image_dir', 'testdev_annotations_file')):
    image_dir, annotations_file = FLAGS[image_flag].value, FLAGS[annotations_flag].value
    if bool(image_dir) != bool(annotations_file):
      missing = annotations_flag if image_dir else image_flag
      given = image_flag if image_dir else annotations_flag
      print('ERROR: --%s is given but --%s is not: a split needs both.' % (given, missing),
            file=sys.stderr)
      sys.exit(2)
    if image_dir:
      splits.append((split, image_dir, annotations_file))
  return splits


def main(argv):
  del argv  # Unused.
  # TF-free first: missing or malformed inputs fail in well under a second.
  from object_detection.dataset_tools import coco_annotations  # pylint: disable=g-import-not-at-top
  splits = _splits()
  if not splits:
    print('ERROR: nothing to convert: give --train_image_dir and --train_annotations_file, '
          '--val_image_dir and --val_annotations_file, and/or --test_image_dir and '
          '--testdev_annotations_file.', file=sys.stderr)
    sys.exit(2)
  try:
    loaded = coco_annotations.load_splits(splits)
    from object_detection.dataset_tools import coco_tf_record  # pylint: disable=g-import-not-at-top
    result = coco_tf_record.convert(
        splits, FLAGS.output_dir, include_masks=FLAGS.include_masks,
        num_shards=FLAGS.num_shards, mask_type=FLAGS.mask_type,
        num_workers=FLAGS.num_workers, show_progress=FLAGS.progress, loaded=loaded)
  except coco_annotations.ConversionError as e:
    print('ERROR: %s' % e, file=sys.stderr)
    sys.exit(1)
  print(coco_tf_record.format_summary(result))


if __name__ == '__main__':
  app.run(main)
