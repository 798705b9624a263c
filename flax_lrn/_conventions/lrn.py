"""Each framework's LRN parameters and defaults, mapped onto :func:`flax_lrn.lrn`.

The single source of truth for the framework conventions: the upstream
defaults (:data:`TENSORFLOW`, :data:`TORCH`, :data:`ONNX`, :data:`CAFFE`),
which the front ends and the ``from_*`` constructors take as their own, and
one function per framework that takes its parameters under its names,
checks them the way the framework does (or more strictly, with a clear
message) and returns the keyword arguments of :func:`flax_lrn.lrn` that
compute exactly what the framework computes. :mod:`flax_lrn.compat` and the
``from_*`` constructors of the linen and NNX modules all go through here, so
they cannot drift apart.

Windows are returned as explicit ``(before, after)`` extents, never as a
size, so that the placement of an even window is spelled out where it is
decided. Every function raises TypeError or ValueError, naming the
upstream parameter, for a parameter of the wrong type or out of range.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from flax_lrn._core import checks

# The keyword arguments of flax_lrn.lrn.
Kwargs = dict[str, Any]


class TensorFlowDefaults(NamedTuple):
  """``tf.nn.local_response_normalization``'s defaults (NHWC)."""

  depth_radius: int = 5
  bias: float = 1.0
  alpha: float = 1.0
  beta: float = 0.5
  channel_axis: int = -1


class TorchDefaults(NamedTuple):
  """``torch.nn.LocalResponseNorm``'s defaults (NCHW; ``size`` has none)."""

  alpha: float = 1e-4
  beta: float = 0.75
  k: float = 1.0
  channel_axis: int = 1


class OnnxDefaults(NamedTuple):
  """The ONNX ``LRN`` operator's attribute defaults (NCHW; ``size`` has none)."""

  alpha: float = 1e-4
  beta: float = 0.75
  bias: float = 1.0
  channel_axis: int = 1


class CaffeDefaults(NamedTuple):
  """Caffe's ``LRNParameter`` defaults (NCHW)."""

  local_size: int = 5
  alpha: float = 1.0
  beta: float = 0.75
  k: float = 1.0
  norm_region: str = "across_channels"
  channel_axis: int = 1


TENSORFLOW = TensorFlowDefaults()
TORCH = TorchDefaults()
ONNX = OnnxDefaults()
CAFFE = CaffeDefaults()

_DEPTH_RADIUS = "the half-width: the window is 2 * depth_radius + 1 channels"
_SIZE = "the number of channels in the window"
# Caffe (and ONNX Runtime) only supports odd sizes.
_LOCAL_SIZE = "the window size, which must be odd as in Caffe"

# Caffe's LRNParameter.NormRegion, as written in a prototxt (upper case) and
# as flax_lrn spells its modes (lower case).
_CAFFE_NORM_REGIONS = {
  "across_channels": "across_channels",
  "within_channel": "within_channel",
  "ACROSS_CHANNELS": "across_channels",
  "WITHIN_CHANNEL": "within_channel",
}


def _check_scalars(**named: Any) -> None:
  # Under the upstream's names, so an error names what the user wrote
  # (``bias``, not flax_lrn's ``k``). Traced values are checked by lrn.
  for name, value in named.items():
    checks.check_nonnegative(name, value)


def _kwargs(
  window: tuple[int, int],
  alpha: Any,
  beta: Any,
  k: Any,
  alpha_scaling: str,
  mode: str = "across_channels",
) -> Kwargs:
  return dict(
    window=window,
    alpha=alpha,
    beta=beta,
    k=k,
    alpha_scaling=alpha_scaling,
    mode=mode,
  )


def tensorflow(depth_radius: int, bias: Any, alpha: Any, beta: Any) -> Kwargs:
  """``tf.nn.local_response_normalization``: window ``2r+1``, alpha as given."""
  r = checks.check_int("depth_radius", depth_radius, 0, _DEPTH_RADIUS)
  _check_scalars(bias=bias, alpha=alpha, beta=beta)
  return _kwargs((r, r), alpha, beta, bias, "none")


def torch(size: int, alpha: Any, beta: Any, k: Any) -> Kwargs:
  """``torch.nn.functional.local_response_norm``: alpha / size.

  The window is ``[c - size // 2, c + (size - 1) // 2]``: an even window
  holds its extra channel *before* ``c``.
  """
  n = checks.check_int("size", size, 1, _SIZE)
  _check_scalars(alpha=alpha, beta=beta, k=k)
  return _kwargs((n // 2, (n - 1) // 2), alpha, beta, k, "size")


def onnx(size: int, alpha: Any, beta: Any, bias: Any) -> Kwargs:
  """ONNX ``LRN`` (opsets 1 and 13): alpha / size.

  The window is ``[c - (size - 1) // 2, c + size // 2]``: an even window
  holds its extra channel *after* ``c`` (the mirror image of PyTorch's).
  """
  n = checks.check_int("size", size, 1, _SIZE)
  _check_scalars(alpha=alpha, beta=beta, bias=bias)
  return _kwargs(((n - 1) // 2, n // 2), alpha, beta, bias, "size")


def caffe(
  local_size: int, alpha: Any, beta: Any, k: Any, norm_region: str
) -> Kwargs:
  """Caffe's ``LRN`` layer (``LRNParameter``).

  ``ACROSS_CHANNELS``: alpha / local_size over ``local_size`` channels.
  ``WITHIN_CHANNEL``: an ``n x n`` spatial box (``n**d`` for ``d`` spatial
  axes) with zero padding counted, alpha / n**d, and ``k`` ignored: Caffe
  builds this mode from a power layer whose shift is fixed at 1.
  """
  n = checks.check_int("local_size", local_size, 1, _LOCAL_SIZE)
  if n % 2 != 1:
    raise ValueError(
      f"local_size must be an odd int >= 1 ({_LOCAL_SIZE}), got {n}. For an"
      " even window use flax_lrn.compat.torch or flax_lrn.compat.onnx, which"
      " differ in where they put the extra channel."
    )
  if not isinstance(norm_region, str) or norm_region not in _CAFFE_NORM_REGIONS:
    raise ValueError(
      "norm_region must be 'across_channels' or 'within_channel' (or the"
      " prototxt spellings 'ACROSS_CHANNELS', 'WITHIN_CHANNEL'), got"
      f" {norm_region!r}."
    )
  mode = _CAFFE_NORM_REGIONS[norm_region]
  _check_scalars(alpha=alpha, beta=beta)
  if mode == "across_channels":
    _check_scalars(k=k)
  else:
    k = 1.0
  half = (n - 1) // 2
  return _kwargs((half, half), alpha, beta, k, "size", mode)
