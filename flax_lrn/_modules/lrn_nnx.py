"""The Flax NNX LRN module."""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from flax_lrn._core import lrn, lrn_arguments
from flax_lrn._core.checks import AlphaScaling, Mode
from flax_lrn._core.lrn import DEFAULTS
from flax_lrn._modules import constructors


class LRN(constructors.LRNConstructors, nnx.Module):
  """Local Response Normalization (https://papers.nips.cc/paper/4824).

  A parameter-free NNX module that forwards its attributes to
  :func:`flax_lrn.lrn`; see there for the formula and the conventions. The
  hyper-parameters are plain Python values, so NNX treats them as static,
  and they are checked when the module is built.
  ``LRN.from_tensorflow``, ``LRN.from_torch``, ``LRN.from_onnx`` and
  ``LRN.from_caffe`` build the module from a framework's own parameters.

  Example usage::

    >>> import jax, jax.numpy as jnp
    >>> from flax_lrn import nnx as lrn_nnx
    >>> layer = lrn_nnx.LRN(window=5, alpha=1e-4, beta=0.75, k=2.0)
    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    >>> layer(x).shape
    (2, 8, 8, 16)

  Args:
    window: the window size ``n``, or explicit extents ``(before, after)``
      around the centre. Defaults to ``5``.
    alpha: the scale of the sum of squares, finite and ``>= 0``. Defaults
      to ``0.0001``.
    beta: the exponent, finite and ``>= 0``. Defaults to ``0.75``.
    k: the additive constant, finite and ``>= 0``. Defaults to ``2.0``.
    alpha_scaling: ``'none'`` to use ``alpha`` as given, ``'size'`` to
      divide it by the number of elements in the window. Defaults to
      ``'none'``.
    mode: ``'across_channels'`` or ``'within_channel'``. Defaults to
      ``'across_channels'``.
    channel_axis: the channel axis. Defaults to ``-1``.
    spatial_axes: the axes of the within-channel window; ``None`` for all
      but the first axis and the channel axis. Defaults to ``None``.
    dtype: the dtype of the output; ``None`` for the input's. Defaults to
      ``None``.
    axis_name: inside ``jax.shard_map``, the mesh axis the channel axis is
      split over (see :func:`flax_lrn.lrn`); ``None`` under ``jax.jit``.
      Defaults to ``None``.
    implementation: the kernel (see :func:`flax_lrn.lrn`); ``None`` for the
      context's default. Defaults to ``None``.

  Raises:
    TypeError, ValueError: if a field has the wrong type or is outside its
      range, as :func:`flax_lrn.lrn` raises them.
  """

  def __init__(
    self,
    window: lrn.Window = DEFAULTS.window,
    *,
    alpha: float = DEFAULTS.alpha,
    beta: float = DEFAULTS.beta,
    k: float = DEFAULTS.k,
    alpha_scaling: AlphaScaling = DEFAULTS.alpha_scaling,
    mode: Mode = DEFAULTS.mode,
    channel_axis: int = DEFAULTS.channel_axis,
    spatial_axes: Sequence[int] | None = None,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
    implementation: str | None = None,
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
    self.implementation = implementation
    lrn_arguments.check_static(**self._fields())

  def _fields(self) -> dict:
    return {f: getattr(self, f) for f in lrn.FIELDS}

  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x`` with the module's hyper-parameters.

    Args:
      x: the input, of a real floating dtype.

    Returns:
      The normalized input, of the shape of ``x``.

    Raises:
      TypeError, ValueError: as :func:`flax_lrn.lrn` raises them.
    """
    return lrn.lrn(x, **self._fields())
