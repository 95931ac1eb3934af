"""Per request: the contract is checked exactly once (explanations and shadow scoring included),
and the admin endpoint trusts only the hosts it is given."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
import pytest
from fastapi import BackgroundTasks
from fastapi.testclient import TestClient

from shared_runtime.fast import FastContract
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.examples import transaction_instance_example
from user_app.client import scoring_payload
from user_app.decisions import decision_thresholds
from user_app.online.explain import Explainer
from user_app.online.models import ServedModel
from user_app.online.routing import ModelRouter, RoutingPolicy
from user_app.online.service import LOOPBACK, DecisionService, Limits, create_app
from user_app.online.sink import DecisionSink

EXAMPLE = transaction_instance_example()
GROUPS = {
    "amount": ["amount"],
    "velocity": ["tx_count_5m", "tx_count_15m", "tx_count_1h", "tx_count_24h", "tx_count_7d"],
}


class CountingContract(FastContract):
    def __init__(self) -> None:
        super().__init__(TransactionInstance)
        self.calls = 0

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        return super().validate(frame)


class ValidRowsModel:
    """Scores amount/1000 and records every frame it was given."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []

    def __call__(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        self.frames.append(rows)
        return {
            "transaction_id": rows["transaction_id"].to_numpy(),
            "score": (rows["amount"] / 1000).to_numpy(),
        }


@pytest.fixture
def service(world, tmp_path):
    model = ValidRowsModel()

    def load(ref):
        version = str(ref.resolve().version)
        return ServedModel("fraud-detector", version, "run", f"@{ref.alias}", model)

    router = ModelRouter(
        "fraud-detector", "champion", "challenger", RoutingPolicy(shadow=True), load
    )
    thresholds = decision_thresholds({"missed_fraud": 150.0, "review": 5.0, "false_decline": 25})
    contract = CountingContract()
    svc = DecisionService(
        router,
        DecisionSink(object(), thresholds, spool=tmp_path / "spool"),
        thresholds,
        Explainer(EXAMPLE, GROUPS, top_k=2),
        Limits(),
        contract,
    )
    return svc, contract, model


def run(background: BackgroundTasks) -> None:
    asyncio.run(background())


def test_one_contract_check_per_request_with_explanations_and_shadow(service):
    svc, contract, model = service
    body = json.dumps(scoring_payload(EXAMPLE)).encode()
    background = BackgroundTasks()
    answer = svc.decisions(body, background, explain=True)
    run(background)  # the shadow call, after the response
    assert contract.calls == 1
    assert all(d["explanation"] is not None for d in answer["decisions"])
    # the champion, the explanation variants, and the challenger's shadow call
    assert [len(f) for f in model.frames] == [2, 2 * len(GROUPS), 2]
    background = BackgroundTasks()
    svc.invocations(body, background)
    run(background)
    assert contract.calls == 2


def test_explanation_variants_keep_the_contract():
    """Why explanations may skip the check: their variants are valid whenever the rows are."""
    explainer = Explainer(EXAMPLE, GROUPS | {"hour": ["hour_of_day"]}, top_k=2)
    variants = explainer.variants(FastContract(TransactionInstance).validate(EXAMPLE))
    TransactionInstance.validate(variants)


def test_reload_is_refused_to_hosts_not_given(service, tmp_path):
    svc, _, _ = service
    with TestClient(create_app(svc)) as client:  # FastAPI's test client is host "testclient"
        assert "testclient" not in LOOPBACK
        response = client.post("/admin/reload")
        assert response.status_code == 403
        assert "own host" in response.json()["error"]
    allowed = LOOPBACK | {"testclient"}
    svc.sink = DecisionSink(object(), svc.thresholds, spool=tmp_path / "spool2")  # a new app
    with TestClient(create_app(svc, admin_hosts=allowed)) as client:
        assert client.post("/admin/reload").json()["champion"] == "1"
