"""ONNX export through jax2onnx: the plugin and its registration.

:mod:`.autoload` registers :mod:`.plugin` once jax2onnx is imported;
the plugin registers an ONNX kernel at the kernel seam
(:mod:`flax_lrn._core.kernels`) and makes it the default while
``jax2onnx.to_onnx`` converts. Only :mod:`.plugin` imports jax2onnx.
"""
