import pandas as pd
import pytest

from shared_schemas.examples import transaction_instance_example
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from user_app.datasets import ScoringModel
from user_app.pipelines.batch_scoring import nodes

COSTS = {"missed_fraud": 150.0, "review": 5.0, "false_decline": 25.0}


class FixedScores:
    def predict(self, data):
        return pd.DataFrame({"transaction_id": data["transaction_id"], "score": [0.01, 0.9]})


def test_decisions_and_log_honour_their_contracts():
    instances = transaction_instance_example()
    model = ScoringModel(FixedScores(), "fraud-detector", "4", "run123", "@champion")
    scores, scoring = nodes.score_instances(model, instances)
    decisions, log = nodes.decide(scores, instances, scoring, COSTS)
    FraudDecision.validate(decisions)
    PredictionLog.validate(log)
    assert decisions["decision"].tolist() == ["approve", "decline"]
    assert set(decisions["model_version"]) == {"4"}
    row = log.iloc[0]
    assert (row["n_rows"], row["n_approve"], row["n_decline"]) == (2, 1, 1)
    assert row["model_run_id"] == "run123"


def test_an_empty_window_says_how_to_publish_it():
    with pytest.raises(ValueError, match="make run-etl"):
        nodes.select_window(
            transaction_instance_example(), {"window": {"start": "2030-01-01", "end": "2030-02-01"}}
        )
