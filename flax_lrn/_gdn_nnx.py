"""Flax NNX GDN module with learned, nonnegative ``beta`` and ``gamma``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx import initializers
from jax.typing import ArrayLike, DTypeLike

from flax_lrn import _gdn_conventions, _gdn_layer, _nonnegative, _validation


class GDN(nnx.Module):
  """Generalized Divisive Normalization (https://arxiv.org/abs/1511.06281).

  The NNX twin of :class:`flax_lrn.GDN`: the same fields, the same stored
  params (``reparam_beta``, ``reparam_gamma`` and, when learned,
  ``reparam_alpha``, ``reparam_epsilon``, all :class:`flax.nnx.Param`), the
  same forward pass through :func:`flax_lrn.gdn`. As NNX builds parameters
  eagerly, the channel count is the first argument.

  Example usage::

    >>> import jax
    >>> from flax_lrn import nnx as lrn_nnx
    >>> layer = lrn_nnx.GDN(16, inverse=True)
    >>> layer.reparam_gamma.shape
    (16, 16)
    >>> layer(jax.random.normal(jax.random.key(0), (2, 8, 8, 16))).shape
    (2, 8, 8, 16)

  Args:
    num_features: the number of channels ``C``.
    inverse: IGDN.
    rectify: a ReLU first.
    alpha: the exponent of ``|x|``; the initial one with ``learn_alpha``
      (learned ``alpha >= 1``).
    epsilon: the exponent of the pool; the initial one with
      ``learn_epsilon`` (learned ``epsilon >= 1e-6``).
    learn_alpha: whether ``alpha`` is a parameter.
    learn_epsilon: whether ``epsilon`` is a parameter.
    channel_axis: the axis of the ``C`` channels.
    beta_min: the minimum of ``beta``.
    reparam_offset: the reparametrization's offset.
    beta_init: initializes ``beta``'s value (ones).
    gamma_init: initializes ``gamma``'s value (``0.1 I``).
    dtype: the output dtype (default: the input's, as for every flax_lrn
      entry point, whatever ``param_dtype`` is).
    param_dtype: the dtype of the stored params.
    rngs: random streams for the initializers; only needed for random
      ones (the defaults are deterministic).
  """

  def __init__(
    self,
    num_features: int,
    *,
    inverse: bool = False,
    rectify: bool = False,
    alpha: float = 2.0,
    epsilon: float = 0.5,
    learn_alpha: bool = False,
    learn_epsilon: bool = False,
    channel_axis: int = -1,
    beta_min: float = _gdn_layer.BETA_MINIMUM,
    reparam_offset: float = _nonnegative.OFFSET,
    beta_init: _gdn_layer.Initializer = initializers.ones,
    gamma_init: _gdn_layer.Initializer = _gdn_layer.GAMMA_INIT,
    dtype: DTypeLike | None = None,
    param_dtype: DTypeLike = jnp.float32,
    rngs: nnx.Rngs | None = None,
  ):
    num_features = _validation.check_int(
      "num_features", num_features, 1, "the number of channels"
    )
    self.inverse = inverse
    self.rectify = rectify
    self.alpha = alpha
    self.epsilon = epsilon
    self.learn_alpha = learn_alpha
    self.learn_epsilon = learn_epsilon
    self.channel_axis = channel_axis
    self.beta_min = beta_min
    self.reparam_offset = reparam_offset
    self.dtype = dtype
    self.param_dtype = param_dtype
    fields = {f: getattr(self, f) for f in _gdn_layer.FIELDS}
    specs = _gdn_layer.param_specs(num_features, fields, beta_init, gamma_init)
    self._param_names = tuple(specs)
    for name, (shape, init) in specs.items():
      if rngs is not None:
        value = init(rngs.params(), shape, param_dtype)
      else:
        # Without rngs only an initializer that ignores its key will do
        # (the defaults are constants); a random one would draw every
        # layer's parameters from the same key.
        value = init(jax.random.key(0), shape, param_dtype)
        other = init(jax.random.key(1), shape, param_dtype)
        if not bool(jnp.array_equal(value, other, equal_nan=True)):
          raise ValueError(
            f"rngs is required: the initializer of {name} is random. Pass"
            " rngs=nnx.Rngs(seed)."
          )
      setattr(self, name, nnx.Param(value))

  @classmethod
  def from_tensorflow_compression(
    cls,
    num_features: int,
    *args: Any,
    dtype: DTypeLike | None = None,
    param_dtype: DTypeLike = jnp.float32,
    **kwargs: Any,
  ) -> GDN:
    """The layer ``tfc.GDN(...)`` builds for ``num_features`` channels.

    Args:
      num_features: the number of channels.
      *args: ``tfc.GDN``'s ``inverse``, ``rectify``, ``data_format``,
        ``alpha_parameter``, ``epsilon_parameter``, as for
        :meth:`flax_lrn.GDN.from_tensorflow_compression`.
      dtype: the output dtype.
      param_dtype: the dtype of the stored params.
      **kwargs: the same, by name.

    Returns:
      A :class:`GDN` with the equivalent attributes.

    Raises:
      ValueError: if ``data_format`` is unknown or an exponent negative.

    Example::

      >>> from flax_lrn import nnx as lrn_nnx
      >>> layer = lrn_nnx.GDN.from_tensorflow_compression(
      ...   4, data_format="channels_first", epsilon_parameter=None
      ... )
      >>> layer.channel_axis, float(layer.reparam_epsilon[...])
      (1, 1.0)
    """
    fields = _gdn_conventions.tensorflow_compression(*args, **kwargs)
    return cls(num_features, **fields, dtype=dtype, param_dtype=param_dtype)

  @classmethod
  def from_compressai(
    cls,
    in_channels: int,
    *args: Any,
    channel_axis: int = 1,
    dtype: DTypeLike | None = None,
    param_dtype: DTypeLike = jnp.float32,
    **kwargs: Any,
  ) -> GDN:
    """The layer ``compressai.layers.GDN(in_channels, ...)`` (or ``GDN1``).

    Args:
      in_channels: the number of channels.
      *args: CompressAI's ``inverse``, ``beta_min``, ``gamma_init``, as for
        :meth:`flax_lrn.GDN.from_compressai`.
      channel_axis: the channel axis (CompressAI's NCHW: 1).
      dtype: the output dtype.
      param_dtype: the dtype of the stored params.
      **kwargs: the same by name, and ``simplified=True`` for ``GDN1``.

    Returns:
      A :class:`GDN` that computes CompressAI's layer.

    Raises:
      ValueError: if ``beta_min`` or ``gamma_init`` is negative.

    Example::

      >>> from flax_lrn import nnx as lrn_nnx
      >>> layer = lrn_nnx.GDN.from_compressai(8, simplified=True)
      >>> layer.alpha, layer.epsilon, layer.channel_axis
      (1.0, 1.0, 1)
    """
    fields = _gdn_conventions.compressai(*args, **kwargs)
    fields["channel_axis"] = channel_axis
    return cls(in_channels, **fields, dtype=dtype, param_dtype=param_dtype)

  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x``.

    Args:
      x: the input, of rank ``>= 2``.

    Returns:
      The normalized input, of the same shape.
    """
    params = {name: getattr(self, name)[...] for name in self._param_names}
    fields = {f: getattr(self, f) for f in _gdn_layer.FIELDS}
    return _gdn_layer.forward(x, params, fields)
