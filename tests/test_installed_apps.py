"""The released artifacts run without the monorepo: the loop through installed apps.

Every member is built as `make dist` builds it (tooling/release/artifacts.py) into a temporary
wheel folder. Each app gets a fresh venv of its own (`uv venv`), into which its wheel and the
shared packages' wheels are installed from that folder (their other dependencies, kedro, mlflow,
..., come from uv's cache or the registry as for any install). Each conf archive is unpacked into
a temporary deployment folder, and the loop runs as docs/deploying.md says: `python -m <app>
--conf-source <deployment>/<app>/conf ...` (or the `<app>` entry point) in a working directory
outside the checkout, with no MONOREPO_ROOT and no PYTHONPATH, against a temporary exchange and
MLflow store set through the documented environment variables. etl_app's source system is the
simulator's SQLite file at its default URL, relative to etl_app's working directory.

Cost on this machine kind (2 shared cores, warm uv cache): building ~1 s, the three venvs
~5 s, the runs ~80 s (training ~40 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import mlflow
import pytest

from tooling.conf import exchange_dataset, shared_settings
from tooling.loop.steps import loop_steps
from tooling.release import pins
from tooling.release.artifacts import build, version_of
from tooling.release.members import members
from tooling.uv import uv_executable
from shared_runtime.pytest_user_state import fingerprint
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from tests.conftest import ROOT, SMALL

APPS = ("etl_app", "ml_app", "user_app")
SHARED = ("shared_schemas", "shared_runtime")
# the loop up to scoring: training registers version 1 and, with no champion yet, makes it the
# champion, so batch scoring (by alias) needs no promotion run
PIPELINES = ("simulate", "etl_instances", "etl_labels", "training", "batch_scoring")
# what must not leak in from the developer's shell or the checkout
DROPPED = ("MONOREPO_ROOT", "PYTHONPATH", "VIRTUAL_ENV", "KEDRO_LOGGING_CONFIG", "UV_PROJECT")


def wheel(wheels: Path, folder: str) -> Path:
    return wheels / f"{folder}-{version_of(ROOT, folder)}-py3-none-any.whl"


def deployment_env(base: Path, app: str) -> dict[str, str]:
    """The environment docs/deploying.md sets: settings through FRAUD_*/MLFLOW_* variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in DROPPED and not k.startswith(("FRAUD_", "MLFLOW_", "ETL_SOURCE"))
    }
    env.update(
        FRAUD_EXCHANGE_ROOT=str(base / "exchange"),
        MLFLOW_TRACKING_URI=f"sqlite:///{base / 'mlflow.db'}",
        FRAUD_MLFLOW_ARTIFACT_ROOT=str(base / "mlartifacts"),
        KEDRO_LOGGING_CONFIG=str(base / "deploy" / app / "conf" / "logging.yml"),
        KEDRO_DISABLE_TELEMETRY="true",
        MPLBACKEND="Agg",
    )
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    assert proc.returncode == 0, f"`{' '.join(cmd)}` failed in {cwd}:\n{tail}"
    return time.perf_counter() - started


@pytest.fixture(scope="module")
def installed_loop(tmp_path_factory):
    before = fingerprint(ROOT)
    base = tmp_path_factory.mktemp("released")
    uv, timings = uv_executable(), {}

    started = time.perf_counter()
    wheels = base / "wheels"
    artifacts = build(wheels)
    timings["build"] = time.perf_counter() - started

    for app in APPS:
        started = time.perf_counter()
        venv = base / "venvs" / app
        subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(venv)], check=True)
        # the members from the wheel folder only; everything else resolved as usual
        local = [wheel(wheels, folder) for folder in (app, *SHARED)]
        install = ["pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
        subprocess.run(
            [uv, *install, "--find-links", str(wheels), *map(str, local)],
            check=True,
            cwd=base,
            env={k: v for k, v in os.environ.items() if k not in DROPPED},
        )
        archive = wheels / f"conf-{app}-{version_of(ROOT, app)}.tar.gz"
        with tarfile.open(archive) as tar:
            tar.extractall(base / "deploy" / app, filter="data")
        (base / "work" / app).mkdir(parents=True)
        timings[f"venv {app}"] = time.perf_counter() - started

    steps = {s.pipeline: s for s in loop_steps(SMALL)}
    for i, pipeline in enumerate(PIPELINES, 1):
        step = steps[pipeline]
        python = base / "venvs" / step.app / "bin" / "python"
        # user_app through its console script, the others through `python -m`: both documented
        program = (
            [str(python.parent / step.app.replace("_", "-"))]
            if step.app == "user_app"
            else [str(python), "-m", step.app]
        )
        cmd = [
            *program,
            "--conf-source",
            str(base / "deploy" / step.app / "conf"),
            "--pipelines",
            pipeline,
        ]
        if step.params:
            cmd += ["--params", ",".join(f"{k}={v}" for k, v in step.params.items())]
        log = base / f"{i:02d}-{step.app}-{pipeline}.log"
        seconds = run(cmd, base / "work" / step.app, deployment_env(base, step.app), log)
        timings[f"{step.app} {pipeline}"] = seconds
    return {"base": base, "artifacts": artifacts, "timings": timings, "before": before}


def published(loop: dict, app: str, name: str):
    base = loop["base"]
    return exchange_dataset(
        base / "deploy", app, name, deployment_env(base, app), shared_root=base / "deploy" / app
    ).load()


@pytest.mark.slow
def test_the_loop_runs_through_the_installed_apps(installed_loop):
    loop, base = installed_loop, installed_loop["base"]
    shared = shared_settings(base / "deploy" / "user_app", deployment_env(base, "user_app"))
    assert shared["exchange_root"] == str(base / "exchange")
    instances = TransactionInstance.validate(published(loop, "etl_app", "instances"))
    labels = FraudLabel.validate(published(loop, "etl_app", "labels"))
    decisions = FraudDecision.validate(published(loop, "user_app", "decisions"))
    log = PredictionLog.validate(published(loop, "user_app", "prediction_log"))
    client = mlflow.MlflowClient(tracking_uri=shared["mlflow_tracking_uri"])
    champion = client.get_model_version_by_alias(
        shared["registered_model_name"], shared["champion_alias"]
    )
    assert set(decisions["model_version"]) == {str(champion.version)} == {"1"}
    assert set(log["model_run_id"]) == {champion.run_id}
    assert set(decisions["transaction_id"]) <= set(instances["transaction_id"])
    assert set(decisions["decision"]) == {"approve", "review", "decline"}
    summary = {
        "timings_s": {k: round(v, 1) for k, v in loop["timings"].items()},
        "instances": len(instances),
        "labels": len(labels),
        "decisions": decisions["decision"].value_counts().to_dict(),
        "model": f"{champion.name} v{champion.version} @{shared['champion_alias']}",
        "validation.roc_auc": round(
            client.get_run(champion.run_id).data.metrics["validation.roc_auc"], 4
        ),
        "artifacts": sorted(p.name for p in loop["artifacts"]),
    }
    print(json.dumps(summary, indent=1))  # noqa: T201 (pytest -s shows the figures)


@pytest.mark.slow
def test_the_apps_ran_from_their_venvs_and_left_the_checkout_alone(installed_loop):
    base = installed_loop["base"]
    for app in APPS:
        python = base / "venvs" / app / "bin" / "python"
        probe = (
            f"import importlib.metadata as m, json, sys, {app}, shared_runtime, shared_schemas;"
            f"print(json.dumps({{'files': [{app}.__file__, shared_runtime.__file__, "
            "shared_schemas.__file__], 'versions': [m.version(p) for p in "
            "('shared-schemas', 'shared-runtime')], 'path': sys.path}))"
        )
        env = {k: v for k, v in os.environ.items() if k not in DROPPED}
        cmd = [str(python), "-c", probe]
        out = subprocess.run(cmd, cwd=base, env=env, capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        found = json.loads(out.stdout)
        assert all(f.startswith(str(base / "venvs" / app)) for f in found["files"]), found
        assert found["versions"] == [version_of(ROOT, f) for f in SHARED]
        assert not any(p.startswith(str(ROOT)) for p in found["path"])
    # the simulator's source system at its default URL, relative to etl_app's working directory
    assert (base / "work" / "etl_app" / "data" / "01_raw" / "source_system.db").is_file()
    assert fingerprint(ROOT) == installed_loop["before"]


@pytest.mark.slow
def test_each_app_wheel_pins_the_shared_packages_and_its_conf_carries_the_shared_settings(
    installed_loop,
):
    wheels = installed_loop["base"] / "wheels"
    for folder, member in members().items():
        with zipfile.ZipFile(wheel(wheels, folder)) as whl:
            name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
            requires = [
                line.split(": ", 1)[1]
                for line in whl.read(name).decode().splitlines()
                if line.startswith("Requires-Dist: ")
            ]
        for dependency in member.depends_on:
            package = members()[dependency].package
            spec = pins.compatible_range(version_of(ROOT, dependency))
            assert f"{package}{spec}" in requires, (folder, requires)
    for app in APPS:
        conf = installed_loop["base"] / "deploy" / app / "conf"
        assert (conf / "shared.yml").read_text() == (ROOT / "conf" / "shared.yml").read_text()
        assert (conf / "base").is_dir()
        assert not any((conf / "local").iterdir())
