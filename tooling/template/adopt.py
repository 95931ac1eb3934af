"""Give a copy of this monorepo your names: the post-copy task of `copier copy` (copier.yml).

Renames the three apps, the contracts package and the runtime package everywhere they appear
(folders, file names, imports, distribution names, environment variables, Makefile variables,
workflows, DAGs, uv.lock) and the registered model name, then re-locks. Every name must be a
lowercase Python identifier; distributions use the same name with '-' (PEP 503), environment
variables upper case.

    python3 tooling/template/adopt.py --etl ingest --ml modelling --user scoring \\
        --contracts contracts --runtime runtime --model-name card-risk \\
        --project-name "Card risk" [--root DIR]

It also runs inside `copier update`, over a project adopted earlier: copier renders the new
template version (default names) into the project, and this rename then merges each default-named
folder into the adopted one (``ingest/`` already exists), so the update's own diff only carries
what the adopter changed.

Why a rename step instead of Jinja in every file: this repository stays a working, tested
monorepo (no template syntax in its code, its `make test` is the template's test), and the
rename is one function with one test instead of hundreds of template expressions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

DEFAULTS = {
    "etl": "etl_app",
    "ml": "ml_app",
    "user": "user_app",
    "contracts": "shared_schemas",
    "runtime": "shared_runtime",
}
DEFAULT_MODEL = "fraud-detector"
DEFAULT_TITLE = "Kedro multi-project ML monorepo — card-fraud detection"
DEFAULT_PYTHON = "3.11"
SKIP_DIRS = {".git", ".venv", ".tools", "data", "site", "mlartifacts", "__pycache__", "build"}
SKIP_SUFFIXES = {".png", ".jpg", ".db", ".parquet", ".pkl", ".whl"}
SKIP_FILES = {".copier-answers.yml"}  # its keys are copier's questions, not package names
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


def renames(names: Mapping[str, str]) -> dict[str, str]:
    """Old spelling -> new spelling, for every form a package name takes."""
    out = {}
    for key, new in names.items():
        old = DEFAULTS[key]
        if new == old:
            continue
        out[old] = new
        out[old.replace("_", "-")] = new.replace("_", "-")
        out[old.upper()] = new.upper()
    return out


def pattern(words: Mapping[str, str]) -> re.Pattern[str] | None:
    """Whole words only: never inside another identifier (e.g. `html_app`)."""
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9])({alternatives})(?![A-Za-z0-9])")


def files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if any(part in SKIP_DIRS for part in path.relative_to(root).parts):
            continue
        if path.is_file() and path.suffix not in SKIP_SUFFIXES and path.name not in SKIP_FILES:
            yield path


def rewrite_contents(root: Path, words: Mapping[str, str]) -> list[str]:
    """Rewrite every file; return the ones that changed (relative paths)."""
    regex = pattern(words)
    changed = []
    for path in files(root):
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        new = regex.sub(lambda m: words[m.group(1)], text) if regex else text
        if new != text:
            path.write_text(new)
            changed.append(path.relative_to(root).as_posix())
    return changed


def move(source: Path, target: Path) -> None:
    """``source`` to ``target``; a folder into an existing folder of that name is merged, its
    files replacing theirs (what `copier update` needs: it renders the new template version with
    the default names into a project that already has the adopted folders)."""
    if target.is_dir() and source.is_dir() and not source.is_symlink():
        for child in source.iterdir():
            move(child, target / child.name)
        source.rmdir()
    else:
        source.replace(target)


def rename_paths(root: Path, words: Mapping[str, str]) -> int:
    """Rename files and folders whose name contains an old name (deepest first)."""
    regex = pattern(words)
    if regex is None:
        return 0
    moved = 0
    paths = [p for p in root.rglob("*") if not set(p.relative_to(root).parts) & SKIP_DIRS]
    for path in sorted(paths, key=lambda p: len(p.parts), reverse=True):
        new_name = regex.sub(lambda m: words[m.group(1)], path.name)
        if new_name != path.name:
            move(path, path.with_name(new_name))
            moved += 1
    return moved


def uv_executable(root: Path) -> str:
    """``$UV``, else ``uv`` on PATH, else the Makefile's own (``make uv`` bootstraps it into
    .tools/ on a machine that has only python3)."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(root / ".tools/bin/uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    subprocess.run(["make", "--no-print-directory", "uv"], cwd=root, check=True)
    return str(root / ".tools/bin/uv")


def set_python(root: Path, version: str) -> None:
    """Pin every environment, ruff and CI to Python ``version`` (e.g. '3.12')."""
    if version == DEFAULT_PYTHON:
        return
    major, minor = (int(x) for x in version.split("."))
    swaps = {
        f'">={DEFAULT_PYTHON},<3.12"': f'">={version},<{major}.{minor + 1}"',
        'target-version = "py311"': f'target-version = "py{major}{minor}"',
        f'python-version: "{DEFAULT_PYTHON}"': f'python-version: "{version}"',
        # the fresh venv of an installed app (docs/deploying.md)
        f"uv venv --python {DEFAULT_PYTHON} ": f"uv venv --python {version} ",
    }
    for path in files(root):
        if path.name in ("pyproject.toml", "Makefile", "deploying.md") or path.suffix in (
            ".yml",
            ".yaml",
        ):
            text = path.read_text()
            new = text
            for old, replacement in swaps.items():
                new = new.replace(old, replacement)
            if new != text:
                path.write_text(new)


def allow_longer_lines(root: Path, ruff: list[str], renamed: list[str]) -> None:
    """Longer names make some docstrings and comments longer than the line limit (the formatter
    keeps code within it): exempt those files from E501. Raising the limit instead would change
    other rules' verdicts (SIM108 suggests a ternary when it fits on a line). Only the files the
    rename rewrote count: in `copier update` the project also holds files of the version being
    left (removed by copier afterwards) and the adopter's own."""
    python = [path for path in renamed if path.endswith(".py")]
    if not python:
        return
    check = [*ruff, "check", "--select", "E501", "--output-format", "json", "--exit-zero"]
    report = subprocess.run(
        [*check, "--force-exclude", *python],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    paths = sorted(
        {
            Path(v["filename"]).resolve().relative_to(root.resolve()).as_posix()
            for v in json.loads(report.stdout)
        }
    )
    pyproject = root / "pyproject.toml"
    if paths and "[tool.ruff.lint.extend-per-file-ignores]" not in pyproject.read_text():
        table = "".join(f'"{path}" = ["E501"]\n' for path in paths)
        pyproject.write_text(
            pyproject.read_text().rstrip("\n")
            + "\n\n# names chosen at `copier copy` make these comments longer than the limit\n"
            + f"[tool.ruff.lint.extend-per-file-ignores]\n{table}"
        )


def adopt(
    root: Path,
    names: Mapping[str, str],
    model_name: str = DEFAULT_MODEL,
    project_name: str = DEFAULT_TITLE,
    relock: bool = True,
    python: str = DEFAULT_PYTHON,
) -> dict[str, int]:
    names = {**DEFAULTS, **names}
    for key, name in names.items():
        if not IDENTIFIER.match(name):
            raise ValueError(f"--{key} {name!r}: use a lowercase Python identifier (a-z, 0-9, _).")
    if len(set(names.values())) != len(names):
        raise ValueError(f"Names must differ: {dict(names)}")
    words = renames(names)
    if model_name != DEFAULT_MODEL:
        words[DEFAULT_MODEL] = model_name
    rewritten = rewrite_contents(root, words)
    report = {"files_rewritten": len(rewritten)}
    readme = root / "README.md"
    if project_name != DEFAULT_TITLE and readme.exists():
        readme.write_text(readme.read_text().replace(DEFAULT_TITLE, project_name, 1))
    report["paths_renamed"] = rename_paths(root, renames(names))
    set_python(root, python)
    if relock and (root / "uv.lock").exists():
        uv = uv_executable(root)
        subprocess.run([uv, "lock", "--quiet"], cwd=root, check=True)
        # Import order does not depend on the names (one isort section per package, pyproject's
        # [tool.ruff.lint.isort]), but line lengths do: the repository's own ruff re-formats.
        ruff = re.search(r'"(ruff==[^"]+)"', (root / "pyproject.toml").read_text())
        tool = [uv, "tool", "run", "--from", ruff.group(1) if ruff else "ruff", "ruff"]
        subprocess.run([*tool, "format", "--quiet", "."], cwd=root, check=True)
        moved = pattern(renames(names))
        renamed = [moved.sub(lambda m: words[m.group(1)], p) if moved else p for p in rewritten]
        allow_longer_lines(root, tool, renamed)
        # the contract docs are generated from the (renamed) contracts package; key order
        # in the JSON schemas follows the names
        package = names["contracts"]
        subprocess.run(
            [
                uv,
                "run",
                "--quiet",
                "--package",
                package.replace("_", "-"),
                "python",
                "-m",
                package,
                "export",
            ],
            cwd=root,
            check=True,
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key, default in DEFAULTS.items():
        parser.add_argument(f"--{key}", default=default, help=f"replaces {default}")
    parser.add_argument("--model-name", default=DEFAULT_MODEL)
    parser.add_argument("--project-name", default=DEFAULT_TITLE)
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="e.g. 3.12")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--no-lock", action="store_true", help="do not run `uv lock` afterwards")
    args = parser.parse_args(argv)
    names = {key: getattr(args, key) for key in DEFAULTS}
    report = adopt(
        args.root, names, args.model_name, args.project_name, not args.no_lock, args.python
    )
    sys.stdout.write(f"adopted: {names}, model {args.model_name!r}: {report}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
