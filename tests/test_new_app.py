"""`make new-app NAME=reporting` adds a Kedro project that is wired like the three apps: in the
workspace and the lock, inside the import boundaries, with a CI workflow, and its tests pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tooling.release.members import members
from tooling.template.new_app import new_app
from tooling.uv import uv_executable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def uv() -> str:
    return uv_executable()


def run(cmd: list[str], cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if check:
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def checkout_copy(target: Path) -> Path:
    """The files git tracks (and new ones it does not ignore), as a fresh clone would have;
    outside a git checkout (a freshly generated monorepo), every file but environments and data."""
    listing = run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=False
    )
    if listing.returncode != 0:
        skip = {".venv", ".tools", "data", "site", "mlartifacts", "__pycache__", ".pytest_cache"}
        listed = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(ROOT).parts) and p.name != "mlflow.db"
        ]
    else:
        listed = listing.stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory) -> Path:
    root = checkout_copy(tmp_path_factory.mktemp("monorepo"))
    new_app(root, "reporting", relock=False)
    run([uv(), "lock", "--quiet"], cwd=root)  # what `make new-app` does with the Makefile's uv
    return root


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    apps = ("etl_app", "ml_app", "user_app", "reporting")
    return run(
        [str(BIN / "lint-imports")],
        cwd=root,
        check=False,
        PYTHONPATH=":".join(str(root / a / "src") for a in apps),
    )


@pytest.mark.slow
def test_the_new_app_joins_workspace_lock_makefile_and_ci(monorepo):
    assert "reporting" in members(monorepo)
    assert (monorepo / ".github/workflows/reporting.yml").exists()
    assert "APPS := etl_app ml_app user_app reporting" in (monorepo / "Makefile").read_text()
    run([uv(), "lock", "--locked"], cwd=monorepo)
    run([str(BIN / "ruff"), "check", "reporting"], cwd=monorepo)
    run([str(BIN / "ruff"), "format", "--check", "reporting"], cwd=monorepo)


@pytest.mark.slow
def test_the_new_app_is_inside_the_import_boundaries(monorepo):
    assert lint_imports(monorepo).returncode == 0
    nodes = monorepo / "reporting/src/reporting/pipelines/daily_summary/nodes.py"
    original = nodes.read_text()
    nodes.write_text(original + "\nimport etl_app  # noqa: E402, F401\n")
    try:
        broken = lint_imports(monorepo)
        assert broken.returncode != 0
        assert "reporting is not allowed to import etl_app" in broken.stdout
    finally:
        nodes.write_text(original)


@pytest.mark.slow
def test_the_new_apps_own_tests_pass(monorepo):
    env = {"UV_PROJECT_ENVIRONMENT": str(monorepo / "reporting/.venv")}
    run([uv(), "sync", "--locked", "--quiet", "--package", "reporting"], cwd=monorepo, **env)
    out = run(
        [str(monorepo / "reporting/.venv/bin/pytest"), "-q"],
        cwd=monorepo / "reporting",
        KEDRO_DISABLE_TELEMETRY="true",
    ).stdout
    assert "2 passed" in out
