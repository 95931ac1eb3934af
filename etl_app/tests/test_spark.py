"""The Spark engine computes exactly the features the default DuckDB engine computes.

Runs the real `kedro run --pipelines etl_instances` twice on the same small world: once as is,
once with `--env spark` (Spark local[*], Java 17), and compares what each published.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_app, isolated_env, kedro_run

APP = Path(__file__).resolve().parents[1]
SMALL = {"simulate.n_customers": 400, "simulate.n_merchants": 200, "simulate.days": 45}
WINDOW = {"window.start": "2025-02-01", "window.end": "2025-02-15"}

pytest.importorskip("pyspark", reason="the spark dependency group is not installed")


def published(root: Path) -> pd.DataFrame:
    frame = ExchangeParquetDataset(
        filepath=str(root / "data/exchange/instances"), partition_by="event_time"
    ).load()
    return frame.sort_values("transaction_id").reset_index(drop=True)


def test_spark_and_duckdb_publish_identical_features(tmp_path):
    project = isolated_app(APP, tmp_path)
    kedro_run(project, "simulate", SMALL)
    started = time.perf_counter()
    kedro_run(project, "etl_instances", WINDOW)
    duckdb_s = time.perf_counter() - started
    duckdb_rows = published(tmp_path)

    params = ",".join(f"{k}={v}" for k, v in WINDOW.items())
    started = time.perf_counter()
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "kedro"),
            "run",
            "--env",
            "spark",
            "--pipelines",
            "etl_instances",
            "--params",
            params,
        ],
        cwd=project,
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    spark_s = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Computing features with Spark SQL" in proc.stderr + proc.stdout
    spark_rows = published(tmp_path)

    assert len(duckdb_rows) > 1_000
    # the same bits: money summed in cents, whole seconds, the same median on both engines
    pd.testing.assert_frame_equal(spark_rows, duckdb_rows, check_exact=True)
    sys.stdout.write(
        f"\n{len(duckdb_rows)} rows: duckdb run {duckdb_s:.1f}s, spark run {spark_s:.1f}s\n"
    )
