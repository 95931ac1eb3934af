"""Registry I/O for the promotion gate, as Kedro datasets (nodes never call MLflow).

* ``RegistryStateDataset`` (load): champion and challenger versions with their runs' params and
  metrics.
* ``ChampionAliasDataset`` (save): applies a promotion decision to the registry alias.
* ``OptionalExchangeDataset`` (load): an exchange table that may never have been published
  (the online service's decisions, in a world that never ran it) loads as no rows.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from ml_app.registry import alias_version, make_champion, version_info
from shared_runtime.exchange import ExchangeParquetDataset


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


class OptionalExchangeDataset(ExchangeParquetDataset):
    """An exchange table that may be absent: loads as an empty frame of its contract's columns.

    For inputs a world may never produce (``online_decisions`` when the online service never
    ran): a table that exists is read, checked and traced exactly as by its base class.
    """

    def _load(self) -> pd.DataFrame:
        if self._physical is None:
            raise DatasetError("OptionalExchangeDataset needs `contract:` to shape no rows.")
        if not self._exists():
            required = [n for n, (_, req, _) in self._physical.columns.items() if req]
            return self._physical.target_schema(required).empty_table().to_pandas()
        return super()._load()
