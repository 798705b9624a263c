"""Flax linen GDN layer with learned, nonnegative ``beta`` and ``gamma``."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.typing import Dtype
from jax.typing import ArrayLike

from flax_lrn import _gdn_conventions, _gdn_layer, _nonnegative


class GDN(nn.Module):
  """Generalized Divisive Normalization (https://arxiv.org/abs/1511.06281).

  Forwards to :func:`flax_lrn.gdn` with learned ``beta`` and ``gamma``
  (``gamma`` indexed ``[input, output]``). They are stored reparametrized,
  as tensorflow_compression and CompressAI store them, in the params
  ``reparam_beta`` and ``reparam_gamma``: the value ``max(v, b)**2 - o**2``
  of the stored ``v`` stays ``>= beta_min`` (``beta``) and ``>= 0``
  (``gamma``), and a parameter pushed under its bound can climb back (see
  :mod:`flax_lrn.compat_gdn`). With ``learn_alpha`` or ``learn_epsilon``
  those exponents are learned too, from the fields' values, with
  tensorflow_compression's minimums (``alpha >= 1``, ``epsilon >= 1e-6``).

  The defaults are the original GDN (``alpha = 2``, ``epsilon = 1/2``,
  CompressAI's ``GDN``) on the last axis, initialized to ``beta = 1`` and
  ``gamma = 0.1 I``; :meth:`from_tensorflow_compression` and
  :meth:`from_compressai` take those libraries' arguments.

  Example usage::

    >>> import jax, jax.numpy as jnp
    >>> import flax_lrn
    >>> layer = flax_lrn.GDN()
    >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
    >>> variables = layer.init(jax.random.key(1), x)
    >>> jax.tree.map(jnp.shape, variables)
    {'params': {'reparam_beta': (16,), 'reparam_gamma': (16, 16)}}
    >>> y = layer.apply(variables, x)
    >>> y.shape, y.dtype
    ((2, 8, 8, 16), dtype('float32'))

  Attributes:
    inverse: if True, IGDN (multiply instead of divide).
    rectify: if True, a ReLU before the normalization.
    alpha: the exponent of ``|x|`` (the initial value if learned).
    epsilon: the exponent of the pool (the initial value if learned).
    learn_alpha: learn ``alpha`` (param ``reparam_alpha``).
    learn_epsilon: learn ``epsilon`` (param ``reparam_epsilon``).
    channel_axis: the channel axis.
    beta_min: the lower bound of ``beta``.
    reparam_offset: the offset ``o`` of the reparametrization.
    beta_init: initializer of the value of ``beta`` (ones).
    gamma_init: initializer of the value of ``gamma`` (``0.1 I``).
    dtype: the dtype of the output (default: the input's, as for every
      flax_lrn entry point, whatever ``param_dtype`` is). The normalization
      is computed in float32 or wider regardless.
    param_dtype: the dtype of the stored params.
  """

  inverse: bool = False
  rectify: bool = False
  alpha: float = 2.0
  epsilon: float = 0.5
  learn_alpha: bool = False
  learn_epsilon: bool = False
  channel_axis: int = -1
  beta_min: float = _gdn_layer.BETA_MINIMUM
  reparam_offset: float = _nonnegative.OFFSET
  beta_init: _gdn_layer.Initializer = nn.initializers.ones
  gamma_init: _gdn_layer.Initializer = _gdn_layer.GAMMA_INIT
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32

  @classmethod
  def from_tensorflow_compression(
    cls,
    inverse: bool = False,
    rectify: bool = False,
    data_format: str = "channels_last",
    alpha_parameter: float | None = 1.0,
    epsilon_parameter: float | None = 1.0,
    *,
    dtype: Dtype | None = None,
    param_dtype: Dtype = jnp.float32,
    name: str | None = None,
  ) -> GDN:
    """The layer ``tfc.GDN(...)`` builds, with its arguments and defaults.

    tensorflow_compression defaults to the simplified GDN (``alpha = 1``,
    ``epsilon = 1``). A ``None`` exponent is learned, as there, from 1.

    Args:
      inverse: IGDN.
      rectify: a ReLU first.
      data_format: ``'channels_last'`` or ``'channels_first'``.
      alpha_parameter: a fixed alpha, or None to learn it.
      epsilon_parameter: a fixed epsilon, or None to learn it.
      dtype: the output dtype.
      param_dtype: the dtype of the stored params.
      name: the module name.

    Returns:
      A :class:`GDN` with the equivalent fields.

    Raises:
      ValueError: if ``data_format`` is unknown or an exponent negative.

    Example::

      >>> import flax_lrn
      >>> layer = flax_lrn.GDN.from_tensorflow_compression(alpha_parameter=None)
      >>> layer.alpha, layer.learn_alpha, layer.epsilon, layer.channel_axis
      (1.0, True, 1.0, -1)
    """
    fields = _gdn_conventions.tensorflow_compression(
      inverse, rectify, data_format, alpha_parameter, epsilon_parameter
    )
    return cls(**fields, dtype=dtype, param_dtype=param_dtype, name=name)

  @classmethod
  def from_compressai(
    cls,
    inverse: bool = False,
    beta_min: float = 1e-6,
    gamma_init: float = 0.1,
    *,
    simplified: bool = False,
    channel_axis: int = 1,
    dtype: Dtype | None = None,
    param_dtype: Dtype = jnp.float32,
    name: str | None = None,
  ) -> GDN:
    """The layer ``compressai.layers.GDN(C, ...)`` (``GDN1`` if simplified).

    The channel count comes from the input. CompressAI is NCHW only; pass
    ``channel_axis=-1`` when the ported model runs on NHWC arrays.

    Args:
      inverse: IGDN.
      beta_min: the lower bound of ``beta``.
      gamma_init: the initial diagonal of ``gamma``.
      simplified: ``GDN1``: ``alpha = 1``, ``epsilon = 1``.
      channel_axis: the channel axis (CompressAI's NCHW: 1).
      dtype, param_dtype, name: as for the constructor.

    Returns:
      A :class:`GDN` that computes CompressAI's layer; load its weights
      with :func:`flax_lrn.compat_gdn.params_from_compressai`.

    Raises:
      ValueError: if ``beta_min`` or ``gamma_init`` is negative.

    Example::

      >>> import flax_lrn
      >>> layer = flax_lrn.GDN.from_compressai(inverse=True)
      >>> layer.alpha, layer.epsilon, layer.inverse, layer.channel_axis
      (2.0, 0.5, True, 1)
    """
    fields = _gdn_conventions.compressai(
      inverse, beta_min, gamma_init, simplified
    )
    fields["channel_axis"] = channel_axis
    return cls(**fields, dtype=dtype, param_dtype=param_dtype, name=name)

  @nn.compact
  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x``.

    Args:
      x: the input, of rank ``>= 2``.

    Returns:
      The normalized input, of the same shape.
    """
    fields = {f: getattr(self, f) for f in _gdn_layer.FIELDS}
    channels = _gdn_layer.num_channels(x, self.channel_axis)
    specs = _gdn_layer.param_specs(
      channels, fields, self.beta_init, self.gamma_init
    )
    params = {
      name: self.param(name, init, shape, self.param_dtype)
      for name, (shape, init) in specs.items()
    }
    return _gdn_layer.forward(x, params, fields)
