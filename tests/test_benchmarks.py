"""Smoke tests of the benchmark package: a tiny run, in-process.

They check that ``python -m benchmarks.lrn_bench`` runs end to end (peer
agreement in every call form, timing, the JSON, the Markdown rendered from
it, the plot) and that the compiled-structure counter counts right, not how
fast anything is. TensorFlow and PyTorch take part when installed.
"""

from __future__ import annotations

import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import pytest

from benchmarks.lrn_bench import (
  aot,
  cli,
  config,
  environment,
  peers,
  report,
  timing,
)


def _installed() -> list[str]:
  return [n for n, m in config.PEERS.items() if importlib.util.find_spec(m)]


def test_quick_run_writes_results(tmp_path, capsys):
  names = _installed()
  doc = tmp_path / "DOC.md"
  doc.write_text(f"intro\n{report.BEGIN}\nold\n{report.END}\nrest\n")
  argv = [
    "--quick", "--out", str(tmp_path), "--shapes", "2x7x7x12",
    "--peers", ",".join(names) or "none", "--repeats", "2", "--warmup", "1",
    "--markdown", str(doc), "--settle-budget", "2", "--max-rounds", "3",
  ]  # fmt: skip
  assert cli.main(argv) == 0  # 1 would mean a peer disagrees.

  for name in ("results.json", "results.md"):
    assert (tmp_path / name).stat().st_size > 0
  data = json.loads((tmp_path / "results.json").read_text())
  assert set(data["meta"]) >= {
    "versions",
    "threads",
    "cpu",
    "device",
    "command",
  }
  records = data["results"]
  assert [(r["dtype"], r["mode"]) for r in records] == [
    ("f32", "across"),
    ("f32", "within"),
    ("bf16", "across"),
    ("bf16", "within"),
  ]
  for r in records:
    assert list(r["times_ms"]) == list(config.FORMS)
    for form in config.FORMS:
      # 2 rounds, and a third for an imprecise figure while time is left.
      assert r["times_ms"][form]["ours"]["n"] in (2, 3)
      assert r["bytes_over_x"][form] is not None
    assert r["times_ms"]["fwd"]["floor"]["median"] > 0
    for form in config.STEPS:
      totals = r["step_totals_ms"][form]["ours"]
      assert totals["with"]["median"] > 0 and totals["without"]["median"] > 0
      # A step and its twin are timed in the same rounds, so they pair.
      assert totals["with"]["n"] == totals["without"]["n"]
    # Every peer that ran was checked against flax_lrn in every call form.
    ran = sorted(p for p, status in r["peers"].items() if status == "ok")
    assert sorted(r["checks"]) == ran
    for name, c in r["checks"].items():
      assert c["ok"] and c["errors"]
      if name == "tf":
        assert set(c["errors"]) == set(config.FORMS)
  # The forward moves the input once in and once out, as the floor does.
  assert records[0]["bytes_over_x"]["fwd"] == pytest.approx(2.0)
  assert records[2]["ratios"]["fwd_bf16_over_f32"] is not None
  if "tf" in names:
    assert records[0]["peers"]["tf"] == "ok"
    assert records[1]["peers"]["tf"].startswith("n/a")
    assert records[0]["ratios"]["step_pool_tf_over_ours"] is not None
    assert records[0]["ratios"]["step_nnx_tf_over_ours"] is not None

  tables = (tmp_path / "results.md").read_text()
  assert "#### CPU targets" in tables and "Command:" in tables
  text = doc.read_text()
  assert text.startswith("intro\n") and text.endswith("rest\n")
  assert "\nold\n" not in text and "#### CPU targets" in text
  assert "#### CPU targets" in capsys.readouterr().out

  # The Markdown is rendered from the JSON alone, with the compiled table.
  (tmp_path / "aot.json").write_text(json.dumps(_fake_aot()))
  assert cli.main(["render", "--out", str(tmp_path)]) == 0
  assert "compiled, not run" in (tmp_path / "results.md").read_text()


def _fake_aot() -> dict:
  cell = {"kernels": 1, "bytes_over_x": 2.0, "scratch_over_x": 0.0}
  forms = {f: cell for f in (*config.FORMS, "floor")}
  return {
    "h100": {
      "device": "H100 (compiled, not run)",
      "jax": jax.__version__,
      "shape_name": "alexnet_lrn1",
      "shape": [32, 55, 55, 96],
      "rows": [{"dtype": "f32", "mode": "across", "forms": forms}],
    }
  }


def test_kernel_stats_counts_kernels_and_bytes():
  x = jnp.ones((64, 128), jnp.float32)
  compiled = jax.jit(lambda a: a * 2).lower(x).compile()
  stats = aot.kernel_stats(compiled.as_text())
  assert stats["kernels"] == 1
  assert stats["bytes"] == 2 * x.nbytes


@pytest.mark.parametrize("dtype", [jnp.uint16, jnp.int8, jnp.bfloat16])
def test_kernel_stats_counts_every_element_type(dtype):
  """A narrow integer array (a bit pattern kept in ``uint16``) counts too."""
  x = jnp.ones((64, 128), jnp.float32)
  compiled = jax.jit(lambda a: (a * 3).astype(dtype)).lower(x).compile()
  stats = aot.kernel_stats(compiled.as_text())
  assert stats["bytes"] == x.nbytes + x.size * jnp.dtype(dtype).itemsize


def test_run_records_the_allocator_settings(monkeypatch):
  """A run under a tuned C allocator says so, and its command reproduces it."""
  for name in [k for k in os.environ if k.startswith("MALLOC_")]:
    monkeypatch.delenv(name)
  monkeypatch.delenv("LD_PRELOAD", raising=False)
  device = jax.devices("cpu")[0]
  run = {"repeats": 2, "warmup": 1}
  plain = environment.metadata(["--quick"], device, [], **run)
  assert plain["allocator"] == {}
  assert "MALLOC" not in plain["command"]
  assert "glibc defaults" in "\n".join(report._run_section(plain))

  monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4294967296")
  tuned = environment.metadata(["--quick"], device, [], **run)
  assert tuned["allocator"] == {"MALLOC_MMAP_THRESHOLD_": "4294967296"}
  assert tuned["command"].startswith("MALLOC_MMAP_THRESHOLD_=4294967296 ")
  assert "C allocator: MALLOC_MMAP_THRESHOLD_=4294967296." in "\n".join(
    report._run_section(tuned)
  )


def test_parse_shapes():
  shapes = cli.parse_shapes("alexnet_lrn1,4x5x6x7")
  assert shapes == {"alexnet_lrn1": (32, 55, 55, 96), "4x5x6x7": (4, 5, 6, 7)}
  with pytest.raises(Exception, match="unknown shape"):
    cli.parse_shapes("4x5x6")


def test_bad_flags_exit():
  with pytest.raises(SystemExit):
    cli.main(["--dtypes", "f64"])
  with pytest.raises(SystemExit):
    cli.main(["--repeats", "0"])


def test_missing_peer_is_skipped(monkeypatch):
  monkeypatch.setitem(config.PEERS, "torch", "no_such_module_for_lrn")
  cfg = config.Config("tiny", (1, 3, 3, 5), "f32", "across")
  with pytest.raises(peers.Unavailable, match="not installed"):
    peers.make("torch", cfg, gpu=False)


@pytest.mark.parametrize(
  ("extra_bytes", "verdict"), [(388, True), (8192, False)]
)
def test_scratch_target_allows_scalars_but_no_array(extra_bytes, verdict):
  x_bytes = 37_171_200
  record = {
    "shape_name": "alexnet_lrn1", "dtype": "f32", "mode": "across",
    "times_ms": {}, "ratios": {}, "input_bytes": x_bytes,
    "scratch_over_x": {"grad": 1.0 + extra_bytes / x_bytes, "fwd": 0.0},
  }  # fmt: skip
  (row,) = [
    row
    for row in report.evaluate_targets([record])
    if row["target"].startswith("scratch")
  ]
  assert row["pass"] is verdict


def test_median_interval_is_the_binomial_order_statistics():
  # n = 9: P(B <= 1) = 10 / 512 <= 2.5% < P(B <= 2), so [v_(2), v_(8)].
  assert timing.median_interval(range(1, 10)) == (2, 8)
  assert timing.median_interval(range(1, 31)) == (10, 21)
  # Six values are the fewest whose extremes hold the median at 95%.
  assert timing.median_interval(range(6)) == (0, 5)
  assert timing.median_interval(range(5)) is None
  assert timing.imprecision(range(5)) == float("inf")
  assert timing.imprecision([10.0] * 9) == 0.0
  assert timing.imprecision([8, 9, 9, 10, 10, 10, 11, 11, 12]) == 0.1


def test_extend_times_only_what_is_imprecise():
  keys = [("ours", "a"), ("ours", "step"), ("ours", "step_base")]
  calls = dict.fromkeys(keys, 0)

  def candidate(key):
    def call():
      calls[key] += 1

    return timing.Candidate(key, call, lambda _: None)

  samples = {
    ("ours", "a"): [100.0] * 9,  # settled: its interval is a point
    ("ours", "step"): [10.0 * i for i in range(1, 10)],
    ("ours", "step_base"): [1.0] * 9,
  }
  figures = [
    timing.Figure(("ours", "a")),
    timing.Figure(("ours", "step"), ("ours", "step_base")),
  ]
  rounds = timing.extend(
    [candidate(k) for k in keys], figures, samples, precision=0.1,
    max_rounds=12, budget_s=60.0,
  )  # fmt: skip
  assert rounds == 3
  assert calls == {keys[0]: 0, keys[1]: 3, keys[2]: 3}
  assert len(samples[keys[1]]) == len(samples[keys[2]]) == 12
  assert timing.unsettled(figures, samples, 0.1, max_rounds=12) == []
  # No time: no round, whatever is unsettled.
  assert timing.extend([], figures, samples, 0.1, 99, budget_s=0.0) == 0


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_every_step_normalizes_in_its_inputs_dtype(monkeypatch, dtype):
  """Each training step's LRN sees the step's dtype, modules' steps included.

  A bfloat16 step whose layer widened to float32 (a float32 parameter
  meeting a bfloat16 input) would time float32 under a bfloat16 label.
  """
  from benchmarks.lrn_bench import programs
  from flax_lrn._core import lrn_formula

  seen: list[jnp.dtype] = []
  original = lrn_formula.normalize

  def spy(spec, x, *args):
    seen.append(jnp.dtype(x.dtype))
    return original(spec, x, *args)

  monkeypatch.setattr(lrn_formula, "normalize", spy)
  x = jnp.ones((2, 7, 7, 8), dtype)
  w, w2 = programs.step_weights(jax.random.key(0), x.shape[-1], dtype)
  steps = {
    name: fn
    for name, (fn, signature) in programs.programs("across").items()
    if signature == "wwx" and not name.endswith("_base")
  }
  assert {"step_pool", "step_linen", "step_nnx"} <= set(steps)
  for name, fn in steps.items():
    seen.clear()
    jax.eval_shape(fn, w, w2, x)
    assert seen and set(seen) == {jnp.dtype(dtype)}, (name, seen)
