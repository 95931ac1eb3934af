"""Contract for what a payment gateway sends to be authorized: one raw payment, no features.

etl_app's featurization service (``etl_app.online_service``) takes these rows and turns them
into :class:`~shared_schemas.etl_to_ml.TransactionInstance` rows from the source system's history.
The columns are the instance's own (same types and checks: one definition of a valid amount,
category or country), so a request this contract accepts fails etl_app's source screening only
for what a contract cannot know: an event time outside the plausible range of the day, or a
transaction id already recorded with other values. Timestamps are timezone-naive UTC (a gateway
sends ISO 8601 text with any offset; the service normalises it before checking).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from shared_schemas.etl_to_ml import MAX_AMOUNT, MERCHANT_CATEGORIES


class PaymentRequest(pa.DataFrameModel):
    """A payment as the gateway knows it when it asks for a decision."""

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

    class Config:
        name = "PaymentRequest"
        description = "A raw payment to authorize (gateway -> user_app -> etl_app)."
        strict = True
        coerce = True
