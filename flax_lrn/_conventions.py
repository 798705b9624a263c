"""Each framework's LRN parameters, mapped onto :func:`flax_lrn.lrn`.

The single source of truth for the framework conventions: every function
takes one framework's parameters, with that framework's names and defaults,
checks them the way the framework does (or more strictly, with a clear
message) and returns the keyword arguments of :func:`flax_lrn.lrn` that
compute exactly what the framework computes. :mod:`flax_lrn.compat` and the
``from_*`` constructors of the linen and NNX modules all go through here, so
they cannot drift apart.

Windows are returned as explicit ``(before, after)`` extents, never as a
size, so that the placement of an even window is spelled out where it is
decided.
"""

from __future__ import annotations

from typing import Any

from flax_lrn import _validation

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
    _validation.check_nonnegative(name, value)


def tensorflow(
  depth_radius: int = 5,
  bias: Any = 1.0,
  alpha: Any = 1.0,
  beta: Any = 0.5,
) -> dict[str, Any]:
  """``tf.nn.local_response_normalization``: window ``2r+1``, alpha as given.

  Raises:
    TypeError: if ``depth_radius`` is not an int or a hyper-parameter not a
      real number.
    ValueError: if ``depth_radius < 0`` or a hyper-parameter is negative or
      not finite.
  """
  r = _validation.check_int(
    "depth_radius",
    depth_radius,
    0,
    "the half-width: the window is 2 * depth_radius + 1 channels",
  )
  _check_scalars(bias=bias, alpha=alpha, beta=beta)
  return dict(
    window=(r, r),
    alpha=alpha,
    beta=beta,
    k=bias,
    alpha_scaling="none",
    mode="across_channels",
  )


def torch(
  size: int,
  alpha: Any = 1e-4,
  beta: Any = 0.75,
  k: Any = 1.0,
) -> dict[str, Any]:
  """``torch.nn.functional.local_response_norm``: alpha / size.

  The window is ``[c - size // 2, c + (size - 1) // 2]``: an even window
  holds its extra channel *before* ``c``.

  Raises:
    TypeError: if ``size`` is not an int or a hyper-parameter not a real
      number.
    ValueError: if ``size < 1`` or a hyper-parameter is negative or not
      finite.
  """
  n = _validation.check_int("size", size, 1, _SIZE)
  _check_scalars(alpha=alpha, beta=beta, k=k)
  return dict(
    window=(n // 2, (n - 1) // 2),
    alpha=alpha,
    beta=beta,
    k=k,
    alpha_scaling="size",
    mode="across_channels",
  )


def onnx(
  size: int,
  alpha: Any = 1e-4,
  beta: Any = 0.75,
  bias: Any = 1.0,
) -> dict[str, Any]:
  """ONNX ``LRN`` (opsets 1 and 13): alpha / size.

  The window is ``[c - (size - 1) // 2, c + size // 2]``: an even window
  holds its extra channel *after* ``c`` (the mirror image of PyTorch's).

  Raises:
    TypeError: if ``size`` is not an int or a hyper-parameter not a real
      number.
    ValueError: if ``size < 1`` or a hyper-parameter is negative or not
      finite.
  """
  n = _validation.check_int("size", size, 1, _SIZE)
  _check_scalars(alpha=alpha, beta=beta, bias=bias)
  return dict(
    window=((n - 1) // 2, n // 2),
    alpha=alpha,
    beta=beta,
    k=bias,
    alpha_scaling="size",
    mode="across_channels",
  )


def caffe(
  local_size: int = 5,
  alpha: Any = 1.0,
  beta: Any = 0.75,
  k: Any = 1.0,
  norm_region: str = "across_channels",
) -> dict[str, Any]:
  """Caffe's ``LRN`` layer (``LRNParameter``).

  ``ACROSS_CHANNELS``: alpha / local_size over ``local_size`` channels.
  ``WITHIN_CHANNEL``: an ``n x n`` spatial box (``n**d`` for ``d`` spatial
  axes) with zero padding counted, alpha / n**d, and ``k`` ignored: Caffe
  builds this mode from a power layer whose shift is fixed at 1.

  Raises:
    TypeError: if ``local_size`` is not an int or a hyper-parameter not a
      real number.
    ValueError: if ``local_size`` is not odd and positive, ``norm_region``
      is unknown, or a hyper-parameter is negative or not finite.
  """
  n = _validation.check_int("local_size", local_size, 1, _LOCAL_SIZE)
  if n % 2 != 1:
    raise ValueError(
      f"local_size must be an int >= 1 ({_LOCAL_SIZE}), got {n}. For an"
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
  half = (n - 1) // 2
  return dict(
    window=(half, half),
    alpha=alpha,
    beta=beta,
    k=k if mode == "across_channels" else 1.0,
    alpha_scaling="size",
    mode=mode,
  )
