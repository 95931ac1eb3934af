"""The decision sink against a real exchange (Kedro catalog, contract validators, Parquet) that
fails for real: a dataset's folder is a plain file, so nothing can be written under it."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog

from shared_runtime.exchange import ExchangeParquetDataset
from user_app.decisions import classify, decision_thresholds, log_record
from user_app.online.sink import DecisionSink, Scored, SinkFull, SinkPolicy, now

THRESHOLDS = decision_thresholds({"missed_fraud": 150.0, "review": 5.0, "false_decline": 25.0})
CONTRACTS = {
    "online_decisions": ("event_time", "shared_schemas.ml_to_user.FraudDecision"),
    "shadow_decisions": ("event_time", "shared_schemas.ml_to_user.FraudDecision"),
    "prediction_log": ("scored_at", "shared_schemas.ml_to_user.PredictionLog"),
}


def catalog(exchange) -> DataCatalog:
    return DataCatalog.from_config(
        {
            name: {
                "type": "shared_runtime.exchange.ExchangeParquetDataset",
                "filepath": str(exchange / name),
                "partition_by": partition_by,
                "mode": "append",
                "contract": contract,
                "validator": {
                    "class": "shared_runtime.enforce.ContractValidator",
                    "on": ["save"],
                    "options": {"contract": contract},
                },
            }
            for name, (partition_by, contract) in CONTRACTS.items()
        }
    )


def published(exchange, name: str) -> pd.DataFrame:
    partition_by = CONTRACTS[name][0]
    dataset = ExchangeParquetDataset(filepath=str(exchange / name), partition_by=partition_by)
    return dataset.load() if dataset.exists() else pd.DataFrame()


def files(exchange, name: str) -> list:
    return sorted((exchange / name).glob("day=*/*.parquet"))


def call(tid: int, route: str = "primary") -> Scored:
    score = np.array([tid % 100 / 100.0])
    decided = classify(score, *THRESHOLDS)
    log = log_record(
        request_id=f"r{tid}-{route}",
        channel="online",
        route=route,
        model={"model_name": "m", "model_version": "1", "model_run_id": "run"},
        scored_at=now(),
        decisions=decided,
        latency_ms=1.0,
    )
    event_time = np.array(["2025-06-01T10:00:00"], dtype="M8[us]")
    return Scored(log, np.array([tid]), event_time, score, decided)


def broken(exchange, name: str) -> None:
    """The dataset's folder is a file: every write under it fails (even as root)."""
    exchange.mkdir(exist_ok=True)
    (exchange / name).write_text("not a folder")


def test_a_failing_dataset_neither_duplicates_the_others_nor_loses_rows(tmp_path):
    exchange = tmp_path / "exchange"
    broken(exchange, "prediction_log")
    sink = DecisionSink(catalog(exchange), THRESHOLDS, spool=tmp_path / "spool")
    for tid in range(10):
        sink.record(call(tid))
    assert sink.flush(publish_all=True) == 10  # the decisions; the log failed
    for _ in range(3):  # retries while the log's exchange still fails
        sink.flush(publish_all=True)
    health = sink.health()
    assert health["failed_publishes"] == 4
    assert health["spooled_rows"] == {
        "online_decisions": 0,
        "shadow_decisions": 0,
        "prediction_log": 10,
        "online_instances": 0,
    }
    assert len(published(exchange, "online_decisions")) == 10  # once, not four times

    (exchange / "prediction_log").unlink()  # the exchange is back
    sink.close()
    log = published(exchange, "prediction_log")
    assert sorted(log["request_id"]) == sorted(f"r{t}-primary" for t in range(10))
    assert len(published(exchange, "online_decisions")) == 10
    assert sink.health()["waiting_rows"] == 0


def test_a_full_sink_refuses_requests_with_a_reason_and_says_so_in_health(tmp_path):
    exchange = tmp_path / "exchange"
    broken(exchange, "online_decisions")
    policy = SinkPolicy(roll_rows=4, max_pending_rows=20)
    sink = DecisionSink(catalog(exchange), THRESHOLDS, spool=tmp_path / "spool", policy=policy)
    admitted = 0
    with pytest.raises(SinkFull, match="limit 20"):
        for tid in range(100):
            sink.admit()
            sink.record(call(tid))
            admitted += 1
            sink.flush()
    sink.record(call(999, route="shadow"))  # a shadow call never waits: dropped, counted
    health = sink.health()
    # the log keeps being published; the decisions wait until 20 rows are unpublished
    assert 16 <= admitted < 20
    assert len(published(exchange, "prediction_log")) >= 16
    assert (health["refused_requests"], health["shadow_dropped"]) == (1, 1)
    assert health["waiting_rows"] >= 20

    (exchange / "online_decisions").unlink()
    sink.flush(publish_all=True)
    sink.admit()  # room again
    assert len(published(exchange, "online_decisions")) == admitted
    assert len(published(exchange, "prediction_log")) == admitted


def test_small_flushes_roll_into_one_file_per_day(tmp_path):
    exchange = tmp_path / "exchange"
    policy = SinkPolicy(roll_rows=1_000, roll_seconds=3600)
    sink = DecisionSink(catalog(exchange), THRESHOLDS, spool=tmp_path / "spool", policy=policy)
    for tid in range(30):  # thirty flush periods of one request each
        sink.record(call(tid))
        sink.flush()
    assert files(exchange, "online_decisions") == []  # spooled, not yet due
    assert len(list((tmp_path / "spool/online_decisions").glob("seg-*.parquet"))) == 30
    sink.close()  # shutdown publishes everything: one file per day and dataset
    assert len(files(exchange, "online_decisions")) == 1
    assert len(files(exchange, "prediction_log")) == 1
    assert len(published(exchange, "online_decisions")) == 30

    sink = DecisionSink(catalog(exchange), THRESHOLDS, spool=tmp_path / "spool", policy=policy)
    for tid in range(30, 40):
        sink.record(call(tid))
        sink.flush()
    assert len(files(exchange, "online_decisions")) == 1
    sink.policy = SinkPolicy(roll_rows=10, roll_seconds=3600)  # ten rows spooled: due by size
    sink.flush()
    assert len(files(exchange, "online_decisions")) == 2


def test_a_restart_publishes_the_spool_and_a_republished_roll_adds_nothing(tmp_path):
    exchange, spool = tmp_path / "exchange", tmp_path / "spool"
    first = DecisionSink(catalog(exchange), THRESHOLDS, spool=spool)
    for tid in range(5):
        first.record(call(tid))
    first.flush()  # spooled; then the process dies before publishing
    copy = tmp_path / "spool-copy"
    shutil.copytree(spool, copy)

    second = DecisionSink(catalog(exchange), THRESHOLDS, spool=spool)
    assert second.health()["spooled_rows"]["online_decisions"] == 5
    second.close()
    assert len(published(exchange, "online_decisions")) == 5

    # as if the process had died after publishing but before forgetting its spool
    shutil.rmtree(spool)
    shutil.copytree(copy, spool)
    third = DecisionSink(catalog(exchange), THRESHOLDS, spool=spool)
    third.close()
    assert len(published(exchange, "online_decisions")) == 5
    assert len(published(exchange, "prediction_log")) == 5


def test_an_unwritable_spool_keeps_rows_in_memory_within_the_bound(tmp_path):
    spool = tmp_path / "spool"
    spool.write_text("not a folder")  # the local disk refuses too
    policy = SinkPolicy(roll_rows=2, max_pending_rows=8)
    sink = DecisionSink(catalog(tmp_path / "exchange"), THRESHOLDS, spool=spool, policy=policy)
    with pytest.raises(SinkFull):
        for tid in range(10):
            sink.admit()
            sink.record(call(tid))
            sink.flush()
    health = sink.health()
    assert health["failed_spools"] >= 3 and health["waiting_rows"] == 8
    spool.unlink()  # the disk is back: everything kept in memory is published
    sink.close()
    assert len(published(tmp_path / "exchange", "online_decisions")) == 4
    assert len(published(tmp_path / "exchange", "prediction_log")) == 4


def test_a_retried_transaction_in_another_flush_keeps_its_latest_decision(tmp_path):
    exchange = tmp_path / "exchange"
    sink = DecisionSink(catalog(exchange), THRESHOLDS, spool=tmp_path / "spool")
    sink.record(call(7))
    sink.flush()
    retried = call(7)
    score = np.array([0.99])
    log = dict(retried.log, request_id="r7-retry")
    decided = classify(score, *THRESHOLDS)
    sink.record(Scored(log, retried.transaction_id, retried.event_time, score, decided))
    sink.close()
    decisions = published(exchange, "online_decisions")
    assert decisions["transaction_id"].tolist() == [7]  # FraudDecision: one per transaction
    assert decisions["score"].tolist() == [0.99]
    assert len(published(exchange, "prediction_log")) == 2  # both calls are logged
    # the spool counts the rows it held (two), not the one published: nothing stays pending
    assert sink.health()["spooled_rows"]["online_decisions"] == 0
    assert sink.health()["waiting_rows"] == 0


def test_rows_that_break_their_contract_are_set_aside_not_retried_for_ever(tmp_path):
    exchange = tmp_path / "exchange"
    sink = DecisionSink(catalog(exchange), THRESHOLDS, spool=tmp_path / "spool")
    bad = call(1)  # a buggy model scored 1.5
    sink.record(Scored(bad.log, bad.transaction_id, bad.event_time, np.array([1.5]), bad.decision))
    sink.flush(publish_all=True)
    sink.record(call(2))
    sink.close()
    assert sink.health()["rejected_rows"] == 1
    assert len(list((tmp_path / "spool/online_decisions").glob("rejected-*/*.parquet"))) == 1
    assert published(exchange, "online_decisions")["transaction_id"].tolist() == [2]
    assert len(published(exchange, "prediction_log")) == 2


def test_the_flusher_survives_a_roll_it_cannot_read_and_keeps_its_rows(tmp_path, caplog):
    exchange, spool = tmp_path / "exchange", tmp_path / "spool"
    policy = SinkPolicy(flush_seconds=0.05, roll_rows=1, max_pending_rows=100)
    sink = DecisionSink(catalog(exchange), THRESHOLDS, spool=spool, policy=policy)
    garbage = spool / "online_decisions" / "seg-00000000000000000001-deadbeef.parquet"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"not parquet: a disk fault")  # Arrow raises ArrowInvalid reading it
    sink.start()
    try:
        sink.record(call(1))
        deadline = time.monotonic() + 10
        while sink.health()["failed_publishes"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.health()["failed_publishes"] >= 2  # retried: the flusher is still alive
        assert sink._thread.is_alive()
        assert len(published(exchange, "prediction_log")) == 1  # the other datasets go on
        roll = next((spool / "online_decisions").glob("roll-*"))
        (roll / garbage.name).unlink()  # the bad file is taken away: the kept row publishes
        deadline = time.monotonic() + 10
        while published(exchange, "online_decisions").empty and time.monotonic() < deadline:
            time.sleep(0.05)
        assert published(exchange, "online_decisions")["transaction_id"].tolist() == [1]
    finally:
        sink.close()
    assert sink.health()["waiting_rows"] == 0


def test_a_call_the_sink_cannot_turn_into_rows_is_kept_counted_and_logged(tmp_path):
    exchange = tmp_path / "exchange"
    policy = SinkPolicy(flush_seconds=0.05)
    sink = DecisionSink(catalog(exchange), THRESHOLDS, spool=tmp_path / "spool", policy=policy)
    good = call(1)
    bad = Scored(good.log, np.array([2, 3]), good.event_time, good.score, good.decision)
    sink.start()
    try:
        sink.record(bad)  # two ids, one score: a bug upstream, pandas raises ValueError
        deadline = time.monotonic() + 10
        while sink.health()["failed_flushes"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.health()["failed_flushes"] >= 2
        assert sink._thread.is_alive()
        assert sink.pending() == 1  # kept, not lost with the thread
    finally:
        sink._stop.set()
        sink._thread.join()
