"""The GDN modules, their reparametrization, and tensorflow_compression porting.

The reparametrization is checked against tests/gdn_reference.py's formula,
its gradients with ``check_grads`` (reverse mode: the lower bound's rule
depends on the cotangent's sign, as in tensorflow_compression and
CompressAI), and the modules against :func:`flax_lrn.gdn` on the values.
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.test_util import check_grads

import flax_lrn
from flax_lrn import compat_gdn
from flax_lrn import nnx as lrn_nnx
from tests import gdn_reference as ref

X = np.random.default_rng(0).normal(size=(2, 5, 5, 6)).astype(np.float32) * 2


def _init(layer, x=X):
  return layer.init(jax.random.key(0), x)


# ---- reparametrization ----------------------------------------------------


def test_value_and_stored_match_the_formula():
  p = np.array([0.0, 1e-7, 1e-6, 0.01, 0.1, 1.0, 5.0, -3.0])
  v = compat_gdn.nonnegative_stored(p)
  np.testing.assert_allclose(v, ref.nonnegative_stored(p), rtol=1e-7)
  for minimum in (0.0, 1e-6, 1.0):
    np.testing.assert_allclose(
      compat_gdn.nonnegative_value(v, minimum),
      ref.nonnegative_value(np.asarray(v), minimum),
      rtol=1e-6,
      atol=1e-12,
    )
  # The round trip is exact enough to leave parameters above the minimum.
  np.testing.assert_allclose(
    compat_gdn.nonnegative_value(v)[1:-1], p[1:-1], rtol=1e-5, atol=1e-11
  )
  assert compat_gdn.nonnegative_value(v)[-1] == 0.0  # -3 is stored as 0


def test_lower_bound_gradient_passes_only_back_into_range():
  v = jnp.array([0.5, 2.0, 0.5, 2.0])
  for sign in (1.0, -1.0):
    g = jax.grad(lambda v, s=sign: jnp.sum(s * compat_gdn.lower_bound(v, 1.0)))(
      v
    )
    # Above the bound: the identity. Below it: a cotangent of -1 (descent
    # raises v towards the range) passes, +1 (would push v lower) does not.
    expected = [0.0, sign, 0.0, sign] if sign > 0 else [sign] * 4
    np.testing.assert_array_equal(g, expected)
  np.testing.assert_array_equal(compat_gdn.lower_bound(v, 1.0), [1, 2, 1, 2])


@pytest.mark.slow
def test_check_grads_through_the_reparametrization():
  with jax.enable_x64(True):
    v = jnp.array([0.3, 0.8, 1.7])

    def f(v):
      return compat_gdn.nonnegative_value(v, 1e-6) ** 1.5

    check_grads(f, (v,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


# ---- linen and NNX --------------------------------------------------------

CONFIGS = [
  dict(),
  dict(inverse=True),
  dict(alpha=1.0, epsilon=1.0, rectify=True),
  dict(alpha=1.5, epsilon=0.75, channel_axis=1),
  dict(learn_alpha=True, learn_epsilon=True, alpha=1.2, epsilon=0.6),
  dict(dtype=jnp.bfloat16),
]


def _values(params, config):
  beta = ref.nonnegative_value(params["reparam_beta"], 1e-6)
  gamma = ref.nonnegative_value(params["reparam_gamma"])
  alpha = config.get("alpha", 2.0)
  epsilon = config.get("epsilon", 0.5)
  return beta, gamma, alpha, epsilon


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_linen_and_nnx_forward_to_the_function(config):
  x = X if config.get("channel_axis", -1) == -1 else X.transpose(0, 3, 1, 2)
  layer = flax_lrn.GDN(**config)
  variables = _init(layer, x)
  params = variables["params"]
  c = 6
  names = {"reparam_beta", "reparam_gamma"}
  if config.get("learn_alpha"):
    names |= {"reparam_alpha", "reparam_epsilon"}
  assert set(params) == names
  assert params["reparam_beta"].shape == (c,)
  assert params["reparam_gamma"].shape == (c, c)
  beta, gamma, alpha, epsilon = _values(params, config)
  np.testing.assert_allclose(beta, 1.0, rtol=1e-6)
  np.testing.assert_allclose(gamma, 0.1 * np.eye(c), rtol=1e-5, atol=1e-12)
  y = jax.jit(layer.apply)(variables, x)
  expected = ref.gdn(
    x,
    beta,
    gamma,
    alpha,
    epsilon,
    config.get("inverse", False),
    config.get("rectify", False),
    config.get("channel_axis", -1),
  )
  assert y.dtype == config.get("dtype", jnp.float32)
  tol = 1e-2 if y.dtype == jnp.bfloat16 else 1e-5
  np.testing.assert_allclose(np.asarray(y, np.float32), expected, rtol=tol)

  nnx_layer = lrn_nnx.GDN(c, **config)
  nnx_params = nnx.state(nnx_layer, nnx.Param)
  for name in names:
    np.testing.assert_array_equal(nnx_params[name][...], params[name])
  y_nnx = nnx.jit(lambda m, v: m(v))(nnx_layer, x)
  np.testing.assert_array_equal(np.asarray(y_nnx), np.asarray(y))


def test_dtype_follows_the_input():
  variables = _init(flax_lrn.GDN())
  xb = X.astype(jnp.bfloat16)
  # The input's dtype, as every flax_lrn entry point; dtype= overrides.
  assert flax_lrn.GDN().apply(variables, xb).dtype == jnp.bfloat16
  assert (
    flax_lrn.GDN(dtype=jnp.float32).apply(variables, xb).dtype == jnp.float32
  )
  layer = flax_lrn.GDN(dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)
  v16 = _init(layer, xb)
  assert v16["params"]["reparam_gamma"].dtype == jnp.bfloat16
  assert layer.apply(v16, xb).dtype == jnp.bfloat16


def test_learned_exponents_keep_their_minimums():
  layer = flax_lrn.GDN(learn_alpha=True, learn_epsilon=True)
  params = dict(_init(layer)["params"])
  np.testing.assert_allclose(
    compat_gdn.nonnegative_value(params["reparam_alpha"], 1.0), 2.0, rtol=1e-6
  )
  # Stored values far under the bounds give alpha = 1, epsilon = 1e-6.
  params["reparam_alpha"] = jnp.float32(-4.0)
  params["reparam_epsilon"] = jnp.float32(0.0)
  y = layer.apply({"params": params}, X)
  beta, gamma, _, _ = _values(params, {})
  expected = ref.gdn(X, beta, gamma, alpha=1.0, epsilon=1e-6)
  np.testing.assert_allclose(y, expected, rtol=1e-5)


@pytest.mark.slow
def test_check_grads_in_params_and_input():
  with jax.enable_x64(True):
    layer = flax_lrn.GDN(learn_alpha=True, learn_epsilon=True, alpha=1.5)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4)) + 0.1
    params = {
      "reparam_beta": jnp.asarray(rng.uniform(0.5, 1.5, 4)),
      "reparam_gamma": jnp.asarray(rng.uniform(0.1, 0.7, (4, 4))),
      "reparam_alpha": jnp.asarray(1.3),
      "reparam_epsilon": jnp.asarray(0.8),
    }

    def f(params, x):
      return layer.apply({"params": params}, x)

    check_grads(f, (params, x), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_training_keeps_parameters_in_range():
  # A loss that wants beta and gamma negative: the values stop at their
  # minimums and stay finite under plain SGD with a large step.
  layer = flax_lrn.GDN(inverse=True)
  params = _init(layer)["params"]
  opt = optax.sgd(0.5)
  state = opt.init(params)

  @jax.jit
  def step(params, state):
    loss, grads = jax.value_and_grad(
      lambda p: jnp.mean(layer.apply({"params": p}, X) ** 2)
    )(params)
    updates, state = opt.update(grads, state)
    return optax.apply_updates(params, updates), state, loss

  losses = []
  for _ in range(20):
    params, state, loss = step(params, state)
    losses.append(float(loss))
  assert losses[-1] < losses[0]
  beta = compat_gdn.nonnegative_value(params["reparam_beta"], 1e-6)
  gamma = compat_gdn.nonnegative_value(params["reparam_gamma"])
  assert float(beta.min()) >= 1e-6 - 1e-12 and float(gamma.min()) >= 0.0
  assert np.all(np.isfinite(np.asarray(layer.apply({"params": params}, X))))


def test_channel_count_mismatch():
  layer = lrn_nnx.GDN(4)
  with pytest.raises(ValueError, match="parameters for 4 channels, but the"):
    layer(X)
  with pytest.raises(ValueError, match="rank >= 2"):
    flax_lrn.GDN().init(jax.random.key(0), jnp.ones(3))


# ---- tensorflow_compression -----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("rank", [2, 3, 4, 5, 6])
def test_tfc_defaults_closed_form(rank):
  x = np.random.default_rng(rank).uniform(-1, 1, (1, 2, 3, 4, 5, 6)[:rank])
  x = x.astype(np.float32)
  for data_format, axis in (("channels_last", -1), ("channels_first", 1)):
    layer = flax_lrn.GDN.from_tensorflow_compression(data_format=data_format)
    y = layer.apply(_init(layer, x), x)
    np.testing.assert_allclose(y, x / (1 + 0.1 * np.abs(x)), rtol=0, atol=1e-6)
    y = compat_gdn.tensorflow_compression(x, data_format=data_format)
    np.testing.assert_allclose(y, x / (1 + 0.1 * np.abs(x)), rtol=0, atol=1e-6)
    assert layer.channel_axis == axis


def test_tfc_fields_and_errors():
  layer = flax_lrn.GDN.from_tensorflow_compression(
    inverse=True, rectify=True, alpha_parameter=None, epsilon_parameter=0.5
  )
  assert (layer.inverse, layer.rectify) == (True, True)
  assert (layer.alpha, layer.learn_alpha) == (1.0, True)
  assert (layer.epsilon, layer.learn_epsilon) == (0.5, False)
  assert layer.beta_min == 1e-6
  with pytest.raises(ValueError, match="data_format must be one of"):
    flax_lrn.GDN.from_tensorflow_compression(data_format="NHWC")
  with pytest.raises(
    ValueError, match="epsilon_parameter must be a finite real scalar"
  ):
    lrn_nnx.GDN.from_tensorflow_compression(
      epsilon_parameter=-1.0, num_features=3
    )


def test_tfc_variables_round_trip():
  rng = np.random.default_rng(4)
  stored = {
    "reparam_beta": rng.uniform(0.5, 1.5, 6).astype(np.float32),
    "reparam_gamma": rng.uniform(0.0, 0.5, (6, 6)).astype(np.float32),
    "reparam_alpha": np.float32(1.2),
  }
  # Keras-style variables (a name and a value) with scoped names.
  weights = [
    types.SimpleNamespace(name=f"analysis/gdn_1/{k}:0", numpy=lambda v=v: v)
    for k, v in stored.items()
  ]
  params = compat_gdn.params_from_tensorflow_compression(weights)
  assert set(params) == set(stored)
  exported = compat_gdn.params_to_tensorflow_compression(params)
  for k, v in stored.items():
    np.testing.assert_array_equal(exported[k], v)
  # tfc indexes gamma [input, output] too: the values go in unchanged.
  layer = flax_lrn.GDN.from_tensorflow_compression(alpha_parameter=None)
  y = layer.apply({"params": params}, X)
  beta = ref.nonnegative_value(stored["reparam_beta"], 1e-6)
  gamma = ref.nonnegative_value(stored["reparam_gamma"])
  alpha = ref.nonnegative_value(stored["reparam_alpha"], 1.0)
  np.testing.assert_allclose(y, ref.gdn(X, beta, gamma, alpha, 1.0), rtol=1e-5)
  with pytest.raises(ValueError, match="No \\['reparam_gamma'\\]"):
    compat_gdn.params_from_tensorflow_compression({"gdn/reparam_beta:0": 1.0})


def test_flags_follow_one_rule_in_the_function_constructors_and_modules():
  """A NumPy bool is a bool everywhere; anything else is refused alike."""
  x = jnp.ones((2, 3))
  want = flax_lrn.gdn(x, jnp.ones(3), 0.1 * jnp.eye(3), inverse=np.True_)
  layer = flax_lrn.GDN.from_compressai(np.True_, channel_axis=-1)
  assert layer.inverse is True
  np.testing.assert_allclose(
    layer.apply(layer.init(jax.random.key(0), x), x), want
  )
  nnx_layer = lrn_nnx.GDN(3, inverse=np.True_, alpha=2.0)
  np.testing.assert_allclose(nnx_layer(x), want)
  for build in (
    lambda: flax_lrn.GDN.from_tensorflow_compression(inverse=1),
    lambda: lrn_nnx.GDN(3, rectify="yes"),
    lambda: flax_lrn.gdn(x, jnp.ones(3), jnp.eye(3), inverse=1),
  ):
    with pytest.raises(TypeError, match="must be a bool, got"):
      build()
