"""Project settings of ml_app (https://docs.kedro.org/en/stable/configure/configuration_basics/).

Cross-app settings (exchange root, MLflow tracking URI, registered model name) are not repeated
here: catalogs read them from conf/shared.yml through the `shared:` resolver (the monorepo's, or the
one in the released conf archive an installed app runs with).
"""

from shared_runtime.dependency_warnings import ignore_dependency_warnings

# first: some of the imports below warn when imported
ignore_dependency_warnings()

from ml_app.hooks import LazyMlflowHook  # noqa: E402
from ml_app.run_inputs import MlflowRunInputsHooks  # noqa: E402
from shared_runtime.config import SharedConfigLoader, shared_resolver  # noqa: E402
from shared_runtime.run_params import RunParamsHooks  # noqa: E402

# kedro-mlflow's hook as ml_app's TrainingMlflowHook, registered here (not by the plugin): it logs
# the lean pipeline model and does the new version's registry bookkeeping, in that order, in one
# method (ml_app.mlflow_hook); imported only when a session starts (LazyMlflowHook).
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)  # its distribution metadata name
# RunParamsHooks refuses unknown or malformed --params when the context is created, before any
# run. MlflowRunInputsHooks records into the MLflow run the hook opens, so it must run inside it:
# pluggy calls the hook registered last first, so LazyMlflowHook stays last and its
# before_pipeline_run opens the run before MlflowRunInputsHooks' one looks for it; at the end,
# MlflowRunInputsHooks' after_pipeline_run is marked tryfirst, so it sets the run's description
# before LazyMlflowHook's one logs the model and ends the run (and still does when that raises).
# tests/test_settings.py pins both orders.
HOOKS = (RunParamsHooks(), MlflowRunInputsHooks(), LazyMlflowHook())

# The `shared:` settings come from the conf source's shared.yml when it has one (a released app's
# conf archive, docs/deploying.md), else from the monorepo's conf/shared.yml.
CONFIG_LOADER_CLASS = SharedConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"shared": shared_resolver},
}
