"""One process of tests/test_multiprocess.py; not a test module itself.

Usage::

  python tests/_multiprocess_worker.py PORT PROCESS_ID NUM_PROCESSES OUT_DIR

Joins a JAX distributed runtime whose coordinator listens on
``127.0.0.1:PORT`` (process 0 runs it), with CPU collectives over Gloo and
the local device count that ``XLA_FLAGS`` sets. On a mesh whose first axis
runs across the processes, it runs LRN forward and backward with the batch,
a spatial or the channel axis split, and writes the shards it holds and the
collectives each compiled program contains to
``OUT_DIR/process_<PROCESS_ID>.npz``.
"""

from __future__ import annotations

import functools
import json
import re
import sys

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import flax_lrn

# NHWC input, shared with the test through its import of this module.
SHAPE = (4, 8, 6, 16)
HYPER = dict(alpha=1.0, beta=0.75, k=1.0)
# (name, mode, window, spec): "proc" runs across processes, "local" across
# each process's own devices.
CASES = (
  ("batch", "across_channels", 5, P("proc")),
  ("spatial", "within_channel", (2, 1), P(None, "proc")),
  ("channel", "across_channels", 5, P(None, None, None, "proc")),
  ("batch-channel", "across_channels", 4, P("local", None, None, "proc")),
  (
    "channel-both",
    "across_channels",
    3,
    P(None, None, None, ("proc", "local")),
  ),
)
COLLECTIVES = (
  "collective-permute",
  "all-gather",
  "all-to-all",
  "all-reduce",
  "reduce-scatter",
)


def inputs() -> tuple[np.ndarray, np.ndarray]:
  """The global input and cotangent, the same in every process."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=SHAPE).astype(np.float32)
  g = rng.normal(size=SHAPE).astype(np.float32)
  return x, g


def lrn_fn(mode: str, window):
  """The LRN of one case, as a function of the input alone."""
  return functools.partial(flax_lrn.lrn, window=window, mode=mode, **HYPER)


def _collectives(hlo: str) -> dict[str, int]:
  return {c: len(re.findall(rf"\b{c}(?:-start)?\(", hlo)) for c in COLLECTIVES}


def main(port: int, process_id: int, num_processes: int, out_dir: str) -> None:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{port}",
    num_processes=num_processes,
    process_id=process_id,
    initialization_timeout=60,
  )
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  local = jax.local_device_count()
  mesh = jax.sharding.Mesh(
    np.array(devices).reshape(num_processes, local), ("proc", "local")
  )
  x, g = inputs()
  results: dict[str, np.ndarray] = {}
  report: dict[str, dict] = {}
  for name, mode, window, spec in CASES:
    fn = lrn_fn(mode, window)
    sharding = NamedSharding(mesh, spec)
    xs, gs = (
      jax.make_array_from_callback(SHAPE, sharding, lambda i, a=a: a[i])
      for a in (x, g)
    )
    fwd = jax.jit(fn).lower(xs).compile()
    bwd = jax.jit(lambda x, g, fn=fn: jax.vjp(fn, x)[1](g)[0])
    bwd = bwd.lower(xs, gs).compile()
    report[name] = {
      "forward": _collectives(fwd.as_text()),
      "backward": _collectives(bwd.as_text()),
    }
    for what, out in (("y", fwd(xs)), ("dx", bwd(xs, gs))):
      for n, shard in enumerate(out.addressable_shards):
        key = f"{name}.{what}.{n}"
        results[key] = np.asarray(shard.data)
        results[f"{key}.index"] = np.array(
          [
            (s.start or 0, SHAPE[a] if s.stop is None else s.stop)
            for a, s in enumerate(shard.index)
          ]
        )
  report["runtime"] = {
    "process_count": jax.process_count(),
    "device_count": jax.device_count(),
    "local_device_count": local,
    "mesh_processes": [
      sorted({d.process_index for d in row}) for row in mesh.devices
    ],
  }
  results["report"] = np.array(json.dumps(report))
  np.savez(f"{out_dir}/process_{process_id}.npz", **results)
  jax.distributed.shutdown()


if __name__ == "__main__":
  port, process_id, num_processes = (int(a) for a in sys.argv[1:4])
  main(port, process_id, num_processes, sys.argv[4])
