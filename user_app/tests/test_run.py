"""Session test: batch_scoring loads a registered model by alias and publishes decisions."""

import sys

import mlflow
import pytest
from kedro.io.core import DatasetError

from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import kedro_run
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from user_app.datasets import RegisteredModelDataset

from .conftest import make_world

WINDOW = {"window.start": "2025-06-01", "window.end": "2025-07-01"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("monorepo")
    project, (run_id,) = make_world(root, (1000.0,))
    return root, project, run_id


def test_batch_scoring_publishes_decisions_of_the_champion(store):
    root, project, run_id = store
    kedro_run(project, "batch_scoring", WINDOW)
    decisions = ExchangeParquetDataset(
        filepath=str(root / "data/exchange/decisions"), partition_by="event_time"
    ).load()
    FraudDecision.validate(decisions)
    assert decisions["decision"].tolist() == ["approve", "decline"]  # 23.50 and 812.00
    assert set(decisions["model_version"]) == {"1"}
    log = ExchangeParquetDataset(
        filepath=str(root / "data/exchange/prediction_log"), partition_by="scored_at"
    ).load()
    PredictionLog.validate(log)
    assert log.iloc[-1]["model_run_id"] == run_id
    kedro_run(project, "batch_scoring", WINDOW)  # logs append, decisions are replaced
    assert (
        len(
            ExchangeParquetDataset(
                filepath=str(root / "data/exchange/prediction_log"), partition_by="scored_at"
            ).load()
        )
        == 2
    )


def test_missing_alias_tells_the_user_what_to_run(store, monkeypatch):
    root, _, _ = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    with pytest.raises(DatasetError, match=r"make train.*make promote"):
        RegisteredModelDataset(model_name="fraud-detector", alias="challenger").load()


def test_an_explicit_version_or_run_overrides_the_default_alias():
    ds = RegisteredModelDataset(model_name="fraud-detector", alias="champion", model_version=3)
    assert ds._describe() == {"model_name": "fraud-detector", "model_version": 3}
    ds = RegisteredModelDataset(model_name="fraud-detector", alias="champion", run_id="abc")
    assert ds._describe() == {"model_name": "fraud-detector", "run_id": "abc"}


def test_score_by_version_and_by_run_id(store):
    root, _, run_id = store
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    by_version = RegisteredModelDataset(model_name="fraud-detector", model_version=1).load()
    by_run = RegisteredModelDataset(model_name="fraud-detector", run_id=run_id).load()
    assert (by_version.version, by_run.version, by_run.run_id) == ("1", "1", run_id)
    assert sys.modules.get("ml_app") is None  # user_app never imports ml_app
