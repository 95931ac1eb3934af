"""Print one version's section of a member's CHANGELOG.md (the GitHub release notes).

usage: python -m tooling.release.notes <member> <version>
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def section(changelog: str, version: str) -> str:
    """The text under the heading of ``version`` up to the next version heading."""
    heading = re.compile(rf"^##\s+v?{re.escape(version)}\b.*$", re.M)
    match = heading.search(changelog)
    if match is None:
        raise SystemExit(f"CHANGELOG.md has no section for version {version}.")
    rest = changelog[match.end() :]
    following = re.search(r"^##\s+v?\d", rest, re.M)
    return rest[: following.start() if following else len(rest)].strip() + "\n"


if __name__ == "__main__":
    member, version = sys.argv[1], sys.argv[2]
    sys.stdout.write(section((ROOT / member / "CHANGELOG.md").read_text(), version))
