"""flax_lrn.compat against the real TensorFlow, PyTorch and ONNX Runtime.

Needs the ``compat`` extra (``pip install -e .[compat]``); each test skips
on its own when its peer is missing. Forward outputs and gradients (TF
``GradientTape``, torch autograd; ONNX Runtime has no gradient) are compared
on random inputs with a random cotangent, over random configurations drawn
with a fixed seed: odd and even sizes, windows wider than C, C = 1, channels
first and last, ranks 3 to 5, alpha up to 2 (so the gradient's cross term
matters).

Tolerances (see tests/compat_helpers.py for the error measures):

* float32: relative error <= 1e-5, forward element-wise and backward
  relative to the size of the gradient's terms. Measured: <= 1.0e-6
  (ONNX Runtime forward), <= 4e-7 elsewhere.
* float16 / bfloat16: flax_lrn computes in float32 and rounds once, so it
  must be within one rounding (unit roundoff ``u``, plus 1e-5 for the
  float32 work) of the float64 result on the same input. The peers round to
  the half type after each of their ~5 operations (square, sum, scale and
  shift, power, divide; PyTorch's backward a few more), so flax_lrn and the
  peer may differ by a few roundings: 4 machine epsilons (8 u) forward and
  backward. Measured: at most 1.8 eps (PyTorch float16 gradient).

108 configurations (124 tests). Runtime: about 60 s of CPU time,
2 minutes wall on a busy 2-core machine (TensorFlow's import is ~5 s).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax_lrn import compat
from tests import compat_helpers as ch

F32_RTOL = 1e-5
HALF_DTYPES = ("float16", "bfloat16")


def _need(name: str):
  return pytest.importorskip(name)


@dataclasses.dataclass(frozen=True)
class Case:
  """One random configuration; ``params`` are the upstream's arguments."""

  convention: str
  shape: tuple[int, ...]
  channel_axis: int
  params: tuple[tuple[str, float | int | str], ...]
  seed: int

  @property
  def kwargs(self) -> dict:
    return dict(self.params)

  @property
  def id(self) -> str:
    layout = "cfirst" if self.channel_axis == 1 else "clast"
    p = "-".join(f"{k}{v}" for k, v in self.params if k != "norm_region")
    shape = "x".join(map(str, self.shape))
    return f"{shape}-{layout}-{p}"

  def arrays(self, dtype: str = "float32"):
    """Random x and cotangent, exactly representable in ``dtype``."""
    rng = np.random.default_rng(self.seed)
    scale = rng.choice([0.5, 1.0, 3.0])
    x = scale * rng.standard_normal(self.shape)
    g = rng.standard_normal(self.shape)
    jdt = jnp.dtype(dtype)
    return (
      np.asarray(jnp.asarray(x, jdt).astype(jnp.float32)),
      np.asarray(jnp.asarray(g, jdt).astype(jnp.float32)),
    )

  def canonical(self) -> ch.Canonical:
    return ch.PLACEMENTS[self.convention](**self.kwargs)


def _shape(rng, rank: int, c: int, channel_axis: int) -> tuple[int, ...]:
  n = int(rng.integers(1, 3))
  spatial = [int(rng.integers(1, 5)) for _ in range(rank - 2)]
  dims = [n, *spatial]
  dims.insert(1 if channel_axis == 1 else len(dims), c)
  return tuple(dims)


def _hyper(rng) -> tuple[float, float, float]:
  # alpha >= 0.5 in most cases: a small alpha hides gradient bugs.
  alpha = float(
    rng.choice([1e-4, 0.05, 0.5, 1.0, 2.0], p=[0.1, 0.1, 0.2, 0.4, 0.2])
  )
  beta = float(rng.choice([0.5, 0.75, 1.0, round(rng.uniform(0.25, 1.5), 3)]))
  k = round(float(rng.uniform(0.5, 2.0)), 3)
  return alpha, beta, k


def _cases(convention: str, count: int, seed: int, sizes, ranks=(3, 4, 5)):
  rng = np.random.default_rng(seed)
  cases = []
  for i in range(count):
    size = int(rng.choice(sizes))
    # A quarter of the cases have C = 1 or a window wider than C.
    if i % 4 == 0:
      c = int(rng.integers(1, max(2, size)))
    else:
      c = int(rng.integers(1, 11))
    rank = int(rng.choice(ranks))
    channel_axis = int(rng.choice([1, -1]))
    alpha, beta, k = _hyper(rng)
    name = {"tensorflow": "depth_radius", "caffe": "local_size"}.get(
      convention, "size"
    )
    shift = {"tensorflow": "bias", "onnx": "bias"}.get(convention, "k")
    params = ((name, size), ("alpha", alpha), ("beta", beta), (shift, k))
    cases.append(
      Case(
        convention,
        _shape(rng, rank, c, channel_axis),
        channel_axis,
        params,
        seed * 1000 + i,
      )
    )
  return cases


def _caffe_within_cases(count: int, seed: int):
  rng = np.random.default_rng(seed)
  cases = []
  for i in range(count):
    size = int(rng.choice([1, 3, 5, 7]))
    rank = int(rng.choice([3, 4, 5]))
    channel_axis = int(rng.choice([1, -1]))
    c = int(rng.integers(1, 4))
    alpha, beta, k = _hyper(rng)
    # Spatial extents around the window size, some smaller than it.
    shape = list(_shape(rng, rank, c, channel_axis))
    for a in range(1, rank):
      if a != channel_axis % rank:
        shape[a] = int(rng.integers(1, 7 if rank < 5 else 4))
    params = (
      ("local_size", size),
      ("alpha", alpha),
      ("beta", beta),
      ("k", k),
      ("norm_region", "within_channel"),
    )
    cases.append(
      Case("caffe", tuple(shape), channel_axis, params, seed * 1000 + i)
    )
  return cases


def _ids(cases):
  return [c.id for c in cases]


def _jax_value_and_vjp(fn, x, g, dtype):
  """flax_lrn's output and VJP, jitted (one compilation per case)."""

  @jax.jit
  def run(x, g):
    y, vjp = jax.vjp(fn, x)
    return y, vjp(g)[0]

  jdt = jnp.dtype(dtype)
  y, dx = run(jnp.asarray(x, jdt), jnp.asarray(g, jdt))
  assert y.dtype == jdt and dx.dtype == jdt
  return np.asarray(y.astype(jnp.float32)), np.asarray(dx.astype(jnp.float32))


def _check_f32(case: Case, fn, peer, *, grad=True):
  """Compares flax_lrn (``fn``) with the peer (``peer``) in float32."""
  x, g = case.arrays()
  y, dx = _jax_value_and_vjp(fn, x, g, "float32")
  py, pdx = peer(x, g if grad else None)
  ch.assert_forward_close(y, py, F32_RTOL, what=f"forward {case.id}")
  if grad:
    scale = ch.grad_scale(x, g, case.canonical(), case.channel_axis)
    ch.assert_grad_close(dx, pdx, scale, F32_RTOL, what=f"gradient {case.id}")


def _check_half(case: Case, fn, peer, dtype: str, *, grad=True):
  """Half-precision checks: flax_lrn vs float64, then vs the peer."""
  x, g = case.arrays(dtype)
  u = ch.UNIT_ROUNDOFF[dtype]
  eps = 2 * u
  tiny = ch.HALF_ABS[dtype]
  c = case.canonical()
  y, dx = _jax_value_and_vjp(fn, x, g, dtype)
  # One rounding of a float32 result: u, plus float32's own error.
  ch.assert_forward_close(
    y, ch.ref_forward(x, c, case.channel_axis), u + 1e-5, tiny, "vs float64"
  )
  scale = ch.grad_scale(x, g, c, case.channel_axis)
  ref_dx = ch.ref_vjp(x, g, c, case.channel_axis)
  # One rounding of the result, plus float32's error relative to the terms.
  bound = u * np.abs(ref_dx) + 1e-5 * scale
  ch.assert_grad_close(dx, ref_dx, bound, 1.0, tiny, "gradient vs float64")
  py, pdx = peer(x, g if grad else None)
  ch.assert_forward_close(y, py, 4 * eps, 2 * tiny, f"forward vs peer {dtype}")
  if grad:
    ch.assert_grad_close(
      dx, pdx, scale, 4 * eps, 2 * tiny, f"gradient vs peer {dtype}"
    )


# --------------------------------------------------------------------------
# PyTorch

TORCH_CASES = _cases("torch", 30, seed=1, sizes=range(1, 11))
TORCH_HALF_CASES = _cases("torch", 6, seed=2, sizes=range(1, 8))


def _torch_pair(case: Case, dtype: str | None = None):
  kw = case.kwargs
  fn = functools.partial(compat.torch, channel_axis=case.channel_axis, **kw)
  peer = functools.partial(
    _torch_peer, kw=kw, channel_axis=case.channel_axis, dtype=dtype
  )
  return fn, peer


def _torch_peer(x, g, *, kw, channel_axis, dtype):
  return ch.torch_lrn(
    x,
    kw["size"],
    kw["alpha"],
    kw["beta"],
    kw["k"],
    channel_axis=channel_axis,
    g=g,
    dtype=dtype,
  )


@pytest.mark.parametrize("case", TORCH_CASES, ids=_ids(TORCH_CASES))
def test_torch_float32(case):
  _need("torch")
  _check_f32(case, *_torch_pair(case))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("case", TORCH_HALF_CASES, ids=_ids(TORCH_HALF_CASES))
def test_torch_half(case, dtype):
  _need("torch")
  _check_half(case, *_torch_pair(case, dtype), dtype)


# --------------------------------------------------------------------------
# TensorFlow

TF_CASES = _cases("tensorflow", 24, seed=3, sizes=range(0, 6))
TF_HALF_CASES = _cases("tensorflow", 4, seed=4, sizes=range(0, 4))


def _tf_pair(case: Case, dtype: str | None = None):
  kw = case.kwargs
  fn = functools.partial(
    compat.tensorflow, channel_axis=case.channel_axis, **kw
  )

  def peer(x, g):
    return ch.tf_lrn(
      x,
      kw["depth_radius"],
      kw["bias"],
      kw["alpha"],
      kw["beta"],
      channel_axis=case.channel_axis,
      g=g,
      dtype=dtype,
    )

  return fn, peer


@pytest.mark.parametrize("case", TF_CASES, ids=_ids(TF_CASES))
def test_tensorflow_float32(case):
  _need("tensorflow")
  _check_f32(case, *_tf_pair(case))


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("case", TF_HALF_CASES, ids=_ids(TF_HALF_CASES))
def test_tensorflow_half(case, dtype):
  tf = _need("tensorflow")
  try:
    _check_half(case, *_tf_pair(case, dtype), dtype)
  except (tf.errors.NotFoundError, tf.errors.InternalError) as e:
    # bfloat16: no CPU kernel, and TF 2.21's XLA lowering of LRN mixes
    # bfloat16 and float32 and fails to compile. Runs once TF can do it.
    pytest.skip(f"TensorFlow cannot run LRN in {dtype}: {e.message[:120]}")


def test_tensorflow_defaults():
  """Our defaults are TensorFlow's (r=5, bias=1, alpha=1, beta=0.5)."""
  _need("tensorflow")
  x, _ = Case("tensorflow", (2, 3, 3, 13), -1, (), 5).arrays()
  y = compat.tensorflow(x)
  py, _ = ch.tf_lrn(x, 5, 1.0, 1.0, 0.5)
  ch.assert_forward_close(y, py, F32_RTOL, what="defaults")


# --------------------------------------------------------------------------
# ONNX: ONNX Runtime for odd sizes; the PyTorch mirror for even ones.

ONNX_CASES = _cases("onnx", 14, seed=5, sizes=(1, 3, 5, 7, 9))
ONNX_EVEN_CASES = _cases("onnx", 10, seed=6, sizes=(2, 4, 6, 8))


def _onnx_fn(case: Case):
  return functools.partial(
    compat.onnx, channel_axis=case.channel_axis, **case.kwargs
  )


def _ort_peer(case: Case, dtype: str | None = None):
  kw = case.kwargs

  def peer(x, g):
    del g  # ONNX Runtime has no LRN gradient.
    y = ch.ort_lrn(
      x,
      kw["size"],
      kw["alpha"],
      kw["beta"],
      kw["bias"],
      channel_axis=case.channel_axis,
      dtype=dtype,
    )
    return y, None

  return peer


@pytest.mark.parametrize("case", ONNX_CASES, ids=_ids(ONNX_CASES))
def test_onnx_onnxruntime_float32(case):
  _need("onnxruntime")
  _need("onnx")
  _check_f32(case, _onnx_fn(case), _ort_peer(case), grad=False)


@pytest.mark.parametrize("case", ONNX_CASES[:4], ids=_ids(ONNX_CASES[:4]))
def test_onnx_onnxruntime_float16(case):
  _need("onnxruntime")
  _need("onnx")
  peer = _ort_peer(case, "float16")
  _check_half(case, _onnx_fn(case), peer, "float16", grad=False)


@pytest.mark.parametrize("case", ONNX_EVEN_CASES, ids=_ids(ONNX_EVEN_CASES))
def test_onnx_even_sizes_torch_mirror(case):
  """ONNX Runtime rejects even sizes; PyTorch on flipped channels does not."""
  _need("torch")
  kw = case.kwargs

  def peer(x, g):
    return ch.torch_onnx_even(
      x,
      kw["size"],
      kw["alpha"],
      kw["beta"],
      kw["bias"],
      channel_axis=case.channel_axis,
      g=g,
    )

  _check_f32(case, _onnx_fn(case), peer)


def test_onnxruntime_rejects_even_sizes():
  """Documents why even ONNX sizes are not checked against ONNX Runtime."""
  _need("onnx")
  ort = _need("onnxruntime")
  x = np.ones((1, 4, 1, 1), np.float32)
  with pytest.raises((ort.capi.onnxruntime_pybind11_state.Fail, RuntimeError)):
    ch.ort_lrn(x, 4, 1e-4, 0.75, 1.0)


# --------------------------------------------------------------------------
# Caffe: no Caffe build to run; ACROSS_CHANNELS with odd sizes is PyTorch's
# and ONNX Runtime's computation (odd windows are centred and every one
# divides alpha by the size), WITHIN_CHANNEL is rebuilt from PyTorch ops the
# way Caffe builds it.

CAFFE_ACROSS_CASES = _cases("caffe", 8, seed=7, sizes=(1, 3, 5, 7))
CAFFE_WITHIN_CASES = _caffe_within_cases(12, seed=8)


@pytest.mark.parametrize(
  "case", CAFFE_ACROSS_CASES, ids=_ids(CAFFE_ACROSS_CASES)
)
def test_caffe_across_channels(case):
  _need("torch")
  kw = case.kwargs
  fn = functools.partial(compat.caffe, channel_axis=case.channel_axis, **kw)
  torch_kw = dict(size=kw["local_size"], alpha=kw["alpha"])
  torch_kw.update(beta=kw["beta"], k=kw["k"])
  torch_case = dataclasses.replace(
    case, convention="torch", params=tuple(torch_kw.items())
  )
  _check_f32(case, fn, _torch_pair(torch_case)[1])
  if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec(
    "onnx"
  ):
    onnx_kw = dict(torch_kw, bias=torch_kw.pop("k"))
    onnx_case = dataclasses.replace(
      case, convention="onnx", params=tuple(onnx_kw.items())
    )
    _check_f32(case, fn, _ort_peer(onnx_case), grad=False)


@pytest.mark.parametrize(
  "case", CAFFE_WITHIN_CASES, ids=_ids(CAFFE_WITHIN_CASES)
)
def test_caffe_within_channel(case):
  """Against Caffe's composition in PyTorch, with a k that must be ignored."""
  _need("torch")
  kw = case.kwargs
  assert kw["k"] != 1.0
  fn = functools.partial(compat.caffe, channel_axis=case.channel_axis, **kw)

  def peer(x, g):
    return ch.torch_caffe_within(
      x,
      kw["local_size"],
      kw["alpha"],
      kw["beta"],
      channel_axis=case.channel_axis,
      g=g,
    )

  _check_f32(case, fn, peer)
