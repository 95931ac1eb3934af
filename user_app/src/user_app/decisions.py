"""Turning scores into decisions and audit records: one definition for batch and online scoring.

The decision rule comes from the business cost model (conf/shared.yml ``decision_costs``) and a
calibrated score ``p`` (the probability of fraud):

* approving costs ``p * missed_fraud``, a review costs ``review``, declining costs
  ``(1 - p) * false_decline``;
* so review once ``p >= review / missed_fraud`` and decline once
  ``p >= 1 - review / false_decline`` (declining is then cheaper than reviewing).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from shared_schemas.ml_to_user import FraudDecision, PredictionLog
import user_app

DECISION_COLUMNS = list(FraudDecision.to_schema().columns)
LOG_COLUMNS = list(PredictionLog.to_schema().columns)


def decision_thresholds(costs: dict[str, float]) -> tuple[float, float]:
    """(review, decline) thresholds on a calibrated fraud probability, from the cost model."""
    review = min(1.0, costs["review"] / costs["missed_fraud"])
    decline = max(review, 1.0 - costs["review"] / costs["false_decline"])
    return review, decline


def classify(score: np.ndarray, review: float, decline: float) -> np.ndarray:
    """approve / review / decline for each score."""
    return np.select([score >= decline, score >= review], ["decline", "review"], "approve")


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
