"""`kedro run` refuses parameters that would make a run wrong or empty, before it starts."""

import subprocess
import sys
from pathlib import Path

import pytest

from shared_runtime.testing import isolated_app, isolated_env, kedro_run

APP = Path(__file__).resolve().parents[1]
SMALL = {"simulate.n_customers": 300, "simulate.n_merchants": 150, "simulate.days": 40}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = isolated_app(APP, tmp_path_factory.mktemp("monorepo"))
    kedro_run(project, "simulate", SMALL)
    return project


def run(project: Path, pipeline: str, params: str) -> subprocess.CompletedProcess[str]:
    kedro = Path(sys.executable).parent / "kedro"
    return subprocess.run(
        [str(kedro), "run", "--pipelines", pipeline, "--params", params],
        cwd=project,
        env=isolated_env(project.parent),
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("windw.start=2025-02-01", "unknown parameter 'windw.start'"),
        ("windw.start=2025-02-01", "Did you mean window.start"),
        ("window.start=2025-13-01", "window.start=2025-13-01 is not a date"),
        ("window.start=2025-02-01,window.end=2025-01-15", "window.start=2025-02-01 must be before"),
        ("labels_as_of=2025-02-30", "labels_as_of=2025-02-30 is not a date"),
    ],
)
def test_bad_parameters_are_refused_naming_what_was_typed(project, params, message):
    pipeline = "etl_labels" if "labels_as_of" in params else "etl_instances"
    proc = run(project, pipeline, params)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert message in out, out[-3000:]
    assert "InterpolationResolutionError" not in out
    assert not (project.parent / "data/exchange/instances").exists()


@pytest.mark.parametrize("pipeline", ["etl_instances", "etl_labels"])
def test_a_window_without_source_payments_fails_saying_what_exists(project, pipeline):
    proc = run(project, pipeline, "window.start=2025-07-01,window.end=2025-08-01")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "selects no payment: the source holds payments from 2025-01-01" in out, out[-3000:]
    assert "to 2025-02-09" in out  # 40 simulated days from 2025-01-01


def test_allow_empty_runs_an_empty_window_on_purpose(project):
    proc = run(
        project, "etl_labels", "window.start=2025-07-01,window.end=2025-08-01,allow_empty=true"
    )
    out = proc.stdout + proc.stderr
    assert "allow_empty=true: the window [2025-07-01, 2025-08-01)" in out, out[-3000:]
    assert "selects no payment" in out


def test_a_run_logs_quietly_one_line_per_published_dataset(project):
    proc = run(project, "etl_instances", "window.start=2025-01-20,window.end=2025-01-25")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    published = [line for line in lines if "Published" in line]
    assert len(published) == 1 and "rows in 5 partition(s)" in published[0], lines
    assert len(lines) <= 8, lines  # project line, window, features, validation, publish
    assert "Warning" not in proc.stdout + proc.stderr, proc.stderr


def test_a_failed_run_ends_with_a_short_error(project):
    proc = run(project, "etl_instances", "window.start=2025-02-01,window.end=2025-01-15")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.startswith("Error: RunParamsError: Refusing the run parameters")
    assert len((proc.stdout + proc.stderr).splitlines()) <= 6, proc.stdout + proc.stderr
