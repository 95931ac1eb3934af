"""A pytest plugin: a test session fails if it changed the user's own state in the checkout.

Tests must run in temporary folders and never touch the developer's tracking store, model
artifacts or data (``mlflow.db``, ``mlartifacts/``, ``mlruns/`` and ``data/``, at the
repository's root and in each app's folder). A test that forgets (a ``kedro`` command run in an
app folder, whose kedro-mlflow hook creates an experiment in the default store, say) is caught
here, in every environment that has shared-runtime installed: the plugin is registered through
the ``pytest11`` entry point.
"""

from __future__ import annotations

from pathlib import Path

import pytest

USER_STATE = ("mlflow.db", "mlartifacts", "mlruns", "data")
_KEY = pytest.StashKey[tuple[Path, dict[str, tuple[int, int]]]]()


def _monorepo_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "conf" / "shared.yml").is_file():
            return folder
    return None


def user_state_paths(root: Path) -> list[Path]:
    """The places in a checkout that hold the user's state."""
    apps = [p.parent.parent for p in root.glob("*/conf/base")]
    return [base / name for base in (root, *apps) for name in USER_STATE]


def fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file of the user's state."""
    out: dict[str, tuple[int, int]] = {}
    for base in user_state_paths(root):
        files = [base] if base.is_file() else (p for p in base.rglob("*") if p.is_file())
        for path in files:
            stat = path.stat()
            out[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    root = _monorepo_root(Path(session.config.rootpath).resolve())
    if root is not None:
        session.stash[_KEY] = (root, fingerprint(root))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _KEY not in session.stash:
        return
    root, before = session.stash[_KEY]
    after = fingerprint(root)
    changed = sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )
    if not changed:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [
        f"These tests changed the user's own state in {root} (tests must use temporary "
        f"folders; see shared_runtime.testing.isolated_env):",
        *(f"  {path}" for path in changed[:20]),
    ]
    if reporter is not None:
        reporter.write_line("\n".join(lines), red=True, bold=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
