"""Release one workspace member: `make release APP=ml_app [BUMP=patch|minor|major]`.

python-semantic-release decides the next version from the conventional commits that touched the
member since its last `<member>-v*` tag, and writes it into the member's pyproject.toml and
CHANGELOG.md. This script then refreshes uv.lock (in the normal environment: PSR's build step
runs with a stripped environment that loses proxy and certificate settings), rewrites the
compatible range the other members' wheels require of it (tooling/release/pins.py), commits
those files and tags `<member>-vX.Y.Z`. Pushing the tag starts that member's release workflow.
A member's first release tags the version its pyproject.toml already has.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

from tooling.release import pins
from tooling.release.members import ROOT, members
from tooling.uv import uv_executable

SEMANTIC_RELEASE = Path(sys.executable).parent / "semantic-release"


def _run(cmd: list[str], cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout


def version_of(root: Path, member: str) -> str:
    return tomllib.loads((root / member / "pyproject.toml").read_text())["project"]["version"]


def release(
    member: str, bump: str | None = None, root: Path = ROOT, uv: str | None = None
) -> str | None:
    """Release ``member``; return the new version, or None when there is nothing to release."""
    if member not in members(root):
        raise SystemExit(f"Unknown member {member!r}: one of {sorted(members(root))}.")
    before = version_of(root, member)
    tags = _run(["git", "tag", "--list", f"{member}-v*"], cwd=root).split()
    if not tags:  # first release: publish the version in pyproject.toml as it is
        _run(["git", "tag", "-a", f"{member}-v{before}", "-m", f"{member} {before}"], cwd=root)
        return before
    force = [f"--{bump}"] if bump else []
    _run(
        [
            str(SEMANTIC_RELEASE),
            "version",
            *force,
            "--no-commit",
            "--no-tag",
            "--no-push",
            "--no-vcs-release",
            "--changelog",
        ],
        cwd=root / member,
    )
    after = version_of(root, member)
    if after == before:
        return None
    dependents = [str(p.relative_to(root)) for p in pins.sync(root, member)]
    _run([uv or uv_executable(), "lock", "--quiet"], cwd=root)
    files = [f"{member}/pyproject.toml", f"{member}/CHANGELOG.md", "uv.lock", *dependents]
    _run(["git", "add", *files], cwd=root)
    _run(["git", "commit", "-q", "-m", f"chore(release): {member} {after}"], cwd=root)
    _run(["git", "tag", "-a", f"{member}-v{after}", "-m", f"{member} {after}"], cwd=root)
    return after


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("member")
    parser.add_argument("--bump", choices=["patch", "minor", "major"])
    parser.add_argument("--uv", help="uv executable (default: the one the Makefile uses)")
    args = parser.parse_args(argv)
    version = release(args.member, args.bump, uv=args.uv)
    if version is None:
        sys.stdout.write(f"{args.member}: no release-worthy commits since its last tag.\n")
    else:
        sys.stdout.write(
            f"Released {args.member} {version}: tagged {args.member}-v{version}. "
            "Publish with: git push origin main --tags\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
