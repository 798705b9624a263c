"""The ``from_*`` constructors of the modules, written once per family.

Each constructor takes one framework's parameters with that framework's
names and defaults (:mod:`flax_lrn._conventions`), maps them there, as the
front ends of :mod:`flax_lrn.compat` and :mod:`flax_lrn.compat_gdn` do, and
builds the module with the equivalent fields. Further keyword arguments go
to the module's constructor: a linen module's ``name``, an NNX GDN's
``num_features`` and ``rngs``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self, cast

import jax.numpy as jnp
from flax.typing import Dtype
from jax.typing import DTypeLike

from flax_lrn._conventions import gdn as gdn_conventions
from flax_lrn._conventions import lrn as lrn_conventions
from flax_lrn._conventions.gdn import COMPRESSAI
from flax_lrn._conventions.gdn import TENSORFLOW_COMPRESSION as TFC
from flax_lrn._conventions.lrn import CAFFE, ONNX, TENSORFLOW, TORCH
from flax_lrn._modules import gdn_params


class _Builds:
  @classmethod
  def _build(cls, **fields: Any) -> Self:
    # The module class takes its fields as keywords.
    return cast(Callable[..., Self], cls)(**fields)


class LRNConstructors(_Builds):
  """``from_tensorflow``, ``from_torch``, ``from_onnx`` and ``from_caffe``.

  The mixin of :class:`flax_lrn.LRN` and :class:`flax_lrn.nnx.LRN`, whose
  constructors take the parameters of :func:`flax_lrn.lrn` as keywords.
  """

  @classmethod
  def _lrn(cls, kwargs, channel_axis, dtype, axis_name, module_kwargs) -> Self:
    return cls._build(
      **kwargs,
      channel_axis=channel_axis,
      dtype=dtype,
      axis_name=axis_name,
      **module_kwargs,
    )

  @classmethod
  def from_tensorflow(
    cls,
    depth_radius: int = TENSORFLOW.depth_radius,
    bias: float = TENSORFLOW.bias,
    alpha: float = TENSORFLOW.alpha,
    beta: float = TENSORFLOW.beta,
    *,
    channel_axis: int = TENSORFLOW.channel_axis,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
    **module_kwargs: Any,
  ) -> Self:
    """The module that computes ``tf.nn.local_response_normalization``.

    Takes TensorFlow's parameters and defaults verbatim (window
    ``2 * depth_radius + 1``, alpha not divided); see
    :func:`flax_lrn.compat.tensorflow`.

    Args:
      depth_radius: the half-width of the window, ``>= 0``: the window is
        ``2 * depth_radius + 1`` channels. Defaults to ``5``.
      bias: the additive constant (``k``), finite and ``>= 0``. Defaults to
        ``1.0``.
      alpha: the scale of the sum of squares, finite and ``>= 0``, not
        divided by the window size. Defaults to ``1.0``.
      beta: the exponent, finite and ``>= 0``. Defaults to ``0.5``.
      channel_axis: the channel axis. Defaults to ``-1``.
      dtype: the dtype of the output; ``None`` for the input's.
      axis_name: inside ``jax.shard_map``, the mesh axis the channel axis is
        split over (see :func:`flax_lrn.lrn`); ``None`` under ``jax.jit``.
      **module_kwargs: further arguments of the module's constructor, such
        as a linen module's ``name``.

    Returns:
      A module of this class with the equivalent hyper-parameters.

    Raises:
      TypeError, ValueError: if a parameter has the wrong type or is outside
        its range; the message names it.

    Example::

      >>> import flax_lrn
      >>> layer = flax_lrn.LRN.from_tensorflow(depth_radius=2, alpha=2e-5)
      >>> layer.window, layer.alpha, layer.alpha_scaling, layer.channel_axis
      ((2, 2), 2e-05, 'none', -1)
      >>> flax_lrn.nnx.LRN.from_tensorflow(depth_radius=2).window
      (2, 2)
    """
    kwargs = lrn_conventions.tensorflow(depth_radius, bias, alpha, beta)
    return cls._lrn(kwargs, channel_axis, dtype, axis_name, module_kwargs)

  @classmethod
  def from_torch(
    cls,
    size: int,
    alpha: float = TORCH.alpha,
    beta: float = TORCH.beta,
    k: float = TORCH.k,
    *,
    channel_axis: int = TORCH.channel_axis,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
    **module_kwargs: Any,
  ) -> Self:
    """The module that computes ``torch.nn.LocalResponseNorm(size, ...)``.

    Takes PyTorch's parameters and defaults verbatim (alpha divided by
    ``size``; an even window holds its extra channel before the centre); see
    :func:`flax_lrn.compat.torch`. The channel axis defaults to PyTorch's 1;
    pass ``channel_axis=-1`` when the ported model runs on NHWC arrays.

    Args:
      size: the number of channels in the window, ``>= 1``.
      alpha: the scale of the sum of squares, finite and ``>= 0``; divided
        by ``size``. Defaults to ``0.0001``.
      beta: the exponent, finite and ``>= 0``. Defaults to ``0.75``.
      k: the additive constant, finite and ``>= 0``. Defaults to ``1.0``.
      channel_axis: the channel axis. Defaults to ``1``.
      dtype: the dtype of the output; ``None`` for the input's.
      axis_name: inside ``jax.shard_map``, the mesh axis the channel axis is
        split over (see :func:`flax_lrn.lrn`); ``None`` under ``jax.jit``.
      **module_kwargs: further arguments of the module's constructor, such
        as a linen module's ``name``.

    Returns:
      A module of this class with the equivalent hyper-parameters.

    Raises:
      TypeError, ValueError: if a parameter has the wrong type or is outside
        its range; the message names it.

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
    kwargs = lrn_conventions.torch(size, alpha, beta, k)
    return cls._lrn(kwargs, channel_axis, dtype, axis_name, module_kwargs)

  @classmethod
  def from_onnx(
    cls,
    size: int,
    alpha: float = ONNX.alpha,
    beta: float = ONNX.beta,
    bias: float = ONNX.bias,
    *,
    channel_axis: int = ONNX.channel_axis,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
    **module_kwargs: Any,
  ) -> Self:
    """The module that computes an ONNX ``LRN`` node's attributes.

    Takes the ONNX attributes and defaults verbatim (alpha divided by
    ``size``; an even window holds its extra channel after the centre); see
    :func:`flax_lrn.compat.onnx`.

    Args:
      size: the number of channels in the window, ``>= 1``.
      alpha: the scale of the sum of squares, finite and ``>= 0``; divided
        by ``size``. Defaults to ``0.0001``.
      beta: the exponent, finite and ``>= 0``. Defaults to ``0.75``.
      bias: the additive constant (``k``), finite and ``>= 0``. Defaults to
        ``1.0``.
      channel_axis: the channel axis. Defaults to ``1``.
      dtype: the dtype of the output; ``None`` for the input's.
      axis_name: inside ``jax.shard_map``, the mesh axis the channel axis is
        split over (see :func:`flax_lrn.lrn`); ``None`` under ``jax.jit``.
      **module_kwargs: further arguments of the module's constructor, such
        as a linen module's ``name``.

    Returns:
      A module of this class with the equivalent hyper-parameters.

    Raises:
      TypeError, ValueError: if a parameter has the wrong type or is outside
        its range; the message names it.

    Example::

      >>> import flax_lrn
      >>> flax_lrn.LRN.from_onnx(size=4).window
      (1, 2)
      >>> flax_lrn.nnx.LRN.from_onnx(size=4).window
      (1, 2)
    """
    kwargs = lrn_conventions.onnx(size, alpha, beta, bias)
    return cls._lrn(kwargs, channel_axis, dtype, axis_name, module_kwargs)

  @classmethod
  def from_caffe(
    cls,
    local_size: int = CAFFE.local_size,
    alpha: float = CAFFE.alpha,
    beta: float = CAFFE.beta,
    k: float = CAFFE.k,
    norm_region: str = CAFFE.norm_region,
    *,
    channel_axis: int = CAFFE.channel_axis,
    dtype: DTypeLike | None = None,
    axis_name: str | None = None,
    **module_kwargs: Any,
  ) -> Self:
    """The module that computes a Caffe ``LRN`` layer's ``lrn_param``.

    Takes Caffe's parameters and defaults verbatim (odd ``local_size``
    only; alpha divided by the number of elements in the window; ``k``
    ignored for ``within_channel``, as in Caffe); see
    :func:`flax_lrn.compat.caffe`.

    Args:
      local_size: the window size, odd and ``>= 1``. Defaults to ``5``.
      alpha: the scale of the sum of squares, finite and ``>= 0``; divided
        by the number of elements in the window. Defaults to ``1.0``.
      beta: the exponent, finite and ``>= 0``. Defaults to ``0.75``.
      k: the additive constant, finite and ``>= 0``; ignored for
        ``'within_channel'``. Defaults to ``1.0``.
      norm_region: ``'across_channels'`` or ``'within_channel'`` (or the
        prototxt spellings ``'ACROSS_CHANNELS'``, ``'WITHIN_CHANNEL'``).
        Defaults to ``'across_channels'``.
      channel_axis: the channel axis. Defaults to ``1``.
      dtype: the dtype of the output; ``None`` for the input's.
      axis_name: inside ``jax.shard_map``, the mesh axis the channel axis is
        split over (see :func:`flax_lrn.lrn`); ``None`` under ``jax.jit``.
      **module_kwargs: further arguments of the module's constructor, such
        as a linen module's ``name``.

    Returns:
      A module of this class with the equivalent hyper-parameters.

    Raises:
      TypeError, ValueError: if a parameter has the wrong type or is outside
        its range; the message names it.

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
    kwargs = lrn_conventions.caffe(local_size, alpha, beta, k, norm_region)
    return cls._lrn(kwargs, channel_axis, dtype, axis_name, module_kwargs)


class GDNConstructors(_Builds):
  """``from_tensorflow_compression`` and ``from_compressai``.

  The mixin of :class:`flax_lrn.GDN` and :class:`flax_lrn.nnx.GDN`. The NNX
  module builds its parameters at once, so it takes ``num_features`` (and
  ``rngs`` for a random initializer) by keyword; the linen module learns
  the channel count from its input.
  """

  @classmethod
  def from_tensorflow_compression(
    cls,
    inverse: bool = TFC.inverse,
    rectify: bool = TFC.rectify,
    data_format: str = TFC.data_format,
    alpha_parameter: float | None = TFC.alpha_parameter,
    epsilon_parameter: float | None = TFC.epsilon_parameter,
    *,
    dtype: Dtype | None = None,
    param_dtype: Dtype = jnp.float32,
    **module_kwargs: Any,
  ) -> Self:
    """The layer ``tfc.GDN(...)`` builds, with its arguments and defaults.

    tensorflow_compression defaults to the simplified GDN (``alpha = 1``,
    ``epsilon = 1``). A ``None`` exponent is learned, as there, from 1,
    with tensorflow_compression's lower bounds.

    Args:
      inverse: IGDN. Defaults to ``False``.
      rectify: a ReLU first. Defaults to ``False``.
      data_format: ``'channels_last'`` or ``'channels_first'``. Defaults to
        ``'channels_last'``.
      alpha_parameter: a fixed alpha, or None to learn it. Defaults to
        ``1.0``.
      epsilon_parameter: a fixed epsilon, or None to learn it. Defaults to
        ``1.0``.
      dtype: the output dtype; ``None`` for the input's.
      param_dtype: the dtype of the stored params.
      **module_kwargs: further arguments of the module's constructor: a
        linen module's ``name``; an NNX module's ``num_features`` (required)
        and ``rngs``.

    Returns:
      A module of this class with the equivalent fields.

    Raises:
      TypeError, ValueError: if ``data_format`` is unknown, a flag is not a
        bool or an exponent is negative; the message names it.

    Example::

      >>> import flax_lrn
      >>> layer = flax_lrn.GDN.from_tensorflow_compression(alpha_parameter=None)
      >>> layer.alpha, layer.learn_alpha, layer.epsilon, layer.channel_axis
      (1.0, True, 1.0, -1)
      >>> layer = flax_lrn.nnx.GDN.from_tensorflow_compression(
      ...   data_format="channels_first", epsilon_parameter=None, num_features=4
      ... )
      >>> layer.channel_axis, float(layer.reparam_epsilon[...])
      (1, 1.0)
    """
    fields = gdn_conventions.tensorflow_compression(
      inverse, rectify, data_format, alpha_parameter, epsilon_parameter
    )
    return cls._build(
      **fields, dtype=dtype, param_dtype=param_dtype, **module_kwargs
    )

  @classmethod
  def from_compressai(
    cls,
    inverse: bool = COMPRESSAI.inverse,
    beta_min: float = COMPRESSAI.beta_min,
    gamma_init: float = COMPRESSAI.gamma_init,
    *,
    simplified: bool = COMPRESSAI.simplified,
    channel_axis: int = COMPRESSAI.channel_axis,
    dtype: Dtype | None = None,
    param_dtype: Dtype = jnp.float32,
    **module_kwargs: Any,
  ) -> Self:
    """The layer ``compressai.layers.GDN(C, ...)`` (``GDN1`` if simplified).

    CompressAI is NCHW only; pass ``channel_axis=-1`` when the ported model
    runs on NHWC arrays. Load the layer's weights with
    :func:`flax_lrn.compat_gdn.params_from_compressai`.

    Args:
      inverse: IGDN. Defaults to ``False``.
      beta_min: the lower bound of ``beta``. Defaults to ``1e-06``.
      gamma_init: the diagonal of the initial ``gamma``. Defaults to
        ``0.1``.
      simplified: ``GDN1`` (``alpha = epsilon = 1``) instead of ``GDN``.
        Defaults to ``False``.
      channel_axis: the channel axis. Defaults to ``1``.
      dtype: the output dtype; ``None`` for the input's.
      param_dtype: the dtype of the stored params.
      **module_kwargs: further arguments of the module's constructor: a
        linen module's ``name``; an NNX module's ``num_features`` (CompressAI's
        ``in_channels``, required) and ``rngs``.

    Returns:
      A module of this class that computes CompressAI's layer.

    Raises:
      TypeError, ValueError: if a flag is not a bool, or ``beta_min`` or
        ``gamma_init`` is negative; the message names it.

    Example::

      >>> import flax_lrn
      >>> layer = flax_lrn.GDN.from_compressai(inverse=True)
      >>> layer.alpha, layer.epsilon, layer.inverse, layer.channel_axis
      (2.0, 0.5, True, 1)
      >>> layer = flax_lrn.nnx.GDN.from_compressai(simplified=True, num_features=8)
      >>> layer.alpha, layer.epsilon, layer.reparam_gamma.shape
      (1.0, 1.0, (8, 8))
    """
    fields = gdn_conventions.compressai(
      inverse, beta_min, gamma_init, simplified
    )
    fields["gamma_init"] = gdn_params.scaled_identity(fields["gamma_init"])
    return cls._build(
      **fields,
      channel_axis=channel_axis,
      dtype=dtype,
      param_dtype=param_dtype,
      **module_kwargs,
    )
