"""Smoke test of examples/gdn_autoencoder.py, in tests/test_examples.py's way.

The example runs in process through ``main(argv)`` with ``--smoke`` and its
figure in ``tmp_path``. The full run (about 2 minutes) is skipped unless
``FLAX_LRN_SLOW_TESTS=1``; it checks the docs' claim that GDN reconstructs
better than ReLU at equal parameter count. Without the ``examples`` extra
the module is skipped, visibly.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

for _name in ("matplotlib", "optax", "sklearn", "tqdm"):
  pytest.importorskip(_name)

from tests.test_examples import assert_png, load_example  # noqa: E402


def test_gdn_autoencoder_smoke(tmp_path, capsys):
  ae = load_example("gdn_autoencoder")
  results = ae.main(["--smoke", "--out", str(tmp_path)])
  captured = capsys.readouterr()

  assert [r.variant for r in results] == list(ae.VARIANTS)
  # The docstring's claim: the same parameter count.
  assert results[0].params == results[1].params > 0
  for r in results:
    assert r.steps[-1] == 20 and len(r.steps) == len(r.test_mse) == 2
    assert all(np.isfinite(r.test_mse)) and 0 < r.test_mse[-1] < 1
    assert r.psnr == pytest.approx(-10 * np.log10(r.test_mse[-1]))
    assert r.reconstructions.shape == (6, 32, 32, 3)
    assert r.compile_s > 0 and r.train_s > 0
  table = [line for line in captured.out.splitlines() if line.startswith("|")]
  assert table[0].startswith("| model | parameters | test MSE | PSNR")
  assert len(table) == 2 + len(ae.VARIANTS)
  assert "4/4" in captured.err  # two evaluations per model
  assert_png(tmp_path / "gdn_autoencoder.png")


def test_gdn_autoencoder_layers_and_data():
  ae = load_example("gdn_autoencoder")
  x = jnp.zeros((1, 32, 32, 3))
  shapes = {
    v: jax.eval_shape(ae.Autoencoder(nonlinearity=v).init, jax.random.key(0), x)
    for v in ae.VARIANTS
  }
  gdn = shapes["gdn"]["params"]
  names = [n for n in gdn if n.startswith("GDN")]
  assert len(names) == 4  # two GDN in the analysis, two IGDN in synthesis
  c = ae.Autoencoder.features
  assert gdn[names[0]]["reparam_gamma"].shape == (c, c)
  y = jax.eval_shape(ae.Autoencoder().apply, shapes["gdn"], x)
  assert y.shape == x.shape
  data = ae.load_data(8, 4)
  assert data.train.shape == (8, 32, 32, 3) and data.test.shape == (
    4,
    32,
    32,
    3,
  )
  assert data.train.min() >= 0.0 and data.train.max() <= 1.0


@pytest.mark.skipif(
  os.environ.get("FLAX_LRN_SLOW_TESTS") != "1",
  reason="a full training run; set FLAX_LRN_SLOW_TESTS=1",
)
def test_gdn_autoencoder_beats_relu(tmp_path):
  ae = load_example("gdn_autoencoder")
  gdn, relu = ae.main(["--out", str(tmp_path)])
  assert gdn.psnr > relu.psnr + 0.1, (gdn.psnr, relu.psnr)
