"""Turning scores into decisions and audit records: one definition for batch and online scoring.

The decision rule itself is :class:`shared_runtime.policy.DecisionPolicy`: thresholds from the
business cost model (``decision_costs`` in conf/shared.yml, read through the catalog entry
``decision_costs``), the same policy ml_app's training, promotion gate and monitoring judge.
This module turns its decisions into FraudDecision rows and PredictionLog records.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from shared_runtime.policy import DecisionPolicy, classify
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
import user_app

__all__ = ["classify", "decision_frame", "decision_thresholds", "log_record"]
DECISION_COLUMNS = list(FraudDecision.to_schema().columns)
LOG_COLUMNS = list(PredictionLog.to_schema().columns)


def decision_thresholds(costs: dict[str, float]) -> tuple[float, float]:
    """(review, decline) thresholds on a calibrated fraud probability, from the cost model."""
    policy = DecisionPolicy.from_costs(costs)
    return policy.review_threshold, policy.decline_threshold


def decision_frame(
    scored: pd.DataFrame,
    thresholds: tuple[float, float],
    model_name: str,
    model_version: str,
    scored_at: datetime,
) -> pd.DataFrame:
    """FraudDecision rows for ``scored`` (transaction_id, event_time, score)."""
    review, decline = thresholds
    return scored.assign(
        decision=classify(scored["score"].to_numpy(), review, decline),
        review_threshold=review,
        decline_threshold=decline,
        model_name=model_name,
        model_version=model_version,
        scored_at=scored_at,
        user_app_version=user_app.__version__,
    )[DECISION_COLUMNS]


def log_record(
    *,
    request_id: str,
    channel: str,
    route: str,
    model: dict[str, Any],
    scored_at: datetime,
    decisions: np.ndarray,
    latency_ms: float,
) -> dict[str, Any]:
    """One PredictionLog row: who answered a scoring call, how fast, and what it decided."""
    return {
        "request_id": request_id,
        "channel": channel,
        "model_name": model["model_name"],
        "model_version": model["model_version"],
        "model_run_id": model["model_run_id"],
        "scored_at": scored_at,
        "n_rows": len(decisions),
        "latency_ms": latency_ms,
        "n_approve": int(np.count_nonzero(decisions == "approve")),
        "n_review": int(np.count_nonzero(decisions == "review")),
        "n_decline": int(np.count_nonzero(decisions == "decline")),
        "user_app_version": user_app.__version__,
        "route": route,
    }
