"""Loading the model to score with, by registry alias, version or run id.

kedro-mlflow's ``MlflowModelRegistryDataset`` loads a model but forgets which version it loaded;
decisions must record it. This subclass resolves the reference to a concrete registered version
first and returns the model together with that identity. It only ever loads from the configured
tracking/registry store by name: there is no way to pass it an arbitrary model URI.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

import mlflow
from kedro.io.core import DatasetError
from kedro_mlflow.io.models import MlflowModelRegistryDataset
from mlflow.exceptions import MlflowException

# what the registry answers for a reference that matches nothing (a missing model, version or
# alias); any other failure (connection refused, timeout, a 5xx) says nothing about the reference
_MISSING = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})
_BUNDLED_CODE_DIRS: set[str] = set()


class RegistryUnreachable(DatasetError):
    """The registry did not answer: whether the reference exists is unknown (it is not missing).
    Callers that hold a model keep serving it (user_app.online.routing)."""


_LOAD_LOCK = threading.Lock()


def load_with_own_code(uri: str, **load_args: Any) -> Any:
    """``mlflow.pyfunc.load_model``, safe for several models with bundled code in one process.

    MLflow puts a model's ``code_paths`` in front of ``sys.path`` and imports from there, but a
    package already imported (say ``ml_app`` from the champion's bundle) is reused as is: the
    challenger would then run the champion's code, or fail on a module that only it has. Modules
    imported from a model bundle are therefore forgotten before the next model loads; models
    already loaded keep working with the code they loaded (functions hold their own globals).
    """
    with _LOAD_LOCK:
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None) or ""
            if any(file.startswith(folder) for folder in _BUNDLED_CODE_DIRS):
                del sys.modules[name]
        before = set(sys.path)
        model = mlflow.pyfunc.load_model(uri, **load_args)
        _BUNDLED_CODE_DIRS.update(
            os.path.join(path, "") for path in set(sys.path) - before if os.path.isdir(path)
        )
        return model


@dataclass(frozen=True)
class ScoringModel:
    """A loaded pyfunc model and exactly which registered version it is."""

    model: Any
    name: str
    version: str
    run_id: str
    reference: str

    def predict(self, data: Any) -> Any:
        return self.model.predict(data)


class RegisteredModelDataset(MlflowModelRegistryDataset):
    """Load ``models:/<name>@<alias>`` (default champion), a version, or a run's version."""

    def __init__(
        self,
        model_name: str,
        alias: str | None = None,
        model_version: str | int | None = None,
        run_id: str | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        def given(ref: object) -> bool:
            return ref not in (None, "", "null")

        # The most specific reference wins: a run id, then a version, then the alias (default
        # champion), so `--params model_version=3` works with the catalog's default alias.
        self._ref_run_id = run_id if given(run_id) else None
        self._ref_version = model_version if given(model_version) and not self._ref_run_id else None
        self._ref_alias = (
            (alias if given(alias) else "champion")
            if not (self._ref_run_id or self._ref_version)
            else None
        )
        super().__init__(
            model_name=model_name,
            alias=self._ref_alias,
            stage_or_version=None,
            load_args=load_args,
            metadata=metadata,
        )

    def _describe(self) -> dict[str, Any]:
        refs = {
            "alias": self._ref_alias,
            "model_version": self._ref_version,
            "run_id": self._ref_run_id,
        }
        return {"model_name": self.model_name, **{k: v for k, v in refs.items() if v}}

    def resolve(self) -> mlflow.entities.model_registry.ModelVersion:
        """The registered version the reference points to now (cheap: no model is loaded)."""
        client = mlflow.MlflowClient()
        name = self.model_name
        try:
            if self._ref_run_id:
                found = client.search_model_versions(
                    f"name = '{name}' and run_id = '{self._ref_run_id}'"
                )
                if not found:
                    raise DatasetError(
                        f"Run {self._ref_run_id} registered no version of model '{name}'."
                    )
                return found[0]
            if self._ref_version:
                return client.get_model_version(name, str(self._ref_version))
            return client.get_model_version_by_alias(name, self._ref_alias)
        except (MlflowException, OSError) as exc:
            if getattr(exc, "error_code", None) not in _MISSING:
                raise RegistryUnreachable(
                    f"The model registry at {mlflow.get_tracking_uri()} did not answer for "
                    f"model '{name}' {self._describe()}: {exc}"
                ) from exc
            raise DatasetError(
                f"No version of model '{name}' matches {self._describe()} in the registry at "
                f"{mlflow.get_tracking_uri()}. Run `make train` (ml_app) and `make promote` "
                "first, or pass an existing version (--params model_version=N)."
            ) from exc

    def _load(self) -> ScoringModel:
        resolved = self.resolve()
        uri = f"models:/{resolved.name}/{resolved.version}"
        model = load_with_own_code(uri, **self._load_args)
        reference = f"@{self._ref_alias}" if self._ref_alias else f"v{resolved.version}"
        return ScoringModel(model, resolved.name, str(resolved.version), resolved.run_id, reference)

    def _save(self, data: Any) -> None:
        raise DatasetError("RegisteredModelDataset is read-only: ml_app registers models.")
