"""Regenerates tests/golden/*.npz from the real TensorFlow, PyTorch and ORT.

Run from the repository root with the ``compat`` extra installed::

  python tests/golden/make_golden.py

Each ``<convention>.npz`` holds, per case ``NN``: ``NN/x`` (input), ``NN/g``
(cotangent), ``NN/y`` (the peer's output), ``NN/dx`` (the peer's gradient,
where the peer has one) and ``NN/meta`` (JSON: the upstream parameters,
``channel_axis``, the dtype the peer computed in, and which peer and API
produced the numbers); ``versions`` records the peers' versions. Arrays are
float32; half-precision cases hold values that are exact in their dtype.
tests/test_golden.py checks flax_lrn against these files without any peer.

The cases are fixed (no randomness beyond a seeded generator), so rerunning
with the same peer versions reproduces the files bit for bit.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# (shape, channel_axis, upstream parameters, dtype) per convention. Covers
# odd and even sizes, C = 1, windows wider than C, channels first and last,
# ranks 3 to 5, alpha from 1e-4 to 2, and half precision where the peer has
# it.
CASES = {
  "tensorflow": [
    ((2, 3, 3, 6), -1, dict(depth_radius=2, bias=1.0, alpha=1.0, beta=0.5)),
    ((2, 2, 2, 5), -1, dict(depth_radius=5, bias=1.0, alpha=1.0, beta=0.5)),
    ((1, 2, 3, 1), -1, dict(depth_radius=1, bias=2.0, alpha=1.5, beta=0.75)),
    ((2, 7, 3, 2), 1, dict(depth_radius=0, bias=0.5, alpha=2.0, beta=1.0)),
    ((3, 4, 8), -1, dict(depth_radius=3, bias=1.2, alpha=0.3, beta=0.6)),
    ((1, 2, 2, 2, 9), -1, dict(depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)),
    ((2, 5, 2, 3, 2), 1, dict(depth_radius=4, bias=0.8, alpha=0.5, beta=1.3)),
    ((2, 3, 3, 7), -1, dict(depth_radius=2, bias=1.0, alpha=1.0, beta=0.75), "float16"),
  ],
  "torch": [
    ((2, 6, 3, 3), 1, dict(size=5, alpha=1.0, beta=0.75, k=1.0)),
    ((2, 6, 3, 3), 1, dict(size=4, alpha=1.0, beta=0.75, k=1.0)),
    ((2, 5, 4), 1, dict(size=2, alpha=2.0, beta=1.0, k=0.5)),
    ((1, 1, 3, 4), 1, dict(size=3, alpha=1.0, beta=0.75, k=1.0)),
    ((2, 3, 2, 2), 1, dict(size=8, alpha=1.5, beta=0.6, k=1.3)),
    ((2, 3, 3, 7), -1, dict(size=6, alpha=0.5, beta=0.75, k=2.0)),
    ((1, 4, 2, 2, 3), 1, dict(size=3, alpha=1e-4, beta=0.75, k=1.0)),
    ((2, 2, 2, 3, 5), -1, dict(size=1, alpha=1.0, beta=1.2, k=0.9)),
    ((2, 7, 6), 1, dict(size=5, alpha=1.0, beta=0.75, k=1.0), "float16"),
    ((2, 7, 6), 1, dict(size=4, alpha=1.0, beta=0.75, k=1.0), "bfloat16"),
  ],
  "onnx": [
    ((2, 6, 3, 3), 1, dict(size=5, alpha=1.0, beta=0.75, bias=1.0)),
    ((1, 1, 2, 5), 1, dict(size=3, alpha=2.0, beta=0.5, bias=1.0)),
    ((2, 3, 3, 4), -1, dict(size=7, alpha=0.7, beta=1.0, bias=0.8)),
    ((2, 8, 5), 1, dict(size=1, alpha=1.0, beta=0.75, bias=1.5)),
    ((1, 5, 2, 2, 3), 1, dict(size=9, alpha=1e-4, beta=0.75, bias=1.0)),
    ((2, 6, 3, 3), 1, dict(size=5, alpha=1.0, beta=0.75, bias=1.0), "float16"),
    # Even sizes: ONNX Runtime rejects them; PyTorch on reversed channels.
    ((2, 6, 3, 3), 1, dict(size=4, alpha=1.0, beta=0.75, bias=1.0)),
    ((2, 3, 4), 1, dict(size=2, alpha=2.0, beta=1.0, bias=0.5)),
    ((2, 2, 3, 5), -1, dict(size=6, alpha=1.5, beta=0.6, bias=1.3)),
  ],
  "caffe": [
    ((2, 6, 3, 3), 1, dict(local_size=5, alpha=1.0, beta=0.75, k=1.0)),
    ((2, 3, 3, 3), 1, dict(local_size=5, alpha=1e-4, beta=0.75, k=1.0)),
    ((2, 4, 3), -1, dict(local_size=3, alpha=2.0, beta=0.5, k=2.0)),
    ((2, 2, 5, 5), 1, dict(local_size=3, alpha=1.0, beta=0.75, k=1.0, norm_region="within_channel")),
    ((1, 3, 4, 4), 1, dict(local_size=5, alpha=2.0, beta=0.75, k=3.0, norm_region="within_channel")),
    ((2, 3, 2, 4), -1, dict(local_size=3, alpha=1.0, beta=1.0, k=1.0, norm_region="within_channel")),
    ((2, 2, 6), 1, dict(local_size=7, alpha=1.5, beta=0.6, k=0.5, norm_region="within_channel")),
    ((1, 2, 3, 3, 3), 1, dict(local_size=3, alpha=1.0, beta=0.75, k=1.0, norm_region="within_channel")),
  ],
}  # fmt: skip


def _peer(convention: str, x, g, params: dict, channel_axis: int, dtype: str):
  """Runs the real peer; returns (y, dx or None, a description)."""
  from tests import compat_helpers as ch

  p = params
  if convention == "tensorflow":
    y, dx = ch.tf_lrn(
      x,
      p["depth_radius"],
      p["bias"],
      p["alpha"],
      p["beta"],
      channel_axis=channel_axis,
      g=g,
      dtype=dtype,
    )
    return y, dx, "tf.nn.local_response_normalization + GradientTape"
  if convention == "torch":
    y, dx = ch.torch_lrn(
      x,
      p["size"],
      p["alpha"],
      p["beta"],
      p["k"],
      channel_axis=channel_axis,
      g=g,
      dtype=dtype,
    )
    return y, dx, "torch.nn.functional.local_response_norm + autograd"
  if convention == "onnx":
    args = (x, p["size"], p["alpha"], p["beta"], p["bias"])
    if p["size"] % 2:
      y = ch.ort_lrn(*args, channel_axis=channel_axis, dtype=dtype)
      return y, None, "onnxruntime InferenceSession, one LRN node (opset 13)"
    y, dx = ch.torch_onnx_even(*args, channel_axis=channel_axis, g=g)
    return y, dx, "torch local_response_norm on reversed channels + autograd"
  if p.get("norm_region", "across_channels") == "within_channel":
    y, dx = ch.torch_caffe_within(
      x,
      p["local_size"],
      p["alpha"],
      p["beta"],
      channel_axis=channel_axis,
      g=g,
    )
    return y, dx, "torch ops composed as Caffe's WITHIN_CHANNEL + autograd"
  y, dx = ch.torch_lrn(
    x,
    p["local_size"],
    p["alpha"],
    p["beta"],
    p["k"],
    channel_axis=channel_axis,
    g=g,
  )
  return y, dx, "torch local_response_norm (= Caffe ACROSS_CHANNELS, odd n)"


def _as_dtype(a: np.ndarray, dtype: str) -> np.ndarray:
  """Rounds to ``dtype`` and back to float32, so the values are exact."""
  import ml_dtypes

  dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
  return a.astype(dt).astype(np.float32)


def main() -> None:
  sys.path.insert(0, str(ROOT))
  from tests import compat_helpers as ch

  versions = ch.versions()
  rng = np.random.default_rng(20261122)
  total = 0
  for convention, cases in CASES.items():
    arrays = {"versions": np.array(json.dumps(versions))}
    for i, case in enumerate(cases):
      shape, channel_axis, params = case[:3]
      dtype = case[3] if len(case) > 3 else "float32"
      scale = rng.choice([0.5, 1.0, 3.0])
      x = _as_dtype(scale * rng.standard_normal(shape), dtype)
      g = _as_dtype(rng.standard_normal(shape), dtype)
      y, dx, source = _peer(convention, x, g, params, channel_axis, dtype)
      meta = dict(
        params=params, channel_axis=channel_axis, dtype=dtype, source=source
      )
      key = f"{i:02d}"
      arrays[f"{key}/x"] = x
      arrays[f"{key}/g"] = g
      arrays[f"{key}/y"] = np.asarray(y, np.float32)
      if dx is not None:
        arrays[f"{key}/dx"] = np.asarray(dx, np.float32)
      arrays[f"{key}/meta"] = np.array(json.dumps(meta, sort_keys=True))
    path = HERE / f"{convention}.npz"
    np.savez_compressed(path, **arrays)
    total += path.stat().st_size
    print(f"{path.relative_to(ROOT)}: {len(cases)} cases")
  print(f"total {total / 1024:.1f} KiB; peers {versions}")


if __name__ == "__main__":
  main()
