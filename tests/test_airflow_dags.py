"""The Airflow DAGs in deploy/airflow/dags are what `make airflow-dags` generates now, they
import only Airflow (each task runs `kedro run` in its app's own environment), and they order the
three apps through exchange datasets (Airflow assets), not clocks.

Checked here structurally (Python syntax, imports, DAG ids, schedules, outlets, task edges);
tests/test_airflow_run.py loads and runs them in a real Airflow, in its own environment.
"""

from __future__ import annotations

import ast
import filecmp
import os
import subprocess
from pathlib import Path

import pytest

from tooling.loop.steps import app_environment, env_bin

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
            # kedro-mlflow's hook opens the tracking store when the session starts: a temporary
            # one, never the checkout's mlflow.db
            env=app_environment({**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{target}.db"}),
            capture_output=True,
            check=True,
        )


def is_task(call: ast.Call) -> bool:
    """`@task.bash(...)`: a bash task, whose command runs in the app's environment."""
    func = call.func
    return isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "task"


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
        if is_task(c)
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
        "cron": next(
            (
                c.args[0].value
                for c in ast.walk(kwargs["schedule"])
                if isinstance(c, ast.Call)
                and getattr(c.func, "id", "") == "CronDataIntervalTimetable"
            ),
            None,
        ),
        "imports": {
            (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        },
        "task_kinds": {c.func.attr for c in calls if is_task(c)},
        "produces": outlets,
        "edges": edges,
        "tasks": [
            k.value.value for c in calls if is_task(c) for k in c.keywords if k.arg == "task_id"
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


def test_dags_import_only_airflow_and_run_bash_tasks(dags):
    for d in dags.values():
        assert d["imports"] == {"__future__", "shlex", "datetime", "airflow"}, d["dag_id"]
        assert d["task_kinds"] == {"bash"}


def test_time_scheduled_dags_have_data_intervals(dags):
    # a data-interval timetable: the run's window is [data_interval_start, data_interval_end)
    assert dags["etl_app_etl_instances_dag"]["cron"] == "@daily"
    assert dags["etl_app_etl_labels_dag"]["cron"] == "@daily"


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


def runtime_params(path: Path) -> dict[str, tuple[str, int]]:
    tree = ast.parse(path.read_text())
    assign = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "RUNTIME_PARAMS"
    )
    return ast.literal_eval(assign.value)


def test_windows_reach_parameters_the_apps_read_at_run_time():
    """Each runtime param a DAG sets from the run's window is one its app reads through
    `${runtime_params:...}` in its conf (a param the app ignores would silently do nothing)."""
    expected = {
        "etl_app_etl_instances_dag": {"window.start": ("start", 0), "window.end": ("end", 0)},
        "etl_app_etl_labels_dag": {
            "window.start": ("start", -90),
            "window.end": ("end", 0),
            "labels_as_of": ("end", 0),
        },
        "user_app_batch_scoring_dag": {"window.start": ("start", 0), "window.end": ("end", 0)},
        # ml_app's pipelines take no window at run time (training's is in its parameters)
        "ml_app_training_dag": {},
        "ml_app_promotion_dag": {},
        "ml_app_monitoring_dag": {},
    }
    for stem, params in expected.items():
        assert runtime_params(DAGS / f"{stem}.py") == params, stem
        app = "_".join(stem.split("_")[:2])
        conf = "\n".join(p.read_text() for p in (ROOT / app / "conf" / "base").glob("*.yml"))
        for key in params:
            assert f"${{runtime_params:{key}," in conf, (stem, key)
