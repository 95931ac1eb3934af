"""How ml_app judges scores against outcomes: one module for training, promotion and monitoring.

* :func:`matured_until` is the one definition of "labels have matured": the promotion gate ends
  its window there, monitoring calls a period mature once it ends there.
* :func:`scored_outcomes` and :func:`classification_metrics` turn a model's scores on labelled
  payments into the metrics training logs (``validation.*``) and the gate compares, the cost
  under :class:`shared_runtime.policy.DecisionPolicy`, the policy user_app deploys.
* :func:`recall_at_alert_rate` is shared with monitoring's realised performance.

Pipelines import this module, never each other's ``nodes.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shared_runtime.policy import DecisionPolicy
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.ml_to_user import FraudScore

ID = TransactionInstance.transaction_id
TIME = TransactionInstance.event_time
TARGET = FraudLabel.is_fraud
MATURED = "matured"  # FraudLabel.label_source of a label that can no longer change


def matured_until(labels: pd.DataFrame) -> pd.Timestamp | None:
    """The day up to which every payment's label is final, or None if no label has matured.

    etl_app marks a legitimate payment's label ``matured`` once the chargeback window has passed,
    so the last matured payment's day bounds the days whose labels are all final; a younger
    payment only has its frauds labelled, which would flatter any model judged on it.
    """
    matured = labels.loc[labels[FraudLabel.label_source] == MATURED, TIME]
    return matured.max().floor("D") if len(matured) else None


def scored_outcomes(scores: pd.DataFrame, labelled: pd.DataFrame) -> pd.DataFrame:
    """Labelled rows (id, event time, outcome) with the score the model gave each."""
    return labelled[[ID, TIME, TARGET]].merge(scores, on=ID, how="left", validate="one_to_one")


def recall_at_alert_rate(y: np.ndarray, score: np.ndarray, alert_rate: float) -> float:
    """Share of frauds among the top ``alert_rate`` of scores."""
    n_alerts = max(1, round(alert_rate * len(score)))
    top = np.argsort(-score, kind="stable")[:n_alerts]
    return float(y[top].sum() / max(1, y.sum()))


def classification_metrics(
    y: np.ndarray, s: np.ndarray, policy: DecisionPolicy, alert_rate: float
) -> dict[str, float]:
    """Ranking, calibration and cost metrics of scores ``s`` against outcomes ``y``.

    ``expected_cost_per_tx`` is the cost per payment of deciding by ``policy`` (reviews,
    declines and missed frauds), the figure monitoring reports for published decisions.
    """
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "log_loss": float(log_loss(y, s, labels=[0, 1])),
        "brier": float(brier_score_loss(y, s)),
        "recall_at_alerts": recall_at_alert_rate(y, s, alert_rate),
        "expected_cost_per_tx": policy.expected_cost(y, s),
    }


def score_metrics(
    scores: pd.DataFrame, labelled: pd.DataFrame, policy: DecisionPolicy, alert_rate: float
) -> tuple[dict[str, float], pd.DataFrame]:
    """:func:`classification_metrics` of a model's scores (FraudScore rows) on labelled rows,
    and the joined frame (id, event time, outcome, score)."""
    frame = scored_outcomes(scores, labelled)
    y = frame[TARGET].astype(int).to_numpy()
    s = frame[FraudScore.score].to_numpy()
    return classification_metrics(y, s, policy, alert_rate), frame


def policy_record(policy: DecisionPolicy, alert_rate: float) -> dict[str, Any]:
    """The policy a run evaluated, as logged with it (decision_policy.json)."""
    return {**policy.describe(), "alert_rate": alert_rate}
