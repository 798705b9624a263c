"""Interleaved timing: every candidate once per round, in a fresh order."""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# A slow candidate (PyTorch's backward takes seconds on a CPU) is warm after
# one run; the warm-up of each candidate stops once it has taken this long.
WARMUP_BUDGET_S = 2.0


@dataclasses.dataclass
class Candidate:
  """One timed callable: ``call`` enqueues a run, ``sync`` waits for it."""

  key: tuple[str, str]
  call: Callable[[], Any]
  sync: Callable[[Any], Any]


def summary(samples_ms: Sequence[float]) -> dict[str, float]:
  ms = sorted(samples_ms)
  quartiles = (
    statistics.quantiles(ms, n=4, method="inclusive")
    if len(ms) > 1
    else [ms[0]] * 3
  )
  return {
    "median": statistics.median(ms),
    "p25": quartiles[0],
    "p75": quartiles[2],
    "min": ms[0],
    "n": len(ms),
  }


def time_interleaved(
  candidates: Sequence[Candidate],
  repeats: int,
  warmup: int,
  inner: int = 1,
  seed: int = 0,
) -> dict[tuple[str, str], list[float]]:
  """Times ``repeats`` rounds, each running every candidate once.

  A fresh random order each round spreads background load and any thread
  pool still spinning from the previous candidate over all of them alike.
  Each run blocks on its result; the garbage collector is off while timing.

  Args:
    candidates: what to time.
    repeats: the number of rounds.
    warmup: untimed runs of each candidate first (fewer, but at least one,
      once they have taken ``WARMUP_BUDGET_S``).
    inner: runs per sample before one sync (for a GPU, where one launch is
      too short to time alone); the sample is their mean.
    seed: for the order of the rounds.

  Returns:
    ``{key: samples}``, the samples in ms in round order, so that samples
    of the same round can be paired.
  """
  for c in candidates:
    start = time.perf_counter()
    for i in range(warmup):
      if i and time.perf_counter() - start > WARMUP_BUDGET_S:
        break
      c.sync(c.call())
  samples: dict[tuple[str, str], list[float]] = {c.key: [] for c in candidates}
  rng = np.random.default_rng(seed)
  was_enabled = gc.isenabled()
  try:
    for _ in range(repeats):
      gc.collect()
      gc.disable()
      for i in rng.permutation(len(candidates)):
        c = candidates[i]
        start = time.perf_counter()
        for _ in range(inner):
          out = c.call()
        c.sync(out)
        samples[c.key].append(1e3 * (time.perf_counter() - start) / inner)
        del out
      gc.enable()
  finally:
    if was_enabled:
      gc.enable()
  return samples


def paired_difference(
  with_: Sequence[float], without: Sequence[float]
) -> dict[str, float]:
  """What one program adds to another, from samples of the same rounds.

  The median of the per-round differences: a slow round slows both
  programs, so pairing cancels drift that a difference of medians keeps.
  """
  return summary([a - b for a, b in zip(with_, without, strict=True)])
