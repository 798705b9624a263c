"""One configuration: compile, check every peer against flax_lrn, time."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import aot, config, peers, programs, timing


@dataclasses.dataclass(frozen=True)
class Settle:
  """When a figure's median is precise enough to stop timing it.

  Attributes:
    precision: the half-width of its 95% interval over the median.
    max_rounds: the most rounds any figure gets.
    budget_s: the time the extra rounds of one configuration may take.
  """

  precision: float = 0.1
  max_rounds: int = 60
  budget_s: float = 300.0


def arrays_for(cfg: config.Config, scale: float = 1.0) -> dict[str, np.ndarray]:
  """NHWC input ``x``, cotangent ``g``, HWIO weights ``w``, ``v`` (seed 0)."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal(cfg.shape, dtype=np.float32)
  g = rng.standard_normal(cfg.shape, dtype=np.float32)
  w, v = programs.step_weights(jax.random.key(0), cfg.shape[-1], jnp.float32)
  return {"x": scale * x, "g": g, "w": np.asarray(w), "v": np.asarray(v)}


class Ours:
  """flax_lrn's compiled programs (and the floor) for one configuration."""

  def __init__(self, cfg: config.Config, device):
    self.device = device
    self.dtype = {"f32": jnp.float32, "bf16": jnp.bfloat16}[cfg.dtype]
    self.fns = programs.programs(cfg.mode, cfg.implementation)
    self.compiled: dict[str, Any] = {}
    self.compile_s: dict[str, float] = {}

  def _args(self, arrays, signature: str):
    put = {
      k: jax.device_put(jnp.asarray(a, self.dtype), self.device)
      for k, a in arrays.items()
    }
    return {
      "x": (put["x"],),
      "xg": (put["x"], put["g"]),
      "wwx": (put["w"], put["v"], put["x"]),
    }[signature]

  def programs(self, arrays) -> dict[str, Any]:
    calls = {}
    for name, (fn, signature) in self.fns.items():
      args = self._args(arrays, signature)
      if name not in self.compiled:
        start = time.perf_counter()
        self.compiled[name] = jax.jit(fn).lower(*args).compile()
        self.compile_s[name] = time.perf_counter() - start
      calls[name] = _bind(self.compiled[name], args)
    return calls

  def fns_forms(self) -> list[str]:
    """The program shapes this configuration runs, in table order."""
    return [f for f in config.FORMS if f in self.fns]

  sync = staticmethod(jax.block_until_ready)

  @staticmethod
  def to_numpy(form: str, out) -> list[np.ndarray]:
    outs = out if isinstance(out, tuple) else (out,)
    return [np.asarray(a, np.float32) for a in outs]


def _bind(compiled, args):
  return lambda: compiled(*args)


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b))) / (float(np.max(np.abs(b))) or 1.0)


def _ratio(num: float | None, den: float | None) -> float | None:
  return None if num is None or den is None or den == 0 else num / den


def _check(cfg, ours_calls, ours, peer_calls, peer) -> dict[str, Any]:
  """Each form's outputs of a peer against flax_lrn's, on the check input."""
  errs = {}
  for form in ours_calls:
    if form not in peer_calls or form == "floor" or form.endswith("_base"):
      continue
    mine = ours.to_numpy(form, ours_calls[form]())
    theirs = peer.to_numpy(form, peer_calls[form]())
    errs[form] = max(_rel_err(a, b) for a, b in zip(theirs, mine, strict=True))
  bounds = {form: config.check_bound(form, cfg.dtype) for form in errs}
  ok = all(errs[f] <= bounds[f] for f in errs)
  if not ok:
    print(
      f"MISMATCH: a peer disagrees with flax_lrn on {cfg.label}: {errs}",
      file=sys.stderr,
      flush=True,
    )
  return {"errors": errs, "bounds": bounds, "ok": ok}


def run_config(
  cfg: config.Config,
  peer_names: Sequence[str],
  device,
  gpu: bool,
  repeats: int,
  warmup: int,
  inner: int,
  seed: int,
  settle: Settle | None = None,
) -> dict[str, Any]:
  """Checks and times one configuration; returns its record for the JSON.

  After ``repeats`` rounds of every candidate, ``settle`` gives the figures
  whose median is still imprecise more rounds (see ``timing.extend``).
  """
  ours = Ours(cfg, device)
  check = arrays_for(cfg, config.CHECK_SCALE)
  ours_check = ours.programs(check)
  record: dict[str, Any] = {
    "shape_name": cfg.shape_name,
    "shape": list(cfg.shape),
    "dtype": cfg.dtype,
    "mode": cfg.mode,
    "implementation": cfg.implementation,
    "peers": {},
    "checks": {},
  }
  impls: dict[str, Any] = {}
  for name in peer_names:
    try:
      peer = peers.make(name, cfg, gpu)
    except peers.Unavailable as e:
      record["peers"][name] = f"n/a: {e}"
      continue
    record["peers"][name] = "ok"
    record["checks"][name] = _check(
      cfg, ours_check, ours, peer.programs(check), peer
    )
    impls[name] = peer
  del ours_check

  data = arrays_for(cfg)
  candidates = []
  for name, impl in {"ours": ours, **impls}.items():
    for form, call in impl.programs(data).items():
      impl_name = "floor" if form == "floor" else name
      form = "fwd" if form == "floor" else form
      candidates.append(timing.Candidate((impl_name, form), call, impl.sync))
  samples = timing.time_interleaved(candidates, repeats, warmup, inner, seed)
  if settle is not None and settle.budget_s > 0:
    figures = [
      timing.Figure(key, (key[0], f"{key[1]}_base"))
      if key[1] in config.STEPS
      else timing.Figure(key)
      for key in samples
      if not key[1].endswith("_base")
    ]
    record["extra_rounds"] = timing.extend(
      candidates, figures, samples, settle.precision, settle.max_rounds,
      settle.budget_s, inner, seed,
    )  # fmt: skip

  times: dict[str, dict[str, Any]] = {f: {} for f in ours.fns_forms()}
  totals: dict[str, dict[str, Any]] = {
    f: {} for f in ours.fns_forms() if f in config.STEPS
  }
  for (impl_name, form), s in samples.items():
    if form.endswith("_base"):
      continue
    if form in config.STEPS:
      base = samples[(impl_name, f"{form}_base")]
      times[form][impl_name] = timing.paired_difference(s, base)
      totals[form][impl_name] = {
        "with": timing.summary(s),
        "without": timing.summary(base),
      }
    else:
      times[form][impl_name] = timing.summary(s)
  record["times_ms"] = times
  record["step_totals_ms"] = totals
  record["compile_s"] = ours.compile_s
  record.update(_structure(ours, cfg))
  record["ratios"] = _ratios(times, record)
  return record


def _structure(ours: Ours, cfg: config.Config) -> dict[str, Any]:
  """Kernels, bytes moved and scratch of flax_lrn's compiled programs."""
  x_bytes = int(np.prod(cfg.shape)) * jnp.dtype(ours.dtype).itemsize
  stats = aot.over_input(
    {name: aot.program_stats(c) for name, c in ours.compiled.items()}, x_bytes
  )
  forms = ours.fns_forms()
  return {
    "kernels": {f: stats[f]["kernels"] for f in forms},
    "bytes_over_x": {f: stats[f]["bytes_over_x"] for f in forms},
    "scratch_over_x": {f: stats[f]["scratch_over_x"] for f in forms},
    "input_bytes": x_bytes,
  }


def _ratios(times, record) -> dict[str, float | None]:
  def med(form: str, impl: str) -> float | None:
    return times[form].get(impl, {}).get("median")

  ratios: dict[str, float | None] = {}
  for form in times:
    for peer in config.PEERS:
      ratios[f"{form}_{peer}_over_ours"] = _ratio(
        med(form, peer), med(form, "ours")
      )
  ratios["fwd_ours_over_floor"] = _ratio(
    med("fwd", "ours"), med("fwd", "floor")
  )
  return ratios


def cross_dtype_ratios(records: Sequence[dict[str, Any]]) -> None:
  """Adds bf16/f32 ratios to each bf16 record that has an f32 twin."""
  f32 = {
    (r["shape_name"], r["mode"]): r for r in records if r["dtype"] == "f32"
  }
  for r in records:
    twin = f32.get((r["shape_name"], r["mode"]))
    if r["dtype"] == "bf16" and twin is not None:
      for form in r["times_ms"]:
        r["ratios"][f"{form}_bf16_over_f32"] = _ratio(
          r["times_ms"][form]["ours"]["median"],
          twin["times_ms"][form]["ours"]["median"],
        )
