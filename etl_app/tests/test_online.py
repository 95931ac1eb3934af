"""Zero training/serving skew: online features equal the batch-published ones, bit for bit.

A small simulated source system; etl_instances publishes a window; then every payment of a few
days of that window is featurized online, one request at a time, from the source database, and
each feature must equal the published row exactly (values and dtypes). The window holds payments
of one card within the same second (inserted through the source's transactions table: the
simulator makes none): they must not see each other, online as in batch. A broken payment of that
card, with a chargeback, is refused online as the batch quarantines it, and counts in no feature.
"""

import re
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from etl_app.online import (
    _HISTORY,
    PAYMENTS_SELECT,
    REQUEST_COLUMNS,
    OnlineFeaturizer,
    RejectedPayment,
)
from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_app, kedro_run
from shared_schemas.etl_to_ml import TransactionInstance

APP = Path(__file__).resolve().parents[1]
SMALL = {"simulate.n_customers": 500, "simulate.n_merchants": 250, "simulate.days": 60}
WINDOW = {"window.start": "2025-02-01", "window.end": "2025-03-02"}
ONLINE_DAYS = ("2025-02-10", "2025-02-13")  # the part of the window featurized online


def same_second_pairs(payments: pd.DataFrame) -> int:
    """Payments that share their card and whole second with another payment."""
    second = pd.to_datetime(payments["event_time"], format="ISO8601").dt.floor("s")
    return int(payments.assign(second=second).duplicated(["card_id", "second"], keep=False).sum())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("monorepo")
    project = isolated_app(APP, root)
    kedro_run(project, "simulate", SMALL)
    db = root / "source_system.db"
    with sqlite3.connect(db) as con:
        # Two more payments of a card, in the same second as one of its payments (the same
        # instant, and half a second later), at other merchants: an attack burst.
        _, card, merchant, event_time = con.execute(
            "SELECT transaction_id, card_id, merchant_id, event_time FROM transactions "
            "WHERE event_time >= '2025-02-11 12:00:00' ORDER BY event_time LIMIT 1"
        ).fetchone()
        (next_id,) = con.execute("SELECT MAX(transaction_id) + 1 FROM transactions").fetchone()
        others = [m for (m,) in con.execute("SELECT merchant_id FROM merchants LIMIT 3")]
        others = [m for m in others if m != merchant][:2]
        later = (pd.Timestamp(event_time) + pd.Timedelta(milliseconds=500)).strftime(
            "%Y-%m-%d %H:%M:%S.%f"
        )
        before = pd.Timestamp(event_time) - pd.Timedelta(minutes=10)
        con.executemany(
            "INSERT INTO transactions VALUES (?, ?, ?, ?, ?)",
            [
                (next_id, card, others[0], 19.99, event_time),
                (next_id + 1, card, others[1], 420.0, later),
                # a broken payment of the same card and merchant, and a chargeback for it: the
                # batch quarantines both, so neither may count in any other payment's features
                (next_id + 2, card, merchant, -5.0, before.strftime("%Y-%m-%d %H:%M:%S.%f")),
            ],
        )
        con.execute(
            "INSERT INTO chargebacks VALUES (?, ?, ?, 'card_not_present_fraud')",
            (999_999, next_id + 2, (before + pd.Timedelta(minutes=5)).isoformat(sep=" ")),
        )
    kedro_run(project, "etl_instances", WINDOW)
    return project, db


def test_the_online_extract_is_the_batch_extract():
    catalog = yaml.safe_load((APP / "conf/base/catalog.yml").read_text())
    batch = catalog["source_window_payments"]["sql"]
    assert " ".join(batch.split()).startswith(" ".join(PAYMENTS_SELECT.split()) + " WHERE ")


def test_lookups_use_the_indexes(world):
    _, db = world
    sql = re.sub(r":(\w+)", "?", str(_HISTORY))
    with sqlite3.connect(db) as con:
        plan = [row[-1] for row in con.execute(f"EXPLAIN QUERY PLAN {sql}", [1, "", "", 1, "", ""])]
    assert not [step for step in plan if step.startswith("SCAN")], plan
    # covering: the payments' rows are read from the indexes alone
    assert any("COVERING INDEX ix_transactions_card_time" in step for step in plan), plan
    assert any("COVERING INDEX ix_transactions_merchant_time" in step for step in plan), plan


def test_online_features_equal_published_features_bit_for_bit(world, monkeypatch, capsys):
    project, db = world
    monkeypatch.setenv("ETL_SOURCE_DB_URL", f"sqlite:///{db}")
    monkeypatch.setenv("MONOREPO_ROOT", str(project.parent))
    featurizer = OnlineFeaturizer.from_conf(project / "conf")

    published = ExchangeParquetDataset(
        filepath=str(project.parent / "data/exchange/instances"), partition_by="event_time"
    ).load()
    start, end = (pd.Timestamp(day) for day in ONLINE_DAYS)
    expected = published[published["event_time"].between(start, end, inclusive="left")]
    # typed by the contract, as the online rows are (the exchange returns event_time in Delta's
    # microseconds; the contract coerces it to nanoseconds: the same instants)
    expected = expected.sort_values("transaction_id", ignore_index=True)
    expected = TransactionInstance.validate(expected)

    # the requests, as a gateway sends them: straight from the source system
    with sqlite3.connect(db) as con:
        requests = pd.read_sql(
            f"{PAYMENTS_SELECT} WHERE t.event_time >= ? AND t.event_time < ? "
            "ORDER BY t.event_time, t.transaction_id",
            con,
            params=ONLINE_DAYS,
        )[REQUEST_COLUMNS]  # event_time as text, as a gateway sends it
    assert len(requests) == len(expected) + 1 >= 300  # + the broken payment
    same_second = same_second_pairs(requests)
    assert same_second >= 3  # at least the inserted burst

    rows, seconds, rejected = [], [], []
    for i in range(len(requests)):
        tick = time.perf_counter()
        try:
            rows.append(featurizer.featurize(requests.iloc[[i]]))
        except RejectedPayment as error:  # what the batch quarantined, refused online too
            rejected.extend(error.rejected["transaction_id"].astype(int))
            continue
        seconds.append(time.perf_counter() - tick)
    assert rejected == [requests["transaction_id"].max()]  # the broken one, and only it
    online = pd.concat(rows, ignore_index=True).sort_values("transaction_id", ignore_index=True)

    assert list(online.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(online, expected, check_exact=True)
    p50, p99 = np.percentile(np.array(seconds) * 1000, [50, 99])
    with capsys.disabled():
        print(  # noqa: T201 (the measured figures, shown with pytest's output)
            f"\nonline == published for {len(online)} payments ({same_second} in same-second "
            f"groups of one card); featurization per payment p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
