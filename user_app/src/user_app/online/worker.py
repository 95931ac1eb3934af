"""One process per loaded model version, so that each version runs with its own bundled code.

A pipeline model carries its code (``code_paths``: ml_app, shared_schemas) and MLflow puts that
code in front of ``sys.path`` when it loads. In one process, two versions share ``sys.modules``:
whatever one of them imports lazily at predict time resolves to the bundle that was loaded last,
whatever :func:`user_app.datasets.load_with_own_code` purged before. A process per version has
exactly one bundle on its path, so it cannot happen.

The service (the parent) resolves which version to load and talks to the worker over a Unix
socket with :mod:`multiprocessing.connection` (pickled messages, an authentication key only the
parent knows, handed over on the worker's stdin): it sends rows it has validated against the
contract and receives the scores.
``python -m user_app.online.worker`` is the worker's entry point; it imports nothing of this
project before the model is loaded, so the bundle's copy of every package wins.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)
START_TIMEOUT_SECONDS = 300.0  # to listen, then to load the model
# a model call taking longer than this is abandoned and its worker killed (the service passes
# parameters_online.yml's online.model_timeout_seconds)
MODEL_TIMEOUT_SECONDS = 30.0
# a swapped-out model keeps serving the requests that picked it before the swap for this long
RETIRE_GRACE_SECONDS = 10.0


class ModelCallError(RuntimeError):
    """The model (or its worker process) failed to score; the message says which version."""


def fast_path(model: Any) -> Any:
    """The model's ``predict_validated`` (ml_app's pipeline model: the inference nodes after the
    contract check) reached through ``unwrap_python_model`` as MLflow intends for custom
    methods, or None for any other pyfunc model (then ``predict`` runs, checks included)."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        return getattr(model.unwrap_python_model(), "predict_validated", None)
    except (AttributeError, MlflowException):  # not a custom python model
        return None


def call_model(model: Any, fast: Any, rows: Any) -> dict[str, np.ndarray]:
    """Scores of contract-valid ``rows`` as arrays (cheap to send between processes)."""
    scores = fast(rows) if fast is not None else model.predict(rows)
    return {
        "transaction_id": np.asarray(scores["transaction_id"], dtype=np.int64),
        "score": np.asarray(scores["score"], dtype=float),
    }


def _exit_when_orphaned(parent: int) -> None:
    """Stop the worker once the service that started it is gone, even before it connected
    (after that, the service's end of the socket closing stops it too)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _serve(address: str, uri: str, tracking_uri: str, registry_uri: str, parent: str) -> None:
    """The worker: listen, load the model, then answer ``rows -> scores`` until told to stop
    (or until the service, process ``parent``, is gone)."""
    _exit_when_orphaned(int(parent))
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    # concurrency comes from processes and requests, never from threads inside a model call
    threadpool_limits(1)
    for name in ("kedro", "kedro_mlflow", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    authkey = bytes.fromhex(sys.stdin.readline().strip())  # from the parent, never argv/env
    with Listener(address, family="AF_UNIX", authkey=authkey) as listener:
        conn = listener.accept()
    try:
        import mlflow  # noqa: PLC0415

        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(registry_uri)
        model = mlflow.pyfunc.load_model(uri)
        fast = fast_path(model)
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            rows = conn.recv()
        except EOFError:  # the service is gone
            return
        if rows is None:
            return
        try:
            conn.send(("ok", call_model(model, fast, rows)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class WorkerProcess:
    """A model version loaded in its own process; :meth:`predict_valid` is thread-safe.

    The worker runs in its own session: a Ctrl-C meant for the service does not reach it (the
    service stops it at shutdown, and it stops by itself when the service is gone)."""

    def __init__(
        self,
        uri: str,
        label: str,
        timeout_seconds: float = MODEL_TIMEOUT_SECONDS,
        start_timeout_seconds: float = START_TIMEOUT_SECONDS,
    ) -> None:
        import mlflow  # noqa: PLC0415

        self.uri = uri
        self.label = label
        self.timeout_seconds = timeout_seconds
        self._lock = threading.Lock()  # one call at a time on the socket
        self._calls = threading.Condition()  # counts the calls in flight
        self._in_flight = 0
        self._retired: str | None = None  # why new calls are refused
        self._conn: Connection | None = None
        self._folder = tempfile.mkdtemp(prefix="user-app-worker-")
        address = str(Path(self._folder) / "socket")
        authkey = os.urandom(32)
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "user_app.online.worker",
                address,
                uri,
                mlflow.get_tracking_uri(),
                mlflow.get_registry_uri(),
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            self._proc.stdin.write(authkey.hex().encode() + b"\n")
            self._proc.stdin.close()
            self._conn = self._connect(address, authkey, start_timeout_seconds)
            if not self._conn.poll(start_timeout_seconds):
                raise ModelCallError(
                    f"{label} did not load in its worker process within "
                    f"{start_timeout_seconds:.0f} s."
                )
            status, detail = self._conn.recv()
        except (EOFError, OSError, AuthenticationError, ModelCallError) as exc:
            self._stop(kill=True)
            if isinstance(exc, ModelCallError):
                raise
            raise ModelCallError(
                f"The worker process for {label} exited with code {self._proc.returncode} while "
                f"it loaded the model (see the service's log): {type(exc).__name__}: {exc}"
            ) from None
        if status != "ready":
            self._stop(kill=False)
            raise ModelCallError(f"{label} could not be loaded in its worker process:\n{detail}")

    def _connect(self, address: str, authkey: bytes, timeout_seconds: float) -> Connection:
        deadline = time.monotonic() + timeout_seconds
        while True:
            if self._proc.poll() is not None:
                raise ModelCallError(
                    f"The worker process for {self.label} exited with code "
                    f"{self._proc.returncode} before it listened (see the service's log)."
                )
            try:
                return Client(address, family="AF_UNIX", authkey=authkey)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise ModelCallError(
                        f"The worker process for {self.label} did not start within "
                        f"{timeout_seconds:.0f} s."
                    ) from None
                time.sleep(0.02)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The worker's exit code once it has stopped, else None."""
        return self._proc.poll()

    def predict_valid(self, rows: Any) -> dict[str, np.ndarray]:
        with self._calls:
            if self._retired:
                raise ModelCallError(f"{self.label} {self._retired}; retry.")
            self._in_flight += 1
        try:
            status, payload = self._call(rows)
        finally:
            with self._calls:
                self._in_flight -= 1
                self._calls.notify_all()
        if status != "ok":
            raise ModelCallError(f"{self.label} failed to score: {payload}")
        return payload

    def _call(self, rows: Any) -> tuple[str, Any]:
        with self._lock:
            conn = self._conn
            if conn is None:  # stopped while this call waited for the socket
                raise ModelCallError(f"{self.label} {self._retired or 'was stopped'}; retry.")
            try:
                conn.send(rows)
                if conn.poll(self.timeout_seconds):
                    return conn.recv()
            except (EOFError, OSError) as exc:
                raise ModelCallError(
                    f"The worker process for {self.label} is gone (exit code "
                    f"{self._proc.poll()}): {exc}"
                ) from None
            # a hung model would hold every caller: stop it (the next reload starts it again)
            with self._calls:
                self._retired = "was stopped: a call took longer than its timeout"
            self._proc.kill()
            self._proc.wait()
            conn.close()
            self._conn = None
        raise ModelCallError(
            f"{self.label} did not answer within {self.timeout_seconds:g} s: its worker process "
            "was stopped and is started again at the next reload."
        )

    def close(self) -> None:
        """Refuse new calls, let those in flight finish (up to one timeout), stop the worker."""
        with self._calls:
            self._retired = self._retired or "was retired (a newer version replaced it)"
            self._calls.wait_for(lambda: self._in_flight == 0, timeout=self.timeout_seconds)
        self._stop(kill=False)

    def _stop(self, kill: bool) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.send(None)
                conn.close()
        if kill:
            self._proc.kill()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._folder, ignore_errors=True)


if __name__ == "__main__":
    _serve(*sys.argv[1:6])
