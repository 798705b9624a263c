"""Interleaved timing: every candidate once per round, in a fresh order.

A figure (a candidate's median, or a training step's median paired
difference with its twin without the LRN) gets more rounds while its 95%
interval is wide: one noisy program, a step whose base is slow, would
otherwise decide a headline by chance.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# A slow candidate (PyTorch's backward takes seconds on a CPU) is warm after
# one run; the warm-up of each candidate stops once it has taken this long.
WARMUP_BUDGET_S = 2.0

Key = tuple[str, str]


@dataclasses.dataclass
class Candidate:
  """One timed callable: ``call`` enqueues a run, ``sync`` waits for it."""

  key: Key
  call: Callable[[], Any]
  sync: Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class Figure:
  """What one reported time is the median of.

  Attributes:
    key: the candidate timed.
    base: its twin without the LRN, for a training step: the figure is
      then the per-round difference, what the LRN adds.
  """

  key: Key
  base: Key | None = None

  def timed(self) -> tuple[Key, ...]:
    return (self.key,) if self.base is None else (self.key, self.base)

  def values(self, samples: dict[Key, list[float]]) -> list[float]:
    if self.base is None:
      return samples[self.key]
    return _differences(samples[self.key], samples[self.base])


def _differences(with_: Sequence[float], without: Sequence[float]):
  """Per-round differences of two candidates timed in the same rounds."""
  return [a - b for a, b in zip(with_, without, strict=True)]


def median_interval(
  values: Sequence[float], confidence: float = 0.95
) -> tuple[float, float] | None:
  """A distribution-free interval for the median, from order statistics.

  ``[v_(j), v_(n+1-j)]`` of the sorted values holds the median with
  probability ``1 - 2 P(B < j)``, ``B ~ Binomial(n, 1/2)``; ``j`` is the
  largest that keeps that at least ``confidence``.

  Returns:
    ``(low, high)``, or None when there are too few values (fewer than 6
    for 95%).
  """
  v = sorted(values)
  n = len(v)
  tail = (1.0 - confidence) / 2
  below, j = 0.0, 0  # below = P(B < j)
  while j < n // 2:
    step = math.comb(n, j) / 2.0**n
    if below + step > tail:
      break
    below += step
    j += 1
  if j == 0:
    return None
  return v[j - 1], v[n - j]


def imprecision(values: Sequence[float]) -> float:
  """Half the width of the median's 95% interval, over the median's size.

  ``inf`` where the interval is undefined or the median is 0.
  """
  interval = median_interval(values)
  median = abs(statistics.median(values)) if values else 0.0
  if interval is None or median == 0.0:
    return math.inf
  return (interval[1] - interval[0]) / (2.0 * median)


def summary(samples_ms: Sequence[float]) -> dict[str, Any]:
  ms = sorted(samples_ms)
  quartiles = (
    statistics.quantiles(ms, n=4, method="inclusive")
    if len(ms) > 1
    else [ms[0]] * 3
  )
  interval = median_interval(ms)
  return {
    "median": statistics.median(ms),
    "p25": quartiles[0],
    "p75": quartiles[2],
    "min": ms[0],
    "n": len(ms),
    "ci95": None if interval is None else list(interval),
  }


def _round(candidates, inner, rng, samples) -> None:
  """Runs each candidate once, in a random order, the collector off."""
  was_enabled = gc.isenabled()
  gc.collect()
  gc.disable()
  try:
    for i in rng.permutation(len(candidates)):
      c = candidates[i]
      start = time.perf_counter()
      for _ in range(inner):
        out = c.call()
      c.sync(out)
      samples[c.key].append(1e3 * (time.perf_counter() - start) / inner)
      del out
  finally:
    if was_enabled:
      gc.enable()


def time_interleaved(
  candidates: Sequence[Candidate],
  repeats: int,
  warmup: int,
  inner: int = 1,
  seed: int = 0,
) -> dict[Key, list[float]]:
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
  samples: dict[Key, list[float]] = {c.key: [] for c in candidates}
  rng = np.random.default_rng(seed)
  for _ in range(repeats):
    _round(candidates, inner, rng, samples)
  return samples


def unsettled(
  figures: Sequence[Figure],
  samples: dict[Key, list[float]],
  precision: float,
  max_rounds: int,
) -> list[Figure]:
  """The figures whose median is not yet known to within ``precision``.

  A figure that has ``max_rounds`` samples counts as settled.
  """
  return [
    f
    for f in figures
    if len(samples[f.key]) < max_rounds
    and imprecision(f.values(samples)) > precision
  ]


def extend(
  candidates: Sequence[Candidate],
  figures: Sequence[Figure],
  samples: dict[Key, list[float]],
  precision: float,
  max_rounds: int,
  budget_s: float,
  inner: int = 1,
  seed: int = 0,
) -> int:
  """More rounds for the candidates behind the unsettled figures.

  Each round interleaves, in a fresh order, the candidates of every figure
  still unsettled (a step and its twin together, so their samples stay
  paired), until none is, or ``budget_s`` has passed.

  Args:
    candidates: the timed candidates, ``samples``' keys.
    figures: what is reported.
    samples: the rounds so far (appended to).
    precision: the half-width of a figure's 95% interval, over its median,
      at which it is settled.
    max_rounds: the most samples any figure gets.
    budget_s: the time the extra rounds may take (one more round may start
      before it runs out).
    inner: as in :func:`time_interleaved`.
    seed: for the order of the rounds.

  Returns:
    The number of extra rounds run.
  """
  by_key = {c.key: c for c in candidates}
  rng = np.random.default_rng(seed + 1)
  deadline = time.perf_counter() + budget_s
  rounds = 0
  while time.perf_counter() < deadline:
    todo = unsettled(figures, samples, precision, max_rounds)
    if not todo:
      break
    keys = sorted({k for f in todo for k in f.timed()})
    _round([by_key[k] for k in keys], inner, rng, samples)
    rounds += 1
  return rounds


def paired_difference(
  with_: Sequence[float], without: Sequence[float]
) -> dict[str, Any]:
  """What one program adds to another, from samples of the same rounds.

  The median of the per-round differences: a slow round slows both
  programs, so pairing cancels drift that a difference of medians keeps.
  """
  return summary(_differences(with_, without))
