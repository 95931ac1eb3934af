import numpy as np
import pandas as pd
import pytest

from ml_app.pipelines.monitoring import nodes
from ml_app.pipelines.monitoring.drift import ks, psi
from shared_schemas.monitoring import MonitoringReport
from tests.conftest import make_instances

PARAMS = {
    "period": "W-SUN",
    "min_labelled": 50,
    "alert_rate": 0.01,
    "reference_sample": 5000,
    "min_drift_rows": 1000,
    "features": ["amount", "tx_count_1h", "amount_to_median_ratio"],
    "alerts": {
        "feature_psi": 0.25,
        "feature_ks": 0.15,
        "score_psi": 0.25,
        "pr_auc_max_relative_drop": 0.2,
        "confirmed_over_estimated": 1.5,
    },
}
COSTS = {"missed_fraud": 150.0, "review": 5.0, "false_decline": 25.0}


def test_psi_and_ks_on_known_distributions():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 20_000)
    assert psi(ref, rng.normal(0, 1, 20_000)) < 0.01
    assert 0.1 < psi(ref, rng.normal(0.5, 1, 20_000)) < 0.5
    assert psi(ref, rng.normal(2, 1, 20_000)) > 1.0
    statistic, pvalue = ks(ref, rng.normal(0, 1, 20_000))
    assert statistic < 0.03 and pvalue > 0.01
    statistic, pvalue = ks(ref, rng.normal(1, 1, 20_000))
    assert statistic > 0.3 and pvalue < 1e-6


def test_an_emptied_bin_signals_drift_without_exploding():
    ref = np.linspace(0.0, 1.0, 10_000)
    missing_lowest_decile = ref[ref >= 0.1][::9]  # ~1000 values spread over 0.1..1
    value = psi(ref, missing_lowest_decile)
    # 10% of the mass vanished: a real shift (> 0.25), but one empty bin is not "infinite
    # drift" (a 1e-6 floor would give about 0.1 * ln(0.1 / 1e-6) = 1.15 for that bin alone)
    assert 0.25 < value < 1.0


def test_periods_too_small_for_drift_statistics_are_skipped(world):
    reference, current, _, decisions = world
    one_day = decisions[decisions["event_time"] < "2025-04-01"]
    assert 0 < len(one_day) < 1000
    drift = nodes.drift_by_period(current, one_day, reference, np.array([0.1, 0.2]), PARAMS)
    assert drift.empty


def decisions_for(
    instances: pd.DataFrame, labels: pd.DataFrame, seed: int = 0, signal: float = 0.5
) -> pd.DataFrame:
    """Decisions of a model that scores fraud ``signal`` higher, as user_app publishes them."""
    rng = np.random.default_rng(seed)
    fraud = labels.set_index("transaction_id")["is_fraud"].reindex(instances["transaction_id"])
    score = np.clip(rng.beta(1, 30, len(instances)) + signal * fraud.to_numpy(), 0, 1)
    decision = np.select([score >= 0.8, score >= 0.033], ["decline", "review"], "approve")
    return pd.DataFrame(
        {
            "transaction_id": instances["transaction_id"],
            "score": score,
            "event_time": instances["event_time"],
            "decision": decision,
            "model_version": "1",
        }
    )


@pytest.fixture(scope="module")
def world():
    instances, labels = make_instances(20_000, seed=7, start="2025-03-03", days=56)
    reference = instances[instances["event_time"] < "2025-03-31"].reset_index(drop=True)
    current = instances[instances["event_time"] >= "2025-03-31"].reset_index(drop=True)
    return reference, current, labels, decisions_for(current, labels)


def registry(pr_auc: float = 0.5) -> dict:
    return {"champion": {"metrics": {"validation.pr_auc": pr_auc}}}


def report_for(reference, current, labels, decisions, pr_auc=0.5):
    performance = nodes.performance_by_period(decisions, labels, COSTS, PARAMS)
    ref_scores = decisions_for(reference, labels, seed=1)["score"].to_numpy()
    drift = nodes.drift_by_period(current, decisions, reference, ref_scores, PARAMS)
    return nodes.build_report(performance, drift, registry(pr_auc), PARAMS)


def test_stationary_data_raises_no_alert(world):
    reference, current, labels, decisions = world
    report, alerts, history = report_for(reference, current, labels, decisions)
    MonitoringReport.validate(report)
    assert alerts == {"retrain_recommended": False, "baseline_pr_auc": 0.5, "alerts": []}
    assert len(history["pr_auc"]) == 4  # four weekly periods


def test_injected_drift_raises_an_alert(world):
    reference, current, labels, decisions = world
    drifted = current.assign(amount=current["amount"] * 3)
    report, alerts, _ = report_for(reference, drifted, labels, decisions)
    assert alerts["retrain_recommended"]
    fired = report[report["alert"]]
    assert set(fired["feature"]) == {"amount"}
    assert set(fired["kind"]) == {"data_drift"}


def test_performance_drop_on_a_mature_period_raises_an_alert(world):
    reference, current, labels, _ = world
    collapsed = decisions_for(current, labels, signal=0.0)  # scores unrelated to fraud now
    report, alerts, _ = report_for(reference, current, labels, collapsed, pr_auc=0.8)
    fired = report[report["alert"] & (report["kind"] == "performance")]
    assert len(fired) and fired["mature"].all() and set(fired["metric"]) == {"pr_auc"}
    assert any("performance pr_auc" in a for a in alerts["alerts"])


def test_more_confirmed_fraud_than_the_model_estimates_raises_an_early_alert(world):
    reference, current, labels, decisions = world
    # frauds confirmed so far while the model's scores say fraud is rare: underestimation,
    # visible before any legitimate label has matured
    young = labels[labels["is_fraud"]].assign(label_source="chargeback")
    timid = decisions.assign(score=decisions["score"] * 0.01, decision="approve")
    performance = nodes.performance_by_period(timid, young, COSTS, PARAMS)
    ref_scores = decisions_for(reference, labels, seed=1)["score"].to_numpy() * 0.01
    drift = nodes.drift_by_period(current, timid, reference, ref_scores, PARAMS)
    report, _, _ = nodes.build_report(performance, drift, registry(), PARAMS)
    fired = report[report["alert"]]
    assert set(fired["metric"]) == {"fraud_rate_confirmed"}
    assert not fired["mature"].any()


def test_immature_labels_are_never_counted_as_legitimate(world):
    _, _, labels, decisions = world
    # only frauds have labels for now (chargebacks arrive first; legit labels need maturity)
    young = labels[labels["is_fraud"]].assign(label_source="chargeback")
    performance = nodes.performance_by_period(decisions, young, COSTS, PARAMS)
    assert not performance["mature"].any()
    assert (performance["n_labelled"] < performance["n_scored"]).all()
    # with one class known there is no ranking metric, and nothing unlabelled counted as legit
    assert performance["pr_auc"].isna().all()
    frauds = decisions.merge(young, on="transaction_id")
    assert performance["n_labelled"].sum() == len(frauds)
    assert performance["fraud_rate_confirmed"].sum() > 0


def test_the_report_draws_realised_performance_of_matured_periods(world):
    reference, current, labels, decisions = world
    _, alerts, _ = report_for(reference, current, labels, decisions)
    performance = nodes.performance_by_period(decisions, labels, COSTS, PARAMS)
    assert performance["mature"].any() and performance["pr_auc"].notna().any()
    drift = nodes.drift_by_period(
        current, decisions, reference, decisions_for(reference, labels, seed=1)["score"], PARAMS
    )
    html = nodes.render_html(performance, drift, alerts, labels)
    assert '<img alt="performance"' in html and '<img alt="drift heatmap"' in html
    assert "No scored period has enough matured labels" not in html


def test_no_chart_is_drawn_empty_and_the_report_says_when_the_first_period_matures(world):
    reference, current, labels, decisions = world
    # labels as known 10 days after the last scored payment: frauds only, nothing matured
    young = labels[labels["is_fraud"]].assign(label_source="chargeback")
    performance = nodes.performance_by_period(decisions, young, COSTS, PARAMS)
    empty_drift = nodes.drift_by_period(
        current.head(10), decisions.head(10), reference, np.zeros(len(reference)), PARAMS
    )
    alerts = {"alerts": [], "retrain_recommended": False, "baseline_pr_auc": 0.5}
    html = nodes.render_html(performance, empty_drift, alerts, young)
    assert "<img" not in html
    assert "No scored period has enough matured labels to judge yet" in html
    assert "No label has matured yet" in html
    assert "No period has enough payments for drift statistics" in html


def test_the_maturity_note_names_the_day_the_first_pending_period_matures():
    performance = pd.DataFrame(
        {
            "period_start": pd.to_datetime(["2025-05-05", "2025-05-12"]),
            "period_end": pd.to_datetime(["2025-05-12", "2025-05-19"]),
            "mature": [True, False],
        }
    )
    labels = pd.DataFrame(
        {
            "event_time": pd.to_datetime(["2025-05-10 10:00", "2025-05-17 09:00"]),
            "label_source": ["matured", "matured"],
            "as_of": pd.to_datetime(["2025-07-01", "2025-07-01"]),
        }
    )
    note = nodes.maturity_note(performance, labels)
    assert "Labels are final up to 2025-05-17" in note and "45 days" in note
    assert "(2025-05-12 .. 2025-05-19) will be on 2025-07-03" in note
