"""tensorflow_compression's and CompressAI's GDN, as GDN module fields.

The one place that maps each library's constructor arguments onto the
fields of :class:`flax_lrn.GDN` and :class:`flax_lrn.nnx.GDN`, so that the
``from_*`` constructors of both modules agree.
"""

from __future__ import annotations

from typing import Any, cast

from flax_lrn import _gdn_layer, _nonnegative, _validation

DATA_FORMATS = {"channels_last": -1, "channels_first": 1}


def _flag(name: str, value: Any) -> bool:
  if not isinstance(value, bool):
    raise TypeError(f"{name} must be a bool, got {value!r}.")
  return value


def channel_axis_of(data_format: Any) -> int:
  """tensorflow_compression's ``data_format`` as a channel axis."""
  if data_format not in DATA_FORMATS:
    raise ValueError(
      f"data_format must be one of {tuple(DATA_FORMATS)}, got {data_format!r}."
    )
  return DATA_FORMATS[data_format]


def tensorflow_compression(
  inverse: bool = False,
  rectify: bool = False,
  data_format: str = "channels_last",
  alpha_parameter: float | None = 1.0,
  epsilon_parameter: float | None = 1.0,
) -> dict[str, Any]:
  """The fields of ``tfc.GDN(...)``; a ``None`` parameter is learned from 1."""
  fields = dict(
    inverse=_flag("inverse", inverse),
    rectify=_flag("rectify", rectify),
    channel_axis=channel_axis_of(data_format),
    beta_min=_gdn_layer.BETA_MINIMUM,
  )
  # The modules apply tfc's minimums (alpha >= 1, epsilon >= 1e-6) to a
  # learned value.
  for name, value in (
    ("alpha", alpha_parameter),
    ("epsilon", epsilon_parameter),
  ):
    learned = value is None
    fields[name] = (
      1.0
      if value is None
      else cast(
        float,
        _validation.check_nonnegative(
          f"{name}_parameter", value, f"the fixed {name}"
        ),
      )
    )
    fields[f"learn_{name}"] = learned
  return fields


def compressai(
  inverse: bool = False,
  beta_min: float = 1e-6,
  gamma_init: float = 0.1,
  simplified: bool = False,
) -> dict[str, Any]:
  """The fields of CompressAI's ``GDN`` (or ``GDN1`` when ``simplified``)."""
  beta_min = cast(
    float, _validation.check_nonnegative("beta_min", beta_min, "the floor")
  )
  gamma_init = cast(
    float,
    _validation.check_nonnegative(
      "gamma_init", gamma_init, "the initial diagonal of gamma"
    ),
  )
  simplified = _flag("simplified", simplified)
  return dict(
    inverse=_flag("inverse", inverse),
    rectify=False,
    alpha=1.0 if simplified else 2.0,
    epsilon=1.0 if simplified else 0.5,
    channel_axis=1,
    beta_min=beta_min,
    gamma_init=_nonnegative.scaled_identity(gamma_init),
  )
