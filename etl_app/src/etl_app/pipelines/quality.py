"""The producer side of a contract: split a batch, log the counts, never lose a row."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import pandera.pandas as pa

from shared_schemas.quarantine import split_valid_rows

logger = logging.getLogger(__name__)


def split_for_publication(
    rows: pd.DataFrame, contract: type[pa.DataFrameModel], max_reject_ratio: float
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(rows to publish, rows to quarantine, quality report) for one batch.

    Raises:
        RejectRatioExceeded: when more than ``max_reject_ratio`` of the rows fail ``contract``.
    """
    valid, rejected, report = split_valid_rows(rows, contract, max_reject_ratio=max_reject_ratio)
    (logger.warning if report.rows_rejected else logger.info)(report.summary())
    return valid, rejected, report.as_dict()
