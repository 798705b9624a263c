"""Show a feature map before and after across- and within-channel LRN.

LRN comes in two flavours that differ only in the neighbourhood of the sum
of squares:

* across channels (inter-channel, AlexNet): the ``n`` neighbouring channels
  at the same pixel, so a channel is damped where *other* channels respond
  at the same place;
* within a channel (intra-channel, Caffe's ``WITHIN_CHANNEL``): the
  ``n x n`` neighbouring pixels of the same channel, so a response is damped
  where the *same* channel responds nearby.

This script builds a realistic feature map without training anything: a
handwritten 8 from scikit-learn's digits, upsampled to 32x32, filtered by a
bank of 16 oriented edge detectors (the kind a CNN's first layer learns;
neighbouring channels have neighbouring orientations) and rectified. It
applies both flavours with :func:`flax_lrn.lrn` and draws, for three
channels, the input, both outputs on the input's colour scale, and both
gains ``b / a``, as ``inter_vs_intra.png``.

Usage::

  python examples/inter_vs_intra.py [--out out]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from matplotlib.figure import Figure
from sklearn.datasets import load_digits

import flax_lrn

N_ORIENTATIONS = 16
SHOWN_CHANNELS = (0, 4, 6)  # 0, 90 and 135 degrees
# Stronger than AlexNet's settings so the effect shows at this input scale:
# alpha is divided by the window's element count, 5 across and 25 within.
ACROSS = dict(window=5, alpha=1.0, beta=0.75, k=1.0, alpha_scaling="size")
WITHIN = dict(
  window=5,
  alpha=1.0,
  beta=0.75,
  k=1.0,
  alpha_scaling="size",
  mode="within_channel",
)


def digit_image() -> np.ndarray:
  """The first 8 of the digits set, ``8 x 8`` in [0, 1]."""
  digits = load_digits()
  index = int(np.flatnonzero(digits.target == 8)[0])
  return (digits.images[index] / 16.0).astype(np.float32)


def edge_filters(size: int = 7, sigma: float = 1.2) -> np.ndarray:
  """Derivative-of-Gaussian edge detectors at evenly spaced orientations.

  Args:
    size: the side of each filter.
    sigma: the Gaussian's width, in pixels.

  Returns:
    The filters as an HWIO kernel ``(size, size, 1, N_ORIENTATIONS)``, each
    with zero mean and unit L1 norm.
  """
  r = np.arange(size) - (size - 1) / 2
  y, x = np.meshgrid(r, r, indexing="ij")
  theta = np.arange(N_ORIENTATIONS) * (2 * np.pi / N_ORIENTATIONS)
  along = x[..., None] * np.cos(theta) + y[..., None] * np.sin(theta)
  gauss = np.exp(-(x**2 + y**2) / (2 * sigma**2))[..., None]
  f = along * gauss
  f = f / np.sum(np.abs(f), axis=(0, 1))
  return f[:, :, None, :].astype(np.float32)


@partial(jax.jit, static_argnums=2)
def feature_map(
  digit: jax.Array, filters: jax.Array, size: int
) -> tuple[jax.Array, jax.Array]:
  """Upsamples the digit, filters it with the edge bank and rectifies it.

  Args:
    digit: the ``8 x 8`` image.
    filters: the HWIO filter bank.
    size: the side of the upsampled image.

  Returns:
    The image ``(size, size)`` and the feature map ``(1, size, size, C)``,
    scaled so its largest value is 3.
  """
  image = jnp.clip(jax.image.resize(digit, (size, size), "cubic"), 0.0, 1.0)
  a = jax.lax.conv_general_dilated(
    image[None, :, :, None],
    filters,
    window_strides=(1, 1),
    padding="SAME",
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
  )
  a = jax.nn.relu(a)
  return image, 3.0 * a / jnp.max(a)


def plot(
  image: jax.Array,
  a: jax.Array,
  across: jax.Array,
  within: jax.Array,
  path: Path,
) -> None:
  """Draws the input and both LRN outputs and gains for a few channels.

  Args:
    image: the digit.
    a: the feature map ``(1, H, W, C)``.
    across: its across-channel LRN.
    within: its within-channel LRN.
    path: where to write the PNG.
  """
  a, across, within = (np.asarray(v[0]) for v in (a, across, within))
  rows = len(SHOWN_CHANNELS)
  fig = Figure(figsize=(17, 3.1 * rows + 0.6), layout="constrained")
  axes = fig.subplots(rows, 6)
  for row, c in enumerate(SHOWN_CHANNELS):
    degrees = c * 360 // N_ORIENTATIONS
    vmax = float(a[..., c].max())
    active = a[..., c] > 1e-3 * vmax
    # The gain (k + alpha S)^-beta is only observable where a > 0.
    nan = np.full_like(a[..., c], np.nan)
    gain_across = np.divide(across[..., c], a[..., c], out=nan, where=active)
    gain_within = np.divide(
      within[..., c], a[..., c], out=nan.copy(), where=active
    )
    panels = (
      (image, "gray_r", (0, 1), "input image"),
      (a[..., c], "viridis", (0, vmax), f"channel a: edge at {degrees}°"),
      (across[..., c], "viridis", (0, vmax), "across channels: b"),
      (within[..., c], "viridis", (0, vmax), "within channel: b"),
      (gain_across, "magma", (0, 1), "across: gain b / a"),
      (gain_within, "magma", (0, 1), "within: gain b / a"),
    )
    shown = []
    for ax, (data, cmap, (lo, hi), title) in zip(
      axes[row], panels, strict=True
    ):
      if row > 0 and title == "input image":
        # The image is the same in every row; show the channel's filter.
        data = edge_filters()[:, :, 0, c]
        lim = float(np.abs(data).max())
        cmap, lo, hi, title = "RdBu_r", -lim, lim, f"filter, {degrees}°"
      cmap = matplotlib.colormaps[cmap].with_extremes(bad="0.85")
      shown.append(ax.imshow(data, cmap=cmap, vmin=lo, vmax=hi))
      ax.set_title(title, fontsize=10)
      ax.set_xticks([])
      ax.set_yticks([])
    # One colour bar per scale: activations (a and both b) and gains.
    fig.colorbar(shown[1], ax=axes[row, 1:4], shrink=0.85)
    fig.colorbar(shown[4], ax=axes[row, 4:], shrink=0.85)
  fig.suptitle(
    "LRN on a rectified edge-filter map of a digit (k=1, α=1, β=0.75):"
    " across 5 channels (α/5) vs within a 5x5 window (α/25);"
    " grey = a is 0",
    fontsize=11,
  )
  fig.savefig(path, dpi=90)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  """Parses the command line."""
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0],
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  parser.add_argument(
    "--out", type=Path, default=Path("out"), help="output folder"
  )
  parser.add_argument(
    "--size", type=int, default=32, help="side of the upsampled digit"
  )
  parser.add_argument(
    "--smoke", action="store_true", help="a 16x16 image, for the test suite"
  )
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, jax.Array]:
  """Builds the feature map, normalizes it both ways and saves the grid.

  Args:
    argv: the command-line arguments (default: ``sys.argv[1:]``).

  Returns:
    The feature map ``a`` and its two normalizations, ``across`` and
    ``within``, each ``(1, size, size, 16)``.
  """
  args = parse_args(argv)
  size = 16 if args.smoke else args.size
  image, a = feature_map(digit_image(), edge_filters(), size)
  across = flax_lrn.lrn(a, **ACROSS)
  within = flax_lrn.lrn(a, **WITHIN)
  print(f"feature map {a.shape}: gain sum(b) / sum(a)")
  print(f"{'channel':>8} {'across':>8} {'within':>8}")
  active = a > 0
  for c in SHOWN_CHANNELS:
    on = active[..., c]
    gain_across = jnp.sum(across[..., c] * on) / jnp.sum(a[..., c] * on)
    gain_within = jnp.sum(within[..., c] * on) / jnp.sum(a[..., c] * on)
    degrees = c * 360 // N_ORIENTATIONS
    print(f"{degrees:>7}° {gain_across:>8.3f} {gain_within:>8.3f}")
  args.out.mkdir(parents=True, exist_ok=True)
  path = args.out / "inter_vs_intra.png"
  plot(image, a, across, within, path)
  print(f"\nfigure: {path}")
  return {"a": a, "across": across, "within": within}


if __name__ == "__main__":
  main()
