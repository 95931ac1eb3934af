"""Faults on the real servers stack (tooling/stack.py): the tracking server killed during
training, Postgres restarted during an extraction, the tracking server down under the online
decision service. Each run fails clearly and leaves nothing half done, or keeps serving; and
works again once the server is back. Observed behaviour: docs/scaling.md, "When a server fails".

MLflow's client retries a failed HTTP call for minutes by default (7 retries, doubling pauses):
these runs set ``MLFLOW_HTTP_REQUEST_*`` low, as a deployment that prefers failing fast would.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
import requests
import sqlalchemy as sa

from tooling.conf import exchange_dataset
from tooling.loop.steps import Step, app_environment, env_bin, loop_steps, run_steps
from tooling.processes import free_port
from tooling.stack import servers
from shared_runtime.testing import isolated_app, isolated_env
from tests.conftest import ROOT, SMALL, published, settings

logger = logging.getLogger(__name__)
FAIL_FAST = {  # about 1-2 s per call to a dead server instead of minutes
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


@pytest.fixture(scope="module")
def stack():
    with servers() as running:
        yield running


@pytest.fixture(scope="module")
def world(stack, tmp_path_factory):
    """A world on the stack up to a trained, registered model: (root, env)."""
    root = tmp_path_factory.mktemp("monorepo-faults")
    for app in ("etl_app", "ml_app", "user_app"):
        isolated_app(ROOT / app, root)
    env = isolated_env(root, {**stack.app_env(), **FAIL_FAST})
    steps = [s for s in loop_steps(SMALL) if s.pipeline in _SETUP]
    run_steps(steps, root=root, log_dir=root / "logs", env=env, echo=False)
    return root, env


_SETUP = ("simulate", "etl_instances", "etl_labels", "training")


def start(root: Path, env: dict, step: Step, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            step.command(root),
            cwd=root / step.app,
            env=app_environment(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for(condition, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def versions(client: mlflow.MlflowClient, name: str) -> dict[str, str]:
    return {v.version: v.status for v in client.search_model_versions(f"name = '{name}'")}


@pytest.mark.slow
def test_tracking_server_killed_during_training(stack, world):
    root, env = world
    name = settings(root)["registered_model_name"]
    client = mlflow.MlflowClient(tracking_uri=stack.tracking_uri)
    before = versions(client, name)
    training = next(s for s in loop_steps(SMALL) if s.pipeline == "training")
    log = root / "logs" / "fault-training.log"
    proc = start(root, env, training, log)
    try:
        # during training: the model is fitted, the run open on the server, nothing logged yet
        wait_for(lambda: "Fitted " in log.read_text(), 180, "the model to be fitted")
        stack.mlflow_server.kill()
        killed = time.monotonic()
        proc.wait(timeout=300)
        failed_after = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
        if not stack.mlflow_server.running():
            stack.mlflow_server.restart()
    output = log.read_text()
    assert proc.returncode != 0
    assert "TrackingServerUnreachable" in output, output[-3000:]
    assert f"The MLflow tracking server at {stack.tracking_uri} is unreachable" in output
    assert "No model version was registered" in output
    assert failed_after < 60, failed_after  # not MLflow's minutes of retries
    # nothing half registered: the same versions, each READY with its model's files
    after = versions(client, name)
    assert after == before
    assert set(after.values()) == {"READY"}
    for version in after:
        source = client.get_model_version_download_uri(name, version)
        assert mlflow.artifacts.list_artifacts(source, tracking_uri=stack.tracking_uri)
    # with the server back, the same run succeeds and registers the next version
    run_steps([training], root=root, log_dir=root / "logs" / "rerun", env=env, echo=False)
    rerun = versions(client, name)
    assert set(rerun) - set(before) and set(rerun.values()) == {"READY"}
    newest = max(rerun, key=int)
    assert client.get_model_version_by_alias(name, "challenger").version == newest
    logger.warning(
        f"training failed {failed_after:.1f} s after the kill; rerun registered v{newest}"
    )


def exchange_state(root: Path, env: dict[str, str]) -> dict[str, tuple[int | None, int]]:
    """Per table etl_app publishes: its version and rows (a publish, even a failed one, that
    reached a commit would change the version)."""
    state = {}
    for name in ("instances", "labels"):
        dataset = exchange_dataset(root, "etl_app", name, env)
        state[name] = (dataset.version(), len(dataset.load()))
    return state


@pytest.mark.slow
def test_postgres_restarted_during_extraction(stack, world):
    root, env = world
    before = exchange_state(root, env)
    assert before["instances"][1] > 0
    engine = sa.create_engine(f"{stack.postgres}/source_system")
    locker = engine.connect()
    # the extraction's payments query joins merchants: it waits behind this lock
    locker.execute(sa.text("LOCK TABLE merchants IN ACCESS EXCLUSIVE MODE"))
    etl = next(s for s in loop_steps(SMALL) if s.pipeline == "etl_instances")
    log = root / "logs" / "fault-etl.log"
    proc = start(root, env, etl, log)
    try:

        def etl_waits() -> bool:
            with engine.connect() as probe:
                return bool(
                    probe.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                            "'Lock' AND query ILIKE '%FROM transactions%merchants%'"
                        )
                    ).scalar()
                )

        wait_for(etl_waits, 120, "the extraction to wait for the merchants lock", every=0.5)
        restarted = time.monotonic()
        stack.database.restart()
        proc.wait(timeout=120)
        failed_after = time.monotonic() - restarted
    finally:
        if proc.poll() is None:
            proc.kill()
        locker.invalidate()  # its server session is gone with the restart
        engine.dispose()
    output = log.read_text()
    assert proc.returncode != 0
    assert "source_window_payments" in output, output[-3000:]
    assert "terminating connection due to administrator command" in output, output[-3000:]
    assert exchange_state(root, env) == before  # nothing published, not even in part
    logger.warning(f"etl_instances failed {failed_after:.1f} s after the restart began")
    # and with Postgres back, it runs
    run_steps([etl], root=root, log_dir=root / "logs" / "etl-rerun", env=env, echo=False)


class DecisionService:
    """``python -m user_app.online`` of the world at ``root``, on a free port."""

    def __init__(self, root: Path, env: dict, params: dict[str, object]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        params = {"online.port": self.port, **params}
        self.log = root / "logs" / f"service-{self.port}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    str(env_bin(root, "user_app", "python")),
                    "-m",
                    "user_app.online",
                    "--params",
                    ",".join(f"{k}={v}" for k, v in params.items()),
                ],
                cwd=root / "user_app",
                env=app_environment(env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._up, 180, f"the decision service:\n{self.log}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited:\n{self.log.read_text()[-4000:]}")
        try:
            return requests.get(f"{self.url}/ping", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def health(self) -> dict:
        return requests.get(f"{self.url}/health", timeout=10).json()

    def decide(self, rows) -> dict:
        answer = requests.post(
            f"{self.url}/decisions?explain=false",
            json={
                "dataframe_split": json.loads(
                    rows.to_json(orient="split", index=False, date_format="iso")
                )
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.log.read_text()


@pytest.mark.slow
def test_online_service_rides_out_a_tracking_server_outage(stack, world):
    root, env = world
    shared = settings(root)
    name, alias = shared["registered_model_name"], shared["champion_alias"]
    client = mlflow.MlflowClient(tracking_uri=stack.tracking_uri)
    champion = client.get_model_version_by_alias(name, alias)
    # another version to move the champion to later: the same model, registered again
    other = client.copy_model_version(f"models:/{name}/{champion.version}", name)
    rows = published(root, "etl_app", "instances", env).head(3)
    poll = 1
    service = DecisionService(root, env, {"online.reload_seconds": poll})
    try:
        assert service.decide(rows)["model_version"] == champion.version
        assert service.health()[alias] == champion.version
        stack.mlflow_server.kill()
        down = time.monotonic()
        try:
            time.sleep(poll + 4)  # several polls fail (each ~1-2 s against the dead server)
            health = service.health()
            assert health[alias] == champion.version, health
            assert health["serving"]["champion"] == champion.version
            assert health["registry_problem"], health
            answered = [service.decide(rows)["model_version"] for _ in range(5)]
            assert set(answered) == {champion.version}
            outage_health = health
        finally:
            stack.mlflow_server.restart()
        logger.warning(
            f"outage of {time.monotonic() - down:.1f} s; /health during it: {outage_health}"
        )
        client.set_registered_model_alias(name, alias, other.version)
        moved = time.monotonic()
        wait_for(
            lambda: service.decide(rows)["model_version"] == other.version,
            60,
            f"version {other.version} to answer after the alias moved",
            every=0.5,
        )
        logger.warning(
            f"new champion served {time.monotonic() - moved:.1f} s after the alias moved"
        )
        # /health shows the aliases as of the poll that swapped the model in: the poll reads
        # them once its roles are refreshed, a moment after the new version starts answering
        wait_for(
            lambda: (h := service.health())[alias] == other.version and not h["registry_problem"],
            10,
            f"/health to show {alias} -> {other.version} and no registry problem",
            every=0.5,
        )
    finally:
        client.set_registered_model_alias(name, alias, champion.version)
        output = service.stop()
    assert "The model registry is unreachable: serving the loaded models" in output
    assert "The model registry answers again" in output
    assert "alias is gone" not in output
    assert "No challenger model registered" not in output
