"""The Airflow DAGs in deploy/airflow/dags are what `make airflow-dags` generates now, and they
order the three apps through exchange datasets (Airflow assets), not clocks.

Validated structurally (Python syntax, DAG ids, schedules, outlets, task edges) rather than by
importing them in Airflow: Airflow itself is not installed in any app environment (it would pin
much of the apps' dependency tree); the DAG files import only `airflow.sdk` and Kedro.
"""

from __future__ import annotations

import ast
import filecmp
import subprocess
from pathlib import Path

import pytest

from scripts.loop import app_environment, env_bin

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "deploy/airflow/dags"
PIPELINES = {
    "etl_app": ["etl_instances", "etl_labels"],
    "ml_app": ["training", "promotion", "monitoring"],
    "user_app": ["batch_scoring"],
}


def generate(target: Path) -> None:
    for app, pipelines in PIPELINES.items():
        subprocess.run(
            [
                str(env_bin(ROOT, app, "kedro")),
                "airflow",
                "create",
                "--pipelines",
                ",".join(pipelines),
                "--group-by",
                "memory",
                "--target-dir",
                str(target),
                "--jinja-file",
                str(ROOT / "deploy/airflow/kedro_dag.j2"),
            ],
            cwd=ROOT / app,
            env=app_environment(),
            capture_output=True,
            check=True,
        )


def describe(path: Path) -> dict:
    """dag_id, consumed assets, produced assets (outlets) and task edges of a DAG file."""
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    exchange = lambda node: [  # noqa: E731
        c.args[0].value
        for c in ast.walk(node)
        if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "exchange"
    ]
    dag_call = next(c for c in calls if getattr(c.func, "id", "") == "dag")
    kwargs = {k.arg: k.value for k in dag_call.keywords}
    outlets = {
        name
        for c in calls
        if getattr(c.func, "id", "") == "task"
        for k in c.keywords
        if k.arg == "outlets"
        for name in exchange(k.value)
    }
    edges = {
        (n.left.slice.value, n.right.slice.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.RShift)
    }
    return {
        "dag_id": kwargs["dag_id"].value,
        "consumes": set(exchange(kwargs["schedule"])),
        "cron": kwargs["schedule"].value if isinstance(kwargs["schedule"], ast.Constant) else None,
        "produces": outlets,
        "edges": edges,
        "tasks": [
            k.value.value
            for c in calls
            if getattr(c.func, "id", "") == "task"
            for k in c.keywords
            if k.arg == "task_id"
        ],
    }


@pytest.fixture(scope="module")
def dags() -> dict[str, dict]:
    return {p.stem: describe(p) for p in sorted(DAGS.glob("*_dag.py"))}


def test_committed_dags_are_what_make_airflow_dags_generates(tmp_path):
    generate(tmp_path)
    generated = sorted(p.name for p in tmp_path.glob("*.py"))
    assert generated == sorted(p.name for p in DAGS.glob("*.py"))
    _, mismatch, errors = filecmp.cmpfiles(tmp_path, DAGS, generated, shallow=False)
    assert (mismatch, errors) == ([], []), "run `make airflow-dags` and commit the result"


def test_one_dag_per_pipeline_and_each_compiles(dags):
    expected = {f"{app}_{p}_dag" for app, ps in PIPELINES.items() for p in ps}
    assert set(dags) == expected
    for path in DAGS.glob("*_dag.py"):
        compile(path.read_text(), str(path), "exec")


def test_apps_are_ordered_by_the_data_they_exchange(dags):
    by_id = {d["dag_id"]: d for d in dags.values()}
    produced = {name for d in dags.values() for name in d["produces"]}
    for d in dags.values():
        assert d["consumes"] <= produced, d  # every trigger is some DAG's output
        assert d["consumes"] or d["cron"], d
    assert by_id["etl_app__etl_instances"]["produces"] == {"instances"}
    assert by_id["ml_app__training"]["consumes"] == {"instances", "labels"}
    assert by_id["ml_app__promotion"]["consumes"] == {"model"}
    assert by_id["user_app__batch_scoring"]["consumes"] == {"instances"}
    assert by_id["ml_app__monitoring"]["consumes"] == {"decisions", "labels"}


def test_tasks_follow_the_kedro_pipelines(dags):
    # nodes joined by in-memory datasets run in one task; persisted outputs separate tasks
    assert dags["etl_app_etl_instances_dag"]["edges"] == set()
    assert len(dags["etl_app_etl_instances_dag"]["tasks"]) == 1
    # training is one task: kedro-mlflow logs the pipeline model at the end of the whole run
    assert dags["ml_app_training_dag"]["tasks"] == ["training"]
    assert dags["ml_app_training_dag"]["produces"] == {"model"}
