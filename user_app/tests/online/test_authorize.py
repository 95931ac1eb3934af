"""POST /authorize: a raw payment in, its features from the featurization service, a decision out.

user_app cannot run etl_app (apps never import each other; the cross-app test
``tests/test_live.py`` runs both for real). Here the featurization service is a small real HTTP
server on loopback that speaks its API (``POST /features``) and answers valid TransactionInstance
rows, or the faults this service must survive: slow answers, errors, refusals, no server at all.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pandas as pd
import pytest
import requests
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.examples import transaction_instance_example

from ..conftest import Service, free_port

TIMEOUT = 0.3
SLOW = 9_000_000  # transaction ids from here: the featurization service answers too late
BROKEN = 8_000_000  # ... answers 500
REFUSED = 7_000_000  # ... refuses the payment (422), as screening would


def payment(transaction_id: int, amount: float = 812.0) -> dict:
    return {
        "transaction_id": transaction_id,
        "card_id": 42,
        "customer_id": 35,
        "merchant_id": 977,
        "event_time": "2025-06-03T03:12:55.250000",
        "amount": amount,
        "merchant_category": "electronics",
        "merchant_country": "NG",
    }


def instance(body: dict) -> dict:
    """The example's suspicious row, as the featurization service would answer for ``body``."""
    row = transaction_instance_example().iloc[1].to_dict()
    row.update({k: body[k] for k in ("transaction_id", "amount")})
    row["event_time"] = pd.Timestamp(body["event_time"]).isoformat()
    return row


class Featurizer:
    """A featurization service on loopback (uvicorn in a thread), faults chosen by id."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict] = []
        app = FastAPI()

        @app.post("/features")
        async def features(request: Request) -> JSONResponse:
            body = json.loads(await request.body())
            self.requests.append(body)
            tid = body["payments"][0]["transaction_id"]
            if tid >= SLOW:
                await asyncio.sleep(3 * TIMEOUT)
            elif tid >= BROKEN:
                return JSONResponse({"error": "source database unreachable"}, status_code=503)
            elif tid >= REFUSED:
                rejected = [{"transaction_id": tid, "failed_checks": "amount_positive"}]
                return JSONResponse(
                    {"error": "payment(s) rejected by screening", "rejected": rejected},
                    status_code=422,
                )
            return JSONResponse({"instances": [instance(p) for p in body["payments"]]})

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def authorizing(world):
    root, project, _ = world
    featurizer = Featurizer()
    svc = Service(
        root,
        project,
        {
            "online.features_url": featurizer.url,
            "online.features_timeout_seconds": TIMEOUT,
            "online.flush_seconds": 0.5,
            "online.roll_seconds": 0.5,
        },
    )
    yield svc, featurizer
    featurizer.stop()
    svc.stop()


def test_a_raw_payment_is_featurized_scored_decided_and_its_features_published(authorizing):
    svc, featurizer = authorizing
    tid = 500_000  # no canary here: the champion answers
    answer = svc.post("/authorize", json=payment(tid))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # the champion (v1) scores amount / 1000: 812 -> 0.812, over the decline threshold
    assert body["score"] == pytest.approx(0.812)
    assert (body["decision"], body["model_version"], body["route"]) == ("decline", "1", "primary")
    assert body["fallback"] is None
    assert body["explanation"] and all("feature" in e for e in body["explanation"])
    assert featurizer.requests[-1] == {"payments": [payment(tid)]}

    # the same instance through /decisions gets the same score and decision
    row = pd.DataFrame([instance(payment(tid))])
    direct = svc.post(
        "/decisions?explain=false",
        json={"dataframe_records": json.loads(row.to_json(orient="records"))},
    ).json()["decisions"][0]
    assert (direct["score"], direct["decision"]) == (body["score"], body["decision"])

    time.sleep(2)  # flushed and rolled
    published = svc.exchange("online_instances")
    TransactionInstance.validate(published)
    mine = published[published["transaction_id"] == tid].reset_index(drop=True)
    expected = pd.DataFrame([instance(payment(tid))])
    expected["event_time"] = pd.to_datetime(expected["event_time"])
    pd.testing.assert_frame_equal(
        mine[list(expected.columns)], TransactionInstance.validate(expected), check_dtype=False
    )
    decided = svc.exchange("online_decisions")
    assert decided.loc[decided["transaction_id"] == tid, "decision"].tolist() == ["decline"]


@pytest.mark.parametrize(
    ("tid", "reason"), [(SLOW + 1, "timeout"), (BROKEN + 1, "featurization_error")]
)
def test_no_features_in_time_gets_the_documented_fallback(authorizing, tid, reason):
    svc, _ = authorizing
    started = time.monotonic()
    answer = svc.post("/authorize", json=payment(tid))
    elapsed = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["decision"], body["route"], body["fallback"]) == ("review", "fallback", reason)
    assert body["score"] is None and body["model_version"] is None
    assert elapsed < TIMEOUT + 2  # bounded by the timeout, not by the slow service
    health = requests.get(f"{svc.url}/health", timeout=5).json()
    assert health["authorize"]["fallbacks"][reason] >= 1


def test_a_payment_the_featurization_service_refuses_is_the_callers_error(authorizing):
    svc, _ = authorizing
    answer = svc.post("/authorize", json=payment(REFUSED + 1))
    assert answer.status_code == 422
    assert answer.json()["rejected"][0]["failed_checks"] == "amount_positive"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "Empty body"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"transaction_id": 1}', 422, "exactly the fields"),
        (json.dumps({**payment(1), "transaction_id": "1"}).encode(), 422, "integer"),
        (json.dumps({**payment(1), "amount": 1e400}).encode(), 400, "finite"),
        (json.dumps({**payment(1), "amount": -5.0}).encode(), 422, "amount"),
        (json.dumps({**payment(1), "merchant_category": "casino"}).encode(), 422, "isin"),
        (json.dumps({**payment(1), "event_time": "yesterday"}).encode(), 422, "ISO 8601"),
    ],
)
def test_a_malformed_payment_is_refused_before_any_call(authorizing, body, status, words):
    svc, featurizer = authorizing
    calls = len(featurizer.requests)
    answer = svc.post("/authorize", data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status and words in answer.json()["error"]
    assert len(featurizer.requests) == calls


def test_an_unreachable_featurization_service_gets_the_fallback(authorizing):
    """(Last in this module: it stops the featurization service.)"""
    svc, featurizer = authorizing
    featurizer.stop()
    body = svc.post("/authorize", json=payment(600_000)).json()
    assert (body["decision"], body["fallback"]) == ("review", "unreachable")
    assert "answered with the fallback (unreachable)" in svc.stop()
