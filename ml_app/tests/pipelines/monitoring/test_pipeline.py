"""`kedro run --pipelines monitoring` reads the online service's decisions when they exist and
leaves the batch report as it was: the same catalog, contracts and MLflow run as in production."""

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import kedro_run
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from shared_schemas.monitoring import MonitoringReport, OnlineMonitoringReport
from tests.conftest import isolated_project_with_data
from tests.pipelines.monitoring.test_online import decide, service_output
from tests.test_run import PARAMS as TRAINING

MONITORING = {"monitoring.min_labelled": 50}  # a small world: ~80 labelled canary payments a week


def publish(root: Path, name: str, frame: pd.DataFrame, partition_by: str, contract) -> None:
    ExchangeParquetDataset(
        filepath=str(root / "data/exchange" / name),
        partition_by=partition_by,
        mode="append",
        contract=contract,
    ).save(contract.validate(frame))


def exchange(root: Path, name: str, by: str = "period_start") -> pd.DataFrame:
    frame = ExchangeParquetDataset(filepath=str(root / "data/exchange" / name), partition_by=by)
    return frame.load()


@pytest.fixture(scope="module")
def monitored(tmp_path_factory):
    """Monitoring run twice on one world: before and after the online service published."""
    root = tmp_path_factory.mktemp("monorepo")
    project, instances = isolated_project_with_data(root, n=6_000, seed=3)
    kedro_run(project, "training", TRAINING)
    labels = exchange(root, "labels", "event_time")
    window = instances[instances["event_time"] >= "2025-04-14"].reset_index(drop=True)
    publish(root, "decisions", decide(window, labels, "1", 1, 0.5), "event_time", FraudDecision)
    html = project / "data/08_reporting/monitoring_report.html"

    kedro_run(project, "monitoring", MONITORING)
    online_table = root / "data/exchange/online_monitoring"
    before = exchange(root, "monitoring"), html.read_text(), online_table.exists()
    answered, shadow, log = service_output(window, labels, canary_signal=0.0)  # a blind canary
    publish(root, "online_decisions", answered, "event_time", FraudDecision)
    publish(root, "shadow_decisions", shadow, "event_time", FraudDecision)
    publish(root, "prediction_log", log, "scored_at", PredictionLog)
    kedro_run(project, "monitoring", MONITORING)
    after = exchange(root, "monitoring"), html.read_text()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return root, before, after, client


def test_without_online_decisions_the_run_publishes_no_online_rows(monitored):
    _, (report, html, published), _, _ = monitored
    MonitoringReport.validate(report)
    assert not published  # nothing to publish: the online table is not even created
    assert "No online decisions were published" in html


def test_online_decisions_add_the_online_report_and_leave_the_batch_one_as_it_was(monitored):
    root, (before, _, _), (after, html), client = monitored
    keys = ["period_start", "model_version", "kind", "metric", "feature"]
    pd.testing.assert_frame_equal(
        before.sort_values(keys).reset_index(drop=True),
        after.sort_values(keys).reset_index(drop=True),
    )
    report = OnlineMonitoringReport.validate(exchange(root, "online_monitoring"))
    assert set(report["route"]) == {"primary", "canary", "shadow"}
    fired = report[report["alert"]]
    assert len(fired) and set(fired["route"]) <= {"canary", "shadow"}
    assert "online alert(s)" in html and "Online: champion vs canary and shadow" in html
    run = client.search_runs(
        [client.get_experiment_by_name("ml_app").experiment_id],
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert "monitoring.online.canary.expected_cost_per_tx" in run.data.metrics
    assert "monitoring.pr_auc" in run.data.metrics
