"""The client gives every payment a decision: fallback 'review' when the service is down or slow."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from shared_schemas.examples import transaction_instance_example
from user_app.client import DecisionClient, RejectedRequest

from .conftest import free_port


class Stub(http.server.BaseHTTPRequestHandler):
    """A misbehaving service: answers ``status`` after ``delay`` seconds."""

    status = 503
    delay = 0.0
    hits = 0

    def do_POST(self):
        type(self).hits += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.delay)
        body = b'{"error": "bad"}'
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Stub.hits = 0
    yield Stub, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def assert_fallback(client: DecisionClient) -> None:
    decided = client.decide(transaction_instance_example())
    assert decided["decision"].tolist() == ["review", "review"]
    assert decided["fallback"].all() and set(decided["route"]) == {"fallback"}
    assert client.stats.fallbacks == 1


def test_service_down_means_review_after_bounded_retries():
    client = DecisionClient(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01)
    started = time.perf_counter()
    assert_fallback(client)
    assert time.perf_counter() - started < 2


def test_slow_service_means_review_within_the_read_timeout(stub):
    handler, url = stub
    handler.status, handler.delay = 200, 1.0
    client = DecisionClient(url, read_timeout=0.1, retries=1, backoff=0.01)
    started = time.perf_counter()
    assert_fallback(client)
    assert time.perf_counter() - started < 0.9  # two attempts of 0.1 s, not the 1 s answer
    assert handler.hits == 2


def test_unavailable_answers_are_retried_then_fall_back(stub):
    handler, url = stub
    handler.status, handler.delay = 503, 0.0
    assert_fallback(DecisionClient(url, retries=2, backoff=0.01))
    assert handler.hits == 3  # the first try and two retries


def test_a_refused_request_is_an_error_not_a_fallback(stub):
    handler, url = stub
    handler.status = 422
    with pytest.raises(RejectedRequest, match="422"):
        DecisionClient(url).decide(transaction_instance_example())


def test_online_scoring_logs_fallbacks_when_the_service_is_down(world):
    from shared_runtime.exchange import ExchangeParquetDataset
    from shared_runtime.testing import kedro_run

    root, project, _ = world
    kedro_run(
        project,
        "online_scoring",
        {
            "online_scoring.url": f"http://127.0.0.1:{free_port()}",
            "window.start": "2025-06-01",
            "window.end": "2025-07-01",
        },
    )
    log = ExchangeParquetDataset(
        filepath=str(root / "data/exchange/prediction_log"), partition_by="scored_at"
    ).load()
    fallbacks = log[log["route"] == "fallback"]
    assert fallbacks["n_review"].sum() == 2 and set(fallbacks["model_version"]) == {"fallback"}
