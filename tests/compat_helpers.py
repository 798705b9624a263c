"""Shared by the compatibility tests and tests/golden/make_golden.py.

* ``PLACEMENTS``: each framework's window and alpha divisor, written out
  again from the upstream definitions (TensorFlow: ``2 * depth_radius + 1``
  channels, alpha undivided; PyTorch: ``[c - n//2, c + (n-1)//2]``, alpha
  / n; ONNX: ``[c - (n-1)//2, c + n//2]``, alpha / n; Caffe: odd n, alpha /
  n, or alpha / n per spatial axis within a channel) rather than taken from
  ``flax_lrn._conventions.lrn``, so that a wrong mapping there cannot hide.
* Float64 references and error bounds (:func:`assert_forward_close`,
  :func:`assert_grad_close`).
* Runners for the real peer libraries, imported lazily so that this module
  loads without them.

Error measures. The forward pass is a product of positive factors, so it is
compared element by element: ``|a - b| <= rtol * |b|``. The gradient is a
difference of two terms, ``g s^-beta - 2 a beta x sum(g y / s)``, which can
cancel; there an element-wise relative error measures the cancellation, not
the implementation (torch's own float32 gradient is 2e-5 off the float64
value element-wise at such points). Gradients are therefore compared
relative to the size of the terms: ``|a - b| <= rtol * (|g s^-beta| +
|2 a beta x| sum(|g y / s|))``, computed in float64, which is the accuracy a
backward-stable float computation delivers.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from tests import reference

# Unit roundoff (half the machine epsilon) per dtype name.
UNIT_ROUNDOFF = {
  "float32": 2.0**-24,
  "float16": 2.0**-11,
  "bfloat16": 2.0**-8,
}
# Below this, float16 is subnormal and rounds to an absolute 2**-25.
HALF_ABS = {"float32": 0.0, "float16": 2.0**-25, "bfloat16": 0.0}


class Canonical(NamedTuple):
  """A framework convention in the reference's terms."""

  before: int
  after: int
  a_eff: float
  k: float
  beta: float
  within: bool = False


def tensorflow_params(depth_radius, bias=1.0, alpha=1.0, beta=0.5):
  # Window 2r + 1, centred; alpha undivided.
  return Canonical(depth_radius, depth_radius, alpha, bias, beta)


def torch_params(size, alpha=1e-4, beta=0.75, k=1.0):
  # [c - n//2, c + (n-1)//2]; alpha / n.
  return Canonical(size // 2, (size - 1) // 2, alpha / size, k, beta)


def onnx_params(size, alpha=1e-4, beta=0.75, bias=1.0):
  # [c - (n-1)//2, c + n//2]; alpha / n.
  return Canonical((size - 1) // 2, size // 2, alpha / size, bias, beta)


def caffe_params(
  local_size=5, alpha=1.0, beta=0.75, k=1.0, norm_region="across_channels"
):
  half = (local_size - 1) // 2
  if norm_region.lower() == "within_channel":
    # Divisor n per spatial axis; the shift of Caffe's power layer is 1.
    return Canonical(half, half, alpha, 1.0, beta, within=True)
  return Canonical(half, half, alpha / local_size, k, beta)


PLACEMENTS = {
  "tensorflow": tensorflow_params,
  "torch": torch_params,
  "onnx": onnx_params,
  "caffe": caffe_params,
}


def _axes(c: Canonical, ndim: int, channel_axis: int):
  channel_axis %= ndim
  if c.within:
    return tuple(a for a in range(1, ndim) if a != channel_axis)
  return (channel_axis,)


def _a_eff(c: Canonical, axes) -> float:
  if c.within:
    return c.a_eff / (c.before + c.after + 1) ** len(axes)
  return c.a_eff


def ref_forward(x, c: Canonical, channel_axis: int) -> np.ndarray:
  """Float64 forward pass of convention ``c``."""
  axes = _axes(c, np.ndim(x), channel_axis)
  return reference.lrn(x, c.before, c.after, _a_eff(c, axes), c.k, c.beta, axes)


def ref_vjp(x, g, c: Canonical, channel_axis: int) -> np.ndarray:
  """Float64 gradient of ``sum(g * y)`` for convention ``c``."""
  axes = _axes(c, np.ndim(x), channel_axis)
  a = _a_eff(c, axes)
  return reference.lrn_vjp(x, g, c.before, c.after, a, c.k, c.beta, axes)


def grad_scale(x, g, c: Canonical, channel_axis: int) -> np.ndarray:
  """``|g s^-beta| + |2 a beta x| sum(|g y / s|)`` in float64, per element."""
  x = np.asarray(x, np.float64)
  g = np.asarray(g, np.float64)
  axes = _axes(c, x.ndim, channel_axis)
  a = _a_eff(c, axes)
  s = c.k + a * reference.window_sum(x * x, axes, c.before, c.after)
  y = x * s ** (-c.beta)
  back = reference.window_sum(np.abs(g * y / s), axes, c.after, c.before)
  return np.abs(g) * s ** (-c.beta) + 2.0 * a * c.beta * np.abs(x) * back


def _f64(a) -> np.ndarray:
  return np.asarray(np.asarray(a).astype(np.float32), np.float64)


def forward_error(actual, expected) -> float:
  """Largest element-wise relative error (0 where both are 0)."""
  actual, expected = _f64(actual), _f64(expected)
  err = np.abs(actual - expected)
  den = np.abs(expected)
  with np.errstate(divide="ignore", invalid="ignore"):
    rel = np.where(err == 0, 0.0, err / den)
  return float(np.max(rel, initial=0.0))


def grad_error(actual, expected, scale) -> float:
  """Largest error relative to the size of the gradient's terms."""
  err = np.abs(_f64(actual) - _f64(expected))
  with np.errstate(divide="ignore", invalid="ignore"):
    rel = np.where(err == 0, 0.0, err / np.asarray(scale, np.float64))
  return float(np.max(rel, initial=0.0))


def assert_forward_close(actual, expected, rtol, atol=0.0, what=""):
  actual, expected = _f64(actual), _f64(expected)
  assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
  bad = np.abs(actual - expected) > rtol * np.abs(expected) + atol
  if np.any(bad):
    i = np.argwhere(bad)[0]
    raise AssertionError(
      f"{what}: {int(bad.sum())} of {bad.size} elements differ by more than"
      f" rtol={rtol:g}, atol={atol:g} (max relative error"
      f" {forward_error(actual, expected):.3g}); first at {tuple(i)}:"
      f" {actual[tuple(i)]!r} vs {expected[tuple(i)]!r}"
    )


def assert_grad_close(actual, expected, scale, rtol, atol=0.0, what=""):
  actual, expected = _f64(actual), _f64(expected)
  assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
  bound = rtol * np.asarray(scale, np.float64) + atol
  bad = np.abs(actual - expected) > bound
  if np.any(bad):
    i = np.argwhere(bad)[0]
    raise AssertionError(
      f"{what}: {int(bad.sum())} of {bad.size} gradient elements differ by"
      f" more than rtol={rtol:g} of the terms' size (max"
      f" {grad_error(actual, expected, scale):.3g}); first at {tuple(i)}:"
      f" {actual[tuple(i)]!r} vs {expected[tuple(i)]!r}"
    )


# ---------------------------------------------------------------------------
# The real peers. Inputs and cotangents are NumPy arrays whose values are
# exact in `dtype`; results come back as float32 NumPy arrays (every float16
# and bfloat16 value is exact in float32).


def _channels_to(x: np.ndarray, channel_axis: int, to: int) -> np.ndarray:
  return np.moveaxis(x, channel_axis % x.ndim, to)


def tf_lrn(
  x, depth_radius, bias, alpha, beta, *, channel_axis=-1, g=None, dtype=None
) -> tuple[np.ndarray, np.ndarray | None]:
  """``tf.nn.local_response_normalization`` on any rank and channel axis.

  TensorFlow needs 4-D NHWC, so the channels go last and every other axis
  is folded into the leading one (the window only runs along the channels).
  float16 runs TensorFlow's CPU kernel; bfloat16 has no CPU kernel and runs
  TensorFlow's XLA lowering (``jit_compile=True``), which TensorFlow 2.21
  fails to compile ("mixed precision is disallowed").
  """
  import tensorflow as tf

  dtype = np.dtype(dtype or x.dtype).name
  tf_dtype = {"float32": tf.float32, "float16": tf.float16}.get(
    dtype, tf.bfloat16
  )
  xl = _channels_to(np.asarray(x, np.float32), channel_axis, -1)
  shape = xl.shape
  x4 = tf.cast(tf.constant(xl.reshape(-1, 1, 1, shape[-1])), tf_dtype)

  def run(x4, g4):
    with tf.GradientTape() as tape:
      tape.watch(x4)
      y4 = tf.nn.local_response_normalization(
        x4, depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta
      )
    dx4 = None if g4 is None else tape.gradient(y4, x4, output_gradients=g4)
    return y4, dx4

  g4 = None
  if g is not None:
    gl = _channels_to(np.asarray(g, np.float32), channel_axis, -1)
    g4 = tf.cast(tf.constant(gl.reshape(x4.shape)), tf_dtype)
  try:
    y4, dx4 = run(x4, g4)
  except tf.errors.NotFoundError:
    # No CPU kernel (bfloat16): TensorFlow's XLA lowering is the other path.
    y4, dx4 = tf.function(run, jit_compile=True)(x4, g4)

  def back(t):
    t = tf.cast(t, tf.float32).numpy().reshape(shape)
    return np.moveaxis(t, -1, channel_axis % t.ndim)

  return back(y4), None if dx4 is None else back(dx4)


def _torch_dtype(dtype: str):
  import torch

  return {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
  }[dtype]


def _torch_run(fn, x, g, channel_axis, dtype, flatten=False):
  """Runs ``fn`` on NC* tensors and returns NumPy results in x's layout."""
  import torch

  dtype = np.dtype(dtype or x.dtype).name
  xc = _channels_to(np.asarray(x, np.float32), channel_axis, 1)
  shape = xc.shape
  if flatten:
    xc = xc.reshape(shape[0], shape[1], -1)
  xt = torch.tensor(xc).to(_torch_dtype(dtype)).requires_grad_(g is not None)
  yt = fn(xt)
  dx = None
  if g is not None:
    gc = _channels_to(np.asarray(g, np.float32), channel_axis, 1)
    yt.backward(torch.tensor(gc.reshape(xc.shape)).to(yt.dtype))
    dx = xt.grad

  def back(t):
    t = t.detach().float().numpy().reshape(shape)
    return np.moveaxis(t, 1, channel_axis % t.ndim)

  return back(yt), None if dx is None else back(dx)


def torch_lrn(
  x, size, alpha, beta, k, *, channel_axis=1, g=None, dtype=None
) -> tuple[np.ndarray, np.ndarray | None]:
  """``torch.nn.functional.local_response_norm`` (autograd for the VJP).

  Half types: PyTorch's CPU ``avg_pool3d`` has no float16/bfloat16 kernel,
  so 4-D and wider inputs are flattened to ``(N, C, L)``, which PyTorch
  computes the same way (it flattens the trailing axes itself).
  """
  import torch.nn.functional as F

  half = np.dtype(dtype or x.dtype).name != "float32"
  fn = functools.partial(
    F.local_response_norm, size=size, alpha=alpha, beta=beta, k=k
  )
  return _torch_run(fn, x, g, channel_axis, dtype, flatten=half)


def torch_onnx_even(
  x, size, alpha, beta, bias, *, channel_axis=1, g=None, dtype=None
):
  """ONNX's placement through PyTorch's, by the mirror identity.

  ``onnx(size)(x) == flip_C(torch(size)(flip_C(x)))``: reversing the
  channels swaps the before and after extents of the window. ONNX Runtime
  rejects even sizes, so this is the live oracle for them.
  """
  ax = channel_axis % np.ndim(x)
  xf = np.flip(x, ax).copy()
  gf = None if g is None else np.flip(g, ax).copy()
  y, dx = torch_lrn(
    xf, size, alpha, beta, bias, channel_axis=ax, g=gf, dtype=dtype
  )
  return np.flip(y, ax), None if dx is None else np.flip(dx, ax)


def torch_caffe_within(
  x, local_size, alpha, beta, *, channel_axis=1, g=None, dtype=None
):
  """Caffe's WITHIN_CHANNEL LRN composed from PyTorch ops, as Caffe does.

  Caffe's LRNLayer::WithinChannelForward is split -> square (Power) ->
  AVE pooling with pad (n-1)/2, stride 1, dividing by the full n**d -> Power
  with shift 1, scale alpha, power -beta -> elementwise product with x.
  Pooling zero-padded input divides by the full window. Spatial axes are
  every axis but 0 and the channel axis (1-D to 3-D pooling).
  """
  import torch.nn.functional as F

  pools = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
  pool = pools[np.ndim(x) - 2]
  pad = (local_size - 1) // 2

  def fn(xt):
    # Explicit zero padding: avg_pool3d's own padding needs the unpadded
    # input to be at least the kernel. The padded zeros count in the mean.
    padded = F.pad(xt * xt, [pad] * (2 * (xt.ndim - 2)))
    pooled = pool(padded, local_size, stride=1)
    return xt * (1.0 + alpha * pooled) ** (-beta)

  return _torch_run(fn, x, g, channel_axis, dtype)


@functools.cache
def _ort_session(size: int, alpha: float, beta: float, bias: float, dt: str):
  import onnx
  import onnxruntime as ort
  from onnx import TensorProto, helper

  elem = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}[dt]
  node = helper.make_node(
    "LRN", ["X"], ["Y"], size=size, alpha=alpha, beta=beta, bias=bias
  )
  graph = helper.make_graph(
    [node],
    "lrn",
    [helper.make_tensor_value_info("X", elem, ["N", "C", "H", "W"])],
    [helper.make_tensor_value_info("Y", elem, ["N", "C", "H", "W"])],
  )
  # IR version 8 / opset 13: accepted by every onnxruntime >= 1.10.
  model = helper.make_model(
    graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8
  )
  onnx.checker.check_model(model)
  opts = ort.SessionOptions()
  opts.intra_op_num_threads = 1
  return ort.InferenceSession(
    model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
  )


def ort_lrn(x, size, alpha, beta, bias, *, channel_axis=1, dtype=None):
  """One ONNX ``LRN`` node run by ONNX Runtime's CPU kernel.

  ONNX Runtime only runs 4-D input, so the channels go to axis 1 and the
  trailing axes are folded into one (the window only runs along C).
  """
  dtype = np.dtype(dtype or x.dtype).name
  xc = _channels_to(np.asarray(x, np.float32), channel_axis, 1)
  shape = xc.shape
  x4 = xc.reshape(shape[0], shape[1], -1, 1).astype(dtype)
  sess = _ort_session(int(size), float(alpha), float(beta), float(bias), dtype)
  (y,) = sess.run(None, {"X": x4})
  y = np.asarray(y, np.float32).reshape(shape)
  return np.moveaxis(y, 1, channel_axis % y.ndim)


def versions() -> dict[str, Any]:
  """The versions of whichever peers are installed."""
  out = {}
  for name in ("tensorflow", "torch", "onnxruntime", "onnx"):
    try:
      module = __import__(name)
    except ImportError:
      continue
    out[name] = module.__version__
  return out
