"""The ``from_*`` constructors of the linen and NNX modules, written once.

Each constructor takes one framework's parameters with that framework's
names and defaults, maps them through :mod:`flax_lrn._conventions` (as
:mod:`flax_lrn.compat` does) and builds the module with the equivalent
hyper-parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self, cast

from jax.typing import DTypeLike

from flax_lrn import _conventions, _docs

_document = _docs.document(
  returns="A module of this class with the equivalent hyper-parameters.",
  raises=(
    "TypeError, ValueError: if a parameter has the wrong type or is outside"
    " its range; the message names it.",
  ),
)


class FromConventions:
  """``from_tensorflow``, ``from_torch``, ``from_onnx`` and ``from_caffe``.

  A mixin for a module class whose constructor takes the hyper-parameters
  of :func:`flax_lrn.lrn` as keywords. Each constructor takes the
  parameters and defaults of the matching :mod:`flax_lrn.compat` function,
  checks them when it is called, and adds the module's ``dtype`` and
  ``axis_name``.
  """

  @classmethod
  def _build(
    cls,
    kwargs: _conventions.Kwargs,
    channel_axis: int,
    dtype: DTypeLike | None,
    axis_name: str | None,
    module_kwargs: dict[str, Any],
  ) -> Self:
    # The module class takes lrn's hyper-parameters as keywords.
    make = cast(Callable[..., Self], cls)
    return make(
      **kwargs,
      channel_axis=channel_axis,
      dtype=dtype,
      axis_name=axis_name,
      **module_kwargs,
    )

  @classmethod
  @_document
  def from_tensorflow(
    cls,
    depth_radius: int = 5,
    bias: float = 1.0,
    alpha: float = 1.0,
    beta: float = 0.5,
    *,
    channel_axis: int = -1,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
    **module_kwargs: Any,
  ) -> Self:
    """The module that computes ``tf.nn.local_response_normalization``.

    Takes TensorFlow's parameters and defaults verbatim (window
    ``2 * depth_radius + 1``, alpha not divided); see
    :func:`flax_lrn.compat.tensorflow`.

    Example::

      >>> import flax_lrn
      >>> layer = flax_lrn.LRN.from_tensorflow(depth_radius=2, alpha=2e-5)
      >>> layer.window, layer.alpha, layer.alpha_scaling, layer.channel_axis
      ((2, 2), 2e-05, 'none', -1)
      >>> flax_lrn.nnx.LRN.from_tensorflow(depth_radius=2).window
      (2, 2)
    """
    kwargs = _conventions.tensorflow(depth_radius, bias, alpha, beta)
    return cls._build(kwargs, channel_axis, dtype, axis_name, module_kwargs)

  @classmethod
  @_document
  def from_torch(
    cls,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 1.0,
    *,
    channel_axis: int = 1,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
    **module_kwargs: Any,
  ) -> Self:
    """The module that computes ``torch.nn.LocalResponseNorm(size, ...)``.

    Takes PyTorch's parameters and defaults verbatim (alpha divided by
    ``size``; an even window holds its extra channel before the centre); see
    :func:`flax_lrn.compat.torch`. The channel axis defaults to PyTorch's 1;
    pass ``channel_axis=-1`` when the ported model runs on NHWC arrays.

    Example::

      >>> import jax, flax_lrn
      >>> layer = flax_lrn.LRN.from_torch(size=4, channel_axis=-1)
      >>> layer.window, layer.alpha_scaling
      ((2, 1), 'size')
      >>> x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
      >>> layer.apply({}, x).shape
      (2, 8, 8, 16)
      >>> flax_lrn.nnx.LRN.from_torch(size=4, channel_axis=-1)(x).shape
      (2, 8, 8, 16)
    """
    kwargs = _conventions.torch(size, alpha, beta, k)
    return cls._build(kwargs, channel_axis, dtype, axis_name, module_kwargs)

  @classmethod
  @_document
  def from_onnx(
    cls,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    bias: float = 1.0,
    *,
    channel_axis: int = 1,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
    **module_kwargs: Any,
  ) -> Self:
    """The module that computes an ONNX ``LRN`` node's attributes.

    Takes the ONNX attributes and defaults verbatim (alpha divided by
    ``size``; an even window holds its extra channel after the centre); see
    :func:`flax_lrn.compat.onnx`.

    Example::

      >>> import flax_lrn
      >>> flax_lrn.LRN.from_onnx(size=4).window
      (1, 2)
      >>> flax_lrn.nnx.LRN.from_onnx(size=4).window
      (1, 2)
    """
    kwargs = _conventions.onnx(size, alpha, beta, bias)
    return cls._build(kwargs, channel_axis, dtype, axis_name, module_kwargs)

  @classmethod
  @_document
  def from_caffe(
    cls,
    local_size: int = 5,
    alpha: float = 1.0,
    beta: float = 0.75,
    k: float = 1.0,
    norm_region: str = "across_channels",
    *,
    channel_axis: int = 1,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
    **module_kwargs: Any,
  ) -> Self:
    """The module that computes a Caffe ``LRN`` layer's ``lrn_param``.

    Takes Caffe's parameters and defaults verbatim (odd ``local_size``
    only; alpha divided by the number of elements in the window; ``k``
    ignored for ``within_channel``, as in Caffe); see
    :func:`flax_lrn.compat.caffe`.

    Example::

      >>> import flax_lrn
      >>> # Caffe's AlexNet: lrn_param { local_size: 5 alpha: 1e-4 beta: 0.75 }
      >>> layer = flax_lrn.LRN.from_caffe(local_size=5, alpha=1e-4, beta=0.75)
      >>> layer.window, layer.k, layer.alpha_scaling
      ((2, 2), 1.0, 'size')
      >>> layer = flax_lrn.nnx.LRN.from_caffe(3, norm_region="WITHIN_CHANNEL")
      >>> layer.mode, layer.k, layer.alpha_scaling
      ('within_channel', 1.0, 'size')
    """
    kwargs = _conventions.caffe(local_size, alpha, beta, k, norm_region)
    return cls._build(kwargs, channel_axis, dtype, axis_name, module_kwargs)
