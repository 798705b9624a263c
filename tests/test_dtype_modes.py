"""The public LRN entry points in every dtype mode a user runs.

Each entry point runs with ``jax_enable_x64`` off and on, under the
standard and the strict dtype promotion, on float16, bfloat16, float32 and
(with x64) float64 input, eager and jitted, forward and reverse mode and
second order, with a beta that has a fast power and one that has not. The
values are checked against the float64 reference. The Pallas kernel runs
the same matrix in reverse mode, in Pallas's interpreter.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import flax_lrn
from flax_lrn import compat, compat_gdn
from flax_lrn import nnx as lrn_nnx
from tests import gdn_reference, reference

WINDOW = (2, 2)
ALPHA, K = 0.5, 1.0
# Relative tolerance of one result against the float64 reference, per
# input dtype: the maths runs in float32 (float64) and only the result is
# rounded, so one rounding of the output dtype, plus a few float32 ulps.
RTOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-6, "float64": 1e-12}
DTYPES = ("float16", "bfloat16", "float32", "float64")


def _entry_points(beta: float):
  """``{name: f(x)}``: the same LRN through each public entry point."""
  kw = dict(window=WINDOW, alpha=ALPHA, beta=beta, k=K)
  linen = flax_lrn.LRN(**kw)
  from_torch = flax_lrn.LRN.from_torch(
    size=5, alpha=ALPHA * 5, beta=beta, k=K, channel_axis=-1
  )
  nnx_layer = lrn_nnx.LRN(**kw)
  nnx_from_tf = lrn_nnx.LRN.from_tensorflow(
    depth_radius=2, bias=K, alpha=ALPHA, beta=beta
  )
  return {
    "lrn": lambda x: flax_lrn.lrn(x, **kw),
    "compat.tensorflow": lambda x: compat.tensorflow(
      x, depth_radius=2, bias=K, alpha=ALPHA, beta=beta, channel_axis=-1
    ),
    "compat.torch": lambda x: compat.torch(
      x, size=5, alpha=ALPHA * 5, beta=beta, k=K, channel_axis=-1
    ),
    "linen.LRN": lambda x: linen.apply({}, x),
    "linen.LRN.from_torch": lambda x: from_torch.apply({}, x),
    "nnx.LRN": lambda x: nnx_layer(x),
    "nnx.LRN.from_tensorflow": lambda x: nnx_from_tf(x),
  }


@contextlib.contextmanager
def _mode(x64: bool, promotion: str):
  with jax.enable_x64(x64), jax.numpy_dtype_promotion(promotion):
    yield


def _modes():
  """``(x64, promotion, dtype)``: every mode, float64 only with x64."""
  for x64 in (False, True):
    for promotion in ("standard", "strict"):
      for dtype in DTYPES:
        if dtype != "float64" or x64:
          yield x64, promotion, dtype


def _cases():
  for x64, promotion, dtype in _modes():
    for beta in (0.75, 0.6):
      yield pytest.param(
        x64, promotion, dtype, beta,
        id=f"x64={x64}-{promotion}-{dtype}-beta={beta}",
      )  # fmt: skip


def _input(dtype: str) -> np.ndarray:
  rng = np.random.default_rng(0)
  return (2.0 * rng.normal(size=(2, 3, 9))).astype(dtype)


@pytest.mark.parametrize(("x64", "promotion", "dtype", "beta"), list(_cases()))
def test_forward_and_gradients_in_every_mode(x64, promotion, dtype, beta):
  x_np = _input(dtype)
  g_np = np.random.default_rng(1).normal(size=x_np.shape).astype(dtype)
  x64_ref = np.asarray(x_np, np.float64)
  args = (*WINDOW, ALPHA, K, beta)
  want_y = reference.lrn(x64_ref, *args)
  want_dx = reference.lrn_vjp(x64_ref, np.asarray(g_np, np.float64), *args)
  rtol = RTOL[dtype]
  with _mode(x64, promotion):
    x, g = jnp.asarray(x_np), jnp.asarray(g_np)
    for name, f in _entry_points(beta).items():
      for jit in (False, True):
        fn = jax.jit(f) if jit else f
        label = f"{name} jit={jit}"
        y = fn(x)
        assert y.dtype == x.dtype, label
        np.testing.assert_allclose(
          np.asarray(y, np.float64), want_y, rtol=rtol, atol=rtol,
          err_msg=label,
        )  # fmt: skip
        _, pullback = jax.vjp(fn, x)
        (dx,) = pullback(g)
        assert dx.dtype == x.dtype, label
        scale = float(np.max(np.abs(want_dx)))
        np.testing.assert_allclose(
          np.asarray(dx, np.float64), want_dx, rtol=4 * rtol,
          atol=4 * rtol * scale, err_msg=label,
        )  # fmt: skip
        # Forward mode: <J g, g> equals <g, J^T g>.
        _, tangent = jax.jvp(fn, (x,), (g,))
        assert tangent.dtype == x.dtype, label
        lhs = float(np.vdot(np.asarray(tangent, np.float64), g_np))
        rhs = float(np.vdot(want_dx, np.asarray(g_np, np.float64)))
        assert lhs == pytest.approx(rhs, rel=20 * rtol, abs=20 * rtol), label


@pytest.mark.parametrize(
  ("x64", "promotion"),
  [(True, "strict"), (False, "strict"), (True, "standard")],
)
@pytest.mark.parametrize("beta", [0.75, 0.6])
def test_second_order_in_every_mode(x64, promotion, beta):
  with _mode(x64, promotion):
    x = jnp.asarray(_input("float32"))
    for name, f in _entry_points(beta).items():
      loss = functools.partial(lambda f, v: jnp.sum(jnp.square(f(v))), f)
      hvp = jax.jvp(jax.grad(loss), (x,), (x,))[1]
      assert hvp.dtype == jnp.float32, name
      assert np.all(np.isfinite(np.asarray(hvp))), name


@pytest.mark.parametrize(
  ("x64", "promotion"),
  [(True, "strict"), (True, "standard"), (False, "strict")],
)
def test_gdn_with_a_general_epsilon(x64, promotion):
  with _mode(x64, promotion):
    x = jnp.asarray(_input("float32"))
    gamma = 0.1 * jnp.eye(9, dtype=jnp.float32)
    beta = jnp.ones((9,), jnp.float32)
    y = flax_lrn.gdn(x, beta, gamma, epsilon=0.7)
    assert y.dtype == jnp.float32
    s = 1.0 + np.asarray(x, np.float64) ** 2 @ np.asarray(gamma, np.float64)
    want = np.asarray(x, np.float64) * s**-0.7
    np.testing.assert_allclose(np.asarray(y, np.float64), want, rtol=1e-5)


@pytest.mark.parametrize(("x64", "promotion", "dtype"), list(_modes()))
def test_pallas_kernel_in_every_mode(x64, promotion, dtype):
  # Reverse mode only (the kernel's rule is a custom_vjp), run by Pallas's
  # interpreter, with a window over H and W of NHWC input.
  rng = np.random.default_rng(2)
  x_np = (2.0 * rng.normal(size=(2, 5, 6, 3))).astype(dtype)
  g_np = rng.normal(size=x_np.shape).astype(dtype)
  beta = 0.6
  args = (1, 1, ALPHA, K, beta, (1, 2))
  x64_ref = np.asarray(x_np, np.float64)
  want_y = reference.lrn(x64_ref, *args)
  want_dx = reference.lrn_vjp(x64_ref, np.asarray(g_np, np.float64), *args)
  rtol = RTOL[dtype]
  with _mode(x64, promotion):
    x, g = jnp.asarray(x_np), jnp.asarray(g_np)
    kw = dict(window=3, mode="within_channel", alpha=ALPHA, k=K, beta=beta)
    f = jax.jit(functools.partial(flax_lrn.lrn, implementation="pallas", **kw))
    y, pullback = jax.vjp(f, x)
    (dx,) = pullback(g)
    assert y.dtype == dx.dtype == x.dtype
    np.testing.assert_allclose(
      np.asarray(y, np.float64), want_y, rtol=rtol, atol=rtol
    )
    scale = float(np.max(np.abs(want_dx)))
    np.testing.assert_allclose(
      np.asarray(dx, np.float64), want_dx, rtol=4 * rtol, atol=4 * rtol * scale
    )


def test_nnx_module_keeps_working_under_strict_promotion_in_bf16():
  with _mode(False, "strict"):
    layer = lrn_nnx.LRN(window=5, alpha=1.0)
    x = jnp.asarray(_input("bfloat16"))
    y = nnx.jit(lambda m, v: m(v))(layer, x)
    assert y.dtype == jnp.bfloat16


# GDN: 4 channels, a non-symmetric gamma [input, output], beta > 0.
GDN_BETA = np.array([1.0, 0.5, 2.0, 0.8])
GDN_GAMMA = np.array(
  [
    [0.1, 0.3, 0.0, 0.2],
    [0.0, 0.2, 0.1, 0.0],
    [0.4, 0.0, 0.1, 0.3],
    [0.1, 0.1, 0.0, 0.2],
  ]
)


def _gdn_entry_points(epsilon: float, dtype: str):
  """``{name: f(x)}``: one GDN through each public entry point (alpha 2).

  The parameters are float64 for float64 input, else float32.
  """
  param_dtype = jnp.float64 if dtype == "float64" else jnp.float32
  beta = jnp.asarray(GDN_BETA, param_dtype)
  gamma = jnp.asarray(GDN_GAMMA, param_dtype)
  params = {
    "reparam_beta": compat_gdn.nonnegative_stored(beta),
    "reparam_gamma": compat_gdn.nonnegative_stored(gamma),
  }
  linen = flax_lrn.GDN(epsilon=epsilon)
  linen_cai = flax_lrn.GDN.from_compressai(channel_axis=-1)
  layer = lrn_nnx.GDN(4, epsilon=epsilon, param_dtype=param_dtype)
  nnx.update(layer, params)
  layer_tfc = lrn_nnx.GDN.from_tensorflow_compression(
    alpha_parameter=2.0,
    epsilon_parameter=epsilon,
    num_features=4,
    param_dtype=param_dtype,
  )
  nnx.update(layer_tfc, params)
  entries = {
    "gdn": lambda x: flax_lrn.gdn(x, beta, gamma, epsilon=epsilon),
    "compat_gdn.tensorflow_compression": (
      lambda x: compat_gdn.tensorflow_compression(
        x, beta, gamma, alpha=2.0, epsilon=epsilon
      )
    ),
    "linen.GDN": lambda x: linen.apply({"params": params}, x),
    "nnx.GDN": lambda x: layer(x),
    "nnx.GDN.from_tensorflow_compression": lambda x: layer_tfc(x),
  }
  if epsilon == 0.5:  # CompressAI's GDN
    entries["compat_gdn.compressai"] = lambda x: compat_gdn.compressai(
      x, beta, gamma.T, channel_axis=-1
    )
    entries["linen.GDN.from_compressai"] = lambda x: linen_cai.apply(
      {"params": params}, x
    )
  return entries


def _gdn_input(dtype: str) -> np.ndarray:
  rng = np.random.default_rng(2)
  return (1.5 * rng.normal(size=(3, 5, 4))).astype(dtype)


def _gdn_ref(x, epsilon):
  return gdn_reference.gdn(x, GDN_BETA, GDN_GAMMA, epsilon=epsilon)


@pytest.mark.parametrize(("x64", "promotion", "dtype", "epsilon"), [
  pytest.param(*c.values[:3], eps, id=f"{c.id.rsplit('-', 1)[0]}-eps={eps}")
  for c in _cases() if c.values[3] == 0.75 for eps in (0.5, 0.7)
])  # fmt: skip
def test_gdn_forward_and_gradients_in_every_mode(
  x64, promotion, dtype, epsilon
):
  x_np = _gdn_input(dtype)
  x_ref = np.asarray(x_np, np.float64)
  rng = np.random.default_rng(3)
  g_np = rng.normal(size=x_np.shape).astype(dtype)
  v_np = rng.normal(size=x_np.shape).astype(dtype).astype(np.float64)
  want_y = _gdn_ref(x_ref, epsilon)

  # J v by central differences of the float64 reference, Richardson-
  # extrapolated: accurate to about 1e-13, float64's tolerance.
  def central(h):
    up = _gdn_ref(x_ref + h * v_np, epsilon)
    down = _gdn_ref(x_ref - h * v_np, epsilon)
    return (up - down) / (2 * h)

  want_jvp = (4 * central(5e-4) - central(1e-3)) / 3
  want = float(np.vdot(want_jvp, np.asarray(g_np, np.float64)))
  rtol = RTOL[dtype]
  with _mode(x64, promotion):
    x, g = jnp.asarray(x_np), jnp.asarray(g_np)
    for name, f in _gdn_entry_points(epsilon, dtype).items():
      for jit in (False, True):
        fn = jax.jit(f) if jit else f
        label = f"{name} jit={jit}"
        y = fn(x)
        assert y.dtype == x.dtype, label
        np.testing.assert_allclose(
          np.asarray(y, np.float64), want_y, rtol=rtol, atol=rtol,
          err_msg=label,
        )  # fmt: skip
        (dx,) = jax.vjp(fn, x)[1](g)
        assert dx.dtype == x.dtype, label
        got = float(np.vdot(np.asarray(dx, np.float64), v_np))
        assert got == pytest.approx(want, rel=20 * rtol, abs=20 * rtol), label
        v = jnp.asarray(v_np.astype(dtype))
        tangent = jax.jvp(fn, (x,), (v,))[1]
        got = float(np.vdot(np.asarray(tangent, np.float64), g_np))
        assert got == pytest.approx(want, rel=20 * rtol, abs=20 * rtol), label

      def loss(v, f=f):
        return jnp.sum(f(v).astype(jnp.float32) ** 2)

      hvp = jax.jvp(jax.grad(loss), (x,), (x,))[1]
      assert np.all(np.isfinite(np.asarray(hvp, np.float32))), name
