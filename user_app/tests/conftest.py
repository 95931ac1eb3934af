"""Helpers for user_app tests: a temporary registry and exchange, and a real decision service."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import mlflow
import pandas as pd
import pytest
import requests

from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_app, isolated_env
from shared_schemas.examples import transaction_instance_example

APP = Path(__file__).resolve().parents[1]


class AmountModel(mlflow.pyfunc.PythonModel):
    """Stands in for the pipeline model (same contracts): score = amount / scale."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def predict(self, context, model_input, params=None):
        score = (model_input["amount"] / self.scale).clip(0, 1)
        return pd.DataFrame({"transaction_id": model_input["transaction_id"], "score": score})


class SlowModel(AmountModel):
    """AmountModel that takes ``seconds`` to score any payment over 800 (the example's 812)."""

    def __init__(self, scale: float, seconds: float) -> None:
        super().__init__(scale)
        self.seconds = seconds

    def predict(self, context, model_input, params=None):
        if (model_input["amount"] > 800).any():
            time.sleep(self.seconds)
        return super().predict(context, model_input, params)


class BundledScaleModel(mlflow.pyfunc.PythonModel):
    """score = amount / SCALE, where SCALE comes from the module ``fraud_scale`` the model
    bundles (``code_paths``) and imports only when it predicts, like a lazy import of ml_app."""

    def predict(self, context, model_input, params=None):
        import importlib

        scale = importlib.import_module("fraud_scale").SCALE
        score = (model_input["amount"] / scale).clip(0, 1)
        return pd.DataFrame({"transaction_id": model_input["transaction_id"], "score": score})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def many(n: int, start: int = 10_000) -> pd.DataFrame:
    """n valid instances with distinct ids (copies of the example rows)."""
    base = transaction_instance_example()
    frame = pd.concat([base] * (n // 2 + 1), ignore_index=True).head(n)
    return frame.assign(transaction_id=range(start, start + n))


def make_world(
    root: Path,
    scales: tuple[float, ...] = (),
    models: tuple[tuple[mlflow.pyfunc.PythonModel, list[str] | None], ...] = (),
) -> tuple[Path, list[str]]:
    """user_app's conf under ``root``, one registered AmountModel version per scale, or one
    version per (python model, code paths) of ``models`` (v1 is champion, v2 challenger if any)
    and the example instances; returns the app and run ids."""
    project = isolated_app(APP, root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # kedro runs can't import tests
    # artifacts under root too: the Default experiment would put them in ./mlruns (the checkout)
    experiment = mlflow.MlflowClient(uri).create_experiment(
        f"user_app-tests-{root.name}", artifact_location=(root / "mlartifacts").as_uri()
    )
    run_ids = []
    models = models or tuple((AmountModel(scale), None) for scale in scales)
    for python_model, code_paths in models:
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                code_paths=code_paths,
                registered_model_name="fraud-detector",
            )
        run_ids.append(run.info.run_id)
    client = mlflow.MlflowClient(uri)
    for alias, version in zip(("champion", "challenger"), ("1", "2"), strict=False):
        if int(version) <= len(models):
            client.set_registered_model_alias("fraud-detector", alias, version)
    ExchangeParquetDataset(
        filepath=str(root / "data/exchange/instances"), partition_by="event_time"
    ).save(transaction_instance_example())
    return project, run_ids


@pytest.fixture
def keep_tracking_uri():
    """Restore MLflow's tracking URI after a test that makes its own world."""
    uri = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(uri)


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Registry with champion v1 (amount/1000) and challenger v2 (amount/500), and instances."""
    root = tmp_path_factory.mktemp("monorepo")
    project, _ = make_world(root, (1000.0, 500.0))
    return root, project, mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


class Service:
    def __init__(self, root: Path, project: Path, params: dict[str, object]) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        params = {"online.port": self.port, **params}
        cmd = [
            sys.executable,
            "-m",
            "user_app.online",
            "--project",
            str(project),
            "--params",
            ",".join(f"{k}={v}" for k, v in params.items()),
        ]
        self.output = root / f"service-{self.port}.log"
        with self.output.open("w") as out:  # a file, not a pipe: a full pipe would block it
            self.proc = subprocess.Popen(
                cmd, cwd=project, env=isolated_env(root), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited:\n{self.output.read_text()[-4000:]}")
            try:
                if requests.get(f"{self.url}/ping", timeout=0.5).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise AssertionError(f"service did not start within 90 s:\n{self.stop()[-4000:]}")

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(f"{self.url}{path}", timeout=10, **kwargs)

    def stop(self) -> str:
        """Stop like a process manager would (SIGTERM) and return the service's output."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.output.read_text()

    def exchange(self, name: str, partition_by: str = "event_time") -> pd.DataFrame:
        return ExchangeParquetDataset(
            filepath=str(self.root / "data/exchange" / name), partition_by=partition_by
        ).load()
