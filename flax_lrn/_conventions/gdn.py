"""tensorflow_compression's and CompressAI's GDN, as GDN module fields.

The one place that holds each library's constructor defaults
(:data:`TENSORFLOW_COMPRESSION`, :data:`COMPRESSAI`) and parameter bounds,
and maps its constructor arguments onto the fields of :class:`flax_lrn.GDN`
and :class:`flax_lrn.nnx.GDN`, so that the ``from_*`` constructors of both
modules and the front ends of :mod:`flax_lrn.compat_gdn` agree.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from flax_lrn._core import checks

# tensorflow_compression's (and CompressAI's) bounds on what they learn:
# beta >= 1e-6 keeps a divisor, alpha >= 1 keeps |x| ** alpha
# differentiable at 0, epsilon > 0 keeps the pool's power.
BETA_MINIMUM = 1e-6
ALPHA_MINIMUM = 1.0
EPSILON_MINIMUM = 1e-6

# Both libraries' initial values: beta = 1 and gamma = 0.1 I, each channel
# its own pool.
BETA_START = 1.0
GAMMA_GAIN = 0.1

DATA_FORMATS = {"channels_last": -1, "channels_first": 1}


class TensorFlowCompressionDefaults(NamedTuple):
  """``tfc.GDN``'s defaults: the simplified GDN, channels last."""

  inverse: bool = False
  rectify: bool = False
  data_format: str = "channels_last"
  alpha_parameter: float | None = 1.0
  epsilon_parameter: float | None = 1.0


class CompressAIDefaults(NamedTuple):
  """``compressai.layers.GDN``'s defaults: the original GDN, NCHW."""

  inverse: bool = False
  beta_min: float = BETA_MINIMUM
  gamma_init: float = GAMMA_GAIN
  simplified: bool = False
  channel_axis: int = 1


TENSORFLOW_COMPRESSION = TensorFlowCompressionDefaults()
COMPRESSAI = CompressAIDefaults()


def channel_axis_of(data_format: Any) -> int:
  """tensorflow_compression's ``data_format`` as a channel axis."""
  if data_format not in DATA_FORMATS:
    raise ValueError(
      f"data_format must be one of {tuple(DATA_FORMATS)}, got {data_format!r}."
    )
  return DATA_FORMATS[data_format]


def tensorflow_compression(
  inverse: bool,
  rectify: bool,
  data_format: str,
  alpha_parameter: float | None,
  epsilon_parameter: float | None,
) -> dict[str, Any]:
  """The fields of ``tfc.GDN(...)``; a ``None`` parameter is learned from 1."""
  fields = dict(
    inverse=checks.check_bool("inverse", inverse),
    rectify=checks.check_bool("rectify", rectify),
    channel_axis=channel_axis_of(data_format),
    beta_min=BETA_MINIMUM,
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
        checks.check_nonnegative(
          f"{name}_parameter", value, f"the fixed {name}"
        ),
      )
    )
    fields[f"learn_{name}"] = learned
  return fields


def compressai(
  inverse: bool, beta_min: float, gamma_init: float, simplified: bool
) -> dict[str, Any]:
  """The fields of CompressAI's ``GDN`` (or ``GDN1`` when ``simplified``).

  ``gamma_init`` stays the gain of the initial ``gamma = gain * I``; the
  modules make it an initializer.
  """
  beta_min = cast(
    float, checks.check_nonnegative("beta_min", beta_min, "the floor")
  )
  gamma_init = cast(
    float,
    checks.check_nonnegative(
      "gamma_init", gamma_init, "the initial diagonal of gamma"
    ),
  )
  simplified = checks.check_bool("simplified", simplified)
  return dict(
    inverse=checks.check_bool("inverse", inverse),
    rectify=False,
    alpha=1.0 if simplified else 2.0,
    epsilon=1.0 if simplified else 0.5,
    beta_min=beta_min,
    gamma_init=gamma_init,
  )
