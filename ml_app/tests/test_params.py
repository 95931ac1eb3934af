"""`kedro run` refuses unknown or malformed --params before the run starts, with a short error."""

import subprocess
import sys
from pathlib import Path

import pytest

from shared_runtime.testing import isolated_app, isolated_env

APP = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return isolated_app(APP, tmp_path_factory.mktemp("monorepo"))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("training.model.familly=logistic_regression", "Did you mean training.model.family"),
        (
            "training.window.train_end=2025-01-01",
            "must be before training.window.train_end=2025-01-01",
        ),
        (
            "training.window.train_start=2025-06-01",
            "training.window.train_start=2025-06-01 must be before",
        ),
    ],
)
def test_bad_parameters_are_refused_before_the_run(project, params, message):
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "kedro"),
            "run",
            "--pipelines",
            "training",
            "--params",
            params,
        ],
        cwd=project,
        env=isolated_env(project.parent),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Error: RunParamsError: Refusing the run parameters" in proc.stderr, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
