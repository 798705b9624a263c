"""Command line: ``python -m benchmarks.lrn_bench [run|render] ...``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import re
import sys
from collections.abc import Sequence

# JAX must not take most of a GPU's memory up front: PyTorch shares it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax

from . import config, environment, plot, report, run

RESULTS = pathlib.Path(__file__).resolve().parent.parent / "results"


def parse_shapes(text: str) -> dict[str, tuple[int, int, int, int]]:
  """Shape names, or ``NxHxWxC``, separated by commas."""
  known = {**config.SHAPES, **config.QUICK_SHAPES}
  shapes = {}
  for token in filter(None, text.split(",")):
    if token in known:
      shapes[token] = known[token]
    elif re.fullmatch(r"\d+x\d+x\d+x\d+", token):
      shapes[token] = tuple(int(d) for d in token.split("x"))
    else:
      raise argparse.ArgumentTypeError(
        f"unknown shape {token!r}: use one of {sorted(known)} or NxHxWxC"
      )
  return shapes


def _choices(allowed: Sequence[str]):
  def parse(text: str) -> list[str]:
    items = [t for t in text.split(",") if t]
    bad = [t for t in items if t not in allowed]
    if bad:
      raise argparse.ArgumentTypeError(f"{bad} not in {list(allowed)}")
    return items

  return parse


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
    prog="python -m benchmarks.lrn_bench",
    description="Times flax_lrn against TensorFlow, PyTorch and a floor.",
  )
  p.add_argument("command", nargs="?", default="run", choices=("run", "render"))
  p.add_argument("--shapes", type=parse_shapes, default=config.SHAPES)
  p.add_argument(
    "--dtypes", type=_choices(config.DTYPES), default=config.DTYPES
  )
  p.add_argument("--modes", type=_choices(config.MODES), default=config.MODES)
  p.add_argument(
    "--peers",
    type=_choices([*config.PEERS, "none"]),
    default=list(config.PEERS),
  )
  p.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument(
    "--precision",
    type=float,
    default=run.Settle.precision,
    help="a figure whose 95%% interval is wider than this fraction of its"
    " median either side gets more rounds",
  )
  p.add_argument(
    "--max-rounds",
    type=int,
    default=run.Settle.max_rounds,
    help="the most rounds any figure gets",
  )
  p.add_argument(
    "--settle-budget",
    type=float,
    default=run.Settle.budget_s,
    help="seconds the extra rounds of one configuration may take (0: none)",
  )
  p.add_argument("--inner", type=int, default=None, help="runs per sample")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
  p.add_argument(
    "--implementation",
    choices=("xla", "pallas"),
    default="xla",
    help="flax_lrn's kernel; 'pallas' takes windows that do not span the"
    " last axis (--modes within)",
  )
  p.add_argument("--out", type=pathlib.Path, default=RESULTS)
  p.add_argument(
    "--markdown", type=pathlib.Path, help="rewrite this file's results block"
  )
  p.add_argument(
    "--section",
    default="results",
    help="the name in the <!-- BEGIN name --> markers that --markdown fills",
  )
  p.add_argument(
    "--quick", action="store_true", help="one small shape, 2 rounds"
  )
  return p


def _device(choice: str):
  gpus = [d for d in jax.devices() if d.platform == "gpu"]
  if choice == "gpu" and not gpus:
    raise SystemExit("--device gpu: JAX sees no GPU")
  if choice == "cpu" or not gpus:
    return jax.devices("cpu")[0]
  return gpus[0]


def _render(
  out: pathlib.Path, markdown: pathlib.Path | None, section: str
) -> str:
  data = json.loads((out / "results.json").read_text())
  aot_path = out / "aot.json"
  aot = json.loads(aot_path.read_text()) if aot_path.exists() else None
  body = report.render(data, aot)
  (out / "results.md").write_text(body)
  if markdown is not None:
    report.update_markdown(markdown, body, section)
  return body


def main(argv: Sequence[str] | None = None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  args = parser.parse_args(argv)
  if args.repeats < 1 or args.warmup < 0:
    parser.error("--repeats must be >= 1 and --warmup >= 0")
  if args.precision <= 0 or args.settle_budget < 0:
    parser.error("--precision must be > 0 and --settle-budget >= 0")
  if args.command == "render":
    print(_render(args.out, args.markdown, args.section))
    return 0
  if args.implementation == "pallas" and "across" in args.modes:
    parser.error(
      "--implementation pallas: the window spans the last axis"
      " across channels; use --modes within"
    )
  if args.quick:
    args.shapes = args.shapes if "--shapes" in argv else config.QUICK_SHAPES
    args.repeats = 2 if "--repeats" not in argv else args.repeats
    if "--settle-budget" not in argv:
      args.settle_budget = 0.0
    args.out = args.out / "quick" if "--out" not in argv else args.out
  peers = [p for p in args.peers if p != "none"]
  device = _device(args.device)
  gpu = device.platform == "gpu"
  inner = args.inner or (20 if gpu else 1)
  settle = run.Settle(
    args.precision, max(args.max_rounds, args.repeats), args.settle_budget
  )
  meta = environment.metadata(
    argv, device, peers, repeats=args.repeats, warmup=args.warmup,
    inner=inner, settle=dataclasses.asdict(settle),
  )  # fmt: skip
  records = []
  for name, shape in args.shapes.items():
    for dtype in args.dtypes:
      for mode in args.modes:
        cfg = config.Config(name, shape, dtype, mode, args.implementation)
        print(f"== {cfg.label} {list(shape)}", flush=True)
        rec = run.run_config(
          cfg, peers, device, gpu, args.repeats, args.warmup, inner,
          args.seed, settle,
        )  # fmt: skip
        records.append(rec)
        print(
          report.headline([rec])[-1] if rec["dtype"] == "f32" else "",
          flush=True,
        )
  run.cross_dtype_ratios(records)
  args.out.mkdir(parents=True, exist_ok=True)
  data = {"meta": meta, "results": records}
  (args.out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
  print(_render(args.out, args.markdown, args.section))
  plot.plot(data, args.out / "lrn_benchmark.png")
  return (
    1 if any(not c["ok"] for r in records for c in r["checks"].values()) else 0
  )
