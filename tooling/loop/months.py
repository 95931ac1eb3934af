"""`make simulate-months`: several months of operation with a fraud-pattern drift partway.

A world of Jan-Aug 2025 in which fraudsters switch to card testing (tiny domestic amounts in long
bursts) on the drift date. The clock advances a month at a time; each month:

1. labels are published as known at the month's end (chargebacks received by then; legitimate
   only after `maturity_days`),
2. user_app scores the month with the current champion,
3. ml_app monitoring looks at everything scored so far,
4. on a new alert about the champion's weeks, ml_app retrains on the most recent matured labels
   and the promotion gate decides whether the new version replaces the champion.

The retraining policy of step 4 (which alerts trigger it, the training/validation/gate windows,
whether the gate runs) is ml_app's: ``retraining`` in ml_app/conf/base/parameters_retraining.yml,
read through ml_app's own configuration (tooling.conf). This module holds only the scenario (the
world, its drift, the months) and the orchestration.

Everything runs in its own root (data/simulate-months/: source DB, exchange, MLflow store), so the
demo's store is untouched. The summary compares realised PR-AUC per month (from the labels
published at the end) with the oracle's view (true outcomes, template evaluation only).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import average_precision_score

from tooling.conf import app_setting, exchange_dataset, shared_settings
from tooling.loop.steps import ROOT, Step, run_steps
from shared_runtime.testing import isolated_app, isolated_env

START, END, DRIFT = "2025-01-01", "2025-09-01", "2025-05-01"
MONTHS = ["2025-04-01", "2025-05-01", "2025-06-01", "2025-07-01", "2025-08-01"]
WORLD = {
    "simulate.n_customers": 10_000,
    "simulate.n_merchants": 2_000,
    "simulate.days": 243,
    "simulate.drift.start": DRIFT,
}
MATURITY_DAYS = 30  # the world's labels: legitimate after 30 days without a chargeback


def day(ts: pd.Timestamp) -> str:
    return str(ts.date())


def training_params(clock: pd.Timestamp, policy: Mapping[str, Any]) -> dict[str, str]:
    """The training windows of the retraining ``policy`` at ``clock``: counted back from the last
    matured day, leaving the most recent matured days for the promotion gate."""
    valid_end = clock - pd.Timedelta(days=MATURITY_DAYS + policy["gate_days"])
    train_end = valid_end - pd.Timedelta(days=policy["valid_days"])
    train_start = train_end - pd.Timedelta(days=policy["train_days"])
    return {
        "training.window.train_start": day(train_start),
        "training.window.train_end": day(train_end),
        "training.window.valid_end": day(valid_end),
    }


def labels_step(clock: pd.Timestamp) -> Step:
    params = {
        "window.start": START,
        "window.end": day(clock),
        "labels_as_of": day(clock),
        "etl_labels.maturity_days": MATURITY_DAYS,
    }
    return Step("etl_app", "etl_labels", params, f"labels as of {day(clock)}")


def champion_alerts(
    report: pd.DataFrame, champion: str, policy: Mapping[str, Any]
) -> set[tuple[str, str]]:
    """(period, alert) pairs of the monitoring ``report`` about the champion's weeks, of the
    kinds the retraining ``policy`` acts on."""
    fired = report[
        report["alert"]
        & (report["model_version"] == champion)
        & report["kind"].isin(policy["retrain_on"])
    ]
    return {
        (str(r.period_start.date()), _alert_name(r.kind, r.metric, r.feature))
        for r in fired.itertuples()
    }


def _alert_name(kind: str, metric: str, feature: str) -> str:
    if kind == "data_drift":
        return f"drift of {feature}"
    if kind == "score_drift":
        return "score drift"
    return {"fraud_rate_confirmed": "fraud under-estimated", "pr_auc": "PR-AUC drop"}[metric]


def champion_version(settings: Mapping[str, Any]) -> str:
    import mlflow  # noqa: PLC0415

    client = mlflow.MlflowClient(settings["mlflow_tracking_uri"])
    name, alias = settings["registered_model_name"], settings["champion_alias"]
    return str(client.get_model_version_by_alias(name, alias).version)


def monthly_table(root: Path, env: Mapping[str, str], actions: dict[str, str]) -> pd.DataFrame:
    decisions = exchange_dataset(root, "user_app", "decisions", env).load()
    labels = exchange_dataset(root, "etl_app", "labels", env).load()
    with sqlite3.connect(root / "source_system.db") as con:  # isolated_env's source system
        oracle = pd.read_sql("SELECT transaction_id, is_fraud AS truth FROM oracle", con)
    report = exchange_dataset(root, "ml_app", "monitoring_report", env).load()
    psi = report[(report["kind"] == "data_drift") & (report["metric"] == "psi")]
    frame = decisions.merge(labels[["transaction_id", "is_fraud"]], on="transaction_id", how="left")
    frame = frame.merge(oracle, on="transaction_id")
    frame["month"] = frame["event_time"].dt.strftime("%Y-%m")
    rows = []
    for month, part in frame.groupby("month"):
        known = part[part["is_fraud"].notna()]
        month_psi = psi[psi["period_start"].dt.strftime("%Y-%m") == month]["value"]
        rows.append(
            {
                "month": month,
                "model version": ",".join(sorted(part["model_version"].unique())),
                "true fraud rate": f"{part['truth'].mean():.2%}",
                "PR-AUC (labels)": round(
                    average_precision_score(known["is_fraud"].astype(bool), known["score"]), 3
                )
                if known["is_fraud"].nunique() == 2
                else None,
                "PR-AUC (truth)": round(average_precision_score(part["truth"], part["score"]), 3),
                "max feature PSI": round(float(month_psi.max()), 3) if len(month_psi) else None,
                "action at month end": actions.get(month, "-"),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT / "data" / "simulate-months")
    args = parser.parse_args(argv)
    root: Path = args.root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for app in ("etl_app", "ml_app", "user_app"):
        isolated_app(ROOT / app, root)
    env = isolated_env(root, {"KEDRO_LOGGING_CONFIG": str(ROOT / "conf/logging.yml")})
    settings = shared_settings(root, env)
    policy = app_setting(root, "ml_app", "parameters", "retraining", env)
    started = time.perf_counter()

    def run(phase: str, *steps: Step) -> None:
        run_steps(list(steps), root=root, log_dir=root / "logs" / phase, env=env)

    first_clock = pd.Timestamp(MONTHS[0])
    run(
        "0-setup",
        Step("etl_app", "simulate", WORLD, f"Jan-Aug 2025, drift from {DRIFT}"),
        Step("etl_app", "etl_instances", {"window.start": START, "window.end": END}, "instances"),
        labels_step(first_clock),
        Step("ml_app", "training", training_params(first_clock, policy), "first model"),
    )
    actions: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()  # monitoring re-reports old weeks: act on new alerts only
    for month in MONTHS:
        start = pd.Timestamp(month)
        clock = start + pd.offsets.MonthBegin(1)
        champion = champion_version(settings)
        run(
            f"{month[:7]}-score",
            labels_step(clock),
            Step(
                "user_app",
                "batch_scoring",
                {"window.start": month, "window.end": day(clock)},
                f"score {month[:7]} with v{champion}",
            ),
            Step("ml_app", "monitoring", {}, "monitor"),
        )
        report = exchange_dataset(root, "ml_app", "monitoring_report", env).load()
        alerts = champion_alerts(report, champion, policy) - seen
        seen |= alerts
        if not alerts:
            actions[month[:7]] = "no new alert"
            continue
        retrain = Step("ml_app", "training", training_params(clock, policy), "retrain")
        promote = Step("ml_app", "promotion", {}, "champion vs challenger")
        run(f"{month[:7]}-retrain", *([retrain, promote] if policy["promote"] else [retrain]))
        after = champion_version(settings)
        verdict = f"promoted v{after}" if after != champion else f"kept v{champion}"
        if not policy["promote"]:
            verdict = f"kept v{champion} (the policy does not run the gate)"
        kinds = ", ".join(sorted({alert for _, alert in alerts}))
        actions[month[:7]] = f"{kinds} -> retrain -> {verdict}"

    # final labels for the realised-performance table
    run("9-final", labels_step(pd.Timestamp(END)))
    table = monthly_table(root, env, actions)
    (root / "summary.json").write_text(json.dumps(table.to_dict("records"), indent=2))
    sys.stdout.write(
        f"\nMonths of operation with drift from {DRIFT} "
        f"({time.perf_counter() - started:.0f} s):\n\n{table.to_string(index=False)}\n\n"
        f"PR-AUC (labels) uses the labels known on {END} ({MATURITY_DAYS}-day maturity: the last "
        "month is provisional); PR-AUC (truth) uses the simulator's oracle.\n"
        f"MLflow store: {settings['mlflow_tracking_uri']}   monitoring report: "
        f"{root / 'ml_app/data/08_reporting/monitoring_report.html'}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
