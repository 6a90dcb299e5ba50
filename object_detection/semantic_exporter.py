"""SavedModel serving function of a semantic segmentation model (`model { semantic_segmentation }`).

`exporter_lib_v2.save_detection_model` / `export_inference_graph` (and so `exporter_main.py`)
hand a model for which `semantic_segmentation_meta_arch.is_semantic_model(model)` is true to
`SemanticSegmentationModule`; the export folder is the detection exporter's (checkpoint/ckpt-0,
saved_model/, pipeline.config, openvino/ with `--output_format=openvino`; written atomically).

Signature `serving_default`, input `input_tensor`:
  image_tensor:                 uint8 [B, H, W, 3] RGB (B >= 1: images of one size).
  float_image_tensor:           float32 [B, H, W, 3] RGB in 0..255 (no normalization).
  encoded_image_string_tensor:  string [1], JPEG / PNG / BMP / GIF bytes.
  tf_example:                   string [1], a serialized tf.train.Example with `image/encoded`.

Outputs, AT THE INPUT IMAGE SIZE H x W:
  semantic_probabilities  float32 [B, H, W, num_classes + 1]: the model's softmax probabilities
                          (channel 0 = background, channel k = label map id k) cropped to each
                          image's true (unpadded) region of the model input, then resized to
                          H x W bilinearly (`tf.image.resize`, half-pixel centres, no antialias,
                          as PyTorch `interpolate(mode='bilinear', align_corners=False)` and
                          mmsegmentation's `resize` of logits). Each pixel's values still sum to
                          1 (a bilinear sample is a convex combination).
  semantic_classes        int32 [B, H, W]: argmax over the channels of `semantic_probabilities`
                          (0 = background, k = label map id k; ties go to the lower id, as
                          `tf.argmax` / `numpy.argmax`). Never the ignore label.
Memory: `semantic_probabilities` holds H * W * (num_classes + 1) float32 values per image
(a 640x480 photo with 81 classes: 100 MB).

The module also records `input_type` (string) and `num_classes` (int32, without background) as
variables of the SavedModel (`loaded.num_classes.numpy()`). The SavedModel holds only TensorFlow
ops and the model's variables: loading it needs neither this project nor its Keras layers.
"""

import tensorflow as tf

from object_detection import exporter_lib_v2

SEMANTIC_PROBABILITIES = 'semantic_probabilities'
SEMANTIC_CLASSES = 'semantic_classes'
OUTPUT_NAMES = (SEMANTIC_CLASSES, SEMANTIC_PROBABILITIES)


def _input_spec(input_type):
  """(TensorSpec of `input_tensor`, function turning it into uint8/float32 [B, H, W, 3])."""
  name = exporter_lib_v2.INPUT_TENSOR_NAME
  if input_type == 'image_tensor':
    return tf.TensorSpec([None, None, None, 3], tf.uint8, name=name), lambda x: x
  if input_type == 'float_image_tensor':
    return tf.TensorSpec([None, None, None, 3], tf.float32, name=name), lambda x: x
  decode = {'encoded_image_string_tensor': exporter_lib_v2._decode_image,  # pylint: disable=protected-access
            'tf_example': exporter_lib_v2._decode_tf_example}[input_type]  # pylint: disable=protected-access
  # Batch 1: decoded images of different sizes cannot be stacked.
  return tf.TensorSpec([1], tf.string, name=name), lambda x: tf.map_fn(
      decode, x, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


def probabilities_at_input_size(probabilities, true_image_shapes, height, width):
  """Crops model-resolution probabilities to the true image region and resizes them to H x W.

  Args:
    probabilities: float32 [B, h, w, C + 1] at the preprocessed (padded) model input resolution.
    true_image_shapes: int32 [B, 3], the resized image's [true_h, true_w, 3] inside the padded
      input. Images of one batch share one input size, so the resizer gives them one true shape:
      row 0 is used for the whole batch.
    height, width: int scalars, the input image size.

  Returns:
    float32 [B, height, width, C + 1]: `tf.image.resize(..., method='bilinear')` (half-pixel
    centres, no antialias) of `probabilities[:, :true_h, :true_w]`.
  """
  true_height, true_width = true_image_shapes[0, 0], true_image_shapes[0, 1]
  cropped = probabilities[:, :true_height, :true_width, :]
  return tf.image.resize(cropped, tf.stack([height, width]), method='bilinear')


class SemanticSegmentationModule(tf.Module):
  """Wraps a SemanticSegmentationModel: decode -> preprocess -> predict -> postprocess -> resize.

  Only the model's variables are tracked (not its Keras layers), as in
  `exporter_lib_v2.DetectionInferenceModule`.
  """

  def __init__(self, model, input_type='image_tensor'):
    """Constructor.

    Args:
      model: a `SemanticSegmentationModel` with its variables built and restored.
      input_type: one of `exporter_lib_v2.INPUT_TYPES`.

    Raises:
      ValueError: an unknown input_type.
      exporter_lib_v2.ExportError: the model has no variables (not built / restored).
    """
    super().__init__(name='semantic_segmentation_inference_module')
    if input_type not in exporter_lib_v2.INPUT_TYPES:
      raise ValueError('Unknown input_type %r: use one of %s.' % (
          input_type, ', '.join(exporter_lib_v2.INPUT_TYPES)))
    object.__setattr__(self, '_model', model)  # Not tracked (see the class docstring).
    self.model_variables = list(model.variables)
    if not self.model_variables:
      raise exporter_lib_v2.ExportError(
          'The semantic segmentation model has no variables: build and restore it (e.g. with '
          'checkpoint_utils.restore_for_inference) before exporting.')
    self._input_type = input_type
    self.input_type = tf.Variable(input_type, trainable=False, dtype=tf.string,
                                  name='input_type')
    self.num_classes = tf.Variable(int(model.num_classes), trainable=False, dtype=tf.int32,
                                   name='num_classes')

  def run_on_images(self, images):
    """uint8 or float32 [B, H, W, 3] RGB 0..255 -> dict of the outputs (module docstring)."""
    images = tf.cast(images, tf.float32)
    shape = tf.shape(images)
    preprocessed, true_image_shapes = self._model.preprocess(images)
    prediction_dict = self._model.predict(preprocessed, true_image_shapes)
    postprocessed = self._model.postprocess(prediction_dict, true_image_shapes)
    probabilities = probabilities_at_input_size(
        tf.cast(postprocessed[SEMANTIC_PROBABILITIES], tf.float32), true_image_shapes,
        shape[1], shape[2])
    return {SEMANTIC_PROBABILITIES: probabilities,
            SEMANTIC_CLASSES: tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

  def concrete_function(self):
    """The traced serving function (input `input_tensor`)."""
    spec, to_images = _input_spec(self._input_type)

    @tf.function(input_signature=[spec])
    def serve(input_tensor):
      return self.run_on_images(to_images(input_tensor))

    return serve.get_concrete_function()


def inference_module(model, input_type, jit_compile=False):
  """The module `exporter_lib_v2.save_detection_model` saves for a semantic model.

  Raises:
    exporter_lib_v2.ExportError: jit_compile (semantic models are served without XLA), or a model
      without variables.
  """
  if jit_compile:
    raise exporter_lib_v2.ExportError(
        '--jit_compile: semantic_segmentation models are exported without XLA; leave the flag '
        'out.')
  return SemanticSegmentationModule(model, input_type)
