"""An independent float64 NumPy GDN, written from the formula.

It shares no code with flax_lrn: the pool is an explicit loop over the
input channels ``j`` of ``gamma[j, i] * |x[j]| ** alpha``.
"""

from __future__ import annotations

import numpy as np

# tensorflow_compression's and CompressAI's reparametrization offset.
OFFSET = 2.0**-18


def gdn(
  x,
  beta,
  gamma,
  alpha: float = 2.0,
  epsilon: float = 0.5,
  inverse: bool = False,
  rectify: bool = False,
  channel_axis: int = -1,
) -> np.ndarray:
  """``x[i] * (beta[i] + sum_j gamma[j, i] |x[j]| ** alpha) ** -+epsilon``."""
  x = np.moveaxis(np.asarray(x, np.float64), channel_axis, -1)
  beta = np.asarray(beta, np.float64)
  gamma = np.asarray(gamma, np.float64)
  if rectify:
    x = np.maximum(x, 0.0)
  channels = x.shape[-1]
  y = np.empty_like(x)
  for i in range(channels):
    pool = np.full(x.shape[:-1], beta[i])
    for j in range(channels):
      pool += gamma[j, i] * np.abs(x[..., j]) ** alpha
    y[..., i] = x[..., i] * pool ** (epsilon if inverse else -epsilon)
  return np.moveaxis(y, -1, channel_axis)


def nonnegative_value(stored, minimum: float = 0.0, offset: float = OFFSET):
  """The value of a reparametrized parameter: ``max(v, b) ** 2 - o ** 2``."""
  stored = np.asarray(stored, np.float64)
  bound = np.sqrt(minimum + offset**2)
  return np.maximum(stored, bound) ** 2 - offset**2


def nonnegative_stored(value, offset: float = OFFSET):
  """The stored form of a value: ``sqrt(max(p + o ** 2, o ** 2))``."""
  value = np.asarray(value, np.float64)
  return np.sqrt(np.maximum(value + offset**2, offset**2))
