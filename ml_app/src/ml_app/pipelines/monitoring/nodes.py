"""monitoring: how the deployed models really did, and whether the data moved under them.

It lives in ml_app because the reference it compares against is ml_app's knowledge: the
champion's training window (from its run's parameters) and the champion model itself. user_app
only publishes what it decided (FraudDecision); etl_app publishes the labels as they mature.

* Realised performance per period and model version is computed on *labelled* payments only:
  a payment without a label yet is left out, never counted as legitimate. A period is *mature*
  when labels have matured past its end; before that its figures are provisional, and the mean
  score (the model's own estimate of the fraud rate) is reported beside the confirmed fraud rate
  (chargebacks received so far over payments scored, a lower bound).
* Data drift: PSI and KS of each monitored feature in the period against the champion's
  training window; score drift: PSI of the period's scores against the champion's scores on
  that window.
* Alert rules (parameters_monitoring.yml) flag values; any alert recommends retraining. One rule
  needs no mature labels: confirmed frauds (a lower bound) exceeding the model's own estimate.
"""

from __future__ import annotations

import base64
import io
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml_app.evaluation import matured_until, recall_at_alert_rate
from ml_app.model_process import check_scored_version
from ml_app.pipelines.monitoring.drift import ks, psi
from shared_runtime.policy import DecisionPolicy
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.ml_to_user import FraudDecision

if TYPE_CHECKING:  # matplotlib and scikit-learn are imported by the nodes that use them
    from matplotlib.figure import Figure
else:  # what Kedro's type-hint extraction resolves, without importing the library
    Figure = Any

logger = logging.getLogger(__name__)
ID = TransactionInstance.transaction_id
TIME = TransactionInstance.event_time
TARGET = FraudLabel.is_fraud
SCORE = FraudDecision.score
TRAIN_START, TRAIN_END = "training.window.train_start", "training.window.train_end"
PERIOD_KEYS = ["period_start", "period_end"]
REPORT_TEMPLATE = "report.html.j2"  # in templates/, shipped with the package


def _periods(times: pd.Series, freq: str) -> pd.DataFrame:
    start = times.dt.to_period(freq).dt.start_time
    end = times.dt.to_period(freq).dt.end_time.dt.floor("D") + pd.Timedelta(days=1)
    return pd.DataFrame({"period_start": start, "period_end": end}, index=times.index)


def reference_instances(
    instances: pd.DataFrame, registry: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """A sample of the instances of the champion's training window: what "normal" looks like."""
    run_params = registry["champion"]["params"]
    start, end = pd.Timestamp(run_params[TRAIN_START]), pd.Timestamp(run_params[TRAIN_END])
    window = instances[(instances[TIME] >= start) & (instances[TIME] < end)]
    if window.empty:
        raise ValueError(
            f"No instances in the champion's training window {start.date()}..{end.date()}: "
            "publish them with etl_app before monitoring."
        )
    n = min(params["reference_sample"], len(window))
    return window.sample(n=n, random_state=0).reset_index(drop=True)


def reference_scores(
    champion_model: Any, registry: dict[str, Any], reference: pd.DataFrame
) -> np.ndarray:
    """The champion's scores on its own training window (the baseline for score drift); the
    champion must be the registry snapshot's, whose window and metrics the report uses."""
    check_scored_version(champion_model, registry, "champion")
    return pd.DataFrame(champion_model.predict(reference))[SCORE].to_numpy()


def performance_by_period(
    decisions: pd.DataFrame,
    labels: pd.DataFrame,
    costs: dict[str, float],
    params: dict[str, Any],
) -> pd.DataFrame:
    """Realised performance per period and model version, on labelled payments only.

    ``expected_cost_per_tx`` is the cost of the published decisions under the shared decision
    policy's cost model, the figure the promotion gate and training compute from scores.
    """
    return realised_performance(decisions, labels, costs, params, by=["model_version"])


def realised_performance(
    decisions: pd.DataFrame,
    labels: pd.DataFrame,
    costs: dict[str, float],
    params: dict[str, Any],
    by: list[str],
) -> pd.DataFrame:
    """Realised performance per period and group ``by`` (e.g. model version, or route and model
    version for online decisions): the one definition of every monitored metric."""
    policy = DecisionPolicy.from_costs(costs)
    # a payment is decided once per group, but may be in two (online: champion and shadow)
    repeated = decisions.duplicated([ID, *by])
    if repeated.any():
        raise ValueError(
            f"{int(repeated.sum())} payments are decided twice within one {by} group (e.g. "
            f"transaction {decisions.loc[repeated, ID].iloc[0]}): republish the decisions."
        )
    frame = decisions.join(_periods(decisions[TIME], params["period"]))
    frame = frame.merge(labels[[ID, TARGET]], on=ID, how="left", validate="many_to_one")
    final_until = matured_until(labels)
    rows = []
    for keys, part in frame.groupby([*PERIOD_KEYS, *by]):
        start, end, *groups = keys
        rows.append(
            {
                "period_start": start,
                "period_end": end,
                **{name: str(value) for name, value in zip(by, groups, strict=True)},
                "mature": final_until is not None and bool(end <= final_until),
                **_realised(part, policy, params),
            }
        )
    return pd.DataFrame(rows)


def _realised(part: pd.DataFrame, policy: DecisionPolicy, params: dict[str, Any]) -> dict:
    """The metrics of one group of decisions joined with their labels (NaN: no label yet)."""
    from sklearn.metrics import average_precision_score

    known = part[part[TARGET].notna()]
    y = known[TARGET].astype(bool).to_numpy()
    s = known[SCORE].to_numpy()
    enough = len(known) >= params["min_labelled"] and 0 < y.sum() < len(y)
    declined = known["decision"] == "decline"
    return {
        "n_scored": float(len(part)),
        "n_labelled": float(len(known)),
        "label_coverage": len(known) / len(part),
        # confirmed frauds over everything scored: a lower bound until the period matures
        "fraud_rate_confirmed": float(y.sum() / len(part)),
        "fraud_rate_estimated": float(part[SCORE].mean()),
        "pr_auc": float(average_precision_score(y, s)) if enough else np.nan,
        "recall_at_alerts": (
            recall_at_alert_rate(y.astype(int), s, params["alert_rate"]) if enough else np.nan
        ),
        "decline_precision": float(y[declined.to_numpy()].mean()) if declined.any() else np.nan,
        "expected_cost_per_tx": policy.cost_per_transaction(y, known["decision"]),
    }


def drift_by_period(
    instances: pd.DataFrame,
    decisions: pd.DataFrame,
    reference: pd.DataFrame,
    ref_scores: np.ndarray,
    params: dict[str, Any],
) -> pd.DataFrame:
    """PSI and KS per period of each monitored feature, and PSI of the scores."""
    scored = decisions[[ID, TIME, SCORE, "model_version"]].merge(
        instances.drop(columns=[TIME]), on=ID, how="left", validate="one_to_one"
    )
    scored = scored.join(_periods(scored[TIME], params["period"]))
    rows = []
    for (start, end, version), part in scored.groupby([*PERIOD_KEYS, "model_version"]):
        base = {"period_start": start, "period_end": end, "model_version": str(version)}
        if len(part) < params["min_drift_rows"]:
            logger.info("Drift not computed for %s..%s: only %d payments", start, end, len(part))
            continue
        for feature in params["features"]:
            ref = reference[feature].astype(float).to_numpy()
            cur = part[feature].astype(float).to_numpy()
            statistic, pvalue = ks(ref, cur)
            rows.append(
                {
                    **base,
                    "kind": "data_drift",
                    "feature": feature,
                    "psi": psi(ref, cur),
                    "ks_stat": statistic,
                    "ks_pvalue": pvalue,
                }
            )
        rows.append(
            {
                **base,
                "kind": "score_drift",
                "feature": "score",
                "psi": psi(ref_scores, part[SCORE].to_numpy()),
                "ks_stat": np.nan,
                "ks_pvalue": np.nan,
            }
        )
    columns = [*PERIOD_KEYS, "model_version", "kind", "feature", "psi", "ks_stat", "ks_pvalue"]
    return pd.DataFrame(rows, columns=columns)


def build_report(
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    registry: dict[str, Any],
    params: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, list[dict[str, float]]]]:
    """The MonitoringReport rows with alert flags, the alert summary, and MLflow metric history."""
    rules = params["alerts"]
    baseline = registry["champion"]["metrics"].get("validation.pr_auc")
    keys = [*PERIOD_KEYS, "model_version"]
    # Confirmed frauds are a lower bound (chargebacks keep arriving), so confirmed > factor x
    # estimated means the model underestimates fraud for sure, weeks before labels mature.
    flags = performance[[*keys, "mature"]].assign(
        underestimated=performance["fraud_rate_confirmed"]
        > rules["confirmed_over_estimated"] * performance["fraud_rate_estimated"]
    )
    perf_long = (
        performance.drop(columns="mature")
        .melt(id_vars=keys, var_name="metric", value_name="value")
        .merge(flags, on=keys, how="left")
        .assign(kind="performance", feature="")
    )
    pr_floor = baseline * (1 - rules["pr_auc_max_relative_drop"]) if baseline else -np.inf
    perf_long["alert"] = (
        (perf_long["metric"] == "pr_auc") & perf_long["mature"] & (perf_long["value"] < pr_floor)
    ) | ((perf_long["metric"] == "fraud_rate_confirmed") & perf_long["underestimated"])
    drift_long = (
        drift.melt(
            id_vars=[*keys, "kind", "feature"],
            value_vars=["psi", "ks_stat"],
            var_name="metric",
            value_name="value",
        )
        .dropna(subset=["value"])
        .merge(flags[[*keys, "mature"]], on=keys, how="left")
    )
    drift_long["mature"] = drift_long["mature"].fillna(False).astype(bool)
    threshold = np.select(
        [
            (drift_long["kind"] == "data_drift") & (drift_long["metric"] == "psi"),
            (drift_long["kind"] == "data_drift") & (drift_long["metric"] == "ks_stat"),
            drift_long["kind"] == "score_drift",
        ],
        [rules["feature_psi"], rules["feature_ks"], rules["score_psi"]],
        np.inf,
    )
    drift_long["alert"] = drift_long["value"] > threshold
    report = pd.concat([perf_long, drift_long], ignore_index=True)[
        [*PERIOD_KEYS, "model_version", "kind", "metric", "feature", "value", "mature", "alert"]
    ]
    report["value"] = report["value"].astype(float)
    fired = report[report["alert"]]
    alerts = {
        "retrain_recommended": bool(len(fired)),
        "baseline_pr_auc": baseline,
        "alerts": [
            f"{r.period_start.date()} v{r.model_version}: {r.kind} {r.metric}"
            f"{' of ' + r.feature if r.feature else ''} = {r.value:.4g}"
            for r in fired.itertuples()
        ],
    }
    (logger.warning if alerts["retrain_recommended"] else logger.info)(
        "Monitoring: %d alert(s)%s",
        len(fired),
        " - retraining recommended: `make train` then `make promote`" if len(fired) else "",
    )
    history = _metric_history(performance, drift)
    return report, alerts, history


def _metric_history(
    performance: pd.DataFrame, drift: pd.DataFrame
) -> dict[str, list[dict[str, float]]]:
    """Per-period metrics as MLflow histories (step = period index, oldest first)."""
    history: dict[str, list[dict[str, float]]] = {}
    steps = {p: i for i, p in enumerate(sorted(performance["period_start"].unique()))}
    for row in performance.itertuples():
        for name in ("pr_auc", "recall_at_alerts", "fraud_rate_confirmed", "fraud_rate_estimated"):
            value = getattr(row, name)
            if not np.isnan(value):
                history.setdefault(name, []).append(
                    {"value": float(value), "step": steps[row.period_start]}
                )
    worst = drift[drift["kind"] == "data_drift"].groupby("period_start")["psi"].max()
    for start, value in worst.items():
        if start in steps and not np.isnan(value):
            history.setdefault("max_feature_psi", []).append(
                {"value": float(value), "step": steps[start]}
            )
    return history


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, imported when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    _pyplot().close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def maturity_note(performance: pd.DataFrame, labels: pd.DataFrame) -> str:
    """When realised performance can first be judged: which scored period matures, and when."""
    final_until = matured_until(labels)
    pending = performance.loc[~performance["mature"]].sort_values("period_start")
    if pending.empty:
        return "Every scored period has matured."
    first = pending.iloc[0]
    end = pd.Timestamp(first["period_end"])
    if final_until is None:
        return (
            f"No label has matured yet. The first scored period ({first['period_start']:%Y-%m-%d}"
            f" .. {end:%Y-%m-%d}) can be judged once labels are final up to {end:%Y-%m-%d}."
        )
    lag = pd.Timestamp(labels[FraudLabel.as_of].max()).floor("D") - final_until
    return (
        f"Labels are final up to {final_until:%Y-%m-%d} (a payment's label is final "
        f"{lag.days} days after it). The first scored period not yet mature "
        f"({first['period_start']:%Y-%m-%d} .. {end:%Y-%m-%d}) will be on {end + lag:%Y-%m-%d}: "
        f"publish labels as of then (etl_labels `labels_as_of`) and monitor again."
    )


def _performance_chart(performance: pd.DataFrame, alerts: dict[str, Any]) -> str | None:
    """PR-AUC and recall per period, one line per model version; None if nothing to draw."""
    drawable = performance[performance[["pr_auc", "recall_at_alerts"]].notna().any(axis=1)]
    if drawable.empty:
        return None
    periods = sorted(drawable["period_start"].unique())
    position = {p: i for i, p in enumerate(periods)}
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    for version, unsorted in drawable.groupby("model_version"):
        part = unsorted.sort_values("period_start")
        x = [position[p] for p in part["period_start"]]
        ax.plot(x, part["pr_auc"], marker="o", label=f"PR-AUC v{version}")
        ax.plot(
            x,
            part["recall_at_alerts"],
            marker="s",
            linestyle="--",
            label=f"recall at alert rate v{version}",
        )
    if alerts.get("baseline_pr_auc"):
        ax.axhline(
            alerts["baseline_pr_auc"], color="grey", linestyle=":", label="validation PR-AUC"
        )
    mature = set(drawable.loc[drawable["mature"], "period_start"])
    ax.set_xticks(
        range(len(periods)),
        [f"{pd.Timestamp(p):%Y-%m-%d}{'' if p in mature else ' *'}" for p in periods],
        rotation=30,
    )
    ax.set_xlabel("week starting (* not mature: provisional)")
    ax.set_title("Realised performance per period (labelled payments)")
    ax.legend(fontsize=7)
    return _png(fig)


def _drift_heatmap(drift: pd.DataFrame) -> str | None:
    """Max PSI per feature and period as a heatmap; None if no period had drift statistics."""
    heat = drift[drift["kind"] == "data_drift"].pivot_table(
        index="feature", columns="period_start", values="psi", aggfunc="max"
    )
    if heat.empty:
        return None
    fig, ax = _pyplot().subplots(figsize=(8, 0.35 * max(len(heat), 4) + 1), layout="constrained")
    image = ax.imshow(heat.to_numpy(), aspect="auto", cmap="Reds", vmin=0, vmax=0.5)
    ax.set_yticks(range(len(heat)), heat.index)
    ax.set_xticks(range(len(heat.columns)), [str(c.date()) for c in heat.columns], rotation=45)
    ax.set_title("Feature drift (PSI vs the champion's training window)")
    fig.colorbar(image, ax=ax)
    return _png(fig)


def render_html(
    performance: pd.DataFrame,
    drift: pd.DataFrame,
    alerts: dict[str, Any],
    labels: pd.DataFrame,
    online: pd.DataFrame | None = None,
) -> str:
    """A self-contained HTML page: performance over time, drift heatmap, alerts, and ``online``
    (the challenger-vs-champion rows of the online report) when the service published
    decisions. A chart with nothing to draw is replaced by a sentence saying why (and, for
    performance, when).

    The page is the template ``templates/report.html.j2`` (Jinja2, autoescaped); this node
    only computes what it shows.
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    has_online = online is not None and not online.empty
    env = Environment(
        loader=PackageLoader("ml_app.pipelines.monitoring", "templates"),
        autoescape=select_autoescape(default=True),
        keep_trailing_newline=True,
    )
    return env.get_template(REPORT_TEMPLATE).render(
        retrain_recommended=alerts["retrain_recommended"],
        alerts=alerts["alerts"],
        performance_png=_performance_chart(performance, alerts),
        maturity_note=maturity_note(performance, labels),
        drift_png=_drift_heatmap(drift),
        performance_table=performance.round(4).to_html(index=False, na_rep="-"),
        online_alerts=int(online["alert"].sum()) if has_online else 0,
        online_table=online.round(4).to_html(index=False, na_rep="-") if has_online else None,
    )
