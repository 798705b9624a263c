"""The per-platform differentiation rules, each run on this CPU.

``lrn`` differentiates through one of three rules, picked when the program
is lowered: the isolated rule (a conditional XLA:CPU compiles on its own) on
a CPU, the fused rule (everything recomputed from ``x``) on a TPU and
elsewhere, and on an NVIDIA GPU the fused rule with ``r`` kept apart
(``fused_rsqrt``). Each is forced here on a CPU, so each is checked for
exactness against the float64 reference, in forward and reverse mode and to
second order, whatever platform the suite runs on.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from jax import export
from jax.test_util import check_grads

import flax_lrn
from flax_lrn._core import checks, lrn_formula, rounding
from tests import reference

RULES = ("isolated", "fused", "fused_rsqrt")
ALPHA, K, BETA = 1.0, 1.0, 0.75


def _spec(x, before, after, rule, axes=(-1,), form="shifts"):
  axes = tuple(a % x.ndim for a in axes)
  rule_form = "slices" if form == "shifts" else form
  return lrn_formula.Spec(
    axes=axes,
    before=before,
    after=after,
    static_alpha=ALPHA,
    static_beta=BETA,
    form=form,
    rule_form=rule_form,
    fused_rule_form=form,
    compute_dtype=checks.compute_dtype(x.dtype),
    out_dtype=x.dtype,
    rule=rule,
  )


def _lrn(x, before, after, rule, **kw):
  spec = _spec(x, before, after, rule, **kw)
  dtype = spec.compute_dtype
  return lrn_formula.normalize(
    spec,
    x,
    jnp.asarray(ALPHA, dtype),
    jnp.asarray(K, dtype),
    jnp.asarray(BETA, dtype),
  )


def _inputs(shape, dtype, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=shape).astype(dtype)
  g = rng.normal(size=shape).astype(dtype)
  return jnp.asarray(x), jnp.asarray(g)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(
  ("before", "after", "axes", "form"),
  [
    (2, 2, (-1,), "shifts"),
    (2, 1, (-1,), "shifts"),
    (0, 3, (1,), "shifts"),
    (1, 1, (1, 2), "reduce_window"),
  ],
)
def test_rule_matches_the_float64_reference(rule, before, after, axes, form):
  x, g = _inputs((2, 5, 4, 7), np.float32)
  f = jax.jit(lambda v: _lrn(v, before, after, rule, axes=axes, form=form))
  ref_axes = tuple(a % x.ndim for a in axes)
  args = (before, after, ALPHA, K, BETA, ref_axes)
  y, pullback = jax.vjp(f, x)
  np.testing.assert_allclose(y, reference.lrn(x, *args), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(
    pullback(g)[0], reference.lrn_vjp(x, g, *args), rtol=2e-6, atol=1e-6
  )
  # Forward mode: the directional derivative along g, against the VJP's
  # transpose identity <J g, h> = <g, J^T h>.
  _, tangent = jax.jvp(f, (x,), (g,))
  h = jnp.asarray(np.random.default_rng(1).normal(size=x.shape), jnp.float32)
  lhs = float(jnp.vdot(tangent, h))
  rhs = float(np.vdot(g, reference.lrn_vjp(x, h, *args)))
  assert lhs == pytest.approx(rhs, rel=1e-5)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("promotion", ["standard", "strict"])
@pytest.mark.parametrize(
  ("x64", "dtype"),
  [(False, np.float32), (True, np.float32), (True, np.float64)],
)
def test_rule_in_every_dtype_mode(rule, promotion, x64, dtype):
  """Each rule, with x64 off and on and under strict promotion.

  Reverse and forward mode keep the input's dtype and match the float64
  reference.
  """
  x_np, g_np = (np.asarray(a) for a in _inputs((2, 3, 7), np.float64))
  args = (2, 2, ALPHA, K, BETA)
  want = reference.lrn_vjp(x_np, g_np, *args)
  tol = 1e-12 if dtype == np.float64 else 2e-6
  with jax.enable_x64(x64), jax.numpy_dtype_promotion(promotion):
    x, g = jnp.asarray(x_np, dtype), jnp.asarray(g_np, dtype)
    f = jax.jit(lambda v: _lrn(v, 2, 2, rule))
    y, pullback = jax.vjp(f, x)
    (dx,) = pullback(g)
    _, tangent = jax.jvp(f, (x,), (g,))
    assert y.dtype == dx.dtype == tangent.dtype == dtype
  np.testing.assert_allclose(dx, want, rtol=tol, atol=tol)
  # <J g, g> = <g, J^T g>: forward mode against the reference's transpose.
  assert float(np.vdot(tangent, g_np)) == pytest.approx(
    float(np.vdot(g_np, want)), rel=10 * tol
  )


@pytest.mark.parametrize("rule", RULES)
def test_rule_second_order(rule):
  x, _ = _inputs((2, 3, 6), np.float64)
  with jax.enable_x64(True):
    x = jnp.asarray(x, jnp.float64)
    f = lambda v: _lrn(v, 2, 1, rule)  # noqa: E731
    check_grads(f, (x,), order=2, modes=("fwd", "rev"), rtol=1e-6)
    hessian = jax.hessian(lambda v: jnp.sum(jnp.sin(f(v))))(x)
    assert np.all(np.isfinite(np.asarray(hessian)))


@pytest.mark.parametrize("rule", RULES)
def test_rule_float32_second_order(rule):
  x, _ = _inputs((2, 3, 6), np.float32)
  check_grads(
    lambda v: _lrn(v, 1, 1, rule), (x,), order=2, modes=("fwd", "rev"),
    atol=5e-2, rtol=5e-2,
  )  # fmt: skip


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("big", [3e38, 1e25, 1.8e19])
def test_rule_saturates_at_huge_inputs(rule, big):
  """Where x**2 overflows, every derivative is finite and 0 as it should be.

  Forward and reverse mode agree, and the Hessian is the float64 one (where
  nothing overflows and a huge entry's terms are tiny).
  """
  x = np.asarray([[big, 1.0, 2.0, 3.0, -big, 4.0, -2.0]], np.float32)

  def f(v):
    return _lrn(v, 1, 1, rule)

  xj = jnp.asarray(x)
  forward, backward = jax.jacfwd(f)(xj), jax.jacrev(f)(xj)
  assert np.all(np.isfinite(forward)) and np.all(np.isfinite(backward))
  np.testing.assert_allclose(forward, backward, rtol=1e-6, atol=1e-30)

  def loss(v):
    return jnp.sum(f(v) ** 2)

  got = np.asarray(jax.hessian(loss)(xj))[0, :, 0, :]
  assert np.all(np.isfinite(got))
  with jax.enable_x64(True):
    want = np.asarray(jax.hessian(loss)(jnp.asarray(x, jnp.float64)))
  np.testing.assert_allclose(got, want[0, :, 0, :], rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_rule_keeps_narrow_dtypes(rule, dtype):
  """Narrow inputs are converted inside: the gradient comes back narrow."""
  x, g = _inputs((2, 4, 6), np.float32)
  xn, gn = x.astype(dtype), g.astype(dtype)
  y, pullback = jax.vjp(lambda v: _lrn(v, 2, 2, rule), xn)
  (dx,) = pullback(gn)
  assert y.dtype == dtype and dx.dtype == dtype
  want = reference.lrn_vjp(
    np.asarray(xn, np.float64), np.asarray(gn, np.float64), 2, 2, ALPHA, K,
    BETA,
  )  # fmt: skip
  np.testing.assert_allclose(
    np.asarray(dx, np.float64), want, rtol=2e-2, atol=2e-2
  )


def test_rules_round_bfloat16_outputs_alike():
  """The CUDA rule's integer rounding gives the conversion's bits."""
  x, g = _inputs((2, 4, 6), np.float32, seed=3)
  xn, gn = x.astype(jnp.bfloat16) * 4, g.astype(jnp.bfloat16)
  outputs = []
  for rule in RULES:
    y, pullback = jax.jit(
      lambda v, r=rule: jax.vjp(lambda u: _lrn(u, 2, 2, r), v)
    )(xn)
    outputs.append((np.asarray(y).view(np.uint16), pullback(gn)[0]))
  for y, dx in outputs[1:]:
    np.testing.assert_array_equal(y, outputs[0][0])
    np.testing.assert_allclose(
      np.asarray(dx, np.float32), np.asarray(outputs[0][1], np.float32),
      rtol=1e-2, atol=1e-2,
    )  # fmt: skip


@pytest.mark.parametrize("x64", [False, True])
def test_round_to_bfloat16_gives_the_conversions_bits(x64):
  """Every class of float32: normal, subnormal, ties, infinities, NaN."""
  rng = np.random.default_rng(0)
  bits = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32)
  # Ties (the low half exactly 0x8000), their neighbours, the largest
  # finite values, infinities, zeros and NaNs of both signs.
  special = np.array(
    [0x3F808000, 0x3F818000, 0x3F807FFF, 0x3F808001, 0x7F7FFFFF, 0xFF7FFFFF,
     0x7F7F8000, 0x7F800000, 0xFF800000, 0x00000000, 0x80000000, 0x00008000,
     0x00018000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0xFFFFFFFF],
    np.uint32,
  )  # fmt: skip
  y = np.concatenate([bits, special]).view(np.float32)
  with jax.enable_x64(x64), jax.numpy_dtype_promotion("strict"):
    got = np.asarray(jax.jit(rounding.round_to_bfloat16)(y))
    want = np.asarray(jnp.asarray(y).astype(jnp.bfloat16))
  assert got.dtype == jnp.bfloat16
  nan = np.isnan(y)
  np.testing.assert_array_equal(
    got.view(np.uint16)[~nan], want.view(np.uint16)[~nan]
  )
  assert np.all(np.isnan(got[nan].astype(np.float32)))
  np.testing.assert_array_equal(np.signbit(got[nan]), np.signbit(y[nan]))


@pytest.mark.parametrize("rule", RULES)
def test_rule_under_vmap_and_remat(rule):
  x, g = _inputs((3, 2, 4, 6), np.float32)
  f = lambda v: _lrn(v, 2, 2, rule)  # noqa: E731
  per_example = jax.jit(
    jax.vmap(jax.grad(lambda v, c: jnp.vdot(jax.checkpoint(f)(v), c)))
  )(x, g)
  want = reference.lrn_vjp(x, g, 2, 2, ALPHA, K, BETA)
  np.testing.assert_allclose(per_example, want, rtol=2e-6, atol=1e-6)


def _hlo(fn, *args) -> str:
  return jax.jit(fn).lower(*args).compile().as_text()


def _programs():
  """Programs that differ in what surrounds the LRN and what is alive."""
  w = jnp.asarray(np.random.default_rng(2).normal(size=(6, 6)), jnp.float32)
  f = lambda v: flax_lrn.lrn(v, 5, alpha=ALPHA)  # noqa: E731

  def step(tail):
    return jax.grad(
      lambda w, v: jnp.mean(jnp.square(tail(f(nn.relu(v @ w))))), argnums=1
    )

  pool = lambda y: nn.max_pool(y, (3, 3), strides=(2, 2))  # noqa: E731
  return {
    "grad": lambda v, c: jax.grad(lambda u: jnp.vdot(f(u), c))(v),
    "value_and_grad": lambda v, c: jax.value_and_grad(
      lambda u: jnp.sum(f(u) * c)
    )(v),
    "vjp": lambda v, c: jax.vjp(f, v)[1](c)[0],
    "step_elementwise": lambda v, c: step(lambda y: y)(w, v),
    "step_pool": lambda v, c: step(pool)(w, v),
  }


def _branch_kernels(hlo: str) -> list[list[str]]:
  """The fusions of each conditional's first branch that launches any.

  Partial evaluation also leaves a conditional that only forwards the
  residuals (no kernels); it is left out.
  """
  names = re.findall(r"conditional\(.*?branch_computations=\{([^}]*)\}", hlo)
  out = []
  for group in names:
    first = group.split(",")[0].strip().lstrip("%")
    body = re.search(
      rf"\n%?{re.escape(first)} [^\n]*\{{\n(.*?)\n\}}", hlo, re.S
    )
    assert body is not None, first
    kinds = re.findall(r"fusion\(.*?kind=(k\w+)", body.group(1))
    if kinds:
      out.append(kinds)
  return out


@pytest.mark.skipif(
  jax.default_backend() != "cpu", reason="the isolated rule is the CPU's"
)
def test_cpu_backward_is_the_same_unit_in_every_program():
  """What surrounds the LRN or is alive does not change its backward pass.

  On a CPU the rule's tangent compiles as one conditional's branch; its
  kernels are the same in every program shape (before the rule was
  isolated, XLA:CPU duplicated its producers into up to four padded copies
  in some of these programs and not in others).
  """
  x, g = _inputs((2, 9, 9, 6), np.float32)
  units = {}
  for name, program in _programs().items():
    branches = _branch_kernels(_hlo(program, x, g))
    assert len(branches) == 1, (name, branches)
    units[name] = branches[0]
  assert len({tuple(v) for v in units.values()}) == 1, units


@pytest.mark.parametrize("dtype", [np.float32, jnp.bfloat16])
def test_rules_share_a_program_exported_for_several_platforms(dtype):
  """One artifact carries each platform's rule; the CPU's runs here."""

  def f(v, c):
    y, pullback = jax.vjp(lambda u: flax_lrn.lrn(u, 5), v)
    return y, pullback(c)[0]

  x, g = _inputs((2, 4, 6), np.float32)
  x, g = x.astype(dtype), g.astype(dtype)
  spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
  for fn, args in ((f, (x, g)), (lambda v: flax_lrn.lrn(v, 5), (x,))):
    exported = export.export(jax.jit(fn), platforms=("cpu", "cuda", "tpu"))(
      *[spec] * len(args)
    )
    restored = export.deserialize(exported.serialize())
    got, want = restored.call(*args), jax.jit(fn)(*args)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
  ("dtype", "window", "kept"),
  [
    (jnp.float32, {}, True),
    (jnp.bfloat16, {}, False),
    (jnp.float32, {"mode": "within_channel"}, False),
  ],
)
def test_cuda_rule_keeps_rsqrt_apart_in_full_precision_across_channels(
  dtype, window, kept
):
  """Exported for CUDA, the rule holds ``r`` behind a barrier where it pays.

  Only the CUDA program changes: a TPU's is the fused rule without one.
  """

  def f(v, c):
    return jax.grad(
      lambda u: jnp.vdot(flax_lrn.lrn(u, 5, alpha=ALPHA, **window), c)
    )(v)

  spec = jax.ShapeDtypeStruct((2, 5, 5, 6), dtype)
  for platform, expected in (("cuda", kept), ("tpu", False)):
    module = export.export(jax.jit(f), platforms=(platform,))(spec, spec)
    found = "optimization_barrier" in module.mlir_module()
    assert found == expected, (platform, dtype, window)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_cuda_rule_rounds_bfloat16_in_integers(dtype):
  """Exported for CUDA, a bfloat16 LRN rounds ``y`` in integer arithmetic.

  Forward and under differentiation: a conversion would be dropped by
  XLA's excess-precision simplification where a max pool reads ``y``. No
  other dtype and no other platform changes.
  """

  def norm(u):
    return flax_lrn.lrn(u, 5, alpha=ALPHA)

  def step(v, c):
    y, pullback = jax.vjp(norm, v)
    return y, pullback(c)[0]

  spec = jax.ShapeDtypeStruct((2, 5, 5, 6), dtype)
  for f, args in ((step, (spec, spec)), (norm, (spec,))):
    for platform in ("cuda", "tpu", "cpu"):
      module = export.export(jax.jit(f), platforms=(platform,))(*args)
      found = "bitcast_convert" in module.mlir_module()
      expected = platform == "cuda" and dtype == jnp.bfloat16
      assert found == expected, (f.__name__, platform, dtype)


@pytest.mark.parametrize("x64", [False, True])
def test_cuda_bfloat16_rule_rounds_only_the_window_term(x64):
  """In bfloat16 the CUDA rule stores ``y / s`` rounded, for ``dx`` only.

  ``y`` keeps the conversion's bits (as every rule's, tested above); ``dx``
  carries one bfloat16 rounding of each ``y / s`` inside the window term
  and one of the result, and nothing else: every element is within that
  bound of the float64 gradient of the same bfloat16 inputs, with
  ``alpha = 1`` so that the window term is as large as the rest.
  """
  x, g = _inputs((3, 5, 4, 16), np.float32, seed=7)
  xn, gn = (x * 2).astype(jnp.bfloat16), g.astype(jnp.bfloat16)
  with jax.enable_x64(x64), jax.numpy_dtype_promotion("strict"):
    _, pullback = jax.jit(
      lambda v: jax.vjp(lambda u: _lrn(u, 2, 2, "fused_rsqrt"), v)
    )(xn)
    dx = pullback(gn)[0]
  assert dx.dtype == jnp.bfloat16
  dx = np.asarray(dx, np.float64)
  x64, g64 = np.asarray(xn, np.float64), np.asarray(gn, np.float64)
  want = reference.lrn_vjp(x64, g64, 2, 2, ALPHA, K, BETA)
  s = K + ALPHA * reference.window_sum(x64 * x64, (3,), 2, 2)
  c = x64 * s ** (-BETA) / s
  unit = 2.0**-8  # bfloat16's unit roundoff
  window = 2 * ALPHA * BETA * np.abs(x64)
  window *= reference.window_sum(np.abs(c * g64), (3,), 2, 2)
  bound = unit * (np.abs(want) + window) * (1 + 4 * unit) + 1e-6
  assert np.all(np.abs(dx - want) <= bound)
  # The window term is rounded: the bound without it does not hold.
  assert np.any(np.abs(dx - want) > unit * np.abs(want) * (1 + 4 * unit))


@pytest.mark.parametrize("x64", [False, True])
def test_bfloat16_rules_agree_to_second_order(x64):
  """Hessian-vector products in bfloat16 agree between the rules.

  The CUDA rule rounds ``y`` and ``y / s`` in integer arithmetic, whose
  derivative is the conversion's, not 0: without it the Hessian of a loss
  of ``y`` would lose every term through the rounded arrays.
  """
  x, v = _inputs((2, 4, 16), np.float32, seed=1)
  xn, vn = x.astype(jnp.bfloat16), v.astype(jnp.bfloat16)

  def hvp(rule):
    def loss(u):
      return jnp.sum(jnp.square(_lrn(u, 2, 2, rule).astype(jnp.float32)))

    with jax.enable_x64(x64), jax.numpy_dtype_promotion("strict"):
      hv = jax.jvp(jax.grad(loss), (xn,), (vn,))[1]
    return np.asarray(hv, np.float32)

  want = hvp("isolated")
  for rule in RULES[1:]:
    got = hvp(rule)
    np.testing.assert_allclose(got, want, atol=2**-6 * np.abs(want).max())
