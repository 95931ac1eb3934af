"""Project settings of ml_app (https://docs.kedro.org/en/stable/configure/configuration_basics/).

Cross-app settings (exchange root, MLflow tracking URI, registered model name) are not repeated
here: catalogs read them from the monorepo's conf/shared.yml through the `shared:` resolver.
"""

from shared_runtime.dependency_warnings import ignore_dependency_warnings

# first: some of the imports below warn when imported
ignore_dependency_warnings()

from ml_app.hooks import LazyMlflowHook, ModelRegistryHooks  # noqa: E402
from ml_app.run_inputs import MlflowRunInputsHooks  # noqa: E402
from shared_runtime.config import shared_resolver  # noqa: E402
from shared_runtime.run_params import RunParamsHooks  # noqa: E402

# kedro-mlflow's hook, registered here (not by the plugin) so that it logs the lean pipeline
# model, and imported only when a session starts (LazyMlflowHook). Pluggy calls the hook
# registered last first: the model is logged and registered before ModelRegistryHooks tags and
# aliases the new version.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)  # its distribution metadata name
# RunParamsHooks refuses unknown or malformed --params before the run starts;
# MlflowRunInputsHooks records the exchange data each run read (inside kedro-mlflow's run).
HOOKS = (RunParamsHooks(), MlflowRunInputsHooks(), ModelRegistryHooks(), LazyMlflowHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"shared": shared_resolver},
}
