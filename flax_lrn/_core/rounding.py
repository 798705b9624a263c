"""Rounding to a narrower dtype in a form XLA keeps.

XLA's excess-precision simplification drops a conversion to bfloat16 that
a conversion back to float32 follows, such as a max pool's, which XLA:GPU
computes in float32, and then writes the array in float32: twice the bytes.
The same rounding in integer arithmetic gives the same bits, and XLA keeps
it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


@jax.custom_jvp
def round_to_bfloat16(y: jax.Array) -> jax.Array:
  """``y.astype(jnp.bfloat16)`` for float32 ``y``, in integer arithmetic.

  The same bits as the conversion (to nearest, ties to even; infinities
  and subnormals kept; NaN quiet, with its sign), in operations XLA does
  not simplify away.

  Args:
    y: a float32 array.

  Returns:
    ``y`` rounded to bfloat16.

  Example:
    >>> import jax.numpy as jnp
    >>> from flax_lrn._core.rounding import round_to_bfloat16
    >>> round_to_bfloat16(jnp.float32(1.00390625))  # a tie: to even
    Array(1, dtype=bfloat16)

  Its derivative is the conversion's (the identity, rounded), not the 0 of
  integer arithmetic, so that what it rounds keeps its derivatives to every
  order.
  """
  bits = lax.bitcast_convert_type(y, jnp.uint32)
  high = lax.shift_right_logical(bits, jnp.uint32(16))
  # Adding 0x7FFF, plus 1 where the kept part is odd, carries into the kept
  # part exactly where rounding to nearest even rounds up.
  bias = jnp.uint32(0x7FFF) + (high & jnp.uint32(1))
  rounded = lax.shift_right_logical(bits + bias, jnp.uint32(16))
  # The carry can turn a NaN into an infinity. The quiet NaN is computed
  # from the bits rather than a constant, which XLA would hoist out of a
  # loop as a whole array of its own.
  rounded = jnp.where(jnp.isnan(y), high | jnp.uint32(0x40), rounded)
  return lax.bitcast_convert_type(rounded.astype(jnp.uint16), jnp.bfloat16)


@round_to_bfloat16.defjvp
def _round_to_bfloat16_jvp(primals, tangents):
  (y,), (dy,) = primals, tangents
  return round_to_bfloat16(y), dy.astype(jnp.bfloat16)
