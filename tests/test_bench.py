"""`make bench-smoke`: the whole benchmark suite on a small world, so `make bench` cannot rot."""

import json

import pytest

from tooling.bench import suite as bench

SECTIONS = [
    "## Goals",
    "## 1. Pipeline model predict",
    "## 2. Online",
    "## 3. Start-up",
    "## 4. Throughput",
    "## 5. Contract validation",
    "## 6. Model quality",
    "## 7. The loop",
    "## 8. Real-time authorization",
]


@pytest.mark.slow
def test_bench_smoke_measures_everything_side_by_side(tmp_path):
    out = tmp_path / "benchmarks.md"
    assert bench.main(["--smoke", "--root", str(tmp_path / "world"), "--out", str(out)]) == 0
    doc = out.read_text()
    assert [s for s in SECTIONS if s not in doc] == []
    results = json.loads((tmp_path / "world" / "results.json").read_text())
    assert results["predict"]["model_class"] == "LeanPipelineModel"
    # the served model is the compiled one, and it scores like scikit-learn
    assert results["predict"]["compiled_kind"] == "treelite"
    for size in results["predict"]["sizes"].values():
        assert all(v > 0 for k, v in size.items() if k != "max_abs_diff")
        assert size["max_abs_diff"] <= 1e-9
    assert all(v > 0 for v in results["predict"]["parts"].values())
    servers = results["serving"]["servers"]
    assert len(servers) == 3  # ours, mlflow serve (lean), mlflow serve (stock)
    under_load = results["serving"]["under_load"]
    assert all(v["p50_ms"] > 0 and v["concurrent_rps"] > 0 for v in [*servers.values(), under_load])
    assert results["startup"]["ml_app"]["tiny_run_s"] > 0
    assert 0 < results["ceiling"]["ratio"] <= 1.05
    authorize = results["authorize"]
    assert authorize["live"]["payments"] > 0 and authorize["sequential"]["featurize_p50_ms"] > 0
    assert authorize["reconciliation"]["features"]["compared"] > 0
    assert all(0 < v["share"] < 1 for v in results["validation"])
    assert "**missed**" in doc or "| met |" in doc
    # the report re-renders from the run's results alone
    again = tmp_path / "again.md"
    assert (
        bench.main(["--render", str(tmp_path / "world" / "results.json"), "--out", str(again)]) == 0
    )
    assert again.read_text() == doc
    assert (
        len([line for line in doc.splitlines() if line.endswith(("| met |", "**missed** |"))]) == 19
    )
