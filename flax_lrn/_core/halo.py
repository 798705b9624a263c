"""Halo exchange for a channel axis split over a ``shard_map`` or ``vmap`` axis."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def _neighbour_blocks(x: jax.Array, axis_name: str, shift: int, n: int):
  """The ``n`` blocks ``shift, 2*shift, ...`` positions away, nearest first.

  Blocks from past either end of the axis are zeros, exactly the zero
  padding of the unsplit array. The permutation is a full cycle, whose
  wrapped-around blocks are then zeroed: ``vmap``'s ``ppermute`` accepts
  only full permutations, and ``shard_map``'s sends one block more.
  """
  size = lax.axis_size(axis_name)
  index = lax.axis_index(axis_name)
  blocks = []
  for hop in range(1, n + 1):
    d = hop * shift
    perm = [(i, (i + d) % size) for i in range(size)]
    block = lax.ppermute(x, axis_name, perm)
    inside = (index - d >= 0) & (index - d < size)
    blocks.append(jnp.where(inside, block, jnp.zeros_like(block)))
  return blocks


def _varying_axes(x: jax.Array) -> frozenset:
  """The mesh axes over which ``x`` varies inside ``shard_map`` (or empty).

  Empty also where shard_map runs with ``check_vma=False``, which tracks
  nothing.
  """
  aval = jax.typeof(x)
  vma = getattr(aval, "vma", None)  # newer JAX
  if vma is None:  # JAX 0.10
    vma = getattr(getattr(aval, "manual_axis_type", None), "varying", None)
  return frozenset(vma or ())


def with_halo(
  x: jax.Array, axis: int, before: int, after: int, axis_name: str
) -> jax.Array:
  """Extends the local block with ``before``/``after`` neighbouring slices.

  Inside ``shard_map``, ``x`` is this device's block of an array split along
  ``axis`` over ``axis_name``. The result prepends the last ``before`` slices
  that precede it in the full array and appends the first ``after`` that
  follow it (zeros beyond the ends), so a window of those extents computed
  on the result and cropped back equals the unsplit computation.
  """
  try:
    lax.axis_size(axis_name)
  except NameError:
    raise ValueError(
      f"axis_name={axis_name!r} is not a mesh axis bound here: pass it only"
      " inside jax.shard_map whose mesh has that axis. Under jax.jit with"
      " sharded inputs, leave axis_name=None: XLA exchanges the halos."
    ) from None
  vma = _varying_axes(x)
  if vma and axis_name not in vma:
    raise ValueError(
      f"axis_name={axis_name!r}, but x does not vary over that mesh axis"
      f" (it varies over {sorted(vma)}): its channels are not split over"
      f" {axis_name!r}. Name the mesh axis that splits channel_axis in"
      " shard_map's in_specs."
    )
  local = x.shape[axis]
  parts = []
  if before:
    hops = -(-before // local)
    left = _neighbour_blocks(x, axis_name, 1, hops)[::-1]
    left = jnp.concatenate(left, axis)
    parts.append(lax.slice_in_dim(left, hops * local - before, None, axis=axis))
  parts.append(x)
  if after:
    hops = -(-after // local)
    right = _neighbour_blocks(x, axis_name, -1, hops)
    right = jnp.concatenate(right, axis)
    parts.append(lax.slice_in_dim(right, 0, after, axis=axis))
  return jnp.concatenate(parts, axis) if len(parts) > 1 else x
