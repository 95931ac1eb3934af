"""The README's plain-MLflow commands, run as written from a fresh shell against a real registry:
`mlflow models predict` with CSV and JSON input, and `mlflow models serve` answering over HTTP."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import requests

from tooling.processes import Server, free_port
from tests.conftest import ROOT

BLOCK = re.compile(r"<!-- plain-mlflow -->\n```bash\n(.*?)```", re.S)


def readme_block() -> list[str]:
    (block,) = BLOCK.findall((ROOT / "README.md").read_text())
    return [line for line in block.splitlines() if line.strip()]


def fresh_shell(cwd: Path, home: Path) -> dict[str, str]:
    """What a new terminal has: a system PATH and a HOME, nothing of this test's environment."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "KEDRO_DISABLE_TELEMETRY": "true"}


@pytest.fixture
def checkout(loop, tmp_path):
    """A folder that looks like the repository root to the commands, holding the loop's store."""
    root, _ = loop
    cwd = tmp_path / "repo"
    cwd.mkdir()
    for name in ("user_app", "docs"):
        (cwd / name).symlink_to(ROOT / name)
    (cwd / "mlflow.db").symlink_to(root / "mlflow.db")
    return cwd


def predictions(stdout: str) -> list[float]:
    """The scores `mlflow models predict` printed (its last JSON line)."""
    last = [line for line in stdout.splitlines() if line.startswith("{")][-1]
    return [row["score"] for row in json.loads(last)["predictions"]]


@pytest.mark.slow
def test_the_readmes_plain_mlflow_commands_work_as_written(checkout, tmp_path):
    lines = readme_block()
    setup, predict_csv, predict_json, serve = lines[:2], lines[2], lines[3], lines[4]
    assert predict_csv.split("#")[0].strip().endswith("-t csv -i docs/examples/instances.csv")
    env = fresh_shell(checkout, tmp_path)
    outputs = []
    for command in (predict_csv, predict_json):
        proc = subprocess.run(
            ["bash", "-ec", "\n".join([*setup, command])],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        outputs.append(predictions(proc.stdout))
    assert len(outputs[0]) == 2 and outputs[0] == pytest.approx(outputs[1], abs=1e-12)

    port = free_port()
    assert "--port 5001" in serve
    script = "\n".join([*setup, "exec " + serve.replace("--port 5001", f"--port {port}")])
    with Server(
        "mlflow models serve",
        ["bash", "-ec", script],
        cwd=checkout,
        env=env,
        ready_url=f"http://127.0.0.1:{port}/ping",
        log=tmp_path / "serve.log",
    ):
        answer = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            data=(ROOT / "docs/examples/decision_request.json").read_bytes(),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        served = [row["score"] for row in answer.json()["predictions"]]
    assert served == pytest.approx(outputs[0], abs=1e-12)


def test_the_csv_example_is_the_contracts_example():
    from shared_schemas.examples import transaction_instance_example

    shipped = pd.read_csv(ROOT / "docs/examples/instances.csv", parse_dates=["event_time"])
    example = transaction_instance_example()
    pd.testing.assert_frame_equal(shipped, example, check_dtype=False)
