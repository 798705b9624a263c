"""The GDN function, :func:`flax_lrn.gdn` (GDN and IGDN)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.core import Tracer
from jax.typing import ArrayLike, DTypeLike

from flax_lrn._core import checks, powers


class Defaults(NamedTuple):
  """The defaults of :func:`gdn` and the GDN modules: the original GDN."""

  alpha: float = 2.0
  epsilon: float = 0.5
  channel_axis: int = -1


DEFAULTS = Defaults()


def gdn(
  x: ArrayLike,
  beta: ArrayLike,
  gamma: ArrayLike,
  *,
  alpha: ArrayLike = DEFAULTS.alpha,
  epsilon: ArrayLike = DEFAULTS.epsilon,
  inverse: bool = False,
  rectify: bool = False,
  channel_axis: int = DEFAULTS.channel_axis,
  dtype: DTypeLike | None = None,
) -> jax.Array:
  r"""Generalized Divisive Normalization (Ballé et al., 2016).

  Divides each activation by a power of a learned mixture of the magnitudes
  of all channels at the same position:

  .. math::

     y_i = x_i \, \bigl(\beta_i + \textstyle\sum_j \gamma_{ji}
     |x_j|^\alpha\bigr)^{-\varepsilon}

  and the inverse (IGDN, one fixed-point step towards inverting GDN) with
  ``+epsilon``. ``i`` and ``j`` run over channels; nothing is summed across
  other axes, so every other axis is a batch axis. LRN across channels is
  the special case of a banded ``gamma`` filled with ``alpha_LRN``,
  ``beta = k``, ``alpha = 2`` and ``epsilon = beta_LRN``.

  ``gamma`` is indexed ``[input j, output i]``, as in tensorflow_compression
  (``matmul(|x| ** alpha, gamma)``). CompressAI stores the transpose; see
  :mod:`flax_lrn.compat_gdn` for its front ends and for loading its
  weights. The defaults ``alpha = 2, epsilon = 1/2`` are the original GDN
  (CompressAI's ``GDN``); ``alpha = 1, epsilon = 1`` is the simplified GDN
  of tensorflow_compression's defaults and CompressAI's ``GDN1``.

  The pool is computed in float32 (float64 for float64 input), its matrix
  product at full precision, and the result cast back. ``alpha`` of 1 and 2
  and ``epsilon`` of 1/2 and 1 (and a few others) given as Python numbers
  use ``abs``/squares and ``rsqrt``/``sqrt``/a division instead of general
  powers. The function is plain JAX: it jits, vmaps and differentiates in
  forward and reverse mode with respect to ``x``, ``beta``, ``gamma``, and
  traced ``alpha`` and ``epsilon``. At ``x = 0``, where ``|x| ** alpha``
  has no derivative for ``alpha <= 1``, its derivative is taken as 0.

  Args:
    x: the input, of a real floating dtype and rank ``>= 2``.
    beta: the offsets, shape ``(C,)`` with ``C`` the number of channels,
      finite and ``>= 0``. With ``beta = 0`` a position where every input
      is zero gives ``0 / 0 = nan``, as in every framework.
    gamma: the weights, shape ``(C, C)``, indexed ``[input, output]``,
      finite and ``>= 0``.
    alpha: the exponent of ``|x|``, finite and ``>= 0``. Defaults to 2.
    epsilon: the exponent of the pool, finite and ``>= 0``. Defaults to
      1/2.
    inverse: if True, multiply by the pooled power instead of dividing
      (IGDN).
    rectify: if True, apply a ReLU to ``x`` first (tensorflow_compression's
      ``rectify``); the output is then ``>= 0``.
    channel_axis: the channel axis. Defaults to -1 (channels last); use 1
      for channels first.
    dtype: the output dtype. Defaults to the input's dtype.

  Returns:
    An array of the shape of ``x`` and dtype ``dtype`` (or ``x.dtype``).

  Raises:
    TypeError: if ``x``, ``beta`` or ``gamma`` is not a real array, a flag is
      not a bool, or ``dtype`` is not a floating dtype.
    ValueError: if ``x`` has rank below 2, ``channel_axis`` is out of range,
      ``beta`` or ``gamma`` has the wrong shape for the channel count, or a
      parameter given as a Python or NumPy value is negative or not finite
      (a JAX array's values are not read back from the device).

  Example::

    >>> import jax.numpy as jnp
    >>> import flax_lrn
    >>> x = jnp.array([[3.0, 4.0]])
    >>> # beta = 0, gamma = 1 everywhere: x / sqrt(sum(x ** 2)).
    >>> flax_lrn.gdn(x, jnp.zeros(2), jnp.ones((2, 2)))
    Array([[0.6, 0.8]], dtype=float32)
    >>> flax_lrn.gdn(x, jnp.ones(2), 0.1 * jnp.eye(2), alpha=1, epsilon=1)
    Array([[2.3076923, 2.857143 ]], dtype=float32)
  """
  return gdn_of_checked(
    check_input(x, channel_axis),
    beta,
    gamma,
    alpha=alpha,
    epsilon=epsilon,
    inverse=inverse,
    rectify=rectify,
    dtype=dtype,
  )


class Input(NamedTuple):
  """The input of a GDN, checked.

  Attributes:
    x: the input, of a real floating dtype and rank ``>= 2``.
    channel_axis: the channel axis, in ``[0, x.ndim)``.
    given_axis: the channel axis as the caller wrote it, for messages.
    channels: the number of channels.
  """

  x: jax.Array
  channel_axis: int
  given_axis: Any
  channels: int


def check_input(x: ArrayLike, channel_axis: Any) -> Input:
  """Checks the input of a GDN: the one check of ``x`` in a call.

  The modules call it first, to learn the channel count they build their
  parameters for, and then :func:`gdn_of_checked`.

  Raises:
    TypeError: if ``x`` is not an array of a real floating dtype.
    ValueError: if ``x`` has rank below 2 or ``channel_axis`` is out of
      range.
  """
  x = checks.check_input(x)
  if x.ndim < 2:
    raise ValueError(
      "x must have rank >= 2 (a batch and a channel axis, as in"
      f" tensorflow_compression), got shape {x.shape}."
    )
  axis = checks.normalize_axis("channel_axis", channel_axis, x.ndim)
  return Input(x, axis, channel_axis, x.shape[axis])


def gdn_of_checked(
  checked: Input,
  beta: ArrayLike,
  gamma: ArrayLike,
  *,
  alpha: ArrayLike,
  epsilon: ArrayLike,
  inverse: bool,
  rectify: bool,
  dtype: DTypeLike | None,
) -> jax.Array:
  """:func:`gdn` of an input that :func:`check_input` has checked."""
  with jax.named_scope("gdn"):
    return _gdn(checked, beta, gamma, alpha, epsilon, inverse, rectify, dtype)


def _gdn(checked, beta, gamma, alpha, epsilon, inverse, rectify, dtype):
  inverse = checks.check_bool("inverse", inverse)
  rectify = checks.check_bool("rectify", rectify)
  static_alpha = checks.check_nonnegative("alpha", alpha, "the exponent of |x|")
  static_epsilon = checks.check_nonnegative(
    "epsilon", epsilon, "the exponent of the pool"
  )
  out_dtype = checks.check_out_dtype(dtype)
  x, channel_axis, channels = checked.x, checked.channel_axis, checked.channels
  if out_dtype is None:
    out_dtype = x.dtype
  where = f"channel_axis={checked.given_axis!r}"
  beta = _check_weights("beta", beta, (channels,), "the offsets", where)
  gamma = _check_weights(
    "gamma", gamma, (channels, channels), "the weights", where
  )
  if x.size == 0:
    return jnp.zeros(x.shape, out_dtype)

  compute_dtype = checks.compute_dtype(x.dtype)
  # Parameters take the compute dtype, so float64 NumPy weights do not
  # promote float32 work to float64 when x64 is enabled.
  beta, gamma, alpha, epsilon = (
    jnp.asarray(v, compute_dtype) for v in (beta, gamma, alpha, epsilon)
  )
  x = x.astype(compute_dtype)
  if rectify:
    x = jnp.maximum(x, 0.0)
  pool = _magnitude_power(x, static_alpha, alpha, rectify)
  # The contraction leaves the output channels last; full precision keeps
  # accelerators from rounding the operands to bfloat16 or TF32.
  s = lax.dot_general(
    pool,
    gamma,
    (((channel_axis,), (0,)), ((), ())),
    precision=lax.Precision.HIGHEST,
    preferred_element_type=compute_dtype,
  )
  s = jnp.moveaxis(s + beta, -1, channel_axis)
  return _scale(x, s, static_epsilon, epsilon, inverse).astype(out_dtype)


def _magnitude_power(x, static_alpha, alpha, rectified: bool) -> jax.Array:
  """``|x| ** alpha``; squares and ``abs`` where ``alpha`` is known.

  Otherwise a general power of the nonzero magnitudes only: the derivatives
  of ``|x| ** alpha`` at 0 involve ``0 ** (alpha - n)``, infinite for
  ``n > alpha``, and the chain rule would multiply them by zero tangents
  (of a ReLU, or of a pool whose other terms moved) into NaN. At ``x = 0``
  the term is the constant ``0 ** alpha`` (1 for ``alpha = 0``).
  """
  if static_alpha == 2.0:
    return x * x
  if static_alpha == 1.0:
    return x if rectified else jnp.abs(x)
  magnitude = jnp.abs(x)
  nonzero = magnitude > 0
  safe = jnp.where(nonzero, magnitude, 1.0)
  at_zero = lax.pow(jnp.zeros((), x.dtype), alpha)
  return jnp.where(nonzero, lax.pow(safe, alpha), at_zero)


def _scale(x, s, static_epsilon, epsilon, inverse: bool) -> jax.Array:
  """``x * s ** -epsilon`` (GDN) or ``x * s ** epsilon`` (IGDN)."""
  if static_epsilon is None:
    return x * lax.pow(s, epsilon if inverse else -epsilon)
  if inverse:
    return x * powers.power(s, static_epsilon)
  if static_epsilon == 1.0:
    return x / s
  return x * powers.inverse_power(s, static_epsilon)


def _check_weights(
  name: str,
  value: Any,
  shape: tuple[int, ...],
  meaning: str,
  where: str,
) -> Any:
  """Checks the shape and dtype of ``beta`` or ``gamma``; NumPy values too.

  Returns:
    The value as given for tracers and JAX arrays, else a NumPy array.
  """
  on_device = isinstance(value, (Tracer, jax.Array))
  arr = value if on_device else None
  if arr is None:
    try:
      arr = np.asarray(value)
    except (TypeError, ValueError) as e:
      raise TypeError(f"{name} must be an array, got {value!r}: {e}") from None
  dtype = arr.dtype
  if not (
    jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
  ):
    raise TypeError(f"{name} must be a real array, got dtype {dtype}.")
  if tuple(arr.shape) != shape:
    what = "(C,)" if len(shape) == 1 else "(C, C) [input, output]"
    raise ValueError(
      f"{name} must have shape {what} = {shape} for the {shape[0]} channels"
      f" on {where}, got shape {tuple(arr.shape)}."
    )
  # Values are checked where they are on the host already (NumPy, Python):
  # reading a JAX array's would copy it from the device on every eager
  # call, and a jitted call cannot read it at all, so both treat it alike.
  if not on_device:
    values = np.asarray(arr, np.float64)
    bad = ~(np.isfinite(values) & (values >= 0.0))
    if bad.any():
      index = tuple(int(i) for i in np.argwhere(bad)[0])
      raise ValueError(
        f"{name} must be finite and >= 0 ({meaning}), got"
        f" {name}{list(index)} = {float(values[index])!r}."
      )
  return arr
