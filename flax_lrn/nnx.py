"""Flax NNX modules: :class:`LRN` and :class:`GDN`."""

from flax_lrn._modules.gdn_nnx import GDN
from flax_lrn._modules.lrn_nnx import LRN

__all__ = ("GDN", "LRN")
