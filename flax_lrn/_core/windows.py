"""Zero-padded sliding-window sums: the one linear operator of LRN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, get_args

import jax
from jax import lax

# Up to this width a window sum is written as shifted copies of the array
# (or slices of one padded copy), which XLA fuses with the elementwise maths
# around it; XLA's CPU backend never fuses reduce-window, which then costs
# two extra round trips through memory (see BENCHMARKS.md). Wider windows use
# reduce_window, whose program size does not grow with the width.
MAX_UNROLLED_WIDTH = 16

# How a window sum is written out; see `window_sum`.
Form = Literal["shifts", "slices", "reduce_window"]
FORMS: tuple[Form, ...] = get_args(Form)


class Forms(NamedTuple):
  """The window-sum forms of one LRN.

  Attributes:
    forward: the forward pass's.
    rule: the differentiation rule's on a CPU.
    fused_rule: the differentiation rule's on other platforms.
  """

  forward: Form
  rule: Form
  fused_rule: Form


def choose_forms(x: jax.Array, axes: tuple[int, ...], width: int) -> Forms:
  """Picks the window-sum forms of the forward pass and of the gradient.

  Shifted copies fuse into one pass but grow the program with the width.
  On a CPU the rule's window sum runs in a unit of its own, where slices of
  one padded copy are what XLA:CPU compiles best; elsewhere the rule fuses
  into its neighbours, and shifts fuse as the forward pass does.
  A multi-axis window is a chain of 1-D sums whose middle XLA materializes
  whatever the form, and there reduce_window makes the fewest temporaries.
  Under explicit sharding, JAX's shape rules refuse slices and pads of a
  sharded axis whose length the mesh does not divide, while reduce_window
  keeps the operand's sharding.

  Args:
    x: the input (only its sharding is read).
    axes: the axes the window spans.
    width: the number of elements the window spans along each axis.

  Returns:
    The :class:`Forms`.
  """
  spec = getattr(jax.typeof(x).sharding, "spec", None)
  sharded = spec is not None and any(spec[a] is not None for a in axes)
  if sharded:
    # The transpose of reduce_window_sum pads the cotangent to a longer
    # axis, which explicit sharding refuses unless the mesh divides it;
    # the shape-preserving shifts transpose to shifts.
    return Forms("reduce_window", "shifts", "shifts")
  if len(axes) > 1 or width > MAX_UNROLLED_WIDTH:
    return Forms("reduce_window", "reduce_window", "reduce_window")
  return Forms("shifts", "slices", "shifts")


def window_sum(
  x2: jax.Array,
  axes: tuple[int, ...],
  before: int,
  after: int,
  form: str,
  weights: Sequence[float] | None = None,
) -> jax.Array:
  """Sums ``x2`` over ``[i - before, i + after]`` along each of ``axes``.

  Positions outside the array count as zeros. A box sum is separable, so a
  multi-axis window is a chain of 1-D sums: ``len(axes) * n`` adds per
  element instead of ``n ** len(axes)``.

  Every form is a direct windowed sum, adding the same terms in the same
  order (so the forms agree bit for bit): no prefix sums, whose differences
  cancel and turn huge finite inputs into NaN, and no band matrices
  (``0 * inf``). Every form is linear with a transpose, and XLA's SPMD
  partitioner splits each across devices with halo exchanges
  (collective-permutes).

  Args:
    x2: the array to sum (the squares of the input).
    axes: the axes the window spans.
    before: the window extent before each position.
    after: the window extent after each position.
    form: one of :data:`FORMS`. ``'shifts'`` adds shape-preserving shifted copies, which fuse
      into a single pass with the surrounding elementwise work;
      ``'slices'`` pads once and adds slices of the padded copy, which XLA
      keeps as one materialized array when several passes read it (the
      backward pass); ``'reduce_window'`` is ``lax.reduce_window``.
    weights: the seam for weighted windows (local contrast normalization's
      Gaussian, say): ``before + after + 1`` Python floats, the weight of
      the term ``o`` positions after the window's start along each axis
      (a separable window). ``None`` is the box of ones that LRN uses. A
      weighted sum is written as shifts or slices (``'reduce_window'``
      becomes ``'slices'``): reduce-window has no weights.

  Returns:
    The window sums, of the shape of ``x2``.

  Raises:
    ValueError: if ``form`` is not one of :data:`FORMS`, or ``weights`` is
      not one weight per element of the window.
  """
  if form not in FORMS:
    raise ValueError(f"form must be one of {FORMS}, got {form!r}.")
  if weights is not None:
    weights = tuple(float(w) for w in weights)
    if len(weights) != before + after + 1:
      raise ValueError(
        f"weights must hold before + after + 1 = {before + after + 1}"
        f" values, one per element of the window, got {len(weights)}."
      )
    if form == "reduce_window":
      form = "slices"
  for axis in axes:
    if form == "shifts":
      x2 = _shifted_sum(x2, axis, before, after, weights)
    elif form == "slices":
      x2 = _sliced_sum(x2, axis, before, after, weights)
    else:
      dims = [1] * x2.ndim
      dims[axis] = before + after + 1
      pads = [(0, 0)] * x2.ndim
      pads[axis] = (before, after)
      # A literal 0. and lax.add select reduce_window_sum, which is linear
      # and has a transpose rule; any other init or computation breaks
      # reverse mode (jax-ml/jax#7815).
      x2 = lax.reduce_window(x2, 0.0, lax.add, dims, (1,) * x2.ndim, pads)
  return x2


def _pad_config(ndim: int, axis: int, low: int, high: int):
  config = [(0, 0, 0)] * ndim
  config[axis] = (low, high, 0)
  return config


def _weighted(term: jax.Array, weights, o: int) -> jax.Array:
  return term if weights is None else term * weights[o]


def _shifted_sum(x2: jax.Array, axis: int, before: int, after: int, weights):
  # Term o holds x2[i + o - before]: a pad of (before - o, o - before) keeps
  # the shape, so it partitions with a halo exchange and fuses elementwise.
  zero = lax.full((), 0, x2.dtype)

  def term(o: int) -> jax.Array:
    shift = before - o
    if shift == 0:
      return x2
    return lax.pad(x2, zero, _pad_config(x2.ndim, axis, shift, -shift))

  total = _weighted(term(0), weights, 0)
  for o in range(1, before + after + 1):
    total = total + _weighted(term(o), weights, o)
  return total


def _sliced_sum(x2: jax.Array, axis: int, before: int, after: int, weights):
  n = x2.shape[axis]
  zero = lax.full((), 0, x2.dtype)
  padded = lax.pad(x2, zero, _pad_config(x2.ndim, axis, before, after))

  def term(o: int) -> jax.Array:
    return _weighted(lax.slice_in_dim(padded, o, o + n, axis=axis), weights, o)

  total = term(0)
  for o in range(1, before + after + 1):
    total = total + term(o)
  return total
