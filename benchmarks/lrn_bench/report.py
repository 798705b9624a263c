"""Markdown tables of a run, rendered from its JSON (the one source)."""

from __future__ import annotations

import operator
import pathlib
from collections.abc import Sequence
from typing import Any

from . import config

BEGIN = "<!-- BEGIN results -->"
END = "<!-- END results -->"


def markers(section: str) -> tuple[str, str]:
  """The comments that delimit a rendered section of a Markdown file."""
  return f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"


_OPS = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


def _ms(v: float | None) -> str:
  if v is None:
    return "n/a"
  digits = 0 if abs(v) >= 100 else 1 if abs(v) >= 10 else 2
  return f"{v:.{digits}f}"


def _x(v: float | None, digits: int = 2) -> str:
  return "n/a" if v is None else f"{v:.{digits}f}"


def _table(header: Sequence[str], rows, left: int = 1) -> list[str]:
  align = ["---" if i < left else "--:" for i in range(len(header))]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
  return lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]


def _median(r: dict[str, Any], form: str, impl: str) -> float | None:
  return r["times_ms"][form].get(impl, {}).get("median")


def evaluate_targets(records: Sequence[dict[str, Any]]) -> list[dict]:
  """Each CPU target on each shape: its value and PASS or FAIL."""
  by_key = {(r["shape_name"], r["dtype"], r["mode"]): r for r in records}
  rows = []
  for key, mode, dtype, op, bound in config.CPU_TARGETS:
    for shape in dict.fromkeys(r["shape_name"] for r in records):
      r = by_key.get((shape, dtype, mode))
      value = None if r is None else r["ratios"].get(key)
      verdict = None if value is None else _OPS[op](value, bound)
      rows.append({
        "target": f"{key} ({mode}, {dtype}) {op} {bound:g}",
        "shape": shape,
        "value": value,
        "pass": verdict,
      })  # fmt: skip
  return rows


def _run_section(meta: dict[str, Any]) -> list[str]:
  versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
  threads = ", ".join(f"{k} = {v}" for k, v in meta["threads"].items())
  return [
    "### Machine and run",
    "",
    f"- Device: {meta['device']}; {meta['cpu']['count']} cores,"
    f" {meta['memory_gib']} GiB memory; {meta['platform']}.",
    f"- Versions: {versions}; Python {meta['python']}.",
    f"- Threads (library defaults): {threads}.",
    f"- Medians of {meta['repeats']} interleaved rounds after up to"
    f" {meta['warmup']} warm-up runs of each candidate; flax_lrn at git"
    f" {meta['git']}; {meta['date']}.",
    f"- Command: `{meta['command']}`",
    "",
  ]


def _checks_section(records) -> list[str]:
  bad = [
    f"{name} on {r['shape_name']} {r['dtype']} {r['mode']}"
    for r in records
    for name, c in r["checks"].items()
    if any(
      e > config.check_bound(form, r["dtype"])
      for form, e in c["errors"].items()
    )
  ]
  worst: dict[str, float] = {}
  for r in records:
    for c in r["checks"].values():
      for form, e in c["errors"].items():
        kind = f"{r['dtype']} {'step' if form in config.STEPS else 'LRN'}"
        worst[kind] = max(worst.get(kind, 0.0), e)
  out = []
  if bad:
    out.append(
      "**MISMATCH** (a peer disagrees with flax_lrn): " + "; ".join(bad)
    )
  elif worst:
    out.append(
      "Before timing, every peer's outputs and gradients in every call form"
      " agree with flax_lrn's on `30 * x` (largest `max|a - b| / max|b|`: "
      + ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items()))
      + ")."
    )
  missing = sorted(
    {
      f"{config.IMPL_LABELS[name]} {r['dtype']} {r['mode']} ({status[5:]})"
      for r in records
      for name, status in r["peers"].items()
      if status != "ok"
    }
  )
  if missing:
    out += ["", "Not run (n/a): " + "; ".join(missing) + "."]
  return [*out, ""]


def headline(records: Sequence[dict[str, Any]]) -> list[str]:
  """Float32 across channels: every call form against the peers."""
  rows = []
  for r in records:
    if (r["dtype"], r["mode"]) != ("f32", "across"):
      continue
    for form in config.FORMS:
      ours = _median(r, form, "ours")
      rows.append([
        r["shape_name"], config.FORM_LABELS[form], _ms(ours),
        _ms(_median(r, form, "tf")), _ms(_median(r, form, "torch")),
        _x(r["ratios"].get(f"{form}_tf_over_ours"), 1),
        _x(r["ratios"].get(f"{form}_torch_over_ours"), 1),
        _x(r["bytes_over_x"][form], 1), _x(r["scratch_over_x"][form], 1),
      ])  # fmt: skip
  header = [
    "shape", "call form", "flax_lrn ms", "TensorFlow ms", "PyTorch ms",
    "TF / flax_lrn", "PyTorch / flax_lrn", "bytes / X", "scratch / X",
  ]  # fmt: skip
  return _table(header, rows, left=2)


def full_table(records: Sequence[dict[str, Any]], form: str) -> list[str]:
  rows = []
  for r in records:
    row = [r["shape_name"], r["dtype"], r["mode"]]
    row += [_ms(_median(r, form, i)) for i in config.IMPLS if i != "floor"]
    if form == "fwd":
      row += [
        _ms(_median(r, form, "floor")),
        _x(r["ratios"]["fwd_ours_over_floor"]),
      ]
    row += [_x(r["bytes_over_x"][form], 1), _x(r["scratch_over_x"][form], 1)]
    rows.append(row)
  header = ["shape", "dtype", "mode", "flax_lrn", "TensorFlow", "PyTorch"]
  if form == "fwd":
    header += ["floor", "flax_lrn / floor"]
  return _table([*header, "bytes / X", "scratch / X"], rows, left=3)


def step_totals(records: Sequence[dict[str, Any]]) -> list[str]:
  rows = []
  for r in records:
    for form in config.STEPS:
      for impl, t in r["step_totals_ms"][form].items():
        rows.append([
          r["shape_name"], r["dtype"], r["mode"], form,
          config.IMPL_LABELS[impl], _ms(t["without"]["median"]),
          _ms(t["with"]["median"]), _ms(r["times_ms"][form][impl]["median"]),
        ])  # fmt: skip
  header = ["shape", "dtype", "mode", "step", "library", "without LRN",
            "with LRN", "LRN adds (paired)"]  # fmt: skip
  return _table(header, rows, left=5)


def targets_table(records: Sequence[dict[str, Any]]) -> list[str]:
  rows = [
    [t["target"], t["shape"], _x(t["value"]),
     "n/a" if t["pass"] is None else "PASS" if t["pass"] else "FAIL"]
    for t in evaluate_targets(records)
  ]  # fmt: skip
  return _table(["target", "shape", "value", "verdict"], rows, left=2)


def aot_table(aot: dict[str, Any]) -> list[str]:
  """Compile-only structure per accelerator: kernels, bytes/X, scratch/X."""
  out = []
  for _target, rep in aot.items():
    out += [
      f"**{rep['device']}**, per device: [{', '.join(map(str, rep['shape']))}]"
      f" ({rep['shape_name']}), jax {rep['jax']}. Each cell: kernels /"
      " bytes moved / scratch, bytes over the input's X; training steps"
      " show what the LRN adds.",
      "",
    ]
    header = ["dtype", "mode", *(config.FORM_LABELS[f] for f in config.FORMS)]
    rows = []
    for row in rep["rows"]:
      cells = []
      for form in config.FORMS:
        s = row["forms"][form]
        cells.append(
          f"{s['kernels']:+d} / {s['bytes_over_x']:+.1f} /"
          f" {s['scratch_over_x']:+.1f}"
          if form in config.STEPS
          else f"{s['kernels']} / {s['bytes_over_x']:.1f} /"
          f" {s['scratch_over_x']:.1f}"
        )
      rows.append([row["dtype"], row["mode"], *cells])
    floor = rep["rows"][0]["forms"]["floor"]
    out += _table(header, rows, left=2)
    out += [
      "",
      f"Floor `x * 2`: {floor['kernels']} kernel, {floor['bytes_over_x']:.1f}"
      " X.",
      "",
    ]
  return out


def render(report: dict[str, Any], aot: dict[str, Any] | None) -> str:
  records = report["results"]
  out = _run_section(report["meta"]) + _checks_section(records)
  out += ["#### Float32 across channels, every call form", ""]
  out += [*headline(records), ""]
  for form in config.FORMS:
    out += [f"#### {config.FORM_LABELS[form]}: median ms, every row", ""]
    out += [*full_table(records, form), ""]
  out += ["#### Training steps with and without the LRN (median ms)", ""]
  out += [*step_totals(records), ""]
  out += ["#### CPU targets", ""]
  out += [*targets_table(records), ""]
  if aot:
    out += ["#### Compiled for accelerators, not run", "", *aot_table(aot)]
  return "\n".join(out).rstrip() + "\n"


def update_markdown(path: pathlib.Path, body: str, section: str) -> None:
  """Replaces the text between the markers of ``section`` in ``path``."""
  begin, end_marker = markers(section)
  text = path.read_text()
  start, end = text.index(begin) + len(begin), text.index(end_marker)
  path.write_text(text[:start] + "\n\n" + body + "\n" + text[end:])
