"""Online monitoring: the service's decisions judged per route with the batch report's functions."""

import zlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from ml_app.pipelines.monitoring import nodes, online
from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.policy import DecisionPolicy, classify
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from shared_schemas.monitoring import OnlineMonitoringReport
from shared_schemas.strategies import contract_frames
from tests.conftest import make_instances
from tests.pipelines.monitoring.test_nodes import COSTS, PARAMS

RULES = {"cost_max_relative_increase": 0.1, "pr_auc_max_relative_drop": 0.1, "mature_only": True}
ONLINE_PARAMS = {**PARAMS, "online": RULES}
POLICY = DecisionPolicy.from_costs(COSTS)
REGISTRY = {"champion": {"version": "1"}, "challenger": {"version": "2"}}
LOG0 = PredictionLog.validate(  # no prediction log published
    pd.DataFrame({c: pd.Series(dtype=object) for c in PredictionLog.to_schema().columns})
)
METRICS = [
    "n_scored",
    "n_labelled",
    "label_coverage",
    "fraud_rate_confirmed",
    "fraud_rate_estimated",
    "pr_auc",
    "recall_at_alerts",
    "decline_precision",
    "expected_cost_per_tx",
]


def decide(
    payments: pd.DataFrame, labels: pd.DataFrame, version: str, seed: int, signal: float
) -> pd.DataFrame:
    """FraudDecision rows as the service publishes them: a model scoring fraud ``signal``
    higher, decided by the shared policy; one model call (``scored_at``) per payment."""
    # noise drawn per payment: two models of the same seed score a payment alike
    ids = payments["transaction_id"].to_numpy()
    noise = np.random.default_rng(seed).beta(1, 30, int(ids.max()) + 1)[ids]
    fraud = labels.set_index("transaction_id")["is_fraud"].reindex(payments["transaction_id"])
    score = np.clip(noise + signal * fraud.to_numpy(), 0, 1)
    scored_at = payments["event_time"] + pd.Timedelta(milliseconds=int(version) * 7)
    return FraudDecision.validate(
        pd.DataFrame(
            {
                "transaction_id": payments["transaction_id"].to_numpy(),
                "score": score,
                "event_time": payments["event_time"].to_numpy(),
                "decision": classify(score, POLICY.review_threshold, POLICY.decline_threshold),
                "review_threshold": POLICY.review_threshold,
                "decline_threshold": POLICY.decline_threshold,
                "model_name": "fraud-detector",
                "model_version": version,
                "scored_at": scored_at.to_numpy(),
                "user_app_version": "0.1.0",
            }
        )
    )


def log_of(decisions: pd.DataFrame, route: str) -> pd.DataFrame:
    """One PredictionLog row per model call (here one call per payment)."""
    counts = {d: (decisions["decision"] == d).astype(int) for d in ("approve", "review", "decline")}
    return PredictionLog.validate(
        pd.DataFrame(
            {
                "request_id": [f"{route}-{i}" for i in decisions["transaction_id"]],
                "channel": "online",
                "model_name": "fraud-detector",
                "model_version": decisions["model_version"],
                "model_run_id": "run",
                "scored_at": decisions["scored_at"],
                "n_rows": 1,
                "latency_ms": 2.0,
                "n_approve": counts["approve"],
                "n_review": counts["review"],
                "n_decline": counts["decline"],
                "user_app_version": "0.1.0",
                "route": route,
            }
        )
    )


def service_output(
    payments: pd.DataFrame, labels: pd.DataFrame, canary_signal: float = 0.5
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What the service publishes with a 20% canary of v2 and v2 in shadow on half of the
    champion's payments: online decisions, shadow decisions, prediction log."""
    share = payments["transaction_id"].map(lambda i: zlib.crc32(str(i).encode()) % 100)
    to_canary = payments[share < 20]
    to_champion = payments[share >= 20]
    champion = decide(to_champion, labels, "1", seed=1, signal=0.5)
    canary = decide(to_canary, labels, "2", seed=1, signal=canary_signal)
    shadow = decide(to_champion.iloc[::2], labels, "2", seed=1, signal=canary_signal)
    answered = pd.concat([champion, canary], ignore_index=True)
    log = pd.concat(
        [log_of(champion, "primary"), log_of(canary, "canary"), log_of(shadow, "shadow")],
        ignore_index=True,
    )
    return answered, shadow, log


@pytest.fixture(scope="module")
def world():
    instances, labels = make_instances(20_000, seed=7, start="2025-03-03", days=56)
    payments = instances[instances["event_time"] >= "2025-03-31"].reset_index(drop=True)
    return payments, labels


def test_each_route_gets_the_batch_functions_figures_on_its_own_rows(world):
    payments, labels = world
    answered, shadow, log = service_output(payments, labels)
    routed = online.route_online_decisions(answered, shadow, log, REGISTRY)
    report, _, history = online.online_report(routed, labels, COSTS, ONLINE_PARAMS)
    OnlineMonitoringReport.validate(report)
    own = report[report["kind"] == "performance"]
    assert set(own["route"]) == {"primary", "canary", "shadow"}
    for route, rows in (
        ("primary", answered[answered["model_version"] == "1"]),
        ("canary", answered[answered["model_version"] == "2"]),
        ("shadow", shadow),
    ):
        batch = nodes.performance_by_period(rows, labels, COSTS, PARAMS)
        got = own[own["route"] == route].pivot_table(
            index="period_start", columns="metric", values="value", dropna=False
        )
        expected = batch.set_index("period_start")[METRICS]
        pd.testing.assert_frame_equal(
            got[METRICS], expected, check_names=False, check_freq=False, check_index_type=False
        )
    assert history["canary.expected_cost_per_tx"] and history["primary.pr_auc"]


def test_a_shadow_is_compared_on_the_payments_both_scored(world):
    payments, labels = world
    answered, shadow, log = service_output(payments, labels)
    routed = online.route_online_decisions(answered, shadow, log, REGISTRY)
    report, _, _ = online.online_report(routed, labels, COSTS, ONLINE_PARAMS)
    versus = report[(report["kind"] == "comparison") & (report["route"] == "shadow")]
    assert set(versus["traffic"]) == {"shared"} and set(versus["champion_version"]) == {"1"}
    champion_on_shared = answered[answered["transaction_id"].isin(shadow["transaction_id"])]
    assert len(champion_on_shared) == len(shadow) < len(answered) // 2
    batch = nodes.performance_by_period(champion_on_shared, labels, COSTS, PARAMS)
    cost = versus[versus["metric"] == "expected_cost_per_tx"].sort_values("period_start")
    assert cost["champion_value"].to_list() == batch["expected_cost_per_tx"].to_list()
    # the canary answers other payments: each side is judged on its own traffic
    canary = report[(report["kind"] == "comparison") & (report["route"] == "canary")]
    assert set(canary["traffic"]) == {"own"}
    primary = report[(report["kind"] == "performance") & (report["route"] == "primary")]
    merged = canary.merge(primary, on=["period_start", "metric"], suffixes=("", "_primary"))
    assert np.allclose(merged["champion_value"], merged["value_primary"], equal_nan=True)


def test_a_worse_challenger_raises_an_alert_and_an_equal_one_does_not(world):
    payments, labels = world
    answered, shadow, log = service_output(payments, labels, canary_signal=0.5)
    routed = online.route_online_decisions(answered, shadow, log, REGISTRY)
    report, _, _ = online.online_report(routed, labels, COSTS, ONLINE_PARAMS)
    # the same model in shadow scores the same payments alike: equal figures, no alert
    shadow_rows = report[(report["route"] == "shadow") & (report["kind"] == "comparison")]
    assert np.allclose(shadow_rows["value"], shadow_rows["champion_value"], equal_nan=True)
    assert not shadow_rows["alert"].any()
    answered, shadow, log = service_output(payments, labels, canary_signal=0.0)  # blind model
    routed = online.route_online_decisions(answered, shadow, log, REGISTRY)
    report, _, _ = online.online_report(routed, labels, COSTS, ONLINE_PARAMS)
    fired = report[report["alert"]]
    assert set(fired["route"]) == {"canary", "shadow"} and fired["mature"].all()
    assert set(fired["metric"]) == {"expected_cost_per_tx", "pr_auc"}
    assert (fired["kind"] == "comparison").all()


def comparison(metric: str, value: float, champion: float, mature: bool = True) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period_start": [pd.Timestamp("2025-05-05")],
            "period_end": [pd.Timestamp("2025-05-12")],
            "route": ["canary"],
            "model_version": ["2"],
            "kind": ["comparison"],
            "traffic": ["own"],
            "metric": [metric],
            "value": [value],
            "champion_version": ["1"],
            "champion_value": [champion],
            "mature": [mature],
            "alert": [False],
        }
    )


@pytest.mark.parametrize(
    ("metric", "value", "fires"),
    [
        ("expected_cost_per_tx", 2.19, False),  # 9.5% above the champion's 2.0: within 10%
        ("expected_cost_per_tx", 2.21, True),
        ("pr_auc", 0.541, False),  # 0.6 x 0.9 = 0.54
        ("pr_auc", 0.539, True),
        ("recall_at_alerts", 0.0, False),  # no rule on other metrics
    ],
)
def test_the_canary_alert_fires_beyond_the_configured_margin(metric, value, fires):
    champion = 2.0 if metric == "expected_cost_per_tx" else 0.6

    def judged(mature=True, rules=RULES, n=(500.0, 2000.0)):
        rows = comparison(metric, value, champion, mature)
        sizes = comparison("n_labelled", n[0], n[1], mature)
        report = online.apply_online_alerts(pd.concat([rows, sizes]), rules, min_labelled=200)
        return bool(report["alert"].iloc[0])

    assert judged() == fires
    assert not judged(mature=False)  # mature_only: provisional labels hold only frauds
    assert judged(mature=False, rules={**RULES, "mature_only": False}) == fires
    assert not judged(n=(150.0, 2000.0))  # too few labelled canary payments to judge


def test_routes_come_from_the_prediction_log_even_after_a_promotion(world):
    payments, labels = world
    first, second = payments.iloc[:100], payments.iloc[100:200]
    canary = decide(first, labels, "2", seed=1, signal=0.5)  # v2 as canary, then promoted
    promoted = decide(second, labels, "2", seed=2, signal=0.5).assign(
        scored_at=lambda df: df["scored_at"] + pd.Timedelta(seconds=1)
    )
    log = pd.concat([log_of(canary, "canary"), log_of(promoted, "primary")], ignore_index=True)
    answered = pd.concat([canary, promoted], ignore_index=True)
    no_shadow = answered.iloc[0:0]
    routed = online.route_online_decisions(answered, no_shadow, log, REGISTRY)
    assert routed["route"].to_list() == ["canary"] * 100 + ["primary"] * 100
    # without its log, a decision's route is guessed from the registry's challenger
    guessed = online.route_online_decisions(answered, no_shadow, log.iloc[0:0], REGISTRY)
    assert set(guessed["route"]) == {"canary"}


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(contract_frames(FraudDecision, size=5))
def test_any_contract_valid_online_decisions_get_a_route(decisions):
    routed = online.route_online_decisions(decisions, decisions.iloc[0:0], LOG0, REGISTRY)
    expected = np.where(decisions["model_version"] == "2", "canary", "primary")
    assert routed["route"].to_list() == expected.tolist()


def test_a_world_without_the_online_service_has_no_online_rows(tmp_path, world):
    absent = {
        name: ExchangeParquetDataset(
            filepath=str(tmp_path / "exchange" / name),
            partition_by=by,
            contract=contract,
            missing_ok=True,
        ).load()
        for name, by, contract in (
            ("online_decisions", "event_time", FraudDecision),
            ("shadow_decisions", "event_time", FraudDecision),
            ("prediction_log", "scored_at", PredictionLog),
        )
    }
    FraudDecision.validate(absent["online_decisions"])  # what the catalog's validator does
    PredictionLog.validate(absent["prediction_log"])
    assert all(frame.empty for frame in absent.values())
    routed = online.route_online_decisions(
        absent["online_decisions"], absent["shadow_decisions"], absent["prediction_log"], REGISTRY
    )
    report, _, history = online.online_report(routed, world[1], COSTS, ONLINE_PARAMS)
    assert report.empty and history == {}
    assert list(OnlineMonitoringReport.validate(report).columns) == online.REPORT_COLUMNS
    # the batch page is unchanged but for a sentence saying there was nothing online
    payments, labels = world
    decisions = decide(payments, labels, "1", seed=1, signal=0.5)
    performance = nodes.performance_by_period(decisions, labels, COSTS, PARAMS)
    drift = nodes.drift_by_period(payments.head(10), decisions.head(10), payments, [0.1], PARAMS)
    alerts = {"alerts": [], "retrain_recommended": False, "baseline_pr_auc": 0.5}
    before = nodes.render_html(performance, drift, alerts, labels)
    after = nodes.render_html(performance, drift, alerts, labels, online.online_summary(report))
    assert before == after and "No online decisions were published" in after


def test_a_published_online_table_is_read_as_its_base_class_reads_it(tmp_path, world):
    payments, labels = world
    decisions = decide(payments.head(50), labels, "1", seed=1, signal=0.5)
    path = str(tmp_path / "online_decisions")
    ExchangeParquetDataset(filepath=path, partition_by="event_time", contract=FraudDecision).save(
        decisions
    )
    optional = ExchangeParquetDataset(
        filepath=path, partition_by="event_time", contract=FraudDecision, missing_ok=True
    )
    loaded = optional.load()
    assert optional.loaded_version == 0
    pd.testing.assert_frame_equal(
        FraudDecision.validate(loaded).reset_index(drop=True),
        decisions.reset_index(drop=True),
        check_dtype=False,
    )


def test_a_payment_decided_twice_on_one_route_is_refused(world):
    payments, labels = world
    once = decide(payments.head(20), labels, "1", seed=1, signal=0.5).assign(route="primary")
    with pytest.raises(ValueError, match="decided twice"):
        nodes.realised_performance(
            pd.concat([once, once.tail(1)]), labels, COSTS, PARAMS, by=["route", "model_version"]
        )
