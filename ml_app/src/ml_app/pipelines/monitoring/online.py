"""Online monitoring: the decision service's answers judged like the batch, route by route.

user_app's online service publishes ``online_decisions`` (answered by the champion, route
primary, or by the challenger for a canary share of payments) and ``shadow_decisions`` (what the
challenger would have decided, in shadow mode), with one ``prediction_log`` row per model call
naming its route. Here:

* each answered decision gets the route of the call that scored it (the log row with the same
  model version and ``scored_at``); shadow decisions are route shadow;
* per period and route, the realised metrics and policy cost on labelled payments, computed by
  :func:`ml_app.pipelines.monitoring.nodes.realised_performance`, the batch report's own function;
* challenger vs champion on comparable traffic: a shadow scores the very payments the champion
  answered, so both are judged on the payments both scored; a canary answers a sticky share of
  *other* payments (a hash of the transaction id), so each is judged on its own traffic of the
  period, two samples of the same stream;
* alert rule: the challenger's realised cost above the champion's, or its PR-AUC below, by more
  than the margins in ``parameters_monitoring.yml`` (``online``).

A world that never ran the service has no online decisions: the report then has no rows.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ml_app.pipelines.monitoring.nodes import ID, PERIOD_KEYS, realised_performance
from shared_schemas.monitoring import OnlineMonitoringReport

logger = logging.getLogger(__name__)
ROUTE = OnlineMonitoringReport.route
ANSWERING = ("primary", "canary")
CHALLENGERS = ("canary", "shadow")
REPORT_COLUMNS = list(OnlineMonitoringReport.to_schema().columns)
HISTORY_METRICS = ("pr_auc", "expected_cost_per_tx", "n_labelled")
SUMMARY_METRICS = ("n_labelled", "pr_auc", "recall_at_alerts", "expected_cost_per_tx")


def route_online_decisions(
    online_decisions: pd.DataFrame,
    shadow_decisions: pd.DataFrame,
    prediction_log: pd.DataFrame,
    registry: dict[str, Any],
) -> pd.DataFrame:
    """Online and shadow decisions (FraudDecision rows) with the route that scored each.

    An answered decision takes the route of its model call in the prediction log (same model
    version and ``scored_at``). One without a log row (a log not published) is canary if its
    version is the registry's challenger, primary otherwise, with a warning.
    """
    calls = prediction_log
    if ROUTE in calls.columns:
        calls = calls[(calls["channel"] == "online") & calls[ROUTE].isin(ANSWERING)]
    else:  # a log written before routes were logged (contract < 0.1.3)
        calls = calls.iloc[0:0].assign(**{ROUTE: pd.Series(dtype=str)})
    calls = calls[["model_version", "scored_at", ROUTE]].drop_duplicates(
        ["model_version", "scored_at"]
    )
    answered = online_decisions.merge(
        calls, on=["model_version", "scored_at"], how="left", validate="many_to_one"
    )
    unknown = answered[ROUTE].isna()
    if unknown.any():
        challenger = registry["challenger"]["version"]
        guess = np.where(answered["model_version"] == challenger, "canary", "primary")
        answered[ROUTE] = answered[ROUTE].where(~unknown, pd.Series(guess, index=answered.index))
        logger.warning(
            "%d online decisions have no prediction-log row: their route is guessed from the "
            "registry (version %s, the challenger now, as canary; any other as primary).",
            int(unknown.sum()),
            challenger,
        )
    routed = pd.concat([answered, shadow_decisions.assign(**{ROUTE: "shadow"})], ignore_index=True)
    logger.info(
        "Online decisions by route: %s",
        routed.groupby(ROUTE).size().to_dict() if len(routed) else "none",
    )
    return routed


def online_report(
    routed: pd.DataFrame,
    labels: pd.DataFrame,
    costs: dict[str, float],
    params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, list[dict[str, float]]]]:
    """OnlineMonitoringReport rows (performance per route, challenger vs champion, alerts),
    the comparisons as the HTML report shows them, and key figures as MLflow metric histories."""
    if routed.empty:
        logger.info("No online decisions: the online report is empty.")
        report = pd.DataFrame(columns=REPORT_COLUMNS)
        return report, online_summary(report), {}
    by = [ROUTE, "model_version"]
    performance = realised_performance(routed, labels, costs, params, by=by)
    report = pd.concat(
        [
            _long(performance, kind="performance", traffic="own"),
            comparisons(routed, performance, labels, costs, params),
        ],
        ignore_index=True,
    )
    report = apply_online_alerts(report, params["online"], params["min_labelled"])
    report = report[REPORT_COLUMNS]
    fired = report[report["alert"]]
    for r in fired.itertuples():
        logger.warning(
            "Online alert %s: %s v%s %s = %.4g vs champion v%s %.4g: do not promote it "
            "(`make serve` without canary, or a new challenger)",
            f"{r.period_start:%Y-%m-%d}",
            r.route,
            r.model_version,
            r.metric,
            r.value,
            r.champion_version,
            r.champion_value,
        )
    return report, online_summary(report), _history(performance)


def comparisons(
    routed: pd.DataFrame,
    performance: pd.DataFrame,
    labels: pd.DataFrame,
    costs: dict[str, float],
    params: dict[str, Any],
) -> pd.DataFrame:
    """Challenger vs champion per period: canary each on its own traffic, shadow on the
    payments both scored (the champion's figures recomputed on those payments only)."""
    keys = [*PERIOD_KEYS, "model_version"]
    champion = performance[performance[ROUTE] == "primary"]
    canary = performance[performance[ROUTE] == "canary"]
    frames = [_versus(_long(canary, "comparison", "own"), _long(champion, "comparison", "own"))]
    shadow = routed[routed[ROUTE] == "shadow"]
    primary = routed[routed[ROUTE] == "primary"]
    shared = primary[ID][primary[ID].isin(shadow[ID])]
    if len(shared):
        paired = pd.concat(
            [primary[primary[ID].isin(shared)], shadow[shadow[ID].isin(shared)]],
            ignore_index=True,
        )
        both = realised_performance(paired, labels, costs, params, by=[ROUTE, "model_version"])
        frames.append(
            _versus(
                _long(both[both[ROUTE] == "shadow"], "comparison", "shared"),
                _long(both[both[ROUTE] == "primary"], "comparison", "shared"),
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return out.drop(columns=[c for c in out.columns if c not in [*keys, *REPORT_COLUMNS]])


def _long(performance: pd.DataFrame, kind: str, traffic: str) -> pd.DataFrame:
    """Per-route performance in long form (one row per metric)."""
    keys = [*PERIOD_KEYS, ROUTE, "model_version", "mature"]
    if performance.empty:
        return pd.DataFrame(columns=[*keys, "metric", "value", "kind", "traffic"])
    long = performance.melt(id_vars=keys, var_name="metric", value_name="value")
    return long.assign(
        kind=kind, traffic=traffic, champion_version="", champion_value=np.nan, alert=False
    )


def _versus(challenger: pd.DataFrame, champion: pd.DataFrame) -> pd.DataFrame:
    """Each challenger row beside the champion's value of the same period and metric."""
    if challenger.empty or champion.empty:
        return pd.DataFrame(columns=REPORT_COLUMNS)
    base = champion[[*PERIOD_KEYS, "metric", "model_version", "value"]].rename(
        columns={"model_version": "champion_version", "value": "champion_value"}
    )
    return challenger.drop(columns=["champion_version", "champion_value"]).merge(
        base, on=[*PERIOD_KEYS, "metric"], how="inner"
    )


def apply_online_alerts(
    report: pd.DataFrame, rules: dict[str, Any], min_labelled: int
) -> pd.DataFrame:
    """Flag comparison rows where the challenger is worse than the champion by more than the
    margin: realised cost per payment above ``(1 + cost_max_relative_increase)`` x the
    champion's, or PR-AUC below ``(1 - pr_auc_max_relative_drop)`` x the champion's.

    Judged only where both sides have ``min_labelled`` labelled payments (the batch's floor for
    ranking metrics: a canary's share of a week is small and its cost, dominated by a few
    missed frauds, is noisy), and only in mature periods when ``mature_only`` (provisional
    labels hold only frauds)."""
    sides = ["period_start", ROUTE, "model_version", "kind", "traffic", "champion_version"]
    sizes = report.loc[report["metric"] == "n_labelled", [*sides, "value", "champion_value"]]
    sizes = sizes.rename(columns={"value": "_n", "champion_value": "_n_champion"})
    judged = report.merge(sizes, on=sides, how="left", validate="many_to_one")
    compared = (
        (judged["kind"] == "comparison")
        & (judged["_n"] >= min_labelled)
        & (judged["_n_champion"] >= min_labelled)
    )
    if rules["mature_only"]:
        compared = compared & judged["mature"].astype(bool)
    compared = compared.to_numpy()
    value = report["value"].astype(float)
    champion = report["champion_value"].astype(float)
    costlier = (report["metric"] == "expected_cost_per_tx") & (
        value > champion * (1 + rules["cost_max_relative_increase"])
    )
    less_precise = (report["metric"] == "pr_auc") & (
        value < champion * (1 - rules["pr_auc_max_relative_drop"])
    )
    return report.assign(
        alert=compared & (costlier | less_precise).to_numpy(),
        value=value,
        champion_value=champion,
        mature=report["mature"].astype(bool),
    )


def _history(performance: pd.DataFrame) -> dict[str, list[dict[str, float]]]:
    """Key figures per route as MLflow histories (``<route>.<metric>``, step = period index)."""
    history: dict[str, list[dict[str, float]]] = {}
    steps = {p: i for i, p in enumerate(sorted(performance["period_start"].unique()))}
    for row in performance.sort_values([*PERIOD_KEYS, ROUTE, "model_version"]).itertuples():
        for name in HISTORY_METRICS:
            value = getattr(row, name)
            if not np.isnan(value):
                history.setdefault(f"{row.route}.{name}", []).append(
                    {"value": float(value), "step": steps[row.period_start]}
                )
    return history


def online_summary(report: pd.DataFrame) -> pd.DataFrame:
    """The comparison rows as a table for the HTML report: one line per period, route and
    metric, challenger beside champion."""
    rows = report[
        (report["kind"] == "comparison")
        & report["metric"].isin(
            ["n_labelled", "pr_auc", "recall_at_alerts", "expected_cost_per_tx"]
        )
    ]
    return rows[
        [
            "period_start",
            ROUTE,
            "traffic",
            "metric",
            "model_version",
            "value",
            "champion_version",
            "champion_value",
            "mature",
            "alert",
        ]
    ].assign(period_start=lambda df: pd.to_datetime(df["period_start"]).dt.strftime("%Y-%m-%d"))
