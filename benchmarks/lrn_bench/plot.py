"""A picture of the float32 across-channel figures (needs matplotlib)."""

from __future__ import annotations

import pathlib
from typing import Any

from . import config

_COLORS = {"ours": "#1f77b4", "tf": "#ff7f0e", "torch": "#2ca02c"}


def plot(report: dict[str, Any], path: pathlib.Path) -> bool:
  """Bars of median ms per call form and library; False without matplotlib."""
  try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:
    return False
  records = [
    r for r in report["results"] if (r["dtype"], r["mode"]) == ("f32", "across")
  ]
  if not records:
    return False
  fig, axes = plt.subplots(
    1, len(records), figsize=(4.5 * len(records), 4), squeeze=False
  )
  impls = ("ours", "tf", "torch")
  width = 0.8 / len(impls)
  for ax, r in zip(axes[0], records, strict=True):
    forms = [f for f in config.FORMS if f in r["times_ms"]]
    for i, impl in enumerate(impls):
      values = [
        max(r["times_ms"][f].get(impl, {}).get("median") or 0, 0) for f in forms
      ]
      xs = [j + (i - 1) * width for j in range(len(forms))]
      ax.bar(xs, values, width, color=_COLORS[impl])
    ax.set_xticks(range(len(forms)))
    ax.set_xticklabels(
      [f.removeprefix("step_") for f in forms], fontsize=7, rotation=60
    )
    ax.set_yscale("log")
    ax.set_title(f"{r['shape_name']} {r['shape']}", fontsize=9)
    ax.set_ylabel("median ms (log)")
  fig.legend(
    [plt.Rectangle((0, 0), 1, 1, color=_COLORS[i]) for i in impls],
    [config.IMPL_LABELS[i] for i in impls],
    loc="lower center",
    ncol=3,
  )
  fig.tight_layout(rect=(0, 0.08, 1, 1))
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True
