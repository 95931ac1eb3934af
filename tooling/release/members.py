"""The workspace members and what each one's tests depend on, read from the pyprojects.

One source of truth for the per-member CI path filters (tests/test_workflows.py checks the
workflows against it) and for `make changed`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tooling import ROOT


@dataclass(frozen=True)
class Member:
    folder: str
    package: str
    depends_on: tuple[str, ...]  # folders of workspace members it depends on

    @property
    def is_app(self) -> bool:
        return (ROOT / self.folder / "conf").is_dir()

    @property
    def watched_paths(self) -> list[str]:
        """What, when changed, must re-test this member: itself, its workspace dependencies,
        the lock, and for apps the shared configuration."""
        paths = [f"{folder}/**" for folder in (self.folder, *self.depends_on)]
        return [*paths, "uv.lock", *(["conf/**"] if self.is_app else [])]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def members(root: Path = ROOT) -> dict[str, Member]:
    workspace = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    projects = {
        folder: tomllib.loads((root / folder / "pyproject.toml").read_text())["project"]
        for folder in workspace["members"]
    }
    by_package = {p["name"]: folder for folder, p in projects.items()}
    return {
        folder: Member(
            folder=folder,
            package=project["name"],
            depends_on=tuple(
                by_package[_name(r)]
                for r in project.get("dependencies", [])
                if _name(r) in by_package
            ),
        )
        for folder, project in projects.items()
    }
