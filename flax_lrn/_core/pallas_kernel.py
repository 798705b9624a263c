"""The Pallas kernel: ``implementation='pallas'``.

XLA writes a window sum over two axes (Caffe's within-channel LRN) as a
chain of 1-D sums and materializes the middle one, and it will not fuse one
window sum into another, so a training step through a within-channel LRN
costs several kernels and about three times the bytes the layer must move.
This kernel computes every tile's window sums from shifted reads of its
input, which the GPU's caches serve, so each pass reads its inputs from
memory once:

* forward: one kernel that reads ``x`` and writes ``y``; under
  differentiation the same pass also writes ``u = y / s``;
* backward: one kernel that reads ``x``, the cotangent ``g`` and ``u`` and
  writes ``dx = g * s**-beta - 2 alpha beta x W'(g * u)``, ``W'`` the
  mirrored window. ``s`` is recomputed from ``x``, never stored.

The array is viewed as ``[A, P, Q, R]``: the window spans ``P`` and ``Q``
(``P = 1`` for a one-axis window) and ``R`` is everything after it, read
contiguously. So the window may span one axis or two adjacent axes, but not
the last one (across channels on channels-last input, where the XLA kernel
already moves the least it can).

Platforms, chosen when the program is lowered: Triton on NVIDIA and AMD
GPUs; on a CPU, Pallas's interpreter runs the same kernel (slowly: it is
there to test a GPU program on a CPU); elsewhere (TPU) the XLA kernel.

Differentiation is reverse mode, first order (``jax.custom_vjp``): for
forward mode or higher orders use the XLA kernel. Cotangents of a traced
``alpha``, ``k`` or ``beta`` come from the XLA kernel's rule, computed only
when one of them is differentiated.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from flax_lrn._core import lrn_formula, powers

# Tile extents along P, Q and R (powers of two, as Triton requires): 2048
# elements, 16 per thread of 4 warps; 32 contiguous float32 values along R
# fill a 128-byte cache line.
_TILE = (8, 8, 32)
_NUM_WARPS = 4


def check_spec(spec: lrn_formula.Spec, ndim: int) -> None:
  """Raises unless the kernel covers ``spec``'s window on an ``ndim`` array.

  Raises:
    ValueError: if the window spans more than two axes, axes that are not
      adjacent, or the last axis.
  """
  axes = tuple(sorted(spec.axes))
  first, last = min(axes), max(axes)
  adjacent = axes == tuple(range(first, last + 1))
  if len(axes) > 2 or not adjacent or last == ndim - 1:
    raise ValueError(
      "implementation='pallas' takes a window over one axis or two adjacent"
      " axes, none of them the last (a within-channel LRN on channels-last"
      f" input, or across channels on channels-first input); got axes {axes}"
      f" of an array of rank {ndim}. Use implementation='xla'."
    )


def _view(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
  """The ``[A, P, Q, R]`` view of ``shape`` with the window on ``P, Q``."""
  first, last = min(axes), max(axes)
  p = shape[first] if len(axes) == 2 else 1
  return (
    math.prod(shape[:first]),
    p,
    shape[last],
    math.prod(shape[last + 1 :]),
  )


def _tile(view: tuple[int, ...]) -> tuple[int, int, int]:
  return tuple(
    min(t, pl.next_power_of_2(d)) for t, d in zip(_TILE, view[1:], strict=True)
  )  # type: ignore[return-value]


def _axis_indices(view, tile, origin, shift, axis):
  """Axis ``axis``'s indices of the tile at ``origin + shift``, broadcastable."""
  shape = [1, 1, 1]
  shape[axis] = tile[axis]
  i = origin[axis] + shift[axis] + lax.iota(jnp.int32, tile[axis])
  return i.reshape(shape), view[axis + 1]


def _gather(ref, a, view, tile, origin, shift):
  """The tile at ``origin + shift`` of ``ref[a]``, and where it is inside.

  The indices are clipped into the array and the outside is masked after
  the read, so that every read is in bounds on a GPU and in the interpreter.
  """
  index, inside = [], []
  for axis in range(3):
    i, size = _axis_indices(view, tile, origin, shift, axis)
    inside.append((i >= 0) & (i < size))
    index.append(jnp.clip(i, 0, size - 1))
  return ref[a, *index], functools.reduce(operator.and_, inside)


def _window_sum(refs, a, view, tile, origin, first, last, f, dtype):
  """``sum f(*refs)`` over the window ``[i + first, i + last]`` of each ``i``.

  Positions outside the array count as zeros.
  """
  terms = []
  p_shifts = range(first, last + 1) if view[1] > 1 else (0,)
  for dp in p_shifts:
    for dq in range(first, last + 1):
      reads = [_gather(r, a, view, tile, origin, (dp, dq, 0)) for r in refs]
      values = [value.astype(dtype) for value, _ in reads]
      terms.append(jnp.where(reads[0][1], f(*values), 0))
  return functools.reduce(operator.add, terms)


class _Tile:
  """One program's tile: its place in the view, read by every kernel."""

  def __init__(self, spec: lrn_formula.Spec, view, tile):
    self.spec, self.view, self.tile = spec, view, tile
    self.a = pl.program_id(0)
    self.origin = tuple(pl.program_id(d + 1) * tile[d] for d in range(3))

  def own(self, ref):
    """The tile itself (its values outside the array are never stored)."""
    value, _ = _gather(ref, self.a, self.view, self.tile, self.origin, (0,) * 3)
    return value.astype(self.spec.compute_dtype)

  def window_sum(self, refs, f, mirrored=False):
    spec = self.spec
    if mirrored:
      first, last = -spec.after, spec.before
    else:
      first, last = -spec.before, spec.after
    return _window_sum(
      refs, self.a, self.view, self.tile, self.origin, first, last, f,
      spec.compute_dtype,
    )  # fmt: skip

  def s(self, x_ref, alpha, k):
    """``k + alpha * W(x**2)`` on the tile, as the XLA kernel computes it."""
    w = self.window_sum((x_ref,), lambda v: v * v)
    return lrn_formula.s_of_window_sum(self.spec, w, alpha, k)

  def store(self, ref, value):
    """Stores the tile's part that lies inside the array."""
    inside = []
    for axis in range(3):
      i, size = _axis_indices(self.view, self.tile, self.origin, (0,) * 3, axis)
      inside.append(i < size)
    where = tuple(
      pl.ds(o, t) for o, t in zip(self.origin, self.tile, strict=True)
    )
    mask = functools.reduce(operator.and_, inside)
    plgpu.store(ref.at[self.a, *where], value.astype(ref.dtype), mask=mask)


def _scalars(spec, params_ref):
  alpha, k, beta = params_ref[0], params_ref[1], params_ref[2]
  return alpha, k, beta if spec.static_beta is None else spec.static_beta


def _forward_kernel(spec, view, tile, params_ref, x_ref, y_ref):
  t = _Tile(spec, view, tile)
  alpha, k, beta = _scalars(spec, params_ref)
  t.store(y_ref, t.own(x_ref) / powers.power(t.s(x_ref, alpha, k), beta))


def _forward_with_residual_kernel(
  spec, view, tile, params_ref, x_ref, y_ref, u_ref
):
  # y and u = y / s = x * s**-beta * r**2 (r = s**-0.5), the factor of every
  # window term of the gradient.
  t = _Tile(spec, view, tile)
  alpha, k, beta = _scalars(spec, params_ref)
  x = t.own(x_ref)
  r = lax.rsqrt(t.s(x_ref, alpha, k))
  y = x * powers.power(r, 2.0 * beta)
  t.store(y_ref, y)
  t.store(u_ref, y * (r * r))


def _input_cotangent_kernel(
  spec, view, tile, params_ref, x_ref, g_ref, u_ref, dx_ref
):
  # dx = g * s**-beta - 2 alpha beta x W'(g * u).
  t = _Tile(spec, view, tile)
  alpha, k, beta = _scalars(spec, params_ref)
  p = powers.power(lax.rsqrt(t.s(x_ref, alpha, k)), 2.0 * beta)
  dx = p * t.own(g_ref)
  if spec.static_beta != 0.0:
    # The clip keeps x finite where its square overflows; every window
    # there has s = inf and u = 0.
    w = t.window_sum((g_ref, u_ref), operator.mul, mirrored=True)
    x = lrn_formula.saturate(t.own(x_ref))
    dx = dx - (2.0 * alpha * beta) * (x * w)
  t.store(dx_ref, dx)


def _call(kernel, spec, view, out_dtypes, interpret, params, *arrays):
  tile = _tile(view)
  grid = (
    view[0],
    *(pl.cdiv(d, t) for d, t in zip(view[1:], tile, strict=True)),
  )
  return pl.pallas_call(
    functools.partial(kernel, spec, view, tile),
    out_shape=tuple(jax.ShapeDtypeStruct(view, d) for d in out_dtypes),
    grid=grid,
    interpret=interpret,
    compiler_params=None
    if interpret
    else plgpu.CompilerParams(num_warps=_NUM_WARPS, num_stages=1),
    name=f"flax_lrn_{kernel.__name__.strip('_')}",
  )(params, *arrays)


def _params(spec, alpha, k, beta):
  return jnp.stack([alpha, k, beta, jnp.zeros_like(alpha)]).astype(
    spec.compute_dtype
  )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _normalize(spec, interpret, x, alpha, k, beta):
  view = _view(x.shape, spec.axes)
  params = _params(spec, alpha, k, beta)
  (y,) = _call(
    _forward_kernel, spec, view, (spec.out_dtype,), interpret, params,
    x.reshape(view),
  )  # fmt: skip
  return y.reshape(x.shape)


def _normalize_fwd(spec, interpret, x, alpha, k, beta):
  perturbed = tuple(a.perturbed for a in (x, alpha, k, beta))
  x, alpha, k, beta = (a.value for a in (x, alpha, k, beta))
  view = _view(x.shape, spec.axes)
  params = _params(spec, alpha, k, beta)
  y, u = _call(
    _forward_with_residual_kernel, spec, view,
    (spec.out_dtype, spec.compute_dtype), interpret, params, x.reshape(view),
  )  # fmt: skip
  return y.reshape(x.shape), (x, u, alpha, k, beta, perturbed)


def _normalize_bwd(spec, interpret, residuals, g):
  x, u, alpha, k, beta, perturbed = residuals
  if isinstance(g, SymbolicZero):
    return (None,) * 4
  dx = None
  if perturbed[0]:
    view = _view(x.shape, spec.axes)
    params = _params(spec, alpha, k, beta)
    (dx,) = _call(
      _input_cotangent_kernel, spec, view, (x.dtype,), interpret, params,
      x.reshape(view), g.reshape(view), u,
    )  # fmt: skip
    dx = dx.reshape(x.shape)
  scalars = [None, None, None]
  if any(perturbed[1:]):
    # Learned hyper-parameters: their cotangents by the XLA kernel's rule.
    _, pullback = jax.vjp(
      lambda a, kk, b: lrn_formula.xla_kernel(spec, x, a, kk, b), alpha, k, beta
    )
    scalars = [
      c if on else None
      for c, on in zip(pullback(g), perturbed[1:], strict=True)
    ]
  return (dx, *scalars)


_normalize.defvjp(_normalize_fwd, _normalize_bwd, symbolic_zeros=True)


def normalize(spec: lrn_formula.Spec, x: Any, alpha, k, beta) -> jax.Array:
  """The LRN by this kernel; the meaning of ``lrn_formula.normalize``.

  Raises:
    ValueError: if the kernel does not cover the window (``check_spec``).
  """
  check_spec(spec, jnp.ndim(x))
  triton = functools.partial(_normalize, spec, False)
  return lax.platform_dependent(
    x,
    alpha,
    k,
    beta,
    cpu=functools.partial(_normalize, spec, True),
    cuda=triton,
    rocm=triton,
    default=functools.partial(lrn_formula.xla_kernel, spec),
  )
