"""Before etl_app extracts a window: the window must select payments the source holds.

A window outside the source's history used to publish nothing and succeed. This hook asks the
source (the ``source_window_coverage`` catalog entry: same credentials, same window as the
extraction queries) what it holds and fails with that range, unless the run says
``--params allow_empty=true``.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

from shared_runtime.run_params import RunParamsError

logger = logging.getLogger(__name__)

# Extraction datasets whose rows come from the window; a pipeline reading one is checked.
WINDOWED_SOURCES = ("source_window_payments", "source_label_payments")
COVERAGE = "source_window_coverage"
ALLOW_EMPTY = "params:allow_empty"


def coverage_problem(coverage: dict[str, Any]) -> str | None:
    """What is wrong with a window given the source's coverage row, or None when it has rows."""
    start, end = coverage["window_start"], coverage["window_end"]
    first, last = coverage["first_event"], coverage["last_event"]
    if first is None:
        return (
            f"the source holds no payments at all, so the window [{start}, {end}) selects none: "
            "fill it first (`kedro run --pipelines simulate` or `make simulate`)."
        )
    if not coverage["in_window"]:
        return (
            f"the window [{start}, {end}) (window.start, window.end) selects no payment: the "
            f"source holds payments from {first} to {last}. Choose a window that overlaps it, "
            "or pass --params allow_empty=true to publish an empty window on purpose."
        )
    return None


class SourceWindowHooks:
    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        if not set(WINDOWED_SOURCES) & set(pipeline.datasets()):
            return
        try:
            row = catalog.load(COVERAGE).iloc[0].to_dict()
        except Exception as exc:  # any driver error: say what to do
            raise RunParamsError(
                f"Cannot read the source system's payments ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}): fill it first (`kedro run --pipelines simulate`)"
                " or point ETL_SOURCE_DB_URL at it."
            ) from None
        problem = coverage_problem(row)
        if problem is None:
            logger.info(
                "Window [%s, %s): %s source payments (source holds %s .. %s)",
                row["window_start"],
                row["window_end"],
                f"{int(row['in_window']):,}",
                row["first_event"],
                row["last_event"],
            )
            return
        if catalog.exists(ALLOW_EMPTY) and catalog.load(ALLOW_EMPTY):
            logger.warning("allow_empty=true: %s", problem)
            return
        raise RunParamsError(f"Refusing to run: {problem}")
