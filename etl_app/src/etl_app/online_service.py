"""The featurization service: raw payments in, TransactionInstance rows out, over HTTP.

``python -m etl_app.online_service`` (``make features-serve``) serves :class:`OnlineFeaturizer`
(the batch pipeline's own screening and feature SQL over the source system's history) to
user_app's ``POST /authorize``. Settings: ``online`` in ``conf/base/parameters_online.yml``; the
source database is etl_app's ``source_db`` credential (``ETL_SOURCE_DB_URL``), opened read-only
when it is a SQLite file.

Endpoints:

* ``POST /features`` - ``{"payments": [PaymentRequest row, ...]}`` (``event_time`` ISO 8601 text
  with any offset; without one it is UTC) -> ``{"instances": [TransactionInstance row, ...]}`` in
  request order. ``event_time`` is naive-UTC ISO 8601 text with microseconds, a missing value is
  ``null``, floats are written as Python's ``repr`` (they read back to the same double), bools
  are JSON bools. ``pd.DataFrame.from_records(instances)`` with ``event_time`` parsed
  (``pd.to_datetime(..., format="ISO8601")``) passes TransactionInstance and equals the batch.
* ``GET /ping``, ``GET /health`` (source database URL without its password, versions).

Answers other than 200 carry ``{"error": ...}`` and say why:

* 400 the body is not JSON (NaN and infinities are refused), or not ``{"payments": [objects]}``;
  413 over ``max_body_bytes`` or ``max_rows``;
* 422 with ``failures`` [{column, check, rows, examples}]: the payments break the PaymentRequest
  contract; 422 with ``rejected`` [{transaction_id, failed_checks}]: the batch's source screening
  refuses a payment (an implausible event time, say);
* 503: the source database cannot be read (its error named);
* 500 with the error: anything else (logged with its traceback).

The work of a request (parsing, checks, database reads, features, encoding) runs in a thread
pool, never on the event loop. One log line per refused request; served ones are not logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sqlite3
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

import etl_app
from etl_app.online import REQUEST_COLUMNS, OnlineFeaturizer, RejectedPayment
from etl_app.pipelines.source import utc_naive
from shared_runtime.enforce import ContractViolation
from shared_runtime.fast import FastContract
from shared_schemas.gateway_to_etl import PaymentRequest
from shared_schemas.versioning import CONTRACT_VERSION

logger = logging.getLogger(__name__)
REQUEST_CONTRACT = FastContract(PaymentRequest)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_rows: int = 1_000


class Refused(Exception):
    """A request answered with ``status`` and ``{"error": ..., **details}``."""

    def __init__(self, status: int, error: str, **details: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **details}


def _refuse_constant(name: str) -> float:
    raise Refused(400, f"{name} is not a number JSON allows; send finite numbers only.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Refused(400, f"{text} is out of the range of a finite float.")
    return value


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"Request body over {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"Request body over {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_payments(body: bytes, max_rows: int) -> pd.DataFrame:
    """``{"payments": [{...}, ...]}`` as a DataFrame (event_time as naive UTC), or Refused."""
    if not body:
        raise Refused(400, 'Empty body: send JSON {"payments": [...]}.')
    try:
        payload = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(400, f"Body is not valid JSON: {exc}") from None
    except RecursionError:
        raise Refused(400, "JSON nested too deeply.") from None
    if not isinstance(payload, dict) or set(payload) != {"payments"}:
        keys = list(payload)[:10] if isinstance(payload, dict) else type(payload).__name__
        raise Refused(400, f'Expected an object with the one key "payments"; got {keys}.')
    records = payload["payments"]
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise Refused(400, '"payments" must be a list of objects.')
    if not records:
        raise Refused(400, "No payments to featurize.")
    if len(records) > max_rows:
        raise Refused(413, f"{len(records)} payments in one request; the limit is {max_rows}.")
    try:
        frame = pd.DataFrame.from_records(records)
    except (ValueError, TypeError) as exc:
        raise Refused(400, f"Cannot read the payments as a table: {exc}") from None
    if "event_time" in frame:  # any offset -> naive UTC; text that does not parse stays, named
        frame["event_time"] = utc_naive(frame["event_time"])
    return frame


def check_payments(frame: pd.DataFrame, contract: FastContract = REQUEST_CONTRACT) -> pd.DataFrame:
    try:
        return contract.validate(frame)
    except ContractViolation as exc:
        failures = [
            {"column": column, "check": check, "rows": n, "examples": [str(e) for e in examples]}
            for column, check, n, examples in exc.failures
        ]
        raise Refused(422, str(exc), failures=failures) from None
    except Exception as exc:  # values pandera cannot even coerce or compare
        raise Refused(422, f"Input does not satisfy the PaymentRequest contract: {exc}") from None


def _time_text(values: pd.Series) -> list[str | None]:
    """Naive-UTC ISO 8601 with microseconds (the source's precision), null for NaT."""
    return [None if pd.isna(t) else t.strftime("%Y-%m-%dT%H:%M:%S.%f") for t in values]


def encode_instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """TransactionInstance rows as JSON-ready records (see the module's doc for the encoding)."""
    columns: dict[str, list] = {}
    for name in frame.columns.tolist():
        series = frame[name]
        if series.dtype.kind == "M":
            columns[name] = _time_text(series)
        elif series.dtype.kind == "f":
            values = series.to_numpy()
            columns[name] = [None if math.isnan(v) else v for v in values.tolist()]  # NaN: null
        else:  # ints, bools, strings: .tolist() gives Python's own types
            columns[name] = [None if v is None or v is pd.NA else v for v in series.tolist()]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def decode_instances(instances: list[dict[str, Any]]) -> pd.DataFrame:
    """The documented decoding of ``/features``' answer (before the TransactionInstance check)."""
    frame = pd.DataFrame.from_records(instances)
    frame["event_time"] = pd.to_datetime(frame["event_time"], format="ISO8601")
    return frame


def _rejections(rejected: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for raw, checks in zip(rejected["transaction_id"], rejected["failed_checks"], strict=True):
        try:
            tid: int | str | None = int(raw)
        except (TypeError, ValueError):
            tid = None if pd.isna(raw) else str(raw)
        out.append({"transaction_id": tid, "failed_checks": str(checks)})
    return out


def readonly_engine_args(url: str) -> dict[str, Any]:
    """A SQLite source file opened read-only (never created when missing); others as given."""
    parsed = sqlalchemy.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return {}
    path = Path(parsed.database).resolve().as_posix()

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    return {"creator": connect}


def source_indexes(catalog: Mapping[str, Any]) -> dict[str, list[list[str]]]:
    """table -> the column lists the catalog's ``source_*`` tables are saved indexed on."""
    wanted: dict[str, list[list[str]]] = {}
    for entry in catalog.values():
        if isinstance(entry, Mapping) and entry.get("indexes"):
            wanted.setdefault(entry["table_name"], []).extend(entry["indexes"].values())
    return wanted


def missing_indexes(engine: sqlalchemy.Engine, wanted: Mapping[str, list[list[str]]]) -> list[str]:
    """``table(columns)`` of each wanted index the source database lacks (an index whose leading
    columns are these serves too); every lookup without one scans its table."""
    inspector = sqlalchemy.inspect(engine)
    missing = []
    for table, column_lists in wanted.items():
        have = [index["column_names"] for index in inspector.get_indexes(table)]
        for columns in column_lists:
            if not any(list(index[: len(columns)]) == list(columns) for index in have):
                missing.append(f"{table}({', '.join(columns)})")
    return missing


class FeatureService:
    """The request handling, independent of HTTP; synchronous and thread-safe."""

    def __init__(
        self, featurizer: OnlineFeaturizer, limits: Limits, missing_indexes: list[str] | None = None
    ) -> None:
        self.featurizer = featurizer
        self.limits = limits
        self.missing_indexes = list(missing_indexes or [])

    @property
    def source_url(self) -> str:
        return self.featurizer.engine.url.render_as_string(hide_password=True)

    def features(self, body: bytes) -> dict[str, Any]:
        payments = check_payments(parse_payments(body, self.limits.max_rows))
        try:
            instances = self.featurizer.featurize(payments[REQUEST_COLUMNS])
        except RejectedPayment as exc:
            raise Refused(422, str(exc), rejected=_rejections(exc.rejected)) from None
        except sqlalchemy.exc.SQLAlchemyError as exc:
            cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise Refused(
                503, f"The source database {self.source_url} cannot be read: {cause}"
            ) from None
        return {"instances": encode_instances(instances)}

    def source_problem(self) -> str | None:
        try:
            with self.featurizer.engine.connect() as con:
                con.execute(sqlalchemy.text("SELECT 1 FROM transactions LIMIT 1")).fetchall()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            return str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return None


def create_app(service: FeatureService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.featurizer.engine.dispose()

    app = FastAPI(title="featurization service", version=etl_app.__version__, lifespan=lifespan)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        logger.warning(
            "%s %s refused (%d): %s",
            request.method,
            request.url.path,
            exc.status,
            exc.body["error"].splitlines()[0][:300],
        )
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": f"{type(exc).__name__}: {exc}"[:2000]}, status_code=500)

    @app.get("/ping")
    async def ping() -> Response:
        return Response(status_code=200)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        problem = await run_in_threadpool(service.source_problem)
        return {
            "status": "ok" if problem is None else "degraded",
            "source_db": service.source_url,
            "source_problem": problem,
            "etl_app_version": etl_app.__version__,
            "contract_version": CONTRACT_VERSION,
            "max_rows": service.limits.max_rows,
            "missing_indexes": service.missing_indexes,
        }

    @app.post("/features")
    async def features(request: Request) -> Response:
        body = await read_body(request, service.limits.max_body_bytes)
        answer = await run_in_threadpool(service.features, body)
        return Response(json.dumps(answer), media_type="application/json")

    return app


def build(conf_source: str | Path, env: str | None = None) -> tuple[FastAPI, dict[str, Any]]:
    """The app and its ``online`` parameters, from an etl_app conf folder."""
    from etl_app.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS  # noqa: PLC0415

    loader = CONFIG_LOADER_CLASS(str(conf_source), env=env, **CONFIG_LOADER_ARGS)
    params = loader["parameters"]
    online: Mapping[str, Any] = params["online"]
    url = loader["credentials"]["source_db"]["con"]
    featurizer = OnlineFeaturizer(url, params["etl_instances"], readonly_engine_args(url))
    # the batch nodes log a line per call (per run in batch): per request here, where only
    # refused requests are logged
    logging.getLogger("etl_app.pipelines.etl_instances.nodes").setLevel(logging.WARNING)
    try:
        missing = missing_indexes(featurizer.engine, source_indexes(loader["catalog"]))
    except sqlalchemy.exc.SQLAlchemyError as exc:  # served anyway: requests answer 503 meanwhile
        logger.warning("The source database cannot be read yet: %s", exc)
        missing = []
    featurizer.engine.dispose()  # requests open their own connections
    if missing:
        logger.warning(
            "The source database lacks the indexes of the lookups: %s. Every request scans these "
            "tables (re-run the simulate pipeline, or CREATE INDEX as etl_app's catalog lists).",
            "; ".join(missing),
        )
    service = FeatureService(featurizer, Limits(**online["limits"]), missing)
    return create_app(service), dict(online)


def main(argv: list[str] | None = None) -> None:
    import uvicorn  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog="python -m etl_app.online_service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", help="bind address (default from parameters: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default from parameters: 8100)")
    parser.add_argument("--conf-source", default="conf", help="etl_app's conf folder")
    parser.add_argument("--env", default=None, help="Kedro environment (default local)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    app, online = build(args.conf_source, args.env)
    host = args.host or online["host"]
    port = args.port or online["port"]
    logger.warning("Featurization service on http://%s:%s", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
