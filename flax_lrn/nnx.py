"""Flax NNX wrapper of :func:`flax_lrn.lrn`."""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from flax_lrn import _arguments, _constructors, _docs, _lrn
from flax_lrn._gdn_nnx import GDN

__all__ = ("GDN", "LRN")


@_docs.fields("Args", _lrn.HYPERPARAMETERS)
class LRN(_constructors.FromConventions, nnx.Module):
  """Local Response Normalization (https://papers.nips.cc/paper/4824).

  A parameter-free NNX module that forwards its attributes to
  :func:`flax_lrn.lrn`; see there for the formula and the conventions. The
  hyper-parameters are plain Python values, so NNX treats them as static.
  ``LRN.from_tensorflow``, ``LRN.from_torch``, ``LRN.from_onnx`` and
  ``LRN.from_caffe`` build the module from a framework's own parameters.

  Example usage::

    >>> import jax, jax.numpy as jnp
    >>> from flax_lrn import nnx as lrn_nnx
    >>> layer = lrn_nnx.LRN(window=5, alpha=1e-4, beta=0.75, k=2.0)
    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    >>> layer(x).shape
    (2, 8, 8, 16)
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
    # Every field is checked now, not at the first call.
    _arguments.check_static(**self._fields())

  def _fields(self) -> dict:
    return {f: getattr(self, f) for f in _lrn.HYPERPARAMETERS}

  @_docs.call
  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x`` with the module's hyper-parameters."""
    return _lrn.lrn(x, **self._fields())
