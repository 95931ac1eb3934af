"""What the tools read from the monorepo's configuration, resolved exactly as the apps resolve it.

The orchestrators and tests never repeat a location, the model's name or its aliases: cross-app
settings come from ``conf/shared.yml`` (the config resolver every app uses), dataset locations
from the app catalogs and policies from app parameters, through Kedro's own config loader with the
``shared:`` resolver. ``env`` is the environment the apps are started with (e.g.
``isolated_env(root)`` for a world of its own): environment variables in the settings
(``FRAUD_EXCHANGE_ROOT``, ``MLFLOW_TRACKING_URI``, ...) are read from it, not from this process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from shared_schemas.config import load_shared_config
from shared_schemas.dependency_warnings import ignore_dependency_warnings
from shared_schemas.exchange import ExchangeParquetDataset


@contextmanager
def _environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """This process's environment replaced by ``env`` while settings are resolved."""
    if env is None:
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def shared_settings(root: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``conf/shared.yml`` of ``root`` (exchange root, tracking URI, model name, aliases, ...)."""
    with _environment(env):
        return load_shared_config(root)


def app_config(
    root: Path, app: str, kind: str, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An app's ``catalog`` or ``parameters`` (base overlaid by local), resolved."""
    ignore_dependency_warnings()  # Kedro's own resolver registration warns
    settings = shared_settings(root, env)

    def shared(key: str) -> Any:
        return settings[key]

    # Kedro registers a custom resolver only if none of that name exists: clear the previous
    # root's, so each call resolves against its own root's settings
    OmegaConf.clear_resolver("shared")
    try:
        with _environment(env):
            loader = OmegaConfigLoader(
                conf_source=str(root / app / "conf"),
                base_env="base",
                default_run_env="local",
                custom_resolvers={"shared": shared},
            )
            return dict(loader[kind])
    finally:
        OmegaConf.clear_resolver("shared")


def exchange_dataset(
    root: Path, app: str, name: str, env: Mapping[str, str] | None = None
) -> ExchangeParquetDataset:
    """The exchange dataset ``name`` as ``app``'s catalog declares it (location, partitioning)."""
    entry = app_config(root, app, "catalog", env)[name]
    return ExchangeParquetDataset(filepath=entry["filepath"], partition_by=entry["partition_by"])
