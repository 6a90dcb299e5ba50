"""Complexity figures (utils/model_stats.py, object_detection.complexity) against a hand count.

The tiny Mask R-CNN of tests/mask_rcnn_test_utils.py is counted by hand from its config's layer
shapes: the backbone, RPN, box classifier at first_stage_max_proposals boxes, mask branch at
max_total_detections boxes. Convolutions, matmuls, the mask head's einsums, bias adds and the pools
must match exactly; what is left is element-wise arithmetic (input normalisation, anchor / box
decoding, softmax), which must stay under 0.1% of the total.
"""
import math
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from object_detection import complexity
from object_detection.utils import model_stats
from tests import mask_rcnn_test_utils

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEPTH = 32  # test_tiny_extractor_32
NUM_CLASSES = 3
PROPOSALS = 32  # tiny_model_config's first_stage_max_proposals
DETECTIONS = 10  # its max_total_detections
RPN_DEPTH = 512  # first_stage_box_predictor_depth (default)
ANCHORS = 9  # 3 scales x 3 aspect ratios
KEEP_ASPECT = 'keep_aspect_ratio_resizer { min_dimension: 48 max_dimension: 64 }'


def _hand_count(height, width):
  """FLOPs (a multiply-add = 2) by op type of the tiny Mask R-CNN on a height x width input."""
  count = {'Conv2D': 0, 'BiasAdd': 0, 'MatMul': 0, 'Einsum': 0, 'MaxPool': 0, 'Mean': 0}

  def conv(n, h, w, kernel, c_in, c_out):
    count['Conv2D'] += 2 * n * h * w * c_out * kernel * kernel * c_in
    count['BiasAdd'] += n * h * w * c_out

  # Backbone: three stride-2 3x3 convs (SAME), each followed by a stride-1 3x3 conv.
  h, w, c_in = height, width, 3
  for depth in (DEPTH // 2, DEPTH, DEPTH):
    h, w = math.ceil(h / 2), math.ceil(w / 2)
    conv(1, h, w, 3, c_in, depth)
    conv(1, h, w, 3, depth, depth)
    c_in = depth
  # RPN: 3x3 conv to 512, then 1x1 box (4 per anchor) and objectness (2 per anchor) heads.
  conv(1, h, w, 3, DEPTH, RPN_DEPTH)
  conv(1, h, w, 1, RPN_DEPTH, 4 * ANCHORS)
  conv(1, h, w, 1, RPN_DEPTH, 2 * ANCHORS)
  # 14x14 crops, 2x2 max pool -> 7x7, box classifier (two 3x3 convs to 2 * DEPTH): once for the
  # proposals, once for the detections of the mask branch.
  for boxes in (PROPOSALS, DETECTIONS):
    count['MaxPool'] += 4 * boxes * 7 * 7 * DEPTH  # TF's statistic: kernel area per output
    conv(boxes, 7, 7, 3, DEPTH, 2 * DEPTH)
    conv(boxes, 7, 7, 3, 2 * DEPTH, 2 * DEPTH)
  # Class and box heads: each averages the 7x7 features (Mean: one FLOP per input) and has an FC.
  count['Mean'] += 2 * PROPOSALS * 7 * 7 * 2 * DEPTH
  for units in (NUM_CLASSES + 1, 4 * NUM_CLASSES):
    count['MatMul'] += 2 * PROPOSALS * 2 * DEPTH * units
    count['BiasAdd'] += PROPOSALS * units
  # Mask head (mask_prediction_conv_depth 0: the TF OD API's derived depth, 8 here): resize 7x7 ->
  # 14x14 then 3x3 conv to 8, run as three einsums (taps at 7x7, spread along rows, along columns;
  # keras_mask_head.resize_then_conv), then the last 3x3 conv to one mask per class.
  mask_depth = 2 ** round((2 * math.log2(2 * DEPTH) + 3 * math.log2(NUM_CLASSES)) / 5)
  assert mask_depth == 8
  count['Einsum'] += 2 * DETECTIONS * 7 * 7 * 2 * DEPTH * 9 * mask_depth
  count['Einsum'] += 2 * DETECTIONS * 14 * 3 * 7 * 3 * mask_depth * 7
  count['Einsum'] += 2 * DETECTIONS * 14 * 14 * mask_depth * 3 * 7
  conv(DETECTIONS, 14, 14, 3, mask_depth, NUM_CLASSES)
  return count


def _hand_parameters():
  """Scalars of every variable of the tiny Mask R-CNN (kernels + biases)."""
  def conv(kernel, c_in, c_out):
    return kernel * kernel * c_in * c_out + c_out
  backbone = (conv(3, 3, 16) + conv(3, 16, 16) + conv(3, 16, 32) + conv(3, 32, 32)
              + 2 * conv(3, 32, 32))
  rpn = (conv(3, DEPTH, RPN_DEPTH) + conv(1, RPN_DEPTH, 4 * ANCHORS)
         + conv(1, RPN_DEPTH, 2 * ANCHORS))
  box_classifier = conv(3, DEPTH, 2 * DEPTH) + conv(3, 2 * DEPTH, 2 * DEPTH)
  heads = conv(1, 2 * DEPTH, NUM_CLASSES + 1) + conv(1, 2 * DEPTH, 4 * NUM_CLASSES)
  mask_head = conv(3, 2 * DEPTH, 8) + conv(3, 8, NUM_CLASSES)
  return backbone + rpn + box_classifier + heads + mask_head


def _built_model(**kwargs):
  model = mask_rcnn_test_utils.tiny_model(is_training=False, **kwargs)
  mask_rcnn_test_utils.build_variables(model, tf.zeros([1, 64, 64, 3]))
  return model


@pytest.fixture(name='fixed_model', scope='module')
def fixture_fixed_model():
  return _built_model()  # fixed_shape_resizer 64x64


def _check_against_hand_count(stats, height, width):
  expected = _hand_count(height, width)
  by_type = {k: int(round(v * 1e9)) for k, v in stats['gflops_by_op_type'].items()}
  for op_type, flops in expected.items():
    assert by_type.get(op_type) == flops, (op_type, by_type.get(op_type), flops)
  total = int(round(stats['gflops_per_image'] * 1e9))
  rest = total - sum(expected.values())
  # The rest: element-wise ops, at least the input normalisation x / 127.5 - 1 (2 per input value).
  assert 2 * height * width * 3 <= rest < 1e-3 * total, (rest, total)
  # No convolution, matmul or einsum was left out for a data-dependent shape.
  assert not {'Conv2D', 'MatMul', 'Einsum'} & set(stats['flops_ops_with_dynamic_shapes'])


def test_gflops_and_parameters_equal_the_hand_count(fixed_model):
  stats = model_stats.model_stats(fixed_model, (64, 64))
  _check_against_hand_count(stats, 64, 64)
  assert sum(_hand_count(64, 64).values()) == 272_950_072
  assert stats['num_parameters'] == stats['num_trainable_parameters'] == _hand_parameters()
  assert _hand_parameters() == 272_121
  assert stats['gflops_image_size'] == [64, 64]
  assert (stats['second_stage_boxes'], stats['mask_boxes']) == (PROPOSALS, DETECTIONS)
  assert model_stats.complexity_lines(stats) == [
      'Parameters: 0.27 M (0.27 M trainable)',
      'GFLOPs per image: 0.27 at 64x64 (second stage at 32 proposals, masks at 10 detections)']


def test_flops_are_counted_at_the_resized_size_whatever_the_photo_size():
  model = _built_model(resizer=KEEP_ASPECT)
  # A 120x160 photo runs at 48x64 (min_dimension 48): the count is that of a 48x64 input, nothing
  # of the 120x160 photo (the resize op has no FLOP statistic, and is traced at 48x64).
  large = model_stats.model_stats(model, (120, 160))
  assert large['gflops_image_size'] == [48, 64]
  assert large['gflops_original_image_size'] == [120, 160]
  _check_against_hand_count(large, 48, 64)
  assert model_stats.complexity_lines(large)[1] == (
      'GFLOPs per image: 0.26 at 48x64 (the model input of a 120x160 image; second stage at 32 '
      'proposals, masks at 10 detections)')


def test_complexity_lines_without_flops():
  stats = {'num_parameters': 3_620_000, 'num_trainable_parameters': 3_580_000,
           'gflops_per_image': None, 'gflops_image_size': [256, 256]}
  assert model_stats.complexity_lines(stats) == [
      'Parameters: 3.62 M (3.58 M trainable)',
      'GFLOPs per image: not measured (tracing the model failed; see the log)']


def test_einsum_flops_follow_the_equation():
  graph = tf.Graph()
  with graph.as_default():
    x = tf.compat.v1.placeholder(tf.float32, [5, 6, 7])
    y = tf.compat.v1.placeholder(tf.float32, [7, 3])
    tf.einsum('bij,jk->bik', x, y)  # summed over j: 2 * 5*6*7*3
    tf.einsum('bij,k->bijk', x, tf.compat.v1.placeholder(tf.float32, [4]))  # outer: 5*6*7*4
    tf.einsum('bij,jk->bik', tf.compat.v1.placeholder(tf.float32, [None, 6, 7]), y)  # dynamic
  total, by_type, dynamic = model_stats.count_graph_flops(graph)
  assert by_type == {'Einsum': 2 * 5 * 6 * 7 * 3 + 5 * 6 * 7 * 4} and total == by_type['Einsum']
  assert dynamic == {'Einsum': 1}


def _write_pipeline(tmp_path, resizer=None):
  text = mask_rcnn_test_utils.mask_rcnn_config_text(
      'test_tiny_extractor_%d' % DEPTH, mask_rcnn_test_utils.TINY_ANCHORS,
      num_classes=NUM_CLASSES, max_proposals=PROPOSALS, second_stage_batch_size=16, stride=8,
      resizer=resizer)
  path = tmp_path / 'pipeline.config'
  path.write_text('model {\n%s\n}\n' % text)
  return str(path)


def test_tool_prints_the_lines(tmp_path, capsys):
  path = _write_pipeline(tmp_path)
  code = complexity.run(['complexity', '--pipeline_config_path=%s' % path, '--image_size=48,80'])
  out, err = capsys.readouterr()
  assert code == 0, err
  assert out.splitlines() == [
      'Parameters: 0.27 M (0.27 M trainable)',
      'GFLOPs per image: 0.27 at 64x64 (the model input of a 48x80 image; second stage at 32 '
      'proposals, masks at 10 detections)']


def test_tool_default_size_of_a_keep_aspect_ratio_resizer(tmp_path, capsys):
  path = _write_pipeline(tmp_path, resizer=KEEP_ASPECT)
  assert complexity.run(['complexity', '--pipeline_config_path=%s' % path]) == 0
  lines = capsys.readouterr().out.splitlines()
  # min_dimension x max_dimension: the largest input this resizer gives.
  expected = sum(_hand_count(48, 64).values()) / 1e9
  assert lines[1].startswith('GFLOPs per image: %.2f at 48x64 (second stage' % expected)
  assert lines[2].startswith('Counted at the largest input keep_aspect_ratio_resizer gives')


class _Built(Exception):
  """Raised instead of building the model: the command got past every check."""


def _never_build(monkeypatch):
  def build(model_config, image_size):
    raise _Built(tuple(image_size))
  monkeypatch.setattr(complexity, 'build_model', build)


def test_tool_image_size_n_means_n_by_n(tmp_path, monkeypatch):
  _never_build(monkeypatch)
  config = _write_pipeline(tmp_path)
  with pytest.raises(_Built) as info:
    complexity.run(['complexity', '--pipeline_config_path=%s' % config, '--image_size=480'])
  assert info.value.args == ((480, 480),)


@pytest.mark.parametrize('flags, message', [
    ([], 'Usage error: --pipeline_config_path is required (e.g. '
         '--pipeline_config_path=samples/configs/mask_rcnn_sample_cpu.config).'),
    (['--pipeline_config_path={config}', '--image_size=4,8,0'],
     'Usage error: --image_size=4,8,0: give the image height and width in pixels as H,W (e.g. '
     '--image_size=480,640).'),
    (['--pipeline_config_path={config}', '--imagesize=4,8'],
     "Usage error: Unknown command line flag 'imagesize'. Did you mean: image_size ? (the flags "
     'are --pipeline_config_path, --image_size and --config_override; --help describes them).'),
    (['--pipeline_config_path={config}',
      '--config_override=model { faster_rcnn { image_resizer { identity_resizer {} } } }'],
     'Usage error: --image_size is required: model.faster_rcnn.image_resizer is '
     'identity_resizer, whose output size follows the image (e.g. --image_size=480,640).'),
    (['--pipeline_config_path={config}',
      '--config_override=model { faster_rcnn { num_classes: 0 } }'],
     'Config error in {config}: Invalid pipeline config: `model.faster_rcnn.num_classes` is 0; '
     'it must be >= 1 (the number of classes without background, i.e. the largest label map '
     'id).'),
])
def test_tool_bad_flags_and_configs_are_one_line(tmp_path, capsys, monkeypatch, flags, message):
  _never_build(monkeypatch)  # every error comes before the model is built
  config = _write_pipeline(tmp_path)
  code = complexity.run(['complexity'] + [f.replace('{config}', config) for f in flags])
  out, err = capsys.readouterr()
  assert (code, err.splitlines(), out) == (2, [message.replace('{config}', config)], '')


def test_tool_subprocess_missing_config_exits_2_with_one_line(tmp_path):
  missing = str(tmp_path / 'missing.config')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run(
      [sys.executable, '-m', 'object_detection.complexity', '--pipeline_config_path=' + missing],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines() if 'error' in line.lower()]
  assert errors == ['Config error in %s: Pipeline config file not found: %s (check '
                    '--pipeline_config_path; relative paths start at %s).'
                    % (missing, missing, REPO_ROOT)]
  assert 'Traceback' not in result.stderr and result.stdout == ''


class _LoopModel(tf.Module):
  """x @ w three times in a tf.while_loop: a graph whose ops live in function bodies."""

  def __init__(self):
    super().__init__()
    self.w = tf.Variable(tf.ones([4, 4]))

  def __call__(self, images, training=False):
    x = tf.reshape(images, [1, 16])[:, :4]
    _, x = tf.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, tf.matmul(x, self.w)), [0, x])
    return x


def test_ops_in_a_loop_are_reported_not_counted():
  breakdown = model_stats.flop_breakdown(_LoopModel(), (2, 8), num_channels=1)
  # The traced graph holds only a While op; freezing brings the body's ops out, but a loop-carried
  # value has no static shape, so its matmul is listed as not counted rather than silently missed.
  assert breakdown['flops'] == 0
  assert breakdown['ops_with_dynamic_shapes'] == {'MatMul': 1, 'AddV2': 2, 'Less': 1}
