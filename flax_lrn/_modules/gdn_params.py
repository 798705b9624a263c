"""What the linen and NNX GDN modules share: fields, checks, parameters.

Both modules keep their learned parameters in the reparametrized form of
:mod:`flax_lrn._core.nonnegative`, under tensorflow_compression's variable
names (``reparam_beta``, ``reparam_gamma`` and, when learned,
``reparam_alpha``, ``reparam_epsilon``), and forward the values to
:func:`flax_lrn.gdn`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax.typing import Initializer

from flax_lrn._conventions.gdn import (
  ALPHA_MINIMUM,
  EPSILON_MINIMUM,
  GAMMA_GAIN,
)
from flax_lrn._core import checks, gdn, nonnegative

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

# The names of the learned parameters, in the order they are built.
PARAMS = ("reparam_beta", "reparam_gamma", "reparam_alpha", "reparam_epsilon")


def scaled_identity(gain: float = GAMMA_GAIN) -> Initializer:
  """An initializer of ``gain`` times the identity matrix (GDN's ``gamma``).

  Args:
    gain: the diagonal.

  Returns:
    A Flax initializer ``init(key, shape, dtype)`` for square shapes.
  """

  def init(key, shape, dtype=jnp.float32) -> jax.Array:
    del key  # deterministic
    if len(shape) != 2 or shape[0] != shape[1]:
      raise ValueError(f"scaled_identity needs a square shape, got {shape}.")
    return gain * jnp.eye(shape[0], dtype=dtype)

  return init


GAMMA_INIT = scaled_identity()


def check_fields(fields: Mapping[str, Any]) -> None:
  """Checks every field of a GDN module, as the NNX module is built.

  Raises:
    TypeError: if a flag is not a bool, ``channel_axis`` not an int or
      ``dtype`` not a floating dtype.
    ValueError: if an exponent, ``beta_min`` or ``reparam_offset`` is
      negative or not finite, or a learned exponent would start below its
      bound.
  """
  for name in ("inverse", "rectify", "learn_alpha", "learn_epsilon"):
    checks.check_bool(name, fields[name])
  checks.check_nonnegative("alpha", fields["alpha"], "the exponent of |x|")
  checks.check_nonnegative(
    "epsilon", fields["epsilon"], "the exponent of the pool"
  )
  checks.check_nonnegative("beta_min", fields["beta_min"], "the floor of beta")
  checks.check_nonnegative(
    "reparam_offset", fields["reparam_offset"], "the reparametrization offset"
  )
  checks.check_int("channel_axis", fields["channel_axis"])
  checks.check_out_dtype(fields["dtype"])
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
      p = init(key, shape, checks.compute_dtype(dtype))
      return nonnegative.stored(p, reparam_offset, dtype)

    return stored_init

  def constant(v):
    return lambda key, shape, dtype=jnp.float32: jnp.full(shape, v, dtype)

  specs = {
    "reparam_beta": ((channels,), reparametrized(beta_init)),
    "reparam_gamma": ((channels, channels), reparametrized(gamma_init)),
  }
  for name in ("alpha", "epsilon"):
    if fields[f"learn_{name}"]:
      init = reparametrized(constant(fields[name]))
      specs[f"reparam_{name}"] = ((), init)
  return specs


def forward(
  checked: gdn.Input,
  params: Mapping[str, jax.Array],
  fields: Mapping[str, Any],
) -> jax.Array:
  """The GDN of a checked input with the module's stored params and fields."""
  built = params["reparam_beta"].shape[0]
  if checked.channels != built:
    raise ValueError(
      f"This GDN has parameters for {built} channels, but the input has"
      f" {checked.channels} on channel_axis={checked.given_axis!r}."
    )
  offset = fields["reparam_offset"]

  def value(name: str, minimum: float) -> jax.Array:
    return nonnegative.value(params[name], minimum, offset)

  def exponent(name: str, minimum: float) -> Any:
    learned = f"reparam_{name}" in params
    return value(f"reparam_{name}", minimum) if learned else fields[name]

  # The library's rule, as lrn, gdn and LRN: the input's dtype unless
  # `dtype` says otherwise, whatever the params' dtype.
  return gdn.gdn_of_checked(
    checked,
    value("reparam_beta", fields["beta_min"]),
    value("reparam_gamma", 0.0),
    alpha=exponent("alpha", ALPHA_MINIMUM),
    epsilon=exponent("epsilon", EPSILON_MINIMUM),
    inverse=fields["inverse"],
    rectify=fields["rectify"],
    dtype=fields["dtype"],
  )
