"""pytest set-up shared by tests/ and the doctests in flax_lrn/.

The sharding tests need several devices; on a CPU-only machine JAX can
simulate them, but only if told before its backend starts, so this runs
before any test module imports JAX.
"""

import importlib.util

import jax

jax.config.update("jax_num_cpu_devices", 8)

# The ONNX export modules import jax2onnx, an optional extra: without it
# they cannot even be imported to collect their doctests.
if importlib.util.find_spec("jax2onnx") is None:
  collect_ignore = ["flax_lrn/_onnx_plugin.py", "flax_lrn/onnx_export.py"]
