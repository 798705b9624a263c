"""flax_lrn.gdn against a float64 reference and closed-form worked examples.

The worked examples are those of tensorflow_compression's own GDN tests
(ranks 2 to 6, both data formats, IGDN, rectified, quadratic), with the
closed forms its initial values give: ``beta = 1`` and ``gamma = 0.1 I``
make every channel its own pool.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import flax_lrn
from tests import gdn_reference as ref

F32_RTOL = 2e-6


def _weights(channels: int, seed: int = 0):
  """A positive beta and a non-symmetric gamma."""
  rng = np.random.default_rng(seed)
  beta = rng.uniform(0.5, 1.5, channels).astype(np.float32)
  gamma = rng.uniform(0.0, 0.5, (channels, channels)).astype(np.float32)
  gamma[0, -1] = 2.0  # input 0 feeds output C - 1 strongly, not vice versa
  return beta, gamma


def _x(shape, seed=1, scale=2.0, low=None):
  rng = np.random.default_rng(seed)
  if low is not None:
    return rng.uniform(low, -low, shape).astype(np.float32)
  return (scale * rng.standard_normal(shape)).astype(np.float32)


def _rel_err(actual, expected) -> float:
  actual = np.asarray(actual, np.float64)
  return float(np.max(np.abs(actual - expected) / (np.abs(expected) + 1e-30)))


# ---- worked examples (tensorflow_compression's test cases) ---------------

SIMPLIFIED = dict(alpha=1, epsilon=1)  # tfc.GDN's defaults


def _initial(channels):
  return jnp.ones(channels), 0.1 * jnp.eye(channels)


@pytest.mark.slow
@pytest.mark.parametrize("rank", [2, 3, 4, 5, 6])
def test_channels_last_closed_form(rank):
  x = _x((1, 2, 3, 4, 5, 6)[:rank], low=-1.0)
  y = flax_lrn.gdn(x, *_initial(x.shape[-1]), **SIMPLIFIED)
  assert y.shape == x.shape and y.dtype == jnp.float32
  np.testing.assert_allclose(y, x / (1 + 0.1 * np.abs(x)), rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("rank", [2, 3, 4, 5, 6])
def test_channels_first_closed_form(rank):
  x = _x((6, 5, 4, 3, 2, 1)[:rank], low=-1.0)
  y = flax_lrn.gdn(x, *_initial(x.shape[1]), **SIMPLIFIED, channel_axis=1)
  assert y.shape == x.shape
  np.testing.assert_allclose(y, x / (1 + 0.1 * np.abs(x)), rtol=0, atol=1e-6)


def test_igdn_closed_form():
  x = _x((1, 2, 3, 4), low=-1.0)
  y = flax_lrn.gdn(x, *_initial(4), **SIMPLIFIED, inverse=True)
  np.testing.assert_allclose(y, x * (1 + 0.1 * np.abs(x)), rtol=0, atol=1e-6)


def test_rectified_closed_form():
  x = _x((1, 2, 3, 4), low=-0.5)
  y = flax_lrn.gdn(x, *_initial(4), **SIMPLIFIED, rectify=True)
  r = np.maximum(x, 0)
  np.testing.assert_allclose(y, r / (1 + 0.1 * r), rtol=0, atol=1e-6)
  assert np.all(np.asarray(y) >= 0)


@pytest.mark.parametrize("inverse", [False, True])
def test_quadratic_closed_form(inverse):
  x = _x((1, 2, 3, 4), low=-0.5)
  y = flax_lrn.gdn(x, *_initial(4), alpha=2, epsilon=0.5, inverse=inverse)
  root = np.sqrt(1 + 0.1 * x**2)
  expected = x * root if inverse else x / root
  np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("channel_axis", [-1, 1])
def test_beta_zero_gamma_one_is_l1_normalization(channel_axis):
  # Every output divides by the same sum of magnitudes over the channels.
  x = _x((2, 5, 3, 3), low=-1.0)
  x[np.abs(x) < 1e-3] = 0.5  # no all-zero pools
  c = x.shape[channel_axis]
  y = flax_lrn.gdn(
    x, jnp.zeros(c), jnp.ones((c, c)), **SIMPLIFIED, channel_axis=channel_axis
  )
  l1 = np.sum(np.abs(x), axis=channel_axis, keepdims=True)
  np.testing.assert_allclose(y, x / l1, rtol=1e-6)
  np.testing.assert_allclose(
    np.sum(np.abs(y), axis=channel_axis), 1.0, rtol=1e-6
  )
  # alpha = 2, epsilon = 1/2: the L2 version, unit Euclidean norm.
  y2 = flax_lrn.gdn(
    x, jnp.zeros(c), jnp.ones((c, c)), channel_axis=channel_axis
  )
  np.testing.assert_allclose(
    np.linalg.norm(y2, axis=channel_axis), 1.0, rtol=1e-6
  )


def test_gamma_is_indexed_input_output():
  # gamma[0, 1] = 1 lets channel 0 normalize channel 1 and not the reverse.
  x = jnp.array([[3.0, 4.0]])
  gamma = jnp.array([[0.0, 1.0], [0.0, 0.0]])
  y = flax_lrn.gdn(x, jnp.ones(2), gamma, **SIMPLIFIED)
  np.testing.assert_allclose(y, [[3.0, 4.0 / (1.0 + 3.0)]])
  y_t = flax_lrn.gdn(x, jnp.ones(2), gamma.T, **SIMPLIFIED)
  np.testing.assert_allclose(y_t, [[3.0 / (1.0 + 4.0), 4.0]])


def test_lrn_is_gdn_with_a_banded_gamma():
  x = _x((2, 3, 3, 7))
  c, r, a = 7, 2, 0.3
  band = np.abs(np.arange(c)[:, None] - np.arange(c)[None, :]) <= r
  y = flax_lrn.gdn(
    x, jnp.full(c, 2.0), jnp.asarray(a * band, jnp.float32), epsilon=0.75
  )
  expected = flax_lrn.lrn(x, (r, r), alpha=a, beta=0.75, k=2.0)
  np.testing.assert_allclose(y, expected, rtol=2e-6)


# ---- against the float64 reference ----------------------------------------

CASES = [
  # shape, channel_axis, alpha, epsilon, inverse, rectify
  ((4, 6), -1, 2.0, 0.5, False, False),
  ((2, 5, 5, 7), -1, 2.0, 0.5, False, False),
  ((2, 7, 5, 5), 1, 2.0, 0.5, True, False),
  ((2, 4, 4, 6), -1, 1.0, 1.0, False, False),
  ((2, 6, 4, 4), 1, 1.0, 1.0, True, False),
  ((2, 3, 3, 5), -1, 1.0, 1.0, False, True),
  ((2, 3, 5), 1, 1.5, 0.75, False, False),
  ((3, 2, 2, 2, 4), 2, 3.0, 0.25, True, True),
  ((2, 4, 3), 0, 2.0, 1.0, False, False),
  ((2, 3, 4), -1, 0.5, 2.0, False, False),
  ((2, 3, 4), -1, 2.0, 0.0, False, False),
  ((5, 1), -1, 2.0, 0.5, False, False),
]


def _case_id(case):
  shape, axis, alpha, eps, inv, rect = case
  flags = ("-inverse" if inv else "") + ("-rectify" if rect else "")
  return f"{'x'.join(map(str, shape))}-axis{axis}-a{alpha}-e{eps}{flags}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_reference(case):
  shape, axis, alpha, eps, inverse, rectify = case
  x = _x(shape)
  beta, gamma = _weights(shape[axis])
  kw = dict(alpha=alpha, epsilon=eps, inverse=inverse, rectify=rectify)
  y = flax_lrn.gdn(x, beta, gamma, **kw, channel_axis=axis)
  expected = ref.gdn(x, beta, gamma, **kw, channel_axis=axis)
  assert y.shape == x.shape and y.dtype == jnp.float32
  assert _rel_err(y, expected) <= F32_RTOL
  y_jit = jax.jit(functools.partial(flax_lrn.gdn, **kw, channel_axis=axis))(
    x, beta, gamma
  )
  assert _rel_err(y_jit, expected) <= F32_RTOL


@pytest.mark.parametrize("alpha", [2.0, 1.0, 1.5])
def test_traced_exponents_match_static(alpha):
  x = _x((2, 3, 3, 5))
  beta, gamma = _weights(5)
  for eps in (0.5, 1.0, 0.8):
    fn = jax.jit(functools.partial(flax_lrn.gdn, x, beta, gamma))
    y = fn(alpha=alpha, epsilon=eps)
    expected = ref.gdn(x, beta, gamma, alpha, eps)
    assert _rel_err(y, expected) <= 4e-6


def test_float64():
  with jax.enable_x64(True):
    x = _x((2, 3, 3, 5)).astype(np.float64) * 1.37
    beta, gamma = _weights(5)
    for kw in (dict(), SIMPLIFIED, dict(alpha=1.3, epsilon=0.7, inverse=True)):
      y = flax_lrn.gdn(x, beta, gamma, **kw)
      assert y.dtype == jnp.float64
      assert _rel_err(y, ref.gdn(x, beta, gamma, **kw)) <= 1e-14


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_accumulates_in_float32(dtype):
  # |x| up to 300: x ** 2 overflows float16, not the float32 pool.
  x = jnp.asarray(_x((2, 3, 3, 8), scale=100.0), dtype)
  beta, gamma = _weights(8)
  y = flax_lrn.gdn(x, beta, gamma)
  assert y.dtype == dtype
  assert np.all(np.isfinite(np.asarray(y, np.float32)))
  expected = ref.gdn(np.asarray(x, np.float32), beta, gamma)
  eps = float(jnp.finfo(dtype).eps)
  assert _rel_err(np.asarray(y, np.float32), expected) <= eps
  assert flax_lrn.gdn(x, beta, gamma, dtype=jnp.float32).dtype == jnp.float32


def test_vmap_and_empty():
  x = _x((3, 2, 4, 5))
  beta, gamma = _weights(5)
  y = jax.vmap(lambda v: flax_lrn.gdn(v, beta, gamma))(x)
  np.testing.assert_allclose(y, ref.gdn(x, beta, gamma), rtol=F32_RTOL)
  # vmapped weights: one GDN per example.
  betas = np.stack([beta, 2 * beta, 3 * beta])
  y = jax.vmap(lambda v, b: flax_lrn.gdn(v, b, gamma))(x, betas)
  for n in range(3):
    np.testing.assert_allclose(
      y[n], ref.gdn(x[n], betas[n], gamma), rtol=F32_RTOL
    )
  empty = flax_lrn.gdn(jnp.ones((0, 5)), beta, gamma, dtype=jnp.bfloat16)
  assert empty.shape == (0, 5) and empty.dtype == jnp.bfloat16


@pytest.mark.slow
def test_zero_input_is_zero_with_finite_gradient():
  beta, gamma = _weights(4)
  x = jnp.zeros((2, 4))
  for alpha in (1.0, 1.5, 2.0, 3.0):
    fn = functools.partial(flax_lrn.gdn, beta=beta, gamma=gamma, alpha=alpha)
    np.testing.assert_array_equal(fn(x), 0.0)
    dx = jax.grad(lambda v, fn=fn: fn(v).sum())(x)
    # At x = 0 only the numerator moves: dy_i/dx_i = beta_i ** -epsilon.
    np.testing.assert_allclose(dx, np.broadcast_to(beta**-0.5, x.shape))


# ---- gradients ------------------------------------------------------------


@pytest.mark.parametrize(
  "kw",
  [
    dict(),
    dict(alpha=1.0, epsilon=1.0),
    dict(alpha=1.0, epsilon=1.0, inverse=True),
    dict(alpha=1.5, epsilon=0.75, rectify=True),
    dict(alpha=2.0, epsilon=0.5, inverse=True, channel_axis=1),
  ],
  ids=str,
)
@pytest.mark.slow
def test_check_grads_in_every_argument(kw):
  with jax.enable_x64(True):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 3, 4))
    x += np.sign(x) * 0.1  # away from the kinks of |x| and the ReLU
    beta = rng.uniform(0.5, 1.5, 4)
    gamma = rng.uniform(0.05, 0.5, (4, 4))
    kw = dict(kw)
    alpha = kw.pop("alpha", 2.0)
    epsilon = kw.pop("epsilon", 0.5)

    def f(x, beta, gamma, alpha, epsilon):
      return flax_lrn.gdn(x, beta, gamma, alpha=alpha, epsilon=epsilon, **kw)

    args = (x, beta, gamma, alpha, epsilon)
    check_grads(f, args, order=2, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5)

    # With static exponents (the fast paths) in x, beta and gamma.
    def g(x, beta, gamma):
      return f(x, beta, gamma, alpha, epsilon)

    check_grads(
      g, args[:3], order=2, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5
    )


@pytest.mark.slow
def test_gradient_matches_reference_finite_differences():
  # float32 reverse mode against central differences of the f64 reference.
  x = _x((2, 3, 5))
  beta, gamma = _weights(5)
  g = _x((2, 3, 5), seed=7)
  dx, dbeta, dgamma = jax.grad(
    lambda *a: jnp.sum(g * flax_lrn.gdn(*a)), argnums=(0, 1, 2)
  )(x, beta, gamma)

  def loss(x=x, beta=beta, gamma=gamma):
    return float(np.sum(g * ref.gdn(x, beta, gamma)))

  h = 1e-6
  for name, arg, grad in (("beta", beta, dbeta), ("gamma", gamma, dgamma)):
    num = np.zeros(arg.shape)
    for idx in np.ndindex(arg.shape):
      up, down = arg.astype(np.float64), arg.astype(np.float64)
      up[idx] += h
      down[idx] -= h
      num[idx] = (loss(**{name: up}) - loss(**{name: down})) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-5, err_msg=name)
  assert dx.shape == x.shape


# ---- validation -----------------------------------------------------------

X = jnp.ones((2, 3, 3, 4))
BETA, GAMMA = jnp.ones(4), 0.1 * jnp.eye(4)


def _raises(exc, match, x=X, beta=BETA, gamma=GAMMA, **kw):
  """Checks eager and jitted calls raise ``exc`` matching ``match``."""
  with pytest.raises(exc, match=match):
    flax_lrn.gdn(x, beta, gamma, **kw)
  with pytest.raises(exc, match=match):
    jax.jit(lambda v: flax_lrn.gdn(v, beta, gamma, **kw))(x)


def test_validation_of_x_and_axis():
  _raises(
    TypeError, "x must have a real floating dtype", x=jnp.ones((2, 4), int)
  )
  _raises(ValueError, r"rank >= 2 .*got shape \(4,\)", x=jnp.ones(4))
  _raises(ValueError, "channel_axis=4 is out of range", channel_axis=4)
  _raises(TypeError, "dtype must be a real floating dtype", dtype=jnp.int32)


def test_validation_of_shapes():
  _raises(
    ValueError,
    r"beta must have shape \(C,\) = \(4,\) for the 4 channels on"
    r" channel_axis=-1, got shape \(3,\)",
    beta=jnp.ones(3),
  )
  _raises(
    ValueError,
    r"gamma must have shape \(C, C\) \[input, output\] = \(3, 3\) for the 3"
    r" channels on channel_axis=1, got shape \(4, 4\)",
    beta=jnp.ones(3),
    channel_axis=1,
  )
  _raises(ValueError, r"beta must have shape .* got shape \(\)", beta=1.0)
  # Traced weights: the shape is still checked at trace time.
  with pytest.raises(ValueError, match="gamma must have shape"):
    jax.jit(flax_lrn.gdn)(X, BETA, jnp.ones((4, 3)))


def test_validation_of_values():
  # Values are checked where they are on the host (NumPy); a JAX array's
  # are not read back from the device (tests/test_traps.py).
  _raises(
    ValueError,
    r"gamma must be finite and >= 0 \(the weights\), got gamma\[1, 2\] = -0.5",
    gamma=np.asarray(GAMMA.at[1, 2].set(-0.5)),
  )
  _raises(
    ValueError,
    r"beta must be finite and >= 0 \(the offsets\), got beta\[0\] = nan",
    beta=np.asarray(BETA.at[0].set(jnp.nan)),
  )
  _raises(
    ValueError,
    r"alpha must be a finite real scalar >= 0 .*got -1.0",
    alpha=-1.0,
  )
  _raises(
    ValueError,
    r"epsilon must be a finite real scalar >= 0.*inf",
    epsilon=np.inf,
  )
  _raises(
    TypeError, "beta must be a real array, got dtype bool", beta=[True] * 4
  )
  _raises(TypeError, "inverse must be a bool, got 1 of type int", inverse=1)
  _raises(TypeError, "rectify must be a bool, got 'yes'", rectify="yes")
  _raises(TypeError, r"alpha must be a finite real scalar.*got '2'", alpha="2")
