"""Publishing what the service decided: bounded, durable, exactly once, in files of a sane size.

Four datasets, each published through the Kedro catalog (validated against its contract on
save, written atomically by the exchange dataset):

* ``online_decisions`` - FraudDecision rows of the answers (champion or canary);
* ``shadow_decisions`` - what the challenger would have decided, in shadow mode;
* ``prediction_log``   - one PredictionLog row per model call, with the route that answered;
* ``online_instances`` - the TransactionInstance rows ``POST /authorize`` scored (the features
  etl_app's featurization service computed), so every online decision can be compared with the
  batch's features and decision for the same payment.

The way there, per dataset:

1. **memory** - each request appends a few arrays to a buffer (microseconds, never I/O);
2. **spool** - every ``flush_seconds`` the buffer becomes one small Parquet segment per dataset
   in a local spool folder (``<spool>/<dataset>/seg-*.parquet``, written under a temporary name
   and renamed), so a crash or an unreachable exchange loses nothing that was spooled;
3. **roll** - once a dataset's spooled segments hold ``roll_rows`` rows, or the oldest is
   ``roll_seconds`` old (and at shutdown), they are moved into a roll folder and published as
   one save: one file per day partition per roll, not one every few seconds.

Exactly once: a roll folder, once made, is only ever published whole, and the exchange names an
appended file after its content, so publishing the same roll again (after a save that failed
half-way, or a crash before the roll folder was removed) rewrites the same files instead of
adding rows twice. A published roll is renamed ``.done-*`` before it is deleted. The datasets
are independent: a failing ``prediction_log`` never makes ``online_decisions`` publish again.
A roll whose rows break their contract (a bug, not an outage) is not retried for ever: it moves
to ``rejected-*`` in the spool, counted as ``rejected_rows`` in ``/health``.

Bounded: while more than ``max_pending_rows`` rows wait (in memory, or spooled but not
published: the exchange is down) :meth:`DecisionSink.admit` refuses new requests with a reason
(the service answers 503), rather than growing without limit or dropping rows silently. Shadow
calls made while full are counted (``shadow_dropped`` in ``/health``), never recorded.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from kedro.validation import DataValidationError

from user_app.decisions import LOG_COLUMNS, decision_frame

logger = logging.getLogger(__name__)
KINDS = ("answered", "shadow", "log", "features")


class SinkFull(RuntimeError):
    """Too many rows wait to be published: the exchange (or the spool) is not keeping up."""


@dataclass(frozen=True)
class Scored:
    """One model call of one request, as the service recorded it."""

    log: dict[str, Any]  # a PredictionLog record
    transaction_id: np.ndarray
    event_time: np.ndarray
    score: np.ndarray
    decision: np.ndarray
    # the rows scored, published as ``online_instances`` (``POST /authorize`` only)
    features: pd.DataFrame | None = None

    @property
    def rows(self) -> int:
        """Rows this call adds to the sink: decisions, its log row, its features."""
        return len(self.score) + 1 + (0 if self.features is None else len(self.features))


@dataclass(frozen=True)
class SinkPolicy:
    """When to spool, when to publish, and how much may wait."""

    flush_seconds: float = 5.0  # memory -> local spool
    roll_rows: int = 200_000  # spool -> exchange once a dataset has this many rows spooled,
    roll_seconds: float = 3600.0  # or its oldest spooled rows are this old
    max_pending_rows: int = 1_000_000  # refuse requests beyond this many unpublished rows

    def __post_init__(self) -> None:
        if self.max_pending_rows < len(KINDS) * self.roll_rows:  # each dataset may wait for a roll
            raise ValueError(
                f"max_pending_rows ({self.max_pending_rows}) must be at least {len(KINDS)} x "
                f"roll_rows ({self.roll_rows}), or the service would refuse requests while all "
                "is well."
            )


class DecisionSink:
    def __init__(
        self,
        catalog: Any,
        thresholds: tuple[float, float],
        spool: str | Path,
        policy: SinkPolicy | None = None,
        datasets: dict[str, str] | None = None,
    ) -> None:
        self._catalog = catalog
        self._thresholds = thresholds
        self.policy = policy or SinkPolicy()
        self._datasets = {
            "answered": "online_decisions",
            "shadow": "shadow_decisions",
            "log": "prediction_log",
            "features": "online_instances",
            **(datasets or {}),
        }
        self._spool = Path(spool)
        self._buffer: list[Scored] = []
        self._buffer_rows = 0
        self._unspooled: dict[str, list[pd.DataFrame]] = {kind: [] for kind in KINDS}
        self._spooled_rows = {kind: 0 for kind in KINDS}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decision-sink", daemon=True)
        self.counts = {
            "published_rows": 0,
            "failed_spools": 0,
            "failed_publishes": 0,
            "failed_flushes": 0,
            "rejected_rows": 0,
            "refused_requests": 0,
            "shadow_dropped": 0,
        }
        for kind in KINDS:
            self._recover(kind)

    @property
    def flush_seconds(self) -> float:
        return self.policy.flush_seconds

    # --- the request path ------------------------------------------------------------------
    def admit(self) -> None:
        """Raise :class:`SinkFull` if the rows waiting to be published are at the bound."""
        waiting = self.waiting_rows()
        if waiting >= self.policy.max_pending_rows:
            with self._lock:
                self.counts["refused_requests"] += 1
            raise SinkFull(
                f"{waiting} decision rows wait to be published (limit "
                f"{self.policy.max_pending_rows}): the exchange is not accepting them "
                f"(see the service's log and /health). Retry later."
            )

    def record(self, scored: Scored) -> None:
        """Keep one model call for publication (a shadow call is dropped, and counted, when
        the sink is full: it must never cost the caller an answer)."""
        with self._lock:
            if scored.log["route"] == "shadow" and self._waiting() >= self.policy.max_pending_rows:
                self.counts["shadow_dropped"] += 1
                return
            self._buffer.append(scored)
            self._buffer_rows += scored.rows

    def pending(self) -> int:
        """Model calls recorded but not yet spooled."""
        with self._lock:
            return len(self._buffer)

    def waiting_rows(self) -> int:
        with self._lock:
            return self._waiting()

    def _waiting(self) -> int:
        unspooled = sum(len(f) for frames in self._unspooled.values() for f in frames)
        return self._buffer_rows + unspooled + sum(self._spooled_rows.values())

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {
                "waiting_rows": self._waiting(),
                "max_pending_rows": self.policy.max_pending_rows,
                "spooled_rows": {self._datasets[k]: n for k, n in self._spooled_rows.items()},
                **self.counts,
            }

    # --- the background path ---------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop the flusher and publish everything that is left."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush(publish_all=True)

    def _run(self) -> None:
        while not self._stop.wait(self.policy.flush_seconds):
            try:
                self.flush()
            except Exception:  # a bug, not an outage: keep flushing, keep the rows, say so
                with self._lock:
                    self.counts["failed_flushes"] += 1
                logger.exception("Flushing the decision sink failed; its rows are kept.")

    def flush(self, publish_all: bool = False) -> int:
        """Spool what is in memory, then publish the datasets due for a roll (all of them with
        ``publish_all``). Returns the rows published; failures are logged, counted and
        retried at the next flush."""
        with self._flush_lock:
            self._to_spool()
            published = 0
            for kind in KINDS:
                if self._folder(kind).is_dir():
                    published += self._roll(kind, publish_all)
            return published

    def _to_spool(self) -> None:
        with self._lock:
            batch = list(self._buffer)
        # outside the lock (requests keep recording); if this fails the batch stays buffered
        frames = self._frames(batch)
        with self._lock:
            del self._buffer[: len(batch)]
            self._buffer_rows -= sum(s.rows for s in batch)
            for kind, frame in frames.items():
                self._unspooled[kind].append(frame)
        for kind in KINDS:
            with self._lock:
                frames = self._unspooled[kind]
            if not frames:
                continue
            frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
            try:
                self._write_segment(kind, frame)
            except Exception:  # a full or missing disk, or rows Arrow cannot write
                with self._lock:
                    self.counts["failed_spools"] += 1
                logger.exception("Spooling %d %s rows failed; kept in memory.", len(frame), kind)
                continue
            with self._lock:
                del self._unspooled[kind][: len(frames)]
                self._spooled_rows[kind] += len(frame)

    def _frames(self, batch: list[Scored]) -> dict[str, pd.DataFrame]:
        frames = {}
        for kind in ("answered", "shadow"):
            calls = [s for s in batch if (s.log["route"] == "shadow") == (kind == "shadow")]
            if calls:
                frames[kind] = self._decisions(calls)
        if batch:
            frames["log"] = pd.DataFrame([s.log for s in batch])[LOG_COLUMNS]
        features = [s.features for s in batch if s.features is not None]
        if features:
            frames["features"] = pd.concat(features, ignore_index=True)
        return frames

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

    # --- the spool ---------------------------------------------------------------------------
    def _folder(self, kind: str) -> Path:
        return self._spool / self._datasets[kind]

    def _write_segment(self, kind: str, frame: pd.DataFrame) -> None:
        folder = self._folder(kind)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"seg-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = folder / f".tmp-{name}"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
        os.replace(tmp, folder / name)

    def _segments(self, folder: Path) -> list[Path]:
        return sorted(folder.glob("seg-*.parquet"))

    def _rolls(self, kind: str) -> list[Path]:
        return sorted(p for p in self._folder(kind).glob("roll-*") if p.is_dir())

    def _recover(self, kind: str) -> None:
        """After a restart: forget published rolls, count what is still to publish."""
        folder = self._folder(kind)
        if not folder.is_dir():
            return
        for done in folder.glob(".done-*"):
            shutil.rmtree(done, ignore_errors=True)
        for tmp in folder.glob(".tmp-*"):  # a segment whose write did not finish
            tmp.unlink(missing_ok=True)
        files = self._segments(folder) + [s for r in self._rolls(kind) for s in self._segments(r)]
        self._spooled_rows[kind] = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        if files:
            logger.warning(
                "%d unpublished %s rows found in the spool %s: publishing them.",
                self._spooled_rows[kind],
                self._datasets[kind],
                folder,
            )

    def _due(self, kind: str) -> bool:
        """Whether the spooled segments are enough, or old enough, for a roll."""
        segments = self._segments(self._folder(kind))
        if not segments:
            return False
        if self._spooled_rows[kind] >= self.policy.roll_rows:
            return True
        oldest_ns = int(segments[0].name.split("-")[1])
        return time.time_ns() - oldest_ns >= self.policy.roll_seconds * 1e9

    def _roll(self, kind: str, publish_all: bool) -> int:
        """Publish the rolls left by a failed attempt (oldest first), then, when due, turn the
        spooled segments into a new roll and publish it. Returns the rows published."""
        published = 0
        for roll in self._rolls(kind):
            rows = self._publish(kind, roll)
            if rows is None:
                return published  # the exchange still refuses: no new roll until it accepts
            published += rows
        if publish_all or self._due(kind):
            roll = self._folder(kind) / f"roll-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
            roll.mkdir()
            for segment in self._segments(self._folder(kind)):
                os.replace(segment, roll / segment.name)
            published += self._publish(kind, roll) or 0
        return published

    def _publish(self, kind: str, roll: Path) -> int | None:
        """Save one roll whole; None if the save failed (the roll stays for a retry)."""
        files = self._segments(roll)  # in the order they were spooled
        frame, spooled = None, 0
        try:
            # the rows this roll counts for in the spool, before duplicates are dropped
            spooled = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            if files:
                frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
            if frame is not None and kind != "log":
                # a client retry in another flush scored the transaction again: the latest
                # decides
                frame = frame.drop_duplicates("transaction_id", keep="last").reset_index(drop=True)
            if frame is not None:
                self._catalog.save(self._datasets[kind], frame)
        except DataValidationError:
            # not transient: retrying would block the dataset for good. Keep the rows aside,
            # count them, and say where they are.
            rejected = roll.with_name(f"rejected-{roll.name}")
            os.replace(roll, rejected)
            with self._lock:
                self._spooled_rows[kind] -= spooled
                self.counts["rejected_rows"] += len(frame)
            logger.exception(
                "%d %s rows break their contract; they are kept in %s, not published.",
                len(frame),
                self._datasets[kind],
                rejected,
            )
            return 0
        except Exception:
            with self._lock:
                self.counts["failed_publishes"] += 1
            logger.exception(
                "Publishing %d %s rows failed; they stay in the spool (%s) and are retried at "
                "the next flush.",
                spooled,
                self._datasets[kind],
                roll,
            )
            return None
        done = roll.with_name(f".done-{roll.name}")
        os.replace(roll, done)
        shutil.rmtree(done, ignore_errors=True)
        rows = 0 if frame is None else len(frame)
        with self._lock:
            self._spooled_rows[kind] -= spooled
            self.counts["published_rows"] += rows
        return rows


def now() -> datetime:
    return pd.Timestamp.now("UTC").tz_localize(None).to_pydatetime()
