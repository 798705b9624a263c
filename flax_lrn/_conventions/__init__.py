"""Every framework's LRN and GDN convention, written once.

* :mod:`.lrn`: TensorFlow's, PyTorch's, ONNX's and Caffe's LRN parameters
  and defaults, mapped onto :func:`flax_lrn.lrn`'s;
* :mod:`.gdn`: tensorflow_compression's and CompressAI's GDN arguments and
  defaults, mapped onto the GDN modules' fields;
* :mod:`.lrn_front_ends`, :mod:`.gdn_front_ends`: the functional front ends
  (:mod:`flax_lrn.compat`, :mod:`flax_lrn.compat_gdn`);
* :mod:`.gdn_weights`: the GDN weights, moved between the libraries.

A new framework's convention is a mapping in :mod:`.lrn` (or :mod:`.gdn`)
with its defaults, a front end beside the others and a ``from_*``
constructor in :mod:`flax_lrn._modules.constructors`. This package calls
the core (:mod:`flax_lrn._core`) and nothing above it.
"""
