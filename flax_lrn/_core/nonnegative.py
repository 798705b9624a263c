"""The nonnegative reparametrization of GDN's learned parameters.

tensorflow_compression (``GDNParameter``) and CompressAI
(``NonNegativeParametrizer``) both store a parameter ``p >= minimum`` as

  ``v = sqrt(max(p + o**2, o**2))``  and compute  ``p = max(v, b)**2 - o**2``

with the offset ``o = 2**-18`` and the bound ``b = sqrt(minimum + o**2)``.
Training ``v`` instead of ``p`` slows learning down near zero, where noise in
a small ``beta`` or ``gamma`` would make the normalization explode; the
offset keeps the gradient of an exactly-zero ``p`` from vanishing. The
stored arrays are interchangeable between the two libraries and these
modules, so ported weights are copied as they are.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike, DTypeLike

from flax_lrn._core import checks

OFFSET = 2.0**-18


def bound(minimum: float, offset: float = OFFSET) -> float:
  """The lower bound of the stored variable for a parameter ``>= minimum``."""
  return math.sqrt(minimum + offset**2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def lower_bound(v: jax.Array, floor: float) -> jax.Array:
  """``max(v, floor)`` whose gradient also passes where it leads back up.

  The derivative of ``max`` is 0 below the bound, so a variable that fell
  under it would never come back. As in tensorflow_compression's
  ``lower_bound`` and CompressAI's ``LowerBound``, the cotangent passes
  through wherever ``v >= floor`` or a descent step (``-cotangent``) would
  raise ``v``. A reverse-mode rule only: it depends on the cotangent's sign.
  """
  return jnp.maximum(v, jnp.asarray(floor, v.dtype))


def _lower_bound_fwd(v, floor):
  return lower_bound(v, floor), v


def _lower_bound_bwd(floor, v, g):
  passes = (v >= jnp.asarray(floor, v.dtype)) | (g < 0)
  return (jnp.where(passes, g, jnp.zeros_like(g)),)


lower_bound.defvjp(_lower_bound_fwd, _lower_bound_bwd)


def _work_dtype(dtype) -> np.dtype:
  # o**2 = 2**-36 is below float16's smallest subnormal. Written out, not
  # promoted, for strict dtype promotion.
  return checks.compute_dtype(dtype)


def value(
  stored: ArrayLike, minimum: float = 0.0, offset: float = OFFSET
) -> jax.Array:
  """The parameter a stored variable represents: ``max(v, b)**2 - o**2``.

  Args:
    stored: the stored (reparametrized) variable ``v``.
    minimum: the parameter's lower bound (1e-6 for ``beta``, 0 for
      ``gamma``).
    offset: the reparametrization offset ``o``.

  Returns:
    The parameter, ``>= minimum``, in float32 or wider.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat_gdn
    >>> v = compat_gdn.nonnegative_stored(jnp.array([0.0, 0.1, 1.0]))
    >>> compat_gdn.nonnegative_value(v, minimum=1e-6)
    Array([1.e-06, 1.e-01, 1.e+00], dtype=float32)
  """
  stored = jnp.asarray(stored)
  v = stored.astype(_work_dtype(stored.dtype))
  pedestal = jnp.asarray(offset**2, v.dtype)
  return jnp.square(lower_bound(v, bound(minimum, offset))) - pedestal


def stored(
  parameter: ArrayLike, offset: float = OFFSET, dtype: DTypeLike | None = None
) -> jax.Array:
  """The stored variable of a parameter: ``sqrt(max(p + o**2, o**2))``.

  The inverse of :func:`value` for ``p >= minimum``; a negative ``p`` is
  stored as ``o``, which represents 0 (or the minimum).

  Args:
    parameter: the parameter ``p``.
    offset: the reparametrization offset ``o``.
    dtype: the dtype of the result. Defaults to the parameter's, at least
      float32.

  Returns:
    The stored variable.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat_gdn
    >>> compat_gdn.nonnegative_stored(jnp.array([0.0, 1.0]))
    Array([3.8146973e-06, 1.0000000e+00], dtype=float32)
  """
  p = jnp.asarray(parameter)
  p = p.astype(_work_dtype(p.dtype))
  pedestal = jnp.asarray(offset**2, p.dtype)
  v = jnp.sqrt(jnp.maximum(p + pedestal, pedestal))
  return v if dtype is None else v.astype(dtype)
