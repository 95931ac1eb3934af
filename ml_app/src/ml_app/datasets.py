"""Registry I/O for the promotion gate, as Kedro datasets (nodes never call MLflow).

* ``RegistryStateDataset`` (load): champion and challenger versions with their runs' params and
  metrics.
* ``ChampionAliasDataset`` (save): applies a promotion decision to the registry alias.
"""

from __future__ import annotations

from typing import Any

import mlflow
from kedro.io.core import AbstractDataset, DatasetError

from ml_app.registry import alias_version, make_champion, version_info


class RegistryStateDataset(AbstractDataset[None, dict[str, Any]]):
    def __init__(self, model_name: str, champion_alias: str, challenger_alias: str) -> None:
        self._name = model_name
        self._aliases = {"champion": champion_alias, "challenger": challenger_alias}

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._name, **self._aliases}

    def _load(self) -> dict[str, Any]:
        client = mlflow.MlflowClient()
        state: dict[str, Any] = {"model_name": self._name}
        for role, alias in self._aliases.items():
            version = alias_version(client, self._name, alias)
            if version is None:
                raise DatasetError(
                    f"No version of '{self._name}' has the alias '{alias}'. Train first "
                    "(`make train`): every new version becomes challenger, the first champion."
                )
            state[role] = version_info(client, self._name, version)
        return state

    def _save(self, data: None) -> None:
        raise DatasetError("RegistryStateDataset is read-only.")


class ChampionAliasDataset(AbstractDataset[dict[str, Any], None]):
    """Saving ``{"promoted": bool, "version": str}`` moves the champion alias when promoted."""

    def __init__(self, model_name: str, champion_alias: str) -> None:
        self._name = model_name
        self._alias = champion_alias

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._name, "alias": self._alias}

    def _save(self, data: dict[str, Any]) -> None:
        if data["promoted"]:
            make_champion(mlflow.MlflowClient(), self._name, data["version"], self._alias)

    def _load(self) -> None:
        raise DatasetError("ChampionAliasDataset is write-only.")
