"""The whole loop on a small world, each app in its own environment, in a temporary root:
contract-valid data at every boundary, decisions that reference the registered model."""

import mlflow
import pytest

from tooling.loop.demo import render, summarise
from shared_runtime.pytest_user_state import fingerprint
from shared_runtime.testing import isolated_env
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from shared_schemas.monitoring import MonitoringReport, PromotionDecision
from tests.conftest import ROOT, published, settings


@pytest.mark.slow
def test_every_boundary_holds_contract_valid_data(loop):
    loop, _ = loop
    instances = TransactionInstance.validate(published(loop, "etl_app", "instances"))
    labels = FraudLabel.validate(published(loop, "etl_app", "labels"))
    decisions = FraudDecision.validate(published(loop, "user_app", "decisions"))
    PredictionLog.validate(published(loop, "user_app", "prediction_log"))
    report = MonitoringReport.validate(published(loop, "ml_app", "monitoring_report"))
    assert {"performance", "data_drift", "score_drift"} <= set(report["kind"])
    assert not report["alert"].any()  # the small world has no drift scenario switched on
    gate = PromotionDecision.validate(published(loop, "ml_app", "promotion_decision"))
    assert gate.iloc[-1]["reason"] == "version 1 is already the champion: nothing to compare"
    assert len(instances) > 50_000
    assert set(labels["transaction_id"]) <= set(instances["transaction_id"])
    assert set(decisions["transaction_id"]) <= set(instances["transaction_id"])
    assert decisions["event_time"].min().strftime("%Y-%m") == "2025-06"
    assert set(decisions["decision"]) == {"approve", "review", "decline"}


@pytest.mark.slow
def test_decisions_reference_the_registered_champion(loop):
    loop, _ = loop
    shared = settings(loop)
    client = mlflow.MlflowClient(tracking_uri=shared["mlflow_tracking_uri"])
    champion = client.get_model_version_by_alias(
        shared["registered_model_name"], shared["champion_alias"]
    )
    decisions = published(loop, "user_app", "decisions")
    log = published(loop, "user_app", "prediction_log")
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


@pytest.mark.slow
def test_the_demo_summary_reads_what_the_loop_published(loop):
    root, _ = loop
    summary = summarise(root, 1.0, isolated_env(root))
    shared = settings(root)
    assert summary["registry"]["name"] == shared["registered_model_name"]
    assert summary["exchange_root"] == shared["exchange_root"] == str(root / "data/exchange")
    assert summary["instances"]["rows_valid"] == len(published(root, "etl_app", "instances"))
    assert 0.5 < summary["ceiling"]["ratio"] <= 1.05
    assert int(summary["last_scoring"]["n_rows"]) > 0
    assert "Fraud loop complete in 1.0 s" in render(summary)
