"""Registry bookkeeping after a training run.

kedro-mlflow logs and registers the pipeline model in its own ``after_pipeline_run`` (plugin hooks
run before project hooks). This hook then finds the version that run registered and:

* tags it with its provenance (ml_app version, git commit, contract version, validation metrics)
  and shows the run's model card as the version's description;
* gives it the ``challenger`` alias: the newest model waits for the promotion gate;
* gives it the ``champion`` alias too if no model has one yet, so a fresh installation can score
  right away. Replacing an existing champion is the promotion pipeline's job, never training's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl
from kedro_mlflow.pipeline.pipeline_ml import PipelineML  # no MLflow import

from shared_runtime.config import shared_resolver

if TYPE_CHECKING:
    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node

logger = logging.getLogger(__name__)


class LazyMlflowHook:
    """kedro-mlflow's hook (as ml_app's :class:`~ml_app.pipeline_model.LeanMlflowHook`),
    imported on the first hook call, i.e. when a session starts, never at ``settings.py``
    import: ``kedro registry list`` and the other commands that start no session do not pay
    the ~2 s of importing MLflow. Each method forwards one of ``MlflowHook``'s hook
    implementations with the same arguments (pluggy passes arguments by name).
    """

    def __init__(self) -> None:
        self._hook = None

    @property
    def hook(self):
        if self._hook is None:
            from ml_app.pipeline_model import LeanMlflowHook

            self._hook = LeanMlflowHook()
        return self._hook

    @hook_impl
    def after_context_created(self, context) -> None:
        self.hook.after_context_created(context)

    @hook_impl
    def after_catalog_created(
        self,
        catalog: DataCatalog,
        conf_catalog: dict[str, Any],
        conf_creds: dict[str, Any],
        parameters: dict[str, Any],
        save_version: str,
        load_versions: dict[str, str],
    ) -> None:
        self.hook.after_catalog_created(
            catalog, conf_catalog, conf_creds, parameters, save_version, load_versions
        )

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        self.hook.before_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def before_node_run(
        self, node: Node, catalog: DataCatalog, inputs: dict[str, Any], is_async: bool
    ) -> None:
        self.hook.before_node_run(node, catalog, inputs, is_async)

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        self.hook.after_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def on_pipeline_error(
        self,
        error: Exception,
        run_params: dict[str, Any],
        pipeline: Pipeline,
        catalog: DataCatalog,
    ) -> None:
        self.hook.on_pipeline_error(error, run_params, pipeline, catalog)


class ModelRegistryHooks:
    def __init__(self) -> None:
        self._run_id: str | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline) -> None:
        if not isinstance(pipeline, PipelineML):
            self._run_id = None
            return
        import mlflow

        active = mlflow.active_run()
        self._run_id = active.info.run_id if active else None

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline) -> None:
        if self._run_id is None:
            return
        import mlflow
        from mlflow.exceptions import MlflowException

        from ml_app.model_logging import provenance
        from ml_app.registry import alias_version, make_champion

        client = mlflow.MlflowClient()
        name = shared_resolver("registered_model_name")
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{self._run_id}'")
        if not versions:
            logger.warning("Run %s registered no version of '%s'.", self._run_id, name)
            return
        version = versions[0].version
        metrics = client.get_run(self._run_id).data.metrics
        for key, value in {**provenance(), **_rounded(metrics)}.items():
            client.set_model_version_tag(name, version, key, value)
        try:  # the model card, shown as the version's description in the registry
            card = mlflow.artifacts.load_text(f"runs:/{self._run_id}/model_card.md")
            client.update_model_version(name, version, description=card)
        except MlflowException:
            logger.warning("Run %s logged no model_card.md.", self._run_id)
        challenger = shared_resolver("challenger_alias")
        champion = shared_resolver("champion_alias")
        client.set_registered_model_alias(name, challenger, version)
        current = alias_version(client, name, champion)
        if current is None:
            make_champion(client, name, version, champion)
            logger.info(
                "Registered %s version %s: no champion existed, so it is now '%s'.",
                name,
                version,
                champion,
            )
        else:
            logger.info(
                "Registered %s version %s as '%s' (champion is version %s; the promotion gate "
                "decides: `make promote`).",
                name,
                version,
                challenger,
                current,
            )


def _rounded(metrics: dict[str, float]) -> dict[str, str]:
    return {k: f"{v:.6g}" for k, v in metrics.items() if k.startswith("validation.")}
