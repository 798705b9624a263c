"""What the linen and NNX GDN modules share: their parameters and forward.

Both modules keep their learned parameters in the reparametrized form of
:mod:`flax_lrn._nonnegative`, under tensorflow_compression's variable names
(``reparam_beta``, ``reparam_gamma`` and, when learned, ``reparam_alpha``,
``reparam_epsilon``), and forward the values to :func:`flax_lrn.gdn`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from flax_lrn import _gdn, _nonnegative, _validation

# tensorflow_compression's minimums for the parameters it learns: alpha >= 1
# keeps |x| ** alpha differentiable at 0, epsilon > 0 keeps a divisor.
ALPHA_MINIMUM = 1.0
EPSILON_MINIMUM = 1e-6
BETA_MINIMUM = 1e-6

# The fields of both modules that the forward pass reads, in signature order.
FIELDS = (
  "inverse",
  "rectify",
  "alpha",
  "epsilon",
  "learn_alpha",
  "learn_epsilon",
  "channel_axis",
  "beta_min",
  "reparam_offset",
  "dtype",
)

Initializer = Callable[..., jax.Array]

# The initial gamma of both libraries: each channel its own pool.
GAMMA_INIT = _nonnegative.scaled_identity(0.1)


def num_channels(x: Any, channel_axis: int) -> int:
  """The channel count of ``x``, with the function's checks of the axis."""
  x = _validation.check_input(x)
  if x.ndim < 2:
    raise ValueError(f"GDN needs an input of rank >= 2, got shape {x.shape}.")
  axis = _validation.normalize_axis("channel_axis", channel_axis, x.ndim)
  return x.shape[axis]


def check_learned_starts(fields: Mapping[str, Any]) -> None:
  """A learned exponent must start inside its bound, or it starts at it.

  Raises:
    ValueError: if ``learn_alpha`` with ``alpha < 1`` or ``learn_epsilon``
      with ``epsilon < 1e-6``, which the lower bound would silently raise.
  """
  for name, minimum in (("alpha", ALPHA_MINIMUM), ("epsilon", EPSILON_MINIMUM)):
    value = fields[name]
    if fields[f"learn_{name}"] and value < minimum:
      raise ValueError(
        f"{name}={value!r} with learn_{name}=True: a learned {name} is"
        f" bounded below by {minimum:g} (as in tensorflow_compression), so it"
        f" would start at {minimum:g}. Start it at {name} >= {minimum:g}, or"
        f" keep it fixed with learn_{name}=False."
      )


def param_specs(
  channels: int,
  fields: Mapping[str, Any],
  beta_init: Initializer,
  gamma_init: Initializer,
) -> dict[str, tuple[tuple[int, ...], Initializer]]:
  """The learned parameters: name -> (shape, initializer of the stored form).

  The initializers take Flax's ``(key, shape, dtype)``; ``beta_init`` and
  ``gamma_init`` give the parameter values, which are then reparametrized.
  A learned exponent starts from the value of its field.
  """
  reparam_offset = fields["reparam_offset"]

  def reparametrized(init):
    def stored_init(key, shape, dtype=jnp.float32):
      p = init(key, shape, jnp.promote_types(dtype, jnp.float32))
      return _nonnegative.stored(p, reparam_offset, dtype)

    return stored_init

  def constant(v):
    return lambda key, shape, dtype=jnp.float32: jnp.full(shape, v, dtype)

  check_learned_starts(fields)
  specs = {
    "reparam_beta": ((channels,), reparametrized(beta_init)),
    "reparam_gamma": ((channels, channels), reparametrized(gamma_init)),
  }
  for name in ("alpha", "epsilon"):
    if fields[f"learn_{name}"]:
      init = reparametrized(constant(fields[name]))
      specs[f"reparam_{name}"] = ((), init)
  return specs


def values(
  params: Mapping[str, jax.Array],
  *,
  alpha: float,
  epsilon: float,
  beta_min: float,
  reparam_offset: float,
) -> dict[str, Any]:
  """``beta``, ``gamma``, ``alpha`` and ``epsilon`` from the stored params."""

  def value(name, minimum):
    return _nonnegative.value(params[name], minimum, reparam_offset)

  return {
    "beta": value("reparam_beta", beta_min),
    "gamma": value("reparam_gamma", 0.0),
    "alpha": (
      value("reparam_alpha", ALPHA_MINIMUM)
      if "reparam_alpha" in params
      else alpha
    ),
    "epsilon": (
      value("reparam_epsilon", EPSILON_MINIMUM)
      if "reparam_epsilon" in params
      else epsilon
    ),
  }


def forward(
  x: Any, params: Mapping[str, jax.Array], fields: Mapping[str, Any]
) -> jax.Array:
  """The GDN of ``x`` with the module's stored params and fields."""
  channels = num_channels(x, fields["channel_axis"])
  built = params["reparam_beta"].shape[0]
  if channels != built:
    raise ValueError(
      f"This GDN has parameters for {built} channels, but the input has"
      f" {channels} on channel_axis={fields['channel_axis']}."
    )
  # The library's rule, as lrn, gdn and LRN: the input's dtype unless
  # `dtype` says otherwise, whatever the params' dtype.
  dtype = fields["dtype"]
  v = values(
    params,
    alpha=fields["alpha"],
    epsilon=fields["epsilon"],
    beta_min=fields["beta_min"],
    reparam_offset=fields["reparam_offset"],
  )
  return _gdn.gdn(
    x,
    v["beta"],
    v["gamma"],
    alpha=v["alpha"],
    epsilon=v["epsilon"],
    inverse=fields["inverse"],
    rectify=fields["rectify"],
    channel_axis=fields["channel_axis"],
    dtype=dtype,
  )
