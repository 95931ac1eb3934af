"""Hostile input: over a thousand random and mutated requests, no crash, no 5xx, every refusal a
4xx that says why, and correct answers afterwards. In-process (FastAPI's TestClient) for speed;
tests/online/test_service.py covers the same app over real HTTP."""

from __future__ import annotations

import json
import math
import sys

import hypothesis.strategies as st
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from shared_schemas.examples import transaction_instance_example
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from user_app.client import scoring_payload
from user_app.decisions import decision_thresholds
from user_app.online.explain import Explainer
from user_app.online.routing import BUCKETS, ModelRouter, RoutingPolicy, bucket
from user_app.online.service import DecisionService, Limits, create_app
from user_app.online.sink import DecisionSink, SinkPolicy

COSTS = {"missed_fraud": 150.0, "review": 5.0, "false_decline": 25.0}
EXAMPLE = transaction_instance_example()
RECORD = json.loads(EXAMPLE.head(1).to_json(orient="records", date_format="iso"))[0]
CONTRACTS = {
    "online_decisions": FraudDecision,
    "shadow_decisions": FraudDecision,
    "prediction_log": PredictionLog,
}
SEEN = {"requests": 0, "statuses": {}}


class ValidatingCatalog:
    """Stands in for the Kedro catalog: keeps what the sink publishes, checked by its contract."""

    def __init__(self) -> None:
        self.saved: dict[str, list[pd.DataFrame]] = {name: [] for name in CONTRACTS}

    def save(self, name: str, data: pd.DataFrame) -> None:
        self.saved[name].append(CONTRACTS[name].validate(data))


@pytest.fixture(scope="module")
def api(world, tmp_path_factory):
    router = ModelRouter(
        "fraud-detector", "champion", "challenger", RoutingPolicy(canary_fraction=0.2, shadow=True)
    )
    catalog = ValidatingCatalog()
    thresholds = decision_thresholds(COSTS)
    groups = {
        "amount": ["amount"],
        "velocity": ["tx_count_5m", "tx_count_15m", "tx_count_1h", "tx_count_24h", "tx_count_7d"],
    }
    service = DecisionService(
        router,
        DecisionSink(
            catalog,
            thresholds,
            spool=tmp_path_factory.mktemp("spool"),
            policy=SinkPolicy(flush_seconds=3600),
        ),
        thresholds,
        Explainer(EXAMPLE, groups, top_k=2),
        Limits(max_body_bytes=100_000, max_rows=50),
    )
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        yield client, service, catalog
    sys.stdout.write(f"\nfuzzed requests: {SEEN}\n")
    assert SEEN["requests"] >= 1_000, SEEN


def post(client: TestClient, body: bytes) -> None:
    for path in ("/invocations", "/decisions"):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        SEEN["requests"] += 1
        SEEN["statuses"][response.status_code] = SEEN["statuses"].get(response.status_code, 0) + 1
        assert response.status_code in (200, 400, 413, 422), (response.status_code, body[:300])
        answer = response.json()
        if response.status_code != 200:
            assert answer["error"], body[:300]  # a refusal always says why


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
odd_values = st.one_of(
    json_values,
    st.sampled_from([math.nan, math.inf, -math.inf, 10**30, -(10**30), 1e308, "", "NaN", "1e999"]),
)


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(["dataframe_split", "dataframe_records", "inputs"]),
            json_values,
            max_size=2,
        ),
    )
)
def test_random_json_never_crashes_the_service(api, value):
    post(api[0], json.dumps(value).encode())


@st.composite
def mutated_records(draw) -> bytes:
    records = [dict(RECORD, transaction_id=i) for i in range(draw(st.integers(1, 3)))]
    for _ in range(draw(st.integers(1, 4))):
        record = draw(st.sampled_from(records))
        column = draw(st.sampled_from([*RECORD, "unexpected"]))
        action = draw(st.sampled_from(["set", "drop"]))
        if action == "drop":
            record.pop(column, None)
        else:
            record[column] = draw(odd_values)
    orient = draw(st.sampled_from(["records", "split"]))
    if orient == "records":
        body = {"dataframe_records": records}
    else:
        columns = list(dict.fromkeys(c for r in records for c in r))
        body = {
            "dataframe_split": {
                "columns": columns,
                "data": [[r.get(c) for c in columns] for r in records],
            }
        }
    return json.dumps(body, allow_nan=True).encode()  # NaN/Infinity literals on purpose


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_records())
def test_mutated_records_are_refused_with_a_reason_or_answered(api, body):
    post(api[0], body)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=2_000))
def test_arbitrary_bytes_are_refused(api, body):
    post(api[0], body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"x" * 100_001,
        b"[" * 10_000 + b"]" * 10_000,
        json.dumps({"dataframe_records": [RECORD] * 51}).encode(),
    ],
    ids=["empty", "oversized", "deeply nested", "too many rows"],
)
def test_edge_bodies_are_refused(api, body):
    post(api[0], body)


def test_still_correct_after_the_fuzzing_and_everything_logged_is_valid(api):
    client, service, catalog = api
    champion_ids = [i for i in range(1_000) if bucket(i) >= 0.2 * BUCKETS][:2]
    rows = EXAMPLE.assign(transaction_id=champion_ids)  # ids the canary leaves to the champion
    response = client.post("/invocations", json=scoring_payload(rows))
    assert response.status_code == 200
    scores = [p["score"] for p in response.json()["predictions"]]
    assert scores == pytest.approx([0.0235, 0.812])
    service.sink.flush(publish_all=True)  # the catalog validates every published frame
    assert catalog.saved["prediction_log"] and catalog.saved["online_decisions"]
