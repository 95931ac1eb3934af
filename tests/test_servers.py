"""The loop against real servers: a Postgres source system, an MLflow tracking server with a
Postgres backend store and an S3 artifact store (moto), all started here on loopback. Only
configuration changes, and the model is the embedded run's to the last digit."""

from __future__ import annotations

import boto3
import mlflow
import pytest

from tooling.loop.steps import loop_steps, run_steps
from tooling.stack import ARTIFACT_BUCKET, S3_CREDENTIALS, servers
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
    env = isolated_env(root, {**stack.app_env(), **S3_CREDENTIALS})
    run_steps(loop_steps(SMALL), root=root, log_dir=root / "logs", env=env, echo=False)
    return root


def champion_of(client: mlflow.MlflowClient, root) -> mlflow.entities.model_registry.ModelVersion:
    shared = settings(root)
    return client.get_model_version_by_alias(
        shared["registered_model_name"], shared["champion_alias"]
    )


def validation_metrics(client: mlflow.MlflowClient, root) -> dict[str, float]:
    champion = champion_of(client, root)
    metrics = client.get_run(champion.run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith("validation.")}


@pytest.mark.slow
def test_the_loop_on_servers_trains_the_embedded_model(stack, on_servers, loop):
    embedded_root, _ = loop
    server = mlflow.MlflowClient(tracking_uri=stack.tracking_uri)
    embedded = mlflow.MlflowClient(tracking_uri=settings(embedded_root)["mlflow_tracking_uri"])
    on_server = validation_metrics(server, on_servers)
    assert on_server == validation_metrics(embedded, embedded_root)
    assert on_server["validation.rows"] > 1_000
    # the model's files went through the tracking server into the object store
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=ARTIFACT_BUCKET)["Contents"]]
    assert any(key.endswith("MLmodel") for key in keys)
    assert not (on_servers / "mlartifacts").exists()  # nothing fell back to local files
    # user_app scored with the champion it loaded from the server
    champion = champion_of(server, on_servers)
    decisions = published(on_servers, "user_app", "decisions")
    assert set(decisions["model_version"]) == {str(champion.version)}
