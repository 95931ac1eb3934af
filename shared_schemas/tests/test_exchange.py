"""The exchange dataset: partitions, idempotent overwrite, atomic publish, version stamps."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError
from kedro.validation import DataValidationError

from shared_schemas.exchange import META_CONTRACT, ExchangeParquetDataset
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


def test_append_mode_keeps_every_save(tmp_path, instances):
    ds = dataset(tmp_path / "log", mode="append")
    ds.save(instances)
    ds.save(instances)
    assert len(ds.load()) == 4


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
    folder = tmp_path / "x" / "event_time=2025-06-03"
    folder.mkdir(parents=True)
    table = pa.Table.from_pandas(instances, preserve_index=False)
    pq.write_table(
        table.replace_schema_metadata({META_CONTRACT: b"99.0.0"}), folder / "part-0.parquet"
    )
    with pytest.raises(DatasetError, match=r"written with contract 99\.0\.0") as info:
        dataset(tmp_path / "x").load()
    assert isinstance(info.value.__cause__, IncompatibleContractError)


def test_loading_nothing_says_what_to_run(tmp_path):
    with pytest.raises(DatasetError, match="Run the producing app's pipeline first"):
        dataset(tmp_path / "missing").load()


def catalog(tmp_path, on):
    return DataCatalog.from_config(
        {
            "instances": {
                "type": "shared_schemas.exchange.ExchangeParquetDataset",
                "filepath": str(tmp_path / "instances"),
                "partition_by": "event_time",
                "validator": {
                    "class": "shared_schemas.enforce.ContractValidator",
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
    from shared_schemas.exchange import QuarantineDataset

    first, second = (QuarantineDataset(filepath=str(tmp_path / "q")) for _ in range(2))
    first.save(instances.head(1))
    second.save(instances)  # a concurrent run: its own file, nothing overwritten
    assert len(list((tmp_path / "q").glob("*.parquet"))) == 2
    assert not list((tmp_path / "q").glob(".tmp-*"))
    assert len(first.load()) == 2  # the newest
