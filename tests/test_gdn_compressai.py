"""GDN against CompressAI: recorded outputs always, the live layers if present.

tests/golden/compressai_gdn.npz holds CompressAI's ``GDN``/``GDN1`` outputs
and gradients (of the input and of the stored, reparametrized ``beta`` and
``gamma``) for the cases of tests/gdn_peers.py, some with stored values
under their bound. The flax_lrn side loads the same stored state through
:func:`flax_lrn.compat_gdn.params_from_compressai` into the linen and NNX
modules (built by ``from_compressai``) and runs the functional front end on
the values. With torch and the compressai package files installed the same
comparison also runs live (else those tests are skipped, visibly).
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import flax_lrn
from flax_lrn import compat_gdn
from flax_lrn import nnx as lrn_nnx
from tests import gdn_peers

GOLDEN = (
  pathlib.Path(__file__).resolve().parent / "golden" / "compressai_gdn.npz"
)
# float32 against float32: relative to the largest magnitude of each array.
RTOL = 1e-5


def _load_golden() -> list[dict]:
  with np.load(GOLDEN, allow_pickle=False) as data:
    keys = sorted({k.split("/")[0] for k in data.files if "/" in k})
    cases = []
    for key in keys:
      case = {
        name: data[f"{key}/{name}"]
        for name in ("x", "g", "beta", "gamma", "y", "dx", "dbeta", "dgamma")
      }
      case.update(json.loads(str(data[f"{key}/meta"])))
      cases.append(case)
  return cases


GOLDEN_CASES = _load_golden()


def _err(actual, expected) -> float:
  expected = np.asarray(expected, np.float64)
  diff = np.abs(np.asarray(actual, np.float64) - expected)
  return float(diff.max() / max(np.abs(expected).max(), 1e-30))


def _flax_lrn_side(case: dict) -> dict[str, np.ndarray]:
  """y and the gradients from the linen module, as CompressAI lays them out."""
  layer = flax_lrn.GDN.from_compressai(
    inverse=case["inverse"],
    beta_min=case["beta_min"],
    simplified=case["cls"] == "GDN1",
  )
  params = compat_gdn.params_from_compressai(
    {"beta": case["beta"], "gamma": case["gamma"]},
    beta_min=case["beta_min"],
  )

  def run(params, x):
    return layer.apply({"params": params}, x)

  y, vjp = jax.vjp(jax.jit(run), params, jnp.asarray(case["x"]))
  dparams, dx = vjp(jnp.asarray(case["g"]))
  return {
    "y": np.asarray(y),
    "dx": np.asarray(dx),
    "dbeta": np.asarray(dparams["reparam_beta"]),
    "dgamma": np.asarray(dparams["reparam_gamma"]).T,  # to [output, input]
  }


def _case_id(case: dict) -> str:
  inv = "-inverse" if case["inverse"] else ""
  c = case["x"].shape[1]
  return f"{case['cls']}{inv}-C{c}-{case['draw']}-betamin{case['beta_min']}"


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=_case_id)
def test_golden(case):
  ours = _flax_lrn_side(case)
  for name in ("y", "dx", "dbeta", "dgamma"):
    assert _err(ours[name], case[name]) <= RTOL, name


@pytest.mark.parametrize("case", GOLDEN_CASES, ids=_case_id)
def test_golden_nnx_and_function(case):
  simplified = case["cls"] == "GDN1"
  c = case["x"].shape[1]
  layer = lrn_nnx.GDN.from_compressai(
    case["inverse"], case["beta_min"], simplified=simplified, num_features=c
  )
  params = compat_gdn.params_from_compressai(
    {"beta": case["beta"], "gamma": case["gamma"]}, beta_min=case["beta_min"]
  )
  nnx.update(layer, params)
  assert _err(jax.jit(lambda x: layer(x))(case["x"]), case["y"]) <= RTOL
  # The functional front end takes CompressAI's values, gamma [out, in].
  beta = compat_gdn.nonnegative_value(case["beta"], case["beta_min"])
  gamma = compat_gdn.nonnegative_value(case["gamma"])
  front = jax.jit(
    compat_gdn.compressai, static_argnames=("inverse", "simplified")
  )
  y = front(
    case["x"], beta, gamma, inverse=case["inverse"], simplified=simplified
  )
  assert _err(y, case["y"]) <= RTOL


def test_golden_covers_the_cases():
  assert len(GOLDEN_CASES) == len(gdn_peers.CASES)
  assert {c["cls"] for c in GOLDEN_CASES} == {"GDN", "GDN1"}
  below = [c for c in GOLDEN_CASES if c["draw"] == "below"]
  # Clipped entries whose gradient CompressAI zeroed and ones it passed.
  zeroed = passed = 0
  for c in below:
    bound = np.sqrt(c["beta_min"] + 2.0**-36)
    low = c["beta"] < bound
    zeroed += int(np.sum(c["dbeta"][low] == 0))
    passed += int(np.sum(c["dbeta"][low] != 0))
    low = c["gamma"] < 2.0**-18
    zeroed += int(np.sum(c["dgamma"][low] == 0))
    passed += int(np.sum(c["dgamma"][low] != 0))
  assert zeroed and passed, (zeroed, passed)


def test_round_trip_state_dict():
  case = GOLDEN_CASES[6]
  params = compat_gdn.params_from_compressai(
    {"beta": case["beta"], "gamma": case["gamma"]}, beta_min=case["beta_min"]
  )
  state = compat_gdn.params_to_compressai(params, beta_min=case["beta_min"])
  np.testing.assert_array_equal(state["beta"], case["beta"])
  np.testing.assert_array_equal(state["gamma"], case["gamma"])
  np.testing.assert_allclose(
    state["beta_reparam.lower_bound.bound"], np.sqrt(0.01 + 2.0**-36)
  )
  # A wrong beta_min is caught by the bound buffer.
  with pytest.raises(ValueError, match=r"beta_reparam.lower_bound.bound is"):
    compat_gdn.params_from_compressai(state, beta_min=1e-6)
  with pytest.raises(ValueError, match="fixed exponents"):
    compat_gdn.params_to_compressai({**params, "reparam_alpha": 1.0})


# ---- live ---------------------------------------------------------------

live = pytest.mark.skipif(
  gdn_peers.compressai_gdn_module() is None,
  reason="needs torch and the compressai package files (pip install"
  " --no-deps compressai)",
)


@live
@pytest.mark.parametrize("index", range(len(gdn_peers.CASES)))
def test_live_against_compressai(index):
  cls_name, _, inverse, beta_min, _ = gdn_peers.CASES[index]
  case = gdn_peers.case_arrays(index)
  peer = gdn_peers.run_compressai(
    cls_name, case["x"], case["g"], case, inverse=inverse, beta_min=beta_min
  )
  # The full state dict, buffers included, loads and checks.
  params = compat_gdn.params_from_compressai(
    peer["state_dict"], beta_min=beta_min
  )
  np.testing.assert_array_equal(params["reparam_gamma"], case["gamma"].T)
  ours = _flax_lrn_side(
    {**case, "cls": cls_name, "inverse": inverse, "beta_min": beta_min}
  )
  for name in ("y", "dx", "dbeta", "dgamma"):
    assert _err(ours[name], peer[name]) <= RTOL, name
  # The reparametrization gives CompressAI's values.
  beta, gamma = gdn_peers.compressai_values(case, beta_min)
  np.testing.assert_allclose(
    compat_gdn.nonnegative_value(case["beta"], beta_min), beta, rtol=1e-6
  )
  np.testing.assert_allclose(
    compat_gdn.nonnegative_value(case["gamma"]), gamma, rtol=1e-6, atol=1e-12
  )
  # An exported state dict loads into CompressAI, strictly.
  import torch

  layer = getattr(gdn_peers.compressai_gdn_module(), cls_name)(
    case["x"].shape[1], inverse=inverse, beta_min=beta_min
  )
  exported = compat_gdn.params_to_compressai(params, beta_min=beta_min)
  layer.load_state_dict({k: torch.from_numpy(v) for k, v in exported.items()})
  with torch.no_grad():
    y = layer(torch.from_numpy(case["x"])).numpy()
  np.testing.assert_array_equal(y, peer["y"])


@live
def test_live_default_initialization_matches():
  gdn = gdn_peers.compressai_gdn_module()
  c = 5
  peer = {k: v.numpy() for k, v in gdn.GDN(c).state_dict().items()}
  x = jnp.ones((1, c, 2, 2))
  ours = flax_lrn.GDN.from_compressai().init(jax.random.key(0), x)["params"]
  np.testing.assert_allclose(ours["reparam_beta"], peer["beta"], rtol=1e-7)
  np.testing.assert_allclose(ours["reparam_gamma"], peer["gamma"].T, rtol=1e-7)
