"""Session test: batch_scoring loads a registered model by alias and publishes decisions."""

import sys
from pathlib import Path

import cloudpickle
import mlflow
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from shared_schemas.examples import transaction_instance_example
from shared_schemas.exchange import ExchangeParquetDataset
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from shared_schemas.testing import isolated_app, kedro_run
from user_app.datasets import RegisteredModelDataset

APP = Path(__file__).resolve().parents[1]
WINDOW = {"window.start": "2025-06-01", "window.end": "2025-07-01"}


class AmountModel(mlflow.pyfunc.PythonModel):
    """Stands in for ml_app's pipeline model: same input and output contracts."""

    def predict(self, context, model_input, params=None):
        score = (model_input["amount"] / 1000).clip(0, 1)
        return pd.DataFrame({"transaction_id": model_input["transaction_id"], "score": score})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("monorepo")
    project = isolated_app(APP, root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the kedro run can't import tests
    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(
            name="model", python_model=AmountModel(), registered_model_name="fraud-detector"
        )
    client = mlflow.MlflowClient(uri)
    client.set_registered_model_alias("fraud-detector", "champion", "1")
    ExchangeParquetDataset(
        filepath=str(root / "data/exchange/instances"), partition_by="event_time"
    ).save(transaction_instance_example())
    return root, project, run.info.run_id


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
