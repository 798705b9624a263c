"""Smoke test of an installed flax_lrn wheel, run from outside the checkout.

Fails unless the flax_lrn that imports is the installed one, ships its
``py.typed`` marker and the version its metadata says, and its entry points
work: the function, both modules, a compat front end, GDN, and the ONNX
export through ``jax2onnx.to_onnx`` with no plugin import.
"""

import importlib.metadata
import importlib.resources
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime as ort
from flax import nnx
from jax2onnx import to_onnx

import flax_lrn
import flax_lrn.nnx
from flax_lrn import compat, compat_gdn

checkout = Path(sys.argv[1]).resolve()
where = Path(flax_lrn.__file__).resolve()
assert checkout not in where.parents, f"imported the checkout: {where}"
assert "site-packages" in where.parts, where
assert importlib.resources.files("flax_lrn").joinpath("py.typed").is_file()
assert flax_lrn.__version__ == importlib.metadata.version("flax_lrn")
dist = importlib.metadata.distribution("flax_lrn")
assert any(f.name == "LICENSE" for f in dist.files or ()), "no LICENSE"

x = jax.random.normal(jax.random.key(0), (2, 6, 6, 8))
y = flax_lrn.lrn(x, 5, alpha=1e-2, k=2.0)
np.testing.assert_allclose(flax_lrn.LRN(5, alpha=1e-2, k=2.0).apply({}, x), y)
np.testing.assert_allclose(flax_lrn.nnx.LRN(5, alpha=1e-2, k=2.0)(x), y)
np.testing.assert_allclose(
  compat.torch(x, size=5, alpha=5e-2, k=2.0, channel_axis=-1), y, rtol=1e-6
)
z = flax_lrn.gdn(jnp.abs(x), jnp.ones(8), 0.1 * jnp.eye(8))
assert z.shape == x.shape
assert compat_gdn.tensorflow_compression(x).shape == x.shape


class Net(nnx.Module):
  def __init__(self, rngs):
    self.conv = nnx.Conv(8, 8, (3, 3), rngs=rngs)
    self.lrn = flax_lrn.nnx.LRN(5, alpha=1e-2, k=2.0)

  def __call__(self, x):
    return self.lrn(self.conv(x))


model = Net(nnx.Rngs(0))
onnx_model = to_onnx(model, [("B", 6, 6, 8)])
assert "LRN" in [n.op_type for n in onnx_model.graph.node]
session = ort.InferenceSession(
  onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
)
for batch in (1, 2):
  (out,) = session.run(None, {"in_0": np.asarray(x[:batch])})
  np.testing.assert_allclose(out, model(x[:batch]), rtol=1e-5, atol=1e-6)
print(f"flax_lrn {flax_lrn.__version__} wheel OK from {where.parent}")
