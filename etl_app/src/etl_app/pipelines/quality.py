"""The producer side of a contract: split a batch, log the counts, never lose a row."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pandas as pd
import pandera.pandas as pa

from shared_runtime.quarantine import (
    FAILED_CHECKS,
    QuarantineReport,
    RejectRatioExceeded,
    split_valid_rows,
)

logger = logging.getLogger(__name__)


def split_for_publication(
    rows: pd.DataFrame,
    contract: type[pa.DataFrameModel] | pa.DataFrameSchema,
    max_reject_ratio: float,
    screened_out: pd.DataFrame | None = None,
    counts: dict[str, int] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(rows to publish, rows to quarantine, quality report) for one batch.

    ``screened_out`` are rows of the same batch already refused before ``rows`` were built
    (source screening); they count towards the batch and its reject ratio. ``counts`` are extra
    figures for the report (e.g. exact duplicates dropped).

    Raises:
        RejectRatioExceeded: when more than ``max_reject_ratio`` of the batch was refused.
    """
    valid, rejected, report = split_valid_rows(rows, contract)
    if screened_out is not None and len(screened_out):
        rejected = pd.concat([screened_out, rejected], ignore_index=True).astype("string")
        failures = Counter(
            label for checks in rejected[FAILED_CHECKS] for label in checks.split(";")
        )
        report = QuarantineReport(
            report.contract,
            report.rows_in + len(screened_out),
            report.rows_valid,
            len(rejected),
            dict(failures),
        )
    if report.reject_ratio > max_reject_ratio:
        raise RejectRatioExceeded(report, max_reject_ratio, rejected.head(5))
    (logger.warning if report.rows_rejected else logger.info)(report.summary())
    return valid, rejected, {**report.as_dict(), **(counts or {})}
