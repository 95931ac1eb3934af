"""Cross-app settings: the one place the three apps read what they must agree on.

Every app registers :func:`shared_resolver` as the OmegaConf resolver ``shared`` in its
``settings.py``, so a catalog or ``mlflow.yml`` writes ``${shared:exchange_root}`` instead of
repeating a path per app. Values come from ``<root>/conf/shared.yml``, overlaid by the optional,
gitignored ``<root>/conf/shared.local.yml``; values in those files may read environment variables
with ``${oc.env:NAME,default}``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.resolvers import oc

ROOT_ENV_VAR = "MONOREPO_ROOT"
SHARED_CONF = Path("conf") / "shared.yml"
LOCAL_CONF = Path("conf") / "shared.local.yml"


def find_monorepo_root(start: Path | None = None) -> Path:
    """The monorepo root: ``$MONOREPO_ROOT``, else the nearest parent holding conf/shared.yml."""
    if env_root := os.environ.get(ROOT_ENV_VAR):
        root = Path(env_root).resolve()
        if not (root / SHARED_CONF).is_file():
            raise FileNotFoundError(f"${ROOT_ENV_VAR}={env_root} has no {SHARED_CONF}.")
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / SHARED_CONF).is_file():
            return candidate
    raise FileNotFoundError(
        f"No {SHARED_CONF} found in {here} or its parents. Run kedro from an app folder inside the "
        f"monorepo (e.g. `cd etl_app && kedro run`) or set ${ROOT_ENV_VAR} to the monorepo root."
    )


def load_shared_config(root: Path | None = None) -> dict[str, Any]:
    """Load and resolve the cross-app settings (environment variables are read now)."""
    root = root or find_monorepo_root()
    layers = [OmegaConf.create({"root": str(root)}), OmegaConf.load(root / SHARED_CONF)]
    if (root / LOCAL_CONF).is_file():
        layers.append(OmegaConf.load(root / LOCAL_CONF))
    merged = OmegaConf.merge(*layers)
    # Kedro's config loader unregisters oc.env outside credentials files; these settings need it.
    borrowed = not OmegaConf.has_resolver("oc.env")
    if borrowed:
        OmegaConf.register_resolver("oc.env", oc.env)
    try:
        return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]
    finally:
        if borrowed:
            OmegaConf.clear_resolver("oc.env")


@functools.cache
def _cached_config(cwd: str, env_key: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    del env_key  # part of the cache key only: a changed environment reloads the settings
    return load_shared_config(find_monorepo_root(Path(cwd)))


def shared_resolver(key: str) -> Any:
    """OmegaConf resolver: ``${shared:exchange_root}`` -> the resolved cross-app setting."""
    env_key = tuple(sorted((k, v) for k, v in os.environ.items() if k.isupper()))
    config = _cached_config(os.getcwd(), env_key)
    if key not in config:
        raise KeyError(
            f"Unknown shared setting '{key}'. Known: {sorted(config)} (conf/shared.yml)."
        )
    return config[key]


if __name__ == "__main__":  # `python -m shared_runtime.config exchange_root` prints one setting
    import sys

    sys.stdout.write(f"{shared_resolver(sys.argv[1])}\n")
