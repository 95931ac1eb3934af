"""The whole loop on a small world, each app in its own environment, in a temporary root:
contract-valid data at every boundary, decisions that reference the registered model."""

from pathlib import Path

import mlflow
import pytest

from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.pytest_user_state import fingerprint
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from shared_schemas.monitoring import MonitoringReport, PromotionDecision
from tests.conftest import ROOT


def load(root: Path, name: str, partition_by: str = "event_time"):
    return ExchangeParquetDataset(
        filepath=str(root / "data/exchange" / name), partition_by=partition_by
    ).load()


@pytest.mark.slow
def test_every_boundary_holds_contract_valid_data(loop):
    loop, _ = loop
    instances = TransactionInstance.validate(load(loop, "instances"))
    labels = FraudLabel.validate(load(loop, "labels"))
    decisions = FraudDecision.validate(load(loop, "decisions"))
    PredictionLog.validate(load(loop, "prediction_log", "scored_at"))
    report = MonitoringReport.validate(load(loop, "monitoring", "period_start"))
    assert {"performance", "data_drift", "score_drift"} <= set(report["kind"])
    assert not report["alert"].any()  # the small world has no drift scenario switched on
    gate = PromotionDecision.validate(load(loop, "promotion_decisions", "decided_at"))
    assert gate.iloc[-1]["reason"] == "version 1 is already the champion: nothing to compare"
    assert len(instances) > 50_000
    assert set(labels["transaction_id"]) <= set(instances["transaction_id"])
    assert set(decisions["transaction_id"]) <= set(instances["transaction_id"])
    assert decisions["event_time"].min().strftime("%Y-%m") == "2025-06"
    assert set(decisions["decision"]) == {"approve", "review", "decline"}


@pytest.mark.slow
def test_decisions_reference_the_registered_champion(loop):
    loop, _ = loop
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{loop / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("fraud-detector", "champion")
    decisions = load(loop, "decisions")
    log = load(loop, "prediction_log", "scored_at")
    assert set(decisions["model_version"]) == {str(champion.version)}
    assert set(log["model_run_id"]) == {champion.run_id}
    assert log["n_rows"].sum() == len(decisions)
    roc_auc = client.get_run(champion.run_id).data.metrics["validation.roc_auc"]
    assert roc_auc > 0.85


@pytest.mark.slow
def test_nothing_was_written_outside_the_temporary_root(loop):
    root, before = loop
    assert fingerprint(ROOT) == before
    assert (root / "source_system.db").is_file()
    assert any((root / "mlartifacts").rglob("MLmodel"))
