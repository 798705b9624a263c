"""The pure-JAX core of flax_lrn: no Flax, no framework conventions.

Everything the entry points compute lives here, in layers that only call
downwards:

* :mod:`.checks`: trace-time checks of arguments, with the messages that
  name the parameter, the value and what is allowed;
* :mod:`.powers`: the one table of fast powers, used by the LRN formula,
  its differentiation rules, GDN and the ONNX lowering;
* :mod:`.windows`: zero-padded window sums, the one linear operator;
* :mod:`.halo`: the halo exchange of a channel axis split by ``shard_map``;
* :mod:`.lrn_formula`: the LRN formula and its differentiation rules (the
  XLA kernel);
* :mod:`.pallas_kernel`: the hand-written GPU kernel (``'pallas'``);
* :mod:`.kernels`: the kernel seam, where the formula's implementation is
  chosen (``implementation=``);
* :mod:`.lrn_arguments`, :mod:`.lrn`: :func:`flax_lrn.lrn`;
* :mod:`.gdn`: :func:`flax_lrn.gdn`;
* :mod:`.nonnegative`: the reparametrization of GDN's learned parameters.

A test imports this package without Flax installed in ``sys.modules`` and
checks that nothing here imports it, or anything of flax_lrn outside it.
"""
