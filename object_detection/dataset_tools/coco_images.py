"""Reads one image file for a record: checks it and turns EXIF-rotated photos upright.

TensorFlow's image decoders ignore the EXIF orientation tag, while COCO annotations describe the
photo as it is displayed, upright. A phone photo stored sideways with orientation 6 would train
on masks and boxes that miss their object. So when the tag says the stored pixels must be turned
(orientation 2..8) and the JSON's width / height are the upright size, the upright pixels are
written instead (re-encoded: JPEG at quality 95 with the original chroma subsampling, or PNG, in
the file's own format, without the tag). When the JSON size is the stored size and not the
upright one, the annotations were drawn on the stored pixels: the file is kept as it is. When
neither matches, the image is skipped.

No TensorFlow here (runs in the converter's worker processes).
"""
import collections
import io

from PIL import Image
from PIL import ImageOps
from PIL import JpegImagePlugin

SKIP_UNREADABLE_IMAGE = 'unreadable_image'
SKIP_UNSUPPORTED_FORMAT = 'unsupported_image_format'
SKIP_SIZE_MISMATCH = 'image_size_differs_from_json'

# What happened to an image with an EXIF orientation other than 1 (ImageRead.exif).
EXIF_ROTATED = 'rotated_upright'
EXIF_KEPT_AS_STORED = 'kept_as_stored'

_ORIENTATION_TAG = 0x0112
_SWAPS_WIDTH_AND_HEIGHT = (5, 6, 7, 8)
_JPEG_QUALITY = 95

ImageRead = collections.namedtuple('ImageRead', [
    'encoded',  # bytes to store in image/encoded
    'format',   # 'jpeg' | 'png'
    'exif',     # None (orientation 1 or none), EXIF_ROTATED or EXIF_KEPT_AS_STORED
    'height',   # int, pixels of the stored image (upright when EXIF_ROTATED)
    'width',    # int
], defaults=(None, None))


class ImageSkipped(Exception):
  """The image cannot be used; `reason` is a skip reason above, `detail` says why."""

  def __init__(self, reason, detail):
    super().__init__('%s (%s)' % (reason, detail))
    self.reason = reason
    self.detail = detail


def exif_orientation(pil_image):
  """The EXIF orientation tag (1..8); 1 when absent, unreadable or out of range."""
  try:
    value = pil_image.getexif().get(_ORIENTATION_TAG, 1)
  except Exception:  # pylint: disable=broad-except
    return 1  # A damaged EXIF block: the pixels are still usable as stored.
  return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _upright_bytes(pil_image, image_format):
  upright = ImageOps.exif_transpose(pil_image)
  output = io.BytesIO()
  options = {}
  icc_profile = pil_image.info.get('icc_profile')
  if icc_profile:
    options['icc_profile'] = icc_profile
  if image_format == 'JPEG':
    options['quality'] = _JPEG_QUALITY
    sampling = JpegImagePlugin.get_sampling(pil_image)
    if sampling >= 0:
      options['subsampling'] = sampling
  upright.save(output, format=image_format, **options)
  return output.getvalue()


def read_bytes(path):
  """The bytes of a file: a local path, or a URL TensorFlow's file systems read (gs://, hdfs://).

  Local paths use Python's `open` (no TensorFlow in the forked workers' hot path); URLs, as a
  Beam pipeline on a cluster reads them, go through `tf.io.gfile`.

  Raises:
    OSError: the file cannot be read (`strerror` says why).
  """
  if '://' not in path:
    with open(path, 'rb') as fid:
      return fid.read()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    with tf.io.gfile.GFile(path, 'rb') as fid:
      return fid.read()
  except tf.errors.OpError as e:
    raise OSError(2, e.message.splitlines()[0] if e.message else type(e).__name__) from None


def read_image(path, expected_height=None, expected_width=None):
  """Reads, decodes and checks one image; returns the bytes to store.

  Args:
    path: the image file.
    expected_height, expected_width: the COCO JSON's size of the image; None for formats that
      do not list it (Open Images, PNG masks): the upright size is then taken, and an image with
      an EXIF orientation is always turned upright (its masks are drawn on the displayed photo).

  Returns:
    ImageRead.

  Raises:
    ImageSkipped: the file is missing or cannot be decoded (SKIP_UNREADABLE_IMAGE), is not a JPEG
      or PNG (SKIP_UNSUPPORTED_FORMAT), or neither its stored nor its upright size is the JSON's
      (SKIP_SIZE_MISMATCH).
  """
  try:
    encoded = read_bytes(path)
  except OSError as e:
    raise ImageSkipped(SKIP_UNREADABLE_IMAGE, 'cannot open: %s' % e.strerror) from None
  try:
    with Image.open(io.BytesIO(encoded)) as pil_image:
      image_format = pil_image.format
      pil_image.load()  # Decodes every pixel: catches truncated and corrupt files.
      width, height = pil_image.size
      if image_format not in ('JPEG', 'PNG'):
        raise ImageSkipped(SKIP_UNSUPPORTED_FORMAT,
                           '%s (only JPEG and PNG are stored)' % image_format)
      orientation = exif_orientation(pil_image)
      upright = (width, height) if orientation in _SWAPS_WIDTH_AND_HEIGHT else (height, width)
      if expected_height is None or expected_width is None:
        expected_height, expected_width = upright
      expected = (expected_height, expected_width)
      if orientation == 1:
        if (height, width) != expected:
          raise ImageSkipped(SKIP_SIZE_MISMATCH, 'file is %dx%d (HxW), JSON says %dx%d' % (
              height, width, expected_height, expected_width))
        return ImageRead(encoded, image_format.lower(), None, height, width)
      if upright == expected:
        return ImageRead(_upright_bytes(pil_image, image_format), image_format.lower(),
                         EXIF_ROTATED, upright[0], upright[1])
      if (height, width) == expected:
        return ImageRead(encoded, image_format.lower(), EXIF_KEPT_AS_STORED, height, width)
      raise ImageSkipped(SKIP_SIZE_MISMATCH, 'file is %dx%d (HxW) upright (EXIF orientation %d; '
                         '%dx%d as stored), JSON says %dx%d' % (
                             upright[0], upright[1], orientation, height, width,
                             expected_height, expected_width))
  except ImageSkipped:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise ImageSkipped(SKIP_UNREADABLE_IMAGE, 'cannot decode: %s' % e) from None
