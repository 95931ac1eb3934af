"""The production topology on one machine: a Postgres source system, an MLflow tracking server
(Postgres backend store, S3 artifact store) and an S3-compatible object store (moto), each a real
server on a free loopback port in a temporary folder, stopped (and deleted) when done.

`make servers` starts it and prints the environment variables that point the apps at it; the
tests start it themselves. The apps change nothing but configuration:

==============================  ===============================================================
variable                        meaning
==============================  ===============================================================
``ETL_SOURCE_DB_URL``           the source system (etl_app): ``postgresql+psycopg://.../source_system``
``MLFLOW_TRACKING_URI``         the tracking server and registry (ml_app, user_app): ``http://...``
``FRAUD_MLFLOW_ARTIFACT_ROOT``  ``mlflow-artifacts:``: experiments store artifacts through the
                                server, which writes them to ``s3://mlflow-artifacts``
``FRAUD_EXCHANGE_ROOT``         the exchange (all apps): ``s3://exchange``, one Delta table per
                                dataset
``AWS_ENDPOINT_URL``            the S3 endpoint (Delta and boto3 read it); on AWS itself, leave it
                                unset
``AWS_ALLOW_HTTP``              ``true``: the local endpoint speaks plain HTTP (not on AWS)
``AWS_CONDITIONAL_PUT``         ``etag``: Delta commits with conditional puts, so concurrent
                                writers cannot overwrite each other's commit
``AWS_ACCESS_KEY_ID`` ...       the credentials, as for any AWS client (:data:`S3_CREDENTIALS`)
==============================  ===============================================================
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tooling.processes import Server, free_port
from shared_runtime.testing import PostgresCluster, throwaway_postgres_cluster

ARTIFACT_BUCKET = "mlflow-artifacts"
EXCHANGE_BUCKET = "exchange"
# moto accepts any credentials; the names are what boto3 and MLflow read
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "stack-access-key",
    "AWS_SECRET_ACCESS_KEY": "stack-secret-key",  # pragma: allowlist secret (a local moto server)
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Stack:
    """What the apps need to know about the running servers."""

    postgres: str  # server URL without a database
    s3_endpoint: str
    tracking_uri: str
    # the running servers, to break them on purpose (tests/test_server_faults.py):
    # ``mlflow_server.kill()`` / ``.restart()``, ``database.restart()``
    mlflow_server: Server | None = field(default=None, compare=False, repr=False)
    database: PostgresCluster | None = field(default=None, compare=False, repr=False)

    def app_env(self) -> dict[str, str]:
        """The configuration that moves every app from the embedded defaults to these servers."""
        return {
            "ETL_SOURCE_DB_URL": f"{self.postgres}/source_system",
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "FRAUD_MLFLOW_ARTIFACT_ROOT": "mlflow-artifacts:",
            "FRAUD_EXCHANGE_ROOT": f"s3://{EXCHANGE_BUCKET}",
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_CONDITIONAL_PUT": "etag",
            **S3_CREDENTIALS,
        }


@contextmanager
def servers(folder: Path | None = None) -> Iterator[Stack]:
    """Postgres, an S3 endpoint and an MLflow server, up until the block ends."""
    with ExitStack() as stack:
        folder = folder or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stack-")))
        database = stack.enter_context(throwaway_postgres_cluster("source_system", "mlflow"))
        postgres = database.url
        s3 = stack.enter_context(s3_server(folder, ARTIFACT_BUCKET, EXCHANGE_BUCKET))
        mlflow_port = free_port()
        tracking = f"http://127.0.0.1:{mlflow_port}"
        mlflow_server = stack.enter_context(
            Server(
                "mlflow server",
                [
                    str(Path(sys.executable).parent / "mlflow"),  # the tooling env's, not an app's
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    f"{postgres}/mlflow",
                    "--artifacts-destination",
                    f"s3://{ARTIFACT_BUCKET}",
                ],
                cwd=folder,
                env={
                    **os.environ,
                    **S3_CREDENTIALS,
                    "MLFLOW_S3_ENDPOINT_URL": s3,
                    "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                },
                ready_url=f"{tracking}/health",
                log=folder / "mlflow-server.log",
            )
        )
        yield Stack(
            postgres=postgres,
            s3_endpoint=s3,
            tracking_uri=tracking,
            mlflow_server=mlflow_server,
            database=database,
        )


@contextmanager
def s3_server(folder: Path, *buckets: str) -> Iterator[str]:
    """A moto S3 server on a free loopback port holding ``buckets``; yields its endpoint URL."""
    import boto3  # noqa: PLC0415 (only the stack needs it)

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with Server(
        "moto S3 server",
        moto,
        cwd=folder,
        env={**os.environ, **S3_CREDENTIALS},
        ready_url=f"{endpoint}/moto-api/",
        log=folder / "moto.log",
    ):
        client = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield endpoint


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Start the servers stack until interrupted.")
    parser.parse_args(argv)
    with servers() as stack:
        lines = [f"export {k}={v}" for k, v in stack.app_env().items()]
        sys.stdout.write(
            "Servers up (Ctrl-C stops and deletes them). In another shell:\n  "
            + "\n  ".join(lines)
            + f"\nMLflow UI: {stack.tracking_uri}\n"
        )
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sys.stdout.write("stopping\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
