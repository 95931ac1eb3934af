"""Warnings from dependencies that no user of these projects can act on, silenced at the source.

Each app's ``settings.py`` calls :func:`ignore_dependency_warnings` before anything else, so a
``kedro run`` shows the project's own warnings and not the same blocks of library deprecations
on every run. Each filter matches one exact message (and category): any other warning, from these
libraries too, still shows. Remove a line when the library that emits it is upgraded past it.

Not filterable this way: MLflow's "Add type hints to the `predict` method" (twice, when
kedro-mlflow's plugin is imported) is emitted inside ``warnings.catch_warnings()`` with MLflow's
own ``simplefilter("once")``, which overrides every filter installed outside it.
"""

from __future__ import annotations

import warnings

# (message regex, category, why nobody here can act on it)
DEPENDENCY_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (
        r"register_new_resolver\(\) is deprecated",
        UserWarning,
        "kedro 1.7 and kedro-mlflow 2.0 register resolvers with OmegaConf's old call",
    ),
    (
        r"PySpark does not yet fully support pandas",
        FutureWarning,
        "pandera/kedro-datasets import pyspark when installed; the Spark engine's equality test "
        "passes on pandas 3",
    ),
)


def ignore_dependency_warnings() -> None:
    """Install the filters of :data:`DEPENDENCY_WARNINGS` (idempotent)."""
    for message, category, _why in DEPENDENCY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
