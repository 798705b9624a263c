"""The JAX programs the benchmark times and compiles: one per program shape.

Each program is a plain function of arrays, written as a user of Flax writes
it, so the timed runs and the compile-only accelerator builds look at the
same code. The LRN's cost depends on the program around it, so the shapes
cover what a model puts around a layer: what is returned (``y``, ``dx``,
both, a loss), what consumes ``y`` (a max pool, a convolution, an
elementwise loss), and how the step is built (rematerialized, scanned over
layers, vmapped per example, a linen or NNX module under an optax update).
Every step comes in a pair, with and without the LRN; its figure is the
difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import nnx
from jax import lax

import flax_lrn

from . import config

try:  # The optax steps need optax, which a bare GPU machine may lack.
  import optax
except ImportError:  # pragma: no cover - optax is in the test extra
  optax = None

# Learning rate of the optax steps; what the LRN adds does not depend on it.
LEARNING_RATE = 1e-3


def lrn(
  mode: str, implementation: str | None = None
) -> Callable[[jax.Array], jax.Array]:
  """flax_lrn with AlexNet's constants, across or (Caffe) within channels."""
  kwargs = config.lrn_kwargs(mode, implementation)
  return lambda x: flax_lrn.lrn(x, **kwargs)


def floor(x: jax.Array) -> jax.Array:
  """One read and one write of ``x``: the least any forward pass can move."""
  return x * 2


def _f32(a: jax.Array) -> jax.Array:
  return a.astype(jnp.float32)


def grad(norm) -> Callable[..., Any]:
  """``jax.grad`` of ``<LRN(x), g>``: ``y`` is dead, only ``dx`` leaves."""
  return jax.grad(lambda x, g: jnp.vdot(_f32(norm(x)), _f32(g)))


def value_and_grad(norm) -> Callable[..., Any]:
  """``jax.value_and_grad`` of ``sum(LRN(x) * g)``."""
  return jax.value_and_grad(lambda x, g: jnp.sum(_f32(norm(x)) * _f32(g)))


def vjp(norm) -> Callable[..., Any]:
  """The output and the input gradient from one ``jax.vjp``."""

  def run(x, g):
    y, pullback = jax.vjp(norm, x)
    return y, pullback(g)[0]

  return run


def per_example_grad(norm) -> Callable[..., Any]:
  """Per-example input gradients: ``vmap`` of ``grad`` over the batch."""
  one = jax.grad(lambda x, g: jnp.vdot(_f32(norm(x[None])), _f32(g[None])))
  return jax.vmap(one)


def _dense(x: jax.Array, w: jax.Array) -> jax.Array:
  return x @ w


def _conv(x: jax.Array, w: jax.Array) -> jax.Array:
  return lax.conv_general_dilated(
    x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def _mean_square(y: jax.Array) -> jax.Array:
  return jnp.mean(jnp.square(_f32(y)))


def _pool(y: jax.Array) -> jax.Array:
  return nn.max_pool(y, (3, 3), strides=(2, 2))


def step(tail: str, norm, remat: bool = False) -> Callable[..., Any]:
  """The gradient of a loss with respect to a pointwise layer's weight.

  ``x @ w -> relu -> norm -> tail -> mean square``, ``tail`` one of
  ``'pool'`` (3x3/2 max pool, AlexNet), ``'conv'`` (a 3x3 convolution,
  GoogLeNet's stem) or ``'elementwise'`` (the loss reads ``y`` directly).
  ``remat`` puts ``relu -> norm`` under ``jax.checkpoint``.

  Returns:
    ``f(w, w2, x)``, the gradient with respect to ``w`` (``w2`` is the 3x3
    convolution's weight, unused by the other tails).
  """

  def block(x, w):
    return norm(nn.relu(_dense(x, w)))

  if remat:
    block = jax.checkpoint(block)

  def loss(w, w2, x):
    y = block(x, w)
    if tail == "pool":
      y = _pool(y)
    elif tail == "conv":
      y = _conv(y, w2)
    return _mean_square(y)

  return jax.grad(loss)


def scan_step(norm) -> Callable[..., Any]:
  """Two ``x @ w -> relu -> norm`` layers under ``lax.scan``.

  The gradient is with respect to both layers' weights, stacked.
  """

  def loss(ws, x):
    def layer(h, w):
      return norm(nn.relu(_dense(h, w))), None

    y, _ = lax.scan(layer, x, ws)
    return _mean_square(y)

  def run(w, w2, x):
    del w2
    return jax.grad(loss)(jnp.stack([w, w.T]), x)

  return run


class LinenBlock(nn.Module):
  """``Dense -> relu -> LRN`` as a linen model, or without the LRN."""

  features: int
  use_lrn: bool
  mode: str
  implementation: str | None = None

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(self.features, use_bias=False, name="dense")(x))
    if self.use_lrn:
      x = flax_lrn.LRN(**config.lrn_kwargs(self.mode, self.implementation))(x)
    return x


def linen_step(
  mode: str, use_lrn: bool, implementation: str | None = None
) -> Callable[..., Any]:
  """One optax SGD update of a linen model; returns the new weight."""
  tx = optax.sgd(LEARNING_RATE)

  def run(w, w2, x):
    del w2
    model = LinenBlock(w.shape[-1], use_lrn, mode, implementation)
    params = {"params": {"dense": {"kernel": w}}}
    opt_state = tx.init(params)
    grads = jax.grad(lambda p: _mean_square(model.apply(p, x)))(params)
    updates, _ = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates)["params"]["dense"]["kernel"]

  return run


class NnxBlock(nnx.Module):
  """``Linear -> relu -> LRN`` as an NNX model, or without the LRN."""

  def __init__(
    self,
    features: int,
    use_lrn: bool,
    mode: str,
    rngs,
    implementation=None,
    param_dtype=jnp.float32,
  ):
    self.dense = nnx.Linear(
      features, features, use_bias=False, param_dtype=param_dtype, rngs=rngs
    )
    kwargs = config.lrn_kwargs(mode, implementation)
    self.norm = flax_lrn.nnx.LRN(**kwargs) if use_lrn else None

  def __call__(self, x):
    x = nnx.relu(self.dense(x))
    return x if self.norm is None else self.norm(x)


def nnx_step(
  mode: str, use_lrn: bool, implementation: str | None = None
) -> Callable[..., Any]:
  """One ``nnx.Optimizer`` (optax SGD) update; returns the new weight."""

  def run(w, w2, x):
    del w2
    # The kernel takes w's dtype: assigned into a float32 kernel, a bfloat16
    # w would be widened, and the layer would run in float32.
    model = NnxBlock(
      w.shape[-1], use_lrn, mode, nnx.Rngs(0), implementation, w.dtype
    )
    model.dense.kernel[...] = w
    optimizer = nnx.Optimizer(model, optax.sgd(LEARNING_RATE), wrt=nnx.Param)
    grads = nnx.grad(lambda m: _mean_square(m(x)))(model)
    optimizer.update(model, grads)
    return model.dense.kernel[...]

  return run


def step_weights(key: jax.Array, channels: int, dtype) -> tuple[Any, Any]:
  """He-initialized weights: the pointwise layer's and the 3x3 conv's."""
  k1, k2 = jax.random.split(key)
  w = jax.random.normal(k1, (channels, channels)) * (2 / channels) ** 0.5
  w2 = (
    jax.random.normal(k2, (3, 3, channels, config.STEM_CHANNELS))
    * (2 / (9 * channels)) ** 0.5
  )
  return w.astype(dtype), w2.astype(dtype)


def _steps(
  mode: str, use_lrn: bool, implementation: str | None
) -> dict[str, Callable[..., Any]]:
  norm = lrn(mode, implementation) if use_lrn else (lambda y: y)
  steps = {
    "step_pool": step("pool", norm),
    "step_conv": step("conv", norm),
    "step_elementwise": step("elementwise", norm),
    "step_remat": step("elementwise", norm, remat=True),
    "step_scan": scan_step(norm),
  }
  if optax is not None:
    steps["step_linen"] = linen_step(mode, use_lrn, implementation)
    steps["step_nnx"] = nnx_step(mode, use_lrn, implementation)
  return steps


def programs(
  mode: str, implementation: str | None = None
) -> dict[str, tuple[Callable[..., Any], str]]:
  """flax_lrn's programs for one mode: ``{name: (function, signature)}``.

  The signature says which arrays the function takes: ``x`` (the input),
  ``xg`` (the input and a cotangent of its shape) or ``wwx`` (the two
  weights and the input of a training step). ``implementation`` names
  flax_lrn's kernel (``None``: the default).
  """
  norm = lrn(mode, implementation)
  out = {
    "fwd": (norm, "x"),
    "grad": (grad(norm), "xg"),
    "value_and_grad": (value_and_grad(norm), "xg"),
    "vjp": (vjp(norm), "xg"),
    "per_example_grad": (per_example_grad(norm), "xg"),
    "floor": (floor, "x"),
  }
  for use_lrn, suffix in ((True, ""), (False, "_base")):
    for name, fn in _steps(mode, use_lrn, implementation).items():
      out[f"{name}{suffix}"] = (fn, "wwx")
  return out
