"""The Flax modules: LRN and GDN, linen and NNX, built the same way.

* :mod:`.constructors`: the ``from_*`` constructors of both families, one
  mixin each, with explicit signatures and the conventions' defaults;
* :mod:`.lrn_linen`, :mod:`.lrn_nnx`: the LRN modules, which forward their
  fields to :func:`flax_lrn.lrn`;
* :mod:`.gdn_params`: what the GDN modules share (their fields, checks and
  parameters);
* :mod:`.gdn_linen`, :mod:`.gdn_nnx`: the GDN modules.

A module checks its fields when it is built (NNX) or at the latest at
``init`` (linen), checks ``x`` once per call, and calls the conventions
(:mod:`flax_lrn._conventions`) and the core (:mod:`flax_lrn._core`) below.
"""
