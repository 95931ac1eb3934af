"""The exchange dataset: a Delta table per dataset, partitioned by day; a window published in one
commit; idempotent overwrite and append; contract-version stamps; physical schema checks."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from importlib.metadata import version

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake
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
    assert ds.loaded_version == ds.version() == 0
    (stamp,) = ds.commits()
    assert stamp["contract_version"] == CONTRACT_VERSION
    assert stamp["producer"] == f"shared-schemas=={CONTRACT_VERSION}"
    assert stamp["days"] == "2025-06-03" and stamp["rows"] == 2
    assert (tmp_path / "instances" / "_delta_log").is_dir()


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
    assert ds.version() == 2  # one commit per publish


def test_an_older_table_version_is_read_back_as_it_was(tmp_path, instances):
    ds = dataset(tmp_path / "x")
    ds.save(instances)
    ds.save(instances.assign(amount=1.0))
    assert (dataset(tmp_path / "x").load()["amount"] == 1.0).all()
    then = dataset(tmp_path / "x", table_version=0)
    pd.testing.assert_frame_equal(then.load(), instances, check_dtype=False)
    assert then.loaded_version == 0


def test_missing_ok_loads_a_table_never_published_as_no_rows_of_the_contract(tmp_path, instances):
    with pytest.raises(DatasetError, match="No published data"):
        dataset(tmp_path / "absent", contract=TransactionInstance).load()
    empty = dataset(tmp_path / "absent", contract=TransactionInstance, missing_ok=True).load()
    assert empty.empty
    assert list(empty.columns) == [
        name for name, col in TransactionInstance.to_schema().columns.items() if col.required
    ]
    TransactionInstance.validate(empty)  # what a consumer's validator on load does
    optional = dataset(tmp_path / "present", contract=TransactionInstance, missing_ok=True)
    dataset(tmp_path / "present").save(instances)
    assert len(optional.load()) == len(instances) and optional.loaded_version == 0
    with pytest.raises(DatasetError, match="missing_ok needs"):
        dataset(tmp_path / "x", missing_ok=True)


def test_append_mode_keeps_every_save_and_a_retried_save_once(tmp_path, instances):
    ds = dataset(tmp_path / "log", mode="append")
    ds.save(instances)
    ds.save(instances.assign(transaction_id=[5, 6]))
    assert len(ds.load()) == 4
    ds.save(instances)  # the same rows again: a retry after a failure, not new rows
    assert sorted(ds.load()["transaction_id"]) == [5, 6, 1001, 1002]
    assert ds.version() == 1


def test_appended_rows_load_in_the_order_of_their_days_then_saves(tmp_path, instances):
    ds = dataset(tmp_path / "log", mode="append")
    one = instances.head(1)
    for days in (5, 1, 3):  # saved out of order
        ds.save(one.assign(event_time=pd.Timestamp("2025-06-03") + pd.Timedelta(days=days)))
    assert ds.load()["event_time"].dt.day.tolist() == [4, 6, 8]


PUBLISH = """
import sys, pandas as pd
from shared_runtime.exchange import ExchangeParquetDataset
days = pd.date_range("2025-06-01", periods=60, freq="D").repeat(20_000)
frame = pd.DataFrame({"event_time": days, "amount": 2.0, "note": "new" * 40})
ExchangeParquetDataset(filepath=sys.argv[1], partition_by="event_time").save(frame)
"""


def test_a_publish_killed_midway_leaves_the_previous_window_whole(tmp_path):
    """SIGKILL while the new window's files are being written: readers still see the previous
    window, whole, at the same table version; the next publish succeeds."""
    ds = dataset(tmp_path / "x")
    days = pd.date_range("2025-06-01", periods=60, freq="D").repeat(3)
    old = pd.DataFrame({"event_time": days, "amount": 1.0, "note": "old"})
    ds.save(old)
    script = tmp_path / "publish.py"
    script.write_text(textwrap.dedent(PUBLISH))
    writer = subprocess.Popen([sys.executable, str(script), str(tmp_path / "x")])
    deadline = time.monotonic() + 120
    before = set((tmp_path / "x").rglob("*.parquet"))
    while len(set((tmp_path / "x").rglob("*.parquet")) - before) < 3:
        assert writer.poll() is None, "the publish ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert set((tmp_path / "x").rglob("*.parquet")) - before  # new files were on disk...
    assert ds.version() == 0  # ...but in no commit
    pd.testing.assert_frame_equal(ds.load(), old, check_dtype=False)
    subprocess.run([sys.executable, str(script), str(tmp_path / "x")], check=True)
    assert set(ds.load()["note"]) == {"new" * 40}


def foreign_write(path, frame: pd.DataFrame, contract: str | None = CONTRACT_VERSION, **kw):
    """A table written by another writer than the dataset (a tampered or foreign producer)."""
    table = pa.Table.from_pandas(frame.assign(day="2025-06-03"), preserve_index=False)
    write_deltalake(
        str(path),
        table,
        partition_by=["day"],
        commit_properties=CommitProperties(
            custom_metadata={META_CONTRACT: contract} if contract else {}
        ),
        **kw,
    )


def test_readers_refuse_incompatible_contract_versions(tmp_path, instances):
    dataset(tmp_path / "x").save(instances)
    foreign_write(tmp_path / "x", instances.head(1), contract="99.0.0", mode="append")
    with pytest.raises(DatasetError, match=r"commit 1 was written with contract 99\.0\.0") as info:
        dataset(tmp_path / "x").load()
    assert isinstance(info.value.__cause__, IncompatibleContractError)


def test_a_commit_without_a_contract_version_is_refused(tmp_path, instances):
    foreign_write(tmp_path / "x", instances, contract=None)
    with pytest.raises(DatasetError, match="carries no contract version"):
        dataset(tmp_path / "x").load()


def test_a_whole_overwrite_ends_what_readers_check(tmp_path, instances):
    """Only commits whose rows the table still holds are checked: an old incompatible write
    that a full overwrite replaced no longer matters."""
    foreign_write(tmp_path / "x", instances, contract="99.0.0")
    foreign_write(tmp_path / "x", instances, mode="overwrite")
    pd.testing.assert_frame_equal(dataset(tmp_path / "x").load(), instances, check_dtype=False)


def test_commits_carry_the_contract_version_not_the_runtime_version(tmp_path, instances):
    """shared-runtime releases for its own reasons: a stamp is the contracts package's version."""
    assert version("shared-schemas") == CONTRACT_VERSION
    ds = dataset(tmp_path / "x", producer="etl-app")
    ds.save(instances)
    (stamp,) = ds.commits()
    assert stamp["contract_version"] == version("shared-schemas")


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


def two_days(instances) -> pd.DataFrame:
    later = instances.assign(
        transaction_id=[5, 6], event_time=instances["event_time"] + pd.Timedelta(days=1)
    )
    return pd.concat([instances, later], ignore_index=True)


# --- physical schema: what a reader refuses before it returns anything ---------------------------
def checked(path, **kwargs) -> ExchangeParquetDataset:
    return dataset(path, contract="shared_schemas.etl_to_ml.TransactionInstance", **kwargs)


def test_a_window_of_text_amounts_is_refused_on_write_and_the_table_kept(tmp_path, instances):
    ds = checked(tmp_path / "x")
    ds.save(instances)
    tampered = instances.assign(amount=["twelve", "ten"])
    with pytest.raises(Exception, match=r"(?i)cast"):
        foreign_write(tmp_path / "x", tampered, mode="append")
    assert ds.version() == 0
    pd.testing.assert_frame_equal(ds.load(), instances, check_dtype=False)


def test_a_missing_column_is_reported_as_missing_not_as_nulls(tmp_path, instances):
    foreign_write(tmp_path / "x", instances.drop(columns="amount"))
    with pytest.raises(ExchangeSchemaError, match=r"missing column\(s\): amount"):
        checked(tmp_path / "x").load()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda f: f.assign(event_time=f["event_time"].dt.tz_localize("Europe/Paris")),
            "column 'event_time' is timestamp[us, tz=UTC], expected timestamp (naive UTC)",
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
    foreign_write(tmp_path / "x", change(instances))
    with pytest.raises(ExchangeSchemaError) as info:
        checked(tmp_path / "x").load()
    message = str(info.value)
    assert expected in message
    assert "TransactionInstance contract" in message and "nothing was loaded" in message
    assert "table version 0" in message


def test_lossless_widenings_are_still_read(tmp_path, instances):
    """Another engine's writer (int32 counts, float32 amounts, small unsigned) reads as ours."""
    ds = checked(tmp_path / "x")
    ds.save(instances.assign(tx_count_1h=instances["tx_count_1h"].astype("uint8")))
    loaded = ds.load()
    assert str(loaded["tx_count_1h"].dtype) == "int64"
    TransactionInstance.validate(loaded)
    foreign_write(
        tmp_path / "y", instances.assign(tx_count_1h=instances["tx_count_1h"].astype("int32"))
    )
    TransactionInstance.validate(checked(tmp_path / "y").load())


def test_the_exchange_reads_with_any_delta_reader(tmp_path, instances):
    ds = checked(tmp_path / "x")
    ds.save(two_days(instances))
    ds.save(instances.assign(amount=3.0))  # replaces one day: its old file stays until vacuumed
    plain = DeltaTable(str(tmp_path / "x")).to_pandas()  # the one-liner in docs/architecture.md
    assert sorted(plain["transaction_id"]) == [5, 6, 1001, 1002]
    assert sorted(plain["day"].unique()) == ["2025-06-03", "2025-06-04"]
    assert str(plain["event_time"].dtype).startswith("datetime64")


def test_the_pre_delta_layout_is_named_instead_of_reported_empty(tmp_path, instances):
    folder = tmp_path / "x" / "day=2025-06-03"
    folder.mkdir(parents=True)
    instances.to_parquet(folder / "part-0.parquet")
    with pytest.raises(DatasetError, match="Parquet files without a Delta log"):
        checked(tmp_path / "x").load()


def age(path, hours: float) -> None:
    past = time.time() - hours * 3600
    os.utime(path, (past, past))


def test_the_next_quarantine_save_sweeps_temp_files_of_dead_runs_only(tmp_path, instances):
    quarantine = QuarantineDataset(filepath=str(tmp_path / "q"))
    quarantine.save(instances)
    dead, writing = tmp_path / "q" / ".tmp-dead.parquet", tmp_path / "q" / ".tmp-writing.parquet"
    dead.write_bytes(b"x" * 1000)
    writing.write_bytes(b"x" * 1000)
    age(dead, 2)  # a run killed two hours ago; `writing` belongs to a run still at work
    quarantine.save(instances)
    assert not dead.exists() and writing.exists()


def test_a_restored_table_reports_the_commits_of_the_version_it_restored(tmp_path, instances):
    ds = dataset(tmp_path / "x", producer="etl-app")
    ds.save(instances)
    foreign_write(tmp_path / "x", instances, contract="99.0.0", mode="overwrite")
    DeltaTable(str(tmp_path / "x")).restore(0)
    assert [c["version"] for c in ds.commits()] == [0]
    pd.testing.assert_frame_equal(ds.load(), instances, check_dtype=False)


RACE = """
import sys, pandas as pd
from shared_runtime.exchange import ExchangeParquetDataset
days = pd.date_range("2025-06-01", periods=30, freq="D").repeat(2000)
frame = pd.DataFrame({"event_time": days, "amount": float(sys.argv[2])})
ExchangeParquetDataset(filepath=sys.argv[1], partition_by="event_time").save(frame)
"""


def test_concurrent_publishes_of_one_window_all_complete_and_leave_it_whole(tmp_path):
    """Writers of the same days race for the commit; a loser publishes again on top of the
    winner's commit (Delta refuses it otherwise), so every run completes."""
    script = tmp_path / "race.py"
    script.write_text(textwrap.dedent(RACE))
    path = str(tmp_path / "x")
    subprocess.run([sys.executable, str(script), path, "0"], check=True)
    for _ in range(3):
        writers = [
            subprocess.Popen([sys.executable, str(script), path, str(i)], stderr=subprocess.PIPE)
            for i in (1, 2, 3)
        ]
        errors = [w.communicate()[1].decode()[-2000:] for w in writers]
        assert [w.returncode for w in writers] == [0, 0, 0], errors
    ds = dataset(tmp_path / "x")
    assert ds.version() == 9  # one commit per publish
    published = ds.load()
    assert len(published) == 60_000 and published["amount"].nunique() == 1
