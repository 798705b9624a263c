"""LRN on several devices: XLA's SPMD partitioner and ``jax.shard_map``.

Runs on the 8 simulated CPU devices that conftest.py asks for. Two ways to
split an activation are covered:

* ``jax.jit`` over ``NamedSharding`` inputs on a 4 x 2 mesh, with the batch,
  a spatial axis and the channel axis sharded in turn and together, under
  both Explicit and Auto mesh axis types. The function and both modules must
  match the unsharded computation forward and backward, keep the input's
  sharding, and compile to halo exchanges (``collective-permute``) only:
  never an ``all-gather`` or ``all-to-all`` of the activation.
* ``jax.shard_map`` with the channel axis split and ``axis_name`` given, for
  odd, even and one-sided windows and for halos wider than a device's block.

Runtime: about 50 s of CPU on 2 cores (some 80 compilations for 8 devices).
"""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import flax_lrn
from flax_lrn import nnx as lrn_nnx
from tests import reference

pytestmark = pytest.mark.skipif(
  jax.device_count() < 8,
  reason="needs 8 devices (conftest.py simulates them on CPU)",
)

MESH_SHAPE = (4, 2)
MESH_AXES = ("a", "b")
# NHWC; every axis divides by both mesh axes and by the whole mesh.
SHAPE = (4, 8, 8, 16)
ALPHA = 1.0  # a large alpha makes the normalization far from the identity
K = 1.0
BETA = 0.75
# Collectives that would mean XLA gathered or reshuffled the activation
# instead of exchanging window halos.
GATHERS = ("all-gather", "all-to-all", "all-reduce", "reduce-scatter")


@functools.cache
def _mesh(axis_type: AxisType) -> jax.sharding.Mesh:
  return jax.make_mesh(MESH_SHAPE, MESH_AXES, axis_types=(axis_type,) * 2)


@functools.cache
def _inputs(shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(0)
  x = rng.normal(size=shape).astype(np.float32)
  g = rng.normal(size=shape).astype(np.float32)
  return x, g


def _fwd_bwd(fn):
  """Jitted forward and VJP of ``fn``, the cotangent an explicit input."""
  fwd = jax.jit(fn)
  bwd = jax.jit(lambda x, g: jax.vjp(fn, x)[1](g)[0])
  return fwd, bwd


def _extents(window) -> tuple[int, int]:
  if isinstance(window, tuple):
    return window
  return (window - 1) // 2, window // 2


def _collectives(hlo: str) -> dict[str, int]:
  names = (*GATHERS, "collective-permute")
  return {c: len(re.findall(rf"\b{c}(?:-start)?\(", hlo)) for c in names}


def _windowed_axes(mode: str, ndim: int) -> tuple[int, ...]:
  return (ndim - 1,) if mode == "across_channels" else (1, 2)


def _sharded_windowed_axes(spec: P, mode: str) -> list[int]:
  axes = _windowed_axes(mode, len(SHAPE))
  return [a for a, s in enumerate(spec) if s is not None and a in axes]


def _shards(entry) -> int:
  names = entry if isinstance(entry, tuple) else (entry,)
  return int(np.prod([MESH_SHAPE[MESH_AXES.index(n)] for n in names]))


@functools.cache
def _expected(mode: str, window) -> tuple[np.ndarray, np.ndarray]:
  """Unsharded single-device results, checked against the f64 reference."""
  x, g = _inputs()
  fn = functools.partial(
    flax_lrn.lrn, window=window, alpha=ALPHA, beta=BETA, k=K, mode=mode
  )
  fwd, bwd = _fwd_bwd(fn)
  y, dx = np.asarray(fwd(x)), np.asarray(bwd(x, g))
  before, after = _extents(window)
  axes = _windowed_axes(mode, x.ndim)
  args = (before, after, ALPHA, K, BETA, axes)
  np.testing.assert_allclose(y, reference.lrn(x, *args), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
    dx, reference.lrn_vjp(x, g, *args), rtol=1e-4, atol=1e-5
  )
  return y, dx


def _spec_id(spec: P) -> str:
  names = {0: "batch", 1: "h", 2: "w", 3: "chan"}
  parts = [
    f"{names[a]}@{'+'.join(s) if isinstance(s, tuple) else s}"
    for a, s in enumerate(spec)
    if s is not None
  ]
  return "-".join(parts)


BATCH = P("a")
SPATIAL = P(None, "a")
CHANNEL = P(None, None, None, "a")
BATCH_CHANNEL = P("b", None, None, "a")
BATCH_SPATIAL = P("b", "a")
SPATIAL_2D = P(None, "a", "b")
CHANNEL_8 = P(None, None, None, ("a", "b"))

JIT_CASES = [
  # The AlexNet window on every placement of the shards.
  *[
    ("across_channels", 5, spec)
    for spec in (BATCH, SPATIAL, CHANNEL, BATCH_CHANNEL, CHANNEL_8)
  ],
  # One-sided, even and multi-hop windows on a channel split. Window 9 over
  # 8 shards of 2 channels needs halos of 4, two blocks deep.
  ("across_channels", (3, 0), CHANNEL),
  ("across_channels", 4, BATCH_CHANNEL),
  ("across_channels", 9, CHANNEL_8),
  # Wider than the whole axis: every shard needs every other shard's block,
  # so XLA may gather the channels here (see _check_hlo).
  ("across_channels", 17, BATCH_CHANNEL),
  # Within one channel the window spans H and W, so those carry halos.
  *[
    ("within_channel", (2, 1), spec)
    for spec in (SPATIAL, BATCH_SPATIAL, SPATIAL_2D, CHANNEL)
  ],
]


def _jit_params():
  for axis_type in (AxisType.Explicit, AxisType.Auto):
    for mode, window, spec in JIT_CASES:
      if axis_type == AxisType.Auto and not _sharded_windowed_axes(spec, mode):
        continue  # nothing to partition: Explicit covers it
      yield pytest.param(
        axis_type,
        mode,
        window,
        spec,
        id=f"{axis_type.name}-{mode}-{window}-{_spec_id(spec)}".replace(
          " ", ""
        ),
      )


def _halo_within_one_block(spec: P, mode: str, window) -> bool:
  before, after = _extents(window)
  return all(
    max(before, after) <= SHAPE[a] // _shards(spec[a])
    for a in _sharded_windowed_axes(spec, mode)
  )


def _check_hlo(hlo: str, spec: P, mode: str, window, what: str) -> None:
  counts = _collectives(hlo)
  if _sharded_windowed_axes(spec, mode):
    if not _halo_within_one_block(spec, mode, window):
      # When the window reaches past the neighbouring shards, XLA may
      # gather the axis instead (each output then needs most of the
      # inputs); that is a cost decision, not an error, so only the
      # results are checked.
      return
    assert counts["collective-permute"], f"{what}: no halo exchange"
  else:
    # Nothing crosses a shard boundary, so nothing may be communicated.
    assert not counts["collective-permute"], f"{what}: needless exchange"
  gathers = {c: n for c, n in counts.items() if c in GATHERS and n}
  assert not gathers, f"{what}: XLA gathered the activation: {gathers}"


@pytest.mark.parametrize(
  ("axis_type", "mode", "window", "spec"), list(_jit_params())
)
def test_jit_sharded_matches_unsharded(axis_type, mode, window, spec):
  mesh = _mesh(axis_type)
  y_want, dx_want = _expected(mode, window)
  x, g = _inputs()
  sharding = NamedSharding(mesh, spec)
  xs, gs = jax.device_put(x, sharding), jax.device_put(g, sharding)
  fn = functools.partial(
    flax_lrn.lrn, window=window, alpha=ALPHA, beta=BETA, k=K, mode=mode
  )
  fwd, bwd = _fwd_bwd(fn)
  with jax.set_mesh(mesh):
    fwd = fwd.lower(xs).compile()
    y = fwd(xs)
  _check_hlo(fwd.as_text(), spec, mode, window, "forward")
  assert y.sharding.is_equivalent_to(sharding, y.ndim), y.sharding
  # XLA may fuse and order the per-shard program differently from the
  # one-device one: a few ulp apart, no more.
  np.testing.assert_allclose(np.asarray(y), y_want, rtol=1e-6, atol=1e-7)

  with jax.set_mesh(mesh):
    # Explicit axes type every intermediate: JAX's transpose of
    # reduce_window_sum pads to a longer axis, which they refuse unless the
    # mesh divides it, so lrn differentiates through shape-preserving
    # shifts there. Every configuration must compile.
    bwd = bwd.lower(xs, gs).compile()
    dx = bwd(xs, gs)
  _check_hlo(bwd.as_text(), spec, mode, window, "backward")
  assert dx.sharding.is_equivalent_to(sharding, dx.ndim), dx.sharding
  # The halo sums may add in another order than one device does.
  np.testing.assert_allclose(np.asarray(dx), dx_want, rtol=1e-6, atol=1e-6)


def _linen_fn(**kw):
  layer = flax_lrn.LRN(**kw)
  return lambda x: layer.apply({}, x)


def _nnx_fn(**kw):
  return lrn_nnx.LRN(**kw)


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
@pytest.mark.parametrize("make", [_linen_fn, _nnx_fn], ids=["linen", "nnx"])
def test_jit_sharded_modules(make, axis_type):
  mesh = _mesh(axis_type)
  window = 5
  y_want, dx_want = _expected("across_channels", window)
  x, g = _inputs()
  sharding = NamedSharding(mesh, BATCH_CHANNEL)
  xs, gs = jax.device_put(x, sharding), jax.device_put(g, sharding)
  fwd, bwd = _fwd_bwd(make(window=window, alpha=ALPHA, beta=BETA, k=K))
  with jax.set_mesh(mesh):
    fwd, bwd = fwd.lower(xs).compile(), bwd.lower(xs, gs).compile()
    y, dx = fwd(xs), bwd(xs, gs)
  for exe, what in ((fwd, "forward"), (bwd, "backward")):
    _check_hlo(exe.as_text(), BATCH_CHANNEL, "across_channels", window, what)
  assert y.sharding.is_equivalent_to(sharding, y.ndim)
  np.testing.assert_allclose(np.asarray(y), y_want, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(np.asarray(dx), dx_want, rtol=1e-6, atol=1e-6)


def test_nnx_jit_sharded_module_as_state():
  """An NNX model holding the layer, split and merged under ``nnx.jit``."""
  mesh = _mesh(AxisType.Auto)
  x, _ = _inputs()
  y_want, _ = _expected("across_channels", 5)
  model = lrn_nnx.LRN(5, alpha=ALPHA, beta=BETA, k=K)
  xs = jax.device_put(x, NamedSharding(mesh, BATCH_CHANNEL))
  y = nnx.jit(lambda m, x: m(x))(model, xs)
  np.testing.assert_allclose(np.asarray(y), y_want, rtol=1e-6, atol=1e-7)


# shard_map with the channel axis split over "a" (4 devices) and the batch
# over "b" (2 devices): each device holds C / 4 channels.
SHMAP_CASES = [
  # (channels, window, channel_axis)
  (16, 5, -1),
  (16, 4, -1),  # even: the extra element after the centre
  (16, (2, 1), -1),  # even, PyTorch placement
  (16, (3, 0), -1),  # one-sided
  (16, (0, 2), -1),
  (16, (9, 2), -1),  # halo of 9 over blocks of 4: three hops back
  (8, 7, -1),  # halo of 3 over blocks of 2: two hops each way
  (4, 5, -1),  # one channel per device, halo of 2: two hops each way
  (16, 40, -1),  # window much wider than the whole axis
  (8, 3, 1),  # NCHW
]


@functools.cache
def _shmap_mesh() -> jax.sharding.Mesh:
  return _mesh(AxisType.Explicit)


def _shmap_shape(channels: int, channel_axis: int) -> tuple[int, ...]:
  return (2, 3, 5, channels) if channel_axis == -1 else (2, channels, 3, 5)


def _shmap_spec(channel_axis: int, batch: bool = True) -> P:
  spec = [None] * 4
  spec[0] = "b" if batch else None
  spec[channel_axis] = "a"
  return P(*spec)


def _shmap_fwd_bwd(fn, spec: P, **shard_map_kw):
  mesh = _shmap_mesh()
  body = jax.shard_map(
    fn, mesh=mesh, in_specs=spec, out_specs=spec, **shard_map_kw
  )
  return _fwd_bwd(body)


def _run_shmap(fwd, bwd, x, g, spec):
  sharding = NamedSharding(_shmap_mesh(), spec)
  xs, gs = jax.device_put(x, sharding), jax.device_put(g, sharding)
  fwd, bwd = fwd.lower(xs).compile(), bwd.lower(xs, gs).compile()
  for exe, what in ((fwd, "forward"), (bwd, "backward")):
    counts = _collectives(exe.as_text())
    assert not any(counts[c] for c in GATHERS), (what, counts)
  return np.asarray(fwd(xs)), np.asarray(bwd(xs, gs))


@pytest.mark.parametrize(
  ("channels", "window", "channel_axis"),
  SHMAP_CASES,
  ids=[f"C{c}-w{w}-axis{a}".replace(" ", "") for c, w, a in SHMAP_CASES],
)
def test_shard_map_axis_name_matches_unsharded(channels, window, channel_axis):
  shape = _shmap_shape(channels, channel_axis)
  rng = np.random.default_rng(channels)
  x = rng.normal(size=shape).astype(np.float32)
  g = rng.normal(size=shape).astype(np.float32)
  kw = dict(
    window=window,
    alpha=ALPHA,
    beta=BETA,
    k=K,
    alpha_scaling="size",
    channel_axis=channel_axis,
  )
  spec = _shmap_spec(channel_axis)
  fwd, bwd = _shmap_fwd_bwd(
    functools.partial(flax_lrn.lrn, axis_name="a", **kw), spec
  )
  y, dx = _run_shmap(fwd, bwd, x, g, spec)

  before, after = _extents(window)
  args = (before, after, ALPHA / (before + after + 1), K, BETA, (channel_axis,))
  np.testing.assert_allclose(y, reference.lrn(x, *args), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
    dx, reference.lrn_vjp(x, g, *args), rtol=1e-4, atol=1e-5
  )


@pytest.mark.parametrize("make", [_linen_fn, _nnx_fn], ids=["linen", "nnx"])
def test_shard_map_modules_axis_name(make):
  shape, spec = (2, 3, 5, 8), _shmap_spec(-1)
  rng = np.random.default_rng(1)
  x = rng.normal(size=shape).astype(np.float32)
  g = rng.normal(size=shape).astype(np.float32)
  kw = dict(window=(3, 1), alpha=ALPHA, beta=BETA, k=K)
  fwd, bwd = _shmap_fwd_bwd(make(axis_name="a", **kw), spec)
  y, dx = _run_shmap(fwd, bwd, x, g, spec)
  args = (3, 1, ALPHA, K, BETA, (-1,))
  np.testing.assert_allclose(y, reference.lrn(x, *args), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
    dx, reference.lrn_vjp(x, g, *args), rtol=1e-4, atol=1e-5
  )


def test_shard_map_axis_name_without_vma_check():
  """``check_vma=False`` (no varying-axes typing) still exchanges halos."""
  shape, spec = (2, 3, 5, 8), _shmap_spec(-1, batch=False)
  x = np.random.default_rng(2).normal(size=shape).astype(np.float32)
  fn = functools.partial(flax_lrn.lrn, window=5, alpha=ALPHA, axis_name="a")
  body = jax.shard_map(
    fn, mesh=_shmap_mesh(), in_specs=spec, out_specs=spec, check_vma=False
  )
  xs = jax.device_put(x, NamedSharding(_shmap_mesh(), spec))
  y = jax.jit(body)(xs)
  np.testing.assert_allclose(
    y, reference.lrn(x, 2, 2, ALPHA, 2.0, 0.75), rtol=1e-5, atol=1e-6
  )


def test_shard_map_within_channel_ignores_channel_split():
  """Within one channel no halo is needed, with or without axis_name."""
  shape, spec = (2, 6, 6, 8), _shmap_spec(-1)
  x = np.random.default_rng(3).normal(size=shape).astype(np.float32)
  want = reference.lrn(x, 1, 1, ALPHA, K, BETA, axes=(1, 2))
  for axis_name in (None, "a"):
    fn = functools.partial(
      flax_lrn.lrn,
      window=3,
      alpha=ALPHA,
      beta=BETA,
      k=K,
      mode="within_channel",
      axis_name=axis_name,
    )
    body = jax.shard_map(fn, mesh=_shmap_mesh(), in_specs=spec, out_specs=spec)
    xs = jax.device_put(x, NamedSharding(_shmap_mesh(), spec))
    np.testing.assert_allclose(jax.jit(body)(xs), want, rtol=1e-5, atol=1e-6)


def test_shard_map_forgotten_axis_name_normalizes_each_block_alone():
  """Documents the silent failure that ``axis_name`` exists to prevent.

  Without ``axis_name`` a device cannot see its neighbours' channels, so it
  zero-pads its own block: the result is LRN of each block by itself, not of
  the whole array. Nothing at trace time tells a channel split from a batch
  split (both make the local value vary over the mesh axis), so this cannot
  raise; README "Sharding" warns about it.
  """
  shape, spec = (2, 3, 5, 16), _shmap_spec(-1)
  x = np.random.default_rng(4).normal(size=shape).astype(np.float32)
  fn = functools.partial(flax_lrn.lrn, window=5, alpha=ALPHA, k=K)
  body = jax.shard_map(fn, mesh=_shmap_mesh(), in_specs=spec, out_specs=spec)
  xs = jax.device_put(x, NamedSharding(_shmap_mesh(), spec))
  y = np.asarray(jax.jit(body)(xs))
  per_block = np.concatenate(
    [
      reference.lrn(block, 2, 2, ALPHA, K, 0.75)
      for block in np.split(x, MESH_SHAPE[0], axis=-1)
    ],
    axis=-1,
  )
  np.testing.assert_allclose(y, per_block, rtol=1e-5, atol=1e-6)
  whole = reference.lrn(x, 2, 2, ALPHA, K, 0.75)
  assert np.max(np.abs(y - whole)) > 1e-2


def test_axis_name_outside_shard_map_raises():
  x = jnp.ones((2, 8))
  with pytest.raises(ValueError, match=r"only\s+inside jax\.shard_map"):
    flax_lrn.lrn(x, 3, axis_name="a")
  with (
    jax.set_mesh(_mesh(AxisType.Explicit)),
    pytest.raises(ValueError, match=r"only\s+inside jax\.shard_map"),
  ):
    jax.jit(lambda x: flax_lrn.lrn(x, 3, axis_name="a"))(x)


def test_axis_name_that_does_not_split_x_raises():
  # x replicated over "c" (in_specs without "c"): its channels are not
  # split over that axis, so a halo exchange over it would be wrong.
  mesh = _mesh(AxisType.Explicit)
  x = jnp.ones((8, 8))
  f = jax.shard_map(
    lambda v: flax_lrn.lrn(v, 3, axis_name=MESH_AXES[1]),
    mesh=mesh,
    in_specs=P(MESH_AXES[0], None),
    out_specs=P(MESH_AXES[0], None),
  )
  with (
    jax.set_mesh(mesh),
    pytest.raises(ValueError, match="does not vary over that mesh axis"),
  ):
    jax.jit(f)(jax.device_put(x, NamedSharding(mesh, P(MESH_AXES[0], None))))
