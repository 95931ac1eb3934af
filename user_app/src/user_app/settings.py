"""Project settings of user_app (https://docs.kedro.org/en/stable/configure/configuration_basics/).

Cross-app settings (exchange root, MLflow tracking URI, registered model name) are not repeated
here: catalogs read them from conf/shared.yml through the `shared:` resolver (the monorepo's, or the
one in the released conf archive an installed app runs with).
"""

from shared_runtime.dependency_warnings import ignore_dependency_warnings

# first: some of the imports below warn when imported
ignore_dependency_warnings()

from shared_runtime.config import SharedConfigLoader, shared_resolver  # noqa: E402
from shared_runtime.run_params import RunParamsHooks  # noqa: E402

# Refuses unknown or malformed --params before the run starts.
HOOKS = (RunParamsHooks(),)

# The `shared:` settings come from the conf source's shared.yml when it has one (a released app's
# conf archive, docs/deploying.md), else from the monorepo's conf/shared.yml.
CONFIG_LOADER_CLASS = SharedConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"shared": shared_resolver},
}
