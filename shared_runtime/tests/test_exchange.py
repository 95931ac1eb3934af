"""The exchange dataset: partitions, idempotent overwrite, atomic publish, version stamps."""

import os
import time
from importlib.metadata import version

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError
from kedro.validation import DataValidationError

from shared_runtime.exchange import (
    META_CONTRACT,
    ExchangeParquetDataset,
    ExchangeSchemaError,
    QuarantineDataset,
)
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.versioning import CONTRACT_VERSION, IncompatibleContractError


def dataset(path, **kwargs) -> ExchangeParquetDataset:
    return ExchangeParquetDataset(filepath=str(path), partition_by="event_time", **kwargs)


def test_round_trip_partitioned_by_day(tmp_path, instances):
    ds = dataset(tmp_path / "instances", producer="shared-schemas")
    ds.save(instances)
    assert ds.partitions() == ["2025-06-03"]
    pd.testing.assert_frame_equal(ds.load(), instances, check_dtype=False)
    (stamp,) = ds.file_metadata()
    assert stamp["contract_version"] == CONTRACT_VERSION
    assert stamp["producer"] == f"shared-schemas=={CONTRACT_VERSION}"


def test_rerunning_a_window_replaces_it_and_nothing_else(tmp_path, instances):
    ds = dataset(tmp_path / "x")
    other_day = instances.assign(
        transaction_id=[5, 6], event_time=instances["event_time"] + pd.Timedelta(days=1)
    )
    ds.save(instances)
    ds.save(other_day)
    ds.save(instances)  # same window again
    loaded = ds.load()
    assert sorted(loaded["transaction_id"]) == [5, 6, 1001, 1002]
    newest = dataset(tmp_path / "x", last_partitions=1).load()
    assert sorted(newest["transaction_id"]) == [5, 6]


def test_append_mode_keeps_every_save_and_a_retried_save_once(tmp_path, instances):
    ds = dataset(tmp_path / "log", mode="append")
    ds.save(instances)
    ds.save(instances.assign(transaction_id=[5, 6]))
    assert len(ds.load()) == 4
    ds.save(instances)  # the same rows again: a retry after a failure, not new rows
    assert sorted(ds.load()["transaction_id"]) == [5, 6, 1001, 1002]
    assert len(list((tmp_path / "log").glob("day=*/*.parquet"))) == 2


def test_appended_files_load_in_the_order_of_their_times(tmp_path, instances):
    ds = dataset(tmp_path / "log", mode="append")
    one = instances.head(1)
    for hours in (5, 1, 3):  # saved out of order
        ds.save(one.assign(event_time=pd.Timestamp("2025-06-03") + pd.Timedelta(hours=hours)))
    assert ds.load()["event_time"].dt.hour.tolist() == [1, 3, 5]


def test_crash_mid_save_leaves_previous_data_and_no_partial_file(tmp_path, instances, monkeypatch):
    ds = dataset(tmp_path / "x")
    ds.save(instances)
    two_days = pd.concat(
        [instances, instances.assign(event_time=instances["event_time"] + pd.Timedelta(days=1))]
    )
    calls = {"n": 0}
    real_write = pq.write_table

    def write_then_crash(table, where, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            where.write(b"PAR1 half a file")
            raise OSError("disk full")
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_then_crash)
    with pytest.raises(DatasetError, match="disk full"):
        ds.save(two_days.assign(amount=1.0))
    monkeypatch.undo()
    files = sorted(p.name for p in (tmp_path / "x").rglob("*") if p.is_file())
    assert files == ["part-0.parquet"]  # no temporary or partial file left behind
    pd.testing.assert_frame_equal(ds.load(), instances, check_dtype=False)  # old data intact


def test_readers_refuse_incompatible_contract_versions(tmp_path, instances):
    folder = tmp_path / "x" / "day=2025-06-03"
    folder.mkdir(parents=True)
    table = pa.Table.from_pandas(instances, preserve_index=False)
    pq.write_table(
        table.replace_schema_metadata({META_CONTRACT: b"99.0.0"}), folder / "part-0.parquet"
    )
    with pytest.raises(DatasetError, match=r"written with contract 99\.0\.0") as info:
        dataset(tmp_path / "x").load()
    assert isinstance(info.value.__cause__, IncompatibleContractError)


def test_files_carry_the_contract_version_not_the_runtime_version(tmp_path, instances):
    """shared-runtime releases for its own reasons: a stamp is the contracts package's version."""
    assert version("shared-schemas") == CONTRACT_VERSION
    ds = dataset(tmp_path / "x", producer="etl-app")
    ds.save(instances)
    (stamp,) = ds.file_metadata()
    assert stamp["contract_version"] == version("shared-schemas")


def test_data_published_before_the_runtime_split_is_still_read(tmp_path, instances):
    """Moving the runtime out of shared-schemas (contract 0.1.4) changed no contract: files
    stamped 0.1.4 by the old layout stay readable. A contract release that breaks them is a
    deliberate 0.x minor bump, which must update this test."""
    folder = tmp_path / "x" / "day=2025-06-03"
    folder.mkdir(parents=True)
    table = pa.Table.from_pandas(instances, preserve_index=False)
    pq.write_table(
        table.replace_schema_metadata({META_CONTRACT: b"0.1.4"}), folder / "part-0.parquet"
    )
    pd.testing.assert_frame_equal(dataset(tmp_path / "x").load(), instances, check_dtype=False)


def test_loading_nothing_says_what_to_run(tmp_path):
    with pytest.raises(DatasetError, match="Run the producing app's pipeline first"):
        dataset(tmp_path / "missing").load()


def catalog(tmp_path, on):
    return DataCatalog.from_config(
        {
            "instances": {
                "type": "shared_runtime.exchange.ExchangeParquetDataset",
                "filepath": str(tmp_path / "instances"),
                "partition_by": "event_time",
                "validator": {
                    "class": "shared_runtime.enforce.ContractValidator",
                    "on": on,
                    "options": {"contract": "shared_schemas.etl_to_ml.TransactionInstance"},
                },
            }
        }
    )


def test_catalog_validation_refuses_bad_save_and_writes_nothing(tmp_path, instances):
    bad = instances.assign(amount=[-2.0, 10.0], merchant_category=["grocery", "casino"])
    bad.loc[1, "tx_count_1h"] = 9  # breaks a row rule too
    with pytest.raises(DataValidationError) as info:
        catalog(tmp_path, ["save"]).save("instances", bad)
    message = str(info.value)
    assert "Validation failed for dataset 'instances' on save" in message
    assert "3 check(s) failed" in message  # each check once, not once per column
    assert "amount: greater_than_or_equal_to(0.0) — 1 case (e.g. -2.0)" in message
    assert "merchant_category: isin" in message and "casino" in message
    assert "<row>: velocity_windows_nest — 1 case" in message
    assert not (tmp_path / "instances").exists()


def test_catalog_validation_refuses_bad_load(tmp_path, instances):
    dataset(tmp_path / "instances").save(instances.assign(merchant_category="casino"))
    with pytest.raises(DataValidationError, match="merchant_category"):
        catalog(tmp_path, ["load"]).load("instances")


def test_quarantine_keeps_one_file_per_save_even_at_the_same_instant(tmp_path, instances):
    first, second = (QuarantineDataset(filepath=str(tmp_path / "q")) for _ in range(2))
    first.save(instances.head(1))
    second.save(instances)  # a concurrent run: its own file, nothing overwritten
    assert len(list((tmp_path / "q").glob("*.parquet"))) == 2
    assert not list((tmp_path / "q").glob(".tmp-*"))
    assert len(first.load()) == 2  # the newest


# --- physical schema: what a reader refuses before it concatenates anything ----------------------
def checked(path, **kwargs) -> ExchangeParquetDataset:
    return dataset(path, contract="shared_schemas.etl_to_ml.TransactionInstance", **kwargs)


def plant(root, day: str, frame: pd.DataFrame) -> None:
    """A partition file written by hand (a tampered or foreign producer), stamped as ours."""
    folder = root / f"day={day}"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {**(table.schema.metadata or {}), META_CONTRACT: CONTRACT_VERSION.encode()}
    pq.write_table(table.replace_schema_metadata(meta), folder / "part-0.parquet")


def two_days(instances) -> pd.DataFrame:
    later = instances.assign(
        transaction_id=[5, 6], event_time=instances["event_time"] + pd.Timedelta(days=1)
    )
    return pd.concat([instances, later], ignore_index=True)


def test_a_partition_of_text_amounts_is_refused_by_name(tmp_path, instances):
    ds = checked(tmp_path / "x")
    ds.save(two_days(instances))
    tampered = instances.assign(amount=instances["amount"].astype(str))
    plant(tmp_path / "x", "2025-06-04", tampered)
    # pyarrow alone casts the text to numbers, taking the first file's schema
    assert pd.read_parquet(tmp_path / "x")["amount"].notna().all()
    with pytest.raises(ExchangeSchemaError) as info:
        ds.load()
    message = str(info.value)
    assert "1 of 2 file(s)" in message and "TransactionInstance contract" in message
    assert "day=2025-06-04/part-0.parquet: column 'amount' is string, expected float64" in message
    assert "nothing was loaded" in message


def test_a_missing_column_is_reported_as_missing_not_as_nulls(tmp_path, instances):
    ds = checked(tmp_path / "x")
    ds.save(instances)
    plant(tmp_path / "x", "2025-06-04", instances.drop(columns="amount"))
    with pytest.raises(ExchangeSchemaError, match=r"day=2025-06-04/part-0.parquet: missing column"):
        ds.load()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda f: f.assign(event_time=f["event_time"].dt.tz_localize("Europe/Paris")),
            "column 'event_time' is timestamp[us, tz=Europe/Paris], expected timestamp (naive UTC)",
        ),
        (lambda f: f.assign(card_id=[None, 7.0]), "column 'card_id' is double, expected int64"),
        (
            lambda f: f.assign(merchant_category=[None, "grocery"]),
            "column 'merchant_category' holds 1 null(s), the contract forbids nulls",
        ),
        (
            lambda f: f.assign(is_foreign=f["is_foreign"].astype(int)),
            "column 'is_foreign' is int64, expected bool",
        ),
        (lambda f: f.assign(extra=1), "unexpected column(s) (the contract is strict): extra"),
    ],
    ids=["tz-aware", "float ids", "nulls", "int as bool", "extra column"],
)
def test_every_physical_mismatch_is_named(tmp_path, instances, change, expected):
    plant(tmp_path / "x", "2025-06-03", change(instances))
    with pytest.raises(ExchangeSchemaError) as info:
        checked(tmp_path / "x").load()
    assert expected in str(info.value)


def test_lossless_widenings_are_still_read(tmp_path, instances):
    """Another engine's writer (int32 counts, float32 amounts, ms timestamps) reads as ours."""
    table = pa.Table.from_pandas(instances, preserve_index=False)
    widened = table.cast(
        pa.schema(
            [
                pa.field(
                    f.name,
                    pa.int32()
                    if f.name == "tx_count_1h"
                    else pa.timestamp("ms")
                    if f.name == "event_time"
                    else pa.string()
                    if pa.types.is_large_string(f.type)
                    else f.type,
                )
                for f in table.schema
            ]
        )
    )
    folder = tmp_path / "x" / "day=2025-06-03"
    folder.mkdir(parents=True)
    meta = {META_CONTRACT: CONTRACT_VERSION.encode()}
    pq.write_table(widened.replace_schema_metadata(meta), folder / "part-0.parquet")
    loaded = checked(tmp_path / "x").load()
    assert str(loaded["tx_count_1h"].dtype) == "int64"
    TransactionInstance.validate(loaded)


def test_the_exchange_reads_with_plain_pandas_and_pyarrow(tmp_path, instances):
    ds = checked(tmp_path / "x")
    ds.save(two_days(instances))
    plain = pd.read_parquet(tmp_path / "x")  # the one-liner in docs/architecture.md
    assert sorted(plain["transaction_id"]) == [5, 6, 1001, 1002]
    assert sorted(plain["day"].astype(str).unique()) == ["2025-06-03", "2025-06-04"]
    assert str(plain["event_time"].dtype).startswith("datetime64")


def test_the_old_layout_is_named_instead_of_reported_empty(tmp_path, instances):
    folder = tmp_path / "x" / "event_time=2025-06-03"
    folder.mkdir(parents=True)
    instances.to_parquet(folder / "part-0.parquet")
    with pytest.raises(DatasetError, match="old layout 'event_time=YYYY-MM-DD'"):
        checked(tmp_path / "x").load()


def age(path, hours: float) -> None:
    past = time.time() - hours * 3600
    os.utime(path, (past, past))


def test_the_next_publish_sweeps_temp_files_of_dead_runs_only(tmp_path, instances):
    ds = checked(tmp_path / "x")
    ds.save(instances)
    folder = tmp_path / "x" / "day=2025-06-03"
    dead, writing = folder / ".tmp-dead.parquet", folder / ".tmp-writing.parquet"
    dead.write_bytes(b"x" * 1000)
    writing.write_bytes(b"x" * 1000)
    age(dead, 2)  # a run killed two hours ago; `writing` belongs to a run still at work
    ds.save(instances)
    assert not dead.exists() and writing.exists()
    quarantine = QuarantineDataset(filepath=str(tmp_path / "q"))
    quarantine.save(instances)
    stale = tmp_path / "q" / ".tmp-dead.parquet"
    stale.write_bytes(b"x")
    age(stale, 2)
    quarantine.save(instances)
    assert not stale.exists()
