"""Flax NNX wrapper of :func:`flax_lrn.lrn`."""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from flax_lrn import _lrn

__all__ = ("LRN",)


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

  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x``.

    Args:
      x: the input array.

    Returns:
      The normalized input, of the same shape.
    """
    return _lrn.lrn(x, **{f: getattr(self, f) for f in _lrn.HYPERPARAMETERS})
