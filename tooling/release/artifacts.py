"""Release artifacts of the workspace members: `make dist` (docs/deploying.md).

For every member, its wheel (``uv build``: the metadata pins the other members it depends on to a
compatible released range, tooling/release/pins.py). For every app, beside its wheel, its conf
as a versioned archive, ``conf-<package>-<version>.tar.gz``: the layout ``kedro package`` gives
(one top folder ``conf/``, no ``local/`` files) plus what the app needs of the monorepo's
top-level conf: ``conf/shared.yml``, the cross-app settings. An installed app run with
``--conf-source <unpacked>/conf`` (or the archive itself) reads its shared settings from there
(shared_runtime.config.SharedConfigLoader), never from a checkout.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

from tooling.release.members import ROOT, members
from tooling.uv import uv_executable

# What of the monorepo's top-level conf/ each app's archive carries (never *.local.* files).
SHARED_FILES = ("shared.yml",)


def version_of(root: Path, folder: str) -> str:
    return tomllib.loads((root / folder / "pyproject.toml").read_text())["project"]["version"]


def conf_archive(app: str, out_dir: Path, root: Path = ROOT) -> Path:
    """``out_dir/conf-<app>-<version>.tar.gz``: the app's conf/ (an empty local/) + shared.yml."""
    target = out_dir / f"conf-{app}-{version_of(root, app)}.tar.gz"
    conf = root / app / "conf"

    def _skip_local(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        if len(parts) > 2 and parts[1] == "local":  # machine settings never travel
            return None
        return _normalised(info)

    with tarfile.open(target, "w:gz") as tar:
        tar.add(conf, arcname="conf", filter=_skip_local)
        if not (conf / "local").is_dir():
            local = tarfile.TarInfo("conf/local")
            local.type = tarfile.DIRTYPE
            local.mode = 0o755
            tar.addfile(local)
        for name in SHARED_FILES:
            if (conf / name).exists():
                raise FileExistsError(f"{app}/conf/{name} would shadow the shared conf/{name}")
            data = (root / "conf" / name).read_bytes()
            info = _normalised(tarfile.TarInfo(f"conf/{name}"))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return target


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def build(out_dir: Path, root: Path = ROOT, uv: str | None = None) -> list[Path]:
    """Every member's wheel and every app's conf archive in ``out_dir``; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for member in members(root).values():
        before = set(out_dir.glob("*.whl"))
        build_one = ["build", "--quiet", "--wheel", "--package", member.package]
        subprocess.run(
            [uv or uv_executable(), *build_one, "--out-dir", str(out_dir)],
            cwd=root,
            check=True,
        )
        built += sorted(set(out_dir.glob("*.whl")) - before) or sorted(
            out_dir.glob(f"{member.folder}-{version_of(root, member.folder)}-*.whl")
        )
        if (root / member.folder / "conf").is_dir():
            built.append(conf_archive(member.folder, out_dir, root))
    return built


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, nargs="?", default=ROOT / "dist")
    parser.add_argument(
        "--conf-only",
        metavar="MEMBER",
        help="only MEMBER's conf archive, if it is an app (its release job builds the wheel)",
    )
    args = parser.parse_args(argv)
    out_dir = args.out_dir.resolve()
    if args.conf_only:
        if args.conf_only not in members():
            raise SystemExit(f"Unknown member {args.conf_only!r}: one of {sorted(members())}.")
        out_dir.mkdir(parents=True, exist_ok=True)
        built = [conf_archive(args.conf_only, out_dir)] if members()[args.conf_only].is_app else []
    else:
        built = build(out_dir)
    for path in built:
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
