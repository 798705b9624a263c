"""Inputs that used to fail in surprising ways, each pinned by a test."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flax_lrn
from flax_lrn import compat
from flax_lrn import nnx as lrn_nnx
from tests import reference


@pytest.mark.parametrize(
  ("kwargs", "error", "match"),
  [
    (dict(window=0), ValueError, "window"),
    (dict(window=(1, -1)), ValueError, "window"),
    (dict(mode="across"), ValueError, "mode"),
    (dict(alpha_scaling="n"), ValueError, "alpha_scaling"),
    (dict(alpha=-1.0), ValueError, "alpha"),
    (dict(beta=float("nan")), ValueError, "beta"),
    (dict(channel_axis=1.5), TypeError, "channel_axis"),
    (dict(spatial_axes=(1, 2)), ValueError, "spatial_axes"),
    (dict(dtype=jnp.int32), TypeError, "dtype"),
  ],
)
def test_nnx_lrn_checks_every_field_when_built(kwargs, error, match):
  with pytest.raises(error, match=match):
    lrn_nnx.LRN(**kwargs)


def test_beta_zero_with_k_zero_is_the_identity_in_every_derivative():
  # An all-zero window: s = 0, where the window term is 0 * inf.
  x = jnp.asarray([[0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0]])
  f = lambda v: flax_lrn.lrn(v, 3, alpha=1.0, beta=0.0, k=0.0)  # noqa: E731
  np.testing.assert_array_equal(f(x), x)
  g = jnp.arange(8.0).reshape(1, 8)
  _, pullback = jax.vjp(f, x)
  np.testing.assert_array_equal(pullback(g)[0], g)
  np.testing.assert_array_equal(jax.jvp(f, (x,), (g,))[1], g)


def test_a_float16_numpy_alpha_is_divided_exactly():
  """alpha / n is worked out in float64, not in alpha's own float16."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 7)).astype(np.float32)
  alpha = np.float16(0.3)
  y = flax_lrn.lrn(x, 5, alpha=alpha, beta=1.0, k=0.0, alpha_scaling="size")
  # With k = 0 and beta = 1 the output is inversely proportional to alpha.
  want = reference.lrn(x, 2, 2, float(alpha) / 5, 0.0, 1.0)
  np.testing.assert_allclose(y, want, rtol=1e-6)


def test_an_unrepresentable_alpha_raises_without_a_numpy_warning():
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    with pytest.raises(ValueError, match=r"alpha=1e\+40 is not representable"):
      flax_lrn.lrn(jnp.ones((1, 4)), 3, alpha=1e40)


def test_caffe_even_local_size_says_it_must_be_odd():
  with pytest.raises(ValueError, match=r"must be an odd int >= 1 .*got 4"):
    compat.caffe(jnp.ones((1, 6, 2, 2)), local_size=4)


@pytest.mark.parametrize(
  ("features", "error"), [(0, ValueError), (-2, ValueError), (2.5, TypeError)]
)
def test_nnx_gdn_checks_its_channel_count_when_built(features, error):
  with pytest.raises(error, match="num_features must be an int >= 1"):
    lrn_nnx.GDN(features)


@pytest.mark.parametrize("learned", ["alpha", "epsilon"])
def test_a_learned_exponent_below_its_bound_raises(learned):
  kwargs = {learned: 1e-9, f"learn_{learned}": True}
  with pytest.raises(ValueError, match=f"{learned}=1e-09 with learn_{learned}"):
    lrn_nnx.GDN(4, **kwargs)
  layer = flax_lrn.GDN(**kwargs)
  with pytest.raises(ValueError, match=f"learn_{learned}=True"):
    layer.init(jax.random.key(0), jnp.ones((1, 4)))


def test_nnx_gdn_with_a_random_initializer_needs_rngs():
  init = jax.nn.initializers.uniform(0.1)
  with pytest.raises(ValueError, match="rngs is required"):
    lrn_nnx.GDN(4, gamma_init=init)
  from flax import nnx

  a = lrn_nnx.GDN(4, gamma_init=init, rngs=nnx.Rngs(1))
  b = lrn_nnx.GDN(4, gamma_init=init, rngs=nnx.Rngs(2))
  assert not np.array_equal(a.reparam_gamma[...], b.reparam_gamma[...])


@pytest.mark.parametrize("make", ["linen", "nnx"])
def test_every_module_returns_the_input_dtype(make):
  """One rule: bfloat16 in, bfloat16 out, with float32 params (as LRN)."""
  x = jnp.ones((2, 4), jnp.bfloat16)
  if make == "linen":
    layer = flax_lrn.GDN()
    y = layer.apply(layer.init(jax.random.key(0), x), x)
  else:
    y = lrn_nnx.GDN(4)(x)
  assert y.dtype == jnp.bfloat16
  assert flax_lrn.LRN().apply({}, x).dtype == jnp.bfloat16


def test_beta_derivative_is_finite_where_a_window_overflows():
  x = jnp.asarray([[1e30, -1e30, 1.0, 2.0]])

  def total(beta):
    return flax_lrn.lrn(x, 3, alpha=1.0, k=1.0, beta=beta).sum()

  got = jax.grad(total)(0.75)
  # Only the last entry's window (1, 2) stays finite: d/dbeta of
  # 2 * (1 + 1 + 4) ** -beta.
  want = -2.0 * np.log(6.0) * 6.0**-0.75
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_eager_gdn_reads_no_array_argument_back_from_the_device():
  x = jnp.ones((2, 4))
  beta, gamma = jnp.ones((4,)), 0.1 * jnp.eye(4)
  with jax.transfer_guard_device_to_host("disallow"):
    y = flax_lrn.gdn(x, beta, gamma)
    y_nnx = lrn_nnx.GDN(4)(x)
  np.testing.assert_allclose(y, y_nnx, rtol=1e-6)


def test_gdn_eager_and_jitted_agree_on_a_nan_in_a_jax_gamma():
  x = jnp.ones((2, 4))
  beta = jnp.ones((4,))
  gamma = (0.1 * jnp.eye(4)).at[0, 1].set(jnp.nan)
  eager = flax_lrn.gdn(x, beta, gamma)
  jitted = jax.jit(flax_lrn.gdn)(x, beta, gamma)
  np.testing.assert_array_equal(np.isnan(eager), np.isnan(jitted))
  assert np.isnan(eager).any()
  # A NumPy gamma is on the host: checked, eager and jitted alike.
  bad = np.asarray(gamma)
  with pytest.raises(ValueError, match="gamma must be finite"):
    flax_lrn.gdn(x, beta, bad)
  with pytest.raises(ValueError, match="gamma must be finite"):
    jax.jit(lambda v: flax_lrn.gdn(v, beta, bad))(x)


@pytest.mark.parametrize("kw", [dict(), dict(alpha=1.0, k=1.0)])
@pytest.mark.parametrize("big", [3e38, -1e30, 1.8e19])
def test_forward_mode_agrees_with_reverse_mode_at_huge_inputs(kw, big):
  x = jnp.asarray([[big, 1.0, 2.0, big, 3.0]])

  def f(v):
    return flax_lrn.lrn(v, 3, **kw)

  forward = np.asarray(jax.jacfwd(f)(x))
  backward = np.asarray(jax.jacrev(f)(x))
  assert np.all(np.isfinite(forward)) and np.all(np.isfinite(backward))
  np.testing.assert_allclose(forward, backward, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("big", [1.8e19, 1e25, 3e38])
@pytest.mark.parametrize("beta", [0.75, 0.5, 0.6])
def test_second_derivatives_are_finite_at_huge_inputs(big, beta):
  """Where x**2 overflows the layer saturates at 0, with 0 derivatives.

  Every other entry of the Hessian is the one of the same input in
  float64, where nothing overflows: a huge entry's windows stay tiny.
  """
  x = np.asarray([[big, 1.0, 2.0, 3.0, 4.0, -2.0]], np.float32)

  def loss(v):
    return jnp.sum(flax_lrn.lrn(v, 3, alpha=1.0, k=1.0, beta=beta) ** 2)

  got = np.asarray(jax.hessian(loss)(jnp.asarray(x)))[0, :, 0, :]
  assert np.all(np.isfinite(got))
  with jax.enable_x64(True):
    want = np.asarray(jax.hessian(loss)(jnp.asarray(x, jnp.float64)))
  np.testing.assert_allclose(got, want[0, :, 0, :], rtol=2e-5, atol=1e-6)


def test_a_traced_alpha_of_zero_is_exact_at_huge_inputs():
  x = jnp.asarray([[1e30, -1e30, 1.0, 2.0]])

  def f(alpha):
    return flax_lrn.lrn(x, 3, alpha=alpha, k=2.0)

  np.testing.assert_array_equal(jax.jit(f)(0.0), f(0.0))
  np.testing.assert_allclose(f(0.0), np.asarray(x) * 2.0**-0.75, rtol=1e-6)
  # The derivative in alpha at 0 is finite where the window is.
  d = jax.jacfwd(jax.jit(f))(0.0)
  assert np.isfinite(np.asarray(d)[0, 3])


@pytest.mark.parametrize("window", [3, (2, 1), 7])
def test_axis_name_under_vmap_splits_the_channels(window):
  """vmap over channel blocks with axis_name equals the unsplit LRN."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 12)), jnp.float32)
  want = flax_lrn.lrn(x, window, alpha=1.0)
  blocks = x.reshape(2, 4, 3).transpose(1, 0, 2)  # 4 blocks of 3 channels

  def f(b):
    return flax_lrn.lrn(b, window, alpha=1.0, axis_name="blocks")

  got = jax.vmap(f, axis_name="blocks")(blocks)
  got = got.transpose(1, 0, 2).reshape(2, 12)
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_gdn_shape_errors_name_the_axis_as_given():
  with pytest.raises(ValueError, match=r"on channel_axis=-1, got shape"):
    flax_lrn.gdn(jnp.ones((2, 3)), jnp.ones(4), jnp.ones((3, 3)))
  with pytest.raises(ValueError, match=r"input has 3 on channel_axis=-1"):
    layer = lrn_nnx.GDN(4)
    layer(jnp.ones((2, 3)))
