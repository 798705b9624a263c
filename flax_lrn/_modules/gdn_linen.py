"""Flax linen GDN layer with learned, nonnegative ``beta`` and ``gamma``."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.typing import Dtype, Initializer
from jax.typing import ArrayLike

from flax_lrn._conventions.gdn import BETA_MINIMUM
from flax_lrn._core import gdn
from flax_lrn._core.gdn import DEFAULTS
from flax_lrn._core.nonnegative import OFFSET
from flax_lrn._modules import constructors, gdn_params


class GDN(constructors.GDNConstructors, nn.Module):
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
  alpha: float = DEFAULTS.alpha
  epsilon: float = DEFAULTS.epsilon
  learn_alpha: bool = False
  learn_epsilon: bool = False
  channel_axis: int = DEFAULTS.channel_axis
  beta_min: float = BETA_MINIMUM
  reparam_offset: float = OFFSET
  beta_init: Initializer = nn.initializers.ones
  gamma_init: Initializer = gdn_params.GAMMA_INIT
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x``.

    Args:
      x: the input, of a real floating dtype and rank ``>= 2``.

    Returns:
      The normalized input, of the shape of ``x`` and dtype ``dtype`` (or
      ``x.dtype``).

    Raises:
      TypeError, ValueError: for a bad field, as :func:`flax_lrn.gdn` raises
        them for ``x``, or if ``x`` has another channel count than the
        module was initialized with.
    """
    fields = {f: getattr(self, f) for f in gdn_params.FIELDS}
    gdn_params.check_fields(fields)
    checked = gdn.check_input(x, self.channel_axis)
    specs = gdn_params.param_specs(
      checked.channels, fields, self.beta_init, self.gamma_init
    )
    params = {
      name: self.param(name, init, shape, self.param_dtype)
      for name, (shape, init) in specs.items()
    }
    return gdn_params.forward(checked, params, fields)
