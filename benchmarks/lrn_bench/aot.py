"""Compile-only builds for accelerators this machine does not have.

JAX compiles for an NVIDIA H100 (jax-cuda12-plugin and a device description)
or a TPU v5e (libtpu) without the device. The optimized programs tell how
many kernels each call form launches, how many bytes those kernels read and
write, and how much scratch memory XLA plans: evidence of the compiled
structure, not of speed (nothing runs).

Each accelerator needs its own environment, kept out of the project's
dependencies::

  python3 -m venv .venv-gpu && .venv-gpu/bin/pip install "jax[cuda12]==0.10.2" flax
  .venv-gpu/bin/pip install --no-deps -e .
  JAX_PLATFORMS=cpu .venv-gpu/bin/python -m benchmarks.lrn_bench.aot --target h100

  python3 -m venv .venv-tpu && .venv-tpu/bin/pip install "jax[tpu]==0.10.2" flax
  .venv-tpu/bin/pip install --no-deps -e .
  .venv-tpu/bin/python -m benchmarks.lrn_bench.aot --target tpu_v5e
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from . import config, programs

HERE = pathlib.Path(__file__).resolve().parent
TARGETS = {
  "h100": "NVIDIA H100 SXM (compiled, not run)",
  "tpu_v5e": "TPU v5e, one chip of a 2x2 slice (compiled, not run)",
}
# Instructions that launch no kernel and move no bytes of their own.
_FREE = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast"}
_DTYPE_BYTES = {
  "f64": 8, "s64": 8, "u64": 8,
  "f32": 4, "s32": 4, "u32": 4,
  "bf16": 2, "f16": 2, "s16": 2, "u16": 2,
  "s8": 1, "u8": 1, "pred": 1,
}  # fmt: skip
_INSTR = re.compile(r"^\s*(?:ROOT )?%(\S+) = (.+?) ([\w-]+)\((.*)$")
_ARRAY = re.compile(r"\b(" + "|".join(_DTYPE_BYTES) + r")\[([\d,]*)\]")


def mesh(target: str):
  """A one-axis mesh over the compile-only devices of ``target``."""
  from jax.experimental import topologies

  if target == "h100":
    cfg = (HERE / "h100_sxm.txtpb").read_text()
    topo = topologies.get_topology_desc(
      platform="cuda", target_config=cfg, topology="1x1x1"
    )
  else:
    # The smallest TPU v5e topology is one host's 2x2 chips.
    topo = topologies.get_topology_desc(topology_name="v5e:2x2", platform="tpu")
  return topologies.make_mesh(topo, (len(topo.devices),), ("batch",))


def _nbytes(type_text: str) -> int:
  total = 0
  for dtype, dims in _ARRAY.findall(type_text):
    size = int(np.prod([int(d) for d in dims.split(",") if d])) if dims else 1
    total += size * _DTYPE_BYTES[dtype]
  return total


def kernel_stats(hlo_text: str) -> dict[str, Any]:
  """Kernels of the entry computation and the bytes they read and write.

  Each kernel counts its distinct operands and its outputs once: what the
  memory system must move at the least, whatever the kernel does inside.
  """
  entry = hlo_text[hlo_text.index("\nENTRY") :]
  sizes: dict[str, int] = {}
  kernels: list[str] = []
  moved = 0
  for line in entry.splitlines():
    m = _INSTR.match(line)
    if not m:
      continue
    name, type_text, op, rest = m.groups()
    sizes[name] = _nbytes(type_text)
    if op in _FREE:
      continue
    operands = dict.fromkeys(re.findall(r"%([\w.-]+)", rest.split("), ")[0]))
    moved += sizes[name] + sum(sizes.get(o, 0) for o in operands)
    kernels.append(op)
  return {"kernels": len(kernels), "bytes": moved, "ops": kernels}


def program_stats(compiled) -> dict[str, Any]:
  """Kernels, bytes moved (``kernel_stats``) and scratch of a compiled program."""
  stats = kernel_stats(compiled.as_text())
  memory = compiled.memory_analysis()
  stats["scratch"] = None if memory is None else memory.temp_size_in_bytes
  return stats


def over_input(
  stats: dict[str, dict[str, Any]], x_bytes: int
) -> dict[str, dict[str, Any]]:
  """Each program's figures over the input's bytes.

  A training step ``name`` compiled beside ``name_base`` (the same step
  without the LRN) reports what the LRN adds: the difference of the two.
  """
  out: dict[str, Any] = {}
  for name, s in stats.items():
    if name.endswith("_base"):
      continue
    base = stats.get(f"{name}_base")
    kernels, moved, scratch = s["kernels"], s["bytes"], s["scratch"]
    if base is not None:
      kernels -= base["kernels"]
      moved -= base["bytes"]
      scratch = None if scratch is None else scratch - base["scratch"]
    out[name] = {
      "kernels": kernels,
      "bytes_over_x": moved / x_bytes,
      "scratch_over_x": None if scratch is None else scratch / x_bytes,
    }
  return out


def measure(
  target: str, shape, dtype: str, mode: str, implementation: str = "xla"
) -> dict[str, Any]:
  """Every call form of one configuration, per device, over the f32 input's bytes.

  The batch is split over the slice's devices, so each compiles the program
  for one ``shape`` shard, and the figures are per device. ``implementation``
  names flax_lrn's kernel.
  """
  m = mesh(target)
  n = len(m.devices.flat)
  jdtype = {"f32": jnp.float32, "bf16": jnp.bfloat16}[dtype]
  split = NamedSharding(m, P("batch"))
  whole = NamedSharding(m, P())
  x = jax.ShapeDtypeStruct((n * shape[0], *shape[1:]), jdtype, sharding=split)
  w, w2 = programs.step_weights(jax.random.key(0), shape[-1], jdtype)
  ws = [jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=whole) for a in (w, w2)]
  args = {"x": (x,), "xg": (x, x), "wwx": (*ws, x)}
  # Over the float32 input's bytes for every dtype, so that a bfloat16
  # program's figures compare with its float32 twin's.
  x_bytes = int(np.prod(shape)) * 4
  raw = {
    name: program_stats(jax.jit(fn).lower(*args[sig]).compile())
    for name, (fn, sig) in programs.programs(mode, implementation).items()
  }
  return over_input(raw, x_bytes)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--target", choices=sorted(TARGETS), required=True)
  parser.add_argument("--shape", default="alexnet_lrn1", choices=config.SHAPES)
  parser.add_argument("--dtypes", default="f32,bf16")
  parser.add_argument("--modes", default="across,within")
  parser.add_argument(
    "--implementations",
    default="xla",
    help="flax_lrn kernels, comma-separated; 'pallas' runs within channels"
    " only (its window cannot span the last axis)",
  )
  parser.add_argument(
    "--out", type=pathlib.Path, default=HERE.parent / "results" / "aot.json"
  )
  args = parser.parse_args(argv)
  shape = config.SHAPES[args.shape]
  rows = []
  for implementation in args.implementations.split(","):
    for dtype in args.dtypes.split(","):
      for mode in args.modes.split(","):
        if implementation == "pallas" and mode == "across":
          continue  # the window spans the last axis: not the kernel's
        forms = measure(args.target, shape, dtype, mode, implementation)
        rows.append(
          {"dtype": dtype, "mode": mode, "implementation": implementation,
           "forms": forms}
        )  # fmt: skip
        print(args.target, implementation, dtype, mode, json.dumps(forms))
  report = json.loads(args.out.read_text()) if args.out.exists() else {}
  report[args.target] = {
    "device": TARGETS[args.target],
    "jax": jax.__version__,
    "shape_name": args.shape,
    "shape": list(shape),
    "rows": rows,
  }
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(report, indent=1) + "\n")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
