r"""Converts a semantic segmentation dataset to TFRecords: one class id per pixel.

Two input formats (--input_format), described in full in
object_detection/dataset_tools/semantic_annotations.py:

  common_semantic_segmentation  OpenVINO Training Extensions' / Datumaro's "Common Semantic
                                Segmentation": <dataset_dir>/dataset_meta.json (label_map,
                                optional segmentation_colors and background_label),
                                images/<split>/..., masks/<split>/... single-channel PNG label
                                masks (or colour masks, mapped through segmentation_colors). Also
                                <dataset_dir>/<split>/{dataset_meta.json,images,masks} and a
                                dataset without split folders (written as --split_name).
  coco                          COCO instance JSON: the instances painted into one class per
                                pixel, the SMALLER instance on top where they overlap (a small
                                object overlapping a large one is almost always in front of it).

Records: the image part of the TF OD API keys (image/encoded, image/height, image/width,
image/filename, image/source_id, ...) and DeepLab's image/segmentation/class/encoded (PNG,
uint8: 0 = background, 1..K the classes, 255 = ignore) and image/segmentation/class/format
('png'). Writes <output_dir>/semantic_{train,val,test}.record-NNNNN-of-NNNNN,
<output_dir>/label_map.pbtxt (background = 0 and the K classes) and
<output_dir>/conversion_summary.txt, then prints that summary: images and class regions written,
every skip by reason. Progress bar, --num_shards, --num_workers, the atomic output folder and
--runner (Apache Beam) are those of create_coco_tf_record.py. A mask must have its image's size
(photos with an EXIF orientation are written upright: their mask must have the upright size),
else the image is skipped and counted.

The bundled sample as a semantic sample (from the repository root):

  python dataset_tools/create_semantic_tf_record.py --input_format=coco \
    --train_image_dir=samples/data/coco128_seg/images \
    --val_image_dir=samples/data/coco128_seg/images \
    --train_annotations_file=samples/data/coco128_seg/annotations/instances_train.json \
    --val_annotations_file=samples/data/coco128_seg/annotations/instances_val.json \
    --output_dir=/tmp/coco128_semantic

A Common Semantic Segmentation dataset (e.g. exported by Datumaro or OTX):

  python dataset_tools/create_semantic_tf_record.py \
    --input_format=common_semantic_segmentation --dataset_dir=data/roads \
    --output_dir=data/roads_records --num_workers=2

Classes: without --classes every class of the label map / COCO categories is written, ids 1..K
(COCO: in the JSON order of "categories"; Common Semantic Segmentation: the labels other than
the background in increasing pixel value). --classes=person,car keeps those (names or source
ids: pixel values / COCO ids), renumbered 1..K in that order; the other classes' pixels become
background (--other_classes=background, default) or 255 = ignore (--other_classes=ignore).
Images without a pixel of the chosen classes are dropped (counted), or written with
--keep_empty_images. COCO crowd regions (iscrowd=1) keep their class (--crowd=class, default) or
become 255 = ignore (--crowd=ignore).

Exit status 2, with one line naming the flag, folder or file, on a usage or input error; 1 when
writing the output fails (the old output is kept).
"""
import os
import sys

# Runs from a source checkout without installation.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from object_detection.dataset_tools import converter_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

_FORMATS = ('common_semantic_segmentation', 'coco')  # = semantic_annotations.INPUT_FORMATS

flags.DEFINE_enum('input_format', None, _FORMATS,
                  'common_semantic_segmentation: dataset_meta.json + images/ + masks/ (label '
                  'PNGs). coco: COCO instance JSON, painted into one class per pixel.')
flags.DEFINE_string('dataset_dir', '',
                    'common_semantic_segmentation: the dataset folder (with dataset_meta.json, '
                    'or with train/, val/, test/ folders that each have one).')
flags.DEFINE_string('split_name', 'train',
                    'common_semantic_segmentation: the split a dataset without split folders is '
                    'written as (train, val or test).')
flags.DEFINE_string('train_image_dir', '', 'coco: training image directory.')
flags.DEFINE_string('val_image_dir', '', 'coco: validation image directory.')
flags.DEFINE_string('test_image_dir', '', 'coco: test(-dev) image directory.')
flags.DEFINE_string('train_annotations_file', '', 'coco: training annotations JSON file.')
flags.DEFINE_string('val_annotations_file', '', 'coco: validation annotations JSON file.')
flags.DEFINE_string('testdev_annotations_file', '', 'coco: test-dev annotations JSON file.')
flags.DEFINE_enum('crowd', 'class', ['class', 'ignore'],
                  'coco: crowd regions (iscrowd=1) are painted with their class, or as 255 = '
                  'ignore (no loss, no metric).')
flags.DEFINE_enum('other_classes', 'background', ['background', 'ignore'],
                  'With --classes: the pixels of the classes not chosen become background (0) or '
                  '255 = ignore.')
converter_flags.define_common_flags(
    'Convert only these classes: comma-separated names and/or source ids (pixel values of '
    'dataset_meta.json, or COCO category ids), renumbered 1..K in this order (0 stays the '
    'background). Empty: every class. See --other_classes.',
    keep_empty_help='With --classes: write the images without a pixel of those classes '
    '(background / ignore only) instead of dropping them.',
    masks=False)  # The label masks are what this converter writes: no --include_masks.

FLAGS = flags.FLAGS

# Flags that only one input format reads: giving one with the other format is a usage error.
_ONLY_FOR = {
    'common_semantic_segmentation': ('dataset_dir', 'split_name'),
    'coco': ('train_image_dir', 'val_image_dir', 'test_image_dir', 'train_annotations_file',
             'val_annotations_file', 'testdev_annotations_file', 'crowd'),
}


def _check_flags(usage_error):
  """Raises usage_error (one line) for a missing or misplaced flag; returns the COCO splits."""
  if FLAGS.input_format is None:
    raise usage_error('--input_format is not given: common_semantic_segmentation '
                      '(dataset_meta.json, images/, masks/) or coco (COCO instance JSON).')
  converter_flags.check_format_flags(FLAGS.input_format, _ONLY_FOR, usage_error)
  coco_splits = []
  if FLAGS.input_format == 'coco':
    coco_splits = converter_flags.split_flags(converter_flags.COCO_SPLIT_FLAGS, usage_error)
    if not coco_splits:
      raise usage_error('nothing to convert: give --train_image_dir and '
                        '--train_annotations_file, and/or --val_image_dir and '
                        '--val_annotations_file (or --test_image_dir and '
                        '--testdev_annotations_file).')
  else:
    if not FLAGS.dataset_dir:
      raise usage_error('--dataset_dir is not given: the Common Semantic Segmentation folder '
                        '(with dataset_meta.json, images/ and masks/).')
    if FLAGS.split_name not in ('train', 'val', 'test'):
      raise usage_error('--split_name must be train, val or test, got %r.' % FLAGS.split_name)
  if not FLAGS.output_dir:
    raise usage_error('--output_dir is not given: name the folder to write the records to '
                      '(e.g. --output_dir=data/semantic_records).')
  if FLAGS.keep_empty_images and not FLAGS.classes.strip():
    raise usage_error('--keep_empty_images only applies with --classes (without it every image '
                      'is written): remove it or give --classes.')
  if FLAGS['other_classes'].present and not FLAGS.classes.strip():
    raise usage_error('--other_classes only applies with --classes (without it every class is '
                      'written): remove it or give --classes.')
  return coco_splits


def _convert():
  """The command's work; returns the summary text (see converter_flags.run_converter)."""
  # TF-free first: usage errors, missing folders, bad meta files / JSON and unknown classes
  # fail in about a second, before TensorFlow is imported.
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import coco_annotations
  from object_detection.dataset_tools import output_folder
  from object_detection.dataset_tools import semantic_annotations
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  coco_splits = _check_flags(config_validation.UsageError)
  runner_options = converter_flags.beam_args()  # Unknown flags fail here.
  if FLAGS.input_format == 'coco':
    inputs = [p for _, image_dir, annotations in coco_splits for p in (image_dir, annotations)]
  else:
    inputs = [FLAGS.dataset_dir]
  output_folder.check_output_dir(FLAGS.output_dir, FLAGS.overwrite, inputs)
  classes = (coco_annotations.parse_classes_flag(FLAGS.classes)
             if FLAGS.classes.strip() else None)
  options = dict(dataset_dir=FLAGS.dataset_dir, split_name=FLAGS.split_name,
                 coco_splits=coco_splits, classes=classes, other_classes=FLAGS.other_classes,
                 crowd=FLAGS.crowd)
  prepared = semantic_annotations.prepare_inputs(FLAGS.input_format, **options)
  if FLAGS['split_name'].present and [s.split for s in prepared.splits] != [FLAGS.split_name]:
    raise config_validation.UsageError(
        '--split_name only applies to a dataset without split folders; %s has %s: remove it.'
        % (FLAGS.dataset_dir, ', '.join(s.split for s in prepared.splits)))
  from object_detection.utils import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs.quiet_tensorflow_startup()  # before semantic_tf_record imports TensorFlow
  from object_detection.dataset_tools import semantic_tf_record  # pylint: disable=g-import-not-at-top
  kwargs = converter_flags.common_kwargs()
  kwargs['runner_options'] = runner_options
  result = semantic_tf_record.convert(FLAGS.input_format, FLAGS.output_dir, prepared=prepared,
                                      **options, **kwargs)
  return semantic_tf_record.format_semantic_summary(result)


def main(argv):
  del argv  # Unused.
  converter_flags.run_converter(_convert)


if __name__ == '__main__':
  app.run(main, flags_parser=converter_flags.parse_flags)
