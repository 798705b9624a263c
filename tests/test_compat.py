"""flax_lrn.compat and the modules' from_* constructors, without the peers.

Worked examples E1-E7, computed by hand, for each convention, the
identities between conventions, a float64 reference with each
framework's placement written out independently (tests/compat_helpers.py),
second-order gradient checks at alpha ~ 1, the upstream defaults and the
argument checks. Runtime: about 35 s of CPU time (most of it compiling).
"""

from __future__ import annotations

import inspect
import zlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from jax.test_util import check_grads

import flax_lrn
from flax_lrn import compat
from flax_lrn import nnx as lrn_nnx
from tests import compat_helpers as ch

RTOL = 2e-6  # float32 vs float64: a few roundings.

VARIANTS = dict(with_jit=True, without_jit=True)


def _random(shape, seed, scale=1.0):
  rng = np.random.default_rng(seed)
  return (scale * rng.standard_normal(shape)).astype(np.float32)


def _value_and_vjp(f, x, g):
  """``f(x)`` and its VJP with ``g``, jitted: one compilation, not one per op."""

  @jax.jit
  def run(x, g):
    y, vjp = jax.vjp(f, x)
    return y, vjp(g)[0]

  return run(jnp.asarray(x), jnp.asarray(g))


def _close(actual, expected, rtol=RTOL, atol=0.0):
  np.testing.assert_allclose(
    np.asarray(actual, np.float64), expected, rtol=rtol, atol=atol
  )


class WorkedExamplesTest(chex.TestCase):
  """Hand-computed examples, through the upstream parameter names."""

  @chex.variants(**VARIANTS)
  def test_e1_tensorflow_constant(self):
    x = 2.0 * np.ones((2, 2, 2, 3), np.float32)
    f = self.variant(
      lambda v: compat.tensorflow(v, depth_radius=1, bias=0.0, beta=1.0)
    )
    _close(f(x), np.broadcast_to([0.25, 1 / 6, 0.25], x.shape))

  @chex.variants(**VARIANTS)
  def test_e2_tensorflow_arange(self):
    x = np.arange(1, 33, dtype=np.float32).reshape(2, 2, 2, 4)
    y = self.variant(
      lambda v: compat.tensorflow(v, depth_radius=2, bias=0.0, beta=1.0)
    )(x)
    _close(y[0, 0, 0], [0.07142857, 0.06666667, 0.1, 0.137931])
    _close(y[1, 1, 1], [0.01073279, 0.00805153, 0.008319914, 0.01109185])
    # TensorFlow's defaults: r=5 > depth, bias=1, alpha=1, beta=0.5.
    y = self.variant(compat.tensorflow)(x)
    _close(y[0, 0, 0], [0.1796053, 0.3592106, 0.5388159, 0.7184212])
    _close(y[1, 1, 1], [0.475027, 0.4914072, 0.5077875, 0.5241677])

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
    y = compat.tensorflow(x, radius, bias=bias, alpha=alpha, beta=0.5)
    # The vectors are printed to 6 decimals.
    _close(y.ravel(), expected, rtol=1e-6, atol=5e-7)

  @parameterized.named_parameters(
    ("torch", compat.torch, "k"),
    ("onnx", compat.onnx, "bias"),
    ("caffe", compat.caffe, "k"),
  )
  def test_e4_alpha_over_size(self, fn, shift):
    x = np.broadcast_to(
      np.arange(5, dtype=np.float32)[None, :, None, None], (1, 5, 2, 2)
    )
    y = fn(x, 3, alpha=1.0, beta=1.0, **{shift: 0.1})
    expected = [0.0, 0.56603774, 0.41958042, 0.30716724, 0.4743083]
    _close(y[0, :, 0, 0], expected)
    _close(y, np.broadcast_to(np.reshape(expected, (1, 5, 1, 1)), x.shape))

  @parameterized.parameters(
    (2, [0.5, 0.3333333, 0.2142857, 0.1538462], [
      0.1666667, 0.1428571, 0.1153846, 0.2352941]),
    (4, [0.1666667, 0.1333333, 0.09677419, 0.1333333], [
      0.06666667, 0.06451613, 0.1, 0.1538462]),
  )  # fmt: skip
  def test_e5_even_sizes_torch_and_onnx_disagree(self, n, torch_y, onnx_y):
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 4, 1, 1)
    kw = dict(alpha=float(n), beta=1.0)
    _close(compat.torch(x, n, k=1.0, **kw).ravel(), torch_y, rtol=1e-6)
    _close(compat.onnx(x, n, bias=1.0, **kw).ravel(), onnx_y, rtol=1e-6)

  @parameterized.parameters("within_channel", "WITHIN_CHANNEL")
  def test_e6_caffe_within_channel_ignores_k(self, region):
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    expected = [
      [0.0212766, 0.02173913, 0.04],
      [0.025, 0.01748252, 0.02727273],
      [0.04516129, 0.02941176, 0.04347826],
    ]
    for k in (1.0, 0.0, 7.5):
      y = compat.caffe(x, 3, alpha=9.0, beta=1.0, k=k, norm_region=region)
      _close(y[0, 0], expected, rtol=1e-6)
    y = compat.caffe(x, 3, alpha=0.09, k=3.0, norm_region=region)
    _close(
      y[0, 0],
      [
        [0.75289664, 1.23099126, 1.9802012],
        [1.95922885, 1.81917491, 2.51366986],
        [3.47914679, 2.99267499, 3.89001647],
      ],
      rtol=1e-6,
    )

  def test_e7_gradients(self):
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    f = lambda v: compat.tensorflow(v, 1, bias=1.0, alpha=1.0, beta=0.75)  # noqa: E731
    for g, dx in (
      (
        [1.0, 1.0, 1.0, 1.0],
        [0.16939571, -0.0751076, -0.09594017, -0.04012617],
      ),
      (
        [0.5, -1.0, 2.0, 0.25],
        [0.12405765, -0.19073839, 0.14950059, -0.0919437],
      ),
    ):
      y, got = _value_and_vjp(f, x, jnp.array(g))
      _close(y, [0.26084743, 0.26239862, 0.23403473, 0.34740013])
      _close(got, dx, rtol=1e-5)
    # PyTorch's even window: the backward window is the mirrored one.
    x = jnp.array([1.0, -2.0, 3.0, 0.5, 1.5])
    f = lambda v: compat.torch(v, 4, alpha=1.0, beta=0.75, channel_axis=0)  # noqa: E731
    y, dx = _value_and_vjp(f, x, jnp.array([0.5, -1.0, 2.0, 0.25, 1.0]))
    _close(y, [0.54433105, -0.64732236, 0.9609905, 0.15240143, 0.5431096])
    _close(
      dx,
      [0.01489003, 0.1967514, -0.16155275, -0.0305297, 0.27883838],
      rtol=1e-5,
    )


class IdentitiesTest(parameterized.TestCase):
  """How the conventions relate.

  For odd sizes PyTorch, ONNX and Caffe agree, and TensorFlow with
  ``depth_radius = (n - 1) // 2`` agrees with them when given ``alpha / n``,
  since it does not divide alpha by the window size.
  PyTorch places the extra element of an even window before the centre,
  ONNX after it, so each is the other on the channel-reversed input.
  """

  @parameterized.parameters(1, 3, 5, 7, 11)
  def test_odd_sizes_agree(self, n):
    x = _random((2, 6, 3, 4), seed=n, scale=2.0)
    kw = dict(alpha=0.7, beta=0.75)
    y = compat.torch(x, n, k=1.3, **kw)
    _close(compat.onnx(x, n, bias=1.3, **kw), y)
    _close(compat.caffe(x, n, k=1.3, **kw), y)
    r = (n - 1) // 2
    tf = compat.tensorflow(
      x, r, bias=1.3, alpha=0.7 / n, beta=0.75, channel_axis=1
    )
    _close(tf, y, rtol=1e-6)

  def test_tensorflow_is_torch_with_alpha_times_size(self):
    x = _random((2, 4, 4, 9), seed=20, scale=2.0)
    y = compat.tensorflow(x, 2, bias=2.0, alpha=1e-1, beta=0.75)
    torch_y = compat.torch(x, 5, alpha=5e-1, beta=0.75, k=2.0, channel_axis=-1)
    _close(y, torch_y, rtol=1e-6)

  @parameterized.parameters(2, 4, 6, 10)
  def test_even_sizes_mirror(self, n):
    x = _random((2, 7, 3), seed=30 + n, scale=2.0)
    kw = dict(alpha=1.5, beta=0.6)
    y_torch = compat.torch(x, n, k=0.8, **kw)
    y_onnx = compat.onnx(x, n, bias=0.8, **kw)
    mirrored = np.flip(compat.torch(np.flip(x, 1).copy(), n, k=0.8, **kw), 1)
    _close(y_onnx, mirrored, rtol=1e-6)
    self.assertGreater(np.max(np.abs(np.asarray(y_torch - y_onnx))), 1e-3)

  def test_channel_axis_is_a_transpose(self):
    x = _random((2, 5, 3, 4), seed=40)
    nhwc = np.moveaxis(x, 1, -1)
    for fn, kw in (
      (compat.torch, dict(size=4)),
      (compat.onnx, dict(size=4)),
      (compat.caffe, dict(local_size=3, norm_region="within_channel")),
      (compat.tensorflow, dict(depth_radius=1)),
    ):

      @jax.jit
      def both(x, nhwc, fn=fn, kw=kw):
        return (
          fn(x, **kw, alpha=1.0, channel_axis=1),
          fn(nhwc, **kw, alpha=1.0, channel_axis=-1),
        )

      first, last = both(x, nhwc)
      _close(np.moveaxis(np.asarray(last), -1, 1), first, rtol=1e-6)


@pytest.mark.slow
class ReferenceTest(parameterized.TestCase):
  """Random inputs against float64 with each framework's own placement."""

  @parameterized.parameters(
    *[
      (convention, rank, channel_axis)
      for convention in ("tensorflow", "torch", "onnx", "caffe")
      for rank, channel_axis in ((3, 1), (4, -1), (5, 1), (4, 1), (3, -1))
    ]
  )
  def test_forward_and_vjp(self, convention, rank, channel_axis):
    key = f"{convention}{rank}{channel_axis}".encode()
    rng = np.random.default_rng(zlib.crc32(key))
    shape = [2] + [int(rng.integers(1, 4)) for _ in range(rank - 2)]
    shape.insert(1 if channel_axis == 1 else rank - 1, int(rng.integers(1, 9)))
    x = _random(shape, seed=int(rng.integers(1 << 30)), scale=2.0)
    g = _random(shape, seed=int(rng.integers(1 << 30)))
    size = int(rng.integers(0 if convention == "tensorflow" else 1, 9))
    if convention == "caffe":
      size |= 1
    name = {"tensorflow": "depth_radius", "caffe": "local_size"}.get(
      convention, "size"
    )
    shift = {"tensorflow": "bias", "onnx": "bias"}.get(convention, "k")
    kw = {name: size, "alpha": 1.0, "beta": 0.75, shift: 1.5}
    fn = getattr(compat, convention)
    y, dx = _value_and_vjp(
      lambda v: fn(v, **kw, channel_axis=channel_axis), x, g
    )
    canonical = ch.PLACEMENTS[convention](**kw)
    ch.assert_forward_close(y, ch.ref_forward(x, canonical, channel_axis), 2e-6)
    ch.assert_grad_close(
      dx,
      ch.ref_vjp(x, g, canonical, channel_axis),
      ch.grad_scale(x, g, canonical, channel_axis),
      2e-6,
    )

  @parameterized.parameters(3, 5)
  def test_caffe_within_channel_any_rank(self, rank):
    # The box spans every axis but batch and channels; alpha / n**d.
    shape = (2, 3) + (4,) * (rank - 2)
    x = _random(shape, seed=50 + rank, scale=2.0)
    y = compat.caffe(x, 3, alpha=2.0, beta=0.75, norm_region="within_channel")
    axes = tuple(range(2, rank))
    expected = ch.reference.lrn(x, 1, 1, 2.0 / 3 ** len(axes), 1.0, 0.75, axes)
    _close(y, expected)

  @parameterized.parameters(1, 2, 3, 5)
  def test_tensorflow_any_rank_is_the_4d_result(self, rank):
    shape = (3, 2, 2, 7)[-rank:] if rank <= 4 else (2, 3, 2, 2, 7)
    x = _random(shape, seed=60 + rank)
    f = jax.jit(lambda v: compat.tensorflow(v, 2, alpha=0.5))
    _close(f(x), np.asarray(f(x.reshape(-1, 1, 1, 7))).reshape(shape), rtol=0)


@pytest.mark.slow
class GradientTest(parameterized.TestCase):
  """Finite-difference gradients in float64, with alpha ~ 1.

  Higher orders are the core's business (tests/test_lrn.py); here the point
  is that each convention's window and alpha reach the gradient.
  """

  @parameterized.named_parameters(
    ("tensorflow", compat.tensorflow, dict(depth_radius=1, alpha=1.0)),
    ("torch_even", compat.torch, dict(size=4, alpha=2.0, channel_axis=-1)),
    ("onnx_even", compat.onnx, dict(size=4, alpha=2.0, channel_axis=-1)),
    ("caffe_across", compat.caffe, dict(local_size=3, channel_axis=-1)),
    (
      "caffe_within",
      compat.caffe,
      dict(local_size=3, alpha=4.0, norm_region="within_channel"),
    ),
  )
  def test_check_grads(self, fn, kw):
    with jax.enable_x64(True):
      x = jnp.asarray(_random((2, 3, 3, 5), seed=70).astype(np.float64))
      f = jax.jit(lambda v: fn(v, **kw))
      check_grads(f, (x,), order=1, modes=("fwd", "rev"), rtol=1e-5)


class ModulesTest(parameterized.TestCase):
  """LRN.from_* (linen and NNX) compute what the compat functions compute."""

  CASES = (
    ("tensorflow", dict(depth_radius=2, bias=2.0, alpha=1e-2, beta=0.6)),
    ("torch", dict(size=4, alpha=1.0, beta=0.75, k=1.5)),
    ("onnx", dict(size=4, alpha=1.0, beta=0.75, bias=1.5)),
    ("caffe", dict(local_size=5, alpha=1.0, beta=0.75, k=1.5)),
    (
      "caffe",
      dict(local_size=3, alpha=2.0, k=4.0, norm_region="WITHIN_CHANNEL"),
    ),
  )

  @parameterized.parameters(*CASES)
  def test_modules_match_compat(self, convention, kw):
    x = _random((2, 6, 5, 4), seed=80, scale=2.0)
    for channel_axis in (1, -1):
      expected = getattr(compat, convention)(x, **kw, channel_axis=channel_axis)
      linen = getattr(flax_lrn.LRN, f"from_{convention}")(
        **kw, channel_axis=channel_axis
      )
      _close(linen.apply({}, x), expected, rtol=0)
      nnx_layer = getattr(lrn_nnx.LRN, f"from_{convention}")(
        **kw, channel_axis=channel_axis
      )
      _close(nnx_layer(x), expected, rtol=0)

  def test_module_fields(self):
    layer = flax_lrn.LRN.from_torch(3, dtype=jnp.bfloat16, name="norm1")
    self.assertEqual(layer.name, "norm1")
    x = _random((2, 4, 3), seed=81)
    self.assertEqual(layer.apply({}, x).dtype, jnp.bfloat16)
    nnx_layer = lrn_nnx.LRN.from_onnx(3, dtype=jnp.bfloat16)
    self.assertEqual(nnx_layer(x).dtype, jnp.bfloat16)
    self.assertEqual(flax_lrn.LRN.from_tensorflow().channel_axis, -1)
    self.assertEqual(lrn_nnx.LRN.from_caffe().channel_axis, 1)

  def test_inside_a_compact_module(self):
    import flax.linen as nn

    class Net(nn.Module):
      @nn.compact
      def __call__(self, x):
        return flax_lrn.LRN.from_caffe(3, alpha=1e-4, name="norm1")(x)

    x = _random((1, 4, 3, 3), seed=82)
    self.assertEqual(Net().init(jax.random.key(0), x), {})
    _close(Net().apply({}, x), compat.caffe(x, 3, alpha=1e-4), rtol=0)


UPSTREAM_DEFAULTS = {
  # tf.nn.local_response_normalization
  "tensorflow": dict(
    depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, channel_axis=-1
  ),
  # torch.nn.functional.local_response_norm (size is required)
  "torch": dict(
    size=inspect.Parameter.empty,
    alpha=1e-4,
    beta=0.75,
    k=1.0,
    channel_axis=1,
  ),
  # ONNX LRN (size is required)
  "onnx": dict(
    size=inspect.Parameter.empty,
    alpha=1e-4,
    beta=0.75,
    bias=1.0,
    channel_axis=1,
  ),
  # caffe.proto LRNParameter
  "caffe": dict(
    local_size=5,
    alpha=1.0,
    beta=0.75,
    k=1.0,
    norm_region="across_channels",
    channel_axis=1,
  ),
}


class SignatureTest(parameterized.TestCase):
  """The upstream names and defaults, in every entry point."""

  @parameterized.parameters("tensorflow", "torch", "onnx", "caffe")
  def test_defaults(self, convention):
    expected = UPSTREAM_DEFAULTS[convention]
    entry_points = (
      getattr(compat, convention),
      getattr(flax_lrn.LRN, f"from_{convention}"),
      getattr(lrn_nnx.LRN, f"from_{convention}"),
    )
    for fn in entry_points:
      params = inspect.signature(fn).parameters
      got = {n: params[n].default for n in expected}
      self.assertEqual(got, expected, fn)
      self.assertEqual(
        params["channel_axis"].kind, params["channel_axis"].KEYWORD_ONLY
      )
      upstream = [n for n in expected if n != "channel_axis"]
      positional = [
        n
        for n, p in params.items()
        if p.kind == p.POSITIONAL_OR_KEYWORD and n not in ("x", "cls")
      ]
      self.assertEqual(positional, upstream, fn)

  @parameterized.parameters("tensorflow", "torch", "onnx", "caffe")
  def test_docstrings_list_every_parameter(self, convention):
    for fn in (
      getattr(compat, convention),
      getattr(flax_lrn.LRN, f"from_{convention}"),
      getattr(lrn_nnx.LRN, f"from_{convention}"),
    ):
      doc = inspect.getdoc(fn)
      self.assertLess(doc.index("Args:"), doc.index("Example::"), fn)
      for name in inspect.signature(fn).parameters:
        self.assertIn(f"\n  {name}: ", doc.replace("**", ""), fn)

  def test_compat_is_exported(self):
    self.assertIs(flax_lrn.compat, compat)
    self.assertIn("compat", flax_lrn.__all__)
    self.assertEqual(
      sorted(compat.__all__), ["caffe", "onnx", "tensorflow", "torch"]
    )


class ValidationTest(parameterized.TestCase):
  X = np.ones((1, 4, 3, 3), np.float32)

  @parameterized.parameters(
    (compat.torch, dict(size=0), ValueError, "size must be an int >= 1.*got 0"),
    (
      compat.onnx,
      dict(size=-2),
      ValueError,
      "size must be an int >= 1.*got -2",
    ),
    (compat.torch, dict(size=2.0), TypeError, "size must be an int.*float"),
    (compat.onnx, dict(size=True), TypeError, "size must be an int.*bool"),
    (
      compat.tensorflow,
      dict(depth_radius=-1),
      ValueError,
      "depth_radius must be an int >= 0.*half-width.*got -1",
    ),
    (
      compat.tensorflow,
      dict(depth_radius=2.5),
      TypeError,
      "depth_radius must be an int",
    ),
    (
      compat.caffe,
      dict(local_size=4),
      ValueError,
      r"local_size must be an odd int >= 1 \(the window size, which must be odd.*got 4\.",
    ),
    (
      compat.caffe,
      dict(local_size=0),
      ValueError,
      "local_size must be an int >= 1.*got 0",
    ),
    (
      compat.caffe,
      dict(norm_region="across"),
      ValueError,
      "norm_region must be 'across_channels' or 'within_channel'.*'across'",
    ),
    (compat.torch, dict(size=3, alpha=-1.0), ValueError, "alpha must be"),
    (compat.onnx, dict(size=3, bias=-1.0), ValueError, "bias must be.*-1"),
    (compat.tensorflow, dict(bias=np.inf), ValueError, "bias must be.*inf"),
    (compat.caffe, dict(k=-2.0), ValueError, "k must be.*-2"),
    (compat.torch, dict(size=3, beta="0.75"), TypeError, "beta must be"),
  )
  def test_bad_arguments(self, fn, kw, error, pattern):
    with self.assertRaisesRegex(error, pattern):
      fn(self.X, **kw)
    # The module constructors check when the module is built.
    for cls in (flax_lrn.LRN, lrn_nnx.LRN):
      with self.assertRaisesRegex(error, pattern):
        getattr(cls, f"from_{fn.__name__}")(**kw)

  def test_caffe_within_channel_does_not_check_the_ignored_k(self):
    x = _random((1, 2, 3, 3), seed=91)
    y = compat.caffe(x, 3, k=-5.0, norm_region="within_channel")
    _close(y, compat.caffe(x, 3, norm_region="within_channel"), rtol=0)

  def test_channel_axis_out_of_range(self):
    with self.assertRaisesRegex(ValueError, "channel_axis=1 is out of range"):
      compat.torch(np.ones(4, np.float32), 3)

  def test_caffe_within_channel_needs_a_spatial_axis(self):
    with self.assertRaisesRegex(ValueError, "at least one spatial axis"):
      compat.caffe(np.ones((2, 4), np.float32), 3, norm_region="within_channel")

  def test_traced_hyper_parameters(self):
    x = _random((2, 5, 3), seed=90)
    f = jax.jit(lambda v, a, b: compat.torch(v, 3, alpha=a, beta=b, k=1.0))
    _close(f(x, 1.0, 0.75), compat.torch(x, 3, alpha=1.0, k=1.0), rtol=1e-6)
