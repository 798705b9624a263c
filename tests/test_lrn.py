"""Tests of the functional core against worked examples and a float64 reference."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from jax.test_util import check_grads

import flax_lrn
from tests import reference

# Tolerances: f32 results are a handful of roundings away from the float64
# reference; half-precision outputs are rounded once at the end (the work is
# in f32), so they are within about one unit in the last place.
RTOL = {
  jnp.float32: 2e-6,
  jnp.float16: 2e-3,
  jnp.bfloat16: 1.6e-2,
}

ALL_VARIANTS = dict(
  with_jit=True, without_jit=True, with_device=True, without_device=True
)


def _random(shape, seed=0, dtype=np.float32, scale=1.0):
  return (np.random.default_rng(seed).normal(size=shape) * scale).astype(dtype)


class WorkedExamplesTest(chex.TestCase):
  """Worked examples, each computed by hand."""

  @chex.variants(**ALL_VARIANTS)
  def test_e1_constant_input(self):
    x = 2.0 * np.ones([2, 2, 2, 3], np.float32)
    lrn = self.variant(
      lambda v: flax_lrn.lrn(v, (1, 1), alpha=1.0, beta=1.0, k=0.0)
    )
    expected = np.broadcast_to([0.25, 1 / 6, 0.25], x.shape)
    chex.assert_trees_all_close(
      np.asarray(lrn(x)), expected.astype(np.float32), rtol=1e-6
    )

  @chex.variants(**ALL_VARIANTS)
  def test_e2_arange(self):
    x = np.arange(1, 33, dtype=np.float32).reshape(2, 2, 2, 4)
    expected = np.array(
      [
        [0.07142857, 0.06666667, 0.1, 0.137931],
        [0.04545455, 0.03448276, 0.04022989, 0.05369128],
        [0.02980132, 0.02242152, 0.02466368, 0.03287671],
        [0.0220339, 0.01654846, 0.0177305, 0.02363368],
        [0.0174538, 0.01310044, 0.01382824, 0.01843318],
        [0.01444292, 0.01083744, 0.01133005, 0.01510384],
        [0.01231527, 0.009239517, 0.009594883, 0.01279123],
        [0.01073279, 0.00805153, 0.008319914, 0.01109185],
      ]
    ).reshape(x.shape)
    y = self.variant(
      lambda v: flax_lrn.lrn(v, (2, 2), alpha=1.0, beta=1.0, k=0.0)
    )(x)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-6)

  @chex.variants(**ALL_VARIANTS)
  def test_e2_tensorflow_defaults_wider_than_channels(self):
    x = np.arange(1, 33, dtype=np.float32).reshape(2, 2, 2, 4)
    y = self.variant(
      lambda v: flax_lrn.lrn(v, (5, 5), alpha=1.0, beta=0.5, k=1.0)
    )(x)
    np.testing.assert_allclose(
      np.asarray(y)[0, 0, 0],
      [0.1796053, 0.3592106, 0.5388159, 0.7184212],
      rtol=1e-6,
    )
    np.testing.assert_allclose(
      np.asarray(y)[1, 1, 1],
      [0.475027, 0.4914072, 0.5077875, 0.5241677],
      rtol=1e-6,
    )

  @parameterized.parameters(
    (20, 0.0, 1.0, [-0.55, 0.3, 0.35, 0.6, -0.35, 0.05]),
    (20, 0.0, 4.0, [-0.275, 0.15, 0.175, 0.3, -0.175, 0.025]),
    (20, 9.0, 4.0, [-0.22, 0.12, 0.14, 0.24, -0.14, 0.02]),
    (
      2,
      9.0,
      4.0,
      [-0.264926, 0.125109, 0.140112, 0.267261, -0.161788, 0.0244266],
    ),
  )
  def test_e3_tflite_vectors(self, radius, bias, alpha, expected):
    x = np.array([-1.1, 0.6, 0.7, 1.2, -0.7, 0.1], np.float32).reshape(
      1, 1, 1, 6
    )
    y = flax_lrn.lrn(x, (radius, radius), alpha=alpha, beta=0.5, k=bias)
    # The TFLite vectors are printed to 6 decimals: half a unit of that.
    np.testing.assert_allclose(
      np.asarray(y).ravel(), expected, rtol=2e-6, atol=5e-7
    )

  def test_e4_alpha_divided_by_size_nchw(self):
    x = np.broadcast_to(
      np.arange(5, dtype=np.float32)[None, :, None, None], (1, 5, 2, 2)
    )
    y = flax_lrn.lrn(
      x, 3, alpha=1.0, beta=1.0, k=0.1, alpha_scaling="size", channel_axis=1
    )
    np.testing.assert_allclose(
      np.asarray(y)[0, :, 0, 0],
      [0.0, 0.56603774, 0.41958042, 0.30716724, 0.4743083],
      rtol=1e-6,
    )

  @parameterized.parameters(
    # (n, extents, expected): PyTorch, ONNX/cuDNN, oneDNN placements.
    (2, (1, 0), [0.5, 0.3333333, 0.2142857, 0.1538462]),
    (4, (2, 1), [0.1666667, 0.1333333, 0.09677419, 0.1333333]),
    (2, 2, [0.1666667, 0.1428571, 0.1153846, 0.2352941]),
    (4, 4, [0.06666667, 0.06451613, 0.1, 0.1538462]),
    (2, (0, 0), [0.5, 0.4, 0.3, 0.2352941]),
    (4, (1, 1), [0.1666667, 0.1333333, 0.1, 0.1538462]),
  )
  def test_e5_even_window_placements(self, n, window, expected):
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 4, 1, 1)
    # alpha = n with alpha undivided by the window: a_eff = 1, as in E5,
    # whatever the number of terms (oneDNN divides by n, not by n - 1).
    y = flax_lrn.lrn(x, window, alpha=1.0, beta=1.0, k=1.0, channel_axis=1)
    np.testing.assert_allclose(np.asarray(y).ravel(), expected, rtol=1e-6)
    del n

  def test_e6_caffe_within_channel(self):
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    kw = dict(
      mode="within_channel", channel_axis=1, alpha_scaling="size", k=1.0
    )
    y = flax_lrn.lrn(x, 3, alpha=9.0, beta=1.0, **kw)
    np.testing.assert_allclose(
      np.asarray(y)[0, 0],
      [
        [0.0212766, 0.02173913, 0.04],
        [0.025, 0.01748252, 0.02727273],
        [0.04516129, 0.02941176, 0.04347826],
      ],
      rtol=1e-6,
    )
    y = flax_lrn.lrn(x, 3, alpha=0.09, beta=0.75, **kw)
    np.testing.assert_allclose(
      np.asarray(y)[0, 0],
      [
        [0.75289664, 1.23099126, 1.9802012],
        [1.95922885, 1.81917491, 2.51366986],
        [3.47914679, 2.99267499, 3.89001647],
      ],
      rtol=1e-6,
    )

  @parameterized.parameters(
    ([1.0, 1.0, 1.0, 1.0], [0.16939571, -0.0751076, -0.09594017, -0.04012617]),
    ([0.5, -1.0, 2.0, 0.25], [0.12405765, -0.19073839, 0.14950059, -0.0919437]),
  )
  def test_e7_gradient_tensorflow_convention(self, g, expected_dx):
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    f = lambda v: flax_lrn.lrn(v, (1, 1), alpha=1.0, beta=0.75, k=1.0)  # noqa: E731
    y, vjp = jax.vjp(f, x)
    np.testing.assert_allclose(
      y, [0.26084743, 0.26239862, 0.23403473, 0.34740013], rtol=1e-6
    )
    np.testing.assert_allclose(
      vjp(jnp.array(g))[0], expected_dx, rtol=1e-5, atol=1e-7
    )

  def test_e7_gradient_asymmetric_window(self):
    # PyTorch's size=4: the backward pass needs the mirrored window.
    x = jnp.array([1.0, -2.0, 3.0, 0.5, 1.5])
    g = jnp.array([0.5, -1.0, 2.0, 0.25, 1.0])
    f = lambda v: flax_lrn.lrn(  # noqa: E731
      v, (2, 1), alpha=1.0, beta=0.75, k=1.0, alpha_scaling="size"
    )
    y, vjp = jax.vjp(f, x)
    np.testing.assert_allclose(
      y, [0.54433105, -0.64732236, 0.9609905, 0.15240143, 0.5431096], rtol=1e-6
    )
    np.testing.assert_allclose(
      vjp(g)[0],
      [0.01489003, 0.1967514, -0.16155275, -0.0305297, 0.27883838],
      rtol=1e-5,
    )

  def test_e8_huge_values_give_no_nan(self):
    x = np.array([-2e38, 1, 1e38, 1, 1, 1, 1], np.float32)
    y = np.asarray(flax_lrn.lrn(x, (5, 5), alpha=1.0, beta=1.0, k=1.0))
    self.assertFalse(np.isnan(y).any())
    np.testing.assert_array_equal(np.abs(y), np.zeros(7))


@pytest.mark.slow
class ReferenceTest(chex.TestCase):
  """Random inputs against the float64 NumPy reference."""

  @chex.variants(**ALL_VARIANTS)
  @parameterized.parameters(
    # shape, channel_axis, window, scaling
    ((7,), -1, 3, "none"),
    ((3, 5), 0, (2, 0), "size"),
    ((2, 6, 6, 8), -1, 5, "none"),
    ((2, 8, 6, 6), 1, 4, "size"),
    ((2, 8, 6, 6), 1, (2, 1), "size"),
    ((2, 3, 4, 5, 6), 2, (0, 3), "none"),
    ((2, 4, 4, 3), -1, 11, "size"),  # wider than C on both sides
    ((2, 4, 4, 1), 3, 5, "none"),  # C = 1
  )
  def test_across_channels(self, shape, channel_axis, window, scaling):
    x = _random(shape, seed=len(shape), scale=1.5)
    b, a = (
      window if isinstance(window, tuple) else ((window - 1) // 2, window // 2)
    )
    kw = dict(alpha=0.7, beta=0.75, k=1.3, alpha_scaling=scaling)
    y = self.variant(
      lambda v: flax_lrn.lrn(v, window, channel_axis=channel_axis, **kw)
    )(x)
    a_eff = 0.7 / (b + a + 1) if scaling == "size" else 0.7
    expected = reference.lrn(x, b, a, a_eff, 1.3, 0.75, axes=(channel_axis,))
    np.testing.assert_allclose(np.asarray(y), expected, rtol=RTOL[jnp.float32])

  @chex.variants(**ALL_VARIANTS)
  @parameterized.parameters(
    # shape, channel_axis, spatial_axes, window
    ((2, 9, 3), -1, None, 3),  # 1-D spatial (NWC)
    ((2, 3, 7, 6), 1, None, 3),  # 2-D, NCHW (Caffe)
    ((2, 7, 6, 3), -1, None, (2, 1)),  # 2-D, NHWC, asymmetric
    ((2, 5, 4, 6, 2), -1, None, 3),  # 3-D
    ((6, 7, 3), -1, (0, 1), 5),  # unbatched HWC
    ((2, 7, 6, 3), -1, (2,), 4),  # a single chosen axis
  )
  def test_within_channel(self, shape, channel_axis, spatial_axes, window):
    x = _random(shape, seed=3, scale=1.5)
    b, a = (
      window if isinstance(window, tuple) else ((window - 1) // 2, window // 2)
    )
    ndim = len(shape)
    c = channel_axis % ndim
    axes = (
      tuple(i for i in range(1, ndim) if i != c)
      if spatial_axes is None
      else spatial_axes
    )
    y = self.variant(
      lambda v: flax_lrn.lrn(
        v,
        window,
        alpha=2.0,
        beta=0.75,
        k=1.0,
        alpha_scaling="size",
        mode="within_channel",
        channel_axis=channel_axis,
        spatial_axes=spatial_axes,
      )
    )(x)
    a_eff = 2.0 / (b + a + 1) ** len(axes)
    expected = reference.lrn(x, b, a, a_eff, 1.0, 0.75, axes=axes)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=RTOL[jnp.float32])

  @parameterized.parameters(0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 0.6, 3.3)
  def test_every_beta_path(self, beta):
    # The fast paths (rsqrt, sqrt, reciprocal) and the general power.
    x = _random((4, 16), seed=5, scale=2.0)
    y = flax_lrn.lrn(x, 5, alpha=1.0, beta=beta, k=0.5)
    expected = reference.lrn(x, 2, 2, 1.0, 0.5, beta)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=4e-6)

  @parameterized.parameters(jnp.float16, jnp.bfloat16, jnp.float32)
  def test_dtypes(self, dtype):
    x = _random((2, 5, 5, 12), seed=7, scale=3.0).astype(dtype)
    y = flax_lrn.lrn(x, 5, alpha=0.5, beta=0.75, k=1.0)
    self.assertEqual(y.dtype, dtype)
    expected = reference.lrn(np.asarray(x, np.float64), 2, 2, 0.5, 1.0, 0.75)
    np.testing.assert_allclose(
      np.asarray(y, np.float64), expected, rtol=RTOL[dtype]
    )

  def test_float64(self):
    with jax.enable_x64(True):
      x = _random((3, 9), seed=8, dtype=np.float64)
      y = flax_lrn.lrn(x, 4, alpha=1.0, beta=0.6, k=1.0)
      self.assertEqual(y.dtype, jnp.float64)
      np.testing.assert_allclose(
        np.asarray(y), reference.lrn(x, 1, 2, 1.0, 1.0, 0.6), rtol=1e-13
      )

  def test_half_precision_accumulates_in_float32(self):
    # 300**2 overflows float16 (max 65504); the result must still be right.
    x = np.array([300.0, -400.0, 500.0, 20.0], np.float16)
    y = flax_lrn.lrn(x, 3, alpha=1e-4, beta=0.75, k=2.0)
    self.assertTrue(np.isfinite(np.asarray(y, np.float32)).all())
    expected = reference.lrn(x, 1, 1, 1e-4, 2.0, 0.75)
    np.testing.assert_allclose(np.asarray(y, np.float64), expected, rtol=1e-3)

  def test_output_dtype_override(self):
    x = _random((2, 8), seed=9).astype(jnp.bfloat16)
    y = flax_lrn.lrn(x, 3, dtype=jnp.float32)
    self.assertEqual(y.dtype, jnp.float32)
    expected = reference.lrn(np.asarray(x, np.float64), 1, 1, 1e-4, 2.0, 0.75)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=2e-6)

  @parameterized.parameters(
    ((0, 4, 4, 3), "across_channels"),
    ((2, 4, 4, 0), "across_channels"),
    ((2, 0, 4, 3), "within_channel"),
  )
  def test_empty_input(self, shape, mode):
    y = flax_lrn.lrn(jnp.zeros(shape, jnp.bfloat16), 5, mode=mode)
    self.assertEqual(y.shape, shape)
    self.assertEqual(y.dtype, jnp.bfloat16)
    y = jax.jit(lambda v: flax_lrn.lrn(v, 5, mode=mode))(jnp.zeros(shape))
    self.assertEqual(y.shape, shape)

  def test_python_lists_and_numpy_arrays(self):
    y = flax_lrn.lrn([[1.0, 2.0, 3.0]], 3, alpha=1.0, beta=1.0, k=1.0)
    expected = reference.lrn([[1.0, 2.0, 3.0]], 1, 1, 1.0, 1.0, 1.0)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-6)


@pytest.mark.slow
class TransformTest(chex.TestCase):
  """jit, vmap, grad, jvp, hessian, checkpoint."""

  def test_vmap_over_any_number_of_leading_axes(self):
    x = _random((3, 2, 4, 4, 6), seed=10)
    f = lambda v: flax_lrn.lrn(v, 5, alpha=1.0, beta=0.75, k=1.0)  # noqa: E731
    full = f(x)
    np.testing.assert_allclose(jax.vmap(f)(x), full, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.vmap(f))(x), full, rtol=1e-6)
    # Channels first, mapped over an axis behind them.
    g = lambda v: flax_lrn.lrn(v, 5, alpha=1.0, channel_axis=0)  # noqa: E731
    np.testing.assert_allclose(
      jax.vmap(g, in_axes=1, out_axes=1)(jnp.moveaxis(x, -1, 0)),
      jnp.moveaxis(flax_lrn.lrn(x, 5, alpha=1.0), -1, 0),
      rtol=1e-6,
    )

  def test_vmap_within_channel(self):
    x = _random((3, 2, 5, 5, 4), seed=11)
    kw = dict(alpha=1.0, mode="within_channel", alpha_scaling="size")
    batched = flax_lrn.lrn(x, 3, spatial_axes=(2, 3), **kw)
    mapped = jax.vmap(lambda v: flax_lrn.lrn(v, 3, spatial_axes=(1, 2), **kw))
    np.testing.assert_allclose(mapped(x), batched, rtol=1e-6)

  @parameterized.parameters(
    dict(window=5, mode="across_channels"),
    dict(window=(2, 1), mode="across_channels"),
    dict(window=(0, 3), mode="across_channels"),
    dict(window=3, mode="within_channel"),
    dict(window=(1, 0), mode="within_channel"),
  )
  def test_check_grads_order_2(self, window, mode):
    x = jnp.asarray(_random((2, 3, 3, 5), seed=12))
    for beta in (0.75, 0.6):
      f = lambda v, beta=beta: flax_lrn.lrn(  # noqa: E731
        v, window, alpha=1.0, beta=beta, k=1.0, mode=mode
      )
      check_grads(f, (x,), order=2, modes=("fwd", "rev"), eps=1e-2, rtol=1e-2)

  @parameterized.parameters((5,), ((2, 1),), ((0, 2),), (9,))
  def test_vjp_matches_analytic_gradient(self, window):
    x = _random((3, 7), seed=13, scale=1.5)
    g = _random((3, 7), seed=14)
    b, a = (
      window if isinstance(window, tuple) else ((window - 1) // 2, window // 2)
    )
    f = lambda v: flax_lrn.lrn(v, window, alpha=1.0, beta=0.75, k=1.0)  # noqa: E731
    dx = jax.vjp(f, jnp.asarray(x))[1](jnp.asarray(g))[0]
    np.testing.assert_allclose(
      dx, reference.lrn_vjp(x, g, b, a, 1.0, 1.0, 0.75), rtol=2e-5, atol=1e-6
    )

  def test_forward_and_reverse_jacobians_agree(self):
    x = jnp.asarray(_random((2, 6), seed=15))
    f = lambda v: flax_lrn.lrn(v, (1, 2), alpha=1.0, beta=0.75, k=1.0)  # noqa: E731
    np.testing.assert_allclose(
      jax.jacfwd(f)(x), jax.jacrev(f)(x), rtol=1e-5, atol=1e-7
    )

  def test_hessian_matches_finite_differences_of_gradient(self):
    with jax.enable_x64(True):
      x = jnp.asarray(_random((5,), seed=16, dtype=np.float64))
      f = lambda v: jnp.sum(  # noqa: E731
        jnp.sin(flax_lrn.lrn(v, 3, alpha=1.0, beta=0.75, k=1.0))
      )
      h = jax.hessian(f)(x)
      eps = 1e-6
      g = jax.jit(jax.grad(f))
      fd = np.stack(
        [(g(x + eps * e) - g(x - eps * e)) / (2 * eps) for e in np.eye(5)]
      )
      np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-8)
      np.testing.assert_allclose(h, h.T, rtol=1e-10, atol=1e-12)

  def test_checkpoint(self):
    x = jnp.asarray(_random((2, 4, 4, 8), seed=17))
    f = lambda v: jnp.sum(  # noqa: E731
      flax_lrn.lrn(v, 5, alpha=1.0, beta=0.75, k=1.0) ** 2
    )
    remat, plain = jax.grad(jax.checkpoint(f))(x), jax.grad(f)(x)
    # Both against the float64 gradient of sum(y**2), whose cotangent is
    # 2y. An entry that is a difference of larger terms is exact to
    # float32's rounding of those terms, so the tolerances are ulps of the
    # gradient's scale: one per term of the window's two sums against the
    # reference, two between programs that XLA fuses differently.
    x64 = np.asarray(x, np.float64)
    y64 = reference.lrn(x64, 2, 2, 1.0, 1.0, 0.75)
    want = reference.lrn_vjp(x64, 2 * y64, 2, 2, 1.0, 1.0, 0.75)
    ulp = np.spacing(np.float32(np.max(np.abs(want))))
    for got in (remat, plain):
      np.testing.assert_allclose(got, want, rtol=1e-6, atol=10 * ulp)
    np.testing.assert_allclose(remat, plain, rtol=1e-6, atol=2 * ulp)

  def test_jit_does_not_retrace_for_same_shapes(self):
    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(v):
      return flax_lrn.lrn(v, 5)

    f(jnp.ones((2, 8)))
    f(jnp.zeros((2, 8)))

  def test_half_precision_gradients(self):
    x = _random((2, 12), seed=18, scale=2.0)
    g = _random((2, 12), seed=19)
    f = lambda v: flax_lrn.lrn(v, 5, alpha=1.0, beta=0.75, k=1.0)  # noqa: E731
    for dtype, rtol in ((jnp.bfloat16, 5e-2), (jnp.float16, 5e-3)):
      xh = jnp.asarray(x, dtype)
      dx = jax.vjp(f, xh)[1](jnp.asarray(g, dtype))[0]
      self.assertEqual(dx.dtype, dtype)
      expected = reference.lrn_vjp(
        np.asarray(xh, np.float64),
        np.asarray(jnp.asarray(g, dtype), np.float64),
        2,
        2,
        1.0,
        1.0,
        0.75,
      )
      np.testing.assert_allclose(
        np.asarray(dx, np.float64), expected, rtol=rtol, atol=rtol
      )
