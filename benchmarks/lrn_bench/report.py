"""Markdown tables of a run, rendered from its JSON (the one source)."""

from __future__ import annotations

import operator
import pathlib
import statistics
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


def _forms(r: dict[str, Any]) -> list[str]:
  return [f for f in config.FORMS if f in r["times_ms"]]


def spread(r: dict[str, Any], peer: str) -> dict[str, Any] | None:
  """The worst, median and best ``peer / flax_lrn`` over the program shapes.

  Returns:
    ``{'worst': (ratio, form), 'median': ratio, 'best': (ratio, form),
    'n': count}``, or None when the peer ran no shape.
  """
  pairs = [
    (v, f)
    for f in _forms(r)
    if (v := r["ratios"].get(f"{f}_{peer}_over_ours")) is not None
  ]
  if not pairs:
    return None
  pairs.sort()
  return {
    "worst": pairs[0],
    "median": statistics.median(v for v, _ in pairs),
    "best": pairs[-1],
    "n": len(pairs),
  }


def evaluate_targets(records: Sequence[dict[str, Any]]) -> list[dict]:
  """Each CPU target on each shape: its value and PASS or FAIL."""
  rows = []

  def add(name, shape, value, detail="", slack=0.0):
    op, bound = config.CPU_TARGETS[name]
    verdict = None if value is None else _OPS[op](value, bound + slack)
    rows.append({
      "target": f"{name}{detail} {op} {bound:g}", "shape": shape,
      "value": value, "pass": verdict,
    })  # fmt: skip

  for r in records:
    shape, dtype, mode = r["shape_name"], r["dtype"], r["mode"]
    if (dtype, mode) == ("f32", "across"):
      s = spread(r, "tf")
      worst = None if s is None else s["worst"]
      label = "" if worst is None else f" ({config.FORM_LABELS[worst[1]]})"
      add("TF / flax_lrn, worst shape", shape,
          None if worst is None else worst[0], label)  # fmt: skip
      add("TF / flax_lrn, median over shapes", shape,
          None if s is None else s["median"])  # fmt: skip
      add("TF / flax_lrn, forward", shape, r["ratios"].get("fwd_tf_over_ours"))
      scratch = [r["scratch_over_x"][f] for f in config.ISOLATED
                 if r["scratch_over_x"].get(f) is not None]  # fmt: skip
      add("scratch / X, every isolated form", shape,
          max(scratch) if scratch else None,
          f" (+ up to {config.SCRATCH_SCALAR_BYTES} bytes of scalars)",
          config.SCRATCH_SCALAR_BYTES / r["input_bytes"])  # fmt: skip
    if dtype == "bf16":
      steps = [v for f in config.STEPS
               if (v := r["ratios"].get(f"{f}_bf16_over_f32")) is not None]  # fmt: skip
      add("bf16 / f32, every step's LRN cost", shape,
          max(steps) if steps else None, f" ({mode})")  # fmt: skip
  return rows


def _settle(meta: dict[str, Any]) -> str:
  settle = meta.get("settle")
  if not settle or not settle["budget_s"]:
    return ""
  return (
    ", then more rounds (up to"
    f" {settle['max_rounds']}, {settle['budget_s']:g} s per configuration)"
    " for each figure whose median's 95% interval is wider than"
    f" ±{100 * settle['precision']:g}% of it"
  )


def _interval(t: dict[str, Any]) -> str:
  ci = t.get("ci95")
  return "n/a" if not ci else f"{_ms(ci[0])} to {_ms(ci[1])}"


def _run_section(meta: dict[str, Any]) -> list[str]:
  versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
  threads = ", ".join(f"{k} = {v}" for k, v in meta["threads"].items())
  alloc = ", ".join(f"{k}={v}" for k, v in meta.get("allocator", {}).items())
  return [
    "### Machine and run",
    "",
    f"- Device: {meta['device']}; {meta['cpu']['count']} cores,"
    f" {meta['memory_gib']} GiB memory; {meta['platform']}.",
    f"- Versions: {versions}; Python {meta['python']}.",
    f"- Threads (library defaults): {threads}.",
    f"- C allocator: {alloc or 'glibc defaults (no MALLOC_ variable set)'}.",
    f"- Medians of {meta['repeats']} interleaved rounds after up to"
    f" {meta['warmup']} warm-up runs of each candidate{_settle(meta)};"
    f" flax_lrn at git {meta['git']}; {meta['date']}.",
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
  """Worst and median over the program shapes, per configuration."""
  rows = []
  for r in records:
    cells = [r["shape_name"], r["dtype"], r["mode"]]
    for peer in config.PEERS:
      s = spread(r, peer)
      if s is None:
        cells += ["n/a", "n/a", "n/a"]
        continue
      cells += [
        f"**{_x(s['worst'][0], 2)}** ({s['worst'][1]})",
        f"**{_x(s['median'], 2)}**",
        f"{_x(s['best'][0], 2)} ({s['best'][1]}), n = {s['n']}",
      ]
    rows.append(cells)
  header = [
    "shape", "dtype", "mode", "TF / flax_lrn worst", "median", "best",
    "PyTorch / flax_lrn worst", "median", "best",
  ]  # fmt: skip
  return _table(header, rows, left=3)


def shapes_table(r: dict[str, Any]) -> list[str]:
  """Every program shape of one configuration: what the LRN costs in it."""
  rows = []
  for form in _forms(r):
    rows.append([
      config.FORM_LABELS[form], _ms(_median(r, form, "ours")),
      _ms(_median(r, form, "tf")), _ms(_median(r, form, "torch")),
      _x(r["ratios"].get(f"{form}_tf_over_ours")),
      _x(r["ratios"].get(f"{form}_torch_over_ours")),
      _x(r["bytes_over_x"].get(form), 1), _x(r["scratch_over_x"].get(form), 1),
    ])  # fmt: skip
  header = [
    "program shape (steps: what the LRN adds)", "flax_lrn ms",
    "TensorFlow ms", "PyTorch ms", "TF / flax_lrn", "PyTorch / flax_lrn",
    "bytes / X", "scratch / X",
  ]  # fmt: skip
  out = _table(header, rows)
  fwd_floor = r["ratios"].get("fwd_ours_over_floor")
  if fwd_floor is not None:
    out += ["", f"Forward over the `x * 2` floor: {_x(fwd_floor)}."]
  return out


def step_totals(records: Sequence[dict[str, Any]]) -> list[str]:
  rows = []
  for r in records:
    for form, impls in r["step_totals_ms"].items():
      for impl, t in impls.items():
        rows.append([
          r["shape_name"], r["dtype"], r["mode"], form,
          config.IMPL_LABELS[impl], _ms(t["without"]["median"]),
          _ms(t["with"]["median"]), _ms(r["times_ms"][form][impl]["median"]),
          _interval(r["times_ms"][form][impl]), t["with"]["n"],
        ])  # fmt: skip
  header = ["shape", "dtype", "mode", "step", "library", "without LRN",
            "with LRN", "LRN adds (paired)", "its 95% interval",
            "rounds"]  # fmt: skip
  return _table(header, rows, left=5)


def targets_table(records: Sequence[dict[str, Any]]) -> list[str]:
  rows = [
    [t["target"], t["shape"], _x(t["value"]),
     "n/a" if t["pass"] is None else "PASS" if t["pass"] else "FAIL"]
    for t in evaluate_targets(records)
  ]  # fmt: skip
  return _table(["target", "shape", "value", "verdict"], rows, left=2)


def _aot_column(row: dict[str, Any]) -> str:
  kernel = row.get("implementation", "xla")
  label = f"{row['dtype']} {row['mode']}"
  return label if kernel == "xla" else f"{label}, {kernel}"


def aot_table(aot: dict[str, Any]) -> list[str]:
  """Compile-only structure per accelerator: kernels, bytes/X, scratch/X."""
  out = []
  for _target, rep in aot.items():
    out += [
      f"**{rep['device']}**, per device: [{', '.join(map(str, rep['shape']))}]"
      f" ({rep['shape_name']}), jax {rep['jax']}. Each cell: kernels /"
      " bytes moved / scratch, over the float32 input's bytes X (bfloat16"
      " rows too, so that they compare); training steps show what the LRN"
      " adds.",
      "",
    ]
    header = ["program shape", *map(_aot_column, rep["rows"])]
    rows = []
    forms = [
      f for f in (*config.FORMS, "floor") if f in rep["rows"][0]["forms"]
    ]
    for form in forms:
      cells = []
      for row in rep["rows"]:
        s = row["forms"].get(form)
        if s is None:
          cells.append("n/a")
          continue
        sign = "+" if form in config.STEPS else ""
        cells.append(
          f"{s['kernels']:{sign}d} / {s['bytes_over_x']:{sign}.1f} /"
          f" {s['scratch_over_x']:{sign}.1f}"
        )
      label = "floor `x * 2`" if form == "floor" else config.FORM_LABELS[form]
      rows.append([label, *cells])
    out += [*_table(header, rows), ""]
  return out


def render(report: dict[str, Any], aot: dict[str, Any] | None) -> str:
  records = report["results"]
  out = _run_section(report["meta"]) + _checks_section(records)
  out += [
    "#### Worst and median over the program shapes",
    "",
    "Each ratio is the peer's median over flax_lrn's for one program shape"
    " (for a training step, of what the LRN adds to it); worst, median and"
    " best are over the shapes the peer runs.",
    "",
    *headline(records),
    "",
  ]
  for r in records:
    kernel = r.get("implementation", "xla")
    suffix = "" if kernel == "xla" else f", implementation='{kernel}'"
    out += [f"#### {r['shape_name']} {r['dtype']} {r['mode']}{suffix}", ""]
    out += [*shapes_table(r), ""]
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
