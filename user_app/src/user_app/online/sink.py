"""Publishing what the service decided: buffered, validated, atomic, and never on the hot path.

Each request appends a few arrays to a buffer (microseconds). A background thread flushes the
buffer every ``flush_seconds`` (and at shutdown) through the Kedro catalog, so every row is
validated against its contract on save and written atomically by the exchange dataset:

* ``online_decisions`` - FraudDecision rows of the answers (champion or canary);
* ``shadow_decisions`` - what the challenger would have decided, in shadow mode;
* ``prediction_log``   - one PredictionLog row per model call, with the route that answered.

A failed flush keeps its rows and retries at the next one, so nothing is lost while the store
is briefly unavailable.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from user_app.decisions import LOG_COLUMNS, decision_frame

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """One model call of one request, as the service recorded it."""

    log: dict[str, Any]  # a PredictionLog record
    transaction_id: np.ndarray
    event_time: np.ndarray
    score: np.ndarray
    decision: np.ndarray


class DecisionSink:
    def __init__(
        self,
        catalog: Any,
        thresholds: tuple[float, float],
        flush_seconds: float = 5.0,
        datasets: dict[str, str] | None = None,
    ) -> None:
        self._catalog = catalog
        self._thresholds = thresholds
        self._flush_seconds = flush_seconds
        self._datasets = {
            "answered": "online_decisions",
            "shadow": "shadow_decisions",
            "log": "prediction_log",
            **(datasets or {}),
        }
        self._buffer: list[Scored] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decision-sink", daemon=True)
        self.flushed_rows = 0

    def record(self, scored: Scored) -> None:
        with self._lock:
            self._buffer.append(scored)

    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop the flusher and publish what is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            self.flush()

    def flush(self) -> int:
        """Publish the buffer; on failure keep it for the next flush. Returns rows published."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                self._publish(batch)
            except Exception:
                logger.exception("Publishing %d scored requests failed; will retry.", len(batch))
                with self._lock:
                    self._buffer[:0] = batch
                return 0
            self.flushed_rows += len(batch)
            return len(batch)

    def _publish(self, batch: list[Scored]) -> None:
        for kind in ("answered", "shadow"):
            calls = [s for s in batch if (s.log["route"] == "shadow") == (kind == "shadow")]
            if calls:
                self._catalog.save(self._datasets[kind], self._decisions(calls))
        self._catalog.save(self._datasets["log"], pd.DataFrame([s.log for s in batch])[LOG_COLUMNS])

    def _decisions(self, calls: list[Scored]) -> pd.DataFrame:
        sizes = [len(s.score) for s in calls]
        scored = pd.DataFrame(
            {
                "transaction_id": np.concatenate([s.transaction_id for s in calls]),
                "event_time": np.concatenate([s.event_time for s in calls]),
                "score": np.concatenate([s.score for s in calls]),
            }
        )
        frame = decision_frame(
            scored,
            self._thresholds,
            model_name=np.repeat([s.log["model_name"] for s in calls], sizes),
            model_version=np.repeat([s.log["model_version"] for s in calls], sizes),
            scored_at=np.repeat(np.array([s.log["scored_at"] for s in calls], "M8[us]"), sizes),
        )
        # a client retry scores a transaction twice: keep the latest decision
        return frame.drop_duplicates("transaction_id", keep="last").reset_index(drop=True)


def now() -> datetime:
    return pd.Timestamp.now("UTC").tz_localize(None).to_pydatetime()
