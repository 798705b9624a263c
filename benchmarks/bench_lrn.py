"""Times flax_lrn against TensorFlow, PyTorch and a memory-bound floor.

LRN is memory-bound: the least a forward pass can do is read ``x`` once and
write ``y`` once. This script times, in one process, flax_lrn's forward and
forward+backward passes beside the peers a user would pick instead, and the
floor, and reports ratios of medians measured side by side (the only figures
that mean anything on a noisy machine).

Usage (from the repository root)::

  .venv/bin/python benchmarks/bench_lrn.py                  # the full run
  .venv/bin/python benchmarks/bench_lrn.py --quick          # a smoke test
  .venv/bin/python benchmarks/bench_lrn.py --shapes alexnet_lrn1 8x27x27x64 \
      --dtypes f32 --modes across --peers torch --repeats 5

It writes ``results.json``, ``results.md`` (the markdown tables, also
printed) and ``lrn_benchmark.png`` to ``--out``; ``--markdown BENCHMARKS.md``
also replaces the section of that file between ``<!-- BEGIN results -->``
and ``<!-- END results -->`` with the tables.

Definitions (constants: depth radius 2, i.e. n = 5, k = 2, alpha = 1e-4,
beta = 0.75; input ``x`` standard normal, NHWC, seed 0):

* **forward**, across channels:

  - flax_lrn: ``jax.jit(lambda x: flax_lrn.lrn(x, (2, 2), alpha=1e-4,
    beta=0.75, k=2.0))`` on NHWC.
  - TensorFlow: ``tf.function(lambda x: tf.nn.local_response_normalization(
    x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75))`` on NHWC, TF's
    native layout.
  - PyTorch: ``F.local_response_norm(x, 5, alpha=5e-4, beta=0.75, k=2.0)``
    under ``torch.no_grad()`` on a contiguous NCHW tensor, as its users run
    it (PyTorch divides alpha by n, so ``alpha = n * 1e-4`` is the same
    maths).

* **forward+backward**: the output *and* the input gradient for a fixed
  random cotangent ``g``: JAX ``jax.jit(lambda x, g: (y, vjp(g)))``; TF a
  ``tf.function`` with a ``GradientTape`` and ``output_gradients=g``
  returning ``(y, dx)``; PyTorch ``y = f(x); y.backward(g)`` reading
  ``x.grad`` (reset to ``None`` before each run).

* **within-channel** (Caffe's ``WITHIN_CHANNEL``: a 5 x 5 window, k = 1,
  alpha divided by 25): flax_lrn ``lrn(x, 5, mode="within_channel",
  alpha_scaling="size", k=1.0)`` on NHWC against PyTorch's composition on
  NCHW, ``x * (1 + alpha * F.avg_pool2d(x * x, 5, stride=1, padding=2,
  count_include_pad=True)) ** -beta``. TensorFlow has no within-channel LRN.

* **floor**: ``jax.jit(lambda x: x * 2.0)`` on the same tensor (one read,
  one write) for the forward; ``jax.jit(lambda x, g: (2 * x, 2 * g))`` (two
  reads, two writes, the least traffic of any forward+backward) for
  forward+backward.

* **timing**: each candidate is compiled/traced and run ``--warmup`` times
  (fewer, but at least once, after 2 s: PyTorch's slowest take seconds);
  then ``--repeats`` rounds each run every candidate once, in a fresh
  (seeded) random order, so background load and any thread pool still
  spinning from the previous candidate hit all of them alike. The figure is
  the median. Each run blocks on its result: ``jax.block_until_ready``,
  ``tf.test.experimental.sync_devices()`` (not ``.numpy()``, which copies
  the output), ``torch.cuda.synchronize()`` on a GPU (PyTorch's CPU ops are
  synchronous). The garbage collector is off while timing. Threading is
  left at each library's default, and recorded.

* **agreement**: before timing, every peer's output and input gradient are
  compared with flax_lrn's on ``30 * x`` (so that the alpha term is large
  enough to expose a wrong window or scaling). The error is
  ``max|a - b| / max|b|``; the limit is 1e-5 in float32 and
  ``4 * eps = 2 ** -5`` in bfloat16. A mismatch is flagged in the tables
  and makes the exit status 1.

* **memory**: ``jax.jit(fb).lower(x, g).compile().memory_analysis()
  .temp_size_in_bytes / x.nbytes``, XLA's scratch memory for
  forward+backward over the input's bytes. **compile time**: the wall time
  of ``jax.jit(f).lower(...).compile()`` of a fresh function.

* **bfloat16**: JAX and PyTorch take and return bfloat16; TensorFlow's CPU
  LRN kernel has no bfloat16 (reported "n/a"). The bf16 rows also time
  flax_lrn's float32 forward in the same rounds, for the bf16/f32 ratio.

* **bandwidth**: the device-to-device copy bandwidth, ``2 * nbytes / t``,
  is the faster of ``jax.jit(jnp.copy)`` and ``jax.jit(lambda x: x * 2.0)``
  on a large array (on a CPU, XLA's plain copy is the slower); flax_lrn's
  forward moves ``2 * x.nbytes`` and forward+backward at least
  ``4 * x.nbytes`` (read ``x``, ``g``; write ``y``, ``dx``). On a GPU
  (``--device gpu``, or ``auto`` when JAX sees one) the GPU targets are
  checked; on a CPU the CPU targets are.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

# JAX must not grab most of a GPU's memory up front: PyTorch shares it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax
import jax.numpy as jnp
import numpy as np

import flax_lrn

# AlexNet's LRN: depth radius 2 (n = 5), k = 2, alpha = 1e-4, beta = 0.75.
RADIUS = 2
SIZE = 2 * RADIUS + 1
ALPHA = 1e-4
BETA = 0.75
K = 2.0
# Caffe's WITHIN_CHANNEL hard-codes k = 1.
WITHIN_K = 1.0
# The agreement checks run on CHECK_SCALE * x, where alpha * sum(x**2) is
# ~0.5 against k = 2, so that a wrong window or alpha shows.
CHECK_SCALE = 30.0

SHAPES: dict[str, tuple[int, int, int, int]] = {
  "alexnet_lrn1": (32, 55, 55, 96),
  "alexnet_lrn2": (32, 27, 27, 256),
  "googlenet": (32, 56, 56, 192),
}
QUICK_SHAPES: dict[str, tuple[int, int, int, int]] = {
  "quick": (8, 27, 27, 64),
}
DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16}
DTYPE_ALIASES = {"float32": "f32", "bfloat16": "bf16"}
MODES = ("across", "within")
PEERS = {"tf": "tensorflow", "torch": "torch"}
PEER_ALIASES = {"tensorflow": "tf", "pytorch": "torch"}
# max|a - b| / max|b| allowed between a peer and flax_lrn.
CHECK_TOLERANCE = {"f32": 1e-5, "bf16": 4 * 2.0**-7}
# Implementations in table and plot order, with their labels.
IMPLS = ("ours", "tf", "torch", "floor")
IMPL_LABELS = {
  "ours": "flax_lrn",
  "tf": "TensorFlow",
  "torch": "PyTorch",
  "floor": "floor",
  "ours_f32": "flax_lrn f32",
}
PASSES = ("fwd", "fb")

# Issue 4's targets: (key, label, comparison, bound). CPU targets apply to
# each shape's float32 across-channel row ("bf16_fwd_over_f32_fwd" to its
# bfloat16 row); GPU targets to each float32 across-channel row.
CPU_TARGETS = (
  ("fwd_tf_over_ours", "fwd TF/ours", ">=", 1.25),
  ("fwd_ours_over_floor", "fwd ours/floor", "<=", 1.5),
  ("fb_tf_over_ours", "fb TF/ours", ">=", 2.5),
  ("fb_torch_over_ours", "fb torch/ours", ">=", 6.0),
  ("fb_temp_over_input", "fb temp / x bytes", "<=", 1.5),
  ("bf16_fwd_over_f32_fwd", "bf16 fwd / f32 fwd", "<", 1.0),
)
GPU_TARGETS = (
  ("fwd_copy_fraction", "fwd / copy bandwidth", ">=", 0.8),
  ("fb_copy_fraction", "fb / copy bandwidth", ">=", 0.6),
  ("fwd_torch_over_ours", "fwd torch/ours", ">", 1.0),
  ("fb_torch_over_ours", "fb torch/ours", ">", 1.0),
)
_COMPARE = {
  ">=": lambda a, b: a >= b,
  "<=": lambda a, b: a <= b,
  ">": lambda a, b: a > b,
  "<": lambda a, b: a < b,
}
RESULTS_BEGIN = "<!-- BEGIN results -->"
RESULTS_END = "<!-- END results -->"
WARMUP_BUDGET_S = 2.0
DEFAULT_OUT = pathlib.Path(__file__).resolve().parent / "results"


class Unavailable(Exception):
  """A peer that cannot run this configuration; the message says why."""


@dataclasses.dataclass(frozen=True)
class Config:
  """One row of the tables: a shape, a dtype and a mode."""

  shape_name: str
  shape: tuple[int, int, int, int]
  dtype: str
  mode: str


@dataclasses.dataclass
class Candidate:
  """One timed callable: ``call`` enqueues a run, ``sync`` waits for it."""

  impl: str
  kind: str
  call: Callable[[], Any]
  sync: Callable[[Any], Any]


# --------------------------------------------------------------------------
# Implementations. Each ``bind`` takes NHWC float32 NumPy arrays ``x`` and
# ``g`` and returns ``(fwd, fb)`` callables over device-resident copies;
# ``to_numpy`` turns their results back into NHWC float32 NumPy arrays.
# --------------------------------------------------------------------------


def _ours_fn(mode: str) -> Callable[[jax.Array], jax.Array]:
  if mode == "across":
    return lambda x: flax_lrn.lrn(
      x, (RADIUS, RADIUS), alpha=ALPHA, beta=BETA, k=K
    )
  return lambda x: flax_lrn.lrn(
    x,
    SIZE,
    alpha=ALPHA,
    beta=BETA,
    k=WITHIN_K,
    alpha_scaling="size",
    mode="within_channel",
  )


def _with_grad(f: Callable[[jax.Array], jax.Array]):
  def fb(x, g):
    y, vjp = jax.vjp(f, x)
    return y, vjp(g)[0]

  return fb


def _floor_fwd(x):
  return x * 2.0


def _floor_fb(x, g):
  return x * 2.0, g * 2.0


def _compile(fn, *args) -> tuple[Any, float]:
  """Compiles a fresh ``jax.jit(fn)``; returns it and the seconds it took."""
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  return compiled, time.perf_counter() - start


def _temp_bytes(compiled) -> int | None:
  try:
    stats = compiled.memory_analysis()
  except Exception:  # Not every backend implements it.
    return None
  return None if stats is None else int(stats.temp_size_in_bytes)


class JaxImpl:
  """A pair of compiled JAX functions (forward, forward+backward)."""

  def __init__(self, fwd, fb, dtype, device):
    self.fwd = fwd
    self.fb = fb
    self.dtype = dtype
    self.device = device

  def put(self, a: np.ndarray) -> jax.Array:
    return jax.device_put(jnp.asarray(a, self.dtype), self.device)

  def bind(self, x: np.ndarray, g: np.ndarray):
    xd, gd = self.put(x), self.put(g)
    return (lambda: self.fwd(xd)), (lambda: self.fb(xd, gd))

  sync = staticmethod(jax.block_until_ready)

  @staticmethod
  def to_numpy(a) -> np.ndarray:
    return np.asarray(a).astype(np.float32)


class TfImpl:
  """TensorFlow's LRN kernel (across channels only, NHWC)."""

  def __init__(self, mode: str, dtype: str, gpu: bool):
    if mode != "across":
      raise Unavailable("TensorFlow has no within-channel LRN")
    import tensorflow as tf

    self.tf = tf
    if gpu and not tf.config.list_physical_devices("GPU"):
      raise Unavailable("this TensorFlow sees no GPU")
    self.device = "/GPU:0" if gpu else "/CPU:0"
    self.dtype = {"f32": tf.float32, "bf16": tf.bfloat16}[dtype]

    def lrn(a):
      return tf.nn.local_response_normalization(
        a, depth_radius=RADIUS, bias=K, alpha=ALPHA, beta=BETA
      )

    def fb(a, g):
      with tf.GradientTape() as tape:
        tape.watch(a)
        y = lrn(a)
      return y, tape.gradient(y, a, output_gradients=g)

    self.fwd = tf.function(lrn)
    self.fb = tf.function(fb)
    # Probe once: the CPU kernel has no bfloat16, and the error only shows
    # when the op runs.
    try:
      with tf.device(self.device):
        probe = tf.zeros((1, 1, 1, SIZE), self.dtype)
        tf.nn.local_response_normalization(probe, RADIUS, K, ALPHA, BETA)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as e:
      raise Unavailable(
        f"TensorFlow's {self.device[1:4]} LRN kernel has no {dtype}"
      ) from e
    sync_devices = getattr(tf.test.experimental, "sync_devices", None)
    self._sync = sync_devices or (lambda: None)

  def bind(self, x: np.ndarray, g: np.ndarray):
    tf = self.tf
    with tf.device(self.device):
      xd = tf.cast(tf.constant(x), self.dtype)
      gd = tf.cast(tf.constant(g), self.dtype)

    def fwd():
      with tf.device(self.device):
        return self.fwd(xd)

    def fb():
      with tf.device(self.device):
        return self.fb(xd, gd)

    return fwd, fb

  def sync(self, _):
    self._sync()

  def to_numpy(self, a) -> np.ndarray:
    return self.tf.cast(a, self.tf.float32).numpy()


class TorchImpl:
  """PyTorch on contiguous NCHW tensors, on the CPU or a CUDA GPU."""

  def __init__(self, mode: str, dtype: str, gpu: bool):
    import torch
    import torch.nn.functional as F

    self.torch = torch
    if gpu and not torch.cuda.is_available():
      raise Unavailable("this PyTorch sees no CUDA GPU")
    self.device = torch.device("cuda" if gpu else "cpu")
    self.dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    if mode == "across":
      # PyTorch divides alpha by n: alpha * n is TensorFlow's alpha.
      self.f = lambda t: F.local_response_norm(
        t, SIZE, alpha=ALPHA * SIZE, beta=BETA, k=K
      )
    else:
      # Caffe's WITHIN_CHANNEL: the average pool divides by n * n.
      self.f = lambda t: (
        t
        * (
          WITHIN_K
          + ALPHA
          * F.avg_pool2d(
            t * t, SIZE, stride=1, padding=SIZE // 2, count_include_pad=True
          )
        )
        ** -BETA
      )

    # Probe once: some CPU kernels lack bfloat16 (avg_pool3d, which
    # local_response_norm uses).
    try:
      with torch.no_grad():
        self.f(
          torch.ones((1, SIZE, 2, 2), dtype=self.dtype, device=self.device)
        )
    except (RuntimeError, NotImplementedError) as e:
      reason = str(e).splitlines()[0] if str(e) else type(e).__name__
      raise Unavailable(
        f"PyTorch {self.device.type.upper()} has no {dtype} kernel ({reason})"
      ) from e

  def put(self, a: np.ndarray):
    nchw = np.ascontiguousarray(a.transpose(0, 3, 1, 2))
    t = self.torch.from_numpy(nchw).to(self.device, self.dtype)
    return t.contiguous()

  def bind(self, x: np.ndarray, g: np.ndarray):
    torch = self.torch
    xd, gd = self.put(x), self.put(g)
    leaf = xd.clone().requires_grad_()

    def fwd():
      with torch.no_grad():
        return self.f(xd)

    def fb():
      leaf.grad = None
      y = self.f(leaf)
      y.backward(gd)
      return y, leaf.grad

    return fwd, fb

  def sync(self, _):
    if self.device.type == "cuda":
      self.torch.cuda.synchronize()

  def to_numpy(self, a) -> np.ndarray:
    return a.detach().permute(0, 2, 3, 1).float().cpu().numpy()


def _make_peer(name: str, mode: str, dtype: str, gpu: bool):
  if importlib.util.find_spec(PEERS[name]) is None:
    raise Unavailable(f"{PEERS[name]} is not installed")
  cls = {"tf": TfImpl, "torch": TorchImpl}[name]
  return cls(mode, dtype, gpu)


# --------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------


def _summary(samples: Sequence[float]) -> dict[str, float]:
  ms = sorted(1e3 * s for s in samples)
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
) -> dict[tuple[str, str], dict[str, float]]:
  """Medians (ms) of ``repeats`` rounds, each running every candidate once.

  Args:
    candidates: what to time.
    repeats: the number of rounds.
    warmup: untimed runs of each candidate before the first round (fewer,
      but at least one, once they have taken ``WARMUP_BUDGET_S``).
    inner: runs per sample, back to back before one sync (for a GPU, where
      one launch is too short to time on its own); the sample is the mean.
    seed: for the order of each round.

  Returns:
    ``{(impl, kind): summary}`` with median, quartiles and minimum in ms.
  """
  for c in candidates:
    # A slow candidate (PyTorch's backward takes seconds on a CPU) is warm
    # after one run; the rest get all of theirs.
    start = time.perf_counter()
    for i in range(warmup):
      if i and time.perf_counter() - start > WARMUP_BUDGET_S:
        break
      c.sync(c.call())
  samples: dict[tuple[str, str], list[float]] = {
    (c.impl, c.kind): [] for c in candidates
  }
  rng = np.random.default_rng(seed)
  gc_was_enabled = gc.isenabled()
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
        samples[(c.impl, c.kind)].append((time.perf_counter() - start) / inner)
        del out
      gc.enable()
  finally:
    if gc_was_enabled:
      gc.enable()
  return {key: _summary(s) for key, s in samples.items()}


def copy_bandwidth(
  device, nbytes: int, repeats: int, warmup: int, inner: int
) -> dict[str, Any]:
  """Device-to-device copy bandwidth, ``2 * nbytes / t``.

  The faster of XLA's copy (``jnp.copy``) and an elementwise ``x * 2.0``,
  timed in the same rounds: on a CPU the copy is the slower of the two, on a
  GPU both run at the copy bandwidth.
  """
  x = jax.device_put(jnp.ones(nbytes // 4, jnp.float32), device)
  copy, _ = _compile(jnp.copy, x)
  scale, _ = _compile(_floor_fwd, x)
  stats = time_interleaved(
    [
      Candidate("copy", "fwd", lambda: copy(x), jax.block_until_ready),
      Candidate("x * 2.0", "fwd", lambda: scale(x), jax.block_until_ready),
    ],
    repeats,
    warmup,
    inner,
  )
  by_op = {
    name: 2 * x.nbytes / (s["median"] * 1e-3) / 1e9
    for (name, _), s in stats.items()
  }
  best = max(by_op, key=by_op.get)
  return {
    "bytes": int(x.nbytes),
    "GBps": by_op[best],
    "op": best,
    **{f"{name} GBps": v for name, v in by_op.items()},
  }


# --------------------------------------------------------------------------
# One configuration.
# --------------------------------------------------------------------------


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  scale = float(np.max(np.abs(b))) or 1.0
  return float(np.max(np.abs(a - b))) / scale


def _ratio(num: float | None, den: float | None) -> float | None:
  if num is None or den is None or den == 0:
    return None
  return num / den


def run_config(
  cfg: Config,
  peers: Sequence[str],
  device,
  gpu: bool,
  args: argparse.Namespace,
  copy_gbps: float | None,
) -> dict[str, Any]:
  """Checks and times one configuration; returns its record."""
  rng = np.random.default_rng(0)
  x = rng.standard_normal(cfg.shape, dtype=np.float32)
  g = rng.standard_normal(cfg.shape, dtype=np.float32)
  x_check = CHECK_SCALE * x
  dtype = DTYPES[cfg.dtype]

  f = _ours_fn(cfg.mode)
  fb = _with_grad(f)
  xd = jax.device_put(jnp.asarray(x, dtype), device)
  gd = jax.device_put(jnp.asarray(g, dtype), device)
  fwd_c, fwd_s = _compile(f, xd)
  fb_c, fb_s = _compile(fb, xd, gd)
  floor_fwd_c, _ = _compile(_floor_fwd, xd)
  floor_fb_c, _ = _compile(_floor_fb, xd, gd)
  ours = JaxImpl(fwd_c, fb_c, dtype, device)
  impls: dict[str, Any] = {"ours": ours}
  floor = JaxImpl(floor_fwd_c, floor_fb_c, dtype, device)

  record: dict[str, Any] = {
    "shape_name": cfg.shape_name,
    "shape": list(cfg.shape),
    "dtype": cfg.dtype,
    "mode": cfg.mode,
    "input_bytes": int(xd.nbytes),
    "compile_s": {"fwd": fwd_s, "fb": fb_s},
    "memory": {
      "fwd_temp_bytes": _temp_bytes(fwd_c),
      "fb_temp_bytes": _temp_bytes(fb_c),
    },
    "peers": {},
    "checks": {},
  }
  for key in ("fwd", "fb"):
    temp = record["memory"][f"{key}_temp_bytes"]
    record["memory"][f"{key}_temp_over_input"] = _ratio(temp, xd.nbytes)

  # flax_lrn's results on the check input, the reference for the peers.
  check_fwd, check_fb = ours.bind(x_check, g)
  ref_y = ours.to_numpy(check_fwd())
  ref_y_fb, ref_dx = (ours.to_numpy(a) for a in check_fb())
  tolerance = CHECK_TOLERANCE[cfg.dtype]

  for name in peers:
    try:
      impl = _make_peer(name, cfg.mode, cfg.dtype, gpu)
    except Unavailable as e:
      record["peers"][name] = f"n/a: {e}"
      continue
    record["peers"][name] = "ok"
    pf, pfb = impl.bind(x_check, g)
    y = impl.to_numpy(pf())
    y_fb, dx = (impl.to_numpy(a) for a in pfb())
    errs = {
      "y": _rel_err(y, ref_y),
      "y_fb": _rel_err(y_fb, ref_y_fb),
      "dx": _rel_err(dx, ref_dx),
    }
    ok = all(e <= tolerance for e in errs.values())
    record["checks"][name] = {**errs, "tolerance": tolerance, "ok": ok}
    if not ok:
      print(
        f"MISMATCH: {name} disagrees with flax_lrn on {cfg}: {errs}"
        f" (tolerance {tolerance:g})",
        file=sys.stderr,
        flush=True,
      )
    impls[name] = impl
  del check_fwd, check_fb

  candidates = []
  for name, impl in (*impls.items(), ("floor", floor)):
    fwd_call, fb_call = impl.bind(x, g)
    candidates.append(Candidate(name, "fwd", fwd_call, impl.sync))
    candidates.append(Candidate(name, "fb", fb_call, impl.sync))
  if cfg.dtype != "f32":
    # flax_lrn's float32 forward in the same rounds, for the bf16/f32 ratio.
    x32 = jax.device_put(x, device)
    f32 = JaxImpl(_compile(f, x32)[0], None, jnp.float32, device)
    candidates.append(Candidate("ours_f32", "fwd", f32.bind(x, g)[0], f32.sync))

  stats = time_interleaved(
    candidates, args.repeats, args.warmup, args.inner, seed=args.seed
  )
  times: dict[str, dict[str, Any]] = {"fwd": {}, "fb": {}}
  for (impl_name, kind), s in stats.items():
    times[kind][impl_name] = s
  record["times_ms"] = times

  def med(kind: str, impl_name: str) -> float | None:
    return times[kind].get(impl_name, {}).get("median")

  ratios = {
    "fwd_tf_over_ours": _ratio(med("fwd", "tf"), med("fwd", "ours")),
    "fwd_torch_over_ours": _ratio(med("fwd", "torch"), med("fwd", "ours")),
    "fwd_ours_over_floor": _ratio(med("fwd", "ours"), med("fwd", "floor")),
    "fb_tf_over_ours": _ratio(med("fb", "tf"), med("fb", "ours")),
    "fb_torch_over_ours": _ratio(med("fb", "torch"), med("fb", "ours")),
    "fb_ours_over_floor": _ratio(med("fb", "ours"), med("fb", "floor")),
    "fb_temp_over_input": record["memory"]["fb_temp_over_input"],
    "bf16_fwd_over_f32_fwd": _ratio(med("fwd", "ours"), med("fwd", "ours_f32")),
  }
  record["ratios"] = ratios

  # Achieved bandwidth: the forward moves 2 * nbytes, forward+backward at
  # least 4 * nbytes (reads x and g, writes y and dx).
  nbytes = xd.nbytes
  bandwidth = {
    "fwd_GBps": _ratio(2 * nbytes / 1e6, med("fwd", "ours")),
    "fb_GBps": _ratio(4 * nbytes / 1e6, med("fb", "ours")),
    "floor_fwd_GBps": _ratio(2 * nbytes / 1e6, med("fwd", "floor")),
  }
  for key in ("fwd", "fb", "floor_fwd"):
    bandwidth[f"{key}_copy_fraction"] = _ratio(
      bandwidth[f"{key}_GBps"], copy_gbps
    )
  record["bandwidth"] = bandwidth
  return record


# --------------------------------------------------------------------------
# Targets, tables, plot.
# --------------------------------------------------------------------------


def _verdict(value: float | None, op: str, bound: float) -> str | None:
  if value is None:
    return None
  return "PASS" if _COMPARE[op](value, bound) else "FAIL"


def evaluate_targets(
  records: Sequence[dict[str, Any]], gpu: bool
) -> list[dict[str, Any]]:
  """One row per shape: each target's value and verdict."""
  by_key = {(r["shape_name"], r["dtype"], r["mode"]): r for r in records}
  rows = []
  for name in dict.fromkeys(r["shape_name"] for r in records):
    row: dict[str, Any] = {"shape_name": name, "targets": {}}
    for key, label, op, bound in GPU_TARGETS if gpu else CPU_TARGETS:
      dtype = "bf16" if key.startswith("bf16") else "f32"
      record = by_key.get((name, dtype, "across"))
      value = None
      if record is not None:
        table = "bandwidth" if key.endswith("copy_fraction") else "ratios"
        value = record[table].get(key)
      row["targets"][key] = {
        "label": label,
        "op": op,
        "bound": bound,
        "value": value,
        "verdict": _verdict(value, op, bound),
      }
    rows.append(row)
  return rows


def _fmt_ms(v: float | None) -> str:
  if v is None:
    return "n/a"
  if v >= 100:
    return f"{v:.0f}"
  if v >= 10:
    return f"{v:.1f}"
  if v >= 1:
    return f"{v:.2f}"
  return f"{v:.3f}"


def _fmt_x(v: float | None, digits: int = 2) -> str:
  return "n/a" if v is None else f"{v:.{digits}f}"


def _shape_label(r: dict[str, Any]) -> str:
  return f"{r['shape_name']} [{', '.join(map(str, r['shape']))}]"


def _table(
  header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 3
) -> list[str]:
  """A markdown table, its first ``left`` columns left-aligned."""
  align = ["---" if i < left else "--:" for i in range(len(header))]
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return lines


def render_markdown(report: dict[str, Any]) -> str:
  """The markdown tables of a report (as written to ``results.md``)."""
  meta = report["meta"]
  records = report["results"]
  gpu = meta["device"]["gpu"]
  out = ["### Machine and run", ""]
  dev = meta["device"]
  out.append(
    f"- Device: {dev['description']}; CPU: {meta['cpu']['model']},"
    f" {meta['cpu']['count']} cores, {meta['memory_gib']} GiB memory."
  )
  out.append(
    "- Versions: "
    + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    + f"; Python {meta['python']}; {meta['platform']}."
  )
  threads = meta["threads"]
  out.append(
    "- Threads (library defaults): "
    + ", ".join(f"{k} = {v}" for k, v in threads.items())
    + "."
  )
  out.append(
    f"- Medians of {meta['repeats']} interleaved rounds, after up to"
    f" {meta['warmup']} warm-up run(s) of each candidate;"
    f" {meta['inner']} run(s) per sample."
    f" flax_lrn at git {meta['git']}."
  )
  out.append(f"- Command: `{meta['command']}`")
  out.append(f"- Date: {meta['date']}")
  out.append("")

  mismatches = [
    f"{name} on {r['shape_name']} {r['dtype']} {r['mode']}"
    for r in records
    for name, c in r["checks"].items()
    if not c["ok"]
  ]
  worst: dict[str, float] = {}
  for r in records:
    for c in r["checks"].values():
      e = max(c["y"], c["y_fb"], c["dx"])
      worst[r["dtype"]] = max(worst.get(r["dtype"], 0.0), e)
  if mismatches:
    out.append(
      "**MISMATCH** (peer disagrees with flax_lrn): " + "; ".join(mismatches)
    )
  elif worst:
    out.append(
      "Every peer's output and input gradient agree with flax_lrn (largest"
      " `max|a - b| / max|b|`: "
      + ", ".join(f"{k} {v:.1e}" for k, v in worst.items())
      + ")."
    )
  out.append("")

  unavailable = sorted(
    {
      f"{IMPL_LABELS[name]} {r['dtype']} {r['mode']}: {status[5:]}"
      for r in records
      for name, status in r["peers"].items()
      if status != "ok"
    }
  )
  if unavailable:
    out.append("Not run (n/a): " + "; ".join(unavailable) + ".")
    out.append("")

  out.append("#### Median times (ms, lower is better)")
  out.append("")
  header = ["shape", "dtype", "mode"] + [
    f"{IMPL_LABELS[i]} {p}" for p in PASSES for i in IMPLS
  ]
  rows = []
  for r in records:
    row = [_shape_label(r), r["dtype"], r["mode"]]
    for p in PASSES:
      for i in IMPLS:
        row.append(_fmt_ms(r["times_ms"][p].get(i, {}).get("median")))
    rows.append(row)
  out += _table(header, rows)
  out.append("")
  out.append(
    "floor fwd: `x * 2.0` (one read, one write); floor fb: `(2 * x, 2 * g)`"
    " (two reads, two writes)."
  )
  out.append("")

  out.append("#### Ratios of medians (same run)")
  out.append("")
  header = [
    "shape",
    "dtype",
    "mode",
    "fwd TF/ours",
    "fwd torch/ours",
    "fwd ours/floor",
    "fb TF/ours",
    "fb torch/ours",
    "fb ours/floor",
    "bf16/f32 fwd",
    "fb temp / x bytes",
    "compile fwd, fb (s)",
  ]
  rows = []
  for r in records:
    q = r["ratios"]
    rows.append(
      [
        _shape_label(r),
        r["dtype"],
        r["mode"],
        _fmt_x(q["fwd_tf_over_ours"]),
        _fmt_x(q["fwd_torch_over_ours"]),
        _fmt_x(q["fwd_ours_over_floor"]),
        _fmt_x(q["fb_tf_over_ours"]),
        _fmt_x(q["fb_torch_over_ours"]),
        _fmt_x(q["fb_ours_over_floor"]),
        _fmt_x(q["bf16_fwd_over_f32_fwd"]),
        _fmt_x(q["fb_temp_over_input"]),
        f"{r['compile_s']['fwd']:.2f}, {r['compile_s']['fb']:.2f}",
      ]
    )
  out += _table(header, rows)
  out.append("")

  copy = report["copy_bandwidth"]
  out.append(
    f"#### Bandwidth (copy: {copy['GBps']:.1f} GB/s, `{copy['op']}` of"
    f" {copy['bytes'] / 2**20:.0f} MiB; `jnp.copy`"
    f" {copy['copy GBps']:.1f} GB/s)"
  )
  out.append("")
  header = [
    "shape",
    "dtype",
    "mode",
    "fwd GB/s",
    "fwd / copy",
    "fb GB/s (4 x bytes)",
    "fb / copy",
    "floor fwd / copy",
  ]
  rows = []
  for r in records:
    b = r["bandwidth"]
    rows.append(
      [
        _shape_label(r),
        r["dtype"],
        r["mode"],
        _fmt_x(b["fwd_GBps"], 1),
        _fmt_x(b["fwd_copy_fraction"]),
        _fmt_x(b["fb_GBps"], 1),
        _fmt_x(b["fb_copy_fraction"]),
        _fmt_x(b["floor_fwd_copy_fraction"]),
      ]
    )
  out += _table(header, rows)
  out.append("")

  target_rows = report["targets"]
  kind = "GPU" if gpu else "CPU"
  spec = GPU_TARGETS if gpu else CPU_TARGETS
  out.append(
    f"#### {kind} targets (f32 across-channel rows; bf16 for bf16/f32)"
  )
  out.append("")
  header = ["shape"] + [
    f"{label} {op} {bound:g}" for _, label, op, bound in spec
  ]
  rows = []
  verdicts = []
  for t in target_rows:
    row = [t["shape_name"]]
    for key, *_ in spec:
      cell = t["targets"][key]
      if cell["verdict"] is None:
        row.append("n/a")
      else:
        verdicts.append(cell["verdict"])
        row.append(f"{cell['value']:.2f} {cell['verdict']}")
    rows.append(row)
  out += _table(header, rows, left=1)
  out.append("")
  out.append(
    f"{verdicts.count('PASS')} of {len(verdicts)} {kind} targets pass"
    + (
      f" ({len(verdicts) - verdicts.count('PASS')} FAIL)." if verdicts else "."
    )
  )
  out.append("")
  if not gpu:
    out.append(
      "GPU: none was available for this run; the GPU targets were not measured."
    )
    out.append("")
  return "\n".join(out)


def plot(report: dict[str, Any], path: pathlib.Path) -> None:
  """Grouped bars of median times per shape; one panel per mode and pass."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  records = report["results"]
  dtypes = [r["dtype"] for r in records]
  dtype = "f32" if "f32" in dtypes else dtypes[0]
  modes = [m for m in MODES if any(r["mode"] == m for r in records)]
  colors = {
    "ours": "#1f77b4",
    "tf": "#ff7f0e",
    "torch": "#d62728",
    "floor": "#7f7f7f",
  }
  handles: dict[str, Any] = {}
  fig, axes = plt.subplots(
    len(modes), 2, figsize=(12, 4.2 * len(modes)), squeeze=False
  )
  for row, mode in enumerate(modes):
    sel = [r for r in records if r["mode"] == mode and r["dtype"] == dtype]
    for col, kind in enumerate(PASSES):
      ax = axes[row][col]
      impls = [i for i in IMPLS if any(i in r["times_ms"][kind] for r in sel)]
      width = 0.8 / max(len(impls), 1)
      for j, impl in enumerate(impls):
        xs, hs = [], []
        for s, r in enumerate(sel):
          v = r["times_ms"][kind].get(impl, {}).get("median")
          if v is not None:
            xs.append(s + (j - (len(impls) - 1) / 2) * width)
            hs.append(v)
        bars = handles[impl] = ax.bar(
          xs, hs, width, label=IMPL_LABELS[impl], color=colors[impl]
        )
        ax.bar_label(bars, [_fmt_ms(h) for h in hs], fontsize=7, padding=1)
      ax.set_xticks(
        range(len(sel)),
        [f"{r['shape_name']}\n{'x'.join(map(str, r['shape']))}" for r in sel],
        fontsize=8,
      )
      title = "forward" if kind == "fwd" else "forward + backward"
      ax.set_title(f"{title}, {mode}-channel{'s' if mode == 'across' else ''}")
      # The peers are up to 100x apart: a log scale keeps every bar visible.
      ax.set_yscale("log")
      ax.set_ylabel(f"median time (ms, log scale), {dtype}")
      ax.margins(y=0.15)
      ax.grid(axis="y", alpha=0.3)
  meta = report["meta"]
  fig.suptitle(
    f"LRN on {meta['device']['description']}: median of"
    f" {meta['repeats']} interleaved rounds, lower is better",
    fontsize=10,
  )
  # One legend for all panels, below them, where it hides no bar.
  order = [i for i in IMPLS if i in handles]
  fig.legend(
    [handles[i] for i in order],
    [IMPL_LABELS[i] for i in order],
    loc="lower center",
    ncol=len(handles),
    fontsize=9,
    frameon=False,
  )
  fig.tight_layout(rect=(0, 0.04, 1, 1))
  fig.savefig(path, dpi=120)
  plt.close(fig)


# --------------------------------------------------------------------------
# Metadata and the command line.
# --------------------------------------------------------------------------


def _cpu_model() -> str:
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
  root = pathlib.Path(__file__).resolve().parent.parent
  try:
    head = subprocess.run(
      ["git", "rev-parse", "--short", "HEAD"],
      cwd=root,
      capture_output=True,
      text=True,
      check=True,
    ).stdout.strip()
    dirty = subprocess.run(
      ["git", "status", "--porcelain", "--", "flax_lrn"],
      cwd=root,
      capture_output=True,
      text=True,
      check=True,
    ).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return head + (" (flax_lrn/ modified)" if dirty else "")


def _command(argv: Sequence[str] | None) -> str:
  """The command line that reproduces this run, relative to the cwd."""
  cwd = os.getcwd() + os.sep
  exe = sys.executable
  exe = exe[len(cwd) :] if exe.startswith(cwd) else exe
  script = os.path.relpath(__file__)
  return shlex.join([exe, script, *(sys.argv[1:] if argv is None else argv)])


def metadata(
  args: argparse.Namespace, argv: Sequence[str], device, peers
) -> dict[str, Any]:
  gpu = device.platform == "gpu"
  threads: dict[str, Any] = {
    "os.cpu_count()": os.cpu_count(),
    "sched_getaffinity": len(os.sched_getaffinity(0))
    if hasattr(os, "sched_getaffinity")
    else None,
    "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") or "unset",
  }
  if "torch" in peers and importlib.util.find_spec("torch"):
    import torch

    threads["torch.get_num_threads()"] = torch.get_num_threads()
    threads["torch.get_num_interop_threads()"] = torch.get_num_interop_threads()
  if "tf" in peers and importlib.util.find_spec("tensorflow"):
    import tensorflow as tf

    # 0 means TensorFlow's default, one thread per core.
    threads["tf intra_op"] = (
      tf.config.threading.get_intra_op_parallelism_threads()
    )
    threads["tf inter_op"] = (
      tf.config.threading.get_inter_op_parallelism_threads()
    )
  versions = {
    "flax_lrn": getattr(flax_lrn, "__version__", None),
    "jax": jax.__version__,
    "jaxlib": _version("jaxlib"),
    "flax": _version("flax"),
    "numpy": np.__version__,
    "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
    "torch": _version("torch"),
  }
  return {
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "command": _command(argv),
    "argv": list(sys.argv[1:] if argv is None else argv),
    "git": _git(),
    "python": platform.python_version(),
    "platform": platform.platform(),
    "cpu": {"model": _cpu_model(), "count": os.cpu_count()},
    "memory_gib": _memory_gib(),
    "device": {
      "gpu": gpu,
      "platform": device.platform,
      "kind": device.device_kind,
      "description": device.device_kind if gpu else f"CPU ({_cpu_model()})",
      "jax_backend": jax.default_backend(),
    },
    "versions": versions,
    "threads": threads,
    "repeats": args.repeats,
    "warmup": args.warmup,
    "inner": args.inner,
    "seed": args.seed,
  }


def parse_shapes(tokens: Sequence[str]) -> dict[str, tuple[int, ...]]:
  """Shape names or ``NxHxWxC``; tokens may also be comma-separated."""
  known = {**SHAPES, **QUICK_SHAPES}
  shapes: dict[str, tuple[int, ...]] = {}
  # Split on commas, except inside a bracketed tuple such as (1, 2, 3, 4).
  pieces = [re.findall(r"[(\[][^)\]]*[)\]]|[^,\s]+", t) for t in tokens]
  for token in (piece for group in pieces for piece in group):
    if token in known:
      shapes[token] = known[token]
      continue
    dims = re.split(r"[x, ()\[\]]+", token.strip("()[] "))
    try:
      shape = tuple(int(d) for d in dims if d)
    except ValueError:
      shape = ()
    if len(shape) != 4 or min(shape) < 1:
      raise argparse.ArgumentTypeError(
        f"unknown shape {token!r}: use one of {sorted(known)} or NxHxWxC"
      )
    shapes["x".join(map(str, shape))] = shape
  return shapes


def _parse_list(
  value: str, allowed: Sequence[str], aliases: dict[str, str], what: str
) -> list[str]:
  if value.strip().lower() in ("", "none"):
    return []
  items = []
  for item in value.split(","):
    item = aliases.get(item.strip().lower(), item.strip().lower())
    if item not in allowed:
      raise argparse.ArgumentTypeError(
        f"unknown {what} {item!r}: use {', '.join(allowed)}"
      )
    if item not in items:
      items.append(item)
  return items


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
    description="Time flax_lrn against TensorFlow, PyTorch and the floor.",
    formatter_class=argparse.ArgumentDefaultsHelpFormatter,
  )
  p.add_argument(
    "--quick",
    action="store_true",
    help="one small shape, 3 repeats, 1 warm-up: a smoke test",
  )
  p.add_argument(
    "--shapes",
    nargs="+",
    default=None,
    help=f"names ({', '.join(SHAPES)}, quick) or NxHxWxC (NHWC)",
  )
  p.add_argument("--dtypes", default="f32,bf16", help="f32,bf16")
  p.add_argument("--modes", default="across,within", help="across,within")
  p.add_argument(
    "--peers", default="tf,torch", help="tf,torch or none; missing ones skip"
  )
  p.add_argument("--repeats", type=int, default=None, help="rounds (15)")
  p.add_argument("--warmup", type=int, default=None, help="warm-up runs (3)")
  p.add_argument(
    "--inner",
    type=int,
    default=None,
    help="runs per sample (1 on a CPU, 20 on a GPU)",
  )
  p.add_argument(
    "--device",
    choices=("auto", "cpu", "gpu"),
    default="auto",
    help="auto: a GPU when JAX sees one",
  )
  p.add_argument("--seed", type=int, default=0, help="round order seed")
  p.add_argument(
    "--out",
    type=pathlib.Path,
    default=None,
    help=f"output folder (default {DEFAULT_OUT}, or its quick/ with --quick)",
  )
  p.add_argument(
    "--markdown",
    type=pathlib.Path,
    default=None,
    help="a file whose results section (between the BEGIN/END results"
    " markers) to replace with the tables",
  )
  return p


def _select_device(choice: str):
  try:
    gpus = jax.devices("gpu")
  except RuntimeError:
    gpus = []
  if choice == "cpu" or (choice == "auto" and not gpus):
    return jax.devices("cpu")[0]
  if not gpus:
    return None
  return gpus[0]


def update_markdown(path: pathlib.Path, tables: str) -> None:
  """Replaces the text between the results markers in ``path``."""
  text = path.read_text()
  begin, end = text.find(RESULTS_BEGIN), text.find(RESULTS_END)
  if begin < 0 or end < begin:
    raise ValueError(f"{path} has no {RESULTS_BEGIN} ... {RESULTS_END}")
  head = text[: begin + len(RESULTS_BEGIN)]
  path.write_text(head + "\n\n" + tables.strip() + "\n\n" + text[end:])


def main(argv: Sequence[str] | None = None) -> int:
  """Runs the benchmark; returns 0, or 1 when a peer disagrees, 2 on usage."""
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    shapes = parse_shapes(
      args.shapes or list(QUICK_SHAPES if args.quick else SHAPES)
    )
    dtypes = _parse_list(args.dtypes, tuple(DTYPES), DTYPE_ALIASES, "dtype")
    modes = _parse_list(args.modes, MODES, {}, "mode")
    peers = _parse_list(args.peers, tuple(PEERS), PEER_ALIASES, "peer")
  except argparse.ArgumentTypeError as e:
    parser.error(str(e))
  if not (shapes and dtypes and modes):
    parser.error("need at least one shape, dtype and mode")
  for flag in ("repeats", "warmup", "inner"):
    value = getattr(args, flag)
    if value is not None and value < (0 if flag == "warmup" else 1):
      parser.error(f"--{flag} is too small: {value}")

  device = _select_device(args.device)
  if device is None:
    print(
      "--device gpu: JAX sees no GPU (install jax[cuda12]); nothing run.",
      file=sys.stderr,
    )
    return 2
  gpu = device.platform == "gpu"
  if args.repeats is None:
    args.repeats = 3 if args.quick else 15
  if args.warmup is None:
    args.warmup = 1 if args.quick else 3
  if args.inner is None:
    args.inner = 20 if gpu else 1
  out_dir = args.out or (DEFAULT_OUT / "quick" if args.quick else DEFAULT_OUT)
  out_dir.mkdir(parents=True, exist_ok=True)

  meta = metadata(args, argv, device, peers)
  print(f"Device: {meta['device']['description']}", flush=True)
  print(
    "Threads: " + ", ".join(f"{k}={v}" for k, v in meta["threads"].items()),
    flush=True,
  )
  for name in peers:
    if importlib.util.find_spec(PEERS[name]) is None:
      print(f"{PEERS[name]} is not installed: {name} skipped.", flush=True)

  copy_mib = 8 if args.quick else (1024 if gpu else 256)
  copy = copy_bandwidth(
    device, copy_mib * 2**20, args.repeats, args.warmup, args.inner
  )
  print(f"Copy bandwidth: {copy['GBps']:.1f} GB/s", flush=True)

  records = []
  for name, shape in shapes.items():
    for dtype in dtypes:
      for mode in modes:
        cfg = Config(name, shape, dtype, mode)
        start = time.perf_counter()
        record = run_config(cfg, peers, device, gpu, args, copy["GBps"])
        records.append(record)
        med = {
          f"{i} {k}": _fmt_ms(v["median"])
          for k, d in record["times_ms"].items()
          for i, v in d.items()
        }
        print(
          f"{name} {dtype} {mode} ({time.perf_counter() - start:.0f} s): "
          + ", ".join(f"{k} {v}" for k, v in med.items())
          + " ms",
          flush=True,
        )

  report = {
    "meta": meta,
    "copy_bandwidth": copy,
    "results": records,
    "targets": evaluate_targets(records, gpu),
  }
  tables = render_markdown(report)
  (out_dir / "results.json").write_text(json.dumps(report, indent=1) + "\n")
  (out_dir / "results.md").write_text(tables + "\n")
  plot(report, out_dir / "lrn_benchmark.png")
  if args.markdown is not None:
    update_markdown(args.markdown, tables)
  print()
  print(tables)
  print(f"Wrote {out_dir}/results.json, results.md, lrn_benchmark.png")

  mismatch = any(not c["ok"] for r in records for c in r["checks"].values())
  return 1 if mismatch else 0


if __name__ == "__main__":
  sys.exit(main())
