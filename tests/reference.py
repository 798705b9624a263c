"""An independent float64 NumPy LRN, written from the formula.

It shares no code with flax_lrn: the window sum is a loop over explicit
shifted copies of the zero-padded squares, not ``reduce_window``.
"""

from __future__ import annotations

import itertools

import numpy as np


def window_sum(x2: np.ndarray, axes, before: int, after: int) -> np.ndarray:
  """Sum of ``x2`` over the box ``[i - before, i + after]`` on each axis."""
  x2 = np.asarray(x2, np.float64)
  pad = [(0, 0)] * x2.ndim
  for a in axes:
    pad[a] = (before, after)
  padded = np.pad(x2, pad)
  out = np.zeros_like(x2)
  for offsets in itertools.product(range(before + after + 1), repeat=len(axes)):
    index = [slice(None)] * x2.ndim
    for a, o in zip(axes, offsets, strict=True):
      index[a] = slice(o, o + x2.shape[a])
    out += padded[tuple(index)]
  return out


def lrn(
  x,
  before: int,
  after: int,
  a_eff: float,
  k: float,
  beta: float,
  axes=(-1,),
) -> np.ndarray:
  """``x * (k + a_eff * S) ** -beta`` in float64, ``S`` the window sum."""
  x = np.asarray(x, np.float64)
  axes = tuple(a % x.ndim for a in axes)
  s = k + a_eff * window_sum(x * x, axes, before, after)
  return x * s ** (-beta)


def lrn_vjp(x, g, before, after, a_eff, k, beta, axes=(-1,)) -> np.ndarray:
  """The analytic gradient of ``sum(g * lrn(x))``, by the chain rule.

  ``dx_j = g_j s_j^-beta - 2 a beta x_j sum_{c: j in W(c)} g_c y_c / s_c``,
  where the transposed window of ``[c - before, c + after]`` is
  ``[j - after, j + before]``.
  """
  x = np.asarray(x, np.float64)
  g = np.asarray(g, np.float64)
  axes = tuple(a % x.ndim for a in axes)
  s = k + a_eff * window_sum(x * x, axes, before, after)
  y = x * s ** (-beta)
  back = window_sum(g * y / s, axes, after, before)
  return g * s ** (-beta) - 2.0 * a_eff * beta * x * back
