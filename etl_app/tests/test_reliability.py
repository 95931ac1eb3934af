"""Nothing lost, nothing half-written: real `kedro run`s killed mid-publish, run concurrently,
or refused for too many bad rows, on a small world."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_app, isolated_env, kedro_run

APP = Path(__file__).resolve().parents[1]
SMALL = {"simulate.n_customers": 800, "simulate.n_merchants": 300, "simulate.days": 60}
WINDOW = {"window.start": "2025-02-01", "window.end": "2025-03-02"}
KEDRO = Path(sys.executable).parent / "kedro"


def instances(root: Path) -> ExchangeParquetDataset:
    return ExchangeParquetDataset(
        filepath=str(root / "data/exchange/instances"), partition_by="event_time"
    )


def snapshot(root: Path) -> pd.DataFrame:
    return instances(root).load().sort_values("transaction_id").reset_index(drop=True)


def start_run(project: Path, window: dict[str, str]) -> subprocess.Popen:
    params = ",".join(f"{k}={v}" for k, v in window.items())
    return subprocess.Popen(
        [str(KEDRO), "run", "--pipelines", "etl_instances", "--params", params],
        cwd=project,
        env=isolated_env(project.parent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("monorepo")
    project = isolated_app(APP, root)
    kedro_run(project, "simulate", SMALL)
    kedro_run(project, "etl_instances", WINDOW)
    return project, snapshot(root)


def test_a_run_killed_mid_publish_leaves_the_previous_data_and_a_rerun_completes(published):
    project, before = published
    folder = project.parent / "data/exchange/instances"
    table = instances(project.parent)
    version = table.version()
    written = set(folder.rglob("*.parquet"))
    for _attempt in range(5):  # kill as soon as the new window's first file appears
        proc = start_run(project, WINDOW)
        while proc.poll() is None and not set(folder.rglob("*.parquet")) - written:
            time.sleep(0.001)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            break
        written = set(folder.rglob("*.parquet"))
    else:
        pytest.fail("never caught a run while it was writing")
    assert proc.returncode == -9
    sys.stdout.write(f"\nkilled mid-publish (attempt {_attempt + 1}); {len(before)} rows kept\n")
    assert set(folder.rglob("*.parquet")) - written  # the killed run's files are on disk...
    assert table.version() == version  # ...in no commit, so readers see the previous window
    pd.testing.assert_frame_equal(snapshot(project.parent), before)
    kedro_run(project, "etl_instances", WINDOW)
    assert table.version() == version + 1
    pd.testing.assert_frame_equal(snapshot(project.parent), before)


def test_two_concurrent_runs_of_the_same_window_do_not_corrupt_it(published):
    project, before = published
    runs = [start_run(project, WINDOW) for _ in range(2)]
    errors = [run.communicate()[1][-3000:] for run in runs]
    codes = [run.returncode for run in runs]
    assert codes == [0, 0], errors  # both complete: each publish is one Delta commit
    published_now = snapshot(project.parent)
    assert published_now["transaction_id"].is_unique
    pd.testing.assert_frame_equal(published_now, before)


def test_too_many_bad_source_rows_fail_loudly_and_publish_nothing(published):
    project, before = published
    db = project.parent / "source_system.db"
    window = {"window.start": "2025-02-20", "window.end": "2025-02-23"}
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE transactions SET amount = -amount "
            "WHERE event_time >= '2025-02-20' AND event_time < '2025-02-23'"
        )
    try:
        proc = start_run(project, window)
        _, err = proc.communicate()
        assert proc.returncode != 0
        assert "RejectRatioExceeded" in err and "nothing was published" in err
        # the days of the failed window still hold what was published before
        pd.testing.assert_frame_equal(snapshot(project.parent), before)
    finally:
        with sqlite3.connect(db) as con:
            con.execute(
                "UPDATE transactions SET amount = -amount "
                "WHERE event_time >= '2025-02-20' AND event_time < '2025-02-23'"
            )
