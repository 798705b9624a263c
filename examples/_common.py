"""Helpers shared by the model examples (alexnet.py, googlenet.py, train_digits.py).

Not part of flax_lrn: plain example code, imported by the scripts next to it.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import flax_lrn

# XLA options for code that runs once or a few times: skipping LLVM's
# optimizations compiles several times faster and runs a little slower.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def count_params(tree: object) -> int:
  """Counts the elements of the arrays (or shape structs) in a pytree."""
  return sum(leaf.size for leaf in jax.tree.leaves(tree))


def numpy_init(shapes: object, seed: int) -> object:
  """Fills a pytree of shapes with LeCun-normal kernels and zero biases.

  ``model.init`` (and NNX's constructors) compile one random-number kernel
  per parameter array, which on XLA:CPU takes about a second each; drawing
  the numbers with NumPy compiles nothing. The kernels follow Flax's default
  ``lecun_normal`` scale, ``1 / sqrt(fan_in)``, untruncated; NNX random
  streams get a fresh key.

  Args:
    shapes: a pytree of ``jax.ShapeDtypeStruct`` (from ``jax.eval_shape``).
    seed: seeds NumPy's generator.

  Returns:
    The same pytree, of arrays.
  """
  rng = np.random.default_rng(seed)

  def fill(leaf):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      return jax.random.key(seed)  # an NNX random stream (dropout's)
    # Built in NumPy and copied over: jnp.zeros would compile per shape.
    if len(leaf.shape) < 2:
      return jnp.asarray(np.zeros(leaf.shape, leaf.dtype))
    fan_in = int(np.prod(leaf.shape[:-1]))
    draw = rng.standard_normal(leaf.shape, np.float32) / np.sqrt(fan_in)
    return jnp.asarray(draw.astype(leaf.dtype))

  return jax.tree.map(fill, shapes)


def forward_linen(
  model: nn.Module, variables: dict, x: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Runs the linen model, capturing what each LRN layer outputs.

  Args:
    model: the network.
    variables: its variables.
    x: the images.

  Returns:
    The logits and, for each LRN layer by name, its output.
  """

  def run(variables, x):
    return model.apply(
      variables,
      x,
      capture_intermediates=lambda module, _: isinstance(module, flax_lrn.LRN),
      mutable=["intermediates"],
    )

  compiled = jax.jit(run).lower(variables, x).compile(FAST_COMPILE)
  logits, state = compiled(variables, x)
  lrn = {name: v["__call__"][0] for name, v in state["intermediates"].items()}
  return logits.block_until_ready(), lrn


def forward_nnx(model: nnx.Module, x: jax.Array) -> jax.Array:
  """Runs the NNX model through NNX's functional API and ``jax.jit``."""
  graph, state = nnx.split(model)

  def run(state, x):
    return nnx.merge(graph, state)(x)

  compiled = jax.jit(run).lower(state, x).compile(FAST_COMPILE)
  return compiled(state, x).block_until_ready()
