"""The LRN front ends of :mod:`flax_lrn.compat`: each framework's parameters.

Each function takes one framework's parameters, with the names and the
defaults of :mod:`flax_lrn._conventions.lrn`, maps them there and computes
:func:`flax_lrn.lrn`.
"""

from __future__ import annotations

import jax
from jax.typing import ArrayLike

from flax_lrn._conventions import lrn as conventions
from flax_lrn._conventions.lrn import CAFFE, ONNX, TENSORFLOW, TORCH
from flax_lrn._core.lrn import lrn


def tensorflow(
  x: ArrayLike,
  depth_radius: int = TENSORFLOW.depth_radius,
  bias: ArrayLike = TENSORFLOW.bias,
  alpha: ArrayLike = TENSORFLOW.alpha,
  beta: ArrayLike = TENSORFLOW.beta,
  *,
  channel_axis: int = TENSORFLOW.channel_axis,
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

  Args:
    x: the input, of a real floating dtype.
    depth_radius: the half-width of the window, ``>= 0``: the window is
      ``2 * depth_radius + 1`` channels. Defaults to ``5``.
    bias: the additive constant (``k``), finite and ``>= 0``. Defaults to
      ``1.0``.
    alpha: the scale of the sum of squares, finite and ``>= 0``, not
      divided by the window size. Defaults to ``1.0``.
    beta: the exponent, finite and ``>= 0``. Defaults to ``0.5``.
    channel_axis: the channel axis. Defaults to ``-1``.

  Returns:
    The normalized input, of the shape and dtype of ``x``.

  Raises:
    TypeError: if ``x`` is not an array of a real floating dtype, or a
      parameter has the wrong type.
    ValueError: if a parameter is outside its range, ``channel_axis`` is
      out of range for ``x``, or a within-channel window has no spatial
      axis.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat
    >>> x = jnp.array([[[[-1.1, 0.6, 0.7, 1.2, -0.7, 0.1]]]])
    >>> compat.tensorflow(x, depth_radius=2, bias=9.0, alpha=4.0).round(6)
    Array([[[[-0.264926,  0.125109,  0.140112,  0.267261, -0.161788,
               0.024427]]]], dtype=float32)
  """
  kwargs = conventions.tensorflow(depth_radius, bias, alpha, beta)
  return lrn(x, **kwargs, channel_axis=channel_axis)


def torch(
  x: ArrayLike,
  size: int,
  alpha: ArrayLike = TORCH.alpha,
  beta: ArrayLike = TORCH.beta,
  k: ArrayLike = TORCH.k,
  *,
  channel_axis: int = TORCH.channel_axis,
) -> jax.Array:
  """``torch.nn.functional.local_response_norm`` / ``nn.LocalResponseNorm``.

  ``y_c = x_c / (k + alpha / size * sum(x[c - size // 2 : c + (size - 1) //
  2 + 1] ** 2)) ** beta``: alpha is divided by ``size`` (the zero padding
  at the edges counts, so the divisor never changes), and an even window
  holds its extra channel *before* ``c``, the mirror image of ONNX.

  PyTorch needs at least 3-D input; this function accepts any rank that has
  ``channel_axis``.

  Args:
    x: the input, of a real floating dtype.
    size: the number of channels in the window, ``>= 1``.
    alpha: the scale of the sum of squares, finite and ``>= 0``; divided by
      ``size``. Defaults to ``0.0001``.
    beta: the exponent, finite and ``>= 0``. Defaults to ``0.75``.
    k: the additive constant, finite and ``>= 0``. Defaults to ``1.0``.
    channel_axis: the channel axis. Defaults to ``1``.

  Returns:
    The normalized input, of the shape and dtype of ``x``.

  Raises:
    TypeError: if ``x`` is not an array of a real floating dtype, or a
      parameter has the wrong type.
    ValueError: if a parameter is outside its range, ``channel_axis`` is
      out of range for ``x``, or a within-channel window has no spatial
      axis.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat
    >>> x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1)
    >>> compat.torch(x, size=4, alpha=4.0, beta=1.0).ravel().round(6)
    Array([0.166667, 0.133333, 0.096774, 0.133333], dtype=float32)
  """
  kwargs = conventions.torch(size, alpha, beta, k)
  return lrn(x, **kwargs, channel_axis=channel_axis)


def onnx(
  x: ArrayLike,
  size: int,
  alpha: ArrayLike = ONNX.alpha,
  beta: ArrayLike = ONNX.beta,
  bias: ArrayLike = ONNX.bias,
  *,
  channel_axis: int = ONNX.channel_axis,
) -> jax.Array:
  """The ONNX ``LRN`` operator (opsets 1 and 13).

  ``y_c = x_c / (bias + alpha / size * sum(x[c - (size - 1) // 2 : c + size
  // 2 + 1] ** 2)) ** beta``: alpha is divided by ``size``, and an even
  window holds its extra channel *after* ``c`` (as cuDNN does), the mirror
  image of PyTorch. For odd sizes ONNX and PyTorch agree.

  ONNX Runtime only runs 4-D input and odd sizes; the ONNX specification
  defines any rank ``>= 3`` and even sizes, and this function follows the
  specification (any rank that has ``channel_axis``, any ``size >= 1``).

  Args:
    x: the input, of a real floating dtype.
    size: the number of channels in the window, ``>= 1``.
    alpha: the scale of the sum of squares, finite and ``>= 0``; divided by
      ``size``. Defaults to ``0.0001``.
    beta: the exponent, finite and ``>= 0``. Defaults to ``0.75``.
    bias: the additive constant (``k``), finite and ``>= 0``. Defaults to
      ``1.0``.
    channel_axis: the channel axis. Defaults to ``1``.

  Returns:
    The normalized input, of the shape and dtype of ``x``.

  Raises:
    TypeError: if ``x`` is not an array of a real floating dtype, or a
      parameter has the wrong type.
    ValueError: if a parameter is outside its range, ``channel_axis`` is
      out of range for ``x``, or a within-channel window has no spatial
      axis.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat
    >>> x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1)
    >>> compat.onnx(x, size=4, alpha=4.0, beta=1.0).ravel().round(6)
    Array([0.066667, 0.064516, 0.1     , 0.153846], dtype=float32)
  """
  kwargs = conventions.onnx(size, alpha, beta, bias)
  return lrn(x, **kwargs, channel_axis=channel_axis)


def caffe(
  x: ArrayLike,
  local_size: int = CAFFE.local_size,
  alpha: ArrayLike = CAFFE.alpha,
  beta: ArrayLike = CAFFE.beta,
  k: ArrayLike = CAFFE.k,
  norm_region: str = CAFFE.norm_region,
  *,
  channel_axis: int = CAFFE.channel_axis,
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

  Args:
    x: the input, of a real floating dtype.
    local_size: the window size, odd and ``>= 1``. Defaults to ``5``.
    alpha: the scale of the sum of squares, finite and ``>= 0``; divided by
      the number of elements in the window. Defaults to ``1.0``.
    beta: the exponent, finite and ``>= 0``. Defaults to ``0.75``.
    k: the additive constant, finite and ``>= 0``; ignored for
      ``'within_channel'``. Defaults to ``1.0``.
    norm_region: ``'across_channels'`` or ``'within_channel'`` (or the
      prototxt spellings ``'ACROSS_CHANNELS'``, ``'WITHIN_CHANNEL'``).
      Defaults to ``'across_channels'``.
    channel_axis: the channel axis. Defaults to ``1``.

  Returns:
    The normalized input, of the shape and dtype of ``x``.

  Raises:
    TypeError: if ``x`` is not an array of a real floating dtype, or a
      parameter has the wrong type.
    ValueError: if a parameter is outside its range, ``channel_axis`` is
      out of range for ``x``, or a within-channel window has no spatial
      axis.

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
  kwargs = conventions.caffe(local_size, alpha, beta, k, norm_region)
  return lrn(x, **kwargs, channel_axis=channel_axis)
