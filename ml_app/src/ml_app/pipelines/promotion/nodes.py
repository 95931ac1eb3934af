"""promotion: champion vs challenger on the same fresh labelled window, and the verdict.

The window starts after the later of the two models' validation windows (so neither model was
fitted or tuned on it) and ends at the last day whose labels have matured (younger payments
only have their frauds labelled, which would flatter every model).

Both models are judged by the policy user_app deploys (``shared_runtime.policy.DecisionPolicy``:
review and decline thresholds from the cost model in conf/shared.yml), so the gate's expected
cost is the one training reports and monitoring realises. Each model scores in its own process
with its own bundled code (:mod:`ml_app.model_process`), and must be the version of the run's
registry snapshot, the one the verdict records and promotes. The challenger is promoted when
it beats the champion on the primary metric by ``min_improvement`` (relative) and no guard
metric is worse beyond its tolerance.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml_app.evaluation import matured_until, score_metrics
from ml_app.model_process import check_scored_version
from shared_runtime.policy import DecisionPolicy
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance

if TYPE_CHECKING:  # matplotlib is imported when the comparison is plotted
    from matplotlib.figure import Figure
else:  # what Kedro's type-hint extraction resolves, without importing the library
    Figure = Any

logger = logging.getLogger(__name__)
ID = TransactionInstance.transaction_id
TIME = TransactionInstance.event_time
TARGET = FraudLabel.is_fraud
VALID_END = "training.window.valid_end"
LOWER_IS_BETTER = {"expected_cost_per_tx", "brier", "log_loss"}


def evaluation_window(registry: dict[str, Any], labels: pd.DataFrame) -> dict[str, str]:
    """[start, end): after both models' validation windows, up to the last matured day.

    Raises:
        ValueError: when no such window exists yet (labels have not matured past it).
    """
    ends = [registry[role]["params"].get(VALID_END) for role in ("champion", "challenger")]
    if None in ends:
        raise ValueError(f"A model's run has no '{VALID_END}' parameter: retrain it with ml_app.")
    start = max(pd.Timestamp(e) for e in ends)
    end = matured_until(labels)
    if end is None or end <= start:
        raise ValueError(
            f"No fresh labelled window: the models validated until {start.date()} and labels "
            f"have matured only until {'no day' if end is None else end.date()}. Publish newer "
            "labels (etl_app `etl_labels` with a later labels_as_of) and run the gate again."
        )
    return {"start": str(start.date()), "end": str(end.date())}


def labelled_window(
    instances: pd.DataFrame, labels: pd.DataFrame, window: dict[str, str]
) -> pd.DataFrame:
    """Instances of the window with their label; unlabelled payments are left out."""
    start, end = pd.Timestamp(window["start"]), pd.Timestamp(window["end"])
    rows = instances[(instances[TIME] >= start) & (instances[TIME] < end)]
    rows = rows.merge(labels[[ID, TARGET]], on=ID, how="inner", validate="one_to_one")
    logger.info(
        "Promotion window %s..%s: %d labelled payments, %d frauds",
        window["start"],
        window["end"],
        len(rows),
        int(rows[TARGET].sum()),
    )
    return rows.reset_index(drop=True)


def evaluate_candidate(
    model: Any, window_rows: pd.DataFrame, costs: dict[str, float], params: dict[str, Any]
) -> dict[str, float]:
    """A model's metrics on the window, under the deployed decision policy."""
    scores = pd.DataFrame(model.predict(window_rows.drop(columns=[TARGET])))
    metrics, _ = score_metrics(
        scores, window_rows, DecisionPolicy.from_costs(costs), params["alert_rate"]
    )
    return metrics


def evaluate_role(
    role: str,
    model: Any,
    registry: dict[str, Any],
    window_rows: pd.DataFrame,
    costs: dict[str, float],
    params: dict[str, Any],
) -> dict[str, float]:
    """:func:`evaluate_candidate` of the model holding ``role`` (champion or challenger), once it
    is the registry snapshot's version (the one :func:`decide_promotion` records and promotes).
    The pipeline binds ``role`` per node."""
    check_scored_version(model, registry, role)
    return evaluate_candidate(model, window_rows, costs, params)


def _better(metric: str, challenger: float, champion: float, min_improvement: float) -> bool:
    if metric in LOWER_IS_BETTER:
        return challenger <= champion * (1 - min_improvement)
    return challenger >= champion * (1 + min_improvement)


def decide_promotion(
    registry: dict[str, Any],
    champion: dict[str, float],
    challenger: dict[str, float],
    window: dict[str, str],
    window_rows: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, dict[str, float]]]:
    """The verdict as a PromotionDecision row, the alias update, and metrics for MLflow."""
    primary = params["primary_metric"]
    champ_v, chall_v = registry["champion"]["version"], registry["challenger"]["version"]
    guards = params["guards"]
    failed_guards = []
    if challenger["brier"] > champion["brier"] * (1 + guards["brier_max_relative_increase"]):
        failed_guards.append(
            f"calibration worse (Brier {challenger['brier']:.5f} vs {champion['brier']:.5f})"
        )
    drop = champion["recall_at_alerts"] - challenger["recall_at_alerts"]
    if drop > guards["recall_at_alerts_max_drop"]:
        failed_guards.append(f"recall at {params['alert_rate']:.0%} alerts dropped by {drop:.3f}")
    beats = _better(primary, challenger[primary], champion[primary], params["min_improvement"])
    direction = "lower" if primary in LOWER_IS_BETTER else "higher"
    versus = (
        f"{primary} {challenger[primary]:.5f} vs {champion[primary]:.5f} ({direction} is better)"
    )
    if chall_v == champ_v:
        promoted, reason = False, f"version {chall_v} is already the champion: nothing to compare"
    elif not beats:
        promoted = False
        reason = (
            f"kept champion v{champ_v}: challenger v{chall_v} does not beat it by "
            f"{params['min_improvement']:.0%} on {versus}"
        )
    elif failed_guards:
        promoted = False
        reason = f"kept champion v{champ_v}: challenger v{chall_v} wins on {versus} but " + (
            "; ".join(failed_guards)
        )
    else:
        promoted = True
        reason = f"promoted challenger v{chall_v} over v{champ_v}: {versus}"
    (logger.warning if not promoted and chall_v != champ_v else logger.info)(reason)
    decision = pd.DataFrame(
        [
            {
                "decided_at": datetime.now(UTC).replace(tzinfo=None),
                "model_name": registry["model_name"],
                "champion_version": champ_v,
                "challenger_version": chall_v,
                "promoted": promoted,
                "champion_after": chall_v if promoted else champ_v,
                "primary_metric": primary,
                "champion_primary": champion[primary],
                "challenger_primary": challenger[primary],
                "champion_pr_auc": champion["pr_auc"],
                "challenger_pr_auc": challenger["pr_auc"],
                "champion_brier": champion["brier"],
                "challenger_brier": challenger["brier"],
                "champion_recall_at_alerts": champion["recall_at_alerts"],
                "challenger_recall_at_alerts": challenger["recall_at_alerts"],
                "window_start": pd.Timestamp(window["start"]),
                "window_end": pd.Timestamp(window["end"]),
                "n_rows": len(window_rows),
                "n_fraud": int(window_rows[TARGET].sum()),
                "reason": reason,
            }
        ]
    )
    metrics = {
        f"{role}.{name}": {"value": float(value), "step": 0}
        for role, values in (("champion", champion), ("challenger", challenger))
        for name, value in values.items()
    } | {"promoted": {"value": float(promoted), "step": 0}}
    return decision, {"promoted": promoted, "version": chall_v}, metrics


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, imported when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_comparison(
    registry: dict[str, Any], champion: dict[str, float], challenger: dict[str, float]
) -> Figure:
    """Side-by-side bars of both models' metrics on the promotion window."""
    plt = _pyplot()
    names = list(champion)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for offset, (label, values) in (
        (-0.2, (f"champion v{registry['champion']['version']}", champion)),
        (0.2, (f"challenger v{registry['challenger']['version']}", challenger)),
    ):
        ax.bar(x + offset, [values[n] for n in names], width=0.4, label=label)
    ax.set_xticks(x, names, rotation=20)
    ax.set_yscale("log")
    ax.set_title("Champion vs challenger on the same fresh window")
    ax.legend()
    plt.close(fig)
    return fig
