r"""Converts a COCO-format instance segmentation dataset to TFRecords (TF OD API format).

Same flags and output names as the TF OD API's `create_coco_tf_record.py`, plus --num_shards,
--mask_type, --num_workers, --overwrite, --classes, --keep_empty_images and --runner (Apache
Beam). Any split may be omitted: a split is converted when
both its image folder and its annotations file are given. Writes
<output_dir>/coco_{train,val,testdev}.record-NNNNN-of-NNNNN, <output_dir>/label_map.pbtxt (every
category of the annotation files, with their ids) and <output_dir>/conversion_summary.txt, then
prints that summary: images and instances written, every skip by reason.

The output folder is replaced whole, in one step, at the end: everything is written into a hidden
temporary folder beside it first, so a killed or failed run leaves the previous output as it was
and a re-run leaves no shard of an earlier one. A folder holding files this converter did not
write is refused unless --overwrite is given.

Example (the bundled sample data, from the repository root):

  python dataset_tools/create_coco_tf_record.py --logtostderr \
    --train_image_dir=samples/data/coco128_seg/images \
    --val_image_dir=samples/data/coco128_seg/images \
    --train_annotations_file=samples/data/coco128_seg/annotations/instances_train.json \
    --val_annotations_file=samples/data/coco128_seg/annotations/instances_val.json \
    --output_dir=/tmp/coco128_records --include_masks

A class subset: --classes=person,car (category names or ids, mixed allowed, comma separated)
writes only those categories' instances, renumbered 1..K in the order given, and a label map of
just those K classes; the other instances are dropped and images left without an instance are
dropped too, or written as negatives (no objects) with --keep_empty_images. The summary gives the
mapping (`person (COCO id 1) -> 1`) and every count.

At scale (full COCO), the same conversion runs as an Apache Beam pipeline (`pip install -e
".[beam]"`) and writes the same records: add --runner=DirectRunner --direct_num_workers=2 (local
processes), or another runner with its options (--runner=FlinkRunner --flink_master=...,
--runner=DataflowRunner --project=... --temp_location=gs://...). See docs/datasets.md.

Exit status 2, with one line naming the file, folder or flag, on a usage or input error (no split,
a split with only one of its two flags, a missing or malformed input, an output folder that may
not be replaced); 1, with one line, when writing the output fails (the old output is kept).
"""
import os
import sys

# Runs from a source checkout without installation: `python dataset_tools/create_coco_tf_record.py`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from object_detection.dataset_tools import converter_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_string('train_image_dir', '', 'Training image directory.')
flags.DEFINE_string('val_image_dir', '', 'Validation image directory.')
flags.DEFINE_string('test_image_dir', '', 'Test(-dev) image directory.')
flags.DEFINE_string('train_annotations_file', '', 'Training annotations JSON file.')
flags.DEFINE_string('val_annotations_file', '', 'Validation annotations JSON file.')
flags.DEFINE_string('testdev_annotations_file', '', 'Test-dev annotations JSON file.')
converter_flags.define_common_flags(
    'Convert only these categories: comma-separated names and/or COCO category ids (e.g. '
    'person,car or 1,3), renumbered 1..K in this order in the records and label_map.pbtxt. '
    'Empty: every category, with its COCO id.')

FLAGS = flags.FLAGS



def _splits(usage_error):
  """Returns [(split, image_dir, annotations_file)].

  Raises:
    usage_error: a split with only one of its two flags, or no split at all.
  """
  splits = converter_flags.split_flags(converter_flags.COCO_SPLIT_FLAGS, usage_error)
  if not splits:
    raise usage_error('nothing to convert: give --train_image_dir and --train_annotations_file, '
                      '--val_image_dir and --val_annotations_file, and/or --test_image_dir and '
                      '--testdev_annotations_file.')
  if not FLAGS.output_dir:
    raise usage_error('--output_dir is not given: name the folder to write the records to '
                      '(e.g. --output_dir=data/coco_records).')
  return splits


def _convert():
  """The command's work; returns the summary text (see converter_flags.run_converter)."""
  # TF-free first: usage errors, missing or malformed inputs and an output folder that may not
  # be replaced fail in well under a second.
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import coco_annotations
  from object_detection.dataset_tools import output_folder
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  splits = _splits(config_validation.UsageError)
  converter_flags.beam_args()  # Unknown flags fail here, before any input is read.
  inputs = [path for _, image_dir, annotations_file in splits
            for path in (image_dir, annotations_file)]
  output_folder.check_output_dir(FLAGS.output_dir, FLAGS.overwrite, inputs)
  if FLAGS.keep_empty_images and not FLAGS.classes.strip():
    raise config_validation.UsageError(
        '--keep_empty_images only applies with --classes (without it every image is written, '
        'with or without instances): remove it or give --classes.')
  loaded = coco_annotations.load_splits(splits)
  classes = None
  if FLAGS.classes.strip():
    classes = coco_annotations.parse_classes_flag(FLAGS.classes)
    # Checked here, before TensorFlow is imported, so a misspelt class fails at once.
    coco_annotations.resolve_classes(classes, loaded[1])
  from object_detection.utils import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs.quiet_tensorflow_startup()  # before coco_tf_record imports TensorFlow
  from object_detection.dataset_tools import coco_tf_record  # pylint: disable=g-import-not-at-top
  result = coco_tf_record.convert(splits, FLAGS.output_dir, loaded=loaded, classes=classes,
                                  **converter_flags.common_kwargs())
  return coco_tf_record.format_summary(result)


def main(argv):
  del argv  # Unused.
  converter_flags.run_converter(_convert)


if __name__ == '__main__':
  app.run(main, flags_parser=converter_flags.parse_flags)
