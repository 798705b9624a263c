"""Smoke tests of the scripts in examples/, so that none of them can rot.

Each example runs in process, through its ``main(argv)``, with ``--smoke``
(a tiny configuration) and its outputs in ``tmp_path``. The tests check what
the scripts promise: the files they write, the table they print, the
numbers they return, and the facts their docstrings state (parameter
counts, where LRN sits, the formula of the response curve).

The full training of the two LRN variants on the digits (about 30 s) is
skipped unless ``FLAX_LRN_SLOW_TESTS=1``; it checks the README's accuracy
claim. Without the ``examples`` extra (scikit-learn, matplotlib, tqdm) the
whole module is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
from pathlib import Path
from types import ModuleType

import jax
import numpy as np
import pytest
from flax import nnx

import flax_lrn

# The examples' own dependencies (the `examples` extra, which CI installs):
# without them this module is skipped, visibly, rather than erroring.
for _name in ("matplotlib", "optax", "sklearn", "tqdm"):
  pytest.importorskip(_name)

import matplotlib.image  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_example(name: str) -> ModuleType:
  """Imports ``examples/<name>.py``, which is not a package, by path."""
  module_name = f"flax_lrn_example_{name}"
  if module_name in sys.modules:
    return sys.modules[module_name]
  spec = importlib.util.spec_from_file_location(
    module_name, EXAMPLES / f"{name}.py"
  )
  module = importlib.util.module_from_spec(spec)
  # The examples import their shared helpers (_common.py) from their own
  # folder, which Python puts on sys.path when it runs them as scripts.
  if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))
  # Registered before running, as dataclasses (and so linen) look their
  # module up in sys.modules.
  sys.modules[module_name] = module
  spec.loader.exec_module(module)
  return module


def assert_png(path: Path, min_width: int = 400, min_height: int = 300):
  """Checks that ``path`` is a PNG of a reasonable size with some content."""
  data = path.read_bytes()
  assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
  width, height = struct.unpack(">II", data[16:24])
  assert width >= min_width and height >= min_height, (width, height)
  pixels = matplotlib.image.imread(path)
  assert np.std(pixels[..., :3]) > 0.05, f"{path} looks blank"


# ---- train_digits.py ----------------------------------------------------


def test_train_digits_smoke(tmp_path, capsys):
  td = load_example("train_digits")
  results = td.main(["--smoke", "--out", str(tmp_path)])
  captured = capsys.readouterr()

  assert [r.variant for r in results] == list(td.VARIANTS)
  for r in results:
    assert len(r.train_loss) == len(r.test_accuracy) == 1
    assert np.isfinite(r.train_loss[0]) and np.isfinite(r.test_loss)
    assert 0.0 <= r.test_accuracy[0] <= 1.0
    assert r.compile_s > 0 and r.train_s > 0
    if r.variant.startswith("lrn"):
      # k=1 and inputs >= 0 (after ReLU): LRN can only shrink them.
      assert 0.0 < r.lrn_gain < 1.0
    else:
      assert r.lrn_gain is None

  table = [line for line in captured.out.splitlines() if line.startswith("|")]
  assert table[0].startswith("| variant | test accuracy")
  assert len(table) == 2 + len(td.VARIANTS)
  for line, label in zip(table[2:], td.VARIANTS.values(), strict=True):
    assert line.startswith(f"| {label} |") and "%" in line
  # The progress bar (on stderr) counts one step per variant and epoch.
  assert "4/4" in captured.err
  assert_png(tmp_path / "digits_learning_curves.png")


def test_train_digits_rejects_unknown_variant(tmp_path, capsys):
  td = load_example("train_digits")
  with pytest.raises(SystemExit):
    td.main(["--variants", "lrn-across,dropout", "--out", str(tmp_path)])
  assert "dropout" in capsys.readouterr().err


def test_train_digits_split_is_fixed_and_stratified():
  td = load_example("train_digits")
  data = td.load_data()
  assert data.x_train.shape == (1437, 8, 8, 1)
  assert data.x_test.shape == (360, 8, 8, 1)
  assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
  # Every class is in the test set about equally (stratified split).
  assert np.bincount(data.y_test, minlength=10).min() >= 35
  np.testing.assert_array_equal(data.y_test, td.load_data().y_test)


@pytest.mark.skipif(
  os.environ.get("FLAX_LRN_SLOW_TESTS") != "1",
  reason="a full training run; set FLAX_LRN_SLOW_TESTS=1",
)
def test_train_digits_lrn_variants_reach_97_percent(tmp_path):
  td = load_example("train_digits")
  results = td.main(
    ["--variants", "lrn-across,lrn-within", "--out", str(tmp_path)]
  )
  for r in results:
    assert r.test_accuracy[-1] >= 0.97, (r.variant, r.test_accuracy)


# ---- response_curve.py --------------------------------------------------


def test_response_curve_smoke(tmp_path, capsys):
  rc = load_example("response_curve")
  curves = rc.main(["--smoke", "--out", str(tmp_path)])
  out = capsys.readouterr().out

  s = curves["S"]
  labels = [setting.label for setting in rc.SETTINGS]
  assert set(curves) == {"S", *labels}
  # The formula typed out independently: (k + alpha_eff * S) ** -beta.
  expected = {
    "AlexNet paper": (2.0 + 1e-4 * s) ** -0.75,
    "Caffe AlexNet": (1.0 + 2e-5 * s) ** -0.75,
    "TensorFlow defaults": (1.0 + s) ** -0.5,
    "examples/train_digits.py": (1.0 + 0.2 * s) ** -0.75,
  }
  for prefix, want in expected.items():
    (label,) = [label for label in labels if label.startswith(prefix)]
    np.testing.assert_allclose(curves[label], want, rtol=2e-6)
    assert label in out
  # The blog post's curve is not AlexNet's: 0.75 / 2 at S = 0, not 2**-0.75.
  assert rc.seed_001_curve(np.zeros(1))[0] == pytest.approx(0.375)
  assert_png(tmp_path / "lrn_response_curve.png")


# ---- inter_vs_intra.py --------------------------------------------------


def test_inter_vs_intra_smoke(tmp_path):
  iv = load_example("inter_vs_intra")
  maps = iv.main(["--smoke", "--out", str(tmp_path)])
  a, across, within = (np.asarray(maps[k]) for k in ("a", "across", "within"))

  assert a.shape == across.shape == within.shape == (1, 16, 16, 16)
  assert a.min() >= 0 and a.max() == pytest.approx(3.0)
  # k = 1: both flavours shrink every activation, but differently.
  assert np.all(across <= a + 1e-6) and np.all(within <= a + 1e-6)
  assert np.max(np.abs(across - within)) > 0.05

  # One pixel by hand: across 5 channels with alpha / 5, within a 5x5
  # window with alpha / 25 (zero-padded at the border), k = 1, beta = 0.75.
  h, w, c = 7, 9, 3
  s_across = np.sum(a[0, h, w, c - 2 : c + 3] ** 2)
  s_within = np.sum(a[0, h - 2 : h + 3, w - 2 : w + 3, c] ** 2)
  np.testing.assert_allclose(
    across[0, h, w, c], a[0, h, w, c] * (1 + s_across / 5) ** -0.75, rtol=1e-5
  )
  np.testing.assert_allclose(
    within[0, h, w, c], a[0, h, w, c] * (1 + s_within / 25) ** -0.75, rtol=1e-5
  )
  assert_png(tmp_path / "inter_vs_intra.png", min_width=800)


# ---- alexnet.py ---------------------------------------------------------


def test_alexnet_smoke(capsys):
  ax = load_example("alexnet")
  r = ax.main(["--smoke"])

  # Caffe's bvlc_alexnet (two groups in conv2, conv4 and conv5) at 227x227.
  assert r["params_227_linen"] == r["params_227_nnx"] == 60_965_224
  assert r["params_linen"] == r["params_nnx"]
  for out in (r["out_linen"], r["out_nnx"]):
    assert out.shape == (2, 10) and np.all(np.isfinite(out))
  # LRN after the ReLUs of conv1 and conv2, before their pools (67x67 input:
  # conv1 -> 15x15, pool -> 7x7, conv2 -> 7x7).
  lrn = r["lrn_outputs"]
  assert [v.shape for v in lrn.values()] == [(2, 15, 15, 96), (2, 7, 7, 256)]
  assert all(float(v.min()) >= 0 for v in lrn.values())
  assert "60,965,224" in capsys.readouterr().out


def test_alexnet_linen_and_nnx_compute_the_same_function():
  ax = load_example("alexnet")
  x = jax.random.normal(jax.random.key(3), (1, 67, 67, 3))
  linen_model, variables = ax.build_linen(10, x, 0, fast_init=True)
  nnx_model = ax.build_nnx(10, 67, 1, fast_init=True)
  params = variables["params"]
  layers = [*nnx_model.convs, nnx_model.fc6, nnx_model.fc7, nnx_model.fc8]
  names = [f"Conv_{i}" for i in range(5)] + [f"Dense_{i}" for i in range(3)]
  for layer, name in zip(layers, names, strict=True):
    layer.kernel[...] = params[name]["kernel"]
    layer.bias[...] = params[name]["bias"]
  logits_linen, _ = ax.forward_linen(linen_model, variables, x)
  np.testing.assert_allclose(
    ax.forward_nnx(nnx_model, x), logits_linen, rtol=1e-5, atol=1e-6
  )
  # The NNX model has one LRN, with the paper's settings, used twice.
  assert isinstance(nnx_model.lrn, flax_lrn.nnx.LRN)
  assert (nnx_model.lrn.window, nnx_model.lrn.k) == (5, 2.0)
  assert (nnx_model.lrn.alpha, nnx_model.lrn.alpha_scaling) == (1e-4, "none")


# ---- googlenet.py -------------------------------------------------------


def _inception_v1_param_count(num_classes: int) -> int:
  """The parameter count from the paper's Table 1, typed out again."""

  def conv(k, cin, cout):
    return k * k * cin * cout + cout

  table = [  # 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj
    (64, 96, 128, 16, 32, 32),
    (128, 128, 192, 32, 96, 64),
    (192, 96, 208, 16, 48, 64),
    (160, 112, 224, 24, 64, 64),
    (128, 128, 256, 24, 64, 64),
    (112, 144, 288, 32, 64, 64),
    (256, 160, 320, 32, 128, 128),
    (256, 160, 320, 32, 128, 128),
    (384, 192, 384, 48, 128, 128),
  ]
  total = conv(7, 3, 64) + conv(1, 64, 64) + conv(3, 64, 192)
  cin = 192
  for c1, r3, c3, r5, c5, pp in table:
    total += conv(1, cin, c1) + conv(1, cin, r3) + conv(3, r3, c3)
    total += conv(1, cin, r5) + conv(5, r5, c5) + conv(1, cin, pp)
    cin = c1 + c3 + c5 + pp
  return total + cin * num_classes + num_classes


def test_googlenet_smoke(capsys):
  gn = load_example("googlenet")
  r = gn.main(["--smoke"])

  assert r["params_linen"] == r["params_nnx"] == _inception_v1_param_count(1000)
  for out in (r["out_linen"], r["out_nnx"]):
    assert out.shape == (2, 10) and np.all(np.isfinite(out))
  # 32x32 input: conv1/2 -> 16, pool -> 8 (LRN 1), conv2 keeps 8 (LRN 2).
  lrn = r["lrn_outputs"]
  assert [v.shape for v in lrn.values()] == [(2, 8, 8, 64), (2, 8, 8, 192)]
  assert all(float(v.min()) >= 0 for v in lrn.values())
  assert f"{r['params_linen']:,}" in capsys.readouterr().out


def test_googlenet_lrn_uses_caffe_settings():
  gn = load_example("googlenet")
  model = nnx.eval_shape(lambda: gn.GoogLeNetNNX(10, rngs=nnx.Rngs(0)))
  for layer in (model.norm1, model.norm2):
    assert (layer.window, layer.alpha, layer.beta, layer.k) == (
      5,
      1e-4,
      0.75,
      1.0,
    )
    assert layer.alpha_scaling == "size"


def test_googlenet_lrn_matches_caffe_front_end():
  # The docstring's claim: LRN_ARGS is Caffe's LRN layer with these values.
  gn = load_example("googlenet")
  x = np.random.default_rng(0).uniform(0, 300, (2, 5, 5, 16)).astype("f4")
  ours = flax_lrn.LRN(**gn.LRN_ARGS).apply({}, x)
  caffe = flax_lrn.LRN.from_caffe(5, alpha=1e-4, beta=0.75, channel_axis=-1)
  np.testing.assert_allclose(ours, caffe.apply({}, x), rtol=1e-6)
  # Large inputs, so that the normalization is far from the identity.
  assert float(np.min(ours / x)) < 0.9
