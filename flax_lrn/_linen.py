"""Flax linen wrapper of :func:`flax_lrn.lrn`."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
from flax.typing import Dtype
from jax.typing import ArrayLike

from flax_lrn import _lrn


class LRN(nn.Module):
  """Local Response Normalization (https://papers.nips.cc/paper/4824).

  A parameter-free layer that forwards its fields to :func:`flax_lrn.lrn`;
  see there for the formula and for how each framework's convention maps
  onto the fields. The defaults are AlexNet's (``n=5, k=2, alpha=1e-4,
  beta=0.75``, alpha not divided by ``n``) on the last (NHWC channel) axis.

  Example usage::

    >>> import jax, jax.numpy as jnp
    >>> import flax_lrn
    >>> layer = flax_lrn.LRN(window=5, alpha=1e-4, beta=0.75, k=2.0)
    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    >>> variables = layer.init(jax.random.key(1), x)
    >>> variables
    {}
    >>> y = layer.apply(variables, x)
    >>> y.shape, y.dtype
    ((2, 8, 8, 16), dtype('float32'))

  Attributes:
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

  window: _lrn.Window = 5
  alpha: float = 1e-4
  beta: float = 0.75
  k: float = 2.0
  alpha_scaling: str = "none"
  mode: str = "across_channels"
  channel_axis: int = -1
  spatial_axes: Sequence[int] | None = None
  dtype: Dtype | None = None
  axis_name: str | None = None

  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x``.

    Args:
      x: the input array.

    Returns:
      The normalized input, of the same shape.
    """
    return _lrn.lrn(x, **{f: getattr(self, f) for f in _lrn.HYPERPARAMETERS})
