"""The promotion gate scores each model in its own process with its own bundled code: a version
whose bundled ml_app differs from the checkout's (here: a module the checkout does not have)
cannot be loaded next to the checkout's ml_app, yet the gate scores it and the current model."""

import importlib.util
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io.core import DatasetError

import ml_app
from ml_app.model_process import ModelProcess, ModelProcessDataset, check_scored_version
import shared_runtime
from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_env, kedro_run
import shared_schemas
from shared_schemas.monitoring import PromotionDecision
from tests.conftest import isolated_project_with_data

WINDOW = {
    "training.window.train_start": "2025-02-01",
    "training.window.train_end": "2025-03-20",
    "training.window.valid_end": "2025-04-10",
    "training.model.hist_gradient_boosting.max_iter": 30,
    "evaluation.importance_sample": 500,
}
LEGACY_MODULE = textwrap.dedent(
    '''
    """Only this bundle's ml_app has this module: the checkout's ml_app does not."""
    import mlflow
    import numpy as np
    import pandas as pd


    class LegacyModel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            ratio = model_input["amount_to_median_ratio"].astype(float).fillna(1.0)
            z = -4.0 + 2.5 * model_input["is_foreign"].astype(float) + 1.2 * np.log(ratio)
            return pd.DataFrame(
                {
                    "transaction_id": model_input["transaction_id"].astype("int64"),
                    "score": 1.0 / (1.0 + np.exp(-z)),
                }
            )
    '''
)


def log_legacy_version(root: Path, tmp: Path, experiment_id: str, monkeypatch) -> str:
    """Register a version whose pickled model refers to ``ml_app.legacy_scoring``, a module that
    exists only in the ml_app copy bundled with it."""
    bundle = tmp / "bundle"
    shutil.copytree(Path(ml_app.__file__).parent, bundle / "ml_app")
    module_path = bundle / "ml_app" / "legacy_scoring.py"
    module_path.write_text(LEGACY_MODULE)
    spec = importlib.util.spec_from_file_location("ml_app.legacy_scoring", module_path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ml_app.legacy_scoring", module)
    spec.loader.exec_module(module)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name="legacy"):
            mlflow.log_param("training.window.valid_end", WINDOW["training.window.valid_end"])
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=module.LegacyModel(),
                code_paths=[
                    str(bundle / "ml_app"),
                    str(Path(shared_runtime.__file__).parent),
                    str(Path(shared_schemas.__file__).parent),
                ],
                registered_model_name="fraud-detector",
            )
        version = str(info.registered_model_version)
        mlflow.MlflowClient().set_registered_model_alias("fraud-detector", "challenger", version)
    finally:
        mlflow.set_tracking_uri(None)
    return version


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("monorepo")
    project, _ = isolated_project_with_data(root, n=8_000, seed=5)
    kedro_run(project, "training", WINDOW)  # v1: champion, today's code
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return root, project, client


def test_the_gate_scores_a_version_whose_bundled_code_differs_from_the_checkout(
    store, tmp_path, monkeypatch
):
    root, project, client = store
    (v1,) = client.search_model_versions("name = 'fraud-detector'")
    experiment = client.get_run(v1.run_id).info.experiment_id
    legacy = log_legacy_version(root, tmp_path, experiment, monkeypatch)
    assert legacy == "2"
    env = isolated_env(root, {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"})

    # next to the checkout's ml_app (what the gate did before), the legacy version cannot load
    in_checkout = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ml_app.pipelines.promotion.nodes, mlflow; "
            "mlflow.pyfunc.load_model('models:/fraud-detector/2')",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert in_checkout.returncode != 0
    assert "legacy_scoring" in in_checkout.stderr

    # the gate scores both, each in its own process
    run = kedro_run(project, "promotion", env=env)
    assert (run.stdout + run.stderr).count("in its own process (its bundled code)") == 2
    decisions = ExchangeParquetDataset(
        filepath=str(root / "data/exchange/promotion_decisions"), partition_by="decided_at"
    ).load()
    (verdict,) = PromotionDecision.validate(decisions).itertuples()
    assert (verdict.champion_version, verdict.challenger_version) == ("1", "2")
    assert verdict.n_rows > 0
    for value in (verdict.champion_primary, verdict.challenger_primary):
        assert np.isfinite(value) and value > 0
    assert verdict.champion_pr_auc != verdict.challenger_pr_auc  # two different models scored


def unregistered_version(version: str, store, **options) -> ModelProcess:
    """A scoring process for a ``fraud-detector`` version that no run logged."""
    return ModelProcess(
        model_uri=f"models:/fraud-detector/{version}",
        name="fraud-detector",
        version=version,
        run_id="none",
        tracking_uri=f"sqlite:///{store}",
        **options,
    )


def test_a_model_that_cannot_score_is_named_in_the_error(store):
    root, _, _ = store
    model = unregistered_version("99", root / "mlflow.db")
    with pytest.raises(RuntimeError, match=r"fraud-detector version 99 .* in its own process"):
        model.predict(pd.DataFrame({"transaction_id": [1]}))


def test_a_hung_model_is_killed_after_its_timeout_and_named(tmp_path):
    """A scoring process that never ends (here an interpreter that only sleeps) cannot hang the
    gate or monitoring: it is killed after ``timeout`` seconds and the error names the version."""
    hung = tmp_path / "hung-python"
    hung.write_text("#!/bin/sh\nexec sleep 60\n")
    hung.chmod(0o755)
    model = unregistered_version("7", tmp_path / "mlflow.db", python=str(hung), timeout=1)
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"fraud-detector version 7 .* within 1 s"):
        model.predict(pd.DataFrame({"transaction_id": [1]}))
    assert time.perf_counter() - started < 30


def test_the_catalog_sets_the_timeout_of_each_model_dataset():
    catalog = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "conf/base/catalog.yml").read_text()
    )
    for name in ("champion_model", "challenger_model"):
        assert catalog[name]["timeout"] > 0
        dataset = ModelProcessDataset(
            model_name="fraud-detector", alias=name.split("_")[0], timeout=catalog[name]["timeout"]
        )
        assert dataset._describe()["timeout"] == catalog[name]["timeout"]
    with pytest.raises(DatasetError, match="timeout must be a positive"):
        ModelProcessDataset(model_name="fraud-detector", alias="champion", timeout=0)


def test_a_model_whose_alias_moved_after_the_registry_snapshot_is_refused():
    """The gate records and promotes the registry snapshot's versions: a model loaded for
    another version (the alias moved in between) must not be judged in their place."""
    from ml_app.pipelines.monitoring.nodes import reference_scores
    from ml_app.pipelines.promotion.nodes import evaluate_role

    registry = {
        "model_name": "fraud-detector",
        "champion": {"version": "1"},
        "challenger": {"version": "2"},
    }
    moved = unregistered_version("3", "unused.db")
    rows = pd.DataFrame({"transaction_id": [1], "is_fraud": [False]})
    message = r"challenger alias .* snapshot says version 2, the model loaded .* version 3"
    with pytest.raises(ValueError, match=message):
        evaluate_role("challenger", moved, registry, rows, {}, {})
    with pytest.raises(ValueError, match=r"champion alias .* version 1, .* version 3"):
        evaluate_role("champion", moved, registry, rows, {}, {})
    with pytest.raises(ValueError, match=r"champion alias .* version 1, .* version 3"):
        reference_scores(moved, registry, rows)
    check_scored_version(moved, {**registry, "challenger": {"version": 3}}, "challenger")
