"""The router follows the aliases in a real registry with real worker processes: it reuses a
version already loaded, refreshes every role even when one fails, and backs off a version that
does not load."""

from __future__ import annotations

import os
import sys

import cloudpickle
import mlflow
import pytest

from user_app.online.routing import ModelRouter, RoutingPolicy, load_in_worker
from user_app.online.worker import ModelCallError

from ..conftest import AmountModel, free_port, make_world

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker can't import tests


class DiesOnLoad(AmountModel):
    def load_context(self, context):
        os._exit(3)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """v1 champion (amount/1000), v2 challenger (amount/500), v3 a version that cannot load."""
    root = tmp_path_factory.mktemp("routing")
    previous = mlflow.get_tracking_uri()
    make_world(
        root,
        models=((AmountModel(1000.0), None), (AmountModel(500.0), None), (DiesOnLoad(1.0), None)),
    )
    client = mlflow.MlflowClient(mlflow.get_tracking_uri())
    yield client
    mlflow.set_tracking_uri(previous)


def aliases(client, champion: str, challenger: str) -> None:
    client.set_registered_model_alias("fraud-detector", "champion", champion)
    client.set_registered_model_alias("fraud-detector", "challenger", challenger)


class CountingLoad:
    """``load_in_worker``, counting the worker processes it starts."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self, ref):
        self.loads += 1
        return load_in_worker(ref)


def router_for(load) -> ModelRouter:
    return ModelRouter(
        "fraud-detector", "champion", "challenger", RoutingPolicy(canary_fraction=0.5), load
    )


def test_a_champion_moved_to_the_challengers_version_reuses_its_worker(registry):
    aliases(registry, "1", "2")
    load = CountingLoad()
    router = router_for(load)
    try:
        assert load.loads == 2
        challenger = router.challenger
        aliases(registry, "2", "2")  # the challenger is promoted
        assert router.refresh() == {"champion": "2", "challenger": "2"}
        assert router.champion is challenger and load.loads == 2  # no second process for v2
        assert router.processes()["champion"] == challenger.process
    finally:
        router.close()


def test_a_champion_that_fails_to_load_does_not_stop_the_challenger_and_is_retried_later(
    registry,
):
    aliases(registry, "1", "2")
    load = CountingLoad()
    router = router_for(load)
    try:
        champion = router.champion
        aliases(registry, "3", "1")  # a broken champion; the challenger goes back to v1
        with pytest.raises(ModelCallError, match="exited with code 3"):
            router.refresh()
        assert router.champion is champion  # v1 keeps answering
        assert router.challenger is champion  # the challenger followed its alias (reused v1)
        assert router.aliases == {"champion": "3", "challenger": "1"}  # resolved all the same
        loads = load.loads
        assert router.refresh() == {"champion": "1", "challenger": "1"}  # backing off
        assert load.loads == loads
        with pytest.raises(ModelCallError):  # POST /admin/reload tries again at once
            router.refresh(force=True)
        assert load.loads == loads + 1
    finally:
        router.close()


def test_an_unreachable_registry_keeps_the_loaded_models_and_the_aliases_last_seen(
    registry, monkeypatch, caplog
):
    aliases(registry, "1", "2")
    router = router_for(load_in_worker)
    try:
        before = router.versions()
        assert before == {"champion": "1", "challenger": "2"}
        served = (router.champion, router.challenger)
        uri = mlflow.get_tracking_uri()
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(f"http://127.0.0.1:{free_port()}")  # nothing listens there
        try:
            assert router.refresh() == before  # no error: nothing is known to have moved
            assert router.refresh() == before
            assert router.aliases == {"champion": "1", "challenger": "2"}
            assert "did not answer" in router.registry_problem
            assert (router.champion, router.challenger) == served  # nothing retired
        finally:
            mlflow.set_tracking_uri(uri)
        aliases(registry, "2", "2")
        assert router.refresh() == {"champion": "2", "challenger": "2"}
        assert router.registry_problem is None
        said = [r.getMessage() for r in caplog.records if r.name == "user_app.online.routing"]
        assert sum("registry is unreachable" in m for m in said) == 1  # once per outage
        assert sum("registry answers again" in m for m in said) == 1
    finally:
        router.close()
