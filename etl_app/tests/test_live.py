"""Live mode: the generated payments continue the world, and the driver records before it asks.

A small simulated source system (as ``test_online.py``). The generation tests check the live
payments' properties and determinism. The driver test runs ``python -m etl_app.live``'s ``main``
against a real HTTP server on loopback standing in for user_app's ``POST /authorize`` (not in
etl_app's reach): at each request the stand-in checks, in the source database, that the payment
and every live payment of an earlier second are already recorded (the ordering that makes online
features equal batch ones), and answers in ``/authorize``'s shape. Afterwards every payment is in
the source exactly once, and etl_instances publishes them.
"""

import json
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy

from etl_app.live import (
    Authorizer,
    SourceWriter,
    _authorize,
    load_conf,
    main,
    source_engine,
    summarize,
)
from etl_app.pipelines.simulate.live import (
    LiveSettings,
    WorldMismatch,
    continue_world,
    live_payments,
)
from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_app, isolated_env, kedro_run, throwaway_postgres

APP = Path(__file__).resolve().parents[1]
SMALL = {"simulate.n_customers": 500, "simulate.n_merchants": 250, "simulate.days": 60}
RUNTIME = {"simulate": {k.split(".")[1]: v for k, v in SMALL.items()}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(project, source db, simulate params, the source's end as simulated)."""
    root = tmp_path_factory.mktemp("monorepo")
    project = isolated_app(APP, root)
    kedro_run(project, "simulate", SMALL)
    db = root / "source_system.db"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MONOREPO_ROOT", str(root))
        env.setenv("ETL_SOURCE_DB_URL", f"sqlite:///{db}")
        url, params = load_conf(project / "conf", None, RUNTIME)
    end = SourceWriter(sqlalchemy.create_engine(url)).world_end()
    return project, db, params, end


@pytest.fixture(scope="module")
def live_world(world):
    _, _, params, (last, max_id, cards, merchants) = world
    return continue_world(params, last, max_id, cards, merchants)


def seconds_of(times: pd.Series) -> pd.Series:
    return pd.to_datetime(times, format="ISO8601").dt.floor("s")


def same_second_groups(payments: pd.DataFrame) -> int:
    """Payments sharing their card and whole second with another payment."""
    keyed = payments.assign(second=seconds_of(payments["event_time"]))
    return int(keyed.duplicated(["card_id", "second"], keep=False).sum())


def test_live_payments_continue_the_world(world, live_world):
    _, _, _, (last, max_id, cards, merchants) = world
    payments = live_payments(live_world, rate=200, seconds=60, seed=1)

    assert abs(len(payments) / (200 * 60) - 1) < 0.08  # a Poisson stream at the rate
    attack = payments["attack"].mean()
    assert 0.02 < attack < 0.1, attack  # the share of payments in bursts (0.05)
    # bursts: several payments of one card within the same second
    assert same_second_groups(payments[payments["attack"]]) >= 10
    assert same_second_groups(payments[~payments["attack"]]) < same_second_groups(payments)

    ids = list(range(max_id + 1, max_id + 1 + len(payments)))
    assert payments["transaction_id"].tolist() == ids
    assert payments["event_time"].min() > last
    assert payments["event_time"].is_monotonic_increasing
    assert payments["offset"].between(0, 60, inclusive="left").all()
    owners = cards.set_index("card_id")["customer_id"]
    assert (owners.reindex(payments["card_id"]).to_numpy() == payments["customer_id"]).all()
    known = merchants.set_index("merchant_id")
    assert payments["merchant_id"].isin(known.index).all()
    assert (
        known["category"].reindex(payments["merchant_id"]).to_numpy()
        == (payments["merchant_category"])
    ).all()
    assert (payments["amount"] >= 0.01).all()
    assert (payments["amount"].round(2) == payments["amount"]).all()
    # attack payments go to risky categories, ordinary ones mostly to the card's favourites
    risky = {"electronics", "travel", "online_services", "jewelry"}
    assert payments.loc[payments["attack"], "merchant_category"].isin(risky).all()
    fav = live_world.favourites
    ordinary = payments[~payments["attack"]]
    at_favourite = [
        m in fav[c] for c, m in zip(ordinary["card_id"], ordinary["merchant_id"], strict=True)
    ]
    assert np.mean(at_favourite) > 0.8


def test_live_payments_are_deterministic(live_world):
    first = live_payments(live_world, rate=100, seconds=20, seed=5)
    pd.testing.assert_frame_equal(first, live_payments(live_world, rate=100, seconds=20, seed=5))
    other = live_payments(live_world, rate=100, seconds=20, seed=6)
    assert not first["event_time"].equals(other["event_time"])
    # a longer run starts with exactly the payments of a shorter one
    longer = live_payments(live_world, rate=100, seconds=35, seed=5)
    pd.testing.assert_frame_equal(longer.iloc[: len(first)], first)
    shares = live_payments(live_world, 100, 20, 5, LiveSettings(attack_share=0.3))
    assert shares["attack"].mean() > 0.15


def test_a_source_of_another_world_is_refused(world):
    _, _, params, (last, max_id, cards, merchants) = world
    with pytest.raises(WorldMismatch, match=r"--params simulate\.n_customers"):
        continue_world({**params, "n_customers": 400}, last, max_id, cards, merchants)


class StandIn(BaseHTTPRequestHandler):
    """``POST /authorize`` in user_app's answer shape; checks the ordering at request time."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the driver's connections
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK
    db: Path
    first_id: int
    expected: pd.DataFrame  # the live payments the driver will send
    got: list
    violations: list
    lock = threading.Lock()

    def do_POST(self):
        payment = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        second = pd.Timestamp(payment["event_time"]).floor("s")
        earlier = int((self.expected["second"] < second).sum())
        with sqlite3.connect(self.db, timeout=10) as con:
            (mine,) = con.execute(
                "SELECT COUNT(*) FROM transactions WHERE transaction_id = ?",
                (payment["transaction_id"],),
            ).fetchone()
            (recorded,) = con.execute(
                "SELECT COUNT(*) FROM transactions WHERE transaction_id >= ? AND event_time < ?",
                (self.first_id, second.strftime("%Y-%m-%d %H:%M:%S")),
            ).fetchone()
        with self.lock:
            self.got.append(payment)
            if mine != 1 or recorded < earlier:
                self.violations.append((payment["transaction_id"], mine, recorded, earlier))
        amount, tid = payment["amount"], payment["transaction_id"]
        decision = "decline" if amount >= 300 else "review" if amount >= 100 else "approve"
        body = json.dumps(
            {
                "transaction_id": tid,
                "decision": decision,
                "score": min(amount / 1000, 1.0),
                "model_version": "stand-in-1",
                "route": "canary" if tid % 10 == 0 else "champion",
                "explanation": {"amount": amount},
                "fallback": "features_timeout" if tid % 17 == 0 else None,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def live_run(world, live_world, tmp_path_factory):
    """The driver's run against the stand-in: (summary, seconds it took, stand-in, payments)."""
    project, db, _, (_, max_id, _, _) = world
    rate, seconds, seed = RATE, SECONDS, 7
    expected = live_payments(live_world, rate, seconds, seed, LiveSettings(attack_share=0.2))
    handler = type(
        "Handler",
        (StandIn,),
        {
            "db": db,
            "got": [],
            "violations": [],
            "first_id": max_id + 1,
            "expected": expected.assign(second=expected["event_time"].dt.floor("s")),
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/authorize"
    out = tmp_path_factory.mktemp("live")
    args = ["--authorize-url", url, "--rate", str(rate), "--seconds", str(seconds)]
    args += ["--clients", "4", "--seed", str(seed), "--attack-share", "0.2"]
    args += ["--conf-source", str(project / "conf")]
    args += ["--params", ",".join(f"{k}={v}" for k, v in SMALL.items())]
    args += ["--answers", str(out / "answers.jsonl"), "--summary-json", str(out / "summary.json")]
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("MONOREPO_ROOT", str(project.parent))
            env.setenv("ETL_SOURCE_DB_URL", f"sqlite:///{db}")
            tick = time.monotonic()
            summary = main(args)
            took = time.monotonic() - tick
    finally:
        server.shutdown()
        server.server_close()
    return summary, took, handler, expected, out


RATE, SECONDS = 100, 5


def test_the_driver_records_each_payment_before_it_asks(live_run):
    summary, took, handler, expected, out = live_run
    assert handler.violations == []  # recorded, and every earlier second too, before asked
    # it stops by itself: the live clock's seconds, then the answers still under way
    assert SECONDS <= summary["wall_seconds"] < SECONDS + 1
    assert took < SECONDS + 5  # + reading the conf and the world, and making the payments
    # exactly the generated payments were asked for, each once, as a gateway sends them
    got = pd.DataFrame(handler.got).sort_values("transaction_id", ignore_index=True)
    assert got["transaction_id"].tolist() == expected["transaction_id"].tolist()
    assert got["event_time"].tolist() == [
        t.isoformat(timespec="microseconds") for t in expected["event_time"]
    ]
    assert same_second_groups(got) >= 2  # concurrent payments of one card in one second
    answers = pd.read_json(out / "answers.jsonl", lines=True)
    assert sorted(answers["transaction_id"]) == expected["transaction_id"].tolist()


def test_the_summary_counts_the_answers(live_run):
    summary, _, _, expected, out = live_run
    n = len(expected)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["payments"] == summary["answered"] == n > 300
    assert summary["errors"] == 0
    assert sum(summary["decisions"].values()) == n
    assert summary["decisions"]["approve"] > 0
    fallbacks = int((expected["transaction_id"] % 17 == 0).sum())
    assert summary["fallbacks"] == {"features_timeout": fallbacks}
    assert summary["routes"]["canary"] == int((expected["transaction_id"] % 10 == 0).sum())
    assert summary["attack_payments"] == int(expected["attack"].sum()) > 0
    assert sum(summary["attack_decisions"].values()) == summary["attack_payments"]
    assert summary["latency_ms"]["max"] >= summary["latency_ms"]["p99"] > 0
    assert 0.8 * RATE < summary["achieved_rate"] <= 1.2 * RATE


def test_every_live_payment_is_in_the_source_once_and_the_batch_sees_it(world, live_run):
    project, db, _, (_, max_id, _, _) = world
    _, _, _, expected, _ = live_run
    with sqlite3.connect(db) as con:
        recorded = pd.read_sql(
            "SELECT * FROM transactions WHERE transaction_id > ? ORDER BY transaction_id",
            con,
            params=(max_id,),
        )
    assert recorded["transaction_id"].tolist() == expected["transaction_id"].tolist()
    assert (recorded["amount"].to_numpy() == expected["amount"].to_numpy()).all()
    assert (pd.to_datetime(recorded["event_time"]) == expected["event_time"]).all()

    # etl_instances publishes an instance for every live payment
    day = expected["event_time"].min().floor("D")
    assert expected["event_time"].max() < day + pd.Timedelta(days=1)
    window = {"window.start": day.date(), "window.end": (day + pd.Timedelta(days=1)).date()}
    kedro_run(project, "etl_instances", window)
    published = ExchangeParquetDataset(
        filepath=str(project.parent / "data/exchange/instances"), partition_by="event_time"
    ).load()
    live = published[published["transaction_id"] > max_id]
    assert sorted(live["transaction_id"]) == expected["transaction_id"].tolist()


def test_the_summary_counts_errors_and_fallbacks():
    answers = pd.DataFrame(
        {
            "transaction_id": [1, 2, 3, 4, 5],
            "attack": [False, True, True, False, False],
            "lag_ms": [0.1, 0.2, 0.3, 0.4, 50.0],
            "decision": ["approve", "decline", "review", "approve", None],
            "fallback": [None, None, "featurizer_timeout", "featurizer_timeout", None],
            "latency_ms": [1.0, 2.0, 3.0, 4.0, None],
            "error": [None, None, None, None, "TimeoutError: timed out"],
        }
    )
    summary = summarize(answers, wall_seconds=2.0)
    assert (summary["payments"], summary["answered"], summary["errors"]) == (5, 4, 1)
    assert summary["decisions"] == {"approve": 2, "review": 1, "decline": 1}
    assert summary["fallbacks"] == {"featurizer_timeout": 2}
    assert summary["errors_by_kind"] == {"TimeoutError: timed out": 1}
    assert summary["attack_decisions"] == {"approve": 0, "review": 1, "decline": 1}
    assert summary["latency_ms"]["max"] == 4.0
    assert summary["send_lag_ms"]["max"] == 50.0
    assert summary["achieved_rate"] == 2.5


def test_an_unreachable_service_is_an_error_not_a_crash(live_world):
    payment = next(live_payments(live_world, 10, 1, 0).itertuples())
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    authorizer = Authorizer(f"http://127.0.0.1:{port}/authorize", 0.5)
    record = _authorize(authorizer, payment, 0, 10, time.monotonic())
    assert record["error"].startswith("ConnectionRefusedError")
    assert "decision" not in record


def test_a_remote_service_is_refused():
    with pytest.raises(SystemExit, match="not on loopback"):
        main(["--authorize-url", "http://10.1.2.3:8000/authorize"])


def test_a_postgres_source_continues_and_records_live_payments(tmp_path):
    """The driver's source side on Postgres: the world's end, its parties, the inserts."""
    with throwaway_postgres("source_system") as server:
        url = f"{server}/source_system"
        project = isolated_app(APP, tmp_path)
        kedro_run(
            project, "simulate", SMALL, env=isolated_env(tmp_path, {"ETL_SOURCE_DB_URL": url})
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MONOREPO_ROOT", str(tmp_path))
            patch.setenv("ETL_SOURCE_DB_URL", url)
            source_url, params = load_conf(project / "conf", None, RUNTIME)
        writer = SourceWriter(source_engine(source_url))
        last, max_id, cards, merchants = writer.world_end()
        payments = live_payments(continue_world(params, last, max_id, cards, merchants), 50, 2, 3)
        writer.insert(payments.iloc[:40])
        writer.insert(payments.iloc[40:])
        with writer.engine.connect() as con:
            recorded = pd.read_sql(
                sqlalchemy.text(
                    "SELECT * FROM transactions WHERE transaction_id > :id ORDER BY transaction_id"
                ),
                con,
                params={"id": max_id},
            )
        assert writer.world_end()[:2] == (
            payments["event_time"].max(),
            payments["transaction_id"].max(),
        )
    assert recorded["transaction_id"].tolist() == payments["transaction_id"].tolist()
    assert (recorded["event_time"] == payments["event_time"]).all()
    assert (recorded["amount"].to_numpy() == payments["amount"].to_numpy()).all()
