"""Sub-models of a Keras functional model (TF OD API `utils/model_util.extract_submodel`).

Faster R-CNN's box classifier (e.g. ResNet conv5) is the part of the classification backbone between two
of its tensors. `extract_submodel` re-applies the backbone's own layers (sharing their variables) to a new
input, so the box classifier model holds the same layer objects as the backbone, in the same order as the
TF OD API's sub-model, and its checkpoint keys (`layer_with_weights-N`) are the TF OD API's.
"""

import tf_keras


def extract_submodel(model, inputs, outputs, name=None):
  """Returns a `tf_keras.Model` computing `outputs` from `inputs` with `model`'s layers.

  The graph is walked from each output back to `inputs`, depth first through each layer's inputs in
  order (memoized), and every layer met is called again on the new tensors: the new model's layer order,
  and so its checkpoint keys, follow the TF OD API's function of the same name.

  Args:
    model: a functional `tf_keras.Model` whose layers each have a single output tensor.
    inputs: a symbolic tensor of `model` (or a list of them) that becomes the new model's input(s).
    outputs: a symbolic tensor of `model` (or a list of them) downstream of `inputs`.
    name: optional name of the new model.

  Returns:
    tf_keras.Model sharing the layers (and variables) of `model`.

  Raises:
    KeyError: an output does not depend on `inputs` only (the walk reaches the model's own input).
  """
  producer = {}
  for layer in model.layers:
    producer[layer.output.ref()] = (layer, layer.input)
  input_list = inputs if isinstance(inputs, list) else [inputs]
  input_refs = {t.ref() for t in input_list}
  new_inputs = {}
  memo = {}

  def rebuild(tensor):
    ref = tensor.ref()
    if ref in memo:
      return memo[ref]
    if ref in input_refs:
      if ref not in new_inputs:
        new_inputs[ref] = tf_keras.layers.Input(tensor=tensor)
      result = new_inputs[ref]
    else:
      layer, layer_inputs = producer[ref]
      if isinstance(layer_inputs, list):
        result = layer([rebuild(t) for t in layer_inputs])
      else:
        result = layer(rebuild(layer_inputs))
    memo[ref] = result
    return result

  if isinstance(outputs, list):
    model_outputs = [rebuild(t) for t in outputs]
  else:
    model_outputs = rebuild(outputs)
  model_inputs = [new_inputs[t.ref()] for t in input_list]
  return tf_keras.Model(inputs=model_inputs if isinstance(inputs, list) else model_inputs[0],
                        outputs=model_outputs, name=name)
