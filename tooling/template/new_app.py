"""`make new-app NAME=<name>`: add a Kedro project to the workspace, wired like the others.

copier renders templates/app into the monorepo (the app folder and its CI workflow); this
script then registers the app where the monorepo lists its apps: the uv workspace, ruff's
first-party packages, the import-linter boundaries (the new app may not import any other app or
tooling; neither shared_schemas nor tooling may import it), the Makefile's APPS, and re-locks.

    python -m tooling.template.new_app reporting [--root DIR] [--description TEXT]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from copier import run_copy

from tooling import ROOT
from tooling.release import pins
from tooling.uv import uv_executable

TEMPLATE = ROOT / "templates" / "app"


def _append_to_list(text: str, key: str, item: str, after: str = "") -> str:
    """Add ``"item"`` to the TOML list assigned to ``key`` (the first after ``after``)."""
    start = text.index(after) if after else 0
    match = re.compile(rf"^{re.escape(key)} = \[(.*?)\]", re.M | re.S).search(text, start)
    if match is None:
        raise ValueError(f"no list {key!r} after {after!r}")
    items = [s.strip() for s in match.group(1).split(",") if s.strip()]
    if f'"{item}"' in items:
        return text
    quoted = [*items, '"' + item + '"']
    new = f"{key} = [{', '.join(quoted)}]"
    return text[: match.start()] + new + text[match.end() :]


def register(root: Path, name: str) -> None:
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    text = _append_to_list(text, "members", name, "[tool.uv.workspace]")
    text = _append_to_list(text, "known-first-party", name)
    text = _append_to_list(text, "root_packages", name, "[tool.importlinter]")
    text = _append_to_list(text, "modules", name, 'type = "independence"')
    text = _append_to_list(text, "forbidden_modules", name, "never imports an app")
    text = _append_to_list(text, "forbidden_modules", name, "tooling never imports an app")
    text = _append_to_list(text, "source_modules", name, "Nothing the apps run imports tooling")
    pyproject.write_text(text)
    makefile = root / "Makefile"
    text = makefile.read_text()
    apps = re.search(r"^APPS := (.*)$", text, re.M)
    if apps is None:
        raise ValueError("Makefile has no `APPS := ...` line")
    if name not in apps.group(1).split():
        text = text[: apps.end()] + f" {name}" + text[apps.end() :]
    makefile.write_text(text)


def new_app(root: Path, name: str, description: str | None = None, relock: bool = True) -> Path:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"{name!r}: use a lowercase Python identifier (a-z, 0-9, _).")
    if (root / name).exists():
        raise FileExistsError(f"{root / name} exists already.")
    data = {"name": name, **({"description": description} if description else {})}
    run_copy(str(TEMPLATE), str(root), data=data, defaults=True, quiet=True)
    register(root, name)
    pins.sync(root)  # its wheel requires the shared packages' compatible ranges
    if relock:
        subprocess.run([uv_executable(root), "lock", "--quiet"], cwd=root, check=True)
    return root / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--description")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    app = new_app(args.root, args.name, args.description)
    sys.stdout.write(
        f"Created {app}. Next: `make install-{args.name}`, `make test-{args.name}`, and add its "
        f"pipelines to tooling/loop/steps.py or deploy/airflow if it joins the loop.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
