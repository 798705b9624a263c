"""Property tests: random shapes, axes, windows, parameters and dtypes."""

import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flax_lrn
from tests import reference

SETTINGS = settings(
  max_examples=60,
  deadline=None,
  derandomize=True,
  suppress_health_check=[HealthCheck.too_slow],
)

# Each dtype's output is rounded once from float32 work, so the error is
# within a few of its units in the last place (eps: 2**-10, 2**-7, 2**-23).
RTOL = {"float16": 3e-3, "bfloat16": 2e-2, "float32": 4e-6}


@st.composite
def cases(draw):
  ndim = draw(st.integers(1, 4))
  shape = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
  mode = draw(st.sampled_from(["across_channels", "within_channel"]))
  if mode == "within_channel" and ndim < 2:
    mode = "across_channels"
  channel_axis = draw(st.integers(-ndim, ndim - 1))
  c = channel_axis % ndim
  spatial_axes = None
  if mode == "within_channel":
    others = [a for a in range(ndim) if a != c]
    spatial_axes = tuple(
      sorted(
        draw(
          st.lists(
            st.sampled_from(others),
            min_size=1,
            max_size=len(others),
            unique=True,
          )
        )
      )
    )
  if draw(st.booleans()):
    window = draw(st.integers(1, 13))  # often wider than the axis
    before, after = (window - 1) // 2, window // 2
  else:
    before, after = draw(st.integers(0, 7)), draw(st.integers(0, 7))
    window = (before, after)
  params = dict(
    alpha=draw(st.floats(0.0, 3.0)),
    beta=draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 0.3])),
    k=draw(st.floats(0.1, 3.0)),
    alpha_scaling=draw(st.sampled_from(["none", "size"])),
  )
  dtype = draw(st.sampled_from(["float16", "bfloat16", "float32"]))
  seed = draw(st.integers(0, 2**16))
  return dict(
    shape=shape,
    mode=mode,
    channel_axis=channel_axis,
    spatial_axes=spatial_axes,
    window=window,
    extents=(before, after),
    params=params,
    dtype=dtype,
    seed=seed,
  )


@SETTINGS
@given(cases())
def test_matches_float64_reference(case):
  rng = np.random.default_rng(case["seed"])
  x = jnp.asarray(rng.normal(size=case["shape"]) * 2.0, case["dtype"])
  y = flax_lrn.lrn(
    x,
    case["window"],
    mode=case["mode"],
    channel_axis=case["channel_axis"],
    spatial_axes=case["spatial_axes"],
    **case["params"],
  )
  assert y.shape == x.shape
  assert y.dtype == x.dtype
  ndim = len(case["shape"])
  axes = (
    (case["channel_axis"] % ndim,)
    if case["mode"] == "across_channels"
    else case["spatial_axes"]
  )
  before, after = case["extents"]
  p = case["params"]
  a_eff = p["alpha"]
  if p["alpha_scaling"] == "size":
    a_eff /= (before + after + 1) ** len(axes)
  expected = reference.lrn(
    np.asarray(x, np.float64), before, after, a_eff, p["k"], p["beta"], axes
  )
  np.testing.assert_allclose(
    np.asarray(y, np.float64),
    expected,
    rtol=RTOL[case["dtype"]],
    atol=1e-30,
  )


@SETTINGS
@given(cases())
def test_output_magnitude_never_exceeds_input_over_k_power(case):
  # |y| = |x| (k + a S)^-beta <= |x| k^-beta, since a S >= 0.
  rng = np.random.default_rng(case["seed"])
  x = rng.normal(size=case["shape"]).astype(np.float32)
  p = case["params"]
  y = flax_lrn.lrn(
    x,
    case["window"],
    mode=case["mode"],
    channel_axis=case["channel_axis"],
    spatial_axes=case["spatial_axes"],
    **p,
  )
  bound = np.abs(x) * p["k"] ** (-p["beta"])
  assert np.all(np.abs(np.asarray(y)) <= bound * (1 + 1e-5) + 1e-30)
