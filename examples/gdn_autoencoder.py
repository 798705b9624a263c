"""Train a small convolutional autoencoder with GDN/IGDN and with ReLU.

The analysis transform of Ballé, Laparra and Simoncelli's image codec
("End-to-end optimized image compression", 2017) in miniature: three
strided 5x5 convolutions with GDN between them map a 32x32 RGB patch to a
4x4x12 code (16 times fewer numbers); the synthesis transform mirrors it
with 2x upsampling convolutions and IGDN. There is no quantization or entropy
model: the comparison is of the nonlinearities alone.

The ReLU model replaces each GDN (or IGDN) layer by a 1x1 convolution
followed by a ReLU. A 1x1 convolution with bias holds ``C * C + C``
parameters, exactly as many as GDN's ``gamma`` and ``beta``, so both models
have the same parameter count.

The patches come from the two photographs that ship with scikit-learn
(``load_sample_images``, no download): training patches from the left 70 %
of each photograph, test patches from the right 30 %, leaving out flat
ones (standard deviation below 0.08). Both models start
from the same convolution weights and see the same minibatches. The script
prints the test MSE and PSNR of each and writes ``gdn_autoencoder.png``
(test error during training, and reconstructions of test patches) to the
output folder.

Usage::

  python examples/gdn_autoencoder.py [--steps 1000] [--seed 0] [--out out]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import FAST_COMPILE, count_params  # the examples folder
from matplotlib.figure import Figure
from sklearn.datasets import load_sample_images
from tqdm.auto import tqdm

import flax_lrn

VARIANTS = {"gdn": "GDN / IGDN", "relu": "1x1 conv + ReLU"}
PATCH = 32
TRAIN_FRACTION = 0.7  # of each photograph's width
MIN_STD = 0.08  # the least contrast of a patch, on [0, 1]


class Autoencoder(nn.Module):
  """Analysis (conv + GDN) and synthesis (upsampling conv + IGDN) transforms.

  Attributes:
    nonlinearity: ``'gdn'`` or ``'relu'``.
    features: the channels of the hidden layers.
    latent: the channels of the code.
  """

  nonlinearity: str = "gdn"
  features: int = 16
  latent: int = 12

  def _act(self, x: jax.Array, inverse: bool) -> jax.Array:
    if self.nonlinearity == "gdn":
      return flax_lrn.GDN(inverse=inverse)(x)
    # The same parameter count as GDN: a C x C matrix and C offsets.
    return nn.relu(nn.Conv(self.features, (1, 1))(x))

  def _up(self, x: jax.Array, features: int) -> jax.Array:
    # Sub-pixel upsampling: a convolution to 4x the channels, each group of
    # four becoming a 2x2 block. It computes what a stride-2 transposed
    # convolution does without multiplying the zeros that one inserts,
    # which XLA:CPU would.
    y = nn.Conv(4 * features, (5, 5), padding="SAME")(x)
    n, h, w, _ = y.shape
    y = y.reshape(n, h, w, 2, 2, features).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, 2 * h, 2 * w, features)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Reconstructs patches ``(batch, 32, 32, 3)`` in [0, 1].

    Args:
      x: the patches.

    Returns:
      The reconstructions, of the same shape.
    """
    conv = dict(kernel_size=(5, 5), strides=(2, 2), padding="SAME")
    y = self._act(nn.Conv(self.features, **conv)(x), inverse=False)
    y = self._act(nn.Conv(self.features, **conv)(y), inverse=False)
    code = nn.Conv(self.latent, **conv)(y)
    y = self._act(self._up(code, self.features), inverse=True)
    y = self._act(self._up(y, self.features), inverse=True)
    return self._up(y, 3) + 0.5


class Data(NamedTuple):
  """Training and test patches, ``(n, 32, 32, 3)`` in [0, 1]."""

  train: np.ndarray
  test: np.ndarray


class Result(NamedTuple):
  """What one model's training run produced."""

  variant: str
  params: int
  steps: list[int]  # where the test error was measured
  test_mse: list[float]
  reconstructions: np.ndarray  # of the first test patches
  compile_s: float
  train_s: float

  @property
  def psnr(self) -> float:
    return psnr(self.test_mse[-1])


def psnr(mse: float) -> float:
  """Peak signal-to-noise ratio (dB) of a mean squared error on [0, 1]."""
  return float(10.0 * np.log10(1.0 / mse))


def load_data(n_train: int, n_test: int, seed: int = 0) -> Data:
  """Random patches from the left (train) and right (test) of the photos.

  Args:
    n_train: the number of training patches.
    n_test: the number of test patches.
    seed: seeds the patch positions.

  Returns:
    The patches.
  """
  rng = np.random.default_rng(seed)
  images = [im.astype(np.float32) / 255.0 for im in load_sample_images().images]

  def patches(n, left: bool):
    out = np.empty((n, PATCH, PATCH, 3), np.float32)
    for i in range(n):
      im = images[i % len(images)]
      h, w, _ = im.shape
      split = int(TRAIN_FRACTION * w)
      lo, hi = (0, split - PATCH) if left else (split, w - PATCH)
      while True:
        r, c = rng.integers(0, h - PATCH), rng.integers(lo, hi)
        patch = im[r : r + PATCH, c : c + PATCH]
        # Skip flat patches (sky, background): they are easy for any model
        # and would dominate the mean error.
        if patch.std() >= MIN_STD:
          break
      out[i] = patch
    return out

  return Data(patches(n_train, True), patches(n_test, False))


def train_variant(
  variant: str,
  data: Data,
  *,
  steps: int,
  eval_every: int,
  batch_size: int,
  learning_rate: float,
  features: int,
  seed: int,
  progress: tqdm,
  fast_compile: bool = False,
) -> Result:
  """Trains one model with Adam on the mean squared error.

  Args:
    variant: a key of ``VARIANTS``.
    data: the patches.
    steps: the number of training steps.
    eval_every: measure the test error every this many steps.
    batch_size: the minibatch size.
    learning_rate: the peak learning rate of a cosine schedule.
    features: the hidden channels.
    seed: seeds the initialization and the minibatches.
    progress: advanced once per evaluation.
    fast_compile: compile without LLVM optimization (smoke runs).

  Returns:
    The error curve, the reconstructions and the timings.
  """
  model = Autoencoder(nonlinearity=variant, features=features)
  optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
  options = FAST_COMPILE if fast_compile else None
  start = time.perf_counter()
  x_train, x_test = jnp.asarray(data.train), jnp.asarray(data.test)
  # init and evaluate run a few times: compiled without LLVM optimization
  # they are ready sooner, which matters more than their speed.
  key, x_one = jax.random.key(seed), x_test[:1]
  init = jax.jit(model.init).lower(key, x_one).compile(FAST_COMPILE)
  params = init(key, x_one)["params"]
  opt_state = optimizer.init(params)

  def loss_fn(params, x):
    return jnp.mean((model.apply({"params": params}, x) - x) ** 2)

  def train_step(params, opt_state, idx):
    loss, grads = jax.value_and_grad(loss_fn)(params, x_train[idx])
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  def evaluate(params):
    return loss_fn(params, x_test), model.apply({"params": params}, x_test[:6])

  idx = np.arange(batch_size)
  train_step = (
    jax.jit(train_step, donate_argnums=(0, 1))
    .lower(params, opt_state, idx)
    .compile(options)
  )
  evaluate = jax.jit(evaluate).lower(params).compile(FAST_COMPILE)
  compile_s = time.perf_counter() - start

  rng = np.random.default_rng(seed)
  measured, test_mse = [], []
  start = time.perf_counter()
  for step in range(1, steps + 1):
    idx = rng.integers(0, len(data.train), batch_size)
    params, opt_state, _ = train_step(params, opt_state, idx)
    if step % eval_every == 0 or step == steps:
      mse, reconstructions = evaluate(params)
      measured.append(step)
      test_mse.append(float(mse))
      progress.set_postfix(model=variant, psnr=f"{psnr(test_mse[-1]):.2f}")
      progress.update()
  train_s = time.perf_counter() - start
  return Result(
    variant=variant,
    params=count_params(params),
    steps=measured,
    test_mse=test_mse,
    reconstructions=np.clip(np.asarray(reconstructions), 0.0, 1.0),
    compile_s=compile_s,
    train_s=train_s,
  )


def format_table(results: Sequence[Result]) -> str:
  """The final test error and timings as a Markdown table."""
  lines = [
    "| model | parameters | test MSE | PSNR (dB) | compile (s) | train (s) |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for r in results:
    lines.append(
      f"| {VARIANTS[r.variant]} | {r.params} | {r.test_mse[-1]:.5f}"
      f" | {r.psnr:.2f} | {r.compile_s:.1f} | {r.train_s:.1f} |"
    )
  return "\n".join(lines)


def plot(results: Sequence[Result], data: Data, path: Path) -> None:
  """Draws the test PSNR during training and a few reconstructions.

  Args:
    results: one result per model.
    data: the patches (the first test patches are shown).
    path: where to write the PNG.
  """
  # A bare Figure needs no pyplot and no GUI backend, so this runs headless.
  fig = Figure(figsize=(10, 4.2), layout="constrained")
  left, right = fig.subfigures(1, 2, width_ratios=(1, 1.25))
  ax = left.subplots()
  for r in results:
    ax.plot(
      r.steps,
      [psnr(m) for m in r.test_mse],
      marker=".",
      label=f"{VARIANTS[r.variant]} ({r.psnr:.2f} dB)",
    )
  ax.set(xlabel="training step", ylabel="test PSNR (dB)", title="Test PSNR")
  ax.grid(alpha=0.3)
  ax.legend()
  rows = [("original", data.test[:6])] + [
    (VARIANTS[r.variant], r.reconstructions) for r in results
  ]
  axes = right.subplots(len(rows), 6, squeeze=False)
  for row, (label, images) in zip(axes, rows, strict=True):
    for ax, image in zip(row, images, strict=False):
      ax.imshow(image, interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
    row[0].set_ylabel(label, fontsize=8)
  right.suptitle("Test patches and reconstructions", fontsize=10)
  fig.suptitle(
    f"32x32 patch autoencoder (code 4x4x12), equal parameters:"
    f" {results[0].params}"
  )
  fig.savefig(path, dpi=110)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  """Parses the command line."""
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0],
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--out", type=Path, default=Path("out"), help="output folder"
  )
  parser.add_argument("--batch-size", type=int, default=16)
  parser.add_argument("--learning-rate", type=float, default=3e-3)
  parser.add_argument("--features", type=int, default=16)
  parser.add_argument(
    "--smoke",
    "--quick",
    action="store_true",
    help="a tiny run (20 steps, narrow model) to check it works",
  )
  args = parser.parse_args(argv)
  if args.steps < 1:
    parser.error("--steps must be >= 1")
  return args


def main(argv: Sequence[str] | None = None) -> list[Result]:
  """Trains both models, prints the table and saves the figure.

  Args:
    argv: the command-line arguments (default: ``sys.argv[1:]``).

  Returns:
    One result per model.
  """
  args = parse_args(argv)
  smoke = args.smoke
  steps = 20 if smoke else args.steps
  eval_every = 10 if smoke else 100
  features = 8 if smoke else args.features
  data = load_data(n_train=256 if smoke else 4096, n_test=64 if smoke else 256)
  args.out.mkdir(parents=True, exist_ok=True)
  print(
    f"patches: {len(data.train)} train / {len(data.test)} test, {steps}"
    f" steps, seed {args.seed}, JAX on {jax.default_backend()}"
  )
  evaluations = -(-steps // eval_every)
  results = []
  with tqdm(total=evaluations * len(VARIANTS), unit="eval") as progress:
    for variant in VARIANTS:
      results.append(
        train_variant(
          variant,
          data,
          steps=steps,
          eval_every=eval_every,
          batch_size=args.batch_size,
          learning_rate=args.learning_rate,
          features=features,
          seed=args.seed,
          progress=progress,
          fast_compile=smoke,
        )
      )
  print()
  print(format_table(results))
  path = args.out / "gdn_autoencoder.png"
  plot(results, data, path)
  print(f"\nfigure: {path}")
  return results


if __name__ == "__main__":
  main()
