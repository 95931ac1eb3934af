"""A real Airflow 3 runs the generated DAGs over the released apps, each task in its app's own
environment: every app is built and installed as docs/deploying.md says (its wheel into a fresh
venv, its conf archive beside it), and the DAGs find it through Airflow Variables. No task uses
the checkout: no MONOREPO_ROOT, no project folder.

Airflow gets its own environment (.tools/airflow, `make airflow-env`, locked by
deploy/airflow/requirements.txt): it cannot share one with the apps (apache-airflow-core pins
fastapi<0.137, user_app needs fastapi>=0.165) and has neither Kedro nor any app. AIRFLOW_HOME, the
sqlite metadata DB, the exchange, the MLflow store and the source system live in a temp dir.

`airflow dags test` runs one DAG run in-process (no scheduler): etl publishes a few days of a
small world, training registers a model, batch scoring decides. Cost on this machine kind (2
shared cores): the Airflow environment ~1 s from a warm uv cache (longer on a cold one), `db
migrate` ~8 s, each `dags test` ~30 s (Airflow start-up ~10 s plus the app's `kedro run`); the
whole module ~3-4 min.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import mlflow
import pytest

from tooling.conf import exchange_dataset, shared_settings
from tooling.release.artifacts import build
from shared_runtime.testing import isolated_env
from shared_schemas.ml_to_user import FraudDecision
from tests.test_installed_apps import install_apps

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_ENV = ROOT / ".tools" / "airflow"
DAGS = ROOT / "deploy" / "airflow" / "dags"
APPS = ("etl_app", "ml_app", "user_app")
SMALL_WORLD = {"simulate.n_customers": 1500, "simulate.n_merchants": 500}
# training on the few days published (ml_app's training window is fixed in its parameters; the
# run conf's `params` reach `kedro run --params`), with a small model
TRAINING = {
    "training.window.train_start": "2025-04-01",
    "training.window.train_end": "2025-04-11",
    "training.window.valid_end": "2025-04-15",
    "training.model.hist_gradient_boosting.max_iter": 60,
    "evaluation.importance_sample": 2000,
}
# `dags test` has no scheduler to start the asset-triggered DAGs with their triggering events, so
# scoring gets its window as an operator's re-run would: through the run conf
BY_HAND = {"window_start": "2025-04-01", "window_end": "2025-04-14"}
SCORING = {"window_start": "2025-04-14", "window_end": "2025-04-15"}

# What Airflow recorded, read in Airflow's own environment.
STATE = """
import json
from airflow.models.asset import AssetDagRunQueue, AssetEvent
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
with create_session() as s:
    print(json.dumps({
        "runs": [[r.dag_id, r.state, str(r.data_interval_start), str(r.data_interval_end)]
                 for r in s.query(DagRun).order_by(DagRun.id)],
        "tasks": [[t.dag_id, t.task_id, t.state] for t in s.query(TaskInstance)],
        "events": [[e.asset.name, e.extra, e.source_dag_id] for e in s.query(AssetEvent)],
        "queued": sorted({q.target_dag_id for q in s.query(AssetDagRunQueue)}),
    }))
"""
DAGBAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dags": sorted(bag.dag_ids)}))
"""


def airflow(env: dict[str, str], *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(AIRFLOW_ENV / "bin" / "airflow"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"airflow {' '.join(args)}:\n{proc.stdout[-6000:]}{proc.stderr}"
    return proc


def dags_test(env: dict[str, str], dag_id: str, date: str, conf: dict | None) -> str:
    """`airflow dags test`; stops it at a task's first failure, whose retry it would wait out."""
    args = ["dags", "test", dag_id, date, *(["--conf", json.dumps(conf)] if conf else [])]
    lines, retrying = [], False
    with subprocess.Popen(
        [str(AIRFLOW_ENV / "bin" / "airflow"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        for line in proc.stdout:
            lines.append(line)
            if "[up_for_retry]" in line:
                retrying = True
                proc.kill()
                break
    log = "".join(lines)
    if retrying or proc.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} failed:\n{log[-8000:]}")
    return log


def airflow_python(env: dict[str, str], script: str, *args: str) -> dict:
    proc = subprocess.run(
        [str(AIRFLOW_ENV / "bin" / "python"), "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def airflow_run(tmp_path_factory):
    timings = {}
    started = time.perf_counter()
    # the Makefile's target: bootstraps uv when it is not on PATH, no-op when up to date
    subprocess.run(["make", "-C", str(ROOT), "airflow-env"], check=True, capture_output=True)
    timings["airflow env"] = time.perf_counter() - started

    root = tmp_path_factory.mktemp("airflow_world")
    env = isolated_env(
        root,
        {
            "FRAUD_EXCHANGE_ROOT": str(root / "exchange"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "FRAUD_MLFLOW_ARTIFACT_ROOT": str(root / "mlartifacts"),
            "ETL_SOURCE_DB_URL": f"sqlite:///{root / 'source_system.db'}",
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # as in a deployment: the DAGs run (a paused consumer is not told of asset events)
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "NO_COLOR": "1",
        },
    )
    # the released apps, each in its venv with its conf (docs/deploying.md's layout under `root`)
    started = time.perf_counter()
    build(root / "wheels")
    install_apps(root, root / "wheels")
    timings["build and install the apps"] = time.perf_counter() - started
    airflow_env = {k: v for k, v in env.items() if k != "MONOREPO_ROOT"}
    for app in APPS:  # where each app is: the DAGs read these Airflow Variables at run time
        airflow_env[f"AIRFLOW_VAR_{app.upper()}_PROJECT_PATH"] = str(root / "work" / app)
        airflow_env[f"AIRFLOW_VAR_{app.upper()}_VENV"] = str(root / app / ".venv")
        airflow_env[f"AIRFLOW_VAR_{app.upper()}_CONF_SOURCE"] = str(root / app / "conf")
    # the source system is not orchestrated: it stands in for production's database
    simulate = [str(root / "etl_app/.venv/bin/python"), "-m", "etl_app", "--pipelines", "simulate"]
    simulate += ["--conf-source", str(root / "etl_app/conf")]
    simulate += ["--params", ",".join(f"{k}={v}" for k, v in SMALL_WORLD.items())]
    subprocess.run(simulate, cwd=root / "work/etl_app", env=airflow_env, check=True)

    (root / "airflow").mkdir()
    started = time.perf_counter()
    airflow(airflow_env, "db", "migrate")
    timings["db migrate"] = time.perf_counter() - started
    bag = airflow_python(airflow_env, DAGBAG, str(DAGS))

    runs = [
        # a range by hand (run conf), then one daily run whose window is its data interval
        ("etl_app__etl_instances", "2025-04-14", BY_HAND),
        ("etl_app__etl_instances", "2025-04-15", None),
        ("etl_app__etl_labels", "2025-06-02", None),
        ("ml_app__training", "2025-06-02", {"params": TRAINING}),
        ("user_app__batch_scoring", "2025-06-02", SCORING),
    ]
    logs = {}
    for dag_id, date, conf in runs:
        started = time.perf_counter()
        logs[dag_id, date] = dags_test(airflow_env, dag_id, date, conf)
        timings[f"dags test {dag_id} {date}"] = time.perf_counter() - started
    state = airflow_python(airflow_env, STATE)
    # the figures docs/scaling.md quotes: pytest -s shows them
    print(json.dumps({"timings_s": {k: round(v, 1) for k, v in timings.items()}, **state}))  # noqa: T201
    return {
        "root": root,
        "env": env,
        "airflow_env": airflow_env,
        "bag": bag,
        "logs": logs,
        "state": state,
    }


def exchange(run: dict, app: str, name: str):
    """What ``app`` published as ``name`` in the Airflow world (its deployed catalog and conf,
    the run's env)."""
    root = run["root"]
    return exchange_dataset(root, app, name, run["env"], shared_root=root / app).load()


@pytest.mark.slow
def test_airflow_has_its_own_environment_without_kedro_or_the_apps(tmp_path):
    subprocess.run(["make", "-C", str(ROOT), "airflow-env"], check=True, capture_output=True)
    for module in ("kedro", *APPS):
        proc = subprocess.run(
            [str(AIRFLOW_ENV / "bin" / "python"), "-c", f"import {module}"],
            cwd=tmp_path,  # not the checkout, whose app folders are importable as namespaces
            capture_output=True,
            check=False,
        )
        assert proc.returncode != 0, f"{module} is importable in Airflow's environment"


@pytest.mark.slow
def test_the_dag_folder_loads_without_import_errors(airflow_run):
    assert airflow_run["bag"]["errors"] == {}
    assert airflow_run["bag"]["dags"] == [
        "etl_app__etl_instances",
        "etl_app__etl_labels",
        "ml_app__monitoring",
        "ml_app__promotion",
        "ml_app__training",
        "user_app__batch_scoring",
    ]


@pytest.mark.slow
def test_every_task_succeeded_in_its_apps_environment(airflow_run):
    tasks = airflow_run["state"]["tasks"]
    assert {dag for dag, _, _ in tasks} == {dag for dag, _ in airflow_run["logs"]}
    assert {state for _, _, state in tasks} == {"success"}, tasks
    root = airflow_run["root"]
    for (dag_id, _), log in airflow_run["logs"].items():
        app = dag_id.split("__")[0]
        python, conf = root / app / ".venv/bin/python", root / app / "conf"
        assert f"exec {python} -m {app} --conf-source {conf} --env local" in log
        assert str(ROOT) not in log.split(f"exec {python}", 1)[1].splitlines()[0]


@pytest.mark.slow
def test_a_task_runs_the_app_from_the_environment_its_variable_names(airflow_run):
    env = {
        **airflow_run["airflow_env"],
        "AIRFLOW_VAR_ETL_APP_VENV": str(airflow_run["root"] / "no-venv"),
    }
    with pytest.raises(AssertionError, match="no-venv/bin/python: No such file"):
        dags_test(env, "etl_app__etl_instances", "2025-04-20", None)


@pytest.mark.slow
def test_the_daily_run_publishes_its_data_interval_and_tells_the_consumers(airflow_run):
    state = airflow_run["state"]
    daily = [r for r in state["runs"] if r[0] == "etl_app__etl_instances"][1]
    assert daily[2:] == ["2025-04-14 00:00:00+00:00", "2025-04-15 00:00:00+00:00"]
    instances = exchange(airflow_run, "etl_app", "instances")
    days = sorted(instances["event_time"].dt.strftime("%Y-%m-%d").unique())
    assert days == [f"2025-04-{d:02d}" for d in range(1, 15)]  # 13 by hand + the daily run's
    events = [[name, extra] for name, extra, _ in state["events"] if name == "instances"]
    assert events == [
        ["instances", {"window_start": "2025-04-01", "window_end": "2025-04-14"}],
        ["instances", {"window_start": "2025-04-14", "window_end": "2025-04-15"}],
    ]
    # the scheduler would now start the DAGs that consume instances (and labels)
    assert {"ml_app__training", "user_app__batch_scoring"} <= set(state["queued"])


@pytest.mark.slow
def test_labels_training_and_scoring_ran_on_the_published_data(airflow_run):
    root = airflow_run["root"]
    labels = exchange(airflow_run, "etl_app", "labels")
    assert labels["as_of"].max().strftime("%Y-%m-%d") == "2025-06-02"
    shared = shared_settings(root / "user_app", airflow_run["env"])
    client = mlflow.MlflowClient(tracking_uri=shared["mlflow_tracking_uri"])
    champion = client.get_model_version_by_alias(
        shared["registered_model_name"], shared["champion_alias"]
    )
    params = client.get_run(champion.run_id).data.params
    assert params["training.window.train_start"] == "2025-04-01"
    decisions = FraudDecision.validate(exchange(airflow_run, "user_app", "decisions"))
    assert set(decisions["event_time"].dt.strftime("%Y-%m-%d")) == {"2025-04-14"}
    assert set(decisions["model_version"]) == {str(champion.version)}
    assert any((root / "mlartifacts").rglob("MLmodel"))  # the temp store, not the checkout's


WINDOW = """
import importlib.util, json, sys
from types import SimpleNamespace as Obj
spec = importlib.util.spec_from_file_location("dag", sys.argv[1])
dag = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dag)
event = lambda start, end: Obj(extra={"window_start": start, "window_end": end})
context = {
    "dag_run": Obj(conf={}),
    "triggering_asset_events": {
        "instances": [event("2025-04-14", "2025-04-15"), event("2025-04-15", "2025-04-16")]
    },
    "data_interval_start": None,
    "data_interval_end": None,
}
print(json.dumps([d.date().isoformat() for d in dag.run_window(context)]))
"""


@pytest.mark.slow
def test_an_asset_triggered_run_scores_the_window_its_events_carry(tmp_path):
    """The consumer side of the events checked above, in Airflow's environment (a scheduler
    would pass these events; `dags test` cannot)."""
    subprocess.run(["make", "-C", str(ROOT), "airflow-env"], check=True, capture_output=True)
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    window = airflow_python(env, WINDOW, str(DAGS / "user_app_batch_scoring_dag.py"))
    assert window == ["2025-04-14", "2025-04-16"]
