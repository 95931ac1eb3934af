"""Project settings of ml_app (https://docs.kedro.org/en/stable/configure/configuration_basics/).

Cross-app settings (exchange root, MLflow tracking URI, registered model name) are not repeated
here: catalogs read them from the monorepo's conf/shared.yml through the `shared:` resolver.
"""

from ml_app.hooks import ModelRegistryHooks
from shared_schemas.config import shared_resolver

HOOKS = (ModelRegistryHooks(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"shared": shared_resolver},
}
