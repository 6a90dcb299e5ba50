r"""Converts instance masks stored as PNG files to TFRecords (TF OD API format).

Two input formats (--input_format), described in full in
object_detection/dataset_tools/instance_png_annotations.py:

  instance_id_png       one single-channel PNG per image whose pixel value encodes class and
                        instance (Cityscapes `*_gtFine_instanceIds.png`: class id * 1000 +
                        instance index; --id_divisor), or with --id_divisor=0 the instance id of
                        one class (--class_name).
  instance_mask_folder  one binary PNG per instance: <mask_dir>/<image>/<class name>/*.png, or
                        <mask_dir>/<image>/*.png with --class_name (one class).

A split is converted when both its folders are given (--train_image_dir with --train_mask_dir,
--val_... , --test_...). Images are the .jpg/.jpeg/.png files under the image folder, searched
recursively (or --image_pattern). Writes <output_dir>/instances_{train,val,test}.record-NNNNN-of-
NNNNN, <output_dir>/label_map.pbtxt and <output_dir>/conversion_summary.txt, then prints that
summary: images and instances written, every skip by reason. The output folder is replaced whole
at the end (a killed run leaves the previous output as it was); --runner runs the same conversion
as an Apache Beam pipeline (see create_coco_tf_record.py).

Boxes are the tight boxes of the masks, normalized, covering whole pixels (xmax = (last column +
1) / width); area is the mask's pixel count. Where instances overlapped when an instance-ID PNG
was drawn, the pixel belongs to the instance drawn last (a PNG holds one value per pixel).

Cityscapes (fine annotations; the test split has no public annotations):

  cat > cityscapes_label_map.pbtxt <<'EOF'
  item { name: "person" id: 24 }  item { name: "rider" id: 25 }  item { name: "car" id: 26 }
  item { name: "truck" id: 27 }  item { name: "bus" id: 28 }  item { name: "caravan" id: 29 }
  item { name: "trailer" id: 30 }  item { name: "train" id: 31 }
  item { name: "motorcycle" id: 32 }  item { name: "bicycle" id: 33 }
  EOF
  python dataset_tools/create_instance_png_tf_record.py --input_format=instance_id_png \
    --train_image_dir=cityscapes/leftImg8bit/train --train_mask_dir=cityscapes/gtFine/train \
    --val_image_dir=cityscapes/leftImg8bit/val --val_mask_dir=cityscapes/gtFine/val \
    --image_suffix=_leftImg8bit --mask_suffix=_gtFine_instanceIds.png \
    --label_map_path=cityscapes_label_map.pbtxt \
    --classes=person,rider,car,truck,bus,train,motorcycle,bicycle \
    --output_dir=data/cityscapes_records --include_masks --num_shards=10 --num_workers=2

  Image aachen/aachen_000000_000019_leftImg8bit.png has key aachen_000000_000019 (--image_suffix
  removed) and mask gtFine/train/aachen/aachen_000000_000019_gtFine_instanceIds.png (same city
  subfolder). --classes renumbers the 8 evaluated classes 1..8 (num_classes: 8). Without
  --classes the label map's ids are kept: Cityscapes ids 24..33, so num_classes: 33 (ids 1..23
  never occur). Pixels of classes without instances (road, building, ...) and "group" regions
  (a crowd of cars, value 26) are skipped and counted as class_only_region; with
  --class_only_regions=crowd each chosen class's group region becomes one is_crowd=1 instance per
  image (the COCO evaluation then ignores detections on it; training uses it as an ordinary
  box). --ignore_values=255 treats a value as background (e.g. trainId-encoded PNGs' void).

A per-instance folder dataset, classes from the subfolder names (sorted, ids 1..K):

  data/images/0001.jpg, data/masks/0001/cat/0.png, data/masks/0001/dog/1.png, ...
  python dataset_tools/create_instance_png_tf_record.py --input_format=instance_mask_folder \
    --train_image_dir=data/images --train_mask_dir=data/masks \
    --output_dir=data/records --include_masks

The 2018 Data Science Bowl nuclei (stage1_train/<id>/images/<id>.png, stage1_train/<id>/masks/
<one PNG per nucleus>.png; the images are RGBA PNGs, decoded as RGB by the input pipeline):

  python dataset_tools/create_instance_png_tf_record.py --input_format=instance_mask_folder \
    --train_image_dir=stage1_train --train_mask_dir=stage1_train \
    --image_pattern='*/images/*.png' --mask_subfolder=masks --class_name=nucleus \
    --output_dir=data/dsb2018_records --include_masks --num_workers=2

Images without a mask (file or folder) are skipped and counted, or written as negatives (no
objects) with --keep_empty_images; with --classes, images left without an instance of the chosen
classes are dropped (or, with --keep_empty_images, written as negatives).

Exit status 2, with one line naming the flag, folder or file, on a usage or input error (no split,
a split with one of its two folders, a missing folder, no image paired with a mask, a bad label
map, an unknown class, a flag of the other --input_format); 1 when writing the output fails.
"""
import os
import sys

# Runs from a source checkout without installation.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from object_detection.dataset_tools import converter_flags  # pylint: disable=g-import-not-at-top,wrong-import-position

_FORMATS = ('instance_id_png', 'instance_mask_folder')  # = instance_png_annotations.INPUT_FORMATS

flags.DEFINE_enum('input_format', None, _FORMATS,
                  'instance_id_png: one PNG per image whose pixel values encode class and '
                  'instance. instance_mask_folder: one binary PNG per instance, in a folder per '
                  'image.')
for _split, _name in (('train', 'Training'), ('val', 'Validation'), ('test', 'Test')):
  flags.DEFINE_string('%s_image_dir' % _split, '',
                      '%s image folder (searched recursively).' % _name)
  flags.DEFINE_string('%s_mask_dir' % _split, '',
                      '%s mask folder (instance-ID PNGs, or a folder per image).' % _name)
flags.DEFINE_string('image_pattern', '',
                    'Glob of the images relative to the image folder (** = any folders), e.g. '
                    '"*/images/*.png". Empty: every .jpg/.jpeg/.png file, recursively.')
flags.DEFINE_string('image_suffix', '',
                    'Removed from the end of an image\'s name (without extension) to get its '
                    'key, e.g. _leftImg8bit for Cityscapes.')
flags.DEFINE_string('mask_suffix', '.png',
                    'instance_id_png: an image\'s mask file is <key><mask_suffix>, e.g. '
                    '_gtFine_instanceIds.png for Cityscapes.')
flags.DEFINE_string('mask_subfolder', '',
                    'instance_mask_folder: folder between <mask_dir>/<key>/ and the masks, e.g. '
                    'masks for the 2018 Data Science Bowl layout.')
flags.DEFINE_string('label_map_path', '',
                    'instance_id_png: TF OD API label map (pbtxt) naming the class ids of the '
                    'PNGs. Without it, give --classes as ids (named class_<id>).')
flags.DEFINE_string('class_name', '',
                    'Single-class datasets: the class of every instance (instance_id_png with '
                    '--id_divisor=0, or instance_mask_folder with masks directly in the image\'s '
                    'folder).')
flags.DEFINE_integer('id_divisor', 1000,
                     'instance_id_png: a pixel value v >= divisor is an instance of class '
                     'v // divisor; 0 < v < divisor a class-only region of class v (1000: '
                     'Cityscapes). 0: every v > 0 is an instance of --class_name.')
flags.DEFINE_string('ignore_values', '',
                    'instance_id_png: comma-separated pixel values that are background (0 '
                    'always is), e.g. 255.')
flags.DEFINE_enum('class_only_regions', 'skip', ['skip', 'crowd'],
                  'instance_id_png: pixels 0 < v < --id_divisor (a class without a separable '
                  'instance): skip (counted), or crowd: one is_crowd=1 instance per class per '
                  'image.')
flags.DEFINE_integer('min_instance_pixels', 1,
                     'Instances with fewer mask pixels are skipped (counted).')
converter_flags.define_common_flags(
    'Convert only these classes: comma-separated names and/or ids (instance_id_png: ids of the '
    'PNGs / names of --label_map_path; instance_mask_folder: class folder names, or ids 1..K of '
    'the sorted names), renumbered 1..K in this order. Empty: every class, ids kept.',
    keep_empty_help='Write images without an instance as negatives (no objects) instead of '
    'dropping them: images without a mask file / folder, and with --classes the images without '
    'an instance of those classes.')

FLAGS = flags.FLAGS

# Flags that only one input format reads: giving one with the other format is a usage error.
_ONLY_FOR = {
    'instance_id_png': ('label_map_path', 'id_divisor', 'ignore_values', 'class_only_regions',
                        'mask_suffix'),
    'instance_mask_folder': ('mask_subfolder',),
}



def _splits(usage_error):
  """[(split, image_dir, mask_dir)] of the flags; raises usage_error (one line)."""
  if FLAGS.input_format is None:
    raise usage_error('--input_format is not given: instance_id_png (one PNG per image, pixel '
                      'values encode class and instance) or instance_mask_folder (one binary '
                      'PNG per instance, a folder per image).')
  converter_flags.check_format_flags(FLAGS.input_format, _ONLY_FOR, usage_error)
  splits = converter_flags.split_flags(
      [(split, ('%s_image_dir' % split, '%s_mask_dir' % split)) for split in ('train', 'val',
                                                                         'test')], usage_error)
  if not splits:
    raise usage_error('nothing to convert: give --train_image_dir and --train_mask_dir, and/or '
                      '--val_image_dir and --val_mask_dir (or --test_...).')
  if not FLAGS.output_dir:
    raise usage_error('--output_dir is not given: name the folder to write the records to '
                      '(e.g. --output_dir=data/instance_records).')
  return splits


def _convert():
  """The command's work; returns the summary text (see converter_flags.run_converter)."""
  # TF-free first: usage errors, missing folders, unpaired masks, bad label maps and classes
  # fail in about a second, before TensorFlow is imported.
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import coco_annotations
  from object_detection.dataset_tools import instance_png_annotations as ipa
  from object_detection.dataset_tools import output_folder
  from object_detection.utils import config_validation
  # pylint: enable=g-import-not-at-top
  splits = _splits(config_validation.UsageError)
  runner_options = converter_flags.beam_args()  # Unknown flags fail here.
  inputs = [path for _, image_dir, mask_dir in splits for path in (image_dir, mask_dir)]
  output_folder.check_output_dir(FLAGS.output_dir, FLAGS.overwrite, inputs)
  classes = (coco_annotations.parse_classes_flag(FLAGS.classes)
             if FLAGS.classes.strip() else None)
  options = dict(
      label_map_path=FLAGS.label_map_path, classes=classes, class_name=FLAGS.class_name,
      id_divisor=FLAGS.id_divisor,
      ignore_values=ipa.parse_int_list(FLAGS.ignore_values, '--ignore_values'),
      class_only_regions=FLAGS.class_only_regions, image_pattern=FLAGS.image_pattern,
      image_suffix=FLAGS.image_suffix, mask_suffix=FLAGS.mask_suffix,
      mask_subfolder=FLAGS.mask_subfolder, min_instance_pixels=FLAGS.min_instance_pixels)
  scanned = ipa.prepare_inputs(FLAGS.input_format, splits, **options)
  from object_detection.utils import quiet_logs  # pylint: disable=g-import-not-at-top
  quiet_logs.quiet_tensorflow_startup()  # before instance_png_tf_record imports TensorFlow
  # pylint: disable=g-import-not-at-top
  from object_detection.dataset_tools import conversion
  from object_detection.dataset_tools import instance_png_tf_record
  # pylint: enable=g-import-not-at-top
  kwargs = converter_flags.common_kwargs()
  kwargs['runner_options'] = runner_options
  result = instance_png_tf_record.convert(FLAGS.input_format, splits, FLAGS.output_dir,
                                          scanned=scanned, **options, **kwargs)
  return conversion.format_summary(result)


def main(argv):
  del argv  # Unused.
  converter_flags.run_converter(_convert)


if __name__ == '__main__':
  app.run(main, flags_parser=converter_flags.parse_flags)
