"""A worker process that fails, hangs or is orphaned never takes the service (or its callers)
down with it: real worker processes, real models saved to a temp dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import cloudpickle
import mlflow
import pandas as pd
import pytest

from shared_schemas.examples import transaction_instance_example
from user_app.online.service import validate
from user_app.online.worker import ModelCallError, WorkerProcess

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker can't import tests


class Quick(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.DataFrame({"transaction_id": model_input["transaction_id"], "score": 0.25})


class DiesOnLoad(Quick):
    def load_context(self, context):
        os._exit(3)  # e.g. killed for memory while loading


class HangsOnLoad(Quick):
    def load_context(self, context):
        time.sleep(600)


class Slow(Quick):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, context, model_input, params=None):
        time.sleep(self.seconds)
        return super().predict(context, model_input, params)


def saved(tmp_path: Path, python_model: mlflow.pyfunc.PythonModel) -> str:
    path = tmp_path / type(python_model).__name__
    # requirements given: inferring them would load (and hang in) the model for 120 s
    mlflow.pyfunc.save_model(str(path), python_model=python_model, pip_requirements=[])
    return str(path)


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """Where this test's workers make their socket folders (not shared with other runs)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def gone(pid: int, seconds: float = 10.0) -> bool:
    """Whether the process has exited (a zombie not yet reaped by init counts as exited)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


ROWS = validate(transaction_instance_example())


def test_a_worker_dying_while_it_loads_is_a_model_call_error_and_leaves_nothing(tmp_path, temp_dir):
    with pytest.raises(ModelCallError, match="exited with code 3"):
        WorkerProcess(saved(tmp_path, DiesOnLoad()), "dying model")
    assert list(temp_dir.iterdir()) == []  # its socket folder is gone


def test_a_load_that_hangs_is_given_up_and_its_process_stopped(tmp_path, temp_dir):
    started = time.monotonic()
    with pytest.raises(ModelCallError, match=r"did not load .* within 3 s"):
        WorkerProcess(saved(tmp_path, HangsOnLoad()), "hanging model", start_timeout_seconds=3)
    assert time.monotonic() - started < 30
    assert list(temp_dir.iterdir()) == []


def test_a_call_that_hangs_fails_after_the_timeout_and_stops_its_worker(tmp_path):
    worker = WorkerProcess(saved(tmp_path, Slow(600)), "hung model", timeout_seconds=2)
    try:
        started = time.monotonic()
        with pytest.raises(ModelCallError, match="did not answer within 2 s"):
            worker.predict_valid(ROWS)
        assert time.monotonic() - started < 10
        assert worker.returncode is not None  # stopped: the router's next reload restarts it
        with pytest.raises(ModelCallError, match="was stopped"):
            worker.predict_valid(ROWS)
    finally:
        worker.close()


def test_a_retired_worker_finishes_its_calls_in_flight_then_refuses_with_a_model_call_error(
    tmp_path,
):
    worker = WorkerProcess(saved(tmp_path, Slow(1.5)), "slow model")
    answers: list[object] = []
    call = threading.Thread(target=lambda: answers.append(worker.predict_valid(ROWS)))
    call.start()
    time.sleep(0.5)  # the call is in the model
    worker.close()  # waits for it
    call.join()
    assert list(answers[0]["score"]) == [0.25] * len(ROWS)
    assert worker.returncode == 0
    with pytest.raises(ModelCallError, match="was retired"):  # a 503, not an AttributeError
        worker.predict_valid(ROWS)


def test_a_worker_runs_in_its_own_session_so_ctrl_c_reaches_only_the_service(tmp_path):
    worker = WorkerProcess(saved(tmp_path, Quick()), "quick model")
    try:
        assert os.getsid(worker.pid) == worker.pid != os.getsid(0)
        assert os.getpgid(worker.pid) != os.getpgid(0)
    finally:
        worker.close()


def test_a_worker_whose_service_died_before_connecting_stops(tmp_path):
    """The service starts a worker and dies before connecting: the worker must not wait in
    accept() for ever."""
    script = textwrap.dedent(
        f"""
        import os, subprocess, sys
        proc = subprocess.Popen(
            [sys.executable, "-m", "user_app.online.worker", {str(tmp_path / "socket")!r},
             "unused", "unused", "unused", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc.stdin.write(os.urandom(32).hex().encode() + b"\\n")
        proc.stdin.close()
        print(proc.pid, flush=True)
        os._exit(0)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    pid = int(out.stdout.split()[0])
    try:
        assert gone(pid, seconds=15), "the orphaned worker still waits for its service"
    finally:
        if not gone(pid, seconds=0.1):
            os.kill(pid, signal.SIGKILL)
