"""The service calls a pipeline model's documented fast path on rows it has validated itself,
and any other pyfunc model through ``predict``, checks included, in its worker process or in
the service's own."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from shared_schemas.examples import transaction_instance_example
from user_app.datasets import ScoringModel
from user_app.online.models import ServedModel
from user_app.online.service import validate
from user_app.online.worker import WorkerProcess


class Plain(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"transaction_id": model_input["transaction_id"], "score": 0.25})


class WithFastPath(Plain):
    """Like ml_app's LeanPipelineModel: ``predict`` checks, ``predict_validated`` trusts."""

    def predict(self, context, model_input, params=None):
        raise AssertionError("the service validated these rows: predict must not run again")

    def predict_validated(self, valid_instances):
        return pd.DataFrame({"transaction_id": valid_instances["transaction_id"], "score": 0.5})


def saved(tmp_path, python_model) -> str:
    path = tmp_path / type(python_model).__name__
    mlflow.pyfunc.save_model(str(path), python_model=python_model)
    return str(path)


CASES = [(WithFastPath(), 0.5), (Plain(), 0.25)]


@pytest.mark.parametrize(("python_model", "score"), CASES)
def test_in_process_takes_the_fast_path_when_the_model_has_one(tmp_path, python_model, score):
    rows = validate(transaction_instance_example())
    model = mlflow.pyfunc.load_model(saved(tmp_path, python_model))
    served = ServedModel.in_process(ScoringModel(model, "m", "1", "run", "@champion"))
    scores = served.predict_valid(rows)
    assert list(scores["transaction_id"]) == list(rows["transaction_id"])
    assert (scores["score"] == score).all()


@pytest.mark.parametrize(("python_model", "score"), CASES)
def test_a_worker_process_takes_the_same_path(tmp_path, python_model, score):
    rows = validate(transaction_instance_example())
    worker = WorkerProcess(saved(tmp_path, python_model), "test model")
    try:
        scores = worker.predict_valid(rows)
        assert list(scores["transaction_id"]) == list(rows["transaction_id"])
        assert (scores["score"] == score).all()
    finally:
        worker.close()
    assert worker.returncode == 0  # stopped cleanly
