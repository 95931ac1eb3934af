"""Contracts for what etl_app publishes and ml_app / user_app consume: instances and labels.

Timestamps are timezone-naive UTC. Instances and labels are produced by separate pipelines because
labels do not exist when a transaction has to be scored.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

MERCHANT_CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "apparel",
    "electronics",
    "travel",
    "online_services",
    "entertainment",
    "health",
    "jewelry",
)
MAX_AMOUNT = 100_000.0
LABEL_SOURCES = ("chargeback", "matured")

_COUNT = {"ge": 0}
#: The card's payment counts, shortest window first (the first two are optional since 0.1.5).
VELOCITY_WINDOWS = ("tx_count_5m", "tx_count_15m", "tx_count_1h", "tx_count_24h", "tx_count_7d")
_MONEY = {"ge": 0.0, "le": 50 * MAX_AMOUNT}


class TransactionInstance(pa.DataFrameModel):
    """One card transaction as the model sees it when it must be scored.

    Every feature is point-in-time: it uses only what was known strictly before ``event_time``
    (transactions of the same card, chargebacks already received), so the same row can be
    computed identically at training time and at scoring time.
    """

    transaction_id: Series[int] = pa.Field(ge=0, unique=True, description="Source-system key.")
    card_id: Series[int] = pa.Field(ge=0, description="Card that made the payment.")
    customer_id: Series[int] = pa.Field(ge=0, description="Card holder.")
    merchant_id: Series[int] = pa.Field(ge=0, description="Merchant that was paid.")
    event_time: Series[pd.Timestamp] = pa.Field(description="When the payment happened (UTC).")
    amount: Series[float] = pa.Field(
        ge=0.0, le=MAX_AMOUNT, description="Payment amount in the card's currency."
    )
    merchant_category: Series[str] = pa.Field(
        isin=MERCHANT_CATEGORIES, description="Merchant category (a closed set)."
    )
    merchant_country: Series[str] = pa.Field(
        str_matches=r"^[A-Z]{2}$", description="ISO-3166 alpha-2 country of the merchant."
    )
    is_foreign: Series[bool] = pa.Field(description="Merchant country differs from home country.")
    hour_of_day: Series[int] = pa.Field(ge=0, le=23, description="Hour of event_time (UTC).")
    day_of_week: Series[int] = pa.Field(ge=0, le=6, description="Monday=0 ... Sunday=6.")
    # "Hot" short windows for attack bursts (0.1.5): optional, so instances written under an
    # earlier contract (without them) stay valid; etl_app always publishes them.
    tx_count_5m: Series[int] | None = pa.Field(
        **_COUNT, description="Card's earlier payments, last 5 minutes (since 0.1.5)."
    )
    tx_count_15m: Series[int] | None = pa.Field(
        **_COUNT, description="Card's earlier payments, last 15 minutes (since 0.1.5)."
    )
    tx_count_1h: Series[int] = pa.Field(**_COUNT, description="Card's earlier payments, last 1h.")
    tx_count_24h: Series[int] = pa.Field(**_COUNT, description="Card's earlier payments, last 24h.")
    tx_count_7d: Series[int] = pa.Field(**_COUNT, description="Card's earlier payments, last 7d.")
    amount_sum_1h: Series[float] = pa.Field(**_MONEY, description="Their total amount, last 1h.")
    amount_sum_24h: Series[float] = pa.Field(**_MONEY, description="Their total amount, last 24h.")
    amount_sum_7d: Series[float] = pa.Field(**_MONEY, description="Their total amount, last 7d.")
    seconds_since_prev_tx: Series[float] = pa.Field(
        ge=0.0,
        nullable=True,
        description="Seconds since the card's previous payment; null if none.",
    )
    amount_to_median_ratio: Series[float] = pa.Field(
        ge=0.0,
        nullable=True,
        description="amount / median of the card's earlier amounts (lookback); null if no history.",
    )
    is_new_merchant: Series[bool] = pa.Field(description="First payment of the card here.")
    is_new_country: Series[bool] = pa.Field(description="First payment of the card in country.")
    merchant_chargebacks_30d: Series[int] = pa.Field(
        **_COUNT, description="Chargebacks for this merchant received in the last 30 days."
    )
    merchant_tx_30d: Series[int] = pa.Field(
        **_COUNT, description="Payments at this merchant in the last 30 days."
    )
    merchant_tx_10m: Series[int] | None = pa.Field(
        **_COUNT, description="Payments at this merchant in the last 10 minutes (since 0.1.5)."
    )
    merchant_chargeback_rate_30d: Series[float] = pa.Field(
        ge=0.0,
        description=(
            "merchant_chargebacks_30d / (merchant_tx_30d + 1). Can exceed 1: chargebacks arrive "
            "weeks after the payments they concern."
        ),
    )

    class Config:
        name = "TransactionInstance"
        description = (
            "A card payment with its point-in-time features (etl_app -> ml_app, user_app)."
        )
        strict = True
        coerce = True

    @pa.dataframe_check(name="velocity_windows_nest")
    @classmethod
    def _velocity_windows_nest(cls, df: pd.DataFrame) -> pd.Series:
        """A shorter window can never hold more payments than a longer one (the optional hot
        windows, since 0.1.5, where the frame has them)."""
        counts = [df[c] for c in VELOCITY_WINDOWS if c in df]
        if _numpy_numbers(*counts):  # the same comparisons without pandas' per-op cost
            arrays = [c.to_numpy() for c in counts]
            ok = np.ones(len(df), dtype=bool)
            for shorter, longer in pairwise(arrays):
                ok &= shorter <= longer
            return pd.Series(ok, index=df.index)
        ok = pd.Series(True, index=df.index)
        for shorter, longer in pairwise(counts):
            ok &= shorter <= longer
        return ok

    @pa.dataframe_check(name="hour_matches_event_time")
    @classmethod
    def _hour_matches_event_time(cls, df: pd.DataFrame) -> pd.Series:
        hour, times = df["hour_of_day"], df["event_time"]
        if _numpy_numbers(hour) and _numpy_dtype(times, "M"):  # naive datetime64 of any unit
            values = times.to_numpy()
            hours = values.astype("datetime64[h]").astype(np.int64) % 24  # floors, like .dt.hour
            return pd.Series((hour.to_numpy() == hours) & ~np.isnat(values), index=df.index)
        return hour == times.dt.hour


def _numpy_dtype(series: pd.Series, kinds: str) -> bool:
    return isinstance(series.dtype, np.dtype) and series.dtype.kind in kinds


def _numpy_numbers(*series: pd.Series) -> bool:
    """True when every series holds plain numpy numbers, where a comparison of the arrays is
    exactly pandas' (row rules are checked per request online: ~20 us per pandas operation)."""
    return all(_numpy_dtype(s, "biuf") for s in series)


class FraudLabel(pa.DataFrameModel):
    """Ground truth for one transaction, as known at ``as_of``.

    A chargeback makes a transaction fraudulent from the moment it is received; a transaction
    with no chargeback after the maturity period is labelled legitimate. Younger transactions
    have no label yet and are absent: absence never means "legit".
    """

    transaction_id: Series[int] = pa.Field(ge=0, unique=True, description="Source-system key.")
    event_time: Series[pd.Timestamp] = pa.Field(description="When the payment happened (UTC).")
    is_fraud: Series[bool] = pa.Field(description="True if a chargeback was received.")
    label_time: Series[pd.Timestamp] = pa.Field(description="When this label became known.")
    label_source: Series[str] = pa.Field(isin=LABEL_SOURCES, description="Why it is known.")
    as_of: Series[pd.Timestamp] = pa.Field(description="Cutoff the labels were computed for.")

    class Config:
        name = "FraudLabel"
        description = "Delayed ground truth for transactions (etl_app -> ml_app)."
        strict = True
        coerce = True

    @pa.dataframe_check(name="label_not_before_event")
    @classmethod
    def _label_not_before_event(cls, df: pd.DataFrame) -> pd.Series:
        return df["label_time"] >= df["event_time"]

    @pa.dataframe_check(name="label_known_by_cutoff")
    @classmethod
    def _label_known_by_cutoff(cls, df: pd.DataFrame) -> pd.Series:
        return df["label_time"] <= df["as_of"]

    @pa.dataframe_check(name="source_matches_label")
    @classmethod
    def _source_matches_label(cls, df: pd.DataFrame) -> pd.Series:
        """Only a chargeback can make a transaction fraudulent."""
        return df["is_fraud"] == (df["label_source"] == "chargeback")
