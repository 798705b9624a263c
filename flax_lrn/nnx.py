"""Flax NNX wrapper of :func:`flax_lrn.lrn`."""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from flax_lrn import _conventions, _lrn
from flax_lrn._gdn_nnx import GDN

__all__ = ("GDN", "LRN")


class LRN(nnx.Module):
  """Local Response Normalization (https://papers.nips.cc/paper/4824).

  A parameter-free NNX module that forwards its attributes to
  :func:`flax_lrn.lrn`; see there for the formula and the conventions. The
  hyper-parameters are plain Python values, so NNX treats them as static.

  Example usage::

    >>> import jax, jax.numpy as jnp
    >>> from flax_lrn import nnx as lrn_nnx
    >>> layer = lrn_nnx.LRN(window=5, alpha=1e-4, beta=0.75, k=2.0)
    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    >>> layer(x).shape
    (2, 8, 8, 16)

  Args:
    window: the window size ``n``, or explicit extents ``(before, after)``
      around the centre.
    alpha: the scale of the sum of squares.
    beta: the exponent.
    k: the additive constant.
    alpha_scaling: ``'none'`` to use ``alpha`` as given, ``'size'`` to
      divide it by the number of elements in the window.
    mode: ``'across_channels'`` or ``'within_channel'``.
    channel_axis: the channel axis.
    spatial_axes: the axes of the within-channel window (default: all but
      the first axis and the channel axis).
    dtype: the dtype of the output (default: the input's).
    axis_name: inside ``jax.shard_map``, the mesh axis the channel axis is
      split over (see :func:`flax_lrn.lrn`); ``None`` under ``jax.jit``.
  """

  def __init__(
    self,
    window: _lrn.Window = 5,
    *,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 2.0,
    alpha_scaling: str = "none",
    mode: str = "across_channels",
    channel_axis: int = -1,
    spatial_axes: Sequence[int] | None = None,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
  ):
    self.window = window
    self.alpha = alpha
    self.beta = beta
    self.k = k
    self.alpha_scaling = alpha_scaling
    self.mode = mode
    self.channel_axis = channel_axis
    self.spatial_axes = spatial_axes
    self.dtype = dtype
    self.axis_name = axis_name

  @classmethod
  def from_tensorflow(
    cls,
    depth_radius: int = 5,
    bias: float = 1.0,
    alpha: float = 1.0,
    beta: float = 0.5,
    *,
    channel_axis: int = -1,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
  ) -> LRN:
    """The module that computes ``tf.nn.local_response_normalization``.

    Takes TensorFlow's parameters and defaults verbatim (window
    ``2 * depth_radius + 1``, alpha not divided); see
    :func:`flax_lrn.compat.tensorflow`.

    Args:
      depth_radius: the half-width of the window, ``>= 0``.
      bias: the additive constant.
      alpha: the scale of the sum of squares, used as given.
      beta: the exponent.
      channel_axis: the channel axis (TensorFlow's NHWC: -1).
      dtype: the dtype of the output (default: the input's).
      axis_name: see :func:`flax_lrn.lrn`.

    Returns:
      An :class:`LRN` with the equivalent attributes.

    Raises:
      TypeError, ValueError: if ``depth_radius`` is not an int ``>= 0``.

    Example::

      >>> from flax_lrn import nnx as lrn_nnx
      >>> layer = lrn_nnx.LRN.from_tensorflow(depth_radius=2, alpha=2e-5)
      >>> layer.window, layer.alpha, layer.alpha_scaling, layer.channel_axis
      ((2, 2), 2e-05, 'none', -1)
    """
    conv = _conventions.tensorflow(depth_radius, bias, alpha, beta)
    return cls(
      **conv, channel_axis=channel_axis, dtype=dtype, axis_name=axis_name
    )

  @classmethod
  def from_torch(
    cls,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 1.0,
    *,
    channel_axis: int = 1,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
  ) -> LRN:
    """The module that computes ``torch.nn.LocalResponseNorm(size, ...)``.

    Takes PyTorch's parameters and defaults verbatim (alpha divided by
    ``size``; an even window holds its extra channel before the centre); see
    :func:`flax_lrn.compat.torch`. The channel axis defaults to PyTorch's 1;
    pass ``channel_axis=-1`` when the ported model runs on NHWC arrays.

    Args:
      size: the number of channels in the window, ``>= 1``.
      alpha: the scale of the sum of squares, divided by ``size``.
      beta: the exponent.
      k: the additive constant.
      channel_axis: the channel axis (PyTorch's NCHW: 1).
      dtype: the dtype of the output (default: the input's).
      axis_name: see :func:`flax_lrn.lrn`.

    Returns:
      An :class:`LRN` with the equivalent attributes.

    Raises:
      TypeError, ValueError: if ``size`` is not an int ``>= 1``.

    Example::

      >>> import jax
      >>> from flax_lrn import nnx as lrn_nnx
      >>> layer = lrn_nnx.LRN.from_torch(size=4, channel_axis=-1)
      >>> layer.window, layer.alpha_scaling
      ((2, 1), 'size')
      >>> layer(jax.random.normal(jax.random.key(0), (2, 8, 8, 16))).shape
      (2, 8, 8, 16)
    """
    conv = _conventions.torch(size, alpha, beta, k)
    return cls(
      **conv, channel_axis=channel_axis, dtype=dtype, axis_name=axis_name
    )

  @classmethod
  def from_onnx(
    cls,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    bias: float = 1.0,
    *,
    channel_axis: int = 1,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
  ) -> LRN:
    """The module that computes an ONNX ``LRN`` node's attributes.

    Takes the ONNX attributes and defaults verbatim (alpha divided by
    ``size``; an even window holds its extra channel after the centre); see
    :func:`flax_lrn.compat.onnx`.

    Args:
      size: the number of channels in the window, ``>= 1``.
      alpha: the scale of the sum of squares, divided by ``size``.
      beta: the exponent.
      bias: the additive constant.
      channel_axis: the channel axis (ONNX's NCHW: 1).
      dtype: the dtype of the output (default: the input's).
      axis_name: see :func:`flax_lrn.lrn`.

    Returns:
      An :class:`LRN` with the equivalent attributes.

    Raises:
      TypeError, ValueError: if ``size`` is not an int ``>= 1``.

    Example::

      >>> from flax_lrn import nnx as lrn_nnx
      >>> lrn_nnx.LRN.from_onnx(size=4).window
      (1, 2)
    """
    conv = _conventions.onnx(size, alpha, beta, bias)
    return cls(
      **conv, channel_axis=channel_axis, dtype=dtype, axis_name=axis_name
    )

  @classmethod
  def from_caffe(
    cls,
    local_size: int = 5,
    alpha: float = 1.0,
    beta: float = 0.75,
    k: float = 1.0,
    norm_region: str = "across_channels",
    *,
    channel_axis: int = 1,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
  ) -> LRN:
    """The module that computes a Caffe ``LRN`` layer's ``lrn_param``.

    Takes Caffe's parameters and defaults verbatim (odd ``local_size``
    only; alpha divided by the number of elements in the window; ``k``
    ignored for ``within_channel``, as in Caffe); see
    :func:`flax_lrn.compat.caffe`.

    Args:
      local_size: the window size, odd and ``>= 1``.
      alpha: the scale of the sum of squares, divided by the window's
        element count.
      beta: the exponent.
      k: the additive constant (ignored for ``within_channel``).
      norm_region: ``'across_channels'`` or ``'within_channel'`` (or the
        prototxt spellings ``'ACROSS_CHANNELS'``, ``'WITHIN_CHANNEL'``).
      channel_axis: the channel axis (Caffe's NCHW: 1).
      dtype: the dtype of the output (default: the input's).
      axis_name: see :func:`flax_lrn.lrn`.

    Returns:
      An :class:`LRN` with the equivalent attributes.

    Raises:
      TypeError, ValueError: if ``local_size`` is not an odd int ``>= 1``
        or ``norm_region`` is unknown.

    Example::

      >>> from flax_lrn import nnx as lrn_nnx
      >>> layer = lrn_nnx.LRN.from_caffe(3, norm_region="WITHIN_CHANNEL")
      >>> layer.mode, layer.k, layer.alpha_scaling
      ('within_channel', 1.0, 'size')
    """
    conv = _conventions.caffe(local_size, alpha, beta, k, norm_region)
    return cls(
      **conv, channel_axis=channel_axis, dtype=dtype, axis_name=axis_name
    )

  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x``.

    Args:
      x: the input array.

    Returns:
      The normalized input, of the same shape.
    """
    return _lrn.lrn(x, **{f: getattr(self, f) for f in _lrn.HYPERPARAMETERS})
