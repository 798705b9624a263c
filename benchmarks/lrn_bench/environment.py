"""What a result depends on: machine, versions, threads, command, commit."""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import os
import pathlib
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

import flax_lrn

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cpu_model() -> str:
  try:
    text = pathlib.Path("/proc/cpuinfo").read_text()
  except OSError:
    return platform.processor() or platform.machine()
  m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
  return m.group(1).strip() if m else platform.machine()


def _memory_gib() -> float | None:
  try:
    text = pathlib.Path("/proc/meminfo").read_text()
  except OSError:
    return None
  m = re.search(r"^MemTotal:\s*(\d+) kB", text, re.M)
  return round(int(m.group(1)) / 2**20, 1) if m else None


def _version(dist: str) -> str | None:
  try:
    return importlib.metadata.version(dist)
  except importlib.metadata.PackageNotFoundError:
    return None


def _git() -> str:
  def git(*args: str) -> str:
    return subprocess.run(
      ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()

  try:
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "flax_lrn")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return head + (" (flax_lrn/ modified)" if dirty else "")


def _threads(peers: Sequence[str]) -> dict[str, Any]:
  threads: dict[str, Any] = {
    "os.cpu_count()": os.cpu_count(),
    "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") or "unset",
  }
  if "torch" in peers and importlib.util.find_spec("torch"):
    import torch

    threads["torch threads"] = torch.get_num_threads()
  if "tf" in peers and importlib.util.find_spec("tensorflow"):
    import tensorflow as tf

    # 0 means TensorFlow's default, one thread per core.
    threads["tf intra_op"] = (
      tf.config.threading.get_intra_op_parallelism_threads()
    )
  return threads


def allocator() -> dict[str, str]:
  """The environment variables that change how the C allocator works.

  XLA:CPU allocates a program's buffers anew at every call, and glibc maps
  an allocation of more than 32 MiB fresh from the kernel, whose pages then
  fault in one by one: these settings change what an array that size costs.
  """
  return {
    k: v
    for k, v in sorted(os.environ.items())
    if k.startswith("MALLOC_") or k == "LD_PRELOAD"
  }


def metadata(argv: Sequence[str], device, peers: Sequence[str], **run) -> dict:
  """The machine, versions and settings of a run, for its JSON."""
  gpu = device.platform == "gpu"
  exe = os.path.relpath(sys.executable) if sys.executable else "python"
  alloc = allocator()
  env = [f"{k}={v}" for k, v in alloc.items()]
  return {
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "command": shlex.join([*env, exe, "-m", "benchmarks.lrn_bench", *argv]),
    "git": _git(),
    "python": platform.python_version(),
    "platform": platform.platform(),
    "cpu": {"model": cpu_model(), "count": os.cpu_count()},
    "memory_gib": _memory_gib(),
    "device": device.device_kind if gpu else f"CPU ({cpu_model()})",
    "gpu": gpu,
    "versions": {
      "flax_lrn": flax_lrn.__version__,
      "jax": jax.__version__,
      "jaxlib": _version("jaxlib"),
      "flax": _version("flax"),
      "numpy": np.__version__,
      "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
      "torch": _version("torch"),
    },
    "threads": _threads(peers),
    "allocator": alloc,
    **run,
  }
