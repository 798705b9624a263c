"""The LRN formula with its differentiation rule.

``y = x / s ** beta`` with ``s = k + alpha * S`` and ``S = W(x**2)``, ``W`` a
zero-padded window sum. A ``custom_jvp`` gives the tangent in closed form,

  ``dy = dx / s**beta - beta (y / s) (dk + S dalpha + 2 alpha W(x dx))
  - y log(s) dbeta``,

linear in the tangents, so JAX derives reverse mode by transposing it (the
transpose of ``W`` is the mirrored window), and forward mode and every
higher order keep working. The rule saves only ``r = s ** -0.5`` for the
backward pass and recomputes the elementwise rest under ``jax.checkpoint``,
which XLA fuses into the passes it makes anyway: one full-size temporary
instead of the three that autodiff of the formula keeps.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from flax_lrn import _window


class Spec(NamedTuple):
  """The static part of an LRN.

  Attributes:
    axes: the axes the window spans.
    before: the window extent before each position.
    after: the window extent after each position.
    static_beta: beta as a Python float when it is concrete, else None.
    form: the window-sum form of the forward pass (see ``_window``).
    rule_form: the window-sum form inside the differentiation rule.
  """

  axes: tuple[int, ...]
  before: int
  after: int
  static_beta: float | None
  form: str
  rule_form: str


def power(s: jax.Array, beta: Any) -> jax.Array:
  """``s ** beta`` for ``s > 0``, through square roots for common betas.

  A general power costs a logarithm and an exponential per element; the
  betas used in practice (0.75 in AlexNet, 0.5 in TensorFlow, 1) are
  cheaper and more accurate as products of square roots, as cuDNN and
  oneDNN compute them.
  """
  if isinstance(beta, float):
    if beta == 0.0:
      return jnp.ones_like(s)
    if beta == 0.25:
      return lax.sqrt(lax.sqrt(s))
    if beta == 0.5:
      return lax.sqrt(s)
    if beta == 0.75:
      q = lax.sqrt(s)
      return q * lax.sqrt(q)
    if beta == 1.0:
      return s
    if beta == 1.5:
      return s * lax.sqrt(s)
    if beta == 2.0:
      return s * s
  return lax.pow(s, beta)


def scale_only(x, k, beta) -> jax.Array:
  """LRN with ``alpha = 0``: ``x * k ** -beta``, no window sum at all.

  ``beta`` is a Python float where it is concrete (the fast powers).
  """
  return x / power(k, beta)


def _beta(spec: Spec, beta):
  return beta if spec.static_beta is None else spec.static_beta


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def normalize(spec: Spec, x, alpha, k, beta):
  """LRN of ``x`` (already in the compute dtype) with scalar parameters."""
  window_sum = _window.window_sum(
    x * x, spec.axes, spec.before, spec.after, spec.form
  )
  return x / power(k + alpha * window_sum, _beta(spec, beta))


def inverse_power_of_rsqrt(r: jax.Array, beta: Any) -> jax.Array:
  """``s ** -beta`` given ``r = s ** -0.5``, by multiplications where possible."""
  if isinstance(beta, float):
    if beta == 0.0:
      return jnp.ones_like(r)
    if beta == 0.25:
      return lax.sqrt(r)
    if beta == 0.5:
      return r
    if beta == 0.75:
      return r * lax.sqrt(r)
    if beta == 1.0:
      return r * r
    if beta == 1.5:
      return r * r * r
    if beta == 2.0:
      r2 = r * r
      return r2 * r2
  return lax.pow(r, 2.0 * beta)


def _tangent(spec: Spec, present, r, x, alpha, k, beta, *tangents):
  """The tangent, given ``r = s ** -0.5``, the one saved residual.

  Everything else is an elementwise function of ``r`` and ``x``, which XLA
  recomputes inside the passes of the backward pass instead of storing.
  """
  dx, dalpha, dk, dbeta = (
    tangents[sum(present[:i])] if present[i] else None for i in range(4)
  )
  p = inverse_power_of_rsqrt(r, _beta(spec, beta))
  y = x * p
  ds = None
  if dx is not None:
    ds = (2.0 * alpha) * _window.window_sum(
      x * dx, spec.axes, spec.before, spec.after, spec.rule_form
    )
  if dalpha is not None:
    window_sum = _window.window_sum(
      x * x, spec.axes, spec.before, spec.after, spec.rule_form
    )
    ds = window_sum * dalpha if ds is None else ds + window_sum * dalpha
  if dk is not None:
    ds = dk if ds is None else ds + dk
  dy = None if ds is None else (-beta * ds) * (y * (r * r))
  if dx is not None:
    dy = dy + p * dx
  if dbeta is not None:
    term = (2.0 * dbeta) * y * jnp.log(r)
    dy = term if dy is None else dy + term
  return dy


def _normalize_jvp(spec: Spec, primals, tangents):
  x, alpha, k, beta = primals
  present = tuple(not isinstance(t, SymbolicZero) for t in tangents)
  window_sum = _window.window_sum(
    x * x, spec.axes, spec.before, spec.after, spec.form
  )
  r = lax.rsqrt(k + alpha * window_sum)
  y = x * inverse_power_of_rsqrt(r, _beta(spec, beta))
  if not any(present):
    return y, jnp.zeros_like(y)
  live = [t for t in tangents if not isinstance(t, SymbolicZero)]
  tangent = jax.checkpoint(functools.partial(_tangent, spec, present))
  return y, tangent(r, *primals, *live)


# Symbolic zeros let the rule skip the terms of undifferentiated
# hyper-parameters (the usual case: only x is differentiated).
normalize.defjvp(_normalize_jvp, symbolic_zeros=True)
