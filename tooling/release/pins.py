"""What a built wheel requires of the workspace packages it depends on.

In the workspace, ``[tool.uv.sources]`` installs shared-schemas and shared-runtime from their
folders (``workspace = true``); a built wheel has no workspace, so its metadata carries the
version specifier written in ``[project] dependencies``. Each dependent declares the compatible
range of the member's current version, e.g. ``shared-schemas>=0.1.4,<0.2`` for 0.1.4: at least
the version it is built and tested against, below the next breaking release (on 0.x a minor
bump breaks, as python-semantic-release bumps with ``major_on_zero = false``).

`make release APP=shared_schemas` (tooling/release/member.py) rewrites the dependents' ranges
with the new version in the same commit; tests/test_release.py checks they never drift.
``python -m tooling.release.pins`` rewrites them all from the current versions.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tooling.release.members import ROOT, members


def compatible_range(version: str) -> str:
    """``0.1.4`` -> ``>=0.1.4,<0.2``; ``1.3.0`` -> ``>=1.3.0,<2``."""
    v = Version(version)
    upper = f"0.{v.minor + 1}" if v.major == 0 else f"{v.major + 1}"
    return f">={v.base_version},<{upper}"


def _project(root: Path, folder: str) -> dict:
    return tomllib.loads((root / folder / "pyproject.toml").read_text())["project"]


def declared(root: Path = ROOT) -> dict[tuple[str, str], str]:
    """(dependent folder, dependency folder) -> the specifier the dependent declares."""
    found = {}
    by_package = {m.package: m.folder for m in members(root).values()}
    for member in members(root).values():
        for requirement in _project(root, member.folder).get("dependencies", []):
            req = Requirement(requirement)
            if req.name in by_package:
                found[member.folder, by_package[req.name]] = str(req.specifier)
    return found


def expected(root: Path = ROOT) -> dict[tuple[str, str], str]:
    """What each dependent must declare: the compatible range of the dependency's version."""
    return {
        (dependent, dependency): str(
            Requirement(f"x{compatible_range(_project(root, dependency)['version'])}").specifier
        )
        for dependent, dependency in declared(root)
    }


def _rewrite(text: str, package: str, spec: str) -> str:
    """``text`` (a pyproject.toml) with ``package``'s entry in ``[project] dependencies`` set to
    ``package<spec>``; dependency groups and sources are left alone."""
    block = re.search(r"(?ms)^\[project\]$.*?^dependencies = \[\n(.*?)^\]", text)
    if block is None:
        raise ValueError("no [project] dependencies list")
    start, end = block.span(1)
    entry = re.compile(rf'"{re.escape(package)}(?:[<>=!~][^"]*)?"')
    body, count = entry.subn(f'"{package}{spec}"', text[start:end])
    if count != 1:
        raise ValueError(f"{package} is listed {count} times in [project] dependencies")
    return text[:start] + body + text[end:]


def sync(root: Path = ROOT, dependency: str | None = None) -> list[Path]:
    """Rewrite the dependents' specifiers of ``dependency`` (a member folder; default: all)
    to its compatible range; return the pyproject.toml files changed."""
    changed = []
    want = expected(root)
    for (dependent, dep), spec in declared(root).items():
        if dependency not in (None, dep) or spec == want[dependent, dep]:
            continue
        path = root / dependent / "pyproject.toml"
        package = members(root)[dep].package
        wanted = compatible_range(_project(root, dep)["version"])
        path.write_text(_rewrite(path.read_text(), package, wanted))
        if path not in changed:
            changed.append(path)
    return changed


if __name__ == "__main__":
    for path in sync():
        sys.stdout.write(f"updated {path.relative_to(ROOT)}\n")
