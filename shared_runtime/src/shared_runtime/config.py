"""Cross-app settings: the one place the three apps read what they must agree on.

Every app registers :func:`shared_resolver` as the OmegaConf resolver ``shared`` in its
``settings.py``, so a catalog or ``mlflow.yml`` writes ``${shared:exchange_root}`` instead of
repeating a path per app. Values come from ``<root>/conf/shared.yml``, overlaid by the optional,
gitignored ``<root>/conf/shared.local.yml``; values in those files may read environment variables
with ``${oc.env:NAME,default}``.

Where ``shared.yml`` is found, first match wins:

1. in the conf source the app runs with (``--conf-source``, a folder or a Kedro conf archive):
   a released app's conf archive carries ``conf/shared.yml`` (docs/deploying.md); the apps'
   :class:`SharedConfigLoader` notes it when Kedro creates the loader; ``root`` is then the
   folder holding the conf folder (or archive);
2. ``$MONOREPO_ROOT/conf/shared.yml``;
3. the nearest parent of the working directory holding ``conf/shared.yml`` (in the monorepo,
   ``cd etl_app && kedro run`` finds the top-level conf/).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf
from omegaconf.resolvers import oc

ROOT_ENV_VAR = "MONOREPO_ROOT"
SHARED_CONF = Path("conf") / "shared.yml"
LOCAL_CONF = Path("conf") / "shared.local.yml"


@dataclass(frozen=True)
class ConfSourceSettings:
    """The shared settings a conf source carries: its ``shared.yml`` (and ``shared.local.yml``)
    texts and the ``root`` they resolve ``${root}`` with."""

    root: str
    texts: tuple[str, ...]


# Set by SharedConfigLoader for the conf source of the session being created (None: the conf
# source has no shared.yml, so the monorepo's is used).
_from_conf_source: ConfSourceSettings | None = None


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
        f"No {SHARED_CONF} found in {here} or its parents. Run an installed app with "
        f"--conf-source pointing at its released conf (folder or archive, which holds shared.yml),"
        f" run kedro from an app folder inside the monorepo (e.g. `cd etl_app && kedro run`), or "
        f"set ${ROOT_ENV_VAR} to a folder holding {SHARED_CONF}."
    )


def load_shared_config(root: Path | None = None) -> dict[str, Any]:
    """Load and resolve the cross-app settings (environment variables are read now)."""
    root = root or find_monorepo_root()
    texts = [(root / SHARED_CONF).read_text()]
    if (root / LOCAL_CONF).is_file():
        texts.append((root / LOCAL_CONF).read_text())
    return _resolve(ConfSourceSettings(str(root), tuple(texts)))


def _resolve(settings: ConfSourceSettings) -> dict[str, Any]:
    layers = [OmegaConf.create({"root": settings.root})]
    layers += [OmegaConf.create(text) for text in settings.texts]
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
def _cached_config(
    cwd: str, env_key: tuple[tuple[str, str], ...], conf_source: ConfSourceSettings | None
) -> dict[str, Any]:
    del env_key  # part of the cache key only: a changed environment reloads the settings
    if conf_source is not None:
        return _resolve(conf_source)
    return load_shared_config(find_monorepo_root(Path(cwd)))


def shared_resolver(key: str) -> Any:
    """OmegaConf resolver: ``${shared:exchange_root}`` -> the resolved cross-app setting."""
    env_key = tuple(sorted((k, v) for k, v in os.environ.items() if k.isupper()))
    config = _cached_config(os.getcwd(), env_key, _from_conf_source)
    if key not in config:
        raise KeyError(
            f"Unknown shared setting '{key}'. Known: {sorted(config)} (conf/shared.yml)."
        )
    return config[key]


class SharedConfigLoader(OmegaConfigLoader):
    """Kedro's OmegaConfigLoader, plus: when its conf source (``--conf-source``: a folder, or a
    ``.tar.gz``/``.zip`` archive of one) holds ``shared.yml``, the ``shared:`` settings come from
    there, ``${root}`` being the folder that holds the conf folder or archive. That is how an
    installed app runs from its released conf archive, with no monorepo checkout. A conf source
    without one (an app's conf/ in the monorepo) keeps the lookup of :func:`find_monorepo_root`.
    """

    def __init__(self, conf_source: str | Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(conf_source, *args, **kwargs)
        global _from_conf_source  # noqa: PLW0603 (the resolver OmegaConf calls has no context)
        _from_conf_source = self._shared_settings()

    def _conf_file(self, name: str) -> str:
        if self._protocol == "file":
            return str(Path(self.conf_source) / name)
        if self._protocol in ("tar", "zip"):  # the archive's top folder, as Kedro reads it
            return f"{self._fs.ls('', detail=False)[-1]}/{name}"
        return f"{self._remote_root_path}/{name}"

    def _shared_settings(self) -> ConfSourceSettings | None:
        shared = self._conf_file(SHARED_CONF.name)
        if not self._fs.isfile(shared):
            return None
        texts = [self._fs.cat_file(shared).decode()]
        local = self._conf_file(LOCAL_CONF.name)
        if self._fs.isfile(local):
            texts.append(self._fs.cat_file(local).decode())
        if self._protocol in ("file", "tar", "zip"):
            root = str(Path(self.conf_source).resolve().parent)
        else:
            root = f"{self._protocol}://{self._remote_root_path.rsplit('/', 1)[0]}"
        return ConfSourceSettings(root, tuple(texts))


if __name__ == "__main__":  # `python -m shared_runtime.config exchange_root` prints one setting
    import sys

    sys.stdout.write(f"{shared_resolver(sys.argv[1])}\n")
