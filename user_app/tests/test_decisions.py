import numpy as np
import pytest

from user_app.decisions import classify, decision_thresholds

COSTS = {"missed_fraud": 150.0, "review": 5.0, "false_decline": 25.0}


def test_thresholds_follow_from_the_cost_model():
    review, decline = decision_thresholds(COSTS)
    assert review == pytest.approx(5 / 150)
    assert decline == pytest.approx(0.8)
    # if a review costs more than a false decline, never review: decline straight away
    review, decline = decision_thresholds({**COSTS, "review": 30.0})
    assert review <= decline


def test_scores_at_a_threshold_take_the_stricter_decision():
    review, decline = decision_thresholds(COSTS)
    decided = classify(np.array([0.0, review, decline, 1.0]), review, decline)
    assert decided.tolist() == ["approve", "review", "decline", "decline"]
