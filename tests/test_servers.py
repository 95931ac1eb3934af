"""The loop against real servers: a Postgres source system, an MLflow tracking server with a
Postgres backend store and an S3 artifact store (moto), and the exchange as Delta tables on S3,
all started here on loopback. Only configuration changes, and the model is the embedded run's to
the last digit."""

from __future__ import annotations

import boto3
import mlflow
import pytest

from tooling.loop.demo import render, summarise
from tooling.loop.steps import loop_steps, run_steps
from tooling.stack import ARTIFACT_BUCKET, EXCHANGE_BUCKET, S3_CREDENTIALS, servers
from shared_runtime.testing import isolated_app, isolated_env
from tests.conftest import ROOT, SMALL, published, settings


@pytest.fixture(scope="module")
def stack():
    with servers() as running:
        yield running


@pytest.fixture(scope="module")
def on_servers(stack, tmp_path_factory):
    root = tmp_path_factory.mktemp("monorepo-on-servers")
    for app in ("etl_app", "ml_app", "user_app"):
        isolated_app(ROOT / app, root)
    env = isolated_env(root, stack.app_env())
    run_steps(loop_steps(SMALL), root=root, log_dir=root / "logs", env=env, echo=False)
    return root, env


def champion_of(client: mlflow.MlflowClient, root) -> mlflow.entities.model_registry.ModelVersion:
    shared = settings(root)
    return client.get_model_version_by_alias(
        shared["registered_model_name"], shared["champion_alias"]
    )


def validation_metrics(client: mlflow.MlflowClient, root) -> dict[str, float]:
    champion = champion_of(client, root)
    metrics = client.get_run(champion.run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith("validation.")}


def s3_keys(stack, bucket: str) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.mark.slow
def test_the_loop_on_servers_trains_the_embedded_model(stack, on_servers, loop):
    embedded_root, _ = loop
    root, env = on_servers
    server = mlflow.MlflowClient(tracking_uri=stack.tracking_uri)
    embedded = mlflow.MlflowClient(tracking_uri=settings(embedded_root)["mlflow_tracking_uri"])
    on_server = validation_metrics(server, root)
    # the same model: equal metrics (a mean may differ in its last bit: rows summed in the
    # order each store returned them)
    assert on_server == pytest.approx(validation_metrics(embedded, embedded_root), rel=1e-12)
    assert on_server["validation.rows"] > 1_000
    # the model's files went through the tracking server into the object store
    assert any(key.endswith("MLmodel") for key in s3_keys(stack, ARTIFACT_BUCKET))
    assert not (root / "mlartifacts").exists()  # nothing fell back to local files
    # user_app scored with the champion it loaded from the server
    champion = champion_of(server, root)
    decisions = published(root, "user_app", "decisions", env)
    assert set(decisions["model_version"]) == {str(champion.version)}


@pytest.mark.slow
def test_the_exchange_is_delta_tables_on_s3_and_runs_record_their_versions(stack, on_servers):
    root, _ = on_servers
    keys = s3_keys(stack, EXCHANGE_BUCKET)
    for name in ("instances", "labels", "decisions", "prediction_log"):
        assert f"{name}/_delta_log/00000000000000000000.json" in keys, name
    assert not (root / "data" / "exchange").exists()  # nothing fell back to local files
    server = mlflow.MlflowClient(tracking_uri=stack.tracking_uri)
    run = server.get_run(champion_of(server, root).run_id)
    inputs = {i.dataset.name: {t.key: t.value for t in i.tags} for i in run.inputs.dataset_inputs}
    assert inputs["instances"]["exchange_location"] == f"s3://{EXCHANGE_BUCKET}/instances"
    assert inputs["instances"]["table_version"] == "0"  # one publish, one version


@pytest.mark.slow
def test_the_demo_summary_on_servers_equals_the_embedded_one(stack, on_servers, loop):
    """`make demo STACK=servers` prints this summary; the same data gives the same figures."""
    embedded_root, _ = loop
    root, env = on_servers
    here = summarise(root, 1.0, env)
    there = summarise(embedded_root, 1.0, isolated_env(embedded_root))
    assert here["exchange_root"] == f"s3://{EXCHANGE_BUCKET}"
    assert here["tracking_uri"] == stack.tracking_uri
    for part in ("instances", "labels", "ceiling"):
        assert here[part] == there[part], part
    assert here["registry"]["metrics"] == pytest.approx(there["registry"]["metrics"], rel=1e-12)
    for key in ("n_rows", "n_approve", "n_review", "n_decline"):
        assert here["last_scoring"][key] == there["last_scoring"][key], key
    assert here["last_promotion"]["reason"] == there["last_promotion"]["reason"]
    assert "Fraud loop complete" in render(here)
