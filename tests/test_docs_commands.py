"""Every command the docs show works as written.

The ```bash blocks of README.md, docs/runbook.md and docs/adopting.md and the `make ...` commands
of the runbook's table are extracted from the files themselves, so the docs cannot drift:

* the blocks in RUN are executed as written, in order, in one temporary monorepo (a fresh
  checkout's layout: conf/, each app's conf and its environment), on a smaller world set in the
  apps' conf/local/ (the documented place for machine settings): same commands, fewer customers;
* servers (`kedro viz run`, `mlflow ui`) are started with `--help` appended: the command and its
  arguments must parse in the environment the docs use, without blocking the test;
* every other `make ...` line must be a valid invocation (`make -n` in this checkout);
* any other line must be listed in NOT_RUN with the reason and the test that covers it.
A new block or line that fits none of these fails the test until it is classified.
"""

import os
import re
import subprocess
from pathlib import Path

import mlflow
import pytest
import yaml

from tooling.conf import exchange_dataset, shared_settings
from shared_runtime.testing import isolated_app, isolated_env

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/runbook.md", "docs/adopting.md"]
APPS = ["etl_app", "ml_app", "user_app"]

# (file, first line of the block): executed, in this order, from the monorepo root.
RUN = [
    ("README.md", "source etl_app/.venv/bin/activate && cd etl_app"),
    ("docs/adopting.md", "cd ml_app && .venv/bin/kedro run --pipelines training"),
]
SERVERS = ("kedro viz run", "mlflow ui")
# Lines not run here: (start of the line, why, where it is tested instead).
NOT_RUN = {
    "curl -s 127.0.0.1:8080/decisions": "needs `make serve`: user_app/tests/online/",
    "cd etl_app && .venv/bin/kedro run --env spark": "Spark: etl_app/tests/test_spark.py",
    "git push origin main --tags": "publishes a release: tests/test_release.py",
    "uvx copier copy": "copier from a remote: tests/test_template.py generates one locally",
    "cd card-risk && make test": "the generated monorepo's make test: make template-check",
    "copier update --trust": "tests/test_template.py updates a monorepo adopted from a past commit",
    "export ETL_SOURCE_DB_URL=postgresql": "needs your database: etl_app/tests/test_postgres.py",
    "source user_app/.venv/bin/activate": "plain MLflow: tests/test_plain_mlflow.py runs it",
    "export MLFLOW_TRACKING_URI=sqlite:///$PWD/mlflow.db": "tests/test_plain_mlflow.py",
    "mlflow models predict": "tests/test_plain_mlflow.py runs both, as written",
    "mlflow models serve": "tests/test_plain_mlflow.py starts it and calls /invocations",
}
SMALL_SIMULATE = {"simulate": {"n_customers": 1500, "n_merchants": 500}}


def command_blocks() -> list[tuple[str, str]]:
    """(file, text) of each ```bash block, in document order."""
    blocks = []
    for name in DOCS:
        text = (ROOT / name).read_text()
        blocks += [(name, m) for m in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S)]
    return blocks


def command_lines(block: str) -> list[str]:
    """The commands of a block: continuation lines joined, comments and blank lines dropped."""
    joined = block.replace("\\\n", " ")
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def runbook_make_commands() -> list[str]:
    text = (ROOT / "docs/runbook.md").read_text()
    return [m for m in re.findall(r"`(make [^`]+)`", text) if "..." not in m]


def test_every_block_and_line_is_classified():
    blocks = command_blocks()
    run_keys = [(name, block.splitlines()[0]) for name, block in blocks]
    for key in RUN:
        assert any(k[0] == key[0] and k[1].startswith(key[1]) for k in run_keys), (
            f"RUN lists a block that {key[0]} no longer has: {key[1]}"
        )
    used = set()
    for name, block in blocks:
        if is_run_block(name, block):
            continue
        for line in command_lines(block):
            if line.startswith("make "):
                continue
            reason = [k for k in NOT_RUN if line.startswith(k)]
            assert reason, f"{name}: `{line}` is neither run, a make target nor in NOT_RUN"
            used.update(reason)
    assert used == set(NOT_RUN), (
        f"NOT_RUN lists lines the docs no longer have: {set(NOT_RUN) - used}"
    )


def is_run_block(name: str, block: str) -> bool:
    return any(name == n and block.startswith(first) for n, first in RUN)


def make_lines() -> list[str]:
    lines = [
        line
        for name, block in command_blocks()
        if not is_run_block(name, block)
        for line in command_lines(block)
        if line.startswith("make ")
    ]
    return sorted(set(lines + runbook_make_commands()))


@pytest.mark.parametrize("line", make_lines())
def test_every_documented_make_command_is_valid(line):
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    args = line.split()[1:]
    proc = subprocess.run(
        ["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, f"`{line}`: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"


def as_script(block: str) -> str:
    """The block as a bash script; servers get `--help` so they parse but do not block."""
    lines = ["set -eo pipefail"]
    for line in command_lines(block):
        command = f"{line} --help > /dev/null" if line.startswith(SERVERS) else line
        lines.append(f"echo '+ {command}'")
        lines.append(command)
    return "\n".join(lines)


def fresh_checkout(root: Path) -> None:
    """The layout a fresh clone has after `make install`, its apps' data folders empty."""
    for app in APPS:
        target = isolated_app(ROOT / app, root)
        (target / ".venv").symlink_to(ROOT / app / ".venv")
    local = root / "etl_app/conf/local"
    (local / "parameters_simulate.yml").write_text(yaml.safe_dump(SMALL_SIMULATE))
    training = yaml.safe_load((ROOT / "ml_app/conf/base/parameters_training.yml").read_text())
    training["training"]["model"]["hist_gradient_boosting"]["max_iter"] = 60
    training["evaluation"]["importance_sample"] = 2000
    (root / "ml_app/conf/local/parameters_training.yml").write_text(
        yaml.safe_dump(training, sort_keys=False)
    )


def checkout_state() -> dict[str, float]:
    paths = [ROOT / "mlflow.db", *ROOT.glob("data/exchange/**/*"), *ROOT.glob("*/data/0*/**/*")]
    return {str(p): p.stat().st_mtime for p in paths if p.exists()}


def test_the_documented_sequence_runs_as_written(tmp_path):
    root = tmp_path / "monorepo"
    fresh_checkout(root)
    env = isolated_env(root)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT))
    )
    before = checkout_state()
    for name, block in command_blocks():
        if not is_run_block(name, block):
            continue
        proc = subprocess.run(
            ["bash", "-c", as_script(block)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{name}:\n{proc.stdout[-5000:]}\n{proc.stderr[-3000:]}"
    scored = exchange_dataset(root, "user_app", "decisions", env).load()
    assert len(scored) > 0 and set(scored["model_version"].astype(str)) == {"2"}
    shared = shared_settings(root, env)
    client = mlflow.MlflowClient(shared["mlflow_tracking_uri"])
    versions = client.search_model_versions(f"name = '{shared['registered_model_name']}'")
    assert len(versions) == 3  # README: two trainings; adopting.md: a third
    assert checkout_state() == before, "the documented commands touched this checkout"
