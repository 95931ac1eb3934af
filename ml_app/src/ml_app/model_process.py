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
when loaded; a call that runs longer than its ``timeout`` (catalog) is killed and raises, naming
the version, so a hung model cannot hang the gate or monitoring.
:func:`check_scored_version` lets a node refuse a model whose alias moved after the run's
registry snapshot was taken.
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
DEFAULT_TIMEOUT = 900.0  # seconds; the catalog sets it per dataset


@dataclass(frozen=True)
class ModelProcess:
    """``predict`` runs ``model_uri`` in a fresh interpreter; the same call as a pyfunc model."""

    model_uri: str
    name: str
    version: str
    run_id: str
    tracking_uri: str
    python: str = sys.executable
    #: seconds one ``predict`` may take (loading the model included) before its process is killed
    timeout: float = DEFAULT_TIMEOUT

    def predict(self, model_input: pd.DataFrame) -> pd.DataFrame:
        """Scores of ``model_input`` from the model's own process.

        Raises:
            RuntimeError: the process failed, or ran longer than ``timeout`` seconds (it is
                killed); both name the model version.
        """
        with TemporaryDirectory(prefix="ml_app-score-") as tmp:
            source, target = Path(tmp) / "input.parquet", Path(tmp) / "scores.parquet"
            model_input.to_parquet(source, index=False)
            env = {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri}
            started = time.perf_counter()
            try:
                proc = subprocess.run(
                    [self.python, "-P", str(WORKER), self.model_uri, str(source), str(target)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=self.timeout,
                )
            except subprocess.TimeoutExpired as exc:
                stderr = exc.stderr or ""  # what the process wrote before it was killed
                if isinstance(stderr, bytes):
                    stderr = stderr.decode(errors="replace")
                raise RuntimeError(
                    f"{self.name} version {self.version} ({self.model_uri}) did not score "
                    f"{len(model_input):,} rows within {self.timeout:g} s in its own process, "
                    "which was killed (raise `timeout` of the model's dataset in "
                    f"conf/base/catalog.yml if it is merely slow):\n{stderr[-3000:]}"
                ) from None
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


def check_scored_version(model: ModelProcess, registry: dict[str, Any], role: str) -> None:
    """The model about to be scored is the version the run's registry snapshot names for
    ``role`` (the version the gate records and promotes, or monitoring reports on).

    ``model_registry`` and the model datasets resolve the aliases in separate loads: if an alias
    moved in between (a training finished and moved ``challenger``), the run would judge one
    version and record another.

    Raises:
        ValueError: the versions differ.
    """
    expected = str(registry[role]["version"])
    if str(model.version) != expected:
        raise ValueError(
            f"The {role} alias of '{registry['model_name']}' moved while this run was starting: "
            f"the registry snapshot says version {expected}, the model loaded to score is "
            f"version {model.version}. Nothing was decided; run the pipeline again."
        )


class ModelProcessDataset(AbstractDataset[None, ModelProcess]):
    """Loads the version holding ``alias`` of ``model_name`` as a :class:`ModelProcess` whose
    ``predict`` may take at most ``timeout`` seconds."""

    def __init__(self, model_name: str, alias: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not timeout > 0:
            raise DatasetError(f"timeout must be a positive number of seconds, not {timeout!r}.")
        self._name = model_name
        self._alias = alias
        self._timeout = float(timeout)

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._name, "alias": self._alias, "timeout": self._timeout}

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
            timeout=self._timeout,
        )

    def _save(self, data: None) -> None:
        raise DatasetError("ModelProcessDataset is read-only.")
