"""The documentation builds as a site with no broken link, and the READMEs' links resolve."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(markdown: Path) -> list[str]:
    return [
        target.split("#")[0]
        for target in LINK.findall(markdown.read_text())
        if not target.startswith(("http://", "https://", "mailto:", "#"))
    ]


def test_readme_links_resolve():
    readmes = [ROOT / "README.md", *ROOT.glob("*/README.md")]
    broken = [
        f"{readme.relative_to(ROOT)} -> {target}"
        for readme in readmes
        for target in relative_links(readme)
        if not (readme.parent / target).exists()
    ]
    assert broken == []


def test_docs_site_builds_strictly(tmp_path):
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "mkdocs"),
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "architecture" / "index.html").exists()
