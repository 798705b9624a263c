"""GDN as tensorflow_compression and CompressAI compute it, and their weights.

Both libraries compute ``y[i] = x[i] * (beta[i] + sum_j gamma * |x[j]| **
alpha) ** -+epsilon`` but disagree on the rest:

=====================  ===============================  ========================
                       tensorflow_compression           CompressAI
=====================  ===============================  ========================
``gamma`` indexing     ``[input j, output i]``          ``[output i, input j]``
``alpha, epsilon``     1, 1 (simplified); learnable     2, 1/2 (``GDN``);
                                                        1, 1 (``GDN1``)
layout                 any rank ``>= 2``, channels      NCHW only
                       first or last
``rectify``            optional ReLU first              no
stored form            ``reparam_beta``,                ``beta``, ``gamma``
                       ``reparam_gamma``
=====================  ===============================  ========================

:func:`flax_lrn.gdn` and the modules index ``gamma`` as tensorflow_compression
does, so CompressAI's matrix is transposed on the way in and out (its
docstring's ``gamma[j, i]`` notwithstanding, it computes
``conv2d(x ** 2, gamma[:, :, None, None], beta)``, whose weight is
``[output, input]``). Both store ``beta`` and ``gamma`` in the same
reparametrized form (:func:`nonnegative_value`), with the offset ``2**-18``
and ``beta >= 1e-6``, so ported arrays are copied bit for bit.

The front ends :func:`tensorflow_compression` and :func:`compressai_gdn`
(``GDN`` and ``GDN1``) take the parameter *values* (the libraries'
``layer.beta``, ``layer.gamma`` properties, or ``GDN.beta_reparam(GDN.beta)``
in CompressAI), defaulting to the initial ones (``beta = 1``,
``gamma = 0.1 I``). The ``params_*`` functions move the *stored* arrays
between the libraries and the params of :class:`flax_lrn.GDN` and
:class:`flax_lrn.nnx.GDN`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from flax_lrn import _gdn, _gdn_conventions, _gdn_layer, _nonnegative

__all__ = (
  "compressai_gdn",
  "lower_bound",
  "nonnegative_stored",
  "nonnegative_value",
  "params_from_compressai",
  "params_from_tensorflow_compression",
  "params_to_compressai",
  "params_to_tensorflow_compression",
  "tensorflow_compression",
)

nonnegative_value = _nonnegative.value
nonnegative_stored = _nonnegative.stored
lower_bound = _nonnegative.lower_bound

OFFSET = _nonnegative.OFFSET


def _initial(x: Any, channel_axis: int, beta, gamma):
  channels = _gdn_layer.num_channels(x, channel_axis)
  if beta is None:
    beta = np.ones(channels, np.float32)
  if gamma is None:
    gamma = 0.1 * np.eye(channels, dtype=np.float32)
  return beta, gamma


def tensorflow_compression(
  x: ArrayLike,
  beta: ArrayLike | None = None,
  gamma: ArrayLike | None = None,
  *,
  inverse: bool = False,
  rectify: bool = False,
  data_format: str = "channels_last",
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
  channel_axis = _gdn_conventions.channel_axis_of(data_format)
  beta, gamma = _initial(x, channel_axis, beta, gamma)
  return _gdn.gdn(
    x,
    beta,
    gamma,
    alpha=alpha,
    epsilon=epsilon,
    inverse=inverse,
    rectify=rectify,
    channel_axis=channel_axis,
  )


def compressai_gdn(
  x: ArrayLike,
  beta: ArrayLike | None = None,
  gamma: ArrayLike | None = None,
  *,
  inverse: bool = False,
  simplified: bool = False,
  channel_axis: int = 1,
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
      Defaults to ``0.1 I``.
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
    >>> compat_gdn.compressai_gdn(x, jnp.ones(2), gamma).round(5)
    Array([[3.     , 1.26491]], dtype=float32)
    >>> y = compat_gdn.compressai_gdn(x, inverse=True, simplified=True)
    >>> [round(float(v), 5) for v in y[0]]
    [3.9, 5.6]
  """
  beta, gamma = _initial(x, channel_axis, beta, gamma)
  fields = _gdn_conventions.compressai(inverse, simplified=simplified)
  return _gdn.gdn(
    x,
    beta,
    jnp.swapaxes(jnp.asarray(gamma), 0, 1),
    alpha=fields["alpha"],
    epsilon=fields["epsilon"],
    inverse=fields["inverse"],
    channel_axis=channel_axis,
  )


# ---- weights --------------------------------------------------------------


def _numpy(value: Any) -> np.ndarray:
  # torch tensors (possibly on a device, possibly requiring grad), tf
  # variables and arrays alike.
  if hasattr(value, "detach"):
    value = value.detach().cpu()
  if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
    value = value.numpy()
  return np.asarray(value)


def _check_square(gamma: np.ndarray, beta: np.ndarray, source: str) -> None:
  c = beta.shape[0] if beta.ndim == 1 else None
  if beta.ndim != 1 or gamma.shape != (c, c):
    raise ValueError(
      f"{source}: beta must have shape (C,) and gamma (C, C), got"
      f" {beta.shape} and {gamma.shape}."
    )


def _check_buffer(state, key, expected, what) -> None:
  if key not in state:
    return  # a state_dict without buffers (strict=False saves)
  got = float(_numpy(state[key]).reshape(-1)[0])
  if not np.isclose(got, expected, rtol=1e-6, atol=0.0):
    raise ValueError(
      f"{key} is {got!r}, but {what} gives {expected!r}; pass the"
      " CompressAI layer's beta_min and reparam_offset."
    )


def params_from_compressai(
  state_dict: Mapping[str, Any],
  prefix: str = "",
  *,
  beta_min: float = 1e-6,
  reparam_offset: float = OFFSET,
) -> dict[str, jax.Array]:
  """The GDN params of a CompressAI ``GDN``/``GDN1``'s ``state_dict()``.

  CompressAI's stored ``beta`` and ``gamma`` are in the same
  reparametrized form as the modules' params; ``gamma`` is transposed to
  ``[input, output]``. The pedestal and bound buffers, where present, are
  checked against ``beta_min`` and ``reparam_offset``.

  Args:
    state_dict: the layer's ``state_dict()`` (or a model's, with
      ``prefix``), of torch tensors or arrays.
    prefix: the layer's key prefix in a model's state dict, e.g.
      ``'g_a.1.'``.
    beta_min: the layer's ``beta_min``; build the module with the same.
    reparam_offset: the layer's ``reparam_offset``.

  Returns:
    ``{'reparam_beta': ..., 'reparam_gamma': ...}``: the ``params`` of
    :class:`flax_lrn.GDN` (``{'params': ...}``) or the values of the params
    of :class:`flax_lrn.nnx.GDN` (``nnx.update(layer, ...)``).

  Raises:
    KeyError: if the state dict has no ``beta`` or ``gamma``.
    ValueError: if the shapes do not match or the buffers disagree.

  Example::

    >>> import numpy as np
    >>> from flax_lrn import compat_gdn
    >>> state = {"beta": np.ones(2), "gamma": np.array([[0.3, 0.0], [0.2, 0.3]])}
    >>> params = compat_gdn.params_from_compressai(state)
    >>> params["reparam_gamma"]  # [input, output]
    Array([[0.3, 0.2],
           [0. , 0.3]], dtype=float32)
  """
  beta = _numpy(state_dict[prefix + "beta"])
  gamma = _numpy(state_dict[prefix + "gamma"])
  _check_square(gamma, beta, "the CompressAI state dict")
  pedestal = reparam_offset**2
  for name, minimum in (("beta", beta_min), ("gamma", 0.0)):
    _check_buffer(
      state_dict, f"{prefix}{name}_reparam.pedestal", pedestal, "reparam_offset"
    )
    _check_buffer(
      state_dict,
      f"{prefix}{name}_reparam.lower_bound.bound",
      _nonnegative.bound(minimum, reparam_offset),
      f"the minimum {minimum} of {name}",
    )
  return {
    "reparam_beta": jnp.asarray(beta, jnp.float32),
    "reparam_gamma": jnp.asarray(gamma.T, jnp.float32),
  }


def params_to_compressai(
  params: Mapping[str, ArrayLike],
  *,
  beta_min: float = 1e-6,
  reparam_offset: float = OFFSET,
) -> dict[str, np.ndarray]:
  """A CompressAI ``GDN`` state dict (as NumPy arrays) of the GDN params.

  Load it with ``layer.load_state_dict({k: torch.from_numpy(v) ...})``.
  CompressAI has no learned ``alpha`` or ``epsilon``.

  Args:
    params: the params of :class:`flax_lrn.GDN` or the values of
      :class:`flax_lrn.nnx.GDN`'s params.
    beta_min: the module's ``beta_min``.
    reparam_offset: the module's ``reparam_offset``.

  Returns:
    ``beta``, ``gamma`` (``[output, input]``) and the four buffers.

  Raises:
    ValueError: if the params hold a learned ``alpha`` or ``epsilon``.
  """
  learned = sorted(set(params) - {"reparam_beta", "reparam_gamma"})
  if learned:
    raise ValueError(
      f"CompressAI's GDN has fixed exponents; these params have {learned}."
    )
  pedestal = np.array([reparam_offset**2], np.float32)
  state = {
    "beta": np.array(params["reparam_beta"], np.float32),
    "gamma": np.array(params["reparam_gamma"], np.float32).T.copy(),
  }
  for name, minimum in (("beta", beta_min), ("gamma", 0.0)):
    state[f"{name}_reparam.pedestal"] = pedestal
    state[f"{name}_reparam.lower_bound.bound"] = np.array(
      [_nonnegative.bound(minimum, reparam_offset)], np.float32
    )
  return state


_TFC_NAMES = (
  "reparam_alpha",
  "reparam_beta",
  "reparam_gamma",
  "reparam_epsilon",
)


def _leaf_name(name: str) -> str:
  # 'analysis/gdn_0/reparam_beta:0' -> 'reparam_beta'
  return name.split("/")[-1].split(":")[0]


def params_from_tensorflow_compression(
  variables: Mapping[str, Any] | Iterable[Any],
) -> dict[str, jax.Array]:
  """The GDN params of a ``tfc.GDN`` layer's variables.

  tensorflow_compression stores ``reparam_beta`` and ``reparam_gamma`` (and
  ``reparam_alpha``, ``reparam_epsilon`` when learned) in the modules'
  form and ``gamma``'s indexing, so they are copied as they are.

  Args:
    variables: ``layer.weights`` (variables with a ``name``), or a mapping
      from variable names (scoped names such as ``'gdn/reparam_beta:0'``
      are fine) to arrays.

  Returns:
    The params, named as in the modules.

  Raises:
    ValueError: if ``reparam_beta`` or ``reparam_gamma`` is missing or a
      name occurs twice.

  Example::

    >>> import numpy as np
    >>> from flax_lrn import compat_gdn
    >>> variables = {"gdn/reparam_beta:0": np.ones(3),
    ...              "gdn/reparam_gamma:0": np.eye(3)}
    >>> sorted(compat_gdn.params_from_tensorflow_compression(variables))
    ['reparam_beta', 'reparam_gamma']
  """
  items = (
    variables.items()
    if isinstance(variables, Mapping)
    else ((v.name, v) for v in variables)
  )
  params: dict[str, jax.Array] = {}
  for name, value in items:
    leaf = _leaf_name(name)
    if leaf not in _TFC_NAMES:
      continue
    if leaf in params:
      raise ValueError(f"{leaf} occurs twice among the variables ({name!r}).")
    params[leaf] = jnp.asarray(_numpy(value), jnp.float32)
  missing = [n for n in ("reparam_beta", "reparam_gamma") if n not in params]
  if missing:
    raise ValueError(
      f"No {missing} among the variables; tfc.GDN built with fixed beta or"
      " gamma tensors has nothing to port for them."
    )
  _check_square(
    np.asarray(params["reparam_gamma"]),
    np.asarray(params["reparam_beta"]),
    "the tensorflow_compression variables",
  )
  return params


def params_to_tensorflow_compression(
  params: Mapping[str, ArrayLike],
) -> dict[str, np.ndarray]:
  """The ``tfc.GDN`` variables (as NumPy arrays) of the GDN params.

  Assign them with ``variable.assign(...)`` by name (``layer.weights``).

  Args:
    params: the params of :class:`flax_lrn.GDN` or the values of
      :class:`flax_lrn.nnx.GDN`'s params.

  Returns:
    ``reparam_beta``, ``reparam_gamma`` and any learned exponents.
  """
  return {name: np.array(v, np.float32) for name, v in params.items()}
