r"""Converts Open Images instance segmentations (CSV + mask PNGs) to TFRecords (TF OD API format).

Input, per split (train, val, test; any may be omitted, a split is converted when its three
flags are given), as Open Images ships it (https://storage.googleapis.com/openimages/web/
download.html, "Instance segmentations"):
  --<split>_annotations_file  <split>-annotations-object-segmentation.csv (header MaskPath,
                              ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,
                              PredictedIoU,Clicks; boxes normalized), or the rows of one class.
  --<split>_image_dir         the images, <ImageID>.jpg (.jpeg / .png accepted).
  --<split>_mask_dir          the mask PNGs: the 16 zips <split>-masks-0.zip .. -f.zip unzipped
                              into it (flat, or each into its own folder train-masks-0/ ..), or
                              FiftyOne's labels/masks folder (0/ .. F/).
and --class_descriptions_file (class-descriptions-boxable.csv, oidv7-class-descriptions.csv:
`LabelName,DisplayName` rows), which gives the classes their names.

Writes <output_dir>/oid_{train,val,test}.record-NNNNN-of-NNNNN, <output_dir>/label_map.pbtxt and
<output_dir>/conversion_summary.txt, then prints that summary: images and instances written,
every skip by reason. The output folder is replaced whole, in one step, at the end (as with
create_coco_tf_record.py).

Example (one class, Pumpkin, of the train and validation splits):

  python dataset_tools/create_oid_tf_record.py --logtostderr \
    --train_annotations_file=oid/train-annotations-object-segmentation.csv \
    --train_image_dir=oid/train --train_mask_dir=oid/train-masks \
    --val_annotations_file=oid/validation-annotations-object-segmentation.csv \
    --val_image_dir=oid/validation --val_mask_dir=oid/validation-masks \
    --class_descriptions_file=oid/oidv7-class-descriptions.csv \
    --classes=Pumpkin --include_masks --num_workers=2 --output_dir=data/oid_pumpkin

Classes: --classes=Pumpkin,Tomato or --classes=/m/05zsy (display names, case-insensitive when
unambiguous, and/or `/m/` ids) converts only those classes, renumbered 1..K in the order given;
the summary gives the mapping (`Pumpkin (Open Images id /m/05zsy) -> 1`). Without --classes
every LabelName of the CSVs is converted, ids 1..N in the order of their display names.

Each mask is resized to its image with nearest-neighbour and checked against the CSV box: a row
whose box and mask's tight box have an IoU below --min_box_mask_iou (default 0.5) is skipped and
counted as box_disagrees_with_mask.

Apache Beam: add --runner=DirectRunner --direct_num_workers=2 (or another runner and its options)
to run the same conversion as a Beam pipeline (`pip install -e ".[beam]"`).

Exit status 2, with one line naming the file, folder or flag, on a usage or input error (no split,
a split with only some of its three flags, a missing or malformed input, an unknown class, an
output folder that may not be replaced); 1, with one line, when writing the output fails (the old
output is kept).
"""
import os
import sys

# Runs from a source checkout without installation: `python dataset_tools/create_oid_tf_record.py`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from object_detection.dataset_tools import converter_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

SPLITS = (('train', 'Training'), ('val', 'Validation'), ('test', 'Test'))
for _split, _what in SPLITS:
  flags.DEFINE_string('%s_annotations_file' % _split, '',
                      '%s segmentation CSV (<split>-annotations-object-segmentation.csv).' % _what)
  flags.DEFINE_string('%s_image_dir' % _split, '', '%s images folder (<ImageID>.jpg).' % _what)
  flags.DEFINE_string('%s_mask_dir' % _split, '',
                      '%s masks folder (the unzipped <split>-masks-<c>.zip files).' % _what)
flags.DEFINE_string('class_descriptions_file', '',
                    'Class descriptions CSV (LabelName,DisplayName rows, e.g. '
                    'oidv7-class-descriptions.csv or class-descriptions-boxable.csv).')
flags.DEFINE_float('min_box_mask_iou', 0.5,
                   'Skip a row whose CSV box and the tight box of its mask have a smaller IoU '
                   '(a mask is drawn inside its box: a correct pair is near 1). 0: no check.',
                   lower_bound=0.0, upper_bound=1.0)
converter_flags.define_common_flags(
    'Convert only these classes: comma-separated display names (case-insensitive when that '
    'picks one class) and/or /m/ ids (e.g. Pumpkin,Tomato or /m/05zsy), renumbered 1..K in '
    'this order in the records and label_map.pbtxt. Empty: every class of the CSVs, ids 1..N '
    'by display name.')

FLAGS = flags.FLAGS



def _splits(usage_error):
  """Returns [(split, annotations_file, image_dir, mask_dir)].

  Raises:
    usage_error: a split with only some of its three flags, no split, no --output_dir or no
      --class_descriptions_file.
  """
  splits = converter_flags.split_flags(
      [(split, ('%s_annotations_file' % split, '%s_image_dir' % split, '%s_mask_dir' % split))
       for split, _ in SPLITS], usage_error)
  if not splits:
    raise usage_error('nothing to convert: give --train_annotations_file, --train_image_dir and '
                      '--train_mask_dir (and/or the --val_ or --test_ ones).')
  if not FLAGS.class_descriptions_file:
    raise usage_error('--class_descriptions_file is not given: name the Open Images class '
                      'descriptions CSV (e.g. oidv7-class-descriptions.csv).')
  if not FLAGS.output_dir:
    raise usage_error('--output_dir is not given: name the folder to write the records to '
                      '(e.g. --output_dir=data/oid_records).')
  return splits


def _convert():
  """The command's work; returns the summary text (see converter_flags.run_converter)."""
  # TF-free first: usage errors, missing or malformed inputs, unknown classes and an output
  # folder that may not be replaced fail in well under a second (plus the CSV reading time).
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import coco_annotations
  from object_detection.dataset_tools import oid_annotations
  from object_detection.dataset_tools import output_folder
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  splits = _splits(config_validation.UsageError)
  converter_flags.beam_args()  # Unknown flags fail here, before any input is read.
  inputs = [FLAGS.class_descriptions_file] + [p for split in splits for p in split[1:]]
  output_folder.check_output_dir(FLAGS.output_dir, FLAGS.overwrite, inputs)
  classes = None
  if FLAGS.classes.strip():
    classes = coco_annotations.parse_classes_flag(FLAGS.classes)
  prepared = oid_annotations.prepare(splits, FLAGS.class_descriptions_file, classes,
                                     FLAGS.keep_empty_images)
  from object_detection.utils import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs.quiet_tensorflow_startup()  # before oid_tf_record imports TensorFlow
  from object_detection.dataset_tools import conversion  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import oid_tf_record  # pylint: disable=g-import-not-at-top
  result = oid_tf_record.convert(
      splits, FLAGS.class_descriptions_file, FLAGS.output_dir, classes=classes,
      min_box_mask_iou=FLAGS.min_box_mask_iou, prepared=prepared,
      **converter_flags.common_kwargs())
  return conversion.format_summary(result)


def main(argv):
  del argv  # Unused.
  converter_flags.run_converter(_convert)


if __name__ == '__main__':
  app.run(main, flags_parser=converter_flags.parse_flags)
