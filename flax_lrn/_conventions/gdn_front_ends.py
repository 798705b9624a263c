"""The GDN front ends of :mod:`flax_lrn.compat_gdn`.

Each takes one library's layer arguments, with the defaults of
:mod:`flax_lrn._conventions.gdn`, and the layer's parameter *values*, and
computes :func:`flax_lrn.gdn`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from flax_lrn._conventions import gdn as conventions
from flax_lrn._conventions.gdn import COMPRESSAI
from flax_lrn._conventions.gdn import TENSORFLOW_COMPRESSION as TFC
from flax_lrn._core import gdn


def _initial(channels: int, beta, gamma):
  """The given values, or the libraries' initial ones for ``None``."""
  if beta is None:
    beta = np.full(channels, conventions.BETA_START, np.float32)
  if gamma is None:
    gamma = conventions.GAMMA_GAIN * np.eye(channels, dtype=np.float32)
  return beta, gamma


def tensorflow_compression(
  x: ArrayLike,
  beta: ArrayLike | None = None,
  gamma: ArrayLike | None = None,
  *,
  inverse: bool = TFC.inverse,
  rectify: bool = TFC.rectify,
  data_format: str = TFC.data_format,
  alpha: ArrayLike = 1.0,
  epsilon: ArrayLike = 1.0,
) -> jax.Array:
  """``tfc.GDN(...)(x)`` with the layer's ``beta`` and ``gamma`` values.

  tensorflow_compression's defaults are the simplified GDN
  ``y = x / (beta + |x| @ gamma)``. Its general-``alpha`` branch raises
  ``x`` (not ``|x|``) to the power, which is NaN for negative inputs and
  fractional ``alpha``; this follows its documented ``|x| ** alpha``.

  Args:
    x: the input, rank ``>= 2``.
    beta: the layer's ``beta``, shape ``(C,)``. Defaults to its initial
      value, ones.
    gamma: the layer's ``gamma``, ``[input, output]``. Defaults to its
      initial value, ``0.1 I``.
    inverse: IGDN.
    rectify: a ReLU first.
    data_format: ``'channels_last'`` or ``'channels_first'``.
    alpha: the layer's ``alpha``.
    epsilon: the layer's ``epsilon``.

  Returns:
    The output, of the shape and dtype of ``x``.

  Raises:
    TypeError, ValueError: as :func:`flax_lrn.gdn`, or for an unknown
      ``data_format``.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat_gdn
    >>> compat_gdn.tensorflow_compression(jnp.array([[-1.0, 2.0]]))
    Array([[-0.9090909,  1.6666666]], dtype=float32)
  """
  checked = gdn.check_input(x, conventions.channel_axis_of(data_format))
  beta, gamma = _initial(checked.channels, beta, gamma)
  return gdn.gdn_of_checked(
    checked,
    beta,
    gamma,
    alpha=alpha,
    epsilon=epsilon,
    inverse=inverse,
    rectify=rectify,
    dtype=None,
  )


def compressai(
  x: ArrayLike,
  beta: ArrayLike | None = None,
  gamma: ArrayLike | None = None,
  *,
  inverse: bool = COMPRESSAI.inverse,
  simplified: bool = COMPRESSAI.simplified,
  channel_axis: int = COMPRESSAI.channel_axis,
) -> jax.Array:
  """``compressai.layers.GDN(C, inverse)(x)`` (``GDN1`` if ``simplified``).

  ``GDN``: ``y[i] = x[i] / sqrt(beta[i] + sum_j gamma[i, j] x[j] ** 2)``;
  ``GDN1``: ``y[i] = x[i] / (beta[i] + sum_j gamma[i, j] |x[j]|)``; the
  inverse multiplies. ``gamma`` is CompressAI's, ``[output, input]``.

  Args:
    x: the input, rank ``>= 2`` (CompressAI: 4-D NCHW).
    beta: ``layer.beta_reparam(layer.beta)``, shape ``(C,)``. Defaults to
      ones.
    gamma: ``layer.gamma_reparam(layer.gamma)``, ``[output, input]``.
      Defaults to 0.1 times the identity.
    inverse: IGDN.
    simplified: ``GDN1`` instead of ``GDN``.
    channel_axis: the channel axis. Defaults to 1, CompressAI's NCHW.

  Returns:
    The output, of the shape and dtype of ``x``.

  Raises:
    TypeError, ValueError: as :func:`flax_lrn.gdn`.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax_lrn import compat_gdn
    >>> x = jnp.array([[3.0, 4.0]])
    >>> # Output 1 is normalized by input 0: CompressAI's gamma[1, 0].
    >>> gamma = jnp.array([[0.0, 0.0], [1.0, 0.0]])
    >>> compat_gdn.compressai(x, jnp.ones(2), gamma).round(5)
    Array([[3.     , 1.26491]], dtype=float32)
    >>> y = compat_gdn.compressai(x, inverse=True, simplified=True)
    >>> [round(float(v), 5) for v in y[0]]
    [3.9, 5.6]
  """
  checked = gdn.check_input(x, channel_axis)
  beta, gamma = _initial(checked.channels, beta, gamma)
  fields = conventions.compressai(
    inverse, COMPRESSAI.beta_min, COMPRESSAI.gamma_init, simplified
  )
  return gdn.gdn_of_checked(
    checked,
    beta,
    jnp.swapaxes(jnp.asarray(gamma), 0, 1),
    alpha=fields["alpha"],
    epsilon=fields["epsilon"],
    inverse=fields["inverse"],
    rectify=False,
    dtype=None,
  )
