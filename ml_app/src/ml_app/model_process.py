"""A registered model version that scores in its own process, with the code it was logged with.

A pipeline model carries its code (``code_paths``: ml_app, shared_runtime, shared_schemas as
they were at training) and its pickled objects refer to that code by module and name. Loaded
into a process that has already imported the checkout's ml_app, the checkout's code wins and a
model logged before a code change can fail to load (``Can't get attribute
'build_model_input'``), or, worse, load and run different code. The promotion gate and
monitoring therefore never load a model into their own process: :class:`ModelProcess` writes the
rows to a parquet file and runs ``score_worker.py`` in a fresh interpreter of the same
environment, which loads that one model with ``mlflow.pyfunc.load_model`` (bundled code first on
``sys.path``) and writes its scores back. One process per model and call: two models never
share an interpreter, and the judge (metrics, verdict) stays the checkout's code.

:class:`ModelProcessDataset` is the catalog's way to get one, by alias, resolved to a version
when loaded.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)
WORKER = Path(__file__).with_name("score_worker.py")


@dataclass(frozen=True)
class ModelProcess:
    """``predict`` runs ``model_uri`` in a fresh interpreter; the same call as a pyfunc model."""

    model_uri: str
    name: str
    version: str
    run_id: str
    tracking_uri: str
    python: str = sys.executable

    def predict(self, model_input: pd.DataFrame) -> pd.DataFrame:
        with TemporaryDirectory(prefix="ml_app-score-") as tmp:
            source, target = Path(tmp) / "input.parquet", Path(tmp) / "scores.parquet"
            model_input.to_parquet(source, index=False)
            env = {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri}
            started = time.perf_counter()
            proc = subprocess.run(
                [self.python, "-P", str(WORKER), self.model_uri, str(source), str(target)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(
                    f"{self.name} version {self.version} ({self.model_uri}) failed to score "
                    f"{len(model_input):,} rows in its own process (exit {proc.returncode}):\n"
                    f"{proc.stderr[-3000:]}"
                )
            scores = pd.read_parquet(target)
        logger.info(
            "Scored %d rows with %s version %s in its own process (its bundled code) in %.1f s",
            len(model_input),
            self.name,
            self.version,
            time.perf_counter() - started,
        )
        return scores


class ModelProcessDataset(AbstractDataset[None, ModelProcess]):
    """Loads the version holding ``alias`` of ``model_name`` as a :class:`ModelProcess`."""

    def __init__(self, model_name: str, alias: str) -> None:
        self._name = model_name
        self._alias = alias

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._name, "alias": self._alias}

    def _load(self) -> ModelProcess:
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            version = mlflow.MlflowClient().get_model_version_by_alias(self._name, self._alias)
        except MlflowException as exc:
            raise DatasetError(
                f"No version of '{self._name}' has the alias '{self._alias}'. Train first "
                "(`make train`): every new version becomes challenger, the first champion."
            ) from exc
        return ModelProcess(
            model_uri=f"models:/{self._name}/{version.version}",
            name=self._name,
            version=str(version.version),
            run_id=version.run_id,
            tracking_uri=mlflow.get_tracking_uri(),
        )

    def _save(self, data: None) -> None:
        raise DatasetError("ModelProcessDataset is read-only.")
