"""Bad input raises a clear ValueError/TypeError at trace time."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flax_lrn

X = jnp.ones((2, 4, 4, 3))


def _raises(exc, match, *args, **kwargs):
  """Checks eager and jitted calls raise ``exc`` with ``match``."""
  with pytest.raises(exc, match=match):
    flax_lrn.lrn(*args, **kwargs)
  x, *rest = args
  with pytest.raises(exc, match=match):
    jax.jit(lambda v: flax_lrn.lrn(v, *rest, **kwargs))(x)


@pytest.mark.parametrize(
  "x",
  [
    jnp.ones((2, 3), jnp.int32),
    jnp.ones((2, 3), bool),
    jnp.ones((2, 3), jnp.complex64),
    np.arange(6).reshape(2, 3),
  ],
)
def test_non_float_input(x):
  _raises(
    TypeError, r"x must have a real floating dtype .*got (int|bool|complex)", x
  )


def test_scalar_input():
  with pytest.raises(ValueError, match="rank >= 1"):
    flax_lrn.lrn(jnp.float32(1.0))


@pytest.mark.parametrize("axis", [4, -5, 10])
def test_channel_axis_out_of_range(axis):
  _raises(
    ValueError,
    re.escape(f"channel_axis={axis} is out of range for an input of rank 4"),
    X,
    channel_axis=axis,
  )


@pytest.mark.parametrize("window", [0, -3])
def test_window_size_below_one(window):
  _raises(
    ValueError, f"window must be an int size >= 1 .*got {window}", X, window
  )


@pytest.mark.parametrize("window", [(-1, 2), (2, -1)])
def test_negative_extents(window):
  _raises(
    ValueError,
    re.escape(f"a pair (before, after) of ints >= 0, got {window}"),
    X,
    window,
  )


@pytest.mark.parametrize("window", [(1, 2, 3), ()])
def test_window_wrong_length(window):
  _raises(ValueError, "pair", X, window)


@pytest.mark.parametrize("window", [2.5, "5", True, (1.0, 2)])
def test_window_wrong_type(window):
  _raises(TypeError, "must be an int", X, window)


@pytest.mark.parametrize(
  "name,value",
  [
    ("alpha", -1.0),
    ("alpha", float("nan")),
    ("alpha", float("inf")),
    ("beta", -0.5),
    ("beta", float("nan")),
    ("k", -1.0),
    ("k", float("inf")),
  ],
)
def test_bad_hyperparameter_values(name, value):
  _raises(
    ValueError,
    f"{name} must be a finite real scalar >= 0 .*got {value}",
    X,
    **{name: value},
  )


@pytest.mark.parametrize("name", ["alpha", "beta", "k"])
def test_hyperparameter_types(name):
  rule = f"{name} must be a finite real scalar >= 0"
  _raises(TypeError, f"{rule} .*got the bool True", X, **{name: True})
  _raises(TypeError, f"{rule} .*got \\(1\\+2j\\)", X, **{name: 1 + 2j})
  _raises(ValueError, f"{rule} .*shape \\(2,\\)", X, **{name: [1.0, 2.0]})


def test_bad_mode_and_scaling():
  _raises(ValueError, "mode must be one of", X, mode="across")
  _raises(ValueError, "alpha_scaling must be one of", X, alpha_scaling="n")


def test_bad_output_dtype():
  _raises(TypeError, "dtype must be a real floating dtype", X, dtype=jnp.int8)
  _raises(
    TypeError, "dtype must be a real floating dtype", X, dtype="complex64"
  )


def test_within_channel_needs_a_spatial_axis():
  _raises(
    ValueError,
    "needs at least one spatial axis",
    jnp.ones((2, 3)),
    mode="within_channel",
  )


def test_spatial_axes_checks():
  kw = dict(mode="within_channel")
  rule = "spatial_axes must be None or a non-empty sequence of distinct axes"
  _raises(
    ValueError,
    rf"{rule} other than channel_axis=3, got \(1, 3\), which includes it",
    X,
    spatial_axes=(1, 3),
    **kw,
  )
  _raises(ValueError, "which repeats an axis", X, spatial_axes=(1, 1), **kw)
  _raises(
    ValueError, "spatial_axes=7 is out of range", X, spatial_axes=(7,), **kw
  )
  _raises(ValueError, rf"{rule} .*got \(\)", X, spatial_axes=(), **kw)
  _raises(TypeError, f"{rule} .*got 'hw'", X, spatial_axes="hw", **kw)
  _raises(
    ValueError, "only applies to mode='within_channel'", X, spatial_axes=(1, 2)
  )


def test_traced_hyperparameter_must_be_scalar():
  with pytest.raises(ValueError, match="alpha must be a finite real scalar"):
    jax.jit(lambda a: flax_lrn.lrn(X, alpha=a))(jnp.ones(3))


def test_modules_raise_the_same_errors():
  with pytest.raises(ValueError, match="window must be an int size >= 1"):
    flax_lrn.LRN(window=0).init(jax.random.key(0), X)
  with pytest.raises(ValueError, match="channel_axis=5 is out of range"):
    flax_lrn.nnx.LRN(channel_axis=5)(X)
