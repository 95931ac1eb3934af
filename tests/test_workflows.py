"""CI: one workflow per member, valid, path-filtered to exactly the member and what it depends on,
released by its own tag."""

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.members import members

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
REUSABLE = [".github/workflows/_test-member.yml", ".github/workflows/_release-member.yml"]


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on` as True
    return workflow


def test_every_workflow_is_valid():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    checker = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("member", sorted(members()))
def test_member_workflow_filters_exactly_its_paths_and_releases_on_its_tag(member):
    workflow = load(WORKFLOWS / f"{member}.yml")
    expected = [*members()[member].watched_paths, f".github/workflows/{member}.yml", *REUSABLE]
    assert workflow["on"]["push"]["paths"] == expected
    assert workflow["on"]["pull_request"]["paths"] == expected
    assert workflow["on"]["push"]["tags"] == [f"{member}-v*"]
    jobs = workflow["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/_test-member.yml"
    assert jobs["test"]["with"]["member"] == member
    assert jobs["release"]["with"]["member"] == member
    assert jobs["release"]["needs"] == "test"
    assert f"refs/tags/{member}-v" in jobs["release"]["if"]


def triggered(changed_file: str) -> set[str]:
    return {
        member
        for member in members()
        if any(
            fnmatch.fnmatch(changed_file, pattern)
            for pattern in load(WORKFLOWS / f"{member}.yml")["on"]["push"]["paths"]
        )
    }


def test_an_app_change_tests_only_that_app():
    assert triggered("etl_app/src/etl_app/pipelines/etl_labels/nodes.py") == {"etl_app"}
    assert triggered("user_app/conf/base/catalog.yml") == {"user_app"}


def test_a_contract_change_tests_every_member():
    assert triggered("shared_schemas/src/shared_schemas/etl_to_ml.py") == set(members())
    assert triggered("uv.lock") == set(members())
    assert triggered("conf/shared.yml") == {"etl_app", "ml_app", "user_app"}
