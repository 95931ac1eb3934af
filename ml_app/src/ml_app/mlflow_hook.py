"""ml_app's MLflow hook: kedro-mlflow's hook, with our model logging and registry bookkeeping.

The extension point, in the open: :class:`TrainingMlflowHook` subclasses kedro-mlflow's public
``MlflowHook`` and overrides one hook method, ``after_pipeline_run``. Everything else (the
run per ``kedro run``, parameters, the ``Mlflow*`` datasets) is kedro-mlflow's own behaviour.

At the end of a ``PipelineML`` run it does, in this order and in this one method:

1. **log the model**: the inference pipeline with its fitted artifacts as a
   :class:`~ml_app.pipeline_model.LeanPipelineModel`, through ``mlflow.pyfunc.log_model`` with
   :func:`ml_app.model_logging.log_model_kwargs` (signature from the contracts, pinned
   requirements, bundled code, provenance); the artifacts are extracted by kedro-mlflow's
   public ``KedroPipelineModel.extract_pipeline_artifacts``, as kedro-mlflow's own hook does;
2. **registry bookkeeping** (:func:`ml_app.registry.record_new_version`) of the version that
   call registered: provenance and validation tags, the model card as description, the
   ``challenger`` alias, ``champion`` if none exists; a run that registered nothing fails;
3. **end the run** as kedro-mlflow does, by its own ``after_pipeline_run`` given the training
   pipeline as a plain ``Pipeline``, for which it logs no model; if 1 or 2 failed, by its
   ``on_pipeline_error`` instead (the run ends as failed and ``kedro run`` fails), after
   deleting the version 1 registered if 2 failed (:func:`withdraw_version`): no half-booked
   version stays in the registry.

**The tracking server down.** A run that fails while an HTTP tracking server does not answer
``<uri>/health`` (checked in a second or two) fails with :class:`TrackingServerUnreachable`,
naming the URI, instead of the MLflow client's own error (or, with MLflow's default retries, a
wait of minutes per call: set ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` and
``MLFLOW_HTTP_REQUEST_TIMEOUT``, docs/scaling.md). The run is not closed (that would retry
against the dead server too): it stays ``RUNNING`` in the registry's store, with no model
version. A version registered before the server went away cannot be withdrawn then: the error
names it, to delete by hand.

Nothing is logged or registered when kedro-mlflow's tracking is disabled for the pipeline
(its ``_is_mlflow_enabled`` flag, from ``mlflow.yml``).

Bookkeeping therefore cannot be skipped by the order in which hooks are registered, and the
model is logged once. kedro-mlflow's plugin registration is disabled in ``settings.py``
(``DISABLE_HOOKS_FOR_PLUGINS``); ``ml_app.hooks.LazyMlflowHook`` registers this hook instead
and imports it (and MLflow) only when a session starts.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from kedro_mlflow.pipeline.pipeline_ml import PipelineML

from ml_app.model_logging import log_model_kwargs
from ml_app.pipeline_model import LeanPipelineModel
from ml_app.registry import record_new_version

logger = logging.getLogger(__name__)
HEALTH_TIMEOUT_SECONDS = 3.0


class TrackingServerUnreachable(RuntimeError):
    """The run failed while the MLflow tracking server did not answer."""


def tracking_server_problem(
    uri: str | None = None, timeout: float = HEALTH_TIMEOUT_SECONDS
) -> str | None:
    """Why the HTTP tracking server at ``uri`` (default: MLflow's tracking URI) is unreachable
    (``<uri>/health`` did not answer 200 within ``timeout`` seconds), or None when it answers or
    the tracking URI is not a server (a local store)."""
    uri = uri or mlflow.get_tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    health = f"{uri.rstrip('/')}/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # refused, timed out, name not resolved
        return f"{health}: {getattr(exc, 'reason', None) or exc}"
    return None if status == 200 else f"{health} answered HTTP {status}"


def log_pipeline_model(
    pipeline: PipelineML, catalog: DataCatalog
) -> tuple[mlflow.models.model.ModelInfo, str | None]:
    """Log (and register) the PipelineML's inference pipeline as a LeanPipelineModel; return
    the logged model's info and the registered model name."""
    for dataset in pipeline.datasets():  # materialise dataset factories, as kedro-mlflow does
        catalog.exists(dataset)
    # computed now, not when pipelines are registered: they import MLflow and ask git; they
    # replace PipelineML's defaults (e.g. signature "auto")
    kwargs = {**pipeline.log_model_kwargs, **log_model_kwargs()}
    with TemporaryDirectory() as tmp_dir:
        model = LeanPipelineModel(
            pipeline=pipeline.inference,
            catalog=catalog,
            input_name=pipeline.input_name,
            **pipeline.kpm_kwargs,
        )
        artifacts = model.extract_pipeline_artifacts(parameters_saving_folder=Path(tmp_dir))
        info = mlflow.pyfunc.log_model(python_model=model, artifacts=artifacts, **kwargs)
    return info, kwargs.get("registered_model_name")


def withdraw_version(name: str | None, info: mlflow.models.model.ModelInfo | None) -> None:
    """Delete the version a failed training run registered, if any: a version whose bookkeeping
    failed (partial tags, perhaps the ``challenger`` alias) must not wait for the promotion gate
    or be scored. MLflow removes the version's aliases with it. A failure to delete is logged,
    never raised: the run's own error is the one to report."""
    version = getattr(info, "registered_model_version", None)
    if not name or version is None:
        return
    try:
        mlflow.MlflowClient().delete_model_version(name, str(version))
    except Exception:
        logger.exception(
            "Could not delete %s version %s, registered by the failed run %s: delete it by hand "
            "(its registry bookkeeping is incomplete).",
            name,
            version,
            info.run_id,
        )
    else:
        logger.warning(
            "Deleted %s version %s: the run %s that registered it failed (see the error below).",
            name,
            version,
            info.run_id,
        )


class TrainingMlflowHook(MlflowHook):
    """kedro-mlflow's MlflowHook whose ``after_pipeline_run`` logs ml_app's pipeline model and
    does the registry bookkeeping of the new version before the run ends (module docstring)."""

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        # kedro-mlflow's own flag (set by its before_pipeline_run from mlflow.yml's
        # disable_tracking): tracking disabled for this pipeline, nothing is logged or registered,
        # even if some MLflow run happens to be active
        if not self._is_mlflow_enabled or not isinstance(pipeline, PipelineML):
            super().after_pipeline_run(run_params, pipeline, catalog)
            return
        info, name = None, None
        try:
            info, name = log_pipeline_model(pipeline, catalog)
            if not name or info.registered_model_version is None:
                raise RuntimeError(
                    f"Run {info.run_id} logged its model but registered no version (registered "
                    f"model name: {name!r}): set registered_model_name in conf/shared.yml."
                )
            record_new_version(
                mlflow.MlflowClient(), name, str(info.registered_model_version), info.run_id
            )
        except Exception as error:
            # the run's model is missing, unregistered or half booked: withdraw a version it
            # registered (with its tags and aliases), then kedro-mlflow closes the run as failed
            problem = tracking_server_problem()
            if problem:  # nothing can be withdrawn or closed now
                raise _unreachable(problem, self.run_id, name, info) from error
            withdraw_version(name, info)
            self.on_pipeline_error(error, run_params, pipeline, catalog)
            raise
        # kedro-mlflow ends (or, if it was opened outside kedro, keeps) the run; for a plain
        # Pipeline it logs no model, so the model above is the run's only one
        super().after_pipeline_run(run_params, Pipeline(pipeline.nodes), catalog)

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        try:
            super().before_pipeline_run(run_params, pipeline, catalog)
        except Exception as error:  # Kedro calls no on_pipeline_error for this hook
            problem = tracking_server_problem()
            if problem:
                raise _unreachable(problem, self.run_id, None, None) from error
            raise

    @hook_impl
    def on_pipeline_error(
        self,
        error: Exception,
        run_params: dict[str, Any],
        pipeline: Pipeline,
        catalog: DataCatalog,
    ) -> None:
        # kedro-mlflow closes the run as failed: against a dead server every call would retry
        # (minutes by default) and end in a connection error that hides why the run failed
        problem = tracking_server_problem() if self._is_mlflow_enabled else None
        if problem:
            raise _unreachable(problem, self.run_id, None, None) from error
        super().on_pipeline_error(error, run_params, pipeline, catalog)


def _unreachable(
    problem: str,
    run_id: str | None,
    name: str | None,
    info: mlflow.models.model.ModelInfo | None,
) -> TrackingServerUnreachable:
    uri = mlflow.get_tracking_uri()
    version = getattr(info, "registered_model_version", None)
    left = (
        f" It had registered version {version} of '{name}', which could not be withdrawn: "
        "delete it by hand once the server is back (its registry bookkeeping is incomplete)."
        if name and version is not None
        else " No model version was registered."
    )
    return TrackingServerUnreachable(
        f"The MLflow tracking server at {uri} is unreachable ({problem}): the training run "
        f"{run_id or ''} failed and stays RUNNING in the tracking store.{left} "
        "Start the server (or fix MLFLOW_TRACKING_URI) and run the pipeline again."
    )
