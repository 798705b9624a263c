"""The linen and NNX modules forward to the function and train in a CNN."""

import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import flax_lrn

CONFIGS = [
  dict(),
  dict(window=(2, 1), alpha=0.5, beta=0.6, k=1.0, alpha_scaling="size"),
  dict(window=3, alpha=1.0, mode="within_channel", alpha_scaling="size"),
  dict(window=4, channel_axis=1, dtype=jnp.bfloat16),
]


def _x(shape=(2, 6, 6, 8), seed=0):
  return jax.random.normal(jax.random.key(seed), shape) * 2.0


@pytest.mark.parametrize("config", CONFIGS)
def test_linen_forwards_every_field(config):
  x = _x()
  layer = flax_lrn.LRN(**config)
  variables = layer.init(jax.random.key(0), x)
  assert variables == {}
  y = jax.jit(layer.apply)(variables, x)
  # Jitted against jitted: XLA may fuse the window sums differently from
  # op-by-op execution, which moves the last bit.
  expected = jax.jit(lambda v: flax_lrn.lrn(v, **config))(x)
  assert y.dtype == expected.dtype
  np.testing.assert_array_equal(np.asarray(y), np.asarray(expected))


@pytest.mark.parametrize("config", CONFIGS)
def test_nnx_forwards_every_field(config):
  x = _x()
  layer = flax_lrn.nnx.LRN(**config)
  assert nnx.state(layer, nnx.Param) == nnx.State({})
  y = nnx.jit(lambda m, v: m(v))(layer, x)
  expected = jax.jit(lambda v: flax_lrn.lrn(v, **config))(x)
  assert y.dtype == expected.dtype
  np.testing.assert_array_equal(np.asarray(y), np.asarray(expected))


def test_module_fields_match_function_signature():
  import inspect

  params = inspect.signature(flax_lrn.lrn).parameters
  defaults = {n: p.default for n, p in params.items() if n != "x"}
  linen_defaults = {f: getattr(flax_lrn.LRN(), f) for f in defaults}
  nnx_layer = flax_lrn.nnx.LRN()
  nnx_defaults = {f: getattr(nnx_layer, f) for f in defaults}
  assert linen_defaults == defaults
  assert nnx_defaults == defaults


def test_namespaces():
  assert flax_lrn.linen.LRN is flax_lrn.LRN
  assert flax_lrn.linen.GDN is flax_lrn.GDN
  assert flax_lrn.linen.__all__ == ("GDN", "LRN")
  assert flax_lrn.nnx.__all__ == ("GDN", "LRN")
  assert set(flax_lrn.__all__) == {
    "GDN",
    "LRN",
    "compat",
    "compat_gdn",
    "gdn",
    "linen",
    "lrn",
    "nnx",
  }
  for cls in (flax_lrn.linen.LRN, flax_lrn.nnx.LRN):
    for field in ("window", "alpha", "spatial_axes", "axis_name"):
      assert f"\n  {field}: " in inspect.getdoc(cls)


def _digits_like_data(n=256, seed=0):
  """A learnable toy task: the class is the brightest quadrant."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
  labels = rng.integers(0, 4, size=n)
  for i, c in enumerate(labels):
    r, q = divmod(int(c), 2)
    x[i, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] += 1.5
  return jnp.asarray(x), jnp.asarray(labels)


class LinenCNN(nn.Module):
  lrn_kwargs: dict

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(16, (3, 3))(x))
    x = flax_lrn.LRN(**self.lrn_kwargs)(x)
    x = nn.relu(nn.Conv(16, (3, 3))(x))
    x = flax_lrn.LRN(**self.lrn_kwargs)(x)
    return nn.Dense(4)(x.reshape(x.shape[0], -1))


class NNXCNN(nnx.Module):
  def __init__(self, lrn_kwargs, rngs):
    self.conv1 = nnx.Conv(1, 16, (3, 3), rngs=rngs)
    self.lrn1 = flax_lrn.nnx.LRN(**lrn_kwargs)
    self.conv2 = nnx.Conv(16, 16, (3, 3), rngs=rngs)
    self.lrn2 = flax_lrn.nnx.LRN(**lrn_kwargs)
    self.head = nnx.Linear(8 * 8 * 16, 4, rngs=rngs)

  def __call__(self, x):
    x = self.lrn1(nnx.relu(self.conv1(x)))
    x = self.lrn2(nnx.relu(self.conv2(x)))
    return self.head(x.reshape(x.shape[0], -1))


TRAIN_LRN = [
  dict(window=5, alpha=1.0, beta=0.75, k=1.0, alpha_scaling="size"),
  dict(window=3, alpha=1.0, k=1.0, mode="within_channel", alpha_scaling="size"),
]


@pytest.mark.slow
@pytest.mark.parametrize("lrn_kwargs", TRAIN_LRN)
def test_linen_cnn_trains(lrn_kwargs):
  x, labels = _digits_like_data()
  model = LinenCNN(lrn_kwargs)
  params = model.init(jax.random.key(0), x)
  tx = optax.adam(1e-2)
  opt_state = tx.init(params)

  def loss_fn(p):
    logits = model.apply(p, x)
    return optax.softmax_cross_entropy_with_integer_labels(
      logits, labels
    ).mean()

  @jax.jit
  def step(p, s):
    loss, grads = jax.value_and_grad(loss_fn)(p)
    updates, s = tx.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss

  losses = []
  for _ in range(30):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
  assert np.all(np.isfinite(losses))
  assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.slow
@pytest.mark.parametrize("lrn_kwargs", TRAIN_LRN)
def test_nnx_cnn_trains(lrn_kwargs):
  x, labels = _digits_like_data()
  model = NNXCNN(lrn_kwargs, nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer):
    def loss_fn(m):
      logits = m(x)
      return optax.softmax_cross_entropy_with_integer_labels(
        logits, labels
      ).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  losses = [float(step(model, optimizer)) for _ in range(30)]
  assert np.all(np.isfinite(losses))
  assert losses[-1] < 0.5 * losses[0], losses
