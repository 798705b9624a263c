"""flax_lrn.compat against outputs recorded from the real peer libraries.

tests/golden/*.npz were produced by tests/golden/make_golden.py with
TensorFlow, PyTorch and ONNX Runtime (versions inside each file). This test
needs none of them, so the exactness suite runs everywhere. Tolerances are
those of tests/test_compat_live.py: float32 relative error <= 1e-5 (the
gradient relative to the size of its terms), half precision 4 machine
epsilons of the peer. Runtime: about 20 s of CPU time.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax_lrn import compat
from tests import compat_helpers as ch

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
CONVENTIONS = ("tensorflow", "torch", "onnx", "caffe")
F32_RTOL = 1e-5


def _load(convention: str) -> list[tuple[str, dict]]:
  with np.load(GOLDEN / f"{convention}.npz", allow_pickle=False) as data:
    keys = sorted({k.split("/")[0] for k in data.files if "/" in k})
    cases = []
    for key in keys:
      case = {
        name: data[f"{key}/{name}"]
        for name in ("x", "g", "y", "dx")
        if f"{key}/{name}" in data.files
      }
      case["meta"] = json.loads(str(data[f"{key}/meta"]))
      cases.append((f"{convention}-{key}", case))
  return cases


CASES = [case for conv in CONVENTIONS for case in _load(conv)]


def test_golden_files_are_complete_and_small():
  total = sum(p.stat().st_size for p in GOLDEN.glob("*.npz"))
  assert total < 256 * 1024, total
  by_convention = {c: 0 for c in CONVENTIONS}
  sources = set()
  for name, case in CASES:
    by_convention[name.split("-")[0]] += 1
    sources.add(case["meta"]["source"])
  assert min(by_convention.values()) >= 6, by_convention
  # ONNX Runtime, the torch mirror for even ONNX sizes and Caffe's
  # within-channel composition are all represented.
  assert len(sources) >= 6, sources
  dtypes = {case["meta"]["dtype"] for _, case in CASES}
  assert dtypes == {"float32", "float16", "bfloat16"}, dtypes


@pytest.mark.parametrize("name,case", CASES, ids=[n for n, _ in CASES])
def test_golden(name, case):
  meta = case["meta"]
  convention = name.split("-")[0]
  params, channel_axis, dtype = (
    meta["params"],
    meta["channel_axis"],
    meta["dtype"],
  )
  fn = getattr(compat, convention)
  jdt = jnp.dtype(dtype)
  x, g = case["x"], case["g"]

  @jax.jit
  def run(x, g):
    y, vjp = jax.vjp(lambda v: fn(v, **params, channel_axis=channel_axis), x)
    return y, vjp(g)[0]

  y, dx = run(jnp.asarray(x, jdt), jnp.asarray(g, jdt))
  assert y.dtype == jdt and dx.dtype == jdt
  canonical = ch.PLACEMENTS[convention](**params)
  scale = ch.grad_scale(x, g, canonical, channel_axis)
  if dtype == "float32":
    rtol, atol = F32_RTOL, 0.0
  else:
    rtol, atol = 8 * ch.UNIT_ROUNDOFF[dtype], 2 * ch.HALF_ABS[dtype]
  what = f"{name} ({meta['source']})"
  ch.assert_forward_close(y, case["y"], rtol, atol, f"forward {what}")
  if "dx" in case:
    ch.assert_grad_close(dx, case["dx"], scale, rtol, atol, f"grad {what}")


@pytest.mark.parametrize("name,case", CASES, ids=[n for n, _ in CASES])
def test_golden_values_match_the_formula(name, case):
  """Guards the files themselves: the peers' numbers are the formula's."""
  meta = case["meta"]
  if meta["dtype"] != "float32":
    pytest.skip("half-precision peers round at every step")
  canonical = ch.PLACEMENTS[name.split("-")[0]](**meta["params"])
  x, g, axis = case["x"], case["g"], meta["channel_axis"]
  ch.assert_forward_close(
    case["y"], ch.ref_forward(x, canonical, axis), 1e-5, what=name
  )
  if "dx" in case:
    ch.assert_grad_close(
      case["dx"],
      ch.ref_vjp(x, g, canonical, axis),
      ch.grad_scale(x, g, canonical, axis),
      1e-5,
      what=name,
    )
