"""Trace-time checks of LRN arguments.

Every check runs on static information (shapes, dtypes, Python values), so a
bad argument fails when the function is traced, with a message that names the
parameter, the value and what is allowed.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any, Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

Mode = Literal["across_channels", "within_channel"]
AlphaScaling = Literal["none", "size"]
MODES: tuple[str, ...] = get_args(Mode)
ALPHA_SCALINGS: tuple[str, ...] = get_args(AlphaScaling)

# What each hyper-parameter means, for error messages; TensorFlow's and
# ONNX's ``bias`` is ``k``.
MEANINGS = {
  "alpha": "the scale of the sum of squares",
  "beta": "the exponent",
  "k": "the additive constant",
  "bias": "the additive constant",
}

_WINDOW_RULE = (
  "window must be an int size >= 1 or a pair (before, after) of ints >= 0"
)


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


def _index(value: Any) -> int | None:
  """``value`` as an int, or None where it is not an integer (a bool is not)."""
  if isinstance(value, (bool, np.bool_)):
    return None
  try:
    return operator.index(value)
  except TypeError:
    return None


def _describe(value: Any) -> str:
  if isinstance(value, (bool, np.bool_)):
    return f"the bool {value!r}"
  return f"{value!r} of type {type(value).__name__}"


def check_bool(name: str, value: Any) -> bool:
  """Returns a flag as a Python bool; a NumPy bool is a bool too.

  Raises:
    TypeError: if ``value`` is not a bool.
  """
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(
      f"{name} must be a bool, got {value!r} of type {type(value).__name__}."
    )
  return bool(value)


def check_int(
  name: str, value: Any, minimum: int | None = None, meaning: str = ""
) -> int:
  """Returns ``value`` as an int, checked against ``minimum``.

  Both errors state the same rule, ``{name} must be an int >= {minimum}
  ({meaning})``, followed by what was given.

  Raises:
    TypeError: if ``value`` is not an integer (bools are not).
    ValueError: if ``value < minimum``.
  """
  rule = f"{name} must be an int"
  if minimum is not None:
    rule += f" >= {minimum}"
  if meaning:
    rule += f" ({meaning})"
  v = _index(value)
  if v is None:
    raise TypeError(f"{rule}, got {_describe(value)}.")
  if minimum is not None and v < minimum:
    raise ValueError(f"{rule}, got {v}.")
  return v


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
        f"{_WINDOW_RULE}, got a sequence of length {len(window)}: {window!r}."
      )
    before, after = (_index(v) for v in window)
    if before is None or after is None:
      raise TypeError(f"{_WINDOW_RULE}, got {window!r}.")
    if before < 0 or after < 0:
      raise ValueError(f"{_WINDOW_RULE}, got {window!r}.")
    return before, after
  size = _index(window)
  if size is None:
    raise TypeError(f"{_WINDOW_RULE}, got {_describe(window)}.")
  if size < 1:
    raise ValueError(f"{_WINDOW_RULE}, got {size}.")
  return (size - 1) // 2, size // 2


def static_scalar(name: str, value: Any, rule: str = "") -> float | None:
  """Returns a concrete hyper-parameter as a float, or None if it is traced.

  Args:
    name: the parameter's name.
    value: its value.
    rule: what the parameter must be, stated by every error; defaults to
      ``{name} must be a real scalar``.

  Raises:
    TypeError: if the value is not a real number.
    ValueError: if the value is not a scalar.
  """
  rule = rule or f"{name} must be a real scalar"
  if isinstance(value, Tracer):
    if jnp.ndim(value) != 0:
      raise ValueError(
        f"{rule}, got a traced array of shape {jnp.shape(value)}."
      )
    if not jnp.issubdtype(value.dtype, jnp.floating) and not jnp.issubdtype(
      value.dtype, jnp.integer
    ):
      raise TypeError(f"{rule}, got a traced {value.dtype} value.")
    return None
  if isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{rule}, got the bool {value!r}.")
  arr = np.asarray(value)
  if arr.ndim != 0:
    raise ValueError(f"{rule}, got an array of shape {arr.shape}.")
  if not (
    np.issubdtype(arr.dtype, np.floating)
    or np.issubdtype(arr.dtype, np.integer)
    or arr.dtype == jnp.bfloat16
  ):
    raise TypeError(f"{rule}, got {value!r} of dtype {arr.dtype}.")
  return float(arr)


def check_nonnegative(
  name: str, value: Any, meaning: str | None = None
) -> float | None:
  """Checks a finite, non-negative hyper-parameter; returns it if concrete.

  Every error states ``{name} must be a finite real scalar >= 0
  ({meaning})``, followed by what was given; ``meaning`` defaults to the
  entry of :data:`MEANINGS`.

  Raises:
    TypeError: if the value is not a real number.
    ValueError: if it is not a scalar, or is negative or not finite.
  """
  rule = f"{name} must be a finite real scalar >= 0"
  meaning = meaning or MEANINGS.get(name)
  if meaning:
    rule += f" ({meaning})"
  v = static_scalar(name, value, rule)
  if v is not None and not (math.isfinite(v) and v >= 0.0):
    raise ValueError(f"{rule}, got {v!r}.")
  return v


def check_input(x: Any, name: str = "x") -> jax.Array:
  """Converts ``x`` to an array and checks it has a real floating dtype."""
  if isinstance(x, (Tracer, jax.Array)):
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
      f"dtype must be a real floating dtype or None, got {dtype!r}."
    ) from None
  if not jnp.issubdtype(dt, jnp.floating):
    raise TypeError(
      f"dtype must be a real floating dtype or None, got {dt}. LRN output"
      " is fractional, so an integer, bool or complex dtype would be wrong."
    )
  return dt


def normalize_axis(name: str, axis: Any, ndim: int) -> int:
  axis = check_int(name, axis)
  if not -ndim <= axis < ndim:
    raise ValueError(
      f"{name}={axis} is out of range for an input of rank {ndim}; allowed"
      f" values are {-ndim} to {ndim - 1}."
    )
  return axis % ndim


def check_spatial_axes(
  spatial_axes: Any, channel_axis: int, ndim: int
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
  rule = (
    "spatial_axes must be None or a non-empty sequence of distinct axes"
    f" other than channel_axis={channel_axis}"
  )
  if not isinstance(spatial_axes, Sequence) or isinstance(spatial_axes, str):
    raise TypeError(f"{rule}, got {spatial_axes!r}.")
  if not spatial_axes:
    raise ValueError(f"{rule}, got {spatial_axes!r}.")
  axes = tuple(normalize_axis("spatial_axes", a, ndim) for a in spatial_axes)
  if len(set(axes)) != len(axes):
    raise ValueError(f"{rule}, got {spatial_axes!r}, which repeats an axis.")
  if channel_axis in axes:
    raise ValueError(
      f"{rule}, got {spatial_axes!r}, which includes it: the within-channel"
      " window runs inside one channel."
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
  with np.errstate(over="ignore"):  # the ValueError below says it
    cast = float(np.asarray(value, dtype))
  if not math.isfinite(cast) or (cast == 0.0 and not may_underflow):
    info = jnp.finfo(dtype)
    raise ValueError(
      f"{name}={value!r} is not representable in the compute dtype {dtype}"
      f" (it becomes {cast}); use 0 or a value between {info.smallest_subnormal}"
      f" and {info.max}."
    )


def compute_dtype(dtype: Any) -> np.dtype:
  """The dtype the formulas run in: float64 for float64, else float32.

  Written out rather than promoted, so that strict dtype promotion
  (``jax.numpy_dtype_promotion('strict')``) accepts every input dtype.
  """
  return np.dtype(np.float64 if np.dtype(dtype) == np.float64 else np.float32)
