"""Serialization with ``jax.export``: forward and VJP, symbolic batch.

Each case exports a jitted LRN with a symbolic batch dimension ``b`` (and,
where noted, symbolic spatial or channel dimensions), serializes it with its
first-order VJP, deserializes it, and runs it at two batch sizes. Results
must be bit-identical to calling the jitted function directly: the exported
StableHLO is the same program.

Runtime: about 20 s on 2 CPU cores.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import flax_lrn
from flax_lrn import nnx as lrn_nnx
from tests import reference


def _linen(**kw):
  layer = flax_lrn.LRN(**kw)
  return lambda x: layer.apply({}, x)


def _nnx(**kw):
  layer = lrn_nnx.LRN(**kw)
  return lambda x: layer(x)


def _fn(**kw):
  return lambda x: flax_lrn.lrn(x, **kw)


# (id, function, shape spec with symbolic names, dtype, concrete shapes)
CASES = [
  (
    "alexnet-nhwc",
    _fn(window=5, alpha=1.0, k=2.0, beta=0.75),
    "b, 4, 4, 16",
    jnp.float32,
    [(1, 4, 4, 16), (3, 4, 4, 16)],
  ),
  (
    "pytorch-even-nchw-size-general-beta",
    _fn(
      window=(2, 1),
      alpha=3.0,
      k=1.0,
      beta=0.6,
      alpha_scaling="size",
      channel_axis=1,
    ),
    "b, 6, 5",
    jnp.float32,
    [(2, 6, 5), (5, 6, 5)],
  ),
  (
    "symbolic-channels",
    _fn(window=3, alpha=1.0, beta=1.0),
    "b, c",
    jnp.float32,
    [(2, 3), (4, 11)],
  ),
  (
    "within-symbolic-spatial",
    _fn(window=3, alpha=1.0, beta=0.5, mode="within_channel"),
    "b, h, w, 3",
    jnp.float32,
    [(1, 5, 7, 3), (2, 3, 3, 3)],
  ),
  (
    "bf16",
    _fn(window=5, alpha=1.0),
    "b, 8",
    jnp.bfloat16,
    [(2, 8), (7, 8)],
  ),
  (
    "linen",
    _linen(window=5, alpha=1.0, beta=0.75, k=1.0),
    "b, 2, 2, 8",
    jnp.float32,
    [(1, 2, 2, 8), (3, 2, 2, 8)],
  ),
  (
    "nnx",
    _nnx(window=4, alpha=1.0, beta=0.75, k=1.0, channel_axis=1),
    "b, 8, 3",
    jnp.float32,
    [(1, 8, 3), (3, 8, 3)],
  ),
]


def _random(shape, dtype, seed):
  x = np.random.default_rng(seed).normal(size=shape)
  return jnp.asarray(x, dtype)


@pytest.mark.parametrize(
  ("fn", "spec", "dtype", "shapes"),
  [c[1:] for c in CASES],
  ids=[c[0] for c in CASES],
)
def test_export_roundtrip_forward_and_vjp(fn, spec, dtype, shapes):
  f = jax.jit(fn)
  arg = jax.ShapeDtypeStruct(export.symbolic_shape(spec), dtype)
  exported = export.export(f)(arg)
  blob = exported.serialize(vjp_order=1)
  assert isinstance(blob, bytearray)
  restored = export.deserialize(blob)
  # Symbolic dimensions compare by scope, so compare their printed forms.
  assert str(restored.in_avals) == str(exported.in_avals)
  vjp = restored.vjp()
  f_vjp = jax.jit(lambda x, g: jax.vjp(f, x)[1](g)[0])

  for seed, shape in enumerate(shapes):
    x = _random(shape, dtype, seed)
    g = _random(shape, dtype, seed + 100)
    y_want, dx_want = f(x), f_vjp(x, g)
    y = restored.call(x)
    assert y.dtype == y_want.dtype and y.shape == x.shape
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y_want))
    (dx,) = vjp.call(x, g)
    np.testing.assert_array_equal(np.asarray(dx), np.asarray(dx_want))
  # jax.grad of the deserialized call goes through the serialized VJP.
  dx_grad = jax.grad(lambda x: jnp.vdot(restored.call(x), g).real)(x)
  np.testing.assert_array_equal(np.asarray(dx_grad), np.asarray(dx_want))


def test_export_matches_reference():
  """Guards against a round trip that is self-consistent but wrong."""
  f = jax.jit(lambda x: flax_lrn.lrn(x, (2, 1), alpha=2.0, beta=0.75, k=1.0))
  (b,) = export.symbolic_shape("b")
  exported = export.export(f)(jax.ShapeDtypeStruct((b, 9), jnp.float32))
  restored = export.deserialize(exported.serialize(vjp_order=1))
  x = np.random.default_rng(7).normal(size=(4, 9)).astype(np.float32)
  g = np.random.default_rng(8).normal(size=(4, 9)).astype(np.float32)
  np.testing.assert_allclose(
    restored.call(x), reference.lrn(x, 2, 1, 2.0, 1.0, 0.75), rtol=1e-5
  )
  np.testing.assert_allclose(
    restored.vjp().call(x, g)[0],
    reference.lrn_vjp(x, g, 2, 1, 2.0, 1.0, 0.75),
    rtol=1e-4,
    atol=1e-6,
  )


def test_export_rejects_shape_outside_spec():
  f = jax.jit(lambda x: flax_lrn.lrn(x, 3))
  (b,) = export.symbolic_shape("b")
  exported = export.export(f)(jax.ShapeDtypeStruct((b, 8), jnp.float32))
  restored = export.deserialize(exported.serialize())
  with pytest.raises(ValueError, match="shape"):
    restored.call(jnp.ones((2, 9), jnp.float32))


def test_export_multi_platform_portable():
  """One artifact for CPU, CUDA, ROCm and TPU; no backend-specific calls.

  LRN lowers to plain StableHLO (``reduce_window``, elementwise ops), so it
  exports for every platform from a CPU-only machine. The only custom call
  allowed is JAX's own ``shape_assertion`` for the symbolic dimension; any
  other (a Pallas kernel, a cuDNN call) would tie the artifact to a backend.
  """
  f = jax.jit(lambda x: flax_lrn.lrn(x, 5, alpha=1.0))
  (b,) = export.symbolic_shape("b")
  exported = export.export(f, platforms=("cpu", "cuda", "rocm", "tpu"))(
    jax.ShapeDtypeStruct((b, 4, 4, 8), jnp.float32)
  )
  assert exported.platforms == ("cpu", "cuda", "rocm", "tpu")
  calls = set(re.findall(r"custom_call @(\w+)", exported.mlir_module()))
  assert calls <= {"shape_assertion"}, calls
  restored = export.deserialize(exported.serialize(vjp_order=1))
  x = _random((2, 4, 4, 8), jnp.float32, 0)
  np.testing.assert_array_equal(np.asarray(restored.call(x)), np.asarray(f(x)))


def test_export_traced_hyperparameters():
  """alpha, beta and k as exported arguments, set at serving time."""

  def f(x, alpha, beta, k):
    return flax_lrn.lrn(x, 3, alpha=alpha, beta=beta, k=k)

  (b,) = export.symbolic_shape("b")
  scalar = jax.ShapeDtypeStruct((), jnp.float32)
  exported = export.export(jax.jit(f))(
    jax.ShapeDtypeStruct((b, 6), jnp.float32), scalar, scalar, scalar
  )
  restored = export.deserialize(exported.serialize(vjp_order=1))
  restored_vjp = restored.vjp()
  grads = jax.jit(jax.grad(lambda *a: jnp.sum(f(*a)), argnums=(0, 1, 2, 3)))
  x = np.random.default_rng(3).normal(size=(3, 6)).astype(np.float32)
  for alpha, beta, k in ((1.0, 0.75, 2.0), (0.5, 0.3, 1.0)):
    hp = tuple(np.float32(v) for v in (alpha, beta, k))
    y = restored.call(x, *hp)
    np.testing.assert_allclose(
      y, reference.lrn(x, 1, 1, alpha, k, beta), rtol=1e-5, atol=1e-7
    )
    # The VJP includes the cotangents of the hyper-parameters.
    g = np.ones_like(x)
    dx, da, db, dk = restored_vjp.call(x, *hp, g)
    want = grads(x, *hp)
    for got, w in zip((dx, da, db, dk), want, strict=True):
      np.testing.assert_allclose(got, w, rtol=1e-6)
