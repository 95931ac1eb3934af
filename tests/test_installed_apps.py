"""The released artifacts run without the monorepo: the loop through installed apps, deployed
by the commands of docs/deploying.md.

Every member is built as `make dist` builds it (tooling/release/artifacts.py) into a temporary
wheel folder. Then the page's blocks run as written, in bash, with its deployment root
``/srv/fraud`` replaced by a temporary folder: per app, a fresh venv (`uv venv`) into which the
app's wheel is installed with the wheel folder as `--find-links` (so shared-schemas and
shared-runtime come from there; kedro, mlflow, ... from uv's cache or the registry, as for any
install) and its conf archive unpacked beside it; then the documented environment variables (a
temporary exchange and MLflow store) and the runs, each app in its own working directory outside
the checkout, with no MONOREPO_ROOT and no PYTHONPATH. No parent of a working directory holds a
conf/shared.yml: the shared settings can only come from `--conf-source`. The only changes to the
commands: a smaller simulated world and model (``SMALL``, as in the end-to-end test) appended as
`--params`. etl_app's source system is the simulator's SQLite file at its default URL, relative
to etl_app's working directory.

Cost on this machine kind (2 shared cores, warm uv cache): building ~1 s, each venv 2-5 s (no
bytecode compilation), the runs ~85 s (training ~45 s, scoring ~20 s); the module ~1m45.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path

import mlflow
import pytest

from tooling.conf import exchange_dataset, shared_settings
from tooling.release import pins
from tooling.release.artifacts import build, version_of
from tooling.release.members import members
from tooling.uv import uv_executable
from shared_runtime.pytest_user_state import fingerprint
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.ml_to_user import FraudDecision, PredictionLog
from tests.conftest import ROOT, SMALL

DOC = ROOT / "docs" / "deploying.md"
DOC_ROOT = "/srv/fraud"  # the deployment root the page uses
APPS = ("etl_app", "ml_app", "user_app")
SHARED = ("shared_schemas", "shared_runtime")
# the loop up to scoring: training registers version 1 and, with no champion yet, makes it the
# champion, so batch scoring (by alias) needs no promotion run
PIPELINES = ("simulate", "etl_instances", "etl_labels", "training", "batch_scoring")
# what must not leak in from the developer's shell or the checkout
DROPPED = ("MONOREPO_ROOT", "PYTHONPATH", "VIRTUAL_ENV", "UV_PROJECT", "UV_PROJECT_ENVIRONMENT")
# ... and, for time, the Makefile's UV_COMPILE_BYTECODE=1: compiling the whole of mlflow, sklearn,
# ... into each fresh venv costs more than the runs compiling what they import
DROPPED += ("UV_COMPILE_BYTECODE",)


def wheel(wheels: Path, folder: str) -> Path:
    return wheels / f"{folder}-{version_of(ROOT, folder)}-py3-none-any.whl"


def doc_blocks() -> dict[str, str]:
    """The page's ```bash blocks by role: build, install, configure, run."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 4, "docs/deploying.md: a new bash block must be run here too"
    return dict(zip(("build", "install", "configure", "run"), blocks, strict=True))


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in DROPPED and not k.startswith(("FRAUD_", "MLFLOW_", "ETL_SOURCE", "KEDRO_"))
    }
    # a fresh machine's PATH may have no uv: the one the Makefile uses
    env["PATH"] = os.pathsep.join([str(Path(uv_executable()).parent), env.get("PATH", "")])
    return env


def bash(script: str, cwd: Path, log: Path, trace: Path | None = None) -> None:
    """``script`` in bash -eu; with ``trace``, each command's start time goes there."""
    prologue = "set -euo pipefail\n"
    if trace:
        prologue += f"exec 9>{trace}\nBASH_XTRACEFD=9\nPS4='+ ${{EPOCHREALTIME}} '\nset -x\n"
    with log.open("w") as out:
        proc = subprocess.run(
            ["bash", "-c", prologue + script + "\n: done\n"],
            cwd=cwd,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    assert proc.returncode == 0, f"docs/deploying.md's commands failed in {cwd}:\n{tail}"


def step_seconds(trace: Path) -> dict[str, float]:
    """Seconds of each `--pipelines <name>` command, from the trace's start times."""
    starts = [
        (float(m[1]), m[2])
        for line in trace.read_text().splitlines()
        if (m := re.match(r"\++ ([\d.]+) (.*)", line))
    ]
    seconds = {}
    for (started, command), (ended, _) in itertools.pairwise(starts):
        if m := re.search(r"--pipelines (\w+)", command):
            app = next(a for a in APPS if f"/{a}/" in command)
            seconds[f"{app} {m[1]}"] = ended - started
    return seconds


def small(line: str) -> str:
    """A documented run line on the small world: SMALL's parameters as `--params`."""
    for pipeline, params in SMALL.items():
        if line.rstrip().endswith(f"--pipelines {pipeline}"):
            return line.rstrip() + " --params " + ",".join(f"{k}={v}" for k, v in params.items())
    return line


def install_apps(base: Path, wheels: Path) -> dict[str, float]:
    """Each app installed under ``base`` by docs/deploying.md's install block, from ``wheels``;
    the seconds each took."""
    first, *install = doc_blocks()["install"].replace(DOC_ROOT, str(base)).splitlines()
    assert first.startswith("APP=")
    timings = {}
    for app in APPS:
        started = time.perf_counter()
        values = f"APP={app} VERSION={version_of(ROOT, app)} DIST={wheels}"
        bash("\n".join([values, *install]), base, base / f"install-{app}.log")
        timings[f"install {app}"] = time.perf_counter() - started
    return timings


@pytest.fixture(scope="module")
def installed_loop(tmp_path_factory):
    before = fingerprint(ROOT)
    base = tmp_path_factory.mktemp("released")
    blocks, timings = doc_blocks(), {}

    assert blocks["build"].strip() == "make dist"  # its recipe: the build() below
    started = time.perf_counter()
    wheels = base / "wheels"
    artifacts = build(wheels)
    timings["build"] = time.perf_counter() - started

    timings.update(install_apps(base, wheels))

    run = [small(line) for line in blocks["run"].replace(DOC_ROOT, str(base)).splitlines()]
    for pipeline in PIPELINES:
        assert any(f"--pipelines {pipeline}" in line for line in run), pipeline
    script = blocks["configure"].replace(DOC_ROOT, str(base)) + "\n".join(run)
    trace = base / "run.trace"
    bash(script, base, base / "run.log", trace)
    timings.update(step_seconds(trace))
    return {"base": base, "artifacts": artifacts, "timings": timings, "before": before}


def deployment_env(base: Path) -> dict[str, str]:
    """The documented settings' environment, to read what the apps published."""
    return {
        **clean_env(),
        "FRAUD_EXCHANGE_ROOT": str(base / "exchange"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
    }


def published(loop: dict, app: str, name: str):
    """What ``app`` published as ``name``, where its deployed catalog and settings say."""
    base = loop["base"]
    return exchange_dataset(base, app, name, deployment_env(base), shared_root=base / app).load()


@pytest.mark.slow
def test_the_loop_runs_through_the_installed_apps(installed_loop):
    loop, base = installed_loop, installed_loop["base"]
    shared = shared_settings(base / "user_app", deployment_env(base))
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
        python = base / app / ".venv" / "bin" / "python"
        probe = (
            f"import importlib.metadata as m, json, sys, {app}, shared_runtime, shared_schemas;"
            f"print(json.dumps({{'files': [{app}.__file__, shared_runtime.__file__, "
            "shared_schemas.__file__], 'versions': [m.version(p) for p in "
            "('shared-schemas', 'shared-runtime')], 'path': sys.path}))"
        )
        cmd = [str(python), "-c", probe]
        out = subprocess.run(
            cmd, cwd=base, env=clean_env(), capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stderr
        found = json.loads(out.stdout)
        assert all(f.startswith(str(base / app / ".venv")) for f in found["files"]), found
        assert found["versions"] == [version_of(ROOT, f) for f in SHARED]
        assert not any(p.startswith(str(ROOT)) for p in found["path"])
    # the simulator's source system at its default URL, relative to etl_app's working directory
    assert (base / "work" / "etl_app" / "data" / "01_raw" / "source_system.db").is_file()
    assert any((base / "mlartifacts").rglob("MLmodel"))
    # no folder above a working directory holds conf/shared.yml: it came from --conf-source
    assert not any((p / "conf" / "shared.yml").exists() for p in (base / "work").parents)
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
        conf = installed_loop["base"] / app / "conf"
        assert (conf / "shared.yml").read_text() == (ROOT / "conf" / "shared.yml").read_text()
        assert (conf / "base").is_dir()
        assert not any((conf / "local").iterdir())
