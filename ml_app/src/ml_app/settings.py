"""Project settings of ml_app (https://docs.kedro.org/en/stable/configure/configuration_basics/).

Cross-app settings (exchange root, MLflow tracking URI, registered model name) are not repeated
here: catalogs read them from the monorepo's conf/shared.yml through the `shared:` resolver.
"""

from ml_app.hooks import LazyMlflowHook, ModelRegistryHooks
from shared_schemas.config import shared_resolver

# kedro-mlflow's hook, registered here (not by the plugin) so that it logs the lean pipeline
# model, and imported only when a session starts (LazyMlflowHook). Pluggy calls the hook
# registered last first: the model is logged and registered before ModelRegistryHooks tags and
# aliases the new version.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)  # its distribution metadata name
HOOKS = (ModelRegistryHooks(), LazyMlflowHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"shared": shared_resolver},
}
