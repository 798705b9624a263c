"""ONNX export through jax2onnx: one ``LRN`` node, or an exact decomposition.

Each case exports an LRN with a symbolic batch dimension (and, where noted,
symbolic spatial or channel dimensions) after ``import
flax_lrn.onnx_export``, runs the model in ONNX Runtime at two batch sizes
and compares it with JAX. The graph must hold one ``LRN`` node and nothing
but layout changes around it where ONNX's operator can express the
configuration, and no ``LRN`` node where it cannot. For every ``LRN`` node,
its attributes read with ONNX's definition (:func:`flax_lrn.compat.onnx`)
must give the exported function back, which also covers the graphs that
ONNX Runtime cannot run (even sizes, float64 nodes). AlexNet and GoogLeNet from
examples/, linen and NNX, export the same way.

Skipped without the ``onnx`` extra (jax2onnx, onnx, onnxruntime).

Runtime: about 55 s of CPU time on 2 cores, a quarter of it jax2onnx
importing its own plugins on the first export.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import export

pytest.importorskip("jax2onnx")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from jax2onnx import to_onnx  # noqa: E402

import flax_lrn  # noqa: E402
import flax_lrn.onnx_export  # noqa: E402
from flax_lrn import compat  # noqa: E402
from flax_lrn import nnx as lrn_nnx  # noqa: E402
from flax_lrn._core import kernels  # noqa: E402
from flax_lrn._onnx import plugin as _onnx_plugin  # noqa: E402

# For reference runs of whole models: XLA compiles several times faster.
FAST_COMPILE = {"xla_backend_optimization_level": 0}
# Nodes that only move data around the one LRN node.
LAYOUT = {
  "Cast",
  "Concat",
  "Reshape",
  "ReduceProd",
  "Shape",
  "Slice",
  "Squeeze",
  "Transpose",
  "Unsqueeze",
}


def _fn(**kw):
  return lambda x: flax_lrn.lrn(x, **kw)


def _linen(**kw):
  layer = flax_lrn.LRN(**kw)
  return lambda x: layer.apply({}, x)


def _bf16(x):
  # ONNX Runtime's Python API takes no bfloat16 arrays, so the model casts.
  y = flax_lrn.lrn(x.astype(jnp.bfloat16), 5, alpha=1.0)
  return y.astype(jnp.float32)


# (id, function, input shape with symbolic names, dtype, concrete shapes,
#  channel axis of the native LRN node or None where it decomposes)
NATIVE = [
  ("alexnet-nhwc", _fn(window=5, alpha=1.0, k=2.0), "B, 4, 4, 16", -1),
  ("size-scaling-nchw", _fn(window=3, alpha=2.0, alpha_scaling="size",
                            channel_axis=1), "B, 6, 3, 3", 1),
  ("general-beta", _fn(window=5, alpha=1.0, beta=0.6, k=1.0), "B, 2, 2, 8",
   -1),
  ("wide-window", _fn(window=17, alpha=1.0), "B, 2, 2, 12", -1),
  ("k-zero", _fn(window=3, alpha=1.0, k=0.0, beta=0.5), "B, 2, 2, 5", -1),
  ("symbolic-spatial", _fn(window=5, alpha=1.0), "B, H, W, 8", -1),
  ("symbolic-channels-rank2", _fn(window=3, alpha=1.0), "B, C", -1),
  ("rank1", _fn(window=3, alpha=1.0), "B", 0),
  ("rank3-nlc", _fn(window=5, alpha=1.0), "B, L, 6", -1),
  ("rank5-ncdhw", _fn(window=3, alpha=1.0, channel_axis=1), "B, 6, D, 2, 3",
   1),
  ("channel-axis-0", _fn(window=3, alpha=1.0, channel_axis=0), "B, 3, 4", 0),
  ("tensorflow", lambda x: compat.tensorflow(x, 2, bias=1.0, alpha=0.5),
   "B, 3, 3, 8", -1),
  ("torch-odd", lambda x: compat.torch(x, 5, alpha=1.0), "B, 8, 3, 3", 1),
  ("onnx", lambda x: compat.onnx(x, 3, alpha=2.0, bias=2.0), "B, 8, 3, 3",
   1),
  ("caffe-across", lambda x: compat.caffe(x, 5, alpha=1.0), "B, 8, 3, 3",
   1),
  ("linen", _linen(window=5, alpha=1.0), "B, 2, 2, 8", -1),
  ("nnx", lrn_nnx.LRN.from_onnx(5, alpha=1.0), "B, 8, 3, 3", 1),
  # A window along one spatial axis is an LRN along that axis.
  ("within-1d", _fn(window=3, alpha=1.0, mode="within_channel"),
   "B, L, 4", 1),
]  # fmt: skip

DECOMPOSED = [
  # ONNX Runtime rejects even sizes (see test_even_window_policy).
  ("even-onnx-placement", _fn(window=4, alpha=1.0), "B, 2, 2, 8"),
  ("torch-even", lambda x: compat.torch(x, 4, alpha=1.0), "B, 8, 3, 3"),
  ("one-sided", _fn(window=(3, 0), alpha=1.0), "B, 2, 9"),
  ("within-2d", _fn(window=3, alpha=1.0, beta=0.6, mode="within_channel"),
   "B, H, W, 3"),
  ("caffe-within-nnx",
   lrn_nnx.LRN.from_caffe(3, alpha=2.0, norm_region="WITHIN_CHANNEL"),
   "B, 2, 5, 5"),
]  # fmt: skip


def _spec(shape: str, dtype=jnp.float32) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct(export.symbolic_shape(shape), dtype)


def _concrete(shape: str, batch: int) -> tuple[int, ...]:
  # Batch `batch`; other symbolic dimensions get sizes of their own.
  sizes = {"B": batch, "H": 3, "W": 5, "L": 7, "C": 9, "D": 2}
  return tuple(
    sizes[d] if d in sizes else int(d)
    for d in shape.replace(" ", "").split(",")
  )


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
  options = ort.SessionOptions()
  options.intra_op_num_threads = 1  # the CPU is shared with other tests
  return ort.InferenceSession(
    model.SerializeToString(), options, providers=["CPUExecutionProvider"]
  )


def _run(model: onnx.ModelProto, *args: np.ndarray) -> np.ndarray:
  session = _session(model)
  names = [i.name for i in session.get_inputs()]
  return session.run(None, dict(zip(names, args, strict=True)))[0]


def _ops(model: onnx.ModelProto) -> list[str]:
  return [node.op_type for node in model.graph.node]


def _random(shape, dtype=np.float32, seed=0) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def _check_lrn_node(model, fn, x: np.ndarray, channel_axis: int) -> None:
  """The node's attributes, read as ONNX defines them, compute ``fn``."""
  (node,) = [n for n in model.graph.node if n.op_type == "LRN"]
  attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
  want = jax.jit(lambda x: compat.onnx(x, **attrs, channel_axis=channel_axis))
  np.testing.assert_allclose(jax.jit(fn)(x), want(x), rtol=1e-5, atol=1e-7)


def _check_runs(model, fn, shape: str, dtype=np.float32, rtol=1e-5) -> None:
  session, f = _session(model), jax.jit(fn)
  for seed, batch in enumerate((1, 3)):
    x = _random(_concrete(shape, batch), dtype, seed)
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    want = np.asarray(f(x))
    assert y.shape == want.shape and y.dtype == want.dtype
    np.testing.assert_allclose(
      y.astype(np.float32), want.astype(np.float32), rtol=rtol, atol=1e-7
    )


@pytest.mark.parametrize(
  ("fn", "shape", "channel_axis"),
  [c[1:] for c in NATIVE],
  ids=[c[0] for c in NATIVE],
)
def test_native_lrn_node(fn, shape, channel_axis):
  model = to_onnx(fn, [_spec(shape)])
  onnx.checker.check_model(model, full_check=True)  # with shape inference
  ops = _ops(model)
  assert ops.count("LRN") == 1 and set(ops) <= LAYOUT | {"LRN"}, ops
  assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "B"
  _check_runs(model, fn, shape)
  _check_lrn_node(model, fn, _random(_concrete(shape, 2)), channel_axis)


@pytest.mark.parametrize(
  ("fn", "shape"), [c[1:] for c in DECOMPOSED], ids=[c[0] for c in DECOMPOSED]
)
def test_decomposed(fn, shape):
  model = to_onnx(fn, [_spec(shape)])
  onnx.checker.check_model(model, full_check=True)
  ops = _ops(model)
  assert "LRN" not in ops and "Sum" in ops, ops
  _check_runs(model, fn, shape)


def test_float16_computes_in_float32_around_one_node():
  """As in JAX, float16 input is normalized in float32 and cast back."""
  fn = _fn(window=5, alpha=1.0)
  model = to_onnx(fn, [_spec("B, 2, 2, 8", jnp.float16)])
  assert _ops(model) == ["Cast", "Transpose", "LRN", "Transpose", "Cast"]
  # The same float32 result, rounded once to float16.
  _check_runs(model, fn, "B, 2, 2, 8", np.float16, rtol=1e-3)


def test_bfloat16_computes_in_float32_around_one_node():
  model = to_onnx(_bf16, [_spec("B, 2, 2, 8")])
  ops = _ops(model)
  assert ops.count("LRN") == 1 and set(ops) <= LAYOUT | {"LRN"}, ops
  _check_runs(model, _bf16, "B, 2, 2, 8", rtol=1e-2)


def test_traced_hyperparameters_decompose():
  """alpha, beta and k as model inputs, set at serving time."""

  def fn(x, alpha, beta, k):
    return flax_lrn.lrn(x, 3, alpha=alpha, beta=beta, k=k, channel_axis=1)

  scalar = jax.ShapeDtypeStruct((), jnp.float32)
  model = to_onnx(fn, [_spec("B, 5, 2, 2"), scalar, scalar, scalar])
  ops = _ops(model)
  assert "LRN" not in ops and "Pow" in ops, ops
  for batch, hyper in ((1, (1.0, 0.75, 2.0)), (4, (0.5, 0.3, 1.0))):
    x = _random((batch, 5, 2, 2), seed=batch)
    hyper = [np.asarray(v, np.float32) for v in hyper]
    np.testing.assert_allclose(
      _run(model, x, *hyper), fn(x, *hyper), rtol=1e-5, atol=1e-7
    )


def test_alpha_zero_is_a_scale():
  fn = _fn(window=5, alpha=0.0, k=2.0)
  model = to_onnx(fn, [_spec("B, 6")])
  assert "LRN" not in _ops(model)
  _check_runs(model, fn, "B, 6")


def test_even_window_policy():
  """Even sizes: decomposed for ONNX Runtime, one node under 'spec'."""
  fn = _fn(window=4, alpha=1.0, channel_axis=1)
  with flax_lrn.onnx_export.native_lrn("spec"):
    model = to_onnx(fn, [_spec("B, 8, 2, 2")])
  assert _ops(model) == ["LRN"]
  _check_lrn_node(model, fn, _random((2, 8, 2, 2)), channel_axis=1)
  # ONNX Runtime refuses the node, which is why it is not the default.
  with pytest.raises(Exception, match=r"size_ % 2 == 1"):
    _session(model)


def test_float64_policy():
  fn = _fn(window=5, alpha=1.0, channel_axis=1)
  model = to_onnx(fn, [("B", 8, 2, 2)], enable_double_precision=True)
  assert "LRN" not in _ops(model)  # ONNX Runtime has no float64 LRN
  with jax.enable_x64(True):
    _check_runs(model, fn, "B, 8, 2, 2", np.float64, rtol=1e-12)
  with flax_lrn.onnx_export.native_lrn("spec"):
    model = to_onnx(fn, [("B", 8, 2, 2)], enable_double_precision=True)
  assert _ops(model) == ["LRN"]
  with jax.enable_x64(True):
    _check_lrn_node(model, fn, _random((2, 8, 2, 2), np.float64), 1)


def test_never_policy_decomposes():
  fn = _fn(window=5, alpha=1.0)
  with flax_lrn.onnx_export.native_lrn("never"):
    model = to_onnx(fn, [_spec("B, 2, 2, 8")])
  assert "LRN" not in _ops(model)
  _check_runs(model, fn, "B, 2, 2, 8")


def test_native_lrn_rejects_unknown_policy():
  with (
    pytest.raises(ValueError, match="policy must be one of"),
    flax_lrn.onnx_export.native_lrn("cudnn"),
  ):
    pass


def test_vmap_keeps_one_node():
  fn = jax.vmap(_fn(window=3, alpha=1.0, channel_axis=0))
  model = to_onnx(fn, [_spec("B, 5, 2")])
  assert _ops(model).count("LRN") == 1
  _check_runs(model, fn, "B, 5, 2")


def test_gradient_exports():
  """The primitive differentiates as the real function (fixed shapes)."""
  fn = jax.grad(lambda x: jnp.sum(flax_lrn.lrn(x, 3, alpha=1.0) ** 2))
  model = to_onnx(fn, [(3, 6)])
  x = _random((3, 6))
  np.testing.assert_allclose(_run(model, x), fn(x), rtol=1e-5, atol=1e-6)


def test_plugin_only_acts_inside_the_conversion():
  assert "onnx" in kernels.implementations()
  x = _random((2, 8))
  y = flax_lrn.lrn(x, 5, alpha=1.0)
  jaxpr = str(jax.make_jaxpr(lambda x: flax_lrn.lrn(x, 5, alpha=1.0))(x))
  assert _onnx_plugin.PRIMITIVE.name not in jaxpr
  assert np.all(np.isfinite(y))


@pytest.mark.slow
def test_import_flax_lrn_does_not_import_jax2onnx():
  code = (
    "import sys, flax_lrn, flax_lrn.nnx, flax_lrn.compat;"
    " assert 'jax2onnx' not in sys.modules, 'jax2onnx imported'"
  )
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---- models --------------------------------------------------------------


class ConvReluLRN(nnx.Module):
  """The smallest model with an LRN where it sits in practice."""

  def __init__(self, rngs: nnx.Rngs):
    self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)
    self.lrn = lrn_nnx.LRN(5)

  def __call__(self, x):
    return self.lrn(nnx.relu(self.conv(x)))


def _load_example(name: str):
  """Imports ``examples/<name>.py`` (not a package) by its path."""
  module_name = f"flax_lrn_example_{name}"
  if module_name in sys.modules:
    return sys.modules[module_name]
  folder = Path(__file__).resolve().parent.parent / "examples"
  spec = importlib.util.spec_from_file_location(
    module_name, folder / f"{name}.py"
  )
  module = importlib.util.module_from_spec(spec)
  # Linen's dataclasses look their module up in sys.modules, and the
  # example imports _common.py from its own folder.
  sys.modules[module_name] = module
  sys.path.insert(0, str(folder))
  try:
    spec.loader.exec_module(module)
  finally:
    sys.path.remove(str(folder))
  return module


def _check_model(fn, shape: tuple, lrn_count: int) -> None:
  model = to_onnx(fn, [("B", *shape)])
  assert _ops(model).count("LRN") == lrn_count
  session = _session(model)
  x = _random((2, *shape))
  # One compilation, the fastest to make: the reference runs once.
  want = np.asarray(jax.jit(fn).lower(x).compile(FAST_COMPILE)(x))
  for batch in (2, 1):
    (y,) = session.run(None, {session.get_inputs()[0].name: x[:batch]})
    # Convolutions and dense layers sum in another order than XLA's.
    np.testing.assert_allclose(
      y, want[:batch], rtol=1e-4, atol=1e-5 * np.abs(want).max()
    )


@pytest.mark.slow
def test_conv_relu_lrn_model():
  _check_model(ConvReluLRN(nnx.Rngs(0)), (8, 8, 3), lrn_count=1)


@pytest.mark.slow
@pytest.mark.parametrize(
  ("name", "image_size"), [("alexnet", 67), ("googlenet", 32)]
)
def test_example_models(name, image_size):
  module = _load_example(name)
  x = jnp.zeros((1, image_size, image_size, 3))
  linen_model, variables = module.build_linen(10, x, 0, fast_init=True)
  if name == "alexnet":
    nnx_model = module.build_nnx(10, image_size, 0, fast_init=True)
  else:
    nnx_model = module.build_nnx(10, 0, fast_init=True)
  shape = (image_size, image_size, 3)
  _check_model(lambda x: linen_model.apply(variables, x), shape, lrn_count=2)
  _check_model(nnx_model, shape, lrn_count=2)


def test_an_explicit_xla_implementation_exports_as_the_decomposition():
  def fn(x):
    return flax_lrn.lrn(x, 5, alpha=1.0, implementation="xla")

  model = to_onnx(fn, [(2, 5, 3, 3)])
  assert "LRN" not in _ops(model)
  x = _random((2, 5, 3, 3))
  np.testing.assert_allclose(_run(model, x), fn(x), rtol=1e-5, atol=1e-6)


def test_a_function_jitted_inside_the_conversion_keeps_working_after_it():
  """jax.jit caches the trace it made during to_onnx, primitive and all."""

  def lrn(v):
    return flax_lrn.lrn(v, 5, alpha=1.0, channel_axis=1)

  f = jax.jit(lrn)
  x = _random((2, 8, 3, 3))
  model = to_onnx(f, [(2, 8, 3, 3)])
  assert _ops(model).count("LRN") == 1
  assert _onnx_plugin.PRIMITIVE.name in str(jax.make_jaxpr(f)(x))
  np.testing.assert_allclose(f(x), lrn(x), rtol=1e-6)

  def loss(g):
    return lambda v: jnp.sum(g(v) ** 2)

  np.testing.assert_allclose(
    jax.jit(jax.grad(loss(f)))(x), jax.grad(loss(lrn))(x), rtol=1e-5, atol=1e-7
  )
  batched = jax.vmap(f)(jnp.stack([x, 2 * x]))
  np.testing.assert_allclose(batched[1], lrn(2 * x), rtol=1e-6)
