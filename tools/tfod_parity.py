"""Builds the TF OD API's model and ours from one config and compares them tensor by tensor.

  python tools/tfod_parity.py --tfod_research_dir=/path/to/models/research \\
      --pipeline_config_path=samples/configs/parity/mask_rcnn_resnet50_c4.config [--image_size=...]

1. Inputs: real photos and their instance annotations from the bundled coco128_seg sample
   (`--image_ids`, default two val images with large instances), masks rasterised with pycocotools.
2. Reference: runs tools/tfod_parity_reference.py in a subprocess with `--python` (a Python whose
   environment can import the TF OD API; see docs/parity.md for the setup and the four patches it needs on
   TF 2.20). It builds the TF OD API's inference model from the config, sets its weights
   (deterministic values keyed by checkpoint key), runs preprocess / predict / postprocess, saves the
   weights as a TF2 checkpoint, then builds the training model, restores the same weights and computes the
   losses on one batch with the ground truth.
3. Ours: builds this project's models from the same config, restores that checkpoint by key (every
   variable must be found, with the same shape, which is the checkpoint-compatibility test), runs the same
   calls and prints the max abs difference of each tensor (RPN outputs, proposals, box classifier outputs,
   detections, masks, losses) against the targets: same detection classes, boxes and scores within 1e-4,
   masks within 1e-3, losses within 1e-4 relative.

Training-loss parity needs sampling to take every candidate, so the tool overrides (in both models)
`first_stage_minibatch_size` to 1000000, `second_stage_batch_size` to `first_stage_max_proposals` and
`second_stage_balance_fraction` to 1.0; `--keep_sampling` keeps the config's values (the losses then
depend on random draws and are not compared).

`--image_size` replaces the config's image resizer by a fixed_shape_resizer of that size (a small run);
`--write_golden DIR` also writes the inputs, the reference tensors and a key listing as a golden fixture
that tests/test_tfod_model_golden.py checks without the TF OD API (use with --golden_weights, which keeps
the deterministic weights out of the fixture: tests recreate them from the keys).

Exit status: 0 when every target holds, 1 otherwise, 2 on bad usage.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128 = os.path.join(REPO_ROOT, 'samples', 'data', 'coco128_seg')
DEFAULT_IMAGE_IDS = (34, 81)  # a zebra and an airplane: large instances (train split)

# Tensor groups and their targets: (max abs tolerance, relative tolerance).
TARGETS = {
    'boxes': (1e-4, None),
    'scores': (1e-4, None),
    'masks': (1e-3, None),
    'losses': (None, 1e-4),
    'other': (None, None),  # reported, not a target
}


def _group(key):
  name = key.split('/', 1)[1]
  if name.startswith('Loss/'):
    return 'losses'
  if name.startswith('detection_masks'):
    return 'masks'
  if name.startswith(('detection_boxes', 'proposal_boxes', 'raw_detection_boxes')):
    return 'boxes'
  if name.startswith(('detection_scores', 'raw_detection_scores', 'detection_multiclass_scores')):
    return 'scores'
  return 'other'


def load_inputs(image_ids, split='train', max_image_side=0):
  """Reads the photos and their annotations: dict for the reference side's npz.

  With `max_image_side`, each photo (and its masks) is first shrunk so its longer side is at most that
  (small golden fixtures); boxes are normalized, so they stay as annotated.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from pycocotools import mask as mask_util  # pylint: disable=g-import-not-at-top
  with open(os.path.join(COCO128, 'annotations', 'instances_%s.json' % split)) as f:
    coco = json.load(f)
  out = {'num_images': np.array(len(image_ids))}
  for i, image_id in enumerate(image_ids):
    info = next((im for im in coco['images'] if im['id'] == image_id), None)
    if info is None:
      raise ValueError('--image_ids: image %d is not in the %s split of %s' % (image_id, split, COCO128))
    photo = Image.open(os.path.join(COCO128, 'images', info['file_name'])).convert('RGB')
    original_size = photo.size
    if max_image_side and max(photo.size) > max_image_side:
      scale = max_image_side / float(max(photo.size))
      photo = photo.resize((max(1, round(photo.size[0] * scale)), max(1, round(photo.size[1] * scale))),
                           Image.BILINEAR)
    image = np.asarray(photo)
    height, width = info['height'], info['width']
    anns = [a for a in coco['annotations'] if a['image_id'] == image_id and not a.get('iscrowd')]
    boxes, classes, masks = [], [], []
    for a in anns:
      x, y, w, h = a['bbox']
      boxes.append([y / height, x / width, (y + h) / height, (x + w) / width])
      classes.append(a['category_id'])
      rles = mask_util.frPyObjects(a['segmentation'], height, width)
      masks.append(mask_util.decode(mask_util.merge(rles)))
    masks = np.array(masks, np.uint8).reshape(-1, height, width)
    if photo.size != original_size:
      masks = np.stack([np.asarray(Image.fromarray(m).resize(photo.size, Image.NEAREST)) for m in masks]
                       ) if len(masks) else np.zeros([0, image.shape[0], image.shape[1]], np.uint8)
    out['image_%d' % i] = image
    out['boxes_%d' % i] = np.array(boxes, np.float32).reshape(-1, 4)
    out['classes_%d' % i] = np.array(classes, np.int32)
    out['masks_%d' % i] = masks
  return out


def write_config(pipeline_config_path, output_path, image_size=None, keep_sampling=False,
                 config_override=''):
  """Writes the config both sides build: the user's (with `config_override`, a text-format
  TrainEvalPipelineConfig merged on top), resized and with full sampling if asked."""
  from object_detection.protos import pipeline_pb2  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from object_detection.utils import config_util  # pylint: disable=g-import-not-at-top
  configs = config_util.get_configs_from_pipeline_file(pipeline_config_path,
                                                       config_override=config_override or None)
  model = configs['model']
  frcnn = model.faster_rcnn
  if image_size:
    frcnn.image_resizer.fixed_shape_resizer.height = image_size
    frcnn.image_resizer.fixed_shape_resizer.width = image_size
  if not keep_sampling:
    frcnn.first_stage_minibatch_size = 1000000
    frcnn.second_stage_batch_size = frcnn.first_stage_max_proposals
    frcnn.second_stage_balance_fraction = 1.0
  pipeline = pipeline_pb2.TrainEvalPipelineConfig()
  pipeline.model.CopyFrom(model)
  # Only the model is compared; extension fields this project adds to other messages would not parse
  # in the TF OD API.
  with open(output_path, 'w') as f:
    f.write(text_format.MessageToString(pipeline))
  return pipeline


def run_reference(python, research_dir, config_path, inputs_path, output_dir, keep_initial_weights,
                  skip_training):
  env = dict(os.environ)
  env['TF_USE_LEGACY_KERAS'] = '1'
  env['PYTHONPATH'] = os.pathsep.join([research_dir, os.path.join(research_dir, 'slim')])
  cmd = [python, os.path.join(REPO_ROOT, 'tools', 'tfod_parity_reference.py'),
         '--pipeline_config_path', config_path, '--inputs', inputs_path, '--output_dir', output_dir]
  if keep_initial_weights:
    cmd.append('--keep_initial_weights')
  if skip_training:
    cmd.append('--skip_training')
  # The reference must not see this repository's package first: run from the output directory.
  result = subprocess.run(cmd, env=env, cwd=output_dir, capture_output=True, text=True)
  if result.returncode != 0:
    sys.stderr.write(result.stderr[-6000:])
    raise RuntimeError('the TF OD API reference run failed (exit %d); its stderr is above. Check '
                       '--tfod_research_dir and --python (docs/parity.md).' % result.returncode)
  return np.load(os.path.join(output_dir, 'reference.npz'))


def _to_numpy_dict(prefix, tensors):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out = {}
  for key, value in tensors.items():
    if isinstance(value, (list, tuple)):
      for i, v in enumerate(value):
        if isinstance(v, tf.Tensor):
          out['%s%s/%d' % (prefix, key, i)] = v.numpy()
    elif isinstance(value, tf.Tensor):
      out[prefix + key] = value.numpy()
  return out


def run_ours(pipeline, inputs, checkpoint_path, skip_training):
  """Our models on the same inputs with the reference weights: dict of numpy tensors (same keys)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from object_detection.builders import model_builder  # pylint: disable=g-import-not-at-top
  from object_detection.utils import checkpoint_utils  # pylint: disable=g-import-not-at-top
  out = {}
  model = model_builder.build(pipeline.model, is_training=False)
  preprocessed, true_shapes, groundtruth = prepare(model, inputs)
  model.predict(preprocessed, true_shapes)
  report = checkpoint_utils.restore_by_keys({'model': model}, checkpoint_path)
  _check_restore(report)
  prediction_dict = model.predict(preprocessed, true_shapes)
  detections = model.postprocess(prediction_dict, true_shapes)
  out['input/preprocessed'] = preprocessed.numpy()
  out['input/true_image_shapes'] = true_shapes.numpy()
  for i, mask in enumerate(groundtruth['groundtruth_masks_list']):
    out['input/masks/%d' % i] = mask.numpy()
  for i, boxes in enumerate(groundtruth['groundtruth_boxes_list']):
    out['input/boxes/%d' % i] = boxes.numpy()
  out.update(_to_numpy_dict('infer/', prediction_dict))
  out.update(_to_numpy_dict('infer/', detections))
  if not skip_training:
    train_model = model_builder.build(pipeline.model, is_training=True)
    train_model._is_training = False  # pylint: disable=protected-access
    train_model.predict(preprocessed, true_shapes)
    train_model._is_training = True  # pylint: disable=protected-access
    _check_restore(checkpoint_utils.restore_by_keys({'model': train_model}, checkpoint_path))
    train_model.provide_groundtruth(**groundtruth)
    train_predictions = train_model.predict(preprocessed, true_shapes)
    losses = train_model.loss(train_predictions, true_shapes)
    out.update(_to_numpy_dict('train/', train_predictions))
    out.update(_to_numpy_dict('train/', losses))
  return out


def prepare(model, inputs):
  """Same preparation as the reference side (tools/tfod_parity_reference.py `prepare`)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  preprocessed, shapes, boxes, classes, masks = [], [], [], [], []
  for i in range(int(inputs['num_images'])):
    image = tf.constant(inputs['image_%d' % i], tf.float32)
    pre, true_shape = model.preprocess(image[tf.newaxis])
    preprocessed.append(pre[0])
    shapes.append(true_shape[0])
    scale = tf.cast(true_shape[0, :2], tf.float32) / tf.cast(tf.shape(pre)[1:3], tf.float32)
    boxes.append(tf.constant(inputs['boxes_%d' % i], tf.float32) *
                 tf.concat([scale, scale], axis=0)[tf.newaxis])
    classes.append(tf.one_hot(tf.constant(inputs['classes_%d' % i], tf.int32) - 1, model.num_classes))
    _, resized_masks, _ = model._image_resizer_fn(image, tf.constant(inputs['masks_%d' % i], tf.uint8))  # pylint: disable=protected-access
    masks.append(tf.cast(resized_masks, tf.float32))
  groundtruth = {'groundtruth_boxes_list': boxes, 'groundtruth_classes_list': classes,
                 'groundtruth_masks_list': masks}
  return tf.stack(preprocessed), tf.stack(shapes), groundtruth


def _check_restore(report):
  problems = ['%s (missing)' % k for k in report.missing]
  problems += ['%s (checkpoint %s, ours %s)' % m for m in report.shape_mismatch]
  if problems or report.unused_checkpoint_keys:
    raise RuntimeError(
        'the TF OD API checkpoint does not fit our model: %d of our variables not restored (%s); %d '
        'checkpoint variables unused (%s)' % (len(problems), '; '.join(problems[:10]),
                                              len(report.unused_checkpoint_keys),
                                              '; '.join(report.unused_checkpoint_keys[:10])))


def _positive_rows_as_reference(ours):
  """Our training mask head may run on the positive proposals only (same loss): compare those rows."""
  rows_key, masks_key = 'train/positive_mask_rows', 'train/positive_mask_predictions'
  if rows_key in ours and masks_key in ours:
    return {'train/mask_predictions': (ours[rows_key], ours[masks_key])}
  return {}


def compare(reference, ours, other_tolerance=None):
  """Rows (key, group, shape, max abs diff, max rel diff, passed) for every reference tensor.

  A reference tensor our model computes only in part (the training mask predictions of the positive
  proposals) is compared on those rows. Tensors outside the target groups are reported; with
  `other_tolerance` = (atol, rtol) they must also satisfy np.allclose.
  """
  partial = _positive_rows_as_reference(ours)
  rows = []
  for key in sorted(reference.files if hasattr(reference, 'files') else reference):
    ref = np.asarray(reference[key])
    if key in partial and key not in ours:
      row_index, values = partial[key]
      ours = dict(ours)
      ours[key] = values
      ref = ref[row_index]
    if key not in ours:
      rows.append((key, _group(key), ref.shape, None, None, False))
      continue
    mine = np.asarray(ours[key])
    if mine.shape != ref.shape:
      rows.append((key, _group(key), (ref.shape, mine.shape), None, None, False))
      continue
    group = _group(key) if key.startswith(('infer/', 'train/')) else 'other'
    if ref.dtype.kind in 'fc':
      diff = np.abs(ref.astype(np.float64) - mine.astype(np.float64))
      max_abs = float(diff.max()) if diff.size else 0.0
      scale = np.maximum(np.abs(ref.astype(np.float64)), 1e-12)
      max_rel = float((diff / scale).max()) if diff.size else 0.0
    else:
      max_abs = float(np.abs(ref.astype(np.int64) - mine.astype(np.int64)).max()) if ref.size else 0.0
      max_rel = max_abs
    abs_tol, rel_tol = TARGETS[group]
    passed = True
    if key.endswith('detection_classes') or key.endswith('num_detections'):
      passed = max_abs == 0.0
    elif abs_tol is not None:
      passed = max_abs <= abs_tol
    elif rel_tol is not None:
      passed = max_rel <= rel_tol
    elif other_tolerance is not None:
      passed = bool(np.allclose(mine, ref, atol=other_tolerance[0], rtol=other_tolerance[1]))
    rows.append((key, group, ref.shape, max_abs, max_rel, passed))
  return rows


def print_rows(rows, stream=sys.stdout):
  width = max(len(r[0]) for r in rows)
  for key, group, shape, max_abs, max_rel, passed in rows:
    status = 'ok' if passed else ('FAIL' if group != 'other' or max_abs is None else 'differs')
    abs_text = 'missing' if max_abs is None else '%.3g' % max_abs
    rel_text = '' if max_rel is None else '%.3g' % max_rel
    stream.write('%-*s  %-7s %-22s max|d| %-10s rel %-10s %s\n' % (
        width, key, group, str(tuple(shape) if not isinstance(shape, tuple) else shape)[:22],
        abs_text, rel_text, status))


# The tensors a golden fixture keeps: what the model outputs and the losses (intermediate features are
# large and add nothing once these match).
GOLDEN_KEYS = ('infer/detection_', 'infer/num_detections', 'infer/num_proposals', 'infer/proposal_boxes',
               'infer/rpn_box_encodings', 'infer/rpn_objectness_predictions_with_background',
               'infer/anchors', 'infer/raw_detection_', 'infer/class_predictions_with_background',
               'infer/refined_box_encodings', 'train/Loss/', 'input/')


def write_golden(output_dir, inputs_path, config_path, work_dir, reference):
  """Copies the inputs, config and key listing and the GOLDEN_KEYS tensors of the reference."""
  os.makedirs(output_dir, exist_ok=True)
  shutil.copy(inputs_path, os.path.join(output_dir, 'inputs.npz'))
  shutil.copy(config_path, os.path.join(output_dir, 'pipeline.config'))
  shutil.copy(os.path.join(work_dir, 'keys.txt'), os.path.join(output_dir, 'keys.txt'))
  kept = {k: reference[k] for k in reference.files if k.startswith(GOLDEN_KEYS)}
  np.savez_compressed(os.path.join(output_dir, 'reference.npz'), **kept)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--tfod_research_dir', required=True,
                      help='the TF OD API checkout: the folder holding object_detection/ and slim/')
  parser.add_argument('--pipeline_config_path', required=True)
  parser.add_argument('--python', default=sys.executable,
                      help='Python that can import the TF OD API (a separate virtualenv, docs/parity.md)')
  parser.add_argument('--image_ids', default=','.join(map(str, DEFAULT_IMAGE_IDS)))
  parser.add_argument('--image_size', type=int, default=0,
                      help='replace the image resizer by a fixed_shape_resizer of this size')
  parser.add_argument('--keep_sampling', action='store_true')
  parser.add_argument('--keep_initial_weights', action='store_true')
  parser.add_argument('--skip_training', action='store_true')
  parser.add_argument('--work_dir', default='', help='keep the intermediate files here')
  parser.add_argument('--config_override', default='',
                      help='text-format TrainEvalPipelineConfig merged into the config (both sides)')
  parser.add_argument('--max_image_side', type=int, default=0,
                      help='shrink the photos to this longer side first (small golden fixtures)')
  parser.add_argument('--write_golden', default='',
                      help='write a golden fixture (inputs, config, key listing, reference tensors) here')
  parser.add_argument('--json_output', default='', help='write the comparison rows as JSON')
  args = parser.parse_args(argv)
  if not os.path.isdir(os.path.join(args.tfod_research_dir, 'object_detection')):
    parser.error('--tfod_research_dir %s has no object_detection/ folder' % args.tfod_research_dir)
  work_dir = args.work_dir or tempfile.mkdtemp(prefix='tfod_parity_')
  os.makedirs(work_dir, exist_ok=True)
  image_ids = [int(i) for i in args.image_ids.split(',') if i]
  inputs = load_inputs(image_ids, max_image_side=args.max_image_side)
  inputs_path = os.path.join(work_dir, 'inputs.npz')
  np.savez_compressed(inputs_path, **inputs)
  config_path = os.path.join(work_dir, 'pipeline.config')
  pipeline = write_config(args.pipeline_config_path, config_path, args.image_size, args.keep_sampling,
                          args.config_override)
  skip_training = args.skip_training or args.keep_sampling
  reference = run_reference(args.python, os.path.abspath(args.tfod_research_dir), config_path,
                            inputs_path, work_dir, args.keep_initial_weights, skip_training)
  ours = run_ours(pipeline, inputs, os.path.join(work_dir, 'ckpt-1'), skip_training)
  rows = compare(reference, ours)
  print_rows(rows)
  failed = [r for r in rows if not r[5] and r[1] != 'other']
  print('%s: %d tensors compared, %d targets failed' % (
      os.path.basename(args.pipeline_config_path), len(rows), len(failed)))
  if args.json_output:
    with open(args.json_output, 'w') as f:
      json.dump([{'key': k, 'group': g, 'max_abs': a, 'max_rel': r, 'passed': p}
                 for k, g, _, a, r, p in rows], f, indent=1)
  if args.write_golden:
    write_golden(args.write_golden, inputs_path, config_path, work_dir, reference)
  if not args.work_dir:
    shutil.rmtree(work_dir, ignore_errors=True)
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
