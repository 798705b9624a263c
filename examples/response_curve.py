"""Plot LRN's response curve, b/a against the window's sum of squares.

LRN divides each activation ``a`` by ``(k + alpha_eff * S) ** beta``, where
``S`` is the sum of squares in its window, so the gain ``b / a`` is

    b / a = (k + alpha_eff * S) ** -beta

This script measures that gain with :func:`flax_lrn.lrn` itself, rather than
re-typing the formula: for each ``S`` it builds an ``n``-channel input whose
channels all equal ``sqrt(S / n)``, so the window of the centre channel
holds exactly ``S``, and divides the output by the input there. It then
checks the measured gain against the formula and plots it for a few
published settings (AlexNet as written, Caffe's and PyTorch's AlexNet, the
TensorFlow defaults, and the digits example in this folder).

The right panel shows what the gain does to a lone active channel
(``S = a**2``): its output ``b = a (k + alpha_eff a**2) ** -beta`` rises,
peaks and, for ``beta > 1/2``, falls again, so a very strong response is
damped below a moderate one.

A widely read blog post on LRN plots ``1 / (2 + 10e-4 * S * 2) * 0.75`` for
AlexNet: it multiplies by ``beta`` where the formula raises to the power
``-beta``, doubles ``S``, and writes ``alpha = 1e-4`` as ``10e-4``
(``1e-3``). Its curve is drawn dashed for comparison.

Usage::

  python examples/response_curve.py [--out out]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import flax_lrn


class Setting(NamedTuple):
  """One published LRN configuration, in :func:`flax_lrn.lrn`'s terms."""

  label: str
  window: int
  alpha: float
  beta: float
  k: float
  alpha_scaling: str

  @property
  def alpha_eff(self) -> float:
    """The factor of the sum of squares after any division by ``window``."""
    return self.alpha / (self.window if self.alpha_scaling == "size" else 1)


SETTINGS = (
  Setting(
    "AlexNet paper: n=5, k=2, α=1e-4, β=0.75", 5, 1e-4, 0.75, 2.0, "none"
  ),
  Setting(
    "Caffe AlexNet, PyTorch LocalResponseNorm(5): n=5, k=1, α=1e-4/5, β=0.75",
    5,
    1e-4,
    0.75,
    1.0,
    "size",
  ),
  Setting(
    "TensorFlow defaults: r=5 (n=11), bias=1, α=1, β=0.5",
    11,
    1.0,
    0.5,
    1.0,
    "none",
  ),
  Setting(
    "examples/train_digits.py: n=5, k=1, α=1/5, β=0.75",
    5,
    1.0,
    0.75,
    1.0,
    "size",
  ),
)


def measured_gain(setting: Setting, sums: np.ndarray) -> np.ndarray:
  """Measures ``b / a`` with :func:`flax_lrn.lrn` for each sum of squares.

  Args:
    setting: the LRN configuration.
    sums: the sums of squares ``S`` (non-negative), one per point.

  Returns:
    The gain at the centre channel of a window holding ``S``.
  """
  n = setting.window
  # Every channel equal to sqrt(S / n): the centre channel's window spans all
  # n channels, so its sum of squares is S.
  x = jnp.sqrt(jnp.asarray(sums, jnp.float32) / n)[:, None] * jnp.ones(n)
  y = flax_lrn.lrn(
    x,
    n,
    alpha=setting.alpha,
    beta=setting.beta,
    k=setting.k,
    alpha_scaling=setting.alpha_scaling,
  )
  centre = n // 2
  return np.asarray(y[:, centre] / x[:, centre])


def formula_gain(setting: Setting, sums: np.ndarray) -> np.ndarray:
  """The closed form ``(k + alpha_eff * S) ** -beta``, in float64."""
  return (setting.k + setting.alpha_eff * sums) ** -setting.beta


def seed_001_curve(sums: np.ndarray) -> np.ndarray:
  """The curve the blog post plots for AlexNet (wrong: see the docstring)."""
  return 1 / (2 + 10e-4 * sums * 2) * 0.75


def plot(sums: np.ndarray, gains: dict[str, np.ndarray], path: Path) -> None:
  """Draws the gain against S and the lone-channel response against a.

  Args:
    sums: the sums of squares.
    gains: the measured gain for each setting's label.
    path: where to write the PNG.
  """
  fig = Figure(figsize=(12, 5.6), layout="constrained")
  ax_gain, ax_resp = fig.subplots(1, 2)
  for setting in SETTINGS:
    ax_gain.plot(sums, gains[setting.label], label=setting.label, lw=2)
  ax_gain.plot(
    sums,
    seed_001_curve(sums),
    "k--",
    lw=1,
    label="seed 001's code for AlexNet: 0.75 / (2 + 2e-3·S), wrong",
  )
  ax_gain.set(
    xscale="log",
    ylim=(0, 1.05),
    xlabel="sum of squares in the window, S",
    ylabel="gain b / a = (k + α_eff·S)^(−β)",
    title="LRN gain, computed with flax_lrn.lrn",
  )

  # A lone active channel: S = a**2 (the other channels are zero).
  a = np.sqrt(sums)
  for setting in SETTINGS:
    ax_resp.plot(a, a * formula_gain(setting, sums), lw=2)
  ax_resp.plot(a, a, color="0.5", lw=1, ls=":", label="identity, b = a")
  ax_resp.set(
    xscale="log",
    yscale="log",
    xlabel="activation a (alone in its window, S = a²)",
    ylabel="output b",
    title="Response of a lone channel",
  )
  for ax in (ax_gain, ax_resp):
    ax.grid(alpha=0.3, which="both")
  handles = ax_gain.get_legend_handles_labels()
  extra = ax_resp.get_legend_handles_labels()
  fig.legend(
    handles[0] + extra[0],
    handles[1] + extra[1],
    loc="outside lower center",
    ncols=2,
    fontsize=9,
    frameon=False,
  )
  fig.savefig(path, dpi=110)


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
    "--smoke", action="store_true", help="fewer points, for the test suite"
  )
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, np.ndarray]:
  """Measures the gains, checks them against the formula, saves the plot.

  Args:
    argv: the command-line arguments (default: ``sys.argv[1:]``).

  Returns:
    The sums of squares under ``"S"`` and the measured gain under each
    setting's label.

  Raises:
    AssertionError: if flax_lrn disagrees with the closed form.
  """
  args = parse_args(argv)
  sums = np.logspace(-2, 6, 33 if args.smoke else 401)
  gains = {}
  width = max(len(setting.label) for setting in SETTINGS)
  print(
    f"{'setting':<{width}} {'b/a at S=1':>10} {'at S=1e4':>9} {'max err':>8}"
  )
  for setting in SETTINGS:
    gain = measured_gain(setting, sums)
    expected = formula_gain(setting, sums)
    error = float(np.max(np.abs(gain - expected) / expected))
    # float32 rounding of sqrt(S/n), its square and the power: a few ulps.
    if error > 1e-5:
      raise AssertionError(f"{setting.label}: relative error {error:.2e}")
    gains[setting.label] = gain
    at = np.interp([0, 4], np.log10(sums), gain)
    print(
      f"{setting.label:<{width}} {at[0]:>10.4f} {at[1]:>9.4f} {error:>8.1e}"
    )
  args.out.mkdir(parents=True, exist_ok=True)
  path = args.out / "lrn_response_curve.png"
  plot(sums, gains, path)
  print(f"\nresponse curve: {path} (JAX on {jax.default_backend()})")
  return {"S": sums, **gains}


if __name__ == "__main__":
  main()
