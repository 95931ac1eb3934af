"""Local servers for the benchmark and the UI check: a free loopback port, a server process that
is waited for, and stopped (with its children) when done."""

from __future__ import annotations

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
    """``cmd`` started in its own process group; entering waits until ``ready_url`` answers 200."""

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
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=dict(env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                if requests.get(self.ready_url, timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.25)
        self.__exit__()
        raise RuntimeError(f"{self.name} did not answer {self.ready_url} in {self.timeout:.0f} s")

    def __exit__(self, *exc: object) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)  # children too (mlflow's uvicorn worker)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()
