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
        ("model_verison=2", "Did you mean model_version"),
        ("window.start=2025-06-31", "window.start=2025-06-31 is not a date"),
        (
            "window.start=2025-07-01,window.end=2025-06-01",
            "window.start=2025-07-01 must be before window.end=2025-06-01",
        ),
    ],
)
def test_bad_parameters_are_refused_before_the_run(project, params, message):
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "kedro"),
            "run",
            "--pipelines",
            "batch_scoring",
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
