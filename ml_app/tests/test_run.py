"""`kedro run --pipelines training` logs, registers and promotes a pipeline model that works
outside the project exactly like the in-project inference pipeline."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from shared_runtime.testing import isolated_env, kedro_run
from tests.conftest import isolated_project_with_data

APP = Path(__file__).resolve().parents[1]
PARAMS = {
    "training.window.train_start": "2025-02-01",
    "training.window.train_end": "2025-04-01",
    "training.window.valid_end": "2025-05-12",
    "training.model.hist_gradient_boosting.max_iter": 40,
    "evaluation.importance_sample": 1000,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("monorepo")
    project, instances = isolated_project_with_data(root, n=6_000, seed=3)
    kedro_run(project, "training", PARAMS)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return root, project, instances, client


def test_training_registers_a_version_with_aliases_and_provenance(trained):
    _, _, _, client = trained
    (version,) = client.search_model_versions("name = 'fraud-detector'")
    assert str(client.get_model_version_by_alias("fraud-detector", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("fraud-detector", "challenger").version) == "1"
    tags = version.tags
    assert tags["ml_app_version"] and tags["contract_version"]
    assert float(tags["validation.roc_auc"]) > 0.75
    run = client.get_run(version.run_id)
    assert {"validation.pr_auc", "validation.review_threshold"} <= set(run.data.metrics)
    assert json.loads(tags["decision_policy"])["decline_threshold"] == pytest.approx(0.8)
    assert run.data.tags["decision_policy"] == tags["decision_policy"]
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "plots")}
    assert {
        f"plots/{p}.png" for p in ("roc", "precision_recall", "calibration", "loss")
    } <= artifacts


def test_the_model_card_counts_the_validation_rows_and_requirements_pin_cloudpickle(
    trained, monkeypatch
):
    from importlib.metadata import version as installed

    root, _, _, client = trained
    (model,) = client.search_model_versions("name = 'fraud-detector' and version_number = 1")
    rows = int(client.get_run(model.run_id).data.metrics["validation.rows"])
    card = Path(client.download_artifacts(model.run_id, "model_card.md", str(root))).read_text()
    assert rows > 0 and f"**Validation metrics** ({rows:,} payments)" in card
    assert "| pr_auc |" in card
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    requirements = mlflow.pyfunc.get_model_dependencies("models:/fraud-detector/1")
    assert f"cloudpickle=={installed('cloudpickle')}" in Path(requirements).read_text().split()


def test_a_table_of_text_amounts_stops_training_and_registers_nothing(trained):
    """A foreign writer replaces the instances table with text amounts: it is refused by name
    before training; restoring the previous table version (Delta time travel) mends it."""
    import pyarrow as pa
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    from shared_runtime.exchange import META_CONTRACT
    from shared_schemas.versioning import CONTRACT_VERSION

    root, project, _, client = trained
    before = len(client.search_model_versions("name = 'fraud-detector'"))
    path = str(root / "data/exchange/instances")
    good = DeltaTable(path).version()
    table = DeltaTable(path).to_pyarrow_table()
    column = table.schema.get_field_index("amount")
    write_deltalake(
        path,
        table.set_column(column, "amount", table["amount"].cast(pa.string())),
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=["day"],
        commit_properties=CommitProperties(custom_metadata={META_CONTRACT: CONTRACT_VERSION}),
    )
    try:
        with pytest.raises(AssertionError) as failed:
            kedro_run(project, "training", PARAMS)
    finally:
        DeltaTable(path).restore(good)
    message = str(failed.value)
    assert f"table version {good + 1}) does not have the physical schema" in message
    assert "column 'amount' is string, expected float64" in message
    assert "TransactionInstance contract, so nothing was loaded" in message
    assert len(client.search_model_versions("name = 'fraud-detector'")) == before


# a failed run needs no good model: the smallest one that trains
CHEAP = PARAMS | {
    "training.model.hist_gradient_boosting.max_iter": 3,
    "evaluation.importance_sample": 100,
}


def last_run(client):
    experiments = [e.experiment_id for e in client.search_experiments()]
    (last,) = client.search_runs(
        experiments, order_by=["attributes.start_time DESC"], max_results=1
    )
    return last


def test_a_run_that_cannot_register_its_model_fails_instead_of_skipping_bookkeeping(trained):
    """No registered model name: no version can be registered, so there is nothing to tag or
    alias; the run must fail (and MLflow record it as failed), never finish with a warning."""
    root, project, _, client = trained
    before = len(client.search_model_versions("name = 'fraud-detector'"))
    with pytest.raises(AssertionError) as failed:
        kedro_run(project, "training", CHEAP, env=isolated_env(root, {"FRAUD_MODEL_NAME": ""}))
    # MLflow refuses the empty name when registering (or no version comes back)
    assert "MlflowException" in str(failed.value) or "registered no version" in str(failed.value)
    assert last_run(client).info.status == "FAILED"
    assert len(client.search_model_versions("name = 'fraud-detector'")) == before


def test_a_version_whose_bookkeeping_fails_is_deleted_with_its_aliases(trained):
    """The version is registered, then its bookkeeping fails (MLflow refuses the challenger
    alias 'latest', after the version's tags are set): the run fails and the half-booked
    version does not stay in the registry, nor does any alias point at it."""
    root, project, _, client = trained
    before = {v.version for v in client.search_model_versions("name = 'fraud-detector'")}
    aliases = dict(client.get_registered_model("fraud-detector").aliases)
    shared = root / "conf" / "shared.yml"
    original = shared.read_text()
    assert "challenger_alias: challenger\n" in original
    shared.write_text(
        original.replace("challenger_alias: challenger\n", "challenger_alias: latest\n")
    )
    try:
        with pytest.raises(AssertionError) as failed:
            kedro_run(project, "training", CHEAP)
    finally:
        shared.write_text(original)
    assert "'latest' alias name (case insensitive) is reserved" in str(failed.value)
    run = last_run(client)
    assert run.info.status == "FAILED"
    assert {v.version for v in client.search_model_versions("name = 'fraud-detector'")} == before
    assert not client.search_model_versions(f"run_id = '{run.info.run_id}'")
    assert dict(client.get_registered_model("fraud-detector").aliases) == aliases


def test_the_run_records_its_inputs_description_and_opens_on_training_runs(trained):
    _, _, instances, client = trained
    (version,) = client.search_model_versions("name = 'fraud-detector' and version_number = 1")
    run = client.get_run(version.run_id)
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"instances", "labels"}
    used = inputs["instances"]
    tags = {t.key: t.value for t in used.tags}
    assert tags["contract_version"] and tags["exchange_location"].endswith("instances")
    assert tags["table_version"] == "0"  # the version it read: Delta time travel reads it back
    assert used.dataset.source and used.dataset.digest
    assert tags["rows"] == str(len(instances))
    assert run.data.tags["mlflow.note.content"].startswith("# Model card: fraud detector")
    assert "**Features.**" not in run.data.tags["mlflow.note.content"]
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_second_training_waits_as_challenger(trained):
    _, project, _, client = trained
    kedro_run(project, "training", PARAMS)
    # the newest version (a deleted one, of a failed run above, keeps its number)
    newest = max(int(v.version) for v in client.search_model_versions("name = 'fraud-detector'"))
    assert newest > 1
    assert str(client.get_model_version_by_alias("fraud-detector", "champion").version) == "1"
    challenger = client.get_model_version_by_alias("fraud-detector", "challenger")
    assert str(challenger.version) == str(newest)
    # reproducible: same data, seed and configuration -> the same model metrics
    v1, v2 = client.get_model_version("fraud-detector", "1"), challenger
    metrics = [client.get_run(v.run_id).data.metrics for v in (v1, v2)]
    assert metrics[0] and metrics[0] == metrics[1]


LOAD_AND_PREDICT = textwrap.dedent(
    """
    import json, sys
    import mlflow, pandas as pd
    from shared_runtime.enforce import ContractViolation
    mlflow.set_tracking_uri(sys.argv[1])
    # the newest version: trained from the pickles the in-project inference run uses
    model = mlflow.pyfunc.load_model("models:/fraud-detector@challenger")
    import ml_app
    from kedro_mlflow.mlflow import KedroPipelineModel
    instances = pd.read_parquet(sys.argv[2])
    lean = pd.DataFrame(model.predict(instances))
    lean.to_parquet(sys.argv[3])
    # the lean predict gives what kedro-mlflow's own predict gives on the same loaded model
    python_model = model.unwrap_python_model()
    stock = KedroPipelineModel.predict(python_model, None, instances)
    pd.testing.assert_frame_equal(lean, stock)
    one_row = pd.DataFrame(model.predict(instances.head(1)))
    pd.testing.assert_frame_equal(one_row, lean.head(1))
    # the fast path for callers that validated already (the decision service) gives the same
    from shared_schemas.etl_to_ml import TransactionInstance
    from shared_runtime.fast import FastContract
    valid = FastContract(TransactionInstance).validate(instances)
    pd.testing.assert_frame_equal(python_model.predict_validated(valid), lean)
    kind = python_model._artifacts["compiled_model"].kind
    bad = pd.read_parquet(sys.argv[2]).head(3).assign(amount=-1.0)
    try:
        model.predict(bad)
        error = None
    except ContractViolation as exc:
        error = str(exc)
    report = {"ml_app_from": ml_app.__file__, "error": error, "kind": kind}
    print(json.dumps({**report, "class": type(python_model).__name__}))
    """
)


def test_model_loads_outside_the_project_and_matches_in_project_inference(trained, tmp_path):
    root, project, instances, _ = trained
    kedro_run(project, "inference")
    in_project = pd.read_parquet(project / "data/07_model_output/scores.parquet")

    sample = tmp_path / "instances.parquet"
    instances.to_parquet(sample)
    out = tmp_path / "scores.parquet"
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, f"sqlite:///{root / 'mlflow.db'}", sample, out],
        cwd=tmp_path,  # a fresh process, outside any Kedro project
        env=isolated_env(root),
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "cloudpickle" not in proc.stderr  # no version-mismatch warning on load
    # the model runs the copy of ml_app it carries, not this checkout's
    assert "/code/ml_app/" in report["ml_app_from"]
    assert str(APP) not in report["ml_app_from"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(out).sort_values("transaction_id").reset_index(drop=True),
        in_project.sort_values("transaction_id").reset_index(drop=True),
    )
    assert report["class"] == "LeanPipelineModel"
    assert report["kind"] == "treelite"  # the served model is the compiled one
    assert "TransactionInstance" in report["error"]
    assert "amount: greater_than_or_equal_to(0.0) failed for 3 row(s)" in report["error"]
