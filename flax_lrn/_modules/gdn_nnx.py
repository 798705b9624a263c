"""Flax NNX GDN module with learned, nonnegative ``beta`` and ``gamma``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx import initializers
from flax.typing import Initializer
from jax.typing import ArrayLike, DTypeLike

from flax_lrn._conventions.gdn import BETA_MINIMUM
from flax_lrn._core import checks, gdn
from flax_lrn._core.gdn import DEFAULTS
from flax_lrn._core.nonnegative import OFFSET
from flax_lrn._modules import constructors, gdn_params


class GDN(constructors.GDNConstructors, nnx.Module):
  """Generalized Divisive Normalization (https://arxiv.org/abs/1511.06281).

  The NNX twin of :class:`flax_lrn.GDN`: the same fields, the same stored
  params (``reparam_beta``, ``reparam_gamma`` and, when learned,
  ``reparam_alpha``, ``reparam_epsilon``, all :class:`flax.nnx.Param`), the
  same forward pass through :func:`flax_lrn.gdn`. As NNX builds parameters
  eagerly, the channel count is the first argument. Every field is checked
  when the module is built.

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

  Raises:
    TypeError, ValueError: if a field has the wrong type or is outside its
      range, or ``rngs`` is missing for a random initializer.
  """

  reparam_beta: nnx.Param[jax.Array]
  reparam_gamma: nnx.Param[jax.Array]
  # Present when the exponent is learned, else None.
  reparam_alpha: nnx.Param[jax.Array] | None
  reparam_epsilon: nnx.Param[jax.Array] | None

  def __init__(
    self,
    num_features: int,
    *,
    inverse: bool = False,
    rectify: bool = False,
    alpha: float = DEFAULTS.alpha,
    epsilon: float = DEFAULTS.epsilon,
    learn_alpha: bool = False,
    learn_epsilon: bool = False,
    channel_axis: int = DEFAULTS.channel_axis,
    beta_min: float = BETA_MINIMUM,
    reparam_offset: float = OFFSET,
    beta_init: Initializer = initializers.ones,
    gamma_init: Initializer = gdn_params.GAMMA_INIT,
    dtype: DTypeLike | None = None,
    param_dtype: DTypeLike = jnp.float32,
    rngs: nnx.Rngs | None = None,
  ):
    num_features = checks.check_int(
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
    fields = self._fields()
    gdn_params.check_fields(fields)
    specs = gdn_params.param_specs(num_features, fields, beta_init, gamma_init)
    for name in gdn_params.PARAMS:
      param = None
      if name in specs:
        shape, init = specs[name]
        param = nnx.Param(_initial(name, init, shape, param_dtype, rngs))
      setattr(self, name, param)

  def _fields(self) -> dict:
    return {f: getattr(self, f) for f in gdn_params.FIELDS}

  def __call__(self, x: ArrayLike) -> jax.Array:
    """Normalizes ``x``.

    Args:
      x: the input, of a real floating dtype and rank ``>= 2``.

    Returns:
      The normalized input, of the shape of ``x`` and dtype ``dtype`` (or
      ``x.dtype``).

    Raises:
      TypeError, ValueError: as :func:`flax_lrn.gdn` raises them for ``x``,
        or if ``x`` has another channel count than ``num_features``.
    """
    params = {
      name: param[...]
      for name in gdn_params.PARAMS
      if (param := getattr(self, name)) is not None
    }
    checked = gdn.check_input(x, self.channel_axis)
    return gdn_params.forward(checked, params, self._fields())


def _initial(name, init, shape, dtype, rngs: nnx.Rngs | None) -> jax.Array:
  """The initial value of a parameter; ``rngs`` only for a random one."""
  if rngs is not None:
    return init(rngs.params(), shape, dtype)
  # Without rngs only an initializer that ignores its key will do (the
  # defaults are constants); a random one would draw every layer's
  # parameters from the same key.
  value = init(jax.random.key(0), shape, dtype)
  other = init(jax.random.key(1), shape, dtype)
  if not bool(jnp.array_equal(value, other, equal_nan=True)):
    raise ValueError(
      f"rngs is required: the initializer of {name} is random. Pass"
      " rngs=nnx.Rngs(seed)."
    )
  return value
