"""GDN on several devices: batch and space sharded, nothing communicated.

GDN mixes channels at one position only, so an activation split over its
batch and spatial axes needs no data from other devices. Under ``jax.jit``
with ``NamedSharding`` inputs on the 8 simulated CPU devices of
conftest.py (4 x 2 mesh), the forward pass and the gradient of the input
must compile without any collective, keep the input's sharding and match
one device. (The gradients of ``beta`` and ``gamma`` sum over the batch and
space, so they do need a reduction across devices.) Runtime: about 20 s.
"""

from __future__ import annotations

import functools
import re

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import flax_lrn
from tests import gdn_reference as ref

pytestmark = pytest.mark.skipif(
  jax.device_count() < 8,
  reason="needs 8 devices (conftest.py simulates them on CPU)",
)

COLLECTIVES = (
  "all-gather",
  "all-to-all",
  "all-reduce",
  "reduce-scatter",
  "collective-permute",
)


@functools.cache
def _mesh(axis_type: AxisType) -> jax.sharding.Mesh:
  return jax.make_mesh((4, 2), ("a", "b"), axis_types=(axis_type,) * 2)


def _collectives(hlo: str) -> dict[str, int]:
  counts = {
    c: len(re.findall(rf"\b{c}(?:-start)?\(", hlo)) for c in COLLECTIVES
  }
  return {c: n for c, n in counts.items() if n}


CASES = [
  # (shape, channel_axis, spec): NHWC and NCHW, batch, space and both.
  ((8, 8, 8, 16), -1, P("a")),
  ((8, 8, 8, 16), -1, P(None, "a", "b")),
  ((8, 8, 8, 16), -1, P("b", "a")),
  ((8, 16, 8, 8), 1, P("a", None, "b")),
  ((8, 16, 8, 8), 1, P(None, None, "a", "b")),
]


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
@pytest.mark.parametrize(("shape", "channel_axis", "spec"), CASES, ids=str)
def test_batch_and_space_sharding_communicates_nothing(
  axis_type, shape, channel_axis, spec
):
  rng = np.random.default_rng(0)
  x = rng.normal(size=shape).astype(np.float32)
  g = rng.normal(size=shape).astype(np.float32)
  c = shape[channel_axis]
  beta = rng.uniform(0.5, 1.5, c).astype(np.float32)
  gamma = rng.uniform(0.0, 0.3, (c, c)).astype(np.float32)
  fn = functools.partial(
    flax_lrn.gdn, beta=beta, gamma=gamma, channel_axis=channel_axis
  )
  fwd = jax.jit(fn)
  bwd = jax.jit(lambda x, g: jax.vjp(fn, x)[1](g)[0])
  y_want, dx_want = fwd(x), bwd(x, g)
  np.testing.assert_allclose(
    y_want, ref.gdn(x, beta, gamma, channel_axis=channel_axis), rtol=1e-5
  )

  mesh = _mesh(axis_type)
  sharding = NamedSharding(mesh, spec)
  xs, gs = jax.device_put(x, sharding), jax.device_put(g, sharding)
  with jax.set_mesh(mesh):
    fwd_s = fwd.lower(xs).compile()
    bwd_s = bwd.lower(xs, gs).compile()
    y, dx = fwd_s(xs), bwd_s(xs, gs)
  assert not _collectives(fwd_s.as_text()), _collectives(fwd_s.as_text())
  assert not _collectives(bwd_s.as_text()), _collectives(bwd_s.as_text())
  assert y.sharding.is_equivalent_to(sharding, y.ndim), y.sharding
  assert dx.sharding.is_equivalent_to(sharding, dx.ndim), dx.sharding
  np.testing.assert_allclose(np.asarray(y), y_want, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(np.asarray(dx), dx_want, rtol=1e-6, atol=1e-7)


def test_channel_sharding_does_communicate():
  # The check above is live: splitting the channels, which GDN mixes, needs
  # the other devices' channels.
  x = np.ones((8, 4, 4, 16), np.float32)
  fn = jax.jit(
    functools.partial(flax_lrn.gdn, beta=np.ones(16), gamma=np.ones((16, 16)))
  )
  mesh = _mesh(AxisType.Auto)
  xs = jax.device_put(x, NamedSharding(mesh, P(None, None, None, "a")))
  with jax.set_mesh(mesh):
    assert _collectives(fn.lower(xs).compile().as_text())
