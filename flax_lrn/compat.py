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

from __future__ import annotations

import jax
from jax.typing import ArrayLike

from flax_lrn import _conventions, _docs
from flax_lrn._lrn import lrn

__all__ = ("caffe", "onnx", "tensorflow", "torch")

_document = _docs.document(
  returns="The normalized input, of the shape and dtype of ``x``.",
  raises=(
    "TypeError: if ``x`` is not an array of a real floating dtype, or a"
    " parameter has the wrong type.",
    "ValueError: if a parameter is outside its range, ``channel_axis`` is"
    " out of range for ``x``, or a within-channel window has no spatial"
    " axis.",
  ),
)


@_document
def tensorflow(
  x: ArrayLike,
  depth_radius: int = 5,
  bias: ArrayLike = 1.0,
  alpha: ArrayLike = 1.0,
  beta: ArrayLike = 0.5,
  *,
  channel_axis: int = -1,
) -> jax.Array:
  """``tf.nn.local_response_normalization`` (also ``tf.nn.lrn``).

  ``y = x / (bias + alpha * sum(x[c - r : c + r + 1] ** 2)) ** beta`` with
  ``r = depth_radius``: the window is ``2 * depth_radius + 1`` channels
  wide, so it is always odd, and alpha is used as given, *not* divided by
  the window size (unlike PyTorch, ONNX and Caffe). ``depth_radius`` is a
  half-width, not a size: ``size = 2 * depth_radius + 1``.

  TensorFlow only accepts 4-D NHWC input; this function accepts any rank
  ``>= 1`` and normalizes along ``channel_axis``, which equals TensorFlow on
  the input reshaped to 4-D with the channels last.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat
    >>> x = jnp.array([[[[-1.1, 0.6, 0.7, 1.2, -0.7, 0.1]]]])
    >>> compat.tensorflow(x, depth_radius=2, bias=9.0, alpha=4.0).round(6)
    Array([[[[-0.264926,  0.125109,  0.140112,  0.267261, -0.161788,
               0.024427]]]], dtype=float32)
  """
  kwargs = _conventions.tensorflow(depth_radius, bias, alpha, beta)
  return lrn(x, **kwargs, channel_axis=channel_axis)


@_document
def torch(
  x: ArrayLike,
  size: int,
  alpha: ArrayLike = 1e-4,
  beta: ArrayLike = 0.75,
  k: ArrayLike = 1.0,
  *,
  channel_axis: int = 1,
) -> jax.Array:
  """``torch.nn.functional.local_response_norm`` / ``nn.LocalResponseNorm``.

  ``y_c = x_c / (k + alpha / size * sum(x[c - size // 2 : c + (size - 1) //
  2 + 1] ** 2)) ** beta``: alpha is divided by ``size`` (the zero padding
  at the edges counts, so the divisor never changes), and an even window
  holds its extra channel *before* ``c``, the mirror image of ONNX.

  PyTorch needs at least 3-D input; this function accepts any rank that has
  ``channel_axis``.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat
    >>> x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1)
    >>> compat.torch(x, size=4, alpha=4.0, beta=1.0).ravel().round(6)
    Array([0.166667, 0.133333, 0.096774, 0.133333], dtype=float32)
  """
  kwargs = _conventions.torch(size, alpha, beta, k)
  return lrn(x, **kwargs, channel_axis=channel_axis)


@_document
def onnx(
  x: ArrayLike,
  size: int,
  alpha: ArrayLike = 1e-4,
  beta: ArrayLike = 0.75,
  bias: ArrayLike = 1.0,
  *,
  channel_axis: int = 1,
) -> jax.Array:
  """The ONNX ``LRN`` operator (opsets 1 and 13).

  ``y_c = x_c / (bias + alpha / size * sum(x[c - (size - 1) // 2 : c + size
  // 2 + 1] ** 2)) ** beta``: alpha is divided by ``size``, and an even
  window holds its extra channel *after* ``c`` (as cuDNN does), the mirror
  image of PyTorch. For odd sizes ONNX and PyTorch agree.

  ONNX Runtime only runs 4-D input and odd sizes; the ONNX specification
  defines any rank ``>= 3`` and even sizes, and this function follows the
  specification (any rank that has ``channel_axis``, any ``size >= 1``).

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat
    >>> x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1)
    >>> compat.onnx(x, size=4, alpha=4.0, beta=1.0).ravel().round(6)
    Array([0.066667, 0.064516, 0.1     , 0.153846], dtype=float32)
  """
  kwargs = _conventions.onnx(size, alpha, beta, bias)
  return lrn(x, **kwargs, channel_axis=channel_axis)


@_document
def caffe(
  x: ArrayLike,
  local_size: int = 5,
  alpha: ArrayLike = 1.0,
  beta: ArrayLike = 0.75,
  k: ArrayLike = 1.0,
  norm_region: str = "across_channels",
  *,
  channel_axis: int = 1,
) -> jax.Array:
  """Caffe's ``LRN`` layer, with its ``lrn_param`` names and defaults.

  ``norm_region='across_channels'`` (``ACROSS_CHANNELS``):
  ``y_c = x_c / (k + alpha / n * sum(x[c - (n - 1) / 2 : c + (n - 1) / 2 +
  1] ** 2)) ** beta``, with ``n = local_size``; this equals PyTorch and ONNX
  with ``size = n``.

  ``norm_region='within_channel'`` (``WITHIN_CHANNEL``): the sum runs over an
  ``n x n`` spatial box inside each channel, zero-padded by ``(n - 1) / 2``
  with the padding counted, alpha is divided by ``n ** 2``, and **k is
  ignored**: Caffe builds this mode from a power layer whose shift is fixed
  at 1, so ``y = x / (1 + alpha / n**2 * sum(box ** 2)) ** beta`` whatever
  ``k`` says.

  Caffe only runs 4-D NCHW input and odd sizes. Even sizes raise here too.
  Other ranks are accepted: across channels any rank that has
  ``channel_axis``; within a channel the box spans every axis except axis 0
  (batch) and ``channel_axis`` and alpha is divided by ``n ** d`` for ``d``
  such axes, which is Caffe's ``alpha / n**2`` for 4-D input. The default
  ``alpha=1`` is Caffe's; the AlexNet and GoogLeNet prototxts set ``1e-4``.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat
    >>> x = jnp.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    >>> compat.caffe(
    ...     x, local_size=3, alpha=9.0, beta=1.0, k=123.0,
    ...     norm_region="WITHIN_CHANNEL")[0, 0].round(6)
    Array([[0.021277, 0.021739, 0.04    ],
           [0.025   , 0.017483, 0.027273],
           [0.045161, 0.029412, 0.043478]], dtype=float32)
  """
  kwargs = _conventions.caffe(local_size, alpha, beta, k, norm_region)
  return lrn(x, **kwargs, channel_axis=channel_axis)
