"""`copier copy` makes a monorepo with other names that works: nothing of the old names left,
boundaries and lint hold, the lock is consistent, and its contracts package passes its tests.

The generated project's full `make test` takes as long as this repository's: it runs with
`RUN_TEMPLATE_FULL=1` (`make template-check`), not in every `make test`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.tooling import uv_executable

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ANSWERS = {
    "project_name": "Card risk",
    "etl_app": "ingest",
    "ml_app": "modelling",
    "user_app": "scoring",
    "contracts": "contracts",
    "registered_model_name": "card-risk",
}
OLD = re.compile(
    r"(?<![A-Za-z0-9])(etl_app|ml_app|user_app|shared_schemas|etl-app|ml-app|user-app|"
    r"shared-schemas|fraud-detector)(?![A-Za-z0-9])"
)


def uv() -> str:
    return uv_executable()


def run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    if not (ROOT / "copier.yml").exists():
        pytest.skip("a generated monorepo is not a template itself (no copier.yml)")
    target = tmp_path_factory.mktemp("generated") / "card-risk"
    data = [arg for k, v in ANSWERS.items() for arg in ("--data", f"{k}={v}")]
    run(
        [
            str(BIN / "copier"),
            "copy",
            "--trust",
            "--defaults",
            "--vcs-ref",
            "HEAD",
            *data,
            str(ROOT),
            str(target),
        ],
        cwd=ROOT,
        PATH=f"{Path(uv()).parent}:{os.environ['PATH']}",
    )
    return target


@pytest.mark.slow
def test_the_new_names_are_everywhere_and_the_old_ones_nowhere(generated):
    for folder in (
        "ingest/src/ingest",
        "modelling/src/modelling",
        "scoring/src/scoring",
        "contracts/src/contracts",
        ".github/workflows/ingest.yml",
    ):
        assert (generated / folder).exists(), folder
    leftovers = []
    for path in generated.rglob("*"):
        if path.is_file() and path.suffix != ".png" and path.name != ".copier-answers.yml":
            text = path.read_text(errors="ignore")
            leftovers += [f"{path.relative_to(generated)}: {m}" for m in OLD.findall(text)[:1]]
    assert leftovers == []
    assert "card-risk" in (generated / "conf/shared.yml").read_text()
    assert (generated / "README.md").read_text().startswith("# Card risk")
    answers = (generated / ".copier-answers.yml").read_text()
    assert "etl_app: ingest" in answers


@pytest.mark.slow
def test_lint_boundaries_and_lock_hold(generated):
    run([str(BIN / "ruff"), "check", "."], cwd=generated)
    packages = ("contracts", "ingest", "modelling", "scoring")
    src = ":".join(str(generated / package / "src") for package in packages)
    out = run([str(BIN / "lint-imports")], cwd=generated, PYTHONPATH=src).stdout
    assert "0 broken" in out and "ingest stays free of MLflow" in out
    run([uv(), "lock", "--locked"], cwd=generated)


@pytest.mark.slow
def test_the_renamed_contracts_package_passes_its_tests(generated):
    env = {"UV_PROJECT_ENVIRONMENT": str(generated / "contracts/.venv")}
    run([uv(), "sync", "--locked", "--quiet", "--package", "contracts"], cwd=generated, **env)
    out = run(
        [str(generated / "contracts/.venv/bin/pytest"), "-q", "-x"], cwd=generated / "contracts"
    )
    assert "passed" in out.stdout


@pytest.mark.skipif(os.environ.get("RUN_TEMPLATE_FULL") != "1", reason="make template-check")
def test_the_generated_monorepos_own_make_test_passes(generated):
    run(["make", "test"], cwd=generated, UV=uv())
