"""The decision service over HTTP: protocol, refusals, decisions, canary, shadow, hot reload."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import requests

from shared_runtime.testing import kedro_run
from shared_schemas.examples import transaction_instance_example
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from user_app.client import DecisionClient
from user_app.client import scoring_payload as payload
from user_app.online.routing import BUCKETS, bucket

from ..conftest import Service, many

CANARY = 0.3
WINDOW = {"window.start": "2025-06-01", "window.end": "2025-07-01"}


@pytest.fixture(scope="module")
def service(world):
    root, project, client = world
    svc = Service(
        root,
        project,
        {
            "online.canary_fraction": CANARY,
            "online.shadow": "true",
            "online.reload_seconds": 0.5,
            "online.flush_seconds": 0.5,
            "online.roll_seconds": 0.5,
        },
    )
    yield svc, client
    svc.stop()


def primary(n: int, start: int) -> pd.DataFrame:
    """n instances whose ids route to the champion."""
    frame = many(4 * n, start)
    keep = [bucket(i) >= CANARY * BUCKETS for i in frame["transaction_id"]]
    return frame[keep].head(n).reset_index(drop=True)


def test_health_and_version_name_the_models(service):
    svc, _ = service
    health = requests.get(f"{svc.url}/health", timeout=5).json()
    assert (health["status"], health["champion"], health["challenger"]) == ("ok", "1", "2")
    assert requests.get(f"{svc.url}/version", timeout=5).json()["model_version"] == "1"


@pytest.mark.parametrize("orient", ["split", "records"])
def test_mlflow_scoring_protocol(service, orient):
    svc, _ = service
    rows = primary(3, 20_000)
    response = svc.post("/invocations", json=payload(rows, orient))
    assert response.status_code == 200, response.text
    predictions = pd.DataFrame(response.json()["predictions"])
    assert predictions["transaction_id"].tolist() == rows["transaction_id"].tolist()
    assert predictions["score"].tolist() == pytest.approx((rows["amount"] / 1000).tolist())


def test_decisions_carry_version_route_and_explanation(service):
    svc, _ = service
    rows = primary(2, 30_000)  # an everyday 23.50 payment and a 812.00 one
    body = svc.post("/decisions", json=payload(rows)).json()
    assert (body["model_version"], body["route"]) == ("1", "primary")
    by_amount = {d["decision"]: d for d in body["decisions"]}
    assert set(by_amount) == {"approve", "decline"}  # 0.0235 and 0.812 vs 0.033 / 0.8
    # the amount is what makes the large payment risky under an amount-only model
    assert by_amount["decline"]["explanation"][0]["feature"] == "amount"
    quick = svc.post("/decisions?explain=false", json=payload(rows)).json()
    assert all(d["explanation"] is None for d in quick["decisions"])


def test_the_documented_example_request_is_answered(service):
    svc, _ = service
    example = Path(__file__).resolve().parents[3] / "docs/examples/decision_request.json"
    response = svc.post("/decisions", data=example.read_bytes())
    assert response.status_code == 200, response.text
    assert len(response.json()["decisions"]) == 2


BAD = {
    "negative amount": (
        payload(transaction_instance_example().assign(amount=[-5.0, 1.0])),
        422,
        "amount: greater_than_or_equal_to(0.0) failed for 1 row(s)",
    ),
    "missing column": (
        payload(transaction_instance_example().drop(columns="amount")),
        422,
        "column_in_dataframe",
    ),
    "extra column": (
        payload(transaction_instance_example().assign(secret=1)),
        422,
        "column_in_schema",
    ),
    "unknown category": (
        payload(transaction_instance_example().assign(merchant_category="casino")),
        422,
        "merchant_category: isin",
    ),
    "wrong type": (
        payload(transaction_instance_example().assign(card_id="seventeen")),
        422,
        "card_id",
    ),
    "row rule": (
        payload(transaction_instance_example().assign(tx_count_1h=[50, 0])),
        422,
        "velocity_windows_nest",
    ),
    "not json": (b"{not json", 400, "not valid JSON"),
    "nan": (b'{"dataframe_split": {"columns": ["amount"], "data": [[NaN]]}}', 400, "NaN"),
    "huge number": (b'{"dataframe_records": [{"amount": 1e999}]}', 400, "finite"),
    "empty body": (b"", 400, "Empty body"),
    "no rows": ({"dataframe_records": []}, 400, "No rows"),
    "unknown format": ({"instances": [1]}, 400, "dataframe_split"),
    "a model uri": (
        {**payload(transaction_instance_example()), "model_uri": "file:///etc/passwd"},
        400,
        "one key",
    ),
    "ragged rows": (
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1], [1, 2, 3]]}},
        400,
        "Cannot read",
    ),
    "too many rows": (payload(many(1_001)), 413, "limit is 1000"),
    "oversized body": (b"x" * 1_000_001, 413, "over 1000000 bytes"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_requests_get_a_4xx_that_says_why(service, case):
    svc, _ = service
    body, status, message = BAD[case]
    kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
    response = svc.post("/invocations", **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_still_answers_correctly_after_bad_requests(service):
    svc, _ = service
    rows = primary(1, 40_000)
    response = svc.post("/invocations", json=payload(rows))
    assert response.json()["predictions"][0]["score"] == pytest.approx(rows["amount"][0] / 1000)


def test_canary_share_and_shadow_never_change_the_answer(service):
    svc, _ = service
    rows = many(400, 50_000)
    routes = []
    for i in range(len(rows)):
        body = svc.post("/decisions?explain=false", json=payload(rows.iloc[[i]])).json()
        decided = body["decisions"][0]
        scale = 500 if body["route"] == "canary" else 1000
        assert decided["score"] == pytest.approx(min(1.0, rows["amount"].iloc[i] / scale))
        routes.append(body["route"])
    share = routes.count("canary") / len(routes)
    assert abs(share - CANARY) < 0.07
    expected = [bucket(i) < CANARY * BUCKETS for i in rows["transaction_id"]]
    assert [r == "canary" for r in routes] == expected  # sticky per transaction id

    time.sleep(2)  # two flushes
    shadow = svc.exchange("shadow_decisions")
    FraudDecision.validate(shadow)
    shadowed = set(shadow["transaction_id"]) & set(rows["transaction_id"])
    primaries = {t for t, r in zip(rows["transaction_id"], routes, strict=True) if r == "primary"}
    assert shadowed == primaries  # every champion answer was shadowed by the challenger
    assert set(shadow["model_version"]) == {"2"}
    answered = svc.exchange("online_decisions")
    FraudDecision.validate(answered)
    log = svc.exchange("prediction_log", "scored_at")
    PredictionLog.validate(log)
    assert {"primary", "canary", "shadow"} <= set(log["route"])
    assert set(log["channel"]) == {"online"}


def test_bounded_concurrent_load_gets_no_errors(service):
    svc, _ = service
    body = payload(primary(1, 90_000))

    def client(_: int) -> list[int]:
        session = requests.Session()
        return [
            session.post(f"{svc.url}/invocations", json=body, timeout=10).status_code
            for _ in range(50)
        ]

    with ThreadPoolExecutor(4) as pool:
        statuses = [s for batch in pool.map(client, range(4)) for s in batch]
    assert statuses == [200] * 200


def test_reload_follows_the_champion_alias_without_dropping_requests(service):
    svc, client = service
    client.set_registered_model_alias("fraud-detector", "champion", "2")
    rows = primary(1, 60_000)
    versions, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline:
        response = svc.post("/invocations", json=payload(rows))
        assert response.status_code == 200
        versions.append(requests.get(f"{svc.url}/version", timeout=5).json()["model_version"])
        if versions[-1] == "2":
            break
    assert versions[-1] == "2"
    score = svc.post("/invocations", json=payload(rows)).json()["predictions"][0]["score"]
    assert score == pytest.approx(rows["amount"][0] / 500)
    client.set_registered_model_alias("fraud-detector", "champion", "1")
    assert svc.post("/admin/reload").json()["champion"] == "1"


def test_client_and_online_scoring_pipeline_get_the_services_decisions(service, world):
    svc, _ = service
    rows = primary(2, 80_000)
    decided = DecisionClient(svc.url).decide(rows, explain=True)
    assert decided["model_version"].tolist() == ["1", "1"]
    assert not decided["fallback"].any()
    assert decided["score"].tolist() == pytest.approx((rows["amount"] / 1000).tolist())
    _, project, _ = world
    kedro_run(
        project,
        "online_scoring",
        {"online_scoring.url": svc.url, "online_scoring.max_requests": 4, **WINDOW},
    )
    replayed = pd.read_parquet(project / "data/07_model_output/online_client_decisions.parquet")
    assert len(replayed) == 2 and not replayed["fallback"].any()  # the 2 example instances


def test_shutdown_publishes_every_logged_call(service):
    svc, _ = service
    before = svc.exchange("prediction_log", "scored_at")
    svc.post("/invocations", json=payload(primary(1, 70_000)))
    svc.stop()
    after = svc.exchange("prediction_log", "scored_at")
    assert len(after) >= len(before) + 2  # the answer and its shadow
