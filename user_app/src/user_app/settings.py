"""Project settings of user_app (https://docs.kedro.org/en/stable/configure/configuration_basics/).

Cross-app settings (exchange root, MLflow tracking URI, registered model name) are not repeated
here: catalogs read them from the monorepo's conf/shared.yml through the `shared:` resolver.
"""

from shared_runtime.dependency_warnings import ignore_dependency_warnings

# first: some of the imports below warn when imported
ignore_dependency_warnings()

from shared_runtime.config import shared_resolver  # noqa: E402
from shared_runtime.run_params import RunParamsHooks  # noqa: E402

# Refuses unknown or malformed --params before the run starts.
HOOKS = (RunParamsHooks(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"shared": shared_resolver},
}
