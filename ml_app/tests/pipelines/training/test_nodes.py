import numpy as np
import pandas as pd
import pytest

from ml_app.pipelines.inference.nodes import predict_scores
from ml_app.pipelines.training import nodes
from ml_app.pipelines.training.nodes import build_model_input
from shared_runtime.policy import DecisionPolicy


def test_split_is_by_time_and_uses_only_labelled_rows(data, params):
    instances, labels = data
    unlabelled = labels.sample(frac=0.2, random_state=1)["transaction_id"]
    train, valid = nodes.split_by_time(
        instances, labels[~labels["transaction_id"].isin(unlabelled)], params["training"]
    )
    assert train["event_time"].max() < pd.Timestamp("2025-04-01") <= valid["event_time"].min()
    assert valid["event_time"].max() < pd.Timestamp("2025-05-12")
    assert not set(train["transaction_id"]) & set(valid["transaction_id"])
    assert not (set(train["transaction_id"]) | set(valid["transaction_id"])) & set(unlabelled)


def test_split_says_what_to_do_when_a_window_is_empty(data, params):
    instances, labels = data
    window = {"train_start": "2030-01-01", "train_end": "2030-02-01", "valid_end": "2030-03-01"}
    with pytest.raises(ValueError, match="make run-etl"):
        nodes.split_by_time(instances, labels, {**params["training"], "window": window})


def test_preprocessor_imputes_and_ignores_unknown_categories(data, params):
    instances, labels = data
    train, _ = nodes.split_by_time(instances, labels, params["training"])
    preprocessor = nodes.fit_preprocessor(train, params["training"])
    odd = instances.head(3).assign(merchant_category="jewelry", amount_to_median_ratio=np.nan)
    out = build_model_input(odd, preprocessor)
    assert not out.isna().any().any()
    assert list(out.index) == list(odd["transaction_id"])
    assert "missingindicator_amount_to_median_ratio" in out.columns


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "logistic_regression"])
def test_both_model_families_learn_the_signal(data, params, family):
    instances, labels = data
    model = {**params["training"]["model"], "family": family}
    # the shipped leaf size suits ~400k training rows of the demo world; these 12k synthetic
    # rows need smaller leaves to show the signal is learnt
    model["hist_gradient_boosting"] = {**model["hist_gradient_boosting"], "min_samples_leaf": 50}
    p = {**params["training"], "model": model}
    train, valid = nodes.split_by_time(instances, labels, p)
    preprocessor = nodes.fit_preprocessor(train, p)
    model_input = build_model_input(instances, preprocessor)
    classifier = nodes.fit_classifier(model_input, train, p)
    compiled = nodes.compile_model(preprocessor, classifier, train, p)
    assert compiled.compiled
    scores = predict_scores(instances, compiled)
    metrics, policy, _ = nodes.evaluate_model(
        scores, valid, params["evaluation"], params["decision_costs"]
    )
    assert metrics["roc_auc"]["value"] > 0.8
    assert metrics["pr_auc"]["value"] > 2 * metrics["fraud_rate"]["value"]
    assert (
        metrics["expected_cost_per_tx"]["value"] < metrics["expected_cost_no_model_per_tx"]["value"]
    )
    # the policy evaluated is the deployed one: the shared cost model's thresholds
    deployed = DecisionPolicy.from_costs(params["decision_costs"])
    assert policy["review_threshold"] == deployed.review_threshold
    assert policy["decline_threshold"] == deployed.decline_threshold
    assert policy["costs"] == params["decision_costs"]
    assert metrics["review_threshold"]["value"] == policy["review_threshold"]


def test_unknown_model_family_is_refused_with_the_options():
    with pytest.raises(ValueError, match="hist_gradient_boosting"):
        nodes.make_classifier({"family": "xgboost"})
