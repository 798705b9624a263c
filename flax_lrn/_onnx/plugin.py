"""The jax2onnx plugin that exports LRN as ONNX's own ``LRN`` operator.

Every entry point of flax_lrn (``lrn``, both modules, the compat front ends)
ends at the kernel seam, :func:`flax_lrn._core.kernels.run`, with canonical
arguments: ``x`` in its own dtype (converted to ``spec.compute_dtype``),
``alpha`` already divided for ``alpha_scaling='size'``, the window as
``(before, after)`` extents along ``spec.axes``. The plugin registers a
kernel there, ``'onnx'``, that binds a primitive of its own, and makes it
the default implementation while jax2onnx converts (its
``plugin_binding``), so the jaxpr keeps one equation per LRN with everything
the lowering needs, instead of the dozen elementwise and padding equations
of the formula. An LRN traced with ``implementation='xla'`` exports as its
decomposition.

The lowering emits a single ``LRN`` node where the ONNX operator computes the
same thing (see :func:`flax_lrn.onnx_export.native_lrn` for the policy) and
otherwise an exact decomposition into ``Pad``, ``Slice``, ``Sum`` and
elementwise nodes. Both work on symbolic (batch, spatial or channel)
dimensions: no shape is read from the array, only its rank.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator, Sequence
from typing import Any, Literal, cast

import jax
import numpy as np
import onnx_ir as ir
from jax.core import ShapedArray
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir
from jax2onnx.plugins.plugin_system import (
  PrimitiveLeafPlugin,
  register_primitive,
)

from flax_lrn._core import kernels, lrn_formula, powers

Policy = Literal["onnxruntime", "spec", "never"]
POLICIES: tuple[str, ...] = ("onnxruntime", "spec", "never")

# The XLA kernel evaluates, differentiates and batches the primitive.
_XLA = lrn_formula.normalize

_POLICY: contextvars.ContextVar[str] = contextvars.ContextVar(
  "flax_lrn_onnx_policy", default="onnxruntime"
)

# Unsqueeze and Squeeze take their axes as an input from opset 13 on.
_MIN_OPSET = 13
# ONNX Runtime's CPU kernel only implements these input types.
_ORT_DTYPES = (ir.DataType.FLOAT, ir.DataType.FLOAT16)
_INT64_MAX = np.iinfo(np.int64).max

PRIMITIVE = Primitive("flax_lrn_normalize")


def _bind(spec: lrn_formula.Spec, x, alpha, k, beta):
  return PRIMITIVE.bind(x, alpha, k, beta, spec=spec)


# The name of the kernel at the seam.
IMPLEMENTATION = "onnx"


def _impl(x, alpha, k, beta, *, spec):
  return _XLA(spec, x, alpha, k, beta)


def _abstract_eval(x, alpha, k, beta, *, spec):
  del alpha, k, beta
  return ShapedArray(x.shape, spec.out_dtype)


def _jvp(primals, tangents, *, spec):
  # Exporting a gradient computation: differentiate the real function, with
  # the rule made of plain operators (the CPU one is a conditional, and the
  # choice between them a platform switch, which ONNX has not).
  tangents = tuple(ad.instantiate_zeros(t) for t in tangents)
  body = functools.partial(_XLA, spec._replace(rule="fused"))
  return jax.jvp(body, tuple(primals), tangents)


def _batch(args, dims, *, spec):
  x, *scalars = args
  x_dim, *scalar_dims = dims
  if x_dim is not None and all(d is None for d in scalar_dims):
    # The batch axis in front shifts the normalized axes by one.
    if x_dim != 0:
      x = jax.numpy.moveaxis(x, x_dim, 0)
    shifted = spec._replace(axes=tuple(a + 1 for a in spec.axes))
    return PRIMITIVE.bind(x, *scalars, spec=shifted), 0
  # Batched hyper-parameters make it a different LRN per example.
  body = functools.partial(_XLA, spec)
  return jax.vmap(body, in_axes=tuple(dims))(*args), 0


kernels.register(IMPLEMENTATION, _bind)
PRIMITIVE.def_impl(_impl)
PRIMITIVE.def_abstract_eval(_abstract_eval)
ad.primitive_jvps[PRIMITIVE] = _jvp
batching.primitive_batchers[PRIMITIVE] = _batch
# A function that jax.jit first traced inside a conversion keeps that trace,
# primitive included, for its later calls: they compile the XLA kernel.
mlir.register_lowering(PRIMITIVE, mlir.lower_fun(_impl, multiple_results=False))


@contextlib.contextmanager
def native_lrn(policy: Policy) -> Iterator[None]:
  """Chooses, for the exports inside the block, where LRN is one ONNX node.

  ONNX's ``LRN`` operator sums along axis 1 over
  ``[c - (size - 1) // 2, c + size // 2]`` and divides ``alpha`` by
  ``size``. Whatever the policy, an LRN it cannot express exports as an
  exact decomposition: a window along several axes (``'within_channel'``
  on images), one placed otherwise (PyTorch's even windows, one-sided
  windows), or ``alpha``, ``beta`` or ``k`` computed by the model instead
  of fixed.

  Args:
    policy: ``'onnxruntime'`` (the default outside any block) uses the
      operator where ONNX Runtime's CPU kernel runs it too: odd sizes,
      float32 computation. ``'spec'`` uses it wherever the ONNX
      specification allows, adding even sizes and float64 (with
      ``enable_double_precision=True``), for runtimes that implement
      them. ``'never'`` always decomposes, for runtimes without ``LRN``.

  Yields:
    Nothing; the policy holds until the block exits.

  Raises:
    ValueError: if ``policy`` is not one of those three.
  """
  if not isinstance(policy, str) or policy not in POLICIES:
    raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}.")
  token = _POLICY.set(policy)
  try:
    yield
  finally:
    _POLICY.reset(token)


Dims = list[int | str | None]


class _Graph:
  """Emits typed, shaped nodes into jax2onnx's graph or function body."""

  def __init__(self, ctx: Any, x: ir.Value, dims: Dims):
    self.ctx = ctx
    self.dtype = x.dtype
    self.dims = dims

  def op(
    self,
    op_type: str,
    *inputs: ir.Value,
    shape: Dims | None = None,
    dtype: ir.DataType | None = None,
    **attrs: Any,
  ) -> ir.Value:
    """Adds a node; its output has ``x``'s shape and dtype unless given."""
    out = getattr(self.ctx.builder, op_type)(
      *inputs, _outputs=[self.ctx.fresh_name(f"lrn_{op_type}")], **attrs
    )
    out.type = ir.TensorType(cast(Any, self.dtype if dtype is None else dtype))
    out.shape = ir.Shape(self.dims if shape is None else shape)
    return out

  def const(self, value: Any, dtype: Any) -> ir.Value:
    # An initializer, or a Constant node inside an ONNX function body, as
    # jax2onnx's own plugins make them.
    return self.ctx.bind_const_for_var(object(), np.asarray(value, dtype))

  def ints(self, values: Sequence[int]) -> ir.Value:
    return self.const(values, np.int64)

  def scalar(self, value: float) -> ir.Value:
    return self.const(value, ir.DataType(self.dtype).numpy())


def _static_scalar(ctx: Any, var: Any) -> float | None:
  value = ctx.try_evaluate_const(var)
  return None if value is None else float(np.asarray(value))


def _native_size(spec: lrn_formula.Spec, policy: str) -> int | None:
  """The ONNX ``size`` of the window, or None if LRN cannot express it."""
  if policy == "never" or len(spec.axes) != 1:
    return None
  if spec.after not in (spec.before, spec.before + 1):
    return None  # ONNX puts the extra element of an even window after c
  size = spec.before + spec.after + 1
  if size % 2 == 0 and policy == "onnxruntime":
    return None  # ONNX Runtime rejects even sizes
  return size


# A step of a layout change: (op_type, extra inputs, attributes, out shape).
Step = tuple[str, tuple[ir.Value, ...], dict[str, Any], Dims]


def _to_nchw(
  g: _Graph, x: ir.Value, axis: int
) -> tuple[ir.Value, Dims, list[Step]]:
  """Makes ``x`` 4-D with ``axis`` second; returns it and the steps back."""
  dims = list(g.dims)
  rank = len(dims)
  back: list[Step] = []
  if rank > 1 and axis != 1:
    rest = [a for a in range(rank) if a != axis]
    perm = [rest[0], axis, *rest[1:]]
    back.append(("Transpose", (), {"perm": np.argsort(perm).tolist()}, dims))
    dims = [dims[a] for a in perm]
    x = g.op("Transpose", x, perm=perm, shape=dims)
  if rank < 4:
    axes = g.ints([0, 2, 3] if rank == 1 else list(range(rank, 4)))
    back.append(("Squeeze", (axes,), {}, dims))
    dims = [1, *dims, 1, 1] if rank == 1 else [*dims, *[1] * (4 - rank)]
    x = g.op("Unsqueeze", x, axes, shape=dims)
  elif rank > 4:
    # (N, C, D1, D2 * ... * Dk) from the runtime shape. ReduceProd keeps
    # zero-sized axes right, where a -1 in the target shape would not.
    i64 = ir.DataType.INT64
    shape = g.op("Shape", x, shape=[rank], dtype=i64)
    back.append(("Reshape", (shape,), {}, dims))
    head = g.op("Slice", shape, g.ints([0]), g.ints([3]), shape=[3], dtype=i64)
    tail = g.op(
      "Slice", shape, g.ints([3]), g.ints([rank]), shape=[rank - 3], dtype=i64
    )
    merged = g.op("ReduceProd", tail, keepdims=1, shape=[1], dtype=i64)
    target = g.op("Concat", head, merged, axis=0, shape=[4], dtype=i64)
    static = all(isinstance(d, int) for d in dims[3:])
    dims = [*dims[:3], int(np.prod(cast(Any, dims[3:]))) if static else None]
    x = g.op("Reshape", x, target, shape=dims)
  return x, dims, back[::-1]


def _lower_native(g, x, spec, size, alpha, k, beta) -> ir.Value:
  x4, dims, back = _to_nchw(g, x, spec.axes[0])
  y = g.op(
    "LRN",
    x4,
    size=size,
    # ONNX divides alpha by size itself.
    alpha=float(alpha * size),
    beta=float(beta),
    bias=float(k),
    shape=dims,
  )
  for op_type, inputs, attrs, out_dims in back:
    y = g.op(op_type, y, *inputs, shape=out_dims, **attrs)
  return y


def _window_sum(g: _Graph, x2: ir.Value, spec: lrn_formula.Spec) -> ir.Value:
  rank = len(g.dims)
  width = spec.before + spec.after + 1
  if width == 1:
    return x2
  for axis in spec.axes:
    pads = [0] * (2 * rank)
    pads[axis], pads[rank + axis] = spec.before, spec.after
    padded_dims = list(g.dims)
    d = padded_dims[axis]
    padded_dims[axis] = d + width - 1 if isinstance(d, int) else None
    padded = g.op(
      "Pad", x2, g.ints(pads), g.scalar(0.0), mode="constant", shape=padded_dims
    )
    # Term o holds x2[i + o - before]. Its end counts back from the end of
    # the padded axis, so no length is needed and symbolic lengths work.
    terms = [
      g.op(
        "Slice",
        padded,
        g.ints([o]),
        g.ints([o - (width - 1) if o < width - 1 else _INT64_MAX]),
        g.ints([axis]),
      )
      for o in range(width)
    ]
    x2 = g.op("Sum", *terms)
  return x2


def _power(g: _Graph, s: ir.Value, beta: float | None, beta_val: ir.Value):
  """``s ** beta`` as the JAX formula computes it, from the same table."""
  ops = powers.Ops(
    sqrt=lambda v: g.op("Sqrt", v),
    mul=lambda a, b: g.op("Mul", a, b),
    one=lambda v: g.op("Div", v, v),
    pow=lambda v, e: g.op("Pow", v, beta_val if e is None else g.scalar(e)),
  )
  return powers.power(s, beta, ops)


def _lower_decomposed(g, x, spec, alpha, k, beta) -> ir.Value:
  """``x / (k + alpha * W(x**2)) ** beta``, term by term as in JAX."""
  if spec.static_beta == 0.0:
    return g.op("Identity", x)
  window_sum = _window_sum(g, g.op("Mul", x, x), spec)
  s = g.op("Add", k, g.op("Mul", alpha, window_sum))
  return g.op("Div", x, _power(g, s, spec.static_beta, beta))


@register_primitive(
  jaxpr_primitive=PRIMITIVE.name,
  jax_doc="https://github.com/flax-lrn/flax_lrn",
  onnx=[
    {"component": "LRN", "doc": "https://onnx.ai/onnx/operators/onnx__LRN.html"}
  ],
  since="0.1.0",  # the flax_lrn version
  context="primitives.flax_lrn",
  component="lrn",
  testcases=[],
)
class LRNPlugin(PrimitiveLeafPlugin):
  """Lowers flax_lrn's LRN to ONNX ``LRN``, or to an exact decomposition."""

  _PRIM = PRIMITIVE

  @classmethod
  @contextlib.contextmanager
  def plugin_binding(cls) -> Iterator[None]:
    # jax2onnx enters this for every conversion: the LRNs it traces bind
    # the primitive, unless they name their implementation.
    with (
      super().plugin_binding(),
      kernels.default_implementation(IMPLEMENTATION),
    ):
      yield

  def lower(self, ctx: Any, eqn: Any) -> None:
    spec: lrn_formula.Spec = eqn.params["spec"]
    x_var, alpha_var, k_var, beta_var = eqn.invars
    (out_var,) = eqn.outvars
    x = ctx.get_value_for_var(x_var, name_hint=ctx.fresh_name("lrn_in"))
    dims = [d if isinstance(d, int) else str(d) for d in x_var.aval.shape]
    g = _Graph(ctx, x, cast(Any, dims))
    compute = ir.DataType.from_numpy(np.dtype(spec.compute_dtype))
    if x.dtype != compute:
      g.dtype = compute
      x = g.op("Cast", x, to=compute)
    policy = _POLICY.get()
    alpha = _static_scalar(ctx, alpha_var)
    k = _static_scalar(ctx, k_var)
    size = _native_size(spec, policy)
    if (
      size is not None
      and None not in (alpha, k, spec.static_beta)
      and ctx.opset >= _MIN_OPSET
      and (x.dtype in _ORT_DTYPES or policy == "spec")
    ):
      y = _lower_native(g, x, spec, size, alpha, k, spec.static_beta)
    else:
      hyper = (ctx.get_value_for_var(v) for v in (alpha_var, k_var, beta_var))
      y = _lower_decomposed(g, x, spec, *hyper)
    out = ir.DataType.from_numpy(np.dtype(spec.out_dtype))
    if out != compute:
      y = g.op("Cast", y, to=out, dtype=out)
    out_spec = ctx.get_value_for_var(out_var, name_hint=ctx.fresh_name("lrn"))
    if out_spec.name:
      y.name = out_spec.name
    ctx.bind_value_for_var(out_var, y)
