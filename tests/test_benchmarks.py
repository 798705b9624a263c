"""Smoke test of benchmarks/bench_lrn.py: a tiny run, in-process.

Checks that the script runs end to end (agreement checks, timing, tables,
plot) and writes what it promises, not how fast anything is. TensorFlow and
PyTorch take part when installed; the script skips a missing peer itself.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_lrn.py"


@pytest.fixture(scope="module")
def bench():
  spec = importlib.util.spec_from_file_location("bench_lrn", SCRIPT)
  module = importlib.util.module_from_spec(spec)
  sys.modules.setdefault("bench_lrn", module)
  spec.loader.exec_module(module)
  return module


def _installed_peers(bench) -> list[str]:
  return [
    name
    for name, module in bench.PEERS.items()
    if importlib.util.find_spec(module) is not None
  ]


def test_quick_run_writes_results(bench, tmp_path, capsys):
  peers = _installed_peers(bench)
  doc = tmp_path / "DOC.md"
  doc.write_text(
    f"intro\n{bench.RESULTS_BEGIN}\nold\n{bench.RESULTS_END}\nrest\n"
  )
  argv = [
    "--quick",
    "--out",
    str(tmp_path),
    "--shapes",
    "2x7x7x12",
    "--dtypes",
    "f32,bf16",
    "--modes",
    "across,within",
    "--peers",
    ",".join(peers) or "none",
    "--repeats",
    "1",
    "--warmup",
    "1",
    "--markdown",
    str(doc),
  ]
  assert bench.main(argv) == 0  # 1 would mean a peer disagrees.

  for name in ("results.json", "results.md", "lrn_benchmark.png"):
    assert (tmp_path / name).stat().st_size > 0
  report = json.loads((tmp_path / "results.json").read_text())
  assert set(report) >= {"meta", "copy_bandwidth", "results", "targets"}
  assert set(report["meta"]) >= {"versions", "threads", "cpu", "device"}
  assert report["meta"]["device"]["gpu"] is False
  records = report["results"]
  assert [(r["dtype"], r["mode"]) for r in records] == [
    ("f32", "across"),
    ("f32", "within"),
    ("bf16", "across"),
    ("bf16", "within"),
  ]
  for r in records:
    assert r["shape"] == [2, 7, 7, 12]
    assert set(r) >= {
      "times_ms",
      "ratios",
      "memory",
      "compile_s",
      "checks",
      "bandwidth",
      "peers",
    }
    for kind in ("fwd", "fb"):
      for impl in ("ours", "floor"):
        assert r["times_ms"][kind][impl]["median"] > 0
    assert r["memory"]["fb_temp_bytes"] is not None
    assert r["compile_s"]["fwd"] > 0 and r["compile_s"]["fb"] > 0
    # Every peer that ran was checked against flax_lrn first.
    ran = [p for p, status in r["peers"].items() if status == "ok"]
    assert sorted(r["checks"]) == sorted(ran)
    assert all(c["ok"] for c in r["checks"].values())
    if r["dtype"] == "bf16":
      assert r["ratios"]["bf16_fwd_over_f32_fwd"] is not None
  if "tf" in peers:
    assert records[0]["peers"]["tf"] == "ok"
    assert records[1]["peers"]["tf"].startswith("n/a")
  if "torch" in peers:
    assert records[0]["peers"]["torch"] == "ok"
    assert records[0]["ratios"]["fb_torch_over_ours"] is not None

  targets = report["targets"]
  assert [t["shape_name"] for t in targets] == ["2x7x7x12"]
  assert set(targets[0]["targets"]) == {key for key, *_ in bench.CPU_TARGETS}

  tables = (tmp_path / "results.md").read_text()
  assert "#### Median times" in tables and "CPU targets" in tables
  assert "GPU: none was available" in tables
  text = doc.read_text()
  assert text.startswith("intro\n") and text.endswith("rest\n")
  assert "old" not in text and "#### Median times" in text
  assert "#### Median times" in capsys.readouterr().out

  # The GPU section cannot run here; render this report as if it were a GPU
  # run, to check that the GPU targets are evaluated and shown.
  report["meta"]["device"]["gpu"] = True
  report["targets"] = bench.evaluate_targets(records, gpu=True)
  cells = report["targets"][0]["targets"]
  assert set(cells) == {key for key, *_ in bench.GPU_TARGETS}
  assert cells["fwd_copy_fraction"]["verdict"] in ("PASS", "FAIL")
  gpu_tables = bench.render_markdown(report)
  assert "GPU targets" in gpu_tables and "GPU: none" not in gpu_tables


def test_parse_shapes(bench):
  shapes = bench.parse_shapes(["alexnet_lrn1,4x5x6x7", "(1, 2, 3, 4)"])
  assert shapes == {
    "alexnet_lrn1": (32, 55, 55, 96),
    "4x5x6x7": (4, 5, 6, 7),
    "1x2x3x4": (1, 2, 3, 4),
  }
  with pytest.raises(Exception, match="unknown shape"):
    bench.parse_shapes(["4x5x6"])


def test_bad_flags_exit(bench):
  with pytest.raises(SystemExit):
    bench.main(["--dtypes", "f64"])
  with pytest.raises(SystemExit):
    bench.main(["--repeats", "0"])


def test_missing_peer_is_skipped(bench, monkeypatch):
  monkeypatch.setitem(bench.PEERS, "torch", "no_such_module_for_lrn")
  with pytest.raises(bench.Unavailable, match="not installed"):
    bench._make_peer("torch", "across", "f32", gpu=False)
