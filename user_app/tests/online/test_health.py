"""`/health` reports the registry's aliases as they are, and separately what is loaded."""

import requests

from ..conftest import Service


def test_health_reports_the_challenger_alias_without_canary_or_shadow(world):
    root, project, client = world
    svc = Service(root, project, {"online.reload_seconds": 0.5})
    try:
        health = requests.get(f"{svc.url}/health", timeout=5).json()
        assert (health["champion"], health["challenger"]) == ("1", "2")
        # nothing routes to the challenger, so it is not loaded
        assert health["serving"] == {"champion": "1", "challenger": None}
        client.delete_registered_model_alias("fraud-detector", "challenger")
        requests.post(f"{svc.url}/admin/reload", timeout=30)
        assert requests.get(f"{svc.url}/health", timeout=5).json()["challenger"] is None
    finally:
        client.set_registered_model_alias("fraud-detector", "challenger", "2")
        svc.stop()
