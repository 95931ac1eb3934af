"""online_scoring: replay a window of instances against the decision service, one request each.

A demonstration of the client side of online scoring (``make run-online`` with ``make serve``
running): every transaction gets a decision even when the service is down or slow (fallback
``review``), and each fallback is recorded in the prediction log with route ``fallback``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import numpy as np
import pandas as pd

from user_app.client import DecisionClient
from user_app.decisions import LOG_COLUMNS, log_record
from user_app.online.sink import now

logger = logging.getLogger(__name__)


def request_decisions(
    instances: pd.DataFrame, params: dict[str, Any], model_name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decisions from the service (or the fallback) and PredictionLog rows of the fallbacks."""
    client = DecisionClient(params["url"], **params["client"])
    size = params["rows_per_request"]
    rows = instances.head(params["max_requests"] * size)
    answers, log = [], []
    for start in range(0, len(rows), size):
        decided = client.decide(rows.iloc[start : start + size])
        answers.append(decided)
        if decided["fallback"].all():
            log.append(
                log_record(
                    request_id=uuid.uuid4().hex,
                    channel="online",
                    route="fallback",
                    model={
                        "model_name": model_name,
                        "model_version": "fallback",
                        "model_run_id": "",
                    },
                    scored_at=now(),
                    decisions=decided["decision"].to_numpy(),
                    latency_ms=client.stats.latencies_ms[-1],
                )
            )
    decisions = pd.concat(answers, ignore_index=True).drop(columns="explanation")
    latencies = np.array(client.stats.latencies_ms)
    logger.info(
        "%d requests, %d fallback(s); client latency p50 %.1f ms, p99 %.1f ms",
        client.stats.requests,
        client.stats.fallbacks,
        np.percentile(latencies, 50),
        np.percentile(latencies, 99),
    )
    return decisions, pd.DataFrame(log, columns=LOG_COLUMNS)
