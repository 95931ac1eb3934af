"""daily_summary: payments, amounts and large payments per day."""

from __future__ import annotations

from typing import Any

import pandas as pd


def summarise_days(instances: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """One row per day: number of payments, total amount, payments above ``large_amount``."""
    days = instances["event_time"].dt.floor("D").rename("day")
    large = instances["amount"] > params["large_amount"]
    return (
        instances.assign(large=large)
        .groupby(days)
        .agg(payments=("amount", "size"), amount=("amount", "sum"), large=("large", "sum"))
        .reset_index()
    )
