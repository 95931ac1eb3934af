import numpy as np
import pandas as pd
import pytest

from ml_app import evaluation
from shared_runtime.policy import DecisionPolicy

COSTS = {"missed_fraud": 100.0, "review": 1.0, "false_decline": 25.0}


def test_recall_and_cost_metrics_use_the_decision_policy():
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.005, 0.02, 0.03, 0.97, 0.8, 0.995])
    assert evaluation.recall_at_alert_rate(y, s, alert_rate=1 / 3) == 0.5
    policy = DecisionPolicy.from_costs(COSTS)  # review from 0.01, decline from 0.96
    metrics = evaluation.classification_metrics(y, s, policy, alert_rate=1 / 3)
    # reviews: 0.02, 0.03, 0.8 (3 x 1); declines: 0.97 (legitimate, 25) and 0.995 (fraud, 0)
    assert metrics["expected_cost_per_tx"] == pytest.approx((3 + 25) / 6)


def test_matured_until_is_the_last_matured_payments_day():
    labels = pd.DataFrame(
        {
            "event_time": pd.to_datetime(
                ["2025-05-01 10:00", "2025-05-03 23:00", "2025-05-09 00:00"]
            ),
            "label_source": ["matured", "matured", "chargeback"],
        }
    )
    assert evaluation.matured_until(labels) == pd.Timestamp("2025-05-03")
    assert evaluation.matured_until(labels.assign(label_source="chargeback")) is None


class FixedScores:
    """A model that gives the scores it was built with (the gate calls ``predict``)."""

    def __init__(self, scores: pd.DataFrame) -> None:
        self.scores = scores

    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        return self.scores.set_index("transaction_id").loc[rows["transaction_id"]].reset_index()


def test_training_gate_and_monitoring_report_the_same_cost_for_the_same_scores_and_labels():
    from ml_app.pipelines.monitoring.nodes import performance_by_period
    from ml_app.pipelines.promotion.nodes import evaluate_candidate
    from ml_app.pipelines.training.nodes import evaluate_model

    rng = np.random.default_rng(3)
    n = 5_000
    costs = {"missed_fraud": 150.0, "review": 5.0, "false_decline": 25.0}
    p = np.where(rng.random(n) < 0.03, rng.beta(6, 1.5, n), rng.beta(0.4, 9, n))
    rows = pd.DataFrame(
        {
            "transaction_id": np.arange(n),
            # one monitoring week (Monday 2025-05-05 .. Sunday 2025-05-11)
            "event_time": pd.Timestamp("2025-05-05")
            + pd.to_timedelta(rng.integers(0, 6 * 86_400, n), "s"),
            "is_fraud": rng.random(n) < p,
        }
    )
    scores = pd.DataFrame({"transaction_id": rows["transaction_id"], "score": p})
    labels = rows.assign(label_source="matured")
    policy = DecisionPolicy.from_costs(costs)

    gate = evaluate_candidate(FixedScores(scores), rows, costs, {"alert_rate": 0.01})
    validation, _, _ = evaluate_model(scores, rows, {"alert_rate": 0.01}, costs)
    # what user_app publishes: the policy's decision per score
    decisions = rows[["transaction_id", "event_time"]].assign(
        score=p, decision=policy.decide(p), model_version="1"
    )
    monitoring = performance_by_period(
        decisions,
        labels,
        costs,
        {"period": "W-SUN", "min_labelled": 200, "alert_rate": 0.01},
    )
    assert len(monitoring) == 1
    assert set(policy.decide(p)) == {"approve", "review", "decline"}
    realised = monitoring["expected_cost_per_tx"].iloc[0]
    assert gate["expected_cost_per_tx"] == pytest.approx(realised, rel=1e-12)
    assert validation["expected_cost_per_tx"]["value"] == pytest.approx(realised, rel=1e-12)
