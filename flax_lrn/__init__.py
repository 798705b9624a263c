"""flax_lrn: Local Response Normalization for JAX and Flax.

The functional core is :func:`lrn`; :class:`flax_lrn.linen.LRN` (also
:class:`LRN`) wraps it as a Flax linen module and :class:`flax_lrn.nnx.LRN`
as a Flax NNX module. :mod:`flax_lrn.compat` computes TensorFlow's,
PyTorch's, ONNX's and Caffe's LRN with their own parameter names and
defaults. :func:`gdn` (generalized divisive normalization and its inverse)
is the same family with a learned channel-mixing matrix, wrapped as
:class:`flax_lrn.linen.GDN` and :class:`flax_lrn.nnx.GDN`;
:mod:`flax_lrn.compat_gdn` ports tensorflow_compression's and CompressAI's.
With jax2onnx installed, ``jax2onnx.to_onnx`` exports every LRN as ONNX's
own ``LRN`` operator (:mod:`flax_lrn.onnx_export`).
"""

from flax_lrn import compat, compat_gdn, linen, nnx
from flax_lrn._core.gdn import gdn
from flax_lrn._core.lrn import lrn
from flax_lrn._onnx import autoload as _onnx_autoload
from flax_lrn.linen import GDN, LRN

__version__ = "0.2.0"

__all__ = (
  "GDN",
  "LRN",
  "compat",
  "compat_gdn",
  "gdn",
  "linen",
  "lrn",
  "nnx",
)

# LRN exports as one ONNX node through jax2onnx whenever both are imported,
# in either order; jax2onnx itself is never imported here.
_onnx_autoload.install()
