"""ONNX export through jax2onnx, with LRN as ONNX's own ``LRN`` operator.

Every LRN of flax_lrn (the function, both modules, the
:mod:`flax_lrn.compat` front ends) exports as one ``LRN`` node wherever
ONNX's operator computes the same thing, and as an exact decomposition
elsewhere. Needs the ``onnx`` extra (``pip install "flax_lrn[onnx]"``).

The plugin registers itself with jax2onnx as soon as both flax_lrn and
jax2onnx are imported, in either order, so ``to_onnx`` works as jax2onnx
documents it; ``import flax_lrn`` alone never imports jax2onnx. This
module holds the plugin's settings, and importing it raises the full error
where the plugin cannot register (a warning says so otherwise).

Example::

  import flax_lrn
  from jax2onnx import to_onnx

  onnx_model = to_onnx(model, [("B", 224, 224, 3)])  # symbolic batch

The plugin only acts inside ``to_onnx``: outside it flax_lrn runs exactly as
without jax2onnx. See :func:`native_lrn` for where the ``LRN`` node is used.
"""

from __future__ import annotations

try:
  import jax2onnx  # noqa: F401  (a clear message if the extra is missing)
except ImportError as e:
  raise ImportError(
    "flax_lrn.onnx_export needs jax2onnx: install the 'onnx' extra,"
    ' pip install "flax_lrn[onnx]".'
  ) from e

from flax_lrn._onnx.plugin import POLICIES, LRNPlugin, native_lrn

__all__ = ("POLICIES", "LRNPlugin", "native_lrn")
