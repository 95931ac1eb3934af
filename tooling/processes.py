"""Local servers for the benchmark and the UI check: a free loopback port, a server process that
is waited for, and stopped (with its children) when done."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import requests


def free_port(start: int | None = None) -> int:
    """A free loopback port: any (``start=None``), else the first from ``start`` up to 49151
    (kedro-viz refuses higher ones)."""
    candidates = [0] if start is None else range(start, 49_151)
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port from {start} to 49151")


class Server:
    """``cmd`` started in its own process group; entering waits until ``ready_url`` answers 200.

    :meth:`kill` and :meth:`restart` stop it hard and start it again (fault tests)."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        cwd: Path,
        env: Mapping[str, str],
        ready_url: str,
        log: Path,
        timeout: float = 180,
    ) -> None:
        self.name, self.ready_url, self.timeout = name, ready_url, timeout
        self._cmd, self._cwd, self._env = list(cmd), cwd, dict(env)
        self.log = log.open("w")
        self.proc = self._start()

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(
            self._cmd,
            cwd=self._cwd,
            env=self._env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                if requests.get(self.ready_url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.25)
        raise RuntimeError(f"{self.name} did not answer {self.ready_url} in {self.timeout:.0f} s")

    def __enter__(self) -> Server:
        try:
            self._wait_ready()
        except RuntimeError:
            self.__exit__()
            raise
        return self

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill it and its children at once (SIGKILL: a crash, no clean shutdown); returns once
        the process is gone."""
        if self.running():
            _killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        """Start it again (killing it first if it still runs) and wait until it answers."""
        self.kill()
        self.proc = self._start()
        self._wait_ready()

    def __exit__(self, *exc: object) -> None:
        _killpg(self.proc.pid, signal.SIGTERM)  # children too (mlflow's uvicorn worker)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(pgid, sig)
