"""Live mode of the source system: payments in real time, each recorded, then authorized.

``python -m etl_app.live`` continues the simulated world of the source database
(:mod:`etl_app.pipelines.simulate.live` makes the payments) for a bounded time, at a chosen rate
with attack bursts, and acts as the payment gateway: for each payment it asks ``POST
/authorize`` (one ``PaymentRequest`` JSON object) and records the answer. Then it prints a
summary and stops by itself.

Usage (from ``etl_app/``, where the default source database ``data/01_raw/source_system.db``
lives; ``ETL_SOURCE_DB_URL`` points elsewhere, as for every etl_app run)::

    python -m etl_app.live --authorize-url http://127.0.0.1:8000/authorize \\
        [--rate 100] [--seconds 30] [--clients 4] [--seed 0] [--timeout 2] \\
        [--attack-share 0.05] [--conf-source conf] [--env ENV] \\
        [--params simulate.n_customers=500,simulate.days=60] \\
        [--answers data/08_reporting/live_answers.jsonl] [--summary-json PATH] [--allow-remote]

The request body is ``{transaction_id, card_id, customer_id, merchant_id, event_time, amount,
merchant_category, merchant_country}``, ``event_time`` in ISO 8601 without an offset (UTC, with
microseconds, as the source stores it); a 200 answer is read for ``decision``, ``score``,
``route``, ``model_version`` and ``fallback``. Anything else (another status, a timeout, a
refused connection) is recorded as an error with its reason.

``--params`` are the simulate parameters the source was simulated with, as given to ``kedro
run`` (the driver rebuilds the world's parties from them and refuses a source database that
holds other ones). The URL must be on loopback unless ``--allow-remote``. Every answer (decision,
score, route, model version, fallback, latency, or the error) goes to ``--answers`` (JSON lines),
with ``lag_ms`` (how late the request left against the live clock), and the summary is computed
from that file: payments sent and answered, decisions, fallbacks by
reason, errors, latency percentiles, achieved rate, and how the attack-burst payments were
decided. ``--summary-json`` writes it as JSON too.

Why the order of things matters. A payment's features are computed from what the source system
knew strictly before it (every window frame ends at the payment's whole second, exclusive: see
:mod:`etl_app.online`), and the batch pipeline computes them the same way from the same table.
Online features equal batch ones only if, whenever a payment is featurized, *every* payment of an
earlier second is already in the source database. So the driver, on one thread, takes the
payments in event-time order and, for those that are due, FIRST inserts them into
``transactions`` and commits, THEN hands each to the pool of ``--clients`` threads that call
``/authorize``. Requests run concurrently and may finish in any order, but none is sent before
its payment and all earlier ones are committed. Payments of the same second as the one being
featurized (or later ones already committed) are excluded by the frames, so committing ahead
does no harm.

A SQLite source is switched to write-ahead logging (a property of the file, harmless to every
other reader), so the featurization service reading histories never waits for a live insert.

Bounded: payments are produced for ``--seconds`` of the live clock; a request not started by
``--seconds + --timeout`` (the service is too slow to keep up) is not sent and counts as an error
(``not sent: run over time``); each request has ``--timeout``. The payment stays recorded in the
source: it happened, whether or not it was authorized.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import sqlalchemy
import yaml

from etl_app.pipelines.simulate.live import LiveSettings, continue_world, live_payments

logger = logging.getLogger("etl_app.live")  # also when run as __main__

DECISIONS = ("approve", "review", "decline")
PROGRESS_SECONDS = 5  # a progress line this often (live-clock seconds)


def is_loopback(url: str) -> bool:
    """Whether every address ``url``'s host resolves to is a loopback address."""
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def parse_params(text: str | None) -> dict[str, Any]:
    """``a.b=1,c=x`` (as ``kedro run --params``) as nested runtime parameters."""
    params: dict[str, Any] = {}
    for item in filter(None, (text or "").split(",")):
        key, _, value = item.partition("=")
        *parents, leaf = key.strip().split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return params


def load_conf(
    conf_source: str | Path, env: str | None, runtime_params: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """(source database URL, simulate parameters) from an etl_app conf folder."""
    from etl_app.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS  # noqa: PLC0415

    loader = CONFIG_LOADER_CLASS(
        str(conf_source), env=env, runtime_params=dict(runtime_params), **CONFIG_LOADER_ARGS
    )
    return loader["credentials"]["source_db"]["con"], dict(loader["parameters"]["simulate"])


def source_engine(url: str) -> sqlalchemy.Engine:
    """The source database; a SQLite file is switched to write-ahead logging, so that readers
    (the featurization service, reading each payment's history) never wait for a live insert,
    and the driver's commits are not flushed to disk one by one (a simulated source)."""
    engine = sqlalchemy.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sqlalchemy.event.listens_for(engine, "connect")
        def _fast_commits(dbapi_connection, _record) -> None:
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

        with engine.connect() as con:
            mode = con.exec_driver_sql("PRAGMA journal_mode=WAL").scalar()
        logger.info("SQLite source in %s journal mode", mode)
    return engine


class SourceWriter:
    """Records payments in the source system's ``transactions`` table (committed per batch)."""

    def __init__(self, engine: sqlalchemy.Engine):
        self.engine = engine
        self.table = sqlalchemy.Table("transactions", sqlalchemy.MetaData(), autoload_with=engine)

    def world_end(self) -> tuple[pd.Timestamp, int, pd.DataFrame, pd.DataFrame]:
        """(last event time, largest transaction id, cards, merchants) of the source."""
        with self.engine.connect() as con:
            last, max_id = con.execute(
                sqlalchemy.text("SELECT MAX(event_time), MAX(transaction_id) FROM transactions")
            ).one()
            cards = pd.read_sql(
                sqlalchemy.text("SELECT card_id, customer_id FROM cards ORDER BY card_id"), con
            )
            merchants = pd.read_sql(
                sqlalchemy.text(
                    "SELECT merchant_id, category, country FROM merchants ORDER BY merchant_id"
                ),
                con,
            )
        if last is None:
            raise ValueError("the source database holds no payment: run `kedro run -p simulate`")
        return pd.Timestamp(last), int(max_id), cards, merchants

    def insert(self, payments: pd.DataFrame) -> None:
        rows = [
            {
                "transaction_id": int(p.transaction_id),
                "card_id": int(p.card_id),
                "merchant_id": int(p.merchant_id),
                "amount": float(p.amount),
                "event_time": p.event_time.to_pydatetime(),
            }
            for p in payments.itertuples()
        ]
        with self.engine.begin() as con:
            con.execute(self.table.insert(), rows)


class Authorizer:
    """POSTs payments to ``/authorize`` over one keep-alive connection per thread."""

    def __init__(self, url: str, timeout: float):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path or "/"
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
        return con

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            con = self._connection()
            reused = con.sock is not None
            try:
                con.request("POST", self.path, body, {"Content-Type": "application/json"})
                response = con.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                con.close()
                self._local.con = None
                if not reused or attempt == 2:  # a fresh connection failed: a real error
                    raise
            except Exception:
                con.close()
                self._local.con = None
                raise
        raise AssertionError("unreachable")


def _request_body(payment: Any) -> bytes:
    return json.dumps(
        {
            "transaction_id": int(payment.transaction_id),
            "card_id": int(payment.card_id),
            "customer_id": int(payment.customer_id),
            "merchant_id": int(payment.merchant_id),
            "event_time": payment.event_time.isoformat(timespec="microseconds"),
            "amount": float(payment.amount),
            "merchant_category": str(payment.merchant_category),
            "merchant_country": str(payment.merchant_country),
        }
    ).encode()


def _authorize(
    authorizer: Authorizer, payment: Any, due: float, give_up: float, start: float
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "transaction_id": int(payment.transaction_id),
        "card_id": int(payment.card_id),
        "event_time": payment.event_time.isoformat(timespec="microseconds"),
        "attack": bool(payment.attack),
    }
    sent = time.monotonic()
    record["lag_ms"] = round((sent - start - due) * 1000, 3)  # behind the live clock
    if sent - start > give_up:
        return {**record, "error": "not sent: run over time"}
    try:
        status, body = authorizer.post(_request_body(payment))
    except (OSError, http.client.HTTPException) as error:
        return {**record, "error": f"{type(error).__name__}: {error}"}
    record["latency_ms"] = round((time.monotonic() - sent) * 1000, 3)
    if status != 200:
        return {**record, "error": f"HTTP {status}: {body[:200].decode(errors='replace')}"}
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return {**record, "error": f"not a JSON object: {body[:200].decode(errors='replace')}"}
    return {
        **record,
        **{k: answer.get(k) for k in ("decision", "score", "route", "model_version", "fallback")},
    }


def run(
    payments: pd.DataFrame,
    writer: SourceWriter,
    authorizer: Authorizer,
    clients: int,
    seconds: float,
    answers: Path,
) -> float:
    """Send ``payments`` on the live clock (record each, then authorize it); return the wall
    seconds the run took. Answers go to ``answers`` (JSON lines), one per payment."""
    answers.parent.mkdir(parents=True, exist_ok=True)
    offsets = payments["offset"].to_numpy()
    give_up = seconds + authorizer.timeout
    lock = threading.Lock()
    start = time.monotonic()
    with answers.open("w") as out, ThreadPoolExecutor(clients, "authorize") as pool:

        def record(future) -> None:  # each answer as it comes (a run cut short keeps them)
            line = json.dumps(future.result()) + "\n"
            with lock:
                out.write(line)

        i, progress_at = 0, PROGRESS_SECONDS
        while i < len(payments):
            wait = start + offsets[i] - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            # every payment due by now, in event-time order: committed, then requested
            j = max(i + 1, int(np.searchsorted(offsets, time.monotonic() - start, side="right")))
            due = payments.iloc[i:j]
            writer.insert(due)
            for payment in due.itertuples():
                future = pool.submit(
                    _authorize, authorizer, payment, payment.offset, give_up, start
                )
                future.add_done_callback(record)
            i = j
            if offsets[i - 1] >= progress_at:
                logger.info("%.0f s: %d payments recorded and sent", offsets[i - 1], i)
                progress_at += PROGRESS_SECONDS
        pool.shutdown(wait=True)
    return time.monotonic() - start


def summarize(answers: pd.DataFrame, wall_seconds: float) -> dict[str, Any]:
    """The run's figures, from its answers file."""
    for column in ("decision", "fallback", "error", "latency_ms", "route", "model_version"):
        if column not in answers:
            answers[column] = None
    ok = answers["error"].isna()
    answered = answers[ok]
    latency = answered["latency_ms"].astype(float).to_numpy()
    pct = (
        dict(
            zip(
                ("p50", "p95", "p99"),
                np.percentile(latency, [50, 95, 99]).round(2).tolist(),
                strict=True,
            )
        )
        if len(latency)
        else {}
    )
    attacks = answered[answered["attack"].astype(bool)]
    lag = answers["lag_ms"].astype(float).to_numpy()

    def counts(frame: pd.DataFrame, column: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in frame[column].dropna().value_counts().items()}

    return {
        "payments": len(answers),
        "answered": int(ok.sum()),
        "errors": int((~ok).sum()),
        "errors_by_kind": counts(answers.assign(error=answers["error"].str[:60]), "error"),
        "decisions": {d: int((answered["decision"] == d).sum()) for d in DECISIONS}
        | {k: v for k, v in counts(answered, "decision").items() if k not in DECISIONS},
        "fallbacks": counts(answered, "fallback"),
        "routes": counts(answered, "route"),
        "model_versions": counts(answered, "model_version"),
        "latency_ms": pct | {"max": round(float(latency.max()), 2) if len(latency) else None},
        # how late requests left against the live clock (the pool not keeping up)
        "send_lag_ms": {
            "p99": round(float(np.percentile(lag, 99)), 2) if len(lag) else None,
            "max": round(float(lag.max()), 2) if len(lag) else None,
        },
        "wall_seconds": round(wall_seconds, 2),
        "achieved_rate": round(len(answers) / wall_seconds, 1) if wall_seconds else None,
        "attack_payments": int(answers["attack"].astype(bool).sum()),
        "attack_decisions": {d: int((attacks["decision"] == d).sum()) for d in DECISIONS},
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    lat = summary["latency_ms"]
    lines = [
        f"live run: {summary['payments']} payments in {summary['wall_seconds']} s "
        f"({summary['achieved_rate']}/s), {summary['answered']} answered, "
        f"{summary['errors']} errors",
        f"decisions: {summary['decisions']}",
        f"fallbacks: {summary['fallbacks'] or 'none'}",
        f"routes: {summary['routes']}  model versions: {summary['model_versions']}",
        "latency ms: "
        + (", ".join(f"{k} {v}" for k, v in lat.items()) if lat.get("max") is not None else "-"),
        f"attack-burst payments: {summary['attack_payments']}, decided "
        f"{summary['attack_decisions']}",
        f"sent behind the live clock: p99 {summary['send_lag_ms']['p99']} ms, "
        f"max {summary['send_lag_ms']['max']} ms",
    ]
    if summary["errors"]:
        lines.append(f"errors: {summary['errors_by_kind']}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m etl_app.live",
        description="The source system live: payments in real time, recorded, then authorized.",
    )
    parser.add_argument("--authorize-url", default="http://127.0.0.1:8000/authorize")
    parser.add_argument("--rate", type=float, default=100.0, help="payments per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the run lasts")
    parser.add_argument("--clients", type=int, default=4, help="concurrent requests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=2.0, help="per request, seconds")
    parser.add_argument("--attack-share", type=float, default=LiveSettings.attack_share)
    parser.add_argument("--conf-source", default="conf")
    parser.add_argument("--env", default=None)
    parser.add_argument("--params", default=None, help="simulate parameters, as kedro --params")
    parser.add_argument("--answers", default="data/08_reporting/live_answers.jsonl")
    parser.add_argument("--summary-json", default=None)
    parser.add_argument("--allow-remote", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if urlsplit(args.authorize_url).scheme != "http":
        raise SystemExit(f"{args.authorize_url}: only http:// URLs are supported")
    if args.clients < 1 or not 0 <= args.attack_share < 1:
        raise SystemExit("--clients must be >= 1 and --attack-share within [0, 1)")
    if not args.allow_remote and not is_loopback(args.authorize_url):
        raise SystemExit(
            f"{args.authorize_url} is not on loopback: live payments go to a local service "
            "only (pass --allow-remote to send them elsewhere)"
        )
    source_url, params = load_conf(args.conf_source, args.env, parse_params(args.params))
    writer = SourceWriter(source_engine(source_url))
    last, max_id, cards, merchants = writer.world_end()
    world = continue_world(params, last, max_id, cards, merchants)
    payments = live_payments(
        world, args.rate, args.seconds, args.seed, LiveSettings(attack_share=args.attack_share)
    )
    answers = Path(args.answers)
    wall = run(
        payments,
        writer,
        Authorizer(args.authorize_url, args.timeout),
        args.clients,
        args.seconds,
        answers,
    )
    summary = summarize(pd.read_json(answers, lines=True, dtype=False), wall)
    sys.stdout.write(format_summary(summary) + "\n")
    if args.summary_json:
        Path(args.summary_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary_json).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
