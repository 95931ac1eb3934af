"""ml_app's MLflow hook, registered in ``settings.py`` and imported when a session starts.

The hook itself (model logging, then registry bookkeeping, then the end of the run, in one
method) is :class:`ml_app.mlflow_hook.TrainingMlflowHook`; this module only defers importing it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl

if TYPE_CHECKING:
    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node

logger = logging.getLogger(__name__)


class LazyMlflowHook:
    """kedro-mlflow's hook (as ml_app's :class:`~ml_app.mlflow_hook.TrainingMlflowHook`),
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
            from ml_app.mlflow_hook import TrainingMlflowHook

            self._hook = TrainingMlflowHook()
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
