"""batch_scoring: score new instances with the registered model and decide what to do with them.

The decision rule comes from the business cost model (conf/shared.yml ``decision_costs``) and a
calibrated score ``p`` (the probability of fraud):

* approving costs ``p * missed_fraud``, a review costs ``review``, declining costs
  ``(1 - p) * false_decline``;
* so review once ``p >= review / missed_fraud`` and decline once
  ``p >= 1 - review / false_decline`` (declining is then cheaper than reviewing).
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

import user_app
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.ml_to_user import FraudDecision, FraudScore, PredictionLog
from user_app.datasets import ScoringModel

logger = logging.getLogger(__name__)
ID = TransactionInstance.transaction_id
TIME = TransactionInstance.event_time


def select_window(instances: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The instances whose event time falls in the scoring window ``[start, end)``."""
    start, end = pd.Timestamp(params["window"]["start"]), pd.Timestamp(params["window"]["end"])
    selected = instances[(instances[TIME] >= start) & (instances[TIME] < end)]
    if selected.empty:
        raise ValueError(
            f"No instances between {start.date()} and {end.date()} in the exchange. Publish them "
            "with etl_app (`make run-etl PARAMS=window.start=...,window.end=...`)."
        )
    logger.info("Scoring %d instances from %s to %s", len(selected), start.date(), end.date())
    return selected.reset_index(drop=True)


def score_instances(
    scoring_model: ScoringModel, instances: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Model scores (FraudScore) and how the scoring went (which model, how long)."""
    started = time.perf_counter()
    scores = scoring_model.predict(instances)
    latency_ms = (time.perf_counter() - started) * 1000
    scores = FraudScore.validate(pd.DataFrame(scores))
    if len(scores) != len(instances):
        raise ValueError(f"The model returned {len(scores)} scores for {len(instances)} rows.")
    logger.info(
        "Scored %d rows with %s version %s (%s) in %.0f ms",
        len(scores),
        scoring_model.name,
        scoring_model.version,
        scoring_model.reference,
        latency_ms,
    )
    meta = {
        "model_name": scoring_model.name,
        "model_version": scoring_model.version,
        "model_run_id": scoring_model.run_id,
        "latency_ms": latency_ms,
    }
    return scores, meta


def decision_thresholds(costs: dict[str, float]) -> tuple[float, float]:
    """(review, decline) thresholds on a calibrated fraud probability, from the cost model."""
    review = min(1.0, costs["review"] / costs["missed_fraud"])
    decline = max(review, 1.0 - costs["review"] / costs["false_decline"])
    return review, decline


def decide(
    scores: pd.DataFrame,
    instances: pd.DataFrame,
    scoring: dict[str, Any],
    costs: dict[str, float],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FraudDecision per transaction and the PredictionLog row of this scoring call."""
    review, decline = decision_thresholds(costs)
    score = scores[FraudScore.score].to_numpy()
    decision = np.select([score >= decline, score >= review], ["decline", "review"], "approve")
    scored_at = datetime.now(UTC).replace(tzinfo=None)
    decisions = scores.merge(instances[[ID, TIME]], on=ID, how="left", validate="one_to_one")
    decisions = decisions.assign(
        decision=decision,
        review_threshold=review,
        decline_threshold=decline,
        model_name=scoring["model_name"],
        model_version=scoring["model_version"],
        scored_at=scored_at,
        user_app_version=user_app.__version__,
    )[list(FraudDecision.to_schema().columns)]
    counts = pd.Series(decision).value_counts()
    log = pd.DataFrame(
        [
            {
                "request_id": uuid.uuid4().hex,
                "channel": "batch",
                "model_name": scoring["model_name"],
                "model_version": scoring["model_version"],
                "model_run_id": scoring["model_run_id"],
                "scored_at": scored_at,
                "n_rows": len(decisions),
                "latency_ms": scoring["latency_ms"],
                "n_approve": int(counts.get("approve", 0)),
                "n_review": int(counts.get("review", 0)),
                "n_decline": int(counts.get("decline", 0)),
                "user_app_version": user_app.__version__,
            }
        ]
    )[list(PredictionLog.to_schema().columns)]
    logger.info(
        "Decisions (review >= %.3f, decline >= %.3f): %s",
        review,
        decline,
        ", ".join(f"{k}={int(counts.get(k, 0))}" for k in ("approve", "review", "decline")),
    )
    return decisions, log
