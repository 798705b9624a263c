"""GoogLeNet (Inception v1) in Flax linen and NNX, with LRN in the stem.

Szegedy et al., "Going deeper with convolutions" (CVPR 2015), Table 1 and
Figure 3: the stem is conv 7x7/2 -> max-pool 3x3/2 -> LocalRespNorm ->
conv 1x1 -> conv 3x3 -> LocalRespNorm -> max-pool 3x3/2, followed by nine
inception modules, a global average pool, dropout (40 %) and a linear
classifier. This builds the whole network as Caffe's
``models/bvlc_googlenet`` deploys it: ReLU after every convolution and, for
both LRN layers, ``local_size=5, alpha=1e-4, beta=0.75`` with Caffe's
conventions, ``k=1`` and alpha divided by the window size, that is
``flax_lrn.LRN(5, alpha=1e-4, beta=0.75, k=1.0, alpha_scaling="size")``, or
``flax_lrn.LRN.from_caffe(5, alpha=1e-4, beta=0.75, channel_axis=-1)`` with
Caffe's own parameter names.

Left out: the two auxiliary classifiers, which only help training. Pools
use ``'SAME'`` padding, which on 224x224 inputs gives Caffe's (ceil-mode)
feature-map sizes, 112 -> 56 -> 28 -> 14 -> 7; the average pool is global,
so other input sizes work too.

The script builds both versions, prints their parameter counts and runs a
forward pass on a random batch. The weights are LeCun-normal draws from
NumPy, filled into the shapes ``jax.eval_shape`` gives: ``model.init`` would
spend about two minutes compiling one random-number kernel per parameter
array on CPU (``--flax-init`` does it that way).

Usage::

  python examples/googlenet.py [--batch 2] [--image-size 224] [--flax-init]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from _common import (  # the examples folder, next to this script
  count_params,
  forward_linen,
  forward_nnx,
  numpy_init,
)
from flax import nnx

import flax_lrn
import flax_lrn.nnx

# Caffe's bvlc_googlenet LRN: alpha is divided by local_size and k is 1.
LRN_ARGS = dict(window=5, alpha=1e-4, beta=0.75, k=1.0, alpha_scaling="size")

# Table 1 of the paper: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool
# proj; "pool" is a 3x3, stride-2 max-pool between stages.
INCEPTION = (
  ("3a", (64, 96, 128, 16, 32, 32)),
  ("3b", (128, 128, 192, 32, 96, 64)),
  ("pool", None),
  ("4a", (192, 96, 208, 16, 48, 64)),
  ("4b", (160, 112, 224, 24, 64, 64)),
  ("4c", (128, 128, 256, 24, 64, 64)),
  ("4d", (112, 144, 288, 32, 64, 64)),
  ("4e", (256, 160, 320, 32, 128, 128)),
  ("pool", None),
  ("5a", (256, 160, 320, 32, 128, 128)),
  ("5b", (384, 192, 384, 48, 128, 128)),
)


def _max_pool(x: jax.Array, stride: int = 2) -> jax.Array:
  """A 3x3 max-pool; 'SAME' reproduces Caffe's ceil-mode output sizes."""
  # window_shape by keyword, the form jax2onnx's ONNX export recognizes.
  return nn.max_pool(
    x, window_shape=(3, 3), strides=(stride, stride), padding="SAME"
  )


class InceptionLinen(nn.Module):
  """An inception module (Figure 2b of the paper), in linen.

  Attributes:
    widths: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5 and pool proj.
  """

  widths: tuple[int, int, int, int, int, int]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Concatenates the four branches along the channel axis."""
    c1, r3, c3, r5, c5, pp = self.widths

    def conv(x, features, kernel):
      return nn.relu(nn.Conv(features, (kernel, kernel))(x))

    return jnp.concatenate(
      [
        conv(x, c1, 1),
        conv(conv(x, r3, 1), c3, 3),
        conv(conv(x, r5, 1), c5, 5),
        conv(_max_pool(x, stride=1), pp, 1),
      ],
      axis=-1,
    )


class GoogLeNetLinen(nn.Module):
  """GoogLeNet as a linen module, for NHWC images.

  Attributes:
    num_classes: the number of outputs.
    dropout_rate: the dropout before the classifier.
  """

  num_classes: int = 1000
  dropout_rate: float = 0.4

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Maps images ``(batch, H, W, 3)`` to logits ``(batch, num_classes)``.

    Args:
      x: the images.
      train: enables dropout (which then needs a ``'dropout'`` rng).

    Returns:
      The logits.
    """
    x = nn.relu(nn.Conv(64, (7, 7), strides=2, padding=3)(x))
    x = _max_pool(x)
    x = flax_lrn.LRN(**LRN_ARGS)(x)
    x = nn.relu(nn.Conv(64, (1, 1))(x))
    x = nn.relu(nn.Conv(192, (3, 3))(x))
    x = flax_lrn.LRN(**LRN_ARGS)(x)
    x = _max_pool(x)
    for name, widths in INCEPTION:
      if widths is None:
        x = _max_pool(x)
      else:
        x = InceptionLinen(widths, name=f"inception_{name}")(x)
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)


class InceptionNNX(nnx.Module):
  """An inception module (Figure 2b of the paper), in NNX.

  Args:
    in_features: the input channels.
    widths: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5 and pool proj.
    rngs: the random streams for initialization.
  """

  def __init__(
    self,
    in_features: int,
    widths: tuple[int, int, int, int, int, int],
    *,
    rngs: nnx.Rngs,
  ):
    c1, r3, c3, r5, c5, pp = widths
    self.b1 = nnx.Conv(in_features, c1, (1, 1), rngs=rngs)
    self.b3_reduce = nnx.Conv(in_features, r3, (1, 1), rngs=rngs)
    self.b3 = nnx.Conv(r3, c3, (3, 3), rngs=rngs)
    self.b5_reduce = nnx.Conv(in_features, r5, (1, 1), rngs=rngs)
    self.b5 = nnx.Conv(r5, c5, (5, 5), rngs=rngs)
    self.pool_proj = nnx.Conv(in_features, pp, (1, 1), rngs=rngs)
    self.out_features = c1 + c3 + c5 + pp

  def __call__(self, x: jax.Array) -> jax.Array:
    """Concatenates the four branches along the channel axis."""
    relu = nnx.relu
    return jnp.concatenate(
      [
        relu(self.b1(x)),
        relu(self.b3(relu(self.b3_reduce(x)))),
        relu(self.b5(relu(self.b5_reduce(x)))),
        relu(self.pool_proj(_max_pool(x, stride=1))),
      ],
      axis=-1,
    )


class GoogLeNetNNX(nnx.Module):
  """GoogLeNet as an NNX module, for NHWC images.

  Args:
    num_classes: the number of outputs.
    dropout_rate: the dropout before the classifier.
    rngs: the random streams for initialization and dropout.
  """

  def __init__(
    self,
    num_classes: int = 1000,
    *,
    dropout_rate: float = 0.4,
    rngs: nnx.Rngs,
  ):
    self.conv1 = nnx.Conv(3, 64, (7, 7), strides=2, padding=3, rngs=rngs)
    self.norm1 = flax_lrn.nnx.LRN(**LRN_ARGS)
    self.conv2_reduce = nnx.Conv(64, 64, (1, 1), rngs=rngs)
    self.conv2 = nnx.Conv(64, 192, (3, 3), rngs=rngs)
    self.norm2 = flax_lrn.nnx.LRN(**LRN_ARGS)
    in_features = 192
    blocks = []
    for _, widths in INCEPTION:
      if widths is None:
        blocks.append(None)
      else:
        blocks.append(InceptionNNX(in_features, widths, rngs=rngs))
        in_features = blocks[-1].out_features
    self.blocks = nnx.List(blocks)
    self.dropout = nnx.Dropout(dropout_rate, rngs=rngs)
    self.fc = nnx.Linear(in_features, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Maps images ``(batch, H, W, 3)`` to logits ``(batch, num_classes)``.

    Args:
      x: the images.
      train: enables dropout.

    Returns:
      The logits.
    """
    x = nnx.relu(self.conv1(x))
    x = self.norm1(_max_pool(x))
    x = nnx.relu(self.conv2_reduce(x))
    x = nnx.relu(self.conv2(x))
    x = _max_pool(self.norm2(x))
    for block in self.blocks:
      x = _max_pool(x) if block is None else block(x)
    x = jnp.mean(x, axis=(1, 2))
    return self.fc(self.dropout(x, deterministic=not train))


def build_linen(
  num_classes: int, x: jax.Array, seed: int, *, fast_init: bool
) -> tuple[GoogLeNetLinen, dict]:
  """Builds the linen model and its variables for inputs like ``x``."""
  model = GoogLeNetLinen(num_classes)
  key = jax.random.key(seed)
  if fast_init:
    return model, numpy_init(jax.eval_shape(model.init, key, x), seed)
  return model, jax.jit(model.init)(key, x)


def build_nnx(num_classes: int, seed: int, *, fast_init: bool) -> GoogLeNetNNX:
  """Builds the NNX model."""

  def make():
    return GoogLeNetNNX(num_classes, rngs=nnx.Rngs(seed))

  if not fast_init:
    return make()
  graph, shapes = nnx.split(nnx.eval_shape(make))
  return nnx.merge(graph, numpy_init(shapes, seed))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  """Parses the command line."""
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0],
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--image-size", type=int, default=224)
  parser.add_argument("--num-classes", type=int, default=1000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--flax-init",
    action="store_true",
    help="initialize with model.init and the NNX constructors rather than"
    " NumPy draws (about 2 minutes on CPU, mostly compiling random-number kernels)",
  )
  parser.add_argument(
    "--smoke",
    action="store_true",
    help="32x32 inputs, 10 classes, for the test suite",
  )
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
  """Builds both versions, prints their sizes and runs a forward pass.

  Args:
    argv: the command-line arguments (default: ``sys.argv[1:]``).

  Returns:
    ``params_linen`` and ``params_nnx`` (the counts with ``--num-classes``,
    which do not depend on the image size) and the logits ``out_linen`` and
    ``out_nnx`` of the forward pass, and ``lrn_outputs``, each linen LRN
    layer's output by name.
  """
  args = parse_args(argv)
  size = 32 if args.smoke else args.image_size
  classes = 10 if args.smoke else args.num_classes
  fast_init = args.smoke or not args.flax_init
  x = jax.random.normal(jax.random.key(args.seed), (args.batch, size, size, 3))

  # Shapes only: no parameter is allocated, nothing is compiled.
  linen_shapes = jax.eval_shape(
    GoogLeNetLinen(args.num_classes).init, jax.random.key(0), x[:1]
  )
  nnx_shapes = nnx.eval_shape(
    lambda: GoogLeNetNNX(args.num_classes, rngs=nnx.Rngs(0))
  )
  params_linen = count_params(linen_shapes)
  params_nnx = count_params(nnx.state(nnx_shapes, nnx.Param))
  print(
    f"GoogLeNet (no auxiliary classifiers) with {args.num_classes} classes:"
    f" {params_linen:,} parameters (linen), {params_nnx:,} (NNX)"
  )
  print(f"forward pass on a random batch {x.shape}, {classes} classes:")

  start = time.perf_counter()
  linen_model, variables = build_linen(
    classes, x, args.seed, fast_init=fast_init
  )
  out_linen, lrn_outputs = forward_linen(linen_model, variables, x)
  seconds = time.perf_counter() - start
  print(
    f"  linen: logits {out_linen.shape},"
    f" {seconds:.1f} s with initialization and compilation"
  )
  for name, y in lrn_outputs.items():
    print(f"    {name} outputs {y.shape}")

  start = time.perf_counter()
  nnx_model = build_nnx(classes, args.seed, fast_init=fast_init)
  out_nnx = forward_nnx(nnx_model, x)
  seconds = time.perf_counter() - start
  print(
    f"  NNX:   logits {out_nnx.shape},"
    f" {seconds:.1f} s with initialization and compilation"
  )
  return {
    "params_linen": params_linen,
    "params_nnx": params_nnx,
    "out_linen": out_linen,
    "lrn_outputs": lrn_outputs,
    "out_nnx": out_nnx,
  }


if __name__ == "__main__":
  main()
