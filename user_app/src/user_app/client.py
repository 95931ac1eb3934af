"""A client for the decision service that never leaves a payment without a decision.

Connect and read timeouts bound each attempt; urllib3's ``Retry`` retries connection errors and
503/502/504 answers a bounded number of times with exponential backoff. When the service stays
down or slow, every transaction of the request gets the fallback decision ``review`` (a person
looks at it, nothing is auto-approved or auto-declined) and the fallback is counted. A 4xx is the
caller's bug and is raised, not hidden behind a fallback.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)
FALLBACK_DECISION = "review"


def scoring_payload(frame: pd.DataFrame, orient: str = "split") -> dict[str, Any]:
    """``frame`` as an MLflow scoring-protocol body (``dataframe_split``/``dataframe_records``)."""
    body = frame.to_json(orient=orient, index=False, date_format="iso")
    return {f"dataframe_{orient}": json.loads(body)}


class RejectedRequest(ValueError):
    """The service refused the request (4xx); the message is the service's explanation."""


@dataclass
class ClientStats:
    requests: int = 0
    fallbacks: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class DecisionClient:
    def __init__(
        self,
        base_url: str,
        connect_timeout: float = 0.25,
        read_timeout: float = 1.0,
        retries: int = 2,
        backoff: float = 0.05,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            status_forcelist=(502, 503, 504),
            allowed_methods=None,  # scoring is idempotent: POST may be retried
            backoff_factor=backoff,
            raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.stats = ClientStats()

    def decide(self, instances: pd.DataFrame, explain: bool = False) -> pd.DataFrame:
        """One row per transaction: score, decision, model_version, route, fallback."""
        self.stats.requests += 1
        payload = scoring_payload(instances)
        started = time.perf_counter()
        try:
            response = self.session.post(
                f"{self.base_url}/decisions",
                params={"explain": str(explain).lower()},
                json=payload,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            return self._fallback(instances, f"{type(exc).__name__}: {exc}")
        finally:
            self.stats.latencies_ms.append((time.perf_counter() - started) * 1000)
        if 400 <= response.status_code < 500:
            raise RejectedRequest(f"{response.status_code}: {response.text}")
        if response.status_code != 200:
            return self._fallback(instances, f"HTTP {response.status_code}")
        body = response.json()
        decided = pd.DataFrame(body["decisions"])
        return decided.assign(
            model_version=body["model_version"], route=body["route"], fallback=False
        )

    def _fallback(self, instances: pd.DataFrame, reason: str) -> pd.DataFrame:
        self.stats.fallbacks += 1
        logger.warning(
            "Decision service unavailable (%s): %d transaction(s) sent to review.",
            reason,
            len(instances),
        )
        return pd.DataFrame(
            {
                "transaction_id": instances["transaction_id"].to_numpy(),
                "score": float("nan"),
                "decision": FALLBACK_DECISION,
                "explanation": None,
                "model_version": "fallback",
                "route": "fallback",
                "fallback": True,
            }
        )

    def health(self) -> dict[str, Any]:
        return self.session.get(f"{self.base_url}/health", timeout=self.timeout).json()
