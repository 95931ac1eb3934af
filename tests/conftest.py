"""Fixtures of the cross-app tests."""

from pathlib import Path

import pytest

from tooling.conf import exchange_dataset, shared_settings
from tooling.loop.steps import loop_steps, run_steps
from shared_runtime.pytest_user_state import fingerprint
from shared_runtime.testing import isolated_app, isolated_env

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "simulate": {"simulate.n_customers": 1500, "simulate.n_merchants": 500},
    "training": {
        "training.model.hist_gradient_boosting.max_iter": 60,
        "evaluation.importance_sample": 2000,
    },
}


def settings(root: Path) -> dict:
    """conf/shared.yml as the apps of a world at ``root`` (isolated_env) resolve it: tracking URI,
    registered model name, aliases, exchange root."""
    return shared_settings(root, isolated_env(root))


def published(root: Path, app: str, name: str, env: dict[str, str] | None = None):
    """What ``app`` published as ``name`` in the world at ``root``, read where its catalog says
    (with the apps' environment ``env``, default: the embedded one)."""
    return exchange_dataset(root, app, name, env or isolated_env(root)).load()


@pytest.fixture(scope="session")
def loop(tmp_path_factory):
    """The whole loop on a small world in a temporary root: (root, user state before)."""
    root = tmp_path_factory.mktemp("monorepo")
    for app in ("etl_app", "ml_app", "user_app"):
        isolated_app(ROOT / app, root)
    before = fingerprint(ROOT)
    run_steps(
        loop_steps(SMALL), root=root, log_dir=root / "logs", env=isolated_env(root), echo=False
    )
    return root, before
