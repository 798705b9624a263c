"""The Pallas kernel, ``implementation='pallas'``, run by Pallas's interpreter.

On a CPU the kernel runs in Pallas's interpreter: the same kernel code, the
same tiles, clipped reads and masked stores as the Triton kernel on a GPU.
Each test compares it with the float64 NumPy reference written from the
formula (``tests/reference.py``) or with the XLA kernel, on random inputs
whose shapes the tiles do not divide. The structure of the GPU program (one
kernel each way) is read from its lowering for CUDA, which needs no GPU.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export
from jax.test_util import check_grads

import flax_lrn
from tests import reference

# (shape, lrn keyword arguments, reference window axes, before, after)
CASES = {
  # Caffe's WITHIN_CHANNEL on NHWC; 11 x 13 is not a multiple of the tile.
  "within_5x5": (
    (2, 11, 13, 40),
    dict(window=5, mode="within_channel", alpha=1.0, k=2.0, beta=0.75),
    (1, 2),
    2,
    2,
  ),
  # An even window is lopsided; beta off the table of fast powers.
  "within_even": (
    (1, 9, 7, 3),
    dict(window=4, mode="within_channel", alpha=0.7, k=1.0, beta=0.6),
    (1, 2),
    1,
    2,
  ),
  # Across channels on NCHW: the window spans axis 1, H * W is contiguous.
  "across_nchw": (
    (2, 19, 5, 6),
    dict(window=(1, 3), channel_axis=1, alpha=1.5, k=1.0, beta=0.5),
    (1,),
    1,
    3,
  ),
  # A sequence [batch, length, features] with the window over the length.
  "across_middle_axis": (
    (3, 20, 7),
    dict(window=5, channel_axis=1, alpha=2.0, k=0.5, beta=1.0),
    (1,),
    2,
    2,
  ),
}


def _lrn(kw, implementation="pallas"):
  return functools.partial(flax_lrn.lrn, implementation=implementation, **kw)


def _random(shape, seed, scale=2.0, dtype=jnp.float32):
  rng = np.random.default_rng(seed)
  return jnp.asarray(scale * rng.normal(size=shape), dtype)


def _reference(case, x, g=None):
  _, kw, axes, before, after = CASES[case]
  args = (before, after, kw["alpha"], kw["k"], kw["beta"], axes)
  if g is None:
    return reference.lrn(x, *args)
  return reference.lrn_vjp(x, g, *args)


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_matches_the_float64_reference(case):
  shape, kw, *_ = CASES[case]
  x = _random(shape, 0)
  y = jax.jit(_lrn(kw))(x)
  want = _reference(case, x)
  assert y.dtype == jnp.float32
  np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_the_float64_reference(case):
  shape, kw, *_ = CASES[case]
  x, g = _random(shape, 1), _random(shape, 2)
  dx = jax.jit(jax.grad(lambda x: jnp.vdot(_lrn(kw)(x), g)))(x)
  want = _reference(case, x, g)
  scale = np.abs(want).max()
  np.testing.assert_allclose(dx, want, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.slow
def test_check_grads_in_float64():
  shape, kw, *_ = CASES["within_even"]
  with jax.enable_x64(True):
    x = _random(shape, 3, dtype=jnp.float64)
    check_grads(_lrn(kw), (x,), order=1, modes=("rev",), rtol=1e-6)


@pytest.mark.parametrize("case", ["within_5x5", "across_nchw"])
def test_learned_hyperparameters_get_the_xla_kernels_gradients(case):
  shape, kw, *_ = CASES[case]
  x, g = _random(shape, 4), _random(shape, 5)
  fixed = {n: v for n, v in kw.items() if n not in ("alpha", "k", "beta")}

  def grads(implementation):
    def loss(x, alpha, k, beta):
      y = flax_lrn.lrn(
        x, alpha=alpha, k=k, beta=beta, implementation=implementation, **fixed
      )
      return jnp.vdot(y, g)

    return jax.grad(loss, argnums=(0, 1, 2, 3))(x, 1.0, 2.0, 0.75)

  for got, want in zip(grads("pallas"), grads("xla"), strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_vmap_jit_and_checkpoint_agree_with_the_xla_kernel():
  shape, kw, *_ = CASES["within_5x5"]
  x, g = _random((3, *shape[1:]), 6), _random((3, *shape[1:]), 7)

  def per_example(implementation):
    norm = _lrn(kw, implementation)
    one = jax.grad(
      lambda x, g: jnp.vdot(jax.checkpoint(norm)(x[None]), g[None])
    )
    return jax.jit(jax.vmap(one))(x, g)

  np.testing.assert_allclose(
    per_example("pallas"), per_example("xla"), rtol=1e-5, atol=1e-6
  )
  y = jax.vmap(_lrn(kw))(x[:, None])
  np.testing.assert_allclose(y, jax.vmap(_lrn(kw, "xla"))(x[:, None]), 1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_computes_in_float32(dtype):
  shape, kw, *_ = CASES["within_5x5"]
  x, g = _random(shape, 8, dtype=dtype), _random(shape, 9, dtype=dtype)
  y = _lrn(kw)(x)
  dx = jax.grad(lambda x: jnp.vdot(_lrn(kw)(x).astype(jnp.float32), g))(x)
  assert y.dtype == dtype and dx.dtype == dtype
  eps = float(jnp.finfo(dtype).eps)
  want_y = _reference("within_5x5", x)
  want_dx = _reference("within_5x5", x, g)
  # One rounding of the output dtype over float32 maths.
  np.testing.assert_allclose(
    np.asarray(y, np.float64), want_y, atol=eps * np.abs(want_y).max()
  )
  np.testing.assert_allclose(
    np.asarray(dx, np.float64), want_dx, atol=eps * np.abs(want_dx).max()
  )


@pytest.mark.slow
def test_huge_inputs_saturate_as_in_the_xla_kernel():
  shape, kw, *_ = CASES["within_5x5"]
  x = _random(shape, 10).at[0, 3, 4, 5].set(3e30).at[1, 0, 0, 0].set(-1e25)
  g = _random(shape, 11)

  def run(implementation):
    norm = _lrn(kw, implementation)
    y, pullback = jax.vjp(norm, x)
    return y, pullback(g)[0]

  (y, dx), (y_xla, dx_xla) = run("pallas"), run("xla")
  assert np.isfinite(y).all() and np.isfinite(dx).all()
  np.testing.assert_allclose(y, y_xla, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(dx, dx_xla, rtol=1e-5, atol=1e-6)


def test_modules_forward_the_implementation():
  shape, kw, *_ = CASES["within_5x5"]
  x = _random(shape, 12)
  want = _lrn(kw)(x)
  module = flax_lrn.LRN(implementation="pallas", **kw)
  np.testing.assert_allclose(module.apply({}, x), want, rtol=1e-6)
  np.testing.assert_allclose(
    flax_lrn.nnx.LRN(implementation="pallas", **kw)(x), want, rtol=1e-6
  )


def test_a_window_over_the_last_axis_is_refused_at_trace_time():
  x = jnp.ones((2, 4, 4, 8))
  with pytest.raises(ValueError, match=r"implementation='pallas'.*axes \(3,\)"):
    flax_lrn.lrn(x, 5, implementation="pallas")
  with pytest.raises(ValueError, match="implementation='pallas'"):
    flax_lrn.lrn(
      jnp.ones((2, 4, 4)), 3, channel_axis=-1, implementation="pallas"
    )


def test_forward_mode_is_refused():
  shape, kw, *_ = CASES["within_even"]
  x = _random(shape, 13)
  with pytest.raises(TypeError, match="custom_vjp"):
    jax.jvp(_lrn(kw), (x,), (x,))


def _lowered(fn, platform, *args):
  triton = export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")
  exported = export.export(
    jax.jit(fn), platforms=(platform,), disabled_checks=[triton]
  )(*args)
  return exported.mlir_module()


def test_gpu_program_is_one_kernel_each_way():
  shape, kw, *_ = CASES["within_5x5"]
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  norm = _lrn(kw)
  forward = _lowered(norm, "cuda", x)
  grad = _lowered(jax.grad(lambda x: jnp.sum(norm(x))), "cuda", x)
  assert forward.count("__gpu$xla.gpu.triton") == 1
  # The forward pass with its residual, and the backward pass.
  assert grad.count("__gpu$xla.gpu.triton") == 2


def test_tpu_program_is_the_xla_kernels():
  # A per-example input: the XLA kernel drops its unit axis (a reshape),
  # and so must the TPU fallback, forward and under grad.
  shape, kw, *_ = CASES["within_5x5"]
  x = jax.ShapeDtypeStruct((1, *shape[1:]), jnp.float32)
  reshapes = {}
  for implementation in ("pallas", "xla"):
    norm = _lrn(kw, implementation)
    grad = jax.grad(lambda x, norm=norm: jnp.sum(norm(x)))
    programs = [_lowered(f, "tpu", x) for f in (norm, grad)]
    assert not any("custom_call" in p for p in programs)
    reshapes[implementation] = [p.count("stablehlo.reshape") for p in programs]
  assert reshapes["pallas"] == reshapes["xla"]
  assert min(reshapes["xla"]) > 0


def test_jax_export_refuses_the_triton_call():
  # Triton kernels carry no compatibility guarantee: export with 'xla'.
  shape, kw, *_ = CASES["within_5x5"]
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  with pytest.raises(ValueError, match="custom calls"):
    export.export(jax.jit(_lrn(kw)), platforms=("cuda",))(x)
