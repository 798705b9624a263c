"""The LRN formula with its differentiation rule.

``y = x / s ** beta`` with ``s = k + alpha * S`` and ``S = W(x**2)``, ``W`` a
zero-padded window sum. A ``custom_jvp`` gives the tangent in closed form,

  ``dy = dx / s**beta - beta (y / s) (dk + S dalpha + 2 alpha W(x dx))
  - y log(s) dbeta``,

linear in the tangents, so JAX derives reverse mode by transposing it (the
transpose of ``W`` is the mirrored window), and forward mode and every
higher order keep working.

How XLA compiles the tangent and its transpose depends on the program
around them unless the rule fixes it, and the best fix differs per
platform, so the rule is chosen per platform when the program is lowered
(``lax.platform_dependent``; a program exported for several platforms
carries each one's rule):

* GPU and TPU: the tangent recomputes everything from ``x`` under
  ``jax.checkpoint``, so ``x`` is the only residual and XLA fuses the
  backward pass into the kernels of its neighbours, as it does the forward.
* CPU: XLA:CPU fuses the backward's elementwise producers into every
  shifted read of the window sum's transpose and into its consumers'
  transposes, so what the layer costs depended on whether ``y`` was alive
  and on what consumed it (several times the isolated cost). The tangent
  there runs inside a conditional whose predicate XLA cannot fold
  (``_isolated``): XLA:CPU compiles its branch as a unit of its own, with the
  same kernels in every program. The rule saves ``r = s ** -0.5`` (one
  array of scratch) and recomputes the elementwise rest inside the branch.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from flax_lrn import _window

# The differentiation rules; see the module docstring.
Rule = Literal["auto", "isolated", "fused"]


class Spec(NamedTuple):
  """The static part of an LRN.

  Attributes:
    axes: the axes the window spans.
    before: the window extent before each position.
    after: the window extent after each position.
    static_beta: beta as a Python float when it is concrete, else None.
    form: the window-sum form of the forward pass (see ``_window``).
    rule_form: the window-sum form of the tangent on a CPU.
    fused_rule_form: the window-sum form of the tangent on other platforms.
    compute_dtype: the dtype the formula is evaluated in.
    out_dtype: the dtype of the result.
    rule: which differentiation rule: ``'auto'`` picks the isolated rule on
      a CPU and the fused rule elsewhere, when the program is lowered;
      ``'isolated'`` and ``'fused'`` force one on every platform.
  """

  axes: tuple[int, ...]
  before: int
  after: int
  static_beta: float | None
  form: str
  rule_form: str
  fused_rule_form: str
  compute_dtype: Any
  out_dtype: Any
  rule: Rule = "auto"


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
  # In s's dtype: a Python float is float64 under x64, and lax.pow takes
  # operands of one dtype only.
  return lax.pow(s, jnp.asarray(beta, s.dtype))


def scale_only(x, k, beta) -> jax.Array:
  """LRN with ``alpha = 0``: ``x * k ** -beta``, no window sum at all.

  ``beta`` is a Python float where it is concrete (the fast powers).
  """
  return x / power(k, beta)


def _beta(spec: Spec, beta):
  return beta if spec.static_beta is None else spec.static_beta


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def normalize(spec: Spec, x, alpha, k, beta):
  """LRN of ``x`` with scalar parameters in ``spec.compute_dtype``.

  ``x`` comes in its own dtype and is converted inside, so that the
  differentiation rule keeps it, not a wider copy, as its residual.
  """
  x = x.astype(spec.compute_dtype)
  y = x / power(_s(spec, x, alpha, k), _beta(spec, beta))
  return y.astype(spec.out_dtype)


def _s(spec: Spec, x, alpha, k) -> jax.Array:
  """``k + alpha * W(x**2)``, for ``x`` in the compute dtype."""
  window_sum = _window.window_sum(
    x * x, spec.axes, spec.before, spec.after, spec.form
  )
  return k + alpha * window_sum


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
  return lax.pow(r, jnp.asarray(2.0 * beta, r.dtype))


def _tangent(spec: Spec, form: str, present, r, x, alpha, k, beta, *tangents):
  """The tangent, given ``r = s ** -0.5``.

  Everything but ``r`` is an elementwise function of ``r`` and ``x``, which
  the callers recompute inside the backward pass instead of storing.
  """
  dx, dalpha, dk, dbeta = (
    tangents[sum(present[:i])] if present[i] else None for i in range(4)
  )
  x = x.astype(spec.compute_dtype)
  if dx is not None:
    dx = dx.astype(spec.compute_dtype)
  p = inverse_power_of_rsqrt(r, _beta(spec, beta))
  y = x * p
  # With beta = 0 the LRN is the identity: no window term, which would be
  # 0 * inf = NaN where k = 0 and a window holds only zeros.
  window_terms = spec.static_beta != 0.0
  ds = None
  if dx is not None and window_terms:
    ds = (2.0 * alpha) * _window.window_sum(
      x * dx, spec.axes, spec.before, spec.after, form
    )
  if dalpha is not None and window_terms:
    window_sum = _window.window_sum(
      x * x, spec.axes, spec.before, spec.after, form
    )
    ds = window_sum * dalpha if ds is None else ds + window_sum * dalpha
  if dk is not None and window_terms:
    ds = dk if ds is None else ds + dk
  dy = None if ds is None else (-beta * ds) * (y * (r * r))
  if dx is not None:
    dy = p * dx if dy is None else dy + p * dx
  if dbeta is not None:
    # -y log(s) tends to 0 where s overflows (y = 0, log(r) = -inf).
    term = (2.0 * dbeta) * jnp.where(y == 0, 0.0, y * jnp.log(r))
    dy = term if dy is None else dy + term
  if dy is None:  # no tangent at all: the callers never ask for that
    dy = jnp.zeros_like(y)
  return dy.astype(spec.out_dtype)


def _rsqrt_of_s(spec: Spec, x, alpha, k) -> jax.Array:
  return lax.rsqrt(_s(spec, x.astype(spec.compute_dtype), alpha, k))


def _isolated(fn):
  """``fn``, compiled by XLA:CPU as a unit of its own.

  XLA:CPU fuses across every boundary JAX can express but control flow
  (``optimization_barrier`` is gone before fusion runs). A conditional whose
  two branches are ``fn`` and whose predicate comes through a barrier, so
  that XLA cannot fold it, keeps ``fn``'s inputs and outputs materialized
  and its kernels the same whatever surrounds it. The predicate depends on
  no argument, so ``vmap`` keeps the conditional (a batched predicate would
  turn it into a select of both branches).
  """
  branch = jax.checkpoint(fn, prevent_cse=False)

  def run(*args):
    keep = lax.optimization_barrier(jnp.int32(0)) == 0
    return lax.cond(keep, branch, branch, *args)

  return run


def _cpu_tangent(spec: Spec, present, r, x, alpha, k, beta, *live):
  tangent = functools.partial(_tangent, spec, spec.rule_form, present)
  return _isolated(tangent)(r, x, alpha, k, beta, *live)


def _fused_tangent(spec: Spec, present, r, x, alpha, k, beta, *live):
  del r  # Recomputed from x, so that x is the only residual.

  def tangent(x, alpha, k, beta, *live):
    return _tangent(
      spec,
      spec.fused_rule_form,
      present,
      _rsqrt_of_s(spec, x, alpha, k),
      x,
      alpha,
      k,
      beta,
      *live,
    )

  return jax.checkpoint(tangent, prevent_cse=False)(x, alpha, k, beta, *live)


def _normalize_jvp(spec: Spec, primals, tangents):
  x, alpha, k, beta = primals
  present = tuple(not isinstance(t, SymbolicZero) for t in tangents)
  r = _rsqrt_of_s(spec, x, alpha, k)
  y = x.astype(spec.compute_dtype) * inverse_power_of_rsqrt(
    r, _beta(spec, beta)
  )
  y = y.astype(spec.out_dtype)
  if not any(present):
    return y, jnp.zeros_like(y)
  live = [t for t in tangents if not isinstance(t, SymbolicZero)]
  isolated = functools.partial(_cpu_tangent, spec, present)
  fused = functools.partial(_fused_tangent, spec, present)
  if spec.rule == "isolated":
    return y, isolated(r, *primals, *live)
  if spec.rule == "fused":
    return y, fused(r, *primals, *live)
  return y, lax.platform_dependent(
    r, *primals, *live, cpu=isolated, default=fused
  )


# Symbolic zeros let the rule skip the terms of undifferentiated
# hyper-parameters (the usual case: only x is differentiated).
normalize.defjvp(_normalize_jvp, symbolic_zeros=True)
