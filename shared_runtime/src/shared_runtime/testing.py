"""Test helpers for the apps: run a real ``kedro run`` in an isolated copy of an app.

The copy holds the app's ``conf/`` and ``pyproject.toml`` and the monorepo's top-level ``conf/``,
under a temporary root; the app's code is imported from its installed environment. Exchange
data, the MLflow store and the app's ``data/`` folder all live under the temporary root, so a
test never touches a developer's data or tracking store.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared_runtime.config import find_monorepo_root


def isolated_app(app_dir: Path, root: Path) -> Path:
    """Copy ``app_dir``'s configuration under ``root`` (with the shared conf); return the copy."""
    monorepo = find_monorepo_root(app_dir)
    if not (root / "conf").exists():
        shutil.copytree(
            monorepo / "conf", root / "conf", ignore=shutil.ignore_patterns("*.local.*")
        )
    target = root / app_dir.name
    shutil.copytree(app_dir / "conf", target / "conf", ignore=shutil.ignore_patterns("local"))
    (target / "conf" / "local").mkdir()
    shutil.copy(app_dir / "pyproject.toml", target / "pyproject.toml")
    (target / "data").mkdir()
    (target / "src").mkdir()  # Kedro requires it; the package is imported from the environment
    return target


def isolated_env(root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a run whose exchange, MLflow store and source DB live under ``root``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FRAUD_", "MLFLOW_", "ETL_SOURCE")) and k != "MONOREPO_ROOT"
    }
    env.update(
        MONOREPO_ROOT=str(root),
        KEDRO_DISABLE_TELEMETRY="true",
        MPLBACKEND="Agg",
        ETL_SOURCE_DB_URL=f"sqlite:///{root / 'source_system.db'}",
    )
    env.update(extra or {})
    return env


def kedro_run(
    project: Path,
    pipeline: str,
    params: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    kedro: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``kedro run --pipelines <pipeline>`` in ``project``; raise with its output if it fails."""
    kedro = kedro or Path(sys.executable).parent / "kedro"
    cmd = [str(kedro), "run", "--pipelines", pipeline]
    if params:
        cmd += ["--params", ",".join(f"{k}={v}" for k, v in params.items())]
    proc = subprocess.run(
        cmd,
        cwd=project,
        env=dict(env or isolated_env(project.parent)),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"`{' '.join(cmd)}` failed in {project} (exit {proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def _postgres_bin(tool: str) -> str:
    found = shutil.which(tool) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))), None
    )
    if not found:
        raise FileNotFoundError(
            f"PostgreSQL's {tool} was not found (Debian: apt-get install postgresql)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PostgresCluster:
    """A running throwaway cluster: its server URL (no database), data folder and OS user."""

    url: str
    data: Path
    user: str | None  # the cluster's OS user when this process runs as root, else None

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [_postgres_bin("pg_ctl"), "-D", str(self.data), *args],
            user=self.user,
            check=True,
            capture_output=True,
            text=True,
            cwd=self.data.parent,
        )

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut (their sessions' transactions
        roll back); returns once the server accepts connections again."""
        # -l: the server's output to its log, not to this (captured) pipe
        self._pg_ctl("-l", str(self.data.parent / "server.log"), "-m", "fast", "-w", "restart")


@contextmanager
def throwaway_postgres(*databases: str) -> Iterator[str]:
    """A real PostgreSQL cluster of its own, on a free loopback port, holding ``databases``
    (default: ``source_system``); yields the server's SQLAlchemy URL without a database, e.g.
    ``postgresql+psycopg://fraud@127.0.0.1:5433`` (append ``/source_system``).

    ``initdb`` and ``pg_ctl`` refuse to run as root, so as root the cluster runs as the
    ``postgres`` user, in a folder under the system temp dir that user can reach. The cluster is
    stopped and deleted afterwards. :func:`throwaway_postgres_cluster` yields the cluster itself
    (to restart it).
    """
    with throwaway_postgres_cluster(*databases) as cluster:
        yield cluster.url


@contextmanager
def throwaway_postgres_cluster(*databases: str) -> Iterator[PostgresCluster]:
    """:func:`throwaway_postgres`, yielding the :class:`PostgresCluster`."""
    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="throwaway-pg-"))
    if user:
        shutil.chown(folder, user=user)
    data, port = folder / "data", _free_port()

    def run(*cmd: str) -> None:
        subprocess.run(cmd, user=user, check=True, capture_output=True, text=True, cwd=folder)

    try:
        run(_postgres_bin("initdb"), "-D", str(data), "-U", "fraud", "--auth=trust", "-E", "UTF8")
        # the options are kept in postmaster.opts, so `pg_ctl restart` reuses them
        run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "server.log"),
            "-w",
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1",
            "start",
        )
        for database in databases or ("source_system",):
            run(
                _postgres_bin("createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "fraud",
                database,
            )
        yield PostgresCluster(f"postgresql+psycopg://fraud@127.0.0.1:{port}", data, user)
    finally:
        if (data / "postmaster.pid").exists():
            run(_postgres_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
