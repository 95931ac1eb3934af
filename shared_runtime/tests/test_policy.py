import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from shared_runtime.policy import DecisionPolicy

COSTS = {"missed_fraud": 150.0, "review": 5.0, "false_decline": 25.0}
SHARED = OmegaConf.load(__file__.rsplit("/shared_runtime/", 1)[0] + "/conf/shared.yml")


def test_thresholds_follow_from_the_cost_model():
    policy = DecisionPolicy.from_costs(COSTS)
    assert policy.review_threshold == pytest.approx(5 / 150)
    assert policy.decline_threshold == pytest.approx(1 - 5 / 25)
    # a review dearer than a false decline: never review, one approve/decline cut-off where
    # declining starts to beat approving, F / (M + F)
    dear = DecisionPolicy.from_costs({**COSTS, "review": 30.0})
    assert not dear.reviews
    assert dear.decline_threshold == dear.review_threshold == pytest.approx(25 / 175)
    assert set(dear.decide(np.linspace(0, 1, 101))) == {"approve", "decline"}
    # 0.17 is declined: declining costs 0.83 * 25 = 20.75, approving 0.17 * 150 = 25.5
    assert list(dear.decide([0.17])) == ["decline"]


def _action_costs(policy, score):
    return {
        "approve": score * policy.missed_fraud,
        "review": policy.review,
        "decline": (1 - score) * policy.false_decline,
    }


_COST = st.floats(min_value=0.01, max_value=1e4, allow_nan=False, allow_infinity=False)


@given(
    missed=_COST,
    review=_COST,
    false_decline=_COST,
    scores=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=20),
)
def test_the_chosen_action_has_the_lowest_expected_cost(missed, review, false_decline, scores):
    policy = DecisionPolicy(missed, review, false_decline)
    assert 0 <= policy.review_threshold <= policy.decline_threshold <= 1
    for score, decision in zip(scores, policy.decide(scores), strict=True):
        costs = _action_costs(policy, score)
        # ties allowed (at a threshold two actions cost the same, up to rounding)
        assert costs[decision] <= min(costs.values()) * (1 + 1e-9) + 1e-9, (score, costs)


def test_the_shared_conf_is_a_valid_cost_model():
    policy = DecisionPolicy.from_costs(OmegaConf.to_container(SHARED.decision_costs))
    assert 0 < policy.review_threshold < policy.decline_threshold < 1


def test_decide_at_the_thresholds():
    policy = DecisionPolicy.from_costs(COSTS)
    scores = [0.0, 5 / 150 - 1e-9, 5 / 150, 0.5, 0.8 - 1e-9, 0.8, 1.0]
    assert list(policy.decide(scores)) == [
        "approve",
        "approve",
        "review",
        "review",
        "review",
        "decline",
        "decline",
    ]


def test_cost_counts_missed_frauds_reviews_and_false_declines():
    policy = DecisionPolicy.from_costs(COSTS)
    y = np.array([1, 0, 1, 0, 1, 0])
    d = np.array(["approve", "approve", "review", "review", "decline", "decline"])
    # missed fraud 150 + 2 reviews 10 + one false decline 25 (the declined fraud costs nothing)
    assert policy.cost_per_transaction(y, d) == pytest.approx((150 + 10 + 25) / 6)
    scores = np.array([0.01, 0.01, 0.5, 0.5, 0.9, 0.9])
    assert policy.expected_cost(y, scores) == pytest.approx((150 + 10 + 25) / 6)
    assert policy.cost_without_model(y) == pytest.approx(150 * 3 / 6)
    assert np.isnan(policy.cost_per_transaction([], []))


def test_calibrated_scores_minimise_expected_cost_at_the_policy():
    """For calibrated scores, no other constant-threshold rule is cheaper on average."""
    rng = np.random.default_rng(0)
    p = rng.beta(0.3, 8, 200_000)
    y = rng.random(len(p)) < p
    policy = DecisionPolicy.from_costs(COSTS)
    best = policy.expected_cost(y, p)
    for review in (0.01, 0.06, 0.1):
        for decline in (0.6, 0.95):
            d = np.select([p >= decline, p >= review], ["decline", "review"], "approve")
            assert best < policy.cost_per_transaction(y, d)


@pytest.mark.parametrize(
    ("costs", "message"),
    [
        ({"missed_fraud": 150.0, "review": 5.0}, "missing \\['false_decline'\\]"),
        ({**COSTS, "chargeback_fee": 1.0}, "unknown \\['chargeback_fee'\\]"),
        ({**COSTS, "review": "cheap"}, "review='cheap' is not a number"),
        ({**COSTS, "review": 0}, "review=0 must be positive"),
    ],
)
def test_bad_cost_models_are_refused_with_their_source(costs, message):
    with pytest.raises(ValueError, match=message) as error:
        DecisionPolicy.from_costs(costs)
    assert "conf/shared.yml" in str(error.value)


def test_unknown_decisions_and_mismatched_lengths_are_refused():
    policy = DecisionPolicy.from_costs(COSTS)
    with pytest.raises(ValueError, match="Unknown decision"):
        policy.cost_per_transaction([1], ["block"])
    with pytest.raises(ValueError, match="2 outcomes but 1 decisions"):
        policy.cost_per_transaction([1, 0], ["review"])


def test_describe_records_costs_and_thresholds():
    described = DecisionPolicy.from_costs(COSTS).describe()
    assert described["costs"] == COSTS
    assert described["review_threshold"] == pytest.approx(5 / 150)
    assert described["decline_threshold"] == pytest.approx(0.8)


def test_the_policy_imports_numpy_only():
    """Every app imports it, etl_app included (no MLflow there) and the served model too."""
    import subprocess
    import sys

    probe = (
        "import sys, shared_runtime.policy; "
        "print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'pandas', 'kedro', 'mlflow', 'kedro_mlflow', 'sklearn', 'shared_schemas'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
