"""Project settings of etl_app (https://docs.kedro.org/en/stable/configure/configuration_basics/).

Cross-app settings (exchange root, MLflow tracking URI, registered model name) are not repeated
here: catalogs read them from conf/shared.yml through the `shared:` resolver (the monorepo's, or the
one in the released conf archive an installed app runs with).
"""

from shared_runtime.dependency_warnings import ignore_dependency_warnings

# first: some of the imports below warn when imported
ignore_dependency_warnings()

from datetime import date, timedelta  # noqa: E402

from etl_app.hooks import SparkHooks, SqliteSourceFolderHooks  # noqa: E402
from etl_app.params import SourceWindowHooks  # noqa: E402
from shared_runtime.config import SharedConfigLoader, shared_resolver  # noqa: E402
from shared_runtime.run_params import RunParamsHooks  # noqa: E402

# RunParamsHooks refuses unknown or malformed --params before anything resolves them;
# SourceWindowHooks refuses a window that selects no source payment. SqliteSourceFolderHooks makes
# the folder of a SQLite source (the default URL is relative to the working directory).
HOOKS = (SparkHooks(), SqliteSourceFolderHooks(), RunParamsHooks(), SourceWindowHooks())


def days_before(day: str, days: int) -> str:
    """``${days_before:2025-03-01,30}`` -> ``2025-01-30``: date arithmetic for SQL window bounds."""
    return (date.fromisoformat(str(day)) - timedelta(days=int(days))).isoformat()


# The `shared:` settings come from the conf source's shared.yml when it has one (a released app's
# conf archive, docs/deploying.md), else from the monorepo's conf/shared.yml.
CONFIG_LOADER_CLASS = SharedConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"shared": shared_resolver, "days_before": days_before},
    "config_patterns": {"spark": ["spark*", "spark*/**"]},
    # an environment (e.g. spark) overrides single parameters, not whole sections
    "merge_strategy": {"parameters": "soft"},
}
