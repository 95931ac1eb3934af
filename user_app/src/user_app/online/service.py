"""The decision service: FastAPI over the registered pipeline model.

Endpoints:

* ``POST /invocations`` - the MLflow scoring protocol (``dataframe_split`` or
  ``dataframe_records``), answering ``{"predictions": [{"transaction_id", "score"}]}`` like
  ``mlflow models serve``, so clients of one work with the other.
* ``POST /decisions`` - the same input; answers a decision per transaction with its score, the
  model version and route that answered, and the top contributing features (``?explain=false``
  to skip them).
* ``POST /authorize`` - one raw payment as a payment gateway knows it (a PaymentRequest JSON
  object); its features come from etl_app's featurization service (:mod:`.features`) within
  ``authorize.features_timeout_seconds``, then it is decided like ``/decisions``. The answer:
  decision, score, model version, route, explanation, and ``fallback``: null, or why the
  features could not be had in time, in which case the decision is the documented fallback
  (``review``: a person looks at it; no score, no model). The features it scored are published
  with the decision (``online_instances``, TransactionInstance contract).
* ``GET /ping``, ``GET /health``, ``GET /version``; ``POST /admin/reload`` (only from
  ``admin_hosts``: loopback unless :func:`create_app` is given others).

Every request is checked before it reaches the model: body size, JSON (NaN and infinities are
refused), shape, then the TransactionInstance contract (compiled for speed, errors from pandera).
A bad request gets a 4xx naming what is wrong; it can neither crash the service nor reach the
model. The contract is checked once per request: models and explanations take the checked rows.

Only reading the body runs on the event loop; parsing, checking and the model call run in a
thread pool (the model itself in its worker process, :mod:`.worker`), so a slow model call never
stalls ``/ping`` or other requests. A 503 says why: the model's worker failed, or too many
decisions wait to be published (:mod:`.sink`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from shared_runtime.enforce import ContractViolation
from shared_runtime.fast import FastContract
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.gateway_to_etl import PaymentRequest
import user_app
from user_app.client import FALLBACK_DECISION
from user_app.decisions import classify, log_record
from user_app.online.explain import Explainer
from user_app.online.features import FeatureClient, FeaturesUnavailable, PaymentRefused
from user_app.online.models import ServedModel
from user_app.online.routing import ModelRouter, Poller
from user_app.online.sink import DecisionSink, Scored, SinkFull, now
from user_app.online.worker import ModelCallError

logger = logging.getLogger(__name__)
CONTRACT = FastContract(TransactionInstance)
FORMATS = ("dataframe_split", "dataframe_records")
# what a payment gateway sends to POST /authorize
PAYMENT_CONTRACT = FastContract(PaymentRequest)
PAYMENT_FIELDS = tuple(PaymentRequest.to_schema().columns)
# hosts whose POST /admin/reload is accepted (create_app's ``admin_hosts``)
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_rows: int = 1_000
    explain_max_rows: int = 10


class BadRequest(Exception):
    def __init__(self, status: int, error: str, **details: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, **details}


def _refuse_constant(name: str) -> float:
    raise BadRequest(400, f"{name} is not a number JSON allows; send finite numbers only.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(400, f"{text} is out of the range of a finite float.")
    return value


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"Request body over {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"Request body over {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def read_json(body: bytes, what: str) -> Any:
    """The body's JSON (finite numbers only), or BadRequest; ``what`` says what to send."""
    if not body:
        raise BadRequest(400, f"Empty body: {what}.")
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(400, f"Body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(400, "JSON nested too deeply.") from None


def parse_frame(body: bytes, max_rows: int) -> pd.DataFrame:
    """The MLflow scoring protocol's JSON as a DataFrame, or BadRequest saying what is wrong."""
    payload = read_json(body, "send JSON with dataframe_split or dataframe_records")
    if not isinstance(payload, dict) or len(payload) != 1 or set(payload) - set(FORMATS):
        keys = list(payload)[:10] if isinstance(payload, dict) else type(payload).__name__
        raise BadRequest(
            400, f"Expected an object with one key, one of {list(FORMATS)}; got {keys}."
        )
    try:
        if "dataframe_split" in payload:
            split = payload["dataframe_split"]
            if not isinstance(split, dict) or not isinstance(split.get("data"), list):
                raise BadRequest(400, "dataframe_split needs 'columns' and a list 'data'.")
            frame = pd.DataFrame(split["data"], columns=split.get("columns"))
        else:
            records = payload["dataframe_records"]
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise BadRequest(400, "dataframe_records must be a list of objects.")
            frame = pd.DataFrame.from_records(records)
    except (ValueError, TypeError, AssertionError) as exc:
        raise BadRequest(400, f"Cannot read the rows as a table: {exc}") from None
    if frame.empty:
        raise BadRequest(400, "No rows to score.")
    if len(frame) > max_rows:
        raise BadRequest(413, f"{len(frame)} rows in one request; the limit is {max_rows}.")
    return frame


def validate(frame: pd.DataFrame, contract: FastContract = CONTRACT) -> pd.DataFrame:
    try:
        return contract.validate(frame)
    except ContractViolation as exc:
        failures = [
            {"column": column, "check": check, "rows": n, "examples": [str(e) for e in examples]}
            for column, check, n, examples in exc.failures
        ]
        raise BadRequest(422, str(exc), failures=failures) from None
    except Exception as exc:  # values pandera cannot even coerce or compare
        raise BadRequest(
            422, f"Input does not satisfy the {contract.model.__name__} contract: {exc}"
        ) from None


class DecisionService:
    """The request handling, independent of HTTP: parse, validate, route, score, decide, log.

    Its methods are synchronous and thread-safe: the HTTP handlers run them in a thread pool,
    so a model call never blocks the event loop (``/ping`` answers while one is in flight).
    The contract is checked exactly once per request, by ``contract`` (the served models take
    the rows as valid, and explanations score variants built to stay valid).
    """

    def __init__(
        self,
        router: ModelRouter,
        sink: DecisionSink,
        thresholds: tuple[float, float],
        explainer: Explainer | None,
        limits: Limits,
        contract: FastContract = CONTRACT,
        features: FeatureClient | None = None,
    ) -> None:
        self.router = router
        self.sink = sink
        self.thresholds = thresholds
        self.explainer = explainer
        self.limits = limits
        self.contract = contract
        self.features = features
        self._lock = threading.Lock()
        # POST /authorize: answers by the model, and fallbacks by reason
        self.authorizations: dict[str, Any] = {"scored": 0, "fallbacks": {}}

    def valid_rows(self, body: bytes) -> pd.DataFrame:
        return validate(parse_frame(body, self.limits.max_rows), self.contract)

    def score(
        self,
        model: ServedModel,
        route: str,
        rows: pd.DataFrame,
        features: pd.DataFrame | None = None,
    ) -> Scored:
        started = time.perf_counter()
        try:
            scores = model.predict_valid(rows)
        except ModelCallError as exc:
            raise BadRequest(503, str(exc), model_version=model.version) from None
        latency_ms = (time.perf_counter() - started) * 1000
        score = np.asarray(scores["score"], dtype=float)
        decided = classify(score, *self.thresholds)
        log = log_record(
            request_id=uuid.uuid4().hex,
            channel="online",
            route=route,
            model={
                "model_name": model.name,
                "model_version": model.version,
                "model_run_id": model.run_id,
            },
            scored_at=now(),
            decisions=decided,
            latency_ms=latency_ms,
        )
        ids = np.asarray(scores["transaction_id"], dtype=np.int64)
        row_ids = rows["transaction_id"].to_numpy()
        if np.array_equal(ids, row_ids):  # the pipeline model keeps the rows' order
            event_time = rows["event_time"].to_numpy()
        else:
            event_time = rows.set_index("transaction_id")["event_time"].reindex(ids).to_numpy()
        scored = Scored(log, ids, event_time, score, decided, features)
        self.sink.record(scored)
        return scored

    def shadow(self, rows: pd.DataFrame) -> None:
        model = self.router.shadow_model()
        if model is not None:
            try:
                self.score(model, "shadow", rows)
            except Exception:  # the shadow model must never affect the service
                logger.exception("Shadow scoring with version %s failed.", model.version)

    def answer(
        self, rows: pd.DataFrame, background: BackgroundTasks, publish_features: bool = False
    ) -> tuple[ServedModel, Scored]:
        """Score with the routed model; in shadow mode, the challenger after the response.
        With ``publish_features`` the rows are published with the decisions."""
        try:
            self.sink.admit()
        except SinkFull as exc:
            raise BadRequest(503, str(exc), retry_after_seconds=self.sink.flush_seconds) from None
        route, model = self.router.route(int(rows["transaction_id"].iloc[0]))
        scored = self.score(model, route, rows, rows if publish_features else None)
        if route == "primary":
            background.add_task(self.shadow, rows)
        return model, scored

    def invocations(self, body: bytes, background: BackgroundTasks) -> dict[str, Any]:
        _, scored = self.answer(self.valid_rows(body), background)
        return {
            "predictions": [
                {"transaction_id": int(i), "score": float(s)}
                for i, s in zip(scored.transaction_id, scored.score, strict=True)
            ]
        }

    def decisions(
        self, body: bytes, background: BackgroundTasks, explain: bool = True
    ) -> dict[str, Any]:
        rows = self.valid_rows(body)
        model, scored = self.answer(rows, background)
        explanations = self.explanations(model, rows, scored, explain)
        return {
            "model_name": model.name,
            "model_version": model.version,
            "route": scored.log["route"],
            "decisions": [
                {
                    "transaction_id": int(i),
                    "score": float(s),
                    "decision": str(d),
                    "explanation": e,
                }
                for i, s, d, e in zip(
                    scored.transaction_id, scored.score, scored.decision, explanations, strict=True
                )
            ],
        }

    def explanations(
        self, model: ServedModel, rows: pd.DataFrame, scored: Scored, explain: bool
    ) -> list[Any]:
        """Each scored row's top contributing features (None each when not asked or too many)."""
        if not (explain and self.explainer and len(rows) <= self.limits.explain_max_rows):
            return [None] * len(rows)
        ordered = rows.set_index("transaction_id").loc[scored.transaction_id].reset_index()
        try:
            return self.explainer.explain(model, ordered, scored.score)
        except ModelCallError as exc:
            raise BadRequest(503, str(exc), model_version=model.version) from None

    def authorize(
        self, body: bytes, background: BackgroundTasks, explain: bool = True
    ) -> dict[str, Any]:
        """One raw payment: its features from etl_app, then the decision (or the fallback)."""
        if self.features is None:
            raise BadRequest(
                404,
                "POST /authorize needs a featurization service (online.authorize.features_url).",
            )
        payment = parse_payment(body)
        try:
            features = self.features.features(payment)
        except PaymentRefused as exc:
            details = {k: v for k, v in exc.body.items() if k != "error"}
            raise BadRequest(422, str(exc), **details) from None
        except FeaturesUnavailable as exc:
            return self.fallback(payment, exc)
        if features["transaction_id"].tolist() != [payment["transaction_id"]]:
            return self.fallback(
                payment,
                FeaturesUnavailable("bad_answer", "the features are another payment's"),
            )
        try:  # checked when read, like every dataset that crosses an app boundary
            rows = self.contract.validate(features)
        except Exception as exc:  # etl_app answered rows its own contract refuses: its bug
            return self.fallback(payment, FeaturesUnavailable("bad_answer", str(exc)))
        model, scored = self.answer(rows, background, publish_features=True)
        with self._lock:
            self.authorizations["scored"] += 1
        return {
            "transaction_id": payment["transaction_id"],
            "decision": str(scored.decision[0]),
            "score": float(scored.score[0]),
            "model_name": model.name,
            "model_version": model.version,
            "route": scored.log["route"],
            "explanation": self.explanations(model, rows, scored, explain)[0],
            "fallback": None,
        }

    def fallback(self, payment: dict[str, Any], problem: FeaturesUnavailable) -> dict[str, Any]:
        """The documented answer without features: ``review`` (a person decides), no score."""
        with self._lock:
            fallbacks = self.authorizations["fallbacks"]
            fallbacks[problem.reason] = fallbacks.get(problem.reason, 0) + 1
        logger.warning(
            "Payment %s answered with the fallback (%s): %s",
            payment["transaction_id"],
            problem.reason,
            problem.detail,
        )
        return {
            "transaction_id": payment["transaction_id"],
            "decision": FALLBACK_DECISION,
            "score": None,
            "model_name": self.router.model_name,
            "model_version": None,
            "route": "fallback",
            "explanation": None,
            "fallback": problem.reason,
        }


def parse_payment(body: bytes) -> dict[str, Any]:
    """A PaymentRequest JSON object (one payment), checked by its contract, or BadRequest
    saying what is wrong (so a bad payment is refused even while etl_app is unreachable).

    ``event_time`` is ISO 8601 text with any offset (none: UTC). The payment is passed on to
    the featurization service as sent."""
    payment = read_json(body, "send one payment as a JSON object")
    if not isinstance(payment, dict):
        kind = type(payment).__name__
        raise BadRequest(400, f"Expected one payment as a JSON object; got {kind}.")
    missing = [c for c in PAYMENT_FIELDS if c not in payment]
    extra = sorted(set(payment) - set(PAYMENT_FIELDS))[:10]
    if missing or extra:
        raise BadRequest(
            422,
            f"A payment has exactly the fields {list(PAYMENT_FIELDS)}.",
            missing=missing,
            unexpected=extra,
        )
    tid = payment["transaction_id"]
    if not isinstance(tid, int) or isinstance(tid, bool):
        raise BadRequest(422, "transaction_id must be an integer.")
    row = pd.DataFrame([payment])
    try:
        times = pd.to_datetime(row["event_time"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise BadRequest(422, f"event_time is not an ISO 8601 time: {exc}") from None
    validate(row.assign(event_time=times.dt.tz_localize(None)), PAYMENT_CONTRACT)
    return payment


def create_app(
    service: DecisionService, poller: Poller | None = None, admin_hosts: frozenset[str] = LOOPBACK
) -> FastAPI:
    """The HTTP app; ``admin_hosts`` are the client addresses allowed to ``POST /admin/reload``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.sink.start()
        if poller:
            poller.start()
        yield
        if poller:
            poller.stop()
        service.sink.close()
        service.router.close()

    app = FastAPI(title="fraud decision service", version=user_app.__version__, lifespan=lifespan)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.get("/ping")
    async def ping() -> Response:
        return Response(status_code=200)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        # champion / challenger: the versions the registry's aliases point to (as of the last
        # alias poll); serving: the versions loaded here (the challenger is loaded only for
        # canary or shadow traffic)
        return {
            "status": "ok",
            "model_name": service.router.model_name,
            **service.router.aliases,
            # why the registry did not answer at the last alias poll (aliases as last seen)
            "registry_problem": service.router.registry_problem,
            "serving": service.router.versions(),
            "worker_processes": service.router.processes(),
            "canary_fraction": service.router.policy.canary_fraction,
            "shadow": service.router.policy.shadow,
            "pending_log_rows": service.sink.pending(),
            "authorize": service.authorizations if service.features else None,
            "sink": service.sink.health(),
        }

    @app.get("/version")
    async def version() -> dict[str, Any]:
        champion = service.router.champion
        return {
            "user_app_version": user_app.__version__,
            "model_name": champion.name,
            "model_version": champion.version,
            "model_run_id": champion.run_id,
            **{f"{k}_version": v for k, v in service.router.versions().items()},
        }

    def json_response(body: dict[str, Any]) -> Response:
        return Response(json.dumps(body), media_type="application/json")

    @app.post("/invocations")
    async def invocations(request: Request, background: BackgroundTasks) -> Response:
        body = await read_body(request, service.limits.max_body_bytes)
        return json_response(await run_in_threadpool(service.invocations, body, background))

    @app.post("/decisions")
    async def decisions(
        request: Request, background: BackgroundTasks, explain: bool = True
    ) -> Response:
        body = await read_body(request, service.limits.max_body_bytes)
        answer = await run_in_threadpool(service.decisions, body, background, explain)
        return json_response(answer)

    @app.post("/authorize")
    async def authorize(
        request: Request, background: BackgroundTasks, explain: bool = True
    ) -> Response:
        body = await read_body(request, service.limits.max_body_bytes)
        answer = await run_in_threadpool(service.authorize, body, background, explain)
        return json_response(answer)

    @app.post("/admin/reload")
    async def reload(request: Request) -> dict[str, Any]:
        client = request.client.host if request.client else ""
        if client not in admin_hosts:
            raise BadRequest(403, "Reload is only accepted from the service's own host.")
        return await run_in_threadpool(service.router.refresh, True)

    return app
