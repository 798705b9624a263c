"""flax_lrn: Local Response Normalization for JAX and Flax.

The functional core is :func:`lrn`; :class:`flax_lrn.linen.LRN` (also
:class:`LRN`) wraps it as a Flax linen module and :class:`flax_lrn.nnx.LRN`
as a Flax NNX module. :mod:`flax_lrn.compat` computes TensorFlow's,
PyTorch's, ONNX's and Caffe's LRN with their own parameter names and
defaults.
"""

from flax_lrn import compat, linen, nnx
from flax_lrn._lrn import lrn
from flax_lrn.linen import LRN

__version__ = "0.1.0"

__all__ = (
  "LRN",
  "compat",
  "linen",
  "lrn",
  "nnx",
)
