"""flax_lrn: Local Response Normalization for JAX and Flax.

The functional core is :func:`lrn`; :class:`LRN` wraps it as a Flax linen
module and :class:`flax_lrn.nnx.LRN` as a Flax NNX module. :mod:`flax_lrn.compat`
computes TensorFlow's, PyTorch's, ONNX's and Caffe's LRN with their own
parameter names and defaults.
"""

from flax_lrn import compat, compat_gdn, nnx
from flax_lrn._gdn import gdn
from flax_lrn._gdn_linen import GDN
from flax_lrn._linen import LRN
from flax_lrn._lrn import lrn

__version__ = "0.1.0"

__all__ = (
  "GDN",
  "LRN",
  "compat",
  "compat_gdn",
  "gdn",
  "lrn",
  "nnx",
)
