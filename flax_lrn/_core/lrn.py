"""The LRN function, :func:`flax_lrn.lrn`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from flax_lrn._core import halo, kernels, lrn_arguments, lrn_formula, windows
from flax_lrn._core.checks import AlphaScaling, Mode

Window = int | tuple[int, int]


class Defaults(NamedTuple):
  """The defaults of :func:`lrn` and the LRN modules: AlexNet's, as written."""

  window: Window = 5
  alpha: float = 1e-4
  beta: float = 0.75
  k: float = 2.0
  alpha_scaling: AlphaScaling = "none"
  mode: Mode = "across_channels"
  channel_axis: int = -1


DEFAULTS = Defaults()

# The parameters of `lrn` after `x`, in signature order. The modules keep
# fields of these names and forward them all, so the three entry points cannot
# drift apart.
FIELDS = (
  "window",
  "alpha",
  "beta",
  "k",
  "alpha_scaling",
  "mode",
  "channel_axis",
  "spatial_axes",
  "dtype",
  "axis_name",
  "implementation",
)


def lrn(
  x: ArrayLike,
  window: Window = DEFAULTS.window,
  *,
  alpha: ArrayLike = DEFAULTS.alpha,
  beta: ArrayLike = DEFAULTS.beta,
  k: ArrayLike = DEFAULTS.k,
  alpha_scaling: AlphaScaling = DEFAULTS.alpha_scaling,
  mode: Mode = DEFAULTS.mode,
  channel_axis: int = DEFAULTS.channel_axis,
  spatial_axes: Sequence[int] | None = None,
  dtype: DTypeLike | None = None,
  axis_name: str | None = None,
  implementation: str | None = None,
) -> jax.Array:
  r"""Local Response Normalization (Krizhevsky et al., 2012, §3.3).

  Divides each activation by a power of the sum of squares in a window
  around it:

  .. math::

     y_i = x_i \, \bigl(k + a \textstyle\sum_{j \in W(i)} x_j^2\bigr)^{-\beta}

  where ``a = alpha`` (``alpha_scaling='none'``) or ``alpha`` divided by the
  number of elements in the window (``alpha_scaling='size'``). The sum is
  zero-padded: a window that runs past the edge of the array holds fewer
  terms, and the divisor of ``alpha`` never changes.

  * ``mode='across_channels'`` (AlexNet, GoogLeNet): the window runs along
    ``channel_axis`` from ``i - before`` to ``i + after``.
  * ``mode='within_channel'`` (Caffe's ``WITHIN_CHANNEL``): the window is
    ``(before + after + 1)`` wide along every axis in ``spatial_axes``, inside
    one channel, so an ``n x n`` window for images.

  The window sum is a direct zero-padded windowed sum (shifted copies that
  XLA fuses into one pass for 1-D windows up to 16 wide; ``lax.reduce_window``
  for wider, multi-axis or explicitly sharded windows): linear,
  exact for huge finite inputs (no prefix sums or band matrices), and split
  by XLA across devices with halo exchanges. A ``jax.custom_jvp`` gives the
  closed-form tangent, so the function can be jitted, vmapped,
  differentiated in forward and reverse mode to any order (also with respect
  to traced ``alpha``, ``beta`` and ``k``) and rematerialized; its backward
  pass keeps one array-sized temporary. The sum of squares accumulates in
  float32 (or float64 for float64 input), since ``x**2`` overflows float16
  once ``|x| > 256``.

  Each framework's convention maps onto these parameters (see
  :mod:`flax_lrn.compat` for front ends with the upstream names):

  ===========================  ===========================  ==============
  convention                   ``window``                   alpha_scaling
  ===========================  ===========================  ==============
  TensorFlow ``depth_radius``  ``(r, r)``                   ``'none'``
  PyTorch ``size=n``           ``(n // 2, (n - 1) // 2)``   ``'size'``
  ONNX, cuDNN ``size=n``       ``n``                        ``'size'``
  Caffe ``local_size=n``       ``n`` (odd)                  ``'size'``
  AlexNet paper ``n``          ``n`` (odd)                  ``'none'``
  ===========================  ===========================  ==============

  Args:
    x: the input, of a real floating dtype. For ``'across_channels'`` any
      rank ``>= 1``; for ``'within_channel'`` at least one spatial axis.
    window: the window along each normalized axis, as a size ``n >= 1``
      (``n`` elements; an even window holds its extra element *after* the
      centre, as in ONNX and cuDNN) or as explicit extents
      ``(before, after)``, each ``>= 0`` (``(n // 2, (n - 1) // 2)`` puts the
      extra element before the centre, as PyTorch does). Windows wider than
      the axis are fine. Defaults to 5, as in AlexNet.
    alpha: the scaling of the sum of squares, finite and ``>= 0``. Defaults
      to ``1e-4``, as in AlexNet.
    beta: the exponent, finite and ``>= 0``. ``0.5``, ``0.75``, ``1`` and a
      few others use ``rsqrt``/``sqrt``/reciprocal instead of a general
      power when given as Python numbers. Defaults to ``0.75``.
    k: the additive constant, finite and ``>= 0``. With ``k = 0`` a window
      of zeros gives ``0 * inf = nan``, as in every framework. Defaults to
      ``2.0``, as in AlexNet.
    alpha_scaling: ``'none'`` uses ``alpha`` as given (TensorFlow, AlexNet
      as written); ``'size'`` divides it by the number of elements in the
      window, ``n`` across channels and ``n ** len(spatial_axes)`` within
      (PyTorch, Caffe, ONNX, cuDNN, oneDNN).
    mode: ``'across_channels'`` or ``'within_channel'``.
    channel_axis: the channel axis. Defaults to ``-1`` (NHWC, Flax's layout);
      use ``1`` for NCHW.
    spatial_axes: for ``'within_channel'``, the axes the window spans.
      Defaults to every axis except the first (batch) axis and
      ``channel_axis``; pass it for unbatched input. Must be ``None`` for
      ``'across_channels'``.
    dtype: the output dtype. Defaults to the input's dtype.
    axis_name: inside ``jax.shard_map``, the mesh axis over which
      ``channel_axis`` is split. Each device then exchanges the ``before`` and
      ``after`` edge channels with its neighbours (``lax.ppermute``) so the
      result equals the unsplit computation. Under plain ``jax.jit`` with
      sharded inputs leave it ``None``: XLA inserts the exchange itself. Not
      needed for ``'within_channel'``, whose window stays inside a channel.
      Also works under ``jax.vmap(..., axis_name=...)`` over channel blocks.
    implementation: which kernel computes the formula, as
      ``jax.nn.dot_product_attention`` chooses its kernel: ``None`` (the
      default of the context: ``'xla'``, or the ONNX kernel inside
      ``jax2onnx.to_onnx``), ``'xla'`` (jax.numpy code that XLA fuses with
      its neighbours) or ``'pallas'`` (a hand-written GPU kernel for a
      window that does not span the last axis, such as
      ``'within_channel'`` on channels-last input: one pass forward, two
      backward; first-order reverse mode only, Pallas's interpreter on a
      CPU, the XLA kernel on a TPU; see the performance guide).

  Returns:
    An array of the shape of ``x`` and dtype ``dtype`` (or ``x.dtype``).

  Raises:
    TypeError: if ``x`` is not of a real floating dtype, or a parameter has
      the wrong type.
    ValueError: if an axis is out of range, the window is empty or has a
      negative extent, a hyper-parameter is negative or not finite, the
      input has no spatial axis for ``'within_channel'``, or
      ``implementation`` is not a registered kernel.

  Example::

    >>> import jax.numpy as jnp
    >>> import flax_lrn
    >>> x = 2.0 * jnp.ones((1, 1, 1, 3))
    >>> flax_lrn.lrn(x, window=(1, 1), alpha=1.0, beta=1.0, k=0.0)
    Array([[[[0.25      , 0.16666667, 0.25      ]]]], dtype=float32)
  """
  with jax.named_scope("lrn"):
    args = lrn_arguments.resolve(
      x,
      window,
      alpha=alpha,
      beta=beta,
      k=k,
      alpha_scaling=alpha_scaling,
      mode=mode,
      channel_axis=channel_axis,
      spatial_axes=spatial_axes,
      dtype=dtype,
      axis_name=axis_name,
      implementation=implementation,
    )
    return compute(args)


def compute(args: lrn_arguments.Arguments) -> jax.Array:
  """LRN of resolved arguments: the computation behind :func:`lrn`."""
  x, out_dtype, compute_dtype = args.x, args.out_dtype, args.compute_dtype
  if x.size == 0:
    return jnp.zeros(x.shape, out_dtype)

  if args.axis_name is not None:
    # The window of an edge channel reaches into the neighbouring devices'
    # blocks: compute on the block widened by their edge channels and keep
    # this device's own.
    axis, before = args.channel_axis, args.before
    local = x.shape[axis]
    wide = halo.with_halo(x, axis, before, args.after, args.axis_name)
    y = compute(args._replace(x=wide, axis_name=None))
    return lax.slice_in_dim(y, before, before + local, axis=axis)

  # Hyper-parameters take the compute dtype, so a NumPy float64 scalar does
  # not promote float32 work to float64 when x64 is enabled.
  k, beta = (jnp.asarray(v, compute_dtype) for v in (args.k, args.beta))
  if args.static_alpha == 0.0:
    # No window sum at all: 0 * S is NaN once x**2 overflows to inf.
    static_beta = args.static_beta
    y = lrn_formula.scale_only(
      x.astype(compute_dtype), k, beta if static_beta is None else static_beta
    )
    return y.astype(out_dtype)
  alpha = jnp.asarray(args.alpha, compute_dtype)
  width = args.before + args.after + 1
  forms = windows.choose_forms(x, args.axes, width)
  spec = lrn_formula.Spec(
    axes=args.axes,
    before=args.before,
    after=args.after,
    static_alpha=args.static_alpha,
    static_beta=args.static_beta,
    form=forms.forward,
    rule_form=forms.rule,
    fused_rule_form=forms.fused_rule,
    compute_dtype=compute_dtype,
    out_dtype=out_dtype,
  )
  return kernels.run(spec, x, alpha, k, beta, args.implementation)
