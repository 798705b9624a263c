"""GDN as tensorflow_compression and CompressAI compute it, and their weights.

Both libraries compute ``y[i] = x[i] * (beta[i] + sum_j gamma * |x[j]| **
alpha) ** -+epsilon`` but disagree on the rest:

=====================  ===============================  ========================
                       tensorflow_compression           CompressAI
=====================  ===============================  ========================
``gamma`` indexing     ``[input j, output i]``          ``[output i, input j]``
``alpha, epsilon``     1, 1 (simplified); learnable     2, 1/2 (``GDN``);
                                                        1, 1 (``GDN1``)
layout                 any rank ``>= 2``, channels      NCHW only
                       first or last
``rectify``            optional ReLU first              no
stored form            ``reparam_beta``,                ``beta``, ``gamma``
                       ``reparam_gamma``
=====================  ===============================  ========================

:func:`flax_lrn.gdn` and the modules index ``gamma`` as tensorflow_compression
does, so CompressAI's matrix is transposed on the way in and out (its
docstring's ``gamma[j, i]`` notwithstanding, it computes
``conv2d(x ** 2, gamma[:, :, None, None], beta)``, whose weight is
``[output, input]``). Both store ``beta`` and ``gamma`` in the same
reparametrized form (:func:`nonnegative_value`), with the offset ``2**-18``
and ``beta >= 1e-6``, so ported arrays are copied bit for bit.

The front ends :func:`tensorflow_compression` and :func:`compressai`
(``GDN`` and ``GDN1``) take the parameter *values* (the libraries'
``layer.beta``, ``layer.gamma`` properties, or ``GDN.beta_reparam(GDN.beta)``
in CompressAI), defaulting to the initial ones (``beta = 1``,
``gamma = 0.1 I``). The ``params_*`` functions move the *stored* arrays
between the libraries and the params of :class:`flax_lrn.GDN` and
:class:`flax_lrn.nnx.GDN`.
"""

from flax_lrn._conventions.gdn_front_ends import (
  compressai,
  tensorflow_compression,
)
from flax_lrn._conventions.gdn_weights import (
  params_from_compressai,
  params_from_tensorflow_compression,
  params_to_compressai,
  params_to_tensorflow_compression,
)
from flax_lrn._core.nonnegative import OFFSET, lower_bound
from flax_lrn._core.nonnegative import stored as nonnegative_stored
from flax_lrn._core.nonnegative import value as nonnegative_value

# The name up to 0.1; `compressai` matches `GDN.from_compressai`.
compressai_gdn = compressai

__all__ = (
  "OFFSET",
  "compressai",
  "lower_bound",
  "nonnegative_stored",
  "nonnegative_value",
  "params_from_compressai",
  "params_from_tensorflow_compression",
  "params_to_compressai",
  "params_to_tensorflow_compression",
  "tensorflow_compression",
)
