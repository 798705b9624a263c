"""AlexNet in Flax linen and NNX, with LRN where the paper puts it.

Krizhevsky, Sutskever & Hinton (NIPS 2012), §3.3-3.5: "Response-normalization
layers follow the first and second convolutional layers. Max-pooling layers
[...] follow both response-normalization layers as well as the fifth
convolutional layer. The ReLU non-linearity is applied to the output of
every convolutional and fully-connected layer." So each of the first two
blocks is conv -> ReLU -> LRN -> max-pool, with the paper's LRN
hyper-parameters: ``n=5, k=2, alpha=1e-4, beta=0.75``, alpha *not* divided
by ``n``, which are :class:`flax_lrn.LRN`'s defaults.

As in Caffe's ``bvlc_alexnet``, the network is one tower whose second,
fourth and fifth convolutions are split into two groups (the paper's two
GPUs), on 227x227 inputs; it has 60,965,224 parameters, like Caffe's. The
LRN window runs over all 96 (then 256) channels, as in Caffe; on the
paper's two GPUs each half normalized its own 48 (128) channels.

The script builds both versions, prints their parameter counts (and the
count at 227x227, which the size of the first dense layer depends on) and
runs a forward pass on a random batch. The weights are LeCun-normal draws
from NumPy, filled into the shapes ``jax.eval_shape`` gives: ``model.init``
would spend most of the run compiling one random-number kernel per
parameter array on CPU (``--flax-init`` does it that way).

Usage::

  python examples/alexnet.py [--batch 2] [--image-size 227] [--flax-init]
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

# (features, kernel, stride, padding, groups) of the five convolutions.
CONVS = (
  (96, 11, 4, "VALID", 1),
  (256, 5, 1, 2, 2),
  (384, 3, 1, 1, 1),
  (384, 3, 1, 1, 2),
  (256, 3, 1, 1, 2),
)
POOL_AFTER = (0, 1, 4)  # conv indices followed by a 3x3, stride-2 max-pool
LRN_AFTER = (0, 1)  # conv indices followed by LRN (before the pool)
HIDDEN = 4096


def _max_pool(x: jax.Array) -> jax.Array:
  """The overlapping 3x3, stride-2 max-pool of the paper (§3.4)."""
  # window_shape by keyword, the form jax2onnx's ONNX export recognizes.
  return nn.max_pool(x, window_shape=(3, 3), strides=(2, 2))


def feature_side(image_size: int) -> int:
  """The side of the last feature map for square inputs of that size.

  Args:
    image_size: the input's height and width.

  Returns:
    The side after the five convolutions and three pools (6 for 227).

  Raises:
    ValueError: if the image is too small for the network.
  """
  side = (image_size - 11) // 4 + 1
  for _ in POOL_AFTER:
    side = (side - 3) // 2 + 1
  if side < 1 or image_size < 11:
    raise ValueError(f"image_size {image_size} is too small; use >= 67.")
  return side


class AlexNetLinen(nn.Module):
  """AlexNet as a linen module, for NHWC images.

  Attributes:
    num_classes: the number of outputs.
    dropout_rate: the dropout before the second and third dense layers.
  """

  num_classes: int = 1000
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Maps images ``(batch, H, W, 3)`` to logits ``(batch, num_classes)``.

    Args:
      x: the images.
      train: enables dropout (which then needs a ``'dropout'`` rng).

    Returns:
      The logits.
    """
    for i, (features, kernel, stride, padding, groups) in enumerate(CONVS):
      x = nn.Conv(
        features,
        (kernel, kernel),
        strides=stride,
        padding=padding,
        feature_group_count=groups,
      )(x)
      x = nn.relu(x)
      if i in LRN_AFTER:
        x = flax_lrn.LRN()(x)  # n=5, k=2, alpha=1e-4, beta=0.75
      if i in POOL_AFTER:
        x = _max_pool(x)
    x = x.reshape((x.shape[0], -1))
    for _ in range(2):
      x = nn.relu(nn.Dense(HIDDEN)(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)


class AlexNetNNX(nnx.Module):
  """AlexNet as an NNX module, for NHWC images.

  Args:
    num_classes: the number of outputs.
    image_size: the input's height and width, which sets the first dense
      layer's input size (NNX creates parameters eagerly).
    dropout_rate: the dropout before the second and third dense layers.
    rngs: the random streams for initialization and dropout.
  """

  def __init__(
    self,
    num_classes: int = 1000,
    *,
    image_size: int = 227,
    dropout_rate: float = 0.5,
    rngs: nnx.Rngs,
  ):
    in_features = 3
    convs = []
    for features, kernel, stride, padding, groups in CONVS:
      convs.append(
        nnx.Conv(
          in_features,
          features,
          (kernel, kernel),
          strides=stride,
          padding=padding,
          feature_group_count=groups,
          rngs=rngs,
        )
      )
      in_features = features
    self.convs = nnx.List(convs)
    self.lrn = flax_lrn.nnx.LRN()  # n=5, k=2, alpha=1e-4, beta=0.75
    flat = feature_side(image_size) ** 2 * in_features
    self.fc6 = nnx.Linear(flat, HIDDEN, rngs=rngs)
    self.fc7 = nnx.Linear(HIDDEN, HIDDEN, rngs=rngs)
    self.fc8 = nnx.Linear(HIDDEN, num_classes, rngs=rngs)
    self.dropout = nnx.Dropout(dropout_rate, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Maps images ``(batch, H, W, 3)`` to logits ``(batch, num_classes)``.

    Args:
      x: the images.
      train: enables dropout.

    Returns:
      The logits.
    """
    for i, conv in enumerate(self.convs):
      x = nnx.relu(conv(x))
      if i in LRN_AFTER:
        x = self.lrn(x)
      if i in POOL_AFTER:
        x = _max_pool(x)
    x = x.reshape((x.shape[0], -1))
    for fc in (self.fc6, self.fc7):
      x = self.dropout(nnx.relu(fc(x)), deterministic=not train)
    return self.fc8(x)


def build_linen(
  num_classes: int, x: jax.Array, seed: int, *, fast_init: bool
) -> tuple[AlexNetLinen, dict]:
  """Builds the linen model and its variables for inputs like ``x``."""
  model = AlexNetLinen(num_classes)
  key = jax.random.key(seed)
  if fast_init:
    return model, numpy_init(jax.eval_shape(model.init, key, x), seed)
  return model, jax.jit(model.init)(key, x)


def build_nnx(
  num_classes: int, image_size: int, seed: int, *, fast_init: bool
) -> AlexNetNNX:
  """Builds the NNX model for square inputs of side ``image_size``."""

  def make():
    return AlexNetNNX(num_classes, image_size=image_size, rngs=nnx.Rngs(seed))

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
  parser.add_argument("--image-size", type=int, default=227)
  parser.add_argument("--num-classes", type=int, default=1000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--flax-init",
    action="store_true",
    help="initialize with model.init and the NNX constructors rather than"
    " NumPy draws (about 25 s on CPU, mostly compiling random-number kernels)",
  )
  parser.add_argument(
    "--smoke",
    action="store_true",
    help="67x67 inputs, 10 classes, for the test suite",
  )
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
  """Builds both versions, prints their sizes and runs a forward pass.

  Args:
    argv: the command-line arguments (default: ``sys.argv[1:]``).

  Returns:
    ``params_linen`` and ``params_nnx`` (the counts at the run's image size),
    ``params_227_linen`` and ``params_227_nnx`` (the counts at 227x227 with
    ``--num-classes``), the logits ``out_linen`` and ``out_nnx``, and
    ``lrn_outputs``, each linen LRN layer's output by name.
  """
  args = parse_args(argv)
  size = 67 if args.smoke else args.image_size
  classes = 10 if args.smoke else args.num_classes
  fast_init = args.smoke or not args.flax_init
  x = jax.random.normal(jax.random.key(args.seed), (args.batch, size, size, 3))

  # Shapes only: no parameter is allocated, nothing is compiled.
  full = jax.ShapeDtypeStruct((1, 227, 227, 3), jnp.float32)
  linen_227 = jax.eval_shape(
    AlexNetLinen(args.num_classes).init, jax.random.key(0), full
  )
  nnx_227 = nnx.eval_shape(
    lambda: AlexNetNNX(args.num_classes, image_size=227, rngs=nnx.Rngs(0))
  )
  params_227_linen = count_params(linen_227)
  params_227_nnx = count_params(nnx.state(nnx_227, nnx.Param))
  print(
    f"AlexNet at 227x227 with {args.num_classes} classes:"
    f" {params_227_linen:,} parameters (linen), {params_227_nnx:,} (NNX)"
  )
  print(f"forward pass on a random batch {x.shape}, {classes} classes:")

  start = time.perf_counter()
  linen_model, variables = build_linen(
    classes, x, args.seed, fast_init=fast_init
  )
  out_linen, lrn_outputs = forward_linen(linen_model, variables, x)
  params_linen = count_params(variables)
  seconds = time.perf_counter() - start
  print(
    f"  linen: {params_linen:>12,} parameters, logits {out_linen.shape},"
    f" {seconds:.1f} s with initialization and compilation"
  )
  for name, y in lrn_outputs.items():
    print(f"    {name} outputs {y.shape}")

  start = time.perf_counter()
  nnx_model = build_nnx(classes, size, args.seed, fast_init=fast_init)
  out_nnx = forward_nnx(nnx_model, x)
  params_nnx = count_params(nnx.state(nnx_model, nnx.Param))
  seconds = time.perf_counter() - start
  print(
    f"  NNX:   {params_nnx:>12,} parameters, logits {out_nnx.shape},"
    f" {seconds:.1f} s with initialization and compilation"
  )
  return {
    "params_linen": params_linen,
    "params_nnx": params_nnx,
    "params_227_linen": params_227_linen,
    "params_227_nnx": params_227_nnx,
    "out_linen": out_linen,
    "lrn_outputs": lrn_outputs,
    "out_nnx": out_nnx,
  }


if __name__ == "__main__":
  main()
