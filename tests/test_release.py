"""Releases per member with python-semantic-release, in a temporary git repository: a change
under one app releases only that app, a contract change marks every app for testing, and the tag
format and version bumps are right."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tooling.release import changed, pins
from tooling.release.member import release
from tooling.release.members import members
from tooling.release.notes import section
from tooling.uv import uv_executable

ROOT = Path(__file__).resolve().parents[1]
SEMANTIC_RELEASE = Path(sys.executable).parent / "semantic-release"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit(repo: Path, path: str, message: str) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(target.read_text() + "\n# change\n" if target.exists() else "x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def version_of(repo: Path, member: str) -> str:
    return tomllib.loads((repo / member / "pyproject.toml").read_text())["project"]["version"]


def next_release(repo: Path, member: str) -> str:
    return (
        subprocess.run(
            [str(SEMANTIC_RELEASE), "--noop", "version", "--print"],
            cwd=repo / member,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )


@pytest.fixture(autouse=True)
def no_uv_on_path(monkeypatch):
    """A fresh machine's PATH: only the uv the Makefile bootstrapped, passed as $UV."""
    uv = uv_executable()
    monkeypatch.setenv("UV", uv)
    path = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "uv").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    assert shutil.which("uv") is None


@pytest.fixture
def repo(tmp_path):
    """A minimal copy of the monorepo, every member tagged at its current version."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, repo / name)
    for member in members():
        (repo / member).mkdir()
        for name in ("pyproject.toml", "CHANGELOG.md", "README.md"):
            shutil.copy(ROOT / member / name, repo / member / name)
    (repo / "conf").mkdir()
    shutil.copy(ROOT / "conf/shared.yml", repo / "conf/shared.yml")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.invalid")
    git(repo, "config", "user.name", "CI")
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "chore: initial import")
    for member in members():
        git(repo, "tag", f"{member}-v{version_of(repo, member)}")
    return repo


def test_first_release_tags_the_declared_version(repo):
    git(repo, "tag", "-d", "user_app-v0.1.0")
    row = {r["member"]: r for r in changed.report(repo)}["user_app"]
    assert row["next release"] == "0.1.0 (first)"
    assert release("user_app", root=repo) == "0.1.0"
    assert "user_app-v0.1.0" in git(repo, "tag").splitlines()


def test_a_change_under_one_app_releases_only_that_app(repo):
    commit(repo, "etl_app/src/etl_app/fix.py", "fix(etl): tolerate null merchant ids")
    assert next_release(repo, "etl_app") == "0.1.1"
    for other in ("ml_app", "user_app", "shared_schemas"):
        assert next_release(repo, other) == version_of(repo, other)
    rows = {row["member"]: row for row in changed.report(repo)}
    assert (rows["etl_app"]["changed"], rows["etl_app"]["needs tests"]) == ("yes", "yes")
    assert rows["etl_app"]["next release"] == "0.1.1"
    assert (rows["ml_app"]["changed"], rows["ml_app"]["needs tests"]) == ("no", "no")


def test_a_contract_change_marks_every_app_for_testing(repo):
    commit(repo, "shared_schemas/src/shared_schemas/etl_to_ml.py", "feat(contracts): add a column")
    rows = {row["member"]: row for row in changed.report(repo)}
    assert all(rows[app]["needs tests"] == "yes" for app in ("etl_app", "ml_app", "user_app"))
    assert all(rows[app]["changed"] == "no" for app in ("etl_app", "ml_app", "user_app"))
    # a feature on 0.x bumps the minor version (major_on_zero = false)
    assert rows["shared_schemas"]["next release"] == "0.2.0"


def test_release_bumps_changelog_lock_and_tags_only_that_member(repo):
    commit(repo, "ml_app/src/ml_app/nodes.py", "feat(ml): calibrate scores")
    commit(repo, "user_app/src/user_app/nodes.py", "fix(user): round latency")
    assert release("ml_app", root=repo) == "0.2.0"
    assert version_of(repo, "ml_app") == "0.2.0"
    assert version_of(repo, "user_app") == "0.1.0"
    assert "ml_app-v0.2.0" in git(repo, "tag").splitlines()
    assert git(repo, "log", "-1", "--format=%s") == "chore(release): ml_app 0.2.0"
    assert git(repo, "status", "--porcelain") == ""  # everything it changed is committed
    notes = section((repo / "ml_app/CHANGELOG.md").read_text(), "0.2.0")
    assert "calibrate scores" in notes.lower()
    assert "round latency" not in notes.lower()
    lock = tomllib.loads((repo / "uv.lock").read_text())
    assert {p["name"]: p["version"] for p in lock["package"]}["ml-app"] == "0.2.0"
    # nothing new under ml_app since its tag: no release; a forced bump still works
    assert release("ml_app", root=repo) is None
    assert release("ml_app", bump="patch", root=repo) == "0.2.1"


def test_built_wheels_require_the_compatible_range_of_each_workspace_member():
    # [tool.uv.sources] (workspace = true) does not reach a built wheel: its metadata carries
    # these specifiers, so `pip install <app>.whl` resolves released shared packages
    assert pins.declared() == pins.expected()
    assert pins.declared()["etl_app", "shared_schemas"] == str(
        Requirement(f"x{pins.compatible_range(version_of(ROOT, 'shared_schemas'))}").specifier
    )
    assert pins.compatible_range("0.1.4") == ">=0.1.4,<0.2"
    assert pins.compatible_range("1.3.0") == ">=1.3.0,<2"


def test_a_shared_release_moves_the_dependents_range_in_the_same_commit(repo):
    commit(repo, "shared_schemas/src/shared_schemas/etl_to_ml.py", "feat(contracts): add a column")
    assert release("shared_schemas", root=repo) == "0.2.0"
    for app in ("shared_runtime", "etl_app", "ml_app", "user_app"):
        project = tomllib.loads((repo / app / "pyproject.toml").read_text())["project"]
        assert "shared-schemas>=0.2.0,<0.3" in project["dependencies"], app
    assert pins.declared(repo) == pins.expected(repo)
    assert git(repo, "status", "--porcelain") == ""  # the dependents' pyprojects are committed
    changed_files = git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert "etl_app/pyproject.toml" in changed_files
    # the shared_schemas dev group (shared-runtime, a workspace source) keeps no specifier
    groups = tomllib.loads((repo / "shared_schemas/pyproject.toml").read_text())
    assert "shared-runtime" in groups["dependency-groups"]["dev"]
    subprocess.run([uv_executable(), "lock", "--check"], cwd=repo, check=True, capture_output=True)
