"""The service calls a pipeline model's documented fast path on rows it has validated itself,
and any other pyfunc model through ``predict``, checks included."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from shared_schemas.examples import transaction_instance_example
from user_app.datasets import ScoringModel
from user_app.online.service import predict_valid, validate


class Plain(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"transaction_id": model_input["transaction_id"], "score": 0.25})


class WithFastPath(Plain):
    """Like ml_app's LeanPipelineModel: ``predict`` checks, ``predict_validated`` trusts."""

    def predict(self, context, model_input, params=None):
        raise AssertionError("the service validated these rows: predict must not run again")

    def predict_validated(self, valid_instances):
        return pd.DataFrame({"transaction_id": valid_instances["transaction_id"], "score": 0.5})


def loaded(tmp_path, python_model) -> ScoringModel:
    path = tmp_path / type(python_model).__name__
    mlflow.pyfunc.save_model(str(path), python_model=python_model)
    return ScoringModel(mlflow.pyfunc.load_model(str(path)), "m", "1", "run", "@champion")


@pytest.mark.parametrize(("python_model", "score"), [(WithFastPath(), 0.5), (Plain(), 0.25)])
def test_validated_rows_take_the_fast_path_when_the_model_has_one(tmp_path, python_model, score):
    rows = validate(transaction_instance_example())
    scores = predict_valid(loaded(tmp_path, python_model), rows)
    assert list(scores["transaction_id"]) == list(rows["transaction_id"])
    assert (scores["score"] == score).all()
