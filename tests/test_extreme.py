"""Extreme and odd inputs: huge values, NaN and inf, k = 0, odd windows.

Also non-contiguous inputs and hyper-parameters given as Python numbers,
NumPy scalars, 0-d arrays and traced values, with gradients with respect to
``alpha``, ``beta`` and ``k`` (a capability no other framework offers).

Every numeric expectation comes from the float64 reference in
tests/reference.py or from exact arithmetic worked out in the test.

Runtime: about 40 s on 2 CPU cores.
"""

from __future__ import annotations

import functools
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from jax.test_util import check_grads

import flax_lrn
from flax_lrn import nnx as lrn_nnx
from tests import reference


def _rand(shape, seed=0, scale=1.0):
  return (scale * np.random.default_rng(seed).normal(size=shape)).astype(
    np.float32
  )


def _extents(window):
  if isinstance(window, tuple):
    return window
  return (window - 1) // 2, window // 2


def _ref(x, window, alpha, k, beta, axes=(-1,), scaling="none"):
  before, after = _extents(window)
  a = alpha / (before + after + 1) ** len(axes) if scaling == "size" else alpha
  with np.errstate(all="ignore"):
    return reference.lrn(x, before, after, a, k, beta, axes)


def _ref_vjp(x, g, window, alpha, k, beta, axes=(-1,)):
  before, after = _extents(window)
  with np.errstate(all="ignore"):
    return reference.lrn_vjp(x, g, before, after, alpha, k, beta, axes)


@functools.cache
def _fwd_bwd(window, alpha, k, beta, mode="across_channels"):
  fn = functools.partial(
    flax_lrn.lrn, window=window, alpha=alpha, k=k, beta=beta, mode=mode
  )
  return jax.jit(fn), jax.jit(lambda x, g: jax.vjp(fn, x)[1](g)[0])


# --- Huge finite values -----------------------------------------------------
#
# The sum of squares accumulates in float32 (float16 and bfloat16 inputs are
# promoted), so float16 inputs up to 65504 are exact to float16 rounding.
# Where a window's sum of squares exceeds the float32 range (|x| above about
# 1.8e19: float32 and bfloat16 values near their maximum), s overflows to
# inf and the output is +-0 where the exact result is a tiny number of the
# same sign, at most |x| * (alpha * x**2) ** -beta. Never NaN or inf.


def test_float16_near_max_is_exact_to_rounding():
  big = float(jnp.finfo(jnp.float16).max)  # 65504
  x = np.array(
    [[big, -big, 1.0, 0.0, big / 3, 300.0, -7.0, big]], dtype=np.float16
  )
  for alpha, beta in ((1e-4, 0.75), (1.0, 0.5), (3.0, 1.3)):
    y = flax_lrn.lrn(x, 3, alpha=alpha, beta=beta, k=2.0)
    assert y.dtype == jnp.float16
    assert np.all(np.isfinite(np.asarray(y, np.float32)))
    np.testing.assert_allclose(
      np.asarray(y, np.float64),
      _ref(x, 3, alpha, 2.0, beta),
      rtol=2**-10,
      atol=2**-24,
    )


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.6])
def test_near_dtype_max_gives_no_nan_or_inf(dtype, beta):
  big = float(jnp.finfo(dtype).max)
  x = [big, -big / 2, 1.0, 0.0, 2e19, 0.0, -3e-3, 0.5, 4.0, 7.0, 0.0, 1e19]
  x = np.array([[*x, 0.0, 0.0, big]], np.float32)
  x = jnp.asarray(x, dtype)
  xf = np.asarray(x, np.float64)
  g = jnp.ones_like(x)
  fwd, bwd = _fwd_bwd(3, 1e-4, 2.0, beta)
  y = np.asarray(fwd(x), np.float64)
  dx = np.asarray(bwd(x, g), np.float64)
  want = _ref(xf, 3, 1e-4, 2.0, beta)
  assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
  # Never larger than exact, never of the wrong sign.
  assert np.all(np.abs(y) <= np.abs(want) * (1 + 2**-7))
  assert np.all(y * want >= 0)
  # Windows whose float32 sum of squares stays finite are accurate.
  s = reference.window_sum(xf * xf, (1,), 1, 1)
  ok = s < float(jnp.finfo(jnp.float32).max)
  assert ok.sum() >= 6
  rtol = 1e-5 if dtype == jnp.float32 else 2**-7
  np.testing.assert_allclose(y[ok], want[ok], rtol=rtol, atol=1e-30)


def test_huge_values_with_alpha_zero_stay_finite():
  """alpha = 0 makes LRN ``x * k**-beta``, whatever the window holds."""
  x = jnp.array([[3e38, 1.0, -2e20, 0.5]], jnp.float32)
  # A concrete alpha = 0 skips the window sum, whose float32 squares would
  # overflow to inf and give 0 * inf = NaN.
  y = flax_lrn.lrn(x, 3, alpha=0.0, beta=0.75, k=2.0)
  assert np.all(np.isfinite(y))
  np.testing.assert_allclose(y, x * 2.0**-0.75, rtol=1e-6)


# --- NaN and inf: they reach exactly the outputs whose window holds them ----


NAN_CASES = [
  # (window, mode, shape, poisoned index)
  (5, "across_channels", (2, 12), (0, 6)),
  ((3, 0), "across_channels", (2, 12), (1, 4)),
  (4, "across_channels", (2, 12), (0, 0)),  # at the edge
  ((0, 2), "across_channels", (2, 12), (1, 11)),
  ((2, 1), "within_channel", (1, 9, 9, 2), (0, 4, 3, 1)),
]


def _affected(shape, index, window, mode):
  """The outputs whose window contains ``index`` (and their mirror set)."""
  before, after = _extents(window)
  mask = np.zeros(shape, bool)
  sl = list(index)
  axes = (len(shape) - 1,) if mode == "across_channels" else (1, 2)
  for a in axes:
    # Output c sees [c - before, c + after], so j is seen from
    # [j - after, j + before].
    sl[a] = slice(max(0, index[a] - after), index[a] + before + 1)
  mask[tuple(sl)] = True
  return mask


def _grad_affected(shape, index, window, mode):
  """Gradients touched: the forward window composed with its transpose."""
  before, after = _extents(window)
  return _affected(shape, index, (before + after, before + after), mode)


@pytest.mark.parametrize(
  ("window", "mode", "shape", "index"),
  NAN_CASES,
  ids=[f"{m}-{w}-{i}".replace(" ", "") for w, m, _, i in NAN_CASES],
)
def test_nan_and_inf_stay_inside_their_windows(window, mode, shape, index):
  axes = (-1,) if mode == "across_channels" else (1, 2)
  x = _rand(shape, seed=1)
  g = _rand(shape, seed=2)
  fwd, bwd = _fwd_bwd(window, 1.0, 1.0, 0.75, mode)
  clean = x.copy()
  clean[index] = 0.0
  y_clean, dx_clean = np.asarray(fwd(clean)), np.asarray(bwd(clean, g))
  hit = _affected(shape, index, window, mode)
  grad_hit = _grad_affected(shape, index, window, mode)

  for bad in (np.nan, np.inf, -np.inf):
    xb = x.copy()
    xb[index] = bad
    y, dx = np.asarray(fwd(xb)), np.asarray(bwd(xb, g))
    # Outside the windows: exactly the computation without the bad value.
    np.testing.assert_allclose(y[~hit], y_clean[~hit], rtol=1e-6, atol=0)
    np.testing.assert_allclose(
      dx[~grad_hit], dx_clean[~grad_hit], rtol=1e-6, atol=1e-7
    )
    assert np.all(np.isfinite(y[~hit])) and np.all(np.isfinite(dx[~grad_hit]))
    if np.isnan(bad):
      assert np.all(np.isnan(y[hit]))
    else:
      # s = inf there, so s ** -beta = 0: the neighbours go to +-0 (their
      # exact limit), and the inf itself to inf * 0 = NaN.
      others = hit.copy()
      others[index] = False
      assert np.all(y[others] == 0.0)
      assert np.isnan(y[index])
    np.testing.assert_allclose(
      y[~hit], _ref(clean, window, 1.0, 1.0, 0.75, axes)[~hit], rtol=1e-5
    )


# --- k = 0 -------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.6, 0.0])
def test_k0_all_zero_window_is_nan(beta):
  """``0 * 0 ** -beta``: NaN, as in every framework (beta > 0)."""
  x = np.array([[0, 0, 0, 0, 0, 1.5, 0, 0, 0, 0, -2.0]], np.float32)
  y = np.asarray(flax_lrn.lrn(x, 3, alpha=1.0, beta=beta, k=0.0))
  # Windows (width 3) of zeros only: outputs 0..3 and 8.
  zero_window = np.zeros_like(x, bool)
  zero_window[0, [0, 1, 2, 3, 8]] = True
  if beta == 0.0:
    np.testing.assert_array_equal(y, x)  # s ** 0 == 1: the identity
    return
  assert np.all(np.isnan(y[zero_window]))
  np.testing.assert_allclose(
    y[~zero_window], _ref(x, 3, 1.0, 0.0, beta)[~zero_window], rtol=1e-6
  )


@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.6])
def test_tiny_k_is_the_safe_option(beta):
  """k = 1e-6 turns zero windows into 0 and leaves the rest unchanged.

  Relative to k = 0 an output moves by about ``beta * k / (alpha * S)``,
  so by less than 1e-4 wherever ``alpha * S >= 1e-2``.
  """
  x = _rand((4, 32), seed=3)
  x[:, 8:20] = 0.0  # windows of zeros in the middle
  x[1] = 0.0  # and a whole row
  g = _rand((4, 32), seed=4)
  fwd, bwd = _fwd_bwd(5, 1.0, 1e-6, beta)
  y, dx = np.asarray(fwd(x)), np.asarray(bwd(x, g))
  assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
  s = reference.window_sum(x.astype(np.float64) ** 2, (1,), 2, 2)
  np.testing.assert_array_equal(y[s == 0], 0.0)
  big = s >= 1e-2
  np.testing.assert_allclose(y[big], _ref(x, 5, 1.0, 0.0, beta)[big], rtol=1e-4)
  # The gradient at a zero window is k ** -beta: finite, but large.
  np.testing.assert_allclose(
    dx[s == 0], g[s == 0] * 1e-6**-beta, rtol=1e-5, atol=0
  )


@pytest.mark.parametrize(
  ("x", "alpha", "beta"),
  [
    # s = 1.6e-12, s ** -3.5 = 2e41 overflows, x * s ** -3.5 = 2.5e37 not.
    (1.258e-4, 1e-4, 3.5),
    # s = 1e-40 is below float32's normal range; XLA flushes it to 0.
    (1e-20, 1.0, 0.75),
  ],
)
def test_k0_tiny_windows_overflow_float32(x, alpha, beta):
  """With k = 0, s = alpha * S can be so small that s ** -beta overflows.

  The exact output is finite (it scales as ``x ** (1 - 2 beta)``), but
  float32 ``s ** -beta`` is inf before x multiplies it, or s itself is a
  subnormal that XLA flushes to zero. Any k > 0 bounds ``s ** -beta`` by
  ``k ** -beta`` (k = 1e-6 is safe for beta < 6.4). Reported to the lead:
  multiplying x in before the last factor of ``s ** -beta`` (e.g.
  ``(x * r) * sqrt(r)`` for beta = 0.75) fixes the first case at no cost.
  """
  xs = np.array([[x]], np.float32)
  y = np.asarray(flax_lrn.lrn(xs, 1, alpha=alpha, beta=beta, k=0.0))
  want = _ref(xs, 1, alpha, 0.0, beta)
  assert np.isfinite(want).all() and np.abs(want).max() < 3e38
  if not np.allclose(y, want, rtol=1e-5):
    pytest.xfail(f"float32 s ** -beta overflows: {y} instead of {want}")


# --- Windows of 1, C, 10 C; 4096 channels; widths up to 101 ------------------


WINDOW_CASES = [
  # (channels, window)
  (7, 1),
  (7, (0, 0)),
  (7, 7),  # the whole axis, centred
  (7, (6, 0)),  # the whole axis, all before
  (7, (0, 6)),
  (7, 70),  # 10 C: every output sees every channel
  (7, (70, 3)),
  (128, 16),
  (128, 17),
  (128, 50),
  (128, 101),
  (4096, 5),
  (4096, 101),
]


@pytest.mark.parametrize(
  ("channels", "window"),
  WINDOW_CASES,
  ids=[f"C{c}-w{w}".replace(" ", "") for c, w in WINDOW_CASES],
)
def test_window_sizes(channels, window):
  x = _rand((3, channels), seed=channels)
  g = _rand((3, channels), seed=channels + 1)
  fn = functools.partial(
    flax_lrn.lrn, window=window, alpha=2.0, k=1.0, alpha_scaling="size"
  )
  before, after = _extents(window)
  a = 2.0 / (before + after + 1)
  y = jax.jit(fn)(x)
  dx = jax.jit(lambda x, g: jax.vjp(fn, x)[1](g)[0])(x, g)
  np.testing.assert_allclose(
    y, reference.lrn(x, before, after, a, 1.0, 0.75), rtol=1e-5, atol=1e-7
  )
  np.testing.assert_allclose(
    dx,
    reference.lrn_vjp(x, g, before, after, a, 1.0, 0.75),
    rtol=1e-4,
    atol=1e-6,
  )
  if min(before, after) >= channels - 1:
    # Every output sees the whole axis: one shared scale per row.
    scale = np.asarray(y) / x
    np.testing.assert_allclose(
      scale, np.broadcast_to(scale[:, :1], scale.shape), rtol=1e-6
    )


@pytest.mark.parametrize("window", [1, 9, (12, 0), 101])
def test_within_channel_window_sizes(window):
  x = _rand((2, 9, 8, 3), seed=5)
  y = jax.jit(
    lambda x: flax_lrn.lrn(
      x, window, alpha=1.0, k=1.0, beta=0.75, mode="within_channel"
    )
  )(x)
  np.testing.assert_allclose(
    y, _ref(x, window, 1.0, 1.0, 0.75, axes=(1, 2)), rtol=1e-5, atol=1e-7
  )


# --- Transposed and non-contiguous inputs -----------------------------------


def _layouts(x: np.ndarray):
  """Views of the same values with unusual memory layouts."""
  yield "c", x
  yield "fortran", np.asfortranarray(x)
  yield "transposed-view", np.ascontiguousarray(x.T).T
  yield "strided", np.repeat(x, 2, axis=-1)[..., ::2]
  yield "reversed", np.ascontiguousarray(x[..., ::-1])[..., ::-1]
  yield "jax-transposed", jnp.asarray(np.ascontiguousarray(x.T)).T
  yield "nested-list", x.tolist()


def test_non_contiguous_inputs():
  x = _rand((3, 4, 10), seed=6)
  want = _ref(x, 5, 1.0, 2.0, 0.75)
  for name, xv in _layouts(x):
    if isinstance(xv, np.ndarray) and name not in ("c", "fortran"):
      assert not xv.flags.c_contiguous, name
    y = flax_lrn.lrn(xv, 5, alpha=1.0)
    np.testing.assert_allclose(y, want, rtol=1e-5, err_msg=name)


def test_broadcast_input_with_zero_strides():
  row = _rand((1, 10), seed=7)
  x = np.broadcast_to(row, (4, 10))
  assert x.strides[0] == 0
  y = flax_lrn.lrn(x, 3, alpha=1.0)
  np.testing.assert_allclose(
    y, np.repeat(_ref(row, 3, 1.0, 2.0, 0.75), 4, 0), rtol=1e-6
  )


def test_transposed_channel_axis_inside_jit():
  """A channel axis moved by a transpose under jit (NCHW from NHWC)."""
  x = _rand((2, 4, 4, 6), seed=8)
  y = jax.jit(
    lambda x: flax_lrn.lrn(jnp.transpose(x, (0, 3, 1, 2)), 3, channel_axis=1)
  )(x)
  want = np.transpose(_ref(x, 3, 1e-4, 2.0, 0.75), (0, 3, 1, 2))
  np.testing.assert_allclose(y, want, rtol=1e-6)


# --- Hyper-parameters: Python, NumPy, 0-d arrays, traced ----------------------


HYPER_FORMS = [
  ("python-int", 2, 1, 1),
  ("python-float", 2.0, 0.75, 1.0),
  ("numpy-float64", np.float64(2.0), np.float64(0.75), np.float64(1.0)),
  ("numpy-float32", np.float32(2.0), np.float32(0.6), np.float32(1.0)),
  ("numpy-int", np.int64(2), np.int32(1), np.int8(1)),
  ("jax-0d", jnp.float32(2.0), jnp.asarray(0.5), jnp.bfloat16(1.0)),
]


@pytest.mark.parametrize(
  ("alpha", "beta", "k"),
  [f[1:] for f in HYPER_FORMS],
  ids=[f[0] for f in HYPER_FORMS],
)
def test_hyperparameter_forms(alpha, beta, k):
  x = _rand((2, 9), seed=9)
  want = _ref(x, 3, float(alpha), float(k), float(beta))
  y = flax_lrn.lrn(x, 3, alpha=alpha, beta=beta, k=k)
  assert y.dtype == jnp.float32  # a float64 scalar does not promote x
  np.testing.assert_allclose(y, want, rtol=1e-6)
  y = flax_lrn.LRN(window=3, alpha=alpha, beta=beta, k=k).apply({}, x)
  np.testing.assert_allclose(y, want, rtol=1e-6)


def test_traced_hyperparameters_compile_once():
  x = _rand((2, 4, 11), seed=10)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def f(x, alpha, beta, k):
    return flax_lrn.lrn(x, 5, alpha=alpha, beta=beta, k=k, alpha_scaling="size")

  for alpha, beta, k in ((1.0, 0.75, 2.0), (3.0, 0.5, 0.1), (0.0, 1.7, 1.0)):
    y = f(x, alpha, beta, k)
    np.testing.assert_allclose(
      y, _ref(x, 5, alpha, k, beta, scaling="size"), rtol=2e-6, atol=1e-7
    )


@pytest.mark.parametrize("module", ["linen", "nnx"])
def test_traced_hyperparameters_in_modules(module):
  x = _rand((3, 8), seed=11)

  def apply(x, alpha, beta, k):
    kw = dict(window=4, alpha=alpha, beta=beta, k=k)
    if module == "linen":
      return flax_lrn.LRN(**kw).apply({}, x)
    return lrn_nnx.LRN(**kw)(x)

  y = jax.jit(apply)(x, 1.5, 0.8, 1.2)
  np.testing.assert_allclose(y, _ref(x, 4, 1.5, 1.2, 0.8), rtol=2e-6)


@pytest.mark.parametrize(
  ("name", "value"),
  [("k", 1e-50), ("alpha", 1e-50), ("alpha", 1e39), ("k", 1e39)],
)
def test_hyperparameters_beyond_float32_range(name, value):
  """Concrete values that float32, the compute dtype, cannot hold.

  They are finite and non-negative, so validation accepts them, but the
  cast to float32 flushes them to 0 or inf: k = 1e-50 becomes 0 (so a zero
  window gives inf or NaN instead of x * k ** -beta), alpha = 1e39 becomes
  inf (inf * 0 = NaN on a zero window). Either a ValueError naming the
  parameter or the exact result is acceptable.
  """
  x = np.array([[0.0, 0.0, 0.0, 0.0, 3e-3, 0.0, 0.0]], np.float32)
  params = {"alpha": 0.0 if name == "k" else 1.0, "k": 1.0, "beta": 0.5}
  params[name] = value
  try:
    with warnings.catch_warnings():
      # NumPy warns about the overflowing cast; the result is what counts.
      warnings.simplefilter("ignore", RuntimeWarning)
      y = np.asarray(flax_lrn.lrn(x, 3, **params))
  except ValueError as e:
    assert name in str(e)
    return
  want = _ref(x, 3, params["alpha"], params["k"], params["beta"])
  # alpha = 1e-50 may round to 0 (the result is continuous there); k and
  # huge values must raise instead of being flushed.
  assert (name, value) == ("alpha", 1e-50), (name, value, y)
  np.testing.assert_allclose(y, want, rtol=1e-5)


def test_value_checks_apply_to_concrete_values_only():
  x = jnp.ones((2, 5))
  for name in ("alpha", "beta", "k"):
    with pytest.raises(ValueError, match=name):
      flax_lrn.lrn(x, 3, **{name: -1.0})
    with pytest.raises(ValueError, match=name):
      flax_lrn.lrn(x, 3, **{name: float("nan")})
    # Traced: no check is possible, and none is made.
    jax.jit(lambda x, v, name=name: flax_lrn.lrn(x, 3, **{name: v}))(x, -1.0)
  with pytest.raises(ValueError, match="alpha"):
    flax_lrn.lrn(x, 3, alpha=jnp.ones(2))


class HyperparameterGradientTest(chex.TestCase):
  """Derivatives with respect to alpha, beta and k (new in flax_lrn)."""

  def setUp(self):
    super().setUp()
    self.x = np.random.default_rng(12).normal(size=(2, 3, 7))
    self.g = np.random.default_rng(13).normal(size=(2, 3, 7))

  @parameterized.named_parameters(
    ("across_even_size", 4, "across_channels", "size"),
    ("within", 3, "within_channel", "none"),
  )
  def test_check_grads_order_2(self, window, mode, scaling):
    with jax.enable_x64(True):
      x = jnp.asarray(self.x)

      def f(x, alpha, beta, k):
        return flax_lrn.lrn(
          x,
          window,
          alpha=alpha,
          beta=beta,
          k=k,
          mode=mode,
          alpha_scaling=scaling,
        )

      # alpha ~ 1 so the normalization is far from the identity.
      args = (x, 1.3, 0.7, 0.9)
      check_grads(f, args, order=2, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)

  # A traced beta always takes the general power, so two values suffice.
  @parameterized.parameters(0.75, 0.3)
  def test_grads_match_float64_finite_differences(self, beta):
    """jax.grad of ``<g, lrn>`` against central differences of the reference.

    The reference shares no code with flax_lrn, so this checks the
    derivatives of the formula, not just self-consistency.
    """
    params = {"alpha": 1.3, "beta": beta, "k": 0.9}
    before, after = 2, 1

    def ref_loss(alpha, beta, k):
      return np.sum(
        self.g * reference.lrn(self.x, before, after, alpha, k, beta)
      )

    h = 1e-6
    fd = []
    for name in ("alpha", "beta", "k"):
      hi, lo = dict(params), dict(params)
      hi[name] += h
      lo[name] -= h
      fd.append((ref_loss(**hi) - ref_loss(**lo)) / (2 * h))

    def loss(alpha, beta, k, x, g):
      y = flax_lrn.lrn(x, (before, after), alpha=alpha, beta=beta, k=k)
      return jnp.sum(g * y)

    grad = jax.grad(loss, argnums=(0, 1, 2))
    with jax.enable_x64(True):
      got = grad(*params.values(), jnp.asarray(self.x), jnp.asarray(self.g))
      np.testing.assert_allclose(got, fd, rtol=1e-7)
    # In float32, to float32 accuracy.
    got = grad(
      *(np.float32(v) for v in params.values()),
      self.x.astype(np.float32),
      self.g.astype(np.float32),
    )
    np.testing.assert_allclose(got, fd, rtol=1e-4)
