"""Flax linen modules: :class:`LRN` and :class:`GDN`."""

from flax_lrn._modules.gdn_linen import GDN
from flax_lrn._modules.lrn_linen import LRN

__all__ = ("GDN", "LRN")
