"""What the tools read from the monorepo's configuration, resolved exactly as the apps resolve it.

The orchestrators and tests never repeat a location, the model's name or its aliases: cross-app
settings come from ``conf/shared.yml`` (the config resolver every app uses), dataset locations
from the app catalogs and policies from app parameters, merged and resolved as Kedro's config
loader does for the app. ``env`` is the environment the apps are started with (e.g.
``isolated_env(root)`` for a world of its own): environment variables in the settings
(``FRAUD_EXCHANGE_ROOT``, ``MLFLOW_TRACKING_URI``, ...) are read from it, not from this process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from shared_runtime.config import load_shared_config
from shared_runtime.exchange import ExchangeParquetDataset


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


def _layer(folder: Path, kind: str) -> dict[str, Any]:
    """The top-level keys of one environment's ``catalog`` or ``parameters`` files (Kedro's
    default file patterns)."""
    paths = {*folder.glob(f"{kind}*.yml"), *folder.glob(f"{kind}*/**/*.yml")}
    paths |= set(folder.glob(f"**/{kind}*.yml"))
    merged: dict[str, Any] = {}
    for path in sorted(paths):
        merged.update(OmegaConf.to_container(OmegaConf.load(path)) or {})
    return merged


def app_setting(
    root: Path,
    app: str,
    kind: str,
    key: str,
    env: Mapping[str, str] | None = None,
    shared_root: Path | None = None,
) -> Any:
    """The top-level ``key`` of an app's ``catalog`` or ``parameters``, resolved: ``conf/local``
    replaces ``conf/base`` per top-level key (Kedro's default merge); ``${shared:...}``,
    ``${globals:...}`` and ``${runtime_params:...}`` (its default) resolve as in the app. Only
    ``key`` is resolved, so an app's own custom resolvers elsewhere in its files (etl_app's
    ``days_before``) need not be known here. ``shared_root``: the folder whose conf/shared.yml the
    app reads (default ``root``; for an installed app, the folder its conf was unpacked in)."""
    conf = root / app / "conf"
    config = OmegaConf.create({**_layer(conf / "base", kind), **_layer(conf / "local", kind)})
    if key not in config:
        raise KeyError(f"{app}'s {kind} has no {key!r}: {sorted(config)}")
    settings = shared_settings(shared_root or root, env)
    variables = OmegaConf.create(
        {**_layer(conf / "base", "globals"), **_layer(conf / "local", "globals")}
    )
    resolvers = {
        "shared": lambda name: settings[name],
        "globals": lambda name, default=None: OmegaConf.select(variables, name, default=default),
        # no `--params` here: a runtime parameter takes its default, as in a plain `kedro run`
        "runtime_params": lambda name, default=None: default,
    }
    for name, resolver in resolvers.items():
        OmegaConf.clear_resolver(name)
        OmegaConf.register_resolver(name, resolver)
    try:
        with _environment(env):
            value = config[key]
            return (
                OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            )
    finally:
        for name in resolvers:
            OmegaConf.clear_resolver(name)


def catalog_entry(
    root: Path,
    app: str,
    name: str,
    env: Mapping[str, str] | None = None,
    shared_root: Path | None = None,
) -> dict[str, Any]:
    """The resolved entry ``name`` of ``app``'s catalog (e.g. its ``filepath``)."""
    return app_setting(root, app, "catalog", name, env, shared_root)


def exchange_dataset(
    root: Path,
    app: str,
    name: str,
    env: Mapping[str, str] | None = None,
    shared_root: Path | None = None,
) -> ExchangeParquetDataset:
    """The exchange dataset ``name`` as ``app``'s catalog declares it (location, partitioning)."""
    entry = catalog_entry(root, app, name, env, shared_root)
    # the apps read their S3 settings from their environment; this process reads them from `env`
    storage = {k: v for k, v in (env or {}).items() if k.startswith("AWS_")}
    return ExchangeParquetDataset(
        filepath=entry["filepath"],
        partition_by=entry["partition_by"],
        credentials=storage if entry["filepath"].startswith("s3://") else None,
    )
