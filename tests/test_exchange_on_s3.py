"""The exchange on a real S3 endpoint (moto server on loopback): a window is published in one
commit, and when S3 becomes unreachable in the middle of a publish, nothing of it is published and
readers keep the previous window whole.

The outage is a real one: the publisher talks to S3 through a TCP relay that the test cuts (every
open connection dropped, new ones refused) while the new window's files are being uploaded. moto
keeps its objects in memory, so stopping moto itself would lose the previous window too."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import threading
import time

import boto3
import pandas as pd
import pytest

from tooling.processes import free_port
from tooling.stack import S3_CREDENTIALS, s3_server
from shared_runtime.exchange import ExchangeParquetDataset

BUCKET = "exchange"


class Relay:
    """A TCP relay 127.0.0.1:<port> -> ``target``; :meth:`cut` is a network outage."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.up = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up = False
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self._listener.close()


def storage(endpoint: str) -> dict[str, str]:
    """Delta's storage options for the endpoint; few, quick retries so an outage fails fast."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_CONDITIONAL_PUT": "etag",
        "AWS_ACCESS_KEY_ID": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
        "max_retries": "2",
        "retry_timeout": "3s",
    }


PUBLISH = """
import json, sys, pandas as pd
from shared_runtime.exchange import ExchangeParquetDataset
days = pd.date_range("2025-06-01", periods=60, freq="D").repeat(5_000)
frame = pd.DataFrame({"event_time": days, "amount": 2.0, "note": "new" * 40})
ExchangeParquetDataset(
    filepath=sys.argv[1], partition_by="event_time", credentials=json.loads(sys.argv[2])
).save(frame)
"""


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3"), BUCKET) as url:
        yield url


def objects(endpoint: str, prefix: str) -> set[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def old_window() -> pd.DataFrame:
    days = pd.date_range("2025-06-01", periods=60, freq="D").repeat(3)
    return pd.DataFrame({"event_time": days, "amount": 1.0, "note": "old"})


@pytest.mark.slow
def test_a_window_is_one_commit_on_s3_and_a_retried_append_adds_nothing(endpoint):
    ds = ExchangeParquetDataset(
        filepath=f"s3://{BUCKET}/instances",
        partition_by="event_time",
        credentials=storage(endpoint),
    )
    ds.save(old_window())
    assert ds.version() == 0 and len(ds.partitions()) == 60
    pd.testing.assert_frame_equal(ds.load(), old_window(), check_dtype=False)
    assert "instances/_delta_log/00000000000000000000.json" in objects(endpoint, "instances/")
    log = ExchangeParquetDataset(
        filepath=f"s3://{BUCKET}/log",
        partition_by="event_time",
        mode="append",
        credentials=storage(endpoint),
    )
    log.save(old_window().head(5))
    log.save(old_window().head(5))  # a retry
    assert len(log.load()) == 5 and log.version() == 0


@pytest.mark.slow
def test_s3_unreachable_during_publish_publishes_nothing_and_keeps_the_old_window(
    endpoint, tmp_path
):
    path = f"s3://{BUCKET}/outage"
    direct = ExchangeParquetDataset(
        filepath=path, partition_by="event_time", credentials=storage(endpoint)
    )
    direct.save(old_window())
    before = objects(endpoint, "outage/")
    relay = Relay(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])))
    script = tmp_path / "publish.py"
    script.write_text(textwrap.dedent(PUBLISH))
    through_relay = pd.Series(storage(f"http://127.0.0.1:{relay.port}")).to_json()
    try:
        writer = subprocess.Popen(
            [sys.executable, str(script), path, through_relay],
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while len(objects(endpoint, "outage/") - before) < 3:  # new files are going up
            assert writer.poll() is None, "the publish ended before the outage"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        relay.cut()
        started = time.monotonic()
        _, err = writer.communicate(timeout=120)
        failed_after = time.monotonic() - started
        sys.stdout.write(f"\npublish failed {failed_after:.1f} s into the outage\n")
        assert writer.returncode != 0
        assert "nothing of it was published" in err and path in err
        # uploaded files are on S3, but no commit names them: readers see the old window
        assert len(objects(endpoint, "outage/") - before) >= 3
        assert direct.version() == 0
        pd.testing.assert_frame_equal(direct.load(), old_window(), check_dtype=False)
        relay.restore()
        subprocess.run([sys.executable, str(script), path, through_relay], check=True)
    finally:
        relay.close()
    assert direct.version() == 1
    assert set(direct.load()["note"]) == {"new" * 40}
