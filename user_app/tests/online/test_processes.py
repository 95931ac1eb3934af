"""Each model version runs in its own worker process with its own bundled code, and a model
call never blocks the service's event loop."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import mlflow
import pytest
import requests

import shared_schemas
from user_app.client import scoring_payload as payload
from user_app.online.models import shadowed_code
from user_app.online.routing import (
    BUCKETS,
    ModelRouter,
    RoutingPolicy,
    bucket,
    load_in_process,
    load_in_process_if_sound,
    load_in_worker,
)
from user_app.online.service import validate

from ..conftest import AmountModel, BundledScaleModel, Service, SlowModel, make_world, many


def bundle(folder, scale: float) -> list[str]:
    """A code path holding the module ``fraud_scale`` with this SCALE."""
    folder.mkdir(parents=True)
    (folder / "fraud_scale.py").write_text(f"SCALE = {scale}\n")
    return [str(folder / "fraud_scale.py")]


@pytest.fixture(scope="module")
def two_bundles(tmp_path_factory):
    """v1 (champion) bundles SCALE = 1000, v2 (challenger) SCALE = 500, same module name."""
    root = tmp_path_factory.mktemp("bundles")
    previous = mlflow.get_tracking_uri()
    project, _ = make_world(
        root,
        models=(
            (BundledScaleModel(), bundle(root / "a", 1000.0)),
            (BundledScaleModel(), bundle(root / "b", 500.0)),
        ),
    )
    yield root, project, f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(previous)


@pytest.mark.parametrize("champion_in_process", [False, True])
def test_each_version_answers_with_its_own_bundled_code(two_bundles, champion_in_process):
    root, project, _ = two_bundles
    params = {
        "online.canary_fraction": 0.5,
        "online.reload_seconds": 0,
        "online.champion_in_process": str(champion_in_process).lower(),
    }
    svc = Service(root, project, params)
    try:
        processes = requests.get(f"{svc.url}/health", timeout=5).json()["worker_processes"]
        assert (processes["champion"] is None) == champion_in_process
        assert processes["challenger"] not in (None, svc.proc.pid)
        rows = many(40, 1_000)
        for i in range(len(rows)):
            row = rows.iloc[[i]]
            body = svc.post("/decisions?explain=false", json=payload(row)).json()
            scale = 500 if body["route"] == "canary" else 1000
            expected = min(1.0, row["amount"].iloc[0] / scale)
            assert body["decisions"][0]["score"] == pytest.approx(expected)
        canary = [bucket(i) < 0.5 * BUCKETS for i in rows["transaction_id"]]
        assert any(canary) and not all(canary)  # both versions answered
    finally:
        svc.stop()


def test_in_one_process_the_last_bundle_wins_which_is_why_versions_get_processes(two_bundles):
    """The failure the worker processes exist for: two bundles loaded in one process, a lazy
    import at predict time resolves to whichever bundle is first on the path."""
    mlflow.set_tracking_uri(two_bundles[2])
    router = ModelRouter(
        "fraud-detector",
        "champion",
        "challenger",
        RoutingPolicy(canary_fraction=1.0),
        load_in_process,
    )
    rows = validate(many(1, 5))
    champion = router.champion.predict_valid(rows)["score"][0]
    challenger = router.challenger.predict_valid(rows)["score"][0]
    assert champion == challenger  # v1 ran v2's code (or the reverse): one of them is wrong


def test_ping_answers_while_a_slow_model_call_is_in_flight(tmp_path, keep_tracking_uri):
    project, _ = make_world(tmp_path, models=((SlowModel(1000.0, seconds=3.0), None),))
    svc = Service(tmp_path, project, {"online.reload_seconds": 0})
    try:
        slow = many(2, 7_000)  # the example's second row pays 812.00: a slow call
        answered: list[requests.Response] = []
        call = threading.Thread(
            target=lambda: answered.append(svc.post("/invocations", json=payload(slow))),
        )
        started = time.monotonic()
        call.start()
        time.sleep(0.5)  # the slow call is now inside the model
        pings = []
        for _ in range(5):
            before = time.monotonic()
            assert requests.get(f"{svc.url}/ping", timeout=2).status_code == 200
            assert requests.get(f"{svc.url}/health", timeout=2).status_code == 200
            pings.append(time.monotonic() - before)
        assert call.is_alive(), "the model call should still be in flight"
        assert max(pings) < 1.0, pings
        call.join()
        assert answered[0].status_code == 200, answered[0].text
        assert time.monotonic() - started >= 3.0
    finally:
        svc.stop()


def test_a_dead_worker_gets_a_503_that_says_so_and_the_next_reload_restarts_it(world):
    root, project, _ = world
    params = {"online.reload_seconds": 0, "online.champion_in_process": "false"}
    svc = Service(root, project, params)
    try:
        pid = requests.get(f"{svc.url}/health", timeout=5).json()["worker_processes"]["champion"]
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        body = payload(many(1, 8_000))
        refused = svc.post("/invocations", json=body)
        assert refused.status_code == 503, refused.text
        assert "worker process for version 1" in refused.json()["error"]
        assert svc.post("/admin/reload").json()["champion"] == "1"
        assert svc.post("/invocations", json=body).status_code == 200
        health = requests.get(f"{svc.url}/health", timeout=5).json()
        assert health["worker_processes"]["champion"] != pid
    finally:
        svc.stop()


def bundled_shared_schemas(folder, changed: bool) -> list[str]:
    """A copy of this service's shared_schemas, as a model bundles it, optionally edited."""
    copy = folder / "shared_schemas"
    source = Path(shared_schemas.__file__).parent
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    if changed:
        with (copy / "fast.py").open("a") as out:
            out.write("\n# a different release\n")
    return [str(copy)]


def test_code_the_service_imported_from_other_files_is_found(tmp_path):
    same = tmp_path / "same"
    bundled_shared_schemas(same, changed=False)
    (same / "never_imported_here.py").write_text("SCALE = 1\n")
    assert shadowed_code(same) == []
    changed = tmp_path / "changed"
    bundled_shared_schemas(changed, changed=True)
    assert shadowed_code(changed) == ["shared_schemas"]


@pytest.mark.parametrize("changed", [False, True])
def test_the_first_champion_runs_in_process_only_with_exactly_its_code(
    tmp_path, keep_tracking_uri, changed
):
    code = bundled_shared_schemas(tmp_path / "bundle", changed)
    make_world(tmp_path, models=((AmountModel(1000.0), code),))
    router = ModelRouter(
        "fraud-detector",
        "champion",
        "challenger",
        RoutingPolicy(),
        load_in_worker,
        load_in_process_if_sound,
    )
    try:
        assert (router.champion.process is not None) == changed
        scores = router.champion.predict_valid(validate(many(2, 5)))
        assert list(scores["score"]) == pytest.approx([0.0235, 0.812])
    finally:
        router.close()
