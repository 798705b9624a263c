"""Regenerates tests/golden/compressai_gdn.npz from CompressAI's GDN layers.

Run from the repository root with torch and the compressai package files
installed (``pip install --no-deps compressai`` suffices; see
tests/gdn_peers.py)::

  python tests/golden/make_golden_gdn.py

For each case ``NN`` of tests/gdn_peers.py the file holds ``NN/x`` (NCHW
input), ``NN/g`` (cotangent), ``NN/beta``, ``NN/gamma`` (the stored,
reparametrized parameters as CompressAI keeps them, gamma ``[output,
input]``), CompressAI's ``NN/y``, ``NN/dx``, ``NN/dbeta``, ``NN/dgamma``
(gradients of the stored parameters) and ``NN/meta`` (JSON: class,
inverse, beta_min); ``versions`` records torch's and CompressAI's versions.
tests/test_gdn_compressai.py checks flax_lrn against it without CompressAI.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def main() -> None:
  sys.path.insert(0, str(ROOT))
  import torch

  from tests import gdn_peers

  if gdn_peers.compressai_gdn_module() is None:
    raise SystemExit("CompressAI's gdn.py is not installed.")
  versions = {
    "torch": torch.__version__,
    "compressai": gdn_peers.compressai_version(),
  }
  arrays = {"versions": np.array(json.dumps(versions))}
  for i, (cls_name, _, inverse, beta_min, draw) in enumerate(gdn_peers.CASES):
    case = gdn_peers.case_arrays(i)
    out = gdn_peers.run_compressai(
      cls_name, case["x"], case["g"], case, inverse=inverse, beta_min=beta_min
    )
    key = f"{i:02d}"
    for name in ("x", "g", "beta", "gamma"):
      arrays[f"{key}/{name}"] = case[name]
    for name in ("y", "dx", "dbeta", "dgamma"):
      arrays[f"{key}/{name}"] = np.asarray(out[name], np.float32)
    meta = dict(cls=cls_name, inverse=inverse, beta_min=beta_min, draw=draw)
    arrays[f"{key}/meta"] = np.array(json.dumps(meta, sort_keys=True))
  path = HERE / "compressai_gdn.npz"
  np.savez_compressed(path, **arrays)
  print(f"{path.relative_to(ROOT)}: {len(gdn_peers.CASES)} cases, {versions}")


if __name__ == "__main__":
  main()
