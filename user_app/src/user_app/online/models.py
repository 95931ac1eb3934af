"""A model version as the service calls it: in its own worker process, or in the service's.

Both kinds answer :meth:`ServedModel.predict_valid` with the scores of rows the service has
validated against the contract, and are safe to call from several threads (requests run in a
thread pool, off the event loop). See docs/architecture.md, "Multi-model processes".
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from user_app.datasets import ScoringModel
from user_app.online.worker import (
    MODEL_TIMEOUT_SECONDS,
    WorkerProcess,
    call_model,
    fast_path,
)

Scores = Mapping[str, np.ndarray]


class ServedModel:
    """One registered version: its identity and how to score with it."""

    def __init__(
        self,
        name: str,
        version: str,
        run_id: str,
        reference: str,
        call: Callable[[pd.DataFrame], Scores],
        close: Callable[[], None] = lambda: None,
        process: int | None = None,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        self.name = name
        self.version = version
        self.run_id = run_id
        self.reference = reference
        self.process = process  # the worker's pid, None when it runs in the service's process
        self._call = call
        self._close = close
        self._alive = alive

    def predict_valid(self, rows: pd.DataFrame) -> Scores:
        """Scores (``transaction_id``, ``score`` arrays) of rows valid under the contract."""
        return self._call(rows)

    def close(self) -> None:
        self._close()

    def alive(self) -> bool:
        """False once its worker process has died (the router then loads it again)."""
        return self._alive()

    @classmethod
    def in_process(cls, scoring: ScoringModel) -> ServedModel:
        """A model loaded here: sound only while its bundle is the only one this process has
        loaded (a second bundle's lazy imports could resolve to this one's code)."""
        fast = fast_path(scoring.model)
        lock = threading.Lock()  # one call at a time per model, as in a worker process

        def call(rows: pd.DataFrame) -> Scores:
            with lock:
                return call_model(scoring.model, fast, rows)

        return cls(scoring.name, scoring.version, scoring.run_id, scoring.reference, call)

    @classmethod
    def in_worker(
        cls,
        name: str,
        version: str,
        run_id: str,
        reference: str,
        timeout_seconds: float = MODEL_TIMEOUT_SECONDS,
    ) -> ServedModel:
        """``models:/<name>/<version>`` loaded in a new worker process, with its own code; a
        call longer than ``timeout_seconds`` fails (503) and stops that process."""
        worker = WorkerProcess(
            f"models:/{name}/{version}", f"version {version} of '{name}'", timeout_seconds
        )
        return cls(
            name,
            version,
            run_id,
            reference,
            worker.predict_valid,
            worker.close,
            worker.pid,
            lambda: worker.returncode is None,
        )


def shadowed_code(code_dir: Path) -> list[str]:
    """The modules a model bundles (``<model>/code``) that this process has already imported
    from other files: loaded here, the model would run those instead of its own. Empty when
    every bundled module this process has imported is byte-for-byte the bundle's copy."""
    if not code_dir.is_dir():
        return []
    clashes = []
    for entry in sorted(code_dir.iterdir()):
        name = entry.stem if entry.suffix == ".py" else entry.name
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if file is None:
            continue  # not imported here: it will come from the bundle
        if entry.is_dir():
            ours, theirs = Path(file).parent, entry
            files = {p.relative_to(theirs) for p in theirs.rglob("*.py")}
            files |= {p.relative_to(ours) for p in ours.rglob("*.py")}
        else:
            ours, theirs, files = Path(file).parent, entry.parent, {Path(entry.name)}
        same = all(
            (ours / f).is_file()
            and (theirs / f).is_file()
            and (ours / f).read_bytes() == (theirs / f).read_bytes()
            for f in files
        )
        if not same:
            clashes.append(name)
    return clashes
