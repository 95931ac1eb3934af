"""`make demo`: run the whole loop on embedded defaults and summarise what happened.

simulate the source system -> publish instances and labels (etl_app) -> train, log and register
the pipeline model (ml_app; the first version becomes champion) -> promotion gate (ml_app) ->
score a later window and decide (user_app) -> monitor (ml_app) -> summary. Safe to run again:
every step replaces its own outputs, and a new model version waits as challenger while the
champion keeps scoring.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import average_precision_score

from tooling.conf import catalog_entry, exchange_dataset, shared_settings
from tooling.loop.steps import ROOT, loop_steps, run_steps

# Score May and June, not only June: with labels as of 2025-07-01 and 45 days to maturity, the
# first weeks of May have final labels, so the monitoring report the demo ends with shows
# realised performance for matured weeks (June's weeks are still provisional).
DEMO_PARAMS = {"batch_scoring": {"window.start": "2025-05-01", "window.end": "2025-07-01"}}


def registry_state(config: dict[str, Any]) -> dict[str, Any]:
    """Champion / newest version of the registered model and the newest version's metrics."""
    import mlflow  # noqa: PLC0415 (only the summary needs the MLflow client)

    client = mlflow.MlflowClient(tracking_uri=config["mlflow_tracking_uri"])
    name = config["registered_model_name"]
    versions = client.search_model_versions(f"name = '{name}'")
    newest = max(versions, key=lambda v: int(v.version))
    champion = client.get_model_version_by_alias(name, config["champion_alias"])
    metrics = client.get_run(newest.run_id).data.metrics
    return {
        "name": name,
        "versions": len(versions),
        "newest_version": newest.version,
        "newest_run_id": newest.run_id,
        "champion_version": champion.version,
        "metrics": metrics,
    }


def source_url(root: Path, env: Mapping[str, str] | None = None) -> str:
    """The source system's SQLAlchemy URL, as etl_app resolves it (its credentials.yml)."""
    env = os.environ if env is None else env
    return env.get("ETL_SOURCE_DB_URL") or (
        f"sqlite:///{root / 'etl_app/data/01_raw/source_system.db'}"
    )


def oracle_ceiling(root: Path, source: str) -> dict[str, float]:
    """Model vs Bayes-optimal PR-AUC on the same validation rows (oracle = true probabilities,
    read from the source system at the SQLAlchemy URL ``source``)."""
    import sqlalchemy  # noqa: PLC0415 (only the summary reads the source system)

    entry = catalog_entry(root, "ml_app", "validation_predictions")
    predictions = pd.read_parquet(root / "ml_app" / entry["filepath"])
    engine = sqlalchemy.create_engine(source)
    try:
        with engine.connect() as con:
            query = sqlalchemy.text("SELECT transaction_id, fraud_probability FROM oracle")
            oracle = pd.read_sql(query, con)
    finally:
        engine.dispose()
    rows = predictions.merge(oracle, on="transaction_id", how="inner")
    model = average_precision_score(rows["is_fraud"], rows["score"])
    bayes = average_precision_score(rows["is_fraud"], rows["fraud_probability"])
    return {"model_pr_auc": model, "bayes_optimal_pr_auc": bayes, "ratio": model / bayes}


def record_ceiling(config: dict[str, Any], version: str, ceiling: dict[str, float]) -> None:
    """Put the oracle's ceiling on the registered version (ml_app itself never reads the oracle)."""
    import mlflow  # noqa: PLC0415

    client = mlflow.MlflowClient(tracking_uri=config["mlflow_tracking_uri"])
    name = config["registered_model_name"]
    client.set_model_version_tag(
        name, version, "oracle.bayes_pr_auc", f"{ceiling['bayes_optimal_pr_auc']:.4f}"
    )
    client.set_model_version_tag(
        name, version, "oracle.share_of_ceiling", f"{ceiling['ratio']:.4f}"
    )
    card = client.get_model_version(name, version).description or ""
    line = (
        f"**Ceiling (make demo, simulator oracle).** Bayes-optimal PR-AUC on the validation rows "
        f"{ceiling['bayes_optimal_pr_auc']:.4f}; this model's {ceiling['model_pr_auc']:.4f} "
        f"({ceiling['ratio']:.1%} of the ceiling)."
    )
    if line not in card:
        client.update_model_version(name, version, description=f"{card}\n{line}\n")


def _report(root: Path, name: str) -> dict[str, Any]:
    """etl_app's quality report of the dataset ``name`` (its catalog's dataset factory)."""
    path = catalog_entry(root, "etl_app", "{name}_quality_report")["filepath"].format(name=name)
    return json.loads((root / "etl_app" / path).read_text())


def summarise(
    root: Path,
    seconds: float,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the loop in ``root`` produced, read where the apps started with ``env`` (default:
    this process's) wrote it: exchange, registry and source system."""
    config = shared_settings(root, env)
    registry = registry_state(config)
    ceiling = oracle_ceiling(root, source_url(root, env))
    record_ceiling(config, str(registry["newest_version"]), ceiling)
    last_call = (
        exchange_dataset(root, "user_app", "prediction_log", env)
        .load()
        .sort_values("scored_at")
        .iloc[-1]
    )
    gate = exchange_dataset(root, "ml_app", "promotion_decision", env).load()
    last_gate = gate.sort_values("decided_at").iloc[-1]
    return {
        "wall_time_s": round(seconds, 1),
        "instances": _report(root, "instances"),
        "labels": _report(root, "labels"),
        "registry": registry,
        "ceiling": ceiling,
        "last_scoring": {k: str(v) for k, v in last_call.items()},
        "last_promotion": {k: str(v) for k, v in last_gate.items()},
        "monitoring": json.loads(
            (
                root
                / "ml_app"
                / catalog_entry(root, "ml_app", "monitoring_alerts")["dataset"]["filepath"]
            ).read_text()
        ),
        "exchange_root": str(config["exchange_root"]),
        "tracking_uri": config["mlflow_tracking_uri"],
    }


def render(summary: dict[str, Any]) -> str:
    inst, lab, reg, ceil, call, gate = (
        summary[k]
        for k in ("instances", "labels", "registry", "ceiling", "last_scoring", "last_promotion")
    )
    m = reg["metrics"]
    lines = [
        "",
        "=" * 72,
        f"Fraud loop complete in {summary['wall_time_s']} s",
        "=" * 72,
        f"etl_app   instances published : {inst['rows_valid']:>9,} "
        f"(quarantined {inst['rows_quarantined']:,} of {inst['rows_in']:,})",
        f"          labels published    : {lab['rows_valid']:>9,} "
        f"(quarantined {lab['rows_quarantined']:,} of {lab['rows_in']:,})",
        f"ml_app    model               : {reg['name']} version {reg['newest_version']} "
        f"(run {reg['newest_run_id'][:12]}), champion = version {reg['champion_version']}",
        f"          validation PR-AUC   : {m['validation.pr_auc']:.4f}   "
        f"ROC-AUC {m['validation.roc_auc']:.4f}   "
        f"recall@1% alerts {m['validation.recall_at_alerts']:.3f}",
        f"          Bayes-optimal PR-AUC: {ceil['bayes_optimal_pr_auc']:.4f}   "
        f"(model reaches {ceil['ratio']:.1%} of the ceiling)",
        f"          promotion gate      : {gate['reason']}",
        f"{'':32}({gate['window_start'][:10]} .. {gate['window_end'][:10]}, "
        f"{int(gate['n_rows']):,} labelled payments)",
        f"user_app  scored              : {int(call['n_rows']):>9,} payments with version "
        f"{call['model_version']} in {float(call['latency_ms']):.0f} ms",
        f"          decisions           : approve {int(call['n_approve']):,}, "
        f"review {int(call['n_review']):,}, decline {int(call['n_decline']):,}",
        f"ml_app    monitoring          : {len(summary['monitoring']['alerts'])} alert(s); "
        + (
            "retraining recommended"
            if summary["monitoring"]["retrain_recommended"]
            else "no drift or performance alert"
        )
        + " (ml_app/data/08_reporting/monitoring_report.html)",
        "",
        f"Exchange data : {summary['exchange_root']}",
        f"MLflow store  : {summary['tracking_uri']}",
        "",
        "Next:",
        "  make mlflow-ui          browse runs, metrics, plots and the registered model",
        "  make models             registered versions, aliases and metrics",
        "  make promote / rollback the champion/challenger gate, and undoing it",
        "  make viz APP=ml_app     see the training/inference pipelines and their shared nodes",
        "  make test               run every test",
        "",
    ]
    return "\n".join(lines)


def run(root: Path, env: Mapping[str, str] | None = None) -> int:
    """The loop in ``root`` with the apps' environment ``env``; print and save its summary."""
    started = time.perf_counter()
    try:
        run_steps(loop_steps(DEMO_PARAMS), root=root, env=env)
    except RuntimeError as exc:
        sys.stderr.write(f"\nThe demo stopped: {exc}\n")
        return 1
    summary = summarise(root, time.perf_counter() - started, env)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    sys.stdout.write(render(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="monorepo checkout to run in")
    parser.add_argument(
        "--stack",
        choices=("embedded", "servers"),
        default="embedded",
        help="embedded: SQLite and local files; servers: a Postgres source, an MLflow server "
        "and the exchange on S3, started on loopback for the run and deleted after it",
    )
    args = parser.parse_args(argv)
    if args.stack == "embedded":
        return run(args.root)
    from tooling.stack import servers  # noqa: PLC0415 (only this mode starts servers)

    with servers() as stack:
        sys.stdout.write(f"Servers up for this run: {stack}\n")
        code = run(args.root, {**os.environ, **stack.app_env()})
    sys.stdout.write(
        "The servers were stopped and deleted with the run; `make servers` starts a stack that "
        "stays up (point the apps at it with the variables it prints).\n"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
