"""Session smoke test: the real `kedro run` of each etl_app pipeline on a small world."""

import hashlib
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_app, isolated_env, kedro_run
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance

APP = Path(__file__).resolve().parents[1]
SMALL = {"simulate.n_customers": 500, "simulate.n_merchants": 250, "simulate.days": 60}
WINDOW = {"window.start": "2025-02-01", "window.end": "2025-03-02"}


def dump(db: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(db) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: pd.read_sql(f"SELECT * FROM {n}", con) for n in sorted(names)}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("monorepo")
    project = isolated_app(APP, root)
    kedro_run(project, "simulate", SMALL)
    return project


def exchange(project: Path, name: str) -> ExchangeParquetDataset:
    return ExchangeParquetDataset(
        filepath=str(project.parent / "data/exchange" / name), partition_by="event_time"
    )


def test_simulate_is_deterministic(project, tmp_path):
    first = dump(project.parent / "source_system.db")
    assert set(first) == {
        "cards",
        "chargebacks",
        "customers",
        "merchants",
        "oracle",
        "transactions",
    }
    env = isolated_env(project.parent, {"ETL_SOURCE_DB_URL": f"sqlite:///{tmp_path / 'again.db'}"})
    kedro_run(project, "simulate", SMALL, env=env)
    again = dump(tmp_path / "again.db")
    for name, table in first.items():
        pd.testing.assert_frame_equal(table, again[name], obj=name)


def test_etl_publishes_contract_valid_exchange_data_idempotently(project):
    kedro_run(project, "etl_instances", WINDOW)
    kedro_run(project, "etl_labels", WINDOW)
    instances = exchange(project, "instances")
    first = instances.load()
    TransactionInstance.validate(first)
    assert first["event_time"].min() >= pd.Timestamp("2025-02-01")
    assert first["event_time"].max() < pd.Timestamp("2025-03-02")
    assert len(instances.partitions()) == 29
    FraudLabel.validate(exchange(project, "labels").load())
    (stamp,) = instances.commits()  # one window, one commit
    assert stamp["producer"].startswith("etl-app==") and len(stamp["days"].split(",")) == 29

    digests = content_digests(instances)
    kedro_run(project, "etl_instances", WINDOW)  # same window again
    again = instances.load()
    assert again["transaction_id"].is_unique
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    # every published day holds the same data to the bit; only the commit's write time differs
    assert content_digests(instances) == digests


def content_digests(dataset: ExchangeParquetDataset) -> dict[str, str]:
    """Per published day: a digest of its rows (schema and values)."""
    frame = dataset.load()
    days = frame["event_time"].dt.strftime("%Y-%m-%d")
    return {
        day: hashlib.sha256(
            pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()
            + str(rows.dtypes.to_dict()).encode()
        ).hexdigest()
        for day, rows in frame.groupby(days)
    }


def test_the_exchange_reads_with_any_delta_reader(project):
    """The one-liners of docs/architecture.md, on what a real run published (twice: the folder
    then holds replaced files too, which Delta readers skip)."""
    import duckdb
    from deltalake import DeltaTable

    kedro_run(project, "etl_instances", WINDOW)
    kedro_run(project, "etl_instances", WINDOW)
    path = str(project.parent / "data/exchange/instances")
    published = exchange(project, "instances").load()
    plain = DeltaTable(path).to_pandas()
    assert len(plain) == len(published) and set(plain.columns) == {*published.columns, "day"}
    count = duckdb.sql(
        "SELECT count(*) FROM read_parquet($files)", params={"files": DeltaTable(path).file_uris()}
    ).fetchall()
    assert count == [(len(published),)]


def test_source_rows_in_equal_rows_out_plus_quarantined(project):
    db = project.parent / "source_system.db"
    with sqlite3.connect(db) as con:
        con.execute(
            "INSERT INTO transactions SELECT transaction_id, card_id, merchant_id, -amount, "
            "event_time FROM transactions WHERE event_time >= '2025-02-10' LIMIT 3"
        )
        con.execute(
            "INSERT INTO transactions VALUES (999999, NULL, 1, 10.0, '2025-02-11 10:00:00')"
        )
        con.execute(  # the same payments extracted twice: harmless, deduplicated
            "INSERT INTO transactions SELECT * FROM transactions "
            "WHERE event_time >= '2025-02-20' AND amount > 0 LIMIT 2"
        )
        in_window = con.execute(
            "SELECT COUNT(*) FROM transactions WHERE event_time >= '2025-02-01' "
            "AND event_time < '2025-03-02'"
        ).fetchone()[0]
    try:
        kedro_run(project, "etl_instances", WINDOW)
        published = len(exchange(project, "instances").load())
        runs = project / "data/08_reporting/quarantine/instances"
        quarantine = sorted(runs.glob("*.parquet"))[-1]
        rejected = pd.read_parquet(quarantine)
        report = json.loads(
            (project / "data/08_reporting/instances_quality_report.json").read_text()
        )
        assert report["exact_duplicates_dropped"] == 2
        assert in_window == published + len(rejected) + 2
        # the 3 ids whose copies conflict (both copies: nobody knows which is true), no card
        assert len(rejected) == 7
        assert rejected["failed_checks"].str.contains("conflicting_duplicate").sum() == 6
    finally:
        with sqlite3.connect(db) as con:
            con.execute("DELETE FROM transactions WHERE amount < 0 OR card_id IS NULL")
            con.execute(
                "DELETE FROM transactions WHERE rowid NOT IN "
                "(SELECT MIN(rowid) FROM transactions GROUP BY transaction_id)"
            )
