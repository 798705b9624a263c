"""Backend consistency: every backend present against CPU, f32 and bf16.

For each configuration the forward pass and the VJP (with a random
cotangent) run on CPU and on every other backend found (GPU, TPU), and must
agree within the tolerances below; every backend, CPU included, must also
match the float64 reference. On a CPU-only machine the "other backend" is a
second CPU device (or the same one), so the comparison is a self-check and
the reference comparison is the real test; on a GPU or TPU machine both run
for real. Run it standalone to see the measured differences::

    python tests/test_backends.py

Tolerances, and why:

* float32 forward: ``rtol=1e-5, atol=1e-6``. Backends may order the window
  additions differently and use their own ``rsqrt``/``pow`` (accurate to a
  few ulp), so a few ulp of float32 per step, far below ``1e-5``.
* float32 gradient: ``rtol=1e-4``, ``atol=1e-5 * max|dx|``. The gradient
  subtracts two terms of similar size, which can cancel; the absolute part
  is scaled by the gradient's magnitude.
* bfloat16: the maths runs in float32 on every backend and only the result
  is rounded to bfloat16 (8 significant bits), so two backends agree to one
  bfloat16 rounding, ``2 ** -7`` relative (``2 ** -7 * max|dx|`` absolute
  for gradients, where one rounding of a cancelling sum can be a whole ulp
  of the largest term). On an NVIDIA GPU, across channels, the gradient's
  window term also reads ``y / s`` stored in bfloat16: one more rounding of
  that term, at most ``2 ** -8`` of it, inside the same absolute part.

Runtime: about 40 s on 2 CPU cores (CPU only), most of it the Pallas kernel
in Pallas's interpreter.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import zlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

import flax_lrn

try:
  from tests import reference
except ImportError:  # run as a script: tests/ itself is on sys.path
  import reference  # type: ignore[no-redef]

# (name, shape, lrn keyword arguments, reference axes)
CONFIGS = [
  ("alexnet_nhwc", (2, 6, 6, 32), dict(window=5, alpha=1.0, k=2.0), (-1,)),
  (
    "pytorch_even_nchw_general_beta",
    (2, 16, 5, 5),
    dict(
      window=(2, 1),
      alpha=4.0,
      k=1.0,
      beta=0.6,
      alpha_scaling="size",
      channel_axis=1,
    ),
    (1,),
  ),
  (
    "within_channel",
    (2, 9, 9, 4),
    dict(window=3, alpha=2.0, k=1.0, beta=0.5, mode="within_channel"),
    (1, 2),
  ),
  ("wide_window", (4, 256), dict(window=101, alpha=3.0, k=1.0), (-1,)),
  # The Pallas kernel: Triton on a GPU, Pallas's interpreter on a CPU.
  (
    "within_channel_pallas",
    (2, 11, 13, 40),
    dict(
      window=5,
      alpha=2.0,
      k=1.0,
      beta=0.75,
      mode="within_channel",
      implementation="pallas",
    ),
    (1, 2),
  ),
  (
    "nchw_pallas",
    (2, 16, 5, 5),
    dict(
      window=(2, 1),
      alpha=4.0,
      k=1.0,
      beta=0.6,
      channel_axis=1,
      implementation="pallas",
    ),
    (1,),
  ),
]

TOLERANCES = {
  # dtype: (forward rtol, forward atol, gradient rtol, gradient atol scale)
  "float32": (1e-5, 1e-6, 1e-4, 1e-5),
  "bfloat16": (2**-7, 1e-30, 2**-7, 2**-7),
}


def accelerators() -> list[jax.Device]:
  """One device of each non-CPU backend present."""
  found = []
  for platform in ("gpu", "tpu"):
    with contextlib.suppress(RuntimeError):  # backend not present
      found.append(jax.devices(platform)[0])
  return found


def targets() -> list[jax.Device]:
  """The devices to compare against CPU: accelerators, else a CPU device."""
  return accelerators() or [jax.devices("cpu")[-1]]


def _extents(window):
  if isinstance(window, tuple):
    return window
  return (window - 1) // 2, window // 2


@functools.cache
def _inputs(shape, dtype):
  rng = np.random.default_rng(zlib.crc32(f"{shape}{dtype}".encode()))
  x = jnp.asarray(rng.normal(size=shape), dtype)
  g = jnp.asarray(rng.normal(size=shape), dtype)
  return np.asarray(x), np.asarray(g)


def _on(device, kw, x, g):
  """Forward and VJP of ``lrn`` computed on ``device``."""
  fn = functools.partial(flax_lrn.lrn, **kw)
  xd, gd = jax.device_put(x, device), jax.device_put(g, device)
  y = jax.jit(fn)(xd)
  dx = jax.jit(lambda x, g: jax.vjp(fn, x)[1](g)[0])(xd, gd)
  assert y.devices() == {device} and dx.devices() == {device}
  return np.asarray(y, np.float64), np.asarray(dx, np.float64)


def _reference(kw, axes, x, g):
  before, after = _extents(kw["window"])
  alpha = kw["alpha"]
  if kw.get("alpha_scaling") == "size":
    alpha /= (before + after + 1) ** len(axes)
  args = (before, after, alpha, kw["k"], kw.get("beta", 0.75), axes)
  x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
  return reference.lrn(x, *args), reference.lrn_vjp(x, g, *args)


def _diff(got, want):
  """Max absolute and max relative (to max |want|) difference."""
  err = float(np.max(np.abs(got - want)))
  return err, err / max(float(np.max(np.abs(want))), 1e-30)


def _params():
  for name, shape, kw, axes in CONFIGS:
    for dtype in TOLERANCES:
      yield f"{name}_{dtype}", shape, kw, axes, dtype


class BackendConsistencyTest(chex.TestCase):
  @parameterized.named_parameters(*_params())
  def test_against_cpu_and_reference(self, shape, kw, axes, dtype):
    rtol, atol, grad_rtol, grad_atol = TOLERANCES[dtype]
    x, g = _inputs(shape, dtype)
    cpu = jax.devices("cpu")[0]
    y_cpu, dx_cpu = _on(cpu, kw, x, g)
    y_ref, dx_ref = _reference(kw, axes, x, g)
    # The reference in the output dtype: what a perfect backend returns.
    y_ref = np.asarray(jnp.asarray(y_ref, dtype), np.float64)
    for device in [cpu, *targets()]:
      with self.subTest(device=str(device)):
        y, dx = (y_cpu, dx_cpu) if device == cpu else _on(device, kw, x, g)
        scale = float(np.max(np.abs(dx_cpu)))
        np.testing.assert_allclose(y, y_cpu, rtol=rtol, atol=atol)
        np.testing.assert_allclose(
          dx, dx_cpu, rtol=grad_rtol, atol=grad_atol * scale
        )
        # Each backend against float64: one extra rounding of the output
        # dtype over the backend-to-backend tolerance.
        np.testing.assert_allclose(y, y_ref, rtol=2 * rtol, atol=atol)
        np.testing.assert_allclose(
          dx, dx_ref, rtol=2 * grad_rtol, atol=2 * grad_atol * scale
        )


def report() -> None:
  """Prints the measured differences of every backend against CPU."""
  cpu = jax.devices("cpu")[0]
  print(f"jax {jax.__version__}; default backend {jax.default_backend()}")
  print(f"compared against {cpu}: {[str(d) for d in targets()]}")
  for name, shape, kw, axes, dtype in _params():
    x, g = _inputs(shape, dtype)
    y_cpu, dx_cpu = _on(cpu, kw, x, g)
    y_ref, dx_ref = _reference(kw, axes, x, g)
    for device in targets():
      y, dx = _on(device, kw, x, g)
      print(
        f"{name:40s} {device.platform:4s}"
        " fwd vs cpu abs/rel %.2e/%.2e  grad vs cpu %.2e/%.2e"
        "  fwd vs f64 %.2e/%.2e  grad vs f64 %.2e/%.2e"
        % (
          *_diff(y, y_cpu),
          *_diff(dx, dx_cpu),
          *_diff(y, y_ref),
          *_diff(dx, dx_ref),
        )
      )


if __name__ == "__main__":
  report()
  sys.stdout.flush()
  absltest.main()
