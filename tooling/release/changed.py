"""`make changed`: which members changed since their last release, which need testing, and the
version python-semantic-release would release for each (from its conventional commits)."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

from tooling.release.members import ROOT, Member, members

SEMANTIC_RELEASE = Path(sys.executable).parent / "semantic-release"


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def last_tag(member: Member, root: Path = ROOT) -> str | None:
    try:
        return git("describe", "--tags", "--abbrev=0", f"--match={member.folder}-v*", cwd=root)
    except subprocess.CalledProcessError:
        return None


def changed_files(since: str | None, root: Path = ROOT) -> list[str]:
    if since is None:  # never released: everything counts
        return git("ls-files", cwd=root).splitlines()
    return git("diff", "--name-only", f"{since}..HEAD", cwd=root).splitlines()


def touches(files: list[str], patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(f, p) for f in files for p in patterns)


def next_version(member: Member, root: Path = ROOT) -> str:
    """What `semantic-release version` would release now (the current version if nothing)."""
    proc = subprocess.run(
        [str(SEMANTIC_RELEASE), "--noop", "version", "--print"],
        cwd=root / member.folder,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else "?"


def report(root: Path = ROOT) -> list[dict[str, str]]:
    rows = []
    for member in members(root).values():
        tag = last_tag(member, root)
        files = changed_files(tag, root)
        version = tomllib.loads((root / member.folder / "pyproject.toml").read_text())["project"][
            "version"
        ]
        # before its first tag a member's first release is the version it already declares
        upcoming = next_version(member, root) if tag else f"{version} (first)"
        rows.append(
            {
                "member": member.folder,
                "last tag": tag or "-",
                "changed": "yes" if touches(files, [f"{member.folder}/**"]) else "no",
                "needs tests": "yes" if touches(files, member.watched_paths) else "no",
                "version": version,
                "next release": upcoming if upcoming != version else "-",
            }
        )
    return rows


def main() -> int:
    rows = report()
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    sys.stdout.write("  ".join(c.ljust(widths[c]) for c in columns) + "\n")
    for row in rows:
        sys.stdout.write("  ".join(row[c].ljust(widths[c]) for c in columns) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
