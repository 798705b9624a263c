"""Train a small CNN on handwritten digits with and without LRN.

The digits set ships inside scikit-learn (1797 8x8 grey images, no
download). The same Flax linen CNN is trained in four variants, the
comparison that articles on LRN versus BatchNorm draw:

* ``none``: no normalization;
* ``lrn-across``: LRN across channels after each ReLU, as in AlexNet;
* ``lrn-within``: LRN within each channel, over a 3x3 spatial window, as in
  Caffe's ``WITHIN_CHANNEL`` mode;
* ``batchnorm``: BatchNorm between each convolution and its ReLU, where
  Ioffe and Szegedy put it.

The LRN hyper-parameters are larger than AlexNet's (``alpha`` 1 divided by
the window size rather than 1e-4 undivided): inputs here are scaled to
[0, 1], so AlexNet's ``alpha`` would leave every activation unchanged. The
table reports each LRN layer's gain, ``sum(y) / sum(x)``, to show the layers
do act.

Every variant starts from the same weights and sees the same minibatches.
Each compiles its training step once; the host waits for the device once
per epoch, to update the progress bar. The script prints a table of test
accuracy and time per variant and writes ``digits_learning_curves.png`` to
the output folder.

Usage::

  python examples/train_digits.py [--epochs 15] [--seed 0] [--out out]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import FAST_COMPILE  # the examples folder
from matplotlib.figure import Figure
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

import flax_lrn

VARIANTS = {
  "none": "no normalization",
  "lrn-across": "LRN across channels",
  "lrn-within": "LRN within channel",
  "batchnorm": "BatchNorm",
}
# The split stays the same whatever --seed says, so that runs with different
# seeds are scored on the same 360 test images.
SPLIT_SEED = 0
TEST_SIZE = 360


class DigitsCNN(nn.Module):
  """Two 3x3 convolutions (16, 32 channels), a 2x2 max-pool and two dense.

  Attributes:
    norm: one of the keys of ``VARIANTS``.
    features: the channels of the two convolutions.
  """

  norm: str = "none"
  features: tuple[int, int] = (16, 32)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Maps images ``(batch, 8, 8, 1)`` to logits ``(batch, 10)``.

    Args:
      x: the images.
      train: whether BatchNorm uses batch statistics (and updates its running
        averages) or the running averages.

    Returns:
      The logits.
    """
    for features in self.features:
      x = nn.Conv(features, (3, 3))(x)
      if self.norm == "batchnorm":
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
      x = nn.relu(x)
      if self.norm == "lrn-across":
        # A sum over 5 neighbouring channels; alpha/5 per element.
        y = flax_lrn.LRN(
          window=5, alpha=1.0, beta=0.75, k=1.0, alpha_scaling="size"
        )(x)
      elif self.norm == "lrn-within":
        # A sum over the 3x3 neighbourhood in the same channel; alpha/9.
        y = flax_lrn.LRN(
          window=3,
          alpha=1.0,
          beta=0.75,
          k=1.0,
          alpha_scaling="size",
          mode="within_channel",
          spatial_axes=(1, 2),
        )(x)
      if self.norm.startswith("lrn"):
        self.sow("intermediates", "lrn_gain", jnp.sum(y) / jnp.sum(x))
        x = y
    x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(128)(x))
    return nn.Dense(10)(x)


class Data(NamedTuple):
  """The fixed train/test split, images as ``(n, 8, 8, 1)`` in [0, 1]."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


class Result(NamedTuple):
  """What one variant's training run produced."""

  variant: str
  train_loss: list[float]  # per epoch, mean over the epoch's steps
  test_accuracy: list[float]  # per epoch
  test_loss: float
  lrn_gain: float | None  # mean over LRN layers of sum(y) / sum(x)
  compile_s: float  # initialization and compilation
  train_s: float


def load_data(limit: int | None = None) -> Data:
  """Loads the digits and splits them 1437/360, stratified by class.

  Args:
    limit: if given, keep only this many training images (smoke runs).

  Returns:
    The split data.
  """
  digits = load_digits()
  x = (digits.images / 16.0).astype(np.float32)[..., None]
  y = digits.target.astype(np.int32)
  x_train, x_test, y_train, y_test = train_test_split(
    x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y
  )
  if limit is not None:
    x_train, y_train = x_train[:limit], y_train[:limit]
  return Data(x_train, y_train, x_test, y_test)


def make_functions(
  model: DigitsCNN, optimizer: optax.GradientTransformation
) -> tuple[Callable[..., Any], Callable[..., Any]]:
  """Builds the jitted training step and the evaluation.

  Args:
    model: the network.
    optimizer: the optax optimizer.

  Returns:
    ``train_step(params, state, opt_state, x, y, idx)``, which trains on the
    minibatch ``x[idx], y[idx]`` and returns the new ``(params, state,
    opt_state)`` and the loss, and ``evaluate(params, state, x, y)``, which
    returns ``(loss, accuracy, lrn_gain)``.
  """

  def loss_fn(params, state, x, y):
    logits, new_state = model.apply(
      {"params": params, **state}, x, train=True, mutable=["batch_stats"]
    )
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, new_state

  def train_step(params, state, opt_state, x, y, idx):
    (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      params, state, x[idx], y[idx]
    )
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), state, opt_state, loss

  def evaluate(params, state, x, y):
    logits, inter = model.apply(
      {"params": params, **state},
      x,
      train=False,
      mutable=["intermediates"],
    )
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
    gains = jax.tree.leaves(inter.get("intermediates", {}))
    gain = jnp.mean(jnp.stack(gains)) if gains else jnp.nan
    return loss, accuracy, gain

  return jax.jit(train_step, donate_argnums=(0, 1, 2)), jax.jit(evaluate)


def train_variant(
  variant: str,
  data: Data,
  *,
  epochs: int,
  seed: int,
  batch_size: int,
  learning_rate: float,
  features: tuple[int, int],
  progress: tqdm,
  fast_compile: bool = False,
) -> Result:
  """Trains one variant from scratch and scores it after every epoch.

  Every variant starts from the same weights (linen derives each layer's
  initialization key from its name, and the normalization layers add no
  names before the convolutions) and sees the same minibatches.

  Args:
    variant: a key of ``VARIANTS``.
    data: the split data.
    epochs: the number of passes over the training set.
    seed: seeds the initialization and the shuffling.
    batch_size: the minibatch size. Each epoch drops the remainder of a
      fresh shuffle, so every image is seen about once per epoch.
    learning_rate: the peak learning rate of Adam's cosine schedule.
    features: the channels of the two convolutions.
    progress: the progress bar, advanced once per epoch.
    fast_compile: compile the training step without LLVM optimization,
      which halves compile time and triples step time (for smoke runs).

  Returns:
    The curves, the final scores and the timings.
  """
  model = DigitsCNN(norm=variant, features=features)
  n_train = len(data.x_train)
  steps = n_train // batch_size
  optimizer = optax.adam(
    optax.cosine_decay_schedule(learning_rate, epochs * steps)
  )
  # Initialization and ahead-of-time compilation, timed apart from training;
  # each function is compiled exactly once.
  start = time.perf_counter()
  init = jax.jit(partial(model.init, train=False))
  key, x_one = jax.random.key(seed), data.x_train[:1]
  # init runs once, on small arrays: compiled without LLVM optimization it
  # is ready about four times sooner (the random-number kernels dominate).
  variables = init.lower(key, x_one).compile(FAST_COMPILE)(key, x_one)
  params = variables["params"]
  state = {c: v for c, v in variables.items() if c != "params"}
  opt_state = optimizer.init(params)
  x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
  rng = np.random.default_rng(seed)
  train_step, evaluate = make_functions(model, optimizer)
  options = FAST_COMPILE if fast_compile else None
  idx = np.arange(batch_size)
  train_step = train_step.lower(
    params, state, opt_state, x_train, y_train, idx
  ).compile(options)
  evaluate = evaluate.lower(params, state, x_test, y_test).compile(options)
  compile_s = time.perf_counter() - start

  # One jitted call per step rather than a scanned epoch: XLA:CPU runs the
  # convolutions inside a while loop about ten times slower. The calls are
  # dispatched asynchronously; the host waits once per epoch, for the bar.
  train_loss, test_accuracy = [], []
  start = time.perf_counter()
  for _ in range(epochs):
    order = rng.permutation(n_train)[: steps * batch_size]
    losses = []
    for idx in order.reshape(steps, batch_size):
      params, state, opt_state, loss = train_step(
        params, state, opt_state, x_train, y_train, idx
      )
      losses.append(loss)
    _, accuracy, _ = evaluate(params, state, x_test, y_test)
    train_loss.append(float(jnp.mean(jnp.stack(losses))))
    test_accuracy.append(float(accuracy))
    progress.set_postfix(
      variant=variant,
      loss=f"{train_loss[-1]:.3f}",
      acc=f"{test_accuracy[-1]:.3f}",
    )
    progress.update()
  test_loss, _, gain = evaluate(params, state, x_test, y_test)
  train_s = time.perf_counter() - start
  return Result(
    variant=variant,
    train_loss=train_loss,
    test_accuracy=test_accuracy,
    test_loss=float(test_loss),
    lrn_gain=None if np.isnan(gain) else float(gain),
    compile_s=compile_s,
    train_s=train_s,
  )


def format_table(results: Sequence[Result]) -> str:
  """Formats the final scores and timings as a Markdown table.

  Args:
    results: one result per variant.

  Returns:
    The table, one row per variant.
  """
  lines = [
    "| variant | test accuracy | test loss | LRN gain | compile (s)"
    " | train (s) |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for r in results:
    gain = "-" if r.lrn_gain is None else f"{r.lrn_gain:.2f}"
    lines.append(
      f"| {VARIANTS[r.variant]} | {100 * r.test_accuracy[-1]:.2f} %"
      f" | {r.test_loss:.3f} | {gain} | {r.compile_s:.1f} | {r.train_s:.1f} |"
    )
  return "\n".join(lines)


def plot_curves(results: Sequence[Result], path: Path) -> None:
  """Draws training loss and test accuracy per epoch, one line per variant.

  Args:
    results: one result per variant.
    path: where to write the PNG.
  """
  # A bare Figure needs no pyplot and no GUI backend, so this runs headless.
  fig = Figure(figsize=(10, 4), layout="constrained")
  ax_loss, ax_acc = fig.subplots(1, 2)
  for r in results:
    epochs = np.arange(1, len(r.train_loss) + 1)
    ax_loss.plot(epochs, r.train_loss, marker=".", label=VARIANTS[r.variant])
    ax_acc.plot(
      epochs,
      100 * np.asarray(r.test_accuracy),
      marker=".",
      label=f"{VARIANTS[r.variant]} ({100 * r.test_accuracy[-1]:.1f} %)",
    )
  ax_loss.set(
    xlabel="epoch", ylabel="training loss", yscale="log", title="Training loss"
  )
  ax_acc.set(
    xlabel="epoch",
    ylabel="test accuracy (%)",
    ylim=(85, 100),
    title=f"Test accuracy ({TEST_SIZE} images)",
  )
  for ax in (ax_loss, ax_acc):
    ax.grid(alpha=0.3)
    ax.legend()
  fig.suptitle("Small CNN on scikit-learn digits: LRN vs BatchNorm")
  fig.savefig(path, dpi=110)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  """Parses the command line."""
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0],
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument("--epochs", type=int, default=15)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--out", type=Path, default=Path("out"), help="output folder"
  )
  parser.add_argument(
    "--variants",
    default=",".join(VARIANTS),
    help="comma-separated subset of: " + ", ".join(VARIANTS),
  )
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--learning-rate", type=float, default=3e-3)
  parser.add_argument(
    "--smoke",
    action="store_true",
    help="a tiny run (1 epoch, 256 images, narrow model) to check it works",
  )
  args = parser.parse_args(argv)
  args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
  unknown = sorted(set(args.variants) - set(VARIANTS))
  if unknown or not args.variants:
    parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
  if args.epochs < 1:
    parser.error("--epochs must be >= 1")
  return args


def main(argv: Sequence[str] | None = None) -> list[Result]:
  """Trains every requested variant, prints the table and saves the plot.

  Args:
    argv: the command-line arguments (default: ``sys.argv[1:]``).

  Returns:
    One result per variant, in the order trained.
  """
  args = parse_args(argv)
  smoke = args.smoke
  epochs = 1 if smoke else args.epochs
  data = load_data(limit=256 if smoke else None)
  features = (4, 8) if smoke else (16, 32)
  args.out.mkdir(parents=True, exist_ok=True)
  print(
    f"digits: {len(data.x_train)} train / {len(data.x_test)} test images,"
    f" {epochs} epochs, seed {args.seed}, JAX on {jax.default_backend()}"
  )

  results = []
  with tqdm(total=epochs * len(args.variants), unit="epoch") as progress:
    for variant in args.variants:
      results.append(
        train_variant(
          variant,
          data,
          epochs=epochs,
          seed=args.seed,
          batch_size=args.batch_size,
          learning_rate=args.learning_rate,
          features=features,
          progress=progress,
          fast_compile=smoke,
        )
      )

  print()
  print(format_table(results))
  path = args.out / "digits_learning_curves.png"
  plot_curves(results, path)
  print(f"\nlearning curves: {path}")
  return results


if __name__ == "__main__":
  main()
