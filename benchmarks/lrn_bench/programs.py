"""The JAX programs the benchmark times and compiles: one per call form.

Each program is a plain function of arrays, written as a user of Flax writes
it, so the timed runs and the compile-only accelerator builds look at the
same code. Training steps come in pairs, with and without the LRN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

import flax_lrn

from . import config


def lrn(mode: str) -> Callable[[jax.Array], jax.Array]:
  """flax_lrn with AlexNet's constants, across or (Caffe) within channels."""
  if mode == "across":
    return lambda x: flax_lrn.lrn(
      x, (config.RADIUS, config.RADIUS), alpha=config.ALPHA,
      beta=config.BETA, k=config.K,
    )  # fmt: skip
  return lambda x: flax_lrn.lrn(
    x, config.SIZE, alpha=config.ALPHA, beta=config.BETA, k=config.WITHIN_K,
    alpha_scaling="size", mode="within_channel",
  )  # fmt: skip


def floor(x: jax.Array) -> jax.Array:
  """One read and one write of ``x``: the least any forward pass can move."""
  return x * 2


def forward(mode: str) -> Callable[..., Any]:
  return lrn(mode)


def grad(mode: str) -> Callable[..., Any]:
  """``jax.value_and_grad`` of a scalar loss; nothing else is returned."""
  f = lrn(mode)

  def loss(x, g):
    return jnp.sum(f(x).astype(jnp.float32) * g.astype(jnp.float32))

  return jax.value_and_grad(loss)


def vjp(mode: str) -> Callable[..., Any]:
  """The output and the input gradient from one ``jax.vjp``."""
  f = lrn(mode)

  def run(x, g):
    y, pullback = jax.vjp(f, x)
    return y, pullback(g)[0]

  return run


def _conv(x: jax.Array, w: jax.Array) -> jax.Array:
  return lax.conv_general_dilated(
    x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )


def step(block: str, mode: str | None) -> Callable[..., Any]:
  """The gradient of a loss with respect to a 1x1 convolution's weight.

  ``conv1x1 -> relu -> [LRN] -> maxpool 3x3/2`` (AlexNet, ``block='pool'``)
  or ``conv1x1 -> relu -> [LRN] -> conv3x3`` (GoogLeNet's stem,
  ``block='conv'``); ``mode=None`` leaves the LRN out. The loss is the mean
  square of the block's output, accumulated in float32.

  Returns:
    ``f(w, w2, x)``, the gradient with respect to ``w`` (``w2`` is the 3x3
    convolution's weight, unused by the pool block).
  """
  norm = (lambda y: y) if mode is None else lrn(mode)

  def loss(w, w2, x):
    y = norm(nn.relu(_conv(x, w)))
    if block == "pool":
      y = nn.max_pool(y, (3, 3), strides=(2, 2))
    else:
      y = _conv(y, w2)
    return jnp.mean(jnp.square(y.astype(jnp.float32)))

  return jax.grad(loss)


def step_weights(key: jax.Array, channels: int, dtype) -> tuple[Any, Any]:
  """He-initialized weights of the 1x1 and 3x3 convolutions (HWIO)."""
  k1, k2 = jax.random.split(key)
  w = jax.random.normal(k1, (1, 1, channels, channels)) * (2 / channels) ** 0.5
  w2 = (
    jax.random.normal(k2, (3, 3, channels, config.STEM_CHANNELS))
    * (2 / (9 * channels)) ** 0.5
  )
  return w.astype(dtype), w2.astype(dtype)


def programs(mode: str) -> dict[str, tuple[Callable[..., Any], str]]:
  """flax_lrn's programs for one mode: ``{name: (function, signature)}``.

  The signature says which arrays the function takes: ``x`` (the input),
  ``xg`` (the input and a cotangent of its shape) or ``wwx`` (the two
  weights and the input of a training step).
  """
  out = {
    "fwd": (forward(mode), "x"),
    "grad": (grad(mode), "xg"),
    "vjp": (vjp(mode), "xg"),
    "floor": (floor, "x"),
  }
  for block in ("pool", "conv"):
    out[f"step_{block}"] = (step(block, mode), "wwx")
    out[f"step_{block}_base"] = (step(block, None), "wwx")
  return out
