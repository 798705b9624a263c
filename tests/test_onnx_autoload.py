"""``jax2onnx.to_onnx`` exports LRN natively with no ``import flax_lrn.onnx_export``.

The plugin registers itself whenever flax_lrn and jax2onnx are both
imported, in either order. Each case runs in a fresh interpreter, so that
what registered the plugin is the import order under test and not an
earlier test of this process. The exports take a symbolic batch and must
match JAX in ONNX Runtime at two batch sizes, for a linen and an NNX model.

The hook's failure modes run against a stand-in ``jax2onnx`` package on
``sys.path``: one that fails to import, one whose plugin interface has
changed. Neither may break ``import flax_lrn``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Models with an LRN, exported as jax2onnx's README shows, no plugin import.
EXPORT = """
import jax
import numpy as np
import onnxruntime as ort
from flax import linen as nn
from flax import nnx
from jax2onnx import to_onnx
import flax_lrn
import flax_lrn.nnx

assert "flax_lrn.onnx_export" not in sys.modules

class Linen(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.Conv(8, (3, 3))(x)
    return flax_lrn.LRN(window=5, alpha=1e-2, beta=0.75, k=2.0)(x)

class NNX(nnx.Module):
  def __init__(self, rngs):
    self.conv = nnx.Conv(3, 8, (3, 3), rngs=rngs)
    self.lrn = flax_lrn.nnx.LRN.from_torch(size=3, alpha=1e-2)

  def __call__(self, x):
    return self.lrn(self.conv(x))

linen = Linen()
variables = linen.init(jax.random.key(0), np.ones((1, 8, 8, 3), np.float32))
models = {
  "linen": lambda x: linen.apply(variables, x),
  "nnx": NNX(nnx.Rngs(0)),
}
for name, model in models.items():
  onnx_model = to_onnx(model, [("B", 8, 8, 3)])
  ops = [n.op_type for n in onnx_model.graph.node]
  assert "LRN" in ops, (name, ops)
  (input_,) = onnx_model.graph.input
  assert input_.type.tensor_type.shape.dim[0].dim_param == "B"
  session = ort.InferenceSession(
    onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
  )
  for batch in (1, 3):
    x = np.random.default_rng(batch).normal(size=(batch, 8, 8, 3))
    x = x.astype(np.float32)
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(y, model(x), rtol=1e-5, atol=1e-6)
print("exported", sorted(models))
"""

ORDERS = {
  "jax2onnx-first": "import jax2onnx\nimport flax_lrn\n",
  "flax_lrn-first": "import flax_lrn\nimport jax2onnx\n",
}


def _python(code: str, *, path: Path | None = None):
  env = dict(os.environ)
  # This checkout's flax_lrn first; a stand-in jax2onnx before the real one.
  entries = [str(path)] if path else []
  env["PYTHONPATH"] = os.pathsep.join([*entries, str(ROOT)])
  return subprocess.Popen(
    [sys.executable, "-c", code],
    env=env,
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )


def _check(proc: subprocess.Popen, expected: str) -> None:
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out
  assert expected in out, out


@pytest.mark.slow
def test_to_onnx_registers_the_plugin_in_either_import_order():
  pytest.importorskip("jax2onnx")
  pytest.importorskip("onnxruntime")
  # Both interpreters at once: most of their time is jax2onnx's start-up.
  procs = {
    order: _python("import sys\n" + imports + EXPORT)
    for order, imports in ORDERS.items()
  }
  for proc in procs.values():
    _check(proc, "exported ['linen', 'nnx']")


def test_the_hook_waits_for_the_import_and_leaves(tmp_path):
  # The stand-in lacks jax2onnx's plugin modules, as a jax2onnx with a
  # changed plugin interface would: the registration fails with a warning.
  (tmp_path / "jax2onnx").mkdir()
  (tmp_path / "jax2onnx" / "__init__.py").write_text("")
  code = textwrap.dedent("""
    import importlib, importlib.util, sys, warnings
    import flax_lrn
    assert "jax2onnx" not in sys.modules
    # An availability check neither imports jax2onnx nor uses up the hook.
    assert importlib.util.find_spec("jax2onnx") is not None
    assert "jax2onnx" not in sys.modules
    importlib.reload(flax_lrn)  # no second hook
    hooks = [f for f in sys.meta_path if "flax_lrn" in type(f).__module__]
    assert len(hooks) == 1, hooks
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      import jax2onnx
    (w,) = caught
    assert w.category is RuntimeWarning, w
    assert "could not register its ONNX plugin" in str(w.message), w
    # The import system's state is as if flax_lrn had not been there.
    assert jax2onnx.__loader__ is jax2onnx.__spec__.loader
    assert "flax_lrn" not in type(jax2onnx.__loader__).__module__
    assert not [f for f in sys.meta_path if "flax_lrn" in type(f).__module__]
    print("ok")
  """)
  _check(_python(code, path=tmp_path), "ok")


@pytest.mark.slow
def test_a_broken_jax2onnx_breaks_neither_order(tmp_path):
  (tmp_path / "jax2onnx").mkdir()
  (tmp_path / "jax2onnx" / "__init__.py").write_text(
    "raise ImportError('broken jax2onnx')\n"
  )
  code = textwrap.dedent("""
    import flax_lrn
    try:
      import jax2onnx
    except ImportError as e:
      assert str(e) == "broken jax2onnx", e  # its own error, untouched
    else:
      raise AssertionError("imported a broken jax2onnx")
    import importlib, sys
    importlib.reload(flax_lrn)
    assert flax_lrn.lrn is not None
    print("ok")
  """)
  _check(_python(code, path=tmp_path), "ok")
