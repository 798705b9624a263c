"""Benchmarks of flax_lrn against TensorFlow, PyTorch and a memory floor.

Run ``python -m benchmarks.lrn_bench --help`` from the repository root;
BENCHMARKS.md says what is measured and shows the results.
"""
