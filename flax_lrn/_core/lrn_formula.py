"""The LRN formula with its differentiation rules: the XLA kernel.

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
  On an NVIDIA GPU, across channels in full precision, ``r`` is kept apart
  behind an ``optimization_barrier`` (``_keeps_rsqrt``), so that XLA writes
  it rather than an operand that also reads the cotangent; in bfloat16,
  ``y`` is rounded in integer arithmetic (``_in_out_dtype``), which
  XLA's excess-precision simplification cannot turn back into float32,
  and across channels the forward pass stores ``y / s`` in bfloat16 for
  the backward pass (``_stored_scale_jvp``) instead of a float32 array.
* CPU: XLA:CPU fuses the backward's elementwise producers into every
  shifted read of the window sum's transpose and into its consumers'
  transposes, so what the layer costs depended on whether ``y`` was alive
  and on what consumed it (several times the isolated cost). The tangent
  there runs inside a conditional whose predicate XLA cannot fold
  (``_isolated``): XLA:CPU compiles its branch as a unit of its own, with the
  same kernels in every program. The rule saves ``r = s ** -0.5`` (one
  array of scratch) and recomputes the elementwise rest inside the branch.

Huge finite inputs: where ``x**2`` overflows, ``s`` is infinite and ``y``
is 0, a saturated value whose derivatives the rule gives as 0 to every
order; otherwise ``0 * inf`` would turn a tangent, or a second derivative,
into NaN. The tangent's ``x * dx`` reads ``x`` through :func:`saturate`,
which clips it where its square overflows anyway (nothing changes where it
does not), and ``r`` and its powers have derivatives that are 0 where
``r = 0``. Those derivatives are only taken at second order, so first-order
programs compile as they would without them.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from flax_lrn._core import powers, rounding, windows

# The differentiation rules; see the module docstring.
Rule = Literal["auto", "isolated", "fused", "fused_rsqrt"]


class Spec(NamedTuple):
  """The static part of an LRN.

  Attributes:
    axes: the axes the window spans.
    before: the window extent before each position.
    after: the window extent after each position.
    static_alpha: alpha as a Python float when it is concrete, else None.
    static_beta: beta as a Python float when it is concrete, else None.
    form: the window-sum form of the forward pass (see ``windows``).
    rule_form: the window-sum form of the tangent on a CPU.
    fused_rule_form: the window-sum form of the tangent on other platforms.
    compute_dtype: the dtype the formula is evaluated in.
    out_dtype: the dtype of the result.
    rule: which differentiation rule: ``'auto'`` picks the isolated rule on
      a CPU, the fused rule's CUDA form on an NVIDIA GPU and the fused rule
      elsewhere, when the program is lowered; ``'isolated'``, ``'fused'``
      and ``'fused_rsqrt'`` (the CUDA form) force one on every platform.
  """

  axes: tuple[int, ...]
  before: int
  after: int
  static_alpha: float | None
  static_beta: float | None
  form: str
  rule_form: str
  fused_rule_form: str
  compute_dtype: Any
  out_dtype: Any
  rule: Rule = "auto"


def scale_only(x, k, beta) -> jax.Array:
  """LRN with ``alpha = 0``: ``x * k ** -beta``, no window sum at all.

  ``beta`` is a Python float where it is concrete (the fast powers).
  """
  return x / powers.power(k, beta)


def _beta(spec: Spec, beta):
  return beta if spec.static_beta is None else spec.static_beta


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def normalize(spec: Spec, x, alpha, k, beta):
  """LRN of ``x`` with scalar parameters in ``spec.compute_dtype``.

  ``x`` comes in its own dtype and is converted inside, so that the
  differentiation rule keeps it, not a wider copy, as its residual.
  """
  x = x.astype(spec.compute_dtype)
  y = x / powers.power(_s(spec, x, alpha, k), _beta(spec, beta))
  return _in_out_dtype(spec, y)


def _window_sum(spec: Spec, v: jax.Array, form: str) -> jax.Array:
  return windows.window_sum(v, spec.axes, spec.before, spec.after, form)


def s_of_window_sum(spec: Spec, w: jax.Array, alpha, k) -> jax.Array:
  """``s = k + alpha * w`` from the window sum of squares ``w``.

  Every kernel computes ``s`` through this, whatever sums its window.
  """
  if spec.static_alpha is None:
    # A traced alpha of 0 must give k where the sum overflowed, as a
    # concrete 0 does (which skips the sum), not 0 * inf.
    w = jnp.where(jnp.isinf(w) & (alpha == 0), 0.0, w)
  return k + alpha * w


def _s(spec: Spec, x, alpha, k) -> jax.Array:
  """``k + alpha * W(x**2)``, for ``x`` in the compute dtype."""
  return s_of_window_sum(spec, _window_sum(spec, x * x, spec.form), alpha, k)


def saturate(x: jax.Array) -> jax.Array:
  """``x``, clipped at the magnitude from which ``x**2`` overflows.

  Where ``|x|`` reaches it, every window that holds ``x`` has ``s = inf``
  and contributes 0 whatever ``x`` is, so the clip changes no value; it
  only keeps products such as ``x * dx`` finite.
  """
  bound = 2.0 ** (jnp.finfo(x.dtype).maxexp // 2)
  return jnp.clip(x, -bound, bound)


def _slope(r, p, e):
  """``d(r ** e) / dr = e * r ** (e - 1)``, and 0 at ``r = 0``."""
  positive = r > 0
  return jnp.where(positive, e * p / jnp.where(positive, r, 1.0), 0.0)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _static_power(r, e: float):
  return powers.power(r, e)


@_static_power.defjvp
def _static_power_jvp(e, primals, tangents):
  (r,), (dr,) = primals, tangents
  p = powers.power(r, e)
  return p, _slope(r, p, e) * dr


@jax.custom_jvp
def _traced_power(r, e):
  return powers.power(r, e)


@_traced_power.defjvp
def _traced_power_jvp(primals, tangents):
  (r, e), (dr, de) = primals, tangents
  p = powers.power(r, e)
  log_r = jnp.log(jnp.where(r > 0, r, 1.0))
  return p, _slope(r, p, e) * dr + jnp.where(r > 0, p * log_r, 0.0) * de


def inverse_power_of_rsqrt(r: jax.Array, beta: Any) -> jax.Array:
  """``s ** -beta`` given ``r = s ** -0.5``, by the table of fast powers.

  Its derivatives are 0 where ``r = 0`` (``s = inf``), where the exact
  ones are ``0 * inf``.
  """
  if isinstance(beta, float):
    return _static_power(r, 2.0 * beta)
  return _traced_power(r, 2.0 * beta)


def _tangent(
  spec: Spec,
  form: str,
  clip: bool,
  present,
  r,
  x,
  alpha,
  k,
  beta,
  *tangents,
  scale=None,
):
  """The tangent, given ``r = s ** -0.5``.

  Everything but ``r`` is an elementwise function of ``r`` and ``x``, which
  the callers recompute inside the backward pass instead of storing.
  ``clip`` reads ``x`` through :func:`saturate` everywhere (what XLA fuses
  best on GPU and TPU); otherwise only ``x * dx`` does (on a CPU, where the
  clip would be recomputed at every shifted read of the transposed sum).
  ``scale``, where given, is ``y / s`` as stored by the forward pass (see
  :func:`_stored_scale_jvp`), for the window term of ``dx``.
  """
  dx, dalpha, dk, dbeta = (
    tangents[sum(present[:i])] if present[i] else None for i in range(4)
  )
  x = x.astype(spec.compute_dtype)
  saturated = saturate(x)
  if clip:
    x = saturated
  if dx is not None:
    dx = dx.astype(spec.compute_dtype)
  p = inverse_power_of_rsqrt(r, _beta(spec, beta))
  y = x * p
  # y / s, the factor of every window term.
  c = y * (r * r)
  # With beta = 0 the LRN is the identity: no window term, which would be
  # 0 * inf = NaN where k = 0 and a window holds only zeros.
  window_terms = spec.static_beta != 0.0
  ds = None
  if dx is not None and window_terms:
    # The clip keeps the sum finite where c = 0.
    factor = c if scale is None else scale.astype(c.dtype)
    ds = (factor * (2.0 * alpha)) * _window_sum(spec, saturated * dx, form)
  if dalpha is not None and window_terms:
    # c = 0 where the sum of squares overflowed: the term is 0, not 0 * inf.
    window_sum = _window_sum(spec, x * x, form)
    term = jnp.where(c == 0, 0.0, c * window_sum) * dalpha
    ds = term if ds is None else ds + term
  if dk is not None and window_terms:
    ds = c * dk if ds is None else ds + c * dk
  dy = None if ds is None else -beta * ds
  if dx is not None:
    dy = p * dx if dy is None else dy + p * dx
  if dbeta is not None:
    # -y log(s) tends to 0 where s overflows (y = 0, log(r) = -inf).
    term = (2.0 * dbeta) * jnp.where(y == 0, 0.0, y * jnp.log(r))
    dy = term if dy is None else dy + term
  if dy is None:  # no tangent at all: the callers never ask for that
    dy = jnp.zeros_like(y)
  return dy.astype(spec.out_dtype)


@jax.custom_jvp
def _rsqrt(s):
  return lax.rsqrt(s)


@_rsqrt.defjvp
def _rsqrt_jvp(primals, tangents):
  (s,), (ds,) = primals, tangents
  r = lax.rsqrt(s)
  # -r**3 / 2 ds, and 0 where s = inf (r = 0), whatever ds is there.
  return r, jnp.where(r > 0, (-0.5 * r * r * r) * ds, 0.0)


def _rsqrt_of_s(spec: Spec, x, alpha, k, clip: bool) -> jax.Array:
  """``r = s ** -0.5``, with 0 derivatives to every order where ``r = 0``.

  ``clip`` reads ``x`` through :func:`saturate`, as the tangent does.
  """
  x = x.astype(spec.compute_dtype)
  return _rsqrt(_s(spec, saturate(x) if clip else x, alpha, k))


def _narrows_to_bfloat16(spec: Spec) -> bool:
  return (
    jnp.dtype(spec.out_dtype) == jnp.bfloat16
    and jnp.dtype(spec.compute_dtype) == jnp.float32
  )


def _in_out_dtype(spec: Spec, y: jax.Array) -> jax.Array:
  """``y`` converted to ``spec.out_dtype``; on CUDA, bfloat16 in integers.

  Where a program is lowered for an NVIDIA GPU (the CUDA rule, and the
  forward pass's ``cuda`` branch), a bfloat16 ``y`` is rounded by
  ``rounding.round_to_bfloat16``: a training step through a max pool then
  moves 3.0 times the float32 input's bytes, not 5.5 (compiled for an H100,
  not run), and no other program shape changes. The values are the same
  bits, so the other platforms keep the plain conversion and their
  programs.
  """
  if not _narrows_to_bfloat16(spec) or spec.rule in ("isolated", "fused"):
    return y.astype(spec.out_dtype)
  if spec.rule == "fused_rsqrt":
    return rounding.round_to_bfloat16(y)
  return lax.platform_dependent(
    y,
    cuda=rounding.round_to_bfloat16,
    default=lambda v: v.astype(spec.out_dtype),
  )


def _output(spec: Spec, r, x, beta) -> jax.Array:
  p = inverse_power_of_rsqrt(r, _beta(spec, beta))
  return _in_out_dtype(spec, x.astype(spec.compute_dtype) * p)


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


def _isolated_jvp(spec: Spec, present, x, alpha, k, beta, *live):
  """The CPU rule: ``y`` and the tangent, isolated, from the residual ``r``."""
  r = _rsqrt_of_s(spec, x, alpha, k, clip=False)
  tangent = functools.partial(_tangent, spec, spec.rule_form, False, present)
  dy = _isolated(tangent)(r, x, alpha, k, beta, *live)
  return _output(spec, r, x, beta), dy


def _keeps_rsqrt(spec: Spec) -> bool:
  """Whether the CUDA rule keeps ``r`` apart from the tangent's other terms.

  Across channels in full precision, XLA:GPU otherwise fuses ``r`` into the
  transposed window sum's operand, which it then writes: an array computed
  from ``x`` and the cotangent, one more to write and read when ``y`` is
  dead (``jax.grad``, per-example gradients, remat). Behind an
  ``optimization_barrier`` it writes ``r`` instead, from ``x`` alone, and
  the backward pass reads it. Not in a narrower dtype, where XLA recomputes
  ``r`` from the narrow input in every kernel more cheaply than it reads a
  full-precision ``r``; not for a window over several axes, whose
  intermediate sum XLA writes anyway; and not on a TPU, where the barrier
  splits the backward pass into several kernels more.
  """
  if spec.rule != "fused_rsqrt" or len(spec.axes) != 1:
    return False
  out, compute = jnp.dtype(spec.out_dtype), jnp.dtype(spec.compute_dtype)
  return out.itemsize >= compute.itemsize


def _stores_scale(spec: Spec) -> bool:
  """Whether the CUDA rule stores ``y / s`` in bfloat16 for the backward pass.

  In bfloat16 every array XLA:GPU keeps for the backward pass is otherwise
  a float32 one (``r``, or the transposed window sum's operand): twice the
  bytes of the activations it normalizes. Not for a window over several
  axes, whose intermediate sum XLA writes anyway, where storing ``y / s``
  as well moves more in most program shapes.
  """
  return (
    spec.rule == "fused_rsqrt"
    and _narrows_to_bfloat16(spec)
    and len(spec.axes) == 1
  )


def _stored_scale_jvp(spec: Spec, present, r, x, alpha, k, beta, *live):
  """The CUDA rule in bfloat16: ``y / s`` stored in bfloat16, ``x`` kept.

  The transpose of the tangent reads ``c = y / s`` at every shifted
  position of the window and ``s ** -beta`` only at the centre. The forward
  pass stores ``c`` rounded to bfloat16, and the backward pass recomputes
  ``s`` from ``x`` at the centre, so that it reads two bfloat16 arrays
  (``c`` and ``x``) and no float32 one. Only the window term of ``dx``
  reads the rounded ``c``: it carries one more bfloat16 rounding (at most
  ``2 ** -8`` of that term), the rest of ``dx`` and ``y`` are as in float32.
  """
  form = spec.fused_rule_form
  xs = x.astype(spec.compute_dtype)
  p = inverse_power_of_rsqrt(r, _beta(spec, beta))
  # r is capped where r**2 would overflow (s subnormal), so that c is NaN
  # only where y is (beta >= 0): 0 * inf cannot arise from the cap.
  capped = jnp.minimum(r, 2.0**63)
  scale = rounding.round_to_bfloat16(saturate(xs) * p * (capped * capped))

  def tangent(scale, x, alpha, k, beta, *live):
    # s recomputed from x unclipped: the same values as the forward pass's,
    # but not the same expression, so XLA recomputes it at the centre
    # instead of writing the forward pass's r in float32 to read it back.
    r = _rsqrt_of_s(spec, x, alpha, k, clip=False)
    return _tangent(
      spec, form, True, present, r, x, alpha, k, beta, *live, scale=scale
    )

  dy = jax.checkpoint(tangent, prevent_cse=False)(
    scale, x, alpha, k, beta, *live
  )
  y = xs * p
  # The same y (c is NaN only where y is NaN), computed from the rounded c,
  # so that XLA writes y and c in one kernel rather than reading x twice.
  stored = scale.astype(y.dtype)
  y = jnp.where(jnp.isnan(stored), y + stored, y)
  return _in_out_dtype(spec, y), dy


def _fused_jvp(spec: Spec, present, x, alpha, k, beta, *live):
  """The GPU and TPU rule: the tangent recomputes everything from ``x``.

  ``spec.rule`` is ``'fused_rsqrt'`` for the CUDA form (``_keeps_rsqrt``,
  ``_stores_scale``).
  """
  r = _rsqrt_of_s(spec, x, alpha, k, clip=True)
  if _stores_scale(spec):
    return _stored_scale_jvp(spec, present, r, x, alpha, k, beta, *live)
  form = spec.fused_rule_form
  keep = _keeps_rsqrt(spec)

  def tangent(x, alpha, k, beta, *live):
    r = _rsqrt_of_s(spec, x, alpha, k, clip=True)
    if keep:
      r = lax.optimization_barrier(r)
    return _tangent(spec, form, True, present, r, x, alpha, k, beta, *live)

  dy = jax.checkpoint(tangent, prevent_cse=False)(x, alpha, k, beta, *live)
  return _output(spec, r, x, beta), dy


def _normalize_jvp(spec: Spec, primals, tangents):
  x, alpha, k, beta = primals
  present = tuple(not isinstance(t, SymbolicZero) for t in tangents)
  if not any(present):
    y = _output(spec, _rsqrt_of_s(spec, x, alpha, k, clip=False), x, beta)
    return y, jnp.zeros_like(y)
  live = [t for t in tangents if not isinstance(t, SymbolicZero)]
  isolated = functools.partial(
    _isolated_jvp, spec._replace(rule="isolated"), present
  )
  # Each branch names its rule, so that none asks for the platform again.
  fused_spec = spec._replace(rule="fused") if spec.rule == "auto" else spec
  fused = functools.partial(_fused_jvp, fused_spec, present)
  if spec.rule == "isolated":
    return isolated(*primals, *live)
  if spec.rule in ("fused", "fused_rsqrt"):
    return fused(*primals, *live)
  cuda = functools.partial(
    _fused_jvp, spec._replace(rule="fused_rsqrt"), present
  )
  return lax.platform_dependent(
    *primals, *live, cpu=isolated, cuda=cuda, default=fused
  )


# Symbolic zeros let the rule skip the terms of undifferentiated
# hyper-parameters (the usual case: only x is differentiated).
normalize.defjvp(_normalize_jvp, symbolic_zeros=True)


def xla_kernel(spec: Spec, x, alpha, k, beta) -> jax.Array:
  """:func:`normalize` of ``x`` without its unit axes outside the window.

  The XLA kernel of the kernel seam. XLA:CPU gives the rule's conditional a
  buffer of its own for an operand with a unit axis (``x[None]`` in a
  per-example gradient under ``vmap`` held two copies of the input);
  without it the conditional works on the residual in place. Dropping a
  unit axis is a bitcast, and changes nothing else.
  """
  shape = jnp.shape(x)
  # A symbolic dimension (jax.export, jax2onnx) is never dropped.
  unit = [isinstance(n, int) and n == 1 for n in shape]
  kept = [a for a in range(len(shape)) if not unit[a] or a in spec.axes]
  if len(kept) == len(shape):
    return normalize(spec, x, alpha, k, beta)
  axes = tuple(kept.index(a) for a in spec.axes)
  squeezed = jnp.reshape(x, [shape[a] for a in kept])
  y = normalize(spec._replace(axes=axes), squeezed, alpha, k, beta)
  return y.reshape(shape)
