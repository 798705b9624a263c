"""The arguments of :func:`flax_lrn.lrn`, checked and in canonical form.

Resolution runs once per call, on static information only, and hands the
computation everything it needs: the window as ``(before, after)`` extents,
the normalized axes, ``alpha`` already divided by the window's element count
where the convention asks for it, and the compute and output dtypes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from flax_lrn._core import checks, kernels


class Arguments(NamedTuple):
  """The resolved arguments of one LRN.

  Attributes:
    x: the input, of a real floating dtype and rank ``>= 1``.
    axes: the axes the window spans, each in ``[0, x.ndim)``.
    before: the window extent before each position.
    after: the window extent after each position.
    channel_axis: the channel axis, in ``[0, x.ndim)``.
    alpha: the scale of the sum of squares, as applied (divided by the
      window's element count for ``alpha_scaling='size'``).
    k: the additive constant.
    beta: the exponent.
    static_alpha: ``alpha`` as a Python float when it is concrete, else None.
    static_beta: ``beta`` as a Python float when it is concrete, else None.
    compute_dtype: the dtype the formula is evaluated in.
    out_dtype: the dtype of the result.
    axis_name: the ``shard_map`` mesh axis that splits ``channel_axis``, or
      None when the window needs no halo exchange.
    implementation: the kernel's name, or None for the context's default.
  """

  x: jax.Array
  axes: tuple[int, ...]
  before: int
  after: int
  channel_axis: int
  alpha: ArrayLike
  k: ArrayLike
  beta: ArrayLike
  static_alpha: float | None
  static_beta: float | None
  compute_dtype: np.dtype
  out_dtype: np.dtype
  axis_name: str | None
  implementation: str | None


class Static(NamedTuple):
  """The arguments of :func:`flax_lrn.lrn` that are checked without ``x``."""

  extents: tuple[int, int]
  mode: str
  alpha_scaling: str
  out_dtype: Any
  static_alpha: float | None
  static_beta: float | None
  static_k: float | None
  implementation: str | None


def check_static(
  window: Any,
  *,
  alpha: ArrayLike,
  beta: ArrayLike,
  k: ArrayLike,
  alpha_scaling: Any,
  mode: Any,
  channel_axis: Any,
  spatial_axes: Sequence[int] | None,
  dtype: Any,
  axis_name: Any,
  implementation: Any = None,
) -> Static:
  """Checks what of :func:`flax_lrn.lrn`'s arguments does not need ``x``.

  The NNX module runs it when it is built, so that a bad field fails there
  rather than at the first call.

  Returns:
    The :class:`Static` arguments.

  Raises:
    TypeError, ValueError: as documented by :func:`flax_lrn.lrn`.
  """
  extents = checks.check_window(window)
  mode = checks.check_mode(mode)
  alpha_scaling = checks.check_alpha_scaling(alpha_scaling)
  static_alpha, static_beta, static_k = (
    checks.check_nonnegative(name, value)
    for name, value in (("alpha", alpha), ("beta", beta), ("k", k))
  )
  out_dtype = checks.check_out_dtype(dtype)
  checks.check_int("channel_axis", channel_axis)
  if mode == "across_channels" and spatial_axes is not None:
    raise ValueError(
      "spatial_axes only applies to mode='within_channel', got"
      f" spatial_axes={spatial_axes!r} with mode='across_channels'."
    )
  del axis_name  # checked against the mesh where it is used
  implementation = kernels.check_implementation(implementation)
  return Static(
    extents,
    mode,
    alpha_scaling,
    out_dtype,
    static_alpha,
    static_beta,
    static_k,
    implementation,
  )


def resolve(
  x: ArrayLike,
  window: Any,
  *,
  alpha: ArrayLike,
  beta: ArrayLike,
  k: ArrayLike,
  alpha_scaling: Any,
  mode: Any,
  channel_axis: Any,
  spatial_axes: Sequence[int] | None,
  dtype: Any,
  axis_name: str | None,
  implementation: Any = None,
) -> Arguments:
  """Checks the arguments of :func:`flax_lrn.lrn` and resolves them.

  Takes the parameters of :func:`flax_lrn.lrn`, with its meanings.

  Returns:
    The :class:`Arguments`.

  Raises:
    TypeError, ValueError: as documented by :func:`flax_lrn.lrn`.
  """
  (
    (before, after),
    mode,
    alpha_scaling,
    out_dtype,
    static_alpha,
    static_beta,
    static_k,
    implementation,
  ) = check_static(
    window,
    alpha=alpha,
    beta=beta,
    k=k,
    alpha_scaling=alpha_scaling,
    mode=mode,
    channel_axis=channel_axis,
    spatial_axes=spatial_axes,
    dtype=dtype,
    axis_name=axis_name,
    implementation=implementation,
  )
  x = checks.check_input(x)
  if out_dtype is None:
    out_dtype = x.dtype

  ndim = x.ndim
  if ndim < 1:
    raise ValueError(
      "x must have rank >= 1 (it needs a channel axis), got a scalar."
    )
  channel_axis = checks.normalize_axis("channel_axis", channel_axis, ndim)
  if mode == "across_channels":
    axes = (channel_axis,)
  else:
    axes = checks.check_spatial_axes(spatial_axes, channel_axis, ndim)
    # The window stays inside one channel: a split channel axis needs no
    # halo.
    axis_name = None

  compute_dtype = checks.compute_dtype(x.dtype)
  # An empty input becomes zeros without the hyper-parameters ever being
  # cast, so only a non-empty one needs them representable.
  if x.size:
    checks.check_representable(
      "alpha", static_alpha, compute_dtype, may_underflow=True
    )
    checks.check_representable(
      "k", static_k, compute_dtype, may_underflow=False
    )
  if alpha_scaling == "size":
    count = (before + after + 1) ** len(axes)
    if static_alpha is not None:
      # In Python floats: a NumPy float16 alpha would divide in float16.
      static_alpha /= count
      alpha = static_alpha
    else:
      alpha = jnp.asarray(alpha, compute_dtype) / count
  return Arguments(
    x=x,
    axes=axes,
    before=before,
    after=after,
    channel_axis=channel_axis,
    alpha=alpha,
    k=k,
    beta=beta,
    static_alpha=static_alpha,
    static_beta=static_beta,
    compute_dtype=compute_dtype,
    out_dtype=out_dtype,
    axis_name=axis_name,
    implementation=implementation,
  )
