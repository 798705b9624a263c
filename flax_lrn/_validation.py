"""Trace-time checks of LRN arguments.

Every check runs on static information (shapes, dtypes, Python values), so a
bad argument fails when the function is traced, with a message that names the
parameter, the value and what is allowed.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

MODES = ("across_channels", "within_channel")
ALPHA_SCALINGS = ("none", "size")


def check_mode(mode: Any) -> str:
  if not isinstance(mode, str) or mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
  return mode


def check_alpha_scaling(alpha_scaling: Any) -> str:
  if not isinstance(alpha_scaling, str) or alpha_scaling not in ALPHA_SCALINGS:
    raise ValueError(
      f"alpha_scaling must be one of {ALPHA_SCALINGS} ('none': alpha is"
      " used as given, as in TensorFlow and the AlexNet paper; 'size':"
      " alpha is divided by the number of elements in the window, as in"
      f" PyTorch, Caffe and ONNX), got {alpha_scaling!r}."
    )
  return alpha_scaling


def _as_int(name: str, value: Any) -> int:
  if isinstance(value, bool):
    raise TypeError(f"{name} must be an int, got the bool {value!r}.")
  try:
    return operator.index(value)
  except TypeError:
    raise TypeError(
      f"{name} must be an int, got {value!r} of type {type(value).__name__}."
    ) from None


def check_window(window: Any) -> tuple[int, int]:
  """Returns the window as ``(before, after)`` extents around the centre.

  Args:
    window: an int ``n >= 1`` (``n`` elements, an even window holding the
      extra element after the centre) or a pair ``(before, after)`` of ints
      ``>= 0``.

  Returns:
    ``(before, after)``.

  Raises:
    TypeError: if ``window`` is neither an int nor a pair of ints.
    ValueError: if the size is below 1 or an extent is negative.
  """
  if isinstance(window, (tuple, list)):
    if len(window) != 2:
      raise ValueError(
        "window must be an int size or a pair (before, after) of"
        f" extents, got a sequence of length {len(window)}: {window!r}."
      )
    before = _as_int("window[0] (before)", window[0])
    after = _as_int("window[1] (after)", window[1])
    if before < 0 or after < 0:
      raise ValueError(
        f"window extents (before, after) must be >= 0, got {(before, after)!r}."
      )
    return before, after
  size = _as_int("window", window)
  if size < 1:
    raise ValueError(f"window size must be >= 1, got {size}.")
  return (size - 1) // 2, size // 2


def static_scalar(name: str, value: Any) -> float | None:
  """Returns a concrete hyper-parameter as a float, or None if it is traced.

  Raises:
    TypeError: if the value is not a real scalar.
  """
  if isinstance(value, jax.core.Tracer):
    if jnp.ndim(value) != 0:
      raise ValueError(
        f"{name} must be a scalar, got a traced array of shape"
        f" {jnp.shape(value)}."
      )
    if not jnp.issubdtype(value.dtype, jnp.floating) and not jnp.issubdtype(
      value.dtype, jnp.integer
    ):
      raise TypeError(
        f"{name} must be a real number, got a traced {value.dtype} value."
      )
    return None
  if isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be a real number, got the bool {value!r}.")
  arr = np.asarray(value)
  if arr.ndim != 0:
    raise ValueError(f"{name} must be a scalar, got shape {arr.shape}.")
  if not (
    np.issubdtype(arr.dtype, np.floating)
    or np.issubdtype(arr.dtype, np.integer)
    or arr.dtype == jnp.bfloat16
  ):
    raise TypeError(
      f"{name} must be a real number, got {value!r} of dtype {arr.dtype}."
    )
  return float(arr)


def check_nonnegative(name: str, value: Any, meaning: str) -> float | None:
  """Checks a finite, non-negative hyper-parameter; returns it if concrete."""
  v = static_scalar(name, value)
  if v is not None and not (math.isfinite(v) and v >= 0.0):
    raise ValueError(f"{name} must be finite and >= 0 ({meaning}), got {v!r}.")
  return v


def check_input(x: Any, name: str = "x") -> jax.Array:
  """Converts ``x`` to an array and checks it has a real floating dtype."""
  if isinstance(x, (jax.core.Tracer, jax.Array)):
    arr = x
  else:
    try:
      arr = jnp.asarray(x)
    except TypeError as e:
      raise TypeError(
        f"{name} must be an array, got {type(x).__name__}: {e}"
      ) from None
  dtype = arr.dtype
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(
      f"{name} must have a real floating dtype (float16, bfloat16, float32"
      f" or float64), got {dtype}. Cast it first, e.g. x.astype(jnp.float32)."
    )
  return arr


def check_out_dtype(dtype: Any) -> Any:
  if dtype is None:
    return None
  try:
    dt = jnp.dtype(dtype)
  except TypeError:
    raise TypeError(
      f"dtype must be a floating dtype or None, got {dtype!r}."
    ) from None
  if not jnp.issubdtype(dt, jnp.floating):
    raise TypeError(
      f"dtype must be a real floating dtype or None, got {dt}. LRN output"
      " is fractional, so an integer, bool or complex dtype would be wrong."
    )
  return dt


def normalize_axis(name: str, axis: Any, ndim: int) -> int:
  axis = _as_int(name, axis)
  if not -ndim <= axis < ndim:
    raise ValueError(
      f"{name}={axis} is out of range for an input of rank {ndim}; allowed"
      f" values are {-ndim} to {ndim - 1}."
    )
  return axis % ndim


def check_spatial_axes(
  spatial_axes: Sequence[int] | None, channel_axis: int, ndim: int
) -> tuple[int, ...]:
  """Resolves the spatial axes of the within-channel window.

  By default every axis except the first (batch) axis and the channel axis.
  """
  if spatial_axes is None:
    axes = tuple(a for a in range(1, ndim) if a != channel_axis)
    if not axes:
      raise ValueError(
        "mode='within_channel' needs at least one spatial axis besides the"
        f" batch axis 0 and channel_axis={channel_axis}, but the input has"
        f" rank {ndim}. Pass spatial_axes explicitly for unbatched input"
        " (e.g. spatial_axes=(0, 1) for an HWC image)."
      )
    return axes
  if isinstance(spatial_axes, (int, np.integer)) and not isinstance(
    spatial_axes, bool
  ):
    spatial_axes = (spatial_axes,)
  if not isinstance(spatial_axes, Sequence) or isinstance(spatial_axes, str):
    raise TypeError(
      f"spatial_axes must be a sequence of ints or None, got {spatial_axes!r}."
    )
  if not spatial_axes:
    raise ValueError("spatial_axes must name at least one axis, got ().")
  axes = tuple(normalize_axis("spatial_axes", a, ndim) for a in spatial_axes)
  if len(set(axes)) != len(axes):
    raise ValueError(f"spatial_axes must be distinct, got {spatial_axes!r}.")
  if channel_axis in axes:
    raise ValueError(
      f"spatial_axes {spatial_axes!r} include the channel axis"
      f" {channel_axis}; the within-channel window runs inside one channel."
    )
  return tuple(sorted(axes))


def check_representable(
  name: str, value: float | None, dtype: Any, *, may_underflow: bool
) -> None:
  """Checks a concrete hyper-parameter survives the cast to ``dtype``.

  A value that overflows to inf in the compute dtype would silently turn
  results into NaN or 0; a nonzero ``k`` that rounds to 0 would turn the
  result of an all-zero window from 0 into NaN. (A tiny alpha may round to
  0: the result is continuous there.)
  """
  if value is None or value == 0.0:
    return
  cast = float(np.asarray(value, dtype))
  if not math.isfinite(cast) or (cast == 0.0 and not may_underflow):
    info = jnp.finfo(dtype)
    raise ValueError(
      f"{name}={value!r} is not representable in the compute dtype {dtype}"
      f" (it becomes {cast}); use 0 or a value between {info.smallest_subnormal}"
      f" and {info.max}."
    )
