"""The Flax linen LRN module."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
from flax.typing import Dtype
from jax.typing import ArrayLike

from flax_lrn._core import lrn
from flax_lrn._core.checks import AlphaScaling, Mode
from flax_lrn._core.lrn import DEFAULTS
from flax_lrn._modules import constructors


class LRN(constructors.LRNConstructors, nn.Module):
  """Local Response Normalization (https://papers.nips.cc/paper/4824).

  A parameter-free layer that forwards its fields to :func:`flax_lrn.lrn`;
  see there for the formula and for how each framework's convention maps
  onto the fields. The defaults are AlexNet's (``n=5, k=2, alpha=1e-4,
  beta=0.75``, alpha not divided by ``n``) on the last (NHWC channel) axis.
  ``LRN.from_tensorflow``, ``LRN.from_torch``, ``LRN.from_onnx`` and
  ``LRN.from_caffe`` build the layer from a framework's own parameters.
  The fields are checked at the first call (``init``).

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
  """

  window: lrn.Window = DEFAULTS.window
  alpha: float = DEFAULTS.alpha
  beta: float = DEFAULTS.beta
  k: float = DEFAULTS.k
  alpha_scaling: AlphaScaling = DEFAULTS.alpha_scaling
  mode: Mode = DEFAULTS.mode
  channel_axis: int = DEFAULTS.channel_axis
  spatial_axes: Sequence[int] | None = None
  dtype: Dtype | None = None
  axis_name: str | None = None
  implementation: str | None = None

  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x`` with the module's hyper-parameters.

    Args:
      x: the input, of a real floating dtype.

    Returns:
      The normalized input, of the shape of ``x``.

    Raises:
      TypeError, ValueError: as :func:`flax_lrn.lrn` raises them.
    """
    return lrn.lrn(x, **{f: getattr(self, f) for f in lrn.FIELDS})
