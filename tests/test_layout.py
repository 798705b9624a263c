"""The package's layers: a pure-JAX core, conventions, modules, ONNX.

A call goes down the layers and never comes back: the modules call the
conventions and the core, the conventions call the core, and the core
imports nothing of flax_lrn outside itself, and never Flax.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flax_lrn
from flax_lrn._core import kernels, lrn_formula, windows

PACKAGE = Path(flax_lrn.__file__).resolve().parent

# What each layer may import of flax_lrn (besides itself).
ALLOWED = {
  "_core": set(),
  "_conventions": {"_core"},
  "_modules": {"_core", "_conventions"},
  "_onnx": {"_core"},
}


def _imports(path: Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      if node.module == "flax_lrn":
        names.update(f"flax_lrn.{a.name}" for a in node.names)
  return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below(layer):
  for path in sorted((PACKAGE / layer).glob("*.py")):
    for name in _imports(path):
      if name.startswith("flax_lrn."):
        target = name.split(".")[1]
        assert target == layer or target in ALLOWED[layer], (path.name, name)


def test_the_core_never_imports_flax_statically():
  for path in sorted((PACKAGE / "_core").glob("*.py")):
    for name in _imports(path):
      assert name.split(".")[0] != "flax", (path.name, name)


@pytest.mark.slow
def test_the_core_runs_without_flax():
  """The core, imported without flax_lrn's package (and so without Flax)."""
  code = f"""
import sys, types
package = types.ModuleType("flax_lrn")
package.__path__ = [{str(PACKAGE)!r}]
sys.modules["flax_lrn"] = package
sys.modules["flax"] = None  # any import of Flax fails
import jax.numpy as jnp
from flax_lrn._core import lrn, gdn
y = lrn.lrn(jnp.ones((2, 3)), 3)
z = gdn.gdn(jnp.ones((2, 3)), jnp.ones(3), jnp.eye(3))
assert y.shape == z.shape == (2, 3)
assert not any(m == "flax" or m.startswith("flax.") for m in sys.modules
               if sys.modules[m] is not None)
print("ok")
"""
  out = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
  )
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == "ok"


def test_every_implementation_is_a_registered_kernel():
  assert kernels.implementations()[0] == "xla"
  x = jnp.arange(12.0).reshape(2, 6)
  np.testing.assert_array_equal(
    flax_lrn.lrn(x, 3, implementation="xla"), flax_lrn.lrn(x, 3)
  )
  with pytest.raises(ValueError, match="implementation must be None or one"):
    flax_lrn.lrn(x, 3, implementation="triton")
  with pytest.raises(ValueError, match="implementation must be None or one"):
    flax_lrn.nnx.LRN(implementation="cuda")


def test_a_registered_kernel_receives_the_resolved_arguments():
  seen = []

  def kernel(spec, x, alpha, k, beta):
    seen.append((spec, float(alpha), float(k), float(beta)))
    return lrn_formula.normalize(spec, x, alpha, k, beta)

  kernels.register("test-kernel", kernel)
  x = jnp.arange(12.0).reshape(2, 6)
  y = flax_lrn.compat.torch(x, size=4, alpha=8.0, channel_axis=-1)
  assert not seen
  with kernels.default_implementation("test-kernel"):
    y_kernel = flax_lrn.compat.torch(x, size=4, alpha=8.0, channel_axis=-1)
    # An explicit implementation wins over the context's default.
    flax_lrn.lrn(x, 3, implementation="xla")
  np.testing.assert_array_equal(y, y_kernel)
  ((spec, alpha, k, beta),) = seen
  # PyTorch's even window and alpha / size, resolved.
  assert (spec.axes, spec.before, spec.after) == ((1,), 2, 1)
  assert (alpha, k, beta) == (2.0, 1.0, 0.75)
  layer = flax_lrn.LRN(implementation="test-kernel")
  layer.apply({}, x)
  assert len(seen) == 2
  with pytest.raises(ValueError, match="'xla' is a built-in kernel"):
    kernels.register("xla", kernel)


@pytest.mark.parametrize("form", windows.FORMS)
def test_a_weighted_window_sum_matches_numpy(form):
  rng = np.random.default_rng(0)
  x2 = rng.uniform(size=(3, 7, 5)).astype(np.float32)
  weights = (0.25, 0.5, 1.0, 0.5)  # before 1, after 2
  got = windows.window_sum(jnp.asarray(x2), (1, 2), 1, 2, form, weights)
  want = np.asarray(x2, np.float64)
  for axis in (1, 2):
    n = want.shape[axis]
    padded = np.pad(want, [(1, 2) if a == axis else (0, 0) for a in range(3)])
    want = sum(
      w * np.take(padded, np.arange(o, o + n), axis=axis)
      for o, w in enumerate(weights)
    )
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
  with pytest.raises(ValueError, match="weights must hold"):
    windows.window_sum(jnp.asarray(x2), (1,), 1, 2, form, (1.0, 2.0))


def test_a_weighted_window_sum_transposes():
  """The seam keeps the window sum linear, so reverse mode works."""
  x2 = jnp.linspace(0.0, 1.0, 8)
  weights = (0.5, 1.0, 2.0)

  def f(v):
    return windows.window_sum(v, (0,), 1, 1, "shifts", weights)

  ct = jnp.arange(8.0)
  (got,) = jax.linear_transpose(f, x2)(ct)
  matrix = jax.jacfwd(f)(x2)
  np.testing.assert_allclose(got, matrix.T @ ct, rtol=1e-6)


@pytest.mark.parametrize(
  ("name", "fn"),
  [
    ("lrn", lambda v: flax_lrn.lrn(v, 3)),
    ("gdn", lambda v: flax_lrn.gdn(v, jnp.ones(4), jnp.eye(4))),
    ("lrn", lambda v: flax_lrn.LRN().apply({}, v)),
  ],
)
def test_profiles_name_lrn_and_gdn(name, fn):
  """Every operation of the layer sits under its name scope."""
  hlo = jax.jit(fn).lower(jnp.ones((2, 4))).as_text(debug_info=True)
  assert f'/{name}/mul"' in hlo
