"""Environments: every make target syncs a member with the same groups (uv sync is exact, so a
target that syncs fewer groups would remove what another one installed), and each app's normal
environment has kedro-viz (`kedro viz run` as the README says)."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ["etl_app", "ml_app", "user_app"]
# Every target that (re)syncs an environment before doing its job.
TARGETS = [
    ["install"],
    *[[f"install-{app}"] for app in APPS],
    ["viz", "APP=etl_app"],
    ["viz", "APP=ml_app"],
    ["viz-build"],
    ["ui-check"],
    ["mlflow-ui"],
    ["serve"],
    ["train"],
    ["run-etl"],
    ["demo"],
    *[["check-member", f"MEMBER={app}"] for app in APPS],
]


def synced_groups(target: list[str]) -> dict[str, frozenset[str]]:
    """{environment: groups} of the `uv sync` commands `make -n <target>` would run."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    out = subprocess.run(
        ["make", "-n", "-C", str(ROOT), *target],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    found = {}
    for line in out.replace("\\\n", " ").splitlines():
        if " sync " not in line or "UV_PROJECT_ENVIRONMENT=" not in line:
            continue
        for command in re.split(r"&&|;", line):
            words = shlex.split(command)
            envs = [w.split("=", 1)[1] for w in words if w.startswith("UV_PROJECT_ENVIRONMENT=")]
            if envs and "sync" in words:
                groups = [words[i + 1] for i, w in enumerate(words) if w == "--group"]
                found[Path(envs[0]).parent.name] = frozenset(groups)
    return found


def test_no_target_syncs_a_member_differently_from_make_install():
    reference = synced_groups(["install"])
    assert set(reference) >= set(APPS), reference
    for app in APPS:
        assert "viz" in reference[app], f"{app}: make install does not sync kedro-viz"
    for target in TARGETS:
        for member, groups in synced_groups(target).items():
            assert groups == reference[member], (
                f"`make {' '.join(target)}` syncs {member} with {sorted(groups)}, "
                f"make install with {sorted(reference[member])}: one removes what the other needs"
            )


@pytest.mark.parametrize("app", APPS)
def test_kedro_viz_runs_in_every_app_environment(app):
    proc = subprocess.run(
        [str(ROOT / app / ".venv" / "bin" / "kedro"), "viz", "run", "--help"],
        cwd=ROOT / app,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--port" in proc.stdout


def dry_run(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(
        ["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, check=True, env=env
    ).stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["serve"], "user_app.online \n"),
        (["serve", "PORT=9123"], "--params online.port=9123\n"),
        (
            ["serve", "PORT=9123", "PARAMS=online.shadow=true"],
            "--params online.shadow=true,online.port=9123\n",
        ),
        (["run-online", "PORT=9123"], "online_scoring.url=http://127.0.0.1:9123"),
        (["features-serve", "PORT=9123"], "etl_app.online_service --port 9123\n"),
        (["mlflow-ui"], "--host 127.0.0.1 --port 5000 "),
        (["mlflow-ui", "PORT=5123"], "--host 127.0.0.1 --port 5123 "),
        (["viz", "PORT=4142"], "--host 127.0.0.1 --port 4142 "),
    ],
)
def test_servers_take_a_port(args, expected):
    assert expected in dry_run(*args)
