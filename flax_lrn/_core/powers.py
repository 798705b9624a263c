"""The one table of fast powers.

A general power costs a logarithm and an exponential per element; the
exponents used in practice (LRN's 0.75 in AlexNet, 0.5 in TensorFlow, 1;
GDN's 1/2 and 1) are cheaper and more accurate as products of square
roots, as cuDNN and oneDNN compute them. :data:`FAST_EXPONENTS` lists them,
and :func:`power` writes each as square roots and products of whatever
operations it is given, so the JAX formulas and the ONNX lowering compute
the same terms in the same order.

``s ** -beta`` is ``power(rsqrt(s), 2 * beta)``: the table holds the doubled
exponents too, so negative powers cost one ``rsqrt`` and a few products.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


class Ops(NamedTuple):
  """The operations a power is written in.

  Attributes:
    sqrt: the square root of a value.
    mul: the product of two values.
    one: a value of ones shaped like its argument.
    pow: the general power ``base ** exponent`` for an exponent outside the
      table.
  """

  sqrt: Callable[[Any], Any]
  mul: Callable[[Any, Any], Any]
  one: Callable[[Any], Any]
  pow: Callable[[Any, Any], Any]


def _sqrt_then_mul(s, o: Ops):
  q = o.sqrt(s)
  return o.mul(q, o.sqrt(q))


# exponent -> base ** exponent, for a base >= 0.
_TABLE: dict[float, Callable[[Any, Ops], Any]] = {
  0.0: lambda s, o: o.one(s),
  0.25: lambda s, o: o.sqrt(o.sqrt(s)),
  0.5: lambda s, o: o.sqrt(s),
  0.75: _sqrt_then_mul,
  1.0: lambda s, o: s,
  1.5: lambda s, o: o.mul(s, o.sqrt(s)),
  2.0: lambda s, o: o.mul(s, s),
  3.0: lambda s, o: o.mul(o.mul(s, s), s),
  4.0: lambda s, o: (lambda s2: o.mul(s2, s2))(o.mul(s, s)),
}

FAST_EXPONENTS: tuple[float, ...] = tuple(_TABLE)


def _jax_pow(base: jax.Array, exponent: Any) -> jax.Array:
  # In the base's dtype: a Python float is float64 under x64, and lax.pow
  # takes operands of one dtype only.
  return lax.pow(base, jnp.asarray(exponent, base.dtype))


JAX_OPS = Ops(lax.sqrt, operator.mul, jnp.ones_like, _jax_pow)


def power(base: Any, exponent: Any, ops: Ops = JAX_OPS) -> Any:
  """``base ** exponent`` for ``base >= 0``, by the table where it can.

  Args:
    base: the base, ``>= 0``.
    exponent: a Python float (the table's exponents are fast) or a traced
      scalar (a general power).
    ops: the operations to write the power in; JAX's by default.

  Returns:
    ``base ** exponent``.
  """
  if isinstance(exponent, float) and exponent in _TABLE:
    return _TABLE[exponent](base, ops)
  return ops.pow(base, exponent)


def inverse_power(s: jax.Array, exponent: Any) -> jax.Array:
  """``s ** -exponent`` for ``s > 0``, as ``power(rsqrt(s), 2 * exponent)``."""
  return power(lax.rsqrt(s), 2.0 * exponent)
