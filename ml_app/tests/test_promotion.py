"""The promotion gate: promotes a better challenger, keeps a worse one, rolls back exactly,
and never evaluates on a window either model was fitted or validated on."""

import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from ml_app.pipelines.promotion.nodes import evaluation_window
from ml_app.registry import rollback
from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_env, kedro_run
from shared_schemas.monitoring import PromotionDecision
from tests.conftest import isolated_project_with_data

APP = Path(__file__).resolve().parents[1]
WINDOW = {
    "training.window.train_start": "2025-02-01",
    "training.window.train_end": "2025-03-20",
    "training.window.valid_end": "2025-04-10",
    "evaluation.importance_sample": 500,
}
STRONG = {**WINDOW, "training.model.hist_gradient_boosting.max_iter": 40}
WEAK = {
    **WINDOW,
    "training.model.hist_gradient_boosting.max_iter": 1,
    "training.model.hist_gradient_boosting.learning_rate": 0.01,
}


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    root = tmp_path_factory.mktemp("monorepo")
    project, _ = isolated_project_with_data(root, n=8_000, seed=5)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return root, project, client


def champion(client) -> str:
    return str(client.get_model_version_by_alias("fraud-detector", "champion").version)


def decisions(root) -> pd.DataFrame:
    frame = ExchangeParquetDataset(
        filepath=str(root / "data/exchange/promotion_decisions"), partition_by="decided_at"
    ).load()
    return PromotionDecision.validate(frame).sort_values("decided_at").reset_index(drop=True)


def test_promotes_better_keeps_worse_and_rolls_back_exactly(gate):
    root, project, client = gate
    kedro_run(project, "training", WEAK)  # v1: the first version becomes champion
    kedro_run(project, "training", STRONG)  # v2: challenger
    kedro_run(project, "promotion")
    assert champion(client) == "2"
    first = decisions(root).iloc[-1]
    assert first["promoted"] and first["champion_after"] == "2"
    assert first["challenger_primary"] < first["champion_primary"]  # expected cost: lower wins
    assert first["reason"].startswith("promoted challenger v2 over v1")
    # the promotion run records the exchange data both models were judged on
    (gate_run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="attributes.run_name = 'promotion'",
    )
    judged_on = {i.dataset.name for i in gate_run.inputs.dataset_inputs}
    assert {"instances", "labels"} <= judged_on, judged_on

    kedro_run(project, "training", WEAK)  # v3: a worse challenger
    kedro_run(project, "promotion")
    assert champion(client) == "2"
    second = decisions(root).iloc[-1]
    assert not second["promoted"] and second["champion_after"] == "2"
    assert "kept champion v2" in second["reason"]
    # both models were judged on the same rows
    assert second["window_start"] >= pd.Timestamp("2025-04-10")
    assert second["n_rows"] == first["n_rows"]

    env = isolated_env(root)
    proc = subprocess.run(
        [sys.executable, "-m", "ml_app.registry", "rollback"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "from version 2 to version 1" in proc.stdout
    assert champion(client) == "1"
    with pytest.raises(RuntimeError, match="no previous champion"):
        rollback(client, "fraud-detector")


def registry(champion_end: str, challenger_end: str) -> dict:
    return {
        "champion": {"params": {"training.window.valid_end": champion_end}},
        "challenger": {"params": {"training.window.valid_end": challenger_end}},
    }


def labels_until(day: str) -> pd.DataFrame:
    times = pd.date_range("2025-01-01", day, freq="12h")
    return pd.DataFrame({"event_time": times, "label_source": "matured"})


def test_window_starts_after_both_models_validation_windows():
    window = evaluation_window(registry("2025-04-01", "2025-04-20"), labels_until("2025-05-10"))
    assert window == {"start": "2025-04-20", "end": "2025-05-10"}


def test_no_window_when_labels_have_not_matured_past_the_models():
    with pytest.raises(ValueError, match="No fresh labelled window"):
        evaluation_window(registry("2025-04-01", "2025-05-20"), labels_until("2025-05-10"))


def test_only_matured_labels_extend_the_window():
    labels = pd.concat(
        [
            labels_until("2025-05-10"),
            pd.DataFrame(
                {"event_time": [pd.Timestamp("2025-06-01")], "label_source": ["chargeback"]}
            ),
        ]
    )
    assert evaluation_window(registry("2025-04-01", "2025-04-01"), labels)["end"] == "2025-05-10"
