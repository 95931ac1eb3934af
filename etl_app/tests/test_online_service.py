"""The featurization service over real HTTP: what it answers equals the batch, bit for bit.

The world of test_online.py (a small simulated source system with a same-second burst of one
card and a broken payment, then etl_instances over a window); the service runs as
``python -m etl_app.online_service`` in a subprocess on a free loopback port.
"""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy
import yaml
from fastapi.testclient import TestClient

from etl_app.online import PAYMENTS_SELECT, REQUEST_COLUMNS
from etl_app.online_service import (
    FeatureService,
    Limits,
    create_app,
    decode_instances,
    missing_indexes,
    source_indexes,
)
from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_env
from shared_schemas.etl_to_ml import TransactionInstance

from .test_online import ONLINE_DAYS, same_second_pairs, world  # noqa: F401 (the fixture)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(project: Path, db: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = isolated_env(project.parent, {"ETL_SOURCE_DB_URL": f"sqlite:///{db}"})
    log = (project.parent / f"service-{port}.log").open("w+")  # a pipe nobody reads would fill
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl_app.online_service", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc.log = log
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited: {stop(proc)}")
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the service did not answer /ping within 30 s")


def stop(proc: subprocess.Popen) -> str:
    """Stop the service; its output."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.log.seek(0)
    out = proc.log.read()
    proc.log.close()
    return out


@pytest.fixture(scope="module")
def service(world):  # noqa: F811
    project, db = world
    proc, url = start(project, db)
    with httpx.Client(base_url=url, timeout=30) as client:
        yield client, project, db
    stop(proc)


def gateway_payments(db: Path) -> pd.DataFrame:
    """The online days' payments as a gateway sends them: straight from the source system."""
    with sqlite3.connect(db) as con:
        return pd.read_sql(
            f"{PAYMENTS_SELECT} WHERE t.event_time >= ? AND t.event_time < ? "
            "ORDER BY t.event_time, t.transaction_id",
            con,
            params=ONLINE_DAYS,
        )[REQUEST_COLUMNS]


def as_json(row: dict, offset_hours: int = 0) -> dict:
    """A payment as JSON; event_time written with ``offset_hours`` (the same instant)."""
    out = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
    if offset_hours:
        local = pd.Timestamp(out["event_time"]) + pd.Timedelta(hours=offset_hours)
        out["event_time"] = local.isoformat() + f"+{offset_hours:02d}:00"
    return out


def test_served_instances_equal_published_ones_bit_for_bit(service):
    client, project, db = service
    published = ExchangeParquetDataset(
        filepath=str(project.parent / "data/exchange/instances"), partition_by="event_time"
    ).load()
    start_day, end_day = (pd.Timestamp(day) for day in ONLINE_DAYS)
    expected = published[published["event_time"].between(start_day, end_day, inclusive="left")]
    expected = TransactionInstance.validate(
        expected.sort_values("transaction_id", ignore_index=True)
    )
    payments = gateway_payments(db)
    assert same_second_pairs(payments) >= 3
    broken = int(payments["transaction_id"].max())  # test_online's negative amount
    payments = payments[payments["transaction_id"] != broken]

    # one payment per request for the same-second ones and every fourth (a third of them with a
    # +05:00 offset), the others 20 per request (the same features: a request's payments are the
    # window rows, the source's the history); together every payment of the days
    second = pd.to_datetime(payments["event_time"], format="ISO8601").dt.floor("s")
    same = payments.assign(s=second).duplicated(["card_id", "s"], keep=False).to_numpy()
    single = same | (np.arange(len(payments)) % 4 == 0)
    rows = payments.to_dict("records")
    instances, seconds = [], []
    for i in np.flatnonzero(single):
        body = {"payments": [as_json(rows[i], offset_hours=5 if i % 3 == 0 else 0)]}
        tick = time.perf_counter()
        answer = client.post("/features", json=body)
        seconds.append(time.perf_counter() - tick)
        assert answer.status_code == 200, answer.text
        instances += answer.json()["instances"]
    others = [as_json(rows[i]) for i in np.flatnonzero(~single)]
    for start in range(0, len(others), 20):
        answer = client.post("/features", json={"payments": others[start : start + 20]})
        assert answer.status_code == 200, answer.text
        instances += answer.json()["instances"]
    # a batch request answers in request order (here newest first)
    batch = [as_json(r) for r in payments.iloc[::-1][:25].to_dict("records")]
    answer = client.post("/features", json={"payments": batch})
    assert answer.status_code == 200, answer.text
    in_batch = answer.json()["instances"]
    assert [r["transaction_id"] for r in in_batch] == [r["transaction_id"] for r in batch]

    served = decode_instances(instances)
    assert list(served.columns) == list(expected.columns)
    served = TransactionInstance.validate(served).sort_values("transaction_id", ignore_index=True)
    pd.testing.assert_frame_equal(served, expected, check_exact=True)
    by_id = {r["transaction_id"]: r for r in instances}
    assert all(by_id[r["transaction_id"]] == r for r in in_batch)
    p50, p99 = np.percentile(np.array(seconds) * 1000, [50, 99])
    print(  # noqa: T201
        f"\nserved == published for {len(served)} payments ({int(same.sum())} same-second); "
        f"POST /features with 1 payment ({len(seconds)} requests) "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


def payment(db: Path) -> dict:
    return as_json(gateway_payments(db).iloc[0].to_dict())


def test_a_contract_break_is_named(service):
    client, _, db = service
    bad = {**payment(db), "amount": -5.0, "merchant_country": "usa"}
    answer = client.post("/features", json={"payments": [bad]})
    assert answer.status_code == 422
    failures = {(f["column"], f["check"]) for f in answer.json()["failures"]}
    assert ("amount", "greater_than_or_equal_to(0.0)") in failures
    assert ("merchant_country", "str_matches('^[A-Z]{2}$')") in failures
    missing = {k: v for k, v in payment(db).items() if k != "merchant_id"}
    answer = client.post("/features", json={"payments": [missing]})
    assert answer.status_code == 422
    assert "merchant_id" in json.dumps(answer.json()["failures"])


def test_screening_rejections_are_named(service):
    client, _, db = service
    early = {**payment(db), "event_time": "2024-06-01T10:00:00Z"}  # before the source started
    answer = client.post("/features", json={"payments": [early]})
    assert answer.status_code == 422, answer.text
    [rejected] = answer.json()["rejected"]
    assert rejected["transaction_id"] == early["transaction_id"]
    assert "plausible_event_time" in rejected["failed_checks"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"payments": [{"amount": NaN}]}', 400, "finite numbers"),
        (b'{"rows": []}', 400, '"payments"'),
        (b'{"payments": [1, 2]}', 400, "list of objects"),
        (b"not json", 400, "not valid JSON"),
        (json.dumps({"payments": [{}] * 1001}).encode(), 413, "limit is 1000"),
    ],
)
def test_bad_bodies_are_refused(service, body, status, words):
    client, _, _ = service
    answer = client.post("/features", content=body)
    assert answer.status_code == status
    assert words in answer.json()["error"]


def test_health_names_the_source_and_versions(service):
    client, _, db = service
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["source_db"] == f"sqlite:///{db}"
    assert health["contract_version"] >= "0.1.5"
    assert health["missing_indexes"] == []  # the simulator saves the source tables indexed


def test_missing_source_indexes_are_named(service, tmp_path):
    _, project, db = service
    copy = tmp_path / "no_index.db"
    shutil.copy(db, copy)
    with sqlite3.connect(copy) as con:
        con.execute("DROP INDEX ix_transactions_card_time")
    catalog = yaml.safe_load((project / "conf/base/catalog.yml").read_text())
    engine = sqlalchemy.create_engine(f"sqlite:///{copy}")
    assert missing_indexes(engine, source_indexes(catalog)) == [
        "transactions(card_id, event_time, merchant_id, amount, transaction_id)"
    ]
    engine.dispose()


def test_an_unreadable_source_answers_503(service, tmp_path):
    _, project, db = service
    copy = tmp_path / "source.db"
    shutil.copy(db, copy)
    proc, url = start(project, copy)
    try:
        os.remove(copy)  # before any connection opened it
        answer = httpx.post(f"{url}/features", json={"payments": [payment(db)]}, timeout=30)
        assert answer.status_code == 503
        assert str(copy) in answer.json()["error"]
        assert "unable to open database file" in answer.json()["error"]
        assert httpx.get(f"{url}/health", timeout=30).json()["status"] == "degraded"
    finally:
        out = stop(proc)
    assert "refused (503)" in out and copy.name in out
    assert not copy.exists()  # opened read-only: never created


class Broken:
    """A featurizer failing in an unforeseen way."""

    engine = sqlalchemy.create_engine("sqlite://")

    def featurize(self, payments):
        raise RuntimeError("unforeseen")


def test_an_unforeseen_failure_answers_500_with_the_error(service):
    _, _, db = service
    app = create_app(FeatureService(Broken(), Limits()))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post("/features", json={"payments": [payment(db)]})
    assert answer.status_code == 500
    assert answer.json() == {"error": "RuntimeError: unforeseen"}
