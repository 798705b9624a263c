"""pytest set-up shared by tests/ and the doctests in flax_lrn/.

The sharding tests need several devices; on a CPU-only machine JAX can
simulate them, but only if told before its backend starts, so this runs
before any test module imports JAX.
"""

import jax

jax.config.update("jax_num_cpu_devices", 8)
