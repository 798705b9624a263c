"""GDN weights moved between tensorflow_compression, CompressAI and the modules.

Both libraries store ``beta`` and ``gamma`` in the reparametrized form of
:mod:`flax_lrn._core.nonnegative`, as the modules do, so the arrays are
copied as they are; CompressAI's ``gamma`` is transposed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from flax_lrn._conventions.gdn import BETA_MINIMUM
from flax_lrn._core import nonnegative
from flax_lrn._core.nonnegative import OFFSET


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
  beta_min: float = BETA_MINIMUM,
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
      nonnegative.bound(minimum, reparam_offset),
      f"the minimum {minimum} of {name}",
    )
  return {
    "reparam_beta": jnp.asarray(beta, jnp.float32),
    "reparam_gamma": jnp.asarray(gamma.T, jnp.float32),
  }


def params_to_compressai(
  params: Mapping[str, ArrayLike],
  *,
  beta_min: float = BETA_MINIMUM,
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

  Example::

    >>> import jax
    >>> import flax_lrn
    >>> from flax_lrn import compat_gdn
    >>> x = jax.numpy.ones((1, 3))
    >>> params = flax_lrn.GDN().init(jax.random.key(0), x)["params"]
    >>> state = compat_gdn.params_to_compressai(params)
    >>> state["gamma"].shape, sorted(state)[:2]
    ((3, 3), ['beta', 'beta_reparam.lower_bound.bound'])
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
      [nonnegative.bound(minimum, reparam_offset)], np.float32
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

  Raises:
    TypeError, ValueError: if a param is not convertible to a float32
      array.

  Example::

    >>> import jax
    >>> import flax_lrn
    >>> from flax_lrn import compat_gdn
    >>> x = jax.numpy.ones((1, 3))
    >>> params = flax_lrn.GDN().init(jax.random.key(0), x)["params"]
    >>> sorted(compat_gdn.params_to_tensorflow_compression(params))
    ['reparam_beta', 'reparam_gamma']
  """
  return {name: np.array(v, np.float32) for name, v in params.items()}
