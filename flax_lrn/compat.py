"""Drop-in LRN with the parameters of TensorFlow, PyTorch, ONNX and Caffe.

Every framework computes ``y = x * (k + a * sum(x[window] ** 2)) ** -beta``
but means something different by the same parameter names: TensorFlow's
alpha is used as given and its window is ``2 * depth_radius + 1`` wide;
PyTorch, ONNX and Caffe divide alpha by the window size; PyTorch and ONNX put
the extra channel of an even window on opposite sides; Caffe's
within-channel mode ignores ``k``. Each function here takes one framework's
parameters, with its names and defaults, and computes what that framework
computes, so porting a model is a change of import:

* ``tf.nn.local_response_normalization`` (``tf.nn.lrn``): :func:`tensorflow`;
* ``torch.nn.functional.local_response_norm``, ``nn.LocalResponseNorm``:
  :func:`torch`;
* the ONNX ``LRN`` operator: :func:`onnx`;
* Caffe's ``LRN`` layer: :func:`caffe`.

The modules :class:`flax_lrn.LRN` and :class:`flax_lrn.nnx.LRN` have the
same constructors: ``LRN.from_tensorflow``, ``LRN.from_torch``,
``LRN.from_onnx`` and ``LRN.from_caffe``.

Each function only adds a keyword-only ``channel_axis``, defaulting to the
framework's layout (last axis for TensorFlow, axis 1 for the others). All
of them accept any rank that has the channel axis, where the upstreams
insist on 4-D (TensorFlow, ONNX Runtime, Caffe) or at least 3-D (PyTorch):
an across-channel window only runs along the channel axis, so every other
axis is a batch axis and the result is the one the upstream gives after a
reshape. Inputs are computed in float32 (float64 for float64 input) and
returned in their own dtype.
"""

from flax_lrn._conventions.lrn_front_ends import caffe, onnx, tensorflow, torch

__all__ = ("caffe", "onnx", "tensorflow", "torch")
