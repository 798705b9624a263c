"""Flax linen modules: :class:`LRN` and :class:`GDN`."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
from flax.typing import Dtype
from jax.typing import ArrayLike

from flax_lrn import _constructors, _docs, _lrn
from flax_lrn._gdn_linen import GDN

__all__ = ("GDN", "LRN")


@_docs.fields("Attributes", _lrn.HYPERPARAMETERS)
class LRN(_constructors.FromConventions, nn.Module):
  """Local Response Normalization (https://papers.nips.cc/paper/4824).

  A parameter-free layer that forwards its fields to :func:`flax_lrn.lrn`;
  see there for the formula and for how each framework's convention maps
  onto the fields. The defaults are AlexNet's (``n=5, k=2, alpha=1e-4,
  beta=0.75``, alpha not divided by ``n``) on the last (NHWC channel) axis.
  ``LRN.from_tensorflow``, ``LRN.from_torch``, ``LRN.from_onnx`` and
  ``LRN.from_caffe`` build the layer from a framework's own parameters.

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

  @_docs.call
  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x`` with the module's hyper-parameters."""
    return _lrn.lrn(x, **{f: getattr(self, f) for f in _lrn.HYPERPARAMETERS})
