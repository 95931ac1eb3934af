"""batch_scoring: score new instances with the registered model and decide what to do with them.

The decision rule (thresholds from the business cost model) is
:class:`shared_runtime.policy.DecisionPolicy`; :mod:`user_app.decisions` turns its decisions into
FraudDecision rows, for batch and online scoring alike.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.ml_to_user import FraudScore
from user_app.decisions import LOG_COLUMNS, decision_frame, decision_thresholds, log_record

if TYPE_CHECKING:  # user_app.datasets imports MLflow: not when pipelines are registered
    from user_app.datasets import ScoringModel
else:  # what Kedro's type-hint extraction resolves, without importing MLflow
    ScoringModel = Any

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


def decide(
    scores: pd.DataFrame,
    instances: pd.DataFrame,
    scoring: dict[str, Any],
    costs: dict[str, float],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FraudDecision per transaction and the PredictionLog row of this scoring call."""
    thresholds = decision_thresholds(costs)
    scored = scores.merge(instances[[ID, TIME]], on=ID, how="left", validate="one_to_one")
    scored_at = datetime.now(UTC).replace(tzinfo=None)
    decisions = decision_frame(
        scored, thresholds, scoring["model_name"], scoring["model_version"], scored_at
    )
    record = log_record(
        request_id=uuid.uuid4().hex,
        channel="batch",
        route="primary",
        model=scoring,
        scored_at=scored_at,
        decisions=decisions["decision"].to_numpy(),
        latency_ms=scoring["latency_ms"],
    )
    log = pd.DataFrame([record])[LOG_COLUMNS]
    logger.info(
        "Decisions (review >= %.3f, decline >= %.3f): approve=%d, review=%d, decline=%d",
        *thresholds,
        record["n_approve"],
        record["n_review"],
        record["n_decline"],
    )
    return decisions, log
