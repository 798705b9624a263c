"""LRN across processes: a JAX distributed runtime of two CPU processes.

The sharding tests (test_sharding.py) split arrays over devices of one
process. Here two processes on localhost, each with two CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``), join one runtime
through ``jax.distributed.initialize`` with Gloo collectives, and build a
2 x 2 mesh whose first axis runs across the processes. Each process runs
tests/_multiprocess_worker.py: LRN forward and backward under ``jax.jit``
with the batch, a spatial axis (within-channel windows) or the channel axis
split across the processes, and the channel axis split over all four
devices. The test assembles the shards both processes hold and compares
them with the single-process result; it also checks that the compiled
programs exchange halos (``collective-permute``) where a window crosses a
process boundary, communicate nothing where none does, and never gather.

The processes are bounded in time and killed if either fails or hangs; the
coordinator listens on a free port of 127.0.0.1.

Runtime: about 20 s of CPU time on 2 cores.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from tests import _multiprocess_worker as worker

NUM_PROCESSES = 2
LOCAL_DEVICES = 2
TIMEOUT_S = 120
WORKER = Path(worker.__file__)
ROOT = WORKER.parent.parent


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _child_env() -> dict[str, str]:
  env = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("JAX_", "XLA_"))  # nothing inherited shapes JAX
  }
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={LOCAL_DEVICES}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
  )
  return env


def _run_processes(out_dir: Path) -> None:
  """Runs the workers to completion; kills them all if one fails or hangs."""
  port = _free_port()
  procs = [
    subprocess.Popen(
      [sys.executable, str(WORKER), str(port), str(i), str(NUM_PROCESSES),
       str(out_dir)],
      env=_child_env(),
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
    )
    for i in range(NUM_PROCESSES)
  ]  # fmt: skip
  deadline = time.monotonic() + TIMEOUT_S
  try:
    while any(p.poll() is None for p in procs):
      failed = [p for p in procs if p.poll() not in (None, 0)]
      if failed or time.monotonic() > deadline:
        break
      time.sleep(0.2)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
    logs = [p.communicate()[0].decode(errors="replace") for p in procs]
  for i, (p, log) in enumerate(zip(procs, logs, strict=True)):
    assert p.returncode == 0, (
      f"process {i} exited with {p.returncode} (killed after {TIMEOUT_S} s"
      f" if negative):\n{log[-3000:]}"
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> list[dict[str, np.ndarray]]:
  out_dir = tmp_path_factory.mktemp("multiprocess")
  _run_processes(out_dir)
  return [
    dict(np.load(out_dir / f"process_{i}.npz")) for i in range(NUM_PROCESSES)
  ]


def _assemble(results, name: str, what: str) -> np.ndarray:
  """The global array from the shards every process wrote."""
  full = np.full(worker.SHAPE, np.nan, np.float32)
  for arrays in results:
    n = 0
    while f"{name}.{what}.{n}" in arrays:
      index = tuple(slice(*b) for b in arrays[f"{name}.{what}.{n}.index"])
      full[index] = arrays[f"{name}.{what}.{n}"]
      n += 1
  assert not np.isnan(full).any(), "the processes' shards leave a gap"
  return full


def test_runtime_spans_processes(results):
  for process, arrays in enumerate(results):
    runtime = json.loads(str(arrays["report"]))["runtime"]
    assert runtime == {
      "process_count": NUM_PROCESSES,
      "device_count": NUM_PROCESSES * LOCAL_DEVICES,
      "local_device_count": LOCAL_DEVICES,
      # Row i of the mesh ("proc" = i) holds process i's devices.
      "mesh_processes": [[i] for i in range(NUM_PROCESSES)],
    }, (process, runtime)


@pytest.mark.parametrize(
  ("name", "mode", "window", "spec"),
  worker.CASES,
  ids=[c[0] for c in worker.CASES],
)
def test_multiprocess_matches_single_process(results, name, mode, window, spec):
  x, g = worker.inputs()
  fn = worker.lrn_fn(mode, window)
  y_want = jax.jit(fn)(x)
  dx_want = jax.jit(lambda x, g: jax.vjp(fn, x)[1](g)[0])(x, g)
  # The per-shard programs may fuse and order the sums differently.
  np.testing.assert_allclose(
    _assemble(results, name, "y"), y_want, rtol=1e-6, atol=1e-7
  )
  np.testing.assert_allclose(
    _assemble(results, name, "dx"), dx_want, rtol=1e-6, atol=1e-6
  )

  windowed = (3,) if mode == "across_channels" else (1, 2)
  crosses = any(spec[a] is not None for a in windowed if a < len(spec))
  for process, arrays in enumerate(results):
    report = json.loads(str(arrays["report"]))[name]
    for pass_, counts in report.items():
      what = f"process {process}, {pass_}: {counts}"
      gathers = {
        c: n for c, n in counts.items() if n and c != "collective-permute"
      }
      assert not gathers, what
      assert bool(counts["collective-permute"]) == crosses, what
