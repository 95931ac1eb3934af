"""What an MLflow run of ml_app was trained or judged on, recorded on the run itself.

kedro-mlflow opens one MLflow run per ``kedro run`` (training, promotion, monitoring) but does not
record which data the run read. :class:`MlflowRunInputsHooks`, a project hook that runs inside
kedro-mlflow's active run:

* logs every exchange dataset a run loads as an MLflow dataset input (``mlflow.log_input``): its
  exchange location as the source, the Delta table version it read (a digest names it), the
  contract version it was written with, its row count and partitions, so the run page lists
  "Datasets used";
* tags the experiment ``mlflow.experimentKind=custom_model_development`` (what it is, for
  MLflow's UI and API; MLflow 3.17's UI still starts in its GenAI view unless the address carries
  ``?workflowType=machine_learning``, which `make mlflow-ui` prints);
* sets a training run's description (``mlflow.note.content``) to the summary of its model card.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

from shared_runtime.exchange import ExchangeParquetDataset

logger = logging.getLogger(__name__)

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # MLflow's "machine learning" workflow
NOTE_TAG = "mlflow.note.content"
MODEL_CARD = "model_card.md"


def card_summary(card: str) -> str:
    """The model card up to its feature list: title, purpose and the data it was trained on."""
    summary, _, _ = card.partition("\n**Features.**")
    return summary.strip()


def exchange_input(name: str, dataset: ExchangeParquetDataset, data: pd.DataFrame):
    """An MLflow dataset for a loaded exchange dataset, and its input tags."""
    version = dataset.loaded_version if dataset.loaded_version is not None else dataset.version()
    commits = dataset.commits(version)
    versions = sorted({c["contract_version"] or "" for c in commits} - {""})
    tags = {
        "exchange_location": dataset.uri,
        "table_version": str(version),
        "contract_version": ",".join(versions) or "unknown",
        "partitions": str(len(dataset.partitions())),
        "rows": str(len(data)),
    }
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    # The table version names exactly the rows read (Delta time travel reads them back:
    # `table_version:` in a catalog entry), without hashing or profiling the frame:
    # `mlflow.data.from_pandas` inferred a schema over all rows, ~20 s for a million instances
    # on every training, promotion and monitoring run.
    described = dataset._describe()
    digest = hashlib.sha256(
        json.dumps([dataset.uri, version, described["last_partitions"], len(data)]).encode()
    ).hexdigest()[:8]
    return MetaDataset(resolve_dataset_source(dataset.uri), name=name, digest=digest), tags


class MlflowRunInputsHooks:
    """Records what each run read; imports MLflow only once a run starts (start-up stays fast)."""

    def __init__(self) -> None:
        self._catalog: Any = None
        self._run_id: str | None = None
        self._logged: set[str] = set()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        import mlflow

        active = mlflow.active_run()
        self._catalog, self._logged = catalog, set()
        self._run_id = active.info.run_id if active else None
        if active is not None:
            mlflow.MlflowClient().set_experiment_tag(
                active.info.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
            )

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if self._run_id is None or dataset_name in self._logged:
            return
        dataset = self._catalog.get(dataset_name) if self._catalog is not None else None
        if not isinstance(dataset, ExchangeParquetDataset) or not isinstance(data, pd.DataFrame):
            return
        if dataset.loaded_version is None and dataset.version() is None:
            return  # a `missing_ok` table never published: nothing was read
        import mlflow

        self._logged.add(dataset_name)
        mlflow_dataset, tags = exchange_input(dataset_name, dataset, data)
        mlflow.log_input(mlflow_dataset, context=dataset_name, tags=tags)
        logger.info(
            "Run input %s: %s rows, table version %s, contract %s, digest %s",
            dataset_name,
            f"{len(data):,}",
            tags["table_version"],
            tags["contract_version"],
            mlflow_dataset.digest,
        )

    # tryfirst: before the MLflow hook's after_pipeline_run, which logs the model and ends the
    # run (and raises if that fails, when no later implementation is called)
    @hook_impl(tryfirst=True)
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline) -> None:
        if self._run_id is None:
            return
        import mlflow
        from mlflow.exceptions import MlflowException

        client = mlflow.MlflowClient()
        names = {a.path for a in client.list_artifacts(self._run_id)}
        if MODEL_CARD not in names:
            return
        try:
            card = mlflow.artifacts.load_text(f"runs:/{self._run_id}/{MODEL_CARD}")
        except MlflowException:
            return
        client.set_tag(self._run_id, NOTE_TAG, card_summary(card))
