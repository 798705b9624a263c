"""The window-sum forms and the differentiation rule against plain autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import flax_lrn
from flax_lrn._core import windows as _window
from tests import reference


@pytest.mark.parametrize("axes", [(3,), (1, 2), (0, 1, 2, 3)])
@pytest.mark.parametrize("extents", [(2, 2), (3, 0), (0, 4), (5, 6)])
def test_window_forms_agree(axes, extents):
  x2 = jnp.asarray(
    np.random.default_rng(0).uniform(size=(2, 5, 6, 7)), jnp.float32
  )
  forms = {
    f: jax.jit(lambda v, f=f: _window.window_sum(v, axes, *extents, form=f))(x2)
    for f in _window.FORMS
  }
  # Shifted copies and slices add the same terms in the same order.
  np.testing.assert_array_equal(forms["shifts"], forms["slices"])
  expected = reference.window_sum(np.asarray(x2), axes, *extents)
  for f, got in forms.items():
    np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f)


def test_window_sum_rejects_an_unknown_form():
  with pytest.raises(ValueError, match=r"form must be one of .*got 'shift'"):
    _window.window_sum(jnp.ones((2, 3)), (1,), 1, 1, form="shift")


@pytest.mark.parametrize(
  "axes,width,expected",
  [
    ((1,), 5, ("shifts", "slices", "shifts")),
    ((1,), _window.MAX_UNROLLED_WIDTH + 1, ("reduce_window",) * 3),
    ((0, 1), 3, ("reduce_window",) * 3),
  ],
)
def test_choose_forms_unsharded(axes, width, expected):
  assert _window.choose_forms(jnp.ones((4, 6)), axes, width) == expected


def _plain_lrn(x, alpha, k, beta, before, after, axis=-1):
  """The formula, differentiated by JAX's autodiff alone."""
  dims = [1] * x.ndim
  dims[axis] = before + after + 1
  pads = [(0, 0)] * x.ndim
  pads[axis] = (before, after)
  s = k + alpha * lax.reduce_window(
    x * x, 0.0, lax.add, dims, (1,) * x.ndim, pads
  )
  return x * s ** (-beta)


@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.3])
@pytest.mark.parametrize("window", [(2, 2), (2, 1), (0, 3)])
def test_rule_matches_autodiff_of_the_formula(beta, window):
  x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 9)), jnp.float32)
  params = (jnp.float32(0.9), jnp.float32(1.2), jnp.float32(beta))

  def ours(x, alpha, k, b):
    return flax_lrn.lrn(x, window, alpha=alpha, k=k, beta=b)

  def plain(x, alpha, k, b):
    return _plain_lrn(x, alpha, k, b, *window)

  g = jnp.asarray(np.random.default_rng(2).normal(size=x.shape), jnp.float32)
  got = jax.vjp(ours, x, *params)[1](g)
  want = jax.vjp(plain, x, *params)[1](g)
  for a, b in zip(got, want, strict=True):
    np.testing.assert_allclose(a, b, rtol=3e-5, atol=1e-6)
  # Only x differentiated: the rule's symbolic-zero branches.
  got_x = jax.vjp(lambda v: ours(v, *params), x)[1](g)[0]
  np.testing.assert_allclose(got_x, want[0], rtol=3e-5, atol=1e-6)
  tangents = tuple(
    jnp.asarray(
      np.random.default_rng(3 + i).normal(size=jnp.shape(p)), jnp.float32
    )
    for i, p in enumerate((x, *params))
  )
  _, got = jax.jvp(ours, (x, *params), tangents)
  _, want = jax.jvp(plain, (x, *params), tangents)
  np.testing.assert_allclose(got, want, rtol=3e-5, atol=1e-6)


def test_static_beta_fast_path_matches_traced_beta():
  x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 12)), jnp.float32)
  static = jax.grad(lambda v: jnp.sum(flax_lrn.lrn(v, 5, alpha=1.0) ** 2))(x)
  traced = jax.jit(
    jax.grad(lambda v, b: jnp.sum(flax_lrn.lrn(v, 5, alpha=1.0, beta=b) ** 2))
  )(x, 0.75)
  np.testing.assert_allclose(static, traced, rtol=2e-5, atol=1e-7)


def test_second_order_through_the_rule():
  x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 7)), jnp.float32)
  check_grads(
    lambda x, a, k, b: flax_lrn.lrn(x, (1, 2), alpha=a, k=k, beta=b),
    (x, 0.8, 1.1, 0.75),
    order=2,
    modes=("fwd", "rev"),
    eps=1e-2,
    rtol=2e-2,
  )


@pytest.mark.parametrize("width", [17, 33, 101])
def test_wide_windows_use_reduce_window_and_stay_exact(width):
  x = np.random.default_rng(6).normal(size=(2, 120)).astype(np.float32)
  y = flax_lrn.lrn(x, width, alpha=1.0, beta=0.75, k=1.0)
  b, a = (width - 1) // 2, width // 2
  np.testing.assert_allclose(
    y, reference.lrn(x, b, a, 1.0, 1.0, 0.75), rtol=5e-6
  )
  g = np.random.default_rng(7).normal(size=x.shape).astype(np.float32)
  dx = jax.vjp(lambda v: flax_lrn.lrn(v, width, alpha=1.0, k=1.0), x)[1](g)[0]
  np.testing.assert_allclose(
    dx, reference.lrn_vjp(x, g, b, a, 1.0, 1.0, 0.75), rtol=5e-5, atol=1e-6
  )


def test_gradient_keeps_one_temporary():
  # The rule saves one array; autodiff of the formula keeps three.
  x = jnp.ones((4, 16, 16, 32))
  f = lambda v: flax_lrn.lrn(v, 5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
  fb = jax.jit(lambda v, g: (lambda y, vjp: (y, vjp(g)[0]))(*jax.vjp(f, v)))
  temp = fb.lower(x, x).compile().memory_analysis().temp_size_in_bytes
  assert temp <= 1.5 * x.nbytes, temp / x.nbytes


def test_per_example_gradients_keep_one_temporary():
  # vmap of the gradient of one example, x[None]: the unit axis used to give
  # the CPU rule's conditional a second copy of the input.
  x = jnp.ones((4, 16, 16, 32))
  f = lambda v: flax_lrn.lrn(v, 5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
  one = jax.grad(lambda v, g: jnp.vdot(f(v[None]), g[None]))
  batch = jax.grad(lambda v, g: jnp.vdot(f(v), g))
  for fn in (jax.vmap(one), batch):
    compiled = jax.jit(fn).lower(x, x).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    assert temp <= 1.1 * x.nbytes, temp / x.nbytes
  y = jax.jit(jax.vmap(lambda v: f(v[None])[0]))(x)
  np.testing.assert_array_equal(y, f(x))
